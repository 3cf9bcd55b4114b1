/*
 * activation.cl: elementwise activation functions and dropout, forward and backward.
 *
 * activation_<f>_forward   y[i] = f(x[i])                  i in [0, n)
 * activation_<f>_backward  dx[i] (+)= dy[i] * f'(x[i])     from the forward INPUT x
 *     one pair of kernels per f, so that nothing in a kernel branches on the activation
 *     (act_eval(act, ...) with `act` a constant; the values of enum clt__act in
 *     engine/ops/activation.h):
 *       0 relu        x < 0 ? 0 : x                        f' = x > 0 ? 1 : 0
 *       1 leaky relu  x < 0 ? slope * x : x                f' = x > 0 ? 1 : slope
 *       2 gelu tanh   PyTorch gelu(approximate='tanh'): 0.5 x (1 + tanh(b (x + k x^3))),
 *                     b = sqrt(2 / pi), k = 0.044715
 *       3 gelu erf    PyTorch gelu(approximate='none'): x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
 *       4 tanh
 *       5 sigmoid     1 / (1 + exp(-x))
 *       6 silu        x * sigmoid(x)
 *     `slope` is read by leaky relu only. <f> is the name clt__act_name gives.
 *
 * dropout_forward      y[i] = keep(i) ? x[i] * scale : 0
 * dropout_backward     dx[i] (+)= keep(i) ? dy[i] * scale : 0
 *     keep(i) = u(i) >= p, scale = 1 / (1 - p) computed by the launcher in float. The mask
 *     is recomputed, never stored: u(i) comes from Philox4x32-10 (Salmon et al., SC'11,
 *     the Random123 definition) with
 *         key     = {seed & 0xffffffff, seed >> 32}
 *         counter = {i / 4, 0, step & 0xffffffff, step >> 32}
 *         u(i)    = (out[i % 4] >> 8) * 2^-24     (exact in float, in [0, 1))
 *     so the mask depends only on (seed, step, i), never on the device or launch shape.
 *     dropout_keep(key, step, p, e) makes the same draw for one element: the kernels the
 *     fusion pass generates (engine/fuse.c, docs/fusion.md) call it and act_eval.
 *
 * Buffers: every tensor is n contiguous elements of the storage (store_t: float, or 16 bits in
 * a 16-bit build; read with LOAD, written with STORE, cl/common.cl) starting at element
 * <name>_off of its buffer; every operation is in float.
 * In-place use (y the same range as x, dx the same range as dy) is allowed: each element is
 * read and written by one work-item only.
 *
 * Work-items: activation kernels, one per element (global n rounded up to the work-group
 * size), or in their _rows forms one per element of 32-element rows (global 32 x rows, below);
 * dropout kernels, one per Philox block of 4 consecutive elements 4j..4j+3 (global
 * ceil(n / 4)). Work-items past the end return at once. No local memory, no assumption on
 * the work-group size.
 *
 * Numerics: sigmoid, silu, tanh' and gelu tanh are written with a = exp(-|z|) in (0, 1],
 * never exp(+|z|), so nothing overflows for any finite x: outputs and gradients stay finite
 * up to |x| = 1e20 and beyond. 1 + tanh(u) = 2 sigmoid(2u), 1 + erf(x / sqrt 2) =
 * erfc(-x / sqrt 2), 1 - tanh^2 = 4a / (1 + a)^2 and s (1 - s) = a / (1 + a)^2 avoid the
 * cancellation of the textbook formulas where the result is small. A NaN input gives a NaN
 * output, and a NaN gradient except for relu and leaky relu (a sign test). exp, erfc and
 * tanh are this file's own branch-free forms (exp_nonpos, erfc_fast, tanh_and_grad, with
 * their measured errors), never the built-ins, which PoCL runs one element at a time.
 *
 * Tunables: none.
 */

/* The values of `act` are CLT__CL_ACT_* of cl/shared.h. */

#define GELU_BETA 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_KAPPA 0.044715f
#define INV_SQRT_2PI 0.3989422804014327f /* 1 / sqrt(2 pi) */

