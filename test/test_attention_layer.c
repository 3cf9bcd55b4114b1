/*
 * test_attention_layer.c: the attention layer through the public API (clt_attention_ex):
 * its forward and gradients against a C reference of the whole layer and finite
 * differences, and its refusal of bad options.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref_attention.h"

/* ---- The attention layer through the public API ------------------------------------------ */

/* One case of clt_attention_ex: sizes and options. */
struct layer_case {
    int64_t n, t, d, heads, kv_heads;
    bool causal, bias;
};

/* The layer in double from its parameters as the header lays them out: qkv weight
 * [(H + 2 HKV) Dh, D] (queries, keys, values, head by head), qkv bias, proj weight [D, D], proj
 * bias (biases NULL when absent). x [N, T, D] -> y [N, T, D]. */
static void ref_layer(const struct layer_case *c, const float *x, const float *const *prm,
                      double *y)
{
    const int64_t n = c->n, t = c->t, d = c->d, h = c->heads, hkv = c->kv_heads, dh = d / h;
    const int64_t width = (h + 2 * hkv) * dh;
    double *lin = clt_test_doubles((size_t)(n * t * width));
    /* qkv = x w^T + b, then split into [N, heads, T, Dh] blocks. */
    for (int64_t r = 0; r < n * t; r++)
        for (int64_t o = 0; o < width; o++) {
            double acc = prm[1] ? prm[1][o] : 0.0;
            for (int64_t i = 0; i < d; i++)
                acc += (double)x[r * d + i] * prm[0][o * d + i];
            lin[r * width + o] = acc;
        }
    float *q = clt_test_floats((size_t)(n * h * t * dh));
    float *k = clt_test_floats((size_t)(n * hkv * t * dh));
    float *v = clt_test_floats((size_t)(n * hkv * t * dh));
    for (int64_t b = 0; b < n; b++)
        for (int64_t p = 0; p < t; p++)
            for (int64_t f = 0; f < dh; f++) {
                const double *row = lin + (b * t + p) * width;
                for (int64_t hh = 0; hh < h; hh++)
                    q[((b * h + hh) * t + p) * dh + f] = (float)row[hh * dh + f];
                for (int64_t j = 0; j < hkv; j++) {
                    k[((b * hkv + j) * t + p) * dh + f] = (float)row[(h + j) * dh + f];
                    v[((b * hkv + j) * t + p) * dh + f] = (float)row[(h + hkv + j) * dh + f];
                }
            }
    double *pr = clt_test_doubles((size_t)(n * h * t * t)),
           *o = clt_test_doubles((size_t)(n * d * t));
    ref_attention_gqa_forward(q, k, v, n, h, hkv, t, dh, 1.0 / sqrt((double)dh), c->causal, pr, o);
    /* Heads joined per position as [H, Dh], then proj. */
    for (int64_t b = 0; b < n; b++)
        for (int64_t p = 0; p < t; p++)
            for (int64_t e = 0; e < d; e++) {
                double acc = prm[3] ? prm[3][e] : 0.0;
                for (int64_t hh = 0; hh < h; hh++)
                    for (int64_t f = 0; f < dh; f++)
                        acc += o[((b * h + hh) * t + p) * dh + f] * prm[2][e * d + hh * dh + f];
                y[(b * t + p) * d + e] = acc;
            }
    free(lin);
    free(q);
    free(k);
    free(v);
    free(pr);
    free(o);
}

/* The layer's loss sum(y * w) in double, for the finite differences. */
struct layer_fd {
    const struct layer_case *c;
    const float *x, *w;
    float *prm[4];
    uint32_t which;
};

static double layer_loss(void *vctx, const float *p, size_t count)
{
    struct layer_fd *f = vctx;
    const struct layer_case *c = f->c;
    memcpy(f->prm[f->which], p, count * sizeof *p);
    size_t ny = (size_t)(c->n * c->t * c->d);
    double *y = clt_test_doubles(ny), loss = 0.0;
    ref_layer(c, f->x, (const float *const *)f->prm, y);
    for (size_t i = 0; i < ny; i++)
        loss += y[i] * (double)f->w[i];
    free(y);
    return loss;
}

