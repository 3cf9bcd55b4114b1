/*
 * norm.c: the norm family: launchers of batch norm and layer norm (cl/norm.cl; contracts
 * in norm.h), then the graph ops batch_norm and layer_norm: definitions and public builders.
 *
 * The per-channel and per-column reductions run over chunks of a size fixed by the shape
 * alone (batch norm: BN_SEG and BN_VALUES below; layer norm: LN_ROW_CHUNK rows of one
 * column), combined in chunk order by a second launch: the chunk sizes below are part of the
 * numerics (every device gets the same sums), not tunables.
 */
#include <math.h>

#include "graph.h"
#include "ops/norm.h"
#include "ops/pool.h"

/* The chunks of one channel summarized by one work-item of batchnorm_stats and
 * batchnorm_backward_partial: a segment of at most BN_SEG positions of a plane (all of it up
 * to that size) times max(1, BN_VALUES / segment) consecutive rows, so that a small plane
 * gets several rows and each work-item reads unit-stride runs. */
#define BN_SEG 4096
#define BN_VALUES 256
/* Rows summed by one work-item of layernorm_param_partial. */
#define LN_ROW_CHUNK 32

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A tensor argument of a launcher: `count` elements from the buffer's offset, of the
 * storage (a plan tensor's value or gradient: store_t in cl/norm.cl, clt__storage_bytes) or
 * float (aux statistics, running statistics: 4 bytes whatever the storage). */
struct tensor {
    const char *what;
    struct clt__buf b;
    int64_t count;
    bool may_be_null; /* an optional tensor: no buffer means "not wanted" */
    bool is_float;    /* float whatever the storage */
};

static struct tensor required(const char *what, struct clt__buf b, int64_t count)
{
    return (struct tensor){what, b, count, false, false};
}

static struct tensor optional(const char *what, struct clt__buf b, int64_t count)
{
    return (struct tensor){what, b, count, true, false};
}

static struct tensor required_f32(const char *what, struct clt__buf b, int64_t count)
{
    return (struct tensor){what, b, count, false, true};
}

static struct tensor optional_f32(const char *what, struct clt__buf b, int64_t count)
{
    return (struct tensor){what, b, count, true, true};
}

/* Checks the tensors in order with clt__check_buf; optional ones without a buffer pass. */
static enum clt_status check_tensors(struct clt_device *dev, const char *op, const struct tensor *t,
                                     size_t n)
{
    enum clt_status st = CLT_OK;
    for (size_t i = 0; i < n && st == CLT_OK; i++)
        if (t[i].b.mem || !t[i].may_be_null)
            st = clt__check_buf(dev, t[i].b, t[i].count,
                                t[i].is_float ? sizeof(float) : clt__storage_bytes(dev), op,
                                t[i].what);
    return st;
}

/* Checks sizes >= 1 whose product fits the kernels' int indices. */
static enum clt_status check_shape(struct clt_device *dev, const char *op, int64_t a, int64_t b,
                                   int64_t c)
{
    if (a < 1 || b < 1 || c < 1 || a > INT32_MAX || b > INT32_MAX || c > INT32_MAX ||
        a * b > INT32_MAX || a * b * c > INT32_MAX) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: impossible shape [%lld, %lld, %lld]", op,
                 (long long)a, (long long)b, (long long)c);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return CLT_OK;
}

static enum clt_status check_eps(struct clt_device *dev, const char *op, float eps)
{
    if (!(eps >= 0.0f) || eps > 1e30f) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: eps = %g is not a finite value >= 0", op,
                 (double)eps);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return CLT_OK;
}

/* ==== Batch norm ======================================================================== */

/* The NDRange of the elementwise batch norm kernels: (lane, ch, b), one work-item per lane of
 * a row of s positions (clt__row_lanes; a compound literal: it lives to the end of the
 * launcher's block). */
#define BN_ROWS(dev, n, c, s)                                                                      \
    ((const size_t[3]){clt__row_lanes((dev), (s)), (size_t)(c), (size_t)(n)})

