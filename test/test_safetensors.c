/*
 * test_safetensors.c: the safetensors reader and writer (engine/safetensors.c), host only.
 *
 * - Files written by the writer (in memory and atomically on disk) read back with the same
 *   names, dtypes, shapes, bytes and metadata; tensors come out sorted by name; the header
 *   is padded to a multiple of 8.
 * - Every kind of malformed buffer is refused with CLT_ERR_FORMAT and the reason expected:
 *   lengths, UTF-8, JSON, fields, dtypes, shapes, offsets, overlaps, holes, duplicates,
 *   metadata. Each buffer is also refused when cut short at every length.
 * - Every file of the corpus test/data/bad-safetensors/ (listed in its README.md) is refused.
 * - The writer refuses duplicate names, bad UTF-8 and reserved names, and on a failed write
 *   leaves the old file and no temporary file.
 * - clt_checkpoint_* reads files cltrain did not write: F32 data at any offset comes out
 *   aligned, other dtypes are CLT_ERR_UNSUPPORTED, any header length is fine.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "safetensors.h"

/* ---- Helpers ------------------------------------------------------------------------------ */

/* A buffer: the 8-byte length of header (or `length` when >= 0), the header, data bytes
 * 0, 1, 2, ... of count data_bytes. Caller frees. */
static unsigned char *make(const char *header, size_t header_len, int64_t length, size_t data_bytes,
                           size_t *size)
{
    uint64_t n = length >= 0 ? (uint64_t)length : header_len;
    *size = 8 + header_len + data_bytes;
    unsigned char *b = malloc(*size);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(n >> (8 * i));
    memcpy(b + 8, header, header_len);
    for (size_t i = 0; i < data_bytes; i++)
        b[8 + header_len + i] = (unsigned char)i;
    return b;
}

/* Parses a buffer expected to be refused, and checks the reason names `reason`. */
static void refused(const char *what, const unsigned char *buf, size_t size, const char *reason)
{
    struct clt__safetensors st;
    char why[512];
    enum clt_status s = clt__safetensors_parse(buf, size, &st, why, sizeof why);
    if (s != CLT_ERR_FORMAT)
        fail_msg("%s: accepted (status %d)", what, (int)s);
    if (reason && !strstr(why, reason))
        fail_msg("%s: reason \"%s\" does not mention \"%s\"", what, why, reason);
    assert_int_equal(st.count, 0);
    assert_null(st.json);
    clt__safetensors_free(&st);
}

/* A header and data_bytes of data that must be refused, also when cut short anywhere. */
static void refused_json(const char *json, size_t data_bytes, const char *reason)
{
    size_t size;
    unsigned char *b = make(json, strlen(json), -1, data_bytes, &size);
    refused(json, b, size, reason);
    for (size_t cut = 0; cut < size; cut++)
        refused(json, b, cut, NULL);
    free(b);
}

static struct clt__safetensors parsed(const unsigned char *buf, size_t size)
{
    struct clt__safetensors st;
    char why[512];
    enum clt_status s = clt__safetensors_parse(buf, size, &st, why, sizeof why);
    if (s != CLT_OK)
        fail_msg("refused a valid file: %s", why);
    return st;
}

#define T1 "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

/* ---- Round trips ---------------------------------------------------------------------------- */

