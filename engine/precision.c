/*
 * precision.c: fp16 and bf16 conversions on the host, the launchers of their kernels and of
 * the NaN/Inf count (cl/precision.cl). precision.h states the rounding rules.
 */
#include <string.h>

#include "precision.h"

/* Elements one partial count of clt__nonfinite_count covers at least, and the most partial
 * counts: n / 256 work-items, at most 8192 (32 KiB of workspace, and a total that one
 * work-item adds quickly). */
#define NONFINITE_CHUNK 256
#define NONFINITE_MAX_PARTS 8192

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

const char *clt_precision_name(enum clt_precision precision)
{
    switch (precision) {
    case CLT_PRECISION_FP32:
        return "fp32";
    case CLT_PRECISION_FP16:
        return "fp16";
    case CLT_PRECISION_BF16:
        return "bf16";
    }
    return "?";
}

uint16_t clt__f32_to_f16(float x)
{
    const uint32_t u = bits_of(x);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu; /* |x| */
    if (a > 0x7f800000u)                /* NaN: quiet, top payload bits kept */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) /* |x| >= 65520 = 65504 + half an ulp, and Inf: Inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) {
        /* A normal half (|x| >= 2^-14): rebias the exponent (127 - 15 = 112) and round the
         * 13 bits dropped, to even; a carry moves into the exponent as it should. */
        uint32_t r = a - 0x38000000u;
        r += 0xfffu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    if (a <= 0x33000000u) /* |x| <= 2^-25, half the smallest subnormal: a tie goes to 0 */
        return sign;
    /* A subnormal half: |x| = m 2^(e - 150) with the implicit bit in m, in units of 2^-24
     * that is m >> (126 - e), rounded to even on the bits shifted out (e in 102..112). */
    const uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, shift = 126 - e;
    const uint32_t half = 1u << (shift - 1), rem = m & ((1u << shift) - 1);
    uint32_t q = m >> shift;
    if (rem > half || (rem == half && (q & 1u)))
        q++; /* may reach 0x400, the smallest normal: the right bits */
    return (uint16_t)(sign | q);
}

float clt__f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    if (e == 0x1f)
        return float_of(sign | 0x7f800000u | m << 13);
    if (e != 0)
        return float_of(sign | (e + 112) << 23 | m << 13);
    if (m == 0)
        return float_of(sign);
    /* A subnormal m 2^-24: shift m up to its implicit bit (bit 10); each shift lowers the
     * exponent, which starts at 2^-14 (biased 113). */
    uint32_t exp = 113;
    while (!(m & 0x400u)) {
        m <<= 1;
        exp--;
    }
    return float_of(sign | exp << 23 | (m & 0x3ffu) << 13);
}

uint16_t clt__f32_to_bf16(float x)
{
    const uint32_t u = bits_of(x);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u); /* NaN: quiet, sign and top payload kept */
    /* Round to nearest even on the 16 bits dropped; no NaN here, so no carry reaches the sign
     * and the largest floats carry into Inf (0x7f80). */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float clt__bf16_to_f32(uint16_t h)
{
    return float_of((uint32_t)h << 16);
}

uint16_t clt__f32_to_half(enum clt_precision p, float x)
{
    return p == CLT_PRECISION_BF16 ? clt__f32_to_bf16(x) : clt__f32_to_f16(x);
}

/* clt__f32_to_f16 without branches, the form of cl/common.cl's f16_bits: a normal half rebiases
 * and rounds to even by integer adds (a carry into 0x7c00 is Inf, as it should be), a subnormal
 * one is rounded by the FPU (|x| + 0.5 keeps x in units of 2^-24, rounded to nearest even),
 * then Inf past the largest half and the quiet NaN with its top payload bits are selected. */
static inline uint16_t f16_bits_select(float x)
{
    const uint32_t u = bits_of(x), f = u & 0x7fffffffu;
    const int32_t fs = (int32_t)f; /* |x|'s bits compared as signed ints: SSE2 has no unsigned */
    const uint32_t nrm = (f + 0xc8000fffu + ((f >> 13) & 1u)) >> 13;
    const uint32_t sub = bits_of(float_of(f) + 0.5f) - 0x3f000000u;
    const uint32_t is_sub = 0u - (uint32_t)(fs < 0x38800000),
                   is_inf = 0u - (uint32_t)(fs >= 0x47800000);
    const uint32_t is_nan = 0u - (uint32_t)(fs > 0x7f800000);
    uint32_t r = (sub & is_sub) | (nrm & ~is_sub);
    r = (0x7c00u & is_inf) | (r & ~is_inf);
    r = ((0x7e00u | ((f >> 13) & 0x3ffu)) & is_nan) | (r & ~is_nan);
    return (uint16_t)(r | ((u >> 16) & 0x8000u));
}

