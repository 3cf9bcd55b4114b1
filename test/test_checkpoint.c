/*
 * test_checkpoint.c: trainer checkpoints through the public API (clt_trainer_save,
 * clt_trainer_load, clt_checkpoint_*).
 *
 * - An MLP and a small CNN with batch norm (state tensors) saved and loaded into a fresh
 *   trainer of the same graph: every parameter and state tensor equal bit for bit, and so are
 *   evaluated outputs; the file holds the tensor names and metadata documented.
 * - Resuming: K steps of Adam(W) with dropout, warmup and a cosine schedule, uninterrupted,
 *   against k steps, save, a new trainer (another seed) loaded with the optimizer, K - k more
 *   steps: the losses of steps k..K-1 and the final parameters are identical bit for bit (the
 *   same device). Also in the middle of a gradient accumulation.
 * - Loading a checkpoint of another shape, of another optimizer, a truncated or missing file
 *   fails with a message naming the problem and leaves the trainer's parameters unchanged.
 * - A flipped byte in the tensor data is found by the data checksum ("cltrain.data_crc32") on
 *   every read; a file without the checksum (an older checkpoint) still loads.
 * - Files written by the test: a foreign tensor or a missing parameter is refused by a strict
 *   load (clt_trainer_load, and --resume) with every name in the log, loaded by a non-strict
 *   clt_trainer_load_with with a report of what was loaded, missing and unused; BF16 and F16
 *   parameters are widened, I32 ones refused.
 * - Saving into a directory that cannot be written (/proc/self), that does not exist, or past
 *   a file-size limit fails with CLT_ERR_IO and leaves the previous checkpoint intact and no
 *   temporary file; saving over a checkpoint replaces it.
 *
 * Round trips, resuming and saves are in this file, which lists every test; failed and partial
 * loads and the checksum in test_checkpoint_loads.c; the models and files they share in
 * checkpoint_rig.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "checkpoint_rig.h"

/* ---- Round trips ---------------------------------------------------------------------------- */

static void mlp_round_trip(void **state)
{
    struct clt_device *dev = *state;
    char *dir = temp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/mlp.safetensors", dir);
    struct model m = make_mlp(HID, 0.0f);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    o.optimizer.lr = 0.01;
    o.seed = 1;
    struct clt_trainer *a = trainer(dev, &m, &o);
    train(a, &m, 0, 3, NULL);
    struct clt_meta meta[2] = {{"model", "mlp 7-13-4"}, {"note", "caf\xc3\xa9"}};
    assert_int_equal(clt_trainer_save(a, path, meta, 2), CLT_OK);

    o.seed = 2;
    struct clt_trainer *b = trainer(dev, &m, &o);
    assert_int_equal(clt_trainer_load(b, path, false), CLT_OK);
    assert_same_params(a, b);
    /* Without the optimizer the counters are not taken. */
    struct clt_trainer_stats s;
    assert_int_equal(clt_trainer_stats(b, &s), CLT_OK);
    assert_int_equal(s.steps, 0);

    /* The file, read without a trainer. */
    struct clt_checkpoint *ck = NULL;
    assert_int_equal(clt_checkpoint_open(path, NULL, &ck), CLT_OK);
    assert_string_equal(clt_checkpoint_meta(ck, "model"), "mlp 7-13-4");
    assert_string_equal(clt_checkpoint_meta(ck, "note"), "caf\xc3\xa9");
    assert_string_equal(clt_checkpoint_meta(ck, "cltrain.version"), clt_version());
    assert_string_equal(clt_checkpoint_meta(ck, "cltrain.steps"), "3");
    assert_string_equal(clt_checkpoint_meta(ck, "cltrain.updates"), "3");
    assert_string_equal(clt_checkpoint_meta(ck, "cltrain.seed"), "1");
    assert_string_equal(clt_checkpoint_meta(ck, "optimizer.kind"), "adam");
    assert_string_equal(clt_checkpoint_meta(ck, "optimizer.t"), "3");
    assert_string_equal(clt_checkpoint_meta(ck, "optimizer.skipped"), "0");
    assert_null(clt_checkpoint_meta(ck, "missing"));
    const char *want[12] = {"fc1.bias",
                            "fc1.weight",
                            "fc2.bias",
                            "fc2.weight",
                            "optimizer.m.fc1.bias",
                            "optimizer.m.fc1.weight",
                            "optimizer.m.fc2.bias",
                            "optimizer.m.fc2.weight",
                            "optimizer.v.fc1.bias",
                            "optimizer.v.fc1.weight",
                            "optimizer.v.fc2.bias",
                            "optimizer.v.fc2.weight"};
    assert_int_equal(clt_checkpoint_tensor_count(ck), 12);
    for (uint32_t i = 0; i < 12; i++) {
        const char *name;
        uint32_t ndim;
        int64_t shape[CLT_MAX_DIMS];
        const float *data;
        assert_int_equal(clt_checkpoint_tensor(ck, i, &name, &ndim, shape, &data), CLT_OK);
        assert_string_equal(name, want[i]);
        bool weight = strstr(name, "weight") != NULL;
        assert_int_equal(ndim, weight ? 2 : 1);
        if (strcmp(name, "fc1.weight") == 0) {
            assert_int_equal(shape[0], HID);
            assert_int_equal(shape[1], IN);
            float p[HID * IN];
            assert_int_equal(clt_trainer_param_read(a, name, p, HID * IN), CLT_OK);
            assert_memory_equal(data, p, sizeof p);
        }
    }
    assert_int_equal(clt_checkpoint_tensor(ck, 12, NULL, NULL, NULL, NULL),
                     CLT_ERR_INVALID_ARGUMENT);
    clt_checkpoint_close(ck);
    clt_checkpoint_close(NULL);

    clt_trainer_free(a);
    clt_trainer_free(b);
    clt_graph_free(m.g);
    remove_dir(dir);
}

