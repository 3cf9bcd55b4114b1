/*
 * test_optim.c: the optimizer step against the double reference (ref_optim.c): SGD (plain,
 * momentum, Nesterov, dampening, weight decay), Adam (with L2 weight decay) and AdamW over
 * several steps with a scheduled learning rate, on optim_sizes that are not multiples of any
 * work-group size; clipping on and off; gradient scale; steps skipped for a NaN or Inf in the
 * gradient or a NaN or Inf loss (bit-identical state, counters), with training going on
 * correctly afterwards; the norm's independence of the work-group size; the status (reset,
 * resume); argument checks; the update of a 16-bit trainer (clt__optim_step_half: the same
 * step, its working copy the parameters rounded, bit for bit, and untouched by a skipped
 * step); and the learning-rate schedules on the host.
 *
 * Data: params and gradients uniform in [-1, 1), fresh gradients every step.
 * Tolerances (float device against the double reference, |got - want| <= atol + rtol |want|):
 *   grad norm            rtol 5e-7 (Kahan sum of squares: a few ulp whatever n)
 *   clip factor          rtol 1e-6
 *   bias corrections     rtol 2e-6 (1 - beta^t; float's 0.999 alone would be off by 1.3e-5)
 *   params, SGD          atol 1e-6, rtol 1e-6 after up to 9 steps
 *   momentum buffer      atol 1e-6, rtol 2e-6
 *   params, Adam/AdamW   atol 1e-6, rtol 1e-6 (updates are ~lr whatever the gradient)
 *   m, Adam              atol 1e-7, rtol 4e-6
 *   v, Adam              atol 1e-9, rtol 4e-6
 * Skipped steps, and runs that differ only in the work-group size, are compared bit for bit.
 * The fixture and the rig that steps the device and the reference together: optim_rig.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim_rig.h"
#include "precision.h"

static void sgd_matches_torch(void **state)
{
    struct fixture *fx = *state;
    const struct clt__lr_schedule sched = {
        .kind = CLT__LR_COSINE, .lr = 0.1, .warmup_steps = 2, .total_steps = 6, .min_lr = 0.01};
    struct clt__optim_config cfg;
    clt__optim_config_init(&cfg, CLT__OPTIM_SGD);
    optim_run_steps(fx, &cfg, &sched, 5, 1.0f, "sgd");
    cfg.weight_decay = 0.01;
    optim_run_steps(fx, &cfg, &sched, 5, 1.0f, "sgd wd");
    cfg.momentum = 0.9;
    optim_run_steps(fx, &cfg, &sched, 5, 1.0f, "sgd momentum wd");
    cfg.nesterov = true;
    optim_run_steps(fx, &cfg, &sched, 5, 1.0f, "sgd nesterov wd");
    cfg.nesterov = false;
    cfg.momentum = 0.5;
    cfg.dampening = 0.25;
    cfg.weight_decay = 0.0;
    optim_run_steps(fx, &cfg, &sched, 5, 1.0f, "sgd momentum dampening");
}

static void adam_matches_torch(void **state)
{
    struct fixture *fx = *state;
    const struct clt__lr_schedule sched = {
        .kind = CLT__LR_STEP, .lr = 0.01, .step_size = 2, .gamma = 0.5};
    struct clt__optim_config cfg;
    clt__optim_config_init(&cfg, CLT__OPTIM_ADAM);
    optim_run_steps(fx, &cfg, &sched, 5, 1.0f, "adam");
    cfg.weight_decay = 0.01;
    optim_run_steps(fx, &cfg, &sched, 5, 1.0f, "adam l2");
    cfg.beta1 = 0.0;
    cfg.beta2 = 0.99;
    cfg.eps = 1e-6;
    optim_run_steps(fx, &cfg, &sched, 5, 1.0f, "adam beta1=0 beta2=0.99");
    clt__optim_config_init(&cfg, CLT__OPTIM_ADAMW);
    optim_run_steps(fx, &cfg, &sched, 5, 1.0f, "adamw");
    cfg.weight_decay = 0.1;
    optim_run_steps(fx, &cfg, &sched, 5, 1.0f, "adamw wd 0.1");
}

static void clipping(void **state)
{
    struct fixture *fx = *state;
    const struct clt__lr_schedule sched = {.kind = CLT__LR_CONSTANT, .lr = 0.05};
    const enum clt__optim_kind kinds[] = {CLT__OPTIM_SGD, CLT__OPTIM_ADAMW};
    for (int k = 0; k < 2; k++) {
        struct clt__optim_config cfg;
        clt__optim_config_init(&cfg, kinds[k]);
        cfg.momentum = kinds[k] == CLT__OPTIM_SGD ? 0.9 : 0.0;
        /* Active: gradients of n uniform values in [-1, 1) have norm about sqrt(n / 3). */
        cfg.clip_norm = 0.5;
        optim_run_steps(fx, &cfg, &sched, 4, 1.0f, "clip 0.5");
        /* Inactive: the factor must be exactly 1. */
        cfg.clip_norm = 1000.0;
        optim_run_steps(fx, &cfg, &sched, 4, 1.0f, "clip 1000");
        /* Small norms, where the 1e-6 of torch's clip_norm / (norm + 1e-6) shows. */
        cfg.clip_norm = 1e-3;
        optim_run_steps(fx, &cfg, &sched, 2, 1e-3f, "clip 1e-3 scale 1e-3");
    }

    /* The factor applied is reported: below 1 when clipping, exactly 1 when not. */
    struct clt__optim_config cfg;
    clt__optim_config_init(&cfg, CLT__OPTIM_SGD);
    cfg.clip_norm = 1.0;
    struct rig r;
    rig_init(&r, fx, &cfg, 37, 5);
    clt_test_fill(r.grads_host, 37, 77, -1.0f, 1.0f);
    rig_step(&r, 0.1f, 1.0f, 0.0f);
    struct clt__optim_status s = rig_status(&r);
    assert_true(s.grad_norm > 1.0f && s.clip_coef < 1.0f);
    rig_compare(&r, "clip factor reported");
    r.cfg.clip_norm = 100.0;
    rig_step(&r, 0.1f, 1.0f, 0.0f);
    s = rig_status(&r);
    assert_true(s.clip_coef == 1.0f);
    rig_free(&r);
}

