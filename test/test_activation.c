/*
 * test_activation.c: the activation functions and dropout against the C reference, forward
 * and backward (accumulate false and true, in place, at non-zero offsets), for sizes that are
 * no multiple of any work-group size, n = 1 included, and 64 (whole 32-element rows only: the
 * launchers run whole rows through the _rows kernels and the rest one element a work-item,
 * so the other sizes test both parts); extreme inputs; finite-difference
 * checks of every backward; dropout's mask bit for bit, its statistics, and argument checks.
 *
 * Tolerances:
 * - Activations against the double reference: |got - want| <= 1e-6 + 1e-5 |want|. The
 *   kernels are a few float operations and built-in exp/erfc/tanh (<= 16 ulp by the OpenCL
 *   spec), so relative errors stay near 1e-6; the absolute term covers the zero crossings
 *   of gelu' (near x = -0.75), where a few ulp of terms of size 0.5 remain. Measured on
 *   PoCL and rusticl over [-20, 20]: worst 2.5e-6 relative, 2.1e-7 absolute.
 * - Dropout: exact (0 ulp). The mask is integer arithmetic, and y = x * scale, dx = prev +
 *   dy * scale are single correctly rounded float operations on the host and the device.
 * - Finite differences of dropout (the activations' are in test_ops.c): central, eps = 1e-2,
 *   of L(x) = sum_i w_i f(x_i) evaluated with the device forward pass; passes when
 *   |fd - grad| <= 2e-3 + 1e-2 |fd|. Inputs are uniform in [-4, 4) with |x| >= 0.1.
 * - Dropout's kept fraction over n elements must be within 6 standard deviations of 1 - p,
 *   6 sqrt(n p (1 - p)): a sound generator fails that with probability below 2e-9.
 * - In 16-bit storage (fp16, bf16), inputs in [-6, 6) rounded to the storage, the reference
 *   in double on them: activations 1e-6 + (1e-5 + u) |want| (u = 2^-11 fp16, 2^-8 bf16: the
 *   one rounding of the float result to the storage; measured worst on PoCL 0.993 of it, a
 *   bf16 tie); dropout exact: the reference's float result rounded to the storage.
 *
 * The activations and the argument checks are in this file, which lists every test; dropout
 * in test_activation_dropout.c; 16-bit storage in test_activation16.c; the guards and inputs
 * they share in activation_rig.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation_rig.h"
#include "ref_activation.h"

/* ---- activations against the reference --------------------------------------------- */

/* Forward, backward with accumulate false (dx starts as NaN) and true, on fresh views that
 * start at non-zero offsets. */
static void check_activation(struct clt_device *dev, enum clt__act act, size_t n)
{
    const float slope = slope_of(act);
    float *x = clt_test_floats(n), *dy = clt_test_floats(n), *prev = clt_test_floats(n);
    float *got = clt_test_floats(n), *nan = nan_and_guard(n);
    double *want = clt_test_doubles(n);
    fill_input(x, n, 101 + n);
    clt_test_fill(dy, n, 202 + n, -1.0f, 1.0f);
    clt_test_fill(prev, n, 303 + n, -1.0f, 1.0f);

    struct clt_arena *arena = arena_for(dev, 4 * n + 2 * GUARD + 8);
    (void)clt_test_upload(arena, NULL, 3); /* puts what follows at a non-zero offset */
    struct clt_view vx = clt_test_tensor(arena, x, n), vy = clt_test_tensor(arena, nan, n + GUARD);
    struct clt_view vdy = clt_test_tensor(arena, dy, n),
                    vdx = clt_test_tensor(arena, nan, n + GUARD);
    char what[128];

    assert_int_equal(clt__activation_forward(dev, act, slope, (int64_t)n, clt__view_buf(&vx),
                                             clt__view_buf(&vy)),
                     CLT_OK);
    clt_test_download(&vy, got, n);
    ref_activation_forward(act, slope, x, want, n);
    snprintf(what, sizeof what, "%s forward n=%zu", clt__act_name(act), n);
    clt_test_assert_close(what, got, want, n, ACT_ATOL, ACT_RTOL);

    assert_int_equal(clt__activation_backward(dev, act, slope, (int64_t)n, clt__view_buf(&vx),
                                              clt__view_buf(&vdy), clt__view_buf(&vdx), false),
                     CLT_OK);
    clt_test_download(&vdx, got, n);
    ref_activation_backward(act, slope, x, dy, NULL, want, n);
    snprintf(what, sizeof what, "%s backward n=%zu", clt__act_name(act), n);
    clt_test_assert_close(what, got, want, n, ACT_ATOL, ACT_RTOL);

    clt_test_put(&vdx, prev, n);
    assert_int_equal(clt__activation_backward(dev, act, slope, (int64_t)n, clt__view_buf(&vx),
                                              clt__view_buf(&vdy), clt__view_buf(&vdx), true),
                     CLT_OK);
    clt_test_download(&vdx, got, n);
    ref_activation_backward(act, slope, x, dy, prev, want, n);
    snprintf(what, sizeof what, "%s backward accumulate n=%zu", clt__act_name(act), n);
    clt_test_assert_close(what, got, want, n, ACT_ATOL, ACT_RTOL);
    assert_guard(what, &vy, n);
    assert_guard(what, &vdx, n);

    clt_arena_free(arena);
    free(x);
    free(dy);
    free(prev);
    free(got);
    free(nan);
    free(want);
}

