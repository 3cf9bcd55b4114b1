/*
 * optim.c: launchers of cl/optim.cl (one optimizer step over flat buffers), the device
 * status, and the learning-rate schedules (see optim.h and docs/kernels/optim.md).
 */
#include <fnmatch.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "ops/optim.h"

/* The norm's chunk: each partial sum adds at most this many values. It fixes the summation
 * order (with n), so it is a constant of the library, never taken from the device. */
#define NORM_CHUNK 64
/* Most levels of partial sums: n < 2^31 needs 5 (2^31 / 64^5 < 1). */
#define NORM_MAX_LEVELS 8

static const double PI = 3.14159265358979323846;

/* The layout of the status is shared with cl/optim.cl. */
_Static_assert(sizeof(struct clt__optim_status) == 32, "status layout");
_Static_assert(offsetof(struct clt__optim_status, step) == 8, "status layout");
_Static_assert(offsetof(struct clt__optim_status, last_skip) == 16, "status layout");
_Static_assert(offsetof(struct clt__optim_status, bias_correction2) == 24, "status layout");

/* ==== Configuration ===================================================================== */

void clt__optim_config_init(struct clt__optim_config *cfg, enum clt__optim_kind kind)
{
    *cfg = (struct clt__optim_config){
        .kind = kind,
        .weight_decay = kind == CLT__OPTIM_ADAMW ? 0.01 : 0.0,
        .beta1 = 0.9,
        .beta2 = 0.999,
        .eps = 1e-8,
    };
}

static bool in_range(double x, double lo, double hi)
{
    return x >= lo && x <= hi; /* false for NaN */
}

enum clt_status clt__optim_config_check(const struct clt_log *log,
                                        const struct clt__optim_config *cfg)
{
    const char *bad = NULL;
    if (!cfg)
        bad = "the configuration is NULL";
    else if (cfg->kind != CLT__OPTIM_SGD && cfg->kind != CLT__OPTIM_ADAM &&
             cfg->kind != CLT__OPTIM_ADAMW)
        bad = "unknown optimizer kind";
    else if (!in_range(cfg->weight_decay, 0.0, HUGE_VAL) || isinf(cfg->weight_decay))
        bad = "weight_decay must be finite and >= 0";
    else if (!in_range(cfg->clip_norm, 0.0, HUGE_VAL) || isinf(cfg->clip_norm))
        bad = "clip_norm must be finite and >= 0";
    else if (cfg->kind == CLT__OPTIM_SGD) {
        if (!in_range(cfg->momentum, 0.0, HUGE_VAL) || isinf(cfg->momentum))
            bad = "momentum must be finite and >= 0";
        else if (!in_range(cfg->dampening, 0.0, 1.0))
            bad = "dampening must be in [0, 1]";
        else if (cfg->nesterov && (cfg->momentum <= 0.0 || cfg->dampening != 0.0))
            bad = "Nesterov momentum needs momentum > 0 and dampening 0";
    } else {
        if (!in_range(cfg->beta1, 0.0, 1.0) || cfg->beta1 >= 1.0)
            bad = "beta1 must be in [0, 1)";
        else if (!in_range(cfg->beta2, 0.0, 1.0) || cfg->beta2 >= 1.0)
            bad = "beta2 must be in [0, 1)";
        else if (!in_range(cfg->eps, 0.0, HUGE_VAL) || isinf(cfg->eps))
            bad = "eps must be finite and >= 0";
    }
    if (!bad)
        return CLT_OK;
    clt__log(log, CLT_LOG_ERROR, "optimizer: %s", bad);
    return CLT_ERR_INVALID_ARGUMENT;
}

/* ==== Norm levels and workspace ========================================================= */

/* The sizes of the levels of partial sums for n elements: level 0 has ceil(n / 64) sums,
 * each next level ceil(previous / 64), until a level has at most `last_max` (step_begin adds
 * those: 64, or on a CPU 64 * 64, whose last level of sums step_begin makes itself).
 * Returns the number of levels (0 when n is 0). */