static void grad_scale(void **state)
{
    struct fixture *fx = *state;
    const struct clt__lr_schedule sched = {.kind = CLT__LR_CONSTANT, .lr = 0.02};
    struct clt__optim_config cfg;
    clt__optim_config_init(&cfg, CLT__OPTIM_ADAM);
    optim_run_steps(fx, &cfg, &sched, 3, 0.25f, "adam scale 1/4");
    clt__optim_config_init(&cfg, CLT__OPTIM_SGD);
    cfg.momentum = 0.9;
    cfg.clip_norm = 2.0; /* the norm clipped is the scaled one */
    optim_run_steps(fx, &cfg, &sched, 3, 1.0f / 3.0f, "sgd scale 1/3 clip 2");
}

/* Bad steps in a row, between good ones, for each optimizer: each bad one leaves params, m
 * and v bit-identical and is counted; the good ones match the reference, which skipped the
 * same steps. */
static void nonfinite_steps_are_skipped(void **state)
{
    struct fixture *fx = *state;
    const enum clt__optim_kind kinds[] = {CLT__OPTIM_SGD, CLT__OPTIM_ADAM, CLT__OPTIM_ADAMW};
    /* What is wrong with each step: 0 nothing, 1 NaN gradient, 2 Inf loss, 3 Inf gradient,
     * 4 NaN loss, 5 -Inf loss and NaN gradient. */
    const int plan[] = {0, 1, 2, 0, 3, 4, 5, 0, 0};
    const int expect_skip[] = {0,
                               CLT__OPTIM_SKIP_GRAD,
                               CLT__OPTIM_SKIP_LOSS,
                               CLT__OPTIM_SKIP_GRAD,
                               CLT__OPTIM_SKIP_LOSS,
                               CLT__OPTIM_SKIP_GRAD | CLT__OPTIM_SKIP_LOSS};
    const int steps = sizeof plan / sizeof plan[0];
    for (int k = 0; k < 3; k++)
        for (int z = 0; z < NSIZES; z++) {
            const int64_t n = optim_sizes()[z];
            struct clt__optim_config cfg;
            clt__optim_config_init(&cfg, kinds[k]);
            cfg.momentum = 0.9;
            cfg.clip_norm = 3.0;
            struct rig r;
            rig_init(&r, fx, &cfg, n, 7 + (uint64_t)n);
            for (int s = 0; s < steps; s++) {
                clt_test_fill(r.grads_host, (size_t)n, 500 + (uint64_t)s, -1.0f, 1.0f);
                float loss = 1.0f;
                const size_t bad = (size_t)n / 2;
                if (plan[s] == 1 || plan[s] == 5)
                    r.grads_host[bad] = NAN;
                if (plan[s] == 3)
                    r.grads_host[bad] = -INFINITY;
                if (plan[s] == 2)
                    loss = INFINITY;
                if (plan[s] == 4)
                    loss = NAN;
                if (plan[s] == 5)
                    loss = -INFINITY;
                float *before = rig_snapshot(&r);
                rig_step(&r, 0.01f, 0.5f, loss);
                char what[160];
                snprintf(what, sizeof what, "kind %d n=%lld step %d plan %d", (int)kinds[k],
                         (long long)n, s, plan[s]);
                rig_compare(&r, what);
                struct clt__optim_status st = rig_status(&r);
                if (plan[s] != 0) {
                    float *after = rig_snapshot(&r);
                    if (memcmp(before, after, 3 * (size_t)n * sizeof *after) != 0)
                        fail_msg("%s: a skipped step changed params or state", what);
                    free(after);
                    assert_int_equal(st.last_skip, expect_skip[plan[s]]);
                    if (plan[s] == 3)
                        assert_true(isinf(st.grad_norm));
                    if (plan[s] == 1)
                        assert_true(isnan(st.grad_norm));
                } else {
                    assert_int_equal(st.last_skip, 0);
                }
                free(before);
            }
            struct clt__optim_status st = rig_status(&r);
            assert_int_equal(st.step, 4);
            assert_int_equal(st.skipped, 5);
            rig_free(&r);
        }
}

/* Without a loss buffer only the gradient is checked. Plain SGD gets NULL m and v as well. */
static void loss_is_optional(void **state)
{
    struct fixture *fx = *state;
    struct clt__optim_config cfg;
    clt__optim_config_init(&cfg, CLT__OPTIM_SGD);
    struct rig r;
    rig_init(&r, fx, &cfg, 37, 3);
    r.use_loss = false;
    for (int s = 0; s < 2; s++) {
        clt_test_fill(r.grads_host, 37, 40 + (uint64_t)s, -1.0f, 1.0f);
        rig_step(&r, 0.1f, 1.0f, NAN); /* the NaN stays on the host */
        rig_compare(&r, "sgd without loss");
    }
    assert_int_equal(rig_status(&r).step, 2);
    rig_free(&r);
}

