/*
 * norm.h: batch normalization and layer normalization (kernels in cl/norm.cl).
 *
 * Batch norm: x [n, c, s] with s = height * width (s = 1 for features [n, c]); per-channel
 * gamma, beta [c]; m = n * s values per channel. Layer norm: x [rows, d] normalized over
 * its last axis, gamma, beta [d].
 *
 * Every launcher only enqueues on dev->queue: it allocates nothing and never waits.
 * Tensors are float buffers with element offsets; every buffer must hold offset + its
 * shape's elements, and offset + elements must stay below 2^31. Scratch space comes from
 * the caller (`workspace`, at least the bytes the *_workspace_bytes function names, and
 * not shared with any other argument). Bad arguments return CLT_ERR_INVALID_ARGUMENT with
 * a log line. A backward writes each gradient it is given and skips each whose `mem` is
 * NULL; its `acc` mask says, per gradient, whether it adds instead (bit 0 dx, bit 1 dgamma,
 * bit 2 dbeta, the order of the graph op's inputs; CLT__NORM_ACC_ALL adds to all three), so
 * that one call computes the statistics every gradient needs once.
 */
#ifndef CLTRAIN_OPS_NORM_H
#define CLTRAIN_OPS_NORM_H

#include <stdbool.h>

#include "cl/shared.h"

#include "internal.h"

/* One parameter per line, each tensor with its shape: the layout is the documentation. */
/* clang-format off */

/* ==== Batch norm ======================================================================== */

/* Bytes of workspace clt__batchnorm_forward and clt__batchnorm_backward need (0 for
 * impossible shapes). */
size_t clt__batchnorm_workspace_bytes(int64_t n, int64_t c, int64_t s);

/* Training mode: y = (x - mean) * inv_std * gamma + beta with the batch mean and biased
 * variance of each channel, inv_std = 1 / sqrt(var + eps). Writes mean and inv_std for the
 * backward. When running_mean.mem is not NULL, updates both running statistics in place as
 * PyTorch does: running = (1 - momentum) * running + momentum * batch, with the unbiased
 * variance var * m / (m - 1) for running_var; m == 1 is then refused (the unbiased variance
 * of one value does not exist), while without running statistics m == 1 gives y = beta. */
enum clt_status clt__batchnorm_forward(struct clt_device *dev,
                                       int64_t n, int64_t c, int64_t s,
                                       struct clt__buf x,            /* [n, c, s] */
                                       struct clt__buf gamma,        /* [c] */
                                       struct clt__buf beta,         /* [c] */
                                       float eps,                    /* >= 0 */
                                       float momentum,               /* in [0, 1] */
                                       struct clt__buf running_mean, /* [c] in/out, or NULL */
                                       struct clt__buf running_var,  /* [c] in/out, or NULL */
                                       struct clt__buf y,            /* [n, c, s] out */
                                       struct clt__buf mean,         /* [c] out */
                                       struct clt__buf inv_std,      /* [c] out */
                                       struct clt__buf workspace);

/* Inference mode: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta. */
enum clt_status clt__batchnorm_forward_inference(struct clt_device *dev,
                                                 int64_t n, int64_t c, int64_t s,
                                                 struct clt__buf x,            /* [n, c, s] */
                                                 struct clt__buf gamma,        /* [c] */
                                                 struct clt__buf beta,         /* [c] */
                                                 struct clt__buf running_mean, /* [c] */
                                                 struct clt__buf running_var,  /* [c] */
                                                 float eps,                    /* >= 0 */
                                                 struct clt__buf y);           /* [n, c, s] out */

/* The bits of a backward's `acc` mask are CLT__NORM_ACC_* of cl/shared.h. */

/* Backward of training mode, from the mean and inv_std its forward saved:
 * dbeta = sum dy, dgamma = sum dy * xhat (over each channel's m values),
 * dx = gamma * inv_std * (dy - dbeta / m - xhat * dgamma / m), xhat = (x - mean) * inv_std.
 * dx, dgamma and dbeta are each optional (mem NULL); workspace is needed unless all three
 * are skipped. */
enum clt_status clt__batchnorm_backward(struct clt_device *dev,
                                        int64_t n, int64_t c, int64_t s,
                                        struct clt__buf x,       /* [n, c, s] */
                                        struct clt__buf dy,      /* [n, c, s] */
                                        struct clt__buf gamma,   /* [c] */
                                        struct clt__buf mean,    /* [c] from the forward */
                                        struct clt__buf inv_std, /* [c] from the forward */
                                        struct clt__buf dx,      /* [n, c, s] out, or NULL */
                                        struct clt__buf dgamma,  /* [c] out, or NULL */
                                        struct clt__buf dbeta,   /* [c] out, or NULL */
                                        uint32_t acc,            /* CLT__NORM_ACC_* bits */
                                        struct clt__buf workspace);

/* Backward of inference mode: dx = dy * gamma / sqrt(running_var + eps). (The running
 * statistics are constants there; gamma's and beta's gradients are not computed.) */
enum clt_status clt__batchnorm_backward_inference(struct clt_device *dev,
                                                  int64_t n, int64_t c, int64_t s,
                                                  struct clt__buf dy,          /* [n, c, s] */
                                                  struct clt__buf gamma,       /* [c] */
                                                  struct clt__buf running_var, /* [c] */
                                                  float eps,                   /* >= 0 */
                                                  struct clt__buf dx, /* [n, c, s] out, or NULL */
                                                  bool accumulate);

/* ==== Layer norm ======================================================================== */

/* Bytes of workspace clt__layernorm_backward needs for dgamma and dbeta (0 for impossible
 * shapes). */
size_t clt__layernorm_workspace_bytes(int64_t rows, int64_t d);

/* y = (x - mean) * rstd * gamma + beta over each row, rstd = 1 / sqrt(var + eps) with the
 * row's biased variance. Writes mean and rstd for the backward. */
enum clt_status clt__layernorm_forward(struct clt_device *dev,
                                       int64_t rows, int64_t d,
                                       struct clt__buf x,     /* [rows, d] */
                                       struct clt__buf gamma, /* [d] */
                                       struct clt__buf beta,  /* [d] */
                                       float eps,             /* >= 0 */
                                       struct clt__buf y,     /* [rows, d] out */
                                       struct clt__buf mean,  /* [rows] out */
                                       struct clt__buf rstd); /* [rows] out */

/* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = gamma * dy and means over the
 * row; dgamma = sum over rows of dy * xhat, dbeta = sum over rows of dy. Each output is
 * optional (mem NULL); workspace is needed only for dgamma or dbeta. */
enum clt_status clt__layernorm_backward(struct clt_device *dev,
                                        int64_t rows, int64_t d,
                                        struct clt__buf x,      /* [rows, d] */
                                        struct clt__buf dy,     /* [rows, d] */
                                        struct clt__buf gamma,  /* [d] */
                                        struct clt__buf mean,   /* [rows] from the forward */
                                        struct clt__buf rstd,   /* [rows] from the forward */
                                        struct clt__buf dx,     /* [rows, d] out, or NULL */
                                        struct clt__buf dgamma, /* [d] out, or NULL */
                                        struct clt__buf dbeta,  /* [d] out, or NULL */
                                        uint32_t acc,           /* CLT__NORM_ACC_* bits */
                                        struct clt__buf workspace);

/* clang-format on */

#endif
