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
 * x, y, dx and dy are store_t (the storage, cl/common.cl: read with LOAD, written with
 * STORE); comparisons and sums are in float, each element rounded to the storage once.
 *
 * Work-items (2-D or 3-D NDRanges, any work-group size; work-items past the real size return
 * at once). Coordinates come from get_global_id, dimension 0 the contiguous one, so no
 * work-item divides to find its element:
 *     maxpool2d_forward, avgpool2d_forward      (ox, oy, plane): one per output element,
 *         walking its window
 *     maxpool2d_forward_2x2, maxpool2d_backward_2x2  (lane, oy, plane): 2x2 windows, stride 2,
 *         no padding (the backward with H and W even): one per lane of an output row, taking
 *         its outputs lane, lane + lanes, ... (lanes = get_global_size(0), clt__row_lanes in
 *         engine/ops/pool.h: 1 on CPU devices); the same values as the general kernels, no
 *         sums, so nothing depends on the lanes
 *     maxpool2d_backward_cells, avgpool2d_backward_cells    (ox, oy, plane), only when windows
 *         do not overlap (stride >= window in both directions): one per output element, which
 *         writes every input element of its cell, the rows oy * stride_h - pad_h ..
 *         (oy + 1) * stride_h - pad_h - 1 (from row 0 for oy = 0, to row H - 1 for the last
 *         oy; columns likewise). The cells split the plane, each input element has one
 *         writer and at most one window: dy of that window where the element is its argmax
 *         (max) or inside it (average, dy / (KH * KW)), else 0. No atomics, no fill.
 *     maxpool2d_backward, avgpool2d_backward    (ix, iy, plane): one per input element, the
 *         general case: a gather over the windows that contain it, in the fixed order
 *         (oy, ox) ascending; the window rows come from iy, the columns from ix (two
 *         divisions by the stride each). No atomics, no races, the same sum on every device; where
 *         windows do not overlap, the cell kernels give the same values.
 *     global_avgpool_forward                    (plane), 1-D: one per plane, summing it in order
 *     global_avgpool_backward                   (t, plane): one per input element
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

/* Output element (plane, oy, ox): its window, clipped to the image, covers input rows
 * [y_lo, y_hi) and columns [x_lo, x_hi) of the plane. */
struct pool_window {
    int y_lo, y_hi, x_lo, x_hi;
};

struct pool_window pool_window_of(int oy, int ox, int h, int w, int kh, int kw, int stride_h,
                                  int stride_w, int pad_h, int pad_w)
{
    const int y0 = oy * stride_h - pad_h, x0 = ox * stride_w - pad_w;
    return (struct pool_window){
        .y_lo = max(y0, 0), .y_hi = min(y0 + kh, h), .x_lo = max(x0, 0), .x_hi = min(x0 + kw, w)};
}

/* The cell of output element (oy, ox) when windows do not overlap: rows [y_lo, y_hi) and
 * columns [x_lo, x_hi); the first cell of a row or column starts at 0, the last ends at the
 * image's edge, the others run from their window's start to the next window's. */
struct pool_window pool_cell_of(int oy, int ox, int h, int w, int stride_h, int stride_w, int pad_h,
                                int pad_w, int oh, int ow)
{
    return (struct pool_window){.y_lo = oy == 0 ? 0 : oy * stride_h - pad_h,
                                .y_hi = oy == oh - 1 ? h : (oy + 1) * stride_h - pad_h,
                                .x_lo = ox == 0 ? 0 : ox * stride_w - pad_w,
                                .x_hi = ox == ow - 1 ? w : (ox + 1) * stride_w - pad_w};
}

__kernel void maxpool2d_forward(int planes, int h, int w, int kh, int kw, int stride_h,
                                int stride_w, int pad_h, int pad_w, int oh, int ow,
                                int write_argmax, __global const store_t *x,
                                int x_off,                       /* [N, C, H, W] */
                                __global store_t *y, int y_off,  /* [N, C, OH, OW] */
                                __global int *argmax, int a_off) /* [N, C, OH, OW] */
{
    const int ox = (int)get_global_id(0), oy = (int)get_global_id(1);
    const int plane = (int)get_global_id(2);
    if (ox >= ow || oy >= oh || plane >= planes)
        return;
    const struct pool_window win =
        pool_window_of(oy, ox, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w);
    __global const store_t *src = x + x_off + plane * h * w;
    float best = -INFINITY;
    int best_at = -1;
    for (int iy = win.y_lo; iy < win.y_hi; iy++)
        for (int ix = win.x_lo; ix < win.x_hi; ix++) {
            const float v = LOAD(src, iy * w + ix);
            if (best_at < 0 || v > best || (isnan(v) && !isnan(best))) {
                best = v;
                best_at = iy * w + ix;
            }
        }
    const int o = (plane * oh + oy) * ow + ox;
    STORE(y, y_off + o, best);
    if (write_argmax)
        argmax[a_off + o] = best_at;
}

