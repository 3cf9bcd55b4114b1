/*
 * linear.c: the GEMM-backed ops of the elementwise family: the linear layer's launchers
 * (contracts in ops/elementwise.h: y = x W^T + b and its gradients, through clt__gemm, the
 * bias kernels and clt__sum_axis), then the graph ops matmul and linear (their definitions in
 * the registry, ops/ops.h, and their public builders). Launchers check their arguments and
 * enqueue; nothing here allocates or waits. Tensors are in the device's storage
 * (clt__storage_bytes): clt__gemm follows it for the products.
 */
#include <string.h>

#include "graph.h"
#include "ops/elementwise.h"

/* ==== Linear layer ====================================================================== */

/* n, in and out are each at least 1, and every matrix they make fits int indexing. */
static enum clt_status check_linear(struct clt_device *dev, const char *op, int64_t n, int64_t in,
                                    int64_t out)
{
    if (n < 1 || in < 1 || out < 1) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "%s: n = %lld, in = %lld, out = %lld; each must "
                 "be at least 1",
                 op, (long long)n, (long long)in, (long long)out);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    enum clt_status st = clt__check_matrix(dev, op, n, in);
    if (st == CLT_OK)
        st = clt__check_matrix(dev, op, n, out);
    if (st == CLT_OK)
        st = clt__check_matrix(dev, op, out, in);
    return st;
}

/* Enqueues a GEMM with tight leading dimensions. */
static enum clt_status gemm(struct clt_device *dev, struct clt_gemm_shape shape, struct clt__buf a,
                            struct clt__buf b, struct clt__buf c)
{
    return clt__gemm(dev, &shape, a, b, c);
}

enum clt_status clt__linear_forward(struct clt_device *dev, int64_t n, int64_t in, int64_t out,
                                    struct clt__buf x, struct clt__buf weight, struct clt__buf bias,
                                    struct clt__buf y)
{
    static const char op[] = "linear_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_linear(dev, op, n, in, out);
    if (st == CLT_OK)
        st = clt__check_buf(dev, x, n * in, clt__storage_bytes(dev), op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, weight, out * in, clt__storage_bytes(dev), op, "weight");
    if (st == CLT_OK && bias.mem)
        st = clt__check_buf(dev, bias, out, clt__storage_bytes(dev), op, "bias");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, n * out, clt__storage_bytes(dev), op, "y");
    /* y [n, out] = x [n, in] * weight^T, weight stored [out, in]. */
    struct clt_gemm_shape g = {.m = n, .n = out, .k = in, .trans_b = true, .alpha = 1.0f};
    if (st == CLT_OK)
        st = gemm(dev, g, x, weight, y);
    if (st == CLT_OK && bias.mem)
        st = clt__bias_forward(dev, n, out, y, bias, y);
    return st;
}

enum clt_status clt__linear_backward(struct clt_device *dev, int64_t n, int64_t in, int64_t out,
                                     struct clt__buf x, struct clt__buf weight, struct clt__buf dy,
                                     struct clt__buf dx, struct clt__buf dweight,
                                     struct clt__buf dbias, bool accumulate,
                                     struct clt__buf workspace)
{
    static const char op[] = "linear_backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_linear(dev, op, n, in, out);
    if (st == CLT_OK)
        st = clt__check_buf(dev, dy, n * out, clt__storage_bytes(dev), op, "dy");
    if (st == CLT_OK && dx.mem)
        st = clt__check_buf(dev, weight, out * in, clt__storage_bytes(dev), op, "weight");
    if (st == CLT_OK && dx.mem)
        st = clt__check_buf(dev, dx, n * in, clt__storage_bytes(dev), op, "dx");
    if (st == CLT_OK && dweight.mem)
        st = clt__check_buf(dev, x, n * in, clt__storage_bytes(dev), op, "x");
    if (st == CLT_OK && dweight.mem)
        st = clt__check_buf(dev, dweight, out * in, clt__storage_bytes(dev), op, "dweight");
    const float beta = accumulate ? 1.0f : 0.0f;
    /* dx [n, in] = dy [n, out] * weight [out, in]. */
    struct clt_gemm_shape gx = {.m = n, .n = in, .k = out, .alpha = 1.0f, .beta = beta};
    if (st == CLT_OK && dx.mem)
        st = gemm(dev, gx, dy, weight, dx);
    /* dweight [out, in] = dy^T * x, dy stored [n, out]. */
    struct clt_gemm_shape gw = {
        .m = out, .n = in, .k = n, .trans_a = true, .alpha = 1.0f, .beta = beta};
    if (st == CLT_OK && dweight.mem)
        st = gemm(dev, gw, dy, x, dweight);
    if (st == CLT_OK && dbias.mem)
        st = clt__bias_backward(dev, n, out, dy, (struct clt__buf){NULL, 0}, dbias, accumulate,
                                workspace);
    return st;
}

