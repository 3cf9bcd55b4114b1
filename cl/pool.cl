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
 * STORE); comparisons and sums are in float, each element rounded to the storage once (the
 * 2x2 kernels compare and copy bits instead, with the same results).
 *
 * Work-items (2-D or 3-D NDRanges, any work-group size; work-items past the real size return
 * at once). Coordinates come from get_global_id, dimension 0 the contiguous one, so no
 * work-item divides to find its element:
 *     maxpool2d_forward, avgpool2d_forward      (ox, oy, plane): one per output element,
 *         walking its window
 *     maxpool2d_forward_2x2, maxpool2d_backward_2x2, and their _pairs forms   (ox, oy, plane):
 *         2x2 windows, stride 2, no padding (the backward with H and W even): one per output
 *         element, no loop; the selection on integer keys of the storage's bits (the 2x2
 *         section below), y the chosen element's bits, so a NaN keeps its payload (the general
 *         kernel's STORE sets a NaN's quiet bit). The _pairs kernels (16-bit storage, W and
 *         the offset of x or dx even: engine/ops/pool.c) read and write each window row as
 *         one aligned word of two elements. The same values as the general kernels, no sums
 *         but the accumulated element's one addition.
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

/* ---- 2x2 windows, stride 2, no padding -------------------------------------------------
 *
 * The selection works on the storage's bits, never converting: each element becomes an
 * integer key that orders like its value (sign-magnitude: a negative number is -(bits with
 * the sign cleared), so -0 and +0 are both 0; every NaN is one key above +infinity), the
 * maximum is the first largest key, and y gets the winner's bits (a NaN keeps its payload).
 * POOL_BITS is the storage's bit pattern, POOL_INF the magnitude bits of +infinity (larger
 * magnitudes are NaN), POOL_QUIET a NaN's quiet bit, POOL_WIDEN / POOL_NARROW the float
 * value of bits and the bits of a float (LOAD / STORE's conversions). */
#if CLT_STORAGE == 32
#define POOL_BITS uint
#define POOL_SIGN 0x80000000u
#define POOL_INF 0x7f800000
#define POOL_QUIET 0x00400000u
#define POOL_WIDEN(b) as_float(b)
#define POOL_NARROW(v) as_uint(v)
#elif CLT_STORAGE == 16
#define POOL_BITS ushort
#define POOL_SIGN 0x8000u
#define POOL_INF 0x7c00
#define POOL_QUIET 0x0200u
#define POOL_WIDEN(b) f16_widen(b)
#define POOL_NARROW(v) f16_bits(v)
#else
#define POOL_BITS ushort
#define POOL_SIGN 0x8000u
#define POOL_INF 0x7f80
#define POOL_QUIET 0x0040u
#define POOL_WIDEN(b) as_float((uint)(b) << 16)
#define POOL_NARROW(v) bf16_bits(v)
#endif
#define POOL_AT(p, i) (((__global const POOL_BITS *)(p))[i])

/* The key of bits b: orders as the values, equal for -0 and +0, POOL_INF + 1 for every NaN.
 * Integer min, xor and subtraction only (a conditional negation), which vectorize. */
int pool_key(POOL_BITS b)
{
    const int mag = (int)(b & ~POOL_SIGN);
    const int neg = -(int)(((b & POOL_SIGN) != 0) & (mag <= POOL_INF)); /* -1: a negative number */
    return (min(mag, POOL_INF + 1) ^ neg) - neg;
}

/* pool_key(b) by other instructions (a multiply by +1 or -1): for one operand where two keys
 * meet in a comparison, as LOAD_ALT (cl/common.cl). */
int pool_key_alt(POOL_BITS b)
{
    const int mag = (int)(b & ~POOL_SIGN);
    const int neg = (int)(((b & POOL_SIGN) != 0) & (mag <= POOL_INF)); /* 1: a negative number */
    return min(mag, POOL_INF + 1) * (1 - 2 * neg);
}

