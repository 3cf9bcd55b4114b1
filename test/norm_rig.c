/*
 * norm_rig.c: the helpers of the norm tests (norm_rig.h).
 */
#include <math.h>
#include <stdlib.h>

#include "norm_rig.h"

float *fill(size_t n, uint64_t seed, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    clt_test_fill(p, n, seed, lo, hi);
    return p;
}

double *dalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

/* A tensor of `count` floats holding host[0..count), or NaN when host is NULL. */
struct clt_view tensor(struct pool *p, const float *host, size_t count)
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

void pool_free(struct pool *p)
{
    for (size_t i = 0; i < p->count; i++)
        clt_arena_free(p->arenas[i]);
    p->count = 0;
}

struct clt__buf buf(const struct clt_view *v)
{
    return clt__view_buf(v);
}

/* Downloads a view and compares it with a reference. */
void expect(const char *what, const struct clt_view *v, const double *want, size_t n, double atol,
            double rtol)
{
    float *got = malloc((n ? n : 1) * sizeof *got);
    assert_non_null(got);
    clt_test_download(v, got, n);
    clt_test_assert_close(what, got, want, n, atol, rtol);
    free(got);
}

/* Asserts that a skipped output still holds the NaN it was given. */
void expect_nan(const struct clt_view *v, size_t n)
{
    float *got = malloc((n ? n : 1) * sizeof *got);
    assert_non_null(got);
    clt_test_download(v, got, n);
    for (size_t i = 0; i < n; i++)
        assert_true(isnan(got[i]));
    free(got);
}

/* Tolerance of a sum of `terms` terms of magnitude <= 3. */
double sum_atol(int64_t terms)
{
    return 2e-6 * (double)terms + 1e-5;
}

/* Fills a view with `value` (NaN: shows that overwriting outputs are not read). */
void set_all(const struct clt_view *v, size_t n, float value)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = value;
    assert_int_equal(clt_view_write(v, p, n * sizeof *p, NULL), CLT_OK);
    free(p);
}