/* The chunking of a channel of n rows of s positions (cl/norm.cl). */
struct bn_chunks {
    cl_int seg, nseg, rows, nchunks;
};

static struct bn_chunks bn_chunks(int64_t n, int64_t s)
{
    struct bn_chunks k;
    k.seg = (cl_int)(s < BN_SEG ? s : BN_SEG);
    k.nseg = (cl_int)((s + k.seg - 1) / k.seg);
    k.rows = BN_VALUES / k.seg > 1 ? BN_VALUES / k.seg : 1;
    k.nchunks = (cl_int)((n + k.rows - 1) / k.rows);
    return k;
}

/* Workspace floats: the chunk partials [2, c, nchunks, nseg], then the backward's means
 * [2, c]. */
static int64_t bn_workspace_floats(int64_t n, int64_t c, int64_t s)
{
    const struct bn_chunks k = bn_chunks(n, s);
    return 2 * c * k.nchunks * k.nseg + 2 * c;
}

size_t clt__batchnorm_workspace_bytes(int64_t n, int64_t c, int64_t s)
{
    if (n < 1 || c < 1 || s < 1 || n > INT32_MAX || c > INT32_MAX || s > INT32_MAX ||
        n * s > INT32_MAX || n * s * c > INT32_MAX)
        return 0;
    return (size_t)bn_workspace_floats(n, c, s) * sizeof(float);
}

enum clt_status clt__batchnorm_forward(struct clt_device *dev, int64_t n, int64_t c, int64_t s,
                                       struct clt__buf x, struct clt__buf gamma,
                                       struct clt__buf beta, float eps, float momentum,
                                       struct clt__buf running_mean, struct clt__buf running_var,
                                       struct clt__buf y, struct clt__buf mean,
                                       struct clt__buf inv_std, struct clt__buf workspace)
{
    const char *op = "batchnorm_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_shape(dev, op, n, c, s);
    int64_t count = n * c * s;
    if (st == CLT_OK)
        st = check_eps(dev, op, eps);
    if (st == CLT_OK && !(momentum >= 0.0f && momentum <= 1.0f)) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: momentum = %g is outside [0, 1]", op,
                 (double)momentum);
        st = CLT_ERR_INVALID_ARGUMENT;
    }
    if (st == CLT_OK && (running_mean.mem == NULL) != (running_var.mem == NULL)) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "%s: running_mean and running_var must both be given or both be NULL", op);
        st = CLT_ERR_INVALID_ARGUMENT;
    }
    if (st == CLT_OK && running_mean.mem && n * s == 1) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "%s: one value per channel (n * s == 1) has no unbiased variance to update "
                 "running_var with",
                 op);
        st = CLT_ERR_INVALID_ARGUMENT;
    }
    if (st == CLT_OK) {
        const struct tensor t[] = {
            required("x", x, count),
            required("gamma", gamma, c),
            required("beta", beta, c),
            optional_f32("running_mean", running_mean, c),
            optional_f32("running_var", running_var, c),
            required("y", y, count),
            required_f32("mean", mean, c),
            required_f32("inv_std", inv_std, c),
            required_f32("workspace", workspace, bn_workspace_floats(n, c, s)),
        };
        st = check_tensors(dev, op, t, COUNT(t));
    }
    if (st != CLT_OK)
        return st;

    cl_int ni = (cl_int)n, ci = (cl_int)c, si = (cl_int)s, stat_is_var = 0;
    const struct bn_chunks k = bn_chunks(n, s);
    const size_t parts[3] = {(size_t)k.nseg, (size_t)c, (size_t)k.nchunks};

    st = CLT__RUN_ND(dev, CLT__K_batchnorm_stats, 3, parts, CLT__I32(ni), CLT__I32(ci),
                     CLT__I32(si), CLT__I32(k.rows), CLT__I32(k.nchunks), CLT__I32(k.seg),
                     CLT__I32(k.nseg), CLT__BUF(x), CLT__BUF(workspace));
    if (st != CLT_OK)
        return st;

    st = CLT__RUN(dev, CLT__K_batchnorm_stats_combine, (size_t)c, CLT__I32(ni), CLT__I32(ci),
                  CLT__I32(si), CLT__I32(k.rows), CLT__I32(k.nchunks), CLT__I32(k.seg),
                  CLT__I32(k.nseg), CLT__F32(eps), CLT__F32(momentum), CLT__BUF(x),
                  CLT__BUF(workspace), CLT__BUF(mean), CLT__BUF(inv_std), CLT__BUF(running_mean),
                  CLT__BUF(running_var));
    if (st != CLT_OK)
        return st;

    return CLT__RUN_ND(dev, CLT__K_batchnorm_forward, 3, BN_ROWS(dev, n, c, s), CLT__I32(ni),
                       CLT__I32(ci), CLT__I32(si), CLT__F32(eps), CLT__I32(stat_is_var),
                       CLT__BUF(x), CLT__BUF(mean), CLT__BUF(inv_std), CLT__BUF(gamma),
                       CLT__BUF(beta), CLT__BUF(y));
}

