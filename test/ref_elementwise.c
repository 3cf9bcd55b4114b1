/*
 * ref_elementwise.c: see ref_elementwise.h.
 */
#include "ref_elementwise.h"

/* The value a backward reference starts from. */
static double base(const float *prev, size_t i)
{
    return prev ? (double)prev[i] : 0.0;
}

void ref_axpy_forward(size_t n, float alpha, const float *x, const float *y, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (double)y[i] + (double)alpha * x[i];
}

void ref_copy_forward(size_t n, const float *x, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
}

void ref_copy_backward(size_t n, const float *dy, const float *prev, double *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = base(prev, i) + dy[i];
}

void ref_add_forward(size_t n, const float *a, const float *b, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = (double)a[i] + b[i];
}

void ref_mul_forward(size_t n, const float *a, const float *b, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = (double)a[i] * b[i];
}

void ref_mul_backward(size_t n, const float *dy, const float *other, const float *prev, double *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = base(prev, i) + (double)dy[i] * other[i];
}

void ref_scale_forward(size_t n, float alpha, const float *x, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = (double)alpha * x[i];
}

void ref_scale_backward(size_t n, float alpha, const float *dy, const float *prev, double *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = base(prev, i) + (double)alpha * dy[i];
}

void ref_bias_forward(size_t rows, size_t cols, const float *x, const float *bias, double *y)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            y[r * cols + c] = (double)x[r * cols + c] + bias[c];
}

void ref_bias_backward(size_t rows, size_t cols, const float *dy, const float *prev, double *dbias)
{
    for (size_t c = 0; c < cols; c++) {
        double acc = 0.0;
        for (size_t r = 0; r < rows; r++)
            acc += dy[r * cols + c];
        dbias[c] = base(prev, c) + acc;
    }
}

double ref_sum_forward(size_t n, const float *x)
{
    double acc = 0.0;
    for (size_t i = 0; i < n; i++)
        acc += x[i];
    return acc;
}

void ref_sum_rows_forward(size_t rows, size_t cols, double divisor, const float *x, double *y)
{
    for (size_t r = 0; r < rows; r++)
        y[r] = ref_sum_forward(cols, x + r * cols) / divisor;
}

void ref_sum_backward(size_t rows, size_t cols, double divisor, const float *dy, const float *prev,
                      double *dx)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            dx[r * cols + c] = base(prev, r * cols + c) + dy[r] / divisor;
}

void ref_linear_forward(size_t n, size_t in, size_t out, const float *x, const float *weight,
                        const float *bias, double *y)
{
    for (size_t i = 0; i < n; i++)
        for (size_t o = 0; o < out; o++) {
            double acc = bias ? (double)bias[o] : 0.0;
            for (size_t k = 0; k < in; k++)
                acc += (double)x[i * in + k] * weight[o * in + k];
            y[i * out + o] = acc;
        }
}

void ref_linear_backward_x(size_t n, size_t in, size_t out, const float *weight, const float *dy,
                           const float *prev, double *dx)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < in; k++) {
            double acc = 0.0;
            for (size_t o = 0; o < out; o++)
                acc += (double)dy[i * out + o] * weight[o * in + k];
            dx[i * in + k] = base(prev, i * in + k) + acc;
        }
}

void ref_linear_backward_weight(size_t n, size_t in, size_t out, const float *x, const float *dy,
                                const float *prev, double *dweight)
{
    for (size_t o = 0; o < out; o++)
        for (size_t k = 0; k < in; k++) {
            double acc = 0.0;
            for (size_t i = 0; i < n; i++)
                acc += (double)dy[i * out + o] * x[i * in + k];
            dweight[o * in + k] = base(prev, o * in + k) + acc;
        }
}
