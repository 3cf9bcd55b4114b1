/*
 * nn_basic.c: graph ops for arithmetic, matrix products, the linear layer, activations,
 * dropout and reshaping. Each op is its definition (forward, backward, what the backward
 * reads) next to its public builder.
 *
 * Attributes: matmul i[0] trans_a, i[1] trans_b; scale f[0] alpha; activation i[0] the
 * function (enum clt__act), f[0] the slope; dropout f[0] p.
 */
#include <math.h>
#include <string.h>

#include "graph.h"
#include "ops/activation.h"
#include "ops/elementwise.h"

/* Elements of all axes but the last: the rows of a [..., D] tensor. */
static int64_t rows_of(const struct clt_tensor *t)
{
    return clt__count(t) / t->shape[t->ndim - 1];
}

static bool same_shape(const struct clt_tensor *a, const struct clt_tensor *b)
{
    return a->ndim == b->ndim && memcmp(a->shape, b->shape, a->ndim * sizeof *a->shape) == 0;
}

/* Records an error unless cond holds; returns cond. */
static bool require(struct clt_graph *g, bool cond, const char *what)
{
    if (!cond)
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "%s", what);
    return cond;
}

static bool is_f32(struct clt_graph *g, const struct clt_tensor *t, const char *op)
{
    if (t->dtype != CLT_F32)
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "%s: \"%s\" must be F32", op, t->name);
    return t->dtype == CLT_F32;
}

/* ---- matmul ------------------------------------------------------------------------------ */

/* M, N, K and the batch of a matmul node. */
static void matmul_dims(const struct clt_tensor *t, int64_t *m, int64_t *n, int64_t *k,
                        int64_t *batch)
{
    const struct clt_tensor *a = t->in[0];
    uint32_t d = a->ndim;
    *batch = d == 3 ? a->shape[0] : 1;
    *m = t->shape[d - 2];
    *n = t->shape[d - 1];
    *k = t->i[0] ? a->shape[d - 2] : a->shape[d - 1];
}

/* Enqueues C = op(A) op(B) (+ C when accumulate) for batch items with tight strides. */
static enum clt_status gemm(struct clt__exec *x, bool ta, bool tb, int64_t m, int64_t n,
                            int64_t k, int64_t batch, struct clt__buf a, struct clt__buf b,
                            struct clt__buf c, bool accumulate)
{
    struct clt_gemm_shape g = {.trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k,
                               .alpha = 1.0f, .beta = accumulate ? 1.0f : 0.0f,
                               .batch = batch};
    return clt__gemm(x->dev, &g, a, b, c);
}

static enum clt_status matmul_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t m, n, k, batch;
    matmul_dims(t, &m, &n, &k, &batch);
    return gemm(x, t->i[0], t->i[1], m, n, k, batch, clt__val(x, t->in[0]),
                clt__val(x, t->in[1]), clt__val(x, t), false);
}

static enum clt_status matmul_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t m, n, k, batch;
    matmul_dims(t, &m, &n, &k, &batch);
    bool ta = t->i[0], tb = t->i[1];
    struct clt__buf a = clt__val(x, t->in[0]), b = clt__val(x, t->in[1]);
    struct clt__buf dc = clt__grad(x, t);
    struct clt__buf da = clt__grad(x, t->in[0]), db = clt__grad(x, t->in[1]);
    enum clt_status st = CLT_OK;
    /* dA = dC op(B)^T, or its transpose when A is stored transposed. */
    if (da.mem)
        st = ta ? gemm(x, tb, true, k, m, n, batch, b, dc, da, clt__accumulate(x, t, 0))
                : gemm(x, false, !tb, m, k, n, batch, dc, b, da, clt__accumulate(x, t, 0));
    /* dB = op(A)^T dC, or its transpose when B is stored transposed. */
    if (st == CLT_OK && db.mem)
        st = tb ? gemm(x, true, ta, n, k, m, batch, dc, a, db, clt__accumulate(x, t, 1))
                : gemm(x, !ta, false, k, n, m, batch, a, dc, db, clt__accumulate(x, t, 1));
    return st;
}

