/*
 * elementwise.c: the elementwise family: launchers of cl/elementwise.cl and of the linear
 * layer (contracts in ops/elementwise.h), then the graph ops matmul, linear, scale and
 * sum/mean (their definitions in the registry, ops/ops.h, and their public builders); add,
 * sub, mul, add_bias and mul_broadcast are in ops/broadcast.c. Launchers check their
 * arguments, set them and enqueue; nothing here allocates or waits.
 */
#include <math.h>

#include <string.h>

#include "graph.h"
#include "ops/elementwise.h"

/* Elements summed into one partial by sum_partials. A constant, not a tunable: results
 * depend on it, and must not depend on the device. */
#define SUM_CHUNK 256

/* Most buffers and most scalars after n that an elementwise() kernel takes. */
#define MAX_BUFS 3
#define MAX_SCALARS 2

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

/* Checks and runs a kernel of one work-item per element whose buffers all hold n elements.
 * Its arguments are n, `scalars`, then the buffers. */
static enum clt_status elementwise(struct clt_device *dev, enum clt__kernel_id id, int64_t n,
                                   const struct clt__karg *scalars, size_t nscalars,
                                   const struct clt__buf *bufs, const char *const *names,
                                   size_t nbufs)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    const char *kernel = clt__kernel_ids[id].kernel;
    enum clt_status st = check_size(dev, kernel, "n", n);
    for (size_t i = 0; i < nbufs && st == CLT_OK; i++)
        st = clt__check_buf(dev, bufs[i], n, sizeof(float), kernel, names[i]);
    if (st != CLT_OK)
        return st;
    struct clt__karg args[1 + MAX_SCALARS + MAX_BUFS] = {CLT__I32(n)};
    size_t k = 1;
    for (size_t i = 0; i < nscalars; i++)
        args[k++] = scalars[i];
    for (size_t i = 0; i < nbufs; i++)
        args[k++] = CLT__BUF(bufs[i]);
    return clt__enqueue(dev, id, (size_t)n, 0, args, k);
}

/* ==== Filling, copying, accumulating ==================================================== */

enum clt_status clt__fill_forward(struct clt_device *dev, int64_t n, float value, struct clt__buf y)
{
    static const char *const names[] = {"y"};
    struct clt__karg scalars[] = {CLT__F32(value)};
    return elementwise(dev, CLT__K_fill_forward, n, scalars, 1, &y, names, 1);
}

enum clt_status clt__copy_forward(struct clt_device *dev, int64_t n, struct clt__buf x,
                                  struct clt__buf y)
{
    static const char *const names[] = {"x", "y"};
    struct clt__buf bufs[] = {x, y};
    return elementwise(dev, CLT__K_copy_forward, n, NULL, 0, bufs, names, 2);
}

enum clt_status clt__copy_backward(struct clt_device *dev, int64_t n, struct clt__buf dy,
                                   struct clt__buf dx, bool accumulate)
{
    static const char *const names[] = {"dy", "dx"};
    struct clt__karg scalars[] = {CLT__I32(accumulate)};
    struct clt__buf bufs[] = {dy, dx};
    return elementwise(dev, CLT__K_copy_backward, n, scalars, 1, bufs, names, 2);
}

enum clt_status clt__axpy_forward(struct clt_device *dev, int64_t n, float alpha, struct clt__buf x,
                                  struct clt__buf y)
{
    static const char *const names[] = {"x", "y"};
    struct clt__karg scalars[] = {CLT__F32(alpha)};
    struct clt__buf bufs[] = {x, y};
    return elementwise(dev, CLT__K_axpy_forward, n, scalars, 1, bufs, names, 2);
}

/* ==== Arithmetic ======================================================================== */

enum clt_status clt__add_forward(struct clt_device *dev, int64_t n, struct clt__buf a,
                                 struct clt__buf b, struct clt__buf y)
{
    static const char *const names[] = {"a", "b", "y"};
    struct clt__buf bufs[] = {a, b, y};
    return elementwise(dev, CLT__K_add_forward, n, NULL, 0, bufs, names, 3);
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
    return elementwise(dev, CLT__K_mul_forward, n, NULL, 0, bufs, names, 3);
}

/* One launch of mul_backward per wanted gradient, each with the other factor. */
enum clt_status clt__mul_backward(struct clt_device *dev, int64_t n, struct clt__buf a,
                                  struct clt__buf b, struct clt__buf dy, struct clt__buf da,
                                  struct clt__buf db, bool accumulate)
{
    static const char *const names_a[] = {"dy", "b", "da"};
    static const char *const names_b[] = {"dy", "a", "db"};
    struct clt__karg scalars[] = {CLT__I32(accumulate)};
    enum clt_status st = CLT_OK;
    if (da.mem) {
        struct clt__buf bufs[] = {dy, b, da};
        st = elementwise(dev, CLT__K_mul_backward, n, scalars, 1, bufs, names_a, 3);
    }
    if (st == CLT_OK && db.mem) {
        struct clt__buf bufs[] = {dy, a, db};
        st = elementwise(dev, CLT__K_mul_backward, n, scalars, 1, bufs, names_b, 3);
    }
    return st;
}

