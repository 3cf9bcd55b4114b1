/*
 * test_checkpoint_loads.c: checkpoint loads that fail or are partial: another shape or optimizer,
 * a truncated or missing file, foreign tensors and missing parameters (strict and
 * non-strict loads, widened 16-bit parameters), and the data checksum finding a flipped
 * byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_rig.h"
#include "safetensors.h"

/* ---- Failed loads -----------------------------------------------------------------------------
 */

/* Loads path into tr expecting `status`, a log line mentioning each of what[], and no change
 * to the parameters. */
static void load_fails(struct clt_device *dev, struct clt_trainer *tr, const char *path,
                       bool optimizer, enum clt_status status, const char *const *what,
                       size_t nwhat)
{
    struct clt_test_log text;
    size_t n0, n1;
    float *before = all_params(tr, &n0);
    struct clt_trainer_stats s0, s1;
    assert_int_equal(clt_trainer_stats(tr, &s0), CLT_OK);
    struct clt_log old = capture(dev, &text);
    enum clt_status st = clt_trainer_load(tr, path, optimizer);
    dev->log = old;
    assert_int_equal(st, status);
    for (size_t i = 0; i < nwhat; i++)
        assert_logged(&text, what[i]);
    float *after = all_params(tr, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0 * sizeof *before);
    assert_int_equal(clt_trainer_stats(tr, &s1), CLT_OK);
    assert_int_equal(s0.steps, s1.steps);
    assert_int_equal(s0.updates, s1.updates);
    free(before);
    free(after);
}

void bad_loads_leave_the_trainer_unchanged(void **state)
{
    struct clt_device *dev = *state;
    char *dir = temp_dir();
    char path[256], cut[256], missing[256];
    snprintf(path, sizeof path, "%s/h16.safetensors", dir);
    snprintf(cut, sizeof cut, "%s/cut.safetensors", dir);
    snprintf(missing, sizeof missing, "%s/missing.safetensors", dir);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    struct model big = make_mlp(16, 0.0f);
    struct clt_trainer *a = trainer(dev, &big, &o);
    train(a, &big, 0, 2, NULL);
    assert_int_equal(clt_trainer_save(a, path, NULL, 0), CLT_OK);

    /* Another hidden size: the first mismatch is named with both shapes. */
    struct model small = make_mlp(12, 0.0f);
    struct clt_trainer *b = trainer(dev, &small, &o);
    train(b, &small, 0, 1, NULL);
    const char *shape[] = {"has fc1.weight F32 [16, 7]", "the model wants F32 [12, 7]"};
    load_fails(dev, b, path, false, CLT_ERR_FORMAT, shape, 2);
    load_fails(dev, b, path, true, CLT_ERR_FORMAT, shape, 2);

    /* Another optimizer: its moments are refused, the parameters alone load. */
    struct clt_trainer_options sgd;
    clt_trainer_options_init(&sgd, CLT_OPTIM_SGD);
    struct clt_trainer *c = trainer(dev, &big, &sgd);
    const char *kind[] = {"optimizer adam", "the trainer's is sgd"};
    load_fails(dev, c, path, true, CLT_ERR_FORMAT, kind, 2);
    assert_int_equal(clt_trainer_load(c, path, false), CLT_OK);
    assert_same_params(a, c);

    /* A model with a layer the file lacks. */
    struct model other;
    assert_int_equal(clt_graph_create(&other.g), CLT_OK);
    struct clt_tensor *x = clt_input(other.g, "x", CLT_F32, 2, (int64_t[]){N, IN});
    struct clt_tensor *y = clt_input(other.g, "y", CLT_I32, 1, (int64_t[]){N});
    struct clt_tensor *h = clt_relu(other.g, clt_linear(other.g, x, 16, true, "fc1"));
    other.loss = clt_cross_entropy(other.g, clt_linear(other.g, h, CLS, true, "head"), y, -1, 0.0f);
    assert_int_equal(clt_graph_status(other.g), CLT_OK);
    struct clt_trainer *d = trainer(dev, &other, &o);
    const char *absent[] = {"has no tensor \"head.weight\"", "holds tensor \"fc2.bias\"",
                            "does not match the model"};
    load_fails(dev, d, path, false, CLT_ERR_FORMAT, absent, 3);

    /* A truncated file and a missing one. */
    size_t size;
    unsigned char *bytes = file_bytes(path, &size);
    FILE *f = fopen(cut, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, size - 5, f), size - 5);
    fclose(f);
    free(bytes);
    const char *trunc[] = {"cut.safetensors", "not a valid safetensors file"};
    load_fails(dev, a, cut, true, CLT_ERR_FORMAT, trunc, 2);
    const char *none[] = {"missing.safetensors", "No such file"};
    load_fails(dev, a, missing, true, CLT_ERR_IO, none, 2);
    struct clt_checkpoint *ck = NULL;
    struct clt_test_log text = {.len = 0};
    struct clt_log quiet = {clt_test_log_fn, &text, CLT_LOG_DEBUG};
    assert_int_equal(clt_checkpoint_open(cut, &quiet, &ck), CLT_ERR_FORMAT);
    assert_int_equal(clt_checkpoint_open(missing, &quiet, &ck), CLT_ERR_IO);
    assert_null(ck);

    clt_trainer_free(a);
    clt_trainer_free(b);
    clt_trainer_free(c);
    clt_trainer_free(d);
    clt_graph_free(big.g);
    clt_graph_free(small.g);
    clt_graph_free(other.g);
    remove_dir(dir);
}

