/*
 * bench.cl: the kernels of cltrain-bench's micro figures (bench/micro.c, docs/bench.md).
 * None of them is used in training.
 *
 * Bandwidth, at two element widths (float4: 16 bytes; float16: 64 bytes, a cache line on
 * most CPUs): x and y are [items * BENCH_FETCH] elements. Work-item i touches elements
 * i, i + items, i + 2 items, ... (BENCH_FETCH of them), so that neighbouring work-items touch
 * neighbouring elements on every pass (coalesced on GPUs, contiguous vector lanes on CPUs).
 *   bench_read4/16   sums its elements and writes nothing unless the sum is -1 (never, for
 *                    the zeros the bench fills x with; the compiler cannot know): only reads
 *                    count
 *   bench_write4/16  writes a value derived from i into its elements
 *   bench_copy4/16   y[j] = x[j] for its elements
 * The bench reports the better width: a compiler that does not vectorise across work-items
 * (PoCL on CPUs, for kernels with an inner loop) moves 16 bytes per instruction with float4
 * and runs out of instructions before memory runs out of bandwidth.
 * items is passed explicitly: the launch may round the global size up, and the extra
 * work-items return at once.
 *
 * Peak arithmetic: bench_peak_float{,4,8,16} run, per work-item, BENCH_MADS scalar
 * multiply-adds as two interleaved dependent chains (x = mad(y, x, y); y = mad(x, y, x)),
 * the same shape as clpeak's compute_sp kernels, so each counts 2 * BENCH_MADS flops per
 * work-item whatever the vector width. The result is written so that nothing is elided.
 * bench_peak_float4_ilp8 and bench_peak_float16_ilp8 run BENCH_ILP_MADS scalar multiply-adds
 * per work-item as eight independent chains (c = mad(c, m, a)), so that a device whose
 * compiler does not interleave work-items (PoCL on CPUs runs a work-item's inner loop as
 * scalar or explicit-vector code) can still keep several fused multiply-adds in flight: on
 * such devices the dependent chains above measure latency, these measure throughput.
 * m is passed in (0.999) so that nothing can be folded and values stay finite.
 *
 * Launch latency: bench_empty does nothing.
 *
 * Tunables: BENCH_FETCH (16) elements per work-item; BENCH_MADS (2048) multiply-adds per
 * work-item, a multiple of 16 * 16; BENCH_ILP_MADS (16384), a multiple of 8 * 16.
 */
#ifndef BENCH_FETCH
#define BENCH_FETCH 16
#endif
#ifndef BENCH_MADS
#define BENCH_MADS 2048
#endif
#ifndef BENCH_ILP_MADS
#define BENCH_ILP_MADS 16384
#endif

__kernel void bench_empty(void)
{
}

__kernel void bench_read4(__global const float4 *x, /* [items * BENCH_FETCH] */
                          __global float *out,      /* [items], written only if sum == -1 */
                          int items)
{
    const int i = get_global_id(0);
    if (i >= items)
        return;
    float4 s = (float4)(0.0f);
    for (int f = 0; f < BENCH_FETCH; f++)
        s += x[i + f * items];
    const float t = (s.x + s.y) + (s.z + s.w);
    if (t == -1.0f)
        out[i] = t;
}

__kernel void bench_read16(__global const float16 *x, /* [items * BENCH_FETCH] */
                           __global float *out,       /* [items], written only if sum == -1 */
                           int items)
{
    const int i = get_global_id(0);
    if (i >= items)
        return;
    float16 s = (float16)(0.0f);
    for (int f = 0; f < BENCH_FETCH; f++)
        s += x[i + f * items];
    const float8 h8 = s.lo + s.hi;
    const float4 h = h8.lo + h8.hi;
    const float t = (h.x + h.y) + (h.z + h.w);
    if (t == -1.0f)
        out[i] = t;
}

__kernel void bench_write4(__global float4 *y, /* [items * BENCH_FETCH] */
                           int items)
{
    const int i = get_global_id(0);
    if (i >= items)
        return;
    const float4 v = (float4)((float)i);
    for (int f = 0; f < BENCH_FETCH; f++)
        y[i + f * items] = v;
}

__kernel void bench_write16(__global float16 *y, /* [items * BENCH_FETCH] */
                            int items)
{
    const int i = get_global_id(0);
    if (i >= items)
        return;
    const float16 v = (float16)((float)i);
    for (int f = 0; f < BENCH_FETCH; f++)
        y[i + f * items] = v;
}

__kernel void bench_copy4(__global const float4 *x, /* [items * BENCH_FETCH] */
                          __global float4 *y,       /* [items * BENCH_FETCH] */
                          int items)
{
    const int i = get_global_id(0);
    if (i >= items)
        return;
    for (int f = 0; f < BENCH_FETCH; f++)
        y[i + f * items] = x[i + f * items];
}

__kernel void bench_copy16(__global const float16 *x, /* [items * BENCH_FETCH] */
                           __global float16 *y,       /* [items * BENCH_FETCH] */
                           int items)
{
    const int i = get_global_id(0);
    if (i >= items)
        return;
    for (int f = 0; f < BENCH_FETCH; f++)
        y[i + f * items] = x[i + f * items];
}

