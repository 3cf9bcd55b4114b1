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
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/norm.h"
#include "ops/pool.h"
#include "ref_norm.h"

#define EPS 1e-5f
#define MOMENTUM 0.1f

#define TOL_Y 2e-5
#define TOL_DX_ATOL 5e-5
#define TOL_DX_RTOL 1e-4
#define FD_STEP 1e-3
#define FD_ATOL 5e-5
#define FD_RTOL 1e-3
#define FD_SAMPLES 24

/* ==== Helpers =========================================================================== */

static float *fill(size_t n, uint64_t seed, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    clt_test_fill(p, n, seed, lo, hi);
    return p;
}

static double *dalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

/* The device tensors of one case, each in a buffer (an arena) of its own that it fills
 * exactly under Oclgrind, always written whole, freed together.
 *
 * Why: Oclgrind 21.10's --uninitialized check loses track of host writes. Each host write
 * replaces the buffer's record by one covering only that write's length from the buffer's
 * start (so earlier writes into the same buffer, and writes at a non-zero offset, read as
 * uninitialized), and a released buffer's record outlives it and is inherited by the next
 * buffer that gets its id (so kernel results beyond the old record read as uninitialized).
 * A buffer written whole by the host as soon as it exists is tracked correctly. So every
 * tensor is uploaded at once, with NaN when it has no data yet: a kernel that reads an output
 * before writing it still shows, by a NaN in its results. Outside Oclgrind a small unused
 * view comes first, so that the launchers see non-zero offsets. (test/oclgrind.sh may run
 * without --uninitialized; the test is clean with it as well.) */
struct pool {
    struct clt_device *dev;
    struct clt_arena *arenas[16];
    size_t count;
};

/* A tensor of `count` floats holding host[0..count), or NaN when host is NULL. */
static struct clt_view tensor(struct pool *p, const float *host, size_t count)
{
    assert_true(p->count < sizeof p->arenas / sizeof p->arenas[0]);
    bool pad = !clt_test_small();
    uint64_t align = p->dev->info.mem_base_align_bytes ? p->dev->info.mem_base_align_bytes : 256;
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(p->dev, count * 4 + (pad ? align + 64 : 0), &arena), CLT_OK);
    p->arenas[p->count++] = arena;
    if (pad)
        clt_test_upload(arena, NULL, 3);
    float *nan = NULL;
    if (!host) {
        nan = malloc(count * sizeof *nan);
        assert_non_null(nan);
        for (size_t i = 0; i < count; i++)
            nan[i] = NAN;
    }
    struct clt_view v = clt_test_upload(arena, host ? host : nan, count);
    free(nan);
    return v;
}

static void pool_free(struct pool *p)
{
    for (size_t i = 0; i < p->count; i++)
        clt_arena_free(p->arenas[i]);
    p->count = 0;
}

static struct clt__buf buf(const struct clt_view *v)
{
    return clt__view_buf(v);
}

static const struct clt__buf none = {NULL, 0};

/* Downloads a view and compares it with a reference. */
static void expect(const char *what, const struct clt_view *v, const double *want, size_t n,
                   double atol, double rtol)
{
    float *got = malloc((n ? n : 1) * sizeof *got);
    assert_non_null(got);
    clt_test_download(v, got, n);
    clt_test_assert_close(what, got, want, n, atol, rtol);
    free(got);
}

/* Asserts that a skipped output still holds the NaN it was given. */
static void expect_nan(const struct clt_view *v, size_t n)
{
    float *got = malloc((n ? n : 1) * sizeof *got);
    assert_non_null(got);
    clt_test_download(v, got, n);
    for (size_t i = 0; i < n; i++)
        assert_true(isnan(got[i]));
    free(got);
}

/* Tolerance of a sum of `terms` terms of magnitude <= 3. */
static double sum_atol(int64_t terms)
{
    return 2e-6 * (double)terms + 1e-5;
}

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