enum clt_status clt__batchnorm_forward_inference(struct clt_device *dev, int64_t n, int64_t c,
                                                 int64_t s, struct clt__buf x,
                                                 struct clt__buf gamma, struct clt__buf beta,
                                                 struct clt__buf running_mean,
                                                 struct clt__buf running_var, float eps,
                                                 struct clt__buf y)
{
    const char *op = "batchnorm_forward_inference";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_shape(dev, op, n, c, s);
    int64_t count = n * c * s;
    if (st == CLT_OK)
        st = check_eps(dev, op, eps);
    if (st == CLT_OK) {
        const struct tensor t[] = {
            required("x", x, count),
            required("gamma", gamma, c),
            required("beta", beta, c),
            required_f32("running_mean", running_mean, c),
            required_f32("running_var", running_var, c),
            required("y", y, count),
        };
        st = check_tensors(dev, op, t, COUNT(t));
    }
    if (st != CLT_OK)
        return st;

    cl_int ni = (cl_int)n, ci = (cl_int)c, si = (cl_int)s, stat_is_var = 1;
    return CLT__RUN_ND(dev, CLT__K_batchnorm_forward, 3, BN_ROWS(dev, n, c, s), CLT__I32(ni),
                       CLT__I32(ci), CLT__I32(si), CLT__F32(eps), CLT__I32(stat_is_var),
                       CLT__BUF(x), CLT__BUF(running_mean), CLT__BUF(running_var), CLT__BUF(gamma),
                       CLT__BUF(beta), CLT__BUF(y));
}