static void cnn_round_trip(void **state)
{
    struct clt_device *dev = *state;
    char *dir = temp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/cnn.safetensors", dir);
    struct model m = make_cnn();
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.lr = 0.05;
    o.optimizer.momentum = 0.9;
    o.seed = 5;
    struct clt_trainer *a = trainer(dev, &m, &o);
    train(a, &m, 0, 3, NULL); /* moves the running averages off their initial values */
    assert_int_equal(clt_trainer_save(a, path, NULL, 0), CLT_OK);
    o.seed = 6;
    struct clt_trainer *b = trainer(dev, &m, &o);
    assert_int_equal(clt_trainer_load(b, path, true), CLT_OK);
    assert_same_params(a, b);
    float mean[3], init[3] = {0, 0, 0};
    assert_int_equal(clt_trainer_param_read(b, "bn.running_mean", mean, 3), CLT_OK);
    assert_memory_not_equal(mean, init, sizeof mean);

    /* Evaluation (batch norm on the running averages) agrees bit for bit. */
    float x[N * 2 * 6 * 6], out_a[N * 3], out_b[N * 3], la, lb;
    int32_t y[N];
    batch(&m, 50, x, y);
    const void *in[2] = {x, y};
    assert_int_equal(clt_trainer_eval(a, in, m.logits, out_a, N * 3, &la), CLT_OK);
    assert_int_equal(clt_trainer_eval(b, in, m.logits, out_b, N * 3, &lb), CLT_OK);
    assert_memory_equal(out_a, out_b, sizeof out_a);
    assert_memory_equal(&la, &lb, sizeof la);

    /* Parameters, state and SGD's momentum buffers; no second moments for SGD. */
    struct clt_checkpoint *ck = NULL;
    assert_int_equal(clt_checkpoint_open(path, NULL, &ck), CLT_OK);
    assert_int_equal(clt_checkpoint_tensor_count(ck), 8 + 6);
    assert_string_equal(clt_checkpoint_meta(ck, "optimizer.kind"), "sgd");
    for (uint32_t i = 0; i < clt_checkpoint_tensor_count(ck); i++) {
        const char *name;
        assert_int_equal(clt_checkpoint_tensor(ck, i, &name, NULL, NULL, NULL), CLT_OK);
        assert_null(strstr(name, "optimizer.v."));
        assert_null(strstr(name, "optimizer.m.bn.running"));
    }
    clt_checkpoint_close(ck);
    clt_trainer_free(a);
    clt_trainer_free(b);
    clt_graph_free(m.g);
    remove_dir(dir);
}

