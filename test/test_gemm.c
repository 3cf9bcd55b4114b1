/*
 * test_gemm.c: GEMM against the C reference: odd shapes, every transpose combination, padded
 * leading dimensions, strided batches, alpha and beta, on both backends (CLBlast and the
 * engine's own kernel; only the own kernel under Oclgrind). And argument checking.
 *
 * Tolerance: inputs uniform in [-1, 1); |got - want| <= 1e-5 * (k + 1) + 1e-5 * |want|,
 * float accumulation of k products of magnitude <= 1 against a double reference.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "gemm_own.h"
#include "ref_gemm.h"

typedef enum clt_status (*gemm_fn)(struct clt_device *, const struct clt_gemm_shape *,
                                   struct clt__buf, struct clt__buf, struct clt__buf);

/* Runs one GEMM on the device with the given backend and compares with the reference.
 * C starts as `c_fill` (NaN tests that beta 0 does not read C). */
static void check_one(struct clt_device *dev, gemm_fn fn, const char *backend,
                      const struct clt_gemm_shape *shape, float c_fill_nan)
{
    struct clt_gemm_shape g;
    int64_t sa, sb, sc;
    assert_int_equal(clt__gemm_resolve(NULL, shape, &g, &sa, &sb, &sc), CLT_OK);
    float *a = malloc(sa * sizeof *a), *b = malloc(sb * sizeof *b);
    float *c = malloc(sc * sizeof *c), *got = malloc(sc * sizeof *got);
    double *want = malloc(sc * sizeof *want);
    assert_true(a && b && c && got && want);
    clt_test_fill(a, sa, 11 + sa, -1.0f, 1.0f);
    clt_test_fill(b, sb, 23 + sb, -1.0f, 1.0f);
    clt_test_fill(c, sc, 37 + sc, -1.0f, 1.0f);
    if (c_fill_nan)
        for (int64_t i = 0; i < sc; i++)
            c[i] = NAN;
    /* Elements between rows (ld padding) keep C's old values in both. */
    for (int64_t i = 0; i < sc; i++)
        want[i] = c[i];
    ref_gemm(&g, a, b, c, want);

    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, (uint64_t)(sa + sb + sc) * 4 + 4096, &arena), CLT_OK);
    /* A small first view puts the operands at non-zero offsets. */
    struct clt_view pad = clt_test_upload(arena, NULL, 5);
    (void)pad;
    struct clt_view va = clt_test_upload(arena, a, sa), vb = clt_test_upload(arena, b, sb);
    struct clt_view vc = clt_test_upload(arena, c, sc);
    assert_int_equal(fn(dev, &g, clt__view_buf(&va), clt__view_buf(&vb), clt__view_buf(&vc)),
                     CLT_OK);
    clt_test_download(&vc, got, sc);
    char what[160];
    snprintf(what, sizeof what, "%s gemm m=%lld n=%lld k=%lld ta=%d tb=%d batch=%lld beta=%g",
             backend, (long long)g.m, (long long)g.n, (long long)g.k, g.trans_a, g.trans_b,
             (long long)g.batch, (double)g.beta);
    /* Padding elements hold NaN when C was NaN-filled: compare only the matrix elements. */
    for (int64_t z = 0; z < g.batch; z++)
        for (int64_t i = 0; i < g.m; i++) {
            int64_t row = z * g.stride_c + i * g.ldc;
            clt_test_assert_close(what, got + row, want + row, (size_t)g.n,
                                  1e-5 * (double)(g.k + 1), 1e-5);
        }
    clt_arena_free(arena);
    free(a);
    free(b);
    free(c);
    free(got);
    free(want);
}

struct backend {
    const char *name;
    gemm_fn fn;
};

/* The own kernel, CLBlast (except under Oclgrind: its kernels are not ours to check, and far
 * too slow there), and the host's BLAS where the device runs it (PoCL). */
static size_t backends_of(struct clt_device *dev, struct backend *out)
{
    size_t n = 0;
    out[n++] = (struct backend){"own", clt__gemm_own};
    if (!strstr(dev->info.name, "Oclgrind"))
        out[n++] = (struct backend){"clblast", clt__gemm_clblast};
    if (dev->gemm_host)
        out[n++] = (struct backend){"host", clt__gemm_host};
    return n;
}