enum clt_status clt__batchnorm_backward(struct clt_device *dev, int64_t n, int64_t c, int64_t s,
                                        struct clt__buf x, struct clt__buf dy,
                                        struct clt__buf gamma, struct clt__buf mean,
                                        struct clt__buf inv_std, struct clt__buf dx,
                                        struct clt__buf dgamma, struct clt__buf dbeta,
                                        uint32_t acc_mask, struct clt__buf workspace)
{
    const char *op = "batchnorm_backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_shape(dev, op, n, c, s);
    int64_t count = n * c * s;
    if (st == CLT_OK) {
        const struct tensor t[] = {
            required("x", x, count),
            required("dy", dy, count),
            required("gamma", gamma, c),
            required_f32("mean", mean, c),
            required_f32("inv_std", inv_std, c),
            optional("dx", dx, count),
            optional("dgamma", dgamma, c),
            optional("dbeta", dbeta, c),
        };
        st = check_tensors(dev, op, t, COUNT(t));
    }
    if (st != CLT_OK || (!dx.mem && !dgamma.mem && !dbeta.mem))
        return st;
    st = clt__check_buf(dev, workspace, bn_workspace_floats(n, c, s), sizeof(float), op,
                        "workspace");
    if (st != CLT_OK)
        return st;

    cl_int ni = (cl_int)n, ci = (cl_int)c, si = (cl_int)s;
    cl_int acc = (cl_int)(acc_mask & CLT__NORM_ACC_ALL),
           acc_dx = (acc_mask & CLT__NORM_ACC_DX) != 0;
    const struct bn_chunks k = bn_chunks(n, s);
    const size_t parts[3] = {(size_t)k.nseg, (size_t)c, (size_t)k.nchunks};
    /* The means [2, c] follow the partials [2, c, nchunks, nseg] in the workspace. */
    struct clt__buf means = {workspace.mem,
                             workspace.offset + 2 * (size_t)c * (size_t)k.nchunks * (size_t)k.nseg};

    st = CLT__RUN_ND(dev, CLT__K_batchnorm_backward_partial, 3, parts, CLT__I32(ni), CLT__I32(ci),
                     CLT__I32(si), CLT__I32(k.rows), CLT__I32(k.nchunks), CLT__I32(k.seg),
                     CLT__I32(k.nseg), CLT__BUF(x), CLT__BUF(dy), CLT__BUF(mean),
                     CLT__BUF(workspace));
    if (st != CLT_OK)
        return st;

    st = CLT__RUN(dev, CLT__K_batchnorm_backward_combine, (size_t)c, CLT__I32(ni), CLT__I32(ci),
                  CLT__I32(si), CLT__I32(k.nchunks), CLT__I32(k.nseg), CLT__I32(acc),
                  CLT__BUF(workspace), CLT__BUF(inv_std), CLT__BUF(means), CLT__BUF(dgamma),
                  CLT__BUF(dbeta));
    if (st != CLT_OK || !dx.mem)
        return st;

    return CLT__RUN_ND(dev, CLT__K_batchnorm_backward, 3, BN_ROWS(dev, n, c, s), CLT__I32(ni),
                       CLT__I32(ci), CLT__I32(si), CLT__I32(acc_dx), CLT__BUF(x), CLT__BUF(dy),
                       CLT__BUF(gamma), CLT__BUF(mean), CLT__BUF(inv_std), CLT__BUF(means),
                       CLT__BUF(dx));
}

enum clt_status clt__batchnorm_backward_inference(struct clt_device *dev, int64_t n, int64_t c,
                                                  int64_t s, struct clt__buf dy,
                                                  struct clt__buf gamma,
                                                  struct clt__buf running_var, float eps,
                                                  struct clt__buf dx, bool accumulate)
{
    const char *op = "batchnorm_backward_inference";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_shape(dev, op, n, c, s);
    int64_t count = n * c * s;
    if (st == CLT_OK)
        st = check_eps(dev, op, eps);
    if (st == CLT_OK) {
        const struct tensor t[] = {
            required("dy", dy, count),
            required("gamma", gamma, c),
            required_f32("running_var", running_var, c),
            optional("dx", dx, count),
        };
        st = check_tensors(dev, op, t, COUNT(t));
    }
    if (st != CLT_OK || !dx.mem)
        return st;

    cl_int ni = (cl_int)n, ci = (cl_int)c, si = (cl_int)s, acc = accumulate;
    return CLT__RUN_ND(dev, CLT__K_batchnorm_backward_inference, 3, BN_ROWS(dev, n, c, s),
                       CLT__I32(ni), CLT__I32(ci), CLT__I32(si), CLT__F32(eps), CLT__I32(acc),
                       CLT__BUF(dy), CLT__BUF(gamma), CLT__BUF(running_var), CLT__BUF(dx));
}

/* ==== Layer norm ======================================================================== */

static int64_t ln_chunks(int64_t rows)
{
    return (rows + LN_ROW_CHUNK - 1) / LN_ROW_CHUNK;
}

size_t clt__layernorm_workspace_bytes(int64_t rows, int64_t d)
{
    if (rows < 1 || d < 1 || rows > INT32_MAX || d > INT32_MAX || rows * d > INT32_MAX)
        return 0;
    /* The chunk partials [2, nchunks, d]. */
    return (size_t)(2 * ln_chunks(rows) * d) * sizeof(float);
}