/* clt__f32_to_bf16 without a branch. */
static inline uint16_t bf16_bits_select(float x)
{
    const uint32_t u = bits_of(x);
    const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, nan = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : r);
}

/* Elements per block of clt__f32_to_half_n: a loop of a fixed count, which GCC's -O2 cost
 * model vectorizes where it leaves a loop of unknown count scalar. */
#define NARROW_BLOCK 16

/* dst[i] = the narrowed src[i] for i < n: whole blocks, then the rest one by one. */
#define DEFINE_NARROW_RANGE(NAME, BITS)                                                            \
    static inline void NAME(const float *src, uint16_t *dst, size_t n)                             \
    {                                                                                              \
        size_t i = 0;                                                                              \
        for (; n - i >= NARROW_BLOCK; i += NARROW_BLOCK)                                           \
            for (size_t j = 0; j < NARROW_BLOCK; j++)                                              \
                dst[i + j] = BITS(src[i + j]);                                                     \
        for (; i < n; i++)                                                                         \
            dst[i] = BITS(src[i]);                                                                 \
    }
DEFINE_NARROW_RANGE(f16_range, f16_bits_select)
DEFINE_NARROW_RANGE(bf16_range, bf16_bits_select)

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

/* Narrows the first n - n % 8 elements to fp16 with the F16C instruction vcvtps2ph (round to
 * nearest even; a NaN keeps its sign and top payload bits with the quiet bit set, as
 * clt__f32_to_f16 does) and returns how many it did: on x86-64 CPUs that have it, a
 * twentieth of the time of the integer form in SSE2 vectors (the baseline build's). */
__attribute__((target("avx,f16c"))) static size_t f16_n_f16c(const float *src, uint16_t *dst,
                                                             size_t n)
{
    size_t i = 0;
    for (; n - i >= 8; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    return i;
}

/* bf16_range compiled for AVX2 (8 lanes against the baseline build's SSE2 4). */
__attribute__((target("avx2"))) static void bf16_range_avx2(const float *src, uint16_t *dst,
                                                            size_t n)
{
    bf16_range(src, dst, n);
}

static void f16_n(const float *src, uint16_t *dst, size_t n)
{
    const size_t i = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx")
                         ? f16_n_f16c(src, dst, n)
                         : 0;
    f16_range(src + i, dst + i, n - i);
}

static void bf16_n(const float *src, uint16_t *dst, size_t n)
{
    if (__builtin_cpu_supports("avx2"))
        bf16_range_avx2(src, dst, n);
    else
        bf16_range(src, dst, n);
}
#else
#define f16_n f16_range
#define bf16_n bf16_range
#endif

void clt__f32_to_half_n(enum clt_precision p, const float *src, uint16_t *dst, size_t n)
{
    if (p == CLT_PRECISION_BF16)
        bf16_n(src, dst, n);
    else
        f16_n(src, dst, n);
}

float clt__half_to_f32(enum clt_precision p, uint16_t h)
{
    return p == CLT_PRECISION_BF16 ? clt__bf16_to_f32(h) : clt__f16_to_f32(h);
}

bool clt__f16_nonfinite(uint16_t h)
{
    return (h & 0x7c00u) == 0x7c00u;
}

bool clt__bf16_nonfinite(uint16_t h)
{
    return (h & 0x7f80u) == 0x7f80u;
}

/* ==== Launchers ========================================================================= */

/* Checks the arguments every conversion shares. */
static enum clt_status convert_check(struct clt_device *dev, enum clt_precision p, int64_t n,
                                     struct clt__buf src, size_t src_size, struct clt__buf dst,
                                     size_t dst_size, const char *op)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    if (p != CLT_PRECISION_FP16 && p != CLT_PRECISION_BF16) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: precision %d is not fp16 or bf16", op, (int)p);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    enum clt_status st = clt__check_i32(dev, n, "elements");
    if (st == CLT_OK)
        st = clt__check_buf(dev, src, n, src_size, op, "src");
    if (st == CLT_OK)
        st = clt__check_buf(dev, dst, n, dst_size, op, "dst");
    return st;
}