/* The tensors of the MLP of hidden size 16 from trainer tr, as F32 entries, plus `extra`
 * entries; `skip` (or NULL) left out. Returns the number of entries; data is malloc'd. */
static size_t mlp_entries(struct clt_trainer *tr, const char *skip, struct clt__st_entry *e,
                          float **data, int64_t (*shapes)[2])
{
    static const char *const names[] = {"fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"};
    const int64_t sizes[4][2] = {{16, 0}, {16, IN}, {CLS, 0}, {CLS, 16}};
    size_t k = 0;
    for (int i = 0; i < 4; i++) {
        if (skip && strcmp(skip, names[i]) == 0)
            continue;
        const uint32_t ndim = sizes[i][1] ? 2 : 1;
        const uint64_t count = (uint64_t)sizes[i][0] * (uint64_t)(ndim == 2 ? sizes[i][1] : 1);
        data[k] = malloc(count * sizeof(float));
        assert_non_null(data[k]);
        assert_int_equal(clt_trainer_param_read(tr, names[i], data[k], count), CLT_OK);
        for (uint64_t j = 0; j < count; j++)
            data[k][j] += 0.5f; /* differs from the trainer's */
        shapes[k][0] = sizes[i][0];
        shapes[k][1] = sizes[i][1];
        e[k] = (struct clt__st_entry){names[i], CLT__ST_F32, ndim, shapes[k], data[k]};
        k++;
    }
    return k;
}