enum clt_status clt__scale_forward(struct clt_device *dev, int64_t n, float alpha,
                                   struct clt__buf x, struct clt__buf y)
{
    static const char *const names[] = {"x", "y"};
    struct clt__karg scalars[] = {CLT__F32(alpha)};
    struct clt__buf bufs[] = {x, y};
    return elementwise(dev, CLT__K_scale_forward, n, scalars, 1, bufs, names, 2);
}

enum clt_status clt__scale_backward(struct clt_device *dev, int64_t n, float alpha,
                                    struct clt__buf dy, struct clt__buf dx, bool accumulate)
{
    static const char *const names[] = {"dy", "dx"};
    struct clt__karg scalars[] = {CLT__F32(alpha), CLT__I32(accumulate)};
    struct clt__buf bufs[] = {dy, dx};
    return elementwise(dev, CLT__K_scale_backward, n, scalars, 2, bufs, names, 2);
}

/* ==== Sums along an axis ================================================================ */

uint64_t clt__sum_axis_workspace_bytes(int64_t outer, int64_t count, int64_t inner)
{
    uint64_t floats = 0;
    while (count > CLT__SUM_AXIS_CHUNK) {
        count = (count + CLT__SUM_AXIS_CHUNK - 1) / CLT__SUM_AXIS_CHUNK;
        floats += (uint64_t)(outer * count * inner);
    }
    return floats * sizeof(float);
}

/* One launch of sum_axis: dst [outer, parts, inner] gets the sums of `chunk` entries each. */
static enum clt_status sum_axis_run(struct clt_device *dev, int64_t outer, int64_t count,
                                    int64_t inner, int64_t chunk, int64_t parts, float sign,
                                    float divisor, struct clt__buf src, struct clt__buf x,
                                    struct clt__buf dst, bool accumulate)
{
    /* Four columns per work-item where they come in fours (the same bits either way). */
    bool by4 = inner % 4 == 0;
    size_t items[3] = {(size_t)(by4 ? inner / 4 : inner), (size_t)parts, (size_t)outer};
    return CLT__RUN_ND(dev, by4 ? CLT__K_sum_axis4 : CLT__K_sum_axis, 3, items, CLT__I32(outer),
                       CLT__I32(count), CLT__I32(inner), CLT__I32(chunk), CLT__I32(parts),
                       CLT__I32(x.mem != NULL), CLT__F32(sign), CLT__F32(divisor),
                       CLT__I32(accumulate), CLT__BUF(src), CLT__BUF(x.mem ? x : src),
                       CLT__BUF(dst));
}

enum clt_status clt__sum_axis(struct clt_device *dev, int64_t outer, int64_t count, int64_t inner,
                              float sign, float divisor, struct clt__buf src, struct clt__buf x,
                              struct clt__buf dst, bool accumulate, struct clt__buf workspace)
{
    static const char op[] = "sum_axis";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_matrix(dev, op, outer, count);
    if (st == CLT_OK)
        st = check_matrix(dev, op, outer * count, inner);
    if (st == CLT_OK)
        st = clt__check_buf(dev, src, outer * count * inner, sizeof(float), op, "the input");
    if (st == CLT_OK && x.mem)
        st = clt__check_buf(dev, x, outer * count * inner, sizeof(float), op, "the factor");
    if (st == CLT_OK)
        st = clt__check_buf(dev, dst, outer * inner, sizeof(float), op, "the sums");
    uint64_t bytes = clt__sum_axis_workspace_bytes(outer, count, inner);
    if (st == CLT_OK && bytes > 0)
        st = clt__check_buf(dev, workspace, (int64_t)(bytes / sizeof(float)), sizeof(float), op,
                            "workspace");
    struct clt__buf part = workspace, none = {NULL, 0};
    while (st == CLT_OK && count > CLT__SUM_AXIS_CHUNK) {
        int64_t parts = (count + CLT__SUM_AXIS_CHUNK - 1) / CLT__SUM_AXIS_CHUNK;
        st = sum_axis_run(dev, outer, count, inner, CLT__SUM_AXIS_CHUNK, parts, 1.0f, 1.0f, src, x,
                          part, false);
        src = part;
        x = none;
        part.offset += (size_t)(outer * parts * inner);
        count = parts;
    }
    if (st != CLT_OK)
        return st;
    return sum_axis_run(dev, outer, count, inner, count, 1, sign, divisor, src, x, dst, accumulate);
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
    return CLT__RUN_ND(dev, CLT__K_bias_forward, 2, ((size_t[]){(size_t)cols, (size_t)rows}),
                       CLT__I32(rows), CLT__I32(cols), CLT__BUF(x), CLT__BUF(bias), CLT__BUF(y));
}

