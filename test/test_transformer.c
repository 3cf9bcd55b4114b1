/*
 * test_transformer.c: one training step of a small transformer block, built through the
 * public API only, against the C reference step in double (test/ref_transformer.c), and the
 * block's gradients against finite differences of the evaluated loss.
 *
 * The model (ref_transformer.h has the formulas): ids [N, T] -> embedding "emb" -> x;
 * h = x + attention(ln1(x)) (causal, H heads, "attn.qkv" and "attn.proj");
 * out = h + proj(gelu_tanh(fc(ln2(h)))); logits = head(out) [N, T, V]; mean cross-entropy.
 * Sizes N=2, T=5, D=12, H=3 (Dh=4), V=7, F=48: none a multiple of a work-group size. The
 * layer norms' weights and biases are set off their ones and zeros before the step so that
 * both enter the forward; one vocabulary row is never looked up, so its gradient is exactly 0.
 *
 * Tolerances, |got - want| <= atol + rtol * |want|, 3 to 20 times the largest error measured
 * (the loss's more) on PoCL and rusticl, with CLBlast and with the own GEMM, which all agree to
 * two digits. A gradient off by 3e-6 + 1e-4 relative fails the gradient comparison, and one
 * off by 1e-5 the SGD comparison (for parameters below 1 in magnitude):
 * - Loss: rtol 1e-6 (seen 8e-9 relative), here and for the finite-difference model.
 * - SGD, lr 0.1, every parameter after the update: atol 2e-7, rtol 5e-7. The error is the
 *   float rounding of the new parameter (<= 6e-8 relative; seen 1.2e-7 on an embedding weight
 *   of 2.7) plus lr times the gradient's error (seen <= 2e-8).
 * - The gradient SGD applied, (before - after) / lr, against the reference gradient:
 *   atol 3e-6, rtol 1e-4. Recovering it costs the float rounding of the parameters over lr,
 *   up to 6e-8 * 2.7 / 0.1 = 1.6e-6 for the embedding weights (seen 1.2e-6); past that the
 *   error was seen below 3e-7 + 1e-4 |g|.
 * - Adam, lr 0.01, the first step: the update is lr g / (|g| + eps), about lr sign(g). Where
 *   |g| >= 1e-5: atol 2e-7, rtol 5e-7 as for SGD (seen 5e-8); a gradient error d moves the
 *   update by at most lr eps d / g^2 = d there. Where |g| < 1e-5 rounding decides the update,
 *   so only |after - before| <= lr is asked: that is the key third of attn.qkv.bias, whose
 *   gradient is 0 in exact arithmetic (softmax ignores a shift shared by all keys), and a few
 *   elements small by chance (at most 4 allowed, so that the comparison keeps its bite).
 * - The embedding row of an id never looked up: unchanged bit for bit by both optimizers.
 * - Finite differences (N=2, T=4, D=6, H=2, V=5, one label ignored): the gradient of one SGD
 *   step with lr 1 (before - after) against central differences of clt_trainer_eval's loss,
 *   eps 1e-2 in float, at 5 elements spread over each parameter, first and last included:
 *   |fd - grad| <= 1e-4 + 1e-2 |fd|. Seen up to 1.5e-5, mostly the float rounding of the loss
 *   (~1e-7) over 2 eps.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref_transformer.h"

struct block {
    struct clt_graph *g;
    struct clt_tensor *loss;
};

/* The model of ref_transformer.h; inputs "ids" and "labels" [N, T] I32, in that order. */
static struct block make_block(const struct ref_transformer_dims *dm)
{
    struct block b;
    const int64_t n = dm->n, t = dm->t, d = dm->d, v = dm->vocab;
    const float eps = (float)dm->eps;
    assert_int_equal(clt_graph_create(&b.g), CLT_OK);
    struct clt_graph *g = b.g;
    struct clt_tensor *ids = clt_input(g, "ids", CLT_I32, 2, (int64_t[]){n, t});
    struct clt_tensor *labels = clt_input(g, "labels", CLT_I32, 2, (int64_t[]){n, t});
    struct clt_tensor *x = clt_embedding(g, ids, v, d, "emb"); /* [N, T, D] */
    struct clt_tensor *a =
        clt_attention(g, clt_layer_norm(g, x, eps, "ln1"), dm->heads, true, "attn"); /* [N, T, D] */
    struct clt_tensor *h = clt_add(g, x, a);
    struct clt_tensor *f = clt_linear(g, clt_layer_norm(g, h, eps, "ln2"), 4 * d, true, "fc");
    struct clt_tensor *m = clt_linear(g, clt_gelu(g, f, true), d, true, "proj");  /* [N, T, D] */
    struct clt_tensor *logits = clt_linear(g, clt_add(g, h, m), v, true, "head"); /* [N, T, V] */
    b.loss = clt_cross_entropy(g, logits, labels, -1, 0.0f);
    if (clt_graph_status(g) != CLT_OK)
        fail_msg("building the block: %s", clt_graph_error(g));
    return b;
}