/* The norm is reduced in chunks fixed by n alone: any work-group size gives the same bits,
 * for the norm and for the update, and so do the kernels of the other kind of device (a
 * CPU's float16 kernels and folded last level, or the others' float4 ones and levels: the
 * last run, with the device's type flipped). Sizes with two and (PoCL, rusticl) three
 * levels. */
static void norm_independent_of_work_group(void **state)
{
    struct fixture *fx = *state;
    const int64_t ns[] = {4500, 300007};
    const int nn = clt_test_small() ? 1 : 2;
    for (int z = 0; z < nn; z++) {
        const int64_t n = ns[z];
        const size_t wgs[] = {0, 1, 7, 32};
        struct clt__optim_status first = {0};
        float *first_params = NULL;
        for (int w = 0; w < 5; w++) {
            if (w < 4 && n > 10000 && wgs[w] > 0 && wgs[w] < 32)
                continue; /* one-item groups over 300k items are slow and show nothing new */
            const bool flip = w == 4;
            struct clt_device *dev = fx->dev;
            const enum clt_device_type type = dev->info.type;
            if (flip)
                dev->info.type = type == CLT_DEVICE_CPU ? CLT_DEVICE_GPU : CLT_DEVICE_CPU;
            struct clt__optim_config cfg;
            clt__optim_config_init(&cfg, CLT__OPTIM_ADAMW);
            cfg.clip_norm = 1.0;
            cfg.work_group = flip ? 0 : wgs[w];
            struct rig r;
            rig_init(&r, fx, &cfg, n, 99);
            clt_test_fill(r.grads_host, (size_t)n, 1234, -1.0f, 1.0f);
            /* Spread the magnitudes so that the order of summation would show (squares of
             * up to 2^24 beside ones of 1e-6: each compensation matters). */
            for (int64_t i = 0; i < n; i += 3)
                r.grads_host[i] *= 1e-3f;
            for (int64_t i = 1; i < n; i += 7)
                r.grads_host[i] *= 8192.0f;
            rig_step(&r, 1e-3f, 0.5f, 0.0f);
            char what[100];
            snprintf(what, sizeof what, "n=%lld work group %zu%s", (long long)n, flip ? 0 : wgs[w],
                     flip ? ", the other kind's kernels" : "");
            rig_compare(&r, what);
            struct clt__optim_status s = rig_status(&r);
            clt_test_download(&r.params, r.got, (size_t)n);
            if (!first_params) {
                first = s;
                first_params = malloc((size_t)n * sizeof *first_params);
                assert_non_null(first_params);
                memcpy(first_params, r.got, (size_t)n * sizeof *first_params);
            } else {
                if (memcmp(&s, &first, sizeof s) != 0)
                    fail_msg("%s: status differs from the first run (norm %.9g vs %.9g)", what,
                             (double)s.grad_norm, (double)first.grad_norm);
                if (memcmp(r.got, first_params, (size_t)n * sizeof *r.got) != 0)
                    fail_msg("%s: params differ from the first run", what);
            }
            /* The norm stays within 5e-7 of the double reference at this size too, and is
             * the bits of the kernels' order replayed in C (CPU devices, whose sqrt is
             * correctly rounded: the float16 partial sums and the levels optim_step_begin
             * folds in, compared with the order the other kernels keep). */
            const double want = r.ref.grad_norm;
            clt_test_assert_close(what, &s.grad_norm, &want, 1, 0.0, 5e-7);
            const float exact = optim_norm_in_kernel_order(r.grads_host, n, 0.5f);
            if (type == CLT_DEVICE_CPU && memcmp(&s.grad_norm, &exact, 4) != 0)
                fail_msg("%s: norm %.9g, the kernels' order gives %.9g", what, (double)s.grad_norm,
                         (double)exact);
            rig_free(&r);
            dev->info.type = type;
        }
        free(first_params);
    }
}

/* The status is zeroed by a reset, and a status written back (resuming from a checkpoint)
 * carries the step counter into Adam's bias corrections. */
