/*
 * nn_image.c: graph ops for images: 2-D convolution, pooling and batch norm.
 *
 * Attributes: conv2d i[0..8] kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
 * pooling i[0] kind (0 max, 1 average, 2 global average), i[1] kernel, i[2] stride,
 * i[3] padding, aux 0 the max pool's argmax; batch_norm f[0] eps, f[1] momentum, aux 0 mean
 * [C], aux 1 inv_std [C].
 */
#include <math.h>
#include <string.h>

#include "graph.h"
#include "ops/conv.h"
#include "ops/norm.h"
#include "ops/pool.h"

static bool fail(struct clt_graph *g, const char *what)
{
    clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "%s", what);
    return false;
}

/* ---- conv2d ------------------------------------------------------------------------------ */

/* The launcher's description of a conv2d node (already resolved when the node was made). */
static struct clt__conv2d conv_of(const struct clt_tensor *t)
{
    const struct clt_tensor *x = t->in[0];
    struct clt__conv2d c = {
        .n = x->shape[0], .c_in = x->shape[1], .h = x->shape[2], .w = x->shape[3],
        .c_out = t->shape[1], .kh = t->i[0], .kw = t->i[1], .stride_h = t->i[2],
        .stride_w = t->i[3], .pad_h = t->i[4], .pad_w = t->i[5], .dil_h = t->i[6],
        .dil_w = t->i[7], .groups = t->i[8], .oh = t->shape[2], .ow = t->shape[3],
    };
    return c;
}

static uint64_t conv_workspace(const struct clt_tensor *t)
{
    struct clt__conv2d c = conv_of(t);
    return clt__conv2d_workspace_bytes(&c);
}

static enum clt_status conv_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__conv2d c = conv_of(t);
    struct clt__buf bias = t->nin > 2 ? clt__val(x, t->in[2]) : (struct clt__buf){NULL, 0};
    return clt__conv2d_forward(x->dev, &c, clt__val(x, t->in[0]), clt__val(x, t->in[1]), bias,
                               clt__val(x, t), clt__workspace(x));
}

static enum clt_status conv_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__conv2d c = conv_of(t);
    struct clt__buf none = {NULL, 0};
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; i < t->nin && st == CLT_OK; i++) {
        struct clt__buf g = clt__grad(x, t->in[i]);
        if (g.mem)
            st = clt__conv2d_backward(x->dev, &c, clt__val(x, t->in[0]), clt__val(x, t->in[1]),
                                      clt__grad(x, t), i == 0 ? g : none, i == 1 ? g : none,
                                      i == 2 ? g : none, clt__workspace(x),
                                      clt__accumulate(x, t, i));
    }
    return st;
}

static const struct clt__op_def conv_def = {
    .name = "conv2d",
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = conv_forward,
    .backward = conv_backward,
    .workspace = conv_workspace,
};

struct clt_tensor *clt_conv2d(struct clt_graph *g, struct clt_tensor *x,
                              const struct clt_conv2d_desc *desc, const char *name)
{
    char wname[CLT__NAME_MAX], bname[CLT__NAME_MAX];
    if (!clt__graph_ok(g, 1, &x) || !clt__param_name(g, name, "weight", wname) ||
        !clt__param_name(g, name, "bias", bname))
        return NULL;
    if (!desc || x->ndim != 4 || x->dtype != CLT_F32) {
        fail(g, "conv2d: needs F32 x [N, C, H, W] and a description");
        return NULL;
    }
    struct clt__conv2d c = {
        .n = x->shape[0], .c_in = x->shape[1], .h = x->shape[2], .w = x->shape[3],
        .c_out = desc->out_channels, .kh = desc->kernel_h, .kw = desc->kernel_w,
        .stride_h = desc->stride_h ? desc->stride_h : 1,
        .stride_w = desc->stride_w ? desc->stride_w : 1, .pad_h = desc->padding_h,
        .pad_w = desc->padding_w, .dil_h = desc->dilation_h ? desc->dilation_h : 1,
        .dil_w = desc->dilation_w ? desc->dilation_w : 1,
        .groups = desc->groups ? desc->groups : 1,
    };
    struct clt_log quiet = {NULL, NULL, CLT_LOG_ERROR};
    quiet.max_level = CLT_LOG_ERROR;
    if (clt__conv2d_resolve(&quiet, &c) != CLT_OK) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "conv2d %s: impossible parameters for input [%lld, %lld, %lld, %lld]",
                        name, (long long)c.n, (long long)c.c_in, (long long)c.h, (long long)c.w);
        return NULL;
    }
    int64_t fan_in = c.c_in / c.groups * c.kh * c.kw;
    struct clt_tensor *w = clt_param(g, wname, 4, (int64_t[]){c.c_out, c.c_in / c.groups, c.kh, c.kw},
                                     clt__init_torch_weight());
    struct clt_tensor *b = desc->bias ? clt_param(g, bname, 1, &c.c_out,
                                                  clt__init_torch_bias(fan_in))
                                      : NULL;
    if (!w || (desc->bias && !b))
        return NULL;
    struct clt_tensor *in[3] = {x, w, b};
    struct clt_tensor *t = clt__node(g, &conv_def, desc->bias ? 3 : 2, in, CLT_F32, 4,
                                     (int64_t[]){c.n, c.c_out, c.oh, c.ow});
    if (t) {
        int64_t attrs[9] = {c.kh,    c.kw,    c.stride_h, c.stride_w, c.pad_h,
                            c.pad_w, c.dil_h, c.dil_w,    c.groups};
        memcpy(t->i, attrs, sizeof attrs);
    }
    return t;
}

