/*
 * elementwise.cl: basic tensor arithmetic, sums and the bias of the linear layer.
 *
 *   fill_forward        y = value
 *   copy_forward        y = x
 *   copy_backward       dx (+)= dy          (also the backward of add and of bias for x)
 *   axpy_forward        y += alpha * x      (fused: one rounding)
 *   add_forward         y = a + b
 *   mul_forward         y = a * b
 *   mul_backward        dx (+)= dy * other  (da with other = b, db with other = a)
 *   scale_forward       y = alpha * x
 *   scale_backward      dx (+)= alpha * dy
 *   bias_forward        y[r, c] = x[r, c] + bias[c]
 *   mul_broadcast_forward     y[r, c] = x[r, c] * s[c]
 *   mul_broadcast_backward_x  dx[r, c] (+)= dy[r, c] * s[c]
 *   sum_axis            dst[o, p, i] (+)= sign * (sum over the p-th `chunk` of k < count of
 *                       src[o, k, i], times x[o, k, i] when `product`) / divisor: the bias
 *                       gradient (outer = 1, over the rows), mul_broadcast's ds (product),
 *                       row sums and means (inner = 1), and a broadcast gradient along one
 *                       stretched axis; the launcher (clt__sum_axis) runs it in rounds
 *   sub_forward         y = a - b
 *   broadcast_forward   y = a op b (op: CLT__CL_BINARY_ADD, _SUB, _MUL), a and b stretched
 *                       along the axes they lack (numpy broadcasting, see below)
 *   broadcast_backward  dx[j, p] (+)= sign * sum over the p-th `chunk` of the `count`
 *                       outputs i that read x[j] of dy[i] (times other at i when
 *                       `product`): the gradient of either input, or its partial sums
 *   sum_backward        dx[r, c] (+)= dy[r] / divisor
 *   sum_partials        part[j] = sum of x[j], x[j + parts], x[j + 2 parts], ... (< n)
 *   sum_finish          y[0] = (sum of x[0..n)) / divisor
 *   broadcast_backward_part, _wide, _last; sum_axis_part, _wide, _last, and sum_axis4's and
 *   sum_axis16's;
 *   sum_axis_fold, sum_axis4_fold, sum_axis16_fold: two rounds of sum_axis in one launch
 *   (counts of at most 64 chunks), the same bits;
 *   sum_partials_wide, sum_finish_wide: the same with float partial sums in or out (below)
 * divisor is 1 for sums and the number of summed elements for means. The full sum of n
 * elements runs sum_partials with parts = ceil(n / 256) as often as needed to bring the
 * count to 256 or fewer, then sum_finish; the launcher owns that constant.
 *
 * Buffers: every tensor is dense and row-major, in the storage (store_t: float, or 16 bits
 * in a 16-bit build, read with LOAD and written with STORE, cl/common.cl), passed as a
 * __global pointer and an int element offset (x, x_off). Every operation and every sum is in
 * float registers; the partial sums that the multi-round reductions leave in a workspace
 * are float whatever the storage (the _part, _wide and _last variants below). Elementwise tensors
 * have n elements; bias, broadcast products and row reductions see x as [rows, cols], bias, s and
 * their gradients as [cols], row sums and their dy as [rows]. An elementwise output may be the same
 * memory as an input (same offset): each work-item reads its element before writing it.
 *
 * Broadcasts: the output's axes, merged where neighbours are stretched alike and without
 * its axes of size 1, arrive innermost first as s0..s5 (ndim of them, at most
 * CLT__CL_BROADCAST_DIMS; unused axes 1). broadcast_forward takes each input's stride along
 * every axis (a0..a5, b0..b5: 0 where it is stretched; each input is dense over the axes it
 * has); broadcast_backward a mask per input (xmask for the gradient's input, omask for the
 * other one), bit d set when that input has axis d and clear when it is stretched along it.
 * The output is dense over all axes. broadcast_backward enumerates the `count`
 * outputs of an element of x in a fixed order (the stretched axes, innermost fastest) and
 * sums the `chunk` of them numbered from p * chunk on; with parts = 1 and chunk = count it
 * is the whole gradient, else the launcher reduces the [nx, parts] partials in further
 * rounds (x stretched along parts) until one part is left. No work-item loops more than
 * 256 * (1 + ndim) times, far below llvmpipe's 65 535 iterations per invocation, shared by
 * all its loops, past which it ends them.
 *
 * Work-items (any work-group size; items past the real size return at once). No work-item
 * divides to find its coordinates except broadcast_forward's on z and broadcast_backward:
 *   elementwise ops, sub_forward                  1-D, one per output element
 *   copy_backward_rows                            2-D (c, r), 32 x rows, one per element
 *   bias_forward, sum_backward,
 *   mul_broadcast_forward and _backward_x         2-D (c, r), one per output element
 *   bias_forward_cols32 (cols a multiple of 32)   the same, the column not checked
 *   sum_axis                                      3-D (i, p, o), one per partial sum, walking
 *                                                 its chunk in order (at most `chunk` terms)
 *   sum_axis4 (inner a multiple of 4)             the same, four neighbouring columns each
 *   sum_axis16 (inner a multiple of 16)           the same, sixteen neighbouring columns each
 *   broadcast_forward                             3-D (c0, c1, z), z over axes 2..5
 *   broadcast_backward                            1-D, one per element of dx [nx, parts]
 *   sum_partials                                  1-D, one per partial sum
 *   sum_finish                                    one, the first
 * clt__sum_axis sums chunks of CLT__SUM_AXIS_CHUNK (64) entries into [outer, parts, inner]
 * partials, then the partials the same way, round after round, until one chunk is left,
 * which the last round sums with sign, divisor and accumulate: the order depends only on
 * count, and no work-item loops more than 64 times.
 *
 * Sums use Neumaier's compensated summation in a fixed order, so a result depends only on
 * the data and the shape, never on the launch shape, and its error stays within a few ulp
 * of the sum of absolute values instead of growing with the length.
 *
 * Backward kernels take `accumulate`: 0 writes dx without reading it, 1 adds to it.
 *
 * Tunables: none.
 */

