/*
 * test_cache.c: the program binary cache on a real device: a miss writes an entry, a hit
 * reads it back and the program works, a corrupt or foreign entry is rebuilt, an unwritable
 * directory and a disabled cache still build, a program built while binaries are deferred
 * (the GEMM tuner's candidates) is written only when asked for again, and binaries are written
 * as the option, CLTRAIN_CACHE_BINARIES or the driver decides.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_own.h"
#include "harness.h"

struct fixture {
    char dir[64];
    struct clt_test_log log;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/cltrain-cache-test-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    *state = f;
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
    return 0;
}

/* Opens the device under test with the fixture's cache directory and log, binaries written
 * as `binaries` says (clt_device_options.binaries). */
static struct clt_device *open_binaries(struct fixture *f, const char *cache_dir, int cache,
                                        int binaries)
{
    struct clt_device_options o;
    clt_device_options_init(&o);
    o.cache_dir = cache_dir;
    o.cache = cache;
    o.binaries = binaries;
    o.log.fn = clt_test_log_fn;
    o.log.user = &f->log;
    o.log.max_level = CLT_LOG_WARN;
    f->log.len = 0;
    f->log.text[0] = 0;
    struct clt_device *dev = NULL;
    assert_int_equal(clt_device_open(getenv("CLTRAIN_DEVICE"), &o, &dev), CLT_OK);
    return dev;
}

/* The same, binaries always written: the tests of the binary cache itself. */
static struct clt_device *open_with(struct fixture *f, const char *cache_dir, int cache)
{
    return open_binaries(f, cache_dir, cache, 1);
}

/* Builds the gemm program (the own GEMM's default variant: one cache entry) and checks that it
 * computes: a 3x2 times 2x3 product. */
static void build_and_use(struct clt_device *dev)
{
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, 4096, &arena), CLT_OK);
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, -1, 2, 1, 0}, c[9];
    struct clt_view va = clt_test_upload(arena, a, 6), vb = clt_test_upload(arena, b, 6);
    struct clt_view vc = clt_test_upload(arena, NULL, 9);
    struct clt_gemm_shape shape = {.m = 3, .n = 3, .k = 2, .alpha = 1.0f}, g;
    int64_t sa, sb, sc;
    assert_int_equal(clt__gemm_resolve(NULL, &shape, &g, &sa, &sb, &sc), CLT_OK);
    assert_int_equal(
        clt__gemm_own(dev, &g, clt__view_buf(&va), clt__view_buf(&vb), clt__view_buf(&vc)), CLT_OK);
    clt_test_download(&vc, c, 9);
    double want[9] = {5, 2, -1, 11, 4, -3, 17, 6, -5};
    clt_test_assert_close("cached gemm", c, want, 9, 1e-6, 0);
    clt_arena_free(arena);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".clbin"))
            n++;
    closedir(d);
    return n;
}

/* The path of the one entry in dir. */
static void only_entry(const char *dir, char *path, size_t size)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    path[0] = 0;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".clbin"))
            snprintf(path, size, "%s/%s", dir, e->d_name);
    closedir(d);
    assert_true(path[0] != 0);
}

static void miss_then_hit(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir, 1);
    build_and_use(dev);
    assert_int_equal(dev->cache_hits, 0);
    assert_int_equal(dev->cache_writes, 1);
    clt_device_close(dev);
    assert_int_equal(count_entries(f->dir), 1);

    dev = open_with(f, f->dir, 1);
    build_and_use(dev);
    assert_int_equal(dev->cache_hits, 1);
    assert_int_equal(dev->cache_writes, 0);
    clt_device_close(dev);
}

static void corrupt_entry_rebuilt(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir, 1);
    build_and_use(dev);
    clt_device_close(dev);
    char path[512];
    only_entry(f->dir, path, sizeof path);
    /* Damage the binary near its end. */
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, -10, SEEK_END);
    fputs("garbage", fp);
    fclose(fp);

    dev = open_with(f, f->dir, 1);
    build_and_use(dev);
    assert_int_equal(dev->cache_hits, 0);
    assert_int_equal(dev->cache_writes, 1);
    assert_non_null(strstr(f->log.text, "corrupt or foreign"));
    clt_device_close(dev);

    dev = open_with(f, f->dir, 1);
    build_and_use(dev);
    assert_int_equal(dev->cache_hits, 1);
    clt_device_close(dev);
}

