/*
 * test_norm.c: batch norm and layer norm (cl/norm.cl) against the C reference (ref_norm.c),
 * finite-difference checks of every backward, accumulation, skipped outputs and argument
 * checks.
 *
 * Data: x uniform in [-1, 1) plus a per-channel or per-row offset in [-2, 2), gamma in
 * [0.5, 1.5), beta in [-0.5, 0.5), dy in [-1, 1); momentum 0.1; eps 1e-5, or 0.5 in one shape
 * of each test so that a kernel that drops or misplaces eps fails. Shapes are odd,
 * include batch 1 with s > 1 and features (s = 1), several of the chunks one work-item of
 * batch norm summarizes per channel (max(1, 256 / s) rows, the last chunk partial), and a
 * plane above the 4096 positions of one chunk, so that chunks are combined (a few small
 * shapes under Oclgrind). Every tensor sits at a non-zero offset in its buffer, except
 * under Oclgrind (see struct pool).
 *
 * Tolerances (|got - want| <= atol + rtol * |want|, float kernels against double):
 *   y, mean, inv_std / rstd, running statistics: atol 2e-5, rtol 2e-5 (a few float
 *     roundings of values of magnitude <= 5);
 *   x = 1000 + U[-1, 1) (no cancellation): mean rtol 1e-7 plus half an ulp of 1000
 *     (3.1e-5), inv_std rtol 1e-5, y atol 1.5e-4 (the saved float mean is rounded to
 *     3.1e-5, times inv_std * gamma <= 2.6); E[x^2] - E[x]^2 in float would be off by
 *     far more than that (ulp(1e6) = 0.06 against a variance of 1/3);
 *   dx: atol 5e-5, rtol 1e-4;
 *   dgamma, dbeta (sums of m or rows terms of magnitude <= 3): atol 2e-6 * terms + 1e-5,
 *     rtol 1e-5;
 *   finite differences of the double reference forward, loss = sum(w * y) with w fixed,
 *   step 1e-3: atol 5e-5, rtol 1e-3 (central differences err by O(step^2) = 1e-6 times
 *   the third derivative, larger in the smallest batches; on PoCL every probe passes at a
 *   fifth of these).
 *
 * Batch norm's tests are in this file, which lists every test; layer norm's in
 * test_norm_layer.c; the helpers and tolerances they share in norm_rig.c and norm_rig.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "norm_rig.h"
#include "ops/norm.h"
#include "ref_norm.h"

/* ==== Batch norm: forward =============================================================== */

struct bn_shape {
    int64_t n, c, s;
    float eps;
};

/* One shape has a large eps, so that a kernel that drops or misplaces eps fails. */
static const struct bn_shape bn_big[] = {
    {1, 3, 7, EPS},    {4, 5, 1, EPS},   {1, 2, 300, EPS}, {3, 7, 129, EPS},  {2, 3, 601, EPS},
    {5, 17, 33, 0.5f}, {300, 3, 1, EPS}, {130, 2, 3, EPS}, {2, 2, 4099, EPS},
};
static const struct bn_shape bn_small[] = {
    {1, 3, 7, EPS},
    {4, 5, 1, 0.5f},
    {2, 3, 150, EPS},
    {5, 2, 100, EPS},
};

static size_t bn_shapes(const struct bn_shape **out)
{
    *out = clt_test_small() ? bn_small : bn_big;
    return clt_test_small() ? sizeof bn_small / sizeof bn_small[0]
                            : sizeof bn_big / sizeof bn_big[0];
}

/* x [n, c, s] uniform in [-1, 1) plus an offset per channel. */
static float *bn_input(const struct bn_shape *sh, uint64_t seed)
{
    size_t count = (size_t)(sh->n * sh->c * sh->s);
    float *x = fill(count, seed, -1.0f, 1.0f);
    float *offset = fill((size_t)sh->c, seed + 1, -2.0f, 2.0f);
    for (size_t i = 0; i < count; i++)
        x[i] += offset[(i / (size_t)sh->s) % (size_t)sh->c];
    free(offset);
    return x;
}

