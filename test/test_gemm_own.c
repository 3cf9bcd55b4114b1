/*
 * test_gemm_own.c: every configuration of the own GEMM kernel (cl/gemm.cl) that the device's
 * search space can produce, against the C reference: shapes with both interior and edge tiles
 * and a k remainder, every transpose pair, alpha and beta, beta 0 over NaN, padded leading
 * dimensions, strided batches and non-zero element offsets. Also: every configuration gives
 * the same bits (one fma chain per output, in k order), operands that end their buffers are
 * read within them by every configuration's edge tiles (Oclgrind reports a read past a
 * buffer; the packing clamps rows and columns past the matrix), the text form round-trips and
 * malformed text is rejected, and configurations the device cannot run are refused cleanly.
 *
 * Tolerance: inputs uniform in [-1, 1); |got - want| <= 1e-5 * (k + 1) + 1e-5 * |want|,
 * float accumulation of k products of magnitude <= 1 against a double reference.
 *
 * 16-bit storages (the kernel built with CLT_STORAGE 16 and 161: A, B, C in fp16 or bf16):
 * every configuration again at odd shapes with edge tiles, k remainders, batches, padded
 * leading dimensions, beta 0 over NaN and odd element offsets, on inputs rounded to the
 * storage; |got - want| <= 1e-5 * (k + 1) * (1 + u) + u * |want|, u the storage's unit
 * roundoff (fp16 2^-11, bf16 2^-8): C's one rounding on top of the fp32 term. Every
 * configuration gives the same bits in each storage too (same fp32 sums, one rounding). In
 * bf16 only the first configuration of each vector width and staging runs (with every
 * transpose pair): the storage changes the loads and stores only, which those fields choose,
 * and every configuration builds once per storage (most of this test's time on PoCL).
 *
 * Split-K (S > 1): S partial products over chunks of k, added by a reduction, at odd m and n,
 * k that S divides and k that it does not (the rest as one more partial), k shorter than S
 * (runs unsplit), every transpose pair, alpha and beta, beta 0 over NaN, padded leading
 * dimensions; in fp32 with configurations the other tests have built (a split configuration
 * shares its twin's program there), and in fp16 and bf16 with the default configuration (the
 * partials stay fp32: C is rounded once, so the 16-bit tolerance above holds). The same
 * tolerance: each output is S fma chains added, the same bound on k products. The search
 * space offers split candidates only for one product with a long k and few tiles, or a k much
 * longer than it is wide, and each one it offers at such a shape is right.
 *
 * Dot mode's tests are in test_gemm_dot.c (the same executable; gemm_own_rig.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_own_rig.h"

enum clt_precision storage = CLT_PRECISION_FP32;

/* A view of count elements of the storage after `lead` elements of padding (odd: the operand
 * lands at an odd element offset), from host (rounded to the storage); *buf its argument. */
static struct clt_view upload_st(struct clt_arena *arena, const float *host, int64_t count,
                                 int lead, struct clt__buf *buf)
{
    float *padded = calloc((size_t)(count + lead), sizeof *padded);
    assert_non_null(padded);
    memcpy(padded + lead, host, (size_t)count * sizeof *host);
    struct clt_view v = clt_test_tensor_st(arena, padded, (size_t)(count + lead), storage);
    free(padded);
    *buf = clt_test_buf_st(&v, storage);
    buf->offset += (size_t)lead;
    return v;
}

/* Runs the GEMM with configuration cfg in `storage`, checks it against the reference and,
 * when `bits` is not NULL, returns C's elements (the whole span) in *bits for the caller to
 * free. */
