/*
 * test_infer.c: partial batches, the inference executor and the classifier helpers, through
 * the public API.
 *
 * - A training step on N' < N rows (clt_trainer_step_rows) equals a step of the same graph
 *   planned for N' rows: the loss and every parameter and state tensor after two SGD steps,
 *   within 2e-5 + 2e-4 relative (the two plans sum in different orders), for an MLP with
 *   cross-entropy, a CNN with batch norm (running statistics included), an MSE regression, a
 *   mean-reduced loss, and a small transformer block with per-token labels; a parameter
 *   whose leading dimension equals the batch is not cut to the real rows.
 * - Evaluation and prediction on a partial batch equal the full batch's rows.
 * - An executor (no labels, no gradients, no optimizer state) gives the trainer's outputs,
 *   with parameters copied from the trainer or loaded from its checkpoint; it refuses to read
 *   a tensor whose memory it reuses.
 * - Evaluation over a dataset (loss, accuracy, confusion) and prediction over a dataset agree
 *   with a host computation from the predicted probabilities, for trainer and executor, the
 *   last batch partial.
 * - Graphs that mix rows refuse partial batches with CLT_ERR_UNSUPPORTED; bad row counts are
 *   refused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ATOL 2e-5
#define RTOL 2e-4

/* A model of the tests: its graph, its inputs in creation order, its logits and loss. */
struct model {
    struct clt_graph *g;
    struct clt_tensor *in[2];
    struct clt_tensor *logits, *loss;
};

enum kind { MLP, CNN, MSE, MEAN, GPT };

/* Sizes per example of each kind: features (or tokens) per row and labels per row. */
#define IN_F 5
#define CLASSES 3
#define IMG 5
#define T 4
#define VOCAB 7

static struct model build(enum kind k, int64_t n)
{
    struct model m;
    memset(&m, 0, sizeof m);
    assert_int_equal(clt_graph_create(&m.g), CLT_OK);
    struct clt_graph *g = m.g;
    switch (k) {
    case MLP: {
        m.in[0] = clt_input(g, "x", CLT_F32, 2, (int64_t[]){n, IN_F});
        m.in[1] = clt_input(g, "y", CLT_I32, 1, (int64_t[]){n});
        struct clt_tensor *h = clt_relu(g, clt_linear(g, m.in[0], 6, true, "fc1"));
        m.logits = clt_linear(g, h, CLASSES, true, "fc2");
        m.loss = clt_cross_entropy(g, m.logits, m.in[1], -1, 0.0f);
        break;
    }
    case CNN: {
        m.in[0] = clt_input(g, "x", CLT_F32, 4, (int64_t[]){n, 2, IMG, IMG});
        m.in[1] = clt_input(g, "y", CLT_I32, 1, (int64_t[]){n});
        struct clt_conv2d_desc d = {.out_channels = 3,
                                    .kernel_h = 3,
                                    .kernel_w = 3,
                                    .padding_h = 1,
                                    .padding_w = 1,
                                    .bias = false};
        struct clt_tensor *h = clt_conv2d(g, m.in[0], &d, "conv");
        h = clt_relu(g, clt_batch_norm(g, h, 1e-5f, 0.1f, "bn"));
        h = clt_global_avg_pool2d(g, h);
        h = clt_batch_norm(g, h, 1e-5f, 0.1f, "bn2");
        m.logits = clt_linear(g, h, CLASSES, true, "fc");
        m.loss = clt_cross_entropy(g, m.logits, m.in[1], -1, 0.0f);
        break;
    }
    case MSE: {
        m.in[0] = clt_input(g, "x", CLT_F32, 2, (int64_t[]){n, IN_F});
        m.in[1] = clt_input(g, "target", CLT_F32, 2, (int64_t[]){n, 2});
        struct clt_tensor *h = clt_tanh(g, clt_linear(g, m.in[0], 4, true, "fc1"));
        m.logits = clt_linear(g, h, 2, true, "fc2");
        /* A penalty on a parameter whose leading dimension happens to be the big graph's
         * batch: summed whole in both graphs. */
        struct clt_init init = {.kind = CLT_INIT_UNIFORM, .a = -1.0f, .b = 1.0f};
        struct clt_tensor *pen = clt_param(g, "pen", 2, (int64_t[]){9, 2}, init);
        m.loss = clt_add(g, clt_mse(g, m.logits, m.in[1]),
                         clt_scale(g, clt_sum(g, clt_mul(g, pen, pen)), 0.01f));
        break;
    }
    case MEAN: {
        m.in[0] = clt_input(g, "x", CLT_F32, 2, (int64_t[]){n, IN_F});
        struct clt_tensor *h = clt_linear(g, m.in[0], 4, true, "fc1");
        m.logits = h;
        m.loss = clt_mean(g, clt_mul(g, h, h));
        break;
    }
    case GPT: {
        m.in[0] = clt_input(g, "x", CLT_I32, 2, (int64_t[]){n, T});
        m.in[1] = clt_input(g, "y", CLT_I32, 2, (int64_t[]){n, T});
        struct clt_tensor *h = clt_embedding(g, m.in[0], VOCAB, 8, "tok");
        struct clt_tensor *a = clt_attention(g, clt_layer_norm(g, h, 1e-5f, "ln1"), 2, true, "att");
        h = clt_add(g, h, a);
        m.logits = clt_linear(g, clt_layer_norm(g, h, 1e-5f, "ln2"), VOCAB, true, "head");
        m.loss = clt_cross_entropy(g, m.logits, m.in[1], -1, 0.0f);
        break;
    }
    }
    assert_int_equal(clt_graph_status(m.g), CLT_OK);
    return m;
}

