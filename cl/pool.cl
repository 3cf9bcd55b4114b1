/*
 * pool.cl: 2-D pooling over NCHW tensors: max pool, average pool, global average pool.
 *
 * Letters: N batch, C channels, H x W input, KH x KW window, OH x OW output, planes = N * C.
 * Window (oy, ox) covers input rows oy * stride_h - pad_h .. + KH - 1 and columns
 * ox * stride_w - pad_w .. + KW - 1; OH = (H + 2 pad_h - KH) / stride_h + 1 (PyTorch with
 * ceil_mode false; OW likewise), and pad <= KH / 2 so that every window holds at least one
 * input element.
 *   max pool: padding is -infinity, never selected; the maximum is the FIRST largest
 *     element in window order (rows, then columns, ascending); a NaN is taken over any
 *     number, the first NaN in window order. argmax holds its index inside the input plane,
 *     iy * W + ix, as PyTorch's return_indices does.
 *   average pool: padding counts as zeros in the divisor (PyTorch's count_include_pad=True);
 *     in floor mode every window lies inside the padded input, so the divisor is always
 *     KH * KW.
 *   global average pool: [N, C, H, W] -> [N, C], the mean of each plane.
 *
 * Layouts (contiguous, row-major, every tensor at its int element offset):
 *     x, dx      [N, C, H, W]
 *     y, dy      [N, C, OH, OW]    (global average pool: [N, C])
 *     argmax     [N, C, OH, OW]    int
 *
 * Work-items (1-D, any work-group size; work-items past the real size return at once):
 *     maxpool2d_forward, avgpool2d_forward      one per output element, walking its window
 *     maxpool2d_backward, avgpool2d_backward    one per input element: a gather over the
 *         windows that contain it, in the fixed order (oy, ox) ascending; no atomics, no
 *         races, the same sum on every device
 *     global_avgpool_forward                    one per plane, summing it in order
 *     global_avgpool_backward                   one per input element
 *
 * Tunables: none.
 */

/* The first window row (or column) that contains input row i: the smallest o >= 0 with
 * o * stride - pad + k - 1 >= i. */
int pool_first_window(int i, int k, int stride, int pad)
{
    const int t = i + pad - k + 1; /* o * stride >= t */
    return t <= 0 ? 0 : (t + stride - 1) / stride;
}

/* The last window row (or column) that contains input row i, capped at out - 1: the largest
 * o with o * stride - pad <= i. */
int pool_last_window(int i, int stride, int pad, int out)
{
    const int o = (i + pad) / stride;
    return o < out - 1 ? o : out - 1;
}

/* Output element i = (plane, oy, ox) of [planes, OH, OW]: its window, clipped to the image,
 * covers input rows [y_lo, y_hi) and columns [x_lo, x_hi) of the plane. */
struct pool_window {
    int plane, y_lo, y_hi, x_lo, x_hi;
};

struct pool_window pool_window_of(int i, int h, int w, int kh, int kw, int stride_h, int stride_w,
                                  int pad_h, int pad_w, int oh, int ow)
{
    /* Remainders as r - q * s: LLVM turns a % next to a / into a `freeze`, which Oclgrind's
     * uninitialized-value checker cannot run. */
    const int r = i / ow, ox = i - r * ow;
    const int plane = r / oh, oy = r - plane * oh;
    const int y0 = oy * stride_h - pad_h, x0 = ox * stride_w - pad_w;
    return (struct pool_window){.plane = plane,
                                .y_lo = max(y0, 0),
                                .y_hi = min(y0 + kh, h),
                                .x_lo = max(x0, 0),
                                .x_hi = min(x0 + kw, w)};
}

/* Input element i = (plane, iy, ix) of [planes, H, W]: the windows that contain it are output
 * rows [oy_lo, oy_hi] and columns [ox_lo, ox_hi] of the plane, bounds included. */
struct pool_cover {
    int plane, iy, ix, oy_lo, oy_hi, ox_lo, ox_hi;
};

struct pool_cover pool_cover_of(int i, int h, int w, int kh, int kw, int stride_h, int stride_w,
                                int pad_h, int pad_w, int oh, int ow)
{
    const int r = i / w, ix = i - r * w; /* remainders as above */
    const int plane = r / h, iy = r - plane * h;
    return (struct pool_cover){.plane = plane,
                               .iy = iy,
                               .ix = ix,
                               .oy_lo = pool_first_window(iy, kh, stride_h, pad_h),
                               .oy_hi = pool_last_window(iy, stride_h, pad_h, oh),
                               .ox_lo = pool_first_window(ix, kw, stride_w, pad_w),
                               .ox_hi = pool_last_window(ix, stride_w, pad_w, ow)};
}

