/*
 * test_data.c: datasets, on the host only: the IDX, CSV and text loaders on
 * small files written here (plain and gzip), every kind of malformed file (here and in the
 * corpus of test/data/), argument checks; labels checked against the number of classes
 * (labels that start at 1, gaps, one label far beyond the rest, and --classes). Loads the real
 * Fashion-MNIST test set when Debian's package is there. No device needed. Splits, heads and
 * the batcher: test_batcher.c.
 */
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "data_files.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* Messages go here, not to stderr: most tests provoke errors on purpose. */
/* An IDX file in memory: magic, dims, then `n` data bytes; returns its size. */
static size_t make_idx(unsigned char *buf, uint32_t magic, const uint32_t *dims, int ndims,
                       const unsigned char *data, size_t n)
{
    size_t at = 0;
    for (int i = 0; i < 1 + ndims; i++) {
        uint32_t v = i == 0 ? magic : dims[i - 1];
        for (int b = 3; b >= 0; b--)
            buf[at++] = (unsigned char)(v >> (8 * b));
    }
    memcpy(buf + at, data, n);
    return at + n;
}

/* A small labelled image set: 5 images of 3 x 4 pixels, pixel (i, k) = 11 * i + k, labels
 * i % 4 (so 4 classes). */
enum { N_IMG = 5, ROWS = 3, COLS = 4 };
static unsigned char img_bytes[64 + N_IMG * ROWS * COLS], lab_bytes[64];
static size_t img_size, lab_size;

static void make_sample_idx(void)
{
    unsigned char px[N_IMG * ROWS * COLS], lab[N_IMG];
    for (int i = 0; i < N_IMG; i++) {
        for (int k = 0; k < ROWS * COLS; k++)
            px[i * ROWS * COLS + k] = (unsigned char)(11 * i + k);
        lab[i] = (unsigned char)(i % 4);
    }
    img_size = make_idx(img_bytes, 0x803, (uint32_t[]){N_IMG, ROWS, COLS}, 3, px, sizeof px);
    lab_size = make_idx(lab_bytes, 0x801, (uint32_t[]){N_IMG}, 1, lab, sizeof lab);
}

static void check_sample_idx(const struct clt_dataset *ds)
{
    struct clt_dataset_info info;
    assert_int_equal(clt_dataset_info(ds, &info), CLT_OK);
    assert_int_equal(info.kind, CLT_DATASET_CLASSES);
    assert_int_equal(info.count, N_IMG);
    assert_int_equal(info.ndim, 3);
    assert_int_equal(info.shape[0], 1);
    assert_int_equal(info.shape[1], ROWS);
    assert_int_equal(info.shape[2], COLS);
    assert_int_equal(info.classes, 4);
    for (int i = 0; i < N_IMG; i++) {
        assert_int_equal(ds->labels[i], i % 4);
        for (int k = 0; k < ROWS * COLS; k++)
            assert_true(ds->features[i * ROWS * COLS + k] == (float)(11 * i + k) / 255.0f);
    }
}

static void idx_loads(void **state)
{
    (void)state;
    make_sample_idx();
    for (int gz = 0; gz < 2; gz++) {
        const char *ip = write_file(gz ? "i.idx.gz" : "i.idx", img_bytes, img_size, gz);
        const char *lp = write_file(gz ? "l.idx.gz" : "l.idx", lab_bytes, lab_size, gz);
        struct clt_dataset *ds = NULL;
        assert_int_equal(clt_dataset_load_idx(ip, lp, &quiet, &ds), CLT_OK);
        check_sample_idx(ds);
        clt_dataset_free(ds);
    }
    /* The in-memory parser, as fuzz targets call it. */
    struct clt_dataset *ds = NULL;
    assert_int_equal(
        clt__idx_parse(img_bytes, img_size, lab_bytes, lab_size, &quiet, "i", "l", &ds), CLT_OK);
    check_sample_idx(ds);
    clt_dataset_free(ds);
}

