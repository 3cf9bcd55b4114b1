/*
 * test_trainer.c: the graph, autodiff, memory plan and trainer through the public API.
 *
 * - One SGD step of a small MLP matches a C reference step in double (parameters after the
 *   update within 2e-5 + 1e-4 relative).
 * - Gradients of whole networks (a parameter used twice, a tied embedding and output layer,
 *   linear, layer norm and convolution layers used twice through their _ex forms included)
 *   match central differences of the evaluated loss: the gradient is read as p_before -
 *   p_after of one SGD step with lr 1 (tolerance 2e-3 + 2e-2 relative, float forward passes
 *   with eps 1e-2).
 * - An MLP learns a synthetic task to a stated loss; accumulation over two micro-batches
 *   equals one step on the joined batch; a non-finite step is skipped and counted, or stops
 *   training when asked; the memory plan shares storage and recomputation saves more; a model
 *   too large for the device fails at creation; bad graphs and wrong tying are refused with
 *   a message; bad optimizer options are refused at creation, naming the field; parameter
 *   groups select by kind and name (exact: a zero gradient's AdamW update is a
 *   multiplication).
 * - Recorded steps (engine/record.c) give bit-identical losses, evaluation outputs and
 *   parameters to unrecorded ones (CLTRAIN_RECORD=0) over several steps of a network with
 *   dropout (a step-dependent seed), an LR schedule (a step-dependent rate), batch norm,
 *   layer norm and a convolution, with and without gradient accumulation; each kind of step
 *   is recorded once and replayed afterwards.
 *
 * This file holds the reference step, learning, accumulation, non-finite steps and recorded
 * steps, and lists every test; whole-network gradients and tying are in test_trainer_grad.c,
 * the memory plan and refusals in test_trainer_limits.c, the shared MLP in trainer_rig.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer_rig.h"
#include "trainer.h"

/* The reference MLP step in double: forward, cross-entropy, backward, SGD update. */
static void ref_mlp_sgd_step(int n, int in, int hid, int cls, const float *x, const int32_t *y,
                             double *w1, double *b1, double *w2, double *b2, double lr)
{
    double *h = calloc((size_t)n * hid, sizeof *h), *z = calloc((size_t)n * hid, sizeof *z);
    double *dh = calloc((size_t)n * hid, sizeof *dh), *dl = calloc((size_t)n * cls, sizeof *dl);
    double *gw1 = calloc((size_t)hid * in, sizeof *gw1), *gb1 = calloc(hid, sizeof *gb1);
    double *gw2 = calloc((size_t)cls * hid, sizeof *gw2), *gb2 = calloc(cls, sizeof *gb2);
    for (int r = 0; r < n; r++) {
        for (int j = 0; j < hid; j++) {
            double s = b1[j];
            for (int i = 0; i < in; i++)
                s += x[r * in + i] * w1[j * in + i];
            z[r * hid + j] = s;
            h[r * hid + j] = s > 0 ? s : 0;
        }
        double lg[64], mx = -INFINITY, se = 0;
        for (int c = 0; c < cls; c++) {
            double s = b2[c];
            for (int j = 0; j < hid; j++)
                s += h[r * hid + j] * w2[c * hid + j];
            lg[c] = s;
            mx = s > mx ? s : mx;
        }
        for (int c = 0; c < cls; c++)
            se += exp(lg[c] - mx);
        for (int c = 0; c < cls; c++)
            dl[r * cls + c] = (exp(lg[c] - mx) / se - (c == y[r])) / n;
    }
    for (int r = 0; r < n; r++)
        for (int c = 0; c < cls; c++) {
            gb2[c] += dl[r * cls + c];
            for (int j = 0; j < hid; j++) {
                gw2[c * hid + j] += dl[r * cls + c] * h[r * hid + j];
                dh[r * hid + j] += dl[r * cls + c] * w2[c * hid + j];
            }
        }
    for (int r = 0; r < n; r++)
        for (int j = 0; j < hid; j++) {
            double d = z[r * hid + j] > 0 ? dh[r * hid + j] : 0;
            gb1[j] += d;
            for (int i = 0; i < in; i++)
                gw1[j * in + i] += d * x[r * in + i];
        }
    for (int i = 0; i < hid * in; i++)
        w1[i] -= lr * gw1[i];
    for (int i = 0; i < hid; i++)
        b1[i] -= lr * gb1[i];
    for (int i = 0; i < cls * hid; i++)
        w2[i] -= lr * gw2[i];
    for (int i = 0; i < cls; i++)
        b2[i] -= lr * gb2[i];
    free(h);
    free(z);
    free(dh);
    free(dl);
    free(gw1);
    free(gb1);
    free(gw2);
    free(gb2);
}

