/*
 * test_gemm_dot.c: the own GEMM kernel's dot mode (stage 8: A B^T as dot products along k,
 * vectors of k; docs/kernels/gemm.md), part of the gemm_own test executable (gemm_own_rig.h,
 * its main in test_gemm_own.c). Configurations of each vector width and block shape, split
 * and not, at odd m and n with k remainders, k shorter than a vector, padded leading
 * dimensions with beta 0 over NaN, a strided batch and long k (61,003: several launches over
 * slices of k on llvmpipe), in fp32, fp16 and bf16, against the C reference with
 * test_gemm_own.c's tolerance (each output is vw fma chains added, the same bound on k
 * products); any other transpose pair is refused, never computed; malformed dot text is
 * rejected; the space offers dot mode first for A B^T with a k much longer than the product
 * is wide, or fewer than 16 columns, on a CPU device, and nowhere else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_own_rig.h"

/* Dot mode configurations: each vector width, block shapes of the space and odd ones, and a
 * split. */
static const char *const dot_configs[] = {
    "mwg=4,nwg=4,kwg=16,mdim=1,ndim=1,vw=16,stage=8",
    "mwg=3,nwg=5,kwg=8,mdim=1,ndim=1,vw=8,stage=8",
    "mwg=1,nwg=1,kwg=4,mdim=1,ndim=1,vw=4,stage=8",
    "mwg=4,nwg=3,kwg=16,mdim=1,ndim=1,vw=16,stage=8",
    "mwg=2,nwg=8,kwg=16,mdim=1,ndim=1,vw=16,stage=8",
    "mwg=4,nwg=4,kwg=16,mdim=1,ndim=1,vw=16,stage=8,split=3",
};

/* One dot mode configuration at odd shapes (A B^T). */
static void check_dot(struct clt_device *dev, const struct clt__gemm_config *c)
{
    const int64_t vw = c->vw;
    struct clt_gemm_shape edge = {.m = 3 * c->mwg + 1,
                                  .n = 2 * c->nwg + 1,
                                  .k = 5 * vw + vw - 1,
                                  .trans_b = true,
                                  .alpha = 0.75f,
                                  .beta = 0.5f};
    check_config(dev, c, &edge, false, NULL);
    struct clt_gemm_shape tiny = {
        .m = 5, .n = 3, .k = vw - 1, .trans_b = true, .alpha = -1.5f, .beta = 1.0f};
    check_config(dev, c, &tiny, false, NULL);
    struct clt_gemm_shape ld = {
        .m = 9, .n = 7, .k = 4 * vw + 3, .trans_b = true, .alpha = 1.0f, .beta = 0.0f};
    ld.lda = ld.k + 3;
    ld.ldb = ld.k + 2;
    ld.ldc = ld.n + 5;
    check_config(dev, c, &ld, true, NULL);
    struct clt_gemm_shape bt = {.m = 6,
                                .n = 5,
                                .k = 37,
                                .trans_b = true,
                                .alpha = -1.25f,
                                .beta = 0.25f,
                                .batch = 3,
                                .stride_a = 6 * 37 + 7,
                                .stride_b = 5 * 37 + 1,
                                .stride_c = 6 * 5 + 2};
    check_config(dev, c, &bt, false, NULL);
    bool llvmpipe = strstr(dev->info.name, "llvmpipe") != NULL;
    struct clt_gemm_shape lk = {.m = 5,
                                .n = 11,
                                .k = clt_test_small() && !llvmpipe ? 301 : 4103,
                                .trans_b = true,
                                .alpha = 0.5f,
                                .beta = 0.0f};
    check_config(dev, c, &lk, true, NULL);
    /* Past one launch's k on llvmpipe for every block here (launch_k_limit: at most 59,992):
     * slices of k, beta 1 after the first. */
    if (llvmpipe || !clt_test_small()) {
        lk.k = 61003;
        lk.beta = 0.5f;
        check_config(dev, c, &lk, false, NULL);
    }
}

/* Dot mode: every configuration of dot_configs in fp32, one per vector width in fp16 and
 * bf16, against the reference; any other transpose pair refused; malformed dot text
 * rejected. */