/* Sets the layer norms' weights to 1 + U(-0.5, 0.5) and biases to U(-0.2, 0.2). */
static void move_layer_norms(struct clt_trainer *tr, int64_t d, uint64_t seed)
{
    static const char *const names[4] = {"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias"};
    float *p = malloc((size_t)d * sizeof *p);
    assert_non_null(p);
    for (int i = 0; i < 4; i++) {
        bool weight = i % 2 == 0;
        clt_test_fill(p, (size_t)d, seed + (uint64_t)i, weight ? 0.5f : -0.2f,
                      weight ? 1.5f : 0.2f);
        assert_int_equal(clt_trainer_param_write(tr, names[i], p, (uint64_t)d), CLT_OK);
    }
    free(p);
}

/* Reads every parameter of the trainer into a flat block laid out as ref_transformer.h
 * says, checking that the engine made exactly those parameters, in that order and shape. */
static void read_params(struct clt_trainer *tr, const struct ref_transformer_dims *dm, float *flat)
{
    assert_int_equal(clt_trainer_param_count(tr), REF_TRANSFORMER_NPARAMS);
    for (uint32_t i = 0; i < REF_TRANSFORMER_NPARAMS; i++) {
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(tr, i, &info), CLT_OK);
        assert_string_equal(info.name, ref_transformer_param_name(i));
        assert_true(info.trained);
        int64_t count = 1;
        for (uint32_t k = 0; k < info.ndim; k++)
            count *= info.shape[k];
        assert_int_equal(count, ref_transformer_param_size(dm, i));
        assert_int_equal(clt_trainer_param_read(tr, info.name,
                                                flat + ref_transformer_param_offset(dm, i),
                                                (uint64_t)count),
                         CLT_OK);
    }
}

static void *alloc_or_fail(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    assert_non_null(p);
    return p;
}

/* Compares each parameter of got (flat, float) with want (flat, double). */
static void compare_params(const char *what, const struct ref_transformer_dims *dm,
                           const float *got, const double *want, double atol, double rtol)
{
    char label[96];
    for (int i = 0; i < REF_TRANSFORMER_NPARAMS; i++) {
        int64_t off = ref_transformer_param_offset(dm, i);
        size_t n = (size_t)ref_transformer_param_size(dm, i);
        snprintf(label, sizeof label, "%s %s", what, ref_transformer_param_name(i));
        clt_test_assert_close(label, got + off, want + off, n, atol, rtol);
    }
}

/* One batch of the step tests: id 6 is never looked up; every label counts. */
#define UNUSED_ID 6
static const struct ref_transformer_dims step_dims = {
    .n = 2, .t = 5, .d = 12, .heads = 3, .vocab = 7, .eps = (double)1e-5f};
static const int32_t step_ids[10] = {3, 0, 5, 1, 3, 2, 4, 0, 5, 1};
static const int32_t step_labels[10] = {0, 5, 1, 3, 2, 4, 0, 5, 1, 6};

/* What one reference step needs: the parameters before (float, as read, and in double), the
 * reference loss and gradients, and the parameters after the device's step. */
struct step {
    struct block b;
    struct clt_trainer *tr;
    int64_t total;
    float *before, *after;
    double *p, *grad;
    double loss;
    float dev_loss;
};