void check_config(struct clt_device *dev, const struct clt__gemm_config *cfg,
                  const struct clt_gemm_shape *shape, bool c_nan, float **bits)
{
    struct clt_gemm_shape g;
    int64_t sa, sb, sc;
    assert_int_equal(clt__gemm_resolve(NULL, shape, &g, &sa, &sb, &sc), CLT_OK);
    float *a = malloc(sa * sizeof *a), *b = malloc(sb * sizeof *b);
    float *c = malloc(sc * sizeof *c), *got = malloc(sc * sizeof *got);
    double *want = malloc(sc * sizeof *want);
    assert_true(a && b && c && got && want);
    clt_test_fill(a, sa, 3 + sa, -1.0f, 1.0f);
    clt_test_fill(b, sb, 5 + sb, -1.0f, 1.0f);
    clt_test_fill(c, sc, 7 + sc, -1.0f, 1.0f);
    if (c_nan)
        for (int64_t i = 0; i < sc; i++)
            c[i] = NAN;
    clt_test_round(a, (size_t)sa, storage);
    clt_test_round(b, (size_t)sb, storage);
    clt_test_round(c, (size_t)sc, storage);
    for (int64_t i = 0; i < sc; i++)
        want[i] = c[i];
    ref_gemm(&g, a, b, c, want);

    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, (uint64_t)(sa + sb + sc + 8) * 4 + 4096, &arena),
                     CLT_OK);
    if (storage == CLT_PRECISION_FP32) {
        /* Views of odd lengths put every operand at an odd element offset. */
        struct clt_view pad = clt_test_upload(arena, NULL, 3);
        struct clt_view va = clt_test_upload(arena, a, sa);
        struct clt_view pad2 = clt_test_upload(arena, NULL, 1);
        struct clt_view vb = clt_test_upload(arena, b, sb);
        struct clt_view vc = clt_test_upload(arena, c, sc);
        (void)pad;
        (void)pad2;
        assert_int_equal(clt__gemm_own_run(dev, cfg, &g, clt__view_buf(&va), clt__view_buf(&vb),
                                           clt__view_buf(&vc)),
                         CLT_OK);
        clt_test_download(&vc, got, sc);
    } else {
        struct clt__buf ba, bb, bc;
        upload_st(arena, a, sa, 3, &ba);
        upload_st(arena, b, sb, 1, &bb);
        struct clt_view vc = upload_st(arena, c, sc, 1, &bc);
        assert_int_equal(clt__gemm_own_run(dev, cfg, &g, ba, bb, bc), CLT_OK);
        float *all = malloc((size_t)(sc + 1) * sizeof *all);
        assert_non_null(all);
        clt_test_get_st(&vc, all, (size_t)sc + 1, storage);
        memcpy(got, all + 1, (size_t)sc * sizeof *got);
        free(all);
        /* Elements of C's span outside the matrices come back unchanged. */
        for (int64_t i = 0; i < sc; i++) {
            int64_t z = g.batch > 1 ? i / g.stride_c : 0, r = i - z * g.stride_c;
            if ((z >= g.batch || r / g.ldc >= g.m || r % g.ldc >= g.n) &&
                !(got[i] == c[i] || (isnan(got[i]) && isnan(c[i]))))
                fail_msg("C[%lld] outside the matrices changed", (long long)i);
        }
    }
    char text[96], what[256];
    clt__gemm_config_format(cfg, text, sizeof text);
    snprintf(what, sizeof what, "%s %s m=%lld n=%lld k=%lld ta=%d tb=%d batch=%lld beta=%g",
             clt_precision_name(storage), text, (long long)g.m, (long long)g.n, (long long)g.k,
             g.trans_a, g.trans_b, (long long)g.batch, (double)g.beta);
    /* Only matrix elements: padding between rows and matrices keeps C's old values (NaN
     * included), which the reference copies too, but NaN never compares close. */
    for (int64_t z = 0; z < g.batch; z++)
        for (int64_t i = 0; i < g.m; i++) {
            int64_t row = z * g.stride_c + i * g.ldc;
            const double u = storage == CLT_PRECISION_FP32 ? 1e-5 : clt_test_eps(storage);
            clt_test_assert_close(what, got + row, want + row, (size_t)g.n,
                                  1e-5 * (double)(g.k + 1) * (1 + u), u);
        }
    clt_arena_free(arena);
    if (bits)
        *bits = got;
    else
        free(got);
    free(a);
    free(b);
    free(c);
    free(want);
}

/* Configurations outside the search spaces that cover every staging mode (0 to 7), every
 * vector width, odd tile sizes (7 rows as a fitted tile of a product of few rows has,
 * test_gemm_fit.c) and a k step without unrolling, small enough for any device: tested on
 * every device beside its own space (Oclgrind, a GPU-like device, would otherwise never check
 * the serial modes of the CPU list). */
static const char *const extra_configs[] = {
    "mwg=12,nwg=32,kwg=16,mdim=2,ndim=2,vw=8,stage=4",
    "mwg=12,nwg=32,kwg=16,mdim=2,ndim=2,vw=4,stage=5",
    "mwg=12,nwg=32,kwg=16,mdim=2,ndim=2,vw=2,stage=6",
    "mwg=24,nwg=64,kwg=64,mdim=4,ndim=4,vw=8,stage=7",
    "mwg=16,nwg=32,kwg=16,mdim=2,ndim=2,vw=8,stage=7",
    "mwg=16,nwg=16,kwg=8,mdim=4,ndim=4,vw=1,stage=1",
    "mwg=16,nwg=32,kwg=8,mdim=8,ndim=4,vw=4,stage=2",
    "mwg=32,nwg=32,kwg=16,mdim=8,ndim=4,vw=2,stage=3",
    "mwg=8,nwg=32,kwg=4,mdim=2,ndim=2,vw=16,stage=0",
    "mwg=5,nwg=6,kwg=3,mdim=1,ndim=3,vw=2,stage=3",
    "mwg=7,nwg=32,kwg=128,mdim=1,ndim=2,vw=16,stage=7",
};

