/*
 * test_tune.c: the GEMM tuner on a real device: a miss times the candidates and writes an
 * entry, a hit reads it back without timing, a corrupt or foreign entry is timed again, an
 * unwritable cache directory tunes in memory, CLTRAIN_TUNE=0 and a spent budget time
 * nothing, a stored choice the device cannot run gives way to the best stored one that can, a
 * shape timed under load (or at an unknown load) is timed again when the machine is quiet, an
 * injected candidate that computes a wrong result is never chosen, one that fails is skipped with a
 * log line, and the chosen implementation computes what the C reference does. CLBlast's Xgemm
 * parameters are decided once, kept in the entry, handed to CLBlast when it is read (which then
 * still computes correctly), and a malformed parameter line makes the entry corrupt.
 *
 * 16-bit storage: choices are kept per storage (fp32, fp16, bf16 entries of one shape side by
 * side, read back with their storage); an entry written before the storage existed reads as
 * fp32; 16-bit candidates are the own kernel in the storage and the widened path (never
 * CLBlast or the host BLAS directly); an injected 16-bit candidate whose result is off by more
 * than C's rounding is never chosen, a correct one passes the check; the chosen
 * implementation computes what the reference does on the rounded inputs (tolerance as
 * test_gemm.c: 1e-5 (k + 1) (1 + u) + u |want|, u = 2^-11 fp16, 2^-8 bf16).
 *
 * Split-K: at a product with few tiles and a long k the own kernel's split configurations
 * are candidates in fp32 and in fp16, each checked like every other (none computes a wrong
 * result), and the choice, split or not, computes what the reference does and reads back.
 *
 * Never a timing threshold: which candidate wins depends on the machine; what is checked is
 * that the winner is one that computed correctly.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gemm_own.h"
#include "harness.h"
#include "ref_gemm.h"
#include "tune.h"

struct fixture {
    char dir[64];
    struct clt_test_log log;
};

/* An odd shape, small enough for every device under test. */
static const struct clt_gemm_shape SHAPE = {
    .m = 19, .n = 23, .k = 13, .trans_b = true, .alpha = 1.0f};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/cltrain-tune-test-XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    *state = f;
    unsetenv("CLTRAIN_TUNE");
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    unsetenv("CLTRAIN_TUNE");
    unsetenv("CLTRAIN_TUNE_BUDGET");
    return 0;
}

/* Opens the device under test under CLT_GEMM_AUTO with a cache directory and the fixture's
 * log (INFO and up, so the tuner's progress lines are seen). */
static struct clt_device *open_with(struct fixture *f, const char *cache_dir)
{
    struct clt_device_options o;
    clt_device_options_init(&o);
    o.cache_dir = cache_dir;
    o.cache = 1;
    o.gemm = CLT_GEMM_AUTO;
    o.log.fn = clt_test_log_fn;
    o.log.user = &f->log;
    o.log.max_level = CLT_LOG_INFO;
    f->log.len = 0;
    f->log.text[0] = 0;
    struct clt_device *dev = NULL;
    assert_int_equal(clt_device_open(getenv("CLTRAIN_DEVICE"), &o, &dev), CLT_OK);
    return dev;
}

/* The one .tune file in dir (path written to out); false when there is none. */
static bool tune_file(const char *dir, char *out, size_t size)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strlen(e->d_name) > 5 && strcmp(e->d_name + strlen(e->d_name) - 5, ".tune") == 0) {
            snprintf(out, size, "%s/%s", dir, e->d_name);
            found = true;
        }
    closedir(d);
    return found;
}

static size_t tunings(struct clt_device *dev, struct clt_gemm_tuning **out)
{
    size_t n = 99;
    assert_int_equal(clt_device_gemm_tunings(dev, out, &n), CLT_OK);
    return n;
}

/* Runs the shape through fn (clt__gemm: the tuner's choice; clt__gemm_clblast: CLBlast with
 * the parameters it has now) and compares with the reference. */
