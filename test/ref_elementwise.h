/*
 * ref_elementwise.h: the C reference of the elementwise family, in double.
 *
 * Outputs are double arrays. A backward reference adds its gradient to `prev` when prev is
 * not NULL (the accumulate mode of the launchers) and writes it plainly when prev is NULL.
 * Shapes as in engine/ops/elementwise.h.
 */
#ifndef CLTRAIN_TEST_REF_ELEMENTWISE_H
#define CLTRAIN_TEST_REF_ELEMENTWISE_H

#include <stddef.h>
#include <stdint.h>

/* out = y + alpha * x. */
void ref_axpy_forward(size_t n, float alpha, const float *x, const float *y, double *out);

/* y = x; dx = prev + dy. */
void ref_copy_forward(size_t n, const float *x, double *y);
void ref_copy_backward(size_t n, const float *dy, const float *prev, double *dx);

/* y = a + b. Its backward is ref_copy_backward for each input. */
void ref_add_forward(size_t n, const float *a, const float *b, double *y);

/* y = a op b with numpy broadcasting (op '+', '-' or '*'): a [an axes] and b [bn axes]
 * aligned from their last axes, a size of 1 or a missing leading axis stretched; y has the
 * broadcast shape. The shapes must broadcast. */
void ref_broadcast_forward(char op, uint32_t an, const int64_t *as, const float *a, uint32_t bn,
                           const int64_t *bs, const float *b, double *y);

/* The gradient of input `which` (0: a, 1: b) of ref_broadcast_forward: dx = prev + the sum
 * over the outputs that read each element of dy, -dy (b of '-') or dy times the other
 * input ('*'). dx has the shape of that input. */
void ref_broadcast_backward(char op, int which, uint32_t an, const int64_t *as, const float *a,
                            uint32_t bn, const int64_t *bs, const float *b, const float *dy,
                            const float *prev, double *dx);

/* y = a * b; dx = prev + dy * other (other = b for da, a for db). */
void ref_mul_forward(size_t n, const float *a, const float *b, double *y);
void ref_mul_backward(size_t n, const float *dy, const float *other, const float *prev, double *dx);

/* y = alpha * x; dx = prev + alpha * dy. */
void ref_scale_forward(size_t n, float alpha, const float *x, double *y);
void ref_scale_backward(size_t n, float alpha, const float *dy, const float *prev, double *dx);

/* y [rows, cols] = x [rows, cols] + bias [cols] per row; dbias [cols] = prev + column sums
 * of dy [rows, cols]. dx is ref_copy_backward. */
void ref_bias_forward(size_t rows, size_t cols, const float *x, const float *bias, double *y);
void ref_bias_backward(size_t rows, size_t cols, const float *dy, const float *prev, double *dbias);

/* The sum of x [n]. */
double ref_sum_forward(size_t n, const float *x);

/* y [rows] = row sums of x [rows, cols] / divisor. */
void ref_sum_rows_forward(size_t rows, size_t cols, double divisor, const float *x, double *y);

/* dx [rows, cols] = prev + dy [rows] / divisor, broadcast along each row. */
void ref_sum_backward(size_t rows, size_t cols, double divisor, const float *dy, const float *prev,
                      double *dx);

/* y [n, out] = x [n, in] * weight^T + bias, weight [out, in], bias [out] or NULL. */
void ref_linear_forward(size_t n, size_t in, size_t out, const float *x, const float *weight,
                        const float *bias, double *y);

/* dx [n, in] = prev + dy [n, out] * weight [out, in]. */
void ref_linear_backward_x(size_t n, size_t in, size_t out, const float *weight, const float *dy,
                           const float *prev, double *dx);

/* dweight [out, in] = prev + dy^T * x [n, in]. */
void ref_linear_backward_weight(size_t n, size_t in, size_t out, const float *x, const float *dy,
                                const float *prev, double *dweight);

#endif