static void status_reset_and_resume(void **state)
{
    struct fixture *fx = *state;
    struct clt__optim_config cfg;
    clt__optim_config_init(&cfg, CLT__OPTIM_ADAM);
    const int64_t n = 37;
    struct rig r;
    rig_init(&r, fx, &cfg, n, 11);

    const float junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    optim_put(fx, &r.status, junk, 8);
    assert_int_equal(clt__optim_status_reset(fx->dev, clt__view_buf(&r.status)), CLT_OK);
    struct clt__optim_status s = rig_status(&r), zero = {0};
    assert_memory_equal(&s, &zero, sizeof s);

    /* A run that had applied 7 steps and skipped 2, with m and v from those steps. */
    float *host = malloc((size_t)n * sizeof *host);
    assert_non_null(host);
    clt_test_fill(host, (size_t)n, 21, -0.1f, 0.1f);
    optim_put(fx, &r.m, host, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        r.ref.m[i] = host[i];
    clt_test_fill(host, (size_t)n, 22, 0.0f, 0.01f);
    optim_put(fx, &r.v, host, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        r.ref.v[i] = host[i];
    free(host);
    assert_int_equal(clt__optim_status_set(fx->dev, clt__view_buf(&r.status), 7, 2), CLT_OK);
    r.ref.t = 7;
    r.ref.skipped = 2;
    for (int s2 = 0; s2 < 2; s2++) {
        clt_test_fill(r.grads_host, (size_t)n, 60 + (uint64_t)s2, -1.0f, 1.0f);
        rig_step(&r, 1e-2f, 1.0f, 0.5f);
        rig_compare(&r, "adam resumed at t=7");
    }
    s = rig_status(&r);
    assert_int_equal(s.step, 9);
    assert_int_equal(s.skipped, 2);
    rig_free(&r);
}

/* An empty parameter buffer is a valid (if useless) step: norm 0, t counts. */
static void empty_step(void **state)
{
    struct fixture *fx = *state;
    struct clt__optim_config cfg;
    clt__optim_config_init(&cfg, CLT__OPTIM_ADAMW);
    struct rig r;
    rig_init(&r, fx, &cfg, 0, 1);
    rig_step(&r, 0.1f, 1.0f, 1.0f);
    struct clt__optim_status s = rig_status(&r);
    assert_true(s.grad_norm == 0.0f);
    assert_int_equal(s.step, 1);
    assert_int_equal(s.last_skip, 0);
    rig_free(&r);
}

static void bad_arguments(void **state)
{
    struct fixture *fx = *state;
    struct clt_device *dev = fx->dev;
    struct clt_test_log log = {0};
    struct clt_log saved = dev->log;
    dev->log = (struct clt_log){.fn = clt_test_log_fn, .user = &log, .max_level = CLT_LOG_DEBUG};

    struct clt__optim_config cfg;
    clt__optim_config_init(&cfg, CLT__OPTIM_ADAM);
    struct rig r;
    rig_init(&r, fx, &cfg, 37, 1);
    struct clt__buf p = clt__view_buf(&r.params), g = clt__view_buf(&r.grads);
    struct clt__buf m = clt__view_buf(&r.m), v = clt__view_buf(&r.v);
    struct clt__buf loss = clt__view_buf(&r.loss), ws = clt__view_buf(&r.ws);
    struct clt__buf st = clt__view_buf(&r.status), none = {NULL, 0};
    const enum clt_status bad = CLT_ERR_INVALID_ARGUMENT;

    assert_int_equal(clt__optim_step(dev, &cfg, 37, p, g, m, v, loss, ws, st, 0.1f, 1.0f), CLT_OK);
    assert_int_equal(clt__optim_step(NULL, &cfg, 37, p, g, m, v, loss, ws, st, 0.1f, 1.0f), bad);
    assert_int_equal(clt__optim_step(dev, NULL, 37, p, g, m, v, loss, ws, st, 0.1f, 1.0f), bad);
    assert_int_equal(clt__optim_step(dev, &cfg, -1, p, g, m, v, loss, ws, st, 0.1f, 1.0f), bad);
    /* More elements than the buffers hold (the check sees the whole arena buffer). */
    assert_int_equal(clt__optim_step(dev, &cfg, 1 << 24, p, g, m, v, loss, ws, st, 0.1f, 1.0f),
                     bad);
    assert_int_equal(clt__optim_step(dev, &cfg, 37, none, g, m, v, loss, ws, st, 0.1f, 1.0f), bad);
    /* Adam needs m and v; the status and workspace are never optional. */
    assert_int_equal(clt__optim_step(dev, &cfg, 37, p, g, m, none, loss, ws, st, 0.1f, 1.0f), bad);
    assert_int_equal(clt__optim_step(dev, &cfg, 37, p, g, m, v, loss, none, st, 0.1f, 1.0f), bad);
    assert_int_equal(clt__optim_step(dev, &cfg, 37, p, g, m, v, loss, ws, none, 0.1f, 1.0f), bad);
    assert_int_equal(clt__optim_step(dev, &cfg, 37, p, g, m, v, loss, ws, st, NAN, 1.0f), bad);
    assert_int_equal(clt__optim_step(dev, &cfg, 37, p, g, m, v, loss, ws, st, -1.0f, 1.0f), bad);
    assert_int_equal(clt__optim_step(dev, &cfg, 37, p, g, m, v, loss, ws, st, 0.1f, INFINITY), bad);
    assert_int_equal(clt__optim_status_set(dev, st, -1, 0), bad);
    assert_int_equal(clt__optim_status_set(dev, none, 0, 0), bad);
    struct clt__buf far = p;
    far.offset = (size_t)1 << 31;
    assert_int_equal(clt__optim_step(dev, &cfg, 37, far, g, m, v, loss, ws, st, 0.1f, 1.0f), bad);

    /* Configurations out of range. */
    struct clt__optim_config c = cfg;
    c.beta1 = 1.0;
    assert_int_equal(clt__optim_config_check(&dev->log, &c), bad);
    c = cfg;
    c.beta2 = NAN;
    assert_int_equal(clt__optim_config_check(&dev->log, &c), bad);
    c = cfg;
    c.eps = -1.0;
    assert_int_equal(clt__optim_config_check(&dev->log, &c), bad);
    c = cfg;
    c.clip_norm = -1.0;
    assert_int_equal(clt__optim_config_check(&dev->log, &c), bad);
    c = cfg;
    c.kind = (enum clt__optim_kind)42;
    assert_int_equal(clt__optim_config_check(&dev->log, &c), bad);
    clt__optim_config_init(&c, CLT__OPTIM_SGD);
    c.nesterov = true; /* without momentum */
    assert_int_equal(clt__optim_config_check(&dev->log, &c), bad);
    c.momentum = 0.9;
    c.dampening = 0.1; /* Nesterov with dampening */
    assert_int_equal(clt__optim_config_check(&dev->log, &c), bad);
    c.dampening = 0.0;
    assert_int_equal(clt__optim_config_check(&dev->log, &c), CLT_OK);
    /* SGD with momentum needs m; without momentum it needs neither m nor v. */
    assert_int_equal(clt__optim_step(dev, &c, 37, p, g, none, none, loss, ws, st, 0.1f, 1.0f), bad);
    c.momentum = 0.0;
    c.nesterov = false;
    assert_int_equal(clt__optim_step(dev, &c, 37, p, g, none, none, none, ws, st, 0.1f, 1.0f),
                     CLT_OK);
    /* A work-group size beyond the kernel's limit. */
    c.work_group = (size_t)1 << 20;
    assert_int_equal(clt__optim_step(dev, &c, 37, p, g, none, none, none, ws, st, 0.1f, 1.0f), bad);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    assert_non_null(strstr(log.text, "optimizer"));
    dev->log = saved;
    rig_free(&r);
}

/* Parameter groups: ranges of the flat buffers with their own rate scale and weight decay,
 * against the reference, which applies torch's param_groups element by element. A range of
 * lr_scale 0 and no decay leaves its parameters bit for bit. */
static void groups_match_torch(void **state)
{
    struct fixture *fx = *state;
    const struct clt__lr_schedule sched = {.kind = CLT__LR_CONSTANT, .lr = 0.05};
    const enum clt__optim_kind kinds[] = {CLT__OPTIM_SGD, CLT__OPTIM_ADAM, CLT__OPTIM_ADAMW};
    for (int k = 0; k < 3; k++) {
        struct clt__optim_config cfg;
        clt__optim_config_init(&cfg, kinds[k]);
        cfg.weight_decay = 0.1;
        cfg.momentum = kinds[k] == CLT__OPTIM_SGD ? 0.9 : 0.0;
        for (int s = 1; s < NSIZES; s++) {
            const int64_t n = optim_sizes()[s], a = n / 3, b = n / 3 + 5;
            const struct clt__optim_range ranges[3] = {
                {0, a, 1.0, 0.2}, {a, b, 0.0, 0.0}, {b, n, 2.5, 0.0}};
            cfg.ranges = ranges;
            cfg.nranges = 3;
            struct rig r;
            rig_init(&r, fx, &cfg, n, 300 + (uint64_t)n);
            float frozen[5];
            clt_test_download(&r.params, r.got, (size_t)n);
            memcpy(frozen, r.got + a, sizeof frozen);
            for (int step = 0; step < 4; step++) {
                clt_test_fill(r.grads_host, (size_t)n, 50 * (uint64_t)step + 7, -1.0f, 1.0f);
                rig_step(&r, (float)clt__lr_at(&sched, step), 1.0f, 1.0f);
                char what[160];
                snprintf(what, sizeof what, "groups kind %d n=%lld step %d", k, (long long)n, step);
                rig_compare(&r, what);
            }
            clt_test_download(&r.params, r.got, (size_t)n);
            assert_memory_equal(frozen, r.got + a, sizeof frozen);
            rig_free(&r);
        }
    }
    /* Ranges that do not cover the buffer exactly are refused. */
    struct clt__optim_config cfg;
    clt__optim_config_init(&cfg, CLT__OPTIM_ADAMW);
    struct rig r;
    rig_init(&r, fx, &cfg, 37, 1);
    const struct clt__optim_range gap[2] = {{0, 10, 1.0, 0.0}, {11, 37, 1.0, 0.0}};
    const struct clt__optim_range short_[1] = {{0, 36, 1.0, 0.0}};
    const struct clt__optim_range negative[1] = {{0, 37, -1.0, 0.0}};
    const struct clt__optim_range *bad[] = {gap, short_, negative};
    const uint32_t nbad[] = {2, 1, 1};
    for (int i = 0; i < 3; i++) {
        r.cfg.ranges = bad[i];
        r.cfg.nranges = nbad[i];
        assert_int_equal(rig_device_step(&r, 0.1f, 1.0f, 1.0f), CLT_ERR_INVALID_ARGUMENT);
    }
    rig_free(&r);
}

/* clt__optim_step_half: the step of clt__optim_step (the double reference, as rig_compare
 * checks it) whose update also writes the parameters rounded into fp16 or bf16 (compared bit
 * for bit with the host's rounding of the parameters read back, which test_precision checks
 * against the device's conversion kernels); over three ranges with odd boundaries, on sizes
 * that are not multiples of 4; a step skipped for a NaN gradient leaves the parameters and
 * the working copy bit for bit; a bad precision or a missing working copy is refused. */
static void half_step_writes_the_working_copy(void **state)
{
    struct fixture *fx = *state;
    const enum clt__optim_kind kinds[] = {CLT__OPTIM_SGD, CLT__OPTIM_ADAM, CLT__OPTIM_ADAMW};
    const enum clt_precision precs[] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16};
    for (int k = 0; k < 3; k++)
        for (int pi = 0; pi < 2; pi++)
            for (int s = 1; s < NSIZES; s++) {
                const enum clt_precision prec = precs[pi];
                const int64_t n = optim_sizes()[s], a = n / 3 + 1, b = n / 2 + 2;
                const struct clt__optim_range ranges[3] = {
                    {0, a, 1.0, 0.1}, {a, b, 0.5, 0.0}, {b, n, 2.0, 0.0}};
                struct clt__optim_config cfg;
                clt__optim_config_init(&cfg, kinds[k]);
                cfg.momentum = kinds[k] == CLT__OPTIM_SGD ? 0.9 : 0.0;
                cfg.clip_norm = 5.0;
                cfg.ranges = ranges;
                cfg.nranges = 3;
                struct rig r;
                rig_init(&r, fx, &cfg, n, 900 + (uint64_t)n);
                struct clt_view shadow = clt_test_tensor_st(r.arena, NULL, (size_t)n, prec);
                const struct clt__optim_half h = {prec, clt_test_buf_st(&shadow, prec)};
                float *want = clt_test_floats((size_t)n), *got = clt_test_floats((size_t)n);
                for (int step = 0; step < 4; step++) {
                    clt_test_fill(r.grads_host, (size_t)n, 70 * (uint64_t)step + 3, -1.0f, 1.0f);
                    if (step == 2)
                        r.grads_host[n - 1] = NAN; /* skipped */
                    optim_put(fx, &r.grads, r.grads_host, (size_t)n);
                    const float lr = 0.05f;
                    assert_int_equal(
                        clt__optim_step_half(r.dev, &r.cfg, n, clt__view_buf(&r.params),
                                             clt__view_buf(&r.grads), clt__view_buf(&r.m),
                                             kinds[k] == CLT__OPTIM_SGD ? (struct clt__buf){NULL, 0}
                                                                        : clt__view_buf(&r.v),
                                             (struct clt__buf){NULL, 0}, clt__view_buf(&r.ws),
                                             clt__view_buf(&r.status), lr, 1.0f, &h),
                        CLT_OK);
                    ref_optim_step(&r.cfg, &r.ref, r.grads_host, 0.0, (double)lr, 1.0);
                    char what[160];
                    snprintf(what, sizeof what, "half step kind %d %s n=%lld step %d", k,
                             clt_precision_name(prec), (long long)n, step);
                    rig_compare(&r, what);
                    clt_test_download(&r.params, want, (size_t)n);
                    for (int64_t i = 0; i < n; i++)
                        want[i] = clt__half_to_f32(prec, clt__f32_to_half(prec, want[i]));
                    clt_test_get_st(&shadow, got, (size_t)n, prec);
                    assert_memory_equal(want, got, (size_t)n * sizeof *got);
                }
                assert_int_equal(rig_status(&r).skipped, 1);
                free(want);
                free(got);
                if (k == 0 && s == 1) { /* refusals */
                    const struct clt__optim_half bad = {CLT_PRECISION_FP32, h.shadow};
                    const struct clt__optim_half none = {prec, {NULL, 0}};
                    const struct clt__optim_half *refused[] = {&bad, &none};
                    for (int i = 0; i < 2; i++)
                        assert_int_equal(
                            clt__optim_step_half(r.dev, &r.cfg, n, clt__view_buf(&r.params),
                                                 clt__view_buf(&r.grads), clt__view_buf(&r.m),
                                                 (struct clt__buf){NULL, 0},
                                                 (struct clt__buf){NULL, 0}, clt__view_buf(&r.ws),
                                                 clt__view_buf(&r.status), 0.1, 1.0f, refused[i]),
                            CLT_ERR_INVALID_ARGUMENT);
                }
                rig_free(&r);
            }
}

/* The public optimizer's hyper-parameters reach the kernels from double: with beta2 = 0.999
 * Adam's second moment after 6 steps matches the double reference within 5e-7 relative
 * (a few float roundings; the float 0.999f of earlier versions gave 1.3e-5, checked below to
 * be outside the tolerance). SGD's dampening, set in the public struct, is applied. */
static void public_hyperparameters(void **state)
{
    struct fixture *fx = *state;
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    struct clt__optim_config cfg;
    struct clt__lr_schedule sched;
    assert_int_equal(clt__optimizer_check(NULL, &o.optimizer), CLT_OK);
    clt__optim_from_public(&o.optimizer, &cfg, &sched);
    assert_true(cfg.beta2 == 0.999 && cfg.eps == 1e-8 && sched.lr == 1e-3);
    const int64_t n = optim_sizes()[2];
    struct rig r;
    rig_init(&r, fx, &cfg, n, 42);
    for (int step = 0; step < 6; step++) {
        clt_test_fill(r.grads_host, (size_t)n, 900 + (uint64_t)step, -1.0f, 1.0f);
        rig_step(&r, (float)sched.lr, 1.0f, 1.0f);
    }
    clt_test_download(&r.v, r.got, (size_t)n);
    clt_test_assert_close("adam v, public double betas", r.got, r.ref.v, (size_t)n, 0.0, 5e-7);
    /* The same steps with beta2 rounded to float move v by more than the tolerance. */
    struct ref_optim f = {.n = n};
    f.p = calloc((size_t)n, sizeof *f.p);
    f.m = calloc((size_t)n, sizeof *f.m);
    f.v = calloc((size_t)n, sizeof *f.v);
    assert_true(f.p && f.m && f.v);
    struct clt__optim_config rounded = cfg;
    rounded.beta2 = (double)0.999f;
    float *g = malloc((size_t)n * sizeof *g);
    assert_non_null(g);
    for (int step = 0; step < 6; step++) {
        clt_test_fill(g, (size_t)n, 900 + (uint64_t)step, -1.0f, 1.0f);
        ref_optim_step(&rounded, &f, g, 1.0, sched.lr, 1.0);
    }
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(f.v[i] - r.ref.v[i]) / r.ref.v[i]);
    assert_true(worst > 1e-5);
    free(g);
    free(f.p);
    free(f.m);
    free(f.v);
    rig_free(&r);

    /* SGD with momentum and dampening from the public struct. */
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.momentum = 0.5;
    o.optimizer.dampening = 0.25;
    assert_int_equal(clt__optimizer_check(NULL, &o.optimizer), CLT_OK);
    clt__optim_from_public(&o.optimizer, &cfg, &sched);
    assert_true(cfg.dampening == 0.25 && cfg.momentum == 0.5);
    optim_run_steps(fx, &cfg, &sched, 4, 1.0f, "public sgd dampening");
    o.optimizer.dampening = 1.5;
    assert_int_equal(clt__optimizer_check(NULL, &o.optimizer), CLT_ERR_INVALID_ARGUMENT);
    o.optimizer.dampening = 0.1;
    o.optimizer.nesterov = true; /* torch refuses Nesterov with dampening */
    assert_int_equal(clt__optimizer_check(NULL, &o.optimizer), CLT_ERR_INVALID_ARGUMENT);
}

