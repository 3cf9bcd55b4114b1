/*
 * test_broadcast.c: the broadcast launchers (engine/ops/broadcast.c over cl/elementwise.cl)
 * against the C reference, at shapes larger and more awkward than test_ops.c's: every
 * dispatch of clt__broadcast_forward and clt__broadcast_backward (equal shapes, a trailing
 * block on either side, the general kernels at up to 6 merged axes, a scalar and long
 * reductions), for add, sub and mul. Also the planning (merged axes and masks), the write
 * and accumulate bits of `acc` given together, and argument checks.
 *
 * Every tensor sits between guard elements that must survive, and every gradient buffer
 * holds NaN before a write, so a kernel that reads it fails.
 *
 * Tolerances, inputs uniform in [-1, 1), |got - want| <= atol + rtol * |want|:
 *   forward: atol 1e-7, rtol 2.4e-7 (one float rounding of the exact value).
 *   gradients reducing k outputs into each element: atol 4e-7 (k + 1), rtol 2.4e-7
 *     (compensated sums err by about 2 ulp of the sum of |terms| <= k, plus the rounding of
 *     each product and of an accumulated add).
 * Under Oclgrind (CLTRAIN_TEST_SMALL) only the shapes of at most 600 elements run.
 *
 * In 16-bit storage (fp16, bf16): the same dispatches on inputs rounded to the storage, the
 * reference in double on them; each tolerance above widens by the one rounding of the result
 * to the storage: rtol + u (u = 2^-11 fp16, 2^-8 bf16), atol + 1e-7 (fp16's subnormal
 * spacing). Measured worst on PoCL: 0.999 of the tolerance (a tie, which reaches the bound).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/broadcast.h"
#include "ref_elementwise.h"
#include "st_tensor.h"

#define GUARD 3
#define GUARD_VALUE -1234.5f

static const struct clt__buf NONE = {NULL, 0};

/* n elements of a storage (fp32, or 16 bits: st_tensor.h) GUARD elements into an arena of
 * their own, between guards. */
struct tensor {
    struct clt_arena *arena;
    struct clt_view view;
    size_t n;
    enum clt_precision s;
};

/* Writes the guards and host[0..n) (NaN when host is NULL), rounded to the storage. */
static void tensor_write(const struct tensor *t, const float *host)
{
    size_t total = t->n + 2 * GUARD;
    float *all = clt_test_floats(total);
    for (size_t i = 0; i < total; i++)
        all[i] = NAN;
    for (size_t i = 0; i < GUARD; i++)
        all[i] = all[GUARD + t->n + i] = GUARD_VALUE;
    if (host)
        memcpy(all + GUARD, host, t->n * sizeof *host);
    if (t->s == CLT_PRECISION_FP32) {
        clt_test_put(&t->view, all, total);
    } else {
        uint16_t *bits = malloc(total * sizeof *bits);
        assert_non_null(bits);
        for (size_t i = 0; i < total; i++)
            bits[i] =
                t->s == CLT_PRECISION_FP16 ? clt__f32_to_f16(all[i]) : clt__f32_to_bf16(all[i]);
        clt_test_put_bytes(&t->view, bits, total * sizeof *bits);
        free(bits);
    }
    free(all);
}

static struct tensor tensor_new_st(struct clt_device *dev, const float *host, size_t n,
                                   enum clt_precision s)
{
    struct tensor t = {.n = n, .s = s};
    size_t floats = ((n + 2 * GUARD) * clt_test_storage_bytes(s) + 3) / 4;
    assert_int_equal(clt_arena_create(dev, floats * sizeof(float), &t.arena), CLT_OK);
    t.view = clt_test_upload(t.arena, NULL, floats);
    tensor_write(&t, host);
    return t;
}

static struct tensor tensor_new(struct clt_device *dev, const float *host, size_t n)
{
    return tensor_new_st(dev, host, n, CLT_PRECISION_FP32);
}