/* Two training steps with running statistics, then inference with them: y, mean and
 * inv_std of each step and the running statistics after each step against the reference. */
static void bn_forward_case(struct clt_device *dev, const struct bn_shape *sh)
{
    int64_t n = sh->n, c = sh->c, s = sh->s;
    size_t count = (size_t)(n * c * s), ws = clt__batchnorm_workspace_bytes(n, c, s) / 4;
    assert_true(ws > 0);
    float *x[2] = {bn_input(sh, 100 + count), bn_input(sh, 200 + count)};
    float *gamma = fill((size_t)c, 3, 0.5f, 1.5f), *beta = fill((size_t)c, 4, -0.5f, 0.5f);
    float *rm = fill((size_t)c, 5, -0.5f, 0.5f), *rv = fill((size_t)c, 6, 0.5f, 1.5f);
    double *y = dalloc(count), *mean = dalloc((size_t)c), *inv = dalloc((size_t)c);
    double *var = dalloc((size_t)c), *want_rm = dalloc((size_t)c), *want_rv = dalloc((size_t)c);
    for (int64_t i = 0; i < c; i++) {
        want_rm[i] = rm[i];
        want_rv[i] = rv[i];
    }

    struct pool pool = {.dev = dev};
    struct clt_view vx = tensor(&pool, NULL, count);
    struct clt_view vg = tensor(&pool, gamma, (size_t)c);
    struct clt_view vb = tensor(&pool, beta, (size_t)c);
    struct clt_view vrm = tensor(&pool, rm, (size_t)c);
    struct clt_view vrv = tensor(&pool, rv, (size_t)c);
    struct clt_view vy = tensor(&pool, NULL, count);
    struct clt_view vm = tensor(&pool, NULL, (size_t)c);
    struct clt_view vi = tensor(&pool, NULL, (size_t)c);
    struct clt_view vw = tensor(&pool, NULL, ws);

    char what[128];
    for (int step = 0; step < 2; step++) {
        assert_int_equal(clt_view_write(&vx, x[step], count * 4, NULL), CLT_OK);
        assert_int_equal(clt__batchnorm_forward(dev, n, c, s, buf(&vx), buf(&vg), buf(&vb), sh->eps,
                                                MOMENTUM, buf(&vrm), buf(&vrv), buf(&vy), buf(&vm),
                                                buf(&vi), buf(&vw)),
                         CLT_OK);
        ref_batchnorm_forward(n, c, s, x[step], gamma, beta, sh->eps, y, mean, inv, var);
        ref_batchnorm_running_update(c, MOMENTUM, mean, var, want_rm, want_rv);
        snprintf(what, sizeof what, "batchnorm [%lld, %lld, %lld] step %d", (long long)n,
                 (long long)c, (long long)s, step + 1);
        expect(what, &vy, y, count, TOL_Y, TOL_Y);
        expect(what, &vm, mean, (size_t)c, TOL_Y, TOL_Y);
        expect(what, &vi, inv, (size_t)c, TOL_Y, TOL_Y);
        expect(what, &vrm, want_rm, (size_t)c, TOL_Y, TOL_Y);
        expect(what, &vrv, want_rv, (size_t)c, TOL_Y, TOL_Y);
    }

    /* Inference with the running statistics the device holds now. */
    float *drm = malloc((size_t)c * 4), *drv = malloc((size_t)c * 4);
    assert_true(drm && drv);
    clt_test_download(&vrm, drm, (size_t)c);
    clt_test_download(&vrv, drv, (size_t)c);
    assert_int_equal(clt__batchnorm_forward_inference(dev, n, c, s, buf(&vx), buf(&vg), buf(&vb),
                                                      buf(&vrm), buf(&vrv), sh->eps, buf(&vy)),
                     CLT_OK);
    ref_batchnorm_forward_inference(n, c, s, x[1], gamma, beta, drm, drv, sh->eps, y);
    snprintf(what, sizeof what, "batchnorm inference [%lld, %lld, %lld]", (long long)n,
             (long long)c, (long long)s);
    expect(what, &vy, y, count, TOL_Y, TOL_Y);

    pool_free(&pool);
    free(drm);
    free(drv);
    free(x[0]);
    free(x[1]);
    free(gamma);
    free(beta);
    free(rm);
    free(rv);
    free(y);
    free(mean);
    free(inv);
    free(var);
    free(want_rm);
    free(want_rv);
}

