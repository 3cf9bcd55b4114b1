/*
 * test_tune_choice.c: which candidate the GEMM tuner chooses: injected candidates (fast
 * and wrong, failing to launch, correct), an unusable choice giving way, a shape not timed
 * served by its class (the nearest timed shape of its transposes), every transpose and
 * batch, loaded entries timed again when quiet, and CLBlast's parameters decided, kept and
 * applied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tune_rig.h"

/* Injected candidates. */
static enum clt_status fast_and_wrong(struct clt_device *dev, const struct clt_gemm_shape *g,
                                      struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    (void)dev, (void)g, (void)a, (void)b, (void)c;
    return CLT_OK; /* enqueues nothing: C keeps what it held */
}

static enum clt_status fails_to_launch(struct clt_device *dev, const struct clt_gemm_shape *g,
                                       struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    (void)g, (void)a, (void)b, (void)c;
    clt__log(&dev->log, CLT_LOG_ERROR, "injected launch failure");
    return CLT_ERR_OPENCL;
}

static enum clt_status correct(struct clt_device *dev, const struct clt_gemm_shape *g,
                               struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    return clt__gemm_clblast(dev, g, a, b, c);
}

void injected_candidates(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    struct clt_gemm_tuning *list;
    struct clt_gemm_shape shapes[3] = {SHAPE, SHAPE, SHAPE};
    shapes[1].m = 5;
    shapes[2].m = 6;

    clt__tune_test_candidate(dev, "wrong", fast_and_wrong);
    assert_int_equal(clt_device_gemm_tune(dev, &shapes[0], 1), CLT_OK);
    assert_non_null(strstr(f->log.text, "wrong computed a wrong result"));
    assert_int_equal(tunings(dev, &list), 1);
    assert_int_equal(candidate(&list[0], "wrong")->status, CLT_ERR_GEMM);
    assert_true(candidate(&list[0], "wrong")->wrong);
    assert_string_not_equal(list[0].chosen, "wrong");
    check_entry(&list[0]);
    free(list);
    check_dispatch(dev, &shapes[0]);

    clt__tune_test_candidate(dev, "broken", fails_to_launch);
    assert_int_equal(clt_device_gemm_tune(dev, &shapes[1], 1), CLT_OK);
    assert_non_null(strstr(f->log.text, "broken failed"));
    assert_int_equal(tunings(dev, &list), 2);
    assert_int_equal(candidate(&list[1], "broken")->status, CLT_ERR_OPENCL);
    assert_false(candidate(&list[1], "broken")->wrong);
    assert_string_not_equal(list[1].chosen, "broken");
    check_entry(&list[1]);
    free(list);

    /* The control: an injected candidate that computes correctly passes the check. */
    clt__tune_test_candidate(dev, "correct", correct);
    assert_int_equal(clt_device_gemm_tune(dev, &shapes[2], 1), CLT_OK);
    assert_int_equal(tunings(dev, &list), 3);
    assert_int_equal(candidate(&list[2], "correct")->status, CLT_OK);
    assert_true(candidate(&list[2], "correct")->gflops > 0);
    check_entry(&list[2]);
    /* It may win (it runs CLBlast); then the entry is not written. */
    size_t stored = strcmp(list[2].chosen, "correct") == 0 ? 2 : 3;
    free(list);
    check_dispatch(dev, &shapes[2]);
    clt__tune_test_candidate(dev, NULL, NULL);
    clt_device_close(dev);

    /* An injected candidate is never written as a choice. */
    dev = open_with(f, f->dir);
    assert_int_equal(tunings(dev, &list), stored);
    for (size_t i = 0; i < stored; i++)
        assert_string_not_equal(list[i].chosen, "correct");
    free(list);
    clt_device_close(dev);
}

/* The resolved form of shape (clt__gemm_resolve), as clt__tune_choose takes it. */
static struct clt_gemm_shape resolved(const struct clt_gemm_shape *shape)
{
    struct clt_gemm_shape g;
    int64_t sa, sb, sc;
    assert_int_equal(clt__gemm_resolve(NULL, shape, &g, &sa, &sb, &sc), CLT_OK);
    return g;
}

/* A stored choice the device cannot run now (here: the host BLAS, refused as
 * CLTRAIN_HOST_BLAS=0 refuses it) gives way to the fastest stored candidate that computed
 * correctly and can run; with none, to the default. Either way the product is right. */
