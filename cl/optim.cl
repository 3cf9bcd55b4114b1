/*
 * optim.cl: one optimizer step over flat parameter, gradient and state buffers: the global
 * gradient norm, the decision to apply or skip the step, clipping, and the SGD and
 * Adam/AdamW updates, with PyTorch's (torch.optim) semantics.
 *
 * A step is a fixed sequence of launches, all on one in-order queue (engine/ops/optim.c):
 *   1. optim_norm_partial    ws level 1 [P1] = sums of squares of (scale * grads)
 *   2. optim_norm_combine    ws level k+1 [P(k+1)] = sums of level k, while P(k) > 64
 *   3. optim_step_begin      one work-item: norm, skip decision, clip factor, step counter t
 *   4. optim_sgd_update or optim_adam_update: one work-item per element
 * and, to reset the status or resume from a checkpoint, optim_status_set (one work-item).
 *
 * Layouts (every buffer a __global pointer plus an element offset; n elements):
 *   params, grads, m, v  [n] floats. m is SGD's momentum buffer or Adam's first moment,
 *                        v Adam's second moment. grads are only read.
 *   ws                   [sum of level sizes] floats, the norm's partial sums, level after
 *                        level (the launcher passes each level's offset)
 *   loss                 [1] float, the step's loss (checked for finiteness only)
 *   status               struct optim_status (below), 32 bytes kept across steps, passed as
 *                        an int pointer plus an offset in 32-bit words
 *
 * Work-items:
 *   optim_norm_partial / optim_norm_combine: work-item i < parts sums the inputs
 *   i, i + parts, i + 2 parts, ... (count of them) in that order, with compensated (Kahan)
 *   summation. parts = ceil(count / 64) is chosen by the launcher from the count alone, so
 *   every partial sum, and hence the norm, is the same whatever the work-group size.
 *   Neighbouring work-items read neighbouring elements (coalesced on GPUs, vectorized on CPUs).
 *   optim_step_begin, optim_status_set: a single work-item; optim_step_begin adds the last
 *   level's (at most 64) partials in order.
 *   Updates: work-item i updates element i; work-items past n return at once.
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

/* Adds x to the compensated sum *s with compensation *c (Kahan). Once the sum is not finite
 * the compensation is dropped, so an infinite term gives Inf and not Inf - Inf = NaN. */
