/*
 * pool.h: 2-D max and average pooling and global average pooling over NCHW tensors
 * (kernels in cl/pool.cl, notes in docs/kernels/pool.md).
 *
 * Letters: N batch, C channels, H x W input, KH x KW window, OH x OW output.
 * Layouts, contiguous and row-major: x, dx [N, C, H, W]; y, dy, argmax [N, C, OH, OW];
 * global average pool y, dy [N, C]. Window (oy, ox) covers input rows
 * oy * stride_h - pad_h ... + KH - 1 and columns ox * stride_w - pad_w ... + KW - 1, with
 *     OH = (H + 2 pad_h - KH) / stride_h + 1    (PyTorch, ceil_mode=False; OW likewise).
 *
 * Max pool: padding is -infinity and never selected; y is the first largest element in
 * window order (rows, then columns); a NaN wins over numbers (the first NaN). argmax holds
 * the index of that element in its input plane, iy * W + ix (PyTorch's return_indices).
 * Average pool: padding counts as zeros and the divisor is always KH * KW (PyTorch's
 * default count_include_pad=True; in floor mode no window reaches past the padding).
 *
 * Backward passes: where windows overlap, a gather: each input element sums, in a fixed
 * order, the gradients of the windows that contain it (max pool: whose argmax it is); where
 * they do not (stride >= window both ways), each output element writes the input elements
 * of its cell, with the same values. No atomics; results do not depend on the work-group
 * size. accumulate false writes dx, true adds to it.
 *
 * x, y, dx and dy hold elements of the device's storage (dev->storage: fp32, fp16 or bf16;
 * docs/precision.md), argmax ints; offsets count elements of each. Sums are in fp32.
 *
 * Launchers check their arguments, enqueue on dev->queue and return: they never allocate
 * and never block. N = 0 or C = 0 enqueues nothing.
 */
#ifndef CLTRAIN_OPS_POOL_H
#define CLTRAIN_OPS_POOL_H

#include "internal.h"

/* The parameters of one 2-D pooling. oh and ow are outputs of clt__pool2d_resolve. */
struct clt__pool2d {
    int64_t n, c;               /* batch and channels, >= 0 */
    int64_t h, w;               /* input size, >= 1 */
    int64_t kh, kw;             /* window size, >= 1 */
    int64_t stride_h, stride_w; /* >= 1 */
    int64_t pad_h, pad_w;       /* padding on each side, 0 <= pad <= window / 2 */
    int64_t oh, ow;             /* output size: filled in by clt__pool2d_resolve */
};

/* Checks the parameters (log NULL: stderr) and fills in p->oh and p->ow. Element counts
 * must stay below 2^31. CLT_ERR_INVALID_ARGUMENT, with a log line, otherwise. */
enum clt_status clt__pool2d_resolve(const struct clt_log *log, struct clt__pool2d *p);

/* y = max over each window; when argmax.mem is non-NULL, also the index of the element
 * chosen (needed by the backward pass). */
enum clt_status clt__maxpool2d_forward(struct clt_device *dev, const struct clt__pool2d *p,
                                       struct clt__buf x,       /* [N, C, H, W] */
                                       struct clt__buf y,       /* [N, C, OH, OW] */
                                       struct clt__buf argmax); /* int [N, C, OH, OW] or NULL */

/* dx (+)= the sum of dy over the windows whose argmax is that element. */
enum clt_status clt__maxpool2d_backward(struct clt_device *dev, const struct clt__pool2d *p,
                                        struct clt__buf argmax, /* int [N, C, OH, OW] */
                                        struct clt__buf dy,     /* [N, C, OH, OW] */
                                        struct clt__buf dx,     /* [N, C, H, W] */
                                        bool accumulate);

/* y = sum over each window / (KH * KW), padding counted as zeros. */
enum clt_status clt__avgpool2d_forward(struct clt_device *dev, const struct clt__pool2d *p,
                                       struct clt__buf x,  /* [N, C, H, W] */
                                       struct clt__buf y); /* [N, C, OH, OW] */

/* dx (+)= the sum of dy over the windows containing that element / (KH * KW). */
enum clt_status clt__avgpool2d_backward(struct clt_device *dev, const struct clt__pool2d *p,
                                        struct clt__buf dy, /* [N, C, OH, OW] */
                                        struct clt__buf dx, /* [N, C, H, W] */
                                        bool accumulate);

/* y[n, c] = mean of x[n, c, :, :]. n, c >= 0, h, w >= 1. */
enum clt_status clt__global_avgpool_forward(struct clt_device *dev, int64_t n, int64_t c, int64_t h,
                                            int64_t w, struct clt__buf x, /* [N, C, H, W] */
                                            struct clt__buf y);           /* [N, C] */

/* dx[n, c, :, :] (+)= dy[n, c] / (H * W). */
enum clt_status clt__global_avgpool_backward(struct clt_device *dev, int64_t n, int64_t c,
                                             int64_t h, int64_t w, struct clt__buf dy, /* [N, C] */
                                             struct clt__buf dx, /* [N, C, H, W] */
                                             bool accumulate);

#endif /* CLTRAIN_OPS_POOL_H */