static const struct clt__op_def matmul_def = {
    .name = "matmul",
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = matmul_forward,
    .backward = matmul_backward,
};

struct clt_tensor *clt_matmul(struct clt_graph *g, struct clt_tensor *a, struct clt_tensor *b,
                              bool trans_a, bool trans_b)
{
    struct clt_tensor *in[2] = {a, b};
    if (!clt__graph_ok(g, 2, in) || !is_f32(g, a, "matmul") || !is_f32(g, b, "matmul"))
        return NULL;
    uint32_t d = a->ndim;
    if (!require(g, (d == 2 || d == 3) && b->ndim == d && (d == 2 || a->shape[0] == b->shape[0]),
                 "matmul: a and b must both be 2-D, or both 3-D with the same batch"))
        return NULL;
    int64_t m = trans_a ? a->shape[d - 1] : a->shape[d - 2];
    int64_t k = trans_a ? a->shape[d - 2] : a->shape[d - 1];
    int64_t kb = trans_b ? b->shape[d - 1] : b->shape[d - 2];
    int64_t n = trans_b ? b->shape[d - 2] : b->shape[d - 1];
    if (!require(g, k == kb, "matmul: inner dimensions differ"))
        return NULL;
    int64_t shape[3] = {a->shape[0], m, n};
    struct clt_tensor *t =
        clt__node(g, &matmul_def, 2, in, CLT_F32, d, d == 3 ? shape : shape + 1);
    if (t) {
        t->i[0] = trans_a;
        t->i[1] = trans_b;
    }
    return t;
}

/* ---- linear ------------------------------------------------------------------------------ */

/* Inputs: x [..., in], weight [out, in], optional bias [out]. */
static enum clt_status linear_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    const struct clt_tensor *w = t->in[1];
    struct clt__buf bias = t->nin > 2 ? clt__val(x, t->in[2]) : (struct clt__buf){NULL, 0};
    return clt__linear_forward(x->dev, rows_of(t), w->shape[1], w->shape[0],
                               clt__val(x, t->in[0]), clt__val(x, w), bias, clt__val(x, t));
}

static enum clt_status linear_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    const struct clt_tensor *w = t->in[1];
    struct clt__buf none = {NULL, 0};
    struct clt__buf dy = clt__grad(x, t), xv = clt__val(x, t->in[0]), wv = clt__val(x, w);
    struct clt__buf d[3] = {clt__grad(x, t->in[0]), clt__grad(x, w),
                            t->nin > 2 ? clt__grad(x, t->in[2]) : none};
    enum clt_status st = CLT_OK;
    /* One launch per gradient: each may write or add on its own. */
    for (uint32_t i = 0; i < t->nin && st == CLT_OK; i++) {
        if (!d[i].mem)
            continue;
        st = clt__linear_backward(x->dev, rows_of(t), w->shape[1], w->shape[0], xv, wv, dy,
                                  i == 0 ? d[0] : none, i == 1 ? d[1] : none,
                                  i == 2 ? d[2] : none, clt__accumulate(x, t, i));
    }
    return st;
}

static const struct clt__op_def linear_def = {
    .name = "linear",
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = linear_forward,
    .backward = linear_backward,
};

struct clt_tensor *clt_linear(struct clt_graph *g, struct clt_tensor *x, int64_t out_features,
                              bool bias, const char *name)
{
    char wname[CLT__NAME_MAX], bname[CLT__NAME_MAX];
    if (!clt__graph_ok(g, 1, &x) || !is_f32(g, x, "linear") ||
        !clt__param_name(g, name, "weight", wname) || !clt__param_name(g, name, "bias", bname))
        return NULL;
    int64_t in = x->shape[x->ndim - 1];
    struct clt_tensor *w =
        clt_param(g, wname, 2, (int64_t[]){out_features, in}, clt__init_torch_weight());
    struct clt_tensor *b =
        bias ? clt_param(g, bname, 1, (int64_t[]){out_features}, clt__init_torch_bias(in))
             : NULL;
    if (!w || (bias && !b))
        return NULL;
    struct clt_tensor *ins[3] = {x, w, b};
    int64_t shape[CLT_MAX_DIMS];
    memcpy(shape, x->shape, x->ndim * sizeof *shape);
    shape[x->ndim - 1] = out_features;
    return clt__node(g, &linear_def, bias ? 3 : 2, ins, CLT_F32, x->ndim, shape);
}