/* The bits of 0.0f + v for the value v of bits b, as IEEE arithmetic gives them: -0 becomes
 * +0, a NaN gets its quiet bit (the payload kept), anything else stays. */
POOL_BITS pool_plus_zero(POOL_BITS b)
{
    const uint mag = b & ~POOL_SIGN;
    const POOL_BITS nan = (POOL_BITS)(b | POOL_QUIET);
    return mag > POOL_INF ? nan : (mag == 0 ? (POOL_BITS)0 : b);
}

/* Two neighbouring elements as one word (POOL_PAIR), the first at the lower address:
 * POOL_FIRST / POOL_SECOND split it, POOL_JOIN makes it. */
#if CLT_STORAGE == 32
#define POOL_PAIR ulong
#define POOL_HALF 32
#else
#define POOL_PAIR uint
#define POOL_HALF 16
#endif
#ifdef __ENDIAN_LITTLE__
#define POOL_FIRST(v) ((POOL_BITS)(v))
#define POOL_SECOND(v) ((POOL_BITS)((v) >> POOL_HALF))
#define POOL_JOIN(a, b) ((POOL_PAIR)(a) | ((POOL_PAIR)(b) << POOL_HALF))
#else
#define POOL_FIRST(v) ((POOL_BITS)((v) >> POOL_HALF))
#define POOL_SECOND(v) ((POOL_BITS)(v))
#define POOL_JOIN(a, b) ((POOL_PAIR)(b) | ((POOL_PAIR)(a) << POOL_HALF))
#endif

/* The window position (0, 1, w or w + 1: an offset from its first element) of the maximum of
 * the 2x2 window b0 b1 / b2 b3: the first largest key in window order, so the first NaN.
 * Taken in the order b0, b2, b1, b3, where b1 also wins a tie with b2, so that no comparison
 * has the keys of two neighbouring elements for operands, and b2's key comes by other
 * instructions than b0's: PoCL's SLP vectorizer would pair isomorphic work on two elements
 * into a 2-lane vector, which its work-group loop vectorizer cannot widen, and the kernel
 * would run one work-item at a time. Integer selects and max only. */
int pool_argmax4(POOL_BITS b0, POOL_BITS b1, POOL_BITS b2, POOL_BITS b3, int w)
{
    const int k1 = pool_key(b1), k2 = pool_key_alt(b2), k3 = pool_key(b3);
    int key = pool_key(b0), at = 0;
    at = k2 > key ? w : at;
    key = max(key, k2);
    const int take1 = (k1 > key) | ((k1 == key) & (at == w));
    at = take1 ? 1 : at;
    key = take1 ? k1 : key;
    return k3 > key ? w + 1 : at;
}

/* The element of b0 b1 / b2 b3 at window position at (0, 1, w or w + 1), by masks: a chain
 * of selects on at becomes a switch, which PoCL's work-group loop vectorizer refuses. */
POOL_BITS pool_pick4(POOL_BITS b0, POOL_BITS b1, POOL_BITS b2, POOL_BITS b3, int at, int w)
{
    const uint m0 = -(uint)(at == 0), m1 = -(uint)(at == 1);
    const uint m2 = -(uint)(at == w), m3 = -(uint)(at == w + 1);
    return (POOL_BITS)((b0 & m0) | (b1 & m1) | (b2 & m2) | (b3 & m3));
}

/* The backward of one element of a window: dx's new bits, from its old ones d, when
 * argmax points at it (`here`) or not: the gather's 0 + dy (g: pool_plus_zero of dy's bits)
 * there, +0 elsewhere; accumulating, s = dx + (0 + dy) there (pool_sum2x2: the one float
 * sum of the window, rounded to the storage once) and dx + 0 elsewhere. */
POOL_BITS pool_dx(POOL_BITS d, int here, POOL_BITS g, POOL_BITS s, int accumulate)
{
    return accumulate ? (here ? s : pool_plus_zero(d)) : (here ? g : (POOL_BITS)0);
}

