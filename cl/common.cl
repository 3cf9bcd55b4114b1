/*
 * common.cl: prepended to every program. Fixes the numerics every kernel relies on and
 * gives the defaults of the build-time tunables, so each file also compiles alone.
 *
 * Tunables (set by the engine in the build options from the device's limits):
 *   CLT_WG_1D    the 1-D work-group size launchers use: a power of two <= 256
 *
 * Build-time choice (set by the engine per program build, engine/program.c):
 *   CLT_STORAGE  how op kernels store activations, parameters' working copies and their
 *                gradients: 32 fp32 (the default), 16 fp16, 161 bf16 (docs/precision.md)
 */
/* No contraction of a * b + c into fma behind our back: results must not depend on the
 * compiler. Kernels call fma() where fusion is wanted. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef CLT_WG_1D
#define CLT_WG_1D 64
#endif

/* exp(x) for x <= 0 (or -inf, or NaN), without branches or built-in calls, so that PoCL's
 * work-group vectorizer keeps it in vector registers (its built-in exp runs scalar there):
 * exp_nonpos for one float, exp_nonpos8 per lane of a float8, the same operations. Cephes'
 * expf: x = k ln 2 + r with k = rint(x / ln 2), |r| <= ln(2) / 2, ln 2 split in two, exp(r)
 * by a degree-7 polynomial in Horner's form through fma (one rounding a step, and one
 * instruction where the device has FMA), 2^k built in the exponent field.
 * Measured against double exp over [-87, 0] (step 1e-4): relative error <= 8.2e-8. Below -87
 * the result is 0 (exp(-87) = 1.6e-38: at most that absolute error, no subnormals); -inf
 * gives 0, NaN gives NaN. k = rint(xc / ln 2) by adding and subtracting 1.5 * 2^23: for
 * |v| < 2^22 the sum rounds v to the nearest integer, ties to even, exactly as rint (PoCL's
 * rint is a long scalar sequence); t's low mantissa bits then hold k + 2^22. */
#define CLT_DEFINE_EXP_NONPOS(NAME, T, AS_T, AS_I)                                                 \
    T NAME(T x)                                                                                    \
    {                                                                                              \
        const T xc = select(x, (T)(-87.0f), x < (T)(-87.0f)); /* NaN stays NaN */                  \
        const T t = fma(xc, (T)(1.44269504088896341f), (T)(12582912.0f));                          \
        const T k = t - 12582912.0f;                                                               \
        T r = fma(k, (T)(-0.693359375f), xc);                                                      \
        r = fma(k, (T)(2.12194440e-4f), r);                                                        \
        T p = (T)(1.9875691500e-4f);                                                               \
        p = fma(p, r, (T)(1.3981999507e-3f));                                                      \
        p = fma(p, r, (T)(8.3334519073e-3f));                                                      \
        p = fma(p, r, (T)(4.1665795894e-2f));                                                      \
        p = fma(p, r, (T)(1.6666665459e-1f));                                                      \
        p = fma(p, r, (T)(5.0000001201e-1f));                                                      \
        p = fma(p, r * r, r) + 1.0f;                                                               \
        const T two_k = AS_T((AS_I(t) - 0x4B400000 + 127) << 23);                                  \
        return select(p * two_k, (T)(0.0f), x < (T)(-87.0f));                                      \
    }
CLT_DEFINE_EXP_NONPOS(exp_nonpos, float, as_float, as_int)
CLT_DEFINE_EXP_NONPOS(exp_nonpos8, float8, as_float8, as_int8)