/* Fills a view with `value` (NaN: shows that overwriting outputs are not read). */
static void set_all(const struct clt_view *v, size_t n, float value)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = value;
    assert_int_equal(clt_view_write(v, p, n * sizeof *p, NULL), CLT_OK);
    free(p);
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

/* ==== Layer norm ======================================================================== */

struct ln_shape {
    int64_t rows, d;
    float eps;
};

static const struct ln_shape ln_big[] = {
    {1, 7, EPS},    {1, 1, EPS},    {5, 33, EPS}, {70, 19, 0.5f},
    {33, 257, EPS}, {3, 1000, EPS}, {97, 3, EPS},
};
static const struct ln_shape ln_small[] = {
    {1, 7, EPS},
    {37, 19, 0.5f},
    {5, 65, EPS},
};

static size_t ln_shapes(const struct ln_shape **out)
{
    *out = clt_test_small() ? ln_small : ln_big;
    return clt_test_small() ? sizeof ln_small / sizeof ln_small[0]
                            : sizeof ln_big / sizeof ln_big[0];
}

/* x [rows, d] uniform in [-1, 1) plus an offset per row. */
static float *ln_input(const struct ln_shape *sh, uint64_t seed)
{
    size_t count = (size_t)(sh->rows * sh->d);
    float *x = fill(count, seed, -1.0f, 1.0f);
    float *offset = fill((size_t)sh->rows, seed + 1, -2.0f, 2.0f);
    for (size_t i = 0; i < count; i++)
        x[i] += offset[i / (size_t)sh->d];
    free(offset);
    return x;
}

/* Device buffers of one layer-norm case. */
struct ln_dev {
    struct pool pool;
    struct clt_view x, dy, gamma, beta, y, mean, rstd, ws, dx, dgamma, dbeta;
};

/* Uploads x, dy, gamma, beta and runs the forward. */
static void ln_setup(struct clt_device *dev, struct ln_dev *b, const struct ln_shape *sh,
                     const float *x, const float *dy, const float *gamma, const float *beta)
{
    size_t count = (size_t)(sh->rows * sh->d), r = (size_t)sh->rows, d = (size_t)sh->d;
    size_t ws = clt__layernorm_workspace_bytes(sh->rows, sh->d) / 4;
    assert_true(ws > 0);
    b->pool = (struct pool){.dev = dev};
    b->x = tensor(&b->pool, x, count);
    b->dy = tensor(&b->pool, dy, count);
    b->gamma = tensor(&b->pool, gamma, d);
    b->beta = tensor(&b->pool, beta, d);
    b->y = tensor(&b->pool, NULL, count);
    b->mean = tensor(&b->pool, NULL, r);
    b->rstd = tensor(&b->pool, NULL, r);
    b->ws = tensor(&b->pool, NULL, ws);
    b->dx = tensor(&b->pool, NULL, count);
    b->dgamma = tensor(&b->pool, NULL, d);
    b->dbeta = tensor(&b->pool, NULL, d);
    assert_int_equal(clt__layernorm_forward(dev, sh->rows, sh->d, buf(&b->x), buf(&b->gamma),
                                            buf(&b->beta), sh->eps, buf(&b->y), buf(&b->mean),
                                            buf(&b->rstd)),
                     CLT_OK);
}

static enum clt_status ln_bwd_run(struct clt_device *dev, struct ln_dev *b,
                                  const struct ln_shape *sh, bool want_dx, bool want_dgamma,
                                  bool want_dbeta, bool accumulate)
{
    return clt__layernorm_backward(
        dev, sh->rows, sh->d, buf(&b->x), buf(&b->dy), buf(&b->gamma), buf(&b->mean), buf(&b->rstd),
        want_dx ? buf(&b->dx) : none, want_dgamma ? buf(&b->dgamma) : none,
        want_dbeta ? buf(&b->dbeta) : none, accumulate ? CLT__NORM_ACC_ALL : 0u, buf(&b->ws));
}