/* The accumulated value at argmax's element of window d0 d1 / d2 d3 (position at):
 * dx + gf in float, gf = 0 + dy read by LOAD_ALT (two identical fp16 conversions would be
 * paired by PoCL's SLP vectorizer: cl/common.cl), rounded to the storage. */
POOL_BITS pool_sum2x2(POOL_BITS d0, POOL_BITS d1, POOL_BITS d2, POOL_BITS d3, int at, int w,
                      float gf)
{
    return POOL_NARROW(POOL_WIDEN(pool_pick4(d0, d1, d2, d3, at, w)) + gf);
}

/* Max pool with 2x2 windows, stride 2, no padding (every window inside the image): one
 * work-item per output element (ox, oy, plane), its window's first element at input row
 * 2 oy, column 2 ox. No loop; the addresses are affine in ox, so a CPU driver vectorizes
 * across dimension 0. This kernel reads single elements (stride 2 across work-items: PoCL
 * vectorizes that in fp32, not in 16 bits); maxpool2d_forward_2x2_pairs below reads pairs. */
__kernel void maxpool2d_forward_2x2(int planes, int h, int w, int oh, int ow, int write_argmax,
                                    __global const store_t *x, int x_off, /* [N, C, H, W] */
                                    __global store_t *y, int y_off,       /* [N, C, OH, OW] */
                                    __global int *argmax, int a_off)      /* [N, C, OH, OW] */
{
    const int ox = (int)get_global_id(0), oy = (int)get_global_id(1);
    const int plane = (int)get_global_id(2);
    if (ox >= ow || oy >= oh || plane >= planes)
        return;
    const int o = (plane * oh + oy) * ow + ox;
    const int top = 2 * oy * w + 2 * ox; /* in the plane */
    __global const store_t *p = x + x_off + plane * h * w + top;
    const POOL_BITS b0 = POOL_AT(p, 0), b1 = POOL_AT(p, 1);
    const POOL_BITS b2 = POOL_AT(p, w), b3 = POOL_AT(p, w + 1);
    const int at = pool_argmax4(b0, b1, b2, b3, w);
    ((__global POOL_BITS *)y)[y_off + o] = pool_pick4(b0, b1, b2, b3, at, w);
    if (write_argmax)
        argmax[a_off + o] = top + at;
}

/* maxpool2d_forward_2x2 when W and x_off are even: each window row is one aligned POOL_PAIR,
 * and neighbouring work-items read neighbouring words (unit stride), which PoCL vectorizes in
 * every storage. The same values. */
__kernel void maxpool2d_forward_2x2_pairs(int planes, int h, int w, int oh, int ow,
                                          int write_argmax, __global const store_t *x,
                                          int x_off,                       /* [N, C, H, W] */
                                          __global store_t *y, int y_off,  /* [N, C, OH, OW] */
                                          __global int *argmax, int a_off) /* [N, C, OH, OW] */
{
    const int ox = (int)get_global_id(0), oy = (int)get_global_id(1);
    const int plane = (int)get_global_id(2);
    if (ox >= ow || oy >= oh || plane >= planes)
        return;
    const int o = (plane * oh + oy) * ow + ox;
    __global const POOL_PAIR *p =
        (__global const POOL_PAIR *)x + (x_off + plane * h * w) / 2 + oy * w + ox;
    const POOL_PAIR t = p[0], u = p[w / 2]; /* the window's rows */
    const POOL_BITS b0 = POOL_FIRST(t), b1 = POOL_SECOND(t);
    const POOL_BITS b2 = POOL_FIRST(u), b3 = POOL_SECOND(u);
    const int at = pool_argmax4(b0, b1, b2, b3, w);
    ((__global POOL_BITS *)y)[y_off + o] = pool_pick4(b0, b1, b2, b3, at, w);
    if (write_argmax)
        argmax[a_off + o] = 2 * oy * w + 2 * ox + at;
}