/* ==== Graph ops: definitions and public builders ========================================= */

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
    *k = t->p.matmul.trans_a ? a->shape[d - 2] : a->shape[d - 1];
}

/* Enqueues C = op(A) op(B) (+ C when accumulate) for batch items with tight strides. */
static enum clt_status matmul_gemm(struct clt__exec *x, bool ta, bool tb, int64_t m, int64_t n,
                                   int64_t k, int64_t batch, struct clt__buf a, struct clt__buf b,
                                   struct clt__buf c, bool accumulate)
{
    struct clt_gemm_shape g = {.trans_a = ta,
                               .trans_b = tb,
                               .m = m,
                               .n = n,
                               .k = k,
                               .alpha = 1.0f,
                               .beta = accumulate ? 1.0f : 0.0f,
                               .batch = batch};
    return clt__gemm(x->dev, &g, a, b, c);
}

static enum clt_status matmul_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t m, n, k, batch;
    matmul_dims(t, &m, &n, &k, &batch);
    return matmul_gemm(x, t->p.matmul.trans_a, t->p.matmul.trans_b, m, n, k, batch,
                       clt__val(x, t->in[0]), clt__val(x, t->in[1]), clt__val(x, t), false);
}

static enum clt_status matmul_backward(struct clt__exec *x, const struct clt_tensor *t,
                                       uint32_t acc)
{
    int64_t m, n, k, batch;
    matmul_dims(t, &m, &n, &k, &batch);
    bool ta = t->p.matmul.trans_a, tb = t->p.matmul.trans_b;
    struct clt__buf a = clt__val(x, t->in[0]), b = clt__val(x, t->in[1]);
    struct clt__buf dc = clt__grad(x, t);
    struct clt__buf da = clt__grad(x, t->in[0]), db = clt__grad(x, t->in[1]);
    enum clt_status st = CLT_OK;
    /* dA = dC op(B)^T, or its transpose when A is stored transposed. */
    if (da.mem)
        st = ta ? matmul_gemm(x, tb, true, k, m, n, batch, b, dc, da, CLT__ACC(acc, 0))
                : matmul_gemm(x, false, !tb, m, k, n, batch, dc, b, da, CLT__ACC(acc, 0));
    /* dB = op(A)^T dC, or its transpose when B is stored transposed. */
    if (st == CLT_OK && db.mem)
        st = tb ? matmul_gemm(x, true, ta, n, k, m, batch, dc, a, db, CLT__ACC(acc, 1))
                : matmul_gemm(x, !ta, false, k, n, m, batch, a, dc, db, CLT__ACC(acc, 1));
    return st;
}

/* x [128, 784] times w [784, 128]. */
static struct clt_tensor *bench_matmul(struct clt_graph *g)
{
    return clt_matmul(g, CLT__BENCH_PARAM(g, "a", 2, 128, 784),
                      CLT__BENCH_PARAM(g, "b", 2, 784, 128), false, false);
}

const struct clt__op_def clt__op_matmul = {
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = matmul_forward,
    .backward = matmul_backward,
    .bench = bench_matmul,
    .storage16 = true,
};