/* ---- Storage (docs/precision.md) -------------------------------------------------------
 *
 * Op kernels read and write the tensors of a plan through store_t and these macros, and do
 * every operation in float registers, so every sum is fp32 whatever the storage:
 *
 *   LOAD(p, i)             p[i] as a float
 *   LOAD_ALT(p, i)         the same value as LOAD, by other instructions: for the second
 *                          operand where two loads meet in one operation (x + bias in a fused
 *                          chain). PoCL's SLP vectorizer pairs two identical fp16 conversions
 *                          into a 2-lane vector, which its work-group loop vectorizer cannot
 *                          widen: the whole kernel then runs one work-item at a time.
 *   STORE(p, i, v)         p[i] = v (a float), rounded to the storage, nearest even
 *   VLOADn(i, p)           vloadn(i, p) as a floatn (n = 2, 4, 8, 16): elements n i ... n i + n - 1
 *   VSTOREn(v, i, p)       vstoren(v, i, p) from a floatn, rounded as STORE
 *
 * fp16 is `half`, core OpenCL 1.2: declaring a `__global half *` needs no cl_khr_fp16, only
 * arithmetic on half would. One element goes through f16_widen / f16_bits (below: the values
 * of vload_half / vstore_half_rte but for NaN bits, by integer operations that vectorize),
 * LOAD_ALT and vectors through vload_halfn / vstore_halfn_rte. bf16 is the top 16 bits of a
 * float in a ushort: widening is a shift; narrowing adds 0x7fff plus the lowest kept bit (round
 * to nearest even, carrying into the exponent when it should, so the largest floats round to
 * Inf); a NaN stays a NaN with its sign and top payload bits, quiet bit set. Aux buffers (norm
 * statistics, log-sum-exp), state (running averages), the loss value and its seed, integer tensors
 * and everything of the optimizer stay float or int whatever the storage. */
#ifndef CLT_STORAGE
#define CLT_STORAGE 32
#endif

/* USHORT_VSTORE(N, u, i, p): vstoreN(u, i, p) for a ushortN u (N = 2, 4, 8, 16), written
 * through a packed struct: one unaligned vector store, where PoCL builds vstoreN of ushort as
 * N 16-bit stores (the GEMM's bf16 C store, nt 1024 x 384 x 128: 161 -> 177 GFLOP/s). The
 * packed attribute is core OpenCL C; a device that needs alignment splits the store itself. */
