/*
 * test_activation16.c: activations and dropout in 16-bit storage (fp16, bf16) against the
 * reference on rounded inputs, and launchers that size buffers by the storage.
 */

#include <stdio.h>
#include <stdlib.h>

#include "activation_rig.h"
#include "ref_activation.h"
#include "st_tensor.h"

/* ---- 16-bit storage ------------------------------------------------------------------ */

/* Activations in one 16-bit storage, n elements: forward, backward with accumulate off and
 * on, and both in place, on inputs rounded to the storage, against the reference on those
 * inputs. */
static void check_activation16(struct clt_device *dev, enum clt_precision s, enum clt__act act,
                               size_t n)
{
    const float slope = slope_of(act);
    const double atol = ACT_ATOL, rtol = ACT_RTOL + clt_test_eps(s);
    /* [-6, 6): past +-11 fp16's gelu'/silu' terms stay in range; the specials above 20
     * overflow fp16 and are left to the fp32 tests. */
    float *x = st_input(n, 111 + n, -6.0f, 6.0f, s), *dy = st_input(n, 222 + n, -1.0f, 1.0f, s);
    float *prev = st_input(n, 333 + n, -1.0f, 1.0f, s), *got = clt_test_floats(n);
    double *want = clt_test_doubles(n);
    if (n >= 8)
        x[n / 2] = 0.0f, x[n / 3] = -0.75f, x[n / 4] = 1e-3f, x[n / 5] = -5.0f;
    clt_test_round(x, n, s);
    struct clt_arena *arena = st_arena(dev, 4 * n, 4);
    struct st_tensor tx = st_tensor(arena, x, n, s), ty = st_tensor(arena, NULL, n, s);
    struct st_tensor tdy = st_tensor(arena, dy, n, s), tdx = st_tensor(arena, NULL, n, s);
    char what[128];

    assert_int_equal(clt__activation_forward(dev, act, slope, (int64_t)n, tx.buf, ty.buf), CLT_OK);
    snprintf(what, sizeof what, "%s forward n=%zu", clt__act_name(act), n);
    st_get(&ty, got, what);
    ref_activation_forward(act, slope, x, want, n);
    st_assert_close(what, s, got, want, n, atol, rtol);

    for (int acc = 0; acc < 2; acc++) {
        st_put(&tdx, acc ? prev : NULL);
        assert_int_equal(
            clt__activation_backward(dev, act, slope, (int64_t)n, tx.buf, tdy.buf, tdx.buf, acc),
            CLT_OK);
        snprintf(what, sizeof what, "%s backward acc=%d n=%zu", clt__act_name(act), acc, n);
        st_get(&tdx, got, what);
        ref_activation_backward(act, slope, x, dy, acc ? prev : NULL, want, n);
        st_assert_close(what, s, got, want, n, atol, rtol);
    }

    /* In place: dx over dy, then y over x. */
    st_put(&tdy, dy);
    assert_int_equal(
        clt__activation_backward(dev, act, slope, (int64_t)n, tx.buf, tdy.buf, tdy.buf, true),
        CLT_OK);
    snprintf(what, sizeof what, "%s backward in place n=%zu", clt__act_name(act), n);
    st_get(&tdy, got, what);
    ref_activation_backward(act, slope, x, dy, dy, want, n);
    st_assert_close(what, s, got, want, n, atol, rtol);
    assert_int_equal(clt__activation_forward(dev, act, slope, (int64_t)n, tx.buf, tx.buf), CLT_OK);
    snprintf(what, sizeof what, "%s forward in place n=%zu", clt__act_name(act), n);
    st_get(&tx, got, what);
    ref_activation_forward(act, slope, x, want, n);
    st_assert_close(what, s, got, want, n, atol, rtol);

    clt_arena_free(arena);
    free(x);
    free(dy);
    free(prev);
    free(got);
    free(want);
}

void activations_in_16_bit(void **state)
{
    struct clt_device *dev = *state;
    static const size_t big[] = {1, 7, 33, 64, 1000, 4099};
    static const size_t small[] = {1, 33, 64};
    const bool is_small = clt_test_small();
    const size_t *sizes = is_small ? small : big;
    size_t count = is_small ? sizeof small / sizeof *small : sizeof big / sizeof *big;
    for (size_t k = 0; k < ST_STORAGES; k++) {
        enum clt_precision was = clt__storage_set(dev, st_storages[k]);
        for (int act = 0; act < CLT__ACT_COUNT; act++)
            for (size_t i = 0; i < count; i++)
                check_activation16(dev, st_storages[k], (enum clt__act)act, sizes[i]);
        clt__storage_set(dev, was);
    }
    st_report("activations_in_16_bit");
}