/* exp_nonpos: common.cl. */

/* The logistic sigmoid s(z) and s'(z) = s(z) s(-z), from a = exp(-|z|) <= 1:
 * s(|z|) = 1 / (1 + a), s(-|z|) = a / (1 + a), s'(z) = a / (1 + a)^2. Returns (s, s'). */
static float2 sigmoid_and_grad(float z)
{
    const float a = exp_nonpos(-fabs(z));
    const float r = 1.0f / (1.0f + a);
    return (float2)(z >= 0.0f ? r : a * r, a * r * r);
}

/* gelu tanh: 0.5 x (1 + tanh(u)) = x s(2u) with u = b x (1 + k x^2). The derivative is
 * s(2u) + x s'(2u) 2 b (1 + 3 k x^2). x^2 is capped at 1e4 in that polynomial: past
 * |x| = 100, s'(2u) is exactly 0 in float (|2u| > 1e5), and the cap keeps 0 * inf out. */
static float2 gelu_tanh_and_grad(float x)
{
    const float x2 = x * x;
    const float u = GELU_BETA * x * fma(GELU_KAPPA, x2, 1.0f);
    const float2 s = sigmoid_and_grad(2.0f * u);
    const float du = 2.0f * GELU_BETA * (1.0f + 3.0f * GELU_KAPPA * fmin(x2, 1e4f));
    return (float2)(x * s.x, s.x + x * s.y * du);
}

/* erfc(z) for any z, branch-free: Numerical Recipes' erfcc (a Chebyshev fit, fractional error
 * below 1.2e-7 in exact arithmetic), erfc(|z|) = t exp(-z^2 - 1.26551223 + t P(t)) with
 * t = 1 / (1 + |z| / 2), and erfc(z) = 2 - erfc(|z|) for z < 0. In float the exponent's
 * rounding (about z^2 2^-24) adds a relative error of that size. Measured over |z| <= 10
 * (step 1e-4) against double erfc where erfc(z) > 1e-6: relative error <= 1.1e-6; gelu erf
 * from it stays within 3% of test_activation's tolerance over [-20, 20]. */
static float erfc_fast(float z)
{
    const float az = fabs(z);
    const float t = 1.0f / (1.0f + 0.5f * az);
    float p = 0.17087277f;
    p = fma(p, t, -0.82215223f);
    p = fma(p, t, 1.48851587f);
    p = fma(p, t, -1.13520398f);
    p = fma(p, t, 0.27886807f);
    p = fma(p, t, -0.18628806f);
    p = fma(p, t, 0.09678418f);
    p = fma(p, t, 0.37409196f);
    p = fma(p, t, 1.00002368f);
    p = fma(p, t, -1.26551223f);
    const float c = t * exp_nonpos(p - az * az); /* p < 0 for every t in (0, 1] */
    return z < 0.0f ? 2.0f - c : c;
}

/* gelu erf: x Phi(x), Phi(x) = 0.5 erfc(-x / sqrt 2); derivative Phi(x) + x phi(x). */
static float2 gelu_erf_and_grad(float x)
{
    const float cdf = 0.5f * erfc_fast(-x * M_SQRT1_2_F);
    return (float2)(x * cdf, cdf + x * (INV_SQRT_2PI * exp_nonpos(-0.5f * (x * x))));
}

/* tanh(x) and tanh' = 1 - tanh^2 = 4 a / (1 + a)^2 with a = exp(-2|x|) (no cancellation for
 * large |x|). tanh(|x|) = (1 - a) / (1 + a) for |x| >= 0.625, else Cephes' tanhf odd
 * polynomial x + x^3 P(x^2) (where 1 - a would cancel); both computed and one selected.
 * Measured over [-20, 20] (step 1e-5) against double tanh: relative error <= 1.8e-7. */