/* ---- add, mul, scale, add_bias ----------------------------------------------------------- */

static enum clt_status add_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    return clt__add_forward(x->dev, clt__count(t), clt__val(x, t->in[0]),
                            clt__val(x, t->in[1]), clt__val(x, t));
}

static enum clt_status add_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__buf none = {NULL, 0}, dy = clt__grad(x, t);
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; i < 2 && st == CLT_OK; i++) {
        struct clt__buf d = clt__grad(x, t->in[i]);
        if (d.mem)
            st = clt__add_backward(x->dev, clt__count(t), dy, i == 0 ? d : none,
                                   i == 1 ? d : none, clt__accumulate(x, t, i));
    }
    return st;
}

static const struct clt__op_def add_def = {
    .name = "add", .forward = add_forward, .backward = add_backward};

static enum clt_status mul_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    return clt__mul_forward(x->dev, clt__count(t), clt__val(x, t->in[0]),
                            clt__val(x, t->in[1]), clt__val(x, t));
}

static enum clt_status mul_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__buf none = {NULL, 0}, dy = clt__grad(x, t);
    struct clt__buf a = clt__val(x, t->in[0]), b = clt__val(x, t->in[1]);
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; i < 2 && st == CLT_OK; i++) {
        struct clt__buf d = clt__grad(x, t->in[i]);
        if (d.mem)
            st = clt__mul_backward(x->dev, clt__count(t), a, b, dy, i == 0 ? d : none,
                                   i == 1 ? d : none, clt__accumulate(x, t, i));
    }
    return st;
}

static const struct clt__op_def mul_def = {
    .name = "mul",
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = mul_forward,
    .backward = mul_backward,
};

static struct clt_tensor *binary(struct clt_graph *g, const struct clt__op_def *def,
                                 struct clt_tensor *a, struct clt_tensor *b)
{
    struct clt_tensor *in[2] = {a, b};
    if (!clt__graph_ok(g, 2, in) || !is_f32(g, a, def->name) || !is_f32(g, b, def->name))
        return NULL;
    if (!require(g, same_shape(a, b), "add/mul: the shapes differ"))
        return NULL;
    return clt__node(g, def, 2, in, CLT_F32, a->ndim, a->shape);
}

struct clt_tensor *clt_add(struct clt_graph *g, struct clt_tensor *a, struct clt_tensor *b)
{
    return binary(g, &add_def, a, b);
}

struct clt_tensor *clt_mul(struct clt_graph *g, struct clt_tensor *a, struct clt_tensor *b)
{
    return binary(g, &mul_def, a, b);
}

static enum clt_status scale_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    return clt__scale_forward(x->dev, clt__count(t), t->f[0], clt__val(x, t->in[0]),
                              clt__val(x, t));
}

static enum clt_status scale_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    return clt__scale_backward(x->dev, clt__count(t), t->f[0], clt__grad(x, t),
                               clt__grad(x, t->in[0]), clt__accumulate(x, t, 0));
}

static const struct clt__op_def scale_def = {
    .name = "scale", .forward = scale_forward, .backward = scale_backward};

struct clt_tensor *clt_scale(struct clt_graph *g, struct clt_tensor *x, float alpha)
{
    if (!clt__graph_ok(g, 1, &x) || !is_f32(g, x, "scale") ||
        !require(g, isfinite(alpha), "scale: alpha must be finite"))
        return NULL;
    struct clt_tensor *t = clt__node(g, &scale_def, 1, &x, CLT_F32, x->ndim, x->shape);
    if (t)
        t->f[0] = alpha;
    return t;
}

static enum clt_status bias_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    return clt__bias_forward(x->dev, rows_of(t), t->shape[t->ndim - 1], clt__val(x, t->in[0]),
                             clt__val(x, t->in[1]), clt__val(x, t));
}