/* ---- Resuming ------------------------------------------------------------------------------- */

/* K steps uninterrupted against k, save, load into a new trainer, K - k more. */
static void resume_matches(struct clt_device *dev, uint32_t accumulate, int k, int K)
{
    char *dir = temp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/resume.safetensors", dir);
    struct model m = make_mlp(HID, 0.3f);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAMW);
    o.optimizer.lr = 0.02;
    o.optimizer.schedule = CLT_LR_COSINE;
    o.optimizer.warmup_updates = 2;
    o.optimizer.total_updates = 12;
    o.optimizer.min_lr = 0.001;
    o.optimizer.clip_norm = 0.5;
    o.optimizer.accumulate = accumulate;
    o.seed = 11;
    float whole[16], parts[16];
    assert_true(K <= 16);

    struct clt_trainer *a = trainer(dev, &m, &o);
    train(a, &m, 0, K, whole);

    struct clt_trainer *b = trainer(dev, &m, &o);
    train(b, &m, 0, k, parts);
    assert_int_equal(clt_trainer_save(b, path, NULL, 0), CLT_OK);
    clt_trainer_free(b);

    o.seed = 99; /* the checkpoint brings back the dropout stream's seed */
    struct clt_trainer *c = trainer(dev, &m, &o);
    assert_int_equal(clt_trainer_load(c, path, true), CLT_OK);
    train(c, &m, k, K, parts);
    assert_memory_equal(whole, parts, (size_t)K * sizeof *whole);
    assert_same_params(a, c);
    struct clt_trainer_stats sa, sc;
    assert_int_equal(clt_trainer_stats(a, &sa), CLT_OK);
    assert_int_equal(clt_trainer_stats(c, &sc), CLT_OK);
    assert_int_equal(sa.steps, sc.steps);
    assert_int_equal(sa.updates, sc.updates);
    assert_int_equal(sa.skipped, sc.skipped);
    assert_memory_equal(&sa.lr, &sc.lr, sizeof sa.lr);
    assert_memory_equal(&sa.grad_norm, &sc.grad_norm, sizeof sa.grad_norm);

    clt_trainer_free(a);
    clt_trainer_free(c);
    clt_graph_free(m.g);
    remove_dir(dir);
}

static void resume_is_exact(void **state)
{
    resume_matches(*state, 1, 3, 9);
}

static void resume_inside_accumulation_is_exact(void **state)
{
    struct clt_device *dev = *state;
    resume_matches(dev, 2, 3, 9);
    /* The file holds the gradients accumulated so far only when they matter. */
    char *dir = temp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/acc.safetensors", dir);
    struct model m = make_mlp(HID, 0.0f);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.accumulate = 2;
    struct clt_trainer *a = trainer(dev, &m, &o);
    train(a, &m, 0, 1, NULL);
    assert_int_equal(clt_trainer_save(a, path, NULL, 0), CLT_OK);
    struct clt_checkpoint *ck = NULL;
    assert_int_equal(clt_checkpoint_open(path, NULL, &ck), CLT_OK);
    assert_int_equal(clt_checkpoint_tensor_count(ck), 4 * 3);
    clt_checkpoint_close(ck);
    train(a, &m, 1, 2, NULL);
    assert_int_equal(clt_trainer_save(a, path, NULL, 0), CLT_OK);
    assert_int_equal(clt_checkpoint_open(path, NULL, &ck), CLT_OK);
    assert_int_equal(clt_checkpoint_tensor_count(ck), 4 * 2);
    clt_checkpoint_close(ck);
    clt_trainer_free(a);
    clt_graph_free(m.g);
    remove_dir(dir);
}

/* ---- Failed and repeated saves -------------------------------------------------------------- */