static void activations_match_reference(void **state)
{
    struct clt_device *dev = *state;
    static const size_t big[] = {1, 2, 7, 33, 64, 257, 1000, 4099, 65537};
    static const size_t small[] = {1, 7, 33, 64, 130};
    const bool is_small = clt_test_small();
    const size_t *sizes = is_small ? small : big;
    size_t count = is_small ? sizeof small / sizeof *small : sizeof big / sizeof *big;
    for (int act = 0; act < CLT__ACT_COUNT; act++)
        for (size_t s = 0; s < count; s++)
            check_activation(dev, (enum clt__act)act, sizes[s]);
}

/* Other slopes of leaky relu, negative and above 1 included. */
static void leaky_relu_slopes(void **state)
{
    struct clt_device *dev = *state;
    const size_t n = 77;
    const float slopes[] = {0.0f, 0.01f, -0.5f, 2.0f};
    float x[77], dy[77], got[77];
    double want[77];
    fill_input(x, n, 7);
    clt_test_fill(dy, n, 8, -1.0f, 1.0f);
    struct clt_arena *arena = arena_for(dev, 3 * n);
    struct clt_view vx = clt_test_tensor(arena, x, n), vy = clt_test_upload(arena, NULL, n);
    struct clt_view vdy = clt_test_tensor(arena, dy, n);
    for (size_t s = 0; s < sizeof slopes / sizeof *slopes; s++) {
        char what[64];
        snprintf(what, sizeof what, "leaky_relu slope %g", (double)slopes[s]);
        assert_int_equal(clt__activation_forward(dev, CLT__ACT_LEAKY_RELU, slopes[s], n,
                                                 clt__view_buf(&vx), clt__view_buf(&vy)),
                         CLT_OK);
        clt_test_download(&vy, got, n);
        ref_activation_forward(CLT__ACT_LEAKY_RELU, slopes[s], x, want, n);
        clt_test_assert_close(what, got, want, n, ACT_ATOL, ACT_RTOL);
        assert_int_equal(clt__activation_backward(dev, CLT__ACT_LEAKY_RELU, slopes[s], n,
                                                  clt__view_buf(&vx), clt__view_buf(&vdy),
                                                  clt__view_buf(&vy), false),
                         CLT_OK);
        clt_test_download(&vy, got, n);
        ref_activation_backward(CLT__ACT_LEAKY_RELU, slopes[s], x, dy, NULL, want, n);
        clt_test_assert_close(what, got, want, n, ACT_ATOL, ACT_RTOL);
    }
    clt_arena_free(arena);
}

