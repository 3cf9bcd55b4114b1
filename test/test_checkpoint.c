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
 */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harness.h"
#include "safetensors.h"

enum { N = 5, IN = 7, HID = 13, CLS = 4 };

struct model {
    struct clt_graph *g;
    struct clt_tensor *logits, *loss;
    size_t x_count; /* floats of one batch's x */
    int classes;
};

/* x [N, IN] -> fc1 (hidden) -> relu -> dropout p -> fc2 (CLS) -> cross-entropy. */
static struct model make_mlp(int64_t hidden, float p)
{
    struct model m = {.x_count = N * IN, .classes = CLS};
    assert_int_equal(clt_graph_create(&m.g), CLT_OK);
    struct clt_tensor *x = clt_input(m.g, "x", CLT_F32, 2, (int64_t[]){N, IN});
    struct clt_tensor *y = clt_input(m.g, "y", CLT_I32, 1, (int64_t[]){N});
    struct clt_tensor *h = clt_relu(m.g, clt_linear(m.g, x, hidden, true, "fc1"));
    if (p > 0)
        h = clt_dropout(m.g, h, p);
    m.logits = clt_linear(m.g, h, CLS, true, "fc2");
    m.loss = clt_cross_entropy(m.g, m.logits, y, -1, 0.0f);
    assert_int_equal(clt_graph_status(m.g), CLT_OK);
    return m;
}

/* x [N, 2, 6, 6] -> conv 3x3 pad 1 (3) -> batch norm -> relu -> max pool 2 -> flatten ->
 * linear (3) -> cross-entropy. */
static struct model make_cnn(void)
{
    struct model m = {.x_count = N * 2 * 6 * 6, .classes = 3};
    assert_int_equal(clt_graph_create(&m.g), CLT_OK);
    struct clt_tensor *x = clt_input(m.g, "x", CLT_F32, 4, (int64_t[]){N, 2, 6, 6});
    struct clt_tensor *y = clt_input(m.g, "y", CLT_I32, 1, (int64_t[]){N});
    struct clt_conv2d_desc conv = {.out_channels = 3,
                                   .kernel_h = 3,
                                   .kernel_w = 3,
                                   .padding_h = 1,
                                   .padding_w = 1,
                                   .bias = true};
    struct clt_tensor *h = clt_conv2d(m.g, x, &conv, "conv");
    h = clt_relu(m.g, clt_batch_norm(m.g, h, 1e-5f, 0.1f, "bn"));
    h = clt_flatten(m.g, clt_max_pool2d(m.g, h, 2, 0, 0));
    m.logits = clt_linear(m.g, h, 3, true, "fc");
    m.loss = clt_cross_entropy(m.g, m.logits, y, -1, 0.0f);
    assert_int_equal(clt_graph_status(m.g), CLT_OK);
    return m;
}

static struct clt_trainer *trainer(struct clt_device *dev, const struct model *m,
                                   const struct clt_trainer_options *o)
{
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, m->g, m->loss, o, &tr), CLT_OK);
    return tr;
}

/* The batch of step s: x uniform in [-1, 1), labels from s. */
static void batch(const struct model *m, int s, float *x, int32_t *y)
{
    clt_test_fill(x, m->x_count, 1000 + (uint64_t)s, -1.0f, 1.0f);
    for (int i = 0; i < N; i++)
        y[i] = (s * 7 + i * 3) % m->classes;
}

/* Steps s0 .. s1-1; the loss of each into losses[s] when given. */
static void train(struct clt_trainer *tr, const struct model *m, int s0, int s1, float *losses)
{
    float *x = malloc(m->x_count * sizeof *x);
    int32_t y[N];
    assert_non_null(x);
    for (int s = s0; s < s1; s++) {
        batch(m, s, x, y);
        const void *in[2] = {x, y};
        assert_int_equal(clt_trainer_step(tr, in), CLT_OK);
        if (losses)
            assert_int_equal(clt_trainer_loss(tr, &losses[s]), CLT_OK);
    }
    free(x);
}

/* Every parameter and state tensor, concatenated in index order (malloc'd). */
static float *all_params(struct clt_trainer *tr, size_t *count)
{
    size_t total = 0;
    uint32_t n = clt_trainer_param_count(tr);
    float *all = NULL;
    for (uint32_t i = 0; i < n; i++) {
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(tr, i, &info), CLT_OK);
        uint64_t c = 1;
        for (uint32_t d = 0; d < info.ndim; d++)
            c *= (uint64_t)info.shape[d];
        all = realloc(all, (total + c) * sizeof *all);
        assert_non_null(all);
        assert_int_equal(clt_trainer_param_read(tr, info.name, all + total, c), CLT_OK);
        total += c;
    }
    *count = total;
    return all;
}

static void assert_same_params(struct clt_trainer *a, struct clt_trainer *b)
{
    size_t na, nb;
    float *pa = all_params(a, &na), *pb = all_params(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na * sizeof *pa);
    free(pa);
    free(pb);
}

static char *temp_dir(void)
{
    char *dir = strdup("/tmp/cltrain-checkpoint-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

/* Removes dir and the files in it. */
static void remove_dir(char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
    free(dir);
}

/* Entries of dir other than . and .., and how many look like temporary files. */
static int dir_entries(const char *dir, int *temps)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    *temps = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        *temps += strstr(e->d_name, ".tmp.") != NULL;
    }
    closedir(d);
    return n;
}

static unsigned char *file_bytes(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return b;
}

/* Captures the device's log into *text until restored. */
static struct clt_log capture(struct clt_device *dev, struct clt_test_log *text)
{
    struct clt_log old = dev->log;
    text->len = 0;
    text->text[0] = 0;
    dev->log = (struct clt_log){clt_test_log_fn, text, CLT_LOG_DEBUG};
    return old;
}

static void assert_logged(const struct clt_test_log *text, const char *what)
{
    if (!strstr(text->text, what))
        fail_msg("the log does not say \"%s\":\n%s", what, text->text);
}

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

static void bad_loads_leave_the_trainer_unchanged(void **state)
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

static void partial_and_foreign_files(void **state)
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

static void checksum_finds_a_flipped_byte(void **state)
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
