/*
 * elementwise.c: launchers of cl/elementwise.cl and of the linear layer (see
 * ops/elementwise.h). They check their arguments, set them and enqueue; nothing here
 * allocates or waits.
 */
#include "ops/elementwise.h"

static const char PROGRAM[] = "elementwise";

/* Elements summed into one partial by sum_partials. A constant, not a tunable: results
 * depend on it, and must not depend on the device. */
#define SUM_CHUNK 256

/* Most buffers, and most size and scalar arguments before them, one kernel of this file
 * takes (sum_backward: rows, cols, divisor, accumulate). */
#define MAX_BUFS 3
#define MAX_HEAD 4

/* ==== Argument checks =================================================================== */

static enum clt_status check_size(struct clt_device *dev, const char *op, const char *what,
                                  int64_t v)
{
    if (v >= 0 && v <= INT32_MAX)
        return CLT_OK;
    clt__log(&dev->log, CLT_LOG_ERROR, "%s: %s = %lld is outside 0..2^31-1", op, what,
             (long long)v);
    return CLT_ERR_INVALID_ARGUMENT;
}

/* rows, cols and rows * cols all fit in int. */
static enum clt_status check_matrix(struct clt_device *dev, const char *op, int64_t rows,
                                    int64_t cols)
{
    enum clt_status st = check_size(dev, op, "rows", rows);
    if (st == CLT_OK)
        st = check_size(dev, op, "cols", cols);
    if (st == CLT_OK)
        st = check_size(dev, op, "rows * cols", rows * cols);
    return st;
}

/* ==== Launching ========================================================================= */

/* Enqueues `kernel` over `items` work-items. Its arguments are `head` (sizes and scalars),
 * then each buffer as its mem and its int offset (checked before). */
static enum clt_status run(struct clt_device *dev, const char *kernel, size_t items,
                           const struct clt__arg *head, size_t nhead, const struct clt__buf *bufs,
                           size_t nbufs)
{
    struct clt__arg args[MAX_HEAD + 2 * MAX_BUFS];
    cl_int offsets[MAX_BUFS];
    size_t k = 0;
    for (size_t i = 0; i < nhead; i++)
        args[k++] = head[i];
    for (size_t i = 0; i < nbufs; i++) {
        offsets[i] = (cl_int)bufs[i].offset;
        args[k++] = CLT__ARG(bufs[i].mem);
        args[k++] = CLT__ARG(offsets[i]);
    }
    return clt__run_1d(dev, PROGRAM, kernel, items, args, k);
}

/* Checks and runs a kernel of one work-item per element whose buffers all hold n elements.
 * Its arguments are n, `scalars`, then the buffers. */
static enum clt_status elementwise(struct clt_device *dev, const char *kernel, int64_t n,
                                   const struct clt__arg *scalars, size_t nscalars,
                                   const struct clt__buf *bufs, const char *const *names,
                                   size_t nbufs)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_size(dev, kernel, "n", n);
    for (size_t i = 0; i < nbufs && st == CLT_OK; i++)
        st = clt__check_buf(dev, bufs[i], n, sizeof(float), kernel, names[i]);
    if (st != CLT_OK)
        return st;
    cl_int nn = (cl_int)n;
    struct clt__arg head[MAX_HEAD] = {CLT__ARG(nn)};
    for (size_t i = 0; i < nscalars; i++)
        head[1 + i] = scalars[i];
    return run(dev, kernel, (size_t)n, head, 1 + nscalars, bufs, nbufs);
}

/* ==== Filling, copying, accumulating ==================================================== */

enum clt_status clt__fill_forward(struct clt_device *dev, int64_t n, float value, struct clt__buf y)
{
    static const char *const names[] = {"y"};
    struct clt__arg scalars[] = {CLT__ARG(value)};
    return elementwise(dev, "fill_forward", n, scalars, 1, &y, names, 1);
}

enum clt_status clt__copy_forward(struct clt_device *dev, int64_t n, struct clt__buf x,
                                  struct clt__buf y)
{
    static const char *const names[] = {"x", "y"};
    struct clt__buf bufs[] = {x, y};
    return elementwise(dev, "copy_forward", n, NULL, 0, bufs, names, 2);
}

enum clt_status clt__copy_backward(struct clt_device *dev, int64_t n, struct clt__buf dy,
                                   struct clt__buf dx, bool accumulate)
{
    static const char *const names[] = {"dy", "dx"};
    cl_int acc = accumulate;
    struct clt__arg scalars[] = {CLT__ARG(acc)};
    struct clt__buf bufs[] = {dy, dx};
    return elementwise(dev, "copy_backward", n, scalars, 1, bufs, names, 2);
}

