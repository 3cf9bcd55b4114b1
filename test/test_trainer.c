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
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "trainer.h"

struct mlp {
    struct clt_graph *g;
    struct clt_tensor *x, *y, *logits, *loss;
};

/* x [n, in] -> linear(hidden) -> relu -> linear(classes) -> cross-entropy with y [n]. */
static struct mlp make_mlp(int64_t n, int64_t in, int64_t hidden, int64_t classes)
{
    struct mlp m;
    assert_int_equal(clt_graph_create(&m.g), CLT_OK);
    m.x = clt_input(m.g, "x", CLT_F32, 2, (int64_t[]){n, in});
    m.y = clt_input(m.g, "y", CLT_I32, 1, (int64_t[]){n});
    struct clt_tensor *h = clt_relu(m.g, clt_linear(m.g, m.x, hidden, true, "fc1"));
    m.logits = clt_linear(m.g, h, classes, true, "fc2");
    m.loss = clt_cross_entropy(m.g, m.logits, m.y, -1, 0.0f);
    assert_int_equal(clt_graph_status(m.g), CLT_OK);
    return m;
}

static struct clt_trainer *make_trainer(struct clt_device *dev, struct mlp *m,
                                        const struct clt_trainer_options *o)
{
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, m->g, m->loss, o, &tr), CLT_OK);
    return tr;
}

/* Reads a parameter into a malloc'd array. */
static float *read_param(struct clt_trainer *tr, const char *name, uint64_t count)
{
    float *p = malloc(count * sizeof *p);
    assert_non_null(p);
    assert_int_equal(clt_trainer_param_read(tr, name, p, count), CLT_OK);
    return p;
}

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

/* ---- Whole-network gradients against finite differences ------------------------------- */

struct fd_ctx {
    struct clt_trainer *tr;
    const char *name;
    const void *const *batch;
    bool training_mode;
};

/* The loss at parameters p: by evaluation, or (for models whose training-mode forward
 * differs, such as batch norm's) by a step of a trainer whose learning rate is 0. */
static double eval_loss(void *vctx, const float *p, size_t n)
{
    struct fd_ctx *c = vctx;
    float loss = NAN;
    assert_int_equal(clt_trainer_param_write(c->tr, c->name, p, n), CLT_OK);
    if (c->training_mode) {
        assert_int_equal(clt_trainer_step(c->tr, c->batch), CLT_OK);
        assert_int_equal(clt_trainer_loss(c->tr, &loss), CLT_OK);
    } else {
        assert_int_equal(clt_trainer_eval(c->tr, c->batch, NULL, NULL, 0, &loss), CLT_OK);
    }
    return loss;
}

/* Checks every parameter of a trainer: the gradient of one SGD step with lr 1 (p_before -
 * p_after) against central differences of the loss, evaluated by `probe` in training mode
 * when given (a trainer of the same graph with lr 0), else by tr in evaluation. */
static void gradcheck_with(struct clt_trainer *tr, struct clt_trainer *probe,
                           const void *const *batch, double eps)
{
    uint32_t np = clt_trainer_param_count(tr);
    float *before[16], *grad[16];
    uint64_t count[16];
    assert_true(np <= 16);
    for (uint32_t i = 0; i < np; i++) {
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(tr, i, &info), CLT_OK);
        count[i] = 1;
        for (uint32_t d = 0; d < info.ndim; d++)
            count[i] *= (uint64_t)info.shape[d];
        before[i] = read_param(tr, info.name, count[i]);
    }
    assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    for (uint32_t i = 0; i < np; i++) {
        struct clt_param_info info;
        clt_trainer_param_info(tr, i, &info);
        float *after = read_param(tr, info.name, count[i]);
        grad[i] = malloc(count[i] * sizeof(float));
        for (uint64_t k = 0; k < count[i]; k++)
            grad[i][k] = before[i][k] - after[k];
        free(after);
    }
    /* Back to the starting point, then probe each parameter. */
    for (uint32_t i = 0; i < np; i++) {
        struct clt_param_info info;
        clt_trainer_param_info(tr, i, &info);
        assert_int_equal(clt_trainer_param_write(tr, info.name, before[i], count[i]), CLT_OK);
    }
    for (uint32_t i = 0; i < np; i++) {
        struct clt_param_info info;
        clt_trainer_param_info(tr, i, &info);
        if (!info.trained)
            continue;
        struct fd_ctx ctx = {probe ? probe : tr, info.name, batch, probe != NULL};
        if (probe) {
            for (uint32_t j = 0; j < np; j++) {
                struct clt_param_info pj;
                clt_trainer_param_info(tr, j, &pj);
                if (pj.trained)
                    assert_int_equal(clt_trainer_param_write(probe, pj.name, before[j], count[j]),
                                     CLT_OK);
            }
        }
        clt_test_gradcheck(info.name, eval_loss, &ctx, before[i], count[i], grad[i], 7, eps, 2e-3,
                           2e-2);
        assert_int_equal(clt_trainer_param_write(ctx.tr, info.name, before[i], count[i]), CLT_OK);
    }
    for (uint32_t i = 0; i < np; i++) {
        free(before[i]);
        free(grad[i]);
    }
}

