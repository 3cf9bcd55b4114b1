/*
 * test_gemm.c: GEMM against the C reference: odd shapes, every transpose combination, padded
 * leading dimensions, strided batches, alpha and beta, on both backends (CLBlast and the
 * engine's own kernel; only the own kernel under Oclgrind). And argument checking.
 *
 * Tolerance: inputs uniform in [-1, 1); |got - want| <= 1e-5 * (k + 1) + 1e-5 * |want|,
 * float accumulation of k products of magnitude <= 1 against a double reference.
 *
 * 16-bit storage (fp16, bf16: A, B and C are store_t): the inputs are rounded to the storage
 * on the host, the reference is computed in double from the rounded values, and
 * |got - want| <= 1e-5 * (k + 1) * (1 + u) + u * |want|, u the storage's unit roundoff (fp16
 * 2^-11, bf16 2^-8): C's one rounding to the storage on top of the fp32 accumulation term
 * above (the fp16 subnormal spacing, 6e-8, is inside the absolute term). Elements of C's span
 * outside the matrices (padding, gaps between batch items) must come back unchanged.
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
    /* The library loaded OpenBLAS with its threads' spin time set (engine/gemm_host.c):
     * nothing else in this program loads it, so the variable is the library's "4" unless the
     * environment of the test gave one. */
    if (dev->gemm_host)
        assert_non_null(getenv("OPENBLAS_THREAD_TIMEOUT"));
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

/* ---- 16-bit storage ------------------------------------------------------------------- */

/* A view of count storage elements preceded by one more (so the operand starts at an odd
 * element offset in 16-bit storages), from host[0..count) already rounded to the storage. */
static struct clt_view upload_st(struct clt_arena *arena, const float *host, int64_t count,
                                 enum clt_precision s, struct clt__buf *buf)
{
    float *padded = malloc((size_t)(count + 1) * sizeof *padded);
    assert_non_null(padded);
    padded[0] = 0.125f;
    memcpy(padded + 1, host, (size_t)count * sizeof *host);
    struct clt_view v = clt_test_tensor_st(arena, padded, (size_t)count + 1, s);
    free(padded);
    *buf = clt_test_buf_st(&v, s);
    buf->offset += 1;
    return v;
}

/* One way to run a GEMM in a 16-bit storage: an fp32 implementation behind
 * clt__gemm_widened, an implementation run in the storage itself, or (fn NULL) clt__gemm. */
struct path {
    const char *name;
    gemm_fn fn;
    bool widened;
};

/* Runs one GEMM in storage s by path p and returns the worst |got - want| over its tolerance (the
 * file's comment); C's elements outside the matrices must be unchanged. data_as: the storage the
 * operands are written in (s itself, except to check that a wrong storage fails). */