void unusable_choice_gives_way(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    struct clt_gemm_shape g = resolved(&SHAPE);
    assert_int_equal(dev->tune->count, 1);
    struct clt__tune_entry *e = &dev->tune->entries[0];
    e->impl = CLT__GEMM_IMPL_HOST;
    snprintf(e->t.chosen, sizeof e->t.chosen, "host %s", clt__gemm_host_name());
    dev->gemm_host = false;
    /* What should serve: the fastest correct own configuration or CLBlast. */
    double best = 0;
    const char *want = NULL;
    for (uint32_t i = 0; i < e->t.candidate_count; i++) {
        const struct clt_gemm_candidate *c = &e->t.candidates[i];
        bool runs = strncmp(c->name, "own ", 4) == 0 ||
                    (strcmp(c->name, "clblast") == 0 && dev->gemm_backend == CLT_GEMM_CLBLAST);
        if (runs && c->status == CLT_OK && !c->wrong && c->gflops > best) {
            best = c->gflops;
            want = c->name;
        }
    }
    assert_non_null(want);
    struct clt__gemm_config cfg = {0};
    enum clt__gemm_impl impl = clt__tune_choose(dev, &g, &cfg);
    char got[96];
    clt__tune_impl_name(impl, &cfg, got, sizeof got);
    assert_string_equal(got, want);
    check_dispatch(dev, &SHAPE);

    /* No stored candidate computed correctly: the default (CLBlast, or the own kernel where
     * CLBlast failed). */
    for (uint32_t i = 0; i < e->t.candidate_count; i++)
        e->t.candidates[i].wrong = 1;
    impl = clt__tune_choose(dev, &g, &cfg);
    assert_int_equal(impl, dev->gemm_backend == CLT_GEMM_OWN ? CLT__GEMM_IMPL_OWN
                                                             : CLT__GEMM_IMPL_CLBLAST);
    check_dispatch(dev, &SHAPE);
    clt_device_close(dev);
}

/* A stored own choice that cannot compute the entry's transpose pair (dot mode, A B^T only,
 * named for A B) gives way the same: the fastest stored candidate that can, never dot mode;
 * the product is right. */
void dot_choice_for_another_pair_gives_way(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    struct clt_gemm_shape nn = SHAPE;
    nn.trans_b = false;
    assert_int_equal(clt_device_gemm_tune(dev, &nn, 1), CLT_OK);
    struct clt_gemm_shape g = resolved(&nn);
    assert_int_equal(dev->tune->count, 1);
    struct clt__tune_entry *e = &dev->tune->entries[0];
    const char *dot = "mwg=4,nwg=4,kwg=16,mdim=1,ndim=1,vw=16,stage=8";
    e->impl = CLT__GEMM_IMPL_OWN;
    assert_true(clt__gemm_config_parse(dot, &e->cfg));
    snprintf(e->t.chosen, sizeof e->t.chosen, "own %s", dot);
    struct clt__gemm_config cfg = {0};
    enum clt__gemm_impl impl = clt__tune_choose(dev, &g, &cfg);
    assert_false(impl == CLT__GEMM_IMPL_OWN && cfg.stage == CLT__GEMM_STAGE_DOT);
    check_dispatch(dev, &nn);
    clt_device_close(dev);
}

/* The name of what clt__tune_choose serves for shape (resolved here) into out. */
static void served(struct clt_device *dev, const struct clt_gemm_shape *shape, char *out,
                   size_t size)
{
    struct clt_gemm_shape g = resolved(shape);
    struct clt__gemm_config cfg = {0};
    enum clt__gemm_impl impl = clt__tune_choose(dev, &g, &cfg);
    clt__tune_impl_name(impl, &cfg, out, size);
}

/* A shape no entry holds and that is not timed now (here: outside a tuning session) takes
 * the choice of the nearest timed shape of its storage and transposes within 4x in one size
 * (2x in two); a farther shape, one of other transposes, a choice the device cannot run,
 * CLTRAIN_TUNE=0 and a candidate being timed get the default. Each product is right. */