static void gradcheck_all(struct clt_trainer *tr, const void *const *batch)
{
    gradcheck_with(tr, NULL, batch, 1e-2);
}

static struct clt_trainer_options sgd_lr1(void)
{
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.lr = 1.0;
    o.seed = 11;
    return o;
}

static void mlp_gradients_match_finite_differences(void **state)
{
    struct clt_device *dev = *state;
    enum { N = 3, IN = 5, HID = 6, CLS = 3 };
    struct mlp m = make_mlp(N, IN, HID, CLS);
    struct clt_trainer_options o = sgd_lr1();
    struct clt_trainer *tr = make_trainer(dev, &m, &o);
    float x[N * IN];
    int32_t y[N] = {2, 0, 1};
    clt_test_fill(x, N * IN, 9, -2.0f, 2.0f);
    const void *batch[2] = {x, y};
    gradcheck_all(tr, batch);
    clt_trainer_free(tr);
    clt_graph_free(m.g);
}

static void shared_parameter_gradients_accumulate(void **state)
{
    struct clt_device *dev = *state;
    /* loss = mse(tanh(W tanh(W x + b) + b) * x2, t): W and b are used twice, x2 multiplies. */
    enum { N = 4, D = 5 };
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){N, D});
    struct clt_tensor *t = clt_input(g, "t", CLT_F32, 2, (int64_t[]){N, D});
    struct clt_tensor *w =
        clt_param(g, "w", 2, (int64_t[]){D, D}, (struct clt_init){CLT_INIT_XAVIER_UNIFORM, 0, 0});
    struct clt_tensor *b =
        clt_param(g, "b", 1, (int64_t[]){D}, (struct clt_init){CLT_INIT_UNIFORM, -0.5f, 0.5f});
    struct clt_tensor *h1 = clt_tanh(g, clt_add_bias(g, clt_matmul(g, x, w, false, true), b));
    struct clt_tensor *h2 = clt_tanh(g, clt_add_bias(g, clt_matmul(g, h1, w, false, true), b));
    struct clt_tensor *loss = clt_mse(g, clt_mul(g, h2, x), t);
    assert_int_equal(clt_graph_status(g), CLT_OK);
    struct clt_trainer_options o = sgd_lr1();
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &tr), CLT_OK);
    float xv[N * D], tv[N * D];
    clt_test_fill(xv, N * D, 21, -1.0f, 1.0f);
    clt_test_fill(tv, N * D, 22, -1.0f, 1.0f);
    const void *batch[2] = {xv, tv};
    gradcheck_all(tr, batch);
    clt_trainer_free(tr);
    clt_graph_free(g);
}

/* Counts the trainer's parameters and state and checks that `absent` is not among them. */
static uint32_t params_without(struct clt_trainer *tr, const char *absent)
{
    uint32_t np = clt_trainer_param_count(tr);
    for (uint32_t i = 0; i < np; i++) {
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(tr, i, &info), CLT_OK);
        if (strcmp(info.name, absent) == 0)
            fail_msg("the trainer made \"%s\", which a tied layer should not have", absent);
    }
    return np;
}

static void tied_embedding_and_output_gradients_match_finite_differences(void **state)
{
    struct clt_device *dev = *state;
    /* ids -> embedding "tok" [V, D] -> layer norm -> linear "head" whose weight is tok.weight
     * (bias its own) -> cross-entropy. Row 5 is never an input id, only a label, and row 6
     * neither; every other row gets both the embedding's and the output layer's gradient, so
     * a tied weight that kept only one contribution fails the finite differences. */
    enum { N = 2, T = 5, V = 7, D = 6 };
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *ids = clt_input(g, "ids", CLT_I32, 2, (int64_t[]){N, T});
    struct clt_tensor *tgt = clt_input(g, "tgt", CLT_I32, 2, (int64_t[]){N, T});
    struct clt_tensor *h = clt_layer_norm(g, clt_embedding(g, ids, V, D, "tok"), 1e-5f, "ln");
    struct clt_layer_params tied = {.weight = clt_graph_param(g, "tok.weight")};
    assert_non_null(tied.weight);
    assert_string_equal(clt_tensor_name(tied.weight), "tok.weight");
    struct clt_tensor *logits = clt_linear_ex(g, h, V, true, "head", &tied);
    struct clt_tensor *loss = clt_cross_entropy(g, logits, tgt, -1, 0.0f);
    assert_int_equal(clt_graph_status(g), CLT_OK);
    assert_int_equal(clt_tensor_dim(logits, 2), V);
    struct clt_trainer_options o = sgd_lr1();
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &tr), CLT_OK);
    /* tok.weight, ln.weight, ln.bias, head.bias: no head.weight. */
    assert_int_equal(params_without(tr, "head.weight"), 4);
    int32_t iv[N * T] = {0, 3, 3, 1, 4, 2, 0, 1, 2, 4}, tv[N * T] = {3, 5, 1, 4, 2, 0, 5, 1, 3, 0};
    const void *batch[2] = {iv, tv};
    gradcheck_all(tr, batch);
    clt_trainer_free(tr);
    clt_graph_free(g);
}