static void check_with(struct clt_device *dev, const struct clt_gemm_shape *shape, clt__gemm_fn fn)
{
    struct clt_gemm_shape g;
    int64_t sa, sb, sc;
    assert_int_equal(clt__gemm_resolve(NULL, shape, &g, &sa, &sb, &sc), CLT_OK);
    float *a = clt_test_floats((size_t)sa), *b = clt_test_floats((size_t)sb);
    float *c = clt_test_floats((size_t)sc);
    double *want = clt_test_doubles((size_t)sc);
    clt_test_fill(a, (size_t)sa, 3, -1.0f, 1.0f);
    clt_test_fill(b, (size_t)sb, 4, -1.0f, 1.0f);
    ref_gemm(&g, a, b, NULL, want);
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, (uint64_t)(sa + sb + sc) * 4 + 4096, &arena), CLT_OK);
    struct clt_view va = clt_test_upload(arena, a, (size_t)sa);
    struct clt_view vb = clt_test_upload(arena, b, (size_t)sb);
    struct clt_view vc = clt_test_tensor(arena, NULL, (size_t)sc);
    assert_int_equal(fn(dev, &g, clt__view_buf(&va), clt__view_buf(&vb), clt__view_buf(&vc)),
                     CLT_OK);
    clt_test_download(&vc, c, (size_t)sc);
    /* Tolerance as test_gemm: fp32 sums of k terms in [-1, 1]. */
    clt_test_assert_close("tuned gemm", c, want, (size_t)sc, 1e-5 * (double)(g.k + 1), 1e-5);
    clt_arena_free(arena);
    free(a);
    free(b);
    free(c);
    free(want);
}

static void check_dispatch(struct clt_device *dev, const struct clt_gemm_shape *shape)
{
    check_with(dev, shape, clt__gemm);
}

/* A winner is one of the candidates, and computed correctly. */
static void check_entry(const struct clt_gemm_tuning *t)
{
    assert_true(t->candidate_count >= 2); /* own kernel and CLBlast at least */
    bool found = false;
    for (uint32_t i = 0; i < t->candidate_count; i++)
        if (strcmp(t->candidates[i].name, t->chosen) == 0) {
            found = true;
            assert_int_equal(t->candidates[i].status, CLT_OK);
            assert_true(t->candidates[i].gflops > 0);
        }
    assert_true(found);
}

static void miss_then_hit(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 0);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_non_null(strstr(f->log.text, "gemm tuning: m=19 n=23 k=13"));
    assert_int_equal(tunings(dev, &list), 1);
    assert_true(list[0].m == 19 && list[0].n == 23 && list[0].k == 13 && list[0].trans_b &&
                !list[0].trans_a && list[0].batch == 1);
    check_entry(&list[0]);
    char chosen[96];
    snprintf(chosen, sizeof chosen, "%s", list[0].chosen);
    free(list);
    check_dispatch(dev, &SHAPE);
    clt_device_close(dev);
    char path[256];
    assert_true(tune_file(f->dir, path, sizeof path));

    /* A second process reads the choice and times nothing. */
    dev = open_with(f, f->dir);
    assert_int_equal(tunings(dev, &list), 1);
    assert_string_equal(list[0].chosen, chosen);
    free(list);
    f->log.len = 0;
    f->log.text[0] = 0;
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_null(strstr(f->log.text, "gemm tuning: m="));
    check_dispatch(dev, &SHAPE);
    clt_device_close(dev);
}

/* CLBlast grows the device's temporary buffer (1024-square products need one on PoCL) after
 * the tuner has entries: the tuner keeps them and keeps tuning. Growing the buffer once
 * released the whole GEMM state, the tuner's table included, in the middle of tuning. */
