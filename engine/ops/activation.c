/*
 * activation.c: the activation family: launchers of cl/activation.cl (contracts in
 * ops/activation.h), then the graph ops activation (relu, leaky_relu, gelu, tanh, sigmoid,
 * silu) and dropout: their definitions and public builders. Tensors are in the device's
 * storage (clt__storage_bytes).
 */
#include <math.h>

#include "graph.h"
#include "ops/activation.h"
#include "ops/elementwise.h"

const char *clt__act_name(enum clt__act act)
{
    switch (act) {
    case CLT__ACT_RELU:
        return "relu";
    case CLT__ACT_LEAKY_RELU:
        return "leaky_relu";
    case CLT__ACT_GELU_TANH:
        return "gelu_tanh";
    case CLT__ACT_GELU_ERF:
        return "gelu_erf";
    case CLT__ACT_TANH:
        return "tanh";
    case CLT__ACT_SIGMOID:
        return "sigmoid";
    case CLT__ACT_SILU:
        return "silu";
    }
    return "?";
}

/* The check every launcher makes on n (dev is not NULL). */
static enum clt_status check_n(struct clt_device *dev, const char *op, int64_t n)
{
    if (n >= 0 && n <= INT32_MAX)
        return CLT_OK;
    clt__log(&dev->log, CLT_LOG_ERROR, "%s: n = %lld is outside 0..2^31-1", op, (long long)n);
    return CLT_ERR_INVALID_ARGUMENT;
}

/* The scalar arguments of an activation launcher: n, then the activation and its slope. */
static enum clt_status check_act(struct clt_device *dev, const char *op, int64_t n,
                                 enum clt__act act, float slope)
{
    enum clt_status st = check_n(dev, op, n);
    if (st != CLT_OK)
        return st;
    if ((int)act < 0 || (int)act >= CLT__ACT_COUNT) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: unknown activation %d", op, (int)act);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if (!isfinite(slope)) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: slope %g is not finite", op, (double)slope);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return CLT_OK;
}

/* The kernels of each activation, in enum clt__act order (cl/activation.cl). */
static const enum clt__kernel_id act_forward_ids[CLT__ACT_COUNT] = {
    CLT__K_activation_relu_forward,      CLT__K_activation_leaky_relu_forward,
    CLT__K_activation_gelu_tanh_forward, CLT__K_activation_gelu_erf_forward,
    CLT__K_activation_tanh_forward,      CLT__K_activation_sigmoid_forward,
    CLT__K_activation_silu_forward};
static const enum clt__kernel_id act_backward_ids[CLT__ACT_COUNT] = {
    CLT__K_activation_relu_backward,      CLT__K_activation_leaky_relu_backward,
    CLT__K_activation_gelu_tanh_backward, CLT__K_activation_gelu_erf_backward,
    CLT__K_activation_tanh_backward,      CLT__K_activation_sigmoid_backward,
    CLT__K_activation_silu_backward};
static const enum clt__kernel_id act_forward_rows_ids[CLT__ACT_COUNT] = {
    CLT__K_activation_relu_forward_rows,      CLT__K_activation_leaky_relu_forward_rows,
    CLT__K_activation_gelu_tanh_forward_rows, CLT__K_activation_gelu_erf_forward_rows,
    CLT__K_activation_tanh_forward_rows,      CLT__K_activation_sigmoid_forward_rows,
    CLT__K_activation_silu_forward_rows};
static const enum clt__kernel_id act_backward_rows_ids[CLT__ACT_COUNT] = {
    CLT__K_activation_relu_backward_rows,      CLT__K_activation_leaky_relu_backward_rows,
    CLT__K_activation_gelu_tanh_backward_rows, CLT__K_activation_gelu_erf_backward_rows,
    CLT__K_activation_tanh_backward_rows,      CLT__K_activation_sigmoid_backward_rows,
    CLT__K_activation_silu_backward_rows};

/* Elements per row of the _rows kernels (cl/activation.cl). */
#define ACT_ROW 32

/* b advanced by k elements (offsets count elements of the kernel's type). */
static struct clt__buf advanced(struct clt__buf b, int64_t k)
{
    b.offset += (size_t)k;
    return b;
}

enum clt_status clt__activation_forward(struct clt_device *dev, enum clt__act act, float slope,
                                        int64_t n, struct clt__buf x, struct clt__buf y)
{
    const char *op = "activation_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_act(dev, op, n, act, slope);
    if (st == CLT_OK)
        st = clt__check_buf(dev, x, n, clt__storage_bytes(dev), op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, n, clt__storage_bytes(dev), op, "y");
    if (st != CLT_OK)
        return st;
    /* Whole 32-element rows through the _rows kernel, the rest one element a work-item. */
    const int64_t rows = n / ACT_ROW, done = rows * ACT_ROW;
    if (rows > 0) {
        const size_t global[2] = {ACT_ROW, (size_t)rows};
        st = CLT__RUN_ND(dev, act_forward_rows_ids[act], 2, global, CLT__I32(rows), CLT__F32(slope),
                         CLT__BUF(x), CLT__BUF(y));
    }
    if (st != CLT_OK || done == n)
        return st;
    return CLT__RUN(dev, act_forward_ids[act], (size_t)(n - done), CLT__I32(n - done),
                    CLT__F32(slope), CLT__BUF(advanced(x, done)), CLT__BUF(advanced(y, done)));
}