/* clt_attention_ex's output, against the reference that reads the parameters as the header
 * documents them (atol 1e-5, rtol 1e-4), and every parameter's gradient (one SGD step with lr 1
 * of L = sum(y * W)) against central differences of the reference's L in double (atol 1e-4,
 * rtol 1e-3: float forward and backward against double). */
static void check_layer(struct clt_device *dev, const struct layer_case *c)
{
    const int64_t n = c->n, t = c->t, d = c->d, dh = d / c->heads;
    const size_t nx = (size_t)(n * t * d);
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 3, (int64_t[]){n, t, d});
    struct clt_tensor *w = clt_input(g, "w", CLT_F32, 3, (int64_t[]){n, t, d});
    const struct clt_attention_desc desc = {
        .heads = c->heads, .kv_heads = c->kv_heads, .causal = c->causal, .bias = c->bias};
    struct clt_tensor *y = clt_attention_ex(g, x, &desc, "attn");
    struct clt_tensor *loss = clt_sum(g, clt_mul(g, y, w));
    if (clt_graph_status(g) != CLT_OK)
        fail_msg("building: %s", clt_graph_error(g));
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.lr = 1.0f;
    o.seed = 5;
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &tr), CLT_OK);
    /* Exactly the documented parameters, in this order and shape. */
    const char *names[4] = {"attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                            "attn.proj.bias"};
    const int64_t width = (c->heads + 2 * c->kv_heads) * dh;
    const uint64_t sizes[4] = {(uint64_t)(width * d), (uint64_t)width, (uint64_t)(d * d),
                               (uint64_t)d};
    assert_int_equal(clt_trainer_param_count(tr), c->bias ? 4 : 2);
    for (uint32_t i = 0; i < clt_trainer_param_count(tr); i++) {
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(tr, i, &info), CLT_OK);
        assert_string_equal(info.name, names[c->bias ? i : (i == 0 ? 0 : 2)]);
    }
    struct layer_fd f = {c, clt_test_floats(nx), clt_test_floats(nx), {NULL}, 0};
    clt_test_fill((float *)f.x, nx, 61, -1.0f, 1.0f);
    clt_test_fill((float *)f.w, nx, 62, -1.0f, 1.0f);
    for (int i = 0; i < 4; i++) {
        if (!c->bias && i % 2 == 1)
            continue;
        f.prm[i] = clt_test_floats(sizes[i]);
        /* Biases off zero so that they matter; weights as the trainer made them. */
        if (i % 2 == 1) {
            clt_test_fill(f.prm[i], sizes[i], 70 + (uint64_t)i, -0.5f, 0.5f);
            assert_int_equal(clt_trainer_param_write(tr, names[i], f.prm[i], sizes[i]), CLT_OK);
        }
        assert_int_equal(clt_trainer_param_read(tr, names[i], f.prm[i], sizes[i]), CLT_OK);
    }
    float *got = clt_test_floats(nx);
    double *want = clt_test_doubles(nx);
    const void *batch[2] = {f.x, f.w};
    float ev = NAN;
    assert_int_equal(clt_trainer_eval(tr, batch, y, got, nx, &ev), CLT_OK);
    ref_layer(c, f.x, (const float *const *)f.prm, want);
    char what[160];
    snprintf(what, sizeof what, "attention layer N=%lld T=%lld D=%lld H=%lld HKV=%lld%s%s",
             (long long)n, (long long)t, (long long)d, (long long)c->heads, (long long)c->kv_heads,
             c->causal ? " causal" : "", c->bias ? " bias" : "");
    clt_test_assert_close(what, got, want, nx, 1e-5, 1e-4);

    assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    for (uint32_t i = 0; i < 4; i++) {
        if (!f.prm[i])
            continue;
        float *after = clt_test_floats(sizes[i]), *grad = clt_test_floats(sizes[i]);
        assert_int_equal(clt_trainer_param_read(tr, names[i], after, sizes[i]), CLT_OK);
        for (uint64_t j = 0; j < sizes[i]; j++)
            grad[j] = f.prm[i][j] - after[j];
        float *start = clt_test_floats(sizes[i]);
        memcpy(start, f.prm[i], sizes[i] * sizeof *start);
        f.which = i;
        char label[200];
        snprintf(label, sizeof label, "%s %s", what, names[i]);
        clt_test_gradcheck(label, layer_loss, &f, start, sizes[i], grad, 11, 1e-3, 1e-4, 1e-3);
        memcpy(f.prm[i], start, sizes[i] * sizeof *start);
        free(start);
        free(after);
        free(grad);
    }
    for (int i = 0; i < 4; i++)
        free(f.prm[i]);
    free((float *)f.x);
    free((float *)f.w);
    free(got);
    free(want);
    clt_trainer_free(tr);
    clt_graph_free(g);
}