/* Loads images and labels given in memory through files; returns the status. */
static enum clt_status load_idx_bytes(const unsigned char *img, size_t isize,
                                      const unsigned char *lab, size_t lsize)
{
    const char *ip = write_file("bad-i.idx", img, isize, false);
    const char *lp = write_file("bad-l.idx", lab, lsize, false);
    struct clt_dataset *ds = NULL;
    enum clt_status st = clt_dataset_load_idx(ip, lp, &quiet, &ds);
    assert_true(st == CLT_OK || ds == NULL);
    clt_dataset_free(ds);
    /* The parser agrees with the loader. */
    enum clt_status mem = clt__idx_parse(img, isize, lab, lsize, &quiet, "i", "l", &ds);
    assert_int_equal(mem, st);
    if (mem == CLT_OK)
        clt_dataset_free(ds);
    return st;
}

static void idx_malformed(void **state)
{
    (void)state;
    make_sample_idx();
    unsigned char b[256], px[64] = {0};
    size_t n;
    clear_messages();

    /* Wrong magic in either file, and the two swapped. */
    memcpy(b, img_bytes, img_size);
    b[3] = 0x02;
    assert_int_equal(load_idx_bytes(b, img_size, lab_bytes, lab_size), CLT_ERR_FORMAT);
    assert_non_null(strstr(messages.text, "bad-i.idx"));
    assert_non_null(strstr(messages.text, "magic"));
    memcpy(b, lab_bytes, lab_size);
    b[2] = 0x09;
    assert_int_equal(load_idx_bytes(img_bytes, img_size, b, lab_size), CLT_ERR_FORMAT);
    assert_int_equal(load_idx_bytes(lab_bytes, lab_size, img_bytes, img_size), CLT_ERR_FORMAT);

    /* Truncated headers and data, extra bytes: every length but the right one. */
    for (size_t cut = 0; cut < img_size; cut += 7)
        assert_int_equal(load_idx_bytes(img_bytes, cut, lab_bytes, lab_size), CLT_ERR_FORMAT);
    assert_int_equal(load_idx_bytes(img_bytes, img_size - 1, lab_bytes, lab_size), CLT_ERR_FORMAT);
    for (size_t cut = 0; cut < lab_size; cut++)
        assert_int_equal(load_idx_bytes(img_bytes, img_size, lab_bytes, cut), CLT_ERR_FORMAT);
    memcpy(b, img_bytes, img_size);
    b[img_size] = 0;
    assert_int_equal(load_idx_bytes(b, img_size + 1, lab_bytes, lab_size), CLT_ERR_FORMAT);
    memcpy(b, lab_bytes, lab_size);
    b[lab_size] = 0;
    assert_int_equal(load_idx_bytes(img_bytes, img_size, b, lab_size + 1), CLT_ERR_FORMAT);

    /* Zero dimensions, each one. */
    for (int d = 0; d < 3; d++) {
        uint32_t dims[3] = {2, 2, 2};
        dims[d] = 0;
        n = make_idx(b, 0x803, dims, 3, px, 0);
        assert_int_equal(load_idx_bytes(b, n, lab_bytes, lab_size), CLT_ERR_FORMAT);
    }
    n = make_idx(b, 0x801, (uint32_t[]){0}, 1, px, 0);
    assert_int_equal(load_idx_bytes(img_bytes, img_size, b, n), CLT_ERR_FORMAT);

    /* Counts that differ. */
    n = make_idx(b, 0x801, (uint32_t[]){N_IMG - 1}, 1, px, N_IMG - 1);
    assert_int_equal(load_idx_bytes(img_bytes, img_size, b, n), CLT_ERR_FORMAT);

    /* Dimensions whose product overflows 64 bits, or only size_t, and a product that is
     * merely far larger than the file. */
    n = make_idx(b, 0x803, (uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu}, 3, px, 8);
    assert_int_equal(load_idx_bytes(b, n, lab_bytes, lab_size), CLT_ERR_FORMAT);
    n = make_idx(b, 0x803, (uint32_t[]){0x10000u, 0x10000u, 0x10000u}, 3, px, 8);
    assert_int_equal(load_idx_bytes(b, n, lab_bytes, lab_size), CLT_ERR_FORMAT);
    n = make_idx(b, 0x803, (uint32_t[]){N_IMG, 60000, 60000}, 3, px, 8);
    assert_int_equal(load_idx_bytes(b, n, lab_bytes, lab_size), CLT_ERR_FORMAT);

    /* A gzip stream cut short, and one with a corrupt body. */
    const char *ip = write_file("cut.idx.gz", img_bytes, img_size, true);
    const char *lp = write_file("l.idx", lab_bytes, lab_size, false);
    FILE *f = fopen(ip, "rb");
    assert_non_null(f);
    unsigned char gzbuf[512];
    size_t gzn = fread(gzbuf, 1, sizeof gzbuf, f);
    fclose(f);
    assert_true(gzn > 20);
    struct clt_dataset *ds = NULL;
    write_file("cut.idx.gz", gzbuf, gzn - 6, false);
    assert_int_equal(clt_dataset_load_idx(ip, lp, &quiet, &ds), CLT_ERR_FORMAT);
    gzbuf[gzn / 2] ^= 0x55;
    gzbuf[gzn / 2 + 1] ^= 0x55;
    write_file("cut.idx.gz", gzbuf, gzn, false);
    assert_int_equal(clt_dataset_load_idx(ip, lp, &quiet, &ds), CLT_ERR_FORMAT);
    assert_null(ds);

    /* Missing files and a directory are I/O errors. */
    assert_int_equal(clt_dataset_load_idx(tmp_path("missing.idx"), lp, &quiet, &ds), CLT_ERR_IO);
    assert_int_equal(clt_dataset_load_idx(lp, tmp_path("missing.idx"), &quiet, &ds), CLT_ERR_IO);
    assert_int_equal(clt_dataset_load_idx(tmp_path("."), lp, &quiet, &ds), CLT_ERR_IO);
    assert_null(ds);
}

