/*
 * st_tensor.h: tensors in a storage (fp32, fp16, bf16) for the launcher tests of the
 * elementwise family's store_t kernels (test_elementwise.c, test_broadcast.c,
 * test_activation.c), on top of harness.h's clt_test_tensor_st.
 *
 * A tensor of n elements starts at an odd element offset (1) of its view, between guard
 * elements that hold ST_GUARD_VALUE (exact in every storage) and must survive every launch;
 * an output created without data holds NaN, which fails any comparison if a kernel leaves it
 * in place or reads it when told to overwrite. Set the device's storage with
 * clt__storage_set around the launches (st_begin / st_end).
 */
#ifndef CLTRAIN_TEST_ST_TENSOR_H
#define CLTRAIN_TEST_ST_TENSOR_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "precision.h"

#define ST_LEAD 1  /* guard elements before the tensor: its offset is odd */
#define ST_TRAIL 3 /* guard elements after it */
#define ST_GUARD_VALUE 7.0f
/* The absolute term of every 16-bit tolerance: fp16's subnormals are 2^-24 = 6e-8 apart, so a
 * result near zero may round by 3e-8 however small it is. */
#define ST_ATOL 1e-7

struct st_tensor {
    struct clt_view view;
    struct clt__buf buf; /* the launcher argument: offset in storage elements */
    size_t n;
    enum clt_precision s;
};

static inline const char *st_name(enum clt_precision s)
{
    return s == CLT_PRECISION_FP16 ? "fp16" : s == CLT_PRECISION_BF16 ? "bf16" : "fp32";
}

/* The image of guards and host[0..n) (NaN when host is NULL), as floats. */
static inline float *st_image(const float *host, size_t n)
{
    float *all = clt_test_floats(n + ST_LEAD + ST_TRAIL);
    for (size_t i = 0; i < n + ST_LEAD + ST_TRAIL; i++)
        all[i] = ST_GUARD_VALUE;
    for (size_t i = 0; i < n; i++)
        all[ST_LEAD + i] = host ? host[i] : NAN;
    return all;
}

static inline struct st_tensor st_tensor(struct clt_arena *arena, const float *host, size_t n,
                                         enum clt_precision s)
{
    float *all = st_image(host, n);
    struct st_tensor t = {.n = n, .s = s};
    t.view = clt_test_tensor_st(arena, all, n + ST_LEAD + ST_TRAIL, s);
    t.buf = clt_test_buf_st(&t.view, s);
    t.buf.offset += ST_LEAD;
    free(all);
    return t;
}

/* Rewrites the tensor (and its guards) with host[0..n) rounded to the storage (NULL: NaN). */
static inline void st_put(const struct st_tensor *t, const float *host)
{
    size_t total = t->n + ST_LEAD + ST_TRAIL, bytes = clt_test_storage_bytes(t->s);
    float *all = st_image(host, t->n);
    unsigned char *image = malloc(total * bytes);
    assert_non_null(image);
    for (size_t i = 0; i < total; i++) {
        if (t->s == CLT_PRECISION_FP32) {
            memcpy(image + 4 * i, &all[i], 4);
            continue;
        }
        uint16_t h =
            t->s == CLT_PRECISION_FP16 ? clt__f32_to_f16(all[i]) : clt__f32_to_bf16(all[i]);
        memcpy(image + 2 * i, &h, 2);
    }
    clt_test_put_bytes(&t->view, image, total * bytes);
    free(image);
    free(all);
}

/* Reads the n elements, widened, and fails when a guard changed. */
static inline void st_get(const struct st_tensor *t, float *host, const char *what)
{
    size_t total = t->n + ST_LEAD + ST_TRAIL;
    float *all = clt_test_floats(total);
    clt_test_get_st(&t->view, all, total, t->s);
    for (size_t i = 0; i < total; i++)
        if ((i < ST_LEAD || i >= ST_LEAD + t->n) && all[i] != ST_GUARD_VALUE)
            fail_msg("%s (%s): guard element %zu of a tensor of %zu was overwritten (%g)", what,
                     st_name(t->s), i, t->n, (double)all[i]);
    memcpy(host, all + ST_LEAD, t->n * sizeof *host);
    free(all);
}

/* An arena for tensors holding `elements` storage elements in all, in up to `tensors` views. */
static inline struct clt_arena *st_arena(struct clt_device *dev, size_t elements, size_t tensors)
{
    struct clt_arena *arena;
    uint64_t bytes = (uint64_t)(elements + tensors * (ST_LEAD + ST_TRAIL + 2)) * 4 + tensors * 4096;
    assert_int_equal(clt_arena_create(dev, bytes, &arena), CLT_OK);
    (void)clt_test_upload(arena, NULL, 3); /* what follows starts past the arena's start */
    return arena;
}

/* x[0..n) uniform in [lo, hi) from seed, rounded to the storage. */
static inline float *st_input(size_t n, uint64_t seed, float lo, float hi, enum clt_precision s)
{
    float *x = clt_test_floats(n);
    clt_test_fill(x, n, seed, lo, hi);
    clt_test_round(x, n, s);
    return x;
}

/* clt_test_assert_close, and the worst ratio of error to tolerance seen so far, with what it
 * was, kept for st_report (the figures the test files' headers state). */
static double st_worst_ratio = 0.0;
static char st_worst_what[320] = "";

static inline void st_assert_close(const char *what, enum clt_precision s, const float *got,
                                   const double *want, size_t n, double atol, double rtol)
{
    char full[160];
    snprintf(full, sizeof full, "%s (%s)", what, st_name(s));
    for (size_t i = 0; i < n; i++) {
        double r = fabs((double)got[i] - want[i]) / (atol + rtol * fabs(want[i]));
        if (r > st_worst_ratio) {
            st_worst_ratio = r;
            snprintf(st_worst_what, sizeof st_worst_what,
                     "%.160s, element %zu: got %.9g, want %.9g", full, i, (double)got[i], want[i]);
        }
    }
    clt_test_assert_close(full, got, want, n, atol, rtol);
}

/* Prints the worst ratio of error to tolerance of a test and starts afresh. */
static inline void st_report(const char *test)
{
    print_message("%s: worst error / tolerance %.3f (%s)\n", test, st_worst_ratio, st_worst_what);
    st_worst_ratio = 0.0;
    st_worst_what[0] = 0;
}

/* The 16-bit storages every test runs in. */
static const enum clt_precision st_storages[] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16};
#define ST_STORAGES (sizeof st_storages / sizeof st_storages[0])

#endif
