/*
 * test_trainer_limits.c: what a trainer refuses or shares: the memory plan's sharing and
 * recomputation, models too large for the device, tensors beyond the element limit, bad
 * graphs, bad optimizer options, parameter groups by kind and name, and a closed device.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer_rig.h"

/* ---- Memory ----------------------------------------------------------------------------- */

void memory_is_shared_and_recomputation_saves(void **state)
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
void model_too_large_fails_at_creation(void **state)
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
void tensors_beyond_the_element_limit_are_refused(void **state)
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

void bad_graphs_are_refused(void **state)
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
void optimizer_options_are_checked_at_creation(void **state)
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
void parameter_groups_select_by_kind_and_name(void **state)
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

void closed_device_fails_cleanly(void **state)
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