/* One step of Neumaier's compensated sum: acc.x is the running sum, acc.y the low-order
 * part that rounding dropped from it. Exact while no term exceeds the float range. The
 * larger and the smaller operand by selects, not a branch: the same operations, so the same
 * bits, but PoCL ran sum_partials over 2^20 floats in 1.4 to 1.9 ms so against 3.8 to 4.1
 * with the branch (the ops section's `sum.fwd`, 2-core AMD EPYC). */
float2 sum_add(float2 acc, float v)
{
    const float t = acc.x + v;
    const int first = fabs(acc.x) >= fabs(v);
    const float big = first ? acc.x : v, small = first ? v : acc.x;
    acc.y += (big - t) + small;
    acc.x = t;
    return acc;
}

/* The value of a compensated sum. An infinite running sum is the answer as it stands: its
 * compensation is NaN. */
float sum_value(float2 acc)
{
    return isinf(acc.x) ? acc.x : acc.x + acc.y;
}

/* Partial sums (the workspace of the multi-round reductions) are float whatever the
 * storage: these read and write them with the storage macros' signatures, so that one body
 * serves both kinds of buffer. */
#define LOADF(p, i) ((p)[i])
#define STOREF(p, i, v) ((p)[i] = (v))
#define VLOADF4(i, p) vload4((i), (p))
#define VSTOREF4(v, i, p) vstore4((v), (i), (p))
#define VLOADF16(i, p) vload16((i), (p))
#define VSTOREF16(v, i, p) vstore16((v), (i), (p))

/* Stores a gradient: overwrite, or add to what is there. */
void grad_store(__global store_t *dx, int i, int accumulate, float g)
{
    STORE(dx, i, accumulate ? LOAD(dx, i) + g : g);
}

/* Stores the gradient a * b: overwrite, or add it to what is there in one rounding. */
void grad_store_product(__global store_t *dx, int i, int accumulate, float a, float b)
{
    STORE(dx, i, accumulate ? fma(a, b, LOAD(dx, i)) : a * b);
}

__kernel void fill_forward(int n, float value, __global store_t *y, int y_off) /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    STORE(y, y_off + i, value);
}

__kernel void copy_forward(int n, __global const store_t *x, int x_off, /* [n] */
                           __global store_t *y, int y_off)              /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    STORE(y, y_off + i, LOAD(x, x_off + i));
}

__kernel void copy_backward(int n, int accumulate, __global const store_t *dy, int dy_off, /* [n] */
                            __global store_t *dx, int dx_off)                              /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    grad_store(dx + dx_off, i, accumulate, LOAD(dy, dy_off + i));
}