static double *to_double(const float *f, size_t n)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = f[i];
    return d;
}

static void one_step_matches_reference(void **state)
{
    struct clt_device *dev = *state;
    enum { N = 5, IN = 7, HID = 9, CLS = 4 };
    struct mlp m = make_mlp(N, IN, HID, CLS);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.lr = 0.5;
    o.seed = 3;
    struct clt_trainer *tr = make_trainer(dev, &m, &o);
    float x[N * IN];
    int32_t y[N] = {0, 3, 1, 2, 3};
    clt_test_fill(x, N * IN, 5, -1.0f, 1.0f);
    const char *names[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    uint64_t sizes[4] = {HID * IN, HID, CLS * HID, CLS};
    double *ref[4];
    for (int i = 0; i < 4; i++) {
        float *p = read_param(tr, names[i], sizes[i]);
        ref[i] = to_double(p, sizes[i]);
        free(p);
    }
    const void *batch[2] = {x, y};
    assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    ref_mlp_sgd_step(N, IN, HID, CLS, x, y, ref[0], ref[1], ref[2], ref[3], 0.5);
    for (int i = 0; i < 4; i++) {
        float *p = read_param(tr, names[i], sizes[i]);
        clt_test_assert_close(names[i], p, ref[i], sizes[i], 2e-5, 1e-4);
        free(p);
        free(ref[i]);
    }
    struct clt_trainer_stats s;
    assert_int_equal(clt_trainer_stats(tr, &s), CLT_OK);
    assert_int_equal(s.steps, 1);
    assert_int_equal(s.updates, 1);
    assert_int_equal(s.skipped, 0);
    clt_trainer_free(tr);
    clt_graph_free(m.g);
}

/* ---- Learning, accumulation, non-finite steps -------------------------------------------- */

static void mlp_learns(void **state)
{
    struct clt_device *dev = *state;
    enum { N = 32, IN = 6, HID = 24, CLS = 3 };
    int steps = clt_test_small() ? 60 : 200;
    struct mlp m = make_mlp(N, IN, HID, CLS);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    o.optimizer.lr = 0.01;
    o.seed = 1;
    struct clt_trainer *tr = make_trainer(dev, &m, &o);
    float x[N * IN], first = 0, last = 0;
    int32_t y[N];
    for (int s = 0; s < steps; s++) {
        make_batch(x, y, N, IN, 100 + (uint64_t)s);
        const void *batch[2] = {x, y};
        assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
        if (s == 0)
            assert_int_equal(clt_trainer_loss(tr, &first), CLT_OK);
    }
    assert_int_equal(clt_trainer_loss(tr, &last), CLT_OK);
    /* Chance is ln 3 = 1.10; the task is easy for this network. */
    float held;
    make_batch(x, y, N, IN, 99999);
    const void *batch[2] = {x, y};
    assert_int_equal(clt_trainer_eval(tr, batch, NULL, NULL, 0, &held), CLT_OK);
    if (!(first > 0.9f && held < (clt_test_small() ? 0.8f : 0.4f)))
        fail_msg("loss %.4f at the first step, %.4f held out after %d steps", first, held, steps);
    clt_trainer_free(tr);
    clt_graph_free(m.g);
}

/* 8x8 images holding one horizontal (label 0), vertical (1) or diagonal (2) line of ones at
 * a random place, over noise in [-0.3, 0.3). */
static void make_images(float *x, int32_t *y, int n, uint64_t seed)
{
    clt_test_fill(x, (size_t)n * 64, seed, -0.3f, 0.3f);
    float pick[2];
    for (int r = 0; r < n; r++) {
        clt_test_fill(pick, 2, seed * 1000 + (uint64_t)r, 0.0f, 1.0f);
        int label = (int)(pick[0] * 3.0f) % 3, at = (int)(pick[1] * 8.0f) % 8;
        y[r] = label;
        for (int i = 0; i < 8; i++) {
            int row = label == 0 ? at : i, col = label == 1 ? at : i;
            x[r * 64 + row * 8 + col] = 1.0f;
        }
    }
}

static void cnn_learns(void **state)
{
    struct clt_device *dev = *state;
    enum { N = 16 };
    int steps = clt_test_small() ? 40 : 120;
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 4, (int64_t[]){N, 1, 8, 8});
    struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){N});
    struct clt_conv2d_desc conv = {
        .out_channels = 6, .kernel_h = 3, .kernel_w = 3, .padding_h = 1, .padding_w = 1};
    struct clt_tensor *h = clt_conv2d(g, x, &conv, "conv");
    h = clt_max_pool2d(g, clt_relu(g, clt_batch_norm(g, h, 1e-5f, 0.1f, "bn")), 2, 0, 0);
    struct clt_tensor *loss =
        clt_cross_entropy(g, clt_linear(g, clt_flatten(g, h), 3, true, "fc"), y, -1, 0.0f);
    assert_int_equal(clt_graph_status(g), CLT_OK);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    o.optimizer.lr = 0.01;
    o.seed = 2;
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &tr), CLT_OK);
    float xv[N * 64], first = 0, held = 0;
    int32_t yv[N];
    const void *batch[2] = {xv, yv};
    for (int s = 0; s < steps; s++) {
        make_images(xv, yv, N, 500 + (uint64_t)s);
        assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
        if (s == 0)
            assert_int_equal(clt_trainer_loss(tr, &first), CLT_OK);
    }
    make_images(xv, yv, N, 99);
    assert_int_equal(clt_trainer_eval(tr, batch, NULL, NULL, 0, &held), CLT_OK);
    /* Chance is ln 3 = 1.10. */
    if (!(first > 0.8f && held < (clt_test_small() ? 0.7f : 0.3f)))
        fail_msg("CNN loss %.4f at the first step, %.4f held out after %d steps", first, held,
                 steps);
    clt_trainer_free(tr);
    clt_graph_free(g);
}

