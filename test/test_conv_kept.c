/*
 * test_conv_kept.c: kept columns: a forward that keeps its im2col columns for the
 * backward gives the same results as one that does not, in each storage.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_rig.h"
#include "ref_conv.h"

/* ---- Kept columns ---------------------------------------------------------------------- */

/* Results of one run of the sequence below, widened to floats. */
struct kept_run {
    float *y, *dx, *dw;
};

/* forward, backward of dx and dweight (written, or added to dx0 and dw0), then a second
 * backward of dweight alone, added: with columns (the batch's, kept by the forward) or
 * without (made again by each backward). The workspace is NaN before each call, and so are the
 * kept columns before the forward: dweight must read the columns the forward left, not the
 * workspace, and the dx GEMM must leave them as they are for the second call. */
static struct kept_run kept_sequence(struct clt_device *dev, const struct clt__conv2d *c,
                                     enum clt_precision s, bool with_columns, bool accumulate,
                                     const float *x, const float *w, const float *b,
                                     const float *dy, const float *dx0, const float *dw0)
{
    const int64_t p = c->oh * c->ow, nx = c->n * c->c_in * c->h * c->w;
    const int64_t ny = c->n * c->c_out * p, nw = c->c_out * (c->c_in / c->groups) * c->kh * c->kw;
    const int64_t ncol = c->c_in * c->kh * c->kw * c->n * p;
    const int64_t nws = (int64_t)(clt__conv2d_workspace_bytes(c) / 4);
    struct clt_arena *arena;
    const uint64_t elements = 3 * (uint64_t)(nx + ny + nw + ncol + nws) + c->c_out + 64;
    assert_int_equal(clt_arena_create(dev, elements * 4 + (1 << 16), &arena), CLT_OK);
    (void)clt_test_tensor(arena, NULL, 3);
    struct clt_view vx = clt_test_tensor_st(arena, x, nx, s),
                    vw = clt_test_tensor_st(arena, w, nw, s);
    struct clt_view vb = clt_test_tensor_st(arena, b, c->c_out, s);
    struct clt_view vdy = clt_test_tensor_st(arena, dy, ny, s);
    struct clt_view vy = clt_test_tensor_st(arena, NULL, ny, s);
    struct clt_view vdx = clt_test_tensor_st(arena, accumulate ? dx0 : NULL, nx, s);
    struct clt_view vdw = clt_test_tensor_st(arena, accumulate ? dw0 : NULL, nw, s);
    struct clt_view vcol = clt_test_tensor_st(arena, NULL, ncol, s);
    struct clt__buf cols = with_columns ? clt_test_buf_st(&vcol, s) : none;
    struct clt_view ws[3];
    for (int i = 0; i < 3; i++)
        ws[i] = clt_test_tensor_st(arena, NULL, nws, s);
    assert_int_equal(clt__conv2d_forward(dev, c, clt_test_buf_st(&vx, s), clt_test_buf_st(&vw, s),
                                         clt_test_buf_st(&vb, s), clt_test_buf_st(&vy, s),
                                         clt_test_buf_st(&ws[0], s), cols),
                     CLT_OK);
    assert_int_equal(clt__conv2d_backward(dev, c, clt_test_buf_st(&vx, s), clt_test_buf_st(&vw, s),
                                          clt_test_buf_st(&vdy, s), clt_test_buf_st(&vdx, s),
                                          clt_test_buf_st(&vdw, s), none,
                                          clt_test_buf_st(&ws[1], s), cols, accumulate),
                     CLT_OK);
    assert_int_equal(clt__conv2d_backward(dev, c, clt_test_buf_st(&vx, s), none,
                                          clt_test_buf_st(&vdy, s), none, clt_test_buf_st(&vdw, s),
                                          none, clt_test_buf_st(&ws[2], s), cols, true),
                     CLT_OK);
    struct kept_run r = {clt_test_floats(ny), clt_test_floats(nx), clt_test_floats(nw)};
    clt_test_get_st(&vy, r.y, (size_t)ny, s);
    clt_test_get_st(&vdx, r.dx, (size_t)nx, s);
    clt_test_get_st(&vdw, r.dw, (size_t)nw, s);
    clt_arena_free(arena);
    return r;
}

/* got and want hold the same numbers, none of them NaN. */
static void assert_same(const char *name, enum clt_precision s, const char *what, bool acc,
                        const float *got, const float *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (isnan(want[i]) || memcmp(&got[i], &want[i], sizeof got[i]) != 0)
            fail_msg("conv2d %s (%s, %s): %s with kept columns %.9g, made again %.9g at %lld", name,
                     storage_name(s), acc ? "accumulated" : "written", what, (double)got[i],
                     (double)want[i], (long long)i);
}