/* copy_backward over whole rows of 32 elements (global 32 x rows): only the row is checked,
 * and dx's old value is read whether or not it is added. A check of each element, or a load
 * under the per-launch accumulate, makes the accesses masked ones, which AVX2 has not for
 * 16-bit elements: PoCL ran copy_backward one work-item at a time in fp16 and bf16. The
 * launcher runs copy_backward on the last n % 32 elements. */
__kernel void copy_backward_rows(int rows, int accumulate, __global const store_t *dy,
                                 int dy_off,                       /* [32 rows] */
                                 __global store_t *dx, int dx_off) /* [32 rows] */
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (r >= rows)
        return;
    const int i = 32 * r + c;
    const float g = LOAD(dy, dy_off + i), old = LOAD_ALT(dx, dx_off + i);
    STORE(dx, dx_off + i, accumulate ? old + g : g);
}

__kernel void axpy_forward(int n, float alpha, __global const store_t *x, int x_off, /* [n] */
                           __global store_t *y, int y_off)                           /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    STORE(y, y_off + i, fma(alpha, LOAD(x, x_off + i), LOAD(y, y_off + i)));
}

__kernel void add_forward(int n, __global const store_t *a, int a_off, /* [n] */
                          __global const store_t *b, int b_off,        /* [n] */
                          __global store_t *y, int y_off)              /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    STORE(y, y_off + i, LOAD(a, a_off + i) + LOAD(b, b_off + i));
}

__kernel void mul_forward(int n, __global const store_t *a, int a_off, /* [n] */
                          __global const store_t *b, int b_off,        /* [n] */
                          __global store_t *y, int y_off)              /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    STORE(y, y_off + i, LOAD(a, a_off + i) * LOAD(b, b_off + i));
}

__kernel void mul_backward(int n, int accumulate, __global const store_t *dy, int dy_off, /* [n] */
                           __global const store_t *other, int other_off,                  /* [n] */
                           __global store_t *dx, int dx_off)                              /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    grad_store_product(dx + dx_off, i, accumulate, LOAD(dy, dy_off + i),
                       LOAD(other, other_off + i));
}

__kernel void scale_forward(int n, float alpha, __global const store_t *x, int x_off, /* [n] */
                            __global store_t *y, int y_off)                           /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    STORE(y, y_off + i, alpha * LOAD(x, x_off + i));
}

__kernel void scale_backward(int n, float alpha, int accumulate, __global const store_t *dy,
                             int dy_off,                       /* [n] */
                             __global store_t *dx, int dx_off) /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    grad_store_product(dx + dx_off, i, accumulate, alpha, LOAD(dy, dy_off + i));
}

__kernel void bias_forward(int rows, int cols, __global const store_t *x,
                           int x_off,                                  /* [rows, cols] */
                           __global const store_t *bias, int bias_off, /* [cols] */
                           __global store_t *y, int y_off)             /* [rows, cols] */
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= cols || r >= rows)
        return;
    const int i = r * cols + c;
    STORE(y, y_off + i, LOAD(x, x_off + i) + LOAD(bias, bias_off + c));
}

/* bias_forward when cols is a multiple of 32: the launch then rounds no column up (its local
 * size in dimension 0 is a power of two up to 32, engine/internal.h), so only the row is
 * checked. A check of the column made every load and store a masked one, which AVX2 has not
 * for 16-bit elements: PoCL ran bias_forward one work-item at a time in fp16 and bf16. The
 * bias is read with LOAD_ALT (two loads in one expression, cl/common.cl). */
__kernel void bias_forward_cols32(int rows, int cols, __global const store_t *x,
                                  int x_off,                                  /* [rows, cols] */
                                  __global const store_t *bias, int bias_off, /* [cols] */
                                  __global store_t *y, int y_off)             /* [rows, cols] */
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (r >= rows)
        return;
    const int i = r * cols + c;
    STORE(y, y_off + i, LOAD(x, x_off + i) + LOAD_ALT(bias, bias_off + c));
}

__kernel void mul_broadcast_forward(int rows, int cols, __global const store_t *x,
                                    int x_off,                            /* [rows, cols] */
                                    __global const store_t *s, int s_off, /* [cols] */
                                    __global store_t *y, int y_off)       /* [rows, cols] */
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= cols || r >= rows)
        return;
    const int i = r * cols + c;
    STORE(y, y_off + i, LOAD(x, x_off + i) * LOAD(s, s_off + c));
}

