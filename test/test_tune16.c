/*
 * test_tune16.c: the GEMM tuner in 16-bit storage: split-K candidates timed, entries
 * keyed apart by storage, old entries read as fp32, and a wrong 16-bit candidate never
 * chosen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tune_rig.h"
#include "ref_gemm.h"

/* ---- 16-bit storage --------------------------------------------------------------------- */

static void check_dispatch_st(struct clt_device *dev, const struct clt_gemm_shape *shape,
                              enum clt_precision s);
static void tune_st(struct clt_device *dev, const struct clt_gemm_shape *shape,
                    enum clt_precision s);

/* How many of t's candidates are split configurations; each ran and computed correctly. */
static uint32_t split_candidates(const struct clt_gemm_tuning *t)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->candidate_count; i++)
        if (strstr(t->candidates[i].name, ",split=")) {
            n++;
            assert_false(t->candidates[i].wrong);
            assert_int_equal(t->candidates[i].status, CLT_OK);
        }
    return n;
}

/* A 5 x 3 product (one tile, B transposed) with a long k, as a weight gradient: split
 * candidates are timed and checked in fp32 and fp16; the choice computes correctly and a
 * second process reads it back. */
void split_candidates_are_timed(void **state)
{
    struct fixture *f = *state;
    const struct clt_gemm_shape g = {
        .m = 5, .n = 3, .k = clt_test_small() ? 1031 : 4103, .trans_b = true, .alpha = 1.0f};
    struct clt_device *dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &g, 1), CLT_OK);
    tune_st(dev, &g, CLT_PRECISION_FP16);
    struct clt_gemm_tuning *list;
    size_t n = tunings(dev, &list);
    assert_int_equal(n, 2);
    char chosen[2][96]; /* by storage: fp32, fp16 */
    for (size_t i = 0; i < n; i++) {
        assert_true(split_candidates(&list[i]) >= 1);
        check_entry(&list[i]);
        bool half = list[i].storage == (uint32_t)CLT_PRECISION_FP16;
        snprintf(chosen[half], sizeof chosen[half], "%s", list[i].chosen);
    }
    free(list);
    check_dispatch(dev, &g);
    check_dispatch_st(dev, &g, CLT_PRECISION_FP16);
    clt_device_close(dev);
    dev = open_with(f, f->dir);
    assert_int_equal(tunings(dev, &list), 2);
    for (size_t i = 0; i < 2; i++)
        assert_string_equal(list[i].chosen,
                            chosen[list[i].storage == (uint32_t)CLT_PRECISION_FP16]);
    free(list);
    check_dispatch(dev, &g);
    clt_device_close(dev);
}

/* clt__gemm in storage s at a shape, against the reference on inputs rounded to s. */
static void check_dispatch_st(struct clt_device *dev, const struct clt_gemm_shape *shape,
                              enum clt_precision s)
{
    struct clt_gemm_shape g;
    int64_t sa, sb, sc;
    assert_int_equal(clt__gemm_resolve(NULL, shape, &g, &sa, &sb, &sc), CLT_OK);
    float *a = clt_test_floats((size_t)sa), *b = clt_test_floats((size_t)sb);
    float *c = clt_test_floats((size_t)sc);
    double *want = clt_test_doubles((size_t)sc);
    clt_test_fill(a, (size_t)sa, 3, -1.0f, 1.0f);
    clt_test_fill(b, (size_t)sb, 4, -1.0f, 1.0f);
    clt_test_round(a, (size_t)sa, s);
    clt_test_round(b, (size_t)sb, s);
    ref_gemm(&g, a, b, NULL, want);
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, (uint64_t)(sa + sb + sc) * 4 + 4096, &arena), CLT_OK);
    struct clt_view va = clt_test_tensor_st(arena, a, (size_t)sa, s);
    struct clt_view vb = clt_test_tensor_st(arena, b, (size_t)sb, s);
    struct clt_view vc = clt_test_tensor_st(arena, NULL, (size_t)sc, s);
    enum clt_precision prev = clt__storage_set(dev, s);
    enum clt_status st = clt__gemm(dev, &g, clt_test_buf_st(&va, s), clt_test_buf_st(&vb, s),
                                   clt_test_buf_st(&vc, s));
    clt__storage_set(dev, prev);
    assert_int_equal(st, CLT_OK);
    clt_test_get_st(&vc, c, (size_t)sc, s);
    double u = clt_test_eps(s);
    clt_test_assert_close("tuned gemm in 16 bits", c, want, (size_t)sc,
                          1e-5 * (double)(g.k + 1) * (1 + u), u);
    clt_arena_free(arena);
    free(a);
    free(b);
    free(c);
    free(want);
}

