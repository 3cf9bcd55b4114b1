/*
 * precision.cl: 16-bit storage and the loss scaler (engine/precision.c, engine/scaler.c).
 *
 *   precision_f32_to_f16, precision_f16_to_f32     fp32 <-> IEEE binary16 (fp16)
 *   precision_f32_to_bf16, precision_bf16_to_f32   fp32 <-> bfloat16
 *   precision_nonfinite_partial, _total            counts the NaN and Inf of a float buffer
 *   scaler_set, scaler_update                      the dynamic loss scaler's device state
 *   scaler_seed                                    a 16-bit trainer's loss seed: the scale
 *   precision_f16_grad_to_f32, _bf16_grad_to_f32    16-bit gradients into fp32 ones, times
 *                                                  1 / scale, written or added
 *
 * Storage only: no kernel here computes in 16 bits, so none needs cl_khr_fp16. fp16 goes
 * through vstore_half_rte and vload_half, which are core OpenCL 1.2 on every device (a
 * `__global half *` may be declared without the extension; only arithmetic on half needs
 * it). bf16 is the top 16 bits of a float, kept in a ushort: widening is a shift; narrowing
 * rounds to nearest even by adding 0x7fff plus the lowest kept bit, which carries into the
 * exponent exactly when the rounded value needs it (so the largest floats round to Inf) and
 * keeps subnormals as they are. A NaN stays a NaN (its sign and top payload bits kept, the
 * quiet bit set), in both formats. engine/precision.c holds the same conversions for the
 * host; test/test_precision.c checks these against them bit for bit.
 *
 * Layouts (every buffer a __global pointer plus an element offset in its own type):
 *   src, dst of the conversions  [n] floats, or [n] 16-bit values (half or ushort)
 *   x                            [n] floats, checked for NaN and Inf
 *   ws                           [parts] ints, the partial counts
 *   found                        [1] int, to which precision_nonfinite_total adds the count
 *   dst of scaler_seed           [1] float, half or ushort (as `format` says)
 *   state                        struct scaler_state (below), 32 bytes kept across steps,
 *                                passed as an int pointer plus an offset in 32-bit words;
 *                                scaler_update's found word may lie inside it
 *
 * Work-items: the conversions, one per 8 elements; the gradient widenings, one per 4 elements;
 * work-items past n return at once.
 * precision_nonfinite_partial: work-item i < parts counts elements i, i + parts, i + 2 parts,
 * ... (neighbouring work-items read neighbouring elements). precision_nonfinite_total,
 * scaler_set, scaler_update and scaler_seed: one work-item. Counts are integers, so the result is
 * the same whatever parts or the work-group size: deterministic without atomics. NaN and Inf are
 * found by their exponent bits, not isfinite(), so that no math option can fold the test away.
 *
 * Tunables: none.
 */

/* The conversions: work-item w converts elements 8 w .. 8 w + 7 (the last one those before n)
 * with one 8-lane load and store (vload_half8 / vstore_half8_rte for fp16, bf16_bits8 for
 * bf16), the same values as one element at a time. Vectors written out, because PoCL runs the
 * scalar built-in vload_half / vstore_half_rte and a masked (i < n) 16-bit load or store one
 * work-item at a time: one element per work-item took 29 ms per gpt step in fp16 where this
 * takes a fraction of a millisecond. A 16-bit vector needs only 2-byte alignment and a float
 * vector 4-byte (vloadn / vstoren at a pointer), so any offset works. */

/* fp32 -> fp16, round to nearest even: n floats at src to n halves at dst. */
__kernel void precision_f32_to_f16(int n, __global const float *restrict src, int src_off, /* [n] */
                                   __global half *restrict dst, int dst_off)               /* [n] */
{
    const int i = 8 * (int)get_global_id(0);
    if (n - i >= 8) {
        vstore_half8_rte(vload8(0, src + src_off + i), 0, dst + dst_off + i);
        return;
    }
    for (int j = i; j < n; j++)
        vstore_half_rte(src[src_off + j], dst_off + j, dst);
}

/* fp16 -> fp32, exact: n halves at src to n floats at dst. */
__kernel void precision_f16_to_f32(int n, __global const half *restrict src, int src_off, /* [n] */
                                   __global float *restrict dst, int dst_off)             /* [n] */
{
    const int i = 8 * (int)get_global_id(0);
    if (n - i >= 8) {
        vstore8(vload_half8(0, src + src_off + i), 0, dst + dst_off + i);
        return;
    }
    for (int j = i; j < n; j++)
        dst[dst_off + j] = vload_half(src_off + j, src);
}