static int64_t count_of(const struct clt_tensor *t)
{
    int64_t c = 1;
    for (uint32_t i = 0; i < clt_tensor_ndim(t); i++)
        c *= clt_tensor_dim(t, i);
    return c;
}

/* Deterministic data for `rows` rows of model m's inputs (as for a graph of any batch). */
static void *make_input(const struct model *m, enum kind k, int i, int64_t rows, uint64_t seed)
{
    const struct clt_tensor *t = m->in[i];
    int64_t per = count_of(t) / clt_tensor_dim(t, 0);
    size_t n = (size_t)(per * rows);
    if (clt_tensor_dtype(t) == CLT_F32) {
        float *x = clt_test_floats(n);
        clt_test_fill(x, n, seed + (uint64_t)i, -1.0f, 1.0f);
        return x;
    }
    int32_t *y = malloc((n ? n : 1) * sizeof *y);
    assert_non_null(y);
    int32_t range = k == GPT ? VOCAB : CLASSES;
    for (size_t j = 0; j < n; j++)
        y[j] = (int32_t)((j * 7 + (size_t)seed * 3 + (size_t)i) % (size_t)range);
    return y;
}

static struct clt_trainer *trainer_of(struct clt_device *dev, const struct model *m)
{
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.lr = 0.1f;
    o.optimizer.momentum = 0.5f;
    o.seed = 3;
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, m->g, m->loss, &o, &tr), CLT_OK);
    return tr;
}

/* Every parameter and state tensor of a and b are equal within the tolerance. */
static void assert_same_params(struct clt_trainer *a, struct clt_trainer *b)
{
    uint32_t n = clt_trainer_param_count(a);
    assert_int_equal(n, clt_trainer_param_count(b));
    for (uint32_t i = 0; i < n; i++) {
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(a, i, &info), CLT_OK);
        uint64_t c = 1;
        for (uint32_t d = 0; d < info.ndim; d++)
            c *= (uint64_t)info.shape[d];
        float *pa = clt_test_floats(c), *pb = clt_test_floats(c);
        double *want = clt_test_doubles(c);
        assert_int_equal(clt_trainer_param_read(a, info.name, pa, c), CLT_OK);
        assert_int_equal(clt_trainer_param_read(b, info.name, pb, c), CLT_OK);
        for (uint64_t j = 0; j < c; j++)
            want[j] = pb[j];
        clt_test_assert_close(info.name, pa, want, c, ATOL, RTOL);
        free(pa);
        free(pb);
        free(want);
    }
}