__kernel void mul_broadcast_backward_x(int rows, int cols, int accumulate,
                                       __global const store_t *dy, int dy_off, /* [rows, cols] */
                                       __global const store_t *s, int s_off,   /* [cols] */
                                       __global store_t *dx, int dx_off)       /* [rows, cols] */
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= cols || r >= rows)
        return;
    const int i = r * cols + c;
    grad_store_product(dx + dx_off, i, accumulate, LOAD(dy, dy_off + i), LOAD(s, s_off + c));
}

__kernel void sub_forward(int n, __global const store_t *a, int a_off, /* [n] */
                          __global const store_t *b, int b_off,        /* [n] */
                          __global store_t *y, int y_off)              /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    STORE(y, y_off + i, LOAD(a, a_off + i) - LOAD(b, b_off + i));
}

/* Takes the digit of *r in radix s (the next axis, innermost first): adds it times sa to *ai
 * and times sb to *bi and leaves the quotient in *r. Axes of size 1 are skipped. */
void take_digit2(int *r, int *ai, int *bi, int s, int sa, int sb)
{
    if (s != 1) {
        const int q = *r / s, c = *r - q * s; /* no %: see shape.cl's take_digit */
        *ai += c * sa;
        *bi += c * sb;
        *r = q;
    }
}

__kernel void broadcast_forward(int op, int s0, int s1, int s2, int s3, int s4, int s5, int a0,
                                int a1, int a2, int a3, int a4, int a5, int b0, int b1, int b2,
                                int b3, int b4, int b5, __global const store_t *a,
                                int a_off,                            /* the axes of amask */
                                __global const store_t *b, int b_off, /* the axes of bmask */
                                __global store_t *y, int y_off)       /* [s5, ..., s0] */
{
    const int c0 = get_global_id(0), c1 = get_global_id(1), z = get_global_id(2);
    if (c0 >= s0 || c1 >= s1 || z >= s2 * s3 * s4 * s5)
        return;
    int ai = c0 * a0 + c1 * a1, bi = c0 * b0 + c1 * b1, r = z;
    take_digit2(&r, &ai, &bi, s2, a2, b2);
    take_digit2(&r, &ai, &bi, s3, a3, b3);
    take_digit2(&r, &ai, &bi, s4, a4, b4);
    ai += r * a5;
    bi += r * b5;
    const float av = LOAD(a, a_off + ai), bv = LOAD(b, b_off + bi);
    STORE(y, y_off + (z * s1 + c1) * s0 + c0,
          op == CLT__CL_BINARY_ADD   ? av + bv
          : op == CLT__CL_BINARY_SUB ? av - bv
                                     : av * bv);
}

/* The multi-round reductions below (broadcast_backward, sum_axis, sum_partials and
 * sum_finish) come in variants by what they read and write: the tensors (store_t) or the
 * float partial sums of a workspace. Each body is written once, as a macro taking the
 * load and store macros of its source (SRC_T, LD), its factor (X_T, LDX) and its
 * destination (DST_T, LD_D, ST_D); the variants name it:
 *   <name>          tensors in, tensors out: the whole reduction in one round
 *   <name>_part     tensors in, partial sums out: the first of several rounds
 *   <name>_wide     partial sums in and out: a middle round
 *   <name>_last     partial sums in, tensor out: the last round
 * (sum_partials writes partials only: sum_partials and sum_partials_wide; sum_finish writes
 * the sum: sum_finish and sum_finish_wide). In an fp32 build all variants of a body are the
 * same code. */

#define BROADCAST_BACKWARD_PARAMS(SRC_T, X_T, DST_T)                                               \
    int items, int parts, int chunk, int count, int ndim, int s0, int s1, int s2, int s3, int s4,  \
        int s5, int xmask, int omask, int product, float sign, int accumulate,                     \
        __global const SRC_T *dy, int dy_off,     /* [s5, ..., s0] */                              \
        __global const X_T *other, int other_off, /* axes of omask */                              \
        __global DST_T *dx, int dx_off            /* [axes of xmask, parts] */