enum clt_status clt__layernorm_forward(struct clt_device *dev, int64_t rows, int64_t d,
                                       struct clt__buf x, struct clt__buf gamma,
                                       struct clt__buf beta, float eps, struct clt__buf y,
                                       struct clt__buf mean, struct clt__buf rstd)
{
    const char *op = "layernorm_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_shape(dev, op, rows, d, 1);
    int64_t count = rows * d;
    if (st == CLT_OK)
        st = check_eps(dev, op, eps);
    if (st == CLT_OK) {
        const struct tensor t[] = {
            required("x", x, count),          required("gamma", gamma, d),
            required("beta", beta, d),        required("y", y, count),
            required_f32("mean", mean, rows), required_f32("rstd", rstd, rows),
        };
        st = check_tensors(dev, op, t, COUNT(t));
    }
    if (st != CLT_OK)
        return st;

    cl_int ri = (cl_int)rows, di = (cl_int)d;
    return CLT__RUN(dev, CLT__K_layernorm_forward, (size_t)rows, CLT__I32(ri), CLT__I32(di),
                    CLT__F32(eps), CLT__BUF(x), CLT__BUF(gamma), CLT__BUF(beta), CLT__BUF(y),
                    CLT__BUF(mean), CLT__BUF(rstd));
}

enum clt_status clt__layernorm_backward(struct clt_device *dev, int64_t rows, int64_t d,
                                        struct clt__buf x, struct clt__buf dy,
                                        struct clt__buf gamma, struct clt__buf mean,
                                        struct clt__buf rstd, struct clt__buf dx,
                                        struct clt__buf dgamma, struct clt__buf dbeta,
                                        uint32_t acc_mask, struct clt__buf workspace)
{
    const char *op = "layernorm_backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_shape(dev, op, rows, d, 1);
    int64_t count = rows * d;
    if (st == CLT_OK) {
        const struct tensor t[] = {
            required("x", x, count),          required("dy", dy, count),
            required("gamma", gamma, d),      required_f32("mean", mean, rows),
            required_f32("rstd", rstd, rows), optional("dx", dx, count),
            optional("dgamma", dgamma, d),    optional("dbeta", dbeta, d),
        };
        st = check_tensors(dev, op, t, COUNT(t));
    }
    /* The parameter gradients' partial sums. */
    if (st == CLT_OK && (dgamma.mem || dbeta.mem))
        st =
            clt__check_buf(dev, workspace, 2 * ln_chunks(rows) * d, sizeof(float), op, "workspace");
    if (st != CLT_OK)
        return st;

    cl_int ri = (cl_int)rows, di = (cl_int)d;
    cl_int acc = (cl_int)(acc_mask & CLT__NORM_ACC_ALL),
           acc_dx = (acc_mask & CLT__NORM_ACC_DX) != 0;
    cl_int chunk = LN_ROW_CHUNK, nchunks = (cl_int)ln_chunks(rows);

    if (dx.mem) {
        st = CLT__RUN(dev, CLT__K_layernorm_backward, (size_t)rows, CLT__I32(ri), CLT__I32(di),
                      CLT__I32(acc_dx), CLT__BUF(x), CLT__BUF(dy), CLT__BUF(gamma), CLT__BUF(mean),
                      CLT__BUF(rstd), CLT__BUF(dx));
        if (st != CLT_OK)
            return st;
    }
    if (!dgamma.mem && !dbeta.mem)
        return CLT_OK;

    /* One work-item per chunk and eight columns (cl/norm.cl). */
    st = CLT__RUN(dev, CLT__K_layernorm_param_partial, (size_t)nchunks * (size_t)((d + 7) / 8),
                  CLT__I32(ri), CLT__I32(di), CLT__I32(chunk), CLT__I32(nchunks), CLT__BUF(x),
                  CLT__BUF(dy), CLT__BUF(mean), CLT__BUF(rstd), CLT__BUF(workspace));
    if (st != CLT_OK)
        return st;

    return CLT__RUN(dev, CLT__K_layernorm_param_combine, (size_t)d, CLT__I32(di), CLT__I32(nchunks),
                    CLT__I32(acc), CLT__BUF(workspace), CLT__BUF(dgamma), CLT__BUF(dbeta));
}