/* dx is copy_backward; dbias clt__sum_axis over the rows. */
enum clt_status clt__bias_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                   struct clt__buf dy, struct clt__buf dx, struct clt__buf dbias,
                                   bool accumulate, struct clt__buf workspace)
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
    return clt__sum_axis(dev, 1, rows, cols, 1.0f, 1.0f, dy, (struct clt__buf){NULL, 0}, dbias,
                         accumulate, workspace);
}

/* ==== Broadcast products ================================================================ */

enum clt_status clt__mul_broadcast_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                           struct clt__buf x, struct clt__buf s, struct clt__buf y)
{
    static const char op[] = "mul_broadcast_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_matrix(dev, op, rows, cols);
    if (st == CLT_OK)
        st = clt__check_buf(dev, x, rows * cols, sizeof(float), op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, s, cols, sizeof(float), op, "s");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, rows * cols, sizeof(float), op, "y");
    if (st != CLT_OK)
        return st;
    return CLT__RUN_ND(dev, CLT__K_mul_broadcast_forward, 2,
                       ((size_t[]){(size_t)cols, (size_t)rows}), CLT__I32(rows), CLT__I32(cols),
                       CLT__BUF(x), CLT__BUF(s), CLT__BUF(y));
}

enum clt_status clt__mul_broadcast_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                            struct clt__buf x, struct clt__buf s,
                                            struct clt__buf dy, struct clt__buf dx,
                                            struct clt__buf ds, uint32_t acc,
                                            struct clt__buf workspace)
{
    static const char op[] = "mul_broadcast_backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_matrix(dev, op, rows, cols);
    if (st == CLT_OK)
        st = clt__check_buf(dev, dy, rows * cols, sizeof(float), op, "dy");
    if (st == CLT_OK && dx.mem)
        st = clt__check_buf(dev, s, cols, sizeof(float), op, "s");
    if (st == CLT_OK && dx.mem)
        st = clt__check_buf(dev, dx, rows * cols, sizeof(float), op, "dx");
    if (st == CLT_OK && ds.mem)
        st = clt__check_buf(dev, x, rows * cols, sizeof(float), op, "x");
    if (st == CLT_OK && ds.mem)
        st = clt__check_buf(dev, ds, cols, sizeof(float), op, "ds");
    if (st == CLT_OK && dx.mem)
        st = CLT__RUN_ND(dev, CLT__K_mul_broadcast_backward_x, 2,
                         ((size_t[]){(size_t)cols, (size_t)rows}), CLT__I32(rows), CLT__I32(cols),
                         CLT__I32(CLT__ACC(acc, 0)), CLT__BUF(dy), CLT__BUF(s), CLT__BUF(dx));
    if (st == CLT_OK && ds.mem)
        st = clt__sum_axis(dev, 1, rows, cols, 1.0f, 1.0f, dy, x, ds, CLT__ACC(acc, 1), workspace);
    return st;
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
        st = CLT__RUN(dev, CLT__K_sum_partials, (size_t)parts, CLT__I32(count), CLT__I32(parts),
                      CLT__BUF(src), CLT__BUF(part));
        src = part;
        part.offset += (size_t)parts;
        count = parts;
    }
    if (st != CLT_OK)
        return st;
    return CLT__RUN(dev, CLT__K_sum_finish, 1, CLT__I32(count), CLT__F32(divisor), CLT__BUF(src),
                    CLT__BUF(y));
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
    return CLT__RUN_ND(dev, CLT__K_sum_backward, 2, ((size_t[]){(size_t)cols, (size_t)rows}),
                       CLT__I32(rows), CLT__I32(cols), CLT__F32(divisor), CLT__I32(accumulate),
                       CLT__BUF(dy), CLT__BUF(dx));
}

/* y[r] = (sum over c of x[r, c]) / divisor. */
static enum clt_status sum_rows(struct clt_device *dev, const char *op, int64_t rows, int64_t cols,
                                float divisor, struct clt__buf x, struct clt__buf y,
                                struct clt__buf workspace)
{
    enum clt_status st = check_matrix(dev, op, rows, cols);
    if (st != CLT_OK)
        return st;
    return clt__sum_axis(dev, rows, cols, 1, 1.0f, divisor, x, (struct clt__buf){NULL, 0}, y, false,
                         workspace);
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
                                      struct clt__buf x, struct clt__buf y,
                                      struct clt__buf workspace)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    return sum_rows(dev, "sum_rows_forward", rows, cols, 1.0f, x, y, workspace);
}

