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
 * Every one of them is store_t (the storage, cl/common.cl: read with LOAD, written with
 * STORE); arithmetic and sums are in float, so every element is rounded to the storage once.
 *
 * Work-items (NDRanges whose ids are coordinates, so no work-item divides per element:
 * conv2d_im2col divides three times per work-item, conv2d_col2im once per row and once per
 * tap of the row; any work-group shape; work-items past the real size return at once). The
 * row kernels take the elements lane, lane + lanes, ... of their rows, lanes =
 * get_global_size(0) (clt__row_lanes, engine/ops/pool.h: 1 on CPU devices); they copy, so
 * their results do not depend on the lanes:
 *     conv2d_im2col         2-D (lane, k * M + m): one per lane of a plane of col, its rows
 *                           oy in order: zeros, the input row's run, zeros
 *     conv2d_col2im         2-D (iy, m * C_in + ci): one per row of dx, a gather: the row
 *                           starts at 0 (or its values when accumulating), then each tap's
 *                           contiguous run of dcol is added to it in the fixed order (ky, kx)
 *                           ascending, so every pixel's sum is its old value (or 0) plus its
 *                           taps in that order; the work-item owns its row: no atomics, no
 *                           races. fp32 adds into dx in place; 16-bit storages sum chunks of
 *                           COL2IM_CHUNK pixels in float registers and store each once (the
 *                           same order, one rounding per pixel; measured on PoCL, the chunked
 *                           form is slower than the in-place one in fp32, hence two forms).
 *                           With stride_w 1 a tap's run is contiguous in dx (or the chunk) as
 *                           well as in dcol: a loop of its own that the compiler vectorizes,
 *                           the same additions in the same order
 *     conv2d_unpack         3-D (lane, c, m): one per lane of a row of y: y = yt transposed,
 *                           plus bias
 *     conv2d_pack           3-D (lane, m, c): one per lane of a row of dyt: dyt = dy
 *                           transposed
 *     conv2d_bias_backward  1-D, one per output channel: sums each image's plane in order,
 *                           then the per-image sums in image order (fixed order, two levels)
 * The launcher takes the engine's local shape (clt__enqueue_nd: dimension 0 whole when it
 * fits the work-group, then the others).
 *
 * Tunables: none (COL2IM_CHUNK, the pixels of dx a 16-bit col2im work-item sums at a time in
 * private memory, is fixed at 32, a row of the cnn's images: it changes no result).
 */

#define COL2IM_CHUNK 32

/* COPY(dst, i, src, j): dst[i] = src[j], a stored element moved as it is, and ZERO(dst, i):
 * dst[i] = +0. The same values as STORE(dst, i, LOAD(src, j)) and STORE(dst, i, 0.0f) (every
 * stored value widens and narrows back exactly; NaN payloads are kept whole), without the
 * conversions: PoCL's vstore_half_rte runs scalar, an fp16 copy through LOAD and STORE took
 * 20 times as long as this one (4M elements: 79 ms against 4 ms, fp32 18 ms). In fp32 they
 * are plain assignments. */
#if CLT_STORAGE == 32
#define COPY(dst, i, src, j) ((dst)[i] = (src)[j])
#define ZERO(dst, i) ((dst)[i] = 0.0f)
#else
#define COPY(dst, i, src, j) (((__global ushort *)(dst))[i] = ((__global const ushort *)(src))[j])
#define ZERO(dst, i) (((__global ushort *)(dst))[i] = 0)
#endif

/* Row oy of a plane of col: d[ox] = 0 for ox < lo and hi <= ox < ow, src[ox * stride_w]
 * for lo <= ox < hi; the columns lane, lane + lanes, ... */
void im2col_row(__global store_t *d, __global const store_t *src, int lo, int hi, int ow, int lane,
                int lanes, int stride_w)
{
    for (int ox = lane; ox < lo; ox += lanes)
        ZERO(d, ox);
    for (int ox = lo + lane; ox < hi; ox += lanes)
        COPY(d, ox, src, ox * stride_w);
    for (int ox = hi + lane; ox < ow; ox += lanes)
        ZERO(d, ox);
}

/* col[k, m, oy, ox] = x[m, ci, iy, ix] or 0 outside the image. Work-item (lane, z) writes the
 * columns ox = lane, lane + lanes, ... of every row oy of its plane of col: zeros left of the
 * image, the input row's run (stride_w apart) inside it, zeros right of it, three loops
 * without a branch per element. With one lane and stride_w 1 (CPU devices, the usual
 * convolution) the row is written by the same loops with those constants, unit-stride
 * copies and fills that a CPU compiler vectorizes (the general loops' runtime steps it does
 * not). */
__kernel void conv2d_im2col(int c_in, int h, int w, int kh, int kw, int stride_h, int stride_w,
                            int pad_h, int pad_w, int dil_h, int dil_w, int oh, int ow, int images,
                            __global const store_t *x, int x_off, /* [M, C_in, H, W] */
                            __global store_t *col, int col_off)   /* [K, M, P] */
{
    const int lane = (int)get_global_id(0), lanes = (int)get_global_size(0);
    const int z = (int)get_global_id(1);
    /* z = k * M + m, split once per work-item. Remainders are written as r - q * s: LLVM
     * turns a % next to a / into a `freeze`, which Oclgrind's uninitialized-value checker
     * cannot run. */
    const int k = z / images, m = z - k * images;
    const int r = k / kw, kx = k - r * kw;
    const int ci = r / kh, ky = r - ci * kh;
    if (k >= c_in * kh * kw)
        return;
    /* Output column ox reads ix = ox * stride_w + sx, inside the row for lo <= ox < hi. */
    const int sx = kx * dil_w - pad_w, last = w - 1 - sx;
    const int lo_in = min(sx >= 0 ? 0 : (stride_w - 1 - sx) / stride_w, ow);
    const int hi_in = max(last < 0 ? 0 : min(ow, last / stride_w + 1), lo_in);
    __global const store_t *plane = x + x_off + (m * c_in + ci) * h * w + sx;
    const bool unit = lanes == 1 && stride_w == 1;
    for (int oy = 0; oy < oh; oy++) {
        const int iy = oy * stride_h - pad_h + ky * dil_h;
        const bool inside = iy >= 0 && iy < h; /* a row outside the image: all zeros */
        const int lo = inside ? lo_in : ow, hi = inside ? hi_in : ow;
        __global store_t *d = col + col_off + (z * oh + oy) * ow;
        __global const store_t *src = plane + iy * w;
        if (unit)
            im2col_row(d, src, lo, hi, ow, 0, 1, 1);
        else
            im2col_row(d, src, lo, hi, ow, lane, lanes, stride_w);
    }
}

/* dx[m, ci, iy, :] (+)= the sum of dcol[k, m, oy, ox] over the (tap, output pixel) pairs that
 * read each of its pixels. */
__kernel void conv2d_col2im(int c_in, int h, int w, int kh, int kw, int stride_h, int stride_w,
                            int pad_h, int pad_w, int dil_h, int dil_w, int oh, int ow, int images,
                            int accumulate, __global const store_t *dcol,
                            int dcol_off,                     /* [K, M, P] */
                            __global store_t *dx, int dx_off) /* [M, C_in, H, W] */
{
    const int iy = (int)get_global_id(0), z = (int)get_global_id(1); /* z = m * C_in + ci */
    if (iy >= h || z >= images * c_in)
        return;
    const int m = z / c_in, ci = z - m * c_in;
    const int p_count = oh * ow, row = images * p_count;
    __global store_t *d = dx + dx_off + (z * h + iy) * w;
#if CLT_STORAGE == 32
    /* fp32: the taps add into the row of dx in place (store_t is float), a contiguous run at a
     * time. */
    if (!accumulate)
        for (int ix = 0; ix < w; ix++)
            d[ix] = 0.0f;
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
            /* Tap kx of output pixel ox reads ix = ox * stride_w + sx, in the row when
             * 0 <= ox * stride_w + sx <= w - 1. sx grows with kx. */
            const int sx = kx * dil_w - pad_w, last = w - 1 - sx;
            if (last < 0)
                break;
            const int lo = sx >= 0 ? 0 : (stride_w - 1 - sx) / stride_w;
            const int hi = min(ow, last / stride_w + 1);
            __global const store_t *s =
                dcol + dcol_off + ((ci * kh + ky) * kw + kx) * row + m * p_count + oy * ow;
            if (stride_w == 1) {
                /* A unit stride: the run is contiguous in dx too, a loop the compiler
                 * vectorizes (figures in docs/kernels/conv.md, "Limits"). */
                __global float *t = d + (lo + sx);
                __global const float *u = s + lo;
                for (int i = 0; i < hi - lo; i++)
                    t[i] += u[i];
            } else {
                for (int ox = lo; ox < hi; ox++)
                    d[ox * stride_w + sx] += s[ox];
            }
        }
    }