void partial_and_foreign_files(void **state)
{
    struct clt_device *dev = *state;
    char *dir = temp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/foreign.safetensors", dir);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAMW);
    struct model m = make_mlp(16, 0.0f);
    struct clt_trainer *tr = trainer(dev, &m, &o);
    struct clt__st_entry e[6];
    float *data[6];
    int64_t shapes[6][2];
    struct clt_test_log text;
    struct clt_load_report r;

    /* All four parameters and a foreign tensor. */
    size_t n = mlp_entries(tr, NULL, e, data, shapes);
    float extra[3] = {1, 2, 3};
    int64_t three[1] = {3};
    e[n++] = (struct clt__st_entry){"extra.weight", CLT__ST_F32, 1, three, extra};
    assert_int_equal(clt__safetensors_write(path, e, n, NULL, 0, NULL), CLT_OK);
    const char *foreign[] = {"holds tensor \"extra.weight\"", "1 tensors of the file unused"};
    load_fails(dev, tr, path, false, CLT_ERR_FORMAT, foreign, 2);
    struct clt_load_options lo = {.optimizer = false, .strict = true};
    struct clt_log old = capture(dev, &text);
    assert_int_equal(clt_trainer_load_with(tr, path, &lo, &r), CLT_ERR_FORMAT);
    assert_true(r.loaded == 4 && r.missing == 0 && r.unused == 1);
    lo.strict = false;
    assert_int_equal(clt_trainer_load_with(tr, path, &lo, &r), CLT_OK);
    dev->log = old;
    assert_true(r.loaded == 4 && r.missing == 0 && r.unused == 1);
    assert_logged(&text, "holds tensor \"extra.weight\", which the model does not use");
    float got[16 * IN];
    assert_int_equal(clt_trainer_param_read(tr, "fc1.weight", got, 16 * IN), CLT_OK);
    assert_memory_equal(got, data[1], sizeof got);
    for (size_t i = 0; i < 4; i++)
        free(data[i]);

    /* A parameter missing: strict refuses, otherwise it keeps its value; the optimizer's
     * state cannot be resumed from such a file. */
    float bias_before[CLS], bias_after[CLS];
    assert_int_equal(clt_trainer_param_read(tr, "fc2.bias", bias_before, CLS), CLT_OK);
    n = mlp_entries(tr, "fc2.bias", e, data, shapes);
    assert_int_equal(clt__safetensors_write(path, e, n, NULL, 0, NULL), CLT_OK);
    const char *absent[] = {"has no tensor \"fc2.bias\", a parameter of the model",
                            "1 of its tensors missing"};
    load_fails(dev, tr, path, false, CLT_ERR_FORMAT, absent, 2);
    const char *resume[] = {"the optimizer's state cannot be resumed"};
    old = capture(dev, &text);
    lo = (struct clt_load_options){.optimizer = true, .strict = false};
    assert_int_equal(clt_trainer_load_with(tr, path, &lo, &r), CLT_ERR_FORMAT);
    assert_logged(&text, resume[0]);
    lo.optimizer = false;
    assert_int_equal(clt_trainer_load_with(tr, path, &lo, &r), CLT_OK);
    dev->log = old;
    assert_true(r.loaded == 3 && r.missing == 1 && r.unused == 0);
    assert_logged(&text, "(it keeps its value)");
    assert_int_equal(clt_trainer_param_read(tr, "fc2.bias", bias_after, CLS), CLT_OK);
    assert_memory_equal(bias_before, bias_after, sizeof bias_after);
    assert_int_equal(clt_trainer_param_read(tr, "fc1.weight", got, 16 * IN), CLT_OK);
    assert_memory_equal(got, data[1], sizeof got);

    /* fc1.bias as BF16 and F16 (values exact in both): widened. As I32: refused. */
    uint16_t b16[16], h16[16];
    int32_t i32[16];
    float want[16];
    for (int i = 0; i < 16; i++) {
        want[i] = (float)(i - 8) * 0.25f; /* -2 .. 1.75 */
        uint32_t u;
        memcpy(&u, &want[i], 4);
        b16[i] = (uint16_t)(u >> 16);
        i32[i] = i;
    }
    /* The same values as IEEE halves: sign, exponent - 15 + 127 rebased, 10 mantissa bits. */
    for (int i = 0; i < 16; i++) {
        uint32_t u;
        memcpy(&u, &want[i], 4);
        const uint32_t exp = (u >> 23) & 0xff;
        h16[i] = (uint16_t)((u >> 16 & 0x8000) | (exp ? (exp - 112) << 10 | (u >> 13 & 0x3ff) : 0));
    }
    const enum clt__st_dtype dtypes[3] = {CLT__ST_BF16, CLT__ST_F16, CLT__ST_I32};
    const void *bias_data[3] = {b16, h16, i32};
    for (int k = 0; k < 3; k++) {
        e[0].dtype = dtypes[k]; /* e[0] is fc1.bias */
        e[0].data = bias_data[k];
        assert_int_equal(clt__safetensors_write(path, e, n, NULL, 0, NULL), CLT_OK);
        old = capture(dev, &text);
        enum clt_status st = clt_trainer_load_with(tr, path, &lo, &r);
        dev->log = old;
        if (k < 2) {
            assert_int_equal(st, CLT_OK);
            assert_int_equal(clt_trainer_param_read(tr, "fc1.bias", got, 16), CLT_OK);
            assert_memory_equal(got, want, sizeof want);
        } else {
            assert_int_equal(st, CLT_ERR_FORMAT);
            assert_logged(&text, "has fc1.bias I32 [16], the model wants F32 [16]");
        }
    }
    for (size_t i = 0; i < n; i++)
        free(data[i]);

    /* The trainer's own checkpoint, optimizer state included, loads strictly without the
     * optimizer: its moments are the model's, not foreign. */
    assert_int_equal(clt_trainer_save(tr, path, NULL, 0), CLT_OK);
    lo = (struct clt_load_options){.optimizer = false, .strict = true};
    assert_int_equal(clt_trainer_load_with(tr, path, &lo, &r), CLT_OK);
    assert_true(r.loaded == 4 && r.missing == 0 && r.unused == 0);
    assert_int_equal(clt_trainer_load_with(tr, path, NULL, NULL), CLT_OK);
    assert_int_equal(clt_trainer_load_with(NULL, path, NULL, &r), CLT_ERR_INVALID_ARGUMENT);
    clt_trainer_free(tr);
    clt_graph_free(m.g);
    remove_dir(dir);
}