/* Dropout in a 16-bit storage: the reference's float result rounded to the storage, bit for
 * bit (the kernel computes x * scale and prev + dy * scale in float as the reference does,
 * then rounds once to nearest even, as clt_test_round does). */
static void check_dropout16(struct clt_device *dev, enum clt_precision s, float p, uint64_t seed,
                            uint64_t step, size_t n)
{
    float *x = st_input(n, 21 + n, -2.0f, 2.0f, s), *dy = st_input(n, 22 + n, -2.0f, 2.0f, s);
    float *prev = st_input(n, 23 + n, -2.0f, 2.0f, s), *got = clt_test_floats(n);
    float *want = clt_test_floats(n);
    struct clt_arena *arena = st_arena(dev, 4 * n, 4);
    struct st_tensor tx = st_tensor(arena, x, n, s), ty = st_tensor(arena, NULL, n, s);
    struct st_tensor tdy = st_tensor(arena, dy, n, s);
    char what[160];
    snprintf(what, sizeof what, "dropout %s p=%g n=%zu", st_name(s), (double)p, n);

    assert_int_equal(clt__dropout_forward(dev, p, seed, step, n, tx.buf, ty.buf), CLT_OK);
    st_get(&ty, got, what);
    ref_dropout_forward(p, seed, step, x, want, n);
    clt_test_round(want, n, s);
    assert_same_bits(what, got, want, n);
    for (int acc = 0; acc < 2; acc++) {
        st_put(&ty, acc ? prev : NULL);
        assert_int_equal(clt__dropout_backward(dev, p, seed, step, n, tdy.buf, ty.buf, acc),
                         CLT_OK);
        st_get(&ty, got, what);
        ref_dropout_backward(p, seed, step, dy, acc ? prev : NULL, want, n);
        clt_test_round(want, n, s);
        assert_same_bits(what, got, want, n);
    }
    /* In place: y over x. */
    assert_int_equal(clt__dropout_forward(dev, p, seed, step, n, tx.buf, tx.buf), CLT_OK);
    st_get(&tx, got, what);
    ref_dropout_forward(p, seed, step, x, want, n);
    clt_test_round(want, n, s);
    assert_same_bits(what, got, want, n);
    clt_arena_free(arena);
    free(x);
    free(dy);
    free(prev);
    free(got);
    free(want);
}

void dropout_in_16_bit(void **state)
{
    struct clt_device *dev = *state;
    static const size_t big[] = {1, 5, 258, 1001, 65539};
    static const size_t small[] = {1, 5, 130};
    const bool is_small = clt_test_small();
    const size_t *sizes = is_small ? small : big;
    size_t count = is_small ? sizeof small / sizeof *small : sizeof big / sizeof *big;
    for (size_t k = 0; k < ST_STORAGES; k++) {
        enum clt_precision was = clt__storage_set(dev, st_storages[k]);
        for (size_t i = 0; i < count; i++)
            check_dropout16(dev, st_storages[k], 0.3f, 0xfedcba9876543210ULL, 5, sizes[i]);
        check_dropout16(dev, st_storages[k], 0.0f, 99, 7, 77);
        clt__storage_set(dev, was);
    }
}

/* The launchers check buffers in the storage's element size: n elements of 16 bits fit a
 * buffer that n floats would overflow. */
void launchers_size_buffers_by_the_storage(void **state)
{
    struct clt_device *dev = *state;
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, 4096, &arena), CLT_OK);
    struct clt_view v = clt_test_upload(arena, NULL, 1024); /* 4096 bytes */
    struct clt__buf b = clt__view_buf(&v);
    const int64_t n = 1536; /* 3072 bytes in 16 bits, 6144 in fp32 */
    static struct clt_test_log log;
    struct clt_log saved = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &log, CLT_LOG_DEBUG};
    enum clt_precision was = clt__storage_set(dev, CLT_PRECISION_FP32);
    assert_int_equal(clt__activation_forward(dev, CLT__ACT_RELU, 0.0f, n, b, b),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__dropout_forward(dev, 0.5f, 1, 1, n, b, b), CLT_ERR_INVALID_ARGUMENT);
    for (size_t k = 0; k < ST_STORAGES; k++) {
        clt__storage_set(dev, st_storages[k]);
        assert_int_equal(clt__activation_forward(dev, CLT__ACT_RELU, 0.0f, n, b, b), CLT_OK);
        assert_int_equal(clt__dropout_backward(dev, 0.5f, 1, 1, n, b, b, true), CLT_OK);
        assert_int_equal(clt__activation_forward(dev, CLT__ACT_RELU, 0.0f, 2049, b, b),
                         CLT_ERR_INVALID_ARGUMENT);
    }
    clt__storage_set(dev, was);
    assert_int_equal(clFinish(dev->queue), CL_SUCCESS);
    dev->log = saved;
    clt_arena_free(arena);
}