static int norm_levels(int64_t n, int64_t last_max, int64_t *sizes)
{
    int levels = 0;
    int64_t count = n;
    while (count > 0) {
        count = (count + NORM_CHUNK - 1) / NORM_CHUNK;
        sizes[levels++] = count;
        if (count <= last_max)
            break;
    }
    return levels;
}

/* The most partials optim_step_begin takes on dev. Above 64 it adds them as one more level of
 * sums would, then those: the same bits as that level's launch, which it saves. On a CPU its
 * single work-item does so in microseconds (PoCL: one launch fewer in the step of every model
 * above 4,096 parameters); on a GPU one work-item's 4,096 serial additions would cost more
 * than the launch. */
static int64_t begin_max(const struct clt_device *dev)
{
    return dev->info.type == CLT_DEVICE_CPU ? (int64_t)NORM_CHUNK * NORM_CHUNK : NORM_CHUNK;
}

size_t clt__optim_workspace_bytes(int64_t n)
{
    int64_t sizes[NORM_MAX_LEVELS], total = 0;
    /* Every device's levels: a CPU's are the first of a GPU's. */
    int levels = n > 0 ? norm_levels(n, NORM_CHUNK, sizes) : 0;
    for (int l = 0; l < levels; l++)
        total += sizes[l];
    return (size_t)(total > 0 ? total : 1) * sizeof(float);
}

/* ==== Argument checks =================================================================== */

/* clt__check_buf for a buffer of `count` 4-byte elements; a NULL buffer passes when
 * `optional`. */
static enum clt_status check_buf(struct clt_device *dev, const char *what, struct clt__buf b,
                                 int64_t count, bool optional)
{
    if (!b.mem && optional)
        return CLT_OK;
    return clt__check_buf(dev, b, count, 4, "optimizer", what);
}

/* ==== The status ======================================================================== */

enum clt_status clt__optim_status_set(struct clt_device *dev, struct clt__buf status, int32_t step,
                                      int32_t skipped)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_buf(dev, "status", status, CLT__OPTIM_STATUS_BYTES / 4, false);
    if (st != CLT_OK)
        return st;
    if (step < 0 || skipped < 0) {
        clt__log(&dev->log, CLT_LOG_ERROR, "optimizer: negative status step or skipped");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return CLT__RUN(dev, CLT__K_optim_status_set, 1, CLT__I32(step), CLT__I32(skipped),
                    CLT__BUF(status));
}

enum clt_status clt__optim_status_reset(struct clt_device *dev, struct clt__buf status)
{
    return clt__optim_status_set(dev, status, 0, 0);
}

enum clt_status clt__optim_status_read(struct clt_device *dev, struct clt__buf status,
                                       struct clt__optim_status *out)
{
    if (!dev || !out)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_buf(dev, "status", status, CLT__OPTIM_STATUS_BYTES / 4, false);
    if (st != CLT_OK)
        return st;
    cl_int err = clEnqueueReadBuffer(dev->queue, status.mem, CL_TRUE, status.offset * 4,
                                     CLT__OPTIM_STATUS_BYTES, out, 0, NULL, NULL);
    return clt__cl_check(&dev->log, err, "clEnqueueReadBuffer (optimizer status)");
}

/* ==== One step ========================================================================== */

/* The update kernels run with the configured work-group size (cfg->work_group, 0: chosen);
 * one beyond a kernel's limit is refused by the launch. */

/* Enqueues the levels of the norm's partial sums; *last and *last_count say where the last
 * level lies in the workspace (in floats) and how many sums it holds. */
