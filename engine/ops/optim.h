/*
 * optim.h: the optimizer step (cl/optim.cl) and the learning-rate schedules.
 *
 * Parameters, gradients and optimizer state are each one flat float buffer of n elements
 * (llm.c style): params [n], grads [n], m [n] (SGD's momentum buffer, Adam's first moment),
 * v [n] (Adam's second moment). One call of clt__optim_step enqueues one step:
 *
 *   1. the global 2-norm of grad_scale * grads, reduced in a fixed order (a few small
 *      launches into the caller's workspace; the same bits whatever the work-group size),
 *   2. one single-work-item launch that decides on the device whether the step is applied:
 *      it is skipped when the norm or the loss is not finite (NaN or Inf),
 *   3. one launch over the n elements: gradient scale, clipping, weight decay and the update.
 *
 * A skipped step leaves params, m and v untouched (bit for bit), adds 1 to the skip counter
 * and does not advance the step counter t. The host never reads anything inside a step: what
 * happened is kept in a small device buffer, the status, that the caller reads when it wants
 * to report (clt__optim_status_read).
 *
 * Semantics are PyTorch's (torch.optim.SGD, Adam, AdamW with maximize, amsgrad, foreach and
 * fused off; torch.nn.utils.clip_grad_norm_ for clipping), in float:
 *   g = grads * grad_scale                        (1 / micro-batches, say)
 *   norm = ||g||_2                                 (reported in the status)
 *   g = g * min(clip_norm / (norm + 1e-6), 1)      (clip_norm > 0)
 * then the optimizer's update of cl/optim.cl with the learning rate `lr` of the call.
 *
 * Every launcher only enqueues on dev->queue: it allocates nothing and never waits, except
 * clt__optim_status_read, which blocks. n, every offset, and every offset plus n must lie in
 * 0..2^31-1. Bad arguments return CLT_ERR_INVALID_ARGUMENT with a line in the log.
 */
#ifndef CLTRAIN_OPS_OPTIM_H
#define CLTRAIN_OPS_OPTIM_H

#include "cl/shared.h"

#include <stddef.h>

#include "internal.h"

/* ==== Optimizers ======================================================================== */

enum clt__optim_kind {
    CLT__OPTIM_SGD,   /* SGD, optionally with momentum, dampening, Nesterov, L2 weight decay */
    CLT__OPTIM_ADAM,  /* Adam, weight decay as L2 added to the gradient */
    CLT__OPTIM_ADAMW, /* AdamW, decoupled weight decay: p *= 1 - lr * weight_decay first */
};

/* Elements [begin, end) of the flat buffers updated with the rate lr * lr_scale and their own
 * weight decay (a parameter group, or several adjacent ones with the same settings). */
struct clt__optim_range {
    int64_t begin, end;
    double lr_scale;     /* >= 0 */
    double weight_decay; /* >= 0, replaces the config's */
};

/* An optimizer's hyperparameters, in double: the launcher derives each float the kernels use
 * (1 - beta2, 1 - lr * weight_decay, ...) in double before rounding it once. Fill with
 * clt__optim_config_init, then change fields. */
struct clt__optim_config {
    enum clt__optim_kind kind;
    double weight_decay; /* >= 0. SGD and Adam: g += wd * p; AdamW: p *= 1 - lr * wd */
    /* SGD */
    double momentum;  /* >= 0; 0: plain SGD, m is neither read nor written */
    double dampening; /* in [0, 1]; torch's default 0 */
    bool nesterov;    /* needs momentum > 0 and dampening 0 (as torch) */
    /* Adam and AdamW */
    double beta1; /* in [0, 1) */
    double beta2; /* in [0, 1) */
    double eps;   /* >= 0, added to sqrt(v_hat) */
    /* All */
    double clip_norm; /* > 0: clip the gradient to this global 2-norm; 0: no clipping */
    /* Parameter groups: nranges ranges, sorted, covering 0 .. n-1 exactly; the update is
     * one launch per range. nranges 0 (the default): one range of lr_scale 1 and
     * weight_decay above, one launch. Borrowed: the caller keeps them alive. */
    const struct clt__optim_range *ranges;
    uint32_t nranges;
    /* Work-group size of the norm and update launches. 0 (the default): the engine's choice.
     * Results do not depend on it; tests set others to show that. */
    size_t work_group;
};