enum clt_status clt__axpy_forward(struct clt_device *dev, int64_t n, float alpha, struct clt__buf x,
                                  struct clt__buf y)
{
    static const char *const names[] = {"x", "y"};
    struct clt__arg scalars[] = {CLT__ARG(alpha)};
    struct clt__buf bufs[] = {x, y};
    return elementwise(dev, "axpy_forward", n, scalars, 1, bufs, names, 2);
}

/* ==== Arithmetic ======================================================================== */

enum clt_status clt__add_forward(struct clt_device *dev, int64_t n, struct clt__buf a,
                                 struct clt__buf b, struct clt__buf y)
{
    static const char *const names[] = {"a", "b", "y"};
    struct clt__buf bufs[] = {a, b, y};
    return elementwise(dev, "add_forward", n, NULL, 0, bufs, names, 3);
}

/* Both gradients of a sum are dy itself: copy_backward, once per wanted gradient. */
enum clt_status clt__add_backward(struct clt_device *dev, int64_t n, struct clt__buf dy,
                                  struct clt__buf da, struct clt__buf db, bool accumulate)
{
    enum clt_status st = CLT_OK;
    if (da.mem)
        st = clt__copy_backward(dev, n, dy, da, accumulate);
    if (st == CLT_OK && db.mem)
        st = clt__copy_backward(dev, n, dy, db, accumulate);
    return st;
}

enum clt_status clt__mul_forward(struct clt_device *dev, int64_t n, struct clt__buf a,
                                 struct clt__buf b, struct clt__buf y)
{
    static const char *const names[] = {"a", "b", "y"};
    struct clt__buf bufs[] = {a, b, y};
    return elementwise(dev, "mul_forward", n, NULL, 0, bufs, names, 3);
}

/* One launch of mul_backward per wanted gradient, each with the other factor. */
enum clt_status clt__mul_backward(struct clt_device *dev, int64_t n, struct clt__buf a,
                                  struct clt__buf b, struct clt__buf dy, struct clt__buf da,
                                  struct clt__buf db, bool accumulate)
{
    static const char *const names_a[] = {"dy", "b", "da"};
    static const char *const names_b[] = {"dy", "a", "db"};
    cl_int acc = accumulate;
    struct clt__arg scalars[] = {CLT__ARG(acc)};
    enum clt_status st = CLT_OK;
    if (da.mem) {
        struct clt__buf bufs[] = {dy, b, da};
        st = elementwise(dev, "mul_backward", n, scalars, 1, bufs, names_a, 3);
    }
    if (st == CLT_OK && db.mem) {
        struct clt__buf bufs[] = {dy, a, db};
        st = elementwise(dev, "mul_backward", n, scalars, 1, bufs, names_b, 3);
    }
    return st;
}

enum clt_status clt__scale_forward(struct clt_device *dev, int64_t n, float alpha,
                                   struct clt__buf x, struct clt__buf y)
{
    static const char *const names[] = {"x", "y"};
    struct clt__arg scalars[] = {CLT__ARG(alpha)};
    struct clt__buf bufs[] = {x, y};
    return elementwise(dev, "scale_forward", n, scalars, 1, bufs, names, 2);
}

enum clt_status clt__scale_backward(struct clt_device *dev, int64_t n, float alpha,
                                    struct clt__buf dy, struct clt__buf dx, bool accumulate)
{
    static const char *const names[] = {"dy", "dx"};
    cl_int acc = accumulate;
    struct clt__arg scalars[] = {CLT__ARG(alpha), CLT__ARG(acc)};
    struct clt__buf bufs[] = {dy, dx};
    return elementwise(dev, "scale_backward", n, scalars, 2, bufs, names, 2);
}

/* ==== Bias ============================================================================== */

enum clt_status clt__bias_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                  struct clt__buf x, struct clt__buf bias, struct clt__buf y)
{
    static const char op[] = "bias_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_matrix(dev, op, rows, cols);
    if (st == CLT_OK)
        st = clt__check_buf(dev, x, rows * cols, sizeof(float), op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, bias, cols, sizeof(float), op, "bias");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, rows * cols, sizeof(float), op, "y");
    if (st != CLT_OK)
        return st;
    cl_int r = (cl_int)rows, c = (cl_int)cols;
    struct clt__arg head[] = {CLT__ARG(r), CLT__ARG(c)};
    struct clt__buf bufs[] = {x, bias, y};
    return run(dev, op, (size_t)(rows * cols), head, 2, bufs, 3);
}