/* Tunes shape in storage s (clt_device_gemm_tune in that storage). */
static void tune_st(struct clt_device *dev, const struct clt_gemm_shape *shape,
                    enum clt_precision s)
{
    enum clt_precision prev = clt__storage_set(dev, s);
    assert_int_equal(clt_device_gemm_tune(dev, shape, 1), CLT_OK);
    clt__storage_set(dev, prev);
}

/* The record of storage s in list, or NULL. */
static const struct clt_gemm_tuning *of_storage(const struct clt_gemm_tuning *list, size_t n,
                                                enum clt_precision s)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].storage == (uint32_t)s)
            return &list[i];
    return NULL;
}

/* A 16-bit entry: the widened path and own configurations were tried, nothing else, and the
 * winner computed correctly. */
static void check_entry16(const struct clt_gemm_tuning *t)
{
    assert_true(t->candidate_count >= 2);
    bool widen = false, own = false;
    for (uint32_t i = 0; i < t->candidate_count; i++) {
        const char *name = t->candidates[i].name;
        widen |= strcmp(name, "widen") == 0;
        own |= strncmp(name, "own ", 4) == 0;
        assert_true(strcmp(name, "widen") == 0 || strncmp(name, "own ", 4) == 0 ||
                    strncmp(name, "test16", 6) == 0);
    }
    assert_true(widen && own);
    assert_true(strcmp(t->chosen, "widen") == 0 || strncmp(t->chosen, "own ", 4) == 0);
    check_entry(t);
}

void storages_are_keyed_apart(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    tune_st(dev, &SHAPE, CLT_PRECISION_FP16);
    /* The fp32 choice is settled first (the widened path runs it), then fp16's. */
    assert_non_null(strstr(f->log.text, "gemm tuning: m=19 n=23 k=13 batch=1 B^T ..."));
    assert_non_null(strstr(f->log.text, "gemm tuning: m=19 n=23 k=13 batch=1 B^T fp16 ..."));
    tune_st(dev, &SHAPE, CLT_PRECISION_BF16);
    struct clt_gemm_tuning *list;
    size_t n = tunings(dev, &list);
    assert_int_equal(n, 3);
    char chosen[3][96];
    for (int s = 0; s < 3; s++) {
        const struct clt_gemm_tuning *t = of_storage(list, n, (enum clt_precision)s);
        assert_non_null(t);
        if (s == CLT_PRECISION_FP32)
            check_entry(t);
        else
            check_entry16(t);
        snprintf(chosen[s], sizeof chosen[s], "%s", t->chosen);
    }
    free(list);
    check_dispatch(dev, &SHAPE);
    check_dispatch_st(dev, &SHAPE, CLT_PRECISION_FP16);
    check_dispatch_st(dev, &SHAPE, CLT_PRECISION_BF16);
    clt_device_close(dev);

    /* Read back with their storages; nothing is timed again. */
    dev = open_with(f, f->dir);
    n = tunings(dev, &list);
    assert_int_equal(n, 3);
    for (int s = 0; s < 3; s++)
        assert_string_equal(of_storage(list, n, (enum clt_precision)s)->chosen, chosen[s]);
    free(list);
    char path[256];
    assert_true(tune_file(f->dir, path, sizeof path));
    char *text = entry_text(dev, path);
    assert_non_null(strstr(text, " fp16\nchosen "));
    assert_non_null(strstr(text, " bf16\nchosen "));
    free(text);
    f->log.len = 0;
    f->log.text[0] = 0;
    tune_st(dev, &SHAPE, CLT_PRECISION_FP16);
    tune_st(dev, &SHAPE, CLT_PRECISION_BF16);
    assert_null(strstr(f->log.text, "gemm tuning: m="));
    check_dispatch_st(dev, &SHAPE, CLT_PRECISION_FP16);
    clt_device_close(dev);
}

/* An entry written before storages existed (no storage word) is an fp32 choice; a 16-bit
 * entry naming an fp32-only implementation, or an unknown storage word, is corrupt. */