static void batchnorm_forward_matches_reference(void **state)
{
    const struct bn_shape *shapes;
    size_t count = bn_shapes(&shapes);
    for (size_t i = 0; i < count; i++)
        bn_forward_case(*state, &shapes[i]);
}

/* x = 1000 + U[-1, 1): a variance of 1/3 under a mean of 1000. */
static void batchnorm_large_offset(void **state)
{
    struct clt_device *dev = *state;
    struct bn_shape sh =
        clt_test_small() ? (struct bn_shape){3, 2, 111, EPS} : (struct bn_shape){7, 3, 333, EPS};
    int64_t n = sh.n, c = sh.c, s = sh.s;
    size_t count = (size_t)(n * c * s), ws = clt__batchnorm_workspace_bytes(n, c, s) / 4;
    float *x = fill(count, 77, -1.0f, 1.0f);
    for (size_t i = 0; i < count; i++)
        x[i] += 1000.0f;
    float *gamma = fill((size_t)c, 3, 0.5f, 1.5f), *beta = fill((size_t)c, 4, -0.5f, 0.5f);
    double *y = dalloc(count), *mean = dalloc((size_t)c), *inv = dalloc((size_t)c);

    struct pool pool = {.dev = dev};
    struct clt_view vx = tensor(&pool, x, count);
    struct clt_view vg = tensor(&pool, gamma, (size_t)c);
    struct clt_view vb = tensor(&pool, beta, (size_t)c);
    struct clt_view vy = tensor(&pool, NULL, count);
    struct clt_view vm = tensor(&pool, NULL, (size_t)c);
    struct clt_view vi = tensor(&pool, NULL, (size_t)c);
    struct clt_view vw = tensor(&pool, NULL, ws);
    assert_int_equal(clt__batchnorm_forward(dev, n, c, s, buf(&vx), buf(&vg), buf(&vb), EPS,
                                            MOMENTUM, none, none, buf(&vy), buf(&vm), buf(&vi),
                                            buf(&vw)),
                     CLT_OK);
    ref_batchnorm_forward(n, c, s, x, gamma, beta, EPS, y, mean, inv, NULL);
    expect("batchnorm offset 1000: mean", &vm, mean, (size_t)c, 3.1e-5, 1e-7);
    expect("batchnorm offset 1000: inv_std", &vi, inv, (size_t)c, 0.0, 1e-5);
    expect("batchnorm offset 1000: y", &vy, y, count, 1.5e-4, 0.0);
    pool_free(&pool);
    free(x);
    free(gamma);
    free(beta);
    free(y);
    free(mean);
    free(inv);
}

/* ==== Batch norm: backward ============================================================== */

/* Device buffers of one backward case. */
struct bn_bwd {
    struct pool pool;
    struct clt_view x, dy, gamma, beta, y, mean, inv, ws, dx, dgamma, dbeta;
};

/* Uploads x, dy, gamma, beta and runs the training forward (no running statistics). */
static void bn_bwd_setup(struct clt_device *dev, struct bn_bwd *b, const struct bn_shape *sh,
                         const float *x, const float *dy, const float *gamma, const float *beta)
{
    int64_t n = sh->n, c = sh->c, s = sh->s;
    size_t count = (size_t)(n * c * s), ws = clt__batchnorm_workspace_bytes(n, c, s) / 4;
    b->pool = (struct pool){.dev = dev};
    b->x = tensor(&b->pool, x, count);
    b->dy = tensor(&b->pool, dy, count);
    b->gamma = tensor(&b->pool, gamma, (size_t)c);
    b->beta = tensor(&b->pool, beta, (size_t)c);
    b->y = tensor(&b->pool, NULL, count);
    b->mean = tensor(&b->pool, NULL, (size_t)c);
    b->inv = tensor(&b->pool, NULL, (size_t)c);
    b->ws = tensor(&b->pool, NULL, ws);
    b->dx = tensor(&b->pool, NULL, count);
    b->dgamma = tensor(&b->pool, NULL, (size_t)c);
    b->dbeta = tensor(&b->pool, NULL, (size_t)c);
    assert_int_equal(clt__batchnorm_forward(dev, n, c, s, buf(&b->x), buf(&b->gamma), buf(&b->beta),
                                            sh->eps, MOMENTUM, none, none, buf(&b->y),
                                            buf(&b->mean), buf(&b->inv), buf(&b->ws)),
                     CLT_OK);
}