static void accumulation_equals_a_joined_batch(void **state)
{
    struct clt_device *dev = *state;
    enum { N = 6, IN = 4, HID = 5, CLS = 3 };
    float x[N * IN];
    int32_t y[N];
    make_batch(x, y, N, IN, 7);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.lr = 0.3;
    o.optimizer.momentum = 0.9;
    o.seed = 5;
    struct mlp whole = make_mlp(N, IN, HID, CLS);
    struct clt_trainer *a = make_trainer(dev, &whole, &o);
    const void *batch[2] = {x, y};
    assert_int_equal(clt_trainer_step(a, batch), CLT_OK);
    o.optimizer.accumulate = 2;
    struct mlp half = make_mlp(N / 2, IN, HID, CLS);
    struct clt_trainer *b = make_trainer(dev, &half, &o);
    const void *b1[2] = {x, y}, *b2[2] = {x + N / 2 * IN, y + N / 2};
    assert_int_equal(clt_trainer_step(b, b1), CLT_OK);
    struct clt_trainer_stats s;
    assert_int_equal(clt_trainer_stats(b, &s), CLT_OK);
    assert_int_equal(s.updates, 0);
    assert_int_equal(clt_trainer_step(b, b2), CLT_OK);
    assert_int_equal(clt_trainer_stats(b, &s), CLT_OK);
    assert_int_equal(s.updates, 1);
    float *pa = read_param(a, "fc1.weight", HID * IN), *pb = read_param(b, "fc1.weight", HID * IN);
    double *want = to_double(pa, HID * IN);
    clt_test_assert_close("accumulated fc1.weight", pb, want, HID * IN, 1e-6, 1e-5);
    free(pa);
    free(pb);
    free(want);
    clt_trainer_free(a);
    clt_trainer_free(b);
    clt_graph_free(whole.g);
    clt_graph_free(half.g);
}

