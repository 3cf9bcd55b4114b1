/*
 * elementwise.c: the elementwise family: launchers of cl/elementwise.cl (contracts in
 * ops/elementwise.h), then the graph ops scale and sum/mean (their definitions in the
 * registry, ops/ops.h, and their public builders); add, sub, mul, add_bias and mul_broadcast
 * are in ops/broadcast.c, matmul and linear in ops/linear.c. Launchers check their
 * arguments, set them and enqueue; nothing here allocates or waits.
 *
 * Tensors are in the device's storage (clt__storage_bytes: fp32, or 16 bits in a 16-bit
 * plan; cl/common.cl's store_t); the partial sums of a workspace are always float.
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

enum clt_status clt__check_matrix(struct clt_device *dev, const char *op, int64_t rows,
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
        st = clt__check_buf(dev, bufs[i], n, clt__storage_bytes(dev), kernel, names[i]);
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

/* Whole 32-element rows through copy_backward_rows (cl/elementwise.cl), the last n % 32
 * elements through copy_backward. */
enum clt_status clt__copy_backward(struct clt_device *dev, int64_t n, struct clt__buf dy,
                                   struct clt__buf dx, bool accumulate)
{
    static const char *const names[] = {"dy", "dx"};
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_size(dev, "copy_backward", "n", n);
    if (st == CLT_OK)
        st = clt__check_buf(dev, dy, n, clt__storage_bytes(dev), "copy_backward", names[0]);
    if (st == CLT_OK)
        st = clt__check_buf(dev, dx, n, clt__storage_bytes(dev), "copy_backward", names[1]);
    const int64_t rows = n / 32, done = rows * 32;
    if (st == CLT_OK && rows > 0)
        st = CLT__RUN_ND(dev, CLT__K_copy_backward_rows, 2, ((size_t[]){32, (size_t)rows}),
                         CLT__I32(rows), CLT__I32(accumulate), CLT__BUF(dy), CLT__BUF(dx));
    if (st != CLT_OK || done == n)
        return st;
    struct clt__karg scalars[] = {CLT__I32(accumulate)};
    dy.offset += (size_t)done; /* offsets count elements */
    dx.offset += (size_t)done;
    struct clt__buf bufs[] = {dy, dx};
    return elementwise(dev, CLT__K_copy_backward, n - done, scalars, 1, bufs, names, 2);
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

/* The sum_axis kernels by columns per work-item (1, 4, 16) and what a round reads and writes
 * (cl/elementwise.cl): [width][src partials][dst partials], tensors in the storage, partials
 * float. */
static const enum clt__kernel_id sum_axis_ids[3][2][2] = {
    {{CLT__K_sum_axis, CLT__K_sum_axis_part}, {CLT__K_sum_axis_last, CLT__K_sum_axis_wide}},
    {{CLT__K_sum_axis4, CLT__K_sum_axis4_part}, {CLT__K_sum_axis4_last, CLT__K_sum_axis4_wide}},
    {{CLT__K_sum_axis16, CLT__K_sum_axis16_part},
     {CLT__K_sum_axis16_last, CLT__K_sum_axis16_wide}}};

/* Columns per work-item of sum_axis, as an index of {1, 4, 16}: several where they come in
 * fours (the same bits at every width): sixteen on a CPU, a whole AVX-512 vector (PoCL, gpt bias
 * gradients [1024, 128..512]: 2x faster than four), four elsewhere, where a work-item per four
 * columns keeps more work-items for a GPU's lanes. */
static int sum_axis_width(const struct clt_device *dev, int64_t inner)
{
    return inner % 4 != 0 ? 0 : inner % 16 == 0 && dev->info.type == CLT_DEVICE_CPU ? 2 : 1;
}

/* The columns per work-item of each index of sum_axis_width. */
static const int64_t sum_axis_cols[3] = {1, 4, 16};

/* One launch of sum_axis: dst [outer, parts, inner] gets the sums of `chunk` entries each.
 * src_part and dst_part: src and dst are float partial sums of the workspace, not tensors. */
static enum clt_status sum_axis_run(struct clt_device *dev, int64_t outer, int64_t count,
                                    int64_t inner, int64_t chunk, int64_t parts, float sign,
                                    float divisor, struct clt__buf src, struct clt__buf x,
                                    struct clt__buf dst, bool accumulate, bool src_part,
                                    bool dst_part)
{
    const int w = sum_axis_width(dev, inner);
    size_t items[3] = {(size_t)(inner / sum_axis_cols[w]), (size_t)parts, (size_t)outer};
    return CLT__RUN_ND(dev, sum_axis_ids[w][src_part][dst_part], 3, items, CLT__I32(outer),
                       CLT__I32(count), CLT__I32(inner), CLT__I32(chunk), CLT__I32(parts),
                       CLT__I32(x.mem != NULL), CLT__F32(sign), CLT__F32(divisor),
                       CLT__I32(accumulate), CLT__BUF(src), CLT__BUF(x.mem ? x : src),
                       CLT__BUF(dst));
}

/* Whether clt__sum_axis folds its two rounds into one launch (sum_axis*_fold): on a CPU, for
 * a count of 2 to 4 chunks and at most 64Ki summed entries, where a launch and its wait cost
 * more than the sums (PoCL: the bias gradients of the mlp, 128 x 256 and 128 x 10, three
 * launches fewer per step). Larger sums keep the two rounds' parallelism. The bits are the
 * same either way. */
static bool fold_rounds(const struct clt_device *dev, int64_t outer, int64_t count, int64_t inner)
{
    return dev->info.type == CLT_DEVICE_CPU && count > CLT__SUM_AXIS_CHUNK &&
           count <= 4 * CLT__SUM_AXIS_CHUNK && outer * count * inner <= 65536;
}

enum clt_status clt__sum_axis(struct clt_device *dev, int64_t outer, int64_t count, int64_t inner,
                              float sign, float divisor, struct clt__buf src, struct clt__buf x,
                              struct clt__buf dst, bool accumulate, struct clt__buf workspace)
{
    static const char op[] = "sum_axis";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = clt__check_matrix(dev, op, outer, count);
    if (st == CLT_OK)
        st = clt__check_matrix(dev, op, outer * count, inner);
    if (st == CLT_OK)
        st = clt__check_buf(dev, src, outer * count * inner, clt__storage_bytes(dev), op,
                            "the input");
    if (st == CLT_OK && x.mem)
        st = clt__check_buf(dev, x, outer * count * inner, clt__storage_bytes(dev), op,
                            "the factor");
    if (st == CLT_OK)
        st = clt__check_buf(dev, dst, outer * inner, clt__storage_bytes(dev), op, "the sums");
    uint64_t bytes = clt__sum_axis_workspace_bytes(outer, count, inner);
    if (st == CLT_OK && bytes > 0)
        st = clt__check_buf(dev, workspace, (int64_t)(bytes / sizeof(float)), sizeof(float), op,
                            "workspace");
    if (st == CLT_OK && fold_rounds(dev, outer, count, inner)) {
        static const enum clt__kernel_id fold[3] = {CLT__K_sum_axis_fold, CLT__K_sum_axis4_fold,
                                                    CLT__K_sum_axis16_fold};
        const int w = sum_axis_width(dev, inner);
        size_t items[2] = {(size_t)(inner / sum_axis_cols[w]), (size_t)outer};
        return CLT__RUN_ND(dev, fold[w], 2, items, CLT__I32(outer), CLT__I32(count),
                           CLT__I32(inner), CLT__I32(CLT__SUM_AXIS_CHUNK), CLT__I32(1),
                           CLT__I32(x.mem != NULL), CLT__F32(sign), CLT__F32(divisor),
                           CLT__I32(accumulate), CLT__BUF(src), CLT__BUF(x.mem ? x : src),
                           CLT__BUF(dst));
    }
    struct clt__buf part = workspace, none = {NULL, 0};
    bool src_part = false;
    while (st == CLT_OK && count > CLT__SUM_AXIS_CHUNK) {
        int64_t parts = (count + CLT__SUM_AXIS_CHUNK - 1) / CLT__SUM_AXIS_CHUNK;
        st = sum_axis_run(dev, outer, count, inner, CLT__SUM_AXIS_CHUNK, parts, 1.0f, 1.0f, src, x,
                          part, false, src_part, true);
        src = part;
        src_part = true;
        x = none;
        part.offset += (size_t)(outer * parts * inner);
        count = parts;
    }
    if (st != CLT_OK)
        return st;
    return sum_axis_run(dev, outer, count, inner, count, 1, sign, divisor, src, x, dst, accumulate,
                        src_part, false);
}

/* ==== Bias ============================================================================== */

enum clt_status clt__bias_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                  struct clt__buf x, struct clt__buf bias, struct clt__buf y)
{
    static const char op[] = "bias_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = clt__check_matrix(dev, op, rows, cols);
    if (st == CLT_OK)
        st = clt__check_buf(dev, x, rows * cols, clt__storage_bytes(dev), op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, bias, cols, clt__storage_bytes(dev), op, "bias");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, rows * cols, clt__storage_bytes(dev), op, "y");
    if (st != CLT_OK)
        return st;
    /* Whole 32-column blocks: the kernel that checks no column (cl/elementwise.cl). */
    return CLT__RUN_ND(dev, cols % 32 == 0 ? CLT__K_bias_forward_cols32 : CLT__K_bias_forward, 2,
                       ((size_t[]){(size_t)cols, (size_t)rows}), CLT__I32(rows), CLT__I32(cols),
                       CLT__BUF(x), CLT__BUF(bias), CLT__BUF(y));
}