void old_entries_read_as_fp32(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    struct clt__gemm_config cfg;
    clt__gemm_own_default(dev, NULL, &cfg);
    char own[96] = "own ", text[512], path[1100];
    clt__gemm_config_format(&cfg, own + 4, sizeof own - 4);
    snprintf(path, sizeof path, "%s", dev->tune->path);
    char *identity = strdup(dev->tune->identity);
    assert_non_null(identity);
    clt_device_close(dev);
    snprintf(text, sizeof text,
             "cltrain-tune 1\nshape 0 1 19 23 13 1 1\nchosen %s\nload 0.10\ncand 0 0 1.000 %s\n",
             own, own);
    assert_int_equal(clt__cache_store(path, identity, (const unsigned char *)text, strlen(text)),
                     CLT_OK);
    dev = open_with(f, f->dir);
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 1);
    assert_int_equal(list[0].storage, CLT_PRECISION_FP32);
    assert_string_equal(list[0].chosen, own);
    free(list);
    /* It serves fp32 without timing; fp16 is a miss of its own. */
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_null(strstr(f->log.text, "gemm tuning: m="));
    tune_st(dev, &SHAPE, CLT_PRECISION_FP16);
    assert_non_null(strstr(f->log.text, "gemm tuning: m=19 n=23 k=13 batch=1 B^T fp16 ..."));
    assert_int_equal(tunings(dev, &list), 2);
    free(list);
    clt_device_close(dev);

    static const char *const bad[] = {
        "cltrain-tune 1\nshape 0 1 19 23 13 1 1 fp16\nchosen clblast\ncand 0 0 1.000 clblast\n",
        "cltrain-tune 1\nshape 0 1 19 23 13 1 1\nchosen widen\ncand 0 0 1.000 widen\n",
        "cltrain-tune 1\nshape 0 1 19 23 13 1 1 fp8\nchosen widen\ncand 0 0 1.000 widen\n",
        "cltrain-tune 1\nshape 0 1 19 23 13 1 1 fp16 \nchosen widen\ncand 0 0 1.000 widen\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(
            clt__cache_store(path, identity, (const unsigned char *)bad[i], strlen(bad[i])),
            CLT_OK);
        dev = open_with(f, f->dir);
        if (!strstr(f->log.text, "is corrupt or belongs to another"))
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(tunings(dev, &list), 0);
        clt_device_close(dev);
    }
    /* The good 16-bit form parses. */
    const char *good =
        "cltrain-tune 1\nshape 0 1 19 23 13 1 1 bf16\nchosen widen\ncand 0 0 1.000 widen\n";
    assert_int_equal(clt__cache_store(path, identity, (const unsigned char *)good, strlen(good)),
                     CLT_OK);
    dev = open_with(f, f->dir);
    assert_int_equal(tunings(dev, &list), 1);
    assert_int_equal(list[0].storage, CLT_PRECISION_BF16);
    free(list);
    check_dispatch_st(dev, &SHAPE, CLT_PRECISION_BF16);
    clt_device_close(dev);
    free(identity);
}

/* Injected 16-bit candidates: the widened path with alpha off by 2^-6 (8 of bf16's and 32 of
 * fp16's roundings: wrong beyond the check's tolerance) and the widened path itself, both
 * around the own kernel's default (the tuner's fp32 choice could be the injected candidate
 * itself, which would then call itself). */
static enum clt_status slightly_wrong16(struct clt_device *dev, const struct clt_gemm_shape *g,
                                        struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    struct clt_gemm_shape off = *g;
    off.alpha *= 1.0f + 1.0f / 64;
    return clt__gemm_widened(dev, &off, a, b, c, clt__gemm_own);
}

static enum clt_status correct16(struct clt_device *dev, const struct clt_gemm_shape *g,
                                 struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    return clt__gemm_widened(dev, g, a, b, c, clt__gemm_own);
}

void wrong_16_bit_candidate_is_never_chosen(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    const enum clt_precision st[2] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16};
    for (int i = 0; i < 2; i++) {
        struct clt_gemm_shape g = SHAPE;
        g.m += i;
        clt__tune_test_candidate(dev, "test16-wrong", slightly_wrong16);
        tune_st(dev, &g, st[i]);
        assert_non_null(strstr(f->log.text, "test16-wrong computed a wrong result"));
        struct clt_gemm_tuning *list;
        size_t n = tunings(dev, &list);
        const struct clt_gemm_tuning *t = of_storage(list, n, st[i]);
        assert_non_null(t);
        assert_true(candidate(t, "test16-wrong")->wrong);
        assert_string_not_equal(t->chosen, "test16-wrong");
        check_entry16(t);
        free(list);
        check_dispatch_st(dev, &g, st[i]);
        if (i > 0)
            break; /* the control once: fp16's tolerance is the tighter one */

        g.n += 2;
        clt__tune_test_candidate(dev, "test16-correct", correct16);
        tune_st(dev, &g, st[i]);
        n = tunings(dev, &list);
        t = NULL;
        for (size_t j = 0; j < n; j++)
            if (list[j].storage == (uint32_t)st[i] && list[j].n == g.n && list[j].m == g.m)
                t = &list[j];
        assert_non_null(t);
        assert_int_equal(candidate(t, "test16-correct")->status, CLT_OK);
        assert_false(candidate(t, "test16-correct")->wrong);
        free(list);
        clt__tune_test_candidate(dev, NULL, NULL);
    }
    clt_device_close(dev);
}