static void nonfinite_steps_are_skipped(void **state)
{
    struct clt_device *dev = *state;
    enum { N = 4, IN = 3, HID = 4, CLS = 2 };
    struct mlp m = make_mlp(N, IN, HID, CLS);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    struct clt_trainer *tr = make_trainer(dev, &m, &o);
    float x[N * IN];
    int32_t y[N] = {0, 1, 1, 0};
    clt_test_fill(x, N * IN, 3, -1.0f, 1.0f);
    float *before = read_param(tr, "fc1.weight", HID * IN);
    x[4] = NAN;
    const void *batch[2] = {x, y};
    assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    float *after = read_param(tr, "fc1.weight", HID * IN);
    assert_memory_equal(before, after, HID * IN * sizeof(float));
    struct clt_trainer_stats s;
    assert_int_equal(clt_trainer_stats(tr, &s), CLT_OK);
    assert_int_equal(s.skipped, 1);
    assert_int_equal(s.updates, 0);
    /* Training goes on with good data. */
    x[4] = 0.5f;
    assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    assert_int_equal(clt_trainer_stats(tr, &s), CLT_OK);
    assert_int_equal(s.updates, 1);
    free(before);
    free(after);
    clt_trainer_free(tr);

    /* Asked to stop: the step after the bad one fails. */
    o.stop_on_nonfinite = true;
    tr = make_trainer(dev, &m, &o);
    x[4] = INFINITY;
    assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    x[4] = 0.5f;
    assert_int_equal(clt_trainer_step(tr, batch), CLT_ERR_NONFINITE);
    clt_trainer_free(tr);
    clt_graph_free(m.g);
}

/* conv - batch norm - relu - dropout - linear - layer norm - gelu - dropout - linear. */
static struct clt_graph *recorded_net(int64_t n, struct clt_tensor **x, struct clt_tensor **y,
                                      struct clt_tensor **logits, struct clt_tensor **loss)
{
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    *x = clt_input(g, "x", CLT_F32, 4, (int64_t[]){n, 1, 8, 8});
    *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){n});
    struct clt_conv2d_desc conv = {
        .out_channels = 3, .kernel_h = 3, .kernel_w = 3, .padding_h = 1, .padding_w = 1};
    struct clt_tensor *h = clt_conv2d(g, *x, &conv, "conv");
    h = clt_dropout(g, clt_relu(g, clt_batch_norm(g, h, 1e-5f, 0.1f, "bn")), 0.3f);
    h = clt_linear(g, clt_flatten(g, h), 13, true, "fc1");
    h = clt_dropout(g, clt_gelu(g, clt_layer_norm(g, h, 1e-5f, "ln"), true), 0.2f);
    *logits = clt_linear(g, h, 3, true, "fc2");
    *loss = clt_cross_entropy(g, *logits, *y, -1, 0.0f);
    assert_int_equal(clt_graph_status(g), CLT_OK);
    return g;
}

enum { REC_N = 5, REC_STEPS = 7 };

struct rec_run {
    float loss[REC_STEPS], eval_loss, logits[REC_N * 3];
    float *params;
    uint64_t nparams;
    uint32_t recordings[4];
};

static uint64_t info_count(const struct clt_param_info *info)
{
    uint64_t n = 1;
    for (uint32_t d = 0; d < info->ndim; d++)
        n *= (uint64_t)info->shape[d];
    return n;
}

/* Trains REC_STEPS steps with recording on or off (CLTRAIN_RECORD at creation), evaluating
 * after the third. */
static void recorded_run(struct clt_device *dev, bool record, int accumulate, struct rec_run *r)
{
    struct clt_tensor *x, *y, *logits, *loss;
    struct clt_graph *g = recorded_net(REC_N, &x, &y, &logits, &loss);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAMW);
    o.optimizer.lr = 0.02f;
    o.optimizer.schedule = CLT_LR_COSINE;
    o.optimizer.warmup_updates = 2;
    o.optimizer.total_updates = 6;
    o.optimizer.min_lr = 0.001f;
    o.optimizer.accumulate = accumulate;
    o.seed = 11;
    char *saved = getenv("CLTRAIN_RECORD") ? strdup(getenv("CLTRAIN_RECORD")) : NULL;
    setenv("CLTRAIN_RECORD", record ? "1" : "0", 1);
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &tr), CLT_OK);
    if (saved)
        setenv("CLTRAIN_RECORD", saved, 1);
    else
        unsetenv("CLTRAIN_RECORD");
    free(saved);
    float xv[REC_N * 64];
    int32_t yv[REC_N];
    const void *batch[2] = {xv, yv};
    for (int s = 0; s < REC_STEPS; s++) {
        make_images(xv, yv, REC_N, 700 + (uint64_t)s);
        assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
        assert_int_equal(clt_trainer_loss(tr, &r->loss[s]), CLT_OK);
        if (s == 2)
            assert_int_equal(
                clt_trainer_eval(tr, batch, logits, r->logits, REC_N * 3, &r->eval_loss), CLT_OK);
    }
    r->nparams = 0;
    struct clt_param_info info;
    for (uint32_t i = 0; clt_trainer_param_info(tr, i, &info) == CLT_OK; i++)
        r->nparams += info_count(&info);
    r->params = malloc(r->nparams * sizeof *r->params);
    assert_non_null(r->params);
    uint64_t at = 0;
    for (uint32_t i = 0; clt_trainer_param_info(tr, i, &info) == CLT_OK; i++) {
        assert_int_equal(clt_trainer_param_read(tr, info.name, r->params + at, info_count(&info)),
                         CLT_OK);
        at += info_count(&info);
    }
    for (int k = 0; k < 4; k++)
        r->recordings[k] = clt__rec_recordings(tr->rec[k]);
    clt_trainer_free(tr);
    clt_graph_free(g);
}

