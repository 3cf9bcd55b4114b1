/*
 * test_norm16.c: batch norm and layer norm (cl/norm.cl) in 16-bit storage: every kernel path
 * in fp16 and bf16, and in fp32 through the same code, against the C reference (ref_norm.c).
 * The fp32 numerics, gradient checks and argument checks are test_norm.c's.
 *
 * What is stored in the storage (docs/precision.md): x, y, dy, dx, gamma, beta, dgamma and
 * dbeta. mean, inv_std, rstd (aux), running_mean, running_var (state) and the workspace stay
 * float whatever the storage.
 *
 * Data as test_norm.c's (x uniform in [-1, 1) plus a per-channel or per-row offset in
 * [-2, 2), gamma in [0.5, 1.5), beta in [-0.5, 0.5), dy and earlier gradient values in
 * [-1, 1); running statistics in [-0.5, 0.5) and [0.5, 1.5), not rounded: they are float),
 * every storage tensor rounded to the storage on the host (clt_test_round) before it is
 * uploaded and before the reference (double) sees it. The reference is then exact for what
 * the device reads: the only error beyond test_norm.c's fp32 one is the rounding of each
 * stored output, once (an accumulated gradient included: its old value widened, the term
 * added in float, the sum rounded once). Normalisation amplifies the rounding of x by
 * gamma / std, which is why the comparison is on the rounded inputs and not on the
 * unrounded ones (that difference is the storage's, not the kernels').
 *
 * Every tensor sits LEAD = 3 elements into a buffer of its own (an odd offset in every
 * storage, so that 8-wide loads are not aligned to 8 elements), between guard values that
 * no kernel may change: a kernel that wrote floats into a 16-bit tensor would run into the
 * trailing guard, and one that read its 16-bit input as floats would fail every
 * comparison. Each buffer is written whole by the host (right under Oclgrind: see
 * norm_rig.h's struct pool). Shapes are odd: batch 1, features (s = 1), several batch-norm
 * chunks per channel with the last one partial, a plane above one chunk's 4096 positions so
 * that chunks are combined, layer norm rows of d = 1, d < 8 and d % 8 != 0 (a few small
 * shapes under Oclgrind); one shape of each has eps = 0.5.
 *
 * Tolerances (|got - want| <= atol + rtol |want|; u = the storage's unit roundoff: fp16
 * 2^-11 = 4.9e-4, bf16 2^-8 = 3.9e-3, fp32 2^-24), test_norm.c's fp32 ones plus u relative
 * for the final rounding:
 *   y (training and inference):                 atol 2e-5, rtol u + 2e-5
 *   dx (training and inference, acc or not):    atol 5e-5, rtol u + 1e-4
 *   dgamma, dbeta (sums of `terms` terms):      atol 2e-6 terms + 1e-5, rtol u + 1e-5
 *   mean, inv_std, rstd, running statistics:    atol 2e-5, rtol 2e-5 (fp32's: they stay
 *       float, and a reference value that the storage cannot hold within this tolerance is
 *       among them, checked, so that statistics stored in 16 bits would fail)
 * Measured with CLTRAIN_NORM16_MEASURE=1 (prints, per comparison, the largest
 * |got - want| / (|want| + 1e-3) and the largest fraction of its tolerance used), worst over
 * every shape, path, acc true and false on PoCL:
 *   fp16: y 4.84e-4, dx 4.87e-4, dgamma and dbeta 4.75e-4 (u = 4.88e-4), 0.94 of the tolerance;
 *   bf16: y 3.87e-3, dx 3.88e-3, dgamma and dbeta 3.66e-3 (u = 3.91e-3), 0.98 of it;
 *   statistics (mean, inv_std, rstd, running statistics): at most 0.01 of theirs in every
 *   storage, i.e. as in fp32.
 * The 16-bit figures are the final rounding (at most u |value|), not kernel error: fp32 uses
 * at most 0.05 of the same tolerances.
 * A last test reads bf16 data as fp16 and fp16 data as bf16 (the device told the other
 * storage) and checks that the comparisons above fail, so they can.
 *
 * Batch norm, the size checks and the wrong storage are tested in this file, which lists
 * every test; layer norm in test_norm16_layer.c; the tensors and comparisons they share in
 * norm16_rig.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "norm16_rig.h"
#include "ops/norm.h"
#include "ref_norm.h"

/* Per-test setup and teardown: the harness's, and the device put back to fp32 storage and
 * its own type even when a test fails half-way. */