/* Writes bytes to path. */
static void put_file(const char *path, const unsigned char *bytes, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

void checksum_finds_a_flipped_byte(void **state)
{
    struct clt_device *dev = *state;
    char *dir = temp_dir();
    char path[256], flipped[256], old[256];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    snprintf(flipped, sizeof flipped, "%s/flipped.safetensors", dir);
    snprintf(old, sizeof old, "%s/old.safetensors", dir);
    struct model m = make_mlp(HID, 0.0f);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAMW);
    struct clt_trainer *a = trainer(dev, &m, &o);
    train(a, &m, 0, 2, NULL);
    assert_int_equal(clt_trainer_save(a, path, NULL, 0), CLT_OK);
    struct clt_checkpoint *ck = NULL;
    assert_int_equal(clt_checkpoint_open(path, NULL, &ck), CLT_OK);
    const char *crc = clt_checkpoint_meta(ck, "cltrain.data_crc32");
    assert_non_null(crc);
    assert_int_equal(strlen(crc), 8);
    clt_checkpoint_close(ck);

    /* One bit of one weight in the middle of the data section (an odd offset into it). */
    size_t size;
    unsigned char *bytes = file_bytes(path, &size);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)bytes[i] << (8 * i);
    size_t at = (size_t)(8 + n + (size - 8 - n) / 2 + 1);
    bytes[at] ^= 0x10;
    put_file(flipped, bytes, size);
    struct clt_trainer *b = trainer(dev, &m, &o);
    const char *corrupt[] = {"flipped.safetensors is corrupt", "CRC-32"};
    load_fails(dev, b, flipped, true, CLT_ERR_FORMAT, corrupt, 2);
    load_fails(dev, b, flipped, false, CLT_ERR_FORMAT, corrupt, 2);
    struct clt_test_log text = {.len = 0};
    struct clt_log quiet = {clt_test_log_fn, &text, CLT_LOG_DEBUG};
    assert_int_equal(clt_checkpoint_open(flipped, &quiet, &ck), CLT_ERR_FORMAT);
    assert_logged(&text, "is corrupt");

    /* Without the key (renamed in place, same length) the file is read unchecked, flipped
     * byte and all, and the intact one loads exactly. */
    bytes[at] ^= 0x10;
    size_t k = 8;
    while (k + 18 <= 8 + n && memcmp(bytes + k, "cltrain.data_crc32", 18) != 0)
        k++;
    assert_true(k + 18 <= 8 + n);
    bytes[k + 17] = 'X';
    put_file(old, bytes, size);
    assert_int_equal(clt_trainer_load(b, old, true), CLT_OK);
    assert_same_params(a, b);
    assert_int_equal(clt_checkpoint_open(old, NULL, &ck), CLT_OK);
    assert_null(clt_checkpoint_meta(ck, "cltrain.data_crc32"));
    clt_checkpoint_close(ck);

    free(bytes);
    clt_trainer_free(a);
    clt_trainer_free(b);
    clt_graph_free(m.g);
    remove_dir(dir);
}