void untimed_shape_takes_its_class_choice(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_int_equal(dev->tune->count, 1);
    struct clt__tune_entry *e = &dev->tune->entries[0];
    /* The entry's choice: the last own configuration of the shape's space, which no default
     * is (the default is the host BLAS, CLBlast, or the space's first). */
    struct clt_gemm_shape g = resolved(&SHAPE);
    struct clt__gemm_config space[64];
    size_t n = clt__gemm_own_space(dev, &g, space, 64);
    assert_true(n >= 2);
    e->impl = CLT__GEMM_IMPL_OWN;
    e->cfg = space[n - 1];
    char want[96], got[96];
    clt__tune_impl_name(e->impl, &e->cfg, want, sizeof want);
    snprintf(e->t.chosen, sizeof e->t.chosen, "%s", want);

    struct clt_gemm_shape near = SHAPE, two = SHAPE, far = SHAPE, nn = SHAPE;
    near.m = 4 * SHAPE.m;    /* 4x in one size */
    two.n = 2 * SHAPE.n + 1; /* 2x and a little in one, 2x in another: farther */
    two.k = 2 * SHAPE.k;
    far.m = 4 * SHAPE.m + 1; /* past 4x */
    nn.trans_b = false;      /* the same sizes, other transposes */
    served(dev, &near, got, sizeof got);
    assert_string_equal(got, want);
    check_dispatch(dev, &near);
    served(dev, &two, got, sizeof got);
    assert_string_not_equal(got, want);
    check_dispatch(dev, &two);
    served(dev, &far, got, sizeof got);
    assert_string_not_equal(got, want);
    served(dev, &nn, got, sizeof got);
    assert_string_not_equal(got, want);
    check_dispatch(dev, &nn);

    /* Of two timed shapes in reach, the nearer's; an entry of another storage is not one. */
    struct clt__tune_entry *second = &dev->tune->entries[dev->tune->count];
    assert_true(dev->tune->count < dev->tune->cap);
    *second = *e;
    dev->tune->count++;
    second->t.m = 3 * SHAPE.m;
    second->cfg = space[n - 2];
    char want2[96];
    clt__tune_impl_name(second->impl, &second->cfg, want2, sizeof want2);
    served(dev, &near, got, sizeof got);
    assert_string_equal(got, want2);
    second->t.storage = CLT_PRECISION_BF16;
    served(dev, &near, got, sizeof got);
    assert_string_equal(got, want);

    /* Under CLTRAIN_TUNE=0 and inside a timing: the default. */
    dev->tune->enabled = false;
    served(dev, &near, got, sizeof got);
    assert_string_not_equal(got, want);
    dev->tune->enabled = true;
    dev->tune->timing = true;
    served(dev, &near, got, sizeof got);
    assert_string_not_equal(got, want);
    dev->tune->timing = false;

    /* A choice the device cannot run (an injected candidate gone): the default. */
    e->impl = CLT__GEMM_IMPL_TEST;
    served(dev, &near, got, sizeof got);
    assert_string_not_equal(got, want);
    assert_string_not_equal(got, "test");
    check_dispatch(dev, &near);
    clt_device_close(dev);
}

void every_transpose_and_batch(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    for (int t = 0; t < 4; t++) {
        struct clt_gemm_shape g = {.m = 9,
                                   .n = 14,
                                   .k = 11,
                                   .trans_a = t & 1,
                                   .trans_b = (t >> 1) & 1,
                                   .alpha = 1.0f,
                                   .batch = 3};
        assert_int_equal(clt_device_gemm_tune(dev, &g, 1), CLT_OK);
        check_dispatch(dev, &g);
    }
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 4);
    for (size_t i = 0; i < 4; i++)
        check_entry(&list[i]);
    free(list);
    clt_device_close(dev);
}

/* A shape timed on an oversubscribed machine (load per core at or above 2, stood for by
 * test_load) is timed again by a later session that finds the machine at most half as loaded
 * and no longer oversubscribed; otherwise its stored choice serves. */
