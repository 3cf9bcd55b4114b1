/*
 * test_gemm_fit.c: the own GEMM kernel's fitted tiles (engine/gemm_own.c, base_space), part
 * of the gemm_own test executable (gemm_own_rig.h, its main in test_gemm_own.c). On a CPU
 * device that runs serial mode, a product of fewer than 16 rows gets serial tiles of exactly m
 * rows (blocks of m x 16, 4 or 2 across, KWG 128: those no wider than the product) ahead of the
 * list's tiles that fit; each is right at every transpose pair, at m = 1, 7, 10 and 15, with
 * column edges, a k remainder, alpha and beta, and with padded leading dimensions in a strided
 * batch over NaN (beta 0), against the C reference with test_gemm_own.c's tolerance. They are
 * not offered at 16 rows, to a product narrower than 32 columns, without a shape, on llvmpipe
 * (serial mode refused) or on a GPU. Also how the space orders a shape's candidates where
 * most tiles misfit (a side of 10): those that fit first, then the least padded.
 */
#include <stdio.h>
#include <string.h>

#include "gemm_own_rig.h"

/* Whether c is one of the fitted tiles for m rows. */
static bool fitted(const struct clt__gemm_config *c, int64_t m)
{
    return c->mwg == m && c->mdim == 1 && c->nwg == 16 * c->ndim && c->kwg == 128 && c->vw == 16 &&
           c->stage == 7 && c->split <= 1;
}

/* How many of the space's candidates for g are fitted tiles; each must come before every
 * other candidate (the fitted tiles fit g here: little padding, a tile per compute unit). */
static size_t fitted_first(struct clt_device *dev, const struct clt_gemm_shape *g,
                           struct clt__gemm_config *cfg, size_t *n)
{
    *n = clt__gemm_own_space(dev, g, cfg, MAX_CONFIGS);
    size_t count = 0;
    for (size_t i = 0; i < *n; i++)
        if (fitted(&cfg[i], g->m)) {
            assert_int_equal(i, count);
            count++;
        }
    return count;
}

void fitted_tiles_for_few_rows(void **state)
{
    struct clt_device *dev = *state;
    const bool offered =
        dev->info.type == CLT_DEVICE_CPU && strstr(dev->info.name, "llvmpipe") == NULL;
    const bool small = clt_test_small();
    struct clt__gemm_config cfg[MAX_CONFIGS];
    size_t n = 0;
    const int64_t rows[] = {1, 7, 10, 15};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        for (int t = 0; t < 4; t++) {
            /* 200 columns: 4 and 7 tiles across, an edge in each; k one step and 3. */
            struct clt_gemm_shape g = {.m = rows[r],
                                       .n = 200,
                                       .k = 131,
                                       .batch = 1,
                                       .trans_a = t & 1,
                                       .trans_b = (t >> 1) & 1,
                                       .alpha = 0.75f,
                                       .beta = 0.5f};
            size_t count = fitted_first(dev, &g, cfg, &n);
            assert_int_equal(count, offered ? 2 : 0);
            for (size_t i = 0; i < count; i++)
                if (!small || (size_t)t == (i + r) % 4) /* Oclgrind: pairs in turn */
                    check_config(dev, &cfg[i], &g, false, NULL);
        }
    if (offered) {
        /* Padded leading dimensions, a strided batch with gaps, beta 0 over NaN. */
        struct clt_gemm_shape ld = {.m = 10,
                                    .n = 37,
                                    .k = 19,
                                    .trans_a = true,
                                    .alpha = 1.25f,
                                    .beta = 0.0f,
                                    .lda = 13,
                                    .ldb = 41,
                                    .ldc = 40,
                                    .batch = 3,
                                    .stride_a = 19 * 13 + 7,
                                    .stride_b = 19 * 41 + 3,
                                    .stride_c = 10 * 40 + 5};
        n = clt__gemm_own_space(dev, &ld, cfg, MAX_CONFIGS);
        size_t ran = 0;
        for (size_t i = 0; i < n; i++)
            if (fitted(&cfg[i], ld.m)) {
                check_config(dev, &cfg[i], &ld, true, NULL);
                ran++;
            }
        assert_int_equal(ran, 1); /* 37 columns: the 32-wide tile only */
        /* 31 columns: none. */
        struct clt_gemm_shape narrow = {.m = 10, .n = 31, .k = 19, .batch = 1};
        size_t count = fitted_first(dev, &narrow, cfg, &n);
        assert_int_equal(count, 0);
    }
    /* 16 rows: the list's tiles fit; without a shape: the list alone. */
    struct clt_gemm_shape sixteen = {.m = 16, .n = 133, .k = 131, .batch = 1};
    n = clt__gemm_own_space(dev, &sixteen, cfg, MAX_CONFIGS);
    for (size_t i = 0; i < n; i++)
        assert_false(cfg[i].mdim == 1 && cfg[i].nwg == 16 * cfg[i].ndim && cfg[i].kwg == 128 &&
                     cfg[i].stage == 7);
    n = clt__gemm_own_space(dev, NULL, cfg, MAX_CONFIGS);
    for (size_t i = 0; i < n; i++)
        assert_false(cfg[i].mdim == 1 && cfg[i].mwg < 16 && cfg[i].stage == 7);
    printf("fitted tiles %s on %s\n", offered ? "offered" : "not offered", dev->info.name);
}