static struct clt_device *test_dev;
static enum clt_device_type test_dev_type;

static int setup(void **state)
{
    test_dev = *state;
    test_dev_type = test_dev->info.type;
    return clt_test_setup(state);
}

static int teardown(void **state)
{
    clt__storage_set(test_dev, CLT_PRECISION_FP32);
    test_dev->info.type = test_dev_type;
    return clt_test_teardown(state);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* ==== Batch norm ======================================================================== */

struct bn_shape {
    int64_t n, c, s;
    float eps;
};

static const struct bn_shape bn_big[] = {
    {1, 3, 7, EPS},   {4, 5, 1, 0.5f},   {3, 7, 129, EPS},
    {130, 2, 3, EPS}, {2, 2, 4099, EPS}, {5, 17, 33, EPS},
};
static const struct bn_shape bn_small[] = {
    {1, 3, 7, EPS},
    {4, 5, 1, 0.5f},
    {5, 2, 100, EPS},
};

static size_t bn_shapes(const struct bn_shape **out)
{
    *out = clt_test_small() ? bn_small : bn_big;
    return clt_test_small() ? sizeof bn_small / sizeof bn_small[0]
                            : sizeof bn_big / sizeof bn_big[0];
}

/* x [n, c, s] uniform in [-1, 1) plus an offset per channel, rounded to the storage. */
static float *bn_input(const struct bn_shape *sh, uint64_t seed, enum clt_precision s)
{
    size_t count = (size_t)(sh->n * sh->c * sh->s);
    float *x = fill(count, seed, -1.0f, 1.0f);
    float *offset = fill((size_t)sh->c, seed + 1, -2.0f, 2.0f);
    for (size_t i = 0; i < count; i++)
        x[i] += offset[(i / (size_t)sh->s) % (size_t)sh->c];
    free(offset);
    clt_test_round(x, count, s);
    return x;
}

/* Two training steps with running statistics; inference forward with the device's running
 * statistics; the inference backward, overwriting and accumulating. */
static void bn_forward_case(struct clt_device *dev, const struct bn_shape *sh,
                            enum clt_precision st)
{
    int64_t n = sh->n, c = sh->c, s = sh->s;
    size_t count = (size_t)(n * c * s), cc = (size_t)c;
    size_t ws = clt__batchnorm_workspace_bytes(n, c, s) / 4;
    assert_true(ws > 0);
    float *x[2] = {bn_input(sh, 100 + count, st), bn_input(sh, 200 + count, st)};
    float *gamma = fill_st(cc, 3, 0.5f, 1.5f, st), *beta = fill_st(cc, 4, -0.5f, 0.5f, st);
    float *rm = fill(cc, 5, -0.5f, 0.5f), *rv = fill(cc, 6, 0.5f, 1.5f);
    float *dy = fill_st(count, 10, -1.0f, 1.0f, st), *prev = fill_st(count, 11, -1.0f, 1.0f, st);
    double *y = dalloc(count), *mean = dalloc(cc), *inv = dalloc(cc), *var = dalloc(cc);
    double *want_rm = dalloc(cc), *want_rv = dalloc(cc), *dx = dalloc(count);
    for (size_t i = 0; i < cc; i++) {
        want_rm[i] = rm[i];
        want_rv[i] = rv[i];
    }
    const enum clt_precision f32 = CLT_PRECISION_FP32;

    struct pool pool = {.dev = dev};
    struct tensor *vx = tensor(&pool, x[0], count, st), *vg = tensor(&pool, gamma, cc, st);
    struct tensor *vb = tensor(&pool, beta, cc, st), *vy = tensor(&pool, NULL, count, st);
    struct tensor *vrm = tensor(&pool, rm, cc, f32), *vrv = tensor(&pool, rv, cc, f32);
    struct tensor *vm = tensor(&pool, NULL, cc, f32), *vi = tensor(&pool, NULL, cc, f32);
    struct tensor *vw = tensor(&pool, NULL, ws, f32);
    struct tensor *vdy = tensor(&pool, dy, count, st), *vdx = tensor(&pool, NULL, count, st);

    char what[160];
    for (int step = 0; step < 2; step++) {
        if (step)
            put(vx, x[step]);
        assert_int_equal(clt__batchnorm_forward(dev, n, c, s, buf(vx), buf(vg), buf(vb), sh->eps,
                                                MOMENTUM, buf(vrm), buf(vrv), buf(vy), buf(vm),
                                                buf(vi), buf(vw)),
                         CLT_OK);
        ref_batchnorm_forward(n, c, s, x[step], gamma, beta, sh->eps, y, mean, inv, var);
        ref_batchnorm_running_update(c, MOMENTUM, mean, var, want_rm, want_rv);
        snprintf(what, sizeof what, "%s batchnorm [%lld, %lld, %lld] step %d", storage_name(st),
                 (long long)n, (long long)c, (long long)s, step + 1);
        expect(what, "y", vy, y, TOL_STAT, rtol_y(st));
        expect(what, "mean", vm, mean, TOL_STAT, TOL_STAT);
        expect(what, "inv_std", vi, inv, TOL_STAT, TOL_STAT);
        expect(what, "running_mean", vrm, want_rm, TOL_STAT, TOL_STAT);
        expect(what, "running_var", vrv, want_rv, TOL_STAT, TOL_STAT);
    }
    /* The running statistics and the saved ones must be float: values the storage cannot
     * hold (over all shapes; a single one suffices here in the larger shapes). */
    if (cc >= 3) {
        expect_not_storable(want_rm, cc, st);
        expect_not_storable(inv, cc, st);
    }

    /* Inference with the running statistics the device holds now. */
    float *drm = malloc(cc * 4), *drv = malloc(cc * 4);
    assert_true(drm && drv);
    get(vrm, drm);
    get(vrv, drv);
    assert_int_equal(clt__batchnorm_forward_inference(dev, n, c, s, buf(vx), buf(vg), buf(vb),
                                                      buf(vrm), buf(vrv), sh->eps, buf(vy)),
                     CLT_OK);
    ref_batchnorm_forward_inference(n, c, s, x[1], gamma, beta, drm, drv, sh->eps, y);
    snprintf(what, sizeof what, "%s batchnorm inference [%lld, %lld, %lld]", storage_name(st),
             (long long)n, (long long)c, (long long)s);
    expect(what, "y", vy, y, TOL_STAT, rtol_y(st));

    /* Inference backward: overwriting (dx NaN before), then accumulating onto prev. */
    ref_batchnorm_backward_inference(n, c, s, dy, gamma, drv, sh->eps, dx);
    snprintf(what, sizeof what, "%s batchnorm inference dx [%lld, %lld, %lld]", storage_name(st),
             (long long)n, (long long)c, (long long)s);
    assert_int_equal(clt__batchnorm_backward_inference(dev, n, c, s, buf(vdy), buf(vg), buf(vrv),
                                                       sh->eps, buf(vdx), false),
                     CLT_OK);
    expect(what, "dx", vdx, dx, TOL_DX_ATOL, rtol_dx(st));
    put(vdx, prev);
    assert_int_equal(clt__batchnorm_backward_inference(dev, n, c, s, buf(vdy), buf(vg), buf(vrv),
                                                       sh->eps, buf(vdx), true),
                     CLT_OK);
    for (size_t i = 0; i < count; i++)
        dx[i] += prev[i];
    snprintf(what, sizeof what, "%s batchnorm inference dx [%lld, %lld, %lld] acc",
             storage_name(st), (long long)n, (long long)c, (long long)s);
    expect(what, "dx", vdx, dx, TOL_DX_ATOL, rtol_dx(st));

    pool_free(&pool);
    free(drm);
    free(drv);
    free(x[0]);
    free(x[1]);
    free(gamma);
    free(beta);
    free(rm);
    free(rv);
    free(dy);
    free(prev);
    free(y);
    free(mean);
    free(inv);
    free(var);
    free(want_rm);
    free(want_rv);
    free(dx);
}

/* Training forward, then the backward: all three gradients overwriting (NaN before), then
 * accumulating onto earlier values. */
static void bn_backward_case(struct clt_device *dev, const struct bn_shape *sh,
                             enum clt_precision st)
{
    int64_t n = sh->n, c = sh->c, s = sh->s, m = n * s;
    size_t count = (size_t)(n * c * s), cc = (size_t)c;
    size_t ws = clt__batchnorm_workspace_bytes(n, c, s) / 4;
    float *x = bn_input(sh, 300 + count, st), *dy = fill_st(count, 301 + count, -1.0f, 1.0f, st);
    float *gamma = fill_st(cc, 3, 0.5f, 1.5f, st), *beta = fill_st(cc, 4, -0.5f, 0.5f, st);
    float *prev_dx = fill_st(count, 7, -1.0f, 1.0f, st), *prev_dg = fill_st(cc, 8, -1.0f, 1.0f, st);
    float *prev_db = fill_st(cc, 9, -1.0f, 1.0f, st);
    double *dx = dalloc(count), *dg = dalloc(cc), *db = dalloc(cc);
    ref_batchnorm_backward(n, c, s, x, dy, gamma, sh->eps, dx, dg, db);
    const enum clt_precision f32 = CLT_PRECISION_FP32;

    struct pool pool = {.dev = dev};
    struct tensor *vx = tensor(&pool, x, count, st), *vdy = tensor(&pool, dy, count, st);
    struct tensor *vg = tensor(&pool, gamma, cc, st), *vb = tensor(&pool, beta, cc, st);
    struct tensor *vy = tensor(&pool, NULL, count, st), *vm = tensor(&pool, NULL, cc, f32);
    struct tensor *vi = tensor(&pool, NULL, cc, f32), *vw = tensor(&pool, NULL, ws, f32);
    struct tensor *vdx = tensor(&pool, NULL, count, st), *vdg = tensor(&pool, NULL, cc, st);
    struct tensor *vdb = tensor(&pool, NULL, cc, st);
    assert_int_equal(clt__batchnorm_forward(dev, n, c, s, buf(vx), buf(vg), buf(vb), sh->eps,
                                            MOMENTUM, none, none, buf(vy), buf(vm), buf(vi),
                                            buf(vw)),
                     CLT_OK);

    char what[160];
    for (int acc = 0; acc < 2; acc++) {
        snprintf(what, sizeof what, "%s batchnorm backward [%lld, %lld, %lld]%s", storage_name(st),
                 (long long)n, (long long)c, (long long)s, acc ? " acc" : "");
        if (acc) {
            put(vdx, prev_dx);
            put(vdg, prev_dg);
            put(vdb, prev_db);
            for (size_t i = 0; i < count; i++)
                dx[i] += prev_dx[i];
            for (size_t i = 0; i < cc; i++) {
                dg[i] += prev_dg[i];
                db[i] += prev_db[i];
            }
        }
        assert_int_equal(clt__batchnorm_backward(dev, n, c, s, buf(vx), buf(vdy), buf(vg), buf(vm),
                                                 buf(vi), buf(vdx), buf(vdg), buf(vdb),
                                                 acc ? CLT__NORM_ACC_ALL : 0u, buf(vw)),
                         CLT_OK);
        expect(what, "dx", vdx, dx, TOL_DX_ATOL, rtol_dx(st));
        expect(what, "dgamma", vdg, dg, atol_sum(m), rtol_sum(st));
        expect(what, "dbeta", vdb, db, atol_sum(m), rtol_sum(st));
    }

    pool_free(&pool);
    free(x);
    free(dy);
    free(gamma);
    free(beta);
    free(prev_dx);
    free(prev_dg);
    free(prev_db);
    free(dx);
    free(dg);
    free(db);
}

static void batchnorm16_forward(void **state)
{
    struct clt_device *dev = *state;
    const struct bn_shape *shapes;
    size_t count = bn_shapes(&shapes);
    for (size_t k = 0; k < NSTORAGES; k++) {
        enum clt_precision was = clt__storage_set(dev, storages[k]);
        for (size_t i = 0; i < count; i++)
            bn_forward_case(dev, &shapes[i], storages[k]);
        clt__storage_set(dev, was);
    }
}

static void batchnorm16_backward(void **state)
{
    struct clt_device *dev = *state;
    const struct bn_shape *shapes;
    size_t count = bn_shapes(&shapes);
    for (size_t k = 0; k < NSTORAGES; k++) {
        enum clt_precision was = clt__storage_set(dev, storages[k]);
        for (size_t i = 0; i < count; i++)
            bn_backward_case(dev, &shapes[i], storages[k]);
        clt__storage_set(dev, was);
    }
}

/* The row kernels with up to 32 lanes per row, as on a GPU (clt__row_lanes). */
static void batchnorm16_gpu_lanes(void **state)
{
    struct clt_device *dev = *state;
    dev->info.type = CLT_DEVICE_GPU;
    const struct bn_shape sh = {3, 5, 37, EPS};
    for (size_t k = 0; k < 2; k++) {
        enum clt_precision was = clt__storage_set(dev, storages[k]);
        bn_forward_case(dev, &sh, storages[k]);
        bn_backward_case(dev, &sh, storages[k]);
        clt__storage_set(dev, was);
    }
}

/* ==== Sizes and a wrong storage ========================================================== */

/* The launchers check storage tensors with 2 bytes an element and float ones with 4. */
static void norm16_checks_sizes(void **state)
{
    struct clt_device *dev = *state;
    struct clt_test_log log = {.len = 0};
    struct clt_log keep = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &log, CLT_LOG_DEBUG};
    enum clt_precision was = clt__storage_set(dev, CLT_PRECISION_FP16);
    const enum clt_precision h = CLT_PRECISION_FP16, f32 = CLT_PRECISION_FP32;
    const int64_t rows = 40, d = 24;
    const size_t count = (size_t)(rows * d);
    float *x = fill_st(count, 1, -1.0f, 1.0f, h), *gamma = fill_st((size_t)d, 3, 0.5f, 1.5f, h);
    struct pool pool = {.dev = dev};
    struct tensor *vx = tensor(&pool, x, count, h), *vg = tensor(&pool, gamma, (size_t)d, h);
    struct tensor *vb = tensor(&pool, gamma, (size_t)d, h), *vy = tensor(&pool, NULL, count, h);
    struct tensor *vm = tensor(&pool, NULL, (size_t)rows, f32);
    struct tensor *vr = tensor(&pool, NULL, (size_t)rows, f32);
    /* rstd in a buffer of 16-bit elements: half the bytes it needs. */
    struct tensor *vr16 = tensor(&pool, NULL, (size_t)rows, h);
    assert_int_equal(clt__layernorm_forward(dev, rows, d, buf(vx), buf(vg), buf(vb), EPS, buf(vy),
                                            buf(vm), buf(vr)),
                     CLT_OK);
    assert_int_equal(clt__layernorm_forward(dev, rows, d, buf(vx), buf(vg), buf(vb), EPS, buf(vy),
                                            buf(vm), buf(vr16)),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(log.text, "rstd"));
    /* gamma placed so that its last element would lie one past the end of its buffer. */
    struct clt__buf short_g = buf(vg);
    short_g.offset += TAIL + 1;
    assert_int_equal(clt__layernorm_forward(dev, rows, d, buf(vx), short_g, buf(vb), EPS, buf(vy),
                                            buf(vm), buf(vr)),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(log.text, "gamma"));
    short_g.offset -= 1;
    assert_int_equal(clt__layernorm_forward(dev, rows, d, buf(vx), short_g, buf(vb), EPS, buf(vy),
                                            buf(vm), buf(vr)),
                     CLT_OK);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    clt__storage_set(dev, was);
    dev->log = keep;
    pool_free(&pool);
    free(x);
    free(gamma);
}