#define BROADCAST_BACKWARD_BODY(LD, LDX, LD_D, ST_D)                                               \
    {                                                                                              \
        const int i = get_global_id(0);                                                            \
        if (i >= items)                                                                            \
            return;                                                                                \
        const int j = i / parts, first = (i % parts) * chunk;                                      \
        const int last = min(count, first + chunk);                                                \
        const int s[CLT__CL_BROADCAST_DIMS] = {s0, s1, s2, s3, s4, s5};                            \
        float2 acc = (float2)(0.0f, 0.0f);                                                         \
        for (int k = first; k < last; k++) {                                                       \
            /* Output element: the axes x has from j, the stretched ones from k, innermost         \
             * first. */                                                                           \
            int jr = j, kr = k, yi = 0, oi = 0, ystride = 1, ostride = 1;                          \
            for (int d = 0; d < ndim; d++) {                                                       \
                int c;                                                                             \
                if ((xmask >> d) & 1) {                                                            \
                    c = jr % s[d];                                                                 \
                    jr /= s[d];                                                                    \
                } else {                                                                           \
                    c = kr % s[d];                                                                 \
                    kr /= s[d];                                                                    \
                }                                                                                  \
                yi += c * ystride;                                                                 \
                ystride *= s[d];                                                                   \
                if ((omask >> d) & 1) {                                                            \
                    oi += c * ostride;                                                             \
                    ostride *= s[d];                                                               \
                }                                                                                  \
            }                                                                                      \
            const float g = LD(dy, dy_off + yi);                                                   \
            acc = sum_add(acc, product ? g * LDX(other, other_off + oi) : g);                      \
        }                                                                                          \
        const float v = sign * sum_value(acc);                                                     \
        ST_D(dx, dx_off + i, accumulate ? LD_D(dx, dx_off + i) + v : v);                           \
    }

#define SUM_AXIS_PARAMS(SRC_T, DST_T)                                                              \
    int outer, int count, int inner, int chunk, int parts, int product, float sign, float divisor, \
        int accumulate, __global const SRC_T *src, int src_off, /* [outer, count, inner] */        \
        __global const SRC_T *x, int x_off,                     /* [outer, count, inner] */        \
        __global DST_T *dst, int dst_off                        /* [outer, parts, inner] */
#define SUM_AXIS_BODY(LD, LD_D, ST_D)                                                              \
    {                                                                                              \
        const int i = get_global_id(0), p = get_global_id(1), o = get_global_id(2);                \
        if (i >= inner || p >= parts || o >= outer)                                                \
            return;                                                                                \
        const int first = p * chunk, last = min(count, first + chunk);                             \
        const int base = o * count * inner + i;                                                    \
        float2 acc = (float2)(0.0f, 0.0f);                                                         \
        for (int k = first; k < last; k++) {                                                       \
            const int at = base + k * inner;                                                       \
            const float v = LD(src, src_off + at);                                                 \
            acc = sum_add(acc, product ? v * LD(x, x_off + at) : v);                               \
        }                                                                                          \
        const int at = dst_off + (o * parts + p) * inner + i;                                      \
        const float g = sign * sum_value(acc) / divisor;                                           \
        ST_D(dst, at, accumulate ? LD_D(dst, at) + g : g);                                         \
    }

/* Neumaier's step on vectors of type VT: v into the compensated sum (sum, low), sum_add's
 * branch as a select. */
#define NEUMAIER_ADD(VT, sum, low, v)                                                              \
    {                                                                                              \
        const VT t_ = (sum) + (v);                                                                 \
        (low) += select(((v)-t_) + (sum), ((sum)-t_) + (v), isgreaterequal(fabs(sum), fabs(v)));   \
        (sum) = t_;                                                                                \
    }

/* The compensated sum (sum, low), declared here, of rows first .. last - 1 of columns
 * i .. i + W - 1 (from `base`), times x where `product`. */
#define SUM_AXISV_CHUNK(VT, VLD, first, last, sum, low)                                            \
    VT sum = (VT)(0.0f), low = (VT)(0.0f);                                                         \
    for (int k = (first); k < (last); k++) {                                                       \
        const int at = base + k * inner;                                                           \
        VT v = VLD(0, src + src_off + at);                                                         \
        if (product)                                                                               \
            v = v * VLD(0, x + x_off + at);                                                        \
        NEUMAIER_ADD(VT, sum, low, v);                                                             \
    }

/* sum_axis over W neighbouring columns at once (inner a multiple of W; W 4 or 16, VT floatW):
 * work-item (iw, p, o) sums columns W iw .. W iw + W - 1 with the same operations, lane by
 * lane, as sum_axis (sum_add's branch as a select), so every width gives the same bits. */
