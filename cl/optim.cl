/*
 * optim.cl: one optimizer step over flat parameter, gradient and state buffers: the global
 * gradient norm, the decision to apply or skip the step, clipping, and the SGD and
 * Adam/AdamW updates, with PyTorch's (torch.optim) semantics.
 *
 * A step is a fixed sequence of launches, all on one in-order queue (engine/ops/optim.c):
 *   1. optim_norm_partial    ws level 1 [P1] = sums of squares of (scale * grads)
 *   2. optim_norm_combine    ws level k+1 [P(k+1)] = sums of level k, while P(k) > 64 (on
 *                            CPUs: while P(k) > 64 * 64)
 *   3. optim_step_begin      one work-item: norm (with the last level's sums, where it has
 *                            more than 64), skip decision, clip factor, step counter t
 *   4. optim_sgd_update or optim_adam_update: one work-item per 4 elements (optim_adam_update16:
 *      per 16, on CPUs)
 * and, to reset the status or resume from a checkpoint, optim_status_set (one work-item).
 * A 16-bit trainer's step (clt__optim_step_half) runs optim_sgd_update_f16 / _bf16 or
 * optim_adam_update_f16 / _bf16 instead: the same update, which also narrows the new
 * parameters into the trainer's 16-bit working copy.
 *
 * Layouts (every buffer a __global pointer plus an element offset; n elements):
 *   params, grads, m, v  [n] floats. m is SGD's momentum buffer or Adam's first moment,
 *                        v Adam's second moment. grads are only read.
 *   ws                   [sum of level sizes] floats, the norm's partial sums, level after
 *                        level (the launcher passes each level's offset)
 *   loss                 [1] float, the step's loss (checked for finiteness only)
 *   shadow               [n] 16-bit parameters (half or ushort), only written
 *   status               struct optim_status (below), 32 bytes kept across steps, passed as
 *                        an int pointer plus an offset in 32-bit words
 *
 * Work-items:
 *   optim_norm_partial / optim_norm_combine: work-item i < parts sums the inputs
 *   i, i + parts, i + 2 parts, ... (count of them, at most 64): term k goes to compensated
 *   (Kahan) sum k mod 4, in order of k, and the four sums are then added in order, in a loop of
 *   64 unrolled steps (norm_chunk). parts = ceil(count / 64) is chosen by the launcher from the
 *   count alone, so every partial sum, and hence the norm, is the same whatever the work-group
 *   size. Neighbouring work-items read neighbouring elements (coalesced on GPUs, vectorized on
 *   CPUs). optim_step_begin, optim_status_set: a single work-item; optim_step_begin adds the
 *   last level's (at most 64) partials in order. Updates: work-item i updates elements 4i to
 *   4i + 3 (those below n); work-items past n return at once.
 *
 * Numerics: the sum of squares is of non-negative terms, so Kahan summation keeps its relative
 * error near 2 ulp whatever n (float is enough; no cl_khr_fp64). A non-finite term makes the
 * sum non-finite (Inf stays Inf, NaN stays NaN). Bias corrections 1 - beta^t are computed as
 * -expm1(t * log1p(-(1 - beta))) from 1 - beta given by the host (computed there in double),
 * so beta = 0.999 loses nothing to its float rounding. Products and sums are separate
 * operations in PyTorch's order (FP_CONTRACT is off, no fma).
 *
 * Tunables: none. The chunk of 64 is part of the summation order, not a device parameter.
 */

/* The optimizer's device status; engine/ops/optim.h declares the same layout for the host
 * (struct clt__optim_status) and checks it. */
struct optim_status {
    float grad_norm;        /* 2-norm of scale * grads of the last step, before clipping */
    float clip_coef;        /* factor applied to the gradients in the last step */
    int step;               /* t: steps applied since the status was reset */
    int skipped;            /* steps skipped since the status was reset */
    int last_skip;          /* 0: last step applied; else CLT__OPTIM_SKIP_* bits */
    float bias_correction1; /* 1 - beta1^t (Adam) */
    float bias_correction2; /* 1 - beta2^t (Adam) */
    int reserved;
};