static float2 tanh_and_grad(float x)
{
    const float ax = fabs(x);
    const float a = exp_nonpos(-2.0f * ax);
    const float r = 1.0f / (1.0f + a);
    const float z = x * x;
    float p = -5.70498872745e-3f;
    p = fma(p, z, 2.06390887954e-2f);
    p = fma(p, z, -5.37397155531e-2f);
    p = fma(p, z, 1.33314422036e-1f);
    p = fma(p, z, -3.33332819422e-1f);
    const float small = fma(p * z, x, x);
    const float large = copysign((1.0f - a) * r, x);
    return (float2)(ax < 0.625f ? small : large, 4.0f * a * r * r);
}

/* (f(x), f'(x)) of activation `act`. The kernels use one of the two; the compiler drops the
 * other. Every kernel and every fused chain (engine/fuse.c) passes `act` as a constant, so
 * the switch is resolved at compile time. */
static inline __attribute__((always_inline)) float2 act_eval(int act, float slope, float x)
{
    float2 s;
    switch (act) {
    case CLT__CL_ACT_RELU:
        return (float2)(x < 0.0f ? 0.0f : x, x > 0.0f ? 1.0f : 0.0f);
    case CLT__CL_ACT_LEAKY_RELU:
        return (float2)(x < 0.0f ? slope * x : x, x > 0.0f ? 1.0f : slope);
    case CLT__CL_ACT_GELU_TANH:
        return gelu_tanh_and_grad(x);
    case CLT__CL_ACT_GELU_ERF:
        return gelu_erf_and_grad(x);
    case CLT__CL_ACT_TANH:
        return tanh_and_grad(x);
    case CLT__CL_ACT_SIGMOID:
        return sigmoid_and_grad(x);
    case CLT__CL_ACT_SILU:
        /* (x s(x))' = s(x) + x s'(x) */
        s = sigmoid_and_grad(x);
        return (float2)(x * s.x, s.x + x * s.y);
    default:
        return (float2)(NAN, NAN);
    }
}

/* The bodies of the kernels of one activation (`act` a constant). */
static void act_forward(int act, int n, float slope, __global const store_t *x, __global store_t *y)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    STORE(y, i, act_eval(act, slope, LOAD(x, i)).x);
}

static void act_backward(int act, int n, float slope, int accumulate, __global const store_t *x,
                         __global const store_t *dy, __global store_t *dx)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float g = LOAD(dy, i) * act_eval(act, slope, LOAD(x, i)).y;
    STORE(dx, i, accumulate ? LOAD(dx, i) + g : g);
}

/* The same over rows of 32 elements: element 32 r + c at work-item (c, r), launched 2-D over
 * (32, rows). Dimension 0 is never rounded up (its local size is a power of two up to 32:
 * engine/launch.c), so only the row is checked and no load or store sits under a per-element
 * condition: PoCL vectorizes these in 16-bit storage too (AVX2 has no 16-bit masked loads or
 * stores; the one-element forms above ran scalar there). dx's old value is read whether or
 * not it is added, for the same reason. The launcher runs the one-element form on the last
 * n % 32 elements. */
static void act_forward_rows(int act, int rows, float slope, __global const store_t *x,
                             __global store_t *y)
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (r >= rows)
        return;
    const int i = 32 * r + c;
    STORE(y, i, act_eval(act, slope, LOAD(x, i)).x);
}

static void act_backward_rows(int act, int rows, float slope, int accumulate,
                              __global const store_t *x, __global const store_t *dy,
                              __global store_t *dx)
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (r >= rows)
        return;
    const int i = 32 * r + c;
    const float g = LOAD(dy, i) * act_eval(act, slope, LOAD_ALT(x, i)).y;
    const float old = LOAD(dx, i);
    STORE(dx, i, accumulate ? old + g : g);
}

/* One forward and one backward kernel per activation, named activation_<name>_forward and
 * activation_<name>_backward, all with the parameters below (slope read by leaky relu only):
 *   forward  (int n, float slope, x [n], y [n])
 *   backward (int n, float slope, int accumulate, x [n] forward input, dy [n], dx [n]) */
#define ACT_FORWARD_PARAMS                                                                         \
    int n, float slope, __global const store_t *x, int x_off, __global store_t *y, int y_off