static void shared_layers_gradients_accumulate(void **state)
{
    struct clt_device *dev = *state;
    /* x -> linear "fc" -> tanh -> the same linear again (given fc's weight and bias, no name)
     * -> layer norm "ln" -> tanh -> the same layer norm -> mse; then a convolution used twice
     * the same way. Each shared parameter's gradient is the sum over its uses. */
    enum { N = 3, D = 5, C = 2, H = 4, W = 3 };
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){N, D});
    struct clt_tensor *t = clt_input(g, "t", CLT_F32, 2, (int64_t[]){N, D});
    struct clt_tensor *h = clt_tanh(g, clt_linear(g, x, D, true, "fc"));
    struct clt_layer_params fc = {.weight = clt_graph_param(g, "fc.weight"),
                                  .bias = clt_graph_param(g, "fc.bias")};
    h = clt_tanh(g, clt_layer_norm(g, clt_linear_ex(g, h, D, true, NULL, &fc), 1e-5f, "ln"));
    struct clt_layer_params ln = {.weight = clt_graph_param(g, "ln.weight"),
                                  .bias = clt_graph_param(g, "ln.bias")};
    h = clt_layer_norm_ex(g, h, 1e-5f, NULL, &ln);
    struct clt_tensor *loss = clt_mse(g, h, t);
    assert_int_equal(clt_graph_status(g), CLT_OK);
    struct clt_trainer_options o = sgd_lr1();
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &tr), CLT_OK);
    assert_int_equal(clt_trainer_param_count(tr), 4);
    /* Layer norm's gain off 1 and bias off 0, so that both enter the loss fully. */
    float gain[D] = {1.3f, 0.7f, 1.1f, 0.9f, 1.2f}, shift[D] = {0.1f, -0.2f, 0.05f, 0.15f, -0.1f};
    assert_int_equal(clt_trainer_param_write(tr, "ln.weight", gain, D), CLT_OK);
    assert_int_equal(clt_trainer_param_write(tr, "ln.bias", shift, D), CLT_OK);
    float xv[N * D], tv[N * D];
    clt_test_fill(xv, N * D, 31, -1.0f, 1.0f);
    clt_test_fill(tv, N * D, 32, -1.0f, 1.0f);
    const void *batch[2] = {xv, tv};
    gradcheck_all(tr, batch);
    clt_trainer_free(tr);
    clt_graph_free(g);

    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *img = clt_input(g, "img", CLT_F32, 4, (int64_t[]){N, C, H, W});
    struct clt_tensor *tgt = clt_input(g, "tgt", CLT_F32, 4, (int64_t[]){N, C, H, W});
    struct clt_conv2d_desc conv = {.out_channels = C,
                                   .kernel_h = 3,
                                   .kernel_w = 3,
                                   .padding_h = 1,
                                   .padding_w = 1,
                                   .bias = true};
    h = clt_tanh(g, clt_conv2d(g, img, &conv, "conv"));
    struct clt_layer_params cv = {.weight = clt_graph_param(g, "conv.weight"),
                                  .bias = clt_graph_param(g, "conv.bias")};
    h = clt_conv2d_ex(g, h, &conv, "conv2", &cv);
    loss = clt_mse(g, h, tgt);
    assert_int_equal(clt_graph_status(g), CLT_OK);
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &tr), CLT_OK);
    assert_int_equal(params_without(tr, "conv2.weight"), 2);
    float iv[N * C * H * W], gv[N * C * H * W];
    clt_test_fill(iv, N * C * H * W, 33, -1.0f, 1.0f);
    clt_test_fill(gv, N * C * H * W, 34, -1.0f, 1.0f);
    const void *images[2] = {iv, gv};
    gradcheck_all(tr, images);
    clt_trainer_free(tr);
    clt_graph_free(g);
}

/* Wrong tying is refused when the model is built, with a message naming the layer, the part
 * and the shapes; a lookup of an unknown name is the graph's error. */