/* The device's whole search space (the list does not depend on the shape, only its order),
 * then the extra configurations. */
static size_t all_configs(struct clt_device *dev, struct clt__gemm_config *out)
{
    size_t n = clt__gemm_own_space(dev, NULL, out, MAX_CONFIGS);
    assert_true(n >= 1);
    for (size_t i = 0; i < sizeof extra_configs / sizeof extra_configs[0]; i++) {
        assert_true(n < MAX_CONFIGS);
        assert_true(clt__gemm_config_parse(extra_configs[i], &out[n]));
        /* Serial mode on llvmpipe is refused (device_limits_are_enforced checks that). */
        if (!clt__gemm_own_refusal(dev, &out[n]))
            n++;
    }
    return n;
}

/* A shape that gives configuration c an interior tile, edge tiles in both directions (3 rows
 * and 5 columns past a tile) and a k remainder of k_extra after one full k step, with
 * transpose pair t (bit 0: A, bit 1: B). */
static struct clt_gemm_shape edged(const struct clt__gemm_config *c, int t, int64_t k_extra,
                                   float alpha, float beta)
{
    return (struct clt_gemm_shape){.m = c->mwg + 3,
                                   .n = c->nwg + 5,
                                   .k = c->kwg + k_extra,
                                   .trans_a = t & 1,
                                   .trans_b = (t >> 1) & 1,
                                   .alpha = alpha,
                                   .beta = beta};
}

/* Shapes that give each configuration an interior tile, edge tiles in both directions and a
 * k remainder after at least one full k step; and a product smaller than any tile. */
static void every_configuration_every_transpose(void **state)
{
    struct clt_device *dev = *state;
    struct clt__gemm_config cfg[MAX_CONFIGS];
    size_t n = all_configs(dev, cfg);
    bool small = clt_test_small();
    for (size_t i = 0; i < n; i++) {
        const struct clt__gemm_config *c = &cfg[i];
        for (int t = 0; t < 4; t++) {
            /* With small shapes (Oclgrind, rusticl) each configuration takes the large
             * shape with one transpose pair (all four pairs over consecutive
             * configurations) and the small one with all four. */
            if (!small || t == (int)(i % 4)) {
                struct clt_gemm_shape g = edged(c, t, small ? 3 : 11, 0.75f, 0.5f);
                check_config(dev, c, &g, false, NULL);
            }
            struct clt_gemm_shape tiny = {.m = 5,
                                          .n = 3,
                                          .k = 7,
                                          .trans_a = t & 1,
                                          .trans_b = (t >> 1) & 1,
                                          .alpha = -1.5f,
                                          .beta = 1.0f};
            check_config(dev, c, &tiny, false, NULL);
        }
    }
}

/* A (or B, C) of count floats from host in a buffer of exactly that size, so that a read past
 * the matrix is a read past the buffer (Oclgrind reports it). */
static cl_mem exact_buffer(struct clt_device *dev, const float *host, int64_t count)
{
    cl_int err;
    cl_mem m = clCreateBuffer(dev->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                              (size_t)count * sizeof(float), (void *)host, &err);
    assert_int_equal(err, CL_SUCCESS);
    return m;
}

/* Every configuration and transpose pair at a shape with edge tiles in both directions and a
 * k remainder, each operand in a buffer of its own size: the edge tiles (their rows and
 * columns past the matrix clamped to its last) read nothing past the matrices, and the
 * result is the reference's. fp32. */