static enum clt_status bn_bwd_run(struct clt_device *dev, struct bn_bwd *b,
                                  const struct bn_shape *sh, bool want_dx, bool want_dgamma,
                                  bool want_dbeta, bool accumulate)
{
    return clt__batchnorm_backward(
        dev, sh->n, sh->c, sh->s, buf(&b->x), buf(&b->dy), buf(&b->gamma), buf(&b->mean),
        buf(&b->inv), want_dx ? buf(&b->dx) : none, want_dgamma ? buf(&b->dgamma) : none,
        want_dbeta ? buf(&b->dbeta) : none, accumulate ? CLT__NORM_ACC_ALL : 0u, buf(&b->ws));
}

/* Backward against the reference: overwriting (outputs NaN before), accumulating onto
 * known values, and each output alone (the others skipped). */
static void bn_backward_case(struct clt_device *dev, const struct bn_shape *sh)
{
    int64_t n = sh->n, c = sh->c, s = sh->s, m = n * s;
    size_t count = (size_t)(n * c * s), cc = (size_t)c;
    float *x = bn_input(sh, 300 + count), *dy = fill(count, 301 + count, -1.0f, 1.0f);
    float *gamma = fill(cc, 3, 0.5f, 1.5f), *beta = fill(cc, 4, -0.5f, 0.5f);
    float *prev_dx = fill(count, 7, -1.0f, 1.0f), *prev_dg = fill(cc, 8, -1.0f, 1.0f);
    float *prev_db = fill(cc, 9, -1.0f, 1.0f);
    double *dx = dalloc(count), *dg = dalloc(cc), *db = dalloc(cc);
    double *acc_dx = dalloc(count), *acc_dg = dalloc(cc), *acc_db = dalloc(cc);
    ref_batchnorm_backward(n, c, s, x, dy, gamma, sh->eps, dx, dg, db);
    for (size_t i = 0; i < count; i++)
        acc_dx[i] = dx[i] + prev_dx[i];
    for (size_t i = 0; i < cc; i++) {
        acc_dg[i] = dg[i] + prev_dg[i];
        acc_db[i] = db[i] + prev_db[i];
    }

    struct bn_bwd b;
    bn_bwd_setup(dev, &b, sh, x, dy, gamma, beta);
    char what[128];
    snprintf(what, sizeof what, "batchnorm backward [%lld, %lld, %lld]", (long long)n, (long long)c,
             (long long)s);

    set_all(&b.dx, count, NAN);
    set_all(&b.dgamma, cc, NAN);
    set_all(&b.dbeta, cc, NAN);
    assert_int_equal(bn_bwd_run(dev, &b, sh, true, true, true, false), CLT_OK);
    expect(what, &b.dx, dx, count, TOL_DX_ATOL, TOL_DX_RTOL);
    expect(what, &b.dgamma, dg, cc, sum_atol(m), 1e-5);
    expect(what, &b.dbeta, db, cc, sum_atol(m), 1e-5);

    assert_int_equal(clt_view_write(&b.dx, prev_dx, count * 4, NULL), CLT_OK);
    assert_int_equal(clt_view_write(&b.dgamma, prev_dg, cc * 4, NULL), CLT_OK);
    assert_int_equal(clt_view_write(&b.dbeta, prev_db, cc * 4, NULL), CLT_OK);
    assert_int_equal(bn_bwd_run(dev, &b, sh, true, true, true, true), CLT_OK);
    expect("accumulated dx", &b.dx, acc_dx, count, TOL_DX_ATOL, TOL_DX_RTOL);
    expect("accumulated dgamma", &b.dgamma, acc_dg, cc, sum_atol(m), 1e-5);
    expect("accumulated dbeta", &b.dbeta, acc_db, cc, sum_atol(m), 1e-5);

    /* One output at a time; the skipped ones keep the NaN they were given. */
    for (int only = 0; only < 3; only++) {
        set_all(&b.dx, count, NAN);
        set_all(&b.dgamma, cc, NAN);
        set_all(&b.dbeta, cc, NAN);
        assert_int_equal(bn_bwd_run(dev, &b, sh, only == 0, only == 1, only == 2, false), CLT_OK);
        if (only == 0)
            expect("dx alone", &b.dx, dx, count, TOL_DX_ATOL, TOL_DX_RTOL);
        else
            expect_nan(&b.dx, count);
        if (only == 1)
            expect("dgamma alone", &b.dgamma, dg, cc, sum_atol(m), 1e-5);
        else
            expect_nan(&b.dgamma, cc);
        if (only == 2)
            expect("dbeta alone", &b.dbeta, db, cc, sum_atol(m), 1e-5);
        else
            expect_nan(&b.dbeta, cc);
    }
    /* Nothing asked for: nothing to do, the workspace is not even needed. */
    assert_int_equal(clt__batchnorm_backward(dev, n, c, s, buf(&b.x), buf(&b.dy), buf(&b.gamma),
                                             buf(&b.mean), buf(&b.inv), none, none, none, false,
                                             none),
                     CLT_OK);

    pool_free(&b.pool);
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
    free(acc_dx);
    free(acc_dg);
    free(acc_db);
}