void optim_kahan_add(float *s, float *c, float x)
{
    const float y = x - *c;
    const float t = *s + y;
    *c = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

/* Level 1 of the norm: out[i] = sum over j = i, i + parts, ... < n of (scale * grads[j])^2. */
__kernel void optim_norm_partial(int n, int parts, float scale, __global const float *grads,
                                 int grads_off,                    /* [n] */
                                 __global float *out, int out_off) /* [parts] */
{
    const size_t i = get_global_id(0);
    if (i >= (size_t)parts)
        return;
    grads += grads_off;
    float s = 0.0f, c = 0.0f;
    for (size_t j = i; j < (size_t)n; j += (size_t)parts) {
        const float g = grads[j] * scale;
        optim_kahan_add(&s, &c, g * g);
    }
    out[out_off + i] = s;
}

/* Later levels: out[i] = sum over j = i, i + parts, ... < count of in[j]. */
__kernel void optim_norm_combine(int count, int parts, __global const float *in,
                                 int in_off,                       /* [count] */
                                 __global float *out, int out_off) /* [parts] */
{
    const size_t i = get_global_id(0);
    if (i >= (size_t)parts)
        return;
    in += in_off;
    float s = 0.0f, c = 0.0f;
    for (size_t j = i; j < (size_t)count; j += (size_t)parts)
        optim_kahan_add(&s, &c, in[j]);
    out[out_off + i] = s;
}

/* One work-item. Adds the last level's `count` partials (count 0: an empty gradient, norm 0),
 * decides whether the step is applied, and writes the status the update kernel reads:
 *   skipped when the norm or (has_loss) loss[0] is not finite: skipped + 1, t unchanged;
 *   applied otherwise: t + 1, clip_coef = min(clip_norm / (norm + 1e-6), 1) when
 *   clip_norm > 0 (torch.nn.utils.clip_grad_norm_), else 1; the bias corrections of the new t
 *   from one_minus_beta1 and one_minus_beta2 (0 for SGD, unused there). */
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
    for (int j = 0; j < count; j++)
        optim_kahan_add(&s, &c, ws[ws_off + j]);
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

/* SGD (torch.optim.SGD, maximize off), element i, when the step is applied:
 *   g = grads[i] * scale * clip_coef
 *   g = g + weight_decay * p                          (weight_decay != 0)
 *   momentum != 0:  buf = g at t == 1,
 *                   else buf = momentum * buf + (1 - dampening) * g;  m[i] = buf
 *                   g = nesterov ? g + momentum * buf : buf
 *   p = p - lr * g
 * m is not touched when momentum is 0 (it may then be a NULL buffer). */
__kernel void optim_sgd_update(int n, float lr, float weight_decay, float momentum,
                               float one_minus_dampening, int nesterov, float scale,
                               __global float *params, int params_off,     /* [n] */
                               __global const float *grads, int grads_off, /* [n] */
                               __global float *m, int m_off,               /* [n] */
                               __global const int *status_base, int status_off)
{
    __global const struct optim_status *status =
        (__global const struct optim_status *)(status_base + status_off);
    const size_t i = get_global_id(0);
    if (i >= (size_t)n || status->last_skip)
        return;
    const float coef = status->clip_coef;
    const size_t pi = params_off + i;
    float p = params[pi];
    float g = grads[grads_off + i] * scale;
    g = g * coef;
    if (weight_decay != 0.0f)
        g = g + weight_decay * p;
    if (momentum != 0.0f) {
        const size_t mi = m_off + i;
        const float buf = status->step == 1 ? g : momentum * m[mi] + one_minus_dampening * g;
        m[mi] = buf;
        g = nesterov ? g + momentum * buf : buf;
    }
    params[pi] = p - lr * g;
}

/* Adam and AdamW (torch.optim.Adam / AdamW, amsgrad and maximize off), element i, when the
 * step is applied, with t, bc1 = 1 - beta1^t and bc2 = 1 - beta2^t from the status:
 *   g = grads[i] * scale * clip_coef
 *   g = g + l2 * p                                     (Adam's weight decay, l2 != 0)
 *   p = p * decay                                      (AdamW: decay = 1 - lr * wd, else 1)
 *   m = m + (1 - beta1) * (g - m)                      (torch's lerp)
 *   v = v * beta2 + (1 - beta2) * (g * g)
 *   p = p - (lr / bc1) * (m / (sqrt(v) / sqrt(bc2) + eps)) */
__kernel void optim_adam_update(int n, float lr, float one_minus_beta1, float beta2,
                                float one_minus_beta2, float eps, float l2, float decay,
                                float scale, __global float *params, int params_off, /* [n] */
                                __global const float *grads, int grads_off,          /* [n] */
                                __global float *m, int m_off,                        /* [n] */
                                __global float *v, int v_off,                        /* [n] */
                                __global const int *status_base, int status_off)
{
    __global const struct optim_status *status =
        (__global const struct optim_status *)(status_base + status_off);
    const size_t i = get_global_id(0);
    if (i >= (size_t)n || status->last_skip)
        return;
    const float coef = status->clip_coef;
    const float step_size = lr / status->bias_correction1;
    const float bc2_sqrt = sqrt(status->bias_correction2);
    const size_t pi = params_off + i, mi = m_off + i, vi = v_off + i;
    float p = params[pi];
    float g = grads[grads_off + i] * scale;
    g = g * coef;
    if (l2 != 0.0f)
        g = g + l2 * p;
    if (decay != 1.0f)
        p = p * decay;
    float mm = m[mi], vv = v[vi];
    mm = mm + one_minus_beta1 * (g - mm);
    vv = vv * beta2 + one_minus_beta2 * (g * g);
    m[mi] = mm;
    v[vi] = vv;
    const float denom = sqrt(vv) / bc2_sqrt + eps;
    params[pi] = p - step_size * (mm / denom);
}
