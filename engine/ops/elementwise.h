/*
 * elementwise.h: launchers of cl/elementwise.cl: fill, copy, axpy, add, mul, scale, bias,
 * sum and mean (of everything, or along the last axis), and the linear layer.
 *
 * Tensors are struct clt__buf (buffer and element offset) of dense row-major elements of the
 * device's storage (dev->storage: float, or 16 bits in a 16-bit plan; the offset in those
 * elements; workspaces are floats whatever the storage), shapes in the comment after each
 * argument. Every launcher only enqueues on dev->queue: it
 * allocates nothing and never waits. An elementwise output may be the same memory as an
 * input (same buffer and offset); outputs of sums and of linear must not overlap inputs.
 *
 * Backward launchers take `accumulate`: false writes each gradient (without reading what
 * the buffer held), true adds to it. A gradient output whose mem is NULL is skipped; to give
 * different gradients different `accumulate`, call twice, skipping the others each time.
 *
 * Sizes may be 0 (nothing is enqueued), except where a launcher says otherwise. Negative or
 * oversized sizes (kernels index with int) and missing buffers are CLT_ERR_INVALID_ARGUMENT.
 */
#ifndef CLTRAIN_OPS_ELEMENTWISE_H
#define CLTRAIN_OPS_ELEMENTWISE_H

#include "internal.h"

/* One parameter per line with its shape: kept by hand, not by clang-format. */
/* clang-format off */

/* ==== Filling, copying, accumulating ==================================================== */

/* y = value. */
enum clt_status clt__fill_forward(struct clt_device *dev, int64_t n, float value,
                                  struct clt__buf y); /* [n] */

/* y = x. */
enum clt_status clt__copy_forward(struct clt_device *dev, int64_t n,
                                  struct clt__buf x,  /* [n] */
                                  struct clt__buf y); /* [n] */

/* dx (+)= dy. */
enum clt_status clt__copy_backward(struct clt_device *dev, int64_t n,
                                   struct clt__buf dy, /* [n] */
                                   struct clt__buf dx, /* [n] */
                                   bool accumulate);

/* y += alpha * x, fused (one rounding): gradient accumulation. */
enum clt_status clt__axpy_forward(struct clt_device *dev, int64_t n, float alpha,
                                  struct clt__buf x,  /* [n] */
                                  struct clt__buf y); /* [n] */

/* ==== Arithmetic ======================================================================== */

/* y = a + b. */
enum clt_status clt__add_forward(struct clt_device *dev, int64_t n,
                                 struct clt__buf a,  /* [n] */
                                 struct clt__buf b,  /* [n] */
                                 struct clt__buf y); /* [n] */

/* da (+)= dy, db (+)= dy. */
enum clt_status clt__add_backward(struct clt_device *dev, int64_t n,
                                  struct clt__buf dy, /* [n] */
                                  struct clt__buf da, /* [n] or mem NULL */
                                  struct clt__buf db, /* [n] or mem NULL */
                                  bool accumulate);

/* y = a * b. */
enum clt_status clt__mul_forward(struct clt_device *dev, int64_t n,
                                 struct clt__buf a,  /* [n] */
                                 struct clt__buf b,  /* [n] */
                                 struct clt__buf y); /* [n] */

/* da (+)= dy * b, db (+)= dy * a. a is needed only for db, b only for da. */
enum clt_status clt__mul_backward(struct clt_device *dev, int64_t n,
                                  struct clt__buf a,  /* [n] */
                                  struct clt__buf b,  /* [n] */
                                  struct clt__buf dy, /* [n] */
                                  struct clt__buf da, /* [n] or mem NULL */
                                  struct clt__buf db, /* [n] or mem NULL */
                                  bool accumulate);

/* y = alpha * x. */
enum clt_status clt__scale_forward(struct clt_device *dev, int64_t n, float alpha,
                                   struct clt__buf x,  /* [n] */
                                   struct clt__buf y); /* [n] */

/* dx (+)= alpha * dy. */
enum clt_status clt__scale_backward(struct clt_device *dev, int64_t n, float alpha,
                                    struct clt__buf dy, /* [n] */
                                    struct clt__buf dx, /* [n] */
                                    bool accumulate);