#else
    /* 16 bits: a chunk of the row summed in float registers, stored once. */
    for (int x0 = 0; x0 < w; x0 += COL2IM_CHUNK) {
        /* The pixels [x0, x1) of the row, summed in acc[ix - x0]. */
        const int x1 = min(x0 + COL2IM_CHUNK, w);
        float acc[COL2IM_CHUNK];
        for (int ix = x0; ix < x1; ix++)
            acc[ix - x0] = accumulate ? LOAD(d, ix) : 0.0f;
        for (int ky = 0; ky < kh; ky++) {
            /* ty = oy * stride_h for the output row whose tap ky lands on iy. It decreases as
             * ky grows, so once negative it stays negative. */
            const int ty = iy + pad_h - ky * dil_h;
            if (ty < 0)
                break;
            const int oy = ty / stride_h;
            if (oy * stride_h != ty || oy >= oh)
                continue;
            for (int kx = 0; kx < kw; kx++) {
                /* Tap kx of output pixel ox reads ix = ox * stride_w + sx, in the chunk when
                 * x0 <= ox * stride_w + sx <= x1 - 1. sx grows with kx. */
                const int sx = kx * dil_w - pad_w, last = x1 - 1 - sx;
                if (last < 0)
                    break;
                const int first = x0 - sx;
                const int lo = first <= 0 ? 0 : (first + stride_w - 1) / stride_w;
                const int hi = min(ow, last / stride_w + 1);
                __global const store_t *s =
                    dcol + dcol_off + ((ci * kh + ky) * kw + kx) * row + m * p_count + oy * ow;
                if (stride_w == 1) {
                    /* A unit stride: contiguous runs in acc too, as in fp32; the run's
                     * first pixel is acc[b] (an index, not a pointer walked past acc). */
                    const int b = lo + sx - x0;
                    __global const store_t *u = s + lo;
                    for (int i = 0; i < hi - lo; i++)
                        acc[b + i] += LOAD(u, i);
                } else {
                    for (int ox = lo; ox < hi; ox++)
                        acc[ox * stride_w + sx - x0] += LOAD(s, ox);
                }
            }
        }
        for (int ix = x0; ix < x1; ix++)
            STORE(d, ix, acc[ix - x0]);
    }
