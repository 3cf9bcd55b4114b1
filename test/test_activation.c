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
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/activation.h"
#include "ref_activation.h"
#include "st_tensor.h"

#define ACT_ATOL 1e-6
#define ACT_RTOL 1e-5
#define FD_EPS 1e-2
#define FD_ATOL 2e-3
#define FD_RTOL 1e-2
#define LEAKY_SLOPE 0.1f

/* Elements placed in every test input of at least 32 elements: zeros, tiny and large
 * magnitudes, 1e4 (the ops promise finite results up to there) and 1e20, whose square
 * overflows float. */
static const float special[] = {0.0f,   -0.0f,   1e-3f, -1e-3f, 0.5f,  -0.75f, 5.0f,  -5.0f,
                                10.0f,  -10.0f,  20.0f, -20.0f, 50.0f, -50.0f, 88.8f, -88.8f,
                                100.0f, -100.0f, 1e3f,  -1e3f,  1e4f,  -1e4f,  1e20f, -1e20f};
#define SPECIAL_COUNT (sizeof special / sizeof special[0])

/* ---- helpers ------------------------------------------------------------------------- */

/* An arena for `floats` floats in up to 8 views, with room for alignment. */
static struct clt_arena *arena_for(struct clt_device *dev, size_t floats)
{
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, (uint64_t)floats * 4 + 8 * 4096, &arena), CLT_OK);
    return arena;
}

static void fill_nan(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
}

/* Output views get GUARD elements of SENTINEL after their n elements, which no kernel may
 * touch: more than a work-group (<= 256 work-items, 4 elements each for dropout) past n. */
#define GUARD 1024
#define SENTINEL 12345.0f

/* n NaN (a value no kernel may read when it is told to overwrite) and the guard after it. */
static float *nan_and_guard(size_t n)
{
    float *p = clt_test_floats(n + GUARD);
    fill_nan(p, n);
    for (size_t i = n; i < n + GUARD; i++)
        p[i] = SENTINEL;
    return p;
}

/* Fails when anything wrote to the guard after the first n elements of a view. */
static void assert_guard(const char *what, const struct clt_view *v, size_t n)
{
    float *all = clt_test_floats(n + GUARD);
    clt_test_download(v, all, n + GUARD);
    for (size_t i = n; i < n + GUARD; i++)
        if (all[i] != SENTINEL)
            fail_msg("%s: element %zu past the end (n = %zu) was written", what, i, n);
    free(all);
}

static float slope_of(enum clt__act act)
{
    return act == CLT__ACT_LEAKY_RELU ? LEAKY_SLOPE : 0.0f;
}

/* Test input: uniform in [-6, 6), with the special values spread over it when it is long
 * enough. */
static void fill_input(float *x, size_t n, uint64_t seed)
{
    clt_test_fill(x, n, seed, -6.0f, 6.0f);
    if (n >= 32)
        for (size_t s = 0; s < SPECIAL_COUNT; s++)
            x[s * (n / SPECIAL_COUNT)] = special[s];
}

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

/* ---- finite differences -------------------------------------------------------------- */

/* L(x) = sum_i w_i op(x)_i with op run on the device: an activation, or dropout when
 * is_dropout. */
struct fd_ctx {
    struct clt_device *dev;
    struct clt_view x, y;
    const float *w;
    float *y_host;
    bool is_dropout;
    enum clt__act act;
    float p;
};

#define FD_SEED 0x5eedULL
#define FD_STEP 42ULL

static double fd_loss(void *opaque, const float *x, size_t n)
{
    struct fd_ctx *c = opaque;
    clt_test_put(&c->x, x, n);
    struct clt__buf bx = clt__view_buf(&c->x), by = clt__view_buf(&c->y);
    enum clt_status st =
        c->is_dropout
            ? clt__dropout_forward(c->dev, c->p, FD_SEED, FD_STEP, (int64_t)n, bx, by)
            : clt__activation_forward(c->dev, c->act, slope_of(c->act), (int64_t)n, bx, by);
    assert_int_equal(st, CLT_OK);
    clt_test_download(&c->y, c->y_host, n);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += (double)c->w[i] * c->y_host[i];
    return sum;
}

/* Runs the backward with dy = w and checks it against finite differences of fd_loss. */
static void gradcheck_one(struct fd_ctx *c, const char *what)
{
    enum { N = 29 };
    float x[N], w[N], y[N], grad[N];
    clt_test_fill(x, N, 55, -4.0f, 4.0f);
    for (size_t i = 0; i < N; i++)
        if (fabsf(x[i]) < 0.1f)
            x[i] = x[i] < 0 ? x[i] - 0.1f : x[i] + 0.1f;
    clt_test_fill(w, N, 66, -1.0f, 1.0f);
    struct clt_arena *arena = arena_for(c->dev, 4 * N);
    c->x = clt_test_tensor(arena, x, N);
    c->y = clt_test_upload(arena, NULL, N);
    c->w = w;
    c->y_host = y;
    struct clt_view vw = clt_test_tensor(arena, w, N), vg = clt_test_upload(arena, NULL, N);
    struct clt__buf bx = clt__view_buf(&c->x), bw = clt__view_buf(&vw), bg = clt__view_buf(&vg);
    enum clt_status st =
        c->is_dropout
            ? clt__dropout_backward(c->dev, c->p, FD_SEED, FD_STEP, N, bw, bg, false)
            : clt__activation_backward(c->dev, c->act, slope_of(c->act), N, bx, bw, bg, false);
    assert_int_equal(st, CLT_OK);
    clt_test_download(&vg, grad, N);
    clt_test_gradcheck(what, fd_loss, c, x, N, grad, N, FD_EPS, FD_ATOL, FD_RTOL);
    clt_arena_free(arena);
}