#define ACT_FORWARD_BODY(act) act_forward(act, n, slope, x + x_off, y + y_off)
#define ACT_BACKWARD_PARAMS                                                                        \
    int n, float slope, int accumulate, __global const store_t *x, int x_off,                      \
        __global const store_t *dy, int dy_off, __global store_t *dx, int dx_off
#define ACT_BACKWARD_BODY(act)                                                                     \
    act_backward(act, n, slope, accumulate, x + x_off, dy + dy_off, dx + dx_off)
/* The rows forms, activation_<name>_forward_rows and _backward_rows: the parameters above
 * with `rows` (32-element rows) in place of n. */
#define ACT_FORWARD_ROWS_PARAMS                                                                    \
    int rows, float slope, __global const store_t *x, int x_off, __global store_t *y, int y_off
#define ACT_BACKWARD_ROWS_PARAMS                                                                   \
    int rows, float slope, int accumulate, __global const store_t *x, int x_off,                   \
        __global const store_t *dy, int dy_off, __global store_t *dx, int dx_off

__kernel void activation_relu_forward(ACT_FORWARD_PARAMS)
{
    ACT_FORWARD_BODY(CLT__CL_ACT_RELU);
}
__kernel void activation_relu_backward(ACT_BACKWARD_PARAMS)
{
    ACT_BACKWARD_BODY(CLT__CL_ACT_RELU);
}
__kernel void activation_leaky_relu_forward(ACT_FORWARD_PARAMS)
{
    ACT_FORWARD_BODY(CLT__CL_ACT_LEAKY_RELU);
}
__kernel void activation_leaky_relu_backward(ACT_BACKWARD_PARAMS)
{
    ACT_BACKWARD_BODY(CLT__CL_ACT_LEAKY_RELU);
}
__kernel void activation_gelu_tanh_forward(ACT_FORWARD_PARAMS)
{
    ACT_FORWARD_BODY(CLT__CL_ACT_GELU_TANH);
}
__kernel void activation_gelu_tanh_backward(ACT_BACKWARD_PARAMS)
{
    ACT_BACKWARD_BODY(CLT__CL_ACT_GELU_TANH);
}
__kernel void activation_gelu_erf_forward(ACT_FORWARD_PARAMS)
{
    ACT_FORWARD_BODY(CLT__CL_ACT_GELU_ERF);
}
__kernel void activation_gelu_erf_backward(ACT_BACKWARD_PARAMS)
{
    ACT_BACKWARD_BODY(CLT__CL_ACT_GELU_ERF);
}
__kernel void activation_tanh_forward(ACT_FORWARD_PARAMS)
{
    ACT_FORWARD_BODY(CLT__CL_ACT_TANH);
}
__kernel void activation_tanh_backward(ACT_BACKWARD_PARAMS)
{
    ACT_BACKWARD_BODY(CLT__CL_ACT_TANH);
}
__kernel void activation_sigmoid_forward(ACT_FORWARD_PARAMS)
{
    ACT_FORWARD_BODY(CLT__CL_ACT_SIGMOID);
}
__kernel void activation_sigmoid_backward(ACT_BACKWARD_PARAMS)
{
    ACT_BACKWARD_BODY(CLT__CL_ACT_SIGMOID);
}
__kernel void activation_silu_forward(ACT_FORWARD_PARAMS)
{
    ACT_FORWARD_BODY(CLT__CL_ACT_SILU);
}
__kernel void activation_silu_backward(ACT_BACKWARD_PARAMS)
{
    ACT_BACKWARD_BODY(CLT__CL_ACT_SILU);
}
__kernel void activation_relu_forward_rows(ACT_FORWARD_ROWS_PARAMS)
{
    act_forward_rows(CLT__CL_ACT_RELU, rows, slope, x + x_off, y + y_off);
}
__kernel void activation_relu_backward_rows(ACT_BACKWARD_ROWS_PARAMS)
{
    act_backward_rows(CLT__CL_ACT_RELU, rows, slope, accumulate, x + x_off, dy + dy_off,
                      dx + dx_off);
}
__kernel void activation_leaky_relu_forward_rows(ACT_FORWARD_ROWS_PARAMS)
{
    act_forward_rows(CLT__CL_ACT_LEAKY_RELU, rows, slope, x + x_off, y + y_off);
}
__kernel void activation_leaky_relu_backward_rows(ACT_BACKWARD_ROWS_PARAMS)
{
    act_backward_rows(CLT__CL_ACT_LEAKY_RELU, rows, slope, accumulate, x + x_off, dy + dy_off,
                      dx + dx_off);
}
__kernel void activation_gelu_tanh_forward_rows(ACT_FORWARD_ROWS_PARAMS)
{
    act_forward_rows(CLT__CL_ACT_GELU_TANH, rows, slope, x + x_off, y + y_off);
}
__kernel void activation_gelu_tanh_backward_rows(ACT_BACKWARD_ROWS_PARAMS)
{
    act_backward_rows(CLT__CL_ACT_GELU_TANH, rows, slope, accumulate, x + x_off, dy + dy_off,
                      dx + dx_off);
}
__kernel void activation_gelu_erf_forward_rows(ACT_FORWARD_ROWS_PARAMS)
{
    act_forward_rows(CLT__CL_ACT_GELU_ERF, rows, slope, x + x_off, y + y_off);
}
__kernel void activation_gelu_erf_backward_rows(ACT_BACKWARD_ROWS_PARAMS)
{
    act_backward_rows(CLT__CL_ACT_GELU_ERF, rows, slope, accumulate, x + x_off, dy + dy_off,
                      dx + dx_off);
}
__kernel void activation_tanh_forward_rows(ACT_FORWARD_ROWS_PARAMS)
{
    act_forward_rows(CLT__CL_ACT_TANH, rows, slope, x + x_off, y + y_off);
}
__kernel void activation_tanh_backward_rows(ACT_BACKWARD_ROWS_PARAMS)
{
    act_backward_rows(CLT__CL_ACT_TANH, rows, slope, accumulate, x + x_off, dy + dy_off,
                      dx + dx_off);
}
__kernel void activation_sigmoid_forward_rows(ACT_FORWARD_ROWS_PARAMS)
{
    act_forward_rows(CLT__CL_ACT_SIGMOID, rows, slope, x + x_off, y + y_off);
}
__kernel void activation_sigmoid_backward_rows(ACT_BACKWARD_ROWS_PARAMS)
{
    act_backward_rows(CLT__CL_ACT_SIGMOID, rows, slope, accumulate, x + x_off, dy + dy_off,
                      dx + dx_off);
}
__kernel void activation_silu_forward_rows(ACT_FORWARD_ROWS_PARAMS)
{
    act_forward_rows(CLT__CL_ACT_SILU, rows, slope, x + x_off, y + y_off);
}
__kernel void activation_silu_backward_rows(ACT_BACKWARD_ROWS_PARAMS)
{
    act_backward_rows(CLT__CL_ACT_SILU, rows, slope, accumulate, x + x_off, dy + dy_off,
                      dx + dx_off);
}