static void step_run(struct clt_device *dev, const struct clt_trainer_options *o, struct step *s)
{
    const struct ref_transformer_dims *dm = &step_dims;
    s->b = make_block(dm);
    s->tr = NULL;
    assert_int_equal(clt_trainer_create(dev, s->b.g, s->b.loss, o, &s->tr), CLT_OK);
    move_layer_norms(s->tr, dm->d, 40);
    s->total = ref_transformer_params_total(dm);
    s->before = alloc_or_fail((size_t)s->total, sizeof(float));
    s->after = alloc_or_fail((size_t)s->total, sizeof(float));
    s->p = alloc_or_fail((size_t)s->total, sizeof(double));
    s->grad = alloc_or_fail((size_t)s->total, sizeof(double));
    read_params(s->tr, dm, s->before);
    for (int64_t i = 0; i < s->total; i++)
        s->p[i] = s->before[i];
    s->loss = ref_transformer_loss(dm, s->p, step_ids, step_labels, -1, s->grad);
    const void *batch[2] = {step_ids, step_labels};
    assert_int_equal(clt_trainer_step(s->tr, batch), CLT_OK);
    assert_int_equal(clt_trainer_loss(s->tr, &s->dev_loss), CLT_OK);
    read_params(s->tr, dm, s->after);
    struct clt_trainer_stats st;
    assert_int_equal(clt_trainer_stats(s->tr, &st), CLT_OK);
    assert_int_equal(st.updates, 1);
    assert_int_equal(st.skipped, 0);
    const int64_t unused =
        ref_transformer_param_offset(dm, REF_TRANSFORMER_EMB_W) + UNUSED_ID * dm->d;
    assert_memory_equal(s->before + unused, s->after + unused, (size_t)dm->d * sizeof(float));
}

static void step_free(struct step *s)
{
    clt_trainer_free(s->tr);
    clt_graph_free(s->b.g);
    free(s->before);
    free(s->after);
    free(s->p);
    free(s->grad);
}

static void sgd_step_matches_reference(void **state)
{
    struct clt_device *dev = *state;
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.lr = 0.1;
    o.seed = 7;
    struct step s;
    step_run(dev, &o, &s);
    clt_test_assert_close("loss", &s.dev_loss, &s.loss, 1, 0.0, 1e-6);
    /* The gradient the device applied, recovered from the update. */
    float *applied = alloc_or_fail((size_t)s.total, sizeof(float));
    for (int64_t i = 0; i < s.total; i++)
        applied[i] = (float)(((double)s.before[i] - (double)s.after[i]) / (double)o.optimizer.lr);
    compare_params("gradient", &step_dims, applied, s.grad, 3e-6, 1e-4);
    free(applied);
    ref_transformer_sgd_update(s.total, s.p, s.grad, (double)o.optimizer.lr);
    compare_params("sgd", &step_dims, s.after, s.p, 2e-7, 5e-7);
    step_free(&s);
}

static void adam_step_matches_reference(void **state)
{
    struct clt_device *dev = *state;
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    o.optimizer.lr = 0.01;
    o.seed = 8;
    struct step s;
    step_run(dev, &o, &s);
    clt_test_assert_close("loss", &s.dev_loss, &s.loss, 1, 0.0, 1e-6);
    double *m = alloc_or_fail((size_t)s.total, sizeof(double));
    double *v = alloc_or_fail((size_t)s.total, sizeof(double));
    ref_transformer_adam_update(s.total, s.p, m, v, s.grad, 1, (double)o.optimizer.lr,
                                (double)o.optimizer.beta1, (double)o.optimizer.beta2,
                                (double)o.optimizer.eps);
    /* Where |g| < 1e-5 (the unused embedding row aside, checked exactly by step_run) only
     * |after - before| <= lr is asked; the comparison below then takes the device's value. */
    const int64_t key_bias =
        ref_transformer_param_offset(&step_dims, REF_TRANSFORMER_QKV_B) + step_dims.d;
    const int64_t unused =
        ref_transformer_param_offset(&step_dims, REF_TRANSFORMER_EMB_W) + UNUSED_ID * step_dims.d;
    int64_t by_chance = 0;
    for (int64_t i = 0; i < s.total; i++) {
        if (fabs(s.grad[i]) >= 1e-5 || (i >= unused && i < unused + step_dims.d))
            continue;
        by_chance += i < key_bias || i >= key_bias + step_dims.d;
        if (!(fabs((double)s.after[i] - (double)s.before[i]) <= (double)o.optimizer.lr * 1.00001))
            fail_msg("adam: element %ld moved from %.9g to %.9g, more than lr", (long)i,
                     (double)s.before[i], (double)s.after[i]);
        s.p[i] = s.after[i];
    }
    assert_true(by_chance <= 4);
    compare_params("adam", &step_dims, s.after, s.p, 2e-7, 5e-7);
    free(m);
    free(v);
    step_free(&s);
}

/* ---- Gradients against finite differences ------------------------------------------------ */

struct fd_ctx {
    struct clt_trainer *tr;
    const char *name;
    const void *const *batch;
};