static struct clt_dataset *load_csv(const char *text, int32_t label_column, bool gz,
                                    enum clt_status want)
{
    const char *path = write_text(gz ? "t.csv.gz" : "t.csv", text, gz);
    struct clt_dataset *ds = NULL;
    assert_int_equal(clt_dataset_load_csv(path, label_column, &quiet, &ds), want);
    assert_true(want == CLT_OK ? ds != NULL : ds == NULL);
    return ds;
}

static void csv_loads(void **state)
{
    (void)state;
    struct clt_dataset_info info;
    for (int gz = 0; gz < 2; gz++) {
        /* Label last, no header, no final newline. */
        struct clt_dataset *ds = load_csv("0.5,-2,3\n1e-3, 4 ,0\n7,8,2", -1, gz, CLT_OK);
        assert_int_equal(clt_dataset_info(ds, &info), CLT_OK);
        assert_int_equal(info.count, 3);
        assert_int_equal(info.ndim, 1);
        assert_int_equal(info.shape[0], 2);
        assert_int_equal(info.classes, 4);
        float want[] = {0.5f, -2, 1e-3f, 4, 7, 8};
        for (int i = 0; i < 6; i++)
            assert_true(ds->features[i] == want[i]);
        assert_int_equal(ds->labels[0], 3);
        assert_int_equal(ds->labels[1], 0);
        assert_int_equal(ds->labels[2], 2);
        clt_dataset_free(ds);
    }
    /* A header, CRLF, blank lines at the end, the label first and written as a float. */
    struct clt_dataset *ds =
        load_csv("label,x,y\r\n1.0,10,11\r\n0,12,13\r\n5e0,14,15\r\n\r\n\n", 0, false, CLT_OK);
    assert_int_equal(clt_dataset_info(ds, &info), CLT_OK);
    assert_int_equal(info.count, 3);
    assert_int_equal(info.shape[0], 2);
    assert_int_equal(info.classes, 6);
    for (int i = 0; i < 6; i++)
        assert_true(ds->features[i] == (float)(10 + i));
    assert_int_equal(ds->labels[2], 5);
    clt_dataset_free(ds);
    /* A header with another number of fields (scikit-learn's "150,4,setosa,..."), the
     * label in a middle column counted from the end. */
    ds = load_csv("3,2,a,b,c,d\n1,2,0\n3,4,1\n5,6,1\n", -2, false, CLT_OK);
    assert_int_equal(clt_dataset_info(ds, &info), CLT_OK);
    assert_int_equal(info.count, 3);
    assert_int_equal(ds->labels[1], 4);
    assert_true(ds->features[0] == 1.0f && ds->features[1] == 0.0f);
    clt_dataset_free(ds);
    /* The largest label. */
    ds = load_csv("1,2147483647\n", 1, false, CLT_OK);
    assert_int_equal(ds->labels[0], 2147483647);
    assert_int_equal(ds->classes, 2147483648u);
    clt_dataset_free(ds);
}

