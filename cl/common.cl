/*
 * common.cl: prepended to every program. Fixes the numerics every kernel relies on and
 * gives the defaults of the build-time tunables, so each file also compiles alone.
 *
 * Tunables (set by the engine in the build options from the device's limits):
 *   CLT_WG_1D    the 1-D work-group size launchers use: a power of two <= 256
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
 * expf: x = k ln 2 + r with k = rint(x / ln 2), |r| <= ln(2) / 2, ln 2 split in two (k *
 * 0.693359375 is exact), exp(r) by a degree-7 polynomial, 2^k built in the exponent field.
 * Measured against double exp over [-87, 0] (step 1e-4): relative error <= 8e-8. Below -87
 * the result is 0 (exp(-87) = 1.6e-38: at most that absolute error, no subnormals); -inf
 * gives 0, NaN gives NaN. k = rint(xc / ln 2) by adding and subtracting 1.5 * 2^23: for
 * |v| < 2^22 the sum rounds v to the nearest integer, ties to even, exactly as rint (PoCL's
 * rint is a long scalar sequence); t's low mantissa bits then hold k + 2^22. */
#define CLT_DEFINE_EXP_NONPOS(NAME, T, AS_T, AS_I)                                                 \
    T NAME(T x)                                                                                    \
    {                                                                                              \
        const T xc = select(x, (T)(-87.0f), x < (T)(-87.0f)); /* NaN stays NaN */                  \
        const T t = xc * 1.44269504088896341f + 12582912.0f;                                       \
        const T k = t - 12582912.0f;                                                               \
        T r = xc - k * 0.693359375f;                                                               \
        r = r + k * 2.12194440e-4f;                                                                \
        T p = (T)(1.9875691500e-4f);                                                               \
        p = p * r + 1.3981999507e-3f;                                                              \
        p = p * r + 8.3334519073e-3f;                                                              \
        p = p * r + 4.1665795894e-2f;                                                              \
        p = p * r + 1.6666665459e-1f;                                                              \
        p = p * r + 5.0000001201e-1f;                                                              \
        p = p * (r * r) + r + 1.0f;                                                                \
        const T two_k = AS_T((AS_I(t) - 0x4B400000 + 127) << 23);                                  \
        return select(p * two_k, (T)(0.0f), x < (T)(-87.0f));                                      \
    }
CLT_DEFINE_EXP_NONPOS(exp_nonpos, float, as_float, as_int)
CLT_DEFINE_EXP_NONPOS(exp_nonpos8, float8, as_float8, as_int8)