static void encode_then_parse(void **state)
{
    (void)state;
    float w[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
    float b[3] = {7, 8, 9};
    int32_t ids[4] = {-1, 0, 1, 2147483647};
    int64_t ws[2] = {2, 3}, bs[1] = {3}, is[2] = {2, 2}, es[2] = {0, 5};
    /* Given out of order: the file lists them by name. */
    struct clt__st_entry e[4] = {
        {"layer.weight", CLT__ST_F32, 2, ws, w},
        {"a \"quoted\"\\name\n", CLT__ST_I32, 2, is, ids},
        {"layer.bias", CLT__ST_F32, 1, bs, b},
        {"empty \xc3\xa9", CLT__ST_F32, 2, es, NULL},
    };
    struct clt_meta meta[2] = {{"format", "pt"}, {"note", "caf\xc3\xa9 \"x\""}};
    unsigned char *buf = NULL;
    size_t size = 0;
    char why[256];
    assert_int_equal(clt__safetensors_encode(e, 4, meta, 2, &buf, &size, why, sizeof why), CLT_OK);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | buf[i];
    assert_int_equal((8 + n) % 8, 0);
    assert_int_equal(size, 8 + n + sizeof w + sizeof b + sizeof ids);
    struct clt__safetensors st = parsed(buf, size);
    assert_int_equal(st.count, 4);
    const char *names[4] = {"a \"quoted\"\\name\n", "empty \xc3\xa9", "layer.bias", "layer.weight"};
    for (int i = 0; i < 4; i++)
        assert_string_equal(st.tensors[i].name, names[i]);
    assert_int_equal(st.tensors[0].dtype, CLT__ST_I32);
    assert_memory_equal(st.tensors[0].data, ids, sizeof ids);
    assert_int_equal(st.tensors[1].ndim, 2);
    assert_int_equal(st.tensors[1].shape[0], 0);
    assert_int_equal(st.tensors[1].begin, st.tensors[1].end);
    assert_memory_equal(st.tensors[2].data, b, sizeof b);
    assert_int_equal(st.tensors[3].shape[1], 3);
    float back[6];
    clt__f32_from_le(back, st.tensors[3].data, 6);
    assert_memory_equal(back, w, sizeof w);
    assert_string_equal(clt__safetensors_meta(&st, "note"), "caf\xc3\xa9 \"x\"");
    assert_string_equal(clt__safetensors_meta(&st, "format"), "pt");
    assert_null(clt__safetensors_meta(&st, "missing"));
    assert_ptr_equal(clt__safetensors_find(&st, "layer.bias"), &st.tensors[2]);
    assert_null(clt__safetensors_find(&st, "layer"));
    clt__safetensors_free(&st);

    /* The same content gives the same bytes, whatever the order of the entries. */
    struct clt__st_entry r[4] = {e[3], e[2], e[1], e[0]};
    unsigned char *buf2 = NULL;
    size_t size2 = 0;
    assert_int_equal(clt__safetensors_encode(r, 4, meta, 2, &buf2, &size2, why, sizeof why),
                     CLT_OK);
    assert_int_equal(size2, size);
    assert_memory_equal(buf2, buf, size);
    free(buf2);
    free(buf);

    /* No tensors and no metadata: "{}" padded. */
    assert_int_equal(clt__safetensors_encode(NULL, 0, NULL, 0, &buf, &size, why, sizeof why),
                     CLT_OK);
    assert_int_equal(size, 16);
    assert_memory_equal(buf + 8, "{}      ", 8);
    st = parsed(buf, size);
    assert_int_equal(st.count, 0);
    assert_int_equal(st.nmeta, 0);
    clt__safetensors_free(&st);
    free(buf);
}

static char *temp_dir(void)
{
    char *dir = strdup("/tmp/cltrain-safetensors-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

/* Files in dir whose name contains ".tmp.". */
static int temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void write_then_read_file(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    float v[5] = {1, 2, 3, 4, 5};
    int64_t shape[1] = {5};
    struct clt__st_entry e = {"v", CLT__ST_F32, 1, shape, v};
    struct clt_meta m = {"k", "v"};
    struct clt_test_log log = {.len = 0};
    struct clt_log lg = {clt_test_log_fn, &log, CLT_LOG_DEBUG};
    assert_int_equal(clt__safetensors_write(path, &e, 1, &m, 1, &lg), CLT_OK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    /* A replacement keeps the mode of the file it replaces. */
    assert_int_equal(chmod(path, 0600), 0);
    v[0] = 10;
    assert_int_equal(clt__safetensors_write(path, &e, 1, &m, 1, &lg), CLT_OK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(temp_files(dir), 0);

    unsigned char *buf = NULL;
    const unsigned char *bytes = NULL;
    size_t size = 0;
    assert_int_equal(clt__safetensors_read_file(path, &lg, &buf, &bytes, &size), CLT_OK);
    struct clt__safetensors st = parsed(bytes, size);
    assert_int_equal(st.count, 1);
    assert_int_equal((uintptr_t)st.tensors[0].data % 8, 0);
    assert_memory_equal(st.tensors[0].data, v, sizeof v);
    clt__safetensors_free(&st);
    free(buf);

    /* Reading what is not there, or not a file. */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing.safetensors", dir);
    assert_int_equal(clt__safetensors_read_file(missing, &lg, &buf, &bytes, &size), CLT_ERR_IO);
    assert_non_null(strstr(log.text, "No such file"));
    assert_int_equal(clt__safetensors_read_file(dir, &lg, &buf, &bytes, &size), CLT_ERR_IO);

    /* Writing where no file can be made fails, names the reason and leaves nothing. */
    log.len = 0;
    log.text[0] = 0;
    assert_int_equal(clt__safetensors_write("/proc/self/x.safetensors", &e, 1, NULL, 0, &lg),
                     CLT_ERR_IO);
    assert_non_null(strstr(log.text, "/proc/self/x.safetensors"));
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.safetensors", dir);
    assert_int_equal(clt__safetensors_write(missing, &e, 1, NULL, 0, &lg), CLT_ERR_IO);
    assert_non_null(strstr(log.text, "No such file"));
    /* Renaming over a directory fails after the data is written: the temporary goes. */
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(clt__safetensors_write(sub, &e, 1, NULL, 0, &lg), CLT_ERR_IO);
    assert_int_equal(temp_files(dir), 0);
    assert_int_equal(rmdir(sub), 0);

    /* The old file is still the last good one. */
    assert_int_equal(clt__safetensors_read_file(path, &lg, &buf, &bytes, &size), CLT_OK);
    st = parsed(bytes, size);
    assert_memory_equal(st.tensors[0].data, v, sizeof v);
    clt__safetensors_free(&st);
    free(buf);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

static void writer_refuses_bad_entries(void **state)
{
    (void)state;
    float v[2] = {1, 2};
    int64_t shape[1] = {2}, neg[1] = {-2};
    char *h = NULL;
    size_t len = 0;
    char why[256];
    struct clt__st_entry dup[2] = {{"a", CLT__ST_F32, 1, shape, v},
                                   {"a", CLT__ST_F32, 1, shape, v}};
    assert_int_equal(clt__safetensors_header(dup, 2, NULL, 0, &h, &len, why, sizeof why),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(why, "twice"));
    struct clt__st_entry bad[1] = {{"\xff", CLT__ST_F32, 1, shape, v}};
    assert_int_equal(clt__safetensors_header(bad, 1, NULL, 0, &h, &len, why, sizeof why),
                     CLT_ERR_INVALID_ARGUMENT);
    struct clt__st_entry reserved[1] = {{"__metadata__", CLT__ST_F32, 1, shape, v}};
    assert_int_equal(clt__safetensors_header(reserved, 1, NULL, 0, &h, &len, why, sizeof why),
                     CLT_ERR_INVALID_ARGUMENT);
    struct clt__st_entry negative[1] = {{"a", CLT__ST_F32, 1, neg, v}};
    assert_int_equal(clt__safetensors_header(negative, 1, NULL, 0, &h, &len, why, sizeof why),
                     CLT_ERR_INVALID_ARGUMENT);
    struct clt_meta m[2] = {{"k", "a"}, {"k", "b"}};
    assert_int_equal(clt__safetensors_header(dup, 1, m, 2, &h, &len, why, sizeof why),
                     CLT_ERR_INVALID_ARGUMENT);
    struct clt_meta nul[1] = {{"k", NULL}};
    assert_int_equal(clt__safetensors_header(dup, 1, nul, 1, &h, &len, why, sizeof why),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__safetensors_header(dup, 1, NULL, 0, &h, &len, why, sizeof why), CLT_OK);
    /* 54 characters, padded to 56 so that the data starts at byte 64. */
    assert_string_equal(h, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  ");
    assert_int_equal(len, 56);
    free(h);
}

/* clt_checkpoint_* on files cltrain did not write: misaligned F32 data, other dtypes, a header
 * whose length is not a multiple of 8. */
static void checkpoint_api_reads_any_file(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/any.safetensors", dir);
    uint16_t half = 0x3c00;
    float b[3] = {1.25f, -3.5f, 1e-8f};
    int32_t c[2] = {7, 8};
    int64_t one[1] = {1}, three[1] = {3}, two[2] = {1, 2};
    struct clt__st_entry e[3] = {{"a", CLT__ST_F16, 1, one, &half},
                                 {"b", CLT__ST_F32, 1, three, b},
                                 {"c", CLT__ST_I32, 2, two, c}};
    struct clt_meta m = {"format", "pt"};
    assert_int_equal(clt__safetensors_write(path, e, 3, &m, 1, NULL), CLT_OK);
    struct clt_test_log log = {.len = 0};
    struct clt_log lg = {clt_test_log_fn, &log, CLT_LOG_DEBUG};
    struct clt_checkpoint *ck = NULL;
    assert_int_equal(clt_checkpoint_open(path, &lg, &ck), CLT_OK);
    assert_int_equal(clt_checkpoint_tensor_count(ck), 3);
    assert_string_equal(clt_checkpoint_meta(ck, "format"), "pt");
    const char *name = NULL;
    uint32_t ndim = 0;
    int64_t shape[CLT_MAX_DIMS];
    const float *data = NULL;
    /* "b" starts 2 bytes into the data: it is handed out as an aligned copy. */
    assert_int_equal(clt_checkpoint_tensor(ck, 1, &name, &ndim, shape, &data), CLT_OK);
    assert_string_equal(name, "b");
    assert_int_equal(ndim, 1);
    assert_int_equal(shape[0], 3);
    assert_int_equal((uintptr_t)data % sizeof(float), 0);
    assert_memory_equal(data, b, sizeof b);
    name = NULL;
    /* Another dtype cannot be borrowed as floats: the status says so, and the log stays quiet
     * (a caller walking the tensors meets it on every call). */
    assert_int_equal(clt_checkpoint_tensor(ck, 0, &name, &ndim, shape, &data), CLT_ERR_UNSUPPORTED);
    assert_null(name);
    assert_int_equal(log.len, 0);
    assert_int_equal(clt_checkpoint_tensor(ck, 2, &name, &ndim, shape, &data), CLT_ERR_UNSUPPORTED);
    assert_int_equal(clt_checkpoint_tensor(ck, 3, &name, &ndim, shape, &data),
                     CLT_ERR_INVALID_ARGUMENT);
    clt_checkpoint_close(ck);
    unlink(path);

    /* A 51-byte header: the reader still places the data 8-aligned. */
    const char *h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t size;
    unsigned char *buf = make(h, strlen(h), -1, 0, &size);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, size, f), size);
    assert_int_equal(fwrite(b, 1, 8, f), 8);
    fclose(f);
    free(buf);
    assert_int_equal(clt_checkpoint_open(path, &lg, &ck), CLT_OK);
    assert_int_equal(clt_checkpoint_tensor(ck, 0, &name, &ndim, shape, &data), CLT_OK);
    assert_int_equal((uintptr_t)data % 8, 0);
    assert_memory_equal(data, b, 8);
    assert_null(clt_checkpoint_meta(ck, "format"));
    clt_checkpoint_close(ck);
    unlink(path);
    rmdir(dir);
    free(dir);
}

/* Reading by name and dtype: every dtype described; F32, F16, BF16, F64, I32 and I64 read as
 * floats (exact for these values), integer dtypes as int64; one ERROR line for each failed read
 * (a missing name, a wrong count, a dtype that does not convert) naming the tensor; a missing
 * name asked of clt_checkpoint_find is no error. */
static void checkpoint_reads_by_name_and_dtype(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/dtypes.safetensors", dir);
    /* Three values exact in every dtype: -2, 0.5 (ints: 0) and 3 (ints: 3). */
    const uint16_t f16[3] = {0xc000, 0x3800, 0x4200}, bf16[3] = {0xc000, 0x3f00, 0x4040};
    const float f32[3] = {-2.0f, 0.5f, 3.0f};
    const double f64[3] = {-2.0, 0.5, 3.0};
    const int32_t i32[3] = {-2, 0, 3};
    const int64_t i64[3] = {-2, 0, (int64_t)1 << 40};
    const uint8_t u8[3] = {255, 0, 3};
    const uint64_t u64[3] = {1, UINT64_MAX, 3};
    int64_t three[1] = {3}, grid[2] = {1, 3};
    struct clt__st_entry e[8] = {
        {"bf16", CLT__ST_BF16, 1, three, bf16}, {"f16", CLT__ST_F16, 2, grid, f16},
        {"f32", CLT__ST_F32, 1, three, f32},    {"f64", CLT__ST_F64, 1, three, f64},
        {"i32", CLT__ST_I32, 1, three, i32},    {"i64", CLT__ST_I64, 1, three, i64},
        {"u64", CLT__ST_U64, 1, three, u64},    {"u8", CLT__ST_U8, 1, three, u8}};
    assert_int_equal(clt__safetensors_write(path, e, 8, NULL, 0, NULL), CLT_OK);
    struct clt_test_log log = {.len = 0};
    struct clt_log lg = {clt_test_log_fn, &log, CLT_LOG_DEBUG};
    struct clt_checkpoint *ck = NULL;
    assert_int_equal(clt_checkpoint_open(path, &lg, &ck), CLT_OK);

    uint32_t index = 99;
    assert_int_equal(clt_checkpoint_find(ck, "f16", &index), CLT_OK);
    assert_int_equal(index, 1);
    struct clt_checkpoint_info info;
    assert_int_equal(clt_checkpoint_tensor_info(ck, index, &info), CLT_OK);
    assert_string_equal(info.name, "f16");
    assert_string_equal(info.dtype, "F16");
    assert_int_equal(info.ndim, 2);
    assert_int_equal(info.shape[0], 1);
    assert_int_equal(info.shape[1], 3);
    assert_int_equal(info.count, 3);
    assert_int_equal(clt_checkpoint_find(ck, "nothing", &index), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_checkpoint_tensor_info(ck, 8, &info), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(log.len, 0);

    const float want_f[3] = {-2.0f, 0.5f, 3.0f};
    const char *floats[] = {"bf16", "f16", "f32", "f64"};
    float got[3];
    for (int i = 0; i < 4; i++) {
        memset(got, 0, sizeof got);
        assert_int_equal(clt_checkpoint_read_f32(ck, floats[i], got, 3), CLT_OK);
        assert_memory_equal(got, want_f, sizeof got);
    }
    assert_int_equal(clt_checkpoint_read_f32(ck, "i32", got, 3), CLT_OK);
    assert_true(got[0] == -2.0f && got[1] == 0.0f && got[2] == 3.0f);
    assert_int_equal(clt_checkpoint_read_f32(ck, "i64", got, 3), CLT_OK);
    assert_true(got[0] == -2.0f && got[2] == 1099511627776.0f);
    int64_t ints[3];
    assert_int_equal(clt_checkpoint_read_i64(ck, "i64", ints, 3), CLT_OK);
    assert_memory_equal(ints, i64, sizeof ints);
    assert_int_equal(clt_checkpoint_read_i64(ck, "i32", ints, 3), CLT_OK);
    assert_true(ints[0] == -2 && ints[1] == 0 && ints[2] == 3);
    assert_int_equal(clt_checkpoint_read_i64(ck, "u8", ints, 3), CLT_OK);
    assert_true(ints[0] == 255 && ints[1] == 0 && ints[2] == 3);
    assert_int_equal(log.len, 0);

    /* Failures: one line each, naming the tensor and the reason. */
    struct {
        enum clt_status st;
        const char *line;
    } cases[5];
    cases[0].st = clt_checkpoint_read_f32(ck, "u8", got, 3);
    cases[0].line = "tensor \"u8\" is U8; floats are read from";
    cases[1].st = clt_checkpoint_read_i64(ck, "f32", ints, 3);
    cases[1].line = "tensor \"f32\" is F32; integers are read from";
    cases[2].st = clt_checkpoint_read_i64(ck, "u64", ints, 3);
    cases[2].line = "tensor \"u64\" is U64 with a value above 2^63-1";
    cases[3].st = clt_checkpoint_read_f32(ck, "absent", got, 3);
    cases[3].line = "the checkpoint has no tensor \"absent\"";
    cases[4].st = clt_checkpoint_read_f32(ck, "f32", got, 2);
    cases[4].line = "tensor \"f32\" has 3 elements, not the 2 asked";
    const enum clt_status want_st[5] = {CLT_ERR_UNSUPPORTED, CLT_ERR_UNSUPPORTED,
                                        CLT_ERR_UNSUPPORTED, CLT_ERR_INVALID_ARGUMENT,
                                        CLT_ERR_INVALID_ARGUMENT};
    int lines = 0;
    for (const char *p = log.text; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    assert_int_equal(lines, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(cases[i].st, want_st[i]);
        if (!strstr(log.text, cases[i].line))
            fail_msg("the log lacks \"%s\":\n%s", cases[i].line, log.text);
    }
    assert_int_equal(clt_checkpoint_read_f32(NULL, "f32", got, 3), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_checkpoint_read_f32(ck, "f32", NULL, 3), CLT_ERR_INVALID_ARGUMENT);
    clt_checkpoint_close(ck);
    unlink(path);
    rmdir(dir);
    free(dir);
}

/* ---- Malformed buffers ---------------------------------------------------------------------- */

static void bad_lengths(void **state)
{
    (void)state;
    const char *ok = "{" T1 "}";
    size_t size;
    refused("empty", (const unsigned char *)"", 0, "shorter than");
    unsigned char *b = make(ok, strlen(ok), (int64_t)1 << 62, 8, &size);
    refused("huge header length", b, size, "limit");
    free(b);
    b = make(ok, strlen(ok), (int64_t)100 << 20, 8, &size);
    refused("header length at the limit", b, size, "limit");
    free(b);
    b = make(ok, strlen(ok), (int64_t)strlen(ok) + 9, 8, &size);
    refused("header past the end", b, size, "passes the end");
    free(b);
    b = make("{", 1, 1, 0, &size);
    refused("one-byte header", b, size, "too short");
    free(b);
    b = make(ok, strlen(ok), -1, 8, &size);
    refused("truncated header", b, 8 + strlen(ok) / 2, "passes the end");
    refused("truncated data", b, size - 3, "pass the end");
    free(b);
    b = make(ok, strlen(ok), -1, 12, &size);
    refused("trailing bytes", b, size, "follow the last");
    free(b);
    /* The same buffer parses when whole. */
    b = make(ok, strlen(ok), -1, 8, &size);
    struct clt__safetensors st = parsed(b, size);
    assert_int_equal(st.count, 1);
    clt__safetensors_free(&st);
    free(b);
}

static void bad_text(void **state)
{
    (void)state;
    refused_json("{\"t\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                 "UTF-8");
    refused_json("{\"t\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                 "UTF-8");
    refused_json("{\"t\xed\xa0\x80\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                 "UTF-8");
    refused_json("{\"t\xf4\x90\x80\x80\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,"
                 "8]}}",
                 8, "UTF-8");
    refused_json("{\"t\xe2\x82\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                 "UTF-8");
    refused_json("{\"t\x01\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                 "control");
    refused_json("{" T1 ",}", 8, "not valid JSON");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8,
                 "not valid JSON");
    refused_json("{\"t\" {}}", 8, "not valid JSON");
    refused_json("[1, 2]", 0, "'{'");
    refused_json(" {" T1 "}", 8, "'{'");
    refused_json("{" T1 "}\n", 8, "'}'");
    refused_json("{" T1 "}{}", 8, "more than one");
    char deep[4200];
    strcpy(deep, "{\"a\":");
    for (int i = 0; i < 2000; i++)
        strcat(deep, "[");
    for (int i = 0; i < 2000; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    refused_json(deep, 0, "not valid JSON");
    /* Valid UTF-8 of every length, and padding with spaces, are accepted. */
    const char *good = "{\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\":{\"dtype\":\"F32\",\"shape\":[2],"
                       "\"data_offsets\":[0,8]}}       ";
    size_t size;
    unsigned char *b = make(good, strlen(good), -1, 8, &size);
    struct clt__safetensors st = parsed(b, size);
    assert_string_equal(st.tensors[0].name, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    clt__safetensors_free(&st);
    free(b);
}

static void bad_entries(void **state)
{
    (void)state;
    refused_json("{\"t\":[1]}", 0, "not an object");
    refused_json("{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "no dtype");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "no shape");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "no data_offsets");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8,
                 "unknown field");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,"
                 "8]}}",
                 8, "twice");
    refused_json("{\"t\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                 "unknown dtype");
    refused_json("{\"t\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                 "unknown dtype");
    refused_json("{\"t\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "not a string");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8,
                 "not an array");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
                 "shape[0]");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8,
                 "shape[0]");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
                 "shape[0]");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8,
                 "shape[0]");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\""
                 ":[0,8]}}",
                 8, "overflows");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,"
                 "8]}}",
                 8, "dimensions");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "need 12");
    refused_json("{\"t\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "need 16");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
                 "pass the end");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "reversed");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8,
                 "array of two");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8,
                 "array of two");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8,
                 "not integers");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 8,
                 "not integers");
}

static void bad_layouts(void **state)
{
    (void)state;
    refused_json("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 12, "overlap");
    refused_json("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                 8, "overlap");
    refused_json("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                 8, "overlap");
    refused_json("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                 12, "bytes 4 to 8");
    refused_json("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                 "bytes 0 to 4");
    refused_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                 8, "appears twice");
    refused_json("{\"__metadata__\":\"x\"," T1 "}", 8, "not an object");
    refused_json("{\"__metadata__\":{\"k\":1}," T1 "}", 8, "not a string");
    refused_json("{\"__metadata__\":{\"k\":null}," T1 "}", 8, "not a string");
    refused_json("{\"__metadata__\":{\"k\":{}}," T1 "}", 8, "not a string");
    refused_json("{\"__metadata__\":{},\"__metadata__\":{}," T1 "}", 8, "twice");
    refused_json("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}," T1 "}", 8, "twice");

    /* Tensors out of name order in the file, empty tensors at shared offsets, a scalar and
     * other dtypes are fine. */
    const char *ok = "{\"z\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[8,8]},"
                     "\"d\":{\"dtype\":\"I32\",\"shape\":[0],\"data_offsets\":[8,8]},"
                     "\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[8,10]},"
                     "\"__metadata__\":{\"a\":\"b\"},"
                     "\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[10,16]}}";
    size_t size;
    unsigned char *b = make(ok, strlen(ok), -1, 16, &size);
    struct clt__safetensors st = parsed(b, size);
    assert_int_equal(st.count, 5);
    assert_string_equal(st.tensors[0].name, "d");
    assert_string_equal(st.tensors[4].name, "z");
    assert_int_equal(st.tensors[3].ndim, 0);
    assert_int_equal(st.tensors[3].dtype, CLT__ST_BF16);
    assert_ptr_equal(st.tensors[2].data, b + 8 + strlen(ok) + 10);
    assert_string_equal(clt__safetensors_meta(&st, "a"), "b");
    clt__safetensors_free(&st);
    free(b);
}

/* ---- The corpus of malformed files ---------------------------------------------------------- */

/* test/data/bad-safetensors, from CLTRAIN_TEST_DATA or next to this source file: __FILE__ is
 * relative to the build directory, where meson runs tests (or to its test/ subdirectory, when
 * the program is run by hand from there). NULL when none opens. */
static DIR *corpus_dir(char *out, size_t size)
{
    const char *env = getenv("CLTRAIN_TEST_DATA");
    const char *slash = strrchr(__FILE__, '/');
    int len = slash ? (int)(slash - __FILE__) : 1;
    const char *src = slash ? __FILE__ : ".";
    for (int k = 0; k < 3; k++) {
        if (k == 0 && !env)
            continue;
        if (k == 0)
            snprintf(out, size, "%s/bad-safetensors", env);
        else
            snprintf(out, size, "%s%.*s/data/bad-safetensors", k == 2 ? "../" : "", len, src);
        DIR *d = opendir(out);
        if (d || k == 0)
            return d;
    }
    return NULL;
}

static void corpus_is_refused(void **state)
{
    (void)state;
    char dir[1024], path[1400], readme[1100];
    DIR *d = corpus_dir(dir, sizeof dir);
    if (!d)
        fail_msg("cannot open the corpus %s: %s (set CLTRAIN_TEST_DATA)", dir, strerror(errno));
    snprintf(readme, sizeof readme, "%s/README.md", dir);
    FILE *f = fopen(readme, "r");
    assert_non_null(f);
    static char text[65536];
    size_t tn = fread(text, 1, sizeof text - 1, f);
    text[tn] = 0;
    fclose(f);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 12 || strcmp(e->d_name + n - 12, ".safetensors") != 0)
            continue;
        files++;
        /* Every file is listed in the README as `name`. */
        char quoted[300];
        snprintf(quoted, sizeof quoted, "`%s`", e->d_name);
        if (!strstr(text, quoted))
            fail_msg("%s is not described in %s", e->d_name, readme);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct clt_test_log log = {.len = 0};
        struct clt_log lg = {clt_test_log_fn, &log, CLT_LOG_DEBUG};
        unsigned char *buf = NULL;
        const unsigned char *bytes = NULL;
        size_t size = 0;
        assert_int_equal(clt__safetensors_read_file(path, &lg, &buf, &bytes, &size), CLT_OK);
        refused(e->d_name, bytes, size, NULL);
        free(buf);
        /* Through the public API the reason reaches the log with the path. */
        struct clt_checkpoint *ck = NULL;
        assert_int_equal(clt_checkpoint_open(path, &lg, &ck), CLT_ERR_FORMAT);
        assert_null(ck);
        assert_non_null(strstr(log.text, e->d_name));
    }
    closedir(d);
    assert_true(files >= 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_then_parse),
        cmocka_unit_test(write_then_read_file),
        cmocka_unit_test(writer_refuses_bad_entries),
        cmocka_unit_test(checkpoint_api_reads_any_file),
        cmocka_unit_test(checkpoint_reads_by_name_and_dtype),
        cmocka_unit_test(bad_lengths),
        cmocka_unit_test(bad_text),
        cmocka_unit_test(bad_entries),
        cmocka_unit_test(bad_layouts),
        cmocka_unit_test(corpus_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