/* Reads the n elements, widened; fails when a guard changed. */
static void tensor_read(const struct tensor *t, float *host, const char *what)
{
    size_t total = t->n + 2 * GUARD;
    float *all = clt_test_floats(total), guard = GUARD_VALUE;
    clt_test_round(&guard, 1, t->s);
    clt_test_get_st(&t->view, all, total, t->s);
    for (size_t i = 0; i < GUARD; i++)
        if (all[i] != guard || all[GUARD + t->n + i] != guard)
            fail_msg("%s: an element beside the tensor was overwritten", what);
    memcpy(host, all + GUARD, t->n * sizeof *host);
    free(all);
}

static struct clt__buf tensor_buf(const struct tensor *t)
{
    struct clt__buf b = clt_test_buf_st(&t->view, t->s);
    b.offset += GUARD;
    return b;
}

/* ==== Planning ========================================================================== */

static void expect_plan(uint32_t an, const int64_t *as, uint32_t bn, const int64_t *bs,
                        uint32_t ndim, const int64_t *shape, uint32_t amask, uint32_t bmask)
{
    struct clt__broadcast p;
    clt__broadcast_plan(an, as, bn, bs, &p);
    assert_int_equal(p.ndim, ndim);
    for (uint32_t d = 0; d < ndim; d++)
        assert_int_equal(p.shape[d], shape[d]);
    assert_int_equal(p.amask, amask);
    assert_int_equal(p.bmask, bmask);
}

#define SHAPE(...)                                                                                 \
    (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[])                              \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

static void plans_merge_axes(void **state)
{
    (void)state;
    /* Equal shapes: one axis. A trailing block: two. Axes innermost first. */
    expect_plan(SHAPE(3, 4, 5), SHAPE(3, 4, 5), 1, (int64_t[]){60}, 1, 1);
    expect_plan(SHAPE(4, 5), SHAPE(3, 4, 5), 2, (int64_t[]){20, 3}, 1, 3);
    expect_plan(SHAPE(3, 4, 5), SHAPE(1, 1, 5), 2, (int64_t[]){5, 12}, 3, 1);
    /* Stretched axes alternate; size-1 axes of the output vanish. */
    expect_plan(SHAPE(3, 1, 5), SHAPE(1, 4, 1), 3, (int64_t[]){5, 4, 3}, 5, 2);
    expect_plan(SHAPE(1, 3, 1, 5), SHAPE(1, 1, 1, 1), 1, (int64_t[]){15}, 1, 0);
    expect_plan(SHAPE(2, 1, 3, 1, 2, 1), SHAPE(3, 1, 2, 1, 2), 6, (int64_t[]){2, 2, 2, 3, 3, 2},
                0x2a, 0x15);
    /* One element each. */
    expect_plan(SHAPE(1), SHAPE(1, 1), 1, (int64_t[]){1}, 1, 1);

    uint32_t yn;
    int64_t ys[CLT_MAX_DIMS];
    int axis = 0;
    assert_true(clt__broadcast_shape(SHAPE(4, 5), SHAPE(3, 1, 5), &yn, ys, &axis));
    assert_int_equal(yn, 3);
    assert_true(ys[0] == 3 && ys[1] == 4 && ys[2] == 5);
    assert_false(clt__broadcast_shape(SHAPE(3, 4, 5), SHAPE(2, 5), &yn, ys, &axis));
    assert_int_equal(axis, -2);
    assert_false(clt__broadcast_shape(SHAPE(7), SHAPE(7, 6), &yn, ys, &axis));
    assert_int_equal(axis, -1);
}

/* ==== Launchers against the reference ==================================================== */

struct pair {
    uint32_t an, bn;
    int64_t as[CLT_MAX_DIMS], bs[CLT_MAX_DIMS];
};

static int64_t count_of(uint32_t n, const int64_t *s)
{
    int64_t c = 1;
    for (uint32_t d = 0; d < n; d++)
        c *= s[d];
    return c;
}