/* dx is copy_backward; dbias one work-item per column. */
enum clt_status clt__bias_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                   struct clt__buf dy, struct clt__buf dx, struct clt__buf dbias,
                                   bool accumulate)
{
    static const char op[] = "bias_backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_matrix(dev, op, rows, cols);
    if (st == CLT_OK)
        st = clt__check_buf(dev, dy, rows * cols, sizeof(float), op, "dy");
    if (st == CLT_OK && dbias.mem)
        st = clt__check_buf(dev, dbias, cols, sizeof(float), op, "dbias");
    if (st == CLT_OK && dx.mem)
        st = clt__copy_backward(dev, rows * cols, dy, dx, accumulate);
    if (st != CLT_OK || !dbias.mem)
        return st;
    cl_int r = (cl_int)rows, c = (cl_int)cols, acc = accumulate;
    struct clt__arg head[] = {CLT__ARG(r), CLT__ARG(c), CLT__ARG(acc)};
    struct clt__buf bufs[] = {dy, dbias};
    return run(dev, op, (size_t)cols, head, 3, bufs, 2);
}

/* ==== Sums and means ==================================================================== */

uint64_t clt__reduce_workspace_bytes(int64_t n)
{
    uint64_t elements = 0;
    while (n > SUM_CHUNK) {
        n = (n + SUM_CHUNK - 1) / SUM_CHUNK;
        elements += (uint64_t)n;
    }
    return elements * sizeof(float);
}

/* The sum of n elements divided by `divisor`. Each round of sum_partials shrinks the count
 * by SUM_CHUNK into the next stretch of the workspace, until sum_finish can add what is
 * left in one work-item. The rounds depend only on n. */
static enum clt_status sum_all(struct clt_device *dev, const char *op, int64_t n, float divisor,
                               struct clt__buf x, struct clt__buf y, struct clt__buf workspace)
{
    uint64_t bytes = clt__reduce_workspace_bytes(n);
    enum clt_status st = check_size(dev, op, "n", n);
    if (st == CLT_OK)
        st = clt__check_buf(dev, x, n, sizeof(float), op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, 1, sizeof(float), op, "y");
    if (st == CLT_OK && bytes > 0)
        st = clt__check_buf(dev, workspace, (int64_t)(bytes / sizeof(float)), sizeof(float), op,
                            "workspace");
    struct clt__buf src = x, part = workspace;
    int64_t count = n;
    while (st == CLT_OK && count > SUM_CHUNK) {
        int64_t parts = (count + SUM_CHUNK - 1) / SUM_CHUNK;
        cl_int c = (cl_int)count, p = (cl_int)parts;
        struct clt__arg head[] = {CLT__ARG(c), CLT__ARG(p)};
        struct clt__buf bufs[] = {src, part};
        st = run(dev, "sum_partials", (size_t)parts, head, 2, bufs, 2);
        src = part;
        part.offset += (size_t)parts;
        count = parts;
    }
    if (st != CLT_OK)
        return st;
    cl_int c = (cl_int)count;
    struct clt__arg head[] = {CLT__ARG(c), CLT__ARG(divisor)};
    struct clt__buf bufs[] = {src, y};
    return run(dev, "sum_finish", 1, head, 2, bufs, 2);
}

/* dx[r, c] (+)= dy[r] / divisor. */
static enum clt_status sum_broadcast(struct clt_device *dev, const char *op, int64_t rows,
                                     int64_t cols, float divisor, struct clt__buf dy,
                                     struct clt__buf dx, bool accumulate)
{
    enum clt_status st = check_matrix(dev, op, rows, cols);
    if (st == CLT_OK)
        st = clt__check_buf(dev, dy, rows, sizeof(float), op, "dy");
    if (st == CLT_OK)
        st = clt__check_buf(dev, dx, rows * cols, sizeof(float), op, "dx");
    if (st != CLT_OK)
        return st;
    cl_int r = (cl_int)rows, c = (cl_int)cols, acc = accumulate;
    struct clt__arg head[] = {CLT__ARG(r), CLT__ARG(c), CLT__ARG(divisor), CLT__ARG(acc)};
    struct clt__buf bufs[] = {dy, dx};
    return run(dev, "sum_backward", (size_t)(rows * cols), head, 4, bufs, 2);
}

/* y[r] = (sum over c of x[r, c]) / divisor. */
static enum clt_status sum_rows(struct clt_device *dev, const char *op, int64_t rows, int64_t cols,
                                float divisor, struct clt__buf x, struct clt__buf y)
{
    enum clt_status st = check_matrix(dev, op, rows, cols);
    if (st == CLT_OK)
        st = clt__check_buf(dev, x, rows * cols, sizeof(float), op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, rows, sizeof(float), op, "y");
    if (st != CLT_OK)
        return st;
    cl_int r = (cl_int)rows, c = (cl_int)cols;
    struct clt__arg head[] = {CLT__ARG(r), CLT__ARG(c), CLT__ARG(divisor)};
    struct clt__buf bufs[] = {x, y};
    return run(dev, "sum_rows_forward", (size_t)rows, head, 3, bufs, 2);
}