static void csv_malformed(void **state)
{
    (void)state;
    const char *bad[] = {
        "1,2,0\n3,4\n",            /* ragged */
        "1,2,0\n3,4,0,1\n",        /* ragged, longer */
        "1,2,0\n3,x,1\n",          /* not a number */
        "1,2,0\n3,nan,1\n",        /* NaN */
        "1,2,0\n3,inf,1\n",        /* infinity */
        "1,2,0\n3,1e400,1\n",      /* beyond double */
        "1,2,0\n3,4,-1\n",         /* negative label */
        "1,2,0\n3,4,2147483648\n", /* label 2^31 */
        "1,2,0\n3,4,1e300\n",      /* a huge label */
        "1,2,0\n3,4,0.5\n",        /* fractional label */
        "",                        /* empty */
        "\n\n",                    /* blank */
        "a,b,c\n",                 /* a header alone */
        "1,2,0\n\n3,4,1\n",        /* a blank line inside */
        "1\n2\n",                  /* one column */
        "1,,0\n",                  /* an empty field */
        "1,2,0\n3,4,1,\n",         /* trailing comma */
        "\n1,2,0\n",               /* a blank first line */
        "1,2,0\na,b,c\n",          /* text after the first line */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        load_csv(bad[i], -1, false, CLT_ERR_FORMAT);
        /* The parser agrees with the loader. */
        struct clt_dataset *ds = NULL;
        assert_int_equal(clt__csv_parse(bad[i], strlen(bad[i]), -1, &quiet, "mem", &ds),
                         CLT_ERR_FORMAT);
        assert_null(ds);
    }
    clear_messages();
    load_csv("1,2,0\n3,4\n", -1, false, CLT_ERR_FORMAT);
    assert_non_null(strstr(messages.text, "t.csv:2"));
    /* A label column the rows do not have. */
    load_csv("1,2,0\n", 3, false, CLT_ERR_INVALID_ARGUMENT);
    load_csv("1,2,0\n", -4, false, CLT_ERR_INVALID_ARGUMENT);
    struct clt_dataset *ds = NULL;
    assert_int_equal(clt_dataset_load_csv(tmp_path("missing.csv"), -1, &quiet, &ds), CLT_ERR_IO);
}

/* Parses CSV text and checks its labels against classes: the status, and the log naming the
 * line when it fails. */
static void check_classes(const char *csv, uint32_t classes, enum clt_status want, const char *says,
                          uint32_t want_classes)
{
    struct clt_dataset *ds = NULL;
    assert_int_equal(clt__csv_parse(csv, strlen(csv), -1, &quiet, "mem", &ds), CLT_OK);
    clear_messages();
    assert_int_equal(clt_dataset_check_classes(ds, classes, &quiet), want);
    if (says && !strstr(messages.text, says))
        fail_msg("the log does not say \"%s\":\n%s", says, messages.text);
    struct clt_dataset_info info;
    assert_int_equal(clt_dataset_info(ds, &info), CLT_OK);
    if (want == CLT_OK)
        assert_int_equal(info.classes, want_classes);
    clt_dataset_free(ds);
}