static const struct pair PAIRS[] = {
    {2, 2, {37, 129}, {37, 129}},                /* equal */
    {3, 2, {5, 37, 129}, {37, 129}},             /* trailing block on b */
    {1, 3, {129}, {5, 37, 129}},                 /* trailing block on a */
    {3, 3, {5, 1, 129}, {1, 37, 1}},             /* general, 3 axes */
    {1, 2, {1}, {300, 257}},                     /* a scalar: 77 100 terms in one sum */
    {2, 2, {300, 1}, {1, 257}},                  /* outer product */
    {3, 2, {7, 1, 3}, {5, 1}},                   /* general, small */
    {2, 1, {3, 5}, {1}},                         /* small scalar */
    {6, 5, {2, 1, 3, 1, 2, 1}, {3, 1, 2, 1, 2}}, /* 6 alternating axes */
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const enum clt__binary OPS[] = {CLT__BINARY_ADD, CLT__BINARY_SUB, CLT__BINARY_MUL};
static const char OP_CHARS[] = {'+', '-', '*'};

/* Compares n results with atol and rtol, widened in a 16-bit storage by the rounding of
 * each result to it. */
static void assert_close(enum clt_precision s, const char *what, const float *got,
                         const double *want, size_t n, double atol, double rtol)
{
    if (s == CLT_PRECISION_FP32)
        clt_test_assert_close(what, got, want, n, atol, rtol);
    else
        st_assert_close(what, s, got, want, n, atol + ST_ATOL, rtol + clt_test_eps(s));
}

/* Every dispatch for one pair of shapes, in storage s (the workspace float). */
static void run_pair(struct clt_device *dev, const struct pair *pr, int k, enum clt_precision s)
{
    struct clt__broadcast plan;
    uint32_t yn;
    int64_t ys[CLT_MAX_DIMS];
    int axis;
    assert_true(clt__broadcast_shape(pr->an, pr->as, pr->bn, pr->bs, &yn, ys, &axis));
    clt__broadcast_plan(pr->an, pr->as, pr->bn, pr->bs, &plan);
    size_t na = (size_t)count_of(pr->an, pr->as), nb = (size_t)count_of(pr->bn, pr->bs);
    size_t ny = (size_t)count_of(yn, ys), nmax = na > nb ? na : nb;
    double kmax = (double)ny / (double)(na < nb ? na : nb);
    float *a = clt_test_floats(na), *b = clt_test_floats(nb), *dy = clt_test_floats(ny);
    float *prev = clt_test_floats(nmax), *got = clt_test_floats(ny);
    double *want = clt_test_doubles(ny);
    clt_test_fill(a, na, 11 + (uint64_t)k, -1.0f, 1.0f);
    clt_test_fill(b, nb, 23 + (uint64_t)k, -1.0f, 1.0f);
    clt_test_fill(dy, ny, 37 + (uint64_t)k, -1.0f, 1.0f);
    clt_test_fill(prev, nmax, 41 + (uint64_t)k, -1.0f, 1.0f);
    clt_test_round(a, na, s);
    clt_test_round(b, nb, s);
    clt_test_round(dy, ny, s);
    clt_test_round(prev, nmax, s);
    struct tensor ta = tensor_new_st(dev, a, na, s), tb = tensor_new_st(dev, b, nb, s);
    struct tensor ty = tensor_new_st(dev, NULL, ny, s), tdy = tensor_new_st(dev, dy, ny, s);
    struct tensor tda = tensor_new_st(dev, NULL, na, s), tdb = tensor_new_st(dev, NULL, nb, s);
    size_t nw = (size_t)(clt__broadcast_workspace_bytes(&plan) / sizeof(float));
    struct tensor tw = tensor_new(dev, NULL, nw > 0 ? nw : 1);
    char what[160];
    for (size_t o = 0; o < sizeof OPS / sizeof *OPS; o++) {
        snprintf(what, sizeof what, "pair %d, %c", k, OP_CHARS[o]);
        tensor_write(&ty, NULL);
        assert_int_equal(clt__broadcast_forward(dev, OPS[o], &plan, tensor_buf(&ta),
                                                tensor_buf(&tb), tensor_buf(&ty)),
                         CLT_OK);
        tensor_read(&ty, got, what);
        ref_broadcast_forward(OP_CHARS[o], pr->an, pr->as, a, pr->bn, pr->bs, b, want);
        assert_close(s, what, got, want, ny, 1e-7, 2.4e-7);

        /* acc 0b10: da written over NaN, db added to prev; then 0b01, the other way. */
        for (uint32_t acc = 1; acc <= 2; acc++) {
            bool add_a = acc & 1, add_b = acc & 2;
            tensor_write(&tda, add_a ? prev : NULL);
            tensor_write(&tdb, add_b ? prev : NULL);
            assert_int_equal(clt__broadcast_backward(dev, OPS[o], &plan, tensor_buf(&ta),
                                                     tensor_buf(&tb), tensor_buf(&tdy),
                                                     tensor_buf(&tda), tensor_buf(&tdb), acc,
                                                     tensor_buf(&tw)),
                             CLT_OK);
            double atol = 4e-7 * (kmax + 1.0);
            snprintf(what, sizeof what, "pair %d, %c, da, acc %u", k, OP_CHARS[o], acc);
            tensor_read(&tda, got, what);
            ref_broadcast_backward(OP_CHARS[o], 0, pr->an, pr->as, a, pr->bn, pr->bs, b, dy,
                                   add_a ? prev : NULL, want);
            assert_close(s, what, got, want, na, atol, 2.4e-7);
            snprintf(what, sizeof what, "pair %d, %c, db, acc %u", k, OP_CHARS[o], acc);
            tensor_read(&tdb, got, what);
            ref_broadcast_backward(OP_CHARS[o], 1, pr->an, pr->as, a, pr->bn, pr->bs, b, dy,
                                   add_b ? prev : NULL, want);
            assert_close(s, what, got, want, nb, atol, 2.4e-7);
        }

        /* One gradient alone: the other buffer is not touched. */
        tensor_write(&tda, prev);
        tensor_write(&tdb, NULL);
        assert_int_equal(clt__broadcast_backward(dev, OPS[o], &plan, tensor_buf(&ta),
                                                 tensor_buf(&tb), tensor_buf(&tdy), NONE,
                                                 tensor_buf(&tdb), 0, tensor_buf(&tw)),
                         CLT_OK);
        tensor_read(&tda, got, what);
        assert_memory_equal(got, prev, na * sizeof *got);
    }
    clt_arena_free(ta.arena);
    clt_arena_free(tb.arena);
    clt_arena_free(ty.arena);
    clt_arena_free(tdy.arena);
    clt_arena_free(tda.arena);
    clt_arena_free(tdb.arena);
    clt_arena_free(tw.arena);
    free(a);
    free(b);
    free(dy);
    free(prev);
    free(got);
    free(want);
}

static void launchers_match_the_reference(void **state)
{
    struct clt_device *dev = *state;
    for (size_t k = 0; k < sizeof PAIRS / sizeof *PAIRS; k++) {
        const struct pair *pr = &PAIRS[k];
        int64_t na = count_of(pr->an, pr->as), nb = count_of(pr->bn, pr->bs);
        if (clt_test_small() && (na > 600 || nb > 600))
            continue;
        run_pair(dev, pr, (int)k, CLT_PRECISION_FP32);
    }
}

/* Pairs whose general reduction takes several rounds: b's gradient sums 77 100 outputs over
 * two stretched axes (broadcast_backward_part, _wide and _last), and 260 under Oclgrind
 * (_part and _last). */
static const struct pair PAIRS16[] = {
    {3, 3, {300, 1, 257}, {1, 3, 1}},
    {3, 3, {2, 1, 130}, {1, 3, 1}},
};

/* Every dispatch in fp16 and bf16: the pairs above (but the scalar of 77 100 terms, whose
 * one-axis sum the long pair of PAIRS16 covers, and under Oclgrind those of more than 800
 * outputs) and PAIRS16, on inputs rounded to the storage. */
static void launchers_in_16_bit(void **state)
{
    struct clt_device *dev = *state;
    for (size_t i = 0; i < ST_STORAGES; i++) {
        enum clt_precision s = st_storages[i], was = clt__storage_set(dev, s);
        for (size_t k = 0; k < COUNT(PAIRS) + COUNT(PAIRS16); k++) {
            const struct pair *pr = k < COUNT(PAIRS) ? &PAIRS[k] : &PAIRS16[k - COUNT(PAIRS)];
            uint32_t yn;
            int64_t ys[CLT_MAX_DIMS];
            int axis;
            assert_true(clt__broadcast_shape(pr->an, pr->as, pr->bn, pr->bs, &yn, ys, &axis));
            if ((clt_test_small() && count_of(yn, ys) > 800) || (pr->an == 1 && pr->as[0] == 1))
                continue;
            run_pair(dev, pr, (int)k, s);
        }
        clt__storage_set(dev, was);
    }
    st_report("launchers_in_16_bit");
}

/* ==== Arguments ========================================================================= */

static void bad_arguments_are_refused(void **state)
{
    struct clt_device *dev = *state;
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, 4096 * sizeof(float), &arena), CLT_OK);
    struct clt_view v = clt_test_tensor(arena, NULL, 64);
    struct clt__buf x = clt__view_buf(&v);
    struct clt__broadcast plan;
    clt__broadcast_plan(SHAPE(4, 5), SHAPE(3, 4, 5), &plan);
    /* No device, a malformed plan, an axis nobody has, a buffer too small. */
    assert_int_equal(clt__broadcast_forward(NULL, CLT__BINARY_ADD, &plan, x, x, x),
                     CLT_ERR_INVALID_ARGUMENT);
    struct clt__broadcast bad = plan;
    bad.ndim = 0;
    assert_int_equal(clt__broadcast_forward(dev, CLT__BINARY_SUB, &bad, x, x, x),
                     CLT_ERR_INVALID_ARGUMENT);
    bad = plan;
    bad.bmask = 1;
    bad.amask = 1;
    assert_int_equal(clt__broadcast_backward(dev, CLT__BINARY_SUB, &bad, x, x, x, x, x, 0, x),
                     CLT_ERR_INVALID_ARGUMENT);
    struct clt_view va = clt_test_tensor(arena, NULL, 20), vy = clt_test_tensor(arena, NULL, 60);
    assert_int_equal(clt__broadcast_forward(dev, CLT__BINARY_SUB, &plan, clt__view_buf(&va), x,
                                            clt__view_buf(&vy)),
                     CLT_OK);
    /* y and b of 10 000 elements in a buffer of 4096. */
    clt__broadcast_plan(SHAPE(40, 50), SHAPE(5, 40, 50), &plan);
    assert_int_equal(clt__broadcast_forward(dev, CLT__BINARY_SUB, &plan, x, x, x),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__broadcast_forward(dev, CLT__BINARY_ADD, &plan, x, x, x),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__broadcast_backward(dev, CLT__BINARY_MUL, &plan, x, x, x, x, NONE, 0, x),
                     CLT_ERR_INVALID_ARGUMENT);
    /* A scalar's gradient over 1000 outputs sums in chunks of CLT__SUM_AXIS_CHUNK (64): 16
     * partials of workspace. */
    clt__broadcast_plan(SHAPE(1), SHAPE(1000), &plan);
    assert_int_equal(clt__broadcast_workspace_bytes(&plan), 16 * sizeof(float));
    struct clt_view big = clt_test_tensor(arena, NULL, 1000);
    struct clt__buf y = clt__view_buf(&big), w = x;
    w.offset = 4081; /* 15 floats left in the arena's 4096: too few */
    assert_int_equal(
        clt__broadcast_backward(dev, CLT__BINARY_ADD, &plan, NONE, NONE, y, x, NONE, 0, w),
        CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    clt_arena_free(arena);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plans_merge_axes),
        CLT_DEVICE_TEST(launchers_match_the_reference),
        CLT_DEVICE_TEST(bad_arguments_are_refused),
        CLT_DEVICE_TEST(launchers_in_16_bit),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