static void recorded_steps_match_unrecorded(void **state)
{
    struct clt_device *dev = *state;
    for (int accumulate = 1; accumulate <= 2; accumulate++) {
        struct rec_run plain, rec;
        recorded_run(dev, false, accumulate, &plain);
        recorded_run(dev, true, accumulate, &rec);
        for (int k = 0; k < 4; k++)
            assert_int_equal(plain.recordings[k], 0);
        /* Each kind of step recorded once: without accumulation every step is a first
         * micro-step that updates (kind 3); with two, kinds 1 and 2 alternate. */
        uint32_t want[2][4] = {{0, 0, 0, 1}, {0, 1, 1, 0}};
        for (int k = 0; k < 4; k++)
            if (rec.recordings[k] != want[accumulate - 1][k])
                fail_msg("accumulate %d: kind %d of step recorded %u times, want %u", accumulate, k,
                         rec.recordings[k], want[accumulate - 1][k]);
        for (int s = 0; s < REC_STEPS; s++)
            if (memcmp(&plain.loss[s], &rec.loss[s], sizeof plain.loss[s]) != 0 ||
                !isfinite(rec.loss[s]))
                fail_msg("accumulate %d, step %d: loss %.9g recorded, %.9g not", accumulate, s,
                         rec.loss[s], plain.loss[s]);
        /* Dropout must be drawing a new mask each step: consecutive batches differ anyway,
         * so check the losses are not all equal, which would hide a frozen argument. */
        assert_true(plain.loss[0] != plain.loss[1]);
        assert_memory_equal(&plain.eval_loss, &rec.eval_loss, sizeof rec.eval_loss);
        assert_memory_equal(plain.logits, rec.logits, sizeof rec.logits);
        assert_int_equal(plain.nparams, rec.nparams);
        for (uint64_t i = 0; i < rec.nparams; i++)
            if (memcmp(&plain.params[i], &rec.params[i], sizeof rec.params[i]) != 0)
                fail_msg("accumulate %d: parameter element %llu is %.9g recorded, %.9g not",
                         accumulate, (unsigned long long)i, rec.params[i], plain.params[i]);
        free(plain.params);
        free(rec.params);
    }
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(one_step_matches_reference),
        CLT_DEVICE_TEST(mlp_gradients_match_finite_differences),
        CLT_DEVICE_TEST(shared_parameter_gradients_accumulate),
        CLT_DEVICE_TEST(tied_embedding_and_output_gradients_match_finite_differences),
        CLT_DEVICE_TEST(shared_layers_gradients_accumulate),
        CLT_DEVICE_TEST(tying_mistakes_are_refused),
        CLT_DEVICE_TEST(cnn_gradients_match_finite_differences),
        CLT_DEVICE_TEST(sequence_ops_gradients_match_finite_differences),
        CLT_DEVICE_TEST(mlp_learns),
        CLT_DEVICE_TEST(cnn_learns),
        CLT_DEVICE_TEST(accumulation_equals_a_joined_batch),
        CLT_DEVICE_TEST(nonfinite_steps_are_skipped),
        CLT_DEVICE_TEST(memory_is_shared_and_recomputation_saves),
        CLT_DEVICE_TEST(model_too_large_fails_at_creation),
        CLT_DEVICE_TEST(tensors_beyond_the_element_limit_are_refused),
        CLT_DEVICE_TEST(bad_graphs_are_refused),
        CLT_DEVICE_TEST(optimizer_options_are_checked_at_creation),
        CLT_DEVICE_TEST(closed_device_fails_cleanly),
        CLT_DEVICE_TEST(parameter_groups_select_by_kind_and_name),
        CLT_DEVICE_TEST(recorded_steps_match_unrecorded),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