static void classes_checked(void **state)
{
    (void)state;
    /* 0 .. 2, in any order, with a header: 3 classes. */
    check_classes("a,b,y\n1,2,2\n3,4,0\n5,6,1\n7,8,0\n", 0, CLT_OK, NULL, 3);
    /* Labels that start at 1: the first row names label 0 as the missing one. */
    check_classes("a,b,y\n1,2,1\n3,4,2\n5,6,3\n", 0, CLT_ERR_FORMAT,
                  "line 2: label 1, but no example has label 0", 0);
    /* A gap: no 2, so 3 on line 4 (no header) is named. */
    check_classes("1,2,0\n3,4,1\n5,6,1\n7,8,3\n9,9,0\n", 0, CLT_ERR_FORMAT,
                  "line 4: label 3, but no example has label 2", 0);
    /* One mistyped label far beyond the rest (a 1000001-class model otherwise). */
    check_classes("1,2,0\n3,4,1\n5,6,1000000\n7,8,2\n", 0, CLT_ERR_FORMAT,
                  "line 3: label 1000000, but no example has label 3", 0);
    /* The number of classes given: gaps are fine, labels beyond it are not. */
    check_classes("1,2,0\n3,4,1\n7,8,3\n", 5, CLT_OK, NULL, 5);
    check_classes("1,2,1\n3,4,2\n", 3, CLT_OK, NULL, 3);
    check_classes("1,2,0\n3,4,1000000\n", 4, CLT_ERR_FORMAT,
                  "line 2: label 1000000 is not below the number of classes, 4", 0);
    /* A dataset made by a split has no lines: examples are named by index. */
    struct clt_dataset *ds = NULL, *a = NULL, *b = NULL;
    const char *csv = "1,2,0\n3,4,1\n5,6,3\n7,8,0\n";
    assert_int_equal(clt__csv_parse(csv, strlen(csv), -1, &quiet, "mem", &ds), CLT_OK);
    assert_int_equal(clt_dataset_head(ds, 3, &a), CLT_OK);
    clear_messages();
    assert_int_equal(clt_dataset_check_classes(a, 3, &quiet), CLT_ERR_FORMAT);
    assert_non_null(strstr(messages.text, "example 2: label 3"));
    /* A text has no labels. */
    assert_int_equal(clt__text_parse((const unsigned char *)"abc", 3, &quiet, "t", &b), CLT_OK);
    assert_int_equal(clt_dataset_check_classes(b, 0, &quiet), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_check_classes(NULL, 0, &quiet), CLT_ERR_INVALID_ARGUMENT);
    clt_dataset_free(a);
    clt_dataset_free(b);
    clt_dataset_free(ds);
}

static void text_loads(void **state)
{
    (void)state;
    for (int gz = 0; gz < 2; gz++) {
        const char *path = write_text(gz ? "t.txt.gz" : "t.txt", "hello, world\n", gz);
        struct clt_dataset *ds = NULL;
        assert_int_equal(clt_dataset_load_text(path, &quiet, &ds), CLT_OK);
        struct clt_dataset_info info;
        assert_int_equal(clt_dataset_info(ds, &info), CLT_OK);
        assert_int_equal(info.kind, CLT_DATASET_TEXT);
        assert_int_equal(info.count, 13);
        assert_int_equal(info.vocab, 10);
        uint8_t symbols[256];
        uint32_t vocab = 0;
        assert_int_equal(clt_dataset_symbols(ds, symbols, &vocab), CLT_OK);
        assert_int_equal(vocab, 10);
        assert_memory_equal(symbols, "\n ,dehlorw", 10);
        /* Ids decode back to the text. */
        for (int i = 0; i < 13; i++)
            assert_int_equal(symbols[ds->tokens[i]], (uint8_t) "hello, world\n"[i]);
        clt_dataset_free(ds);
    }
    /* Every byte value, NUL included. */
    unsigned char all[512];
    for (int i = 0; i < 512; i++)
        all[i] = (unsigned char)(255 - i % 256);
    struct clt_dataset *ds = NULL;
    assert_int_equal(clt_dataset_load_text(write_file("all.bin", all, 512, true), &quiet, &ds),
                     CLT_OK);
    assert_int_equal(ds->vocab, 256);
    assert_int_equal(ds->tokens[0], 255);
    assert_int_equal(ds->tokens[255], 0);
    clt_dataset_free(ds);
    ds = NULL;
    /* Too short: empty, one byte; missing. */
    assert_int_equal(clt_dataset_load_text(write_text("e.txt", "", false), &quiet, &ds),
                     CLT_ERR_FORMAT);
    assert_int_equal(clt_dataset_load_text(write_text("e.txt.gz", "", true), &quiet, &ds),
                     CLT_ERR_FORMAT);
    assert_int_equal(clt_dataset_load_text(write_text("one.txt", "x", false), &quiet, &ds),
                     CLT_ERR_FORMAT);
    assert_int_equal(clt_dataset_load_text(tmp_path("missing.txt"), &quiet, &ds), CLT_ERR_IO);
    assert_null(ds);
    /* Two equal bytes: one symbol, two tokens, a valid text. */
    assert_int_equal(clt_dataset_load_text(write_text("aa.txt", "aa", false), &quiet, &ds), CLT_OK);
    assert_int_equal(ds->vocab, 1);
    clt_dataset_free(ds);
}