/* ==== Graph ops: definitions and public builders ========================================= */

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
                                                t->p.norm.eps, out);
    /* Partial batches: the real rows are the first ones ([n, c, s] is batch-major); the
     * statistics and running averages are theirs, and padded rows of y are zero. */
    int64_t rows = clt__real_count(x, t) / (c * s);
    enum clt_status st = clt__batchnorm_forward(
        x->dev, rows, c, s, in, gamma, beta, t->p.norm.eps, t->p.norm.momentum, rmean, rvar, out,
        clt__aux(x, t, 0), clt__aux(x, t, 1), clt__workspace(x));
    return st == CLT_OK ? clt__zero_padding(x, t, out) : st;
}

static enum clt_status bn_backward(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc)
{
    int64_t n, c, s;
    bn_dims(t, &n, &c, &s);
    /* One call: the statistics pass serves all three gradients. Partial batches: sums over
     * the real rows only, and no gradient into the padded ones. */
    int64_t rows = x->training ? clt__real_count(x, t) / (c * s) : n;
    struct clt__buf dx = clt__grad(x, t->in[0]);
    enum clt_status st = clt__batchnorm_backward(
        x->dev, rows, c, s, clt__val(x, t->in[0]), clt__grad(x, t), clt__val(x, t->in[1]),
        clt__aux(x, t, 0), clt__aux(x, t, 1), dx, clt__grad(x, t->in[1]), clt__grad(x, t->in[2]),
        acc & CLT__NORM_ACC_ALL, clt__workspace(x));
    bool dx_added = (acc & CLT__NORM_ACC_DX) != 0;
    return st == CLT_OK && !dx_added ? clt__zero_padding(x, t, dx) : st;
}

/* Training mode over x [32, 32, 28, 28]. */
static struct clt_tensor *bench_batch_norm(struct clt_graph *g)
{
    return clt_batch_norm(g, CLT__BENCH_PARAM(g, "x", 4, 32, 32, 28, 28), 1e-5f, 0.1f, "bn");
}

const struct clt__op_def clt__op_batch_norm = {
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = bn_forward,
    .backward = bn_backward,
    .workspace = bn_workspace,
    .bench = bench_batch_norm,
    .storage16 = true,
};

struct clt_tensor *clt_batch_norm(struct clt_graph *g, struct clt_tensor *x, float eps,
                                  float momentum, const char *name)
{
    return clt_batch_norm_ex(g, x, eps, momentum, name, NULL);
}

struct clt_tensor *clt_batch_norm_ex(struct clt_graph *g, struct clt_tensor *x, float eps,
                                     float momentum, const char *name,
                                     const struct clt_layer_params *use)
{
    const struct clt_layer_params none = {0};
    if (!use)
        use = &none;
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    if (x->ndim < 2 || x->dtype != CLT_F32 || !(eps >= 0.0f) || !isfinite(eps) ||
        !(momentum >= 0.0f && momentum <= 1.0f)) {
        clt__require(g, false,
                     "batch_norm: needs F32 x [N, C, ...], eps >= 0 and momentum in [0, 1]");
        return NULL;
    }
    int64_t c = x->shape[1];
    struct clt_init one = {CLT_INIT_CONSTANT, 1.0f, 0.0f}, zero = {CLT_INIT_ZEROS, 0, 0};
    const char *parts[4] = {"weight", "bias", "running_mean", "running_var"};
    struct clt_tensor *given[4] = {use->weight, use->bias, use->running_mean, use->running_var};
    struct clt_init inits[4] = {one, zero, zero, one};
    struct clt_tensor *in[5] = {x};
    for (int i = 0; i < 4; i++) {
        in[i + 1] =
            clt__layer_param(g, "batch_norm", name, parts[i], given[i], i >= 2, 1, &c, inits[i]);
        if (!in[i + 1])
            return NULL;
    }
    clt_param_set_kind(in[1], CLT_PARAM_NORM);
    clt_param_set_kind(in[2], CLT_PARAM_NORM);
    struct clt_tensor *t = clt__node(g, CLT__OP_batch_norm, 5, in, CLT_F32, x->ndim, x->shape);
    if (t) {
        t->p.norm.eps = eps;
        t->p.norm.momentum = momentum;
        t->naux = 2;
        t->aux_dtype[0] = t->aux_dtype[1] = CLT_F32;
        t->aux_count[0] = t->aux_count[1] = c;
    }
    return t;
}

