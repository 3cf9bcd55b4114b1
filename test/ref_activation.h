/*
 * ref_activation.h: the C reference of the activation functions (in double, PyTorch's
 * definitions) and of dropout (bit for bit what the device computes).
 */
#ifndef CLTRAIN_TEST_REF_ACTIVATION_H
#define CLTRAIN_TEST_REF_ACTIVATION_H

#include <stddef.h>
#include <stdint.h>

#include "ops/activation.h"

/* f(x) of activation `act`, and f'(x) into *grad. */
double ref_act(enum clt__act act, double slope, double x, double *grad);

/* y[i] = f(x[i]), i < n. */
void ref_activation_forward(enum clt__act act, float slope, const float *x, double *y, size_t n);

/* dx[i] = prev[i] + dy[i] * f'(x[i]); prev NULL counts as 0 (accumulate false). */
void ref_activation_backward(enum clt__act act, float slope, const float *x, const float *dy,
                             const float *prev, double *dx, size_t n);

/* Philox4x32-10 (Random123): out = philox(ctr, key). */
void ref_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The dropout uniform u(seed, step, i) in [0, 1), as documented in cl/activation.cl. */
float ref_dropout_uniform(uint64_t seed, uint64_t step, uint64_t i);

/* keep[i] = u(seed, step, i) >= p. */
void ref_dropout_mask(float p, uint64_t seed, uint64_t step, bool *keep, size_t n);

/* y[i] = keep[i] ? x[i] * (1 / (1 - p)) : 0, in float like the device (bit for bit). */
void ref_dropout_forward(float p, uint64_t seed, uint64_t step, const float *x, float *y, size_t n);

/* dx[i] = prev[i] + (keep[i] ? dy[i] * (1 / (1 - p)) : 0) in float; prev NULL: no prev. */
void ref_dropout_backward(float p, uint64_t seed, uint64_t step, const float *dy, const float *prev,
                          float *dx, size_t n);

#endif