static void growing_the_clblast_buffer_keeps_the_tuner(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    struct clt_gemm_shape big = {.m = 1024, .n = 1024, .k = 1024, .alpha = 1.0f}, g;
    int64_t sa, sb, sc;
    assert_int_equal(clt__gemm_resolve(NULL, &big, &g, &sa, &sb, &sc), CLT_OK);
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, (uint64_t)(sa + sb + sc) * 4 + 4096, &arena), CLT_OK);
    struct clt_view va = clt_test_tensor(arena, NULL, (size_t)sa);
    struct clt_view vb = clt_test_tensor(arena, NULL, (size_t)sb);
    struct clt_view vc = clt_test_tensor(arena, NULL, (size_t)sc);
    enum clt_status st =
        clt__gemm_clblast(dev, &g, clt__view_buf(&va), clt__view_buf(&vb), clt__view_buf(&vc));
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    clt_arena_free(arena);
    if (st != CLT_OK || dev->gemm_temp_bytes == 0) {
        clt_device_close(dev);
        skip(); /* this device's CLBlast needs no temporary buffer for the shape */
    }
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 1);
    check_entry(&list[0]);
    free(list);
    struct clt_gemm_shape next = SHAPE;
    next.m += 4;
    assert_int_equal(clt_device_gemm_tune(dev, &next, 1), CLT_OK);
    assert_int_equal(tunings(dev, &list), 2);
    free(list);
    check_dispatch(dev, &next);
    clt_device_close(dev);
}

/* Flips one byte of the entry's payload (the last byte of the file). */
static void corrupt(const char *path)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, -2, SEEK_END), 0);
    int ch = fgetc(fp);
    assert_int_equal(fseek(fp, -2, SEEK_END), 0);
    fputc(ch ^ 0x01, fp);
    fclose(fp);
}

static void corrupt_and_foreign_entries_are_timed_again(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    clt_device_close(dev);
    char path[256];
    assert_true(tune_file(f->dir, path, sizeof path));
    corrupt(path);
    dev = open_with(f, f->dir);
    assert_non_null(strstr(f->log.text, "is corrupt or belongs to another"));
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 0);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_int_equal(tunings(dev, &list), 1);
    free(list);
    clt_device_close(dev);

    /* A well-formed entry written for another identity at this entry's path. */
    const char *other = "cltrain 0.0.0\nplatform elsewhere\n";
    const char *payload = "cltrain-tune 1\n";
    assert_int_equal(clt__cache_store(path, other, (const unsigned char *)payload, strlen(payload)),
                     CLT_OK);
    dev = open_with(f, f->dir);
    assert_non_null(strstr(f->log.text, "is corrupt or belongs to another"));
    assert_int_equal(tunings(dev, &list), 0);
    clt_device_close(dev);
}

/* The identity names the own kernel's search space: a library with another list of candidates
 * keeps its choices in another file, and times its shapes again. */
static void search_space_is_in_the_identity(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    char line[64];
    snprintf(line, sizeof line, "\ngemm-space %016llx\n",
             (unsigned long long)clt__gemm_own_space_id(dev));
    assert_non_null(dev->tune);
    assert_non_null(dev->tune->identity);
    assert_non_null(strstr(dev->tune->identity, line));
    clt_device_close(dev);
}

static void unwritable_cache_tunes_in_memory(void **state)
{
    struct fixture *f = *state;
    /* A cache directory under a regular file can be neither made nor written, even by root
     * (for whom a read-only directory is writable). */
    char file[128], dir[160];
    snprintf(file, sizeof file, "%s/not-a-directory", f->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(dir, sizeof dir, "%s/cache", file);
    struct clt_device *dev = open_with(f, dir);
    struct clt_gemm_shape second = SHAPE;
    second.m = 7;
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_int_equal(clt_device_gemm_tune(dev, &second, 1), CLT_OK);
    /* One warning, not one per write. */
    const char *w = strstr(f->log.text, "cannot be written");
    assert_non_null(w);
    assert_null(strstr(w + 1, "cannot be written"));
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 2);
    free(list);
    check_dispatch(dev, &second);
    clt_device_close(dev);
}