/* The C elements c's tiles cover for g, over the product's (as the space measures it). */
static double padding_of(const struct clt_gemm_shape *g, const struct clt__gemm_config *c)
{
    int64_t tm = (g->m + c->mwg - 1) / c->mwg, tn = (g->n + c->nwg - 1) / c->nwg;
    return (double)(tm * c->mwg) * (double)(tn * c->nwg) / ((double)g->m * (double)g->n);
}

/* At a side of 10, where most tiles compute mostly padding: the candidates that fit come
 * first (split-K's after them), then the others, serial mode (stage bit 2) first and the least
 * padded first within it and within the rest; a capped space is the full space's first candidates,
 * so the cap drops the most padded. */
void misfits_least_padded_first(void **state)
{
    struct clt_device *dev = *state;
    const struct clt_gemm_shape shapes[] = {
        {.m = 128, .n = 10, .k = 256, .batch = 1, .trans_b = true},
        {.m = 10, .n = 256, .k = 128, .batch = 1, .trans_a = true},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const struct clt_gemm_shape *g = &shapes[s];
        struct clt__gemm_config cfg[MAX_CONFIGS], capped[MAX_CONFIGS];
        size_t n = clt__gemm_own_space(dev, g, cfg, MAX_CONFIGS), misfits = 0;
        double last = 0;
        for (size_t i = 0; i < n; i++) {
            if (cfg[i].split > 1 || cfg[i].stage == CLT__GEMM_STAGE_DOT)
                continue; /* split-K's come between the two, dot mode's first (at n = 10),
                             each in their own order (test_gemm_dot.c) */
            int64_t groups =
                ((g->m + cfg[i].mwg - 1) / cfg[i].mwg) * ((g->n + cfg[i].nwg - 1) / cfg[i].nwg);
            bool misfit = padding_of(g, &cfg[i]) > 1.5 || groups < (int64_t)dev->info.compute_units;
            if (!misfit) {
                assert_int_equal(misfits, 0); /* no fitting candidate after a misfit */
                continue;
            }
            double rank = padding_of(g, &cfg[i]) + ((cfg[i].stage & 4) ? 0.0 : 1e9);
            assert_true(misfits == 0 || rank >= last);
            last = rank;
            misfits++;
        }
        printf("m=%lld n=%lld: %zu candidates, %zu of them misfits\n", (long long)g->m,
               (long long)g->n, n, misfits);
        assert_true(misfits >= 2);
        for (size_t cap = 1; cap < n; cap += 3) {
            assert_int_equal(clt__gemm_own_space(dev, g, capped, cap), cap);
            assert_memory_equal(capped, cfg, cap * sizeof cfg[0]);
        }
    }
}