static void operands_end_their_buffers(void **state)
{
    struct clt_device *dev = *state;
    struct clt__gemm_config cfg[MAX_CONFIGS];
    size_t n = all_configs(dev, cfg);
    bool small = clt_test_small();
    for (size_t i = 0; i < n; i++)
        for (int t = 0; t < 4; t++) {
            if (small && t != (int)(i % 4) && t != (int)((i + 1) % 4))
                continue;
            struct clt_gemm_shape shape = edged(&cfg[i], t, 11, 1.25f, 0.0f), g;
            int64_t sa, sb, sc;
            assert_int_equal(clt__gemm_resolve(NULL, &shape, &g, &sa, &sb, &sc), CLT_OK);
            float *a = malloc(sa * sizeof *a), *b = malloc(sb * sizeof *b);
            float *c = calloc((size_t)sc, sizeof *c), *got = malloc(sc * sizeof *got);
            double *want = calloc((size_t)sc, sizeof *want);
            assert_true(a && b && c && got && want);
            clt_test_fill(a, sa, 11 + sa, -1.0f, 1.0f);
            clt_test_fill(b, sb, 13 + sb, -1.0f, 1.0f);
            ref_gemm(&g, a, b, c, want);
            cl_mem ma = exact_buffer(dev, a, sa), mb = exact_buffer(dev, b, sb);
            cl_mem mc = exact_buffer(dev, c, sc);
            assert_int_equal(clt__gemm_own_run(dev, &cfg[i], &g, (struct clt__buf){ma, 0},
                                               (struct clt__buf){mb, 0}, (struct clt__buf){mc, 0}),
                             CLT_OK);
            assert_int_equal(clEnqueueReadBuffer(dev->queue, mc, CL_TRUE, 0,
                                                 (size_t)sc * sizeof *got, got, 0, NULL, NULL),
                             CL_SUCCESS);
            char text[96], what[192];
            clt__gemm_config_format(&cfg[i], text, sizeof text);
            snprintf(what, sizeof what, "exact buffers %s ta=%d tb=%d", text, g.trans_a, g.trans_b);
            clt_test_assert_close(what, got, want, (size_t)sc, 1e-5 * (double)(g.k + 1), 1e-5);
            clReleaseMemObject(ma);
            clReleaseMemObject(mb);
            clReleaseMemObject(mc);
            free(a);
            free(b);
            free(c);
            free(got);
            free(want);
        }
}

/* Products narrower than one tile, with a k remainder after two full steps and a batch, for
 * every configuration and transpose pair (with small shapes, pairs rotating over
 * configurations): test_gemm.c's own_space found serial 24 x 64 (stage 7) wrong on rusticl at
 * m=70 n=9 k=130 ta=0 tb=1 batch=2, which the shapes above (one full k step) missed. */
static void narrow_products_with_batches(void **state)
{
    struct clt_device *dev = *state;
    struct clt__gemm_config cfg[MAX_CONFIGS];
    size_t n = all_configs(dev, cfg);
    bool small = clt_test_small();
    for (size_t i = 0; i < n; i++)
        for (int t = 0; t < 4; t++) {
            /* Small shapes: one transpose pair per configuration, rotating. */
            if (small && t != (int)(i % 4))
                continue;
            struct clt_gemm_shape g = {.m = small ? 29 : 70,
                                       .n = 9,
                                       .k = small ? 2 * cfg[i].kwg + 3 : 130,
                                       .trans_a = t & 1,
                                       .trans_b = (t >> 1) & 1,
                                       .alpha = 0.75f,
                                       .beta = 0.5f,
                                       .batch = 2};
            check_config(dev, &cfg[i], &g, false, NULL);
        }
}

/* Padded leading dimensions, beta 0 over C full of NaN, and strided batches with padding
 * between matrices, for every configuration (transpose pairs rotating over configurations). */
static void batches_leading_dimensions_beta_zero(void **state)
{
    struct clt_device *dev = *state;
    struct clt__gemm_config cfg[MAX_CONFIGS];
    size_t n = all_configs(dev, cfg);
    for (size_t i = 0; i < n; i++) {
        int t = (int)(i % 4);
        struct clt_gemm_shape g = {.m = 13,
                                   .n = 19,
                                   .k = 9,
                                   .trans_a = t & 1,
                                   .trans_b = (t >> 1) & 1,
                                   .alpha = 1.0f,
                                   .beta = 0.0f};
        g.lda = (g.trans_a ? g.m : g.k) + 3;
        g.ldb = (g.trans_b ? g.k : g.n) + 2;
        g.ldc = g.n + 5;
        check_config(dev, &cfg[i], &g, true, NULL);
        struct clt_gemm_shape bt = {.m = 6,
                                    .n = 11,
                                    .k = 21,
                                    .trans_a = (t >> 1) & 1,
                                    .trans_b = t & 1,
                                    .alpha = -1.25f,
                                    .beta = 0.25f,
                                    .batch = 3};
        check_config(dev, &cfg[i], &bt, false, NULL);
        bt.stride_a = 6 * 21 + 7;
        bt.stride_b = 11 * 21 + 1;
        bt.stride_c = 6 * 11 + 2;
        check_config(dev, &cfg[i], &bt, false, NULL);
    }
}

/* Each output is one fma chain over k in increasing order whatever the tiles, so every
 * configuration must give the same bits. */