static enum clt_status norm_partials(struct clt_device *dev, const struct clt__optim_config *cfg,
                                     int64_t n, struct clt__buf grads, float scale,
                                     struct clt__buf ws, cl_int *last, cl_int *last_count)
{
    int64_t sizes[NORM_MAX_LEVELS];
    const int levels = norm_levels(n, begin_max(dev), sizes);
    cl_int n_in = (cl_int)n, in_off = (cl_int)grads.offset, out_off = (cl_int)ws.offset;
    cl_int parts = 0;
    enum clt_status st = CLT_OK;
    for (int l = 0; l < levels && st == CLT_OK; l++) {
        parts = (cl_int)sizes[l];
        const struct clt__buf in = {ws.mem, (size_t)in_off}, out = {ws.mem, (size_t)out_off};
        if (l == 0)
            st = CLT__RUN_WG(dev, CLT__K_optim_norm_partial, (size_t)parts, cfg->work_group,
                             CLT__I32(n_in), CLT__I32(parts), CLT__F32(scale), CLT__BUF(grads),
                             CLT__BUF(out));
        else
            st = CLT__RUN_WG(dev, CLT__K_optim_norm_combine, (size_t)parts, cfg->work_group,
                             CLT__I32(n_in), CLT__I32(parts), CLT__BUF(in), CLT__BUF(out));
        /* This level is the next one's input; the next level follows it. */
        n_in = parts;
        in_off = out_off;
        out_off += parts;
    }
    *last = in_off;
    *last_count = levels > 0 ? parts : 0;
    return st;
}

/* The update of one range: elements [r->begin, r->end) of every buffer. */
static struct clt__buf at(struct clt__buf b, int64_t begin)
{
    return b.mem ? (struct clt__buf){b.mem, b.offset + (size_t)begin} : b;
}

/* The update kernels' work-items: one per 4 elements (cl/optim.cl). */
static size_t update_items(int64_t n)
{
    return (size_t)(n + 3) / 4;
}

static enum clt_status sgd_update(struct clt_device *dev, const struct clt__optim_config *cfg,
                                  const struct clt__optim_range *r, struct clt__buf params,
                                  struct clt__buf grads, struct clt__buf m, struct clt__buf status,
                                  double lr, float scale, const struct clt__optim_half *h)
{
    /* Without momentum the kernel gets no m buffer. */
    const struct clt__buf mm = {cfg->momentum != 0.0 ? m.mem : NULL, m.offset};
    const int64_t n = r->end - r->begin;
    if (h)
        return CLT__RUN_WG(dev,
                           h->storage == CLT_PRECISION_FP16 ? CLT__K_optim_sgd_update_f16
                                                            : CLT__K_optim_sgd_update_bf16,
                           update_items(n), cfg->work_group, CLT__I32(n),
                           CLT__F32(lr * r->lr_scale), CLT__F32(r->weight_decay),
                           CLT__F32(cfg->momentum), CLT__F32(1.0 - cfg->dampening),
                           CLT__I32(cfg->nesterov), CLT__F32(scale), CLT__BUF(at(params, r->begin)),
                           CLT__BUF(at(grads, r->begin)), CLT__BUF(at(mm, r->begin)),
                           CLT__BUF(status), CLT__BUF(at(h->shadow, r->begin)));
    return CLT__RUN_WG(dev, CLT__K_optim_sgd_update, update_items(n), cfg->work_group, CLT__I32(n),
                       CLT__F32(lr * r->lr_scale), CLT__F32(r->weight_decay),
                       CLT__F32(cfg->momentum), CLT__F32(1.0 - cfg->dampening),
                       CLT__I32(cfg->nesterov), CLT__F32(scale), CLT__BUF(at(params, r->begin)),
                       CLT__BUF(at(grads, r->begin)), CLT__BUF(at(mm, r->begin)), CLT__BUF(status));
}