static void batchnorm_backward_matches_reference(void **state)
{
    const struct bn_shape *shapes;
    size_t count = bn_shapes(&shapes);
    for (size_t i = 0; i < count; i++)
        bn_backward_case(*state, &shapes[i]);
}

static void batchnorm_inference_backward(void **state);

/* The row kernels with up to 32 lanes per row, as on a GPU (clt__row_lanes): the device is
 * told it is a GPU for the time of the test. */
static void batchnorm_gpu_lanes(void **state)
{
    struct clt_device *dev = *state;
    const enum clt_device_type saved = dev->info.type;
    dev->info.type = CLT_DEVICE_GPU;
    assert_int_equal(clt__row_lanes(dev, 13), 16);
    batchnorm_forward_matches_reference(state);
    batchnorm_backward_matches_reference(state);
    batchnorm_inference_backward(state);
    dev->info.type = saved;
}

/* The loss sum(w * y) of the reference training forward, for finite differences. */
struct bn_loss {
    struct bn_shape sh;
    const float *x, *gamma, *beta, *w;
    double *y;
};

static double bn_loss_fn(void *ctx, const float *perturbed, size_t n)
{
    (void)perturbed; /* it is one of the ctx's arrays */
    (void)n;
    struct bn_loss *l = ctx;
    size_t count = (size_t)(l->sh.n * l->sh.c * l->sh.s);
    ref_batchnorm_forward(l->sh.n, l->sh.c, l->sh.s, l->x, l->gamma, l->beta, l->sh.eps, l->y, NULL,
                          NULL, NULL);
    double sum = 0.0;
    for (size_t i = 0; i < count; i++)
        sum += l->w[i] * l->y[i];
    return sum;
}