/* last_skip's bits are CLT__OPTIM_SKIP_* of cl/shared.h. */

/* Terms per partial sum of the norm (NORM_CHUNK of engine/ops/optim.c). */
#define NORM_CHUNK 64

/* Adds x to the compensated sum *s with compensation *c (Kahan). Once the sum is not finite
 * the compensation is dropped, so an infinite term gives Inf and not Inf - Inf = NaN. */
void optim_kahan_add(float *s, float *c, float x)
{
    const float y = x - *c;
    const float t = *s + y;
    *c = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

/* Independent compensated sums per work-item of the norm (a fixed part of its order). */
#define NORM_CHAINS 4

/* The sum of work-item i of a level: the terms j = i + k parts, k = 0..63, j < n, of `in`
 * (squared after scaling by `scale` when `square`), term k added to sum k mod 4 in order of k,
 * then the four compensated sums added in order. parts = ceil(n / 64), so k < 64 covers them
 * all. Four chains instead of one: each Kahan step waits for the last (four dependent float
 * operations), and on PoCL one chain made the kernel wait on that latency, 133 us for the mlp's
 * 269,322 gradients against 47 to 69 us with four. The loop has a constant count and is
 * unrolled, the test j < n selects instead of branching: PoCL's work-group loop over i is then
 * the innermost loop and is vectorized (neighbouring i read neighbouring j). */
static float norm_chunk(int n, int parts, int i, bool square, float scale,
                        __global const float *restrict in)
{
    float s[NORM_CHAINS], c[NORM_CHAINS];
#pragma unroll
    for (int w = 0; w < NORM_CHAINS; w++)
        s[w] = c[w] = 0.0f;
#pragma unroll
    for (int k = 0; k < NORM_CHUNK; k++) {
        /* uint: j < 64 parts <= n + 63 may pass INT_MAX */
        const uint j = (uint)i + (uint)k * (uint)parts;
        if (j < (uint)n) {
            float x = in[j];
            if (square) {
                x = x * scale;
                x = x * x;
            }
            optim_kahan_add(&s[k % NORM_CHAINS], &c[k % NORM_CHAINS], x);
        }
    }
    /* Each chain's sum corrected by its compensation (0 once it is not finite). */
    float t = s[0], tc = c[0];
#pragma unroll
    for (int w = 1; w < NORM_CHAINS; w++)
        optim_kahan_add(&t, &tc, s[w] - c[w]);
    return t;
}

/* Level 1 of the norm: out[i] = sum over j = i, i + parts, ... < n of (scale * grads[j])^2. */
__kernel void optim_norm_partial(int n, int parts, float scale,
                                 __global const float *restrict grads, int grads_off, /* [n] */
                                 __global float *restrict out, int out_off)           /* [parts] */
{
    const int i = get_global_id(0);
    if (i >= parts)
        return;
    out[out_off + i] = norm_chunk(n, parts, i, true, scale, grads + grads_off);
}

/* Later levels: out[i] = sum over j = i, i + parts, ... < count of in[j]. */
__kernel void optim_norm_combine(int count, int parts, __global const float *restrict in,
                                 int in_off,                                /* [count] */
                                 __global float *restrict out, int out_off) /* [parts] */
{
    const int i = get_global_id(0);
    if (i >= parts)
        return;
    out[out_off + i] = norm_chunk(count, parts, i, false, 1.0f, in + in_off);
}

/* One work-item. Adds the last level's `count` partials (count 0: an empty gradient, norm 0):
 * up to 64 in order, in one compensated sum; more (at most 64 * 64, on CPUs) first in the
 * sums of one more level, each as optim_norm_combine's work-item i would make it, then those
 * in order: the same bits as that launch and this kernel on its sums. Then decides whether the step
 * is applied, and writes the status the update kernel reads: skipped when the norm or (has_loss)
 * loss[0] is not finite: skipped + 1, t unchanged; applied otherwise: t + 1, clip_coef =
 * min(clip_norm / (norm + 1e-6), 1) when clip_norm > 0 (torch.nn.utils.clip_grad_norm_), else 1;
 * the bias corrections of the new t from one_minus_beta1 and one_minus_beta2 (0 for SGD, unused
 * there). */
__kernel void optim_step_begin(int count, __global const float *ws, int ws_off,        /* [count] */
                               int has_loss, __global const float *loss, int loss_off, /* [1] */
                               float clip_norm, float one_minus_beta1, float one_minus_beta2,
                               __global int *status_base, int status_off)
{
    if (get_global_id(0) != 0)
        return;
    __global struct optim_status *status =
        (__global struct optim_status *)(status_base + status_off);
    float s = 0.0f, c = 0.0f;
    if (count <= NORM_CHUNK) {
        for (int j = 0; j < count; j++)
            optim_kahan_add(&s, &c, ws[ws_off + j]);
    } else {
        const int parts = (count + NORM_CHUNK - 1) / NORM_CHUNK;
        for (int i = 0; i < parts; i++)
            optim_kahan_add(&s, &c, norm_chunk(count, parts, i, false, 1.0f, ws + ws_off));
    }
    const float norm = sqrt(s);
    int skip = 0;
    if (!isfinite(norm))
        skip |= CLT__OPTIM_SKIP_GRAD;
    if (has_loss && !isfinite(loss[loss_off]))
        skip |= CLT__OPTIM_SKIP_LOSS;

    status->grad_norm = norm;
    status->last_skip = skip;
    if (skip) {
        status->skipped += 1;
        status->clip_coef = 1.0f;
        return;
    }
    const int t = status->step + 1;
    status->step = t;
    status->clip_coef = clip_norm > 0.0f ? fmin(clip_norm / (norm + 1e-6f), 1.0f) : 1.0f;
    status->bias_correction1 = -expm1((float)t * log1p(-one_minus_beta1));
    status->bias_correction2 = -expm1((float)t * log1p(-one_minus_beta2));
}

/* One work-item: sets the status to `step` steps applied and `skipped` skipped (0 and 0 to
 * reset it; a checkpoint's counters to resume), every other field 0. */
__kernel void optim_status_set(int step, int skipped, __global int *status_base, int status_off)
{
    if (get_global_id(0) != 0)
        return;
    __global struct optim_status *status =
        (__global struct optim_status *)(status_base + status_off);
    status->grad_norm = 0.0f;
    status->clip_coef = 0.0f;
    status->step = step;
    status->skipped = skipped;
    status->last_skip = 0;
    status->bias_correction1 = 0.0f;
    status->bias_correction2 = 0.0f;
    status->reserved = 0;
}

/* The update kernels: work-item w updates elements 4w .. 4w + 3 (fewer in the last one), as
 * one float4: explicit 4-wide arithmetic, which PoCL keeps in vector registers (its loop
 * vectorizer leaves these kernels scalar otherwise). Lanes past the end are computed on zeros
 * and never stored. Each lane does exactly the scalar operations below, so results do not
 * depend on the grouping. */

/* a[i .. i + 3], the lanes at or past `end` 0. */
static float4 load4(__global const float *a, int i, int end)
{
    if (end - i >= 4)
        return vload4(0, a + i);
    float4 r = (float4)(a[i], 0.0f, 0.0f, 0.0f);
    if (end - i > 1)
        r.s1 = a[i + 1];
    if (end - i > 2)
        r.s2 = a[i + 2];
    return r;
}

/* Stores the lanes of x before `end` to a[i ..]. */
static void store4(__global float *a, int i, int end, float4 x)
{
    if (end - i >= 4) {
        vstore4(x, 0, a + i);
        return;
    }
    a[i] = x.s0;
    if (end - i > 1)
        a[i + 1] = x.s1;
    if (end - i > 2)
        a[i + 2] = x.s2;
}

/* Runs BLOCK, whose accesses to elements i .. i + 3 are bounded by `lim`, with lim = i + 4 for
 * a whole group of four and lim = end for the last, partial one. In the first copy every bound
 * check (end - i >= 4 in load4 and store4) folds away, so PoCL vectorizes straight-line code:
 * the Adam update of the mlp's 269,322 parameters took 155 us with the checks in place, 130 us
 * so. The operations are the same in both copies, so are the bits. */
#define BY_GROUP(BLOCK)                                                                            \
    if (end - i >= 4) {                                                                            \
        const int lim = i + 4;                                                                     \
        BLOCK                                                                                      \
    } else {                                                                                       \
        const int lim = end;                                                                       \
        BLOCK                                                                                      \
    }

/* Stores the lanes of x before `end` to a[i ..], rounded to nearest even into fp16 (a half)
 * or bf16 (a ushort): the values precision_f32_to_f16 / _bf16 would store. */
static void store16x4(bool fp16, __global void *a, int i, int end, float4 x)
{
    if (fp16) {
        __global half *h = (__global half *)a;
        if (end - i >= 4) {
            vstore_half4_rte(x, 0, h + i);
            return;
        }
        vstore_half_rte(x.s0, i, h);
        if (end - i > 1)
            vstore_half_rte(x.s1, i + 1, h);
        if (end - i > 2)
            vstore_half_rte(x.s2, i + 2, h);
        return;
    }
    __global ushort *b = (__global ushort *)a;
    const ushort4 r = bf16_bits4(x);
    if (end - i >= 4) {
        USHORT_VSTORE(4, r, 0, b + i);
        return;
    }
    b[i] = r.s0;
    if (end - i > 1)
        b[i + 1] = r.s1;
    if (end - i > 2)
        b[i + 2] = r.s2;
}

/* SGD (torch.optim.SGD, maximize off), element i, when the step is applied:
 *   g = grads[i] * scale * clip_coef
 *   g = g + weight_decay * p                          (weight_decay != 0)
 *   momentum != 0:  buf = g at t == 1,
 *                   else buf = momentum * buf + (1 - dampening) * g;  m[i] = buf
 *                   g = nesterov ? g + momentum * buf : buf
 *   p = p - lr * g
 * m is not touched when momentum is 0 (it may then be a NULL buffer). sgd_apply is that rule
 * from g = grads[i] * scale * clip_coef on: it stores m and returns the new p. */
static float4 sgd_apply(float4 p, float4 g, int t, float lr, float weight_decay, float momentum,
                        float one_minus_dampening, int nesterov, __global float *m, int m_off,
                        int i, int end)
{
    if (weight_decay != 0.0f)
        g = g + weight_decay * p;
    if (momentum != 0.0f) {
        m += m_off;
        const float4 buf = t == 1 ? g : momentum * load4(m, i, end) + one_minus_dampening * g;
        store4(m, i, end, buf);
        g = nesterov ? g + momentum * buf : buf;
    }
    return p - lr * g;
}

#define SGD_UPDATE_PARAMS                                                                          \
    int n, float lr, float weight_decay, float momentum, float one_minus_dampening, int nesterov,  \
        float scale, __global float *restrict params, int params_off, /* [n] */                    \
        __global const float *restrict grads, int grads_off,          /* [n] */                    \
        __global float *restrict m, int m_off,                        /* [n] */                    \
        __global const int *restrict status_base, int status_off
/* The update of elements 4w .. 4w + 3, the masters stored, then SHADOW (a statement that may
 * read the new parameters p and the bound lim: the 16-bit copy's store, or nothing). */
#define SGD_UPDATE_BODY(SHADOW)                                                                    \
    __global const struct optim_status *status =                                                   \
        (__global const struct optim_status *)(status_base + status_off);                          \
    const int skip = status->last_skip, t = status->step;                                          \
    const float coef = status->clip_coef;                                                          \
    const int end = skip ? 0 : n; /* a skipped step updates nothing */                             \
    const int i = 4 * (int)get_global_id(0);                                                       \
    if (i >= end)                                                                                  \
        return;                                                                                    \
    params += params_off;                                                                          \
    BY_GROUP({                                                                                     \
        float4 g = load4(grads + grads_off, i, lim) * scale;                                       \
        g = g * coef;                                                                              \
        const float4 p = sgd_apply(load4(params, i, lim), g, t, lr, weight_decay, momentum,        \
                                   one_minus_dampening, nesterov, m, m_off, i, lim);               \
        store4(params, i, lim, p);                                                                 \
        SHADOW;                                                                                    \
    })

__kernel void optim_sgd_update(SGD_UPDATE_PARAMS)
{
    SGD_UPDATE_BODY((void)0);
}

/* optim_sgd_update of a 16-bit trainer: the new parameters also stored, rounded to nearest
 * even, into its 16-bit working copy shadow (half in _f16, bf16 bits in a ushort in _bf16:
 * one kernel per format, so that the format is a constant in each). A skipped step writes
 * nothing. */
__kernel void optim_sgd_update_f16(SGD_UPDATE_PARAMS, __global half *restrict shadow,
                                   int shadow_off) /* [n] */
{
    SGD_UPDATE_BODY(store16x4(true, shadow + shadow_off, i, lim, p));
}

__kernel void optim_sgd_update_bf16(SGD_UPDATE_PARAMS, __global ushort *restrict shadow,
                                    int shadow_off) /* [n] */
{
    SGD_UPDATE_BODY(store16x4(false, shadow + shadow_off, i, lim, p));
}

/* Adam and AdamW (torch.optim.Adam / AdamW, amsgrad and maximize off), element i, when the
 * step is applied, with t, bc1 = 1 - beta1^t and bc2 = 1 - beta2^t from the status:
 *   g = grads[i] * scale * clip_coef
 *   g = g + l2 * p                                     (Adam's weight decay, l2 != 0)
 *   p = p * decay                                      (AdamW: decay = 1 - lr * wd, else 1)
 *   m = m + (1 - beta1) * (g - m)                      (torch's lerp)
 *   v = v * beta2 + (1 - beta2) * (g * g)
 *   p = p - (lr / bc1) * (m / (sqrt(v) / sqrt(bc2) + eps))
 * adam_apply is that rule from g = grads[i] * scale * clip_coef on: it stores m and v and
 * returns the new p; adam_apply16 the same rule for 16 elements, all of them below the end (a
 * whole AVX-512 vector on a CPU). ADAM_RULE is their common text. */
#define ADAM_RULE(T, LOAD, STORE)                                                                  \
    if (l2 != 0.0f)                                                                                \
        g = g + l2 * p;                                                                            \
    if (decay != 1.0f)                                                                             \
        p = p * decay;                                                                             \
    T mm = LOAD(m, i, end), vv = LOAD(v, i, end);                                                  \
    mm = mm + one_minus_beta1 * (g - mm);                                                          \
    vv = vv * beta2 + one_minus_beta2 * (g * g);                                                   \
    STORE(m, i, end, mm);                                                                          \
    STORE(v, i, end, vv);                                                                          \
    const T denom = sqrt(vv) / bc2_sqrt + eps;                                                     \
    return p - step_size * (mm / denom);

static float4 adam_apply(float4 p, float4 g, float step_size, float bc2_sqrt, float one_minus_beta1,
                         float beta2, float one_minus_beta2, float eps, float l2, float decay,
                         __global float *m, __global float *v, int i, int end)
{
    ADAM_RULE(float4, load4, store4)
}

#define LOAD16(a, i, end) vload16(0, (a) + (i))
#define STORE16(a, i, end, x) vstore16((x), 0, (a) + (i))

static float16 adam_apply16(float16 p, float16 g, float step_size, float bc2_sqrt,
                            float one_minus_beta1, float beta2, float one_minus_beta2, float eps,
                            float l2, float decay, __global float *m, __global float *v, int i,
                            int end)
{
    ADAM_RULE(float16, LOAD16, STORE16)
}

#define ADAM_UPDATE_PARAMS                                                                         \
    int n, float lr, float one_minus_beta1, float beta2, float one_minus_beta2, float eps,         \
        float l2, float decay, float scale, __global float *restrict params,                       \
        int params_off,                                      /* [n] */                             \
        __global const float *restrict grads, int grads_off, /* [n] */                             \
        __global float *restrict m, int m_off,               /* [n] */                             \
        __global float *restrict v, int v_off,               /* [n] */                             \
        __global const int *restrict status_base, int status_off
/* The status's settings of an Adam update, and end, the elements it updates: n, or 0 for a
 * skipped step. */
#define ADAM_STATUS                                                                                \
    __global const struct optim_status *status =                                                   \
        (__global const struct optim_status *)(status_base + status_off);                          \
    const int skip = status->last_skip;                                                            \
    const float coef = status->clip_coef;                                                          \
    const float step_size = lr / status->bias_correction1;                                         \
    const float bc2_sqrt = sqrt(status->bias_correction2);                                         \
    const int end = skip ? 0 : n; /* a skipped step updates nothing */

/* The update of the four elements i .. i + 3 (those below end), the masters stored, then SHADOW
 * (as SGD_UPDATE_BODY's). */
#define ADAM_UPDATE4(SHADOW)                                                                       \
    BY_GROUP({                                                                                     \
        float4 g = load4(grads + grads_off, i, lim) * scale;                                       \
        g = g * coef;                                                                              \
        const float4 p =                                                                           \
            adam_apply(load4(params, i, lim), g, step_size, bc2_sqrt, one_minus_beta1, beta2,      \
                       one_minus_beta2, eps, l2, decay, m + m_off, v + v_off, i, lim);             \
        store4(params, i, lim, p);                                                                 \
        SHADOW;                                                                                    \
    })

/* The update of elements 4w .. 4w + 3. */
#define ADAM_UPDATE_BODY(SHADOW)                                                                   \
    ADAM_STATUS                                                                                    \
    const int i = 4 * (int)get_global_id(0);                                                       \
    if (i >= end)                                                                                  \
        return;                                                                                    \
    params += params_off;                                                                          \
    ADAM_UPDATE4(SHADOW)

__kernel void optim_adam_update(ADAM_UPDATE_PARAMS)
{
    ADAM_UPDATE_BODY((void)0);
}

/* optim_adam_update with 16 elements per work-item, 16w .. 16w + 15: one float16 rule where all
 * 16 are below the end, else the four-element update of each group of four that starts below
 * it. The operations per element are optim_adam_update's, so are the bits. For CPUs: PoCL
 * keeps optim_adam_update's float4 as 128-bit vectors, whose divisions and square roots bound
 * the update (engine/ops/optim.c). */
__kernel void optim_adam_update16(ADAM_UPDATE_PARAMS)
{
    ADAM_STATUS
    const int first = 16 * (int)get_global_id(0);
    if (first >= end)
        return;
    params += params_off;
    if (end - first >= 16) {
        const int i = first;
        float16 g = vload16(0, grads + grads_off + i) * scale;
        g = g * coef;
        const float16 p =
            adam_apply16(vload16(0, params + i), g, step_size, bc2_sqrt, one_minus_beta1, beta2,
                         one_minus_beta2, eps, l2, decay, m + m_off, v + v_off, i, end);
        vstore16(p, 0, params + i);
        return;
    }
    for (int i = first; i < end; i += 4) {
        ADAM_UPDATE4((void)0);
    }
}

/* optim_adam_update of a 16-bit trainer, with the shadow of optim_sgd_update_f16 / _bf16. */
__kernel void optim_adam_update_f16(ADAM_UPDATE_PARAMS, __global half *restrict shadow,
                                    int shadow_off) /* [n] */
{
    ADAM_UPDATE_BODY(store16x4(true, shadow + shadow_off, i, lim, p));
}

__kernel void optim_adam_update_bf16(ADAM_UPDATE_PARAMS, __global ushort *restrict shadow,
                                     int shadow_off) /* [n] */
{
    ADAM_UPDATE_BODY(store16x4(false, shadow + shadow_off, i, lim, p));
}