static void shapes_and_transposes(void **state)
{
    struct clt_device *dev = *state;
    int64_t big[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 13, 29}, {33, 65, 31}, {70, 9, 130}};
    int64_t small[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 9, 19}};
    bool is_small = clt_test_small();
    size_t count = is_small ? 3 : 5;
    struct backend be[3];
    size_t nb = backends_of(dev, be);
    for (size_t b = 0; b < nb; b++)
        for (size_t s = 0; s < count; s++)
            for (int t = 0; t < 4; t++) {
                const int64_t *mnk = is_small ? small[s] : big[s];
                struct clt_gemm_shape g = {.m = mnk[0],
                                           .n = mnk[1],
                                           .k = mnk[2],
                                           .trans_a = t & 1,
                                           .trans_b = (t >> 1) & 1,
                                           .alpha = 0.75f,
                                           .beta = 0.5f};
                check_one(dev, be[b].fn, be[b].name, &g, false);
            }
}

static void leading_dimensions_and_beta_zero(void **state)
{
    struct clt_device *dev = *state;
    struct backend be[3];
    size_t nb = backends_of(dev, be);
    for (size_t b = 0; b < nb; b++)
        for (int t = 0; t < 4; t++) {
            struct clt_gemm_shape g = {.m = 7,
                                       .n = 11,
                                       .k = 5,
                                       .trans_a = t & 1,
                                       .trans_b = (t >> 1) & 1,
                                       .alpha = 1.0f,
                                       .beta = 0.0f};
            g.lda = (g.trans_a ? g.m : g.k) + 3;
            g.ldb = (g.trans_b ? g.k : g.n) + 2;
            g.ldc = g.n + 4;
            check_one(dev, be[b].fn, be[b].name, &g, false);
            /* beta 0: C full of NaN must not leak into the result. */
            check_one(dev, be[b].fn, be[b].name, &g, true);
        }
}

static void strided_batches(void **state)
{
    struct clt_device *dev = *state;
    struct backend be[3];
    size_t nb = backends_of(dev, be);
    for (size_t b = 0; b < nb; b++)
        for (int t = 0; t < 4; t++) {
            struct clt_gemm_shape g = {.m = 5,
                                       .n = 6,
                                       .k = 9,
                                       .trans_a = t & 1,
                                       .trans_b = (t >> 1) & 1,
                                       .alpha = -1.25f,
                                       .beta = 1.0f,
                                       .batch = 3};
            check_one(dev, be[b].fn, be[b].name, &g, false);
            g.stride_a = 5 * 9 + 7;
            g.stride_b = 6 * 9 + 1;
            g.stride_c = 5 * 6 + 2;
            check_one(dev, be[b].fn, be[b].name, &g, false);
        }
}

/* The own kernel's configuration check_one runs through own_config (own_space sets it). */
static struct clt__gemm_config current_config;

static enum clt_status own_config(struct clt_device *dev, const struct clt_gemm_shape *g,
                                  struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    return clt__gemm_own_run(dev, &current_config, g, a, b, c);
}

/* Every configuration the tuner's search space offers for a shape, at odd shapes, every
 * transpose pair, with batch, alpha and beta, and operands at non-zero offsets. */
static void own_space(void **state)
{
    struct clt_device *dev = *state;
    int64_t big[][4] = {{1, 1, 1, 1}, {17, 13, 29, 1}, {70, 9, 130, 2}, {65, 67, 33, 1}};
    int64_t small[][4] = {{1, 1, 1, 1}, {17, 9, 19, 2}};
    bool is_small = clt_test_small();
    size_t count = is_small ? 2 : 4;
    for (size_t s = 0; s < count; s++)
        for (int t = 0; t < 4; t++) {
            const int64_t *d = is_small ? small[s] : big[s];
            struct clt_gemm_shape g = {.m = d[0],
                                       .n = d[1],
                                       .k = d[2],
                                       .batch = d[3],
                                       .trans_a = t & 1,
                                       .trans_b = (t >> 1) & 1,
                                       .alpha = 0.75f,
                                       .beta = 0.5f},
                                  r;
            int64_t sa, sb, sc;
            assert_int_equal(clt__gemm_resolve(NULL, &g, &r, &sa, &sb, &sc), CLT_OK);
            struct clt__gemm_config space[32];
            size_t n = clt__gemm_own_space(dev, &r, space, 32);
            assert_true(n >= 1);
            for (size_t i = 0; i < n; i++) {
                char name[96] = "own ";
                clt__gemm_config_format(&space[i], name + 4, sizeof name - 4);
                current_config = space[i];
                check_one(dev, own_config, name, &g, false);
            }
        }
}