/* The maximum of a 2x2 window v0, v1, v2, v3 (window order) by maxpool2d_forward's rule: a
 * later value wins when larger, or when NaN over a number. Bitwise operators and selects, no
 * short circuit, so no branch on the data (whose outcome a CPU cannot predict). */
float pool_max4(float v0, float v1, float v2, float v3)
{
    float best = v0;
    best = ((v1 > best) | (isnan(v1) & !isnan(best))) ? v1 : best;
    best = ((v2 > best) | (isnan(v2) & !isnan(best))) ? v2 : best;
    best = ((v3 > best) | (isnan(v3) & !isnan(best))) ? v3 : best;
    return best;
}

/* The position (0 to 3) of best = pool_max4(v0, v1, v2, v3) in the window: the first value
 * equal to it, or the first NaN when it is NaN (a number equal to the maximum that came
 * earlier would have been kept: later values win only when larger). Integer arithmetic: a
 * chain of selects on these comparisons compiles to branches on PoCL. */
int pool_first4(float best, float v0, float v1, float v2)
{
    const int n0 = 1 - ((v0 == best) | isnan(v0)), n1 = 1 - ((v1 == best) | isnan(v1));
    const int n2 = 1 - ((v2 == best) | isnan(v2));
    return n0 * (1 + n1 * (1 + n2));
}

/* Max pool with 2x2 windows, stride 2, no padding (every window inside the image): the
 * selection of maxpool2d_forward, unrolled. Work-item (lane, oy, plane) takes the outputs
 * ox = lane, lane + lanes, ... of its output row, so with one lane per row (CPU devices) it
 * walks the row with unit stride and a CPU driver vectorizes the loop. */
__kernel void maxpool2d_forward_2x2(int planes, int h, int w, int oh, int ow, int write_argmax,
                                    __global const store_t *x, int x_off, /* [N, C, H, W] */
                                    __global store_t *y, int y_off,       /* [N, C, OH, OW] */
                                    __global int *argmax, int a_off)      /* [N, C, OH, OW] */
{
    const int lane = (int)get_global_id(0), lanes = (int)get_global_size(0);
    const int oy = (int)get_global_id(1), plane = (int)get_global_id(2);
    if (oy >= oh || plane >= planes)
        return;
    const int top = 2 * oy * w; /* the window row's first element in the plane */
    __global const store_t *r0 = x + x_off + plane * h * w + top, *r1 = r0 + w;
    const int o = (plane * oh + oy) * ow;
    __global store_t *yo = y + y_off + o;
    __global int *ao = argmax + a_off + o;
    if (write_argmax) {
        for (int ox = lane; ox < ow; ox += lanes) {
            const float v0 = LOAD(r0, 2 * ox), v1 = LOAD(r0, 2 * ox + 1);
            const float v2 = LOAD(r1, 2 * ox), v3 = LOAD(r1, 2 * ox + 1);
            const float best = pool_max4(v0, v1, v2, v3);
            const int k = pool_first4(best, v0, v1, v2); /* row k / 2, column k % 2 */
            STORE(yo, ox, best);
            ao[ox] = top + (k >> 1) * w + 2 * ox + (k & 1);
        }
    } else {
        for (int ox = lane; ox < ow; ox += lanes)
            STORE(yo, ox,
                  pool_max4(LOAD(r0, 2 * ox), LOAD(r0, 2 * ox + 1), LOAD(r1, 2 * ox),
                            LOAD(r1, 2 * ox + 1)));
    }
}

/* The backward of maxpool2d_forward_2x2 when H and W are even (the windows are the cells):
 * each output element writes its window of dx, dy where argmax points, else 0. Work-items as
 * in the forward kernel, so a lane writes the two input rows of its outputs. */