/* Only extreme inputs: every output finite and still within tolerance of the reference. */
static void extreme_inputs_stay_finite(void **state)
{
    struct clt_device *dev = *state;
    const size_t n = SPECIAL_COUNT;
    float x[SPECIAL_COUNT], dy[SPECIAL_COUNT], y[SPECIAL_COUNT], dx[SPECIAL_COUNT];
    double want[SPECIAL_COUNT];
    memcpy(x, special, sizeof x);
    for (size_t i = 0; i < n; i++)
        dy[i] = 1.0f;
    struct clt_arena *arena = arena_for(dev, 4 * n);
    struct clt_view vx = clt_test_tensor(arena, x, n), vy = clt_test_upload(arena, NULL, n);
    struct clt_view vdy = clt_test_tensor(arena, dy, n), vdx = clt_test_upload(arena, NULL, n);
    for (int a = 0; a < CLT__ACT_COUNT; a++) {
        enum clt__act act = (enum clt__act)a;
        assert_int_equal(clt__activation_forward(dev, act, slope_of(act), n, clt__view_buf(&vx),
                                                 clt__view_buf(&vy)),
                         CLT_OK);
        assert_int_equal(clt__activation_backward(dev, act, slope_of(act), n, clt__view_buf(&vx),
                                                  clt__view_buf(&vdy), clt__view_buf(&vdx), false),
                         CLT_OK);
        clt_test_download(&vy, y, n);
        clt_test_download(&vdx, dx, n);
        for (size_t i = 0; i < n; i++)
            if (!isfinite(y[i]) || !isfinite(dx[i]))
                fail_msg("%s at x = %g: f = %g, f' = %g", clt__act_name(act), (double)x[i],
                         (double)y[i], (double)dx[i]);
        char what[64];
        snprintf(what, sizeof what, "%s extreme forward", clt__act_name(act));
        ref_activation_forward(act, slope_of(act), x, want, n);
        clt_test_assert_close(what, y, want, n, ACT_ATOL, ACT_RTOL);
        snprintf(what, sizeof what, "%s extreme backward", clt__act_name(act));
        ref_activation_backward(act, slope_of(act), x, dy, NULL, want, n);
        clt_test_assert_close(what, dx, want, n, ACT_ATOL, ACT_RTOL);
    }
    clt_arena_free(arena);
}

/* A NaN input gives a NaN output (and a NaN gradient, but for the sign test of relu and
 * leaky relu): the ops must not hide a diverging model. */
static void nan_propagates(void **state)
{
    struct clt_device *dev = *state;
    const float x[3] = {NAN, 1.0f, -1.0f}, ones[3] = {1.0f, 1.0f, 1.0f};
    float y[3], dx[3];
    struct clt_arena *arena = arena_for(dev, 12);
    struct clt_view vx = clt_test_tensor(arena, x, 3), vdy = clt_test_tensor(arena, ones, 3);
    struct clt_view vy = clt_test_upload(arena, NULL, 3), vdx = clt_test_upload(arena, NULL, 3);
    for (int a = 0; a < CLT__ACT_COUNT; a++) {
        enum clt__act act = (enum clt__act)a;
        assert_int_equal(clt__activation_forward(dev, act, slope_of(act), 3, clt__view_buf(&vx),
                                                 clt__view_buf(&vy)),
                         CLT_OK);
        assert_int_equal(clt__activation_backward(dev, act, slope_of(act), 3, clt__view_buf(&vx),
                                                  clt__view_buf(&vdy), clt__view_buf(&vdx), false),
                         CLT_OK);
        clt_test_download(&vy, y, 3);
        clt_test_download(&vdx, dx, 3);
        const bool sign_test = act == CLT__ACT_RELU || act == CLT__ACT_LEAKY_RELU;
        if (!isnan(y[0]) || (!sign_test && !isnan(dx[0])))
            fail_msg("%s of NaN: f = %g, f' = %g", clt__act_name(act), (double)y[0], (double)dx[0]);
        if (isnan(y[1]) || isnan(y[2]) || isnan(dx[1]) || isnan(dx[2]))
            fail_msg("%s: NaN leaked into a neighbour", clt__act_name(act));
    }
    clt_arena_free(arena);
}

