/*
 * test_cache_format.c: cache entries on disk: round trip, and every kind of bad entry
 * (missing, truncated, flipped byte, foreign identity, wrong magic, trailing bytes) is
 * refused. No device needed.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static const char *identity = "cltrain 0.1.0\nplatform P\ndevice D\n";

static void temp_dir(char *dir)
{
    strcpy(dir, "/tmp/cltrain-cache-format-XXXXXX");
    assert_true(clt_test_temp_dir(dir));
}

static long file_size(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0 ? (long)s.st_size : -1;
}

static void store_sample(const char *path)
{
    unsigned char bin[300];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i * 7);
    assert_int_equal(clt__cache_store(path, identity, bin, sizeof bin), CLT_OK);
}

static enum clt_status load(const char *path, const char *id)
{
    unsigned char *bin = NULL;
    size_t size = 0;
    enum clt_status st = clt__cache_load(path, id, &bin, &size);
    if (st == CLT_OK) {
        assert_int_equal(size, 300);
        for (size_t i = 0; i < size; i++)
            assert_int_equal(bin[i], (unsigned char)(i * 7));
    }
    free(bin);
    return st;
}

static void round_trip(void **state)
{
    (void)state;
    char dir[64], path[256];
    temp_dir(dir);
    clt__cache_path(dir, identity, path, sizeof path);
    assert_non_null(strstr(path, ".clbin"));
    assert_int_equal(load(path, identity), CLT_ERR_IO);
    store_sample(path);
    assert_int_equal(load(path, identity), CLT_OK);
    /* No temporary file is left behind. */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);
}

static void foreign_identity_refused(void **state)
{
    (void)state;
    char dir[64], path[256];
    temp_dir(dir);
    clt__cache_path(dir, identity, path, sizeof path);
    store_sample(path);
    assert_int_equal(load(path, "cltrain 0.1.0\nplatform P\ndevice E\n"), CLT_ERR_FORMAT);
    assert_int_equal(load(path, "short"), CLT_ERR_FORMAT);
}

/* Changes one byte of a file at an offset. */
static void flip(const char *path, long offset)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, offset, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, offset, SEEK_SET), 0);
    fputc(c ^ 0x40, f);
    fclose(f);
}

static void corrupt_entries_refused(void **state)
{
    (void)state;
    char dir[64], path[256];
    temp_dir(dir);
    clt__cache_path(dir, identity, path, sizeof path);
    long size;
    /* A flipped byte anywhere: magic, version, lengths, checksum, identity, binary. */
    long offsets[] = {0, 8, 12, 16, 24, 32, 40, -1, -100};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        store_sample(path);
        size = file_size(path);
        flip(path, offsets[i] >= 0 ? offsets[i] : size + offsets[i]);
        assert_int_equal(load(path, identity), CLT_ERR_FORMAT);
    }
    /* Truncated at several points, down to empty. */
    long cuts[] = {0, 5, 31, 33, 100};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        store_sample(path);
        assert_int_equal(truncate(path, cuts[i]), 0);
        assert_int_equal(load(path, identity), CLT_ERR_FORMAT);
    }
    store_sample(path);
    assert_int_equal(truncate(path, file_size(path) - 1), 0);
    assert_int_equal(load(path, identity), CLT_ERR_FORMAT);
    /* Trailing garbage. */
    store_sample(path);
    FILE *f = fopen(path, "ab");
    fputs("extra", f);
    fclose(f);
    assert_int_equal(load(path, identity), CLT_ERR_FORMAT);
}

static void huge_lengths_refused(void **state)
{
    (void)state;
    char dir[64], path[256];
    temp_dir(dir);
    clt__cache_path(dir, identity, path, sizeof path);
    store_sample(path);
    /* A binary length of 2^56 must be refused before anything is allocated. */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 23, SEEK_SET);
    fputc(1, f);
    fclose(f);
    assert_int_equal(load(path, identity), CLT_ERR_FORMAT);
}

static void unwritable_directory(void **state)
{
    (void)state;
    char path[256];
    /* A directory nobody (root included) can create files in. */
    clt__cache_path("/proc/self", identity, path, sizeof path);
    unsigned char bin[4] = {1, 2, 3, 4};
    assert_int_equal(clt__cache_store(path, identity, bin, sizeof bin), CLT_ERR_IO);
    assert_int_equal(clt__cache_store(path, identity, bin, 0), CLT_ERR_INVALID_ARGUMENT);
}

static void mkdir_p_makes_parents(void **state)
{
    (void)state;
    char dir[64], deep[128];
    temp_dir(dir);
    snprintf(deep, sizeof deep, "%s/a/b/c", dir);
    assert_int_equal(clt__mkdir_p(deep), CLT_OK);
    assert_int_equal(clt__mkdir_p(deep), CLT_OK);
    struct stat s;
    assert_int_equal(stat(deep, &s), 0);
    assert_true(S_ISDIR(s.st_mode));
    char file_parent[160];
    snprintf(file_parent, sizeof file_parent, "%s/x", deep);
    fclose(fopen(file_parent, "w"));
    strcat(file_parent, "/y");
    assert_int_equal(clt__mkdir_p(file_parent), CLT_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(foreign_identity_refused),
        cmocka_unit_test(corrupt_entries_refused),
        cmocka_unit_test(huge_lengths_refused),
        cmocka_unit_test(unwritable_directory),
        cmocka_unit_test(mkdir_p_makes_parents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
