/*
 * tune_rig.c: the fixture and checks of the GEMM tuner's tests (tune_rig.h).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tune_rig.h"
#include "ref_gemm.h"

int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/cltrain-tune-test-XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    *state = f;
    unsetenv("CLTRAIN_TUNE");
    return 0;
}

int teardown(void **state)
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
struct clt_device *open_with(struct fixture *f, const char *cache_dir)
{
    struct clt_device_options o;
    clt_device_options_init(&o);
    o.cache_dir = cache_dir;
    o.cache = 1;
    o.binaries = 1; /* the tuner's deferred binaries are checked on every driver */
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
bool tune_file(const char *dir, char *out, size_t size)
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

size_t tunings(struct clt_device *dev, struct clt_gemm_tuning **out)
{
    size_t n = 99;
    assert_int_equal(clt_device_gemm_tunings(dev, out, &n), CLT_OK);
    return n;
}

/* Runs the shape through fn (clt__gemm: the tuner's choice; clt__gemm_clblast: CLBlast with
 * the parameters it has now) and compares with the reference. */
void check_with(struct clt_device *dev, const struct clt_gemm_shape *shape, clt__gemm_fn fn)
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

void check_dispatch(struct clt_device *dev, const struct clt_gemm_shape *shape)
{
    check_with(dev, shape, clt__gemm);
}

/* A winner is one of the candidates, and computed correctly. */
void check_entry(const struct clt_gemm_tuning *t)
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

/* The payload of the device's entry (malloc'd), read through the cache container. */
char *entry_text(struct clt_device *dev, const char *path)
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

/* The entry's record of the candidate `name`. */
const struct clt_gemm_candidate *candidate(const struct clt_gemm_tuning *t, const char *name)
{
    for (uint32_t i = 0; i < t->candidate_count; i++)
        if (strcmp(t->candidates[i].name, name) == 0)
            return &t->candidates[i];
    fail_msg("candidate %s was not tried", name);
    return NULL;
}