void layer_matches_reference(void **state)
{
    struct clt_device *dev = *state;
    /* Grouped-query without biases; multi-query with; multi-head without; odd sizes. */
    static const struct layer_case cases[] = {
        {2, 5, 12, 4, 2, true, false},
        {3, 3, 9, 3, 1, false, true},
        {1, 7, 10, 2, 2, true, false},
    };
    size_t count = clt_test_small() ? 1 : sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < count; i++)
        check_layer(dev, &cases[i]);
}

/* Impossible options are the graph's error, naming the layer; given parameters are checked. */
void layer_refuses_bad_options(void **state)
{
    (void)state;
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 3, (int64_t[]){2, 3, 12});
    struct clt_attention_desc desc = {.heads = 4, .kv_heads = 3};
    assert_null(clt_attention_ex(g, x, &desc, "attn"));
    assert_non_null(strstr(clt_graph_error(g), "attention \"attn\""));
    assert_non_null(strstr(clt_graph_error(g), "kv_heads 3"));
    clt_graph_free(g);
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    x = clt_input(g, "x", CLT_F32, 3, (int64_t[]){2, 3, 12});
    desc = (struct clt_attention_desc){.heads = 5};
    assert_null(clt_attention_ex(g, x, &desc, "attn"));
    clt_graph_free(g);
    /* A qkv weight of the multi-head shape given to a grouped-query layer. */
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    x = clt_input(g, "x", CLT_F32, 3, (int64_t[]){2, 3, 12});
    struct clt_tensor *wq =
        clt_param(g, "wq", 2, (int64_t[]){36, 12}, (struct clt_init){CLT_INIT_ZEROS, 0, 0});
    desc = (struct clt_attention_desc){.heads = 4, .kv_heads = 2, .qkv = {.weight = wq}};
    assert_null(clt_attention_ex(g, x, &desc, "attn"));
    assert_non_null(strstr(clt_graph_error(g), "\"wq\" is [36, 12]; the layer needs [24, 12]"));
    clt_graph_free(g);
    /* Given every parameter, the layer needs no name and makes nothing. */
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    x = clt_input(g, "x", CLT_F32, 3, (int64_t[]){2, 3, 12});
    assert_non_null(clt_attention(g, x, 4, true, "a"));
    desc = (struct clt_attention_desc){
        .heads = 4,
        .causal = true,
        .bias = true,
        .qkv = {clt_graph_param(g, "a.qkv.weight"), clt_graph_param(g, "a.qkv.bias"), NULL, NULL},
        .proj = {clt_graph_param(g, "a.proj.weight"), clt_graph_param(g, "a.proj.bias"), NULL,
                 NULL}};
    assert_non_null(clt_attention_ex(g, x, &desc, NULL));
    assert_int_equal(clt_graph_status(g), CLT_OK);
    clt_graph_free(g);
}