static double run_st(struct clt_device *dev, struct path p, enum clt_precision s,
                     enum clt_precision data_as, const struct clt_gemm_shape *shape, bool c_nan)
{
    struct clt_gemm_shape g;
    int64_t sa, sb, sc;
    assert_int_equal(clt__gemm_resolve(NULL, shape, &g, &sa, &sb, &sc), CLT_OK);
    float *a = malloc(sa * sizeof *a), *b = malloc(sb * sizeof *b);
    float *c = malloc(sc * sizeof *c), *got = malloc((sc + 1) * sizeof *got);
    double *want = malloc(sc * sizeof *want);
    assert_true(a && b && c && got && want);
    clt_test_fill(a, sa, 41 + sa, -1.0f, 1.0f);
    clt_test_fill(b, sb, 43 + sb, -1.0f, 1.0f);
    clt_test_fill(c, sc, 47 + sc, -1.0f, 1.0f);
    if (c_nan)
        for (int64_t i = 0; i < sc; i++)
            c[i] = NAN;
    clt_test_round(a, (size_t)sa, s);
    clt_test_round(b, (size_t)sb, s);
    clt_test_round(c, (size_t)sc, s);
    for (int64_t i = 0; i < sc; i++)
        want[i] = c[i];
    ref_gemm(&g, a, b, c, want);

    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, (uint64_t)(sa + sb + sc + 3) * 4 + 4096, &arena),
                     CLT_OK);
    struct clt__buf ba, bb, bc;
    upload_st(arena, a, sa, data_as, &ba);
    upload_st(arena, b, sb, data_as, &bb);
    struct clt_view vc = upload_st(arena, c, sc, data_as, &bc);
    if (data_as != s) { /* the same bytes, read in storage s */
        ba.offset = ba.offset * clt_test_storage_bytes(data_as) / clt_test_storage_bytes(s);
        bb.offset = bb.offset * clt_test_storage_bytes(data_as) / clt_test_storage_bytes(s);
        bc.offset = bc.offset * clt_test_storage_bytes(data_as) / clt_test_storage_bytes(s);
    }
    enum clt_precision prev = clt__storage_set(dev, s);
    enum clt_status st = !p.fn       ? clt__gemm(dev, &g, ba, bb, bc)
                         : p.widened ? clt__gemm_widened(dev, &g, ba, bb, bc, p.fn)
                                     : p.fn(dev, &g, ba, bb, bc);
    clt__storage_set(dev, prev);
    assert_int_equal(st, CLT_OK);
    clt_test_get_st(&vc, got, (size_t)sc + 1, s);
    const double u = clt_test_eps(s), atol = 1e-5 * (double)(g.k + 1) * (1 + u);
    double worst = 0;
    if (data_as == s)
        assert_true(got[0] == 0.125f); /* the element before C */
    for (int64_t i = 0; i < sc; i++) {
        int64_t z = i / (g.stride_c > 0 ? g.stride_c : sc), r = i - z * g.stride_c;
        bool inside = z < g.batch && r / g.ldc < g.m && r % g.ldc < g.n;
        double e = fabs((double)got[i + 1] - want[i]) / (atol + u * fabs(want[i]));
        if (inside && data_as == s && !(e <= 1.0)) {
            print_error(
                "%s %s m=%lld n=%lld k=%lld ta=%d tb=%d batch=%lld beta=%g: C[%lld] = %.9g, "
                "want %.9g\n",
                p.name, clt_precision_name(s), (long long)g.m, (long long)g.n, (long long)g.k,
                g.trans_a, g.trans_b, (long long)g.batch, (double)g.beta, (long long)i,
                (double)got[i + 1], want[i]);
            fail();
        }
        if (!inside && data_as == s && !(got[i + 1] == c[i] || (isnan(got[i + 1]) && isnan(c[i]))))
            fail_msg("C[%lld] outside the matrices changed: %g, was %g", (long long)i,
                     (double)got[i + 1], (double)c[i]);
        if (inside && !(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    clt_arena_free(arena);
    free(a);
    free(b);
    free(c);
    free(got);
    free(want);
    return worst;
}

/* The fp32 implementations the widened path can run on this device, the own kernel in the
 * storage (its default configuration; test_gemm_own.c runs every one), and clt__gemm. */
static size_t paths_st(struct clt_device *dev, struct path *out)
{
    struct backend be[3];
    size_t nb = backends_of(dev, be), n = 0;
    for (size_t i = 0; i < nb; i++)
        out[n++] = (struct path){be[i].name, be[i].fn, true};
    out[n++] = (struct path){"own16", clt__gemm_own, false};
    out[n++] = (struct path){"clt__gemm", NULL, false};
    return n;
}

static const enum clt_precision storages16[2] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16};

/* Odd shapes, every transpose pair, alpha and beta, padded leading dimensions with beta 0
 * over NaN, strided batches with gaps, operands at odd offsets: in fp16 and bf16, through
 * every fp32 implementation behind the widened path and through clt__gemm. */
static void storage16(void **state)
{
    struct clt_device *dev = *state;
    int64_t big[][4] = {{1, 1, 1, 1}, {17, 13, 29, 1}, {33, 65, 31, 1}, {70, 9, 130, 2}};
    int64_t small[][4] = {{1, 1, 1, 1}, {7, 5, 9, 2}};
    bool is_small = clt_test_small();
    size_t count = is_small ? 2 : 4;
    struct path be[5];
    size_t nb = paths_st(dev, be);
    for (int si = 0; si < 2; si++)
        for (size_t p = 0; p < nb; p++)
            for (int t = 0; t < 4; t++) {
                for (size_t i = 0; i < count; i++) {
                    const int64_t *d = is_small ? small[i] : big[i];
                    struct clt_gemm_shape g = {.m = d[0],
                                               .n = d[1],
                                               .k = d[2],
                                               .batch = d[3],
                                               .trans_a = t & 1,
                                               .trans_b = (t >> 1) & 1,
                                               .alpha = 0.75f,
                                               .beta = 0.5f};
                    assert_true(run_st(dev, be[p], storages16[si], storages16[si], &g, false) <=
                                1.0);
                }
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
                assert_true(run_st(dev, be[p], storages16[si], storages16[si], &g, true) <= 1.0);
                struct clt_gemm_shape bt = {.m = 5,
                                            .n = 6,
                                            .k = 9,
                                            .trans_a = t & 1,
                                            .trans_b = (t >> 1) & 1,
                                            .alpha = -1.25f,
                                            .beta = 1.0f,
                                            .batch = 3,
                                            .stride_a = 5 * 9 + 7,
                                            .stride_b = 6 * 9 + 1,
                                            .stride_c = 5 * 6 + 2};
                assert_true(run_st(dev, be[p], storages16[si], storages16[si], &bt, false) <= 1.0);
            }
}

/* The test above can fail: operands written in the other 16-bit format, or as fp32, are far
 * outside the tolerance. */
static void storage16_wrong_data_fails(void **state)
{
    const struct path clt__gemm_path = {"clt__gemm", NULL, false};
    struct clt_device *dev = *state;
    struct clt_gemm_shape g = {.m = 9, .n = 7, .k = 11, .alpha = 1.0f, .beta = 0.5f};
    assert_true(run_st(dev, clt__gemm_path, CLT_PRECISION_FP16, CLT_PRECISION_FP16, &g, false) <=
                1.0);
    assert_true(run_st(dev, clt__gemm_path, CLT_PRECISION_FP16, CLT_PRECISION_BF16, &g, false) >
                1.0);
    assert_true(run_st(dev, clt__gemm_path, CLT_PRECISION_BF16, CLT_PRECISION_FP16, &g, false) >
                1.0);
    assert_true(run_st(dev, clt__gemm_path, CLT_PRECISION_BF16, CLT_PRECISION_FP32, &g, false) >
                1.0);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(shapes_and_transposes),
        CLT_DEVICE_TEST(leading_dimensions_and_beta_zero),
        CLT_DEVICE_TEST(strided_batches),
        CLT_DEVICE_TEST(own_space),
        CLT_DEVICE_TEST(storage16),
        CLT_DEVICE_TEST(storage16_wrong_data_fails),
        CLT_DEVICE_TEST(host_blas_where_it_can_run),
        CLT_DEVICE_TEST(public_call_checks_arguments),
        CLT_DEVICE_TEST(backend_follows_the_environment),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