#endif
}

/* y[m, c, p] = yt[c, m, p] + bias[c] (bias NULL: no bias). Work-item (lane, c, m): the
 * positions p = lane, lane + lanes, ... of one row, contiguous in both layouts. */
__kernel void conv2d_unpack(int images, int c_out, int p_count, __global const store_t *yt,
                            int yt_off,                                 /* [C_out, M, P] */
                            __global const store_t *bias, int bias_off, /* [C_out] or NULL */
                            __global store_t *y, int y_off)             /* [M, C_out, P] */
{
    const int lane = (int)get_global_id(0), lanes = (int)get_global_size(0);
    const int c = (int)get_global_id(1), m = (int)get_global_id(2);
    if (c >= c_out || m >= images)
        return;
    __global const store_t *s = yt + yt_off + (c * images + m) * p_count;
    __global store_t *d = y + y_off + (m * c_out + c) * p_count;
    if (bias) {
        const float b = LOAD(bias, bias_off + c);
        for (int p = lane; p < p_count; p += lanes)
            STORE(d, p, LOAD(s, p) + b);
    } else {
        for (int p = lane; p < p_count; p += lanes)
            COPY(d, p, s, p);
    }
}

/* dyt[c, m, p] = dy[m, c, p]. Work-item (lane, m, c): one row, as in conv2d_unpack. */
__kernel void conv2d_pack(int images, int c_out, int p_count, __global const store_t *dy,
                          int dy_off,                         /* [M, C_out, P] */
                          __global store_t *dyt, int dyt_off) /* [C_out, M, P] */
{
    const int lane = (int)get_global_id(0), lanes = (int)get_global_size(0);
    const int m = (int)get_global_id(1), c = (int)get_global_id(2);
    if (m >= images || c >= c_out)
        return;
    __global const store_t *s = dy + dy_off + (m * c_out + c) * p_count;
    __global store_t *d = dyt + dyt_off + (c * images + m) * p_count;
    for (int p = lane; p < p_count; p += lanes)
        COPY(d, p, s, p);
}

/* db[c] (+)= sum over n and p of dy[n, c, p]. */
__kernel void conv2d_bias_backward(int n, int c_out, int p_count, int accumulate,
                                   __global const store_t *dy, int dy_off, /* [N, C_out, P] */
                                   __global store_t *db, int db_off)       /* [C_out] */
{
    const int c = (int)get_global_id(0);
    if (c >= c_out)
        return;
    float total = 0.0f;
    for (int b = 0; b < n; b++) {
        const int base = dy_off + (b * c_out + c) * p_count;
        float plane = 0.0f;
        for (int p = 0; p < p_count; p++)
            plane += LOAD(dy, base + p);
        total += plane;
    }
    STORE(db, db_off + c, accumulate ? LOAD(db, db_off + c) + total : total);
}