__kernel void maxpool2d_forward(int planes, int h, int w, int kh, int kw, int stride_h,
                                int stride_w, int pad_h, int pad_w, int oh, int ow,
                                int write_argmax, __global const float *x,
                                int x_off,                       /* [N, C, H, W] */
                                __global float *y, int y_off,    /* [N, C, OH, OW] */
                                __global int *argmax, int a_off) /* [N, C, OH, OW] */
{
    const int i = (int)get_global_id(0);
    if (i >= planes * oh * ow)
        return;
    const struct pool_window win =
        pool_window_of(i, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, oh, ow);
    __global const float *src = x + x_off + win.plane * h * w;
    float best = -INFINITY;
    int best_at = -1;
    for (int iy = win.y_lo; iy < win.y_hi; iy++)
        for (int ix = win.x_lo; ix < win.x_hi; ix++) {
            const float v = src[iy * w + ix];
            if (best_at < 0 || v > best || (isnan(v) && !isnan(best))) {
                best = v;
                best_at = iy * w + ix;
            }
        }
    y[y_off + i] = best;
    if (write_argmax)
        argmax[a_off + i] = best_at;
}

__kernel void maxpool2d_backward(int planes, int h, int w, int kh, int kw, int stride_h,
                                 int stride_w, int pad_h, int pad_w, int oh, int ow, int accumulate,
                                 __global const int *argmax, int a_off, /* [N, C, OH, OW] */
                                 __global const float *dy, int dy_off,  /* [N, C, OH, OW] */
                                 __global float *dx, int dx_off)        /* [N, C, H, W] */
{
    const int i = (int)get_global_id(0);
    if (i >= planes * h * w)
        return;
    const struct pool_cover cov =
        pool_cover_of(i, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, oh, ow);
    const int at = cov.iy * w + cov.ix;
    const int base = cov.plane * oh * ow;
    float acc = 0.0f;
    for (int oy = cov.oy_lo; oy <= cov.oy_hi; oy++)
        for (int ox = cov.ox_lo; ox <= cov.ox_hi; ox++) {
            const int o = base + oy * ow + ox;
            if (argmax[a_off + o] == at)
                acc += dy[dy_off + o];
        }
    dx[dx_off + i] = accumulate ? dx[dx_off + i] + acc : acc;
}

__kernel void avgpool2d_forward(int planes, int h, int w, int kh, int kw, int stride_h,
                                int stride_w, int pad_h, int pad_w, int oh, int ow,
                                __global const float *x, int x_off, /* [N, C, H, W] */
                                __global float *y, int y_off)       /* [N, C, OH, OW] */
{
    const int i = (int)get_global_id(0);
    if (i >= planes * oh * ow)
        return;
    const struct pool_window win =
        pool_window_of(i, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, oh, ow);
    __global const float *src = x + x_off + win.plane * h * w;
    float acc = 0.0f;
    for (int iy = win.y_lo; iy < win.y_hi; iy++)
        for (int ix = win.x_lo; ix < win.x_hi; ix++)
            acc += src[iy * w + ix];
    y[y_off + i] = acc / (float)(kh * kw);
}

__kernel void avgpool2d_backward(int planes, int h, int w, int kh, int kw, int stride_h,
                                 int stride_w, int pad_h, int pad_w, int oh, int ow, int accumulate,
                                 __global const float *dy, int dy_off, /* [N, C, OH, OW] */
                                 __global float *dx, int dx_off)       /* [N, C, H, W] */
{
    const int i = (int)get_global_id(0);
    if (i >= planes * h * w)
        return;
    const struct pool_cover cov =
        pool_cover_of(i, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, oh, ow);
    const int base = dy_off + cov.plane * oh * ow;
    float acc = 0.0f;
    for (int oy = cov.oy_lo; oy <= cov.oy_hi; oy++)
        for (int ox = cov.ox_lo; ox <= cov.ox_hi; ox++)
            acc += dy[base + oy * ow + ox];
    const float g = acc / (float)(kh * kw);
    dx[dx_off + i] = accumulate ? dx[dx_off + i] + g : g;
}

__kernel void global_avgpool_forward(int planes, int hw, __global const float *x,
                                     int x_off,                    /* [N, C, H * W] */
                                     __global float *y, int y_off) /* [N, C] */
{
    const int plane = (int)get_global_id(0);
    if (plane >= planes)
        return;
    __global const float *src = x + x_off + plane * hw;
    float acc = 0.0f;
    for (int j = 0; j < hw; j++)
        acc += src[j];
    y[y_off + plane] = acc / (float)hw;
}

__kernel void global_avgpool_backward(int planes, int hw, int accumulate, __global const float *dy,
                                      int dy_off,                     /* [N, C] */
                                      __global float *dx, int dx_off) /* [N, C, H * W] */
{
    const int i = (int)get_global_id(0);
    if (i >= planes * hw)
        return;
    const float g = dy[dy_off + i / hw] / (float)hw;
    dx[dx_off + i] = accumulate ? dx[dx_off + i] + g : g;
}