static void bn_gradcheck_case(struct clt_device *dev, const struct bn_shape *sh)
{
    int64_t c = sh->c;
    size_t count = (size_t)(sh->n * sh->c * sh->s), cc = (size_t)c;
    float *x = bn_input(sh, 500 + count), *w = fill(count, 501, -1.0f, 1.0f);
    float *gamma = fill(cc, 3, 0.5f, 1.5f), *beta = fill(cc, 4, -0.5f, 0.5f);
    float *dx = malloc(count * 4), *dg = malloc(cc * 4), *db = malloc(cc * 4);
    assert_true(dx && dg && db);
    struct bn_bwd b;
    bn_bwd_setup(dev, &b, sh, x, w, gamma, beta);
    assert_int_equal(bn_bwd_run(dev, &b, sh, true, true, true, false), CLT_OK);
    clt_test_download(&b.dx, dx, count);
    clt_test_download(&b.dgamma, dg, cc);
    clt_test_download(&b.dbeta, db, cc);

    struct bn_loss l = {*sh, x, gamma, beta, w, dalloc(count)};
    char what[128];
    snprintf(what, sizeof what, "batchnorm [%lld, %lld, %lld] dx", (long long)sh->n,
             (long long)sh->c, (long long)sh->s);
    clt_test_gradcheck(what, bn_loss_fn, &l, x, count, dx, FD_SAMPLES, FD_STEP, FD_ATOL, FD_RTOL);
    clt_test_gradcheck("batchnorm dgamma", bn_loss_fn, &l, gamma, cc, dg, FD_SAMPLES, FD_STEP,
                       FD_ATOL, FD_RTOL);
    clt_test_gradcheck("batchnorm dbeta", bn_loss_fn, &l, beta, cc, db, FD_SAMPLES, FD_STEP,
                       FD_ATOL, FD_RTOL);
    pool_free(&b.pool);
    free(l.y);
    free(x);
    free(w);
    free(gamma);
    free(beta);
    free(dx);
    free(dg);
    free(db);
}

/* A large eps, which test_ops.c (eps 1e-5) barely exercises; its plain finite-difference
 * checks cover the usual one. */