static void configurations_agree_bit_for_bit(void **state)
{
    struct clt_device *dev = *state;
    struct clt__gemm_config cfg[MAX_CONFIGS];
    size_t n = all_configs(dev, cfg);
    struct clt_gemm_shape g = {
        .m = 37, .n = 45, .k = 70, .trans_a = true, .alpha = 0.5f, .beta = 2.0f};
    if (clt_test_small())
        g.k = 20;
    float *first = NULL;
    check_config(dev, &cfg[0], &g, false, &first);
    for (size_t i = 1; i < n; i++) {
        float *got = NULL;
        check_config(dev, &cfg[i], &g, false, &got);
        char text[96];
        clt__gemm_config_format(&cfg[i], text, sizeof text);
        for (int64_t e = 0; e < g.m * g.n; e++)
            if (memcmp(&got[e], &first[e], sizeof(float)) != 0) {
                print_error("%s differs from the first configuration at element %lld: %.9g "
                            "vs %.9g\n",
                            text, (long long)e, (double)got[e], (double)first[e]);
                fail();
            }
        free(got);
    }
    free(first);
}

static void text_form_round_trips(void **state)
{
    struct clt_device *dev = *state;
    struct clt__gemm_config cfg[MAX_CONFIGS], back, def;
    size_t n = all_configs(dev, cfg);
    for (size_t i = 0; i < n; i++) {
        char text[96];
        int len = clt__gemm_config_format(&cfg[i], text, sizeof text);
        assert_true(len > 0 && (size_t)len < sizeof text);
        assert_true(clt__gemm_config_parse(text, &back));
        assert_memory_equal(&back, &cfg[i], sizeof back);
    }
    /* The default is a member of the space for any shape: the list, with the fitted tiles of
     * a product of few rows (test_gemm_fit.c) where the device is offered them. */
    struct clt_gemm_shape g = {.m = 3, .n = 1000, .k = 17};
    clt__gemm_own_default(dev, &g, &def);
    bool found = false;
    size_t space = clt__gemm_own_space(dev, &g, cfg, MAX_CONFIGS);
    size_t extra = 0;
    for (size_t i = 0; i < sizeof extra_configs / sizeof extra_configs[0]; i++) {
        struct clt__gemm_config e;
        assert_true(clt__gemm_config_parse(extra_configs[i], &e));
        extra += clt__gemm_own_refusal(dev, &e) == NULL;
    }
    size_t fitted = 0;
    for (size_t i = 0; i < space; i++) {
        found |= memcmp(&def, &cfg[i], sizeof def) == 0;
        fitted += cfg[i].mwg == g.m && cfg[i].mdim == 1;
    }
    bool offered = dev->info.type == CLT_DEVICE_CPU && !strstr(dev->info.name, "llvmpipe");
    assert_int_equal(fitted, offered ? 2 : 0);
    assert_int_equal(space, n - extra + fitted);
    assert_true(found);
}

static void malformed_text_is_rejected(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "mwg=64",
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4",
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3,",
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3x",
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3 ",
        " mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3",
        "mwg= 64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3",
        "mwg=+64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3",
        "mwg=-64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3",
        "nwg=64,mwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3",
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=3,stage=3",  /* vector width */
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=8",  /* staging bits */
        "mwg=60,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3",  /* mdim does not divide mwg */
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=4,vw=32,stage=3", /* ndim * vw does not divide */
        "mwg=64,nwg=64,kwg=0,mdim=8,ndim=8,vw=4,stage=3",
        "mwg=512,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3",
        "mwg=4294967360,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3",
        "mwg=256,nwg=256,kwg=16,mdim=1,ndim=1,vw=4,stage=3", /* 65536 floats per work-item */
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3,split=0",
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3,split=1", /* S = 1 is written without */
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3,split=65",
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3,split=",
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3,split=x",
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3,split=8,",
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3,split=8x",
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3,splat=8",
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3,split=-8",
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3,split=99999",
    };
    struct clt__gemm_config out = {1, 2, 3, 4, 5, 6, 7, 1}, before = out;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (clt__gemm_config_parse(bad[i], &out))
            fail_msg("accepted \"%s\"", bad[i]);
        assert_memory_equal(&out, &before, sizeof out);
    }
    assert_false(clt__gemm_config_parse(NULL, &out));
    assert_true(clt__gemm_config_parse("mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3", &out));
    assert_int_equal(out.split, 1);
}