#define SUM_AXISV_BODY(W, VT, VLD, VLD_D, VST_D)                                                   \
    {                                                                                              \
        const int i = get_global_id(0) * W, p = get_global_id(1), o = get_global_id(2);            \
        if (i >= inner || p >= parts || o >= outer)                                                \
            return;                                                                                \
        const int first = p * chunk, last = min(count, first + chunk);                             \
        const int base = o * count * inner + i;                                                    \
        SUM_AXISV_CHUNK(VT, VLD, first, last, sum, low)                                            \
        const VT g = sign * select(sum + low, sum, isinf(sum)) / divisor;                          \
        const int at = dst_off + (o * parts + p) * inner + i;                                      \
        VST_D(accumulate ? VLD_D(0, dst + at) + g : g, 0, dst + at);                               \
    }

/* sum_axis's two rounds in one launch, for a count of at most 64 chunks (CPUs, small sums:
 * engine/ops/elementwise.c): work-item (iw, o) makes the partial sum of each chunk of columns
 * W iw .. W iw + W - 1 as the first round's work-item would (sign 1, divisor 1: the float it
 * would store), and adds each to a second compensated sum as the last round's work-item would
 * add it, in chunk order: the bits of the two launches. */
#define SUM_AXIS_FOLD_BODY(W, VT, VLD, VLD_D, VST_D)                                               \
    {                                                                                              \
        const int i = get_global_id(0) * W, o = get_global_id(1);                                  \
        if (i >= inner || o >= outer)                                                              \
            return;                                                                                \
        const int base = o * count * inner + i;                                                    \
        VT tsum = (VT)(0.0f), tlow = (VT)(0.0f);                                                   \
        for (int first = 0; first < count; first += chunk) {                                       \
            SUM_AXISV_CHUNK(VT, VLD, first, min(count, first + chunk), sum, low)                   \
            const VT part = select(sum + low, sum, isinf(sum));                                    \
            NEUMAIER_ADD(VT, tsum, tlow, part);                                                    \
        }                                                                                          \
        const VT g = sign * select(tsum + tlow, tsum, isinf(tsum)) / divisor;                      \
        const int at = dst_off + o * inner + i;                                                    \
        VST_D(accumulate ? VLD_D(0, dst + at) + g : g, 0, dst + at);                               \
    }

/* One element as a vector of one, for SUM_AXIS_FOLD_BODY's W = 1. */
#define VLOAD1(i, p) LOAD((p), (i))
#define VSTORE1(v, i, p) STORE((p), (i), (v))

/* part[j] = the sum of x[j], x[j + parts], ... (< n): strided, so that neighbouring
 * work-items read neighbouring elements. parts <= n, so x[j] exists; the loop stops before
 * i + parts could pass INT_MAX. */
#define SUM_PARTIALS_BODY(LD)                                                                      \
    {                                                                                              \
        const int j = get_global_id(0);                                                            \
        if (j >= parts)                                                                            \
            return;                                                                                \
        x += x_off;                                                                                \
        float2 acc = (float2)(0.0f, 0.0f);                                                         \
        for (int i = j;; i += parts) {                                                             \
            acc = sum_add(acc, LD(x, i));                                                          \
            if (n - i <= parts)                                                                    \
                break;                                                                             \
        }                                                                                          \
        part[part_off + j] = sum_value(acc);                                                       \
    }

/* y[0] = the compensated sum of x[0..n), in order, divided by divisor. */
#define SUM_FINISH_BODY(LD)                                                                        \
    {                                                                                              \
        if (get_global_id(0) != 0)                                                                 \
            return;                                                                                \
        float2 acc = (float2)(0.0f, 0.0f);                                                         \
        for (int k = 0; k < n; k++)                                                                \
            acc = sum_add(acc, LD(x, x_off + k));                                                  \
        STORE(y, y_off, sum_value(acc) / divisor);                                                 \
    }

__kernel void broadcast_backward(BROADCAST_BACKWARD_PARAMS(store_t, store_t, store_t))
{
    BROADCAST_BACKWARD_BODY(LOAD, LOAD, LOAD, STORE);
}

__kernel void broadcast_backward_part(BROADCAST_BACKWARD_PARAMS(store_t, store_t, float))
{
    BROADCAST_BACKWARD_BODY(LOAD, LOAD, LOADF, STOREF);
}

__kernel void broadcast_backward_wide(BROADCAST_BACKWARD_PARAMS(float, float, float))
{
    BROADCAST_BACKWARD_BODY(LOADF, LOADF, LOADF, STOREF);
}