static void ln_case(struct clt_device *dev, const struct ln_shape *sh)
{
    int64_t rows = sh->rows, d = sh->d;
    size_t count = (size_t)(rows * d), rr = (size_t)rows, dd = (size_t)d;
    float *x = ln_input(sh, 700 + count), *dy = fill(count, 701 + count, -1.0f, 1.0f);
    float *gamma = fill(dd, 3, 0.5f, 1.5f), *beta = fill(dd, 4, -0.5f, 0.5f);
    float *prev_dx = fill(count, 7, -1.0f, 1.0f), *prev_dg = fill(dd, 8, -1.0f, 1.0f);
    float *prev_db = fill(dd, 9, -1.0f, 1.0f);
    double *y = dalloc(count), *mean = dalloc(rr), *rstd = dalloc(rr);
    double *dx = dalloc(count), *dg = dalloc(dd), *db = dalloc(dd);
    double *acc_dx = dalloc(count), *acc_dg = dalloc(dd), *acc_db = dalloc(dd);
    ref_layernorm_forward(rows, d, x, gamma, beta, sh->eps, y, mean, rstd);
    ref_layernorm_backward(rows, d, x, dy, gamma, sh->eps, dx, dg, db);
    for (size_t i = 0; i < count; i++)
        acc_dx[i] = dx[i] + prev_dx[i];
    for (size_t i = 0; i < dd; i++) {
        acc_dg[i] = dg[i] + prev_dg[i];
        acc_db[i] = db[i] + prev_db[i];
    }

    struct ln_dev b;
    ln_setup(dev, &b, sh, x, dy, gamma, beta);
    char what[128];
    snprintf(what, sizeof what, "layernorm [%lld, %lld]", (long long)rows, (long long)d);
    expect(what, &b.y, y, count, TOL_Y, TOL_Y);
    expect(what, &b.mean, mean, rr, TOL_Y, TOL_Y);
    /* d == 1: the variance is 0 and rstd = 1 / sqrt(eps) = 316, rounded to float. */
    expect(what, &b.rstd, rstd, rr, TOL_Y, TOL_Y);

    set_all(&b.dx, count, NAN);
    set_all(&b.dgamma, dd, NAN);
    set_all(&b.dbeta, dd, NAN);
    assert_int_equal(ln_bwd_run(dev, &b, sh, true, true, true, false), CLT_OK);
    expect(what, &b.dx, dx, count, TOL_DX_ATOL, TOL_DX_RTOL);
    expect(what, &b.dgamma, dg, dd, sum_atol(rows), 1e-5);
    expect(what, &b.dbeta, db, dd, sum_atol(rows), 1e-5);

    assert_int_equal(clt_view_write(&b.dx, prev_dx, count * 4, NULL), CLT_OK);
    assert_int_equal(clt_view_write(&b.dgamma, prev_dg, dd * 4, NULL), CLT_OK);
    assert_int_equal(clt_view_write(&b.dbeta, prev_db, dd * 4, NULL), CLT_OK);
    assert_int_equal(ln_bwd_run(dev, &b, sh, true, true, true, true), CLT_OK);
    expect("layernorm accumulated dx", &b.dx, acc_dx, count, TOL_DX_ATOL, TOL_DX_RTOL);
    expect("layernorm accumulated dgamma", &b.dgamma, acc_dg, dd, sum_atol(rows), 1e-5);
    expect("layernorm accumulated dbeta", &b.dbeta, acc_db, dd, sum_atol(rows), 1e-5);

    for (int only = 0; only < 3; only++) {
        set_all(&b.dx, count, NAN);
        set_all(&b.dgamma, dd, NAN);
        set_all(&b.dbeta, dd, NAN);
        assert_int_equal(ln_bwd_run(dev, &b, sh, only == 0, only == 1, only == 2, false), CLT_OK);
        if (only == 0)
            expect("layernorm dx alone", &b.dx, dx, count, TOL_DX_ATOL, TOL_DX_RTOL);
        else
            expect_nan(&b.dx, count);
        if (only == 1)
            expect("layernorm dgamma alone", &b.dgamma, dg, dd, sum_atol(rows), 1e-5);
        else
            expect_nan(&b.dgamma, dd);
        if (only == 2)
            expect("layernorm dbeta alone", &b.dbeta, db, dd, sum_atol(rows), 1e-5);
        else
            expect_nan(&b.dbeta, dd);
    }
    /* dx alone needs no workspace. */
    assert_int_equal(clt__layernorm_backward(dev, rows, d, buf(&b.x), buf(&b.dy), buf(&b.gamma),
                                             buf(&b.mean), buf(&b.rstd), buf(&b.dx), none, none,
                                             false, none),
                     CLT_OK);
    expect("layernorm dx without workspace", &b.dx, dx, count, TOL_DX_ATOL, TOL_DX_RTOL);

    pool_free(&b.pool);
    free(x);
    free(dy);
    free(gamma);
    free(beta);
    free(prev_dx);
    free(prev_dg);
    free(prev_db);
    free(y);
    free(mean);
    free(rstd);
    free(dx);
    free(dg);
    free(db);
    free(acc_dx);
    free(acc_dg);
    free(acc_db);
}