/* Split configurations' text: ",split=S" after the rest, only when S > 1; it round-trips. */
static void split_text_round_trips(void **state)
{
    (void)state;
    static const char *const good[] = {
        "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3,split=2",
        "mwg=8,nwg=32,kwg=16,mdim=8,ndim=4,vw=8,stage=0,split=64",
        "mwg=5,nwg=6,kwg=3,mdim=1,ndim=3,vw=2,stage=3,split=3",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct clt__gemm_config c, back;
        char text[96];
        assert_true(clt__gemm_config_parse(good[i], &c));
        assert_true(c.split >= 2);
        clt__gemm_config_format(&c, text, sizeof text);
        assert_string_equal(text, good[i]);
        assert_true(clt__gemm_config_parse(text, &back));
        assert_memory_equal(&back, &c, sizeof c);
        c.split = 1;
        clt__gemm_config_format(&c, text, sizeof text);
        assert_null(strstr(text, "split"));
    }
}

/* A well-formed configuration the device cannot run is refused with a status, not run. */
static void device_limits_are_enforced(void **state)
{
    struct clt_device *dev = *state;
    struct clt__gemm_config huge_group = {256, 256, 16, 256, 256, 1, 0, 1};
    assert_int_equal(clt__gemm_own_prepare(dev, &huge_group), CLT_ERR_INVALID_ARGUMENT);
    struct clt__gemm_config ok;
    clt__gemm_own_default(dev, NULL, &ok);
    assert_int_equal(clt__gemm_own_prepare(dev, &ok), CLT_OK);
    /* llvmpipe ends a work-item's loops after 65535 iterations in all: serial mode (one
     * work-item per tile) is refused there, and offered on other CPU devices. */
    struct clt__gemm_config serial_cfg;
    const char *serial_text = "mwg=24,nwg=64,kwg=64,mdim=4,ndim=4,vw=8,stage=7";
    assert_true(clt__gemm_config_parse(serial_text, &serial_cfg));
    bool llvmpipe = strstr(dev->info.name, "llvmpipe") != NULL;
    assert_int_equal(clt__gemm_own_refusal(dev, &serial_cfg) != NULL, llvmpipe);
    if (llvmpipe)
        assert_int_equal(clt__gemm_own_prepare(dev, &serial_cfg), CLT_ERR_INVALID_ARGUMENT);
}

/* A long k: on llvmpipe the product runs as several launches over slices of k (each work-item's
 * loops would otherwise stop after 65535 iterations, leaving partial sums); elsewhere in one. */
static void long_k(void **state)
{
    struct clt_device *dev = *state;
    struct clt__gemm_config cfg[MAX_CONFIGS];
    size_t n = all_configs(dev, cfg);
    /* Slices of k on llvmpipe start at about 1500 (launch_k_limit); Oclgrind takes a short k. */
    bool llvmpipe = strstr(dev->info.name, "llvmpipe") != NULL;
    int64_t k = clt_test_small() && !llvmpipe ? 301 : 4103;
    for (size_t i = 0; i < n; i++) {
        int t = (int)(i % 4);
        struct clt_gemm_shape g = {.m = 5,
                                   .n = 11,
                                   .k = k,
                                   .trans_a = t & 1,
                                   .trans_b = (t >> 1) & 1,
                                   .alpha = 0.5f,
                                   .beta = 0.0f};
        check_config(dev, &cfg[i], &g, true, NULL);
    }
}

/* One split configuration at odd shapes: S divides k or not, every transpose pair, alpha and
 * beta, beta 0 over NaN with padded leading dimensions, k shorter than S. */
static void check_split(struct clt_device *dev, const struct clt__gemm_config *base, uint16_t s)
{
    struct clt__gemm_config c = *base;
    c.split = s;
    bool small = clt_test_small();
    for (int t = 0; t < 4; t++) {
        int64_t k = (t & 1) ? (int64_t)s * (small ? 7 : 23) : (int64_t)s * (small ? 5 : 19) + 3;
        struct clt_gemm_shape g = {.m = 7,
                                   .n = 13,
                                   .k = k,
                                   .trans_a = t & 1,
                                   .trans_b = (t >> 1) & 1,
                                   .alpha = 0.75f,
                                   .beta = 0.5f};
        check_config(dev, &c, &g, false, NULL);
        struct clt_gemm_shape ld = g;
        ld.m = 9;
        ld.n = 5;
        ld.alpha = -1.5f;
        ld.beta = 0.0f;
        ld.lda = (ld.trans_a ? ld.m : ld.k) + 3;
        ld.ldb = (ld.trans_b ? ld.k : ld.n) + 2;
        ld.ldc = ld.n + 5;
        check_config(dev, &c, &ld, true, NULL);
    }
    struct clt_gemm_shape tiny = {.m = 3, .n = 5, .k = s - 1 > 0 ? s - 1 : 1, .alpha = 1.0f};
    check_config(dev, &c, &tiny, true, NULL);
}