/* y = f(x) with y the same range as x, and dx (+)= dy f'(x) with dx the same range as dy. */
static void in_place(void **state)
{
    struct clt_device *dev = *state;
    const size_t n = 45;
    float x[45], dy[45], got[45];
    double want[45];
    fill_input(x, n, 9);
    clt_test_fill(dy, n, 10, -1.0f, 1.0f);
    struct clt_arena *arena = arena_for(dev, 2 * n);
    struct clt_view vx = clt_test_upload(arena, NULL, n), vdy = clt_test_upload(arena, NULL, n);
    for (int a = 0; a < CLT__ACT_COUNT; a++) {
        enum clt__act act = (enum clt__act)a;
        const float slope = slope_of(act);
        char what[64];
        for (int acc = 0; acc < 2; acc++) {
            clt_test_put(&vx, x, n);
            clt_test_put(&vdy, dy, n);
            assert_int_equal(clt__activation_backward(dev, act, slope, n, clt__view_buf(&vx),
                                                      clt__view_buf(&vdy), clt__view_buf(&vdy),
                                                      acc),
                             CLT_OK);
            clt_test_download(&vdy, got, n);
            ref_activation_backward(act, slope, x, dy, acc ? dy : NULL, want, n);
            snprintf(what, sizeof what, "%s backward in place acc=%d", clt__act_name(act), acc);
            clt_test_assert_close(what, got, want, n, ACT_ATOL, ACT_RTOL);
        }
        assert_int_equal(
            clt__activation_forward(dev, act, slope, n, clt__view_buf(&vx), clt__view_buf(&vx)),
            CLT_OK);
        clt_test_download(&vx, got, n);
        ref_activation_forward(act, slope, x, want, n);
        snprintf(what, sizeof what, "%s forward in place", clt__act_name(act));
        clt_test_assert_close(what, got, want, n, ACT_ATOL, ACT_RTOL);
    }
    clt_arena_free(arena);
}

/* ---- arguments ----------------------------------------------------------------------- */