/* Two steps on `rows` rows of a graph planned for n equal two steps of a graph planned for
 * rows, and a partial evaluation equals the smaller graph's. */
static void check_partial_step(struct clt_device *dev, enum kind k, int64_t n, int64_t rows)
{
    struct model big = build(k, n), small = build(k, rows);
    struct clt_trainer *tb = trainer_of(dev, &big), *ts = trainer_of(dev, &small);
    int nin = big.in[1] ? 2 : 1;
    for (int step = 0; step < 2; step++) {
        void *data[2] = {NULL, NULL};
        for (int i = 0; i < nin; i++)
            data[i] = make_input(&big, k, i, rows, 10 + (uint64_t)step);
        const void *in[2] = {data[0], data[1]};
        assert_int_equal(clt_trainer_step_rows(tb, in, (uint32_t)rows), CLT_OK);
        assert_int_equal(clt_trainer_step(ts, in), CLT_OK);
        float lb = 0, ls = 0;
        assert_int_equal(clt_trainer_loss(tb, &lb), CLT_OK);
        assert_int_equal(clt_trainer_loss(ts, &ls), CLT_OK);
        double want = ls;
        clt_test_assert_close("loss", &lb, &want, 1, ATOL, RTOL);
        for (int i = 0; i < nin; i++)
            free(data[i]);
    }
    assert_same_params(tb, ts);

    /* Evaluation of the real rows: outputs and loss as the small graph's. */
    void *data[2] = {NULL, NULL};
    for (int i = 0; i < nin; i++)
        data[i] = make_input(&big, k, i, rows, 99);
    const void *in[2] = {data[0], data[1]};
    uint64_t per = (uint64_t)(count_of(big.logits) / n), cnt = per * (uint64_t)rows;
    float *ob = clt_test_floats(cnt), *os = clt_test_floats(cnt);
    float lb = 0, ls = 0;
    assert_int_equal(clt_trainer_eval_rows(tb, in, (uint32_t)rows, big.logits, ob, cnt, &lb),
                     CLT_OK);
    assert_int_equal(clt_trainer_eval(ts, in, small.logits, os, cnt, &ls), CLT_OK);
    double *want = clt_test_doubles(cnt);
    for (uint64_t j = 0; j < cnt; j++)
        want[j] = os[j];
    clt_test_assert_close("eval outputs", ob, want, cnt, ATOL, RTOL);
    want[0] = ls;
    clt_test_assert_close("eval loss", &lb, want, 1, ATOL, RTOL);
    free(ob);
    free(os);
    free(want);
    for (int i = 0; i < nin; i++)
        free(data[i]);
    clt_trainer_free(tb);
    clt_trainer_free(ts);
    clt_graph_free(big.g);
    clt_graph_free(small.g);
}

static void test_partial_mlp(void **state)
{
    check_partial_step(*state, MLP, 7, 5);
    check_partial_step(*state, MLP, 7, 1);
}

static void test_partial_cnn_batch_norm(void **state)
{
    check_partial_step(*state, CNN, 6, 4);
}

static void test_partial_mse_and_mean(void **state)
{
    check_partial_step(*state, MSE, 9, 4);
    check_partial_step(*state, MEAN, 9, 2);
}

static void test_partial_transformer(void **state)
{
    check_partial_step(*state, GPT, 5, 3);
}