/* Four, then sixteen dependent multiply-adds alternating between the two chains. */
#define BENCH_MAD4(x, y)                                                                           \
    x = mad(y, x, y);                                                                              \
    y = mad(x, y, x);                                                                              \
    x = mad(y, x, y);                                                                              \
    y = mad(x, y, x);
#define BENCH_MAD16(x, y) BENCH_MAD4(x, y) BENCH_MAD4(x, y) BENCH_MAD4(x, y) BENCH_MAD4(x, y)

__kernel void bench_peak_float(__global float *out, /* [items] */
                               float a, int items)
{
    float x = a, y = (float)get_local_id(0);
    for (int r = 0; r < BENCH_MADS / 16; r++) {
        BENCH_MAD16(x, y)
    }
    if (get_global_id(0) < items)
        out[get_global_id(0)] = y;
}

__kernel void bench_peak_float4(__global float *out, /* [items] */
                                float a, int items)
{
    float4 x = (float4)(a, a + 1.0f, a + 2.0f, a + 3.0f);
    float4 y = (float4)((float)get_local_id(0));
    for (int r = 0; r < BENCH_MADS / (16 * 4); r++) {
        BENCH_MAD16(x, y)
    }
    if (get_global_id(0) < items)
        out[get_global_id(0)] = (y.s0 + y.s1) + (y.s2 + y.s3);
}

__kernel void bench_peak_float8(__global float *out, /* [items] */
                                float a, int items)
{
    float8 x = (float8)(a, a + 1.0f, a + 2.0f, a + 3.0f, a + 4.0f, a + 5.0f, a + 6.0f, a + 7.0f);
    float8 y = (float8)((float)get_local_id(0));
    for (int r = 0; r < BENCH_MADS / (16 * 8); r++) {
        BENCH_MAD16(x, y)
    }
    const float4 h = y.lo + y.hi;
    if (get_global_id(0) < items)
        out[get_global_id(0)] = (h.s0 + h.s1) + (h.s2 + h.s3);
}

__kernel void bench_peak_float16(__global float *out, /* [items] */
                                 float a, int items)
{
    float16 x =
        (float16)(a, a + 1.0f, a + 2.0f, a + 3.0f, a + 4.0f, a + 5.0f, a + 6.0f, a + 7.0f, a + 8.0f,
                  a + 9.0f, a + 10.0f, a + 11.0f, a + 12.0f, a + 13.0f, a + 14.0f, a + 15.0f);
    float16 y = (float16)((float)get_local_id(0));
    for (int r = 0; r < BENCH_MADS / (16 * 16); r++) {
        BENCH_MAD16(x, y)
    }
    const float8 h8 = y.lo + y.hi;
    const float4 h = h8.lo + h8.hi;
    if (get_global_id(0) < items)
        out[get_global_id(0)] = (h.s0 + h.s1) + (h.s2 + h.s3);
}

/* Eight independent chains. */
#define BENCH_ILP8(m, a)                                                                           \
    c0 = mad(c0, m, a);                                                                            \
    c1 = mad(c1, m, a);                                                                            \
    c2 = mad(c2, m, a);                                                                            \
    c3 = mad(c3, m, a);                                                                            \
    c4 = mad(c4, m, a);                                                                            \
    c5 = mad(c5, m, a);                                                                            \
    c6 = mad(c6, m, a);                                                                            \
    c7 = mad(c7, m, a);

__kernel void bench_peak_float4_ilp8(__global float *out, /* [items] */
                                     float m, int items)
{
    const float4 a = (float4)(0.5f, 0.25f, 0.125f, 0.0625f);
    float4 c0 = (float4)((float)get_local_id(0)), c1 = c0 + 1.0f, c2 = c0 + 2.0f, c3 = c0 + 3.0f,
           c4 = c0 + 4.0f, c5 = c0 + 5.0f, c6 = c0 + 6.0f, c7 = c0 + 7.0f;
    for (int r = 0; r < BENCH_ILP_MADS / (8 * 4); r++) {
        BENCH_ILP8(m, a)
    }
    const float4 s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7));
    if (get_global_id(0) < items)
        out[get_global_id(0)] = (s.s0 + s.s1) + (s.s2 + s.s3);
}

__kernel void bench_peak_float16_ilp8(__global float *out, /* [items] */
                                      float m, int items)
{
    const float16 a = (float16)(0.5f);
    float16 c0 = (float16)((float)get_local_id(0)), c1 = c0 + 1.0f, c2 = c0 + 2.0f, c3 = c0 + 3.0f,
            c4 = c0 + 4.0f, c5 = c0 + 5.0f, c6 = c0 + 6.0f, c7 = c0 + 7.0f;
    for (int r = 0; r < BENCH_ILP_MADS / (8 * 16); r++) {
        BENCH_ILP8(m, a)
    }
    const float16 s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7));
    const float8 h8 = s.lo + s.hi;
    const float4 h = h8.lo + h8.hi;
    if (get_global_id(0) < items)
        out[get_global_id(0)] = (h.s0 + h.s1) + (h.s2 + h.s3);
}