/* Data in one 16-bit storage read by kernels built for the other: the comparisons of this
 * file must fail (for y of both norms, and batch norm's dx), so that a kernel that ignored
 * the storage would be caught. */
static void norm16_wrong_storage_fails(void **state)
{
    struct clt_device *dev = *state;
    const enum clt_precision pair[2][2] = {{CLT_PRECISION_BF16, CLT_PRECISION_FP16},
                                           {CLT_PRECISION_FP16, CLT_PRECISION_BF16}};
    const enum clt_precision f32 = CLT_PRECISION_FP32;
    for (int k = 0; k < 2; k++) {
        enum clt_precision data = pair[k][0], built = pair[k][1];
        enum clt_precision was = clt__storage_set(dev, built);
        /* Layer norm [5, 19]. */
        const struct ln_shape ls = {5, 19, EPS};
        size_t count = 95, rr = 5, dd = 19;
        float *x = ln_input(&ls, 1, data), *gamma = fill_st(dd, 3, 0.5f, 1.5f, data);
        float *beta = fill_st(dd, 4, -0.5f, 0.5f, data), *got = malloc(count * sizeof *got);
        assert_non_null(got);
        double *y = dalloc(count), *mean = dalloc(rr), *rstd = dalloc(rr);
        ref_layernorm_forward(ls.rows, ls.d, x, gamma, beta, EPS, y, mean, rstd);
        struct pool pool = {.dev = dev};
        struct tensor *vx = tensor(&pool, x, count, data), *vg = tensor(&pool, gamma, dd, data);
        struct tensor *vb = tensor(&pool, beta, dd, data), *vy = tensor(&pool, NULL, count, data);
        struct tensor *vm = tensor(&pool, NULL, rr, f32), *vr = tensor(&pool, NULL, rr, f32);
        assert_int_equal(clt__layernorm_forward(dev, ls.rows, ls.d, buf(vx), buf(vg), buf(vb), EPS,
                                                buf(vy), buf(vm), buf(vr)),
                         CLT_OK);
        get(vy, got);
        assert_false(
            within("layernorm y, wrong storage", got, y, count, TOL_STAT, rtol_y(data), false));
        pool_free(&pool);
        free(x);
        free(gamma);
        free(beta);
        free(got);
        free(y);
        free(mean);
        free(rstd);

        /* Batch norm [3, 2, 9]: training forward, then dx. */
        const struct bn_shape bs = {3, 2, 9, EPS};
        size_t bc = 54, cc = 2, ws = clt__batchnorm_workspace_bytes(3, 2, 9) / 4;
        x = bn_input(&bs, 2, data);
        gamma = fill_st(cc, 3, 0.5f, 1.5f, data);
        beta = fill_st(cc, 4, -0.5f, 0.5f, data);
        float *dy = fill_st(bc, 5, -1.0f, 1.0f, data);
        got = malloc(bc * sizeof *got);
        assert_non_null(got);
        y = dalloc(bc);
        double *dx = dalloc(bc);
        ref_batchnorm_forward(3, 2, 9, x, gamma, beta, EPS, y, NULL, NULL, NULL);
        ref_batchnorm_backward(3, 2, 9, x, dy, gamma, EPS, dx, NULL, NULL);
        pool = (struct pool){.dev = dev};
        vx = tensor(&pool, x, bc, data);
        vg = tensor(&pool, gamma, cc, data);
        vb = tensor(&pool, beta, cc, data);
        vy = tensor(&pool, NULL, bc, data);
        struct tensor *vdy = tensor(&pool, dy, bc, data), *vdx = tensor(&pool, NULL, bc, data);
        vm = tensor(&pool, NULL, cc, f32);
        struct tensor *vi = tensor(&pool, NULL, cc, f32), *vw = tensor(&pool, NULL, ws, f32);
        assert_int_equal(clt__batchnorm_forward(dev, 3, 2, 9, buf(vx), buf(vg), buf(vb), EPS,
                                                MOMENTUM, none, none, buf(vy), buf(vm), buf(vi),
                                                buf(vw)),
                         CLT_OK);
        get(vy, got);
        assert_false(
            within("batchnorm y, wrong storage", got, y, bc, TOL_STAT, rtol_y(data), false));
        assert_int_equal(clt__batchnorm_backward(dev, 3, 2, 9, buf(vx), buf(vdy), buf(vg), buf(vm),
                                                 buf(vi), buf(vdx), none, none, 0u, buf(vw)),
                         CLT_OK);
        get(vdx, got);
        assert_false(
            within("batchnorm dx, wrong storage", got, dx, bc, TOL_DX_ATOL, rtol_dx(data), false));
        clt__storage_set(dev, was);
        pool_free(&pool);
        free(x);
        free(gamma);
        free(beta);
        free(dy);
        free(got);
        free(y);
        free(dx);
    }
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        TEST(batchnorm16_forward), TEST(batchnorm16_backward), TEST(batchnorm16_gpu_lanes),
        TEST(layernorm16),         TEST(norm16_checks_sizes),  TEST(norm16_wrong_storage_fails),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