void dot_mode(void **state)
{
    struct clt_device *dev = *state;
    const size_t n = sizeof dot_configs / sizeof dot_configs[0];
    struct clt__gemm_config cfg[sizeof dot_configs / sizeof dot_configs[0]];
    for (size_t i = 0; i < n; i++) {
        assert_true(clt__gemm_config_parse(dot_configs[i], &cfg[i]));
        assert_int_equal(cfg[i].stage, CLT__GEMM_STAGE_DOT);
        assert_null(clt__gemm_own_refusal(dev, &cfg[i]));
        char text[96];
        clt__gemm_config_format(&cfg[i], text, sizeof text);
        assert_string_equal(text, dot_configs[i]);
        check_dot(dev, &cfg[i]);
    }
    const enum clt_precision st[2] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16};
    for (int si = 0; si < 2; si++) {
        storage = st[si];
        enum clt_precision prev = clt__storage_set(dev, storage);
        for (size_t i = 0; i < 3; i++) /* vw 16, 8, 4 */
            check_dot(dev, &cfg[i]);
        check_dot(dev, &cfg[n - 1]); /* split: fp32 partials */
        clt__storage_set(dev, prev);
        storage = CLT_PRECISION_FP32;
    }
    /* Another transpose pair: refused with an error, C untouched. */
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, 1 << 16, &arena), CLT_OK);
    float host[64];
    for (int i = 0; i < 64; i++)
        host[i] = (float)i;
    struct clt_view va = clt_test_upload(arena, host, 64), vb = clt_test_upload(arena, host, 64);
    struct clt_view vc = clt_test_upload(arena, host, 64);
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = (t >> 1) & 1;
        assert_int_equal(clt__gemm_own_computes(&cfg[0], ta, tb), !ta && tb);
        if (!ta && tb)
            continue;
        struct clt_gemm_shape g = {.m = 4, .n = 4, .k = 4, .trans_a = ta, .trans_b = tb};
        struct clt_gemm_shape r;
        int64_t sa, sb, sc;
        assert_int_equal(clt__gemm_resolve(NULL, &g, &r, &sa, &sb, &sc), CLT_OK);
        assert_int_equal(clt__gemm_own_run(dev, &cfg[0], &r, clt__view_buf(&va), clt__view_buf(&vb),
                                           clt__view_buf(&vc)),
                         CLT_ERR_INVALID_ARGUMENT);
    }
    float got[64];
    clt_test_download(&vc, got, 64);
    assert_memory_equal(got, host, sizeof host);
    clt_arena_free(arena);
    static const char *const bad[] = {
        "mwg=4,nwg=4,kwg=16,mdim=2,ndim=1,vw=16,stage=8", /* more than one work-item */
        "mwg=4,nwg=4,kwg=32,mdim=1,ndim=1,vw=16,stage=8", /* k step other than vw */
        "mwg=4,nwg=4,kwg=2,mdim=1,ndim=1,vw=2,stage=8",   /* vectors narrower than 4 */
        "mwg=5,nwg=4,kwg=16,mdim=1,ndim=1,vw=16,stage=8", /* 20 sums, more than 16 */
        "mwg=4,nwg=4,kwg=16,mdim=1,ndim=1,vw=16,stage=9", /* no such stage */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct clt__gemm_config c;
        if (clt__gemm_config_parse(bad[i], &c))
            fail_msg("accepted: %s", bad[i]);
    }
}

/* The space offers dot mode first on a CPU device for A B^T with a k much longer than the
 * product is wide (at most 4: three blocks and one split) or fewer than 16 columns (3 or 4),
 * and nowhere else: not for other transpose pairs, 16 columns with a shorter k, without a
 * shape, or on other devices. Each candidate it offers at a small such product is right. */
void dot_candidates_of_the_space(void **state)
{
    struct clt_device *dev = *state;
    struct clt__gemm_config cfg[MAX_CONFIGS];
    bool cpu = dev->info.type == CLT_DEVICE_CPU;
    struct clt_gemm_shape conv = {.m = 16, .n = 9, .k = 50176, .batch = 1, .trans_b = true};
    size_t n = clt__gemm_own_space(dev, &conv, cfg, MAX_CONFIGS), dots = 0;
    for (size_t i = 0; i < n; i++)
        if (cfg[i].stage == CLT__GEMM_STAGE_DOT) {
            assert_int_equal(i, dots); /* first */
            dots++;
        }
    printf("%zu dot mode candidates of %zu at 16 x 9 x 50176\n", dots, n);
    assert_true(cpu ? dots >= 3 && dots <= 4 : dots == 0);
    /* A narrow product (an output layer's): the same, without a long k. */
    struct clt_gemm_shape narrow = {
        .m = 37, .n = 10, .k = 83, .batch = 1, .trans_b = true, .alpha = 0.75f, .beta = 0.5f};
    n = clt__gemm_own_space(dev, &narrow, cfg, MAX_CONFIGS);
    dots = 0;
    for (size_t i = 0; i < n; i++)
        if (cfg[i].stage == CLT__GEMM_STAGE_DOT) {
            assert_int_equal(i, dots);
            check_config(dev, &cfg[i], &narrow, false, NULL);
            dots++;
        }
    printf("%zu dot mode candidates of %zu at 37 x 10 x 83\n", dots, n);
    assert_true(cpu ? dots >= 3 && dots <= 4 : dots == 0);
    const struct clt_gemm_shape others[] = {
        {.m = 16, .n = 9, .k = 50176, .batch = 1},
        {.m = 16, .n = 9, .k = 50176, .batch = 1, .trans_a = true},
        {.m = 16, .n = 9, .k = 50176, .batch = 1, .trans_a = true, .trans_b = true},
        {.m = 128, .n = 16, .k = 256, .batch = 1, .trans_b = true},
        {.m = 128, .n = 10, .k = 256, .batch = 1},
    };
    for (size_t s = 0; s < sizeof others / sizeof others[0]; s++) {
        n = clt__gemm_own_space(dev, &others[s], cfg, MAX_CONFIGS);
        for (size_t i = 0; i < n; i++)
            assert_int_not_equal(cfg[i].stage, CLT__GEMM_STAGE_DOT);
    }
    n = clt__gemm_own_space(dev, NULL, cfg, MAX_CONFIGS);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(cfg[i].stage, CLT__GEMM_STAGE_DOT);
    struct clt_gemm_shape g = {.m = 5,
                               .n = 3,
                               .k = clt_test_small() ? 1031 : 4103,
                               .batch = 1,
                               .trans_b = true,
                               .alpha = 1.0f};
    n = clt__gemm_own_space(dev, &g, cfg, MAX_CONFIGS);
    for (size_t i = 0; i < n; i++)
        if (cfg[i].stage == CLT__GEMM_STAGE_DOT)
            check_config(dev, &cfg[i], &g, true, NULL);
}