/* dx is copy_backward; dbias clt__sum_axis over the rows. */
enum clt_status clt__bias_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                   struct clt__buf dy, struct clt__buf dx, struct clt__buf dbias,
                                   bool accumulate, struct clt__buf workspace)
{
    static const char op[] = "bias_backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = clt__check_matrix(dev, op, rows, cols);
    if (st == CLT_OK)
        st = clt__check_buf(dev, dy, rows * cols, clt__storage_bytes(dev), op, "dy");
    if (st == CLT_OK && dbias.mem)
        st = clt__check_buf(dev, dbias, cols, clt__storage_bytes(dev), op, "dbias");
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
    enum clt_status st = clt__check_matrix(dev, op, rows, cols);
    if (st == CLT_OK)
        st = clt__check_buf(dev, x, rows * cols, clt__storage_bytes(dev), op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, s, cols, clt__storage_bytes(dev), op, "s");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, rows * cols, clt__storage_bytes(dev), op, "y");
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
    enum clt_status st = clt__check_matrix(dev, op, rows, cols);
    if (st == CLT_OK)
        st = clt__check_buf(dev, dy, rows * cols, clt__storage_bytes(dev), op, "dy");
    if (st == CLT_OK && dx.mem)
        st = clt__check_buf(dev, s, cols, clt__storage_bytes(dev), op, "s");
    if (st == CLT_OK && dx.mem)
        st = clt__check_buf(dev, dx, rows * cols, clt__storage_bytes(dev), op, "dx");
    if (st == CLT_OK && ds.mem)
        st = clt__check_buf(dev, x, rows * cols, clt__storage_bytes(dev), op, "x");
    if (st == CLT_OK && ds.mem)
        st = clt__check_buf(dev, ds, cols, clt__storage_bytes(dev), op, "ds");
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
        st = clt__check_buf(dev, x, n, clt__storage_bytes(dev), op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, 1, clt__storage_bytes(dev), op, "y");
    if (st == CLT_OK && bytes > 0)
        st = clt__check_buf(dev, workspace, (int64_t)(bytes / sizeof(float)), sizeof(float), op,
                            "workspace");
    struct clt__buf src = x, part = workspace;
    int64_t count = n;
    bool wide = false; /* src: the float partials of the workspace, not x */
    while (st == CLT_OK && count > SUM_CHUNK) {
        int64_t parts = (count + SUM_CHUNK - 1) / SUM_CHUNK;
        st = CLT__RUN(dev, wide ? CLT__K_sum_partials_wide : CLT__K_sum_partials, (size_t)parts,
                      CLT__I32(count), CLT__I32(parts), CLT__BUF(src), CLT__BUF(part));
        src = part;
        wide = true;
        part.offset += (size_t)parts;
        count = parts;
    }
    if (st != CLT_OK)
        return st;
    return CLT__RUN(dev, wide ? CLT__K_sum_finish_wide : CLT__K_sum_finish, 1, CLT__I32(count),
                    CLT__F32(divisor), CLT__BUF(src), CLT__BUF(y));
}

/* dx[r, c] (+)= dy[r] / divisor. */
static enum clt_status sum_broadcast(struct clt_device *dev, const char *op, int64_t rows,
                                     int64_t cols, float divisor, struct clt__buf dy,
                                     struct clt__buf dx, bool accumulate)
{
    enum clt_status st = clt__check_matrix(dev, op, rows, cols);
    if (st == CLT_OK)
        st = clt__check_buf(dev, dy, rows, clt__storage_bytes(dev), op, "dy");
    if (st == CLT_OK)
        st = clt__check_buf(dev, dx, rows * cols, clt__storage_bytes(dev), op, "dx");
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
    enum clt_status st = clt__check_matrix(dev, op, rows, cols);
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

/* ==== Graph ops: definitions and public builders ========================================= */

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

const struct clt__op_def clt__op_scale = {.forward = scale_forward,
                                          .backward = scale_backward,
                                          .bench = bench_scale,
                                          .ew = &scale_ew,
                                          .storage16 = true};

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
                                        .bench = bench_sum,
                                        .storage16 = true};

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
