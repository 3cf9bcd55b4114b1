/*
 * ref_pool.h: the C reference of 2-D pooling (engine/ops/pool.h), in double.
 */
#ifndef CLTRAIN_TEST_REF_POOL_H
#define CLTRAIN_TEST_REF_POOL_H

#include "ops/pool.h"

/* y [N, C, OH, OW] = the first maximum of each window (padding never chosen), argmax its
 * index iy * W + ix in the input plane; for resolved parameters p. */
void ref_maxpool2d_forward(const struct clt__pool2d *p, const float *x, double *y, int32_t *argmax);

/* dx [N, C, H, W] = the sum of dy over the windows whose first maximum is that element. */
void ref_maxpool2d_backward(const struct clt__pool2d *p, const float *x, const float *dy,
                            double *dx);

/* y [N, C, OH, OW] = window sum / (KH * KW), padding counted as zeros. */
void ref_avgpool2d_forward(const struct clt__pool2d *p, const float *x, double *y);

/* dx [N, C, H, W] = the sum of dy / (KH * KW) over the windows containing that element. */
void ref_avgpool2d_backward(const struct clt__pool2d *p, const float *dy, double *dx);

/* y [N, C] = the mean of each [H, W] plane of x; planes = N * C, hw = H * W. */
void ref_global_avgpool_forward(int64_t planes, int64_t hw, const float *x, double *y);

/* dx [N, C, H, W] = dy[n, c] / (H * W). */
void ref_global_avgpool_backward(int64_t planes, int64_t hw, const float *dy, double *dx);

#endif