static void tune_zero_times_nothing(void **state)
{
    struct fixture *f = *state;
    struct clt_gemm_shape other = SHAPE;
    other.n = 5;
    setenv("CLTRAIN_TUNE", "0", 1);
    struct clt_device *dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_null(strstr(f->log.text, "gemm tuning"));
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 0);
    check_dispatch(dev, &SHAPE);
    clt_device_close(dev);
    char path[256];
    assert_false(tune_file(f->dir, path, sizeof path));

    /* A cache entry made with tuning on is not read either: defaults only. */
    unsetenv("CLTRAIN_TUNE");
    dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    clt_device_close(dev);
    assert_true(tune_file(f->dir, path, sizeof path));
    setenv("CLTRAIN_TUNE", "0", 1);
    dev = open_with(f, f->dir);
    assert_int_equal(tunings(dev, &list), 0);
    assert_int_equal(clt_device_gemm_tune(dev, &other, 1), CLT_OK);
    assert_null(strstr(f->log.text, "gemm tuning"));
    check_dispatch(dev, &SHAPE);
    clt_device_close(dev);
    unsetenv("CLTRAIN_TUNE");
}

/* A spent budget times nothing more: the shape gets the default and is not stored. */
static void spent_budget_times_nothing(void **state)
{
    struct fixture *f = *state;
    setenv("CLTRAIN_TUNE_BUDGET", "0", 1);
    struct clt_device *dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_non_null(strstr(f->log.text, "CLTRAIN_TUNE_BUDGET"));
    assert_null(strstr(f->log.text, "gemm tuning: m="));
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 0);
    check_dispatch(dev, &SHAPE);
    clt_device_close(dev);
    unsetenv("CLTRAIN_TUNE_BUDGET");
    char path[256];
    assert_false(tune_file(f->dir, path, sizeof path));
}

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

/* The entry's record of the candidate `name`. */
static const struct clt_gemm_candidate *candidate(const struct clt_gemm_tuning *t, const char *name)
{
    for (uint32_t i = 0; i < t->candidate_count; i++)
        if (strcmp(t->candidates[i].name, name) == 0)
            return &t->candidates[i];
    fail_msg("candidate %s was not tried", name);
    return NULL;
}

static void injected_candidates(void **state)
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

/* A stored choice the device cannot run now (here: the host BLAS, refused as
 * CLTRAIN_HOST_BLAS=0 refuses it) gives way to the fastest stored candidate that computed
 * correctly and can run; with none, to the default. Either way the product is right. */
static void unusable_choice_gives_way(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    struct clt_gemm_shape g;
    int64_t sa, sb, sc;
    assert_int_equal(clt__gemm_resolve(NULL, &SHAPE, &g, &sa, &sb, &sc), CLT_OK);
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

static void every_transpose_and_batch(void **state)
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

/* The payload of the device's entry (malloc'd), read through the cache container. */
static char *entry_text(struct clt_device *dev, const char *path)
{
    unsigned char *data = NULL;
    size_t size = 0;
    assert_int_equal(clt__cache_load(path, dev->tune->identity, &data, &size), CLT_OK);
    char *text = malloc(size + 1);
    assert_non_null(text);
    memcpy(text, data, size);
    text[size] = 0;
    free(data);
    return text;
}

/* A shape timed on an oversubscribed machine (load per core at or above 2, stood for by
 * test_load) is timed again by a later session that finds the machine at most half as loaded
 * and no longer oversubscribed; otherwise its stored choice serves. */
static void loaded_entries_are_timed_again_when_quiet(void **state)
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
    clt__tune_begin(dev);
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
static void clblast_parameters_are_decided_kept_and_applied(void **state)
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
static void split_candidates_are_timed(void **state)
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

static void storages_are_keyed_apart(void **state)
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
static void old_entries_read_as_fp32(void **state)
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

static void wrong_16_bit_candidate_is_never_chosen(void **state)
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

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(miss_then_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(growing_the_clblast_buffer_keeps_the_tuner, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(corrupt_and_foreign_entries_are_timed_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(search_space_is_in_the_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(unwritable_cache_tunes_in_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(tune_zero_times_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(spent_budget_times_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(injected_candidates, setup, teardown),
        cmocka_unit_test_setup_teardown(unusable_choice_gives_way, setup, teardown),
        cmocka_unit_test_setup_teardown(every_transpose_and_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(loaded_entries_are_timed_again_when_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(clblast_parameters_are_decided_kept_and_applied, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(storages_are_keyed_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(old_entries_read_as_fp32, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_16_bit_candidate_is_never_chosen, setup, teardown),
        cmocka_unit_test_setup_teardown(split_candidates_are_timed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
