/*
 * test_norm_layer.c: layer norm (cl/norm.cl) against the C reference (ref_norm.c):
 * forward, backward, large offsets, finite differences and argument checks. Data and
 * tolerances as test_norm.c says.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "norm_rig.h"
#include "ops/norm.h"
#include "ref_norm.h"

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

void layernorm_matches_reference(void **state)
{
    const struct ln_shape *shapes;
    size_t count = ln_shapes(&shapes);
    for (size_t i = 0; i < count; i++)
        ln_case(*state, &shapes[i]);
}

void layernorm_large_offset(void **state)
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
void layernorm_gradcheck(void **state)
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

void layernorm_checks_arguments(void **state)
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