static void foreign_entry_rebuilt(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir, 1);
    build_and_use(dev);
    clt_device_close(dev);
    char path[512];
    only_entry(f->dir, path, sizeof path);
    /* An entry, valid in itself, written for another device under this entry's name. */
    unsigned char bin[64] = {0x7f, 'E', 'L', 'F'};
    assert_int_equal(clt__cache_store(path, "cltrain 0.1.0\nplatform other\n", bin, sizeof bin),
                     CLT_OK);
    dev = open_with(f, f->dir, 1);
    build_and_use(dev);
    assert_int_equal(dev->cache_hits, 0);
    assert_int_equal(dev->cache_writes, 1);
    clt_device_close(dev);
}

static void unwritable_directory_still_builds(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, "/proc/self", 1);
    build_and_use(dev);
    assert_int_equal(dev->cache_writes, 0);
    assert_non_null(strstr(f->log.text, "cannot write cache entry"));
    clt_device_close(dev);
}

static void disabled_cache_writes_nothing(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir, 0);
    build_and_use(dev);
    assert_int_equal(dev->cache_writes, 0);
    clt_device_close(dev);
    assert_int_equal(count_entries(f->dir), 0);
}

static void warm_builds_everything(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir, 1);
    struct clt_warm_report r;
    assert_int_equal(clt_device_warm(dev, &r), CLT_OK);
    /* Every source but the two prepended to all (shared.h, common.cl). */
    assert_int_equal(r.programs, clt__cl_source_count - 2);
    assert_int_equal(r.cache_hits, 0);
    assert_int_equal(r.cache_writes, r.programs);
    clt_device_close(dev);
    dev = open_with(f, f->dir, 1);
    assert_int_equal(clt_device_warm(dev, &r), CLT_OK);
    assert_int_equal(r.cache_hits, r.programs);
    assert_int_equal(r.cache_writes, 0);
    clt_device_close(dev);
}

/* Two own-GEMM configurations built while binaries are deferred write nothing; asking again
 * for one of them (as a run of the tuner's choice does) writes its entry, which the next
 * session loads, while the other one is built from source again. */
static void deferred_binary_written_when_kept(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir, 1);
    struct clt__gemm_config c[24];
    size_t n = clt__gemm_own_space(dev, NULL, c, 24);
    assert_true(n >= 2);
    const struct clt__gemm_config *kept = &c[n - 1], *lost = &c[n - 2];
    dev->defer_binaries = true;
    assert_int_equal(clt__gemm_own_keep(dev, kept, false, true), CLT_OK);
    assert_int_equal(clt__gemm_own_keep(dev, lost, false, true), CLT_OK);
    assert_int_equal(dev->cache_writes, 0);
    assert_int_equal(count_entries(f->dir), 0);
    /* Asked for again while still deferred: nothing yet. */
    assert_int_equal(clt__gemm_own_keep(dev, kept, false, true), CLT_OK);
    assert_int_equal(dev->cache_writes, 0);
    dev->defer_binaries = false;
    assert_int_equal(clt__gemm_own_keep(dev, kept, false, true), CLT_OK);
    assert_int_equal(dev->cache_writes, 1);
    assert_int_equal(count_entries(f->dir), 1);
    assert_int_equal(clt__gemm_own_keep(dev, kept, false, true), CLT_OK);
    assert_int_equal(dev->cache_writes, 1); /* written once */
    clt_device_close(dev);

    dev = open_with(f, f->dir, 1);
    assert_int_equal(clt__gemm_own_keep(dev, kept, false, true), CLT_OK);
    assert_int_equal(dev->cache_hits, 1);
    assert_int_equal(clt__gemm_own_keep(dev, lost, false, true), CLT_OK);
    assert_int_equal(dev->cache_hits, 1);
    assert_int_equal(dev->cache_writes, 1);
    clt_device_close(dev);
}

