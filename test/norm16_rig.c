/*
 * norm16_rig.c: the tensors and comparisons of the 16-bit norm tests (norm16_rig.h); the
 * tolerances are stated at the top of test_norm16.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "norm16_rig.h"
#include "precision.h"

const char *storage_name(enum clt_precision s)
{
    return s == CLT_PRECISION_FP16 ? "fp16" : s == CLT_PRECISION_BF16 ? "bf16" : "fp32";
}

float *fill(size_t n, uint64_t seed, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    clt_test_fill(p, n, seed, lo, hi);
    return p;
}

/* fill, rounded to the storage. */
float *fill_st(size_t n, uint64_t seed, float lo, float hi, enum clt_precision s)
{
    float *p = fill(n, seed, lo, hi);
    clt_test_round(p, n, s);
    return p;
}

double *dalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

/* The whole buffer's values: guards, host[0..count) (NaN when host is NULL), guards. */
static float *guarded(const float *host, size_t count)
{
    float *image = malloc((LEAD + count + TAIL) * sizeof *image);
    assert_non_null(image);
    for (size_t i = 0; i < LEAD + count + TAIL; i++)
        image[i] = i < LEAD || i >= LEAD + count ? GUARD : host ? host[i - LEAD] : NAN;
    return image;
}

struct tensor *tensor(struct pool *p, const float *host, size_t count, enum clt_precision s)
{
    assert_true(p->n < sizeof p->t / sizeof p->t[0]);
    struct tensor *t = &p->t[p->n++];
    size_t total = LEAD + count + TAIL, bytes = (total * clt_test_storage_bytes(s) + 3) / 4 * 4;
    assert_int_equal(clt_arena_create(p->dev, bytes, &t->arena), CLT_OK);
    float *image = guarded(host, count);
    t->v = clt_test_tensor_st(t->arena, image, total, s);
    t->count = count;
    t->s = s;
    free(image);
    return t;
}

void pool_free(struct pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        clt_arena_free(p->t[i].arena);
    p->n = 0;
}

struct clt__buf buf(const struct tensor *t)
{
    struct clt__buf b = clt_test_buf_st(&t->v, t->s);
    b.offset += LEAD;
    return b;
}

/* Rewrites a tensor with host[0..count) rounded to its storage (NaN when host is NULL), and
 * its guards, in one write of the whole buffer. */
void put(const struct tensor *t, const float *host)
{
    size_t total = LEAD + t->count + TAIL, eb = clt_test_storage_bytes(t->s);
    float *image = guarded(host, t->count);
    unsigned char *bytes = malloc(total * eb);
    assert_non_null(bytes);
    for (size_t i = 0; i < total; i++) {
        if (t->s == CLT_PRECISION_FP32) {
            memcpy(bytes + 4 * i, &image[i], 4);
            continue;
        }
        uint16_t h =
            t->s == CLT_PRECISION_FP16 ? clt__f32_to_f16(image[i]) : clt__f32_to_bf16(image[i]);
        memcpy(bytes + 2 * i, &h, 2);
    }
    clt_test_put_bytes(&t->v, bytes, total * eb);
    free(bytes);
    free(image);
}

/* Reads a tensor's values into out[0..count) and asserts that its guards are unchanged. */
void get(const struct tensor *t, float *out)
{
    size_t total = LEAD + t->count + TAIL;
    float *image = malloc(total * sizeof *image);
    assert_non_null(image);
    clt_test_get_st(&t->v, image, total, t->s);
    for (size_t i = 0; i < total; i++)
        if (i < LEAD || i >= LEAD + t->count) {
            if (image[i] != GUARD)
                fail_msg("guard %zu of a tensor of %zu %s elements at offset %d was overwritten: "
                         "%g",
                         i, t->count, storage_name(t->s), LEAD, (double)image[i]);
        }
    memcpy(out, image + LEAD, t->count * sizeof *out);
    free(image);
}

/* Whether |got - want| <= atol + rtol |want| for every element (NaN never is). Prints the
 * worst element when not and `complain`; under CLTRAIN_NORM16_MEASURE prints the largest
 * |got - want| / (|want| + 1e-3) as well. */
bool within(const char *what, const float *got, const double *want, size_t n, double atol,
            double rtol, bool complain)
{
    double worst = 0.0, measured = 0.0, used = 0.0;
    size_t at = 0;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]), lim = atol + rtol * fabs(want[i]);
        if (!(err <= lim)) {
            ok = false;
            double excess = isnan(err) ? INFINITY : err / lim;
            if (excess > worst || !(worst > 0.0)) {
                worst = excess;
                at = i;
            }
        }
        if (err / (fabs(want[i]) + 1e-3) > measured)
            measured = err / (fabs(want[i]) + 1e-3);
        if (err / lim > used)
            used = err / lim;
    }
    const char *m = getenv("CLTRAIN_NORM16_MEASURE");
    if (m && *m && strcmp(m, "0") != 0)
        print_message("measure %-64s %9.3g %6.2f of the tolerance\n", what, measured, used);
    if (!ok && complain)
        print_message("%s: element %zu of %zu: got %.9g, want %.9g (atol %g, rtol %g)\n", what, at,
                      n, (double)got[at], want[at], atol, rtol);
    return ok;
}

/* Reads a tensor and asserts it matches want. */
void expect(const char *what, const char *name, const struct tensor *t, const double *want,
            double atol, double rtol)
{
    float *got = malloc((t->count ? t->count : 1) * sizeof *got);
    assert_non_null(got);
    get(t, got);
    char label[200];
    snprintf(label, sizeof label, "%s: %s", what, name);
    if (!within(label, got, want, t->count, atol, rtol, true))
        fail_msg("%s: outside the tolerance", label);
    free(got);
}

/* The tolerances of test_norm16.c's header for storage s. */
double rtol_y(enum clt_precision s)
{
    return clt_test_eps(s) + 2e-5;
}
double rtol_dx(enum clt_precision s)
{
    return clt_test_eps(s) + TOL_DX_RTOL;
}
double rtol_sum(enum clt_precision s)
{
    return clt_test_eps(s) + 1e-5;
}
double atol_sum(int64_t terms)
{
    return 2e-6 * (double)terms + 1e-5;
}

/* Asserts that some want[i] rounded to storage s is off by more than the statistics'
 * tolerance: a kernel that kept these values in the storage would fail. */
void expect_not_storable(const double *want, size_t n, enum clt_precision s)
{
    if (s == CLT_PRECISION_FP32)
        return;
    for (size_t i = 0; i < n; i++) {
        float r = (float)want[i];
        clt_test_round(&r, 1, s);
        if (fabs((double)r - want[i]) > TOL_STAT + TOL_STAT * fabs(want[i]))
            return;
    }
    fail_msg("no statistic tells fp32 from %s", storage_name(s));
}

/* x [rows, d] uniform in [-1, 1) plus an offset per row, rounded to the storage. */
float *ln_input(const struct ln_shape *sh, uint64_t seed, enum clt_precision s)
{
    size_t count = (size_t)(sh->rows * sh->d);
    float *x = fill(count, seed, -1.0f, 1.0f);
    float *offset = fill((size_t)sh->rows, seed + 1, -2.0f, 2.0f);
    for (size_t i = 0; i < count; i++)
        x[i] += offset[i / (size_t)sh->d];
    free(offset);
    clt_test_round(x, count, s);
    return x;
}
