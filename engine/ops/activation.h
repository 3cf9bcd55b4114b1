/*
 * activation.h: elementwise activation functions and dropout (kernels in cl/activation.cl,
 * notes in docs/kernels/activation.md).
 *
 * Every tensor is n contiguous elements of the device's storage (dev->storage: float, or 16
 * bits in a 16-bit plan) at a buffer's element offset; y may be the same range
 * as x, and dx the same range as dy (in place). Launchers check their arguments, enqueue on
 * dev->queue and return: they never allocate and never block. n = 0 enqueues nothing.
 *
 * Backward passes take the forward INPUT x (not the output) and compute dx = dy * f'(x);
 * accumulate false writes dx, true adds to it.
 */
#ifndef CLTRAIN_OPS_ACTIVATION_H
#define CLTRAIN_OPS_ACTIVATION_H

#include "cl/shared.h"
#include "internal.h"

/* The activation functions; their values (CLT__CL_ACT_*) are shared with the kernels. */
enum clt__act {
    CLT__ACT_RELU = CLT__CL_ACT_RELU, /* x < 0 ? 0 : x;            f'(x) = x > 0 ? 1 : 0 */
    CLT__ACT_LEAKY_RELU =
        CLT__CL_ACT_LEAKY_RELU, /* x < 0 ? slope * x : x;    f'(x) = x > 0 ? 1 : slope */
    CLT__ACT_GELU_TANH = CLT__CL_ACT_GELU_TANH, /* PyTorch gelu(approximate='tanh') */
    CLT__ACT_GELU_ERF = CLT__CL_ACT_GELU_ERF,   /* PyTorch gelu(approximate='none'): x Phi(x) */
    CLT__ACT_TANH = CLT__CL_ACT_TANH,
    CLT__ACT_SIGMOID = CLT__CL_ACT_SIGMOID, /* 1 / (1 + exp(-x)) */
    CLT__ACT_SILU = CLT__CL_ACT_SILU,       /* x * sigmoid(x) */
};
#define CLT__ACT_COUNT CLT__CL_ACT_COUNT

/* "relu", "leaky_relu", "gelu_tanh", "gelu_erf", "tanh", "sigmoid", "silu"; "?" otherwise. */
const char *clt__act_name(enum clt__act act);

/* y = f(x) elementwise. slope: leaky relu's negative slope (finite; ignored by the others). */
enum clt_status clt__activation_forward(struct clt_device *dev, enum clt__act act, float slope,
                                        int64_t n, struct clt__buf x, /* [n] */
                                        struct clt__buf y);           /* [n] */

/* dx = dy * f'(x) (accumulate false) or dx += dy * f'(x) (true), x the forward input. */
enum clt_status clt__activation_backward(struct clt_device *dev, enum clt__act act, float slope,
                                         int64_t n, struct clt__buf x, /* [n] forward input */
                                         struct clt__buf dy,           /* [n] */
                                         struct clt__buf dx,           /* [n] */
                                         bool accumulate);

/* The factor kept elements are multiplied by: 1 / (1 - p), in float, as the kernels get it. */
float clt__dropout_scale(float p);

/* y = keep(i) ? x * clt__dropout_scale(p) : 0, keep(i) = u(seed, step, i) >= p with u the
 * Philox4x32-10 uniform documented in cl/activation.cl. 0 <= p < 1, else
 * CLT_ERR_INVALID_ARGUMENT; p = 0 copies x. Give each training step its own `step`. */
enum clt_status clt__dropout_forward(struct clt_device *dev, float p, uint64_t seed, uint64_t step,
                                     int64_t n, struct clt__buf x, /* [n] */
                                     struct clt__buf y);           /* [n] */

/* dx (+)= keep(i) ? dy * clt__dropout_scale(p) : 0, the mask recomputed from the same
 * (p, seed, step) as the forward pass. */
enum clt_status clt__dropout_backward(struct clt_device *dev, float p, uint64_t seed, uint64_t step,
                                      int64_t n, struct clt__buf dy, /* [n] */
                                      struct clt__buf dx,            /* [n] */
                                      bool accumulate);

#endif /* CLTRAIN_OPS_ACTIVATION_H */