struct clt_tensor *clt_matmul(struct clt_graph *g, struct clt_tensor *a, struct clt_tensor *b,
                              bool trans_a, bool trans_b)
{
    struct clt_tensor *in[2] = {a, b};
    if (!clt__graph_ok(g, 2, in) || !clt__is_f32(g, a, "matmul") || !clt__is_f32(g, b, "matmul"))
        return NULL;
    uint32_t d = a->ndim;
    if (!clt__require(g,
                      (d == 2 || d == 3) && b->ndim == d && (d == 2 || a->shape[0] == b->shape[0]),
                      "matmul: a and b must both be 2-D, or both 3-D with the same batch"))
        return NULL;
    int64_t m = trans_a ? a->shape[d - 1] : a->shape[d - 2];
    int64_t k = trans_a ? a->shape[d - 2] : a->shape[d - 1];
    int64_t kb = trans_b ? b->shape[d - 1] : b->shape[d - 2];
    int64_t n = trans_b ? b->shape[d - 2] : b->shape[d - 1];
    if (!clt__require(g, k == kb, "matmul: inner dimensions differ"))
        return NULL;
    int64_t shape[3] = {a->shape[0], m, n};
    struct clt_tensor *t =
        clt__node(g, CLT__OP_matmul, 2, in, CLT_F32, d, d == 3 ? shape : shape + 1);
    if (t) {
        t->p.matmul.trans_a = trans_a;
        t->p.matmul.trans_b = trans_b;
    }
    return t;
}

/* ---- linear ------------------------------------------------------------------------------ */

/* Inputs: x [..., in], weight [out, in], optional bias [out]. */
static enum clt_status linear_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    const struct clt_tensor *w = t->in[1];
    struct clt__buf bias =
        t->nin > 2 && !clt__bias_fused(x, t) ? clt__val(x, t->in[2]) : (struct clt__buf){NULL, 0};
    return clt__linear_forward(x->dev, clt__rows(t), w->shape[1], w->shape[0],
                               clt__val(x, t->in[0]), clt__val(x, w), bias, clt__val(x, t));
}

static enum clt_status linear_backward(struct clt__exec *x, const struct clt_tensor *t,
                                       uint32_t acc)
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
        st = clt__linear_backward(x->dev, clt__rows(t), w->shape[1], w->shape[0], xv, wv, dy,
                                  i == 0 ? d[0] : none, i == 1 ? d[1] : none, i == 2 ? d[2] : none,
                                  CLT__ACC(acc, i), clt__workspace(x));
    }
    return st;
}

/* x [128, 784] -> [128, 128], with bias. */
static struct clt_tensor *bench_linear(struct clt_graph *g)
{
    return clt_linear(g, CLT__BENCH_PARAM(g, "x", 2, 128, 784), 128, true, "fc");
}

/* The bias gradient's partial column sums. */
static uint64_t linear_workspace(const struct clt_tensor *t)
{
    return t->nin > 2 ? clt__sum_axis_workspace_bytes(1, clt__rows(t), t->in[1]->shape[0]) : 0;
}

const struct clt__op_def clt__op_linear = {
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = linear_forward,
    .backward = linear_backward,
    .workspace = linear_workspace,
    .bench = bench_linear,
    .bias_input = 2,
    .storage16 = true,
};

struct clt_tensor *clt_linear(struct clt_graph *g, struct clt_tensor *x, int64_t out_features,
                              bool bias, const char *name)
{
    return clt_linear_ex(g, x, out_features, bias, name, NULL);
}

struct clt_tensor *clt_linear_ex(struct clt_graph *g, struct clt_tensor *x, int64_t out_features,
                                 bool bias, const char *name, const struct clt_layer_params *use)
{
    const struct clt_layer_params none = {0};
    if (!use)
        use = &none;
    if (!clt__graph_ok(g, 1, &x) || !clt__is_f32(g, x, "linear") ||
        !clt__layer_params_only(g, "linear", name, use, bias, false))
        return NULL;
    int64_t in = x->shape[x->ndim - 1];
    struct clt_tensor *w =
        clt__layer_param(g, "linear", name, "weight", use->weight, false, 2,
                         (int64_t[]){out_features, in}, clt__init_torch_weight());
    struct clt_tensor *b =
        bias && w ? clt__layer_param(g, "linear", name, "bias", use->bias, false, 1,
                                     (int64_t[]){out_features}, clt__init_torch_bias(in))
                  : NULL;
    if (!w || (bias && !b))
        return NULL;
    clt_param_set_kind(b, CLT_PARAM_BIAS);
    struct clt_tensor *ins[3] = {x, w, b};
    int64_t shape[CLT_MAX_DIMS];
    memcpy(shape, x->shape, x->ndim * sizeof *shape);
    shape[x->ndim - 1] = out_features;
    return clt__node(g, CLT__OP_linear, bias ? 3 : 2, ins, CLT_F32, x->ndim, shape);
}
