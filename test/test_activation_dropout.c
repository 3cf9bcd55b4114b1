/*
 * test_activation_dropout.c: dropout (cl/activation.cl): philox4x32's known answers, the mask
 * against the reference bit for bit at any work-group size, its statistics, and its
 * gradient against finite differences.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "activation_rig.h"
#include "ref_activation.h"

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
void dropout_gradient_matches_finite_differences(void **state)
{
    struct fd_ctx c = {.dev = *state, .is_dropout = true, .p = 0.3f};
    gradcheck_one(&c, "dropout");
}

/* ---- dropout ------------------------------------------------------------------------- */

/* The Random123 known-answer vectors of philox4x32 with 10 rounds (counter, key, output). */
void philox_known_answers(void **state)
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

void dropout_matches_reference_bit_for_bit(void **state)
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
void dropout_statistics(void **state)
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