static void batchnorm_gradcheck(void **state)
{
    const struct bn_shape shapes[] = {{4, 3, 1, 0.5f}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        bn_gradcheck_case(*state, &shapes[i]);
}

/* Inference-mode backward: against the reference, accumulating, and by finite differences
 * of the inference forward (linear in x). */
struct bn_inf_loss {
    struct bn_shape sh;
    const float *x, *gamma, *beta, *rm, *rv, *w;
    double *y;
};

static double bn_inf_loss_fn(void *ctx, const float *perturbed, size_t n)
{
    (void)perturbed;
    (void)n;
    struct bn_inf_loss *l = ctx;
    size_t count = (size_t)(l->sh.n * l->sh.c * l->sh.s);
    ref_batchnorm_forward_inference(l->sh.n, l->sh.c, l->sh.s, l->x, l->gamma, l->beta, l->rm,
                                    l->rv, l->sh.eps, l->y);
    double sum = 0.0;
    for (size_t i = 0; i < count; i++)
        sum += l->w[i] * l->y[i];
    return sum;
}

static void batchnorm_inference_backward(void **state)
{
    struct clt_device *dev = *state;
    struct bn_shape sh = {2, 5, 13, 0.5f}; /* a large eps: leaving it out fails */
    int64_t n = sh.n, c = sh.c, s = sh.s;
    size_t count = (size_t)(n * c * s), cc = (size_t)c;
    float *x = bn_input(&sh, 600), *dy = fill(count, 601, -1.0f, 1.0f);
    float *gamma = fill(cc, 3, 0.5f, 1.5f), *beta = fill(cc, 4, -0.5f, 0.5f);
    float *rm = fill(cc, 5, -0.5f, 0.5f), *rv = fill(cc, 6, 0.5f, 1.5f);
    float *prev = fill(count, 602, -1.0f, 1.0f), *got = malloc(count * 4);
    double *dx = dalloc(count), *acc = dalloc(count);
    assert_non_null(got);
    ref_batchnorm_backward_inference(n, c, s, dy, gamma, rv, sh.eps, dx);
    for (size_t i = 0; i < count; i++)
        acc[i] = dx[i] + prev[i];

    struct pool pool = {.dev = dev};
    struct clt_view vdy = tensor(&pool, dy, count);
    struct clt_view vg = tensor(&pool, gamma, cc);
    struct clt_view vrv = tensor(&pool, rv, cc);
    struct clt_view vdx = tensor(&pool, NULL, count);
    set_all(&vdx, count, NAN);
    assert_int_equal(clt__batchnorm_backward_inference(dev, n, c, s, buf(&vdy), buf(&vg), buf(&vrv),
                                                       sh.eps, buf(&vdx), false),
                     CLT_OK);
    expect("batchnorm inference dx", &vdx, dx, count, TOL_DX_ATOL, TOL_DX_RTOL);
    clt_test_download(&vdx, got, count);
    struct bn_inf_loss l = {sh, x, gamma, beta, rm, rv, dy, dalloc(count)};
    clt_test_gradcheck("batchnorm inference dx", bn_inf_loss_fn, &l, x, count, got, FD_SAMPLES,
                       FD_STEP, FD_ATOL, FD_RTOL);
    assert_int_equal(clt_view_write(&vdx, prev, count * 4, NULL), CLT_OK);
    assert_int_equal(clt__batchnorm_backward_inference(dev, n, c, s, buf(&vdy), buf(&vg), buf(&vrv),
                                                       sh.eps, buf(&vdx), true),
                     CLT_OK);
    expect("batchnorm inference dx accumulated", &vdx, acc, count, TOL_DX_ATOL, TOL_DX_RTOL);
    pool_free(&pool);
    free(l.y);
    free(x);
    free(dy);
    free(gamma);
    free(beta);
    free(rm);
    free(rv);
    free(prev);
    free(got);
    free(dx);
    free(acc);
}

/* ==== Batch norm: arguments ============================================================= */

static void batchnorm_checks_arguments(void **state)
{
    struct clt_device *dev = *state;
    struct clt_test_log log = {.len = 0};
    struct clt_log keep = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &log, CLT_LOG_DEBUG};
    int64_t n = 2, c = 3, s = 4;
    size_t count = (size_t)(n * c * s), ws = clt__batchnorm_workspace_bytes(n, c, s) / 4;
    struct pool pool = {.dev = dev};
    float *x = fill(count, 1, -1.0f, 1.0f), *ones = fill((size_t)c, 2, 1.0f, 1.0f);
    struct clt_view vx = tensor(&pool, x, count);
    struct clt_view vg = tensor(&pool, ones, (size_t)c);
    struct clt_view vb = tensor(&pool, ones, (size_t)c);
    struct clt_view vrm = tensor(&pool, ones, (size_t)c);
    struct clt_view vrv = tensor(&pool, ones, (size_t)c);
    struct clt_view vy = tensor(&pool, NULL, count);
    struct clt_view vm = tensor(&pool, NULL, (size_t)c);
    struct clt_view vi = tensor(&pool, NULL, (size_t)c);
    struct clt_view vw = tensor(&pool, NULL, ws);
    struct clt__buf bx = buf(&vx), bg = buf(&vg), bb = buf(&vb), brm = buf(&vrm);
    struct clt__buf brv = buf(&vrv), by = buf(&vy), bm = buf(&vm), bi = buf(&vi), bw = buf(&vw);
    const enum clt_status bad = CLT_ERR_INVALID_ARGUMENT;

    assert_int_equal(
        clt__batchnorm_forward(dev, n, c, s, bx, bg, bb, EPS, MOMENTUM, brm, brv, by, bm, bi, bw),
        CLT_OK);
    assert_int_equal(
        clt__batchnorm_forward(dev, n, c, s, none, bg, bb, EPS, MOMENTUM, brm, brv, by, bm, bi, bw),
        bad);
    assert_int_equal(
        clt__batchnorm_forward(dev, -1, c, s, bx, bg, bb, EPS, MOMENTUM, brm, brv, by, bm, bi, bw),
        bad);
    assert_int_equal(clt__batchnorm_forward(dev, n, c, (int64_t)1 << 40, bx, bg, bb, EPS, MOMENTUM,
                                            brm, brv, by, bm, bi, bw),
                     bad);
    /* Launchers see buffers, not views: x placed so that its last float would lie past the
     * end of the arena's buffer. */
    struct clt__buf short_x = {bx.mem, (size_t)(clt_arena_size(vx.arena) / 4) - count + 1};
    assert_int_equal(clt__batchnorm_forward(dev, n, c, s, short_x, bg, bb, EPS, MOMENTUM, brm, brv,
                                            by, bm, bi, bw),
                     bad);
    /* A workspace one float short of the end of its buffer, and none at all. */
    struct clt__buf short_ws = {bw.mem, (size_t)(clt_arena_size(vw.arena) / 4) - ws + 1};
    assert_int_equal(clt__batchnorm_forward(dev, n, c, s, bx, bg, bb, EPS, MOMENTUM, brm, brv, by,
                                            bm, bi, short_ws),
                     bad);
    assert_non_null(strstr(log.text, "workspace"));
    assert_int_equal(
        clt__batchnorm_forward(dev, n, c, s, bx, bg, bb, EPS, MOMENTUM, brm, brv, by, bm, bi, none),
        bad);
    assert_int_equal(
        clt__batchnorm_forward(dev, n, c, s, bx, bg, bb, -1.0f, MOMENTUM, brm, brv, by, bm, bi, bw),
        bad);
    assert_int_equal(
        clt__batchnorm_forward(dev, n, c, s, bx, bg, bb, EPS, 1.5f, brm, brv, by, bm, bi, bw), bad);
    assert_int_equal(
        clt__batchnorm_forward(dev, n, c, s, bx, bg, bb, EPS, MOMENTUM, brm, none, by, bm, bi, bw),
        bad);
    /* One value per channel: refused with running statistics, y = beta without. */
    assert_int_equal(
        clt__batchnorm_forward(dev, 1, c, 1, bx, bg, bb, EPS, MOMENTUM, brm, brv, by, bm, bi, bw),
        bad);
    assert_non_null(strstr(log.text, "unbiased"));
    assert_int_equal(
        clt__batchnorm_forward(dev, 1, c, 1, bx, bg, bb, EPS, MOMENTUM, none, none, by, bm, bi, bw),
        CLT_OK);
    float got[3];
    double want[3] = {1.0, 1.0, 1.0};
    clt_test_download(&vy, got, 3);
    clt_test_assert_close("batchnorm m == 1: y = beta", got, want, 3, 0.0, 0.0);
    assert_int_equal(
        clt__batchnorm_backward(dev, n, c, s, bx, bx, bg, bm, bi, by, none, none, false, none),
        bad);
    assert_int_equal(
        clt__batchnorm_backward(dev, n, c, s, bx, none, bg, bm, bi, by, none, none, false, bw),
        bad);
    assert_int_equal(clt__batchnorm_forward_inference(dev, n, c, s, bx, bg, bb, none, brv, EPS, by),
                     bad);
    struct clt__buf short_dx = {by.mem, (size_t)(clt_arena_size(vy.arena) / 4) - count + 1};
    assert_int_equal(
        clt__batchnorm_backward_inference(dev, n, c, s, bx, bg, brv, EPS, short_dx, false), bad);
    assert_int_equal(
        clt__batchnorm_forward(NULL, n, c, s, bx, bg, bb, EPS, MOMENTUM, brm, brv, by, bm, bi, bw),
        bad);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    dev->log = keep;
    pool_free(&pool);
    free(x);
    free(ones);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(batchnorm_forward_matches_reference),
        CLT_DEVICE_TEST(batchnorm_large_offset),
        CLT_DEVICE_TEST(batchnorm_backward_matches_reference),
        CLT_DEVICE_TEST(batchnorm_gradcheck),
        CLT_DEVICE_TEST(batchnorm_inference_backward),
        CLT_DEVICE_TEST(batchnorm_gpu_lanes),
        CLT_DEVICE_TEST(batchnorm_checks_arguments),
        CLT_DEVICE_TEST(layernorm_matches_reference),
        CLT_DEVICE_TEST(layernorm_large_offset),
        CLT_DEVICE_TEST(layernorm_gradcheck),
        CLT_DEVICE_TEST(layernorm_checks_arguments),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