static void tying_mistakes_are_refused(void **state)
{
    (void)state;
    struct clt_graph *g;
    const struct {
        const char *want; /* in the graph's error */
        int which;
    } cases[] = {
        {"no parameter or state named \"nope.weight\"", 0},
        {"linear \"head\": the given weight \"tok.weight\" is [7, 6]; the layer needs [7, 5]", 1},
        {"linear \"head\": the given weight must be a parameter (clt_param or a layer's), not an "
         "input x",
         2},
        {"linear \"head\": a bias was given, but the layer has none", 3},
        {"embedding \"e2\": a running_mean was given, but the layer has none", 4},
        {"batch_norm \"bn2\": the given running_mean must be a state tensor", 5},
        {"a layer needs a name", 6},
        {"layer_norm \"ln2\": the given bias \"tok.weight\" is [7, 6]; the layer needs [6]", 7},
        {"conv2d \"c2\": the given weight \"c.weight\" is [4, 3, 3, 3]; the layer needs [4, 4, "
         "3, 3]",
         8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(clt_graph_create(&g), CLT_OK);
        struct clt_tensor *ids = clt_input(g, "ids", CLT_I32, 1, (int64_t[]){4});
        struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){4, 5});
        struct clt_tensor *img = clt_input(g, "img", CLT_F32, 4, (int64_t[]){1, 3, 5, 5});
        struct clt_tensor *e = clt_embedding(g, ids, 7, 6, "tok");
        struct clt_tensor *bn = clt_batch_norm(g, e, 1e-5f, 0.1f, "bn");
        struct clt_conv2d_desc cd = {.out_channels = 4, .kernel_h = 3, .kernel_w = 3};
        struct clt_tensor *c = clt_conv2d(g, img, &cd, "c");
        assert_int_equal(clt_graph_status(g), CLT_OK);
        struct clt_tensor *tok = clt_graph_param(g, "tok.weight");
        struct clt_layer_params use = {0};
        struct clt_tensor *out = NULL;
        switch (cases[i].which) {
        case 0:
            out = clt_graph_param(g, "nope.weight");
            break;
        case 1:
            use.weight = tok;
            out = clt_linear_ex(g, x, 7, false, "head", &use);
            break;
        case 2:
            use.weight = x;
            out = clt_linear_ex(g, x, 4, false, "head", &use);
            break;
        case 3:
            use.bias = clt_graph_param(g, "bn.bias");
            out = clt_linear_ex(g, x, 6, false, "head", &use);
            break;
        case 4:
            use.weight = tok;
            use.running_mean = clt_graph_param(g, "bn.running_mean");
            out = clt_embedding_ex(g, ids, 7, 6, "e2", &use);
            break;
        case 5:
            use.running_mean = clt_graph_param(g, "bn.weight");
            out = clt_batch_norm_ex(g, bn, 1e-5f, 0.1f, "bn2", &use);
            break;
        case 6:
            use.weight = clt_graph_param(g, "bn.weight");
            out = clt_layer_norm_ex(g, e, 1e-5f, NULL, &use);
            break;
        case 7:
            use.bias = tok;
            out = clt_layer_norm_ex(g, e, 1e-5f, "ln2", &use);
            break;
        default:
            use.weight = clt_graph_param(g, "c.weight");
            out = clt_conv2d_ex(g, c, &cd, "c2", &use);
            break;
        }
        assert_null(out);
        assert_int_equal(clt_graph_status(g), CLT_ERR_INVALID_ARGUMENT);
        if (!strstr(clt_graph_error(g), cases[i].want))
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, clt_graph_error(g), cases[i].want);
        clt_graph_free(g);
    }
    /* A parameter of another graph. */
    struct clt_graph *other;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    assert_int_equal(clt_graph_create(&other), CLT_OK);
    struct clt_tensor *w = clt_param(other, "w", 2, (int64_t[]){3, 2}, (struct clt_init){0});
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){4, 2});
    assert_null(clt_linear_ex(g, x, 3, false, "fc", &(struct clt_layer_params){.weight = w}));
    assert_non_null(strstr(clt_graph_error(g), "another graph"));
    /* State and parameters are found; inputs are not. */
    assert_null(clt_graph_param(other, "x"));
    clt_graph_free(other);
    clt_graph_free(g);
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){4, 2});
    assert_non_null(clt_batch_norm(g, x, 1e-5f, 0.1f, "bn"));
    assert_non_null(clt_graph_param(g, "bn.running_var"));
    assert_null(clt_graph_param(g, "x"));
    assert_null(clt_graph_param(NULL, "x"));
    clt_graph_free(g);
}