static void bad_arguments_are_refused(void **state)
{
    struct clt_device *dev = *state;
    struct clt_test_log log = {.len = 0};
    const struct clt_log keep_log = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &log, CLT_LOG_DEBUG};
    const float zeros[16] = {0};
    struct clt_arena *arena = arena_for(dev, 32);
    struct clt_view v = clt_test_tensor(arena, zeros, 16), w = clt_test_tensor(arena, zeros, 16);
    struct clt__buf a = clt__view_buf(&v), b = clt__view_buf(&w), null = {NULL, 0};
    struct clt__buf past_end = b;
    past_end.offset = clt_arena_size(arena) / sizeof(float) - 4;
    const enum clt_status bad = CLT_ERR_INVALID_ARGUMENT;
    const enum clt__act relu = CLT__ACT_RELU;

    assert_int_equal(clt__activation_forward(dev, relu, 0.0f, 16, a, b), CLT_OK);
    assert_int_equal(clt__activation_forward(dev, relu, 0.0f, 0, a, b), CLT_OK);
    assert_int_equal(clt__activation_forward(NULL, relu, 0.0f, 16, a, b), bad);
    assert_int_equal(clt__activation_forward(dev, relu, 0.0f, -1, a, b), bad);
    assert_int_equal(clt__activation_forward(dev, relu, 0.0f, (int64_t)1 << 31, a, b), bad);
    assert_int_equal(clt__activation_forward(dev, (enum clt__act)CLT__ACT_COUNT, 0.0f, 16, a, b),
                     bad);
    assert_int_equal(clt__activation_forward(dev, (enum clt__act) - 1, 0.0f, 16, a, b), bad);
    assert_int_equal(clt__activation_forward(dev, CLT__ACT_LEAKY_RELU, NAN, 16, a, b), bad);
    assert_int_equal(clt__activation_forward(dev, CLT__ACT_LEAKY_RELU, INFINITY, 16, a, b), bad);
    assert_int_equal(clt__activation_forward(dev, relu, 0.0f, 16, null, b), bad);
    assert_int_equal(clt__activation_forward(dev, relu, 0.0f, 16, a, null), bad);
    assert_int_equal(clt__activation_forward(dev, relu, 0.0f, 4, a, past_end), CLT_OK);
    assert_int_equal(clt__activation_forward(dev, relu, 0.0f, 5, a, past_end), bad);
    assert_int_equal(clt__activation_backward(dev, relu, 0.0f, 16, a, a, b, true), CLT_OK);
    assert_int_equal(clt__activation_backward(dev, relu, 0.0f, 16, null, a, b, true), bad);
    assert_int_equal(clt__activation_backward(dev, relu, 0.0f, 16, a, null, b, true), bad);
    assert_int_equal(clt__activation_backward(dev, relu, 0.0f, 16, a, a, null, true), bad);
    assert_int_equal(clt__activation_backward(dev, relu, 0.0f, 5, a, past_end, b, true), bad);
    assert_int_equal(clt__activation_backward(dev, relu, NAN, 16, a, a, b, true), bad);

    assert_int_equal(clt__dropout_forward(dev, 0.5f, 1, 2, 16, a, b), CLT_OK);
    assert_int_equal(clt__dropout_forward(dev, 0.5f, 1, 2, 0, a, b), CLT_OK);
    assert_int_equal(clt__dropout_forward(NULL, 0.5f, 1, 2, 16, a, b), bad);
    assert_int_equal(clt__dropout_forward(dev, 1.0f, 1, 2, 16, a, b), bad);
    assert_int_equal(clt__dropout_forward(dev, 1.5f, 1, 2, 16, a, b), bad);
    assert_int_equal(clt__dropout_forward(dev, -0.1f, 1, 2, 16, a, b), bad);
    assert_int_equal(clt__dropout_forward(dev, NAN, 1, 2, 16, a, b), bad);
    assert_int_equal(clt__dropout_forward(dev, 0.5f, 1, 2, -3, a, b), bad);
    assert_int_equal(clt__dropout_forward(dev, 0.5f, 1, 2, 16, null, b), bad);
    assert_int_equal(clt__dropout_forward(dev, 0.5f, 1, 2, 5, a, past_end), bad);
    assert_int_equal(clt__dropout_backward(dev, 0.5f, 1, 2, 16, a, b, false), CLT_OK);
    assert_int_equal(clt__dropout_backward(dev, 1.0f, 1, 2, 16, a, b, false), bad);
    assert_int_equal(clt__dropout_backward(dev, 0.5f, 1, 2, 16, a, null, false), bad);
    assert_int_equal(clt__dropout_backward(dev, 0.5f, 1, 2, 5, past_end, b, true), bad);
    assert_int_equal(clt_device_finish(dev), CLT_OK);

    /* Each refusal said why. */
    assert_non_null(strstr(log.text, "p = 1 is outside [0, 1)"));
    assert_non_null(strstr(log.text, "slope nan is not finite"));
    assert_non_null(strstr(log.text, "unknown activation 7"));
    assert_non_null(strstr(log.text, "x is NULL"));
    dev->log = keep_log;
    clt_arena_free(arena);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(activations_match_reference),
        CLT_DEVICE_TEST(leaky_relu_slopes),
        CLT_DEVICE_TEST(extreme_inputs_stay_finite),
        CLT_DEVICE_TEST(nan_propagates),
        CLT_DEVICE_TEST(in_place),
        CLT_DEVICE_TEST(dropout_gradient_matches_finite_differences),
        CLT_DEVICE_TEST(philox_known_answers),
        CLT_DEVICE_TEST(dropout_matches_reference_bit_for_bit),
        CLT_DEVICE_TEST(dropout_statistics),
        CLT_DEVICE_TEST(bad_arguments_are_refused),
        CLT_DEVICE_TEST(activations_in_16_bit),
        CLT_DEVICE_TEST(dropout_in_16_bit),
        CLT_DEVICE_TEST(launchers_size_buffers_by_the_storage),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