/* Where the library has a host BLAS and the device is a CPU with unified memory that runs
 * native kernels (PoCL), the host backend must be on, so the tests above cover it. */
static void host_blas_where_it_can_run(void **state)
{
    struct clt_device *dev = *state;
    cl_device_type type = 0;
    cl_bool unified = CL_FALSE;
    cl_device_exec_capabilities caps = 0;
    assert_int_equal(clGetDeviceInfo(dev->id, CL_DEVICE_TYPE, sizeof type, &type, NULL), 0);
    assert_int_equal(
        clGetDeviceInfo(dev->id, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL), 0);
    assert_int_equal(
        clGetDeviceInfo(dev->id, CL_DEVICE_EXECUTION_CAPABILITIES, sizeof caps, &caps, NULL), 0);
    const char *env = getenv("CLTRAIN_HOST_BLAS"), *gemm = getenv("CLTRAIN_GEMM");
    bool can = strcmp(clt__gemm_host_name(), "none") != 0 && (type & CL_DEVICE_TYPE_CPU) &&
               unified && (caps & CL_EXEC_NATIVE_KERNEL) && !(env && strcmp(env, "0") == 0) &&
               !(gemm && *gemm && strcmp(gemm, "auto") != 0);
    assert_int_equal(dev->gemm_host, can);
}

static void public_call_checks_arguments(void **state)
{
    struct clt_device *dev = *state;
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, 1 << 14, &arena), CLT_OK);
    struct clt_view a = clt_test_upload(arena, NULL, 12), b = clt_test_upload(arena, NULL, 20);
    struct clt_view c = clt_test_upload(arena, NULL, 15), ints;
    assert_int_equal(clt_arena_alloc(arena, CLT_I32, 1, (int64_t[]){64}, &ints), CLT_OK);
    struct clt_gemm_shape g = {.m = 3, .n = 5, .k = 4, .alpha = 1.0f};
    assert_int_equal(clt_gemm(dev, &g, &a, &b, &c), CLT_OK);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    struct clt_gemm_shape bad = g;
    bad.k = 5; /* A is too small for k = 5 */
    assert_int_equal(clt_gemm(dev, &bad, &a, &b, &c), CLT_ERR_INVALID_ARGUMENT);
    bad = g;
    bad.m = 0;
    assert_int_equal(clt_gemm(dev, &bad, &a, &b, &c), CLT_ERR_INVALID_ARGUMENT);
    bad = g;
    bad.lda = 2; /* less than k */
    assert_int_equal(clt_gemm(dev, &bad, &a, &b, &c), CLT_ERR_INVALID_ARGUMENT);
    bad = g;
    bad.batch = 2; /* the views hold one matrix each */
    assert_int_equal(clt_gemm(dev, &bad, &a, &b, &c), CLT_ERR_INVALID_ARGUMENT);
    bad = g;
    bad.n = (int64_t)1 << 40;
    assert_int_equal(clt_gemm(dev, &bad, &a, &b, &c), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_gemm(dev, &g, &ints, &b, &c), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_gemm(dev, &g, NULL, &b, &c), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_gemm(dev, NULL, &a, &b, &c), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_gemm(NULL, &g, &a, &b, &c), CLT_ERR_INVALID_ARGUMENT);
    clt_arena_free(arena);
}

static void backend_follows_the_environment(void **state)
{
    struct clt_device *dev = *state;
    const char *env = getenv("CLTRAIN_GEMM");
    enum clt_gemm_backend want = env && strcmp(env, "own") == 0 ? CLT_GEMM_OWN : CLT_GEMM_CLBLAST;
    assert_int_equal(clt_device_gemm_backend(dev), want);
    struct clt_device_options o;
    clt_device_options_init(&o);
    o.gemm = CLT_GEMM_OWN;
    struct clt_device *own = NULL;
    assert_int_equal(clt_device_open(getenv("CLTRAIN_DEVICE"), &o, &own), CLT_OK);
    assert_int_equal(clt_device_gemm_backend(own), CLT_GEMM_OWN);
    clt_device_close(own);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(shapes_and_transposes),
        CLT_DEVICE_TEST(leading_dimensions_and_beta_zero),
        CLT_DEVICE_TEST(strided_batches),
        CLT_DEVICE_TEST(own_space),
        CLT_DEVICE_TEST(host_blas_where_it_can_run),
        CLT_DEVICE_TEST(public_call_checks_arguments),
        CLT_DEVICE_TEST(backend_follows_the_environment),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
