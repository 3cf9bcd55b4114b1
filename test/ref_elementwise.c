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

/* The element of x [xn axes] that output coordinates c [n axes] read. */
static int64_t broadcast_index(uint32_t n, const int64_t *c, uint32_t xn, const int64_t *xs)
{
    int64_t i = 0;
    for (uint32_t d = 0; d < xn; d++) {
        int64_t cd = c[n - xn + d];
        i = i * xs[d] + (xs[d] == 1 ? 0 : cd);
    }
    return i;
}

/* The broadcast shape of a and b into ys [*n axes]; its element count. */
static int64_t broadcast_shape(uint32_t an, const int64_t *as, uint32_t bn, const int64_t *bs,
                               uint32_t *n, int64_t *ys)
{
    int64_t count = 1;
    *n = an > bn ? an : bn;
    for (uint32_t d = 0; d < *n; d++) {
        int64_t sa = d + an >= *n ? as[d + an - *n] : 1, sb = d + bn >= *n ? bs[d + bn - *n] : 1;
        ys[d] = sa == 1 ? sb : sa;
        count *= ys[d];
    }
    return count;
}

/* The coordinates c [n axes] of element i of a tensor of shape ys. */
static void coords(int64_t i, uint32_t n, const int64_t *ys, int64_t *c)
{
    for (uint32_t d = n; d-- > 0;) {
        c[d] = i % ys[d];
        i /= ys[d];
    }
}

void ref_broadcast_backward(char op, int which, uint32_t an, const int64_t *as, const float *a,
                            uint32_t bn, const int64_t *bs, const float *b, const float *dy,
                            const float *prev, double *dx)
{
    uint32_t n, xn = which ? bn : an, on = which ? an : bn;
    int64_t ys[8], c[8];
    const int64_t *xs = which ? bs : as, *os = which ? as : bs;
    const float *other = which ? a : b;
    int64_t count = broadcast_shape(an, as, bn, bs, &n, ys), nx = 1;
    for (uint32_t d = 0; d < xn; d++)
        nx *= xs[d];
    for (int64_t j = 0; j < nx; j++)
        dx[j] = 0.0;
    for (int64_t i = 0; i < count; i++) {
        coords(i, n, ys, c);
        double g = op == '*'            ? (double)dy[i] * other[broadcast_index(n, c, on, os)]
                   : op == '-' && which ? -(double)dy[i]
                                        : (double)dy[i];
        dx[broadcast_index(n, c, xn, xs)] += g;
    }
    for (int64_t j = 0; j < nx; j++)
        dx[j] += base(prev, (size_t)j);
}

void ref_broadcast_forward(char op, uint32_t an, const int64_t *as, const float *a, uint32_t bn,
                           const int64_t *bs, const float *b, double *y)
{
    uint32_t n;
    int64_t ys[8], c[8];
    int64_t count = broadcast_shape(an, as, bn, bs, &n, ys);
    for (int64_t i = 0; i < count; i++) {
        coords(i, n, ys, c);
        double av = a[broadcast_index(n, c, an, as)], bv = b[broadcast_index(n, c, bn, bs)];
        y[i] = op == '+' ? av + bv : op == '-' ? av - bv : av * bv;
    }
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
