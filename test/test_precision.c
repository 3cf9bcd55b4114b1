/*
 * test_precision.c: the kernels of cl/precision.cl on a device, against the host functions of
 * engine/precision.c and engine/scaler.c (which test_precision_host.c checks exactly).
 *
 * - fp32 -> fp16 and fp32 -> bf16 on the device give the host's bits for specials (zeros,
 *   Inf, NaN, ties, the overflow threshold, subnormals) and random bit patterns; fp16 and
 *   bf16 -> fp32 give the host's floats for every 16-bit pattern (a stride of them under
 *   CLTRAIN_TEST_SMALL). Exact: bits equal, a NaN a NaN. Buffers at non-zero offsets, sizes
 *   that are no multiple of any work-group size.
 * - The NaN/Inf count is exact, adds to the found word, and leaves large finite values and
 *   subnormals alone.
 * - The device scaler follows the host scaler step for step (scale, growth tracker, skipped).
 * - A forced fp16 overflow in training: SGD on 0.5 |p|^2 with the gradients scaled, stored in
 *   fp16 (narrowed and widened on the device), counted for NaN/Inf and unscaled by the
 *   optimizer. The first step overflows (a gradient of 1 times 65536 is Inf in fp16): it is
 *   skipped (parameters bit for bit as they were), the scale halves, the skip is counted, and
 *   training goes on; a second, injected overflow later does the same. Parameters then match
 *   the fp64 reference within fp16's rounding: |got - want| <= 1e-6 + 2e-3 |want|.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/optim.h"
#include "precision.h"
#include "scaler.h"

static cl_mem buffer(struct clt_device *dev, size_t bytes)
{
    cl_int err;
    cl_mem m = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    return m;
}

static void put(struct clt_device *dev, cl_mem m, size_t at, const void *host, size_t bytes)
{
    assert_int_equal(clEnqueueWriteBuffer(dev->queue, m, CL_TRUE, at, bytes, host, 0, NULL, NULL),
                     CL_SUCCESS);
}

static void get(struct clt_device *dev, cl_mem m, size_t at, void *host, size_t bytes)
{
    assert_int_equal(clEnqueueReadBuffer(dev->queue, m, CL_TRUE, at, bytes, host, 0, NULL, NULL),
                     CL_SUCCESS);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float float_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* ---- Conversions -------------------------------------------------------------------------- */