static enum clt_status bias_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__buf none = {NULL, 0}, dy = clt__grad(x, t);
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; i < 2 && st == CLT_OK; i++) {
        struct clt__buf d = clt__grad(x, t->in[i]);
        if (d.mem)
            st = clt__bias_backward(x->dev, rows_of(t), t->shape[t->ndim - 1], dy,
                                    i == 0 ? d : none, i == 1 ? d : none,
                                    clt__accumulate(x, t, i));
    }
    return st;
}

static const struct clt__op_def bias_def = {
    .name = "add_bias", .forward = bias_forward, .backward = bias_backward};

struct clt_tensor *clt_add_bias(struct clt_graph *g, struct clt_tensor *x,
                                struct clt_tensor *bias)
{
    struct clt_tensor *in[2] = {x, bias};
    if (!clt__graph_ok(g, 2, in) || !is_f32(g, x, "add_bias") || !is_f32(g, bias, "add_bias"))
        return NULL;
    if (!require(g, bias->ndim == 1 && bias->shape[0] == x->shape[x->ndim - 1],
                 "add_bias: the bias must be [D] for x [..., D]"))
        return NULL;
    return clt__node(g, &bias_def, 2, in, CLT_F32, x->ndim, x->shape);
}

/* ---- sum and mean ------------------------------------------------------------------------ */

static uint64_t reduce_workspace(const struct clt_tensor *t)
{
    return clt__reduce_workspace_bytes(clt__count(t->in[0]));
}

static enum clt_status sum_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t n = clt__count(t->in[0]);
    struct clt__buf in = clt__val(x, t->in[0]), out = clt__val(x, t), w = clt__workspace(x);
    return t->i[0] ? clt__mean_forward(x->dev, n, in, out, w)
                   : clt__sum_forward(x->dev, n, in, out, w);
}

static enum clt_status sum_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t n = clt__count(t->in[0]);
    struct clt__buf dy = clt__grad(x, t), dx = clt__grad(x, t->in[0]);
    bool acc = clt__accumulate(x, t, 0);
    return t->i[0] ? clt__mean_backward(x->dev, n, dy, dx, acc)
                   : clt__sum_backward(x->dev, n, dy, dx, acc);
}

/* i[0]: 1 for the mean. */
static const struct clt__op_def sum_def = {
    .name = "sum", .forward = sum_forward, .backward = sum_backward,
    .workspace = reduce_workspace};

static struct clt_tensor *reduce(struct clt_graph *g, struct clt_tensor *x, bool mean)
{
    if (!clt__graph_ok(g, 1, &x) || !is_f32(g, x, mean ? "mean" : "sum"))
        return NULL;
    struct clt_tensor *t = clt__node(g, &sum_def, 1, &x, CLT_F32, 1, (int64_t[]){1});
    if (t)
        t->i[0] = mean;
    return t;
}

struct clt_tensor *clt_sum(struct clt_graph *g, struct clt_tensor *x)
{
    return reduce(g, x, false);
}

struct clt_tensor *clt_mean(struct clt_graph *g, struct clt_tensor *x)
{
    return reduce(g, x, true);
}

/* ---- activations ------------------------------------------------------------------------- */

static enum clt_status act_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    return clt__activation_forward(x->dev, (enum clt__act)t->i[0], t->f[0], clt__count(t),
                                   clt__val(x, t->in[0]), clt__val(x, t));
}

static enum clt_status act_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    return clt__activation_backward(x->dev, (enum clt__act)t->i[0], t->f[0], clt__count(t),
                                    clt__val(x, t->in[0]), clt__grad(x, t),
                                    clt__grad(x, t->in[0]), clt__accumulate(x, t, 0));
}

static const struct clt__op_def act_def = {
    .name = "activation",
    .saves = CLT__SAVES_INPUT(0),
    .recomputable = true,
    .forward = act_forward,
    .backward = act_backward,
};

