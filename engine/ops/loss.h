/*
 * loss.h: launchers of cl/loss.cl: softmax and log-softmax along the last axis, cross-entropy
 * with integer labels, mean squared error.
 *
 * Every launcher only enqueues on dev->queue: it allocates nothing and never waits. Tensors
 * are buffers with element offsets; every element count, and every offset plus the count after
 * it, must stay below 2^31 - 2^16 (the kernels index with int). Reductions run in an order
 * fixed by the kernels, never by the device's work-group size: results are repeatable.
 * Bad arguments return CLT_ERR_INVALID_ARGUMENT with a line in the log.
 */
#ifndef CLTRAIN_OPS_LOSS_H
#define CLTRAIN_OPS_LOSS_H

#include "internal.h"

/* ==== Softmax and log-softmax along the last axis ======================================= */

/* y[r, :] = softmax(x[r, :]) = exp(x[r, :] - max) / sum exp(x[r, :] - max).
 * rows >= 0, cols >= 1. y may be x (in place). */
enum clt_status clt__softmax_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                     struct clt__buf x,  /* [rows, cols] */
                                     struct clt__buf y); /* [rows, cols] */

/* dx (+)= y * (dy - sum(dy * y)) row by row, y the output of clt__softmax_forward.
 * accumulate false writes dx (its old contents are not read), true adds to it. */
enum clt_status clt__softmax_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                      struct clt__buf y,  /* [rows, cols] */
                                      struct clt__buf dy, /* [rows, cols] */
                                      struct clt__buf dx, /* [rows, cols] */
                                      bool accumulate);

/* clt__softmax_forward and _backward with optional causal masking, for attention's score
 * rows [B * H * T, T] (cols = T): row r is query r % cols and, with `causal`, only its
 * columns 0..r % cols take part; the masked entries of y, and of dx (written or added as 0),
 * are exact zeros. y may be x and dx may be dy (in place). */
enum clt_status clt__softmax_masked_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                            bool causal, struct clt__buf x, /* [rows, cols] */
                                            struct clt__buf y);             /* [rows, cols] */
enum clt_status clt__softmax_masked_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                             bool causal, struct clt__buf y, /* [rows, cols] */
                                             struct clt__buf dy,             /* [rows, cols] */
                                             struct clt__buf dx,             /* [rows, cols] */
                                             bool accumulate);

/* y[r, :] = log_softmax(x[r, :]) = (x[r, :] - max) - log sum exp(x[r, :] - max).
 * rows >= 0, cols >= 1. y may be x (in place). */
enum clt_status clt__log_softmax_forward(struct clt_device *dev, int64_t rows, int64_t cols,
                                         struct clt__buf x,  /* [rows, cols] */
                                         struct clt__buf y); /* [rows, cols] */

/* dx (+)= dy - exp(y) * sum(dy) row by row, y the output of clt__log_softmax_forward. */
enum clt_status clt__log_softmax_backward(struct clt_device *dev, int64_t rows, int64_t cols,
                                          struct clt__buf y,  /* [rows, cols] */
                                          struct clt__buf dy, /* [rows, cols] */
                                          struct clt__buf dx, /* [rows, cols] */
                                          bool accumulate);

/* ==== Cross-entropy with integer labels ================================================= */

/* Bytes of the workspace the cross-entropy forward fills and its backward reads:
 * (3 rows + 1) floats (per-row loss, max and log-sum-exp, and the count of counted rows). */
size_t clt__cross_entropy_workspace_bytes(int64_t rows);

/* loss[0] = mean over counted rows r of -sum_j target[r, j] * log_softmax(logits)[r, j],
 * target = (1 - smoothing) * onehot(labels[r]) + smoothing / classes (PyTorch semantics).
 * A row counts when its label is in [0, classes) and differs from ignore_index; other rows
 * (ignore_index, and any label outside [0, classes)) are skipped without being indexed with.
 * No counted row: loss 0. rows >= 0, classes >= 1, smoothing in [0, 1). labels is a CLT_I32
 * buffer (offset in ints). The workspace (clt__cross_entropy_workspace_bytes, offset in
 * floats) keeps what the backward needs: leave it untouched until the backward has run. */
enum clt_status clt__cross_entropy_forward(struct clt_device *dev, int64_t rows, int64_t classes,
                                           struct clt__buf logits, /* [rows, classes] */
                                           struct clt__buf labels, /* [rows] int32 */
                                           int32_t ignore_index, float smoothing,
                                           struct clt__buf workspace, /* [3 rows + 1] */
                                           struct clt__buf loss);     /* [1] */

/* dlogits (+)= (softmax(logits) - target) * dloss[0] / count on counted rows, 0 on the others.
 * Takes the same logits, labels, ignore_index and smoothing as the forward that filled the
 * workspace, and the upstream gradient dloss as a device scalar. */
enum clt_status clt__cross_entropy_backward(struct clt_device *dev, int64_t rows, int64_t classes,
                                            struct clt__buf logits, /* [rows, classes] */
                                            struct clt__buf labels, /* [rows] int32 */
                                            int32_t ignore_index, float smoothing,
                                            struct clt__buf workspace, /* [3 rows + 1] */
                                            struct clt__buf dloss,     /* [1] */
                                            struct clt__buf dlogits,   /* [rows, classes] */
                                            bool accumulate);

/* ==== Mean squared error ================================================================ */

/* Bytes of the workspace of clt__mse_forward: one float per block of 1024 elements. */
size_t clt__mse_workspace_bytes(int64_t n);

/* loss[0] = mean((x - target)^2) over n >= 0 elements (0 when n is 0). */
enum clt_status clt__mse_forward(struct clt_device *dev, int64_t n, struct clt__buf x, /* [n] */
                                 struct clt__buf target,                               /* [n] */
                                 struct clt__buf workspace, /* [ceil(n / 1024)] */
                                 struct clt__buf loss);     /* [1] */

/* dx (+)= 2 (x - target) / n * dloss[0]. */
enum clt_status clt__mse_backward(struct clt_device *dev, int64_t n, struct clt__buf x, /* [n] */
                                  struct clt__buf target,                               /* [n] */
                                  struct clt__buf dloss,                                /* [1] */
                                  struct clt__buf dx,                                   /* [n] */
                                  bool accumulate);

#endif