static double eval_loss(void *vctx, const float *p, size_t n)
{
    struct fd_ctx *c = vctx;
    float loss = NAN;
    assert_int_equal(clt_trainer_param_write(c->tr, c->name, p, n), CLT_OK);
    assert_int_equal(clt_trainer_eval(c->tr, c->batch, NULL, NULL, 0, &loss), CLT_OK);
    return loss;
}

/* The gradient of one SGD step with lr 1 (p_before - p_after) of every parameter against
 * central differences of the evaluated loss at `samples` elements spread over each. */
static void gradcheck_all(struct clt_trainer *tr, const void *const *batch, size_t samples)
{
    uint32_t np = clt_trainer_param_count(tr);
    float *before[REF_TRANSFORMER_NPARAMS], *grad[REF_TRANSFORMER_NPARAMS];
    uint64_t count[REF_TRANSFORMER_NPARAMS];
    struct clt_param_info info[REF_TRANSFORMER_NPARAMS];
    assert_int_equal(np, REF_TRANSFORMER_NPARAMS);
    for (uint32_t i = 0; i < np; i++) {
        assert_int_equal(clt_trainer_param_info(tr, i, &info[i]), CLT_OK);
        count[i] = 1;
        for (uint32_t d = 0; d < info[i].ndim; d++)
            count[i] *= (uint64_t)info[i].shape[d];
        before[i] = alloc_or_fail(count[i], sizeof(float));
        grad[i] = alloc_or_fail(count[i], sizeof(float));
        assert_int_equal(clt_trainer_param_read(tr, info[i].name, before[i], count[i]), CLT_OK);
    }
    assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    for (uint32_t i = 0; i < np; i++) {
        assert_int_equal(clt_trainer_param_read(tr, info[i].name, grad[i], count[i]), CLT_OK);
        for (uint64_t k = 0; k < count[i]; k++)
            grad[i][k] = before[i][k] - grad[i][k];
    }
    /* Back to the starting point, then probe each parameter. */
    for (uint32_t i = 0; i < np; i++)
        assert_int_equal(clt_trainer_param_write(tr, info[i].name, before[i], count[i]), CLT_OK);
    for (uint32_t i = 0; i < np; i++) {
        struct fd_ctx ctx = {tr, info[i].name, batch};
        clt_test_gradcheck(info[i].name, eval_loss, &ctx, before[i], count[i], grad[i], samples,
                           1e-2, 1e-4, 1e-2);
        assert_int_equal(clt_trainer_param_write(tr, info[i].name, before[i], count[i]), CLT_OK);
    }
    for (uint32_t i = 0; i < np; i++) {
        free(before[i]);
        free(grad[i]);
    }
}

static void gradients_match_finite_differences(void **state)
{
    struct clt_device *dev = *state;
    /* One label is ignored (-1), so the mean runs over 7 rows. */
    const struct ref_transformer_dims dm = {
        .n = 2, .t = 4, .d = 6, .heads = 2, .vocab = 5, .eps = (double)1e-5f};
    const int32_t ids[8] = {1, 4, 0, 2, 3, 1, 1, 4};
    const int32_t labels[8] = {4, 0, -1, 3, 2, 2, 0, 1};
    struct block b = make_block(&dm);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.lr = 1.0;
    o.seed = 12;
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, b.g, b.loss, &o, &tr), CLT_OK);
    move_layer_norms(tr, dm.d, 50);
    const void *batch[2] = {ids, labels};
    /* The loss with an ignored row, against the reference. */
    int64_t total = ref_transformer_params_total(&dm);
    float *pf = alloc_or_fail((size_t)total, sizeof(float));
    double *pd = alloc_or_fail((size_t)total, sizeof(double));
    read_params(tr, &dm, pf);
    for (int64_t i = 0; i < total; i++)
        pd[i] = pf[i];
    double want = ref_transformer_loss(&dm, pd, ids, labels, -1, NULL);
    float got = NAN;
    assert_int_equal(clt_trainer_eval(tr, batch, NULL, NULL, 0, &got), CLT_OK);
    clt_test_assert_close("loss with an ignored label", &got, &want, 1, 0.0, 1e-6);
    free(pf);
    free(pd);
    gradcheck_all(tr, batch, 5);
    clt_trainer_free(tr);
    clt_graph_free(b.g);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(sgd_step_matches_reference),
        CLT_DEVICE_TEST(adam_step_matches_reference),
        CLT_DEVICE_TEST(gradients_match_finite_differences),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