/* Split-K in fp32 with configurations the other tests built (the split shares its twin's
 * program), then in fp16 and bf16 with the default configuration (fp32 partials). */
static void split_configurations(void **state)
{
    struct clt_device *dev = *state;
    struct clt__gemm_config cfg[MAX_CONFIGS];
    size_t n = all_configs(dev, cfg);
    check_split(dev, &cfg[0], 2);
    check_split(dev, &cfg[n - 1], 3);
    check_split(dev, &cfg[n - 1], 8);
    const enum clt_precision st[2] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16};
    for (int si = 0; si < 2; si++) {
        storage = st[si];
        enum clt_precision prev = clt__storage_set(dev, storage);
        check_split(dev, &cfg[0], 4);
        clt__storage_set(dev, prev);
        storage = CLT_PRECISION_FP32;
    }
}

/* The space offers split candidates for one product with few tiles or a k much longer than
 * the product is wide, never for a batch, never without a shape, never for a product with
 * tiles enough and a k shorter than 16 times its width; each offered at a small long-k product
 * is right (its twin is in the space: the program is shared). */
static void split_candidates_of_the_space(void **state)
{
    struct clt_device *dev = *state;
    struct clt__gemm_config cfg[MAX_CONFIGS];
    size_t n = clt__gemm_own_space(dev, NULL, cfg, MAX_CONFIGS);
    for (size_t i = 0; i < n; i++)
        assert_true(cfg[i].split <= 1);
    struct clt_gemm_shape big = {.m = 1024, .n = 1024, .k = 8192, .batch = 1};
    n = clt__gemm_own_space(dev, &big, cfg, MAX_CONFIGS);
    for (size_t i = 0; i < n; i++)
        assert_true(cfg[i].split <= 1);
    struct clt_gemm_shape batched = {.m = 5, .n = 3, .k = 50176, .batch = 2};
    n = clt__gemm_own_space(dev, &batched, cfg, MAX_CONFIGS);
    for (size_t i = 0; i < n; i++)
        assert_true(cfg[i].split <= 1);
    bool small = clt_test_small();
    struct clt_gemm_shape g = {
        .m = 5, .n = 3, .k = small ? 1031 : 4103, .batch = 1, .trans_b = true, .alpha = 1.0f};
    n = clt__gemm_own_space(dev, &g, cfg, MAX_CONFIGS);
    size_t splits = 0;
    for (size_t i = 0; i < n; i++) {
        if (cfg[i].split <= 1 || cfg[i].stage == CLT__GEMM_STAGE_DOT)
            continue; /* dot mode's are dot_candidates_of_the_space's */
        splits++;
        assert_true(cfg[i].split <= CLT__GEMM_MAX_SPLIT);
        assert_true(g.k / cfg[i].split >= 4 * cfg[i].kwg);
        check_config(dev, &cfg[i], &g, true, NULL);
    }
    /* One tile of a 5 x 3 product leaves a compute unit idle on any device whose tiles need
     * k >= 8 k steps: the candidates are there when a base's k step fits. */
    printf("%zu split candidates of %zu at m=5 n=3 k=%lld\n", splits, n, (long long)g.k);
    assert_true(splits >= 1);
    assert_true(splits <= 6);
}

/* Whether configuration i is the first of the list with its vector width and staging: the
 * two fields that choose which loads and stores (LOAD, VLOADn, local tiles, serial panels)
 * the kernel text uses; tile sizes only change the constants. */
static bool first_of_its_kind(const struct clt__gemm_config *cfg, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (cfg[j].vw == cfg[i].vw && cfg[j].stage == cfg[i].stage)
            return false;
    return true;
}

/* Every configuration in fp16, and in bf16 the first of each vector width and staging (the
 * storage changes only the loads and stores, which those two fields choose; each such
 * configuration runs there with every transpose pair): edge tiles with a k remainder
 * (transpose pairs rotating), a batch of narrow products with padded leading dimensions and
 * beta 0 over NaN, a strided batch with gaps, and the same bits from every configuration. */