static void cnn_gradients_match_finite_differences(void **state)
{
    struct clt_device *dev = *state;
    /* conv 3x3 pad 1 -> batch norm -> relu -> max pool 2 -> avg pool 2 -> flatten -> linear. */
    enum { N = 2, C = 2, H = 6, W = 6, K = 3, CLS = 3 };
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 4, (int64_t[]){N, C, H, W});
    struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){N});
    struct clt_conv2d_desc conv = {.out_channels = K,
                                   .kernel_h = 3,
                                   .kernel_w = 3,
                                   .padding_h = 1,
                                   .padding_w = 1,
                                   .bias = true};
    struct clt_tensor *h = clt_conv2d(g, x, &conv, "conv");
    h = clt_relu(g, clt_batch_norm(g, h, 1e-5f, 0.1f, "bn"));
    h = clt_avg_pool2d(g, clt_max_pool2d(g, h, 2, 0, 0), 2, 1, 0);
    struct clt_tensor *logits = clt_linear(g, clt_flatten(g, h), CLS, true, "fc");
    struct clt_tensor *loss = clt_cross_entropy(g, logits, y, -1, 0.0f);
    assert_int_equal(clt_graph_status(g), CLT_OK);
    struct clt_trainer_options o = sgd_lr1();
    struct clt_trainer *tr = NULL, *probe = NULL;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &tr), CLT_OK);
    o.optimizer.lr = 0.0;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &probe), CLT_OK);
    float xv[N * C * H * W];
    int32_t yv[N] = {2, 0};
    clt_test_fill(xv, N * C * H * W, 77, -1.0f, 1.0f);
    const void *batch[2] = {xv, yv};
    gradcheck_with(tr, probe, batch, 1e-3);
    /* A training step moves the running averages away from (0, 1); evaluation uses them. */
    assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    float rm[K];
    assert_int_equal(clt_trainer_param_read(tr, "bn.running_mean", rm, K), CLT_OK);
    assert_true(rm[0] != 0.0f || rm[1] != 0.0f || rm[2] != 0.0f);
    float eval_loss_value;
    assert_int_equal(clt_trainer_eval(tr, batch, NULL, NULL, 0, &eval_loss_value), CLT_OK);
    assert_true(isfinite(eval_loss_value));
    clt_trainer_free(tr);
    clt_trainer_free(probe);
    clt_graph_free(g);
}

static void sequence_ops_gradients_match_finite_differences(void **state)
{
    struct clt_device *dev = *state;
    /* embedding -> layer norm -> attention (permute, slice, sdpa) -> concat with itself
     * sliced -> gelu -> linear -> cross-entropy over every position. */
    enum { N = 2, T = 4, V = 5, D = 6, H = 2 };
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *ids = clt_input(g, "ids", CLT_I32, 2, (int64_t[]){N, T});
    struct clt_tensor *tgt = clt_input(g, "tgt", CLT_I32, 2, (int64_t[]){N, T});
    struct clt_tensor *e = clt_embedding(g, ids, V, D, "emb");
    struct clt_tensor *a = clt_attention(g, clt_layer_norm(g, e, 1e-5f, "ln"), H, true, "attn");
    struct clt_tensor *parts[2] = {clt_slice(g, a, 2, 0, 2), clt_slice(g, e, 2, 2, 4)};
    struct clt_tensor *c = clt_gelu(g, clt_concat(g, 2, parts, 2), false);
    struct clt_tensor *logits = clt_linear(g, c, V, true, "head");
    struct clt_tensor *loss = clt_cross_entropy(g, logits, tgt, -1, 0.1f);
    assert_int_equal(clt_graph_status(g), CLT_OK);
    struct clt_trainer_options o = sgd_lr1();
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &tr), CLT_OK);
    int32_t iv[N * T] = {0, 3, 3, 1, 4, 2, 0, 0}, tv[N * T] = {3, 3, 1, 4, 2, 0, 0, 1};
    const void *batch[2] = {iv, tv};
    gradcheck_all(tr, batch);
    clt_trainer_free(tr);
    clt_graph_free(g);
}

/* ---- Learning, accumulation, non-finite steps -------------------------------------------- */

/* A synthetic task: the label is the index of the largest of the first 3 features. */
static void make_batch(float *x, int32_t *y, int n, int in, uint64_t seed)
{
    clt_test_fill(x, (size_t)n * in, seed, -1.0f, 1.0f);
    for (int r = 0; r < n; r++) {
        int best = 0;
        for (int c = 1; c < 3; c++)
            if (x[r * in + c] > x[r * in + best])
                best = c;
        y[r] = best;
    }
}

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

/* ---- Memory ----------------------------------------------------------------------------- */

static void memory_is_shared_and_recomputation_saves(void **state)
{
    struct clt_device *dev = *state;
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){16, 32});
    struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){16});
    struct clt_tensor *h = x;
    char name[16];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "l%d", i);
        h = clt_gelu(g, clt_linear(g, h, 32, true, name), true);
    }
    struct clt_tensor *loss = clt_cross_entropy(g, clt_linear(g, h, 4, true, "out"), y, -1, 0);
    assert_int_equal(clt_graph_status(g), CLT_OK);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    struct clt_trainer *plain = NULL, *re = NULL;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &plain), CLT_OK);
    o.recompute = true;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &re), CLT_OK);
    struct clt_memory_report mp, mr;
    assert_int_equal(clt_trainer_memory(plain, &mp), CLT_OK);
    assert_int_equal(clt_trainer_memory(re, &mr), CLT_OK);
    assert_true(mp.activations < mp.activations_unshared);
    assert_true(mr.activations < mp.activations);
    assert_int_equal(mp.params, (6 * (32 * 32 + 32) + 32 * 4 + 4) * 4);
    assert_true(mp.total >= mp.params + mp.grads + mp.activations);
    /* Recomputation changes memory, not results. */
    float xv[16 * 32];
    int32_t yv[16];
    make_batch(xv, yv, 16, 32, 1);
    const void *batch[2] = {xv, yv};
    float l1, l2;
    for (int s = 0; s < 3; s++) {
        assert_int_equal(clt_trainer_step(plain, batch), CLT_OK);
        assert_int_equal(clt_trainer_step(re, batch), CLT_OK);
    }
    assert_int_equal(clt_trainer_loss(plain, &l1), CLT_OK);
    assert_int_equal(clt_trainer_loss(re, &l2), CLT_OK);
    assert_float_equal(l1, l2, 0.0f);
    clt_trainer_free(plain);
    clt_trainer_free(re);
    clt_graph_free(g);
}