enum clt_status clt__sum_rows_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                       struct clt__buf dy, struct clt__buf dx, bool accumulate)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    return sum_broadcast(dev, "sum_rows_backward", rows, cols, 1.0f, dy, dx, accumulate);
}

enum clt_status clt__mean_rows_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                       struct clt__buf x, struct clt__buf y,
                                       struct clt__buf workspace)
{
    static const char op[] = "mean_rows_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_count(dev, op, "cols", cols);
    return st != CLT_OK ? st : sum_rows(dev, op, rows, cols, (float)cols, x, y, workspace);
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
                                     struct clt__buf dbias, bool accumulate,
                                     struct clt__buf workspace)
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

/* ---- scale ------------------------------------------------------------------------------ */

static enum clt_status scale_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    return clt__scale_forward(x->dev, clt__count(t), t->p.scale.alpha, clt__val(x, t->in[0]),
                              clt__val(x, t));
}

static enum clt_status scale_backward(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc)
{
    return clt__scale_backward(x->dev, clt__count(t), t->p.scale.alpha, clt__grad(x, t),
                               clt__grad(x, t->in[0]), CLT__ACC(acc, 0));
}

/* 2^20 elements. */
static struct clt_tensor *bench_scale(struct clt_graph *g)
{
    return clt_scale(g, CLT__BENCH_PARAM(g, "x", 1, 1 << 20), 0.5f);
}

static void scale_scalars(const struct clt__exec *x, const struct clt_tensor *t,
                          struct clt__ew_scalars *out)
{
    (void)x;
    out->f0 = t->p.scale.alpha;
}

static const struct clt__ew scale_ew = {
    .forward = "f0 * a", .backward = {"f0 * dy"}, .scalars = scale_scalars};

const struct clt__op_def clt__op_scale = {
    .forward = scale_forward, .backward = scale_backward, .bench = bench_scale, .ew = &scale_ew};

struct clt_tensor *clt_scale(struct clt_graph *g, struct clt_tensor *x, float alpha)
{
    if (!clt__graph_ok(g, 1, &x) || !clt__is_f32(g, x, "scale") ||
        !clt__require(g, isfinite(alpha), "scale: alpha must be finite"))
        return NULL;
    struct clt_tensor *t = clt__node(g, CLT__OP_scale, 1, &x, CLT_F32, x->ndim, x->shape);
    if (t)
        t->p.scale.alpha = alpha;
    return t;
}

/* ---- sum and mean ------------------------------------------------------------------------ */

static uint64_t reduce_workspace(const struct clt_tensor *t)
{
    return clt__reduce_workspace_bytes(clt__count(t->in[0]));
}

/* Partial batches: the sum or mean is over the real rows (clt__real_count), and padded rows
 * get no gradient. */
static enum clt_status sum_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t n = clt__real_count(x, t->in[0]);
    struct clt__buf in = clt__val(x, t->in[0]), out = clt__val(x, t), w = clt__workspace(x);
    return t->p.sum.mean ? clt__mean_forward(x->dev, n, in, out, w)
                         : clt__sum_forward(x->dev, n, in, out, w);
}

static enum clt_status sum_backward(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc)
{
    int64_t n = clt__real_count(x, t->in[0]);
    struct clt__buf dy = clt__grad(x, t), dx = clt__grad(x, t->in[0]);
    bool add = CLT__ACC(acc, 0);
    enum clt_status st = t->p.sum.mean ? clt__mean_backward(x->dev, n, dy, dx, add)
                                       : clt__sum_backward(x->dev, n, dy, dx, add);
    return st == CLT_OK && !add ? clt__zero_padding(x, t->in[0], dx) : st;
}

/* i[0]: 1 for the mean. */
/* 2^20 elements. */
static struct clt_tensor *bench_sum(struct clt_graph *g)
{
    return clt_sum(g, CLT__BENCH_PARAM(g, "x", 1, 1 << 20));
}

const struct clt__op_def clt__op_sum = {.forward = sum_forward,
                                        .backward = sum_backward,
                                        .workspace = reduce_workspace,
                                        .bench = bench_sum};

static struct clt_tensor *reduce(struct clt_graph *g, struct clt_tensor *x, bool mean)
{
    if (!clt__graph_ok(g, 1, &x) || !clt__is_f32(g, x, mean ? "mean" : "sum"))
        return NULL;
    struct clt_tensor *t = clt__node(g, CLT__OP_sum, 1, &x, CLT_F32, 1, (int64_t[]){1});
    if (t)
        t->p.sum.mean = mean;
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