/* ---- pooling ----------------------------------------------------------------------------- */

enum { POOL_MAX = 0, POOL_AVG = 1, POOL_GLOBAL = 2 };

static struct clt__pool2d pool_of(const struct clt_tensor *t)
{
    const struct clt_tensor *x = t->in[0];
    struct clt__pool2d p = {
        .n = x->shape[0], .c = x->shape[1], .h = x->shape[2], .w = x->shape[3],
        .kh = t->i[1], .kw = t->i[1], .stride_h = t->i[2], .stride_w = t->i[2],
        .pad_h = t->i[3], .pad_w = t->i[3],
    };
    if (t->i[0] != POOL_GLOBAL) {
        p.oh = t->shape[2];
        p.ow = t->shape[3];
    }
    return p;
}

static enum clt_status pool_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__pool2d p = pool_of(t);
    struct clt__buf in = clt__val(x, t->in[0]), out = clt__val(x, t);
    switch (t->i[0]) {
    case POOL_MAX:
        return clt__maxpool2d_forward(x->dev, &p, in, out, clt__aux(x, t, 0));
    case POOL_AVG:
        return clt__avgpool2d_forward(x->dev, &p, in, out);
    default:
        return clt__global_avgpool_forward(x->dev, p.n, p.c, p.h, p.w, in, out);
    }
}

static enum clt_status pool_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__pool2d p = pool_of(t);
    struct clt__buf dy = clt__grad(x, t), dx = clt__grad(x, t->in[0]);
    bool acc = clt__accumulate(x, t, 0);
    switch (t->i[0]) {
    case POOL_MAX:
        return clt__maxpool2d_backward(x->dev, &p, clt__aux(x, t, 0), dy, dx, acc);
    case POOL_AVG:
        return clt__avgpool2d_backward(x->dev, &p, dy, dx, acc);
    default:
        return clt__global_avgpool_backward(x->dev, p.n, p.c, p.h, p.w, dy, dx, acc);
    }
}

static const struct clt__op_def pool_def = {
    .name = "pool2d", .forward = pool_forward, .backward = pool_backward};

static struct clt_tensor *pool(struct clt_graph *g, struct clt_tensor *x, int kind,
                               int64_t kernel, int64_t stride, int64_t padding)
{
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    if (x->ndim != 4 || x->dtype != CLT_F32) {
        fail(g, "pooling: needs F32 x [N, C, H, W]");
        return NULL;
    }
    if (kind == POOL_GLOBAL) {
        struct clt_tensor *t =
            clt__node(g, &pool_def, 1, &x, CLT_F32, 2, (int64_t[]){x->shape[0], x->shape[1]});
        if (t)
            t->i[0] = kind;
        return t;
    }
    struct clt__pool2d p = {
        .n = x->shape[0], .c = x->shape[1], .h = x->shape[2], .w = x->shape[3],
        .kh = kernel, .kw = kernel, .stride_h = stride ? stride : kernel,
        .stride_w = stride ? stride : kernel, .pad_h = padding, .pad_w = padding,
    };
    struct clt_log quiet = {NULL, NULL, CLT_LOG_ERROR};
    if (clt__pool2d_resolve(&quiet, &p) != CLT_OK) {
        fail(g, "pooling: impossible kernel, stride or padding for this input");
        return NULL;
    }
    struct clt_tensor *t = clt__node(g, &pool_def, 1, &x, CLT_F32, 4,
                                     (int64_t[]){p.n, p.c, p.oh, p.ow});
    if (t) {
        t->i[0] = kind;
        t->i[1] = kernel;
        t->i[2] = p.stride_h;
        t->i[3] = padding;
        if (kind == POOL_MAX) {
            t->naux = 1;
            t->aux_dtype[0] = CLT_I32;
            t->aux_count[0] = clt__count(t);
        }
    }
    return t;
}