static void narrow_matches_host(void **state)
{
    struct clt_device *dev = *state;
    const size_t n = clt_test_small() ? 1037 : 262147, so = 3, dof = 5;
    float *x = clt_test_floats(n);
    const float specials[] = {0.0f,
                              -0.0f,
                              1.0f,
                              65504.0f,
                              65519.996f,
                              65520.0f,
                              -65520.0f,
                              1e6f,
                              INFINITY,
                              -INFINITY,
                              NAN,
                              -NAN,
                              0x1p-14f,
                              0x1p-24f,
                              0x1p-25f,
                              0x3p-25f,
                              0x1.ffcp-15f,
                              0x1p-149f,
                              0x1p-133f,
                              1.00048828125f,
                              1.00390625f,
                              0x1.fep127f,
                              0x1.fffffep127f,
                              3.14159265f};
    const size_t ns = sizeof specials / sizeof specials[0];
    uint64_t seed = 42;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = splitmix(&seed);
        if (i < ns)
            x[i] = specials[i];
        else if (i % 2) /* any bit pattern */
            x[i] = float_of((uint32_t)r);
        else /* fp16's range, where the rounding matters */
            x[i] = ldexpf((float)(r >> 40) / 16777216.0f, (int)(r % 40) - 26) * (r & 1 ? -1 : 1);
    }
    cl_mem src = buffer(dev, (n + so) * 4), dst = buffer(dev, (n + dof) * 2);
    put(dev, src, so * 4, x, n * 4);
    uint16_t *got = malloc(n * 2);
    assert_non_null(got);
    const enum clt_precision ps[2] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16};
    for (int k = 0; k < 2; k++) {
        memset(got, 0xa5, n * 2);
        put(dev, dst, dof * 2, got, n * 2);
        assert_int_equal(clt__precision_narrow(dev, ps[k], (int64_t)n, (struct clt__buf){src, so},
                                               (struct clt__buf){dst, dof}),
                         CLT_OK);
        get(dev, dst, dof * 2, got, n * 2);
        for (size_t i = 0; i < n; i++) {
            const uint16_t want = clt__f32_to_half(ps[k], x[i]);
            const bool ok = isnan(x[i]) ? isnan(clt__half_to_f32(ps[k], got[i])) &&
                                              (got[i] >> 15) == (want >> 15)
                                        : got[i] == want;
            if (!ok)
                fail_msg("%s: element %zu = %a (0x%08x): device 0x%04x, host 0x%04x",
                         clt_precision_name(ps[k]), i, (double)x[i], bits_of(x[i]), got[i], want);
        }
    }
    /* Widening: every 16-bit pattern, or a stride of them. */
    const size_t step = clt_test_small() ? 61 : 1, m = 65536 / step;
    uint16_t *h = malloc(m * 2);
    float *back = clt_test_floats(m);
    assert_non_null(h);
    for (size_t i = 0; i < m; i++)
        h[i] = (uint16_t)(i * step + (step > 1 ? i % step : 0));
    cl_mem hsrc = buffer(dev, (m + so) * 2), fdst = buffer(dev, (m + dof) * 4);
    put(dev, hsrc, so * 2, h, m * 2);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(clt__precision_widen(dev, ps[k], (int64_t)m, (struct clt__buf){hsrc, so},
                                              (struct clt__buf){fdst, dof}),
                         CLT_OK);
        get(dev, fdst, dof * 4, back, m * 4);
        for (size_t i = 0; i < m; i++) {
            const float want = clt__half_to_f32(ps[k], h[i]);
            if (isnan(want) ? !isnan(back[i]) : bits_of(back[i]) != bits_of(want))
                fail_msg("%s: 0x%04x widens to %a on the device, %a on the host",
                         clt_precision_name(ps[k]), h[i], (double)back[i], (double)want);
        }
    }
    /* Bad arguments: fp32 is no 16-bit format; a dst too small. */
    assert_int_equal(clt__precision_narrow(dev, CLT_PRECISION_FP32, 4, (struct clt__buf){src, 0},
                                           (struct clt__buf){dst, 0}),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__precision_narrow(dev, CLT_PRECISION_FP16, (int64_t)n,
                                           (struct clt__buf){src, 0},
                                           (struct clt__buf){dst, dof + 1}),
                     CLT_ERR_INVALID_ARGUMENT);
    clReleaseMemObject(src);
    clReleaseMemObject(dst);
    clReleaseMemObject(hsrc);
    clReleaseMemObject(fdst);
    free(x);
    free(got);
    free(h);
    free(back);
}

/* ---- NaN and Inf -------------------------------------------------------------------------- */