static enum clt_status adam_update(struct clt_device *dev, const struct clt__optim_config *cfg,
                                   const struct clt__optim_range *r, struct clt__buf params,
                                   struct clt__buf grads, struct clt__buf m, struct clt__buf v,
                                   struct clt__buf status, double lr, float scale,
                                   const struct clt__optim_half *h)
{
    const bool decoupled = cfg->kind == CLT__OPTIM_ADAMW;
    const double rate = lr * r->lr_scale;
    float l2 = decoupled ? 0.0f : (float)r->weight_decay;
    /* torch: param.mul_(1 - lr * weight_decay), the factor computed in double. */
    float decay = decoupled ? (float)(1.0 - rate * r->weight_decay) : 1.0f;
    const int64_t n = r->end - r->begin;
    if (h)
        return CLT__RUN_WG(dev,
                           h->storage == CLT_PRECISION_FP16 ? CLT__K_optim_adam_update_f16
                                                            : CLT__K_optim_adam_update_bf16,
                           update_items(n), cfg->work_group, CLT__I32(n), CLT__F32(rate),
                           CLT__F32(1.0 - cfg->beta1), CLT__F32(cfg->beta2),
                           CLT__F32(1.0 - cfg->beta2), CLT__F32(cfg->eps), CLT__F32(l2),
                           CLT__F32(decay), CLT__F32(scale), CLT__BUF(at(params, r->begin)),
                           CLT__BUF(at(grads, r->begin)), CLT__BUF(at(m, r->begin)),
                           CLT__BUF(at(v, r->begin)), CLT__BUF(status),
                           CLT__BUF(at(h->shadow, r->begin)));
    /* On a CPU, 16 elements per work-item: float16 vectors (the same bits; the mlp's update in
     * its PoCL step: docs/kernels/optim.md). */
    const bool wide = dev->info.type == CLT_DEVICE_CPU;
    return CLT__RUN_WG(dev, wide ? CLT__K_optim_adam_update16 : CLT__K_optim_adam_update,
                       wide ? (size_t)(n + 15) / 16 : update_items(n), cfg->work_group, CLT__I32(n),
                       CLT__F32(rate), CLT__F32(1.0 - cfg->beta1), CLT__F32(cfg->beta2),
                       CLT__F32(1.0 - cfg->beta2), CLT__F32(cfg->eps), CLT__F32(l2),
                       CLT__F32(decay), CLT__F32(scale), CLT__BUF(at(params, r->begin)),
                       CLT__BUF(at(grads, r->begin)), CLT__BUF(at(m, r->begin)),
                       CLT__BUF(at(v, r->begin)), CLT__BUF(status));
}

/* The ranges must be sorted, cover 0 .. n-1 exactly and have settings in range. */
static enum clt_status check_ranges(struct clt_device *dev, const struct clt__optim_config *cfg,
                                    int64_t n)
{
    if (cfg->nranges == 0)
        return CLT_OK;
    int64_t at_ = 0;
    for (uint32_t i = 0; cfg->ranges && i < cfg->nranges; i++) {
        const struct clt__optim_range *r = &cfg->ranges[i];
        if (r->begin != at_ || r->end <= r->begin || !in_range(r->lr_scale, 0.0, HUGE_VAL) ||
            isinf(r->lr_scale) || !in_range(r->weight_decay, 0.0, HUGE_VAL) ||
            isinf(r->weight_decay))
            break;
        at_ = r->end;
        if (i + 1 == cfg->nranges && at_ == n)
            return CLT_OK;
    }
    clt__log(&dev->log, CLT_LOG_ERROR,
             "optimizer: the %u parameter ranges must be sorted, non-empty, cover the %lld "
             "elements exactly and have finite lr_scale and weight_decay >= 0",
             (unsigned)cfg->nranges, (long long)n);
    return CLT_ERR_INVALID_ARGUMENT;
}