/* torch.optim's defaults for `kind`: SGD momentum 0, dampening 0, no Nesterov, weight decay
 * 0; Adam betas (0.9, 0.999), eps 1e-8, weight decay 0; AdamW the same with weight decay
 * 0.01. No clipping. */
void clt__optim_config_init(struct clt__optim_config *cfg, enum clt__optim_kind kind);

/* CLT_OK when every field is in its range; otherwise logs which one is not. The ranges are
 * checked against n by clt__optim_step. */
enum clt_status clt__optim_config_check(const struct clt_log *log,
                                        const struct clt__optim_config *cfg);

/* ==== The device status ================================================================= */

/* Reasons a step was skipped (bits of clt__optim_status.last_skip). */
/* CLT__OPTIM_SKIP_GRAD and CLT__OPTIM_SKIP_LOSS: cl/shared.h. */

/* The status: one device buffer of CLT__OPTIM_STATUS_BYTES bytes per optimizer, kept across
 * steps, with this layout (the same struct optim_status in cl/optim.cl). Reset it before
 * the first step (clt__optim_status_reset); to resume from a checkpoint, save step and
 * skipped and give them back to clt__optim_status_set. */
struct clt__optim_status {
    float grad_norm;        /* the last step's norm of grad_scale * grads, before clipping;
                             * NaN or Inf when that step was skipped for it */
    float clip_coef;        /* the factor the last step multiplied the gradients by (1: none) */
    int32_t step;           /* t: steps applied since the reset; Adam's bias corrections use it */
    int32_t skipped;        /* steps skipped since the reset */
    int32_t last_skip;      /* 0: the last step was applied; else CLT__OPTIM_SKIP_* bits */
    float bias_correction1; /* 1 - beta1^t of the last applied Adam step (internal) */
    float bias_correction2; /* 1 - beta2^t of the last applied Adam step (internal) */
    int32_t reserved;
};
#define CLT__OPTIM_STATUS_BYTES sizeof(struct clt__optim_status)

/* Enqueues setting the status to `step` (t) applied and `skipped` skipped steps, every other
 * field 0: how a trainer resumes from a checkpoint. Both >= 0. A kernel, not a host write:
 * non-blocking, nothing on the host to keep alive. The status offset is in 32-bit words. */
enum clt_status clt__optim_status_set(struct clt_device *dev, struct clt__buf status, int32_t step,
                                      int32_t skipped);

/* Enqueues zeroing the status (clt__optim_status_set with 0 and 0): t = 0, nothing skipped. */
enum clt_status clt__optim_status_reset(struct clt_device *dev, struct clt__buf status);

/* Reads the status after all work enqueued before it. Blocks. */
enum clt_status clt__optim_status_read(struct clt_device *dev, struct clt__buf status,
                                       struct clt__optim_status *out);

/* ==== One step ========================================================================== */

/* Bytes of the workspace one step of n elements needs (the norm's partial sums: about
 * n / 63 floats, at least one float). */
size_t clt__optim_workspace_bytes(int64_t n);

/* Enqueues one optimizer step over n >= 0 elements.
 *   params     [n]  updated in place (untouched by a skipped step)
 *   grads      [n]  read only: the gradient before grad_scale and clipping
 *   m          [n]  SGD's momentum buffer (momentum > 0) or Adam's first moment; mem NULL
 *                   allowed for SGD without momentum
 *   v          [n]  Adam's second moment; mem NULL allowed for SGD
 *   loss       [1]  the step's loss, a device float, checked for finiteness; mem NULL: only
 *                   the gradient is checked
 *   workspace  [clt__optim_workspace_bytes(n) / 4] floats of scratch
 *   status     the optimizer's status (struct clt__optim_status), offset in 32-bit words
 * m and v need no initialisation for SGD (the first applied step sets m = g, as torch) but
 * must be zero before Adam's first step. The regions must not overlap. lr >= 0 and
 * grad_scale are finite; the schedule below gives lr, and each range's rate lr * lr_scale
 * (and AdamW's 1 - rate * weight_decay) is computed in double and rounded once. */
