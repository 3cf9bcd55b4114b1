/*
 * shape.h: ops that move data (kernels in cl/shape.cl): embedding lookup, permute, concat,
 * slice, and the views reshape and flatten, which need no kernel.
 *
 * Tensors are dense and row-major, F32 except the ids (I32); an F32 tensor (marked F32
 * below) holds elements of the device's storage (dev->storage: fp32, fp16 or bf16,
 * docs/precision.md), sums and accumulation in fp32. Launchers take buffers with element
 * offsets (struct clt__buf, in elements of the tensor's type) and shapes as int64_t; every
 * tensor must end within its buffer (checked against CL_MEM_SIZE) and before element 2^31,
 * since kernels index with int. They set arguments and enqueue on dev->queue: they never
 * allocate and never block. Bad arguments (NULL device or buffer, negative sizes, shapes
 * that do not match) return CLT_ERR_INVALID_ARGUMENT with a line in the log. Sizes of 0 are
 * allowed and enqueue nothing (except where a backward must still clear its gradient).
 *
 * Every backward takes `accumulate`: false writes the gradient (dx = ...), true adds to it
 * (dx += ...).
 */
#ifndef CLTRAIN_OPS_SHAPE_H
#define CLTRAIN_OPS_SHAPE_H

#include "internal.h"

/* ==== embedding: y[t, :] = table[ids[t], :] ============================================= */

/* y [tokens, dim] = rows of table [vocab, dim] picked by ids [tokens] (I32). A row whose id
 * lies outside [0, vocab) is written as zeros. */
enum clt_status clt__embedding_forward(struct clt_device *dev,
                                       struct clt__buf table, /* [vocab, dim] F32 */
                                       struct clt__buf ids,   /* [tokens] I32 */
                                       struct clt__buf y,     /* [tokens, dim] F32 */
                                       int64_t vocab, int64_t dim, int64_t tokens);

/* Bytes of workspace clt__embedding_backward needs: the token indices sorted by id (tokens
 * rounded up to a power of two, at least 2) and the start of every id's group (vocab + 1),
 * as int32. 0 when the sizes are impossible (negative, or too large for int indices). */
size_t clt__embedding_workspace_bytes(int64_t vocab, int64_t tokens);

/* dtable[v, :] (+)= sum of dy[t, :] over the tokens t with ids[t] == v, summed in increasing
 * t. Without accumulate, rows no token refers to become 0. Tokens whose id lies outside
 * [0, vocab) contribute nothing. Deterministic, no atomics: the token indices are first
 * sorted by (id, t) into the workspace (a bitonic sort, O(tokens log^2 tokens) work), then
 * one work-item per (v, d) sums its group: O(tokens * dim + vocab * dim) work. Launches:
 * (L^2 + 3L) / 2 + 3 with L = log2(n2 / 2W), W the sort's work-group size (3 when
 * tokens <= 2W). */
enum clt_status clt__embedding_backward(struct clt_device *dev,
                                        struct clt__buf ids,       /* [tokens] I32 */
                                        struct clt__buf dy,        /* [tokens, dim] F32 */
                                        struct clt__buf dtable,    /* [vocab, dim] F32 */
                                        struct clt__buf workspace, /* I32, see above */
                                        int64_t vocab, int64_t dim, int64_t tokens,
                                        bool accumulate);

/* ==== permute: y = x.permute(perm), made contiguous ===================================== */

/* x has shape x_shape[0..ndim) (ndim <= CLT_MAX_DIMS); y has shape
 * [x_shape[perm[0]], ..., x_shape[perm[ndim-1]]] and y[i_0, ..., i_{ndim-1}] is x at the index
 * whose dimension perm[k] is i_k. perm must be a permutation of 0..ndim-1. */
enum clt_status clt__permute_forward(struct clt_device *dev, struct clt__buf x, /* x_shape, F32 */
                                     struct clt__buf y, /* x_shape permuted, F32 */
                                     uint32_t ndim, const int64_t *x_shape, const uint32_t *perm);

/* dx (+)= dy permuted back by the inverse of perm. x_shape and perm as in the forward. */
enum clt_status clt__permute_backward(struct clt_device *dev,
                                      struct clt__buf dy, /* x_shape permuted, F32 */
                                      struct clt__buf dx, /* x_shape, F32 */
                                      uint32_t ndim, const int64_t *x_shape, const uint32_t *perm,
                                      bool accumulate);

/* ==== concat: y = cat(x[0], ..., x[count-1]) along axis ================================ */

/* shape (ndim dimensions) is y's shape; input k has the same shape except len[k] along
 * `axis`, and shape[axis] must equal the sum of len. Input k lands at offset
 * len[0] + ... + len[k-1] along axis. One launch per input. */
enum clt_status clt__concat_forward(struct clt_device *dev, uint32_t count,
                                    const struct clt__buf *x, /* [count], x[k]: len[k] on axis */
                                    const int64_t *len,       /* [count] */
                                    struct clt__buf y,        /* shape, F32 */
                                    uint32_t ndim, const int64_t *shape, uint32_t axis);

/* dx[k] (+)= the slot of dy that holds input k. Shapes as in the forward. An entry of dx
 * whose buffer is NULL is skipped (that input needs no gradient, or gets it in another call
 * with the other value of accumulate). */
enum clt_status clt__concat_backward(struct clt_device *dev, struct clt__buf dy, /* shape */
                                     uint32_t count, const struct clt__buf *dx,  /* [count] */
                                     const int64_t *len,                         /* [count] */
                                     uint32_t ndim, const int64_t *shape, uint32_t axis,
                                     bool accumulate);

/* ==== slice: y = x[..., start:start+len, ...] along axis ================================ */

/* x has shape x_shape; y has the same shape except len along axis, and holds
 * x[..., start + a, ...] at y[..., a, ...]. Needs 0 <= start, start + len <= x_shape[axis]. */
enum clt_status clt__slice_forward(struct clt_device *dev, struct clt__buf x, /* x_shape, F32 */
                                   struct clt__buf y, /* x_shape with len on axis, F32 */
                                   uint32_t ndim, const int64_t *x_shape, uint32_t axis,
                                   int64_t start, int64_t len);

/* dx[..., start + a, ...] (+)= dy[..., a, ...]; without accumulate, the rest of dx becomes 0,
 * with it the rest is left as it is. */
enum clt_status clt__slice_backward(struct clt_device *dev,
                                    struct clt__buf dy, /* x_shape with len on axis, F32 */
                                    struct clt__buf dx, /* x_shape, F32 */
                                    uint32_t ndim, const int64_t *x_shape, uint32_t axis,
                                    int64_t start, int64_t len, bool accumulate);

/* ==== Views: reshape and flatten (no kernel, no device work) ============================ */

/* *out = the same memory as *in (arena, offset, dtype) with a new shape of ndim dimensions.
 * One entry of shape may be -1: it is inferred from the element count. The element count
 * must be unchanged. */
enum clt_status clt__view_reshape(const struct clt_view *in, uint32_t ndim, const int64_t *shape,
                                  struct clt_view *out);

/* *out = *in with dimensions first..last (inclusive) merged into one. */
enum clt_status clt__view_flatten(const struct clt_view *in, uint32_t first, uint32_t last,
                                  struct clt_view *out);

#endif /* CLTRAIN_OPS_SHAPE_H */