/* Means divide by the count, which must then be at least 1. */
static enum clt_status check_count(struct clt_device *dev, const char *op, const char *what,
                                   int64_t v)
{
    if (v >= 1)
        return CLT_OK;
    clt__log(&dev->log, CLT_LOG_ERROR, "%s: the mean of %s = %lld elements", op, what,
             (long long)v);
    return CLT_ERR_INVALID_ARGUMENT;
}

enum clt_status clt__sum_forward(struct clt_device *dev, int64_t n, struct clt__buf x,
                                 struct clt__buf y, struct clt__buf workspace)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    return sum_all(dev, "sum_forward", n, 1.0f, x, y, workspace);
}

enum clt_status clt__sum_backward(struct clt_device *dev, int64_t n, struct clt__buf dy,
                                  struct clt__buf dx, bool accumulate)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    return sum_broadcast(dev, "sum_backward", 1, n, 1.0f, dy, dx, accumulate);
}

enum clt_status clt__mean_forward(struct clt_device *dev, int64_t n, struct clt__buf x,
                                  struct clt__buf y, struct clt__buf workspace)
{
    static const char op[] = "mean_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_count(dev, op, "n", n);
    return st != CLT_OK ? st : sum_all(dev, op, n, (float)n, x, y, workspace);
}

enum clt_status clt__mean_backward(struct clt_device *dev, int64_t n, struct clt__buf dy,
                                   struct clt__buf dx, bool accumulate)
{
    static const char op[] = "mean_backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_count(dev, op, "n", n);
    return st != CLT_OK ? st : sum_broadcast(dev, op, 1, n, (float)n, dy, dx, accumulate);
}

enum clt_status clt__sum_rows_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                      struct clt__buf x, struct clt__buf y)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    return sum_rows(dev, "sum_rows_forward", rows, cols, 1.0f, x, y);
}

enum clt_status clt__sum_rows_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                       struct clt__buf dy, struct clt__buf dx, bool accumulate)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    return sum_broadcast(dev, "sum_rows_backward", rows, cols, 1.0f, dy, dx, accumulate);
}

enum clt_status clt__mean_rows_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                       struct clt__buf x, struct clt__buf y)
{
    static const char op[] = "mean_rows_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_count(dev, op, "cols", cols);
    return st != CLT_OK ? st : sum_rows(dev, op, rows, cols, (float)cols, x, y);
}

enum clt_status clt__mean_rows_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                        struct clt__buf dy, struct clt__buf dx, bool accumulate)
{
    static const char op[] = "mean_rows_backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_count(dev, op, "cols", cols);
    return st != CLT_OK ? st : sum_broadcast(dev, op, rows, cols, (float)cols, dy, dx, accumulate);
}

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
    enum clt_status st = check_matrix(dev, op, n, in);
    if (st == CLT_OK)
        st = check_matrix(dev, op, n, out);
    if (st == CLT_OK)
        st = check_matrix(dev, op, out, in);
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
        st = clt__check_buf(dev, x, n * in, sizeof(float), op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, weight, out * in, sizeof(float), op, "weight");
    if (st == CLT_OK && bias.mem)
        st = clt__check_buf(dev, bias, out, sizeof(float), op, "bias");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, n * out, sizeof(float), op, "y");
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
                                     struct clt__buf dbias, bool accumulate)
{
    static const char op[] = "linear_backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_linear(dev, op, n, in, out);
    if (st == CLT_OK)
        st = clt__check_buf(dev, dy, n * out, sizeof(float), op, "dy");
    if (st == CLT_OK && dx.mem)
        st = clt__check_buf(dev, weight, out * in, sizeof(float), op, "weight");
    if (st == CLT_OK && dx.mem)
        st = clt__check_buf(dev, dx, n * in, sizeof(float), op, "dx");
    if (st == CLT_OK && dweight.mem)
        st = clt__check_buf(dev, x, n * in, sizeof(float), op, "x");
    if (st == CLT_OK && dweight.mem)
        st = clt__check_buf(dev, dweight, out * in, sizeof(float), op, "dweight");
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
        st = clt__bias_backward(dev, n, out, dy, (struct clt__buf){NULL, 0}, dbias, accumulate);
    return st;
}