/* Dropout with a fixed seed and step against finite differences of its own forward (the
 * activations' gradients are checked by test_ops.c). */
static void dropout_gradient_matches_finite_differences(void **state)
{
    struct fd_ctx c = {.dev = *state, .is_dropout = true, .p = 0.3f};
    gradcheck_one(&c, "dropout");
}

/* ---- dropout ------------------------------------------------------------------------- */

/* The Random123 known-answer vectors of philox4x32 with 10 rounds (counter, key, output). */
static void philox_known_answers(void **state)
{
    (void)state;
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        ref_philox4x32_10(kat[v], kat[v] + 4, out);
        for (int w = 0; w < 4; w++)
            assert_int_equal(out[w], kat[v][6 + w]);
    }
}

/* Compares float arrays bit for bit. */
static void assert_same_bits(const char *what, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            fail_msg("%s: element %zu of %zu: got %.9g, want %.9g", what, i, n, (double)got[i],
                     (double)want[i]);
}

/* Relaunches the dropout kernel whose arguments the last launcher set, with an explicit
 * local size, over the same ceil(n / 4) work-items. */
static void relaunch(struct clt_device *dev, const char *kernel, size_t n, size_t local)
{
    cl_kernel k;
    size_t wg;
    assert_int_equal(clt__kernel_get(dev, "activation", kernel, &k, &wg), CLT_OK);
    if (local > wg)
        local = wg;
    size_t global = (n + 3) / 4;
    assert_int_equal(clt__launch(dev, k, 1, &global, &local), CLT_OK);
}

/* Forward on ones (the mask times scale), on random x, and backward with accumulate false
 * and true: each bit for bit equal to the reference, at a non-zero offset, and again with
 * explicit local sizes 1, 3 and the largest the kernel allows. */
static void check_dropout(struct clt_device *dev, float p, uint64_t seed, uint64_t step, size_t n)
{
    float *ones = clt_test_floats(n), *x = clt_test_floats(n), *dy = clt_test_floats(n);
    float *prev = clt_test_floats(n), *got = clt_test_floats(n), *want = clt_test_floats(n);
    float *nan = nan_and_guard(n);
    for (size_t i = 0; i < n; i++)
        ones[i] = 1.0f;
    clt_test_fill(x, n, 11 + n, -2.0f, 2.0f);
    clt_test_fill(dy, n, 12 + n, -2.0f, 2.0f);
    clt_test_fill(prev, n, 13 + n, -2.0f, 2.0f);
    struct clt_arena *arena = arena_for(dev, 4 * n + GUARD + 8);
    (void)clt_test_upload(arena, NULL, 5);
    struct clt_view vones = clt_test_tensor(arena, ones, n), vx = clt_test_tensor(arena, x, n);
    struct clt_view vy = clt_test_tensor(arena, nan, n + GUARD),
                    vdy = clt_test_tensor(arena, dy, n);
    char what[160];
    const size_t locals[] = {0, 1, 3, SIZE_MAX}; /* 0: the launcher's choice */

    for (size_t l = 0; l < sizeof locals / sizeof *locals; l++) {
        snprintf(what, sizeof what, "dropout p=%g seed=%llu step=%llu n=%zu local=%zu", (double)p,
                 (unsigned long long)seed, (unsigned long long)step, n, locals[l]);
        /* The mask: ones in, scale or 0 out. */
        clt_test_put(&vy, nan, n);
        assert_int_equal(
            clt__dropout_forward(dev, p, seed, step, n, clt__view_buf(&vones), clt__view_buf(&vy)),
            CLT_OK);
        if (locals[l]) {
            clt_test_put(&vy, nan, n);
            relaunch(dev, "dropout_forward", n, locals[l]);
        }
        clt_test_download(&vy, got, n);
        ref_dropout_forward(p, seed, step, ones, want, n);
        assert_same_bits(what, got, want, n);

        assert_int_equal(
            clt__dropout_forward(dev, p, seed, step, n, clt__view_buf(&vx), clt__view_buf(&vy)),
            CLT_OK);
        clt_test_download(&vy, got, n);
        ref_dropout_forward(p, seed, step, x, want, n);
        assert_same_bits(what, got, want, n);

        for (int acc = 0; acc < 2; acc++) {
            clt_test_put(&vy, acc ? prev : nan, n);
            assert_int_equal(clt__dropout_backward(dev, p, seed, step, n, clt__view_buf(&vdy),
                                                   clt__view_buf(&vy), acc),
                             CLT_OK);
            if (locals[l]) {
                clt_test_put(&vy, acc ? prev : nan, n);
                relaunch(dev, "dropout_backward", n, locals[l]);
            }
            clt_test_download(&vy, got, n);
            ref_dropout_backward(p, seed, step, dy, acc ? prev : NULL, want, n);
            assert_same_bits(what, got, want, n);
        }
        assert_guard(what, &vy, n);
    }
    clt_arena_free(arena);
    free(ones);
    free(x);
    free(dy);
    free(prev);
    free(got);
    free(want);
    free(nan);
}