static void layernorm_matches_reference(void **state)
{
    const struct ln_shape *shapes;
    size_t count = ln_shapes(&shapes);
    for (size_t i = 0; i < count; i++)
        ln_case(*state, &shapes[i]);
}

static void layernorm_large_offset(void **state)
{
    struct clt_device *dev = *state;
    struct ln_shape sh =
        clt_test_small() ? (struct ln_shape){5, 129, EPS} : (struct ln_shape){17, 777, EPS};
    size_t count = (size_t)(sh.rows * sh.d), rr = (size_t)sh.rows, dd = (size_t)sh.d;
    float *x = fill(count, 78, -1.0f, 1.0f), *dy = fill(count, 79, -1.0f, 1.0f);
    for (size_t i = 0; i < count; i++)
        x[i] += 1000.0f;
    float *gamma = fill(dd, 3, 0.5f, 1.5f), *beta = fill(dd, 4, -0.5f, 0.5f);
    double *y = dalloc(count), *mean = dalloc(rr), *rstd = dalloc(rr);
    ref_layernorm_forward(sh.rows, sh.d, x, gamma, beta, EPS, y, mean, rstd);
    struct ln_dev b;
    ln_setup(dev, &b, &sh, x, dy, gamma, beta);
    expect("layernorm offset 1000: mean", &b.mean, mean, rr, 3.1e-5, 1e-7);
    expect("layernorm offset 1000: rstd", &b.rstd, rstd, rr, 0.0, 1e-5);
    expect("layernorm offset 1000: y", &b.y, y, count, 1.5e-4, 0.0);
    pool_free(&b.pool);
    free(x);
    free(dy);
    free(gamma);
    free(beta);
    free(y);
    free(mean);
    free(rstd);
}

struct ln_loss {
    struct ln_shape sh;
    const float *x, *gamma, *beta, *w;
    double *y;
};

static double ln_loss_fn(void *ctx, const float *perturbed, size_t n)
{
    (void)perturbed; /* it is one of the ctx's arrays */
    (void)n;
    struct ln_loss *l = ctx;
    size_t count = (size_t)(l->sh.rows * l->sh.d);
    ref_layernorm_forward(l->sh.rows, l->sh.d, l->x, l->gamma, l->beta, l->sh.eps, l->y, NULL,
                          NULL);
    double sum = 0.0;
    for (size_t i = 0; i < count; i++)
        sum += l->w[i] * l->y[i];
    return sum;
}