/* Bad row counts, and a graph that mixes rows, are refused with a message. */
static void test_partial_refused(void **state)
{
    struct clt_device *dev = *state;
    struct model m = build(MLP, 4);
    struct clt_trainer *tr = trainer_of(dev, &m);
    float x[4 * IN_F] = {0};
    int32_t y[4] = {0, 1, 2, 0};
    const void *in[2] = {x, y};
    assert_int_equal(clt_trainer_step_rows(tr, in, 0), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_trainer_step_rows(tr, in, 5), CLT_ERR_INVALID_ARGUMENT);
    clt_trainer_free(tr);
    clt_graph_free(m.g);

    /* The rows of x joined with themselves along the batch axis: each loss row mixes. */
    struct clt_graph *g = NULL;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *xi = clt_input(g, "x", CLT_F32, 2, (int64_t[]){2, IN_F});
    struct clt_tensor *yi = clt_input(g, "y", CLT_I32, 1, (int64_t[]){4});
    struct clt_tensor *xs[2] = {xi, xi};
    (void)yi;
    struct clt_tensor *h = clt_concat(g, 2, xs, 0);
    struct clt_tensor *loss = clt_mean(g, clt_linear(g, h, 2, true, "fc"));
    assert_int_equal(clt_graph_status(g), CLT_OK);
    tr = NULL;
    assert_int_equal(clt_trainer_create(dev, g, loss, NULL, &tr), CLT_OK);
    int32_t y4[4] = {0, 0, 0, 0};
    const void *in2[2] = {x, y4};
    /* The inputs' leading dimensions differ (2 and 4): no partial batches. */
    assert_int_equal(clt_trainer_step_rows(tr, in2, 1), CLT_ERR_UNSUPPORTED);
    assert_int_equal(clt_trainer_step_rows(tr, in2, 2), CLT_OK);
    clt_trainer_free(tr);
    clt_graph_free(g);

    assert_int_equal(clt_graph_create(&g), CLT_OK);
    xi = clt_input(g, "x", CLT_F32, 2, (int64_t[]){2, IN_F});
    xs[0] = xs[1] = xi;
    loss = clt_mean(g, clt_linear(g, clt_concat(g, 2, xs, 0), 2, true, "fc"));
    assert_int_equal(clt_graph_status(g), CLT_OK);
    tr = NULL;
    assert_int_equal(clt_trainer_create(dev, g, loss, NULL, &tr), CLT_OK);
    const void *in1[1] = {x};
    assert_int_equal(clt_trainer_step_rows(tr, in1, 1), CLT_ERR_UNSUPPORTED);
    clt_trainer_free(tr);
    clt_graph_free(g);
}

