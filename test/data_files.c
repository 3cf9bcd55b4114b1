/*
 * data_files.c: what test_data.c and test_batcher.c share (data_files.h): a temporary
 * directory per run with files written into it, the captured log, and a small dataset.
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "data_files.h"

struct clt_test_log messages;
const struct clt_log quiet = {clt_test_log_fn, &messages, CLT_LOG_DEBUG};

static char tmp_dir[64];

void clear_messages(void)
{
    messages.len = 0;
    messages.text[0] = 0;
}

/* The path of `name` in this run's temporary directory (a static buffer per call slot). */
const char *tmp_path(const char *name)
{
    static char paths[16][512];
    static int slot;
    char *p = paths[slot++ % 16];
    snprintf(p, 512, "%s/%s", tmp_dir, name);
    return p;
}

/* Writes bytes to a file in the temporary directory, gzip-compressed when gz; returns the
 * path. */
const char *write_file(const char *name, const void *data, size_t size, bool gz)
{
    const char *path = tmp_path(name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        if (size > 0)
            assert_int_equal(gzwrite(f, data, (unsigned)size), (int)size);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, size, f), size);
        assert_int_equal(fclose(f), 0);
    }
    return path;
}

const char *write_text(const char *name, const char *text, bool gz)
{
    return write_file(name, text, strlen(text), gz);
}

/* A classes dataset of n examples whose features [2] are (i, -i) and label i % 3. */
struct clt_dataset *indexed(uint64_t n)
{
    struct clt_dataset *ds = NULL;
    assert_int_equal(clt__dataset_new_classes(&quiet, "indexed", n, 1, (int64_t[]){2}, &ds),
                     CLT_OK);
    for (uint64_t i = 0; i < n; i++) {
        ds->features[2 * i] = (float)i;
        ds->features[2 * i + 1] = -(float)i;
        ds->labels[i] = (int32_t)(i % 3);
    }
    ds->classes = 3;
    return ds;
}

int data_files_setup(void **state)
{
    (void)state;
    strcpy(tmp_dir, "/tmp/cltrain-data-XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

int data_files_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}
