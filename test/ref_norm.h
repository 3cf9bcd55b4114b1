/*
 * ref_norm.h: the C reference of batch norm and layer norm (cl/norm.cl), in double.
 *
 * Shapes as in engine/ops/norm.h: batch norm x [n, c, s] with per-channel gamma, beta [c];
 * layer norm x [rows, d] with gamma, beta [d]. Outputs are double arrays of the same
 * shapes; an output pointer may be NULL to skip it.
 */
#ifndef CLTRAIN_TEST_REF_NORM_H
#define CLTRAIN_TEST_REF_NORM_H

#include <stdint.h>

/* Training mode: batch mean and biased variance of each channel; y, mean [c], inv_std [c]
 * and the unbiased variance var_unbiased [c] (NaN when n * s == 1). */
void ref_batchnorm_forward(int64_t n, int64_t c, int64_t s, const float *x, const float *gamma,
                           const float *beta, double eps, double *y, double *mean, double *inv_std,
                           double *var_unbiased);

/* Moves running statistics [c] (in/out) towards a batch's: r = (1 - momentum) r + momentum b. */
void ref_batchnorm_running_update(int64_t c, double momentum, const double *mean,
                                  const double *var_unbiased, double *running_mean,
                                  double *running_var);

/* Inference mode: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta. */
void ref_batchnorm_forward_inference(int64_t n, int64_t c, int64_t s, const float *x,
                                     const float *gamma, const float *beta,
                                     const float *running_mean, const float *running_var,
                                     double eps, double *y);

/* Backward of training mode, statistics recomputed from x: dx [n, c, s], dgamma, dbeta [c]. */
void ref_batchnorm_backward(int64_t n, int64_t c, int64_t s, const float *x, const float *dy,
                            const float *gamma, double eps, double *dx, double *dgamma,
                            double *dbeta);

/* Backward of inference mode: dx = dy * gamma / sqrt(running_var + eps). */
void ref_batchnorm_backward_inference(int64_t n, int64_t c, int64_t s, const float *dy,
                                      const float *gamma, const float *running_var, double eps,
                                      double *dx);

/* Layer norm over rows: y [rows, d], mean [rows], rstd [rows]. */
void ref_layernorm_forward(int64_t rows, int64_t d, const float *x, const float *gamma,
                           const float *beta, double eps, double *y, double *mean, double *rstd);

/* Backward, statistics recomputed from x: dx [rows, d], dgamma, dbeta [d]. */
void ref_layernorm_backward(int64_t rows, int64_t d, const float *x, const float *dy,
                            const float *gamma, double eps, double *dx, double *dgamma,
                            double *dbeta);

#endif
