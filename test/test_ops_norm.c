/*
 * test_ops_norm.c: the rows of test_ops.c's table for batch norm, layer norm, softmax,
 * log-softmax, the losses (cross-entropy, mse) and sdpa on both attention paths: their C
 * references in double, their builders and their rows.
 */
#include <math.h>
#include <stdlib.h>

#include "ops_rig.h"
#include "ref_attention.h"
#include "ref_loss.h"
#include "ref_norm.h"

/* ==== References ========================================================================= */

/* batch norm: x p[0] [N, C, ...], weight p[1], bias p[2], running mean p[3], var p[4]. */
static void bn_dims(const struct ctx *c, int64_t *n, int64_t *ch, int64_t *s)
{
    *n = S(c, 0)[0];
    *ch = S(c, 0)[1];
    *s = count_of(&c->decl[0]) / (*n * *ch);
}

static void ref_batch_norm(const struct ctx *c, double *y)
{
    int64_t n, ch, s;
    bn_dims(c, &n, &ch, &s);
    double mean[8], inv_std[8], var[8];
    ref_batchnorm_forward(n, ch, s, c->p[0], c->p[1], c->p[2], 1e-5, y, mean, inv_std, var);
}

static void ref_batch_norm_eval(const struct ctx *c, double *y)
{
    int64_t n, ch, s;
    bn_dims(c, &n, &ch, &s);
    ref_batchnorm_forward_inference(n, ch, s, c->p[0], c->p[1], c->p[2], c->p[3], c->p[4], 1e-5, y);
}

static void ref_layer_norm(const struct ctx *c, double *y)
{
    int64_t d = S(c, 0)[c->decl[0].ndim - 1], rows = c->ny / d;
    double *mean = calloc((size_t)rows, sizeof *mean), *rstd = calloc((size_t)rows, sizeof *rstd);
    assert_true(mean && rstd);
    ref_layernorm_forward(rows, d, c->p[0], c->p[1], c->p[2], 1e-5, y, mean, rstd);
    free(mean);
    free(rstd);
}

static void ref_softmax(const struct ctx *c, double *y)
{
    int64_t cols = S(c, 0)[1];
    ref_softmax_forward(c->ny / cols, cols, F(c, 0), y);
}

static void ref_log_softmax(const struct ctx *c, double *y)
{
    int64_t cols = S(c, 0)[1];
    ref_log_softmax_forward(c->ny / cols, cols, F(c, 0), y);
}

static void ce_ref(const struct ctx *c, int32_t ignore, double smoothing, double *y)
{
    int64_t rows = S(c, 0)[0], classes = S(c, 0)[1];
    double *d = calloc((size_t)(rows * classes), sizeof *d);
    assert_non_null(d);
    y[0] = ref_cross_entropy(rows, classes, F(c, 0), c->d[1], ignore, smoothing, 1.0, d);
    free(d);
}

static void ref_cross_entropy_plain(const struct ctx *c, double *y)
{
    ce_ref(c, -1, 0.0, y);
}

static void ref_cross_entropy_options(const struct ctx *c, double *y)
{
    ce_ref(c, 2, 0.1, y);
}

static void ref_mse_loss(const struct ctx *c, double *y)
{
    int64_t n = count_of(&c->decl[0]);
    double *d = calloc((size_t)n, sizeof *d);
    assert_non_null(d);
    y[0] = ref_mse(n, F(c, 0), F(c, 1), 1.0, d);
    free(d);
}

static void sdpa_ref(const struct ctx *c, bool causal, double *y)
{
    const int64_t *s = S(c, 0);
    double *p = calloc((size_t)(s[0] * s[1] * s[2] * s[2]), sizeof *p);
    assert_non_null(p);
    ref_attention_forward(F(c, 0), F(c, 1), F(c, 2), s[0], s[1], s[2], s[3],
                          1.0 / sqrt((double)s[3]), causal, p, y);
    free(p);
}

/* Grouped-query: q [B, H, T, D], k and v [B, HKV, T, D]. */
static void ref_sdpa_grouped_causal(const struct ctx *c, double *y)
{
    const int64_t *s = S(c, 0), *skv = S(c, 1);
    double *p = calloc((size_t)(s[0] * s[1] * s[2] * s[2]), sizeof *p);
    assert_non_null(p);
    ref_attention_gqa_forward(F(c, 0), F(c, 1), F(c, 2), s[0], s[1], skv[1], s[2], s[3],
                              1.0 / sqrt((double)s[3]), true, p, y);
    free(p);
}

static void ref_sdpa(const struct ctx *c, double *y)
{
    sdpa_ref(c, false, y);
}