/* The backward of maxpool2d_forward_2x2 when H and W are even (the windows are the cells),
 * work-items as in the forward: each output element writes its window of dx
 * (pool_dx). Bits only, but for the one accumulated sum. */
__kernel void maxpool2d_backward_2x2(int planes, int h, int w, int oh, int ow, int accumulate,
                                     __global const int *argmax, int a_off,  /* [N, C, OH, OW] */
                                     __global const store_t *dy, int dy_off, /* [N, C, OH, OW] */
                                     __global store_t *dx, int dx_off)       /* [N, C, H, W] */
{
    const int ox = (int)get_global_id(0), oy = (int)get_global_id(1);
    const int plane = (int)get_global_id(2);
    if (ox >= ow || oy >= oh || plane >= planes)
        return;
    const int o = (plane * oh + oy) * ow + ox;
    const int top = 2 * oy * w + 2 * ox;
    const int at = argmax[a_off + o] - top; /* 0, 1, w or w + 1 */
    const POOL_BITS g = pool_plus_zero(POOL_AT(dy + dy_off, o));
    __global POOL_BITS *p = (__global POOL_BITS *)(dx + dx_off) + plane * h * w + top;
    const POOL_BITS d0 = accumulate ? p[0] : 0, d1 = accumulate ? p[1] : 0;
    const POOL_BITS d2 = accumulate ? p[w] : 0, d3 = accumulate ? p[w + 1] : 0;
    const POOL_BITS s = pool_sum2x2(d0, d1, d2, d3, at, w, 0.0f + LOAD_ALT(dy, dy_off + o));
    p[0] = pool_dx(d0, at == 0, g, s, accumulate);
    p[1] = pool_dx(d1, at == 1, g, s, accumulate);
    p[w] = pool_dx(d2, at == w, g, s, accumulate);
    p[w + 1] = pool_dx(d3, at == w + 1, g, s, accumulate);
}

/* maxpool2d_backward_2x2 when dx_off is even: each window row of dx is one aligned POOL_PAIR,
 * read (accumulating) and written whole, at unit stride across work-items. */
__kernel void maxpool2d_backward_2x2_pairs(int planes, int h, int w, int oh, int ow, int accumulate,
                                           __global const int *argmax,
                                           int a_off, /* [N, C, OH, OW] */
                                           __global const store_t *dy,
                                           int dy_off,                       /* [N, C, OH, OW] */
                                           __global store_t *dx, int dx_off) /* [N, C, H, W] */
{
    const int ox = (int)get_global_id(0), oy = (int)get_global_id(1);
    const int plane = (int)get_global_id(2);
    if (ox >= ow || oy >= oh || plane >= planes)
        return;
    const int o = (plane * oh + oy) * ow + ox;
    const int at = argmax[a_off + o] - 2 * oy * w - 2 * ox;
    const POOL_BITS g = pool_plus_zero(POOL_AT(dy + dy_off, o));
    __global POOL_PAIR *p = (__global POOL_PAIR *)dx + (dx_off + plane * h * w) / 2 + oy * w + ox;
    const POOL_PAIR t = accumulate ? p[0] : 0, u = accumulate ? p[w / 2] : 0;
    const POOL_BITS d0 = POOL_FIRST(t), d1 = POOL_SECOND(t);
    const POOL_BITS d2 = POOL_FIRST(u), d3 = POOL_SECOND(u);
    const POOL_BITS s = pool_sum2x2(d0, d1, d2, d3, at, w, 0.0f + LOAD_ALT(dy, dy_off + o));
    p[0] =
        POOL_JOIN(pool_dx(d0, at == 0, g, s, accumulate), pool_dx(d1, at == 1, g, s, accumulate));
    p[w / 2] = POOL_JOIN(pool_dx(d2, at == w, g, s, accumulate),
                         pool_dx(d3, at == w + 1, g, s, accumulate));
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