/* fp32 -> bf16, round to nearest even: n floats at src to n ushorts at dst. */
__kernel void precision_f32_to_bf16(int n, __global const float *restrict src,
                                    int src_off,                                /* [n] */
                                    __global ushort *restrict dst, int dst_off) /* [n] */
{
    const int i = 8 * (int)get_global_id(0);
    if (n - i >= 8) {
        USHORT_VSTORE(8, bf16_bits8(vload8(0, src + src_off + i)), 0, dst + dst_off + i);
        return;
    }
    for (int j = i; j < n; j++)
        dst[dst_off + j] = bf16_bits(src[src_off + j]);
}

/* bf16 -> fp32, exact: n ushorts at src to n floats at dst. */
__kernel void precision_bf16_to_f32(int n, __global const ushort *restrict src,
                                    int src_off,                               /* [n] */
                                    __global float *restrict dst, int dst_off) /* [n] */
{
    const int i = 8 * (int)get_global_id(0);
    if (n - i >= 8) {
        vstore8(as_float8(convert_uint8(vload8(0, src + src_off + i)) << 16), 0, dst + dst_off + i);
        return;
    }
    for (int j = i; j < n; j++)
        dst[dst_off + j] = as_float((uint)src[src_off + j] << 16);
}

/* ws[i] = how many of x[i], x[i + parts], ... (i < parts, below n) are NaN or Inf. */
__kernel void precision_nonfinite_partial(int n, int parts, __global const float *restrict x,
                                          int x_off,                             /* [n] */
                                          __global int *restrict ws, int ws_off) /* [parts] */
{
    const int i = get_global_id(0);
    if (i >= parts)
        return;
    int count = 0;
    for (int j = i; j < n; j += parts)
        count += (as_uint(x[x_off + j]) & 0x7f800000u) == 0x7f800000u;
    ws[ws_off + i] = count;
}

/* One work-item: found[0] += the sum of the parts partial counts, saturating at INT_MAX (a
 * found word collects the counts of several buffers over a step). */
__kernel void precision_nonfinite_total(int parts, __global const int *restrict ws,
                                        int ws_off,                                  /* [parts] */
                                        __global int *restrict found, int found_off) /* [1] */
{
    if (get_global_id(0) != 0)
        return;
    long total = found[found_off];
    for (int j = 0; j < parts; j++)
        total += ws[ws_off + j];
    found[found_off] = (int)min(total, (long)INT_MAX);
}

/* The loss scaler's device state; engine/scaler.h declares the same layout for the host
 * (struct clt__scaler_state) and checks it. */
struct scaler_state {
    float scale;        /* the factor the loss is multiplied by before the backward pass */
    float inv_scale;    /* 1 / scale: what the optimizer multiplies the gradients by */
    int growth_tracker; /* clean steps since the scale last changed */
    int skipped;        /* steps skipped for NaN or Inf (saturating) */
    int found;          /* a found word for precision_nonfinite_total; scaler_update zeroes it */
    int reserved[3];
};

/* One work-item: sets the state to scale, growth_tracker and skipped, found 0 (a new trainer,
 * or a checkpoint's scaler to resume). */
__kernel void scaler_set(float scale, int growth_tracker, int skipped, __global int *state_base,
                         int state_off)
{
    if (get_global_id(0) != 0)
        return;
    __global struct scaler_state *s = (__global struct scaler_state *)(state_base + state_off);
    s->scale = scale;
    s->inv_scale = 1.0f / scale;
    s->growth_tracker = growth_tracker;
    s->skipped = skipped;
    s->found = 0;
    s->reserved[0] = s->reserved[1] = s->reserved[2] = 0;
}

/* One work-item: the scaler's update after a step, with torch.amp.GradScaler's rule (the
 * host's clt__scaler_update is the same):
 *   found = found_base[found_off] & found_mask (a count, or an optimizer status's last_skip);
 *   found != 0: scale = max(scale * backoff, min_scale), growth_tracker = 0, skipped + 1;
 *   else growth_tracker + 1, and when it reaches growth_interval: scale * growth unless that
 *   is Inf, growth_tracker = 0.
 * Then inv_scale = 1 / scale and the state's found word is zeroed for the next step. */
__kernel void scaler_update(__global const int *found_base, int found_off, int found_mask,
                            float growth, float backoff, int growth_interval, float min_scale,
                            __global int *state_base, int state_off)
{
    if (get_global_id(0) != 0)
        return;
    __global struct scaler_state *s = (__global struct scaler_state *)(state_base + state_off);
    const int found = found_base[found_off] & found_mask;
    float scale = s->scale;
    if (found) {
        scale = fmax(scale * backoff, min_scale);
        s->growth_tracker = 0;
        s->skipped = s->skipped < INT_MAX ? s->skipped + 1 : INT_MAX;
    } else if (s->growth_tracker + 1 >= growth_interval) {
        const float grown = scale * growth;
        if ((as_uint(grown) & 0x7f800000u) != 0x7f800000u)
            scale = grown;
        s->growth_tracker = 0;
    } else {
        s->growth_tracker += 1;
    }
    s->scale = scale;
    s->inv_scale = 1.0f / scale;
    s->found = 0;
}