/* A model larger than the device's whole memory, each of its tensors within the element
 * limit: sized from the device's figures, so it holds whatever memory a machine reports. */
static void model_too_large_fails_at_creation(void **state)
{
    struct clt_device *dev = *state;
    struct clt_test_log text = {0};
    dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_WARN};
    const struct clt_device_info *info = clt_device_info(dev);
    const int64_t in = 40000, out = INT32_MAX / in; /* each weight just below 2^31 elements */
    const uint64_t weight_bytes = (uint64_t)(in * out) * sizeof(float);
    uint64_t needed = info->global_mem_bytes > info->max_alloc_bytes ? info->global_mem_bytes
                                                                     : info->max_alloc_bytes;
    int64_t layers = (int64_t)(needed / weight_bytes) + 1;
    assert_true(layers < 100000);
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){1, in});
    struct clt_tensor *loss = NULL;
    for (int64_t i = 0; i < layers; i++) {
        char name[32];
        snprintf(name, sizeof name, "huge%lld", (long long)i);
        struct clt_tensor *part = clt_sum(g, clt_linear(g, x, out, false, name));
        loss = loss ? clt_add(g, loss, part) : part;
    }
    assert_int_equal(clt_graph_status(g), CLT_OK);
    struct clt_trainer *tr = (struct clt_trainer *)&text;
    assert_int_equal(clt_trainer_create(dev, g, loss, NULL, &tr), CLT_ERR_DEVICE_MEMORY);
    assert_ptr_equal(tr, (struct clt_trainer *)&text);
    assert_non_null(strstr(text.text, "does not fit"));
    assert_non_null(strstr(text.text, "MiB"));
    clt_graph_free(g);
}

/* A tensor of 2^31 elements or more is refused when built, naming it and the limit. */
static void tensors_beyond_the_element_limit_are_refused(void **state)
{
    (void)state;
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){1, 65536});
    assert_null(clt_linear(g, x, 32768, false, "wide"));
    assert_int_equal(clt_graph_status(g), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(clt_graph_error(g), "wide.weight"));
    assert_non_null(strstr(clt_graph_error(g), "[32768, 65536]"));
    assert_non_null(strstr(clt_graph_error(g), "2^31 - 1"));
    clt_graph_free(g);
    /* One element fewer than 2^31 is allowed. */
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    assert_non_null(clt_input(g, "edge", CLT_F32, 1, (int64_t[]){INT32_MAX}));
    assert_null(clt_input(g, "over", CLT_F32, 2, (int64_t[]){2, (int64_t)1 << 30}));
    assert_non_null(strstr(clt_graph_error(g), "over"));
    clt_graph_free(g);
}

static void bad_graphs_are_refused(void **state)
{
    struct clt_device *dev = *state;
    struct clt_graph *g, *other;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    assert_int_equal(clt_graph_create(&other), CLT_OK);
    struct clt_tensor *a = clt_input(g, "a", CLT_F32, 2, (int64_t[]){2, 3});
    struct clt_tensor *b = clt_input(g, "b", CLT_F32, 2, (int64_t[]){3, 2});
    assert_non_null(a);
    /* Shape mismatch: the first error is kept, later builders return NULL quietly. */
    assert_null(clt_add(g, a, b));
    assert_int_equal(clt_graph_status(g), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(clt_graph_error(g), "do not broadcast"));
    assert_null(clt_relu(g, NULL));
    assert_non_null(strstr(clt_graph_error(g), "do not broadcast"));
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, g, a, NULL, &tr), CLT_ERR_INVALID_ARGUMENT);
    /* A tensor of another graph; duplicate names; bad shapes. */
    struct clt_tensor *c = clt_input(other, "c", CLT_F32, 1, (int64_t[]){3});
    assert_null(clt_relu(other, a));
    assert_non_null(strstr(clt_graph_error(other), "another graph"));
    clt_graph_free(other);
    assert_int_equal(clt_graph_create(&other), CLT_OK);
    assert_non_null(clt_input(other, "c", CLT_F32, 1, (int64_t[]){3}));
    assert_null(clt_input(other, "c", CLT_F32, 1, (int64_t[]){3}));
    assert_non_null(strstr(clt_graph_error(other), "already taken"));
    clt_graph_free(other);
    assert_int_equal(clt_graph_create(&other), CLT_OK);
    assert_null(clt_input(other, "z", CLT_F32, 2, (int64_t[]){3, 0}));
    clt_graph_free(other);
    assert_int_equal(clt_graph_create(&other), CLT_OK);
    assert_null(clt_matmul(other, clt_input(other, "p", CLT_F32, 2, (int64_t[]){2, 3}),
                           clt_input(other, "q", CLT_F32, 2, (int64_t[]){2, 3}), false, false));
    assert_non_null(strstr(clt_graph_error(other), "inner dimensions"));
    clt_graph_free(other);
    /* A loss that depends on no parameter. */
    assert_int_equal(clt_graph_create(&other), CLT_OK);
    c = clt_input(other, "c", CLT_F32, 1, (int64_t[]){3});
    struct clt_tensor *s = clt_sum(other, c);
    assert_int_equal(clt_trainer_create(dev, other, s, NULL, &tr), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_trainer_create(dev, other, c, NULL, &tr), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_trainer_create(NULL, other, s, NULL, &tr), CLT_ERR_INVALID_ARGUMENT);
    clt_graph_free(other);
    clt_graph_free(g);
    clt_graph_free(NULL);
    clt_trainer_free(NULL);
}