__kernel void broadcast_backward_last(BROADCAST_BACKWARD_PARAMS(float, float, store_t))
{
    BROADCAST_BACKWARD_BODY(LOADF, LOADF, LOAD, STORE);
}

__kernel void sum_axis(SUM_AXIS_PARAMS(store_t, store_t))
{
    SUM_AXIS_BODY(LOAD, LOAD, STORE);
}

__kernel void sum_axis_part(SUM_AXIS_PARAMS(store_t, float))
{
    SUM_AXIS_BODY(LOAD, LOADF, STOREF);
}

__kernel void sum_axis_wide(SUM_AXIS_PARAMS(float, float))
{
    SUM_AXIS_BODY(LOADF, LOADF, STOREF);
}

__kernel void sum_axis_last(SUM_AXIS_PARAMS(float, store_t))
{
    SUM_AXIS_BODY(LOADF, LOAD, STORE);
}

__kernel void sum_axis4(SUM_AXIS_PARAMS(store_t, store_t))
{
    SUM_AXISV_BODY(4, float4, VLOAD4, VLOAD4, VSTORE4);
}

__kernel void sum_axis4_part(SUM_AXIS_PARAMS(store_t, float))
{
    SUM_AXISV_BODY(4, float4, VLOAD4, VLOADF4, VSTOREF4);
}

__kernel void sum_axis4_wide(SUM_AXIS_PARAMS(float, float))
{
    SUM_AXISV_BODY(4, float4, VLOADF4, VLOADF4, VSTOREF4);
}

__kernel void sum_axis4_last(SUM_AXIS_PARAMS(float, store_t))
{
    SUM_AXISV_BODY(4, float4, VLOADF4, VLOAD4, VSTORE4);
}

__kernel void sum_axis16(SUM_AXIS_PARAMS(store_t, store_t))
{
    SUM_AXISV_BODY(16, float16, VLOAD16, VLOAD16, VSTORE16);
}

__kernel void sum_axis16_part(SUM_AXIS_PARAMS(store_t, float))
{
    SUM_AXISV_BODY(16, float16, VLOAD16, VLOADF16, VSTOREF16);
}

__kernel void sum_axis16_wide(SUM_AXIS_PARAMS(float, float))
{
    SUM_AXISV_BODY(16, float16, VLOADF16, VLOADF16, VSTOREF16);
}

__kernel void sum_axis16_last(SUM_AXIS_PARAMS(float, store_t))
{
    SUM_AXISV_BODY(16, float16, VLOADF16, VLOAD16, VSTORE16);
}

__kernel void sum_axis_fold(SUM_AXIS_PARAMS(store_t, store_t))
{
    SUM_AXIS_FOLD_BODY(1, float, VLOAD1, VLOAD1, VSTORE1);
}

__kernel void sum_axis4_fold(SUM_AXIS_PARAMS(store_t, store_t))
{
    SUM_AXIS_FOLD_BODY(4, float4, VLOAD4, VLOAD4, VSTORE4);
}

__kernel void sum_axis16_fold(SUM_AXIS_PARAMS(store_t, store_t))
{
    SUM_AXIS_FOLD_BODY(16, float16, VLOAD16, VLOAD16, VSTORE16);
}

__kernel void sum_partials(int n, int parts, __global const store_t *x, int x_off,
                           __global float *part, int part_off)
{
    SUM_PARTIALS_BODY(LOAD);
}

__kernel void sum_partials_wide(int n, int parts, __global const float *x, int x_off,
                                __global float *part, int part_off)
{
    SUM_PARTIALS_BODY(LOADF);
}

__kernel void sum_finish(int n, float divisor, __global const store_t *x, int x_off,
                         __global store_t *y, int y_off)
{
    SUM_FINISH_BODY(LOAD);
}

__kernel void sum_finish_wide(int n, float divisor, __global const float *x, int x_off,
                              __global store_t *y, int y_off)
{
    SUM_FINISH_BODY(LOADF);
}

__kernel void sum_backward(int rows, int cols, float divisor, int accumulate,
                           __global const store_t *dy, int dy_off, /* [rows] */
                           __global store_t *dx, int dx_off)       /* [rows, cols] */
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= cols || r >= rows)
        return;
    grad_store(dx + dx_off, r * cols + c, accumulate, LOAD(dy, dy_off + r) / divisor);
}