static void dropout_matches_reference_bit_for_bit(void **state)
{
    struct clt_device *dev = *state;
    static const size_t big[] = {1, 2, 3, 4, 5, 258, 1001, 65539};
    static const size_t small[] = {1, 3, 5, 130};
    const bool is_small = clt_test_small();
    const size_t *sizes = is_small ? small : big;
    size_t count = is_small ? sizeof small / sizeof *small : sizeof big / sizeof *big;
    for (size_t s = 0; s < count; s++) {
        check_dropout(dev, 0.5f, 1234, 0, sizes[s]);
        check_dropout(dev, 0.1f, 0xfedcba9876543210ULL, 0x0123456789abcdefULL, sizes[s]);
    }
    check_dropout(dev, 0.9f, 99, 7, 77);
    check_dropout(dev, 0.0f, 99, 7, 77);
}

/* The device mask for (p, seed, step) over n elements. */
static void device_mask(struct clt_device *dev, struct clt_view *ones, struct clt_view *y,
                        float *host, float p, uint64_t seed, uint64_t step, bool *keep, size_t n)
{
    assert_int_equal(
        clt__dropout_forward(dev, p, seed, step, n, clt__view_buf(ones), clt__view_buf(y)), CLT_OK);
    clt_test_download(y, host, n);
    for (size_t i = 0; i < n; i++)
        keep[i] = host[i] != 0.0f;
}

/* Fails unless |count - n q| <= 6 sqrt(n q (1 - q)). */
static void assert_binomial(const char *what, size_t count, size_t n, double q)
{
    double mean = n * q, bound = 6.0 * sqrt(n * q * (1.0 - q));
    if (fabs((double)count - mean) > bound)
        fail_msg("%s: %zu of %zu, expected %.1f +- %.1f", what, count, n, mean, bound);
}

/* Kept fraction near 1 - p, also within each lane i % 4 of a Philox block; masks from
 * other steps and seeds (low and high words) differ in a fraction near 2p(1 - p); the same
 * keys give the same mask. */
static void dropout_statistics(void **state)
{
    struct clt_device *dev = *state;
    const size_t n = clt_test_small() ? 4099 : 200003;
    float *ones = clt_test_floats(n), *host = clt_test_floats(n);
    bool *keep = malloc(n), *other = malloc(n);
    assert_true(keep && other);
    for (size_t i = 0; i < n; i++)
        ones[i] = 1.0f;
    struct clt_arena *arena = arena_for(dev, 2 * n);
    struct clt_view vones = clt_test_tensor(arena, ones, n), vy = clt_test_upload(arena, NULL, n);
    const float ps[] = {0.1f, 0.5f, 0.8f};
    const uint64_t seed = 0x243f6a8885a308d3ULL, step = 1000;
    const uint64_t others[][2] = {{seed, step + 1},
                                  {seed, step + (1ULL << 32)},
                                  {seed + 1, step},
                                  {seed + (1ULL << 32), step}};
    char what[128];
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        const float p = ps[k];
        device_mask(dev, &vones, &vy, host, p, seed, step, keep, n);
        size_t kept = 0, lane[4] = {0, 0, 0, 0};
        for (size_t i = 0; i < n; i++) {
            kept += keep[i];
            lane[i % 4] += keep[i];
        }
        snprintf(what, sizeof what, "dropout p=%g kept", (double)p);
        assert_binomial(what, kept, n, 1.0 - p);
        for (int l = 0; l < 4; l++) {
            snprintf(what, sizeof what, "dropout p=%g kept in lane %d", (double)p, l);
            assert_binomial(what, lane[l], (n - l + 3) / 4, 1.0 - p);
        }
        for (size_t o = 0; o < sizeof others / sizeof *others; o++) {
            device_mask(dev, &vones, &vy, host, p, others[o][0], others[o][1], other, n);
            size_t differ = 0;
            for (size_t i = 0; i < n; i++)
                differ += keep[i] != other[i];
            snprintf(what, sizeof what, "dropout p=%g masks of keys %zu differing", (double)p, o);
            assert_binomial(what, differ, n, 2.0 * p * (1.0 - p));
        }
        device_mask(dev, &vones, &vy, host, p, seed, step, other, n);
        assert_memory_equal(keep, other, n);
    }
    clt_arena_free(arena);
    free(ones);
    free(host);
    free(keep);
    free(other);
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

static void activations_in_16_bit(void **state)
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

static void dropout_in_16_bit(void **state)
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
static void launchers_size_buffers_by_the_storage(void **state)
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