/* One case in storage s: a batch in one chunk gives the same results with its columns kept as
 * without, bit for bit (written and accumulated; the written run is also checked against the
 * reference); a batch in several chunks cannot keep them. */
static void kept_case(struct clt_device *dev, const struct conv_case *cc, enum clt_precision s)
{
    struct clt__conv2d c = cc->c;
    assert_int_equal(clt__conv2d_resolve(NULL, &c), CLT_OK);
    const int64_t p = c.oh * c.ow, nx = c.n * c.c_in * c.h * c.w, ny = c.n * c.c_out * p;
    const int64_t nw = c.c_out * (c.c_in / c.groups) * c.kh * c.kw;
    const double u = s == CLT_PRECISION_FP32 ? 0.0 : clt_test_eps(s);
    if (c.chunk < c.n) {
        struct clt_test_log text = {0};
        struct clt_log saved = dev->log;
        dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_DEBUG};
        struct clt_arena *arena;
        assert_int_equal(clt_arena_create(dev, 1 << 16, &arena), CLT_OK);
        struct clt_view v = clt_test_tensor(arena, NULL, 16);
        assert_int_equal(
            clt__conv2d_forward(dev, &c, buf(&v), buf(&v), none, buf(&v), buf(&v), buf(&v)),
            CLT_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(text.text, "kept columns need the batch"));
        clt_arena_free(arena);
        dev->log = saved;
        return;
    }
    float *x = rounded(nx, 41 + (uint64_t)nx, s), *w = rounded(nw, 43 + (uint64_t)nw, s);
    float *b = rounded(c.c_out, 47, s), *dy = rounded(ny, 53 + (uint64_t)ny, s);
    float *dx0 = rounded(nx, 59, s), *dw0 = rounded(nw, 61, s);
    double *y_ref = clt_test_doubles(ny), *dx_ref = clt_test_doubles(nx);
    double *dw_ref = clt_test_doubles(nw), *db_ref = clt_test_doubles(c.c_out);
    ref_conv2d_forward(&c, x, w, b, y_ref);
    ref_conv2d_backward(&c, x, w, dy, dx_ref, dw_ref, db_ref);
    for (int acc = 0; acc < 2; acc++) {
        struct kept_run made = kept_sequence(dev, &c, s, false, acc, x, w, b, dy, dx0, dw0);
        struct kept_run kept = kept_sequence(dev, &c, s, true, acc, x, w, b, dy, dx0, dw0);
        assert_same(cc->name, s, "y", acc, kept.y, made.y, ny);
        assert_same(cc->name, s, "dx", acc, kept.dx, made.dx, nx);
        assert_same(cc->name, s, "dweight", acc, kept.dw, made.dw, nw);
        if (!acc) {
            /* Written, then one more dweight added: dw = 2 dw_ref. In 16 bits the GEMMs'
             * outputs are rounded to the storage before the helper kernels add them up (yt
             * before the bias, dcol before the taps' sum, dweight before the second call
             * adds to it): u per term on top of the tolerance above, twice u relative. */
            char label[200];
            snprintf(label, sizeof label, "conv2d %s (%s): y with kept columns", cc->name,
                     storage_name(s));
            clt_test_assert_close(label, kept.y, y_ref, (size_t)ny,
                                  tol(terms_y(&c) + 1) + u * (double)terms_y(&c), 2 * rtol_of(s));
            snprintf(label, sizeof label, "conv2d %s (%s): dx with kept columns", cc->name,
                     storage_name(s));
            clt_test_assert_close(label, kept.dx, dx_ref, (size_t)nx,
                                  tol(terms_dx(&c)) + u * (double)terms_dx(&c), 2 * rtol_of(s));
            for (int64_t i = 0; i < nw; i++)
                dw_ref[i] *= 2.0;
            snprintf(label, sizeof label, "conv2d %s (%s): dweight twice with kept columns",
                     cc->name, storage_name(s));
            clt_test_assert_close(label, kept.dw, dw_ref, (size_t)nw,
                                  2 * tol(terms_dw(&c)) + u * (double)terms_dw(&c), 2 * rtol_of(s));
        }
        float *f[] = {made.y, made.dx, made.dw, kept.y, kept.dx, kept.dw};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            free(f[i]);
    }
    float *f[] = {x, w, b, dy, dx0, dw0};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        free(f[i]);
    double *d[] = {y_ref, dx_ref, dw_ref, db_ref};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        free(d[i]);
}

/* Case i of the kept columns (every case alike). */
static void kept_case_any(struct clt_device *dev, const struct conv_case *cc, enum clt_precision s,
                          size_t i)
{
    (void)i;
    kept_case(dev, cc, s);
}

/* The kept columns over the cases, in each storage. */
void kept_columns_in_each_storage(void **state)
{
    each_storage_case(*state, kept_case_any);
}
