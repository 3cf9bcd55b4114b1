/*
 * loss.c: the loss family: launchers of cl/loss.cl (contracts in loss.h, kernel notes in
 * docs/kernels/loss.md), then the graph ops softmax (and log-softmax), cross_entropy and
 * mse: their definitions and public builders.
 *
 * Tensors of the plan (x, y, their gradients, logits, mse's x and target) are in the device's
 * storage (clt__storage_bytes per element, cl/common.cl's store_t); labels, workspaces, the loss
 * and its gradient are int and float in every storage: cross_entropy and mse are wide_output ops.
 *
 * Row kernels run one work-group per row. Their local size is the largest power of two within
 * CLT__LOSS_LANES, the kernel's CL_KERNEL_WORK_GROUP_SIZE, dev->wg_1d and the device's first
 * work-item dimension; the kernels give the same result for any local size.
 */
#include <math.h>

#include "graph.h"
#include "cl/shared.h"
#include "ops/loss.h"

/* Elements per mse_partial block (passed to the kernel; fixes the summation order). */
#define MSE_BLOCK 1024
/* Largest element count, or offset plus count, a launcher accepts: in-kernel int arithmetic
 * may step up to one block or lane stride past the end. */
#define LOSS_MAX_INDEX ((int64_t)INT32_MAX - 65536)

/* clt__check_buf with the tighter index limit of this file's kernels. */
static enum clt_status check_buf(struct clt_device *dev, const char *op, const char *name,
                                 struct clt__buf b, int64_t count, size_t esize)
{
    enum clt_status st = clt__check_buf(dev, b, count, esize, op, name);
    /* clt__check_buf has made sure offset + count < 2^31. */
    if (st == CLT_OK && (int64_t)b.offset + count > LOSS_MAX_INDEX) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "%s: %s spans %lld elements from offset %zu, beyond "
                 "the kernels' int range",
                 op, name, (long long)count, b.offset);
        st = CLT_ERR_INVALID_ARGUMENT;
    }
    return st;
}

/* Checks rows >= 0, 1 <= cols and rows * cols within the kernels' int range. */
static enum clt_status check_shape(struct clt_device *dev, const char *op, int64_t rows,
                                   int64_t cols)
{
    if (rows < 0 || cols < 1 || rows > LOSS_MAX_INDEX || cols > LOSS_MAX_INDEX ||
        (rows > 0 && cols > LOSS_MAX_INDEX / rows)) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: impossible shape [%lld, %lld]", op, (long long)rows,
                 (long long)cols);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return CLT_OK;
}

/* The local size of a row kernel: see the top of the file. */
static size_t group_size(const struct clt_device *dev, size_t kernel_wg)
{
    size_t l = CLT__LOSS_LANES; /* cl/shared.h */
    while (l > 1 && (l > kernel_wg || l > dev->wg_1d || l > dev->info.max_work_item_sizes[0]))
        l /= 2;
    return l;
}

/* Enqueues kernel `name` of cl/loss.cl as `groups` work-groups of group_size work-items. */
static enum clt_status run_groups(struct clt_device *dev, enum clt__kernel_id name, int64_t groups,
                                  const struct clt__karg *args, size_t nargs)
{
    if (groups == 0)
        return CLT_OK;
    cl_kernel k;
    size_t wg = 0;
    enum clt_status st = clt__kernel(dev, name, &k, &wg);
    if (st != CLT_OK)
        return st;
    size_t local = group_size(dev, wg);
    return clt__enqueue(dev, name, (size_t)groups * local, local, args, nargs);
}

/* ==== Softmax and log-softmax =========================================================== */

static enum clt_status rows_forward(struct clt_device *dev, const char *op,
                                    enum clt__kernel_id kernel, int64_t rows, int64_t cols,
                                    struct clt__buf x, struct clt__buf y)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_shape(dev, op, rows, cols);
    if (st == CLT_OK)
        st = check_buf(dev, op, "x", x, rows * cols, clt__storage_bytes(dev));
    if (st == CLT_OK)
        st = check_buf(dev, op, "y", y, rows * cols, clt__storage_bytes(dev));
    if (st != CLT_OK)
        return st;
    return run_groups(dev, kernel, rows,
                      CLT__KARGS(CLT__I32(rows), CLT__I32(cols), CLT__BUF(x), CLT__BUF(y)));
}