static void arguments_checked(void **state)
{
    (void)state;
    struct clt_dataset *ds = indexed(4), *out = NULL;
    struct clt_dataset_info info;
    struct clt_batcher *bt = NULL;
    uint8_t symbols[256];
    uint32_t vocab;
    float x[8];
    int32_t y[4];
    const char *p = write_text("ok.csv", "1,0\n", false);

    assert_int_equal(clt_dataset_load_idx(NULL, p, &quiet, &out), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_load_idx(p, NULL, &quiet, &out), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_load_idx(p, p, &quiet, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_load_csv(NULL, 0, &quiet, &out), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_load_csv(p, 0, &quiet, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_load_text(NULL, &quiet, &out), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_load_text(p, &quiet, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__idx_parse(NULL, 5, NULL, 0, &quiet, "i", "l", &out),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__idx_parse(NULL, 0, NULL, 0, &quiet, NULL, NULL, &out), CLT_ERR_FORMAT);
    assert_int_equal(clt__csv_parse(NULL, 0, -1, &quiet, NULL, &out), CLT_ERR_FORMAT);
    assert_int_equal(clt__text_parse(NULL, 0, &quiet, NULL, &out), CLT_ERR_FORMAT);
    assert_null(out);
    /* The log may be NULL (stderr): loading a good file says nothing. */
    assert_int_equal(clt_dataset_load_csv(p, 0, NULL, &out), CLT_OK);
    clt_dataset_free(out);
    out = NULL;

    assert_int_equal(clt_dataset_info(NULL, &info), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_info(ds, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_symbols(ds, symbols, &vocab), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_symbols(NULL, symbols, &vocab), CLT_ERR_INVALID_ARGUMENT);
    clt_dataset_free(NULL);

    assert_int_equal(clt_batcher_create(NULL, 2, 0, 1, true, &bt), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_batcher_create(ds, 0, 0, 1, true, &bt), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_batcher_create(ds, 2, 0, 1, true, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_null(bt);
    assert_int_equal(clt_batcher_create(ds, 2, 0, 1, true, &bt), CLT_OK);
    assert_int_equal(clt_batcher_next(NULL, false, x, y, NULL, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_batcher_next(bt, false, NULL, y, NULL, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_batcher_next(bt, false, x, NULL, NULL, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_batcher_epoch_batches(NULL, false), 0);
    struct clt_batcher_state s = {1, 0, 2};
    assert_int_equal(clt_batcher_set(bt, &s), CLT_ERR_INVALID_ARGUMENT); /* position */
    assert_int_equal(clt_batcher_set(bt, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_batcher_set(NULL, &s), CLT_ERR_INVALID_ARGUMENT);
    clt_batcher_get(NULL, &s);
    clt_batcher_get(bt, NULL);
    clt_batcher_free(bt);
    clt_batcher_free(NULL);

    /* Sizes that cannot fit are refused before anything is allocated. */
    assert_int_equal(clt__dataset_new_classes(&quiet, "huge", 1ull << 62, 2,
                                              (int64_t[]){1 << 20, 1 << 20}, &out),
                     CLT_ERR_NO_MEMORY);
    assert_int_equal(
        clt__dataset_new_classes(&quiet, "huge", 1, 3, (int64_t[]){INT64_MAX, INT64_MAX, 2}, &out),
        CLT_ERR_NO_MEMORY);
    assert_null(out);
    clt_dataset_free(ds);
}

/* The directory of this file's test/data, found from __FILE__: absolute, or relative to the
 * build directory (meson compiles there; it is two levels above this executable), or
 * failing that relative to the working directory. */
static void corpus_dir(char *out, size_t size, const char *sub)
{
    char src[PATH_MAX], exe[PATH_MAX];
    snprintf(src, sizeof src, "%s", __FILE__);
    snprintf(out, size, "%s/data/%s", dirname(src), sub);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (out[0] == '/' || n <= 0)
        return;
    exe[n] = 0;
    char *build = dirname(dirname(exe));
    char rel[2 * PATH_MAX + 2];
    snprintf(rel, sizeof rel, "%s/%s", build, out);
    if (access(rel, R_OK) == 0 && strlen(rel) < size)
        memcpy(out, rel, strlen(rel) + 1);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The names of the files of dir ending in suffix, sorted; returns how many. */
static size_t list_files(const char *dir, const char *suffix, char names[][128], size_t max)
{
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open %s", dir);
    size_t n = 0, sl = strlen(suffix);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > sl && len < 128 && strcmp(e->d_name + len - sl, suffix) == 0 && n < max)
            memcpy(names[n++], e->d_name, len + 1);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], compare_names);
    return n;
}

static void corpus_refused(void **state)
{
    (void)state;
    char dir[PATH_MAX], a[PATH_MAX + 128], b[PATH_MAX + 128];
    static char names[64][128];
    struct clt_dataset *ds = NULL;

    corpus_dir(dir, sizeof dir, "bad-idx");
    snprintf(a, sizeof a, "%s/good-images.idx", dir);
    snprintf(b, sizeof b, "%s/good-labels.idx", dir);
    assert_int_equal(clt_dataset_load_idx(a, b, &quiet, &ds), CLT_OK);
    assert_int_equal(ds->count, 2);
    assert_int_equal(ds->classes, 4);
    clt_dataset_free(ds);
    ds = NULL;
    size_t n = list_files(dir, ".idx", names, 64);
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(names[i], "good-", 5) == 0)
            continue;
        bool images = strstr(names[i], "-images.idx") != NULL;
        snprintf(a, sizeof a, "%s/%s", dir, images ? names[i] : "good-images.idx");
        snprintf(b, sizeof b, "%s/%s", dir, images ? "good-labels.idx" : names[i]);
        enum clt_status st = clt_dataset_load_idx(a, b, &quiet, &ds);
        if (st != CLT_ERR_FORMAT)
            fail_msg("bad-idx/%s: status %d, expected CLT_ERR_FORMAT", names[i], st);
        assert_null(ds);
    }

    corpus_dir(dir, sizeof dir, "bad-csv");
    n = list_files(dir, ".csv", names, 64);
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/%s", dir, names[i]);
        enum clt_status st = clt_dataset_load_csv(a, -1, &quiet, &ds);
        if (st != CLT_ERR_FORMAT)
            fail_msg("bad-csv/%s: status %d, expected CLT_ERR_FORMAT", names[i], st);
        assert_null(ds);
    }
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fashion_mnist(void **state)
{
    (void)state;
    const char *images = FASHION_DIR "/t10k-images-idx3-ubyte.gz";
    const char *labels = FASHION_DIR "/t10k-labels-idx1-ubyte.gz";
    if (access(images, R_OK) != 0 || access(labels, R_OK) != 0) {
        skip();
        return;
    }
    struct clt_dataset *ds = NULL;
    double t0 = seconds();
    assert_int_equal(clt_dataset_load_idx(images, labels, &quiet, &ds), CLT_OK);
    double t1 = seconds();
    struct clt_dataset_info info;
    assert_int_equal(clt_dataset_info(ds, &info), CLT_OK);
    assert_int_equal(info.count, 10000);
    assert_int_equal(info.ndim, 3);
    assert_int_equal(info.shape[0], 1);
    assert_int_equal(info.shape[1], 28);
    assert_int_equal(info.shape[2], 28);
    assert_int_equal(info.classes, 10);
    /* Every class occurs (1000 each in this set), every pixel is in [0, 1]. */
    int per_class[10] = {0};
    for (int i = 0; i < 10000; i++)
        per_class[ds->labels[i]]++;
    for (int c = 0; c < 10; c++)
        assert_int_equal(per_class[c], 1000);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < 10000 * 784; i++) {
        lo = ds->features[i] < lo ? ds->features[i] : lo;
        hi = ds->features[i] > hi ? ds->features[i] : hi;
    }
    assert_true(lo == 0.0f && hi == 1.0f);
    print_message("Fashion-MNIST t10k: 10000 images loaded in %.3f s\n", t1 - t0);
    clt_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idx_loads),       cmocka_unit_test(idx_malformed),
        cmocka_unit_test(csv_loads),       cmocka_unit_test(csv_malformed),
        cmocka_unit_test(text_loads),      cmocka_unit_test(arguments_checked),
        cmocka_unit_test(corpus_refused),  cmocka_unit_test(fashion_mnist),
        cmocka_unit_test(classes_checked),
    };
    return cmocka_run_group_tests(tests, data_files_setup, data_files_teardown);
}