/* ==== Sums along an axis ================================================================ */

/* Entries one work-item of sum_axis adds (cl/elementwise.cl). A constant, not a tunable:
 * results depend on it, and must not depend on the device. */
#define CLT__SUM_AXIS_CHUNK 64

/* CLT_OK when rows, cols and rows * cols all fit in int; else logs `op` and the size that
 * does not. */
enum clt_status clt__check_matrix(struct clt_device *dev, const char *op, int64_t rows,
                                  int64_t cols);

/* Bytes of workspace clt__sum_axis needs (0 when count <= CLT__SUM_AXIS_CHUNK). */
uint64_t clt__sum_axis_workspace_bytes(int64_t outer, int64_t count, int64_t inner);

/* dst[o, i] (+)= sign * (sum over k of src[o, k, i], times x[o, k, i] when x.mem is not NULL)
 * / divisor: compensated sums of CLT__SUM_AXIS_CHUNK entries in order, whose partials
 * [outer, parts, inner] go to the workspace and are summed the same way in rounds until one
 * is left, so the order depends only on count. The workspace holds
 * clt__sum_axis_workspace_bytes bytes from its offset (checked; mem may be NULL when that
 * is 0). Column sums are outer = 1, row sums inner = 1. */
enum clt_status clt__sum_axis(struct clt_device *dev, int64_t outer, int64_t count, int64_t inner,
                              float sign, float divisor,
                              struct clt__buf src,       /* [outer, count, inner] */
                              struct clt__buf x,         /* [outer, count, inner] or mem NULL */
                              struct clt__buf dst,       /* [outer, inner] */
                              bool accumulate,
                              struct clt__buf workspace); /* see above */

/* ==== Bias ============================================================================== */

/* y[r, c] = x[r, c] + bias[c]. */
enum clt_status clt__bias_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                  struct clt__buf x,    /* [rows, cols] */
                                  struct clt__buf bias, /* [cols] */
                                  struct clt__buf y);   /* [rows, cols] */

/* dx (+)= dy; dbias[c] (+)= sum over r of dy[r, c] (clt__sum_axis; the workspace holds
 * clt__sum_axis_workspace_bytes(1, rows, cols) bytes). */
enum clt_status clt__bias_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                   struct clt__buf dy,    /* [rows, cols] */
                                   struct clt__buf dx,    /* [rows, cols] or mem NULL */
                                   struct clt__buf dbias, /* [cols] or mem NULL */
                                   bool accumulate,
                                   struct clt__buf workspace);

/* ==== Broadcast products ================================================================ */

/* y[r, c] = x[r, c] * s[c]: s broadcast over the rows. */
enum clt_status clt__mul_broadcast_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                           struct clt__buf x,  /* [rows, cols] */
                                           struct clt__buf s,  /* [cols] */
                                           struct clt__buf y); /* [rows, cols] */

/* dx[r, c] (+)= dy[r, c] * s[c] (s needed only for dx); ds[c] (+)= sum over r of
 * dy[r, c] * x[r, c] (clt__sum_axis; x needed only for ds; the workspace holds
 * clt__sum_axis_workspace_bytes(1, rows, cols) bytes). acc: bit 0 adds to dx, bit 1 to ds. A
 * gradient whose mem is NULL is skipped. */
enum clt_status clt__mul_broadcast_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                            struct clt__buf x,  /* [rows, cols] */
                                            struct clt__buf s,  /* [cols] */
                                            struct clt__buf dy, /* [rows, cols] */
                                            struct clt__buf dx, /* [rows, cols] or mem NULL */
                                            struct clt__buf ds, /* [cols] or mem NULL */
                                            uint32_t acc,
                                            struct clt__buf workspace);

/* ==== Sums and means ==================================================================== */

/* Bytes of workspace clt__sum_forward and clt__mean_forward need for n elements (0 for
 * n <= 256, then about 4 n / 255). */
uint64_t clt__reduce_workspace_bytes(int64_t n);