static void nonfinite_count(void **state)
{
    struct clt_device *dev = *state;
    const size_t n = clt_test_small() ? 2053 : 1000003, off = 7;
    float *x = clt_test_floats(n);
    clt_test_fill(x, n, 3, -1.0f, 1.0f);
    x[1] = 0x1p-149f; /* a subnormal, and the largest floats: finite */
    x[2] = 0x1.fffffep127f;
    x[3] = -0x1.fffffep127f;
    const size_t bad[] = {0, 17, 256, 257, n / 2, n - 2, n - 1};
    const uint32_t kinds[] = {0x7fc00000u, 0x7f800000u, 0xff800000u, 0x7f800001u, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        x[bad[i]] = float_of(kinds[i % 5]);
    cl_mem xb = buffer(dev, (n + off) * 4);
    cl_mem ws = buffer(dev, clt__nonfinite_workspace_bytes((int64_t)n) + 8);
    cl_mem found = buffer(dev, 12);
    put(dev, xb, off * 4, x, n * 4);
    const int32_t start[3] = {-1, 5, -1};
    put(dev, found, 0, start, sizeof start);
    const struct clt__buf f = {found, 1}, w = {ws, 2};
    assert_int_equal(clt__nonfinite_count(dev, (int64_t)n, (struct clt__buf){xb, off}, w, f),
                     CLT_OK);
    int32_t got[3];
    get(dev, found, 0, got, sizeof got);
    assert_int_equal(got[1], 5 + 7);
    assert_int_equal(got[0], -1); /* its neighbours untouched */
    assert_int_equal(got[2], -1);
    /* It adds: a second buffer (the first 300 elements: 4 of them bad), and an empty one. */
    assert_int_equal(clt__nonfinite_count(dev, 300, (struct clt__buf){xb, off}, w, f), CLT_OK);
    assert_int_equal(clt__nonfinite_count(dev, 0, (struct clt__buf){xb, off}, w, f), CLT_OK);
    get(dev, found, 0, got, sizeof got);
    assert_int_equal(got[1], 5 + 7 + 4);
    /* A workspace too small is refused. */
    assert_int_equal(clt__nonfinite_count(dev, (int64_t)n, (struct clt__buf){xb, off},
                                          (struct clt__buf){ws, 3}, f),
                     CLT_ERR_INVALID_ARGUMENT);
    clReleaseMemObject(xb);
    clReleaseMemObject(ws);
    clReleaseMemObject(found);
    free(x);
}

/* ---- The scaler --------------------------------------------------------------------------- */

static void scaler_matches_host(void **state)
{
    struct clt_device *dev = *state;
    struct clt__scaler_config cfg;
    clt__scaler_config_init(&cfg);
    cfg.growth_interval = 3;
    cfg.min_scale = 64.0;
    struct clt__scaler host, dv;
    clt__scaler_init(&host, &cfg);
    host.skipped = 2; /* as if resumed */
    cl_mem st = buffer(dev, CLT__SCALER_STATE_BYTES * 2), one = buffer(dev, 4 * 4);
    const struct clt__buf s = {st, 8}, found = {st, 8 + CLT__SCALER_FOUND_WORD};
    const float inf_or_not[2] = {1.0f, INFINITY};
    put(dev, one, 0, inf_or_not, sizeof inf_or_not);
    cl_mem ws = buffer(dev, clt__nonfinite_workspace_bytes(1));
    assert_int_equal(clt__scaler_state_set(dev, s, &host), CLT_OK);
    float lowest = host.scale;
    for (int i = 0; i < 40; i++) {
        const bool overflow = i % 9 == 0 || i % 13 == 5 || (i >= 20 && i < 29);
        /* The step's check writes the state's found word; the update reads and zeroes it. */
        assert_int_equal(clt__nonfinite_count(dev, 1, (struct clt__buf){one, overflow ? 1 : 0},
                                              (struct clt__buf){ws, 0}, found),
                         CLT_OK);
        assert_int_equal(clt__scaler_state_update(dev, &cfg, found, -1, s), CLT_OK);
        clt__scaler_update(&host, overflow);
        dv.cfg = cfg;
        assert_int_equal(clt__scaler_state_read(dev, s, &dv), CLT_OK);
        if (dv.scale != host.scale || dv.growth_tracker != host.growth_tracker ||
            dv.skipped != host.skipped)
            fail_msg("step %d: device %g/%d/%d, host %g/%d/%d", i, (double)dv.scale,
                     dv.growth_tracker, dv.skipped, (double)host.scale, host.growth_tracker,
                     host.skipped);
        struct clt__scaler_state raw;
        get(dev, st, 32, &raw, sizeof raw);
        assert_int_equal(raw.found, 0);
        assert_true(raw.inv_scale == clt__scaler_inv_scale(&host)); /* powers of two: exact */
        lowest = fminf(lowest, host.scale);
    }
    assert_true(lowest == 64.0f); /* the floor held through the run of overflows */
    assert_true(host.skipped > 12);
    /* Bad config, and a state buffer too small. */
    struct clt__scaler_config bad = cfg;
    bad.backoff_factor = 2.0;
    assert_int_equal(clt__scaler_state_update(dev, &bad, found, -1, s), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__scaler_state_set(dev, (struct clt__buf){st, 12}, &host),
                     CLT_ERR_INVALID_ARGUMENT);
    clReleaseMemObject(st);
    clReleaseMemObject(one);
    clReleaseMemObject(ws);
}

/* ---- A forced overflow in training -------------------------------------------------------- */

static void forced_overflow(void **state)
{
    struct clt_device *dev = *state;
    const int64_t n = 257;
    const double lr = 0.1;
    float p[257], p0[257], g[257], before[257];
    double want[257];
    clt_test_fill(p, (size_t)n, 11, -0.9f, 0.9f);
    p[5] = 1.0f; /* 1 * 65536 overflows fp16 */
    memcpy(p0, p, sizeof p);
    for (int i = 0; i < n; i++)
        want[i] = p[i];
    cl_mem params = buffer(dev, (size_t)n * 4), scaled = buffer(dev, (size_t)n * 4);
    cl_mem half = buffer(dev, (size_t)n * 2), grads = buffer(dev, (size_t)n * 4);
    cl_mem ws = buffer(dev, clt__optim_workspace_bytes(n) + clt__nonfinite_workspace_bytes(n));
    cl_mem status = buffer(dev, CLT__OPTIM_STATUS_BYTES), sstate = buffer(dev, 32);
    const struct clt__buf P = {params, 0}, G = {grads, 0}, none = {NULL, 0}, S = {sstate, 0};
    const struct clt__buf found = {sstate, CLT__SCALER_FOUND_WORD}, st = {status, 0};
    const struct clt__buf optim_ws = {ws, 0};
    const struct clt__buf check_ws = {ws, clt__optim_workspace_bytes(n) / 4};
    put(dev, params, 0, p, sizeof p);
    struct clt__optim_config cfg;
    clt__optim_config_init(&cfg, CLT__OPTIM_SGD);
    struct clt__scaler_config scfg;
    clt__scaler_config_init(&scfg);
    scfg.growth_interval = 4;
    struct clt__scaler sc;
    clt__scaler_init(&sc, &scfg);
    assert_int_equal(clt__optim_status_reset(dev, st), CLT_OK);
    assert_int_equal(clt__scaler_state_set(dev, S, &sc), CLT_OK);
    double last_loss = INFINITY;
    int applied = 0;
    for (int step = 0; step < 12; step++) {
        /* The backward pass: gradients of 0.5 |p|^2 are p, times the scale; step 7 has one
         * injected overflow. Stored in fp16, widened for the optimizer. */
        get(dev, params, 0, p, sizeof p);
        memcpy(before, p, sizeof p);
        for (int i = 0; i < n; i++)
            g[i] = p[i] * sc.scale;
        if (step == 7)
            g[100] = 1e5f;
        put(dev, scaled, 0, g, sizeof g);
        assert_int_equal(clt__precision_narrow(dev, CLT_PRECISION_FP16, n,
                                               (struct clt__buf){scaled, 0},
                                               (struct clt__buf){half, 0}),
                         CLT_OK);
        assert_int_equal(
            clt__precision_widen(dev, CLT_PRECISION_FP16, n, (struct clt__buf){half, 0}, G),
            CLT_OK);
        assert_int_equal(clt__nonfinite_count(dev, n, G, check_ws, found), CLT_OK);
        assert_int_equal(clt__optim_step(dev, &cfg, n, P, G, none, none, none, optim_ws, st, lr,
                                         clt__scaler_inv_scale(&sc)),
                         CLT_OK);
        assert_int_equal(clt__scaler_state_update(dev, &scfg, found, -1, S), CLT_OK);
        /* The host's scaler learns the same from the gradient it made. */
        bool overflow = false;
        for (int i = 0; i < n; i++)
            overflow |= clt__f16_nonfinite(clt__f32_to_f16(g[i]));
        const float old_scale = sc.scale;
        const bool apply = clt__scaler_update(&sc, overflow);
        assert_true(apply == !(step == 0 || step == 7));
        struct clt__scaler dv = {.cfg = scfg};
        assert_int_equal(clt__scaler_state_read(dev, S, &dv), CLT_OK);
        assert_true(dv.scale == sc.scale);
        assert_int_equal(dv.skipped, sc.skipped);
        struct clt__optim_status os;
        assert_int_equal(clt__optim_status_read(dev, st, &os), CLT_OK);
        get(dev, params, 0, p, sizeof p);
        if (!apply) {
            assert_memory_equal(p, before, sizeof p); /* skipped: bit for bit */
            assert_true(sc.scale == old_scale / 2);
            assert_int_equal(os.last_skip, CLT__OPTIM_SKIP_GRAD);
            continue;
        }
        applied++;
        assert_int_equal(os.last_skip, 0);
        for (int i = 0; i < n; i++)
            want[i] -= lr * want[i];
        double loss = 0.0;
        for (int i = 0; i < n; i++)
            loss += 0.5 * (double)p[i] * p[i];
        assert_true(loss < last_loss); /* training goes on */
        last_loss = loss;
    }
    struct clt__optim_status os;
    assert_int_equal(clt__optim_status_read(dev, st, &os), CLT_OK);
    assert_int_equal(os.skipped, 2);
    assert_int_equal(os.step, applied);
    assert_int_equal(sc.skipped, 2);
    assert_int_equal(applied, 10);
    /* Scale: 65536, halved at step 0, grown after steps 1-4, halved at 7, steps 8-11 grow it. */
    assert_true(sc.scale == 65536.0f);
    clt_test_assert_close("params after 10 steps", p, want, (size_t)n, 1e-6, 2e-3);
    (void)p0;
    clReleaseMemObject(params);
    clReleaseMemObject(scaled);
    clReleaseMemObject(half);
    clReleaseMemObject(grads);
    clReleaseMemObject(ws);
    clReleaseMemObject(status);
    clReleaseMemObject(sstate);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(narrow_matches_host),
        CLT_DEVICE_TEST(nonfinite_count),
        CLT_DEVICE_TEST(scaler_matches_host),
        CLT_DEVICE_TEST(forced_overflow),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