static enum clt_status check_step(struct clt_device *dev, const struct clt__optim_config *cfg,
                                  int64_t n, struct clt__buf params, struct clt__buf grads,
                                  struct clt__buf m, struct clt__buf v, struct clt__buf loss,
                                  struct clt__buf ws, struct clt__buf status, double lr,
                                  float scale)
{
    enum clt_status st = clt__optim_config_check(&dev->log, cfg);
    if (st != CLT_OK)
        return st;
    if (n < 0 || n > INT32_MAX) {
        clt__log(&dev->log, CLT_LOG_ERROR, "optimizer: n = %lld is outside 0..2^31-1",
                 (long long)n);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if (!isfinite(lr) || lr < 0.0 || !isfinite(scale)) {
        clt__log(&dev->log, CLT_LOG_ERROR, "optimizer: lr %g (finite, >= 0) or scale %g", lr,
                 (double)scale);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    const bool sgd = cfg->kind == CLT__OPTIM_SGD;
    const bool need_m = !sgd || cfg->momentum != 0.0;
    st = check_ranges(dev, cfg, n);
    if (st == CLT_OK)
        st = check_buf(dev, "params", params, n, false);
    if (st == CLT_OK)
        st = check_buf(dev, "grads", grads, n, false);
    if (st == CLT_OK)
        st = check_buf(dev, "m", m, n, !need_m);
    if (st == CLT_OK)
        st = check_buf(dev, "v", v, n, sgd);
    if (st == CLT_OK)
        st = check_buf(dev, "loss", loss, 1, true);
    if (st == CLT_OK)
        st = check_buf(dev, "workspace", ws,
                       (int64_t)(clt__optim_workspace_bytes(n) / sizeof(float)), false);
    if (st == CLT_OK)
        st = check_buf(dev, "status", status, CLT__OPTIM_STATUS_BYTES / 4, false);
    return st;
}

/* The 16-bit working copy and its precision. */
static enum clt_status check_half(struct clt_device *dev, int64_t n,
                                  const struct clt__optim_half *h)
{
    if (h->storage != CLT_PRECISION_FP16 && h->storage != CLT_PRECISION_BF16) {
        clt__log(&dev->log, CLT_LOG_ERROR, "optimizer: precision %d is not fp16 or bf16",
                 (int)h->storage);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return clt__check_buf(dev, h->shadow, n, 2, "optimizer", "shadow");
}

enum clt_status clt__optim_step(struct clt_device *dev, const struct clt__optim_config *cfg,
                                int64_t n, struct clt__buf params, struct clt__buf grads,
                                struct clt__buf m, struct clt__buf v, struct clt__buf loss,
                                struct clt__buf workspace, struct clt__buf status, double lr,
                                float grad_scale)
{
    return clt__optim_step_half(dev, cfg, n, params, grads, m, v, loss, workspace, status, lr,
                                grad_scale, NULL);
}

enum clt_status clt__optim_step_half(struct clt_device *dev, const struct clt__optim_config *cfg,
                                     int64_t n, struct clt__buf params, struct clt__buf grads,
                                     struct clt__buf m, struct clt__buf v, struct clt__buf loss,
                                     struct clt__buf workspace, struct clt__buf status, double lr,
                                     float grad_scale, const struct clt__optim_half *h)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st =
        check_step(dev, cfg, n, params, grads, m, v, loss, workspace, status, lr, grad_scale);
    if (st == CLT_OK && h)
        st = check_half(dev, n, h);
    if (st != CLT_OK)
        return st;

    cl_int last = 0, count = 0;
    st = norm_partials(dev, cfg, n, grads, grad_scale, workspace, &last, &count);
    if (st != CLT_OK)
        return st;

    const bool sgd = cfg->kind == CLT__OPTIM_SGD;
    const struct clt__buf sums = {workspace.mem, (size_t)last};
    float omb1 = sgd ? 0.0f : (float)(1.0 - cfg->beta1);
    float omb2 = sgd ? 0.0f : (float)(1.0 - cfg->beta2);
    st = CLT__RUN(dev, CLT__K_optim_step_begin, 1, CLT__I32(count), CLT__BUF(sums),
                  CLT__I32(loss.mem != NULL), CLT__BUF(loss), CLT__F32(cfg->clip_norm),
                  CLT__F32(omb1), CLT__F32(omb2), CLT__BUF(status));
    if (st != CLT_OK)
        return st;

    /* One launch per range; without groups, one range of everything. */
    const struct clt__optim_range all = {0, n, 1.0, cfg->weight_decay};
    const struct clt__optim_range *ranges = cfg->nranges > 0 ? cfg->ranges : &all;
    const uint32_t nranges = cfg->nranges > 0 ? cfg->nranges : (n > 0 ? 1 : 0);
    for (uint32_t i = 0; i < nranges && st == CLT_OK; i++) {
        if (sgd)
            st = sgd_update(dev, cfg, &ranges[i], params, grads, m, status, lr, grad_scale, h);
        else
            st = adam_update(dev, cfg, &ranges[i], params, grads, m, v, status, lr, grad_scale, h);
    }
    return st;
}

/* ==== Learning-rate schedules =========================================================== */

enum clt_status clt__lr_schedule_check(const struct clt_log *log, const struct clt__lr_schedule *s)
{
    const char *bad = NULL;
    if (!s)
        bad = "the schedule is NULL";
    else if (!in_range(s->lr, 0.0, HUGE_VAL) || isinf(s->lr))
        bad = "lr must be finite and >= 0";
    else if (s->warmup_steps < 0)
        bad = "warmup_steps must be >= 0";
    else if (s->kind == CLT__LR_CONSTANT)
        bad = NULL;
    else if (s->kind == CLT__LR_STEP) {
        if (s->step_size <= 0)
            bad = "step_size must be > 0";
        else if (!in_range(s->gamma, 0.0, HUGE_VAL) || isinf(s->gamma))
            bad = "gamma must be finite and >= 0";
    } else if (s->kind == CLT__LR_COSINE) {
        if (s->total_steps <= s->warmup_steps)
            bad = "total_steps must be > warmup_steps";
        else if (!in_range(s->min_lr, 0.0, HUGE_VAL) || isinf(s->min_lr))
            bad = "min_lr must be finite and >= 0";
    } else
        bad = "unknown schedule kind";
    if (!bad)
        return CLT_OK;
    clt__log(log, CLT_LOG_ERROR, "learning-rate schedule: %s", bad);
    return CLT_ERR_INVALID_ARGUMENT;
}

void clt__optim_from_public(const struct clt_optimizer *o, struct clt__optim_config *cfg,
                            struct clt__lr_schedule *sched)
{
    static const enum clt__optim_kind kinds[] = {
        [CLT_OPTIM_SGD] = CLT__OPTIM_SGD,
        [CLT_OPTIM_ADAM] = CLT__OPTIM_ADAM,
        [CLT_OPTIM_ADAMW] = CLT__OPTIM_ADAMW,
    };
    static const enum clt__lr_kind lrs[] = {
        [CLT_LR_CONSTANT] = CLT__LR_CONSTANT,
        [CLT_LR_STEP] = CLT__LR_STEP,
        [CLT_LR_COSINE] = CLT__LR_COSINE,
    };
    clt__optim_config_init(cfg, kinds[o->kind]);
    cfg->weight_decay = o->weight_decay;
    cfg->momentum = o->momentum;
    cfg->dampening = o->dampening;
    cfg->nesterov = o->nesterov;
    cfg->beta1 = o->beta1;
    cfg->beta2 = o->beta2;
    cfg->eps = o->eps;
    cfg->clip_norm = o->clip_norm;
    *sched = (struct clt__lr_schedule){
        .kind = lrs[o->schedule],
        .lr = o->lr,
        .warmup_steps = o->warmup_updates,
        .step_size = o->step_size,
        .gamma = o->gamma,
        .total_steps = o->total_updates,
        .min_lr = o->min_lr,
    };
}

/* Why a group is invalid, or NULL. */
static const char *group_check(const struct clt_param_group *g)
{
    if (memchr(g->pattern, '\0', sizeof g->pattern) == NULL)
        return "a parameter group's pattern is not NUL-terminated";
    if (g->kinds >> (CLT_PARAM_EMBEDDING + 1))
        return "a parameter group's kinds has bits of no kind";
    if (!in_range(g->lr_scale, 0.0, HUGE_VAL) || isinf(g->lr_scale))
        return "a parameter group's lr_scale must be finite and >= 0";
    if (!in_range(g->weight_decay, 0.0, HUGE_VAL) || isinf(g->weight_decay))
        return "a parameter group's weight_decay must be finite and >= 0";
    return NULL;
}

enum clt_status clt_optimizer_add_group(struct clt_optimizer *opt, const char *pattern,
                                        uint32_t kinds, double lr_scale, double weight_decay)
{
    if (!opt || opt->ngroups >= CLT_MAX_PARAM_GROUPS)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt_param_group g = {.kinds = kinds, .lr_scale = lr_scale, .weight_decay = weight_decay};
    if (!pattern)
        pattern = "";
    if (strlen(pattern) >= sizeof g.pattern)
        return CLT_ERR_INVALID_ARGUMENT;
    memcpy(g.pattern, pattern, strlen(pattern) + 1);
    if (group_check(&g))
        return CLT_ERR_INVALID_ARGUMENT;
    opt->groups[opt->ngroups++] = g;
    return CLT_OK;
}

enum clt_status clt_optimizer_exempt_decay(struct clt_optimizer *opt)
{
    const uint32_t kinds = CLT_PARAM_KIND_BIT(CLT_PARAM_BIAS) | CLT_PARAM_KIND_BIT(CLT_PARAM_NORM) |
                           CLT_PARAM_KIND_BIT(CLT_PARAM_EMBEDDING);
    return clt_optimizer_add_group(opt, "", kinds, 1.0, 0.0);
}

int clt__optim_group_of(const struct clt_optimizer *o, const char *name, enum clt_param_kind kind)
{
    for (uint32_t i = 0; i < o->ngroups && i < CLT_MAX_PARAM_GROUPS; i++) {
        const struct clt_param_group *g = &o->groups[i];
        if (g->kinds != 0 && !(g->kinds & CLT_PARAM_KIND_BIT(kind)))
            continue;
        if (g->pattern[0] == '\0' || fnmatch(g->pattern, name, 0) == 0)
            return (int)i;
    }
    return -1;
}

enum clt_status clt__optimizer_check(const struct clt_log *log, const struct clt_optimizer *o)
{
    const char *bad = NULL;
    if (!o)
        bad = "the optimizer is NULL";
    else if ((unsigned)o->kind > CLT_OPTIM_ADAMW)
        bad = "unknown optimizer kind";
    else if ((unsigned)o->schedule > CLT_LR_COSINE)
        bad = "unknown schedule";
    else if (o->accumulate < 1)
        bad = "accumulate must be >= 1";
    else if (!isfinite(o->lr))
        bad = "lr must be finite";
    else if (o->ngroups > CLT_MAX_PARAM_GROUPS)
        bad = "more parameter groups than CLT_MAX_PARAM_GROUPS";
    for (uint32_t i = 0; !bad && i < o->ngroups; i++)
        bad = group_check(&o->groups[i]);
    if (bad) {
        clt__log(log, CLT_LOG_ERROR, "optimizer: %s", bad);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    struct clt__optim_config cfg;
    struct clt__lr_schedule sched;
    clt__optim_from_public(o, &cfg, &sched);
    enum clt_status st = clt__optim_config_check(log, &cfg);
    return st == CLT_OK ? clt__lr_schedule_check(log, &sched) : st;
}

double clt__lr_at(const struct clt__lr_schedule *s, int64_t step)
{
    if (step < 0)
        step = 0;
    if (step < s->warmup_steps)
        return s->lr * (double)(step + 1) / (double)s->warmup_steps;
    const int64_t k = step - s->warmup_steps; /* steps since the warmup */
    switch (s->kind) {
    case CLT__LR_STEP:
        return s->lr * pow(s->gamma, (double)(k / s->step_size));
    case CLT__LR_COSINE: {
        const int64_t span = s->total_steps - s->warmup_steps;
        if (k >= span)
            return s->min_lr;
        const double c = 0.5 * (1.0 + cos(PI * (double)k / (double)span));
        return s->min_lr + (s->lr - s->min_lr) * c;
    }
    case CLT__LR_CONSTANT:
    default:
        return s->lr;
    }
}
