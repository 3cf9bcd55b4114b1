/*
 * conv.cl: the helper kernels of 2-D convolution (NCHW). The products themselves are GEMMs
 * (engine/gemm.c); these kernels move data between images and GEMM operands.
 *
 * Letters: N batch, C_in / C_out channels, H x W input, KH x KW kernel, OH x OW output,
 * P = OH * OW output pixels, K = C_in * KH * KW rows of the column matrix.
 * Geometry arguments shared by the kernels that touch images:
 *     c_in, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, oh, ow.
 * Input pixel of output pixel (oy, ox) and kernel tap (ky, kx):
 *     iy = oy * stride_h - pad_h + ky * dil_h,  ix = ox * stride_w - pad_w + kx * dil_w;
 * taps outside the image read zero (zero padding).
 *
 * Layouts (row-major, every tensor at its int element offset):
 *     x, dx      [C_in, H, W]    one image (the launcher passes each image's offset)
 *     col, dcol  [K, P]          row k = (ci * KH + ky) * KW + kx, column p = oy * OW + ox;
 *                                the rows of group g are contiguous, as the GEMMs want
 *     y, dy      [N, C_out, OH, OW]
 *     bias, db   [C_out]
 *
 * Work-items (1-D, any work-group size; work-items past the real size return at once):
 *     conv2d_im2col         one per element of col
 *     conv2d_col2im         one per element of dx: a gather over the taps that reach it,
 *                           in the fixed order (ky, kx) ascending; no atomics, no races
 *     conv2d_bias_forward   one per element of y
 *     conv2d_bias_backward  one per output channel: sums each image's plane in order, then
 *                           the per-image sums in image order (fixed order, two levels)
 *
 * Tunables: none.
 */

/* col[k, p] = x[ci, iy, ix] or 0 outside the image. */
__kernel void conv2d_im2col(int c_in, int h, int w, int kh, int kw, int stride_h, int stride_w,
                            int pad_h, int pad_w, int dil_h, int dil_w, int oh, int ow,
                            __global const float *x, int x_off, /* [C_in, H, W] */
                            __global float *col, int col_off)   /* [K, P] */
{
    const int p_count = oh * ow;
    const int i = (int)get_global_id(0);
    if (i >= c_in * kh * kw * p_count)
        return;
    /* Digits of i in the mixed radix [C_in, KH, KW, OH, OW]. Remainders are written as
     * r - q * s: LLVM turns a % next to a / into a `freeze`, which Oclgrind's
     * uninitialized-value checker cannot run. */
    const int k = i / p_count, p = i - k * p_count;
    const int oy = p / ow, ox = p - oy * ow;
    const int r = k / kw, kx = k - r * kw;
    const int ci = r / kh, ky = r - ci * kh;
    const int iy = oy * stride_h - pad_h + ky * dil_h;
    const int ix = ox * stride_w - pad_w + kx * dil_w;
    float v = 0.0f;
    if (iy >= 0 && iy < h && ix >= 0 && ix < w)
        v = x[x_off + (ci * h + iy) * w + ix];
    col[col_off + i] = v;
}

/* dx[ci, iy, ix] (+)= sum of dcol[k, p] over the (tap, output pixel) pairs that read it. */
__kernel void conv2d_col2im(int c_in, int h, int w, int kh, int kw, int stride_h, int stride_w,
                            int pad_h, int pad_w, int dil_h, int dil_w, int oh, int ow,
                            int accumulate, __global const float *dcol, int dcol_off, /* [K, P] */
                            __global float *dx, int dx_off) /* [C_in, H, W] */
{
    const int p_count = oh * ow;
    const int i = (int)get_global_id(0);
    if (i >= c_in * h * w)
        return;
    const int r = i / w, ix = i - r * w;
    const int ci = r / h, iy = r - ci * h;
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
            acc += dcol[dcol_off + k * p_count + oy * ow + ox];
        }
    }
    dx[dx_off + i] = accumulate ? dx[dx_off + i] + acc : acc;
}

/* y[n, c, p] += bias[c]. */
__kernel void conv2d_bias_forward(int total, int c_out, int p_count, __global const float *bias,
                                  int bias_off,                 /* [C_out] */
                                  __global float *y, int y_off) /* [N, C_out, P] */
{
    const int i = (int)get_global_id(0);
    if (i >= total)
        return;
    const int plane = i / p_count; /* n * C_out + c */
    const int c = plane - plane / c_out * c_out;
    y[y_off + i] += bias[bias_off + c];
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