/* Removes the binaries from the fixture's cache directory. */
static void remove_binaries(struct fixture *f)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -f %s/*.clbin", f->dir);
    assert_int_equal(system(cmd), 0);
}

/* Opens with binaries -1 under CLTRAIN_CACHE_BINARIES=env (NULL: unset), builds the gemm
 * program and returns the binaries it wrote; the entries go afterwards. */
static uint32_t writes_under(struct fixture *f, const char *env)
{
    if (env)
        setenv("CLTRAIN_CACHE_BINARIES", env, 1);
    else
        unsetenv("CLTRAIN_CACHE_BINARIES");
    struct clt_device *dev = open_binaries(f, f->dir, 1, -1);
    build_and_use(dev);
    uint32_t writes = dev->cache_writes;
    clt_device_close(dev);
    unsetenv("CLTRAIN_CACHE_BINARIES");
    assert_int_equal(count_entries(f->dir), (int)writes);
    remove_binaries(f);
    return writes;
}

/* Binaries are written as clt_device_options.binaries says; at -1 as CLTRAIN_CACHE_BINARIES
 * says, else unless the driver is PoCL with its own kernel cache (a binary asked of PoCL
 * compiles every kernel of the program). An entry in the cache is read either way. */
static void binaries_written_as_asked(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_binaries(f, f->dir, 1, -1);
    const char *pocl_cache = getenv("POCL_KERNEL_CACHE");
    bool driver_caches = strstr(clt_device_info(dev)->platform, "Portable Computing Language") &&
                         !(pocl_cache && strcmp(pocl_cache, "0") == 0);
    clt_device_close(dev);

    assert_int_equal(writes_under(f, NULL), driver_caches ? 0 : 1);
    assert_int_equal(writes_under(f, "1"), 1);
    assert_int_equal(writes_under(f, "0"), 0);
    assert_int_equal(writes_under(f, "yes"), driver_caches ? 0 : 1);
    assert_non_null(strstr(f->log.text, "CLTRAIN_CACHE_BINARIES=yes is neither 0 nor 1"));

    /* The option over the variable; an entry written once is read with writing off. */
    setenv("CLTRAIN_CACHE_BINARIES", "0", 1);
    dev = open_binaries(f, f->dir, 1, 1);
    build_and_use(dev);
    assert_int_equal(dev->cache_writes, 1);
    clt_device_close(dev);
    unsetenv("CLTRAIN_CACHE_BINARIES");
    dev = open_binaries(f, f->dir, 1, 0);
    build_and_use(dev);
    assert_int_equal(dev->cache_hits, 1);
    assert_int_equal(dev->cache_writes, 0);
    clt_device_close(dev);

    /* Warming writes every program's binary where only the driver said no, not where asked. */
    struct clt_warm_report r;
    dev = open_binaries(f, f->dir, 1, -1);
    assert_int_equal(clt_device_warm(dev, &r), CLT_OK);
    assert_int_equal(r.cache_writes + r.cache_hits, r.programs);
    assert_true(r.cache_writes > 0);
    clt_device_close(dev);
    dev = open_binaries(f, f->dir, 1, 0);
    assert_int_equal(clt_device_warm(dev, &r), CLT_OK);
    assert_int_equal(r.cache_hits, r.programs);
    clt_device_close(dev);
    remove_binaries(f);
    dev = open_binaries(f, f->dir, 1, 0);
    assert_int_equal(clt_device_warm(dev, &r), CLT_OK);
    assert_int_equal(r.cache_writes, 0);
    clt_device_close(dev);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(miss_then_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_entry_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(foreign_entry_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(unwritable_directory_still_builds, setup, teardown),
        cmocka_unit_test_setup_teardown(disabled_cache_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(warm_builds_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(deferred_binary_written_when_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(binaries_written_as_asked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