/* One check of the optimizer, at creation, by the launchers' rules: what a step would refuse
 * is refused when the trainer is made, with the field named. */
static void optimizer_options_are_checked_at_creation(void **state)
{
    struct clt_device *dev = *state;
    struct mlp m = make_mlp(4, 3, 5, 2);
    struct clt_trainer_options o;
    struct clt_trainer *tr = NULL;
    struct clt_test_log text = {0};
    struct clt_log saved = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_ERROR};
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.nesterov = true; /* needs momentum > 0 */
    assert_int_equal(clt_trainer_create(dev, m.g, m.loss, &o, &tr), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "Nesterov"));
    clt_trainer_options_init(&o, CLT_OPTIM_ADAMW);
    o.optimizer.schedule = CLT_LR_COSINE;
    o.optimizer.warmup_updates = 10;
    o.optimizer.total_updates = 10; /* must exceed the warmup */
    assert_int_equal(clt_trainer_create(dev, m.g, m.loss, &o, &tr), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "total_steps must be > warmup_steps"));
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    o.optimizer.beta2 = 1.0;
    assert_int_equal(clt_trainer_create(dev, m.g, m.loss, &o, &tr), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "beta2"));
    o.optimizer.beta2 = 0.999;
    o.optimizer.accumulate = 0;
    assert_int_equal(clt_trainer_create(dev, m.g, m.loss, &o, &tr), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "accumulate"));
    assert_null(tr);
    dev->log = saved;
    clt_graph_free(m.g);
}

/* Parameter groups through the public API. Parameters the loss does not reach have a zero
 * gradient, so one AdamW update multiplies them by exactly the float of 1 - lr * wd (Adam's
 * term is 0 / (0 + eps)): with clt_optimizer_exempt_decay the side branch's bias, layer norm
 * gain and shift, the embedding table and a hand-made parameter marked as a bias stay bit for
 * bit, the side weight decays; a group "fc.*" of lr_scale 0 and no decay freezes the trained
 * layer although its gradient is not zero. */