/* An executor of the logits, without labels, equals the trainer's evaluation. */
static void test_executor(void **state)
{
    struct clt_device *dev = *state;
    const int64_t n = 6, rows = 4;
    struct model m = build(CNN, n);
    struct clt_trainer *tr = trainer_of(dev, &m);
    void *x = make_input(&m, CNN, 0, n, 1), *y = make_input(&m, CNN, 1, n, 1);
    const void *in[2] = {x, y};
    assert_int_equal(clt_trainer_step(tr, in), CLT_OK); /* moves parameters and running stats */

    const struct clt_tensor *outs[1] = {m.logits};
    struct clt_executor *ex = NULL;
    assert_int_equal(clt_executor_create(dev, m.g, outs, 1, &ex), CLT_OK);
    assert_int_equal(clt_executor_batch(ex), n);
    struct clt_memory_report mem;
    assert_int_equal(clt_executor_memory(ex, &mem), CLT_OK);
    assert_int_equal(mem.grads, 0);
    assert_int_equal(mem.optimizer, 0);
    assert_true(mem.params > 0);
    assert_int_equal(clt_executor_copy_params(ex, tr), CLT_OK);

    uint64_t cnt = (uint64_t)(n * CLASSES);
    float *want_f = clt_test_floats(cnt), *got = clt_test_floats(cnt);
    assert_int_equal(clt_trainer_eval(tr, in, m.logits, want_f, cnt, NULL), CLT_OK);
    double *want = clt_test_doubles(cnt);
    for (uint64_t j = 0; j < cnt; j++)
        want[j] = want_f[j];

    const void *no_labels[2] = {x, NULL};
    assert_int_equal(clt_executor_run(ex, no_labels, 0), CLT_OK);
    assert_int_equal(clt_executor_read(ex, m.logits, got, cnt), CLT_OK);
    clt_test_assert_close("executor logits", got, want, cnt, ATOL, RTOL);

    /* A partial batch: the first rows, the same values. */
    memset(got, 0, cnt * sizeof *got);
    assert_int_equal(clt_executor_run(ex, no_labels, (uint32_t)rows), CLT_OK);
    assert_int_equal(clt_executor_read(ex, m.logits, got, (uint64_t)(rows * CLASSES)), CLT_OK);
    clt_test_assert_close("executor logits, partial", got, want, (size_t)(rows * CLASSES), ATOL,
                          RTOL);
    /* Predicted classes and probabilities of the partial batch. */
    int32_t cls[6];
    float probs[6 * CLASSES];
    assert_int_equal(clt_executor_predict(ex, no_labels, (uint32_t)rows, m.logits, cls, probs),
                     CLT_OK);
    for (int64_t r = 0; r < rows; r++) {
        int32_t best = 0;
        double mx = want[r * CLASSES], sum = 0;
        for (int c = 1; c < CLASSES; c++)
            if (want[r * CLASSES + c] > want[r * CLASSES + best])
                best = c;
        mx = want[r * CLASSES + best];
        for (int c = 0; c < CLASSES; c++)
            sum += exp(want[r * CLASSES + c] - mx);
        assert_int_equal(cls[r], best);
        double p[CLASSES];
        for (int c = 0; c < CLASSES; c++)
            p[c] = exp(want[r * CLASSES + c] - mx) / sum;
        clt_test_assert_close("probabilities", probs + r * CLASSES, p, CLASSES, 1e-5, 1e-4);
    }

    /* Parameters and state read by name; an intermediate tensor is refused. */
    float rv[3], rv_tr[3];
    assert_int_equal(clt_executor_read_named(ex, "bn.running_var", rv, 3), CLT_OK);
    assert_int_equal(clt_trainer_param_read(tr, "bn.running_var", rv_tr, 3), CLT_OK);
    assert_memory_equal(rv, rv_tr, sizeof rv);
    assert_int_equal(clt_executor_read_named(ex, "no such tensor", rv, 3),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_executor_read(ex, m.loss, rv, 1), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_executor_read(ex, m.logits, got, 5), CLT_ERR_INVALID_ARGUMENT);
    /* The executor does not need the labels, but needs the features. */
    const void *nothing[2] = {NULL, y};
    assert_int_equal(clt_executor_run(ex, nothing, 0), CLT_ERR_INVALID_ARGUMENT);

    /* From a checkpoint of the trainer: the same outputs. */
    char path[] = "/tmp/cltrain-test-infer-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(clt_trainer_save(tr, path, NULL, 0), CLT_OK);
    struct clt_executor *ex2 = NULL;
    assert_int_equal(clt_executor_create(dev, m.g, outs, 1, &ex2), CLT_OK);
    assert_int_equal(clt_executor_load(ex2, path), CLT_OK);
    assert_int_equal(clt_executor_run(ex2, no_labels, 0), CLT_OK);
    assert_int_equal(clt_executor_read(ex2, m.logits, got, cnt), CLT_OK);
    clt_test_assert_close("executor from a checkpoint", got, want, cnt, ATOL, RTOL);
    remove(path);

    clt_executor_free(ex2);
    clt_executor_free(ex);
    clt_executor_free(NULL);
    free(want_f);
    free(got);
    free(want);
    free(x);
    free(y);
    clt_trainer_free(tr);
    clt_graph_free(m.g);
}

/* A CSV dataset of `count` rows of IN_F features and a label. */
static struct clt_dataset *make_dataset(struct clt_device *dev, int count, char *path)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    float v[IN_F];
    for (int r = 0; r < count; r++) {
        clt_test_fill(v, IN_F, 500 + (uint64_t)r, -2.0f, 2.0f);
        for (int j = 0; j < IN_F; j++)
            fprintf(f, "%.6f,", (double)v[j]);
        fprintf(f, "%d\n", r % CLASSES);
    }
    fclose(f);
    (void)dev;
    struct clt_dataset *ds = NULL;
    assert_int_equal(clt_dataset_load_csv(path, -1, NULL, &ds), CLT_OK);
    return ds;
}