typedef struct __attribute__((packed)) {
    ushort2 bits;
} clt_ushort2_packed;
typedef struct __attribute__((packed)) {
    ushort4 bits;
} clt_ushort4_packed;
typedef struct __attribute__((packed)) {
    ushort8 bits;
} clt_ushort8_packed;
typedef struct __attribute__((packed)) {
    ushort16 bits;
} clt_ushort16_packed;
#define USHORT_VSTORE(N, u, i, p)                                                                  \
    (((__global clt_ushort##N##_packed *)((p) + N * (size_t)(i)))->bits = (u))

/* The bfloat16 bits of x, rounded to nearest even; a NaN stays quiet with its sign and top
 * payload bits. A select, not a branch, so that PoCL's work-group vectorizer keeps a kernel
 * that stores one element a work-item in vector registers. bf16_bits2/4/8 per lane (16 lanes
 * go as two 8s: a 16-lane function argument changes PoCL's ABI and draws a warning). */
ushort bf16_bits(float x)
{
    const uint u = as_uint(x);
    const uint r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (ushort)select(r, (u >> 16) | 0x40u, (uint)((u & 0x7fffffffu) > 0x7f800000u));
}
#define CLT_DEFINE_BF16_BITS(N)                                                                    \
    ushort##N bf16_bits##N(float##N x)                                                             \
    {                                                                                              \
        const uint##N u = as_uint##N(x);                                                           \
        const uint##N r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;                                  \
        const uint##N nan = (u >> 16) | 0x40u;                                                     \
        return convert_ushort##N(select(r, nan, (u & 0x7fffffffu) > 0x7f800000u));                 \
    }
CLT_DEFINE_BF16_BITS(2)
CLT_DEFINE_BF16_BITS(4)
CLT_DEFINE_BF16_BITS(8)

/* The float value of fp16 bits h and the fp16 bits of x rounded to nearest even: the values of
 * vload_half and vstore_half_rte for every input but NaN (checked on PoCL and rusticl: all
 * 65,536 halves, 16.7 million floats around the half range and random ones). A NaN gives a
 * NaN with its sign: f16_widen keeps the payload (vload_half also sets the quiet bit),
 * f16_bits sets the quiet bit and keeps the top payload bits (the built-ins' NaN bits differ
 * between implementations: PoCL's vstore_half_rte stores 0x7fff, rusticl's 0x7e00); past the
 * largest half, Inf. Integer arithmetic and selects only, which PoCL's loop vectorizer turns
 * into SIMD. */
float f16_widen(ushort h)
{
    const uint x = h;
    const uint em = x & 0x7fffu;
    const uint o = em << 13;
    const uint nrm = o + 0x38000000u;                                       /* rebias 15 -> 127 */
    const uint sub = as_uint(as_float(o + 0x38800000u) - 6.103515625e-05f); /* m * 2^-24 */
    uint r = select(nrm, sub, (uint)(em < 0x0400u));
    r = select(r, o | 0x7f800000u, (uint)(em >= 0x7c00u));
    return as_float(r | ((x & 0x8000u) << 16));
}
ushort f16_bits(float v)
{
    const uint u = as_uint(v);
    const uint f = u & 0x7fffffffu;
    const uint nrm = (f + 0xc8000fffu + ((f >> 13) & 1u)) >> 13; /* rebias, round to even */
    const uint sub = as_uint(as_float(f) + 0.5f) - 0x3f000000u;  /* below 2^-14: the FPU rounds */
    uint r = select(nrm, sub, (uint)(f < 0x38800000u));
    r = select(r, 0x7c00u, (uint)(f >= 0x47800000u));
    r = select(r, 0x7e00u | ((f >> 13) & 0x3ffu), (uint)(f > 0x7f800000u));
    return (ushort)(r | ((u >> 16) & 0x8000u));
}

#if CLT_STORAGE == 16
#define store_t half
#define LOAD(p, i) f16_widen(((__global const ushort *)(p))[i])
#define LOAD_ALT(p, i) vload_half((i), (p))
#define STORE(p, i, v) (((__global ushort *)(p))[i] = f16_bits(v))
#define VLOAD2(i, p) vload_half2((i), (p))
#define VLOAD4(i, p) vload_half4((i), (p))
#define VLOAD8(i, p) vload_half8((i), (p))
#define VLOAD16(i, p) vload_half16((i), (p))
#define VSTORE2(v, i, p) vstore_half2_rte((v), (i), (p))
#define VSTORE4(v, i, p) vstore_half4_rte((v), (i), (p))
#define VSTORE8(v, i, p) vstore_half8_rte((v), (i), (p))
#define VSTORE16(v, i, p) vstore_half16_rte((v), (i), (p))
#elif CLT_STORAGE == 161
#define store_t ushort
#define LOAD(p, i) as_float((uint)(p)[i] << 16)
#define LOAD_ALT(p, i) LOAD(p, i)
#define STORE(p, i, v) ((p)[i] = bf16_bits(v))
#define VLOAD2(i, p) as_float2(convert_uint2(vload2((i), (p))) << 16)
#define VLOAD4(i, p) as_float4(convert_uint4(vload4((i), (p))) << 16)
#define VLOAD8(i, p) as_float8(convert_uint8(vload8((i), (p))) << 16)
#define VLOAD16(i, p) ((float16)(VLOAD8(2 * (i), (p)), VLOAD8(2 * (i) + 1, (p))))
#define VSTORE2(v, i, p) USHORT_VSTORE(2, bf16_bits2(v), i, p)
#define VSTORE4(v, i, p) USHORT_VSTORE(4, bf16_bits4(v), i, p)
#define VSTORE8(v, i, p) USHORT_VSTORE(8, bf16_bits8(v), i, p)
#define VSTORE16(v, i, p)                                                                          \
    USHORT_VSTORE(16, ((ushort16)(bf16_bits8((v).lo), bf16_bits8((v).hi))), i, p)
#elif CLT_STORAGE == 32
#define store_t float
#define LOAD(p, i) ((p)[i])
#define LOAD_ALT(p, i) LOAD(p, i)
#define STORE(p, i, v) ((p)[i] = (v))
#define VLOAD2(i, p) vload2((i), (p))
#define VLOAD4(i, p) vload4((i), (p))
#define VLOAD8(i, p) vload8((i), (p))
#define VLOAD16(i, p) vload16((i), (p))
#define VSTORE2(v, i, p) vstore2((v), (i), (p))
#define VSTORE4(v, i, p) vstore4((v), (i), (p))
#define VSTORE8(v, i, p) vstore8((v), (i), (p))
#define VSTORE16(v, i, p) vstore16((v), (i), (p))
#else
#error "CLT_STORAGE must be 32, 16 or 161"
#endif
