/*
 * ref_conv.h: the C reference of 2-D convolution (engine/ops/conv.h), in double.
 *
 * Shapes, for resolved parameters c: x [N, C_in, H, W], weight [C_out, C_in/G, KH, KW],
 * bias [C_out], y and dy [N, C_out, OH, OW]; each gradient has its tensor's shape.
 */
#ifndef CLTRAIN_TEST_REF_CONV_H
#define CLTRAIN_TEST_REF_CONV_H

#include "ops/conv.h"

/* y = conv2d(x, weight) + bias; bias NULL: no bias. */
void ref_conv2d_forward(const struct clt__conv2d *c, const float *x, const float *weight,
                        const float *bias, double *y);

/* The gradients for the upstream gradient dy, each written (not accumulated); any of dx,
 * dweight, dbias may be NULL. */
void ref_conv2d_backward(const struct clt__conv2d *c, const float *x, const float *weight,
                         const float *dy, double *dx, double *dweight, double *dbias);

#endif
