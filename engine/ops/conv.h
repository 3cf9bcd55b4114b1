/*
 * conv.h: 2-D convolution over NCHW tensors, with stride, zero padding, dilation and groups
 * (kernels in cl/conv.cl, notes in docs/kernels/conv.md).
 *
 * Letters: N batch, C_in / C_out channels, G groups, H x W input, KH x KW kernel,
 * OH x OW output. Layouts, contiguous and row-major, PyTorch's:
 *     x, dx            [N, C_in, H, W]
 *     weight, dweight  [C_out, C_in / G, KH, KW]
 *     bias, dbias      [C_out]
 *     y, dy            [N, C_out, OH, OW]
 * with OH = (H + 2 pad_h - dil_h (KH - 1) - 1) / stride_h + 1 (OW likewise):
 *     y[n, co, oy, ox] = bias[co] + sum over ci in co's group, ky, kx of
 *         weight[co, ci - g C_in/G, ky, kx] * x[n, ci, oy stride_h - pad_h + ky dil_h,
 *                                                   ox stride_w - pad_w + kx dil_w]
 * (x is zero outside the image). G = C_in = C_out is a depthwise convolution.
 *
 * Method: the batch in chunks of up to `chunk` images; a chunk's columns (im2col of each
 * image, side by side) go through one GEMM per pass, strided-batched over the groups, and a
 * transposing copy moves between the GEMMs' [C_out, images, P] layout and NCHW (with the
 * bias added on the way out; a chunk of one image needs no copy). Backward the same columns give
 * dweight, and dx is a GEMM into the workspace followed by a gather (col2im) with no atomics.
 * When the batch is one chunk, the caller may give a buffer for its columns (`columns`,
 * [K, N, P] with K = C_in * KH * KW, P = OH * OW): the forward leaves them there and the
 * backward's dweight reads them instead of making them again (the same values, so the same
 * results bit for bit); the graph op keeps them as a cache aux buffer of its node.
 *
 * Every tensor and the workspace hold elements of the device's storage (dev->storage: fp32,
 * fp16 or bf16; docs/precision.md), and offsets count them; sums are in fp32 whatever it is.
 *
 * Launchers check their arguments, enqueue on dev->queue and return: they never allocate
 * and never block. A batch of 0 images enqueues nothing.
 */
#ifndef CLTRAIN_OPS_CONV_H
#define CLTRAIN_OPS_CONV_H

#include "internal.h"

/* The parameters of one convolution. oh and ow are outputs of clt__conv2d_resolve. */
struct clt__conv2d {
    int64_t n;                  /* batch, >= 0 */
    int64_t c_in, h, w;         /* input channels and size, >= 1 */
    int64_t c_out;              /* output channels, >= 1 */
    int64_t kh, kw;             /* kernel size, >= 1 */
    int64_t stride_h, stride_w; /* >= 1 */
    int64_t pad_h, pad_w;       /* zero padding on each side, >= 0 */
    int64_t dil_h, dil_w;       /* dilation, >= 1 */
    int64_t groups;             /* >= 1, divides c_in and c_out */
    int64_t oh, ow;             /* output size: filled in by clt__conv2d_resolve */
    int64_t chunk;              /* images per GEMM, >= 0; 0: clt__conv2d_resolve chooses */
};

/* The workspace a convolution's chunk may take, in bytes, unless one image needs more. */
#define CLT__CONV2D_WORKSPACE_CAP ((uint64_t)64 << 20)

/* Checks the parameters (log NULL: stderr) and fills in c->oh and c->ow, and c->chunk when
 * it is 0: as many images as fit in CLT__CONV2D_WORKSPACE_CAP (at least one), spread evenly
 * over the chunks the batch then takes; a chunk larger than the batch becomes the batch.
 * Every element count the kernels index (each tensor, a chunk's workspace) must stay below
 * 2^31.
 * CLT_ERR_INVALID_ARGUMENT, with a log line, when they are impossible or too large. */
enum clt_status clt__conv2d_resolve(const struct clt_log *log, struct clt__conv2d *c);

/* Bytes of workspace the forward and backward passes need: a chunk's columns and its GEMM
 * output, chunk * (K + C_out) * OH * OW elements with K = C_in * KH * KW, at 4 bytes each
 * (fp32; a 16-bit storage uses the first half); 0 for parameters clt__conv2d_resolve
 * rejects. */
uint64_t clt__conv2d_workspace_bytes(const struct clt__conv2d *c);

/* y = conv2d(x, weight) + bias. bias.mem NULL: no bias. workspace holds
 * clt__conv2d_workspace_bytes(c) bytes. columns.mem non-NULL (only for a batch in one chunk:
 * CLT_ERR_INVALID_ARGUMENT otherwise): the batch's columns are left there, for
 * clt__conv2d_backward. */
enum clt_status clt__conv2d_forward(struct clt_device *dev, const struct clt__conv2d *c,
                                    struct clt__buf x,      /* [N, C_in, H, W] */
                                    struct clt__buf weight, /* [C_out, C_in/G, KH, KW] */
                                    struct clt__buf bias,   /* [C_out] or mem NULL */
                                    struct clt__buf y,      /* [N, C_out, OH, OW] */
                                    struct clt__buf workspace,
                                    struct clt__buf columns); /* [K, N, P] or mem NULL */

/* Gradients of the forward pass for the upstream gradient dy: dx, dweight and dbias, each
 * skipped when its mem is NULL (weight is needed only for dx, x only for dweight).
 * accumulate false writes them, true adds to them. The workspace is needed for dx and
 * dweight (it may be NULL for dbias alone). columns: those the forward left for this x (a
 * batch in one chunk), read by dweight and left as they are, or mem NULL: dweight makes them
 * again from x. */
enum clt_status clt__conv2d_backward(struct clt_device *dev, const struct clt__conv2d *c,
                                     struct clt__buf x,       /* [N, C_in, H, W] */
                                     struct clt__buf weight,  /* [C_out, C_in/G, KH, KW] */
                                     struct clt__buf dy,      /* [N, C_out, OH, OW] */
                                     struct clt__buf dx,      /* [N, C_in, H, W] or NULL */
                                     struct clt__buf dweight, /* like weight, or NULL */
                                     struct clt__buf dbias,   /* [C_out] or NULL */
                                     struct clt__buf workspace,
                                     struct clt__buf columns, /* [K, N, P] or NULL */
                                     bool accumulate);

#endif /* CLTRAIN_OPS_CONV_H */