enum clt_status clt__optim_step(struct clt_device *dev, const struct clt__optim_config *cfg,
                                int64_t n,                 /* elements */
                                struct clt__buf params,    /* [n] */
                                struct clt__buf grads,     /* [n] */
                                struct clt__buf m,         /* [n] */
                                struct clt__buf v,         /* [n] */
                                struct clt__buf loss,      /* [1] */
                                struct clt__buf workspace, /* see clt__optim_workspace_bytes */
                                struct clt__buf status,    /* struct clt__optim_status */
                                double lr, float grad_scale);

/* What a 16-bit trainer's step adds (clt__optim_step_half): its working copy of the
 * parameters, shadow [n] 16-bit values (FP16 halves or BF16 bits, offset in 16-bit elements).
 * The update also stores the new parameters there, rounded to nearest even (the values
 * clt__precision_narrow would write, bit for bit); a skipped step leaves it untouched, as it
 * leaves the parameters. One pass over the parameters fewer than an update followed by
 * clt__precision_narrow. */
struct clt__optim_half {
    enum clt_precision storage; /* CLT_PRECISION_FP16 or CLT_PRECISION_BF16 */
    struct clt__buf shadow;     /* [n] 16-bit */
};

/* clt__optim_step with a 16-bit trainer's working copy (h; NULL: clt__optim_step). */
enum clt_status clt__optim_step_half(struct clt_device *dev, const struct clt__optim_config *cfg,
                                     int64_t n, struct clt__buf params, struct clt__buf grads,
                                     struct clt__buf m, struct clt__buf v, struct clt__buf loss,
                                     struct clt__buf workspace, struct clt__buf status, double lr,
                                     float grad_scale, const struct clt__optim_half *h);

/* ==== Learning-rate schedules (host only) =============================================== */

enum clt__lr_kind {
    CLT__LR_CONSTANT, /* lr */
    CLT__LR_STEP,     /* lr * gamma^floor(s / step_size)                  (torch's StepLR) */
    CLT__LR_COSINE,   /* min_lr + (lr - min_lr) * (1 + cos(pi * s / S)) / 2 for s < S, then
                       * min_lr, S = total_steps - warmup_steps        (CosineAnnealingLR) */
};

/* A schedule. With warmup_steps W > 0, steps 0..W-1 ramp linearly, lr * (step + 1) / W
 * (llm.c, nanoGPT), and the schedule above then runs from step W with s = step - W: warmup
 * delays it, it does not cut into it (except that the cosine ends at total_steps). */
struct clt__lr_schedule {
    enum clt__lr_kind kind;
    double lr;            /* the base (peak) rate, >= 0 */
    int64_t warmup_steps; /* W >= 0 */
    int64_t step_size;    /* STEP: > 0 */
    double gamma;         /* STEP: >= 0 */
    int64_t total_steps;  /* COSINE: > warmup_steps, the step at which min_lr is reached */
    double min_lr;        /* COSINE: >= 0 */
};

/* CLT_OK when the fields `kind` uses are in their ranges; otherwise logs which one is not. */
enum clt_status clt__lr_schedule_check(const struct clt_log *log, const struct clt__lr_schedule *s);

/* ==== The public optimizer ============================================================= */

/* struct clt_optimizer (cltrain.h) as the launchers take it: the one translation, used by
 * the trainer when it is created. The optimizer must pass clt__optimizer_check. cfg gets no
 * ranges: the trainer resolves the groups against its parameters (clt__optim_group_of). */
void clt__optim_from_public(const struct clt_optimizer *o, struct clt__optim_config *cfg,
                            struct clt__lr_schedule *sched);

/* The one check of a public optimizer: its own fields (kind, schedule, accumulate, a finite
 * lr), then its translation by the launchers' rules (clt__optim_config_check,
 * clt__lr_schedule_check). CLT_OK, or CLT_ERR_INVALID_ARGUMENT with the first bad field in
 * the log. */
enum clt_status clt__optimizer_check(const struct clt_log *log, const struct clt_optimizer *o);

/* The index of the first group of o that a trained parameter of this name and kind
 * selects, or -1 for none (then lr_scale 1 and o->weight_decay). */
int clt__optim_group_of(const struct clt_optimizer *o, const char *name, enum clt_param_kind kind);

/* The learning rate of step `step` (0-based, counted by the caller: a skipped step still
 * consumes its step of the schedule, as with torch's GradScaler). step < 0 counts as 0. A pure
 * function of its arguments; the schedule must pass clt__lr_schedule_check. */
double clt__lr_at(const struct clt__lr_schedule *s, int64_t step);

#endif