/* One work-item: the loss seed of a 16-bit trainer's backward pass, state.scale * mul (mul: 1,
 * or a data-parallel replica's share), stored as a float (format 32: a loss kept in fp32), a
 * half (16) or a bf16 (161) rounded to nearest even. The host never reads the scale. */
__kernel void scaler_seed(__global const int *state_base, int state_off, float mul, int format,
                          __global void *dst, int dst_off) /* [1] */
{
    if (get_global_id(0) != 0)
        return;
    const __global struct scaler_state *s =
        (const __global struct scaler_state *)(state_base + state_off);
    const float v = s->scale * mul;
    if (format == 16)
        vstore_half_rte(v, dst_off, (__global half *)dst);
    else if (format == 161)
        ((__global ushort *)dst)[dst_off] = bf16_bits(v);
    else
        ((__global float *)dst)[dst_off] = v;
}

/* The parameters' gradients of one micro-step, 16-bit and scaled by the loss scale, into the
 * fp32 ones the optimizer reads: dst[i] = (acc ? dst[i] : 0) + src[i] * state.inv_scale, in
 * fp32 (the product is exact for a power-of-two scale). A NaN or Inf stays one, for the
 * optimizer's check to skip the step. Work-item w does elements 4w .. 4w + 3 (fewer in the
 * last one) as one float4, each lane the scalar operations: vload_half4 and 4-wide stores
 * are what keep this pass cheap on PoCL (a scalar 16-bit load or vstore_half per work-item
 * is not vectorized there). */

/* src[i .. i + 3] widened (fp16: half, else bf16 bits in a ushort), lanes at or past n 0. */
static float4 grad16_load4(bool fp16, __global const void *src, int i, int n)
{
    if (fp16) {
        __global const half *h = (__global const half *)src;
        if (n - i >= 4)
            return vload_half4(0, h + i);
        float4 r = (float4)(vload_half(i, h), 0.0f, 0.0f, 0.0f);
        if (n - i > 1)
            r.s1 = vload_half(i + 1, h);
        if (n - i > 2)
            r.s2 = vload_half(i + 2, h);
        return r;
    }
    __global const ushort *b = (__global const ushort *)src;
    uint4 u;
    if (n - i >= 4) {
        u = convert_uint4(vload4(0, b + i));
    } else {
        u = (uint4)(b[i], 0u, 0u, 0u);
        if (n - i > 1)
            u.s1 = b[i + 1];
        if (n - i > 2)
            u.s2 = b[i + 2];
    }
    return as_float4(u << 16);
}

/* dst[i ..] = (acc ? dst[i ..] : 0) + w, the lanes before n. */
static void grad16_store4(__global float *dst, int i, int n, int acc, float4 w)
{
    if (n - i >= 4) {
        vstore4(acc ? vload4(0, dst + i) + w : w, 0, dst + i);
        return;
    }
    dst[i] = acc ? dst[i] + w.s0 : w.s0;
    if (n - i > 1)
        dst[i + 1] = acc ? dst[i + 1] + w.s1 : w.s1;
    if (n - i > 2)
        dst[i + 2] = acc ? dst[i + 2] + w.s2 : w.s2;
}

__kernel void precision_f16_grad_to_f32(int n, __global const half *restrict src,
                                        int src_off,                               /* [n] */
                                        __global float *restrict dst, int dst_off, /* [n] */
                                        __global const int *restrict state_base, int state_off,
                                        int acc)
{
    const int i = 4 * (int)get_global_id(0);
    if (i >= n)
        return;
    const float inv = ((const __global struct scaler_state *)(state_base + state_off))->inv_scale;
    grad16_store4(dst + dst_off, i, n, acc, grad16_load4(true, src + src_off, i, n) * inv);
}

/* precision_f16_grad_to_f32 for bf16 gradients (ushort). */
__kernel void precision_bf16_grad_to_f32(int n, __global const ushort *restrict src,
                                         int src_off,                               /* [n] */
                                         __global float *restrict dst, int dst_off, /* [n] */
                                         __global const int *restrict state_base, int state_off,
                                         int acc)
{
    const int i = 4 * (int)get_global_id(0);
    if (i >= n)
        return;
    const float inv = ((const __global struct scaler_state *)(state_base + state_off))->inv_scale;
    grad16_store4(dst + dst_off, i, n, acc, grad16_load4(false, src + src_off, i, n) * inv);
}