static void every_configuration_in_16_bits(void **state)
{
    struct clt_device *dev = *state;
    struct clt__gemm_config cfg[MAX_CONFIGS];
    size_t n = all_configs(dev, cfg);
    const enum clt_precision st[2] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16};
    bool small = clt_test_small();
    for (int si = 0; si < 2; si++) {
        storage = st[si];
        enum clt_precision prev = clt__storage_set(dev, storage);
        float *first = NULL;
        size_t ran = 0;
        for (size_t i = 0; i < n * 4; i++) {
            /* fp16: each configuration once, transpose pairs rotating; bf16: the first of each
             * kind, four times (every transpose pair). */
            const bool every = si == 0;
            if (every ? i >= n : !first_of_its_kind(cfg, i / 4))
                continue;
            const struct clt__gemm_config *c = &cfg[every ? i : i / 4];
            int t = (int)(i % 4);
            ran++;
            struct clt_gemm_shape g = {.m = c->mwg + 3,
                                       .n = c->nwg + 5,
                                       .k = c->kwg + (small ? 3 : 11),
                                       .trans_a = t & 1,
                                       .trans_b = (t >> 1) & 1,
                                       .alpha = 0.75f,
                                       .beta = 0.5f};
            check_config(dev, c, &g, false, NULL);
            struct clt_gemm_shape ld = {.m = 13,
                                        .n = 19,
                                        .k = 9,
                                        .trans_a = (t >> 1) & 1,
                                        .trans_b = t & 1,
                                        .alpha = 1.0f,
                                        .beta = 0.0f};
            ld.lda = (ld.trans_a ? ld.m : ld.k) + 3;
            ld.ldb = (ld.trans_b ? ld.k : ld.n) + 2;
            ld.ldc = ld.n + 5;
            check_config(dev, c, &ld, true, NULL);
            struct clt_gemm_shape bt = {.m = 6,
                                        .n = 11,
                                        .k = 21,
                                        .trans_a = t & 1,
                                        .trans_b = (t >> 1) & 1,
                                        .alpha = -1.25f,
                                        .beta = 0.25f,
                                        .batch = 3,
                                        .stride_a = 6 * 21 + 7,
                                        .stride_b = 11 * 21 + 1,
                                        .stride_c = 6 * 11 + 2};
            check_config(dev, c, &bt, false, NULL);
            struct clt_gemm_shape same = {.m = 37,
                                          .n = 45,
                                          .k = small ? 20 : 70,
                                          .trans_a = true,
                                          .alpha = 0.5f,
                                          .beta = 2.0f};
            float *got = NULL;
            check_config(dev, c, &same, false, &got);
            if (!first) {
                first = got;
                continue;
            }
            if (memcmp(got, first, (size_t)(same.m * same.n) * sizeof *got) != 0) {
                char text[96];
                clt__gemm_config_format(c, text, sizeof text);
                fail_msg("%s in %s differs from the first configuration", text,
                         clt_precision_name(storage));
            }
            free(got);
        }
        free(first);
        printf("%s: %zu configuration runs\n", clt_precision_name(storage), ran);
        assert_true(ran >= (si == 0 ? n : 4));
        clt__storage_set(dev, prev);
        storage = CLT_PRECISION_FP32;
    }
}

/* A long k in 16 bits (on llvmpipe: slices of k run on fp32 copies, C rounded once). */
static void long_k_in_16_bits(void **state)
{
    struct clt_device *dev = *state;
    struct clt__gemm_config cfg;
    clt__gemm_own_default(dev, NULL, &cfg);
    bool llvmpipe = strstr(dev->info.name, "llvmpipe") != NULL;
    struct clt_gemm_shape g = {.m = 5,
                               .n = 11,
                               .k = clt_test_small() && !llvmpipe ? 301 : 4103,
                               .trans_b = true,
                               .alpha = 0.5f,
                               .beta = 0.5f};
    const enum clt_precision st[2] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16};
    for (int si = 0; si < 2; si++) {
        storage = st[si];
        enum clt_precision prev = clt__storage_set(dev, storage);
        check_config(dev, &cfg, &g, false, NULL);
        clt__storage_set(dev, prev);
        storage = CLT_PRECISION_FP32;
    }
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(malformed_text_is_rejected),
        cmocka_unit_test(text_form_round_trips),
        cmocka_unit_test(device_limits_are_enforced),
        cmocka_unit_test(every_configuration_every_transpose),
        cmocka_unit_test(batches_leading_dimensions_beta_zero),
        cmocka_unit_test(narrow_products_with_batches),
        cmocka_unit_test(operands_end_their_buffers),
        cmocka_unit_test(long_k),
        cmocka_unit_test(configurations_agree_bit_for_bit),
        cmocka_unit_test(every_configuration_in_16_bits),
        cmocka_unit_test(long_k_in_16_bits),
        cmocka_unit_test(split_text_round_trips),
        cmocka_unit_test(split_configurations),
        cmocka_unit_test(split_candidates_of_the_space),
        cmocka_unit_test(misfits_least_padded_first),
        cmocka_unit_test(dot_mode),
        cmocka_unit_test(dot_candidates_of_the_space),
        cmocka_unit_test(fitted_tiles_for_few_rows),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