static void ref_sdpa_causal(const struct ctx *c, double *y)
{
    sdpa_ref(c, true, y);
}

/* ==== Builders =========================================================================== */

static struct clt_tensor *b_batch_norm(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_batch_norm(g, t[0], 1e-5f, 0.1f, "bn");
}

static struct clt_tensor *b_layer_norm(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_layer_norm(g, t[0], 1e-5f, "ln");
}

static struct clt_tensor *b_softmax(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_softmax(g, t[0]);
}

static struct clt_tensor *b_log_softmax(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_log_softmax(g, t[0]);
}

static struct clt_tensor *b_cross_entropy(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_cross_entropy(g, t[0], t[1], -1, 0.0f);
}

static struct clt_tensor *b_cross_entropy_options(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_cross_entropy(g, t[0], t[1], 2, 0.1f);
}

static struct clt_tensor *b_mse(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_mse(g, t[0], t[1]);
}

static struct clt_tensor *b_sdpa(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_sdpa(g, t[0], t[1], t[2], false);
}

static struct clt_tensor *b_sdpa_causal(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_sdpa(g, t[0], t[1], t[2], true);
}

const struct op_case ops_norm_cases[] = {
    {"batch_norm",
     "batch_norm [N, C, H, W]",
     1,
     {P4(4, 3, 5, 2)},
     .build = b_batch_norm,
     .ref = ref_batch_norm,
     .ref_eval = ref_batch_norm_eval,
     .grad_atol = 3e-4,
     .grad_rtol = 3e-3},
    {"batch_norm",
     "batch_norm [N, C]",
     1,
     {P2(5, 3)},
     .build = b_batch_norm,
     .ref = ref_batch_norm,
     .ref_eval = ref_batch_norm_eval,
     .grad_atol = 3e-4,
     .grad_rtol = 3e-3,
     .no_batch1 = true},
    {"layer_norm",
     "layer_norm",
     1,
     {P3(3, 4, 6)},
     .build = b_layer_norm,
     .ref = ref_layer_norm,
     .grad_atol = 3e-4,
     .grad_rtol = 3e-3},
    {"softmax", "softmax", 1, {P2(3, 7)}, .build = b_softmax, .ref = ref_softmax},
    {"softmax", "log_softmax", 1, {P2(3, 7)}, .build = b_log_softmax, .ref = ref_log_softmax},
    {"cross_entropy",
     "cross_entropy",
     2,
     {P2(5, 6), {IDS, 1, {5}, 0, 6}},
     .build = b_cross_entropy,
     .ref = ref_cross_entropy_plain},
    {"cross_entropy",
     "cross_entropy ignore_index 2, smoothing 0.1",
     2,
     {P2(5, 6), {IDS, 1, {5}, 0, 6}},
     .build = b_cross_entropy_options,
     .ref = ref_cross_entropy_options},
    {"mse", "mse", 2, {P2(3, 7), {INPUT, 2, {3, 7}, 0, 0}}, .build = b_mse, .ref = ref_mse_loss},
    {"sdpa",
     "sdpa",
     3,
     {P4(2, 2, 5, 3), P4(2, 2, 5, 3), P4(2, 2, 5, 3)},
     .build = b_sdpa,
     .ref = ref_sdpa},
    {"sdpa",
     "sdpa causal",
     3,
     {P4(2, 2, 5, 3), P4(2, 2, 5, 3), P4(2, 2, 5, 3)},
     .build = b_sdpa_causal,
     .ref = ref_sdpa_causal},
    {"sdpa",
     "sdpa grouped-query causal, 3 query heads per key/value head",
     3,
     {P4(2, 6, 3, 3), P4(2, 2, 3, 3), P4(2, 2, 3, 3)},
     .build = b_sdpa_causal,
     .ref = ref_sdpa_grouped_causal},
    /* The same on the tiled path (CLTRAIN_ATTENTION=tiled while the case runs). */
    {"sdpa",
     "sdpa, tiled path",
     3,
     {P4(2, 2, 5, 3), P4(2, 2, 5, 3), P4(2, 2, 5, 3)},
     .build = b_sdpa,
     .ref = ref_sdpa,
     .attention = "tiled"},
    {"sdpa",
     "sdpa causal, tiled path",
     3,
     {P4(2, 2, 37, 3), P4(2, 2, 37, 3), P4(2, 2, 37, 3)},
     .build = b_sdpa_causal,
     .ref = ref_sdpa_causal,
     .attention = "tiled"},
};
const size_t ops_norm_count = sizeof ops_norm_cases / sizeof ops_norm_cases[0];
