/*
 * ref_shape.c: see ref_shape.h. Written index by index, as plainly as possible, and
 * independently of the kernels' [outer, axis, inner] and gather formulations: permute walks
 * full multi-indices, concat and slice walk x's elements and place each one.
 */
#include "ref_shape.h"

#include <stdbool.h>

static int64_t count_of(uint32_t ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (uint32_t k = 0; k < ndim; k++)
        n *= shape[k];
    return n;
}

/* The multi-index of linear index i in a row-major shape. */
static void unravel(int64_t i, uint32_t ndim, const int64_t *shape, int64_t *idx)
{
    for (uint32_t k = ndim; k-- > 0;) {
        idx[k] = i % shape[k];
        i /= shape[k];
    }
}

/* The linear index of a multi-index in a row-major shape. */
static int64_t ravel(uint32_t ndim, const int64_t *shape, const int64_t *idx)
{
    int64_t i = 0;
    for (uint32_t k = 0; k < ndim; k++)
        i = i * shape[k] + idx[k];
    return i;
}

void ref_embedding_forward(const float *table, const int32_t *ids, int64_t vocab, int64_t dim,
                           int64_t tokens, double *y)
{
    for (int64_t t = 0; t < tokens; t++) {
        bool valid = ids[t] >= 0 && ids[t] < vocab;
        for (int64_t d = 0; d < dim; d++)
            y[t * dim + d] = valid ? (double)table[ids[t] * dim + d] : 0.0;
    }
}

void ref_embedding_backward(const int32_t *ids, const float *dy, const float *prev, int64_t vocab,
                            int64_t dim, int64_t tokens, double *dtable)
{
    for (int64_t i = 0; i < vocab * dim; i++)
        dtable[i] = prev ? (double)prev[i] : 0.0;
    for (int64_t t = 0; t < tokens; t++) {
        if (ids[t] < 0 || ids[t] >= vocab)
            continue;
        for (int64_t d = 0; d < dim; d++)
            dtable[ids[t] * dim + d] += dy[t * dim + d];
    }
}

void ref_permute_forward(const float *x, uint32_t ndim, const int64_t *x_shape,
                         const uint32_t *perm, double *y)
{
    int64_t y_shape[8], xi[8], yi[8];
    for (uint32_t k = 0; k < ndim; k++)
        y_shape[k] = x_shape[perm[k]];
    int64_t n = count_of(ndim, x_shape);
    for (int64_t i = 0; i < n; i++) {
        unravel(i, ndim, x_shape, xi);
        for (uint32_t k = 0; k < ndim; k++)
            yi[k] = xi[perm[k]];
        y[ravel(ndim, y_shape, yi)] = x[i];
    }
}

void ref_permute_backward(const float *dy, const float *prev, uint32_t ndim, const int64_t *x_shape,
                          const uint32_t *perm, double *dx)
{
    int64_t y_shape[8], xi[8], yi[8];
    for (uint32_t k = 0; k < ndim; k++)
        y_shape[k] = x_shape[perm[k]];
    int64_t n = count_of(ndim, x_shape);
    for (int64_t i = 0; i < n; i++) {
        unravel(i, ndim, x_shape, xi);
        for (uint32_t k = 0; k < ndim; k++)
            yi[k] = xi[perm[k]];
        dx[i] = (prev ? (double)prev[i] : 0.0) + dy[ravel(ndim, y_shape, yi)];
    }
}

void ref_concat_forward(uint32_t count, const float *const *x, const int64_t *len, uint32_t ndim,
                        const int64_t *shape, uint32_t axis, double *y)
{
    int64_t xs[8], idx[8], at = 0;
    for (uint32_t k = 0; k < ndim; k++)
        xs[k] = shape[k];
    for (uint32_t c = 0; c < count; c++) {
        xs[axis] = len[c];
        int64_t n = count_of(ndim, xs);
        for (int64_t i = 0; i < n; i++) {
            unravel(i, ndim, xs, idx);
            idx[axis] += at;
            y[ravel(ndim, shape, idx)] = x[c][i];
        }
        at += len[c];
    }
}

void ref_concat_backward(const float *dy, uint32_t count, const float *const *prev,
                         const int64_t *len, uint32_t ndim, const int64_t *shape, uint32_t axis,
                         double *const *dx)
{
    int64_t xs[8], idx[8], at = 0;
    for (uint32_t k = 0; k < ndim; k++)
        xs[k] = shape[k];
    for (uint32_t c = 0; c < count; c++) {
        xs[axis] = len[c];
        int64_t n = count_of(ndim, xs);
        for (int64_t i = 0; i < n; i++) {
            unravel(i, ndim, xs, idx);
            idx[axis] += at;
            dx[c][i] = (prev ? (double)prev[c][i] : 0.0) + dy[ravel(ndim, shape, idx)];
        }
        at += len[c];
    }
}

void ref_slice_forward(const float *x, uint32_t ndim, const int64_t *x_shape, uint32_t axis,
                       int64_t start, int64_t len, double *y)
{
    int64_t ys[8], idx[8];
    for (uint32_t k = 0; k < ndim; k++)
        ys[k] = x_shape[k];
    ys[axis] = len;
    int64_t n = count_of(ndim, x_shape);
    for (int64_t i = 0; i < n; i++) {
        unravel(i, ndim, x_shape, idx);
        if (idx[axis] < start || idx[axis] >= start + len)
            continue;
        idx[axis] -= start;
        y[ravel(ndim, ys, idx)] = x[i];
    }
}

void ref_slice_backward(const float *dy, const float *prev, uint32_t ndim, const int64_t *x_shape,
                        uint32_t axis, int64_t start, int64_t len, double *dx)
{
    int64_t ys[8], idx[8];
    for (uint32_t k = 0; k < ndim; k++)
        ys[k] = x_shape[k];
    ys[axis] = len;
    int64_t n = count_of(ndim, x_shape);
    for (int64_t i = 0; i < n; i++) {
        unravel(i, ndim, x_shape, idx);
        double g = 0.0;
        if (idx[axis] >= start && idx[axis] < start + len) {
            idx[axis] -= start;
            g = dy[ravel(ndim, ys, idx)];
        }
        dx[i] = (prev ? (double)prev[i] : 0.0) + g;
    }
}