/* y[0] = sum of x: compensated sums over 256 elements at a time, combined in a fixed order
 * that depends only on n, so the result is the same for every launch shape and run. The
 * workspace holds clt__reduce_workspace_bytes(n) bytes from its offset (checked; mem may be
 * NULL when that is 0). The sum of no elements is 0. */
enum clt_status clt__sum_forward(struct clt_device *dev, int64_t n,
                                 struct clt__buf x,          /* [n] */
                                 struct clt__buf y,          /* [1] */
                                 struct clt__buf workspace); /* see above */

/* dx[i] (+)= dy[0]. */
enum clt_status clt__sum_backward(struct clt_device *dev, int64_t n,
                                  struct clt__buf dy, /* [1] */
                                  struct clt__buf dx, /* [n] */
                                  bool accumulate);

/* y[0] = (sum of x) / n, as clt__sum_forward; n >= 1. */
enum clt_status clt__mean_forward(struct clt_device *dev, int64_t n,
                                  struct clt__buf x,          /* [n] */
                                  struct clt__buf y,          /* [1] */
                                  struct clt__buf workspace); /* see clt__sum_forward */

/* dx[i] (+)= dy[0] / n; n >= 1. */
enum clt_status clt__mean_backward(struct clt_device *dev, int64_t n,
                                   struct clt__buf dy, /* [1] */
                                   struct clt__buf dx, /* [n] */
                                   bool accumulate);

/* y[r] = sum over c of x[r, c] (clt__sum_axis; the workspace holds
 * clt__sum_axis_workspace_bytes(rows, cols, 1) bytes). */
enum clt_status clt__sum_rows_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                      struct clt__buf x,          /* [rows, cols] */
                                      struct clt__buf y,          /* [rows] */
                                      struct clt__buf workspace); /* see above */

/* dx[r, c] (+)= dy[r]. */
enum clt_status clt__sum_rows_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                       struct clt__buf dy, /* [rows] */
                                       struct clt__buf dx, /* [rows, cols] */
                                       bool accumulate);

/* y[r] = (sum over c of x[r, c]) / cols; cols >= 1; workspace as clt__sum_rows_forward's. */
enum clt_status clt__mean_rows_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                       struct clt__buf x,          /* [rows, cols] */
                                       struct clt__buf y,          /* [rows] */
                                       struct clt__buf workspace); /* see above */

/* dx[r, c] (+)= dy[r] / cols; cols >= 1. */
enum clt_status clt__mean_rows_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                        struct clt__buf dy, /* [rows] */
                                        struct clt__buf dx, /* [rows, cols] */
                                        bool accumulate);

/* ==== Linear layer ====================================================================== */

/* y = x * weight^T + bias: y[i, o] = sum over k of x[i, k] * weight[o, k] + bias[o].
 * weight is [out, in] as in PyTorch (row o holds the input weights of output o). bias is
 * optional (mem NULL: none). One GEMM, then the bias added in place. n, in, out >= 1. */
enum clt_status clt__linear_forward(struct clt_device *dev, int64_t n, int64_t in, int64_t out,
                                    struct clt__buf x,      /* [n, in] */
                                    struct clt__buf weight, /* [out, in] */
                                    struct clt__buf bias,   /* [out] or mem NULL */
                                    struct clt__buf y);     /* [n, out] */

/* dx (+)= dy * weight; dweight (+)= dy^T * x; dbias (+)= column sums of dy. Each gradient is
 * skipped when its mem is NULL; x is needed only for dweight, weight only for dx. GEMMs
 * accumulate with beta = 1. n, in, out >= 1. The workspace holds
 * clt__sum_axis_workspace_bytes(1, n, out) bytes when dbias is wanted. */
enum clt_status clt__linear_backward(struct clt_device *dev, int64_t n, int64_t in,
                                     int64_t out,
                                     struct clt__buf x,       /* [n, in] */
                                     struct clt__buf weight,  /* [out, in] */
                                     struct clt__buf dy,      /* [n, out] */
                                     struct clt__buf dx,      /* [n, in] or mem NULL */
                                     struct clt__buf dweight, /* [out, in] or mem NULL */
                                     struct clt__buf dbias,   /* [out] or mem NULL */
                                     bool accumulate,
                                     struct clt__buf workspace);

/* clang-format on */

#endif