struct clt_tensor *clt_max_pool2d(struct clt_graph *g, struct clt_tensor *x, int64_t kernel,
                                  int64_t stride, int64_t padding)
{
    return pool(g, x, POOL_MAX, kernel, stride, padding);
}

struct clt_tensor *clt_avg_pool2d(struct clt_graph *g, struct clt_tensor *x, int64_t kernel,
                                  int64_t stride, int64_t padding)
{
    return pool(g, x, POOL_AVG, kernel, stride, padding);
}

struct clt_tensor *clt_global_avg_pool2d(struct clt_graph *g, struct clt_tensor *x)
{
    return pool(g, x, POOL_GLOBAL, 0, 0, 0);
}

/* ---- batch norm -------------------------------------------------------------------------- */

/* x [N, C, S...] as [N, C, S] with S the product of the rest (1 for [N, C]). */
static void bn_dims(const struct clt_tensor *t, int64_t *n, int64_t *c, int64_t *s)
{
    *n = t->shape[0];
    *c = t->shape[1];
    *s = clt__count(t) / (*n * *c);
}

static uint64_t bn_workspace(const struct clt_tensor *t)
{
    int64_t n, c, s;
    bn_dims(t, &n, &c, &s);
    return clt__batchnorm_workspace_bytes(n, c, s);
}

static enum clt_status bn_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t n, c, s;
    bn_dims(t, &n, &c, &s);
    struct clt__buf in = clt__val(x, t->in[0]), gamma = clt__val(x, t->in[1]);
    struct clt__buf beta = clt__val(x, t->in[2]), rmean = clt__val(x, t->in[3]);
    struct clt__buf rvar = clt__val(x, t->in[4]), out = clt__val(x, t);
    if (!x->training)
        return clt__batchnorm_forward_inference(x->dev, n, c, s, in, gamma, beta, rmean, rvar,
                                                t->f[0], out);
    return clt__batchnorm_forward(x->dev, n, c, s, in, gamma, beta, t->f[0], t->f[1], rmean,
                                  rvar, out, clt__aux(x, t, 0), clt__aux(x, t, 1),
                                  clt__workspace(x));
}

static enum clt_status bn_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t n, c, s;
    bn_dims(t, &n, &c, &s);
    struct clt__buf none = {NULL, 0};
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; i < 3 && st == CLT_OK; i++) {
        struct clt__buf g = clt__grad(x, t->in[i]);
        if (g.mem)
            st = clt__batchnorm_backward(x->dev, n, c, s, clt__val(x, t->in[0]), clt__grad(x, t),
                                         clt__val(x, t->in[1]), clt__aux(x, t, 0),
                                         clt__aux(x, t, 1), i == 0 ? g : none,
                                         i == 1 ? g : none, i == 2 ? g : none,
                                         clt__accumulate(x, t, i), clt__workspace(x));
    }
    return st;
}

static const struct clt__op_def bn_def = {
    .name = "batch_norm",
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = bn_forward,
    .backward = bn_backward,
    .workspace = bn_workspace,
};

struct clt_tensor *clt_batch_norm(struct clt_graph *g, struct clt_tensor *x, float eps,
                                  float momentum, const char *name)
{
    char names[4][CLT__NAME_MAX];
    const char *parts[4] = {"weight", "bias", "running_mean", "running_var"};
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    for (int i = 0; i < 4; i++)
        if (!clt__param_name(g, name, parts[i], names[i]))
            return NULL;
    if (x->ndim < 2 || x->dtype != CLT_F32 || !(eps >= 0.0f) || !isfinite(eps) ||
        !(momentum >= 0.0f && momentum <= 1.0f)) {
        fail(g, "batch_norm: needs F32 x [N, C, ...], eps >= 0 and momentum in [0, 1]");
        return NULL;
    }
    int64_t c = x->shape[1];
    struct clt_init one = {CLT_INIT_CONSTANT, 1.0f, 0.0f}, zero = {CLT_INIT_ZEROS, 0, 0};
    struct clt_tensor *in[5] = {x, clt_param(g, names[0], 1, &c, one),
                                clt_param(g, names[1], 1, &c, zero),
                                clt_state(g, names[2], 1, &c, zero),
                                clt_state(g, names[3], 1, &c, one)};
    if (!in[1] || !in[2] || !in[3] || !in[4])
        return NULL;
    struct clt_tensor *t = clt__node(g, &bn_def, 5, in, CLT_F32, x->ndim, x->shape);
    if (t) {
        t->f[0] = eps;
        t->f[1] = momentum;
        t->naux = 2;
        t->aux_dtype[0] = t->aux_dtype[1] = CLT_F32;
        t->aux_count[0] = t->aux_count[1] = c;
    }
    return t;
}