static enum clt_status rows_backward(struct clt_device *dev, const char *op,
                                     enum clt__kernel_id kernel, int64_t rows, int64_t cols,
                                     struct clt__buf y, struct clt__buf dy, struct clt__buf dx,
                                     bool accumulate)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_shape(dev, op, rows, cols);
    if (st == CLT_OK)
        st = check_buf(dev, op, "y", y, rows * cols, clt__storage_bytes(dev));
    if (st == CLT_OK)
        st = check_buf(dev, op, "dy", dy, rows * cols, clt__storage_bytes(dev));
    if (st == CLT_OK)
        st = check_buf(dev, op, "dx", dx, rows * cols, clt__storage_bytes(dev));
    if (st != CLT_OK)
        return st;
    return run_groups(dev, kernel, rows,
                      CLT__KARGS(CLT__I32(rows), CLT__I32(cols), CLT__BUF(y), CLT__BUF(dy),
                                 CLT__BUF(dx), CLT__I32(accumulate)));
}

enum clt_status clt__softmax_masked_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                            bool causal, struct clt__buf x, struct clt__buf y)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    const char *op = "softmax";
    enum clt_status st = check_shape(dev, op, rows, cols);
    if (st == CLT_OK)
        st = check_buf(dev, op, "x", x, rows * cols, clt__storage_bytes(dev));
    if (st == CLT_OK)
        st = check_buf(dev, op, "y", y, rows * cols, clt__storage_bytes(dev));
    if (st != CLT_OK)
        return st;
    return CLT__RUN(dev, CLT__K_softmax_forward, (size_t)rows, CLT__I32(rows), CLT__I32(cols),
                    CLT__I32(causal), CLT__BUF(x), CLT__BUF(y));
}

enum clt_status clt__softmax_masked_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                             bool causal, struct clt__buf y, struct clt__buf dy,
                                             struct clt__buf dx, bool accumulate)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    const char *op = "softmax backward";
    enum clt_status st = check_shape(dev, op, rows, cols);
    if (st == CLT_OK)
        st = check_buf(dev, op, "y", y, rows * cols, clt__storage_bytes(dev));
    if (st == CLT_OK)
        st = check_buf(dev, op, "dy", dy, rows * cols, clt__storage_bytes(dev));
    if (st == CLT_OK)
        st = check_buf(dev, op, "dx", dx, rows * cols, clt__storage_bytes(dev));
    if (st != CLT_OK)
        return st;
    return CLT__RUN(dev, CLT__K_softmax_backward, (size_t)rows, CLT__I32(rows), CLT__I32(cols),
                    CLT__I32(causal), CLT__BUF(y), CLT__BUF(dy), CLT__BUF(dx),
                    CLT__I32(accumulate));
}

enum clt_status clt__softmax_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                     struct clt__buf x, struct clt__buf y)
{
    return clt__softmax_masked_forward(dev, rows, cols, false, x, y);
}

enum clt_status clt__softmax_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                      struct clt__buf y, struct clt__buf dy, struct clt__buf dx,
                                      bool accumulate)
{
    return clt__softmax_masked_backward(dev, rows, cols, false, y, dy, dx, accumulate);
}

enum clt_status clt__log_softmax_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                         struct clt__buf x, struct clt__buf y)
{
    return rows_forward(dev, "log_softmax", CLT__K_log_softmax_forward, rows, cols, x, y);
}

enum clt_status clt__log_softmax_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                          struct clt__buf y, struct clt__buf dy, struct clt__buf dx,
                                          bool accumulate)
{
    return rows_backward(dev, "log_softmax backward", CLT__K_log_softmax_backward, rows, cols, y,
                         dy, dx, accumulate);
}

/* ==== Cross-entropy ===================================================================== */

size_t clt__cross_entropy_workspace_bytes(int64_t rows)
{
    return rows < 0 ? 0 : ((size_t)rows * 3 + 1) * sizeof(float);
}

/* The checks the forward and the backward share. */
static enum clt_status check_cross_entropy(struct clt_device *dev, const char *op, int64_t rows,
                                           int64_t classes, struct clt__buf logits,
                                           struct clt__buf labels, float smoothing,
                                           struct clt__buf workspace)
{
    enum clt_status st = check_shape(dev, op, rows, classes);
    if (st == CLT_OK && rows > (LOSS_MAX_INDEX - 1) / 3) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: %lld rows is too many", op, (long long)rows);
        st = CLT_ERR_INVALID_ARGUMENT;
    }
    if (st == CLT_OK && !(smoothing >= 0.0f && smoothing < 1.0f)) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: label smoothing %g is outside [0, 1)", op,
                 (double)smoothing);
        st = CLT_ERR_INVALID_ARGUMENT;
    }
    if (st == CLT_OK)
        st = check_buf(dev, op, "logits", logits, rows * classes, clt__storage_bytes(dev));
    if (st == CLT_OK)
        st = check_buf(dev, op, "labels", labels, rows, sizeof(cl_int));
    if (st == CLT_OK)
        st = check_buf(dev, op, "workspace", workspace, 3 * rows + 1, sizeof(float));
    return st;
}