/* ==== Host-only pieces ================================================================== */

/* Which group a parameter selects: the first whose pattern and kinds both accept it. */
static void group_selection(void **state)
{
    (void)state;
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAMW);
    struct clt_optimizer *opt = &o.optimizer;
    assert_int_equal(clt__optim_group_of(opt, "fc1.bias", CLT_PARAM_BIAS), -1);
    assert_int_equal(clt_optimizer_add_group(opt, "head.*", 0, 0.5, 0.2), CLT_OK);
    assert_int_equal(clt_optimizer_exempt_decay(opt), CLT_OK);
    assert_int_equal(opt->ngroups, 2);
    assert_true(opt->groups[1].weight_decay == 0.0 && opt->groups[1].lr_scale == 1.0);
    assert_int_equal(clt__optim_group_of(opt, "head.bias", CLT_PARAM_BIAS), 0);
    assert_int_equal(clt__optim_group_of(opt, "fc1.bias", CLT_PARAM_BIAS), 1);
    assert_int_equal(clt__optim_group_of(opt, "ln.weight", CLT_PARAM_NORM), 1);
    assert_int_equal(clt__optim_group_of(opt, "tok.weight", CLT_PARAM_EMBEDDING), 1);
    assert_int_equal(clt__optim_group_of(opt, "fc1.weight", CLT_PARAM_WEIGHT), -1);
    assert_int_equal(
        clt_optimizer_add_group(opt, NULL, CLT_PARAM_KIND_BIT(CLT_PARAM_WEIGHT), 1.0, 0.05),
        CLT_OK);
    assert_int_equal(clt__optim_group_of(opt, "fc1.weight", CLT_PARAM_WEIGHT), 2);
    assert_int_equal(clt__optimizer_check(NULL, opt), CLT_OK);
    /* Refused: negative or non-finite settings, a pattern too long, too many groups. */
    const enum clt_status bad = CLT_ERR_INVALID_ARGUMENT;
    assert_int_equal(clt_optimizer_add_group(opt, "x", 0, -1.0, 0.0), bad);
    assert_int_equal(clt_optimizer_add_group(opt, "x", 0, 1.0, NAN), bad);
    assert_int_equal(clt_optimizer_add_group(opt, "x", 1u << 9, 1.0, 0.0), bad);
    char long_pattern[100];
    memset(long_pattern, 'a', sizeof long_pattern - 1);
    long_pattern[sizeof long_pattern - 1] = '\0';
    assert_int_equal(clt_optimizer_add_group(opt, long_pattern, 0, 1.0, 0.0), bad);
    assert_int_equal(clt_optimizer_add_group(NULL, "x", 0, 1.0, 0.0), bad);
    while (opt->ngroups < CLT_MAX_PARAM_GROUPS)
        assert_int_equal(clt_optimizer_add_group(opt, "x", 0, 1.0, 0.0), CLT_OK);
    assert_int_equal(clt_optimizer_add_group(opt, "x", 0, 1.0, 0.0), bad);
    /* A group edited by hand into an invalid state is caught by the trainer's check. */
    opt->groups[0].lr_scale = INFINITY;
    assert_int_equal(clt__optimizer_check(NULL, opt), bad);
    opt->groups[0].lr_scale = 1.0;
    opt->ngroups = CLT_MAX_PARAM_GROUPS + 1;
    assert_int_equal(clt__optimizer_check(NULL, opt), bad);
}

