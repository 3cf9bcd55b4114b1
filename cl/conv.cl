/*
 * conv.cl: the helper kernels of 2-D convolution (NCHW). The products themselves are GEMMs
 * (engine/gemm.c); these kernels move data between images and GEMM operands, for a chunk of
 * M images at a time whose columns lie side by side, so that one GEMM covers the chunk.
 *
 * Letters: N batch, M images in the chunk, C_in / C_out channels, H x W input, KH x KW
 * kernel, OH x OW output, P = OH * OW output pixels, K = C_in * KH * KW rows of the column
 * matrix. Geometry arguments shared by the kernels that touch images:
 *     c_in, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, oh, ow.
 * Input pixel of output pixel (oy, ox) and kernel tap (ky, kx):
 *     iy = oy * stride_h - pad_h + ky * dil_h,  ix = ox * stride_w - pad_w + kx * dil_w;
 * taps outside the image read zero (zero padding).
 *
 * Layouts (row-major, every tensor at its int element offset):
 *     x, dx      [M, C_in, H, W]   the chunk's images (the launcher passes the first one's
 *                                  offset)
 *     col, dcol  [K, M, P]         row k = (ci * KH + ky) * KW + kx, column m * P + p with
 *                                  p = oy * OW + ox; the rows of group g are contiguous, as
 *                                  the GEMMs want
 *     yt, dyt    [C_out, M, P]     the GEMMs' layout of the chunk's outputs
 *     y, dy      [M, C_out, P]     the chunk's outputs (NCHW)
 *     bias, db   [C_out]
 *
 * Work-items (1-D, any work-group size; work-items past the real size return at once):
 *     conv2d_im2col         one per element of col
 *     conv2d_col2im         one per element of dx: a gather over the taps that reach it,
 *                           in the fixed order (ky, kx) ascending; no atomics, no races
 *     conv2d_unpack         one per element of y: y = yt transposed, plus bias
 *     conv2d_pack           one per element of dyt: dyt = dy transposed
 *     conv2d_bias_backward  one per output channel: sums each image's plane in order, then
 *                           the per-image sums in image order (fixed order, two levels)
 * Consecutive work-items walk p, the contiguous dimension of both sides of every copy.
 *
 * Tunables: none.
 */

/* col[k, m, p] = x[m, ci, iy, ix] or 0 outside the image. */
__kernel void conv2d_im2col(int c_in, int h, int w, int kh, int kw, int stride_h, int stride_w,
                            int pad_h, int pad_w, int dil_h, int dil_w, int oh, int ow, int images,
                            __global const float *x, int x_off, /* [M, C_in, H, W] */
                            __global float *col, int col_off)   /* [K, M, P] */
{
    const int p_count = oh * ow, row = images * p_count;
    const int i = (int)get_global_id(0);
    if (i >= c_in * kh * kw * row)
        return;
    /* Digits of i in the mixed radix [C_in, KH, KW, M, OH, OW]. Remainders are written as
     * r - q * s: LLVM turns a % next to a / into a `freeze`, which Oclgrind's
     * uninitialized-value checker cannot run. */
    const int k = i / row, j = i - k * row;
    const int m = j / p_count, p = j - m * p_count;
    const int oy = p / ow, ox = p - oy * ow;
    const int r = k / kw, kx = k - r * kw;
    const int ci = r / kh, ky = r - ci * kh;
    const int iy = oy * stride_h - pad_h + ky * dil_h;
    const int ix = ox * stride_w - pad_w + kx * dil_w;
    float v = 0.0f;
    if (iy >= 0 && iy < h && ix >= 0 && ix < w)
        v = x[x_off + ((m * c_in + ci) * h + iy) * w + ix];
    col[col_off + i] = v;
}

/* dx[m, ci, iy, ix] (+)= sum of dcol[k, m, p] over the (tap, output pixel) pairs that read
 * it. */
__kernel void conv2d_col2im(int c_in, int h, int w, int kh, int kw, int stride_h, int stride_w,
                            int pad_h, int pad_w, int dil_h, int dil_w, int oh, int ow, int images,
                            int accumulate, __global const float *dcol,
                            int dcol_off,                   /* [K, M, P] */
                            __global float *dx, int dx_off) /* [M, C_in, H, W] */
{
    const int p_count = oh * ow, row = images * p_count;
    const int i = (int)get_global_id(0);
    if (i >= images * c_in * h * w)
        return;
    const int r = i / w, ix = i - r * w;
    const int plane = r / h, iy = r - plane * h; /* plane = m * C_in + ci */
    const int m = plane / c_in, ci = plane - m * c_in;
    const int base = dcol_off + m * p_count;
    float acc = 0.0f;
    for (int ky = 0; ky < kh; ky++) {
        /* ty = oy * stride_h for the output row whose tap ky lands on iy. It decreases as ky
         * grows, so once negative it stays negative. */
        const int ty = iy + pad_h - ky * dil_h;
        if (ty < 0)
            break;
        const int oy = ty / stride_h;
        if (oy * stride_h != ty || oy >= oh)
            continue;
        for (int kx = 0; kx < kw; kx++) {
            const int tx = ix + pad_w - kx * dil_w;
            if (tx < 0)
                break;
            const int ox = tx / stride_w;
            if (ox * stride_w != tx || ox >= ow)
                continue;
            const int k = (ci * kh + ky) * kw + kx;
            acc += dcol[base + k * row + oy * ow + ox];
        }
    }
    dx[dx_off + i] = accumulate ? dx[dx_off + i] + acc : acc;
}

/* y[m, c, p] = yt[c, m, p] + bias[c] (bias NULL: no bias). */
__kernel void conv2d_unpack(int images, int c_out, int p_count, __global const float *yt,
                            int yt_off,                               /* [C_out, M, P] */
                            __global const float *bias, int bias_off, /* [C_out] or NULL */
                            __global float *y, int y_off)             /* [M, C_out, P] */
{
    const int i = (int)get_global_id(0);
    if (i >= images * c_out * p_count)
        return;
    const int plane = i / p_count, p = i - plane * p_count; /* plane = m * C_out + c */
    const int m = plane / c_out, c = plane - m * c_out;
    const float v = yt[yt_off + (c * images + m) * p_count + p];
    y[y_off + i] = bias ? v + bias[bias_off + c] : v;
}

/* dyt[c, m, p] = dy[m, c, p]. */
__kernel void conv2d_pack(int images, int c_out, int p_count, __global const float *dy,
                          int dy_off,                       /* [M, C_out, P] */
                          __global float *dyt, int dyt_off) /* [C_out, M, P] */
{
    const int row = images * p_count;
    const int i = (int)get_global_id(0);
    if (i >= c_out * row)
        return;
    const int c = i / row, j = i - c * row;
    const int m = j / p_count, p = j - m * p_count;
    dyt[dyt_off + i] = dy[dy_off + (m * c_out + c) * p_count + p];
}

/* db[c] (+)= sum over n and p of dy[n, c, p]. */
__kernel void conv2d_bias_backward(int n, int c_out, int p_count, int accumulate,
                                   __global const float *dy, int dy_off, /* [N, C_out, P] */
                                   __global float *db, int db_off)       /* [C_out] */
{
    const int c = (int)get_global_id(0);
    if (c >= c_out)
        return;
    float total = 0.0f;
    for (int b = 0; b < n; b++) {
        const int base = dy_off + (b * c_out + c) * p_count;
        float plane = 0.0f;
        for (int p = 0; p < p_count; p++)
            plane += dy[base + p];
        total += plane;
    }
    db[db_off + c] = accumulate ? db[db_off + c] + total : total;
}
