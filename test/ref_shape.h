/*
 * ref_shape.h: the C references of the shape family (cl/shape.cl), in double.
 *
 * Inputs are float as on the device; outputs are double. Where an op accumulates, `prev`
 * holds the output's old values (NULL when not accumulating) and out = prev + result.
 */
#ifndef CLTRAIN_TEST_REF_SHAPE_H
#define CLTRAIN_TEST_REF_SHAPE_H

#include <stdint.h>

/* y [tokens, dim] = table [vocab, dim] rows picked by ids; 0 for ids outside [0, vocab). */
void ref_embedding_forward(const float *table, const int32_t *ids, int64_t vocab, int64_t dim,
                           int64_t tokens, double *y);

/* dtable [vocab, dim] = prev + sum of dy[t, :] over tokens t with ids[t] == v. */
void ref_embedding_backward(const int32_t *ids, const float *dy, const float *prev, int64_t vocab,
                            int64_t dim, int64_t tokens, double *dtable);

/* y = x.permute(perm) made contiguous; x has shape x_shape (ndim dims). */
void ref_permute_forward(const float *x, uint32_t ndim, const int64_t *x_shape,
                         const uint32_t *perm, double *y);

/* dx (x_shape) = prev + dy (x_shape permuted) permuted back. */
void ref_permute_backward(const float *dy, const float *prev, uint32_t ndim, const int64_t *x_shape,
                          const uint32_t *perm, double *dx);

/* y (shape) = the inputs x[k] (len[k] along axis) one after the other along axis. */
void ref_concat_forward(uint32_t count, const float *const *x, const int64_t *len, uint32_t ndim,
                        const int64_t *shape, uint32_t axis, double *y);

/* dx[k] = prev[k] (or 0 when prev is NULL) + input k's slot of dy (shape). */
void ref_concat_backward(const float *dy, uint32_t count, const float *const *prev,
                         const int64_t *len, uint32_t ndim, const int64_t *shape, uint32_t axis,
                         double *const *dx);

/* y = x[..., start:start+len, ...] along axis; x has shape x_shape. */
void ref_slice_forward(const float *x, uint32_t ndim, const int64_t *x_shape, uint32_t axis,
                       int64_t start, int64_t len, double *y);

/* dx (x_shape) = dy inside the slice, 0 outside, plus prev (when not NULL) everywhere. */
void ref_slice_backward(const float *dy, const float *prev, uint32_t ndim, const int64_t *x_shape,
                        uint32_t axis, int64_t start, int64_t len, double *dx);

#endif