/* ---- dropout ------------------------------------------------------------------------- */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* Philox4x32-10 of counter (c0, c1, c2, c3) and key (k0, k1): 10 rounds, the key bumped by
 * (W0, W1) between rounds; the output replaces the counter. In scalars and unrolled, so that
 * PoCL vectorizes the work-group loop over work-items (it leaves loops over vector types,
 * and loops inside a work-item, scalar). */
static void philox4x32_10(uint *c0, uint *c1, uint *c2, uint *c3, uint k0, uint k1)
{
#pragma unroll
    for (int r = 0; r < 10; r++) {
        const uint hi0 = mul_hi(PHILOX_M0, *c0), lo0 = PHILOX_M0 * *c0;
        const uint hi1 = mul_hi(PHILOX_M1, *c2), lo1 = PHILOX_M1 * *c2;
        *c0 = hi1 ^ *c1 ^ k0;
        *c1 = lo1;
        *c2 = hi0 ^ *c3 ^ k1;
        *c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
}

/* The uniform in [0, 1) of a Philox output word (exact in float: a 24-bit integer). */
static float word_uniform(uint w)
{
    return (float)(w >> 8) * 0x1.0p-24f;
}

/* keep(e) for one element e: the draw dropout_apply makes for it. The kernels the fusion pass
 * generates (engine/fuse.c) call it, one element per work-item. */
static bool dropout_keep(uint2 key, uint2 step, float p, long e)
{
    uint c0 = (uint)(e / 4), c1 = 0u, c2 = step.x, c3 = step.y;
    philox4x32_10(&c0, &c1, &c2, &c3, key.x, key.y);
    const int l = (int)(e % 4);
    return word_uniform(l == 0 ? c0 : l == 1 ? c1 : l == 2 ? c2 : c3) >= p;
}

/* One lane of dropout_apply: out[e] = or += (u >= p ? in[e] * scale : 0). */
static void dropout_lane(float u, float p, float scale, int accumulate, __global const store_t *in,
                         __global store_t *out, size_t e)
{
    const float g = u >= p ? LOAD(in, e) * scale : 0.0f;
    STORE(out, e, accumulate ? LOAD(out, e) + g : g);
}

/* keep(e) ? in[e] * scale : 0 for the Philox block of this work-item, written to out[e] or
 * added to it. Both dropout kernels: the backward is the forward applied to dy. The four
 * lanes are written out, each stored only when it is before n (no loop, no switch). */
static void dropout_apply(int n, float p, float scale, uint2 key, uint2 step, int accumulate,
                          __global const store_t *in, __global store_t *out)
{
    const int j = get_global_id(0);
    const long left = n - 4 * (long)j; /* long: 4j may pass INT_MAX in the last work-group */
    if (left <= 0)
        return;
    uint c0 = (uint)j, c1 = 0u, c2 = step.x, c3 = step.y;
    philox4x32_10(&c0, &c1, &c2, &c3, key.x, key.y);
    const size_t e = 4 * (size_t)j;
    dropout_lane(word_uniform(c0), p, scale, accumulate, in, out, e);
    if (left > 1)
        dropout_lane(word_uniform(c1), p, scale, accumulate, in, out, e + 1);
    if (left > 2)
        dropout_lane(word_uniform(c2), p, scale, accumulate, in, out, e + 2);
    if (left > 3)
        dropout_lane(word_uniform(c3), p, scale, accumulate, in, out, e + 3);
}

__kernel void dropout_forward(int n, float p, float scale, uint seed_lo, uint seed_hi, uint step_lo,
                              uint step_hi, __global const store_t *x, int x_off, /* [n] */
                              __global store_t *y, int y_off)                     /* [n] */
{
    dropout_apply(n, p, scale, (uint2)(seed_lo, seed_hi), (uint2)(step_lo, step_hi), 0, x + x_off,
                  y + y_off);
}

__kernel void dropout_backward(int n, float p, float scale, uint seed_lo, uint seed_hi,
                               uint step_lo, uint step_hi, int accumulate,
                               __global const store_t *dy, int dy_off, /* [n] */
                               __global store_t *dx, int dx_off)       /* [n] */
{
    dropout_apply(n, p, scale, (uint2)(seed_lo, seed_hi), (uint2)(step_lo, step_hi), accumulate,
                  dy + dy_off, dx + dx_off);
}

/* ---- fused chains ------------------------------------------------------------------------
 * The kernels of a fused chain (fused_forward and fused_backward, engine/fuse.c,
 * docs/fusion.md) arrive as the body of the macro CLT_FUSED_CHAIN, defined in the text of
 * the program variant, which comes before cl/common.cl and this file; expanded here, they
 * see the storage macros and act_eval and dropout_keep. Unset in the plain build. */
#ifdef CLT_FUSED_CHAIN
CLT_FUSED_CHAIN
#endif