/* A large eps, as for batch norm. */
static void layernorm_gradcheck(void **state)
{
    struct clt_device *dev = *state;
    const struct ln_shape shapes[] = {{3, 2, 0.5f}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const struct ln_shape *sh = &shapes[k];
        size_t count = (size_t)(sh->rows * sh->d), dd = (size_t)sh->d;
        float *x = ln_input(sh, 800 + count), *w = fill(count, 801, -1.0f, 1.0f);
        float *gamma = fill(dd, 3, 0.5f, 1.5f), *beta = fill(dd, 4, -0.5f, 0.5f);
        float *dx = malloc(count * 4), *dg = malloc(dd * 4), *db = malloc(dd * 4);
        assert_true(dx && dg && db);
        struct ln_dev b;
        ln_setup(dev, &b, sh, x, w, gamma, beta);
        assert_int_equal(ln_bwd_run(dev, &b, sh, true, true, true, false), CLT_OK);
        clt_test_download(&b.dx, dx, count);
        clt_test_download(&b.dgamma, dg, dd);
        clt_test_download(&b.dbeta, db, dd);
        struct ln_loss l = {*sh, x, gamma, beta, w, dalloc(count)};
        char what[128];
        snprintf(what, sizeof what, "layernorm [%lld, %lld] dx", (long long)sh->rows,
                 (long long)sh->d);
        clt_test_gradcheck(what, ln_loss_fn, &l, x, count, dx, FD_SAMPLES, FD_STEP, FD_ATOL,
                           FD_RTOL);
        clt_test_gradcheck("layernorm dgamma", ln_loss_fn, &l, gamma, dd, dg, FD_SAMPLES, FD_STEP,
                           FD_ATOL, FD_RTOL);
        clt_test_gradcheck("layernorm dbeta", ln_loss_fn, &l, beta, dd, db, FD_SAMPLES, FD_STEP,
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
}

static void layernorm_checks_arguments(void **state)
{
    struct clt_device *dev = *state;
    struct clt_test_log log = {.len = 0};
    struct clt_log keep = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &log, CLT_LOG_DEBUG};
    struct ln_shape sh = {4, 6, EPS};
    size_t count = 24;
    float *x = fill(count, 1, -1.0f, 1.0f), *dy = fill(count, 2, -1.0f, 1.0f);
    float *gamma = fill(6, 3, 0.5f, 1.5f), *beta = fill(6, 4, -0.5f, 0.5f);
    struct ln_dev b;
    ln_setup(dev, &b, &sh, x, dy, gamma, beta);
    struct clt__buf bx = buf(&b.x), bdy = buf(&b.dy), bg = buf(&b.gamma), bb = buf(&b.beta);
    struct clt__buf by = buf(&b.y), bm = buf(&b.mean), br = buf(&b.rstd), bw = buf(&b.ws);
    struct clt__buf bdg = buf(&b.dgamma);
    const enum clt_status bad = CLT_ERR_INVALID_ARGUMENT;
    assert_int_equal(clt__layernorm_forward(dev, 0, 6, bx, bg, bb, EPS, by, bm, br), bad);
    assert_int_equal(clt__layernorm_forward(dev, 4, -6, bx, bg, bb, EPS, by, bm, br), bad);
    assert_int_equal(clt__layernorm_forward(dev, 4, 6, bx, none, bb, EPS, by, bm, br), bad);
    assert_int_equal(clt__layernorm_forward(dev, 4, 6, bx, bg, bb, NAN, by, bm, br), bad);
    /* gamma placed so that its last float would lie past the end of the arena's buffer. */
    struct clt__buf short_g = {bg.mem, (size_t)(clt_arena_size(b.gamma.arena) / 4) - 5};
    assert_int_equal(clt__layernorm_forward(dev, 4, 6, bx, short_g, bb, EPS, by, bm, br), bad);
    assert_non_null(strstr(log.text, "gamma"));
    /* dgamma needs the workspace. */
    assert_int_equal(
        clt__layernorm_backward(dev, 4, 6, bx, bdy, bg, bm, br, none, bdg, none, false, none), bad);
    assert_int_equal(
        clt__layernorm_backward(dev, 4, 6, bx, bdy, bg, none, br, none, bdg, none, false, bw), bad);
    assert_int_equal(
        clt__layernorm_backward(dev, 4, 6, bx, bdy, bg, bm, br, none, bdg, none, false, bw),
        CLT_OK);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    dev->log = keep;
    pool_free(&b.pool);
    free(x);
    free(dy);
    free(gamma);
    free(beta);
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