enum clt_status clt__cross_entropy_forward(struct clt_device *dev, int64_t rows, int64_t classes,
                                           struct clt__buf logits, struct clt__buf labels,
                                           int32_t ignore_index, float smoothing,
                                           struct clt__buf workspace, struct clt__buf loss)
{
    const char *op = "cross_entropy";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st =
        check_cross_entropy(dev, op, rows, classes, logits, labels, smoothing, workspace);
    if (st == CLT_OK)
        st = check_buf(dev, op, "loss", loss, 1, sizeof(float));
    if (st != CLT_OK)
        return st;
    /* One work-item per row. */
    st = CLT__RUN(dev, CLT__K_cross_entropy_rows, (size_t)rows, CLT__I32(rows), CLT__I32(classes),
                  CLT__BUF(logits), CLT__BUF(labels), CLT__I32(ignore_index), CLT__F32(smoothing),
                  CLT__BUF(workspace));
    if (st != CLT_OK)
        return st;
    /* One group sums the rows in a fixed order; it runs for 0 rows too, writing loss 0. */
    return run_groups(dev, CLT__K_cross_entropy_finish, 1,
                      CLT__KARGS(CLT__I32(rows), CLT__I32(classes), CLT__BUF(labels),
                                 CLT__I32(ignore_index), CLT__BUF(workspace), CLT__BUF(loss)));
}

enum clt_status clt__cross_entropy_backward(struct clt_device *dev, int64_t rows, int64_t classes,
                                            struct clt__buf logits, struct clt__buf labels,
                                            int32_t ignore_index, float smoothing,
                                            struct clt__buf workspace, struct clt__buf dloss,
                                            struct clt__buf dlogits, bool accumulate)
{
    const char *op = "cross_entropy backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st =
        check_cross_entropy(dev, op, rows, classes, logits, labels, smoothing, workspace);
    if (st == CLT_OK)
        st = check_buf(dev, op, "dloss", dloss, 1, sizeof(float));
    if (st == CLT_OK)
        st = check_buf(dev, op, "dlogits", dlogits, rows * classes, clt__storage_bytes(dev));
    if (st != CLT_OK)
        return st;
    return CLT__RUN(dev, CLT__K_cross_entropy_backward, (size_t)rows, CLT__I32(rows),
                    CLT__I32(classes), CLT__BUF(logits), CLT__BUF(labels), CLT__I32(ignore_index),
                    CLT__F32(smoothing), CLT__BUF(workspace), CLT__BUF(dloss), CLT__BUF(dlogits),
                    CLT__I32(accumulate));
}

/* ==== Mean squared error ================================================================ */

size_t clt__mse_workspace_bytes(int64_t n)
{
    int64_t blocks = n <= 0 ? 0 : (n + MSE_BLOCK - 1) / MSE_BLOCK;
    return (size_t)blocks * sizeof(float);
}

static enum clt_status check_mse(struct clt_device *dev, const char *op, int64_t n,
                                 struct clt__buf x, struct clt__buf target)
{
    if (n < 0 || n > LOSS_MAX_INDEX) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: impossible size %lld", op, (long long)n);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    enum clt_status st = check_buf(dev, op, "x", x, n, clt__storage_bytes(dev));
    if (st == CLT_OK)
        st = check_buf(dev, op, "target", target, n, clt__storage_bytes(dev));
    return st;
}

enum clt_status clt__mse_forward(struct clt_device *dev, int64_t n, struct clt__buf x,
                                 struct clt__buf target, struct clt__buf workspace,
                                 struct clt__buf loss)
{
    const char *op = "mse";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    int64_t blocks = (int64_t)(clt__mse_workspace_bytes(n) / sizeof(float));
    enum clt_status st = check_mse(dev, op, n, x, target);
    /* With n 0 the workspace is never touched, but it must still be a buffer. */
    if (st == CLT_OK)
        st = check_buf(dev, op, "workspace", workspace, blocks, sizeof(float));
    if (st == CLT_OK)
        st = check_buf(dev, op, "loss", loss, 1, sizeof(float));
    if (st != CLT_OK)
        return st;
    st = run_groups(dev, CLT__K_mse_partial, blocks,
                    CLT__KARGS(CLT__I32(n), CLT__I32(MSE_BLOCK), CLT__BUF(x), CLT__BUF(target),
                               CLT__BUF(workspace)));
    if (st != CLT_OK)
        return st;
    return run_groups(
        dev, CLT__K_mse_finish, 1,
        CLT__KARGS(CLT__I32(n), CLT__I32(MSE_BLOCK), CLT__BUF(workspace), CLT__BUF(loss)));
}