static struct clt_tensor *activation(struct clt_graph *g, struct clt_tensor *x,
                                     enum clt__act act, float slope)
{
    if (!clt__graph_ok(g, 1, &x) || !is_f32(g, x, clt__act_name(act)))
        return NULL;
    struct clt_tensor *t = clt__node(g, &act_def, 1, &x, CLT_F32, x->ndim, x->shape);
    if (t) {
        t->i[0] = act;
        t->f[0] = slope;
    }
    return t;
}

struct clt_tensor *clt_relu(struct clt_graph *g, struct clt_tensor *x)
{
    return activation(g, x, CLT__ACT_RELU, 0.0f);
}

struct clt_tensor *clt_leaky_relu(struct clt_graph *g, struct clt_tensor *x,
                                  float negative_slope)
{
    if (g && !require(g, isfinite(negative_slope), "leaky_relu: the slope must be finite"))
        return NULL;
    return activation(g, x, CLT__ACT_LEAKY_RELU, negative_slope);
}

struct clt_tensor *clt_gelu(struct clt_graph *g, struct clt_tensor *x, bool tanh_approximation)
{
    return activation(g, x, tanh_approximation ? CLT__ACT_GELU_TANH : CLT__ACT_GELU_ERF, 0.0f);
}

struct clt_tensor *clt_tanh(struct clt_graph *g, struct clt_tensor *x)
{
    return activation(g, x, CLT__ACT_TANH, 0.0f);
}

struct clt_tensor *clt_sigmoid(struct clt_graph *g, struct clt_tensor *x)
{
    return activation(g, x, CLT__ACT_SIGMOID, 0.0f);
}

struct clt_tensor *clt_silu(struct clt_graph *g, struct clt_tensor *x)
{
    return activation(g, x, CLT__ACT_SILU, 0.0f);
}

/* ---- dropout ----------------------------------------------------------------------------- */

static enum clt_status dropout_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__buf in = clt__val(x, t->in[0]), out = clt__val(x, t);
    if (!x->training)
        return clt__copy_forward(x->dev, clt__count(t), in, out);
    /* The node's id joins the seed so that two dropout layers draw different masks. */
    return clt__dropout_forward(x->dev, t->f[0], x->seed ^ ((uint64_t)t->id << 40), x->step,
                                clt__count(t), in, out);
}

static enum clt_status dropout_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    return clt__dropout_backward(x->dev, t->f[0], x->seed ^ ((uint64_t)t->id << 40), x->step,
                                 clt__count(t), clt__grad(x, t), clt__grad(x, t->in[0]),
                                 clt__accumulate(x, t, 0));
}

static const struct clt__op_def dropout_def = {
    .name = "dropout", .forward = dropout_forward, .backward = dropout_backward};

struct clt_tensor *clt_dropout(struct clt_graph *g, struct clt_tensor *x, float p)
{
    if (!clt__graph_ok(g, 1, &x) || !is_f32(g, x, "dropout") ||
        !require(g, p >= 0.0f && p < 1.0f, "dropout: p must be in [0, 1)"))
        return NULL;
    struct clt_tensor *t = clt__node(g, &dropout_def, 1, &x, CLT_F32, x->ndim, x->shape);
    if (t)
        t->f[0] = p;
    return t;
}

/* ---- reshape and flatten ----------------------------------------------------------------- */

static const struct clt__op_def reshape_def = {.name = "reshape", .is_view = true};

struct clt_tensor *clt_reshape(struct clt_graph *g, struct clt_tensor *x, uint32_t ndim,
                               const int64_t *shape)
{
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    int64_t n = 1;
    for (uint32_t i = 0; shape && i < ndim && i < CLT_MAX_DIMS; i++)
        n *= shape[i] > 0 ? shape[i] : 0;
    if (!require(g, shape && ndim >= 1 && ndim <= CLT_MAX_DIMS && n == clt__count(x),
                 "reshape: the new shape must hold as many elements as the old one"))
        return NULL;
    return clt__node(g, &reshape_def, 1, &x, x->dtype, ndim, shape);
}

struct clt_tensor *clt_flatten(struct clt_graph *g, struct clt_tensor *x)
{
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    int64_t shape[2] = {x->shape[0], clt__count(x) / x->shape[0]};
    return clt_reshape(g, x, 2, shape);
}
