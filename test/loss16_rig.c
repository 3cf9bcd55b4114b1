/*
 * loss16_rig.c: the guarded tensors and comparisons of the 16-bit loss and attention tests
 * (loss16_rig.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss16_rig.h"

void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

/* count floats (or ints: host's bytes) between guards, in an arena of their own. */
struct tensor tensor_new(struct clt_device *dev, const void *host, size_t count)
{
    struct tensor t = {.count = count};
    size_t total = count + 2 * GUARD;
    float *all = xmalloc(total * sizeof *all);
    for (size_t i = 0; i < total; i++)
        all[i] = i < GUARD || i >= GUARD + count ? GUARD_VALUE : NAN;
    if (host && count)
        memcpy(all + GUARD, host, count * sizeof *all);
    assert_int_equal(clt_arena_create(dev, total * 4 + 4096, &t.arena), CLT_OK);
    t.view = clt_test_tensor(t.arena, all, total);
    t.buf = clt__view_buf(&t.view);
    t.buf.offset += GUARD;
    free(all);
    return t;
}

void tensor_read(const struct tensor *t, float *host, const char *what)
{
    size_t total = t->count + 2 * GUARD;
    float *all = xmalloc(total * sizeof *all);
    clt_test_download(&t->view, all, total);
    for (size_t i = 0; i < GUARD; i++)
        if (all[i] != GUARD_VALUE || all[GUARD + t->count + i] != GUARD_VALUE)
            fail_msg("%s: a guard element next to the tensor was overwritten", what);
    memcpy(host, all + GUARD, t->count * sizeof *host);
    free(all);
}

void tensor_free(struct tensor *t)
{
    clt_arena_free(t->arena);
    t->arena = NULL;
}

static float st_guard(enum clt_precision s)
{
    float g = GUARD_VALUE;
    clt_test_round(&g, 1, s);
    return g;
}

/* (Re)writes the guards and host[0..count) rounded to the storage (NaN where host is NULL). */
void st_write(struct st_tensor *t, const float *host)
{
    size_t total = t->count + 2 * GUARD;
    float *all = xmalloc(total * sizeof *all);
    for (size_t i = 0; i < total; i++)
        all[i] = i < GUARD || i >= GUARD + t->count ? GUARD_VALUE : host ? host[i - GUARD] : NAN;
    clt_arena_reset(t->arena);
    t->view = clt_test_tensor_st(t->arena, all, total, t->s);
    t->buf = clt_test_buf_st(&t->view, t->s);
    t->buf.offset += GUARD;
    free(all);
}

struct st_tensor st_new(struct clt_device *dev, const float *host, size_t count,
                        enum clt_precision s)
{
    struct st_tensor t = {.count = count, .s = s};
    assert_int_equal(clt_arena_create(dev, (count + 2 * GUARD) * 4 + 4096, &t.arena), CLT_OK);
    st_write(&t, host);
    return t;
}

/* Reads the count values, widened; fails when a guard changed. */
void st_read(const struct st_tensor *t, float *host, const char *what)
{
    size_t total = t->count + 2 * GUARD;
    float *all = xmalloc(total * sizeof *all), g = st_guard(t->s);
    clt_test_get_st(&t->view, all, total, t->s);
    for (size_t i = 0; i < GUARD; i++)
        if (all[i] != g || all[GUARD + t->count + i] != g)
            fail_msg("%s: a guard element next to the tensor was overwritten", what);
    memcpy(host, all + GUARD, t->count * sizeof *host);
    free(all);
}

void st_free(struct st_tensor *t)
{
    clt_arena_free(t->arena);
    t->arena = NULL;
}

/* A copy of x[0..n) rounded to the storage. */
float *rounded(const float *x, size_t n, enum clt_precision s)
{
    float *r = xmalloc(n * sizeof *r);
    memcpy(r, x, n * sizeof *r);
    clt_test_round(r, n, s);
    return r;
}

/* clt_test_assert_close with the 16-bit tolerance of the header: atol, rtol k * eps. With
 * CLTRAIN_TEST_MEASURE set, prints the smallest k that passes (how the header's k were
 * measured). */
void close16(const char *what, const float *got, const double *want, size_t n, enum clt_precision s,
             double atol, double k)
{
    const double eps = clt_test_eps(s);
    if (getenv("CLTRAIN_TEST_MEASURE")) {
        double worst = 0.0, need = 0.0;
        for (size_t i = 0; i < n; i++) {
            double err = fabs((double)got[i] - want[i]);
            double e = (err - atol) / (eps * fabs(want[i]));
            double a = (err - k * eps * fabs(want[i])) / eps;
            worst = e > worst ? e : worst;
            need = a > need ? a : need;
        }
        print_message("measure %s: k %.3g atol/eps %.3g\n", what, worst, need);
    }
    clt_test_assert_close(what, got, want, n, atol, k * eps);
}

const char *st_name(enum clt_precision s)
{
    return s == CLT_PRECISION_FP16 ? "fp16" : "bf16";
}