enum clt_status clt__mse_backward(struct clt_device *dev, int64_t n, struct clt__buf x,
                                  struct clt__buf target, struct clt__buf dloss, struct clt__buf dx,
                                  bool accumulate)
{
    const char *op = "mse backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_mse(dev, op, n, x, target);
    if (st == CLT_OK)
        st = check_buf(dev, op, "dloss", dloss, 1, sizeof(float));
    if (st == CLT_OK)
        st = check_buf(dev, op, "dx", dx, n, clt__storage_bytes(dev));
    if (st != CLT_OK)
        return st;
    return CLT__RUN(dev, CLT__K_mse_backward, (size_t)n, CLT__I32(n), CLT__BUF(x), CLT__BUF(target),
                    CLT__BUF(dloss), CLT__BUF(dx), CLT__I32(accumulate));
}

/* ==== Graph ops: definitions and public builders ========================================= */

static int64_t last_dim(const struct clt_tensor *t)
{
    return t->shape[t->ndim - 1];
}
/* ---- softmax and log-softmax ------------------------------------------------------------- */

static enum clt_status softmax_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t cols = last_dim(t), rows = clt__count(t) / cols;
    struct clt__buf in = clt__val(x, t->in[0]), out = clt__val(x, t);
    return t->p.softmax.log ? clt__log_softmax_forward(x->dev, rows, cols, in, out)
                            : clt__softmax_forward(x->dev, rows, cols, in, out);
}

static enum clt_status softmax_backward(struct clt__exec *x, const struct clt_tensor *t,
                                        uint32_t acc)
{
    int64_t cols = last_dim(t), rows = clt__count(t) / cols;
    struct clt__buf y = clt__val(x, t), dy = clt__grad(x, t), dx = clt__grad(x, t->in[0]);
    bool add = CLT__ACC(acc, 0);
    return t->p.softmax.log ? clt__log_softmax_backward(x->dev, rows, cols, y, dy, dx, add)
                            : clt__softmax_backward(x->dev, rows, cols, y, dy, dx, add);
}

/* x [2048, 128]. */
static struct clt_tensor *bench_softmax(struct clt_graph *g)
{
    return clt_softmax(g, CLT__BENCH_PARAM(g, "x", 2, 2048, 128));
}

const struct clt__op_def clt__op_softmax = {
    .saves = CLT__SAVES_OUTPUT,
    .storage16 = true,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .bench = bench_softmax,
};

static struct clt_tensor *softmax(struct clt_graph *g, struct clt_tensor *x, bool log)
{
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    if (x->dtype != CLT_F32) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "softmax: x must be F32");
        return NULL;
    }
    struct clt_tensor *t = clt__node(g, CLT__OP_softmax, 1, &x, CLT_F32, x->ndim, x->shape);
    if (t)
        t->p.softmax.log = log;
    return t;
}

struct clt_tensor *clt_softmax(struct clt_graph *g, struct clt_tensor *x)
{
    return softmax(g, x, false);
}

struct clt_tensor *clt_log_softmax(struct clt_graph *g, struct clt_tensor *x)
{
    return softmax(g, x, true);
}

/* ---- cross-entropy ----------------------------------------------------------------------- */

static enum clt_status ce_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    const struct clt_tensor *logits = t->in[0];
    int64_t classes = last_dim(logits), rows = clt__count(logits) / classes;
    return clt__cross_entropy_forward(x->dev, rows, classes, clt__val(x, logits),
                                      clt__val(x, t->in[1]), t->p.cross_entropy.ignore_index,
                                      t->p.cross_entropy.label_smoothing, clt__aux(x, t, 0),
                                      clt__val(x, t));
}

static enum clt_status ce_backward(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc)
{
    const struct clt_tensor *logits = t->in[0];
    int64_t classes = last_dim(logits), rows = clt__count(logits) / classes;
    return clt__cross_entropy_backward(x->dev, rows, classes, clt__val(x, logits),
                                       clt__val(x, t->in[1]), t->p.cross_entropy.ignore_index,
                                       t->p.cross_entropy.label_smoothing, clt__aux(x, t, 0),
                                       clt__grad(x, t), clt__grad(x, logits), CLT__ACC(acc, 0));
}