static void failed_saves_keep_the_old_file(void **state)
{
    struct clt_device *dev = *state;
    char *dir = temp_dir();
    char path[256], nodir[256];
    snprintf(path, sizeof path, "%s/keep.safetensors", dir);
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", dir);
    struct model m = make_mlp(HID, 0.0f);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    struct clt_trainer *tr = trainer(dev, &m, &o);
    train(tr, &m, 0, 1, NULL);
    assert_int_equal(clt_trainer_save(tr, path, NULL, 0), CLT_OK);
    size_t size0;
    unsigned char *before = file_bytes(path, &size0);
    train(tr, &m, 1, 2, NULL);

    struct clt_test_log text;
    struct clt_log old = capture(dev, &text);
    assert_int_equal(clt_trainer_save(tr, "/proc/self/x.safetensors", NULL, 0), CLT_ERR_IO);
    assert_logged(&text, "/proc/self/x.safetensors");
    assert_int_equal(clt_trainer_save(tr, nodir, NULL, 0), CLT_ERR_IO);
    assert_logged(&text, "No such file or directory");

    /* A write that runs into a file-size limit (as into a full disk) part way. */
    struct rlimit lim, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &lim), 0);
    small = lim;
    small.rlim_cur = 1000;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    enum clt_status st = clt_trainer_save(tr, path, NULL, 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(st, CLT_ERR_IO);
    assert_logged(&text, "File too large");
    assert_logged(&text, "the old file, if any, is unchanged");

    /* Keys the trainer writes itself are refused. */
    struct clt_meta own = {"cltrain.steps", "7"};
    assert_int_equal(clt_trainer_save(tr, path, &own, 1), CLT_ERR_INVALID_ARGUMENT);
    dev->log = old;

    size_t size1;
    unsigned char *after = file_bytes(path, &size1);
    assert_int_equal(size0, size1);
    assert_memory_equal(before, after, size0);
    int temps;
    assert_int_equal(dir_entries(dir, &temps), 1);
    assert_int_equal(temps, 0);
    free(before);
    free(after);
    clt_trainer_free(tr);
    clt_graph_free(m.g);
    remove_dir(dir);
}

static void save_replaces_the_old_file(void **state)
{
    struct clt_device *dev = *state;
    char *dir = temp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    struct model m = make_mlp(HID, 0.0f);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    struct clt_trainer *tr = trainer(dev, &m, &o);
    for (int s = 1; s <= 3; s++) {
        train(tr, &m, s - 1, s, NULL);
        assert_int_equal(clt_trainer_save(tr, path, NULL, 0), CLT_OK);
        struct clt_checkpoint *ck = NULL;
        assert_int_equal(clt_checkpoint_open(path, NULL, &ck), CLT_OK);
        char want[8];
        snprintf(want, sizeof want, "%d", s);
        assert_string_equal(clt_checkpoint_meta(ck, "cltrain.steps"), want);
        clt_checkpoint_close(ck);
        int temps;
        assert_int_equal(dir_entries(dir, &temps), 1);
        assert_int_equal(temps, 0);
    }
    /* What was saved last is what the trainer holds. */
    struct clt_trainer *b = trainer(dev, &m, &o);
    assert_int_equal(clt_trainer_load(b, path, true), CLT_OK);
    assert_same_params(tr, b);
    clt_trainer_free(b);
    clt_trainer_free(tr);
    clt_graph_free(m.g);
    remove_dir(dir);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(mlp_round_trip),
        CLT_DEVICE_TEST(cnn_round_trip),
        CLT_DEVICE_TEST(resume_is_exact),
        CLT_DEVICE_TEST(resume_inside_accumulation_is_exact),
        CLT_DEVICE_TEST(bad_loads_leave_the_trainer_unchanged),
        CLT_DEVICE_TEST(checksum_finds_a_flipped_byte),
        CLT_DEVICE_TEST(failed_saves_keep_the_old_file),
        CLT_DEVICE_TEST(save_replaces_the_old_file),
        CLT_DEVICE_TEST(partial_and_foreign_files),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