enum clt_status clt__activation_backward(struct clt_device *dev, enum clt__act act, float slope,
                                         int64_t n, struct clt__buf x, struct clt__buf dy,
                                         struct clt__buf dx, bool accumulate)
{
    const char *op = "activation_backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_act(dev, op, n, act, slope);
    if (st == CLT_OK)
        st = clt__check_buf(dev, x, n, clt__storage_bytes(dev), op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, dy, n, clt__storage_bytes(dev), op, "dy");
    if (st == CLT_OK)
        st = clt__check_buf(dev, dx, n, clt__storage_bytes(dev), op, "dx");
    if (st != CLT_OK)
        return st;
    const int64_t rows = n / ACT_ROW, done = rows * ACT_ROW;
    if (rows > 0) {
        const size_t global[2] = {ACT_ROW, (size_t)rows};
        st =
            CLT__RUN_ND(dev, act_backward_rows_ids[act], 2, global, CLT__I32(rows), CLT__F32(slope),
                        CLT__I32(accumulate), CLT__BUF(x), CLT__BUF(dy), CLT__BUF(dx));
    }
    if (st != CLT_OK || done == n)
        return st;
    return CLT__RUN(dev, act_backward_ids[act], (size_t)(n - done), CLT__I32(n - done),
                    CLT__F32(slope), CLT__I32(accumulate), CLT__BUF(advanced(x, done)),
                    CLT__BUF(advanced(dy, done)), CLT__BUF(advanced(dx, done)));
}

/* ---- dropout ------------------------------------------------------------------------- */

float clt__dropout_scale(float p)
{
    return 1.0f / (1.0f - p);
}

/* The scalar arguments of a dropout launcher: n, then p. */
static enum clt_status check_p(struct clt_device *dev, const char *op, int64_t n, float p)
{
    enum clt_status st = check_n(dev, op, n);
    if (st != CLT_OK || (p >= 0.0f && p < 1.0f))
        return st;
    clt__log(&dev->log, CLT_LOG_ERROR, "%s: p = %g is outside [0, 1)", op, (double)p);
    return CLT_ERR_INVALID_ARGUMENT;
}

/* Arguments 0..6 of both dropout kernels: n, p, scale and the Philox key and step words. */
#define DROPOUT_HEAD(n, p, seed, step)                                                             \
    CLT__I32(n), CLT__F32(p), CLT__F32(clt__dropout_scale(p)), CLT__U32(seed),                     \
        CLT__U32((seed) >> 32), CLT__U32(step), CLT__U32((step) >> 32)

/* One work-item per Philox block of 4 elements. */
static size_t dropout_blocks(int64_t n)
{
    return (size_t)(n + 3) / 4;
}

enum clt_status clt__dropout_forward(struct clt_device *dev, float p, uint64_t seed, uint64_t step,
                                     int64_t n, struct clt__buf x, struct clt__buf y)
{
    const char *op = "dropout_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_p(dev, op, n, p);
    if (st == CLT_OK)
        st = clt__check_buf(dev, x, n, clt__storage_bytes(dev), op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, n, clt__storage_bytes(dev), op, "y");
    if (st != CLT_OK)
        return st;
    return CLT__RUN(dev, CLT__K_dropout_forward, dropout_blocks(n), DROPOUT_HEAD(n, p, seed, step),
                    CLT__BUF(x), CLT__BUF(y));
}

enum clt_status clt__dropout_backward(struct clt_device *dev, float p, uint64_t seed, uint64_t step,
                                      int64_t n, struct clt__buf dy, struct clt__buf dx,
                                      bool accumulate)
{
    const char *op = "dropout_backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_p(dev, op, n, p);
    if (st == CLT_OK)
        st = clt__check_buf(dev, dy, n, clt__storage_bytes(dev), op, "dy");
    if (st == CLT_OK)
        st = clt__check_buf(dev, dx, n, clt__storage_bytes(dev), op, "dx");
    if (st != CLT_OK)
        return st;
    return CLT__RUN(dev, CLT__K_dropout_backward, dropout_blocks(n), DROPOUT_HEAD(n, p, seed, step),
                    CLT__I32(accumulate), CLT__BUF(dy), CLT__BUF(dx));
}

/* ==== Graph ops: definitions and public builders ========================================= */

/* ---- activations ------------------------------------------------------------------------- */

static enum clt_status act_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    return clt__activation_forward(x->dev, t->p.activation.act, t->p.activation.slope,
                                   clt__count(t), clt__val(x, t->in[0]), clt__val(x, t));
}

static enum clt_status act_backward(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc)
{
    return clt__activation_backward(x->dev, t->p.activation.act, t->p.activation.slope,
                                    clt__count(t), clt__val(x, t->in[0]), clt__grad(x, t),
                                    clt__grad(x, t->in[0]), CLT__ACC(acc, 0));
}