/* logits [2048, 96], labels [2048]. */
static struct clt_tensor *bench_cross_entropy(struct clt_graph *g)
{
    return clt_cross_entropy(g, CLT__BENCH_PARAM(g, "logits", 2, 2048, 96),
                             clt_input(g, "labels", CLT_I32, 1, (int64_t[]){2048}), -1, 0.0f);
}

const struct clt__op_def clt__op_cross_entropy = {
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .storage16 = true,
    .wide_output = true,
    .forward = ce_forward,
    .backward = ce_backward,
    .bench = bench_cross_entropy,
};

struct clt_tensor *clt_cross_entropy(struct clt_graph *g, struct clt_tensor *logits,
                                     struct clt_tensor *labels, int32_t ignore_index,
                                     float label_smoothing)
{
    struct clt_tensor *in[2] = {logits, labels};
    if (!clt__graph_ok(g, 2, in))
        return NULL;
    int64_t rows = clt__count(logits) / last_dim(logits);
    if (logits->dtype != CLT_F32 || labels->dtype != CLT_I32 || clt__count(labels) != rows ||
        !(label_smoothing >= 0.0f && label_smoothing < 1.0f)) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "cross_entropy: needs F32 logits [..., K], I32 labels with one label "
                        "per row, and label smoothing in [0, 1)");
        return NULL;
    }
    struct clt_tensor *t = clt__node(g, CLT__OP_cross_entropy, 2, in, CLT_F32, 1, (int64_t[]){1});
    if (t) {
        t->p.cross_entropy.ignore_index = ignore_index;
        t->p.cross_entropy.label_smoothing = label_smoothing;
        t->naux = 1;
        t->aux_dtype[0] = CLT_F32;
        t->aux_count[0] = (int64_t)(clt__cross_entropy_workspace_bytes(rows) / 4);
    }
    return t;
}

/* ---- mean squared error ------------------------------------------------------------------ */

static uint64_t mse_workspace(const struct clt_tensor *t)
{
    return clt__mse_workspace_bytes(clt__count(t->in[0]));
}

/* Partial batches: the mean is over the real rows (clt__real_count); padded rows get no
 * gradient. */
static enum clt_status mse_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    return clt__mse_forward(x->dev, clt__real_count(x, t->in[0]), clt__val(x, t->in[0]),
                            clt__val(x, t->in[1]), clt__workspace(x), clt__val(x, t));
}

static enum clt_status mse_backward(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc)
{
    if (clt__grad(x, t->in[1]).mem) {
        clt__log(&x->dev->log, CLT_LOG_ERROR, "mse: the target cannot need a gradient");
        return CLT_ERR_UNSUPPORTED;
    }
    struct clt__buf dx = clt__grad(x, t->in[0]);
    enum clt_status st =
        clt__mse_backward(x->dev, clt__real_count(x, t->in[0]), clt__val(x, t->in[0]),
                          clt__val(x, t->in[1]), clt__grad(x, t), dx, CLT__ACC(acc, 0));
    return st == CLT_OK && !CLT__ACC(acc, 0) ? clt__zero_padding(x, t->in[0], dx) : st;
}

/* 2^20 elements against a target input. */
static struct clt_tensor *bench_mse(struct clt_graph *g)
{
    return clt_mse(g, CLT__BENCH_PARAM(g, "x", 1, 1 << 20),
                   clt_input(g, "target", CLT_F32, 1, (int64_t[]){1 << 20}));
}

const struct clt__op_def clt__op_mse = {
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .storage16 = true,
    .wide_output = true,
    .forward = mse_forward,
    .backward = mse_backward,
    .workspace = mse_workspace,
    .bench = bench_mse,
};

struct clt_tensor *clt_mse(struct clt_graph *g, struct clt_tensor *x, struct clt_tensor *target)
{
    struct clt_tensor *in[2] = {x, target};
    if (!clt__graph_ok(g, 2, in))
        return NULL;
    if (x->dtype != CLT_F32 || target->dtype != CLT_F32 || clt__count(x) != clt__count(target)) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "mse: x and target must be F32 with the same number of elements");
        return NULL;
    }
    return clt__node(g, CLT__OP_mse, 2, in, CLT_F32, 1, (int64_t[]){1});
}