static void workspace_sizes(void **state)
{
    (void)state;
    assert_int_equal(clt__optim_workspace_bytes(0), 4);
    assert_int_equal(clt__optim_workspace_bytes(1), 4);
    assert_int_equal(clt__optim_workspace_bytes(64), 4);
    assert_int_equal(clt__optim_workspace_bytes(65), 2 * 4);
    assert_int_equal(clt__optim_workspace_bytes(4096), 64 * 4);
    assert_int_equal(clt__optim_workspace_bytes(4097), (65 + 2) * 4);
    /* 2^31 - 1: 33554432 + 524288 + 8192 + 128 + 2 partial sums. */
    assert_int_equal(clt__optim_workspace_bytes(INT32_MAX),
                     (33554432 + 524288 + 8192 + 128 + 2) * (size_t)4);
}

static void assert_lr(const struct clt__lr_schedule *s, int64_t step, double want)
{
    const double got = clt__lr_at(s, step);
    if (fabs(got - want) > 1e-15 + 1e-12 * fabs(want))
        fail_msg("schedule kind %d step %lld: lr %.17g, want %.17g", (int)s->kind, (long long)step,
                 got, want);
}

static void schedules(void **state)
{
    (void)state;
    struct clt__lr_schedule s = {.kind = CLT__LR_CONSTANT, .lr = 0.1};
    assert_int_equal(clt__lr_schedule_check(NULL, &s), CLT_OK);
    assert_lr(&s, 0, 0.1);
    assert_lr(&s, 12345, 0.1);
    assert_lr(&s, -3, 0.1);

    /* StepLR(step_size = 3, gamma = 0.5). */
    s = (struct clt__lr_schedule){.kind = CLT__LR_STEP, .lr = 0.1, .step_size = 3, .gamma = 0.5};
    assert_int_equal(clt__lr_schedule_check(NULL, &s), CLT_OK);
    assert_lr(&s, 0, 0.1);
    assert_lr(&s, 2, 0.1);
    assert_lr(&s, 3, 0.05);
    assert_lr(&s, 5, 0.05);
    assert_lr(&s, 6, 0.025);
    assert_lr(&s, 30, 0.1 / 1024.0);

    /* Cosine from 1 to 0.1 over 10 steps. */
    s = (struct clt__lr_schedule){
        .kind = CLT__LR_COSINE, .lr = 1.0, .total_steps = 10, .min_lr = 0.1};
    assert_int_equal(clt__lr_schedule_check(NULL, &s), CLT_OK);
    assert_lr(&s, 0, 1.0);
    assert_lr(&s, 5, 0.55);                                          /* halfway: the mean */
    assert_lr(&s, 2, 0.1 + 0.9 * 0.5 * (1.0 + 0.80901699437494745)); /* cos(pi / 5) */
    assert_lr(&s, 9, 0.1 + 0.9 * 0.5 * (1.0 - 0.95105651629515353)); /* cos(9 pi / 10) */
    assert_lr(&s, 10, 0.1);
    assert_lr(&s, 1000, 0.1);

    /* Warmup of 4 steps, then cosine over the 8 remaining ones of 12. */
    s.warmup_steps = 4;
    s.total_steps = 12;
    assert_int_equal(clt__lr_schedule_check(NULL, &s), CLT_OK);
    assert_lr(&s, 0, 0.25);
    assert_lr(&s, 1, 0.5);
    assert_lr(&s, 3, 1.0);
    assert_lr(&s, 4, 1.0);
    assert_lr(&s, 8, 0.55);
    assert_lr(&s, 12, 0.1);

    /* Warmup with the others. */
    s = (struct clt__lr_schedule){
        .kind = CLT__LR_STEP, .lr = 0.2, .warmup_steps = 5, .step_size = 10, .gamma = 0.1};
    assert_lr(&s, 0, 0.04);
    assert_lr(&s, 4, 0.2);
    assert_lr(&s, 14, 0.2);
    assert_lr(&s, 15, 0.02);
    s = (struct clt__lr_schedule){.kind = CLT__LR_CONSTANT, .lr = 3.0, .warmup_steps = 3};
    assert_lr(&s, 0, 1.0);
    assert_lr(&s, 1, 2.0);
    assert_lr(&s, 2, 3.0);
    assert_lr(&s, 100, 3.0);

    /* Out of range. */
    s = (struct clt__lr_schedule){.kind = CLT__LR_STEP, .lr = 0.1, .step_size = 0, .gamma = 1};
    struct clt_test_log log = {0};
    struct clt_log to_buf = {.fn = clt_test_log_fn, .user = &log, .max_level = CLT_LOG_DEBUG};
    assert_int_equal(clt__lr_schedule_check(&to_buf, &s), CLT_ERR_INVALID_ARGUMENT);
    s = (struct clt__lr_schedule){
        .kind = CLT__LR_COSINE, .lr = 0.1, .warmup_steps = 10, .total_steps = 10};
    assert_int_equal(clt__lr_schedule_check(&to_buf, &s), CLT_ERR_INVALID_ARGUMENT);
    s = (struct clt__lr_schedule){.kind = CLT__LR_CONSTANT, .lr = -1.0};
    assert_int_equal(clt__lr_schedule_check(&to_buf, &s), CLT_ERR_INVALID_ARGUMENT);
    s = (struct clt__lr_schedule){.kind = CLT__LR_CONSTANT, .lr = 1.0, .warmup_steps = -1};
    assert_int_equal(clt__lr_schedule_check(&to_buf, &s), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__lr_schedule_check(&to_buf, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(log.text, "schedule"));
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(workspace_sizes),
        CLT_DEVICE_TEST(schedules),
        CLT_DEVICE_TEST(sgd_matches_torch),
        CLT_DEVICE_TEST(adam_matches_torch),
        CLT_DEVICE_TEST(clipping),
        CLT_DEVICE_TEST(grad_scale),
        CLT_DEVICE_TEST(nonfinite_steps_are_skipped),
        CLT_DEVICE_TEST(loss_is_optional),
        CLT_DEVICE_TEST(norm_independent_of_work_group),
        CLT_DEVICE_TEST(status_reset_and_resume),
        CLT_DEVICE_TEST(empty_step),
        CLT_DEVICE_TEST(bad_arguments),
        CLT_DEVICE_TEST(groups_match_torch),
        CLT_DEVICE_TEST(half_step_writes_the_working_copy),
        CLT_DEVICE_TEST(public_hyperparameters),
        CLT_DEVICE_TEST(group_selection),
    };
    return cmocka_run_group_tests(tests, optim_fixture_setup, optim_fixture_teardown);
}