/* Evaluation and prediction over a dataset of 13 examples in batches of 5. */
static void test_dataset_helpers(void **state)
{
    struct clt_device *dev = *state;
    char path[] = "/tmp/cltrain-test-infer-csv-XXXXXX";
    const int count = 13;
    struct clt_dataset *ds = make_dataset(dev, count, path);
    struct model m = build(MLP, 5);
    struct clt_trainer *tr = trainer_of(dev, &m);
    struct clt_classifier c = {m.in[0], m.in[1], m.logits};

    int32_t cls[13];
    float probs[13 * CLASSES];
    assert_int_equal(clt_trainer_predict_dataset(tr, &c, ds, cls, probs), CLT_OK);
    /* The host's view of the same predictions. */
    double loss = 0;
    uint64_t correct = 0, conf_want[CLASSES * CLASSES] = {0};
    for (int r = 0; r < count; r++) {
        int32_t label = r % CLASSES, best = 0;
        double s = 0;
        for (int k = 0; k < CLASSES; k++) {
            s += probs[r * CLASSES + k];
            if (probs[r * CLASSES + k] > probs[r * CLASSES + best])
                best = k;
        }
        assert_true(fabs(s - 1.0) < 1e-5);
        assert_int_equal(cls[r], best);
        loss -= log(probs[r * CLASSES + label]);
        correct += best == label;
        conf_want[label * CLASSES + best]++;
    }
    loss /= count;

    struct clt_eval_result res;
    uint64_t conf[CLASSES * CLASSES];
    assert_int_equal(clt_trainer_evaluate(tr, &c, ds, conf, &res), CLT_OK);
    assert_int_equal(res.examples, count);
    assert_int_equal(res.correct, correct);
    assert_true(fabs(res.loss - loss) < 1e-5 * (1 + loss));
    assert_true(fabs(res.accuracy - (double)correct / count) < 1e-12);
    assert_memory_equal(conf, conf_want, sizeof conf);

    /* The executor, without labels for prediction, with them for evaluation. */
    const struct clt_tensor *outs[1] = {m.logits};
    struct clt_executor *ex = NULL;
    assert_int_equal(clt_executor_create(dev, m.g, outs, 1, &ex), CLT_OK);
    assert_int_equal(clt_executor_copy_params(ex, tr), CLT_OK);
    struct clt_classifier no_labels = {m.in[0], NULL, m.logits};
    int32_t cls2[13];
    assert_int_equal(clt_executor_predict_dataset(ex, &no_labels, ds, cls2, NULL), CLT_OK);
    assert_memory_equal(cls, cls2, sizeof cls);
    struct clt_eval_result res2;
    assert_int_equal(clt_executor_evaluate(ex, &c, ds, NULL, &res2), CLT_OK);
    assert_int_equal(res2.correct, res.correct);
    assert_true(fabs(res2.loss - res.loss) < 1e-6 * (1 + loss));
    assert_int_equal(clt_executor_evaluate(ex, &no_labels, ds, NULL, &res2),
                     CLT_ERR_INVALID_ARGUMENT);

    clt_executor_free(ex);
    clt_trainer_free(tr);
    clt_graph_free(m.g);
    clt_dataset_free(ds);
    remove(path);
}

int main(void)
{
    clt_test_require_device();
    /* Many small GEMM shapes, none of which this test is about: no tuning. */
    setenv("CLTRAIN_TUNE", "0", 1);
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(test_partial_mlp),          CLT_DEVICE_TEST(test_partial_cnn_batch_norm),
        CLT_DEVICE_TEST(test_partial_mse_and_mean), CLT_DEVICE_TEST(test_partial_transformer),
        CLT_DEVICE_TEST(test_partial_refused),      CLT_DEVICE_TEST(test_executor),
        CLT_DEVICE_TEST(test_dataset_helpers),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