enum clt_status clt__precision_narrow(struct clt_device *dev, enum clt_precision p, int64_t n,
                                      struct clt__buf src, struct clt__buf dst)
{
    enum clt_status st = convert_check(dev, p, n, src, 4, dst, 2, "precision_narrow");
    if (st != CLT_OK)
        return st;
    enum clt__kernel_id id =
        p == CLT_PRECISION_FP16 ? CLT__K_precision_f32_to_f16 : CLT__K_precision_f32_to_bf16;
    /* One work-item per 8 elements (cl/precision.cl). */
    return CLT__RUN(dev, id, (size_t)(n + 7) / 8, CLT__I32(n), CLT__BUF(src), CLT__BUF(dst));
}

enum clt_status clt__precision_widen(struct clt_device *dev, enum clt_precision p, int64_t n,
                                     struct clt__buf src, struct clt__buf dst)
{
    enum clt_status st = convert_check(dev, p, n, src, 2, dst, 4, "precision_widen");
    if (st != CLT_OK)
        return st;
    enum clt__kernel_id id =
        p == CLT_PRECISION_FP16 ? CLT__K_precision_f16_to_f32 : CLT__K_precision_bf16_to_f32;
    /* One work-item per 8 elements (cl/precision.cl). */
    return CLT__RUN(dev, id, (size_t)(n + 7) / 8, CLT__I32(n), CLT__BUF(src), CLT__BUF(dst));
}

enum clt_status clt__precision_widen_grads(struct clt_device *dev, enum clt_precision p, int64_t n,
                                           struct clt__buf src, struct clt__buf dst,
                                           struct clt__buf state, bool acc)
{
    enum clt_status st = convert_check(dev, p, n, src, 2, dst, 4, "precision_widen_grads");
    if (st == CLT_OK)
        st = clt__check_buf(dev, state, 8, 4, "precision_widen_grads", "state");
    if (st != CLT_OK)
        return st;
    enum clt__kernel_id id = p == CLT_PRECISION_FP16 ? CLT__K_precision_f16_grad_to_f32
                                                     : CLT__K_precision_bf16_grad_to_f32;
    /* One work-item per 4 elements (cl/precision.cl). */
    return CLT__RUN(dev, id, (size_t)(n + 3) / 4, CLT__I32(n), CLT__BUF(src), CLT__BUF(dst),
                    CLT__BUF(state), CLT__I32(acc ? 1 : 0));
}

int32_t clt__nonfinite_parts(int64_t n)
{
    int64_t parts = (n + NONFINITE_CHUNK - 1) / NONFINITE_CHUNK;
    return (int32_t)(parts < 1 ? 1 : parts > NONFINITE_MAX_PARTS ? NONFINITE_MAX_PARTS : parts);
}

size_t clt__nonfinite_workspace_bytes(int64_t n)
{
    return (size_t)clt__nonfinite_parts(n) * sizeof(cl_int);
}

enum clt_status clt__nonfinite_count(struct clt_device *dev, int64_t n, struct clt__buf x,
                                     struct clt__buf workspace, struct clt__buf found)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    const int32_t parts = clt__nonfinite_parts(n);
    enum clt_status st = clt__check_i32(dev, n, "elements");
    if (st == CLT_OK)
        st = clt__check_buf(dev, x, n, 4, "nonfinite_count", "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, workspace, parts, 4, "nonfinite_count", "workspace");
    if (st == CLT_OK)
        st = clt__check_buf(dev, found, 1, 4, "nonfinite_count", "found");
    if (st != CLT_OK)
        return st;
    st = CLT__RUN(dev, CLT__K_precision_nonfinite_partial, (size_t)parts, CLT__I32(n),
                  CLT__I32(parts), CLT__BUF(x), CLT__BUF(workspace));
    if (st != CLT_OK)
        return st;
    return CLT__RUN(dev, CLT__K_precision_nonfinite_total, 1, CLT__I32(parts), CLT__BUF(workspace),
                    CLT__BUF(found));
}