__kernel void maxpool2d_backward_2x2(int planes, int h, int w, int oh, int ow, int accumulate,
                                     __global const int *argmax, int a_off,  /* [N, C, OH, OW] */
                                     __global const store_t *dy, int dy_off, /* [N, C, OH, OW] */
                                     __global store_t *dx, int dx_off)       /* [N, C, H, W] */
{
    const int lane = (int)get_global_id(0), lanes = (int)get_global_size(0);
    const int oy = (int)get_global_id(1), plane = (int)get_global_id(2);
    if (oy >= oh || plane >= planes)
        return;
    const int top = 2 * oy * w;
    const int o = (plane * oh + oy) * ow;
    __global const int *ao = argmax + a_off + o;
    __global const store_t *go = dy + dy_off + o;
    __global store_t *r0 = dx + dx_off + plane * h * w + top, *r1 = r0 + w;
    for (int ox = lane; ox < ow; ox += lanes) {
        const int at = ao[ox] - top - 2 * ox;      /* 0, 1, w or w + 1 */
        const int g = as_int(0.0f + LOAD(go, ox)); /* the gather's 0 + dy */
        /* g where the argmax is, else +0: masks rather than selects, which a CPU compiler
         * may turn into branches on the data. */
        const float g0 = as_float(g & -(at == 0)), g1 = as_float(g & -(at == 1));
        const float g2 = as_float(g & -(at == w)), g3 = as_float(g & -(at == w + 1));
        if (accumulate) {
            STORE(r0, 2 * ox, LOAD(r0, 2 * ox) + g0);
            STORE(r0, 2 * ox + 1, LOAD(r0, 2 * ox + 1) + g1);
            STORE(r1, 2 * ox, LOAD(r1, 2 * ox) + g2);
            STORE(r1, 2 * ox + 1, LOAD(r1, 2 * ox + 1) + g3);
        } else {
            STORE(r0, 2 * ox, g0);
            STORE(r0, 2 * ox + 1, g1);
            STORE(r1, 2 * ox, g2);
            STORE(r1, 2 * ox + 1, g3);
        }
    }
}

/* Windows that do not overlap: output element (plane, oy, ox) writes its cell of dx. */
__kernel void maxpool2d_backward_cells(int planes, int h, int w, int kh, int kw, int stride_h,
                                       int stride_w, int pad_h, int pad_w, int oh, int ow,
                                       int accumulate, __global const int *argmax,
                                       int a_off,                              /* [N, C, OH, OW] */
                                       __global const store_t *dy, int dy_off, /* [N, C, OH, OW] */
                                       __global store_t *dx, int dx_off)       /* [N, C, H, W] */
{
    const int ox = (int)get_global_id(0), oy = (int)get_global_id(1);
    const int plane = (int)get_global_id(2);
    if (ox >= ow || oy >= oh || plane >= planes)
        return;
    const struct pool_window cell =
        pool_cell_of(oy, ox, h, w, stride_h, stride_w, pad_h, pad_w, oh, ow);
    const int o = (plane * oh + oy) * ow + ox;
    const int at = argmax[a_off + o];
    const float g = LOAD(dy, dy_off + o);
    __global store_t *dst = dx + dx_off + plane * h * w;
    for (int iy = cell.y_lo; iy < cell.y_hi; iy++)
        for (int ix = cell.x_lo; ix < cell.x_hi; ix++) {
            const int e = iy * w + ix;
            const float v = e == at ? 0.0f + g : 0.0f; /* the gather's 0 + dy */
            STORE(dst, e, accumulate ? LOAD(dst, e) + v : v);
        }
}

/* The general case: input element (plane, iy, ix) gathers from the windows containing it. */
__kernel void maxpool2d_backward(int planes, int h, int w, int kh, int kw, int stride_h,
                                 int stride_w, int pad_h, int pad_w, int oh, int ow, int accumulate,
                                 __global const int *argmax, int a_off,  /* [N, C, OH, OW] */
                                 __global const store_t *dy, int dy_off, /* [N, C, OH, OW] */
                                 __global store_t *dx, int dx_off)       /* [N, C, H, W] */
{
    const int ix = (int)get_global_id(0), iy = (int)get_global_id(1);
    const int plane = (int)get_global_id(2);
    if (ix >= w || iy >= h || plane >= planes)
        return;
    const int oy_lo = pool_first_window(iy, kh, stride_h, pad_h);
    const int oy_hi = pool_last_window(iy, stride_h, pad_h, oh);
    const int ox_lo = pool_first_window(ix, kw, stride_w, pad_w);
    const int ox_hi = pool_last_window(ix, stride_w, pad_w, ow);
    const int at = iy * w + ix;
    const int base = plane * oh * ow;
    float acc = 0.0f;
    for (int oy = oy_lo; oy <= oy_hi; oy++)
        for (int ox = ox_lo; ox <= ox_hi; ox++) {
            const int o = base + oy * ow + ox;
            if (argmax[a_off + o] == at)
                acc += LOAD(dy, dy_off + o);
        }
    const int i = plane * h * w + at;
    STORE(dx, dx_off + i, accumulate ? LOAD(dx, dx_off + i) + acc : acc);
}