static void parameter_groups_select_by_kind_and_name(void **state)
{
    struct clt_device *dev = *state;
    enum { N = 3, IN = 5, CLS = 4 };
    struct clt_graph *g = NULL;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){N, IN});
    struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){N});
    struct clt_tensor *ids = clt_input(g, "ids", CLT_I32, 1, (int64_t[]){N});
    struct clt_tensor *logits = clt_linear(g, x, CLS, true, "fc");
    struct clt_tensor *loss = clt_cross_entropy(g, logits, y, -1, 0.0f);
    (void)clt_linear(g, clt_layer_norm(g, x, 1e-5f, "ln"), 2, true, "side"); /* not reached */
    (void)clt_embedding(g, ids, 6, 2, "emb"); /* not reached either */
    struct clt_tensor *hand =
        clt_param(g, "hand", 1, (int64_t[]){3}, (struct clt_init){CLT_INIT_UNIFORM, -1.0f, 1.0f});
    clt_param_set_kind(hand, CLT_PARAM_BIAS);
    assert_int_equal(clt_graph_status(g), CLT_OK);
    assert_int_equal(clt_param_get_kind(hand), CLT_PARAM_BIAS);
    assert_int_equal(clt_param_get_kind(x), CLT_PARAM_WEIGHT);
    clt_param_set_kind(x, CLT_PARAM_BIAS); /* not a parameter: an error of the graph */
    assert_int_equal(clt_graph_status(g), CLT_ERR_INVALID_ARGUMENT);
    clt_graph_free(g);

    /* The same graph again, without the error. */
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){N, IN});
    y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){N});
    ids = clt_input(g, "ids", CLT_I32, 1, (int64_t[]){N});
    logits = clt_linear(g, x, CLS, true, "fc");
    loss = clt_cross_entropy(g, logits, y, -1, 0.0f);
    (void)clt_linear(g, clt_layer_norm(g, x, 1e-5f, "ln"), 2, true, "side");
    (void)clt_embedding(g, ids, 6, 2, "emb");
    hand =
        clt_param(g, "hand", 1, (int64_t[]){3}, (struct clt_init){CLT_INIT_UNIFORM, -1.0f, 1.0f});
    clt_param_set_kind(hand, CLT_PARAM_BIAS);
    assert_int_equal(clt_graph_status(g), CLT_OK);

    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAMW);
    o.optimizer.lr = 0.01;
    o.optimizer.weight_decay = 0.5;
    assert_int_equal(clt_optimizer_add_group(&o.optimizer, "fc.*", 0, 0.0, 0.0), CLT_OK);
    assert_int_equal(clt_optimizer_exempt_decay(&o.optimizer), CLT_OK);
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &tr), CLT_OK);
    const char *names[] = {"ln.weight",   "ln.bias",   "fc.weight",  "fc.bias",
                           "side.weight", "side.bias", "emb.weight", "hand"};
    const uint64_t sizes[] = {IN, IN, CLS * IN, CLS, 2 * IN, 2, 12, 3};
    const bool decays[] = {false, false, false, false, true, false, false, false};
    float *before[8];
    for (int i = 0; i < 8; i++)
        before[i] = read_param(tr, names[i], sizes[i]);
    float xs[N * IN];
    clt_test_fill(xs, N * IN, 9, -1.0f, 1.0f);
    const int32_t ys[N] = {0, 3, 1}, is[N] = {0, 1, 5};
    const void *batch[3] = {xs, ys, is};
    assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    const float factor = (float)(1.0 - 0.01 * 0.5);
    for (int i = 0; i < 8; i++) {
        float *after = read_param(tr, names[i], sizes[i]);
        for (uint64_t k = 0; k < sizes[i]; k++) {
            const float want = decays[i] ? before[i][k] * factor : before[i][k];
            if (after[k] != want)
                fail_msg("%s[%llu] = %.9g after one step, want %.9g", names[i],
                         (unsigned long long)k, (double)after[k], (double)want);
        }
        free(after);
        free(before[i]);
    }
    clt_trainer_free(tr);

    /* Without groups every parameter decays; the gradient-driven layers move. */
    clt_trainer_options_init(&o, CLT_OPTIM_ADAMW);
    o.optimizer.lr = 0.01;
    o.optimizer.weight_decay = 0.5;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &tr), CLT_OK);
    float *b = read_param(tr, "side.bias", 2), *f = read_param(tr, "fc.bias", CLS);
    assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    float *b2 = read_param(tr, "side.bias", 2), *f2 = read_param(tr, "fc.bias", CLS);
    for (int k = 0; k < 2; k++)
        assert_true(b2[k] == b[k] * factor);
    for (int k = 0; k < CLS; k++)
        assert_true(fabsf(f2[k] - f[k] * factor) > 1e-4f); /* Adam's step is about lr */
    free(b);
    free(f);
    free(b2);
    free(f2);
    clt_trainer_free(tr);
    clt_graph_free(g);
}

static void closed_device_fails_cleanly(void **state)
{
    (void)state;
    /* A device of its own: closing the shared one would end the other tests. */
    struct clt_device *dev = clt_test_open();
    struct mlp m = make_mlp(4, 3, 5, 2);
    struct clt_trainer *tr = make_trainer(dev, &m, NULL);
    struct clt_arena *arena = NULL;
    assert_int_equal(clt_arena_create(dev, 4096, &arena), CLT_OK);
    struct clt_view v;
    assert_int_equal(clt_arena_alloc(arena, CLT_F32, 1, (int64_t[]){4}, &v), CLT_OK);
    float x[12] = {0}, buf[4] = {0};
    int32_t y[4] = {0, 1, 0, 1};
    const void *batch[2] = {x, y};
    assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    struct clt_test_log text = {0};
    dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_WARN};
    clt_device_close(dev); /* children alive: the device is only marked closed */
    assert_non_null(strstr(text.text, "closed while 2"));
    float loss;
    struct clt_trainer_stats stats;
    assert_int_equal(clt_trainer_step(tr, batch), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_trainer_loss(tr, &loss), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_trainer_stats(tr, &stats), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_trainer_eval(tr, batch, NULL, NULL, 0, &loss), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_trainer_param_read(tr, "fc1.bias", buf, 5), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_view_write(&v, buf, sizeof buf, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_device_finish(dev), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_device_warm(dev, NULL), CLT_ERR_INVALID_ARGUMENT);
    struct clt_trainer *again = NULL;
    assert_int_equal(clt_trainer_create(dev, m.g, m.loss, NULL, &again), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "was closed"));
    clt_device_close(dev); /* a second close is ignored */
    clt_trainer_free(tr);
    clt_arena_free(arena); /* the last child frees the device */
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