/* ---- layer norm -------------------------------------------------------------------------- */

static void ln_dims(const struct clt_tensor *t, int64_t *rows, int64_t *d)
{
    *d = t->shape[t->ndim - 1];
    *rows = clt__count(t) / *d;
}

static uint64_t ln_workspace(const struct clt_tensor *t)
{
    int64_t rows, d;
    ln_dims(t, &rows, &d);
    return clt__layernorm_workspace_bytes(rows, d);
}

static enum clt_status ln_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t rows, d;
    ln_dims(t, &rows, &d);
    return clt__layernorm_forward(x->dev, rows, d, clt__val(x, t->in[0]), clt__val(x, t->in[1]),
                                  clt__val(x, t->in[2]), t->p.norm.eps, clt__val(x, t),
                                  clt__aux(x, t, 0), clt__aux(x, t, 1));
}

static enum clt_status ln_backward(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc)
{
    int64_t rows, d;
    ln_dims(t, &rows, &d);
    /* One call: the parameter pass serves both parameter gradients. */
    return clt__layernorm_backward(
        x->dev, rows, d, clt__val(x, t->in[0]), clt__grad(x, t), clt__val(x, t->in[1]),
        clt__aux(x, t, 0), clt__aux(x, t, 1), clt__grad(x, t->in[0]), clt__grad(x, t->in[1]),
        clt__grad(x, t->in[2]), acc & CLT__NORM_ACC_ALL, clt__workspace(x));
}

/* x [2048, 128]. */
static struct clt_tensor *bench_layer_norm(struct clt_graph *g)
{
    return clt_layer_norm(g, CLT__BENCH_PARAM(g, "x", 2, 2048, 128), 1e-5f, "ln");
}

const struct clt__op_def clt__op_layer_norm = {
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = ln_forward,
    .backward = ln_backward,
    .workspace = ln_workspace,
    .bench = bench_layer_norm,
    .storage16 = true,
};

struct clt_tensor *clt_layer_norm(struct clt_graph *g, struct clt_tensor *x, float eps,
                                  const char *name)
{
    return clt_layer_norm_ex(g, x, eps, name, NULL);
}

struct clt_tensor *clt_layer_norm_ex(struct clt_graph *g, struct clt_tensor *x, float eps,
                                     const char *name, const struct clt_layer_params *use)
{
    const struct clt_layer_params none = {0};
    if (!use)
        use = &none;
    if (!clt__graph_ok(g, 1, &x) ||
        !clt__layer_params_only(g, "layer_norm", name, use, true, false))
        return NULL;
    if (x->dtype != CLT_F32 || !(eps >= 0.0f) || !isfinite(eps)) {
        clt__require(g, false, "layer_norm: needs F32 x and a finite eps >= 0");
        return NULL;
    }
    int64_t d = x->shape[x->ndim - 1];
    struct clt_tensor *w = clt__layer_param(g, "layer_norm", name, "weight", use->weight, false, 1,
                                            &d, (struct clt_init){CLT_INIT_CONSTANT, 1.0f, 0.0f});
    struct clt_tensor *b = w ? clt__layer_param(g, "layer_norm", name, "bias", use->bias, false, 1,
                                                &d, (struct clt_init){CLT_INIT_ZEROS, 0, 0})
                             : NULL;
    clt_param_set_kind(w, CLT_PARAM_NORM);
    clt_param_set_kind(b, CLT_PARAM_NORM);
    struct clt_tensor *in[3] = {x, w, b};
    struct clt_tensor *t =
        w && b ? clt__node(g, CLT__OP_layer_norm, 3, in, CLT_F32, x->ndim, x->shape) : NULL;
    if (t) {
        t->p.norm.eps = eps;
        t->naux = 2;
        t->aux_dtype[0] = t->aux_dtype[1] = CLT_F32;
        t->aux_count[0] = t->aux_count[1] = clt__count(x) / d;
    }
    return t;
}