/* GELU (tanh) of 2^20 elements. */
static struct clt_tensor *bench_activation(struct clt_graph *g)
{
    return clt_gelu(g, CLT__BENCH_PARAM(g, "x", 1, 1 << 20), true);
}

static void act_scalars(const struct clt__exec *x, const struct clt_tensor *t,
                        struct clt__ew_scalars *out)
{
    (void)x;
    out->u0 = (uint32_t)t->p.activation.act;
    out->f0 = t->p.activation.slope;
}

/* activation_forward and activation_backward of cl/activation.cl. */
static const struct clt__ew act_ew = {
    .forward = "act_eval((int)u0, f0, a).x",
    .backward = {"dy * act_eval((int)u0, f0, a).y"},
    .reads = CLT__EW_A,
    .scalars = act_scalars,
    .fixed_scalars = true,
};

const struct clt__op_def clt__op_activation = {
    .saves = CLT__SAVES_INPUT(0),
    .recomputable = true,
    .forward = act_forward,
    .backward = act_backward,
    .bench = bench_activation,
    .ew = &act_ew,
    .storage16 = true,
};

static struct clt_tensor *activation(struct clt_graph *g, struct clt_tensor *x, enum clt__act act,
                                     float slope)
{
    if (!clt__graph_ok(g, 1, &x) || !clt__is_f32(g, x, clt__act_name(act)))
        return NULL;
    struct clt_tensor *t = clt__node(g, CLT__OP_activation, 1, &x, CLT_F32, x->ndim, x->shape);
    if (t) {
        t->p.activation.act = act;
        t->p.activation.slope = slope;
    }
    return t;
}

struct clt_tensor *clt_relu(struct clt_graph *g, struct clt_tensor *x)
{
    return activation(g, x, CLT__ACT_RELU, 0.0f);
}

struct clt_tensor *clt_leaky_relu(struct clt_graph *g, struct clt_tensor *x, float negative_slope)
{
    if (g && !clt__require(g, isfinite(negative_slope), "leaky_relu: the slope must be finite"))
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

/* The Philox key of a dropout node: the node's id joins the seed so that two dropout layers
 * draw different masks. */
static uint64_t dropout_key(const struct clt__exec *x, const struct clt_tensor *t)
{
    return x->seed ^ ((uint64_t)t->id << 40);
}

static enum clt_status dropout_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__buf in = clt__val(x, t->in[0]), out = clt__val(x, t);
    if (!x->training)
        return clt__copy_forward(x->dev, clt__count(t), in, out);
    return clt__dropout_forward(x->dev, t->p.dropout.p, dropout_key(x, t), x->step, clt__count(t),
                                in, out);
}

static enum clt_status dropout_backward(struct clt__exec *x, const struct clt_tensor *t,
                                        uint32_t acc)
{
    return clt__dropout_backward(x->dev, t->p.dropout.p, dropout_key(x, t), x->step, clt__count(t),
                                 clt__grad(x, t), clt__grad(x, t->in[0]), CLT__ACC(acc, 0));
}

/* The key in u0, u1; p and the scale in f0, f1 (0 and 1 in evaluation: every element kept). */
static void dropout_scalars(const struct clt__exec *x, const struct clt_tensor *t,
                            struct clt__ew_scalars *out)
{
    uint64_t key = dropout_key(x, t);
    out->u0 = (uint32_t)key;
    out->u1 = (uint32_t)(key >> 32);
    out->f0 = x->training ? t->p.dropout.p : 0.0f;
    out->f1 = x->training ? clt__dropout_scale(t->p.dropout.p) : 1.0f;
}

/* dropout_forward and dropout_backward: the same draw per element (dropout_keep). */
static const struct clt__ew dropout_ew = {
    .forward = "dropout_keep((uint2)(u0, u1), step, f0, e) ? a * f1 : 0.0f",
    .backward = {"dropout_keep((uint2)(u0, u1), step, f0, e) ? dy * f1 : 0.0f"},
    .scalars = dropout_scalars,
};

/* p 0.1 over 2^20 elements. */
static struct clt_tensor *bench_dropout(struct clt_graph *g)
{
    return clt_dropout(g, CLT__BENCH_PARAM(g, "x", 1, 1 << 20), 0.1f);
}

const struct clt__op_def clt__op_dropout = {.forward = dropout_forward,
                                            .backward = dropout_backward,
                                            .bench = bench_dropout,
                                            .ew = &dropout_ew,
                                            .storage16 = true};

struct clt_tensor *clt_dropout(struct clt_graph *g, struct clt_tensor *x, float p)
{
    if (!clt__graph_ok(g, 1, &x) || !clt__is_f32(g, x, "dropout") ||
        !clt__require(g, p >= 0.0f && p < 1.0f, "dropout: p must be in [0, 1)"))
        return NULL;
    struct clt_tensor *t = clt__node(g, CLT__OP_dropout, 1, &x, CLT_F32, x->ndim, x->shape);
    if (t)
        t->p.dropout.p = p;
    return t;
}
