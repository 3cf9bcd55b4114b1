/*
 * test_norm16_layer.c: layer norm (cl/norm.cl) in 16-bit storage: forward and backward in
 * fp16, bf16 and fp32 through the same code, against the C reference (ref_norm.c).
 * Tolerances as test_norm16.c says.
 */

#include <stdio.h>
#include <stdlib.h>

#include "norm16_rig.h"
#include "ops/norm.h"
#include "ref_norm.h"

/* ==== Layer norm ======================================================================== */

static const struct ln_shape ln_big[] = {
    {1, 7, EPS}, {1, 1, EPS}, {70, 19, 0.5f}, {33, 257, EPS}, {97, 3, EPS},
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

/* Forward (y, mean, rstd), then the backward: overwriting (NaN before), then accumulating. */
static void ln_case(struct clt_device *dev, const struct ln_shape *sh, enum clt_precision st)
{
    int64_t rows = sh->rows, d = sh->d;
    size_t count = (size_t)(rows * d), rr = (size_t)rows, dd = (size_t)d;
    size_t ws = clt__layernorm_workspace_bytes(rows, d) / 4;
    assert_true(ws > 0);
    float *x = ln_input(sh, 700 + count, st), *dy = fill_st(count, 701 + count, -1.0f, 1.0f, st);
    float *gamma = fill_st(dd, 3, 0.5f, 1.5f, st), *beta = fill_st(dd, 4, -0.5f, 0.5f, st);
    float *prev_dx = fill_st(count, 7, -1.0f, 1.0f, st), *prev_dg = fill_st(dd, 8, -1.0f, 1.0f, st);
    float *prev_db = fill_st(dd, 9, -1.0f, 1.0f, st);
    double *y = dalloc(count), *mean = dalloc(rr), *rstd = dalloc(rr);
    double *dx = dalloc(count), *dg = dalloc(dd), *db = dalloc(dd);
    ref_layernorm_forward(rows, d, x, gamma, beta, sh->eps, y, mean, rstd);
    ref_layernorm_backward(rows, d, x, dy, gamma, sh->eps, dx, dg, db);
    const enum clt_precision f32 = CLT_PRECISION_FP32;

    struct pool pool = {.dev = dev};
    struct tensor *vx = tensor(&pool, x, count, st), *vdy = tensor(&pool, dy, count, st);
    struct tensor *vg = tensor(&pool, gamma, dd, st), *vb = tensor(&pool, beta, dd, st);
    struct tensor *vy = tensor(&pool, NULL, count, st), *vm = tensor(&pool, NULL, rr, f32);
    struct tensor *vr = tensor(&pool, NULL, rr, f32), *vw = tensor(&pool, NULL, ws, f32);
    struct tensor *vdx = tensor(&pool, NULL, count, st), *vdg = tensor(&pool, NULL, dd, st);
    struct tensor *vdb = tensor(&pool, NULL, dd, st);
    assert_int_equal(clt__layernorm_forward(dev, rows, d, buf(vx), buf(vg), buf(vb), sh->eps,
                                            buf(vy), buf(vm), buf(vr)),
                     CLT_OK);
    char what[160];
    snprintf(what, sizeof what, "%s layernorm [%lld, %lld]", storage_name(st), (long long)rows,
             (long long)d);
    expect(what, "y", vy, y, TOL_STAT, rtol_y(st));
    expect(what, "mean", vm, mean, TOL_STAT, TOL_STAT);
    expect(what, "rstd", vr, rstd, TOL_STAT, TOL_STAT);
    if (rr >= 3 && d > 1)
        expect_not_storable(rstd, rr, st);

    for (int acc = 0; acc < 2; acc++) {
        snprintf(what, sizeof what, "%s layernorm backward [%lld, %lld]%s", storage_name(st),
                 (long long)rows, (long long)d, acc ? " acc" : "");
        if (acc) {
            put(vdx, prev_dx);
            put(vdg, prev_dg);
            put(vdb, prev_db);
            for (size_t i = 0; i < count; i++)
                dx[i] += prev_dx[i];
            for (size_t i = 0; i < dd; i++) {
                dg[i] += prev_dg[i];
                db[i] += prev_db[i];
            }
        }
        assert_int_equal(clt__layernorm_backward(dev, rows, d, buf(vx), buf(vdy), buf(vg), buf(vm),
                                                 buf(vr), buf(vdx), buf(vdg), buf(vdb),
                                                 acc ? CLT__NORM_ACC_ALL : 0u, buf(vw)),
                         CLT_OK);
        expect(what, "dx", vdx, dx, TOL_DX_ATOL, rtol_dx(st));
        expect(what, "dgamma", vdg, dg, atol_sum(rows), rtol_sum(st));
        expect(what, "dbeta", vdb, db, atol_sum(rows), rtol_sum(st));
    }

    pool_free(&pool);
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
}

void layernorm16(void **state)
{
    struct clt_device *dev = *state;
    const struct ln_shape *shapes;
    size_t count = ln_shapes(&shapes);
    for (size_t k = 0; k < NSTORAGES; k++) {
        enum clt_precision was = clt__storage_set(dev, storages[k]);
        for (size_t i = 0; i < count; i++)
            ln_case(dev, &shapes[i], storages[k]);
        clt__storage_set(dev, was);
    }
}
