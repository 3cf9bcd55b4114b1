/*
 * test_trainer_grad.c: gradients of whole networks through the public API against central
 * differences of the evaluated loss (a parameter used twice, tied embedding and output,
 * layers used twice through their _ex forms, convolutions, sequence ops), and the refusal of
 * wrong tying. Tolerances as test_trainer.c says.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer_rig.h"

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

void mlp_gradients_match_finite_differences(void **state)
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

void shared_parameter_gradients_accumulate(void **state)
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

void tied_embedding_and_output_gradients_match_finite_differences(void **state)
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

void shared_layers_gradients_accumulate(void **state)
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
void tying_mistakes_are_refused(void **state)
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

void cnn_gradients_match_finite_differences(void **state)
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

void sequence_ops_gradients_match_finite_differences(void **state)
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