__kernel void avgpool2d_forward(int planes, int h, int w, int kh, int kw, int stride_h,
                                int stride_w, int pad_h, int pad_w, int oh, int ow,
                                __global const store_t *x, int x_off, /* [N, C, H, W] */
                                __global store_t *y, int y_off)       /* [N, C, OH, OW] */
{
    const int ox = (int)get_global_id(0), oy = (int)get_global_id(1);
    const int plane = (int)get_global_id(2);
    if (ox >= ow || oy >= oh || plane >= planes)
        return;
    const struct pool_window win =
        pool_window_of(oy, ox, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w);
    __global const store_t *src = x + x_off + plane * h * w;
    float acc = 0.0f;
    for (int iy = win.y_lo; iy < win.y_hi; iy++)
        for (int ix = win.x_lo; ix < win.x_hi; ix++)
            acc += LOAD(src, iy * w + ix);
    STORE(y, y_off + (plane * oh + oy) * ow + ox, acc / (float)(kh * kw));
}

/* Windows that do not overlap: output element (plane, oy, ox) writes its cell of dx. */
__kernel void avgpool2d_backward_cells(int planes, int h, int w, int kh, int kw, int stride_h,
                                       int stride_w, int pad_h, int pad_w, int oh, int ow,
                                       int accumulate, __global const store_t *dy,
                                       int dy_off,                       /* [N, C, OH, OW] */
                                       __global store_t *dx, int dx_off) /* [N, C, H, W] */
{
    const int ox = (int)get_global_id(0), oy = (int)get_global_id(1);
    const int plane = (int)get_global_id(2);
    if (ox >= ow || oy >= oh || plane >= planes)
        return;
    const struct pool_window cell =
        pool_cell_of(oy, ox, h, w, stride_h, stride_w, pad_h, pad_w, oh, ow);
    const struct pool_window win =
        pool_window_of(oy, ox, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w);
    /* The gather's value: 0 + dy, divided. */
    const float g = (0.0f + LOAD(dy, dy_off + (plane * oh + oy) * ow + ox)) / (float)(kh * kw);
    __global store_t *dst = dx + dx_off + plane * h * w;
    for (int iy = cell.y_lo; iy < cell.y_hi; iy++)
        for (int ix = cell.x_lo; ix < cell.x_hi; ix++) {
            const bool in = iy >= win.y_lo && iy < win.y_hi && ix >= win.x_lo && ix < win.x_hi;
            const float v = in ? g : 0.0f;
            STORE(dst, iy * w + ix, accumulate ? LOAD(dst, iy * w + ix) + v : v);
        }
}

/* The general case: input element (plane, iy, ix) gathers from the windows containing it. */
__kernel void avgpool2d_backward(int planes, int h, int w, int kh, int kw, int stride_h,
                                 int stride_w, int pad_h, int pad_w, int oh, int ow, int accumulate,
                                 __global const store_t *dy, int dy_off, /* [N, C, OH, OW] */
                                 __global store_t *dx, int dx_off)       /* [N, C, H, W] */
{
    const int ix = (int)get_global_id(0), iy = (int)get_global_id(1);
    const int plane = (int)get_global_id(2);
    if (ix >= w || iy >= h || plane >= planes)
        return;
    const int oy_lo = pool_first_window(iy, kh, stride_h, pad_h);
    const int oy_hi = pool_last_window(iy, stride_h, pad_h, oh);
    const int ox_lo = pool_first_window(ix, kw, stride_w, pad_w);
    const int ox_hi = pool_last_window(ix, stride_w, pad_w, ow);
    const int base = dy_off + plane * oh * ow;
    float acc = 0.0f;
    for (int oy = oy_lo; oy <= oy_hi; oy++)
        for (int ox = ox_lo; ox <= ox_hi; ox++)
            acc += LOAD(dy, base + oy * ow + ox);
    const float g = acc / (float)(kh * kw);
    const int i = (plane * h + iy) * w + ix;
    STORE(dx, dx_off + i, accumulate ? LOAD(dx, dx_off + i) + g : g);
}

__kernel void global_avgpool_forward(int planes, int hw, __global const store_t *x,
                                     int x_off,                      /* [N, C, H * W] */
                                     __global store_t *y, int y_off) /* [N, C] */
{
    const int plane = (int)get_global_id(0);
    if (plane >= planes)
        return;
    __global const store_t *src = x + x_off + plane * hw;
    float acc = 0.0f;
    for (int j = 0; j < hw; j++)
        acc += LOAD(src, j);
    STORE(y, y_off + plane, acc / (float)hw);
}

__kernel void global_avgpool_backward(int planes, int hw, int accumulate,
                                      __global const store_t *dy, int dy_off, /* [N, C] */
                                      __global store_t *dx, int dx_off)       /* [N, C, H * W] */
{
    const int t = (int)get_global_id(0), plane = (int)get_global_id(1);
    if (t >= hw || plane >= planes)
        return;
    const float g = LOAD(dy, dy_off + plane) / (float)hw;
    const int i = plane * hw + t;
    STORE(dx, dx_off + i, accumulate ? LOAD(dx, dx_off + i) + g : g);
}