void loaded_entries_are_timed_again_when_quiet(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    dev->tune->test_load = 3.0;
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_non_null(strstr(f->log.text, "gemm tuning: m=19 n=23 k=13"));
    clt_device_close(dev);
    char path[256];
    assert_true(tune_file(f->dir, path, sizeof path));

    const double still_loaded[2] = {2.5, 1.6}; /* oversubscribed; not half as loaded */
    for (int i = 0; i < 2; i++) {
        dev = open_with(f, f->dir);
        char *text = entry_text(dev, path);
        assert_non_null(strstr(text, "\nload 3.00\n"));
        free(text);
        dev->tune->test_load = still_loaded[i];
        assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
        assert_null(strstr(f->log.text, "gemm tuning: m="));
        clt_device_close(dev);
    }

    dev = open_with(f, f->dir);
    dev->tune->test_load = 0.5;
    check_dispatch(dev, &SHAPE); /* outside a tuning session: the stored choice */
    assert_null(strstr(f->log.text, "gemm tuning: m="));
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_non_null(strstr(f->log.text, "was timed at a load of 3.0 per core, now 0.5"));
    assert_non_null(strstr(f->log.text, "gemm tuning: chose"));
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 1);
    check_entry(&list[0]);
    free(list);
    check_dispatch(dev, &SHAPE);
    clt_device_close(dev);

    /* Timed quiet, it stays. */
    dev = open_with(f, f->dir);
    char *text = entry_text(dev, path);
    assert_non_null(strstr(text, "\nload 0.50\n"));
    free(text);
    dev->tune->test_load = 0.1;
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_null(strstr(f->log.text, "gemm tuning: m="));

    /* An entry without a load (written before loads were kept) is timed again once, by a
     * session on a quiet machine (below 1 per core). */
    dev->tune->entries[0].load = -1;
    dev->tune->dirty = true;
    clt__tune_begin(dev, true);
    clt__tune_end(dev); /* writes the entry */
    clt_device_close(dev);
    dev = open_with(f, f->dir);
    text = entry_text(dev, path);
    assert_null(strstr(text, "\nload "));
    free(text);
    dev->tune->test_load = 1.2;
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_null(strstr(f->log.text, "gemm tuning: m="));
    dev->tune->test_load = 0.4;
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_non_null(strstr(f->log.text, "was timed at an unknown load: timing it again"));
    assert_int_equal(tunings(dev, &list), 1);
    check_entry(&list[0]);
    free(list);
    clt_device_close(dev);
    dev = open_with(f, f->dir);
    text = entry_text(dev, path);
    assert_non_null(strstr(text, "\nload 0.40\n"));
    free(text);
    clt_device_close(dev);
}

/* On CPU devices the decision is normally skipped (CLBlast is far behind there); the test
 * forces it, at a small representative size and with two sets, which is what a GPU does at
 * full size. */
void clblast_parameters_are_decided_kept_and_applied(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    if (dev->gemm_backend != CLT_GEMM_CLBLAST || !dev->tune || !dev->tune->enabled) {
        clt_device_close(dev);
        skip();
    }
    dev->tune->xgemm_force = true;
    dev->tune->xgemm_space_limit = 2;
    dev->tune->xgemm_rep = 96;
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_true(dev->tune->xgemm_decided);
    bool can_read = strstr(f->log.text, "cannot be read") == NULL;
    if (can_read)
        assert_non_null(strstr(f->log.text, "gemm tuning: CLBlast's Xgemm: "));
    bool set = dev->tune->xgemm_set;
    char kept[256], shown[256];
    clt__xgemm_format(dev->tune, kept, sizeof kept);
    assert_int_equal(clt_device_gemm_clblast_params(dev, shown, sizeof shown), CLT_OK);
    assert_string_equal(shown, kept);
    assert_int_equal(clt_device_gemm_clblast_params(dev, shown, 3), CLT_ERR_INVALID_ARGUMENT);
    struct clt_gemm_shape odd = {.m = 131, .n = 97, .k = 75, .trans_a = true, .alpha = 1.0f};
    check_with(dev, &odd, clt__gemm_clblast);
    clt_device_close(dev);

    char path[256], line[300];
    assert_true(tune_file(f->dir, path, sizeof path));
    dev = open_with(f, f->dir);
    char *text = entry_text(dev, path);
    snprintf(line, sizeof line, "\nclblast-xgemm %s\n", kept);
    assert_non_null(strstr(text, line));
    assert_true(dev->tune->xgemm_decided);
    assert_int_equal(dev->tune->xgemm_set, set);
    if (set)
        assert_non_null(strstr(f->log.text, "CLBlast's Xgemm from the cache"));
    check_with(dev, &odd, clt__gemm_clblast);

    /* A parameter line that does not parse makes the entry corrupt. */
    char *bad = strstr(text, "clblast-xgemm ");
    memcpy(bad, "clblast-xgemm KWG=", 18);
    assert_int_equal(
        clt__cache_store(path, dev->tune->identity, (const unsigned char *)text, strlen(text)),
        CLT_OK);
    free(text);
    clt_device_close(dev);
    dev = open_with(f, f->dir);
    assert_non_null(strstr(f->log.text, "is corrupt or belongs to another"));
    assert_false(dev->tune->xgemm_decided);
    clt_device_close(dev);
}
