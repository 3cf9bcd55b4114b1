/*
 * ref_loss.h: the C reference of the loss family (cl/loss.cl), in double, written from the
 * definitions rather than from the kernels' rearranged formulas.
 */
#ifndef CLTRAIN_TEST_REF_LOSS_H
#define CLTRAIN_TEST_REF_LOSS_H

#include "cltrain.h"

/* y[r, :] = softmax(x[r, :]); x, y [rows, cols]. */
void ref_softmax_forward(int64_t rows, int64_t cols, const float *x, double *y);

/* y[r, :] = log_softmax(x[r, :]); x, y [rows, cols]. */
void ref_log_softmax_forward(int64_t rows, int64_t cols, const float *x, double *y);

/* dx = y * (dy - sum(dy * y)) row by row, with y = softmax(x) computed here in double. */
void ref_softmax_backward(int64_t rows, int64_t cols, const float *x, const float *dy, double *dx);

/* dx = dy - softmax(x) * sum(dy) row by row. */
void ref_log_softmax_backward(int64_t rows, int64_t cols, const float *x, const float *dy,
                              double *dx);

/* The mean over counted rows of -sum_j target[r, j] log_softmax(logits)[r, j], target =
 * (1 - smoothing) onehot + smoothing / classes; a row counts when its label is in
 * [0, classes) and is not ignore_index; 0 with no counted row. When dlogits is not NULL it
 * receives d(loss * dloss) / dlogits [rows, classes]. */
double ref_cross_entropy(int64_t rows, int64_t classes, const float *logits, const int32_t *labels,
                         int32_t ignore_index, double smoothing, double dloss, double *dlogits);

/* mean((x - target)^2) over n elements (0 when n is 0); dx, when not NULL, receives
 * d(loss * dloss) / dx [n]. */
double ref_mse(int64_t n, const float *x, const float *target, double dloss, double *dx);

#endif
