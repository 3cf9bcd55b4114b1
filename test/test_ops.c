/*
 * test_ops.c: every op of the registry (engine/ops/ops.h), through the public graph API,
 * against a C reference in double.
 *
 * One table row per case (an op with one set of parameters). For each row, at its own odd
 * shapes and again with its batch axis 1, the test builds y = op(declared tensors) and the
 * loss L = sum(y * W) (W a fixed random input of y's shape, so dL/dy = W), and makes trainers
 * with SGD, lr 1, no momentum and no weight decay, so that one update leaves p - grad and the
 * gradient is read as p_before - p_after. It checks:
 *
 * - forward: clt_trainer_eval's y against the reference in evaluation mode (atol 1e-5 +
 *   rtol 1e-4 unless the row says otherwise), and the loss of the training step against
 *   sum(reference y * W) (atol 1e-5 per output element + rtol 1e-4);
 * - backward, write: the gradient of every trained parameter (the op's inputs and the
 *   layer's own parameters) against central differences of the reference loss in double,
 *   with steps of 5e-4 on values spread 2 / n apart and away from 0, so that no step crosses
 *   a kink of relu or a tie of max pooling (atol 1e-4 + rtol 1e-3 unless the row says
 *   otherwise);
 * - backward, accumulate: with an extra term sum(p * V) made after the op for each declared
 *   parameter p, whose backward runs first, the op's backward adds to the gradient: expect
 *   the write gradient + V (atol 1e-5 + rtol 1e-5);
 * - backward, micro-batches: with accumulate = 2 and the same batch twice, the second step
 *   adds to the first and the update averages: expect the write gradient (same tolerance).
 *
 * 16-bit storage (every_op_in_16_bits, run_case16): every row again in 16 bits at its batch-1
 * shapes (the first row of each op in fp16 and bf16, the others in one of the two, alternating),
 * inputs and parameters rounded to the storage: the forward and the training loss against the
 * reference, the gradient against an fp32 trainer's on the same values, accumulate and
 * micro-batches; within four ulps of the storage (fp16 2^-9, bf16 2^-6) relative and absolute times
 * the row's tol16 factor (1 for every row today: measured on PoCL, every row passes at it). Rows
 * the trainer refuses in 16 bits (the losses: the test's loss reads their fp32 output) and rows
 * that run GEMMs while clt__gemm does not follow the storage are skipped and listed. The
 * finite-difference checks stay fp32.
 *
 * Dropout draws its mask from the step, so its rows check the mask's shape instead: every
 * gradient element is 0 or W / (1 - p) (a mean of two such over two micro-batches).
 *
 * Builders of conv2d and pooling report impossible descriptions through the graph's error and
 * print nothing. A registry op without a row, or without a bench example (unless a view),
 * fails `every_op_has_a_case`. Under Oclgrind
 * (CLTRAIN_TEST_SMALL) only the batch-1 shapes run (and the rows without a batch axis).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref_activation.h"
#include "ref_attention.h"
#include "ref_conv.h"
#include "ref_elementwise.h"
#include "ref_loss.h"
#include "ref_norm.h"
#include "ref_pool.h"
#include "ref_shape.h"

#define MAX_DECL 4
#define MAX_PARAMS 8

/* The step of the central differences: below half the distance between values of
 * fill_spread for every tensor of the table (at most 252 elements). */
#define FD_STEP 5e-4f

/* What a declared tensor is: a trained parameter the test fills, an F32 input, or I32 ids
 * or labels drawn from [lo, hi). */
enum role { PARAM, INPUT, IDS };

struct decl {
    enum role role;
    uint32_t ndim;
    int64_t shape[CLT_MAX_DIMS];
    int32_t lo, hi; /* IDS */
};

struct ctx;

struct op_case {
    const char *op; /* its name in the registry */
    const char *what;
    uint32_t ndecl;
    struct decl decl[MAX_DECL];
    struct clt_tensor *(*build)(struct clt_graph *g, struct clt_tensor *const *t);
    /* y of the training forward, from the values in ctx. */
    void (*ref)(const struct ctx *c, double *y);
    /* y in evaluation, when it differs (batch norm, dropout); NULL: ref. */
    void (*ref_eval)(const struct ctx *c, double *y);
    double fwd_atol, fwd_rtol, grad_atol, grad_rtol; /* 0: the defaults above */
    bool dropout;
    /* No batch-1 run: axis 0 is not a batch (transposed matmul), or one sample has no
     * variance (batch norm over [N, C]). */
    bool no_batch1;
    /* CLTRAIN_ATTENTION while the case runs (the graph op sdpa reads it when built); NULL:
     * unset. */
    const char *attention;
    /* The 16-bit tolerances' factor (run_case16); 0: 1. */
    double tol16;
};

/* The values the reference reads: declared tensors by index, and every parameter and state
 * tensor of the trainer in creation order (declared parameters first, then those the layer
 * made). d[k] points into p[] for declared parameters. */
struct ctx {
    const struct op_case *c;
    struct decl decl[MAX_DECL]; /* the shapes of this run */
    const void *d[MAX_DECL];
    uint32_t np;
    float *p[MAX_PARAMS];
    int64_t pn[MAX_PARAMS];
    bool trained[MAX_PARAMS];
    int64_t ny; /* elements of y */
};

static int64_t count_of(const struct decl *d)
{
    int64_t n = 1;
    for (uint32_t i = 0; i < d->ndim; i++)
        n *= d->shape[i];
    return n;
}

static const float *F(const struct ctx *c, int k)
{
    return c->d[k];
}

static const int64_t *S(const struct ctx *c, int k)
{
    return c->decl[k].shape;
}

/* ==== References ========================================================================= */

static void matmul_ref(const struct ctx *c, bool ta, bool tb, double *y)
{
    const struct decl *a = &c->decl[0], *b = &c->decl[1];
    uint32_t d = a->ndim;
    int64_t batch = d == 3 ? a->shape[0] : 1;
    int64_t m = ta ? a->shape[d - 1] : a->shape[d - 2], k = ta ? a->shape[d - 2] : a->shape[d - 1];
    int64_t n = tb ? b->shape[d - 2] : b->shape[d - 1];
    for (int64_t q = 0; q < batch; q++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t l = 0; l < k; l++) {
                    double av = F(c, 0)[q * m * k + (ta ? l * m + i : i * k + l)];
                    double bv = F(c, 1)[q * k * n + (tb ? j * k + l : l * n + j)];
                    s += av * bv;
                }
                y[(q * m + i) * n + j] = s;
            }
}

static void ref_matmul(const struct ctx *c, double *y)
{
    matmul_ref(c, false, false, y);
}

static void ref_matmul_tt(const struct ctx *c, double *y)
{
    matmul_ref(c, true, true, y);
}

/* linear: x is p[0], weight p[1], bias p[2] (when made). */
static void ref_linear(const struct ctx *c, double *y)
{
    int64_t in = c->decl[0].shape[c->decl[0].ndim - 1], n = count_of(&c->decl[0]) / in;
    int64_t out = c->pn[1] / in;
    ref_linear_forward((size_t)n, (size_t)in, (size_t)out, c->p[0], c->p[1],
                       c->np > 2 ? c->p[2] : NULL, y);
}

/* add, sub, mul: declared a and b of any shapes that broadcast. */
static void ref_binary(const struct ctx *c, char op, double *y)
{
    ref_broadcast_forward(op, c->decl[0].ndim, S(c, 0), F(c, 0), c->decl[1].ndim, S(c, 1), F(c, 1),
                          y);
}

static void ref_add(const struct ctx *c, double *y)
{
    ref_binary(c, '+', y);
}

static void ref_sub(const struct ctx *c, double *y)
{
    ref_binary(c, '-', y);
}

static void ref_mul(const struct ctx *c, double *y)
{
    ref_binary(c, '*', y);
}

static void ref_scale(const struct ctx *c, double *y)
{
    ref_scale_forward((size_t)c->ny, -1.75f, F(c, 0), y);
}

static void ref_add_bias(const struct ctx *c, double *y)
{
    int64_t cols = count_of(&c->decl[1]);
    ref_bias_forward((size_t)(c->ny / cols), (size_t)cols, F(c, 0), F(c, 1), y);
}

static void ref_mul_broadcast(const struct ctx *c, double *y)
{
    int64_t cols = count_of(&c->decl[1]);
    for (int64_t i = 0; i < c->ny; i++)
        y[i] = (double)F(c, 0)[i] * F(c, 1)[i % cols];
}

static void ref_sum(const struct ctx *c, double *y)
{
    y[0] = ref_sum_forward((size_t)count_of(&c->decl[0]), F(c, 0));
}

static void ref_mean(const struct ctx *c, double *y)
{
    int64_t n = count_of(&c->decl[0]);
    y[0] = ref_sum_forward((size_t)n, F(c, 0)) / (double)n;
}

#define ACT_REF(fn, act, slope)                                                                    \
    static void fn(const struct ctx *c, double *y)                                                 \
    {                                                                                              \
        ref_activation_forward(act, slope, F(c, 0), y, (size_t)c->ny);                             \
    }
ACT_REF(ref_relu, CLT__ACT_RELU, 0.0f)
ACT_REF(ref_leaky_relu, CLT__ACT_LEAKY_RELU, 0.13f)
ACT_REF(ref_gelu_tanh, CLT__ACT_GELU_TANH, 0.0f)
ACT_REF(ref_gelu_erf, CLT__ACT_GELU_ERF, 0.0f)
ACT_REF(ref_tanh, CLT__ACT_TANH, 0.0f)
ACT_REF(ref_sigmoid, CLT__ACT_SIGMOID, 0.0f)
ACT_REF(ref_silu, CLT__ACT_SILU, 0.0f)

/* The identity: dropout in evaluation, and the views. */
static void ref_identity(const struct ctx *c, double *y)
{
    ref_copy_forward((size_t)c->ny, F(c, 0), y);
}

/* embedding: ids are declared tensor 0, the table p[0] [7, 5]. */
static void ref_embedding(const struct ctx *c, double *y)
{
    ref_embedding_forward(c->p[0], c->d[0], 7, 5, count_of(&c->decl[0]), y);
}

static const uint32_t PERM[3] = {2, 0, 1};

static void ref_permute(const struct ctx *c, double *y)
{
    ref_permute_forward(F(c, 0), 3, S(c, 0), PERM, y);
}

static void ref_concat(const struct ctx *c, double *y)
{
    const float *xs[3] = {F(c, 0), F(c, 1), F(c, 2)};
    int64_t len[3] = {S(c, 0)[1], S(c, 1)[1], S(c, 2)[1]};
    int64_t shape[3] = {S(c, 0)[0], len[0] + len[1] + len[2], S(c, 0)[2]};
    ref_concat_forward(3, xs, len, 3, shape, 1, y);
}

static void ref_slice(const struct ctx *c, double *y)
{
    ref_slice_forward(F(c, 0), 3, S(c, 0), 1, 1, 3, y);
}

/* The convolutions of the table, in the order of its rows. */
static const struct clt_conv2d_desc CONV[2] = {
    {.out_channels = 4,
     .kernel_h = 3,
     .kernel_w = 3,
     .stride_h = 2,
     .stride_w = 1,
     .padding_h = 1,
     .padding_w = 1,
     .bias = true},
    {.out_channels = 4,
     .kernel_h = 2,
     .kernel_w = 3,
     .dilation_h = 2,
     .dilation_w = 1,
     .padding_w = 1,
     .groups = 2,
     .bias = false},
};

static struct clt__conv2d conv_of(const struct ctx *c, const struct clt_conv2d_desc *d)
{
    const int64_t *s = S(c, 0);
    struct clt__conv2d v = {.n = s[0],
                            .c_in = s[1],
                            .h = s[2],
                            .w = s[3],
                            .c_out = d->out_channels,
                            .kh = d->kernel_h,
                            .kw = d->kernel_w,
                            .stride_h = d->stride_h ? d->stride_h : 1,
                            .stride_w = d->stride_w ? d->stride_w : 1,
                            .pad_h = d->padding_h,
                            .pad_w = d->padding_w,
                            .dil_h = d->dilation_h ? d->dilation_h : 1,
                            .dil_w = d->dilation_w ? d->dilation_w : 1,
                            .groups = d->groups ? d->groups : 1};
    assert_int_equal(clt__conv2d_resolve(NULL, &v), CLT_OK);
    return v;
}

static void ref_conv0(const struct ctx *c, double *y)
{
    struct clt__conv2d v = conv_of(c, &CONV[0]);
    ref_conv2d_forward(&v, c->p[0], c->p[1], c->p[2], y);
}

static void ref_conv1(const struct ctx *c, double *y)
{
    struct clt__conv2d v = conv_of(c, &CONV[1]);
    ref_conv2d_forward(&v, c->p[0], c->p[1], NULL, y);
}

/* Pooling of the table: kernel 3, stride 2, padding 1. */
static struct clt__pool2d pool_of(const struct ctx *c)
{
    const int64_t *s = S(c, 0);
    struct clt__pool2d p = {.n = s[0],
                            .c = s[1],
                            .h = s[2],
                            .w = s[3],
                            .kh = 3,
                            .kw = 3,
                            .stride_h = 2,
                            .stride_w = 2,
                            .pad_h = 1,
                            .pad_w = 1};
    assert_int_equal(clt__pool2d_resolve(NULL, &p), CLT_OK);
    return p;
}

static void ref_max_pool(const struct ctx *c, double *y)
{
    struct clt__pool2d p = pool_of(c);
    int32_t *argmax = calloc((size_t)c->ny, sizeof *argmax);
    assert_non_null(argmax);
    ref_maxpool2d_forward(&p, F(c, 0), y, argmax);
    free(argmax);
}

static void ref_avg_pool(const struct ctx *c, double *y)
{
    struct clt__pool2d p = pool_of(c);
    ref_avgpool2d_forward(&p, F(c, 0), y);
}

static void ref_global_pool(const struct ctx *c, double *y)
{
    const int64_t *s = S(c, 0);
    ref_global_avgpool_forward(s[0] * s[1], s[2] * s[3], F(c, 0), y);
}

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

static struct clt_tensor *b_matmul(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_matmul(g, t[0], t[1], false, false);
}

static struct clt_tensor *b_matmul_tt(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_matmul(g, t[0], t[1], true, true);
}

static struct clt_tensor *b_linear(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_linear(g, t[0], 6, true, "fc");
}

static struct clt_tensor *b_linear_nobias(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_linear(g, t[0], 4, false, "fc");
}

static struct clt_tensor *b_add(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_add(g, t[0], t[1]);
}

static struct clt_tensor *b_sub(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_sub(g, t[0], t[1]);
}

static struct clt_tensor *b_mul(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_mul(g, t[0], t[1]);
}

static struct clt_tensor *b_scale(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_scale(g, t[0], -1.75f);
}

static struct clt_tensor *b_add_bias(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_add_bias(g, t[0], t[1]);
}

static struct clt_tensor *b_mul_broadcast(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_mul_broadcast(g, t[0], t[1]);
}

static struct clt_tensor *b_sum(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_sum(g, t[0]);
}

static struct clt_tensor *b_mean(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_mean(g, t[0]);
}

static struct clt_tensor *b_relu(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_relu(g, t[0]);
}

static struct clt_tensor *b_leaky_relu(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_leaky_relu(g, t[0], 0.13f);
}

static struct clt_tensor *b_gelu_tanh(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_gelu(g, t[0], true);
}

static struct clt_tensor *b_gelu_erf(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_gelu(g, t[0], false);
}

static struct clt_tensor *b_tanh(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_tanh(g, t[0]);
}

static struct clt_tensor *b_sigmoid(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_sigmoid(g, t[0]);
}

static struct clt_tensor *b_silu(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_silu(g, t[0]);
}

static struct clt_tensor *b_dropout(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_dropout(g, t[0], 0.3f);
}

static struct clt_tensor *b_reshape(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_reshape(g, t[0], 2, (int64_t[]){clt_tensor_dim(t[0], 0), 20});
}

static struct clt_tensor *b_flatten(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_flatten(g, t[0]);
}

static struct clt_tensor *b_embedding(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_embedding(g, t[0], 7, 5, "emb");
}

static struct clt_tensor *b_permute(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_permute(g, t[0], PERM);
}

static struct clt_tensor *b_concat(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_concat(g, 3, t, 1);
}

static struct clt_tensor *b_slice(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_slice(g, t[0], 1, 1, 3);
}

static struct clt_tensor *b_conv0(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_conv2d(g, t[0], &CONV[0], "conv");
}

static struct clt_tensor *b_conv1(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_conv2d(g, t[0], &CONV[1], "conv");
}

static struct clt_tensor *b_max_pool(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_max_pool2d(g, t[0], 3, 2, 1);
}

static struct clt_tensor *b_avg_pool(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_avg_pool2d(g, t[0], 3, 2, 1);
}

static struct clt_tensor *b_global_pool(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_global_avg_pool2d(g, t[0]);
}

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

/* ==== The table ========================================================================== */

#define P1(a)                                                                                      \
    {                                                                                              \
        PARAM, 1, {a}, 0, 0                                                                        \
    }
#define P2(a, b)                                                                                   \
    {                                                                                              \
        PARAM, 2, {a, b}, 0, 0                                                                     \
    }
#define P3(a, b, c)                                                                                \
    {                                                                                              \
        PARAM, 3, {a, b, c}, 0, 0                                                                  \
    }
#define P4(a, b, c, d)                                                                             \
    {                                                                                              \
        PARAM, 4, {a, b, c, d}, 0, 0                                                               \
    }

/* Shapes are odd and not multiples of any work-group size; the first axis of the first
 * declared tensor is the batch, set to 1 (with every declared axis 0 of the same size) in
 * the batch-1 run. */
static const struct op_case CASES[] = {
    {"matmul", "matmul", 2, {P2(3, 5), P2(5, 4)}, .build = b_matmul, .ref = ref_matmul},
    {"matmul",
     "matmul trans_a trans_b",
     2,
     {P2(5, 3), P2(4, 5)},
     .build = b_matmul_tt,
     .ref = ref_matmul_tt,
     .no_batch1 = true},
    {"matmul", "matmul 3-D", 2, {P3(2, 3, 5), P3(2, 5, 4)}, .build = b_matmul, .ref = ref_matmul},
    {"linear", "linear with bias, 3-D x", 1, {P3(3, 2, 7)}, .build = b_linear, .ref = ref_linear},
    {"linear", "linear without bias", 1, {P2(5, 7)}, .build = b_linear_nobias, .ref = ref_linear},
    {"add", "add", 2, {P2(3, 7), P2(3, 7)}, .build = b_add, .ref = ref_add},
    {"add", "add [T, D] + [N, T, D]", 2, {P2(4, 5), P3(3, 4, 5)}, .build = b_add, .ref = ref_add},
    {"add", "add [N, T, D] + [D]", 2, {P3(3, 4, 5), P1(5)}, .build = b_add, .ref = ref_add},
    {"sub", "sub", 2, {P2(3, 7), P2(3, 7)}, .build = b_sub, .ref = ref_sub},
    {"sub", "sub [N, T, D] - [T, 1]", 2, {P3(3, 4, 5), P2(4, 1)}, .build = b_sub, .ref = ref_sub},
    {"sub", "sub [1] - [N, D]", 2, {P1(1), P2(3, 7)}, .build = b_sub, .ref = ref_sub},
    {"mul", "mul", 2, {P2(3, 7), P2(3, 7)}, .build = b_mul, .ref = ref_mul},
    {"mul",
     "mul [N, 1, D] * [1, T, 1]",
     2,
     {P3(3, 1, 5), P3(1, 4, 1)},
     .build = b_mul,
     .ref = ref_mul},
    {"mul", "mul [N, T, D] * [T, D]", 2, {P3(3, 4, 5), P2(4, 5)}, .build = b_mul, .ref = ref_mul},
    {"mul",
     "mul [2, 1, 3, 1, 2, 1] * [3, 1, 2, 1, 2]",
     2,
     {{PARAM, 6, {2, 1, 3, 1, 2, 1}, 0, 0}, {PARAM, 5, {3, 1, 2, 1, 2}, 0, 0}},
     .build = b_mul,
     .ref = ref_mul},
    {"scale", "scale", 1, {P2(3, 7)}, .build = b_scale, .ref = ref_scale},
    {"add_bias",
     "add_bias",
     2,
     {P3(3, 4, 5), {PARAM, 1, {5}, 0, 0}},
     .build = b_add_bias,
     .ref = ref_add_bias},
    {"add_bias",
     "add_bias [T, D] on [N, T, D]",
     2,
     {P3(3, 4, 5), P2(4, 5)},
     .build = b_add_bias,
     .ref = ref_add_bias},
    {"mul_broadcast",
     "mul_broadcast [T, D] on [N, T, D]",
     2,
     {P3(3, 4, 5), P2(4, 5)},
     .build = b_mul_broadcast,
     .ref = ref_mul_broadcast},
    {"mul_broadcast",
     "mul_broadcast [D] on [N, D]",
     2,
     {P2(5, 7), {PARAM, 1, {7}, 0, 0}},
     .build = b_mul_broadcast,
     .ref = ref_mul_broadcast},
    {"sum", "sum", 1, {P2(3, 7)}, .build = b_sum, .ref = ref_sum},
    {"sum", "mean", 1, {P2(3, 7)}, .build = b_mean, .ref = ref_mean},
    {"activation", "relu", 1, {P2(3, 11)}, .build = b_relu, .ref = ref_relu},
    {"activation", "leaky_relu", 1, {P2(3, 11)}, .build = b_leaky_relu, .ref = ref_leaky_relu},
    {"activation", "gelu tanh", 1, {P2(3, 11)}, .build = b_gelu_tanh, .ref = ref_gelu_tanh},
    {"activation", "gelu erf", 1, {P2(3, 11)}, .build = b_gelu_erf, .ref = ref_gelu_erf},
    {"activation", "tanh", 1, {P2(3, 11)}, .build = b_tanh, .ref = ref_tanh},
    {"activation", "sigmoid", 1, {P2(3, 11)}, .build = b_sigmoid, .ref = ref_sigmoid},
    {"activation", "silu", 1, {P2(3, 11)}, .build = b_silu, .ref = ref_silu},
    {"dropout",
     "dropout",
     1,
     {P2(5, 13)},
     .build = b_dropout,
     .ref = NULL,
     .ref_eval = ref_identity,
     .dropout = true},
    {"reshape", "reshape", 1, {P3(3, 4, 5)}, .build = b_reshape, .ref = ref_identity},
    {"reshape", "flatten", 1, {P3(3, 2, 5)}, .build = b_flatten, .ref = ref_identity},
    {"embedding",
     "embedding, one id out of range",
     1,
     {{IDS, 2, {3, 4}, -1, 7}},
     .build = b_embedding,
     .ref = ref_embedding},
    {"permute", "permute", 1, {P3(3, 4, 5)}, .build = b_permute, .ref = ref_permute},
    {"concat",
     "concat",
     3,
     {P3(3, 2, 4), P3(3, 3, 4), P3(3, 1, 4)},
     .build = b_concat,
     .ref = ref_concat},
    {"slice", "slice", 1, {P3(3, 5, 4)}, .build = b_slice, .ref = ref_slice},
    {"conv2d",
     "conv2d stride 2x1, padding, bias",
     1,
     {P4(2, 3, 7, 6)},
     .build = b_conv0,
     .ref = ref_conv0},
    {"conv2d",
     "conv2d dilation 2x1, groups 2",
     1,
     {P4(2, 4, 6, 5)},
     .build = b_conv1,
     .ref = ref_conv1},
    {"pool2d", "max_pool2d", 1, {P4(2, 3, 7, 6)}, .build = b_max_pool, .ref = ref_max_pool},
    {"pool2d", "avg_pool2d", 1, {P4(2, 3, 7, 6)}, .build = b_avg_pool, .ref = ref_avg_pool},
    {"pool2d",
     "global_avg_pool2d",
     1,
     {P4(2, 3, 5, 3)},
     .build = b_global_pool,
     .ref = ref_global_pool},
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

#define NCASES (sizeof CASES / sizeof CASES[0])

/* ==== Running one case =================================================================== */

/* Values spread evenly over (-1, 1), 2 / n apart and at least 0.5 / n from 0, in an order
 * shuffled by seed: no two elements tie and none sits at a kink within the step of the
 * finite differences. */
static void fill_spread(float *x, int64_t n, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(((double)i + 0.25) / (double)n * 2.0 - 1.0);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = n - 1; i > 0; i--) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        int64_t j = (int64_t)(s % (uint64_t)(i + 1));
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

enum variant { WRITE, ACCUMULATE, MICRO };

/* One trainer over the case: graph, inputs (declared inputs, W, then V per declared
 * parameter), trainer. */
struct run {
    struct clt_graph *g;
    struct clt_tensor *y;
    struct clt_trainer *tr;
    const void *inputs[2 * MAX_DECL + 1];
    uint32_t ninputs;
};

/* Makes the trainer of a variant in precision prec (fp16 with a loss scale of 1: the seed
 * 65536 itself would overflow sum's 16-bit gradient). Returns the creation's status: only
 * CLT_OK in fp32; CLT_ERR_UNSUPPORTED in 16 bits skips the row. */
static enum clt_status run_make_in(struct clt_device *dev, struct ctx *c, enum variant v,
                                   const float *w, float *const *vv, enum clt_precision prec,
                                   struct run *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(clt_graph_create(&r->g), CLT_OK);
    struct clt_tensor *t[MAX_DECL];
    for (uint32_t k = 0; k < c->c->ndecl; k++) {
        const struct decl *d = &c->decl[k];
        char name[16];
        snprintf(name, sizeof name, "t%u", k);
        if (d->role == PARAM) {
            t[k] = clt_param(r->g, name, d->ndim, d->shape, (struct clt_init){CLT_INIT_ZEROS});
        } else {
            t[k] = clt_input(r->g, name, d->role == IDS ? CLT_I32 : CLT_F32, d->ndim, d->shape);
            r->inputs[r->ninputs++] = c->d[k];
        }
    }
    r->y = c->c->build(r->g, t);
    if (clt_graph_status(r->g) != CLT_OK)
        fail_msg("%s: %s", c->c->what, clt_graph_error(r->g));
    int64_t yshape[CLT_MAX_DIMS];
    uint32_t yd = clt_tensor_ndim(r->y);
    for (uint32_t i = 0; i < yd; i++)
        yshape[i] = clt_tensor_dim(r->y, i);
    struct clt_tensor *wt = clt_input(r->g, "w", CLT_F32, yd, yshape);
    r->inputs[r->ninputs++] = w;
    struct clt_tensor *loss = clt_sum(r->g, clt_mul(r->g, r->y, wt));
    for (uint32_t k = 0; v == ACCUMULATE && k < c->c->ndecl; k++) {
        if (c->decl[k].role != PARAM)
            continue;
        char name[16];
        snprintf(name, sizeof name, "v%u", k);
        struct clt_tensor *vt = clt_input(r->g, name, CLT_F32, c->decl[k].ndim, c->decl[k].shape);
        r->inputs[r->ninputs++] = vv[k];
        loss = clt_add(r->g, loss, clt_sum(r->g, clt_mul(r->g, t[k], vt)));
    }
    assert_int_equal(clt_graph_status(r->g), CLT_OK);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.lr = 1.0;
    o.optimizer.accumulate = v == MICRO ? 2 : 1;
    o.seed = 7;
    o.precision = prec;
    o.loss_scaling.init_scale = 1.0;
    enum clt_status st = clt_trainer_create(dev, r->g, loss, &o, &r->tr);
    if (prec == CLT_PRECISION_FP32 || st != CLT_ERR_UNSUPPORTED)
        assert_int_equal(st, CLT_OK);
    return st;
}

static void run_make(struct clt_device *dev, struct ctx *c, enum variant v, const float *w,
                     float *const *vv, struct run *r)
{
    run_make_in(dev, c, v, w, vv, CLT_PRECISION_FP32, r);
}

static void run_free(struct run *r)
{
    clt_trainer_free(r->tr);
    clt_graph_free(r->g);
}

/* Reads every parameter and state tensor of a trainer into c->p (allocated the first time). */
static void read_params(struct clt_trainer *tr, struct ctx *c, float **into)
{
    uint32_t n = clt_trainer_param_count(tr);
    assert_true(n <= MAX_PARAMS);
    for (uint32_t i = 0; i < n; i++) {
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(tr, i, &info), CLT_OK);
        int64_t count = 1;
        for (uint32_t d = 0; d < info.ndim; d++)
            count *= info.shape[d];
        if (!into[i])
            into[i] = clt_test_floats((size_t)count);
        assert_int_equal(clt_trainer_param_read(tr, info.name, into[i], (uint64_t)count), CLT_OK);
        c->pn[i] = count;
        c->trained[i] = info.trained;
    }
    c->np = n;
}

/* The gradient of one update: before - after, per trained parameter. */
static void step_gradients(struct run *r, struct ctx *c, uint32_t steps, float **grad)
{
    for (uint32_t s = 0; s < steps; s++)
        assert_int_equal(clt_trainer_step(r->tr, r->inputs), CLT_OK);
    float *after[MAX_PARAMS] = {NULL};
    struct ctx tmp = *c;
    read_params(r->tr, &tmp, after);
    for (uint32_t i = 0; i < c->np; i++) {
        grad[i] = clt_test_floats((size_t)c->pn[i]);
        for (int64_t e = 0; e < c->pn[i]; e++)
            grad[i][e] = c->p[i][e] - after[i][e];
        free(after[i]);
    }
}

/* sum(ref y * W) in double, in training mode. */
static double ref_loss(const struct ctx *c, const float *w, double *y)
{
    c->c->ref(c, y);
    double s = 0;
    for (int64_t i = 0; i < c->ny; i++)
        s += y[i] * w[i];
    return s;
}

static void run_case(struct clt_device *dev, const struct op_case *oc, bool batch1)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.c = oc;
    memcpy(c.decl, oc->decl, sizeof c.decl);
    int64_t b0 = oc->decl[0].shape[0];
    for (uint32_t k = 0; batch1 && k < oc->ndecl; k++)
        if (c.decl[k].shape[0] == b0)
            c.decl[k].shape[0] = 1;
    char what[160];
    snprintf(what, sizeof what, "%s (%s)%s", oc->what, oc->op, batch1 ? ", batch 1" : "");

    /* Declared inputs: F32 data, or ids spread over [lo, hi). */
    void *inputs[MAX_DECL] = {NULL};
    for (uint32_t k = 0; k < oc->ndecl; k++) {
        int64_t n = count_of(&c.decl[k]);
        if (c.decl[k].role == INPUT) {
            float *x = clt_test_floats((size_t)n);
            clt_test_fill(x, (size_t)n, 100 + k, -1.0f, 1.0f);
            inputs[k] = x;
        } else if (c.decl[k].role == IDS) {
            int32_t *ids = calloc((size_t)n, sizeof *ids);
            assert_non_null(ids);
            int32_t span = c.decl[k].hi - c.decl[k].lo;
            for (int64_t i = 0; i < n; i++)
                ids[i] = c.decl[k].lo + (int32_t)((i * 5 + 3) % span);
            inputs[k] = ids;
        }
        c.d[k] = inputs[k];
    }

    /* The write trainer: fill the trained parameters, read them all back. */
    struct run a;
    float *w = NULL;
    float *vv[MAX_DECL] = {NULL};
    {
        /* W's size comes from the graph: build once with a placeholder to learn it. */
        struct clt_graph *g;
        assert_int_equal(clt_graph_create(&g), CLT_OK);
        struct clt_tensor *t[MAX_DECL];
        for (uint32_t k = 0; k < oc->ndecl; k++) {
            char name[16];
            snprintf(name, sizeof name, "t%u", k);
            t[k] = clt_input(g, name, c.decl[k].role == IDS ? CLT_I32 : CLT_F32, c.decl[k].ndim,
                             c.decl[k].shape);
        }
        struct clt_tensor *y = oc->build(g, t);
        if (clt_graph_status(g) != CLT_OK)
            fail_msg("%s: %s", what, clt_graph_error(g));
        c.ny = 1;
        for (uint32_t i = 0; i < clt_tensor_ndim(y); i++)
            c.ny *= clt_tensor_dim(y, i);
        clt_graph_free(g);
    }
    w = clt_test_floats((size_t)c.ny);
    clt_test_fill(w, (size_t)c.ny, 17, -1.0f, 1.0f);
    for (uint32_t k = 0; k < oc->ndecl; k++) {
        if (c.decl[k].role != PARAM)
            continue;
        int64_t n = count_of(&c.decl[k]);
        vv[k] = clt_test_floats((size_t)n);
        clt_test_fill(vv[k], (size_t)n, 200 + k, -1.0f, 1.0f);
    }
    run_make(dev, &c, WRITE, w, vv, &a);
    float *pv[MAX_PARAMS] = {NULL};
    read_params(a.tr, &c, pv);
    for (uint32_t i = 0; i < c.np; i++) {
        c.p[i] = pv[i];
        if (!c.trained[i])
            continue;
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(a.tr, i, &info), CLT_OK);
        fill_spread(pv[i], c.pn[i], 31 + i);
        assert_int_equal(clt_trainer_param_write(a.tr, info.name, pv[i], (uint64_t)c.pn[i]),
                         CLT_OK);
    }
    for (uint32_t k = 0, j = 0; k < oc->ndecl; k++)
        if (c.decl[k].role == PARAM)
            c.d[k] = c.p[j++];

    double fatol = oc->fwd_atol ? oc->fwd_atol : 1e-5, frtol = oc->fwd_rtol ? oc->fwd_rtol : 1e-4;
    double gatol = oc->grad_atol ? oc->grad_atol : 1e-4,
           grtol = oc->grad_rtol ? oc->grad_rtol : 1e-3;
    char msg[220];

    /* Forward in evaluation. */
    double *yref = clt_test_doubles((size_t)c.ny);
    float *y = clt_test_floats((size_t)c.ny);
    float loss_eval = 0;
    assert_int_equal(clt_trainer_eval(a.tr, a.inputs, a.y, y, (uint64_t)c.ny, &loss_eval), CLT_OK);
    (oc->ref_eval ? oc->ref_eval : oc->ref)(&c, yref);
    snprintf(msg, sizeof msg, "%s: forward", what);
    clt_test_assert_close(msg, y, yref, (size_t)c.ny, fatol, frtol);

    /* Write: one step; its loss is the training forward. */
    float *ga[MAX_PARAMS] = {NULL};
    step_gradients(&a, &c, 1, ga);
    if (!oc->dropout) {
        float loss = 0;
        assert_int_equal(clt_trainer_loss(a.tr, &loss), CLT_OK);
        double want = ref_loss(&c, w, yref);
        snprintf(msg, sizeof msg, "%s: training loss", what);
        clt_test_assert_close(msg, &loss, &want, 1, fatol * (double)c.ny, frtol);
        /* Central differences of the reference loss, per trained element. */
        for (uint32_t i = 0; i < c.np; i++) {
            if (!c.trained[i])
                continue;
            double *fd = clt_test_doubles((size_t)c.pn[i]);
            for (int64_t e = 0; e < c.pn[i]; e++) {
                float keep = c.p[i][e];
                c.p[i][e] = keep + FD_STEP;
                float hi = c.p[i][e];
                double lp = ref_loss(&c, w, yref);
                c.p[i][e] = keep - FD_STEP;
                float lo = c.p[i][e];
                double lm = ref_loss(&c, w, yref);
                c.p[i][e] = keep;
                fd[e] = (lp - lm) / ((double)hi - (double)lo);
            }
            snprintf(msg, sizeof msg, "%s: gradient of parameter %u (write)", what, i);
            clt_test_assert_close(msg, ga[i], fd, (size_t)c.pn[i], gatol, grtol);
            free(fd);
        }
    } else {
        /* Each element is dropped (0) or kept and scaled by 1 / (1 - p). */
        for (int64_t e = 0; e < c.pn[0]; e++) {
            double kept = w[e] / (1.0 - 0.3);
            bool ok = fabs(ga[0][e]) <= 1e-6 || fabs(ga[0][e] - kept) <= 1e-5 + 1e-5 * fabs(kept);
            if (!ok)
                fail_msg("%s: gradient element %lld is %g, neither 0 nor %g", what, (long long)e,
                         (double)ga[0][e], kept);
        }
    }
    run_free(&a);

    /* Accumulate: the extra terms' backward writes first, the op's adds. */
    struct run b;
    run_make(dev, &c, ACCUMULATE, w, vv, &b);
    for (uint32_t i = 0; i < c.np; i++)
        if (c.trained[i]) {
            struct clt_param_info info;
            assert_int_equal(clt_trainer_param_info(b.tr, i, &info), CLT_OK);
            assert_int_equal(clt_trainer_param_write(b.tr, info.name, c.p[i], (uint64_t)c.pn[i]),
                             CLT_OK);
        }
    float *gb[MAX_PARAMS] = {NULL};
    step_gradients(&b, &c, 1, gb);
    /* Declared parameters come first among the trainer's parameters, in their order. */
    int decl_of[MAX_PARAMS];
    for (uint32_t i = 0; i < MAX_PARAMS; i++)
        decl_of[i] = -1;
    for (uint32_t k = 0, j = 0; k < oc->ndecl; k++)
        if (c.decl[k].role == PARAM)
            decl_of[j++] = (int)k;
    for (uint32_t i = 0; i < c.np; i++) {
        if (!c.trained[i])
            continue;
        double *want = clt_test_doubles((size_t)c.pn[i]);
        for (int64_t e = 0; e < c.pn[i]; e++)
            want[e] = (double)ga[i][e] + (decl_of[i] >= 0 ? vv[decl_of[i]][e] : 0.0);
        snprintf(msg, sizeof msg, "%s: gradient of parameter %u (accumulate)", what, i);
        clt_test_assert_close(msg, gb[i], want, (size_t)c.pn[i], 1e-5, 1e-5);
        free(want);
    }
    run_free(&b);

    /* Micro-batches: two steps of the same batch, then one update with their mean. */
    struct run m;
    run_make(dev, &c, MICRO, w, vv, &m);
    for (uint32_t i = 0; i < c.np; i++)
        if (c.trained[i]) {
            struct clt_param_info info;
            assert_int_equal(clt_trainer_param_info(m.tr, i, &info), CLT_OK);
            assert_int_equal(clt_trainer_param_write(m.tr, info.name, c.p[i], (uint64_t)c.pn[i]),
                             CLT_OK);
        }
    float *gm[MAX_PARAMS] = {NULL};
    step_gradients(&m, &c, 2, gm);
    for (uint32_t i = 0; i < c.np; i++) {
        if (!c.trained[i])
            continue;
        if (oc->dropout) {
            /* Two masks: the mean of two elements each 0 or W / (1 - p). */
            for (int64_t e = 0; e < c.pn[i]; e++) {
                double r = gm[i][e] / (w[e] / (1.0 - 0.3));
                bool ok = fabs(r) < 1e-4 || fabs(r - 0.5) < 1e-4 || fabs(r - 1.0) < 1e-4;
                if (!ok)
                    fail_msg("%s: micro-batch gradient element %lld is %g W / (1 - p)", what,
                             (long long)e, r);
            }
        } else {
            double *want = clt_test_doubles((size_t)c.pn[i]);
            for (int64_t e = 0; e < c.pn[i]; e++)
                want[e] = ga[i][e];
            snprintf(msg, sizeof msg, "%s: gradient of parameter %u (micro-batches)", what, i);
            clt_test_assert_close(msg, gm[i], want, (size_t)c.pn[i], 1e-5, 1e-5);
            free(want);
        }
    }
    run_free(&m);

    for (uint32_t i = 0; i < MAX_PARAMS; i++) {
        free(pv[i]);
        free(ga[i]);
        free(gb[i]);
        free(gm[i]);
    }
    for (uint32_t k = 0; k < MAX_DECL; k++) {
        free(inputs[k]);
        free(vv[k]);
    }
    free(w);
    free(y);
    free(yref);
}

/* ==== 16-bit storage ====================================================================== */

/* The 16-bit tolerances, before a row's factor (op_case.tol16): four ulps of the storage,
 * relative and absolute (fp16 2^-11, bf16 2^-8 per rounding): inputs, parameters, the op's
 * stored output and the loss's product W * y each round once. */
static double tol16(enum clt_precision p)
{
    return p == CLT_PRECISION_FP16 ? 4.0 / 2048 : 4.0 / 256;
}

/* Whether clt__gemm follows the storage in this build (the GEMM branch of issue 16): a 2 x 3
 * by 3 x 2 product of small integers (exact in every storage) in fp16. Rows whose ops run
 * GEMMs are skipped in 16 bits otherwise. */
/* A log that drops what it is told: refusals this test expects, and lists itself. */
static void quiet(void *user, enum clt_log_level level, const char *message)
{
    (void)user;
    (void)level;
    (void)message;
}

static bool gemm_follows_storage(struct clt_device *dev)
{
    static int known = -1;
    if (known >= 0)
        return known;
    struct clt_arena *arena = NULL;
    assert_int_equal(clt_arena_create(dev, 4096, &arena), CLT_OK);
    const float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 2, 1, 0, 3};
    struct clt_view va = clt_test_tensor_st(arena, a, 6, CLT_PRECISION_FP16);
    struct clt_view vb = clt_test_tensor_st(arena, b, 6, CLT_PRECISION_FP16);
    struct clt_view vc = clt_test_tensor_st(arena, NULL, 4, CLT_PRECISION_FP16);
    struct clt_gemm_shape g = {.m = 2, .n = 2, .k = 3, .alpha = 1.0f, .beta = 0.0f};
    struct clt_log saved = dev->log;
    dev->log = (struct clt_log){quiet, NULL, CLT_LOG_ERROR}; /* a refusal is an answer here */
    enum clt_precision was = clt__storage_set(dev, CLT_PRECISION_FP16);
    enum clt_status st = clt__gemm(dev, &g, clt_test_buf_st(&va, CLT_PRECISION_FP16),
                                   clt_test_buf_st(&vb, CLT_PRECISION_FP16),
                                   clt_test_buf_st(&vc, CLT_PRECISION_FP16));
    clt__storage_set(dev, was);
    dev->log = saved;
    float c[4] = {0};
    if (st == CLT_OK)
        clt_test_get_st(&vc, c, 4, CLT_PRECISION_FP16);
    known = st == CLT_OK && c[0] == 5 && c[1] == 11 && c[2] == 14 && c[3] == 23;
    clt_arena_free(arena);
    return known;
}

/* Whether a row's op runs GEMMs: matmul, linear, conv2d, and sdpa but on its tiled path. */
static bool runs_gemm(const struct op_case *oc)
{
    if (strcmp(oc->op, "sdpa") == 0)
        return !oc->attention || strcmp(oc->attention, "tiled") != 0;
    static const char *const ops[] = {"matmul", "linear", "conv2d"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(oc->op, ops[i]) == 0)
            return true;
    return false;
}

/* One row in a 16-bit storage, at its shapes (batch1: with its batch axis 1). Inputs, W, V
 * and the parameters are rounded to the storage first (the reference sees the values the
 * device holds), then:
 * - forward: evaluation's y against the reference in double, and the training loss;
 * - backward, write: the 16-bit gradient against an fp32 trainer's on the same values (the
 *   finite-difference checks are fp32's, run_case);
 * - accumulate: the write gradient + V; micro-batches: the write gradient (both micro-steps
 *   give the same 16-bit gradient, added and averaged in fp32: 1e-5).
 * Tolerances: tol16(prec) times the row's tol16 factor, relative and absolute (the loss:
 * absolute times the elements of y). Returns false when the trainer refuses the row. */
static bool run_case16(struct clt_device *dev, const struct op_case *oc, bool batch1,
                       enum clt_precision prec)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.c = oc;
    memcpy(c.decl, oc->decl, sizeof c.decl);
    int64_t b0 = oc->decl[0].shape[0];
    for (uint32_t k = 0; batch1 && k < oc->ndecl; k++)
        if (c.decl[k].shape[0] == b0)
            c.decl[k].shape[0] = 1;
    char what[160];
    snprintf(what, sizeof what, "%s (%s)%s in %s", oc->what, oc->op, batch1 ? ", batch 1" : "",
             clt_precision_name(prec));
    void *inputs[MAX_DECL] = {NULL};
    for (uint32_t k = 0; k < oc->ndecl; k++) {
        int64_t n = count_of(&c.decl[k]);
        if (c.decl[k].role == INPUT) {
            float *x = clt_test_floats((size_t)n);
            clt_test_fill(x, (size_t)n, 100 + k, -1.0f, 1.0f);
            clt_test_round(x, (size_t)n, prec);
            inputs[k] = x;
        } else if (c.decl[k].role == IDS) {
            int32_t *ids = calloc((size_t)n, sizeof *ids);
            assert_non_null(ids);
            int32_t span = c.decl[k].hi - c.decl[k].lo;
            for (int64_t i = 0; i < n; i++)
                ids[i] = c.decl[k].lo + (int32_t)((i * 5 + 3) % span);
            inputs[k] = ids;
        }
        c.d[k] = inputs[k];
    }
    {
        struct clt_graph *g;
        assert_int_equal(clt_graph_create(&g), CLT_OK);
        struct clt_tensor *t[MAX_DECL];
        for (uint32_t k = 0; k < oc->ndecl; k++) {
            char name[16];
            snprintf(name, sizeof name, "t%u", k);
            t[k] = clt_input(g, name, c.decl[k].role == IDS ? CLT_I32 : CLT_F32, c.decl[k].ndim,
                             c.decl[k].shape);
        }
        struct clt_tensor *y = oc->build(g, t);
        c.ny = 1;
        for (uint32_t i = 0; i < clt_tensor_ndim(y); i++)
            c.ny *= clt_tensor_dim(y, i);
        clt_graph_free(g);
    }
    float *w = clt_test_floats((size_t)c.ny);
    clt_test_fill(w, (size_t)c.ny, 17, -1.0f, 1.0f);
    clt_test_round(w, (size_t)c.ny, prec);
    float *vv[MAX_DECL] = {NULL};
    for (uint32_t k = 0; k < oc->ndecl; k++) {
        if (c.decl[k].role != PARAM)
            continue;
        int64_t n = count_of(&c.decl[k]);
        vv[k] = clt_test_floats((size_t)n);
        clt_test_fill(vv[k], (size_t)n, 200 + k, -1.0f, 1.0f);
        clt_test_round(vv[k], (size_t)n, prec);
    }
    struct run a, r32;
    bool ran = run_make_in(dev, &c, WRITE, w, vv, prec, &a) == CLT_OK;
    float *pv[MAX_PARAMS] = {NULL}, *ga[MAX_PARAMS] = {NULL}, *g32[MAX_PARAMS] = {NULL};
    float *gb[MAX_PARAMS] = {NULL}, *gm[MAX_PARAMS] = {NULL};
    double *yref = clt_test_doubles((size_t)c.ny);
    float *y = clt_test_floats((size_t)c.ny);
    if (!ran) {
        run_free(&a);
        goto out;
    }
    read_params(a.tr, &c, pv);
    for (uint32_t i = 0; i < c.np; i++) {
        c.p[i] = pv[i];
        if (!c.trained[i])
            continue;
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(a.tr, i, &info), CLT_OK);
        fill_spread(pv[i], c.pn[i], 31 + i);
        clt_test_round(pv[i], (size_t)c.pn[i], prec);
        assert_int_equal(clt_trainer_param_write(a.tr, info.name, pv[i], (uint64_t)c.pn[i]),
                         CLT_OK);
    }
    for (uint32_t k = 0, j = 0; k < oc->ndecl; k++)
        if (c.decl[k].role == PARAM)
            c.d[k] = c.p[j++];
    const double f = oc->tol16 ? oc->tol16 : 1.0, tol = tol16(prec) * f;
    char msg[240];

    float loss_eval = 0;
    assert_int_equal(clt_trainer_eval(a.tr, a.inputs, a.y, y, (uint64_t)c.ny, &loss_eval), CLT_OK);
    (oc->ref_eval ? oc->ref_eval : oc->ref)(&c, yref);
    snprintf(msg, sizeof msg, "%s: forward", what);
    clt_test_assert_close(msg, y, yref, (size_t)c.ny, tol, tol);

    /* The fp32 gradient on the same values. */
    run_make(dev, &c, WRITE, w, vv, &r32);
    for (uint32_t i = 0; i < c.np; i++) {
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(r32.tr, i, &info), CLT_OK);
        assert_int_equal(clt_trainer_param_write(r32.tr, info.name, c.p[i], (uint64_t)c.pn[i]),
                         CLT_OK);
    }
    step_gradients(&r32, &c, 1, g32);
    run_free(&r32);
    step_gradients(&a, &c, 1, ga);
    if (!oc->dropout) {
        float loss = 0;
        assert_int_equal(clt_trainer_loss(a.tr, &loss), CLT_OK);
        double want = ref_loss(&c, w, yref);
        snprintf(msg, sizeof msg, "%s: training loss", what);
        clt_test_assert_close(msg, &loss, &want, 1, tol * (double)c.ny, tol);
    }
    for (uint32_t i = 0; i < c.np; i++) {
        if (!c.trained[i])
            continue;
        double *want = clt_test_doubles((size_t)c.pn[i]);
        for (int64_t e = 0; e < c.pn[i]; e++)
            want[e] = g32[i][e];
        /* Dropout's masks are the same in both trainers (seed, step, index). */
        snprintf(msg, sizeof msg, "%s: gradient of parameter %u against fp32's", what, i);
        clt_test_assert_close(msg, ga[i], want, (size_t)c.pn[i], tol, tol);
        free(want);
    }
    run_free(&a);

    struct run b;
    run_make_in(dev, &c, ACCUMULATE, w, vv, prec, &b);
    for (uint32_t i = 0; i < c.np; i++)
        if (c.trained[i]) {
            struct clt_param_info info;
            assert_int_equal(clt_trainer_param_info(b.tr, i, &info), CLT_OK);
            assert_int_equal(clt_trainer_param_write(b.tr, info.name, c.p[i], (uint64_t)c.pn[i]),
                             CLT_OK);
        }
    step_gradients(&b, &c, 1, gb);
    for (uint32_t k = 0, j = 0; k < oc->ndecl; k++) {
        if (c.decl[k].role != PARAM)
            continue;
        double *want = clt_test_doubles((size_t)c.pn[j]);
        for (int64_t e = 0; e < c.pn[j]; e++)
            want[e] = (double)ga[j][e] + vv[k][e];
        snprintf(msg, sizeof msg, "%s: gradient of parameter %u (accumulate)", what, j);
        clt_test_assert_close(msg, gb[j], want, (size_t)c.pn[j], tol, tol);
        free(want);
        j++;
    }
    run_free(&b);

    if (!oc->dropout) {
        struct run m;
        run_make_in(dev, &c, MICRO, w, vv, prec, &m);
        for (uint32_t i = 0; i < c.np; i++)
            if (c.trained[i]) {
                struct clt_param_info info;
                assert_int_equal(clt_trainer_param_info(m.tr, i, &info), CLT_OK);
                assert_int_equal(
                    clt_trainer_param_write(m.tr, info.name, c.p[i], (uint64_t)c.pn[i]), CLT_OK);
            }
        step_gradients(&m, &c, 2, gm);
        for (uint32_t i = 0; i < c.np; i++) {
            if (!c.trained[i])
                continue;
            double *want = clt_test_doubles((size_t)c.pn[i]);
            for (int64_t e = 0; e < c.pn[i]; e++)
                want[e] = ga[i][e];
            snprintf(msg, sizeof msg, "%s: gradient of parameter %u (micro-batches)", what, i);
            clt_test_assert_close(msg, gm[i], want, (size_t)c.pn[i], 1e-5, 1e-5);
            free(want);
        }
        run_free(&m);
    }
out:
    for (uint32_t i = 0; i < MAX_PARAMS; i++) {
        free(pv[i]);
        free(ga[i]);
        free(g32[i]);
        free(gb[i]);
        free(gm[i]);
    }
    for (uint32_t k = 0; k < MAX_DECL; k++) {
        free(inputs[k]);
        free(vv[k]);
    }
    free(w);
    free(y);
    free(yref);
    return ran;
}

/* ==== Tests ============================================================================== */

static void every_op_has_a_case(void **state)
{
    (void)state;
    for (int op = 0; op < CLT__OP_COUNT; op++) {
        bool found = false;
        for (size_t k = 0; k < NCASES && !found; k++)
            found = strcmp(CASES[k].op, clt__op_names[op]) == 0;
        if (!found)
            fail_msg("op %s (family %s) has no row in test_ops.c", clt__op_names[op],
                     clt__op_families[op]);
        /* cltrain-bench times every op but a view through its definition's example. */
        if (!clt__op_registry[op]->is_view && !clt__op_registry[op]->bench)
            fail_msg("op %s (family %s) has no bench example", clt__op_names[op],
                     clt__op_families[op]);
    }
    for (size_t k = 0; k < NCASES; k++) {
        bool found = false;
        for (int op = 0; op < CLT__OP_COUNT && !found; op++)
            found = strcmp(CASES[k].op, clt__op_names[op]) == 0;
        if (!found)
            fail_msg("row \"%s\" names %s, which is not in the registry", CASES[k].what,
                     CASES[k].op);
    }
}

static void every_op_matches_its_reference(void **state)
{
    struct clt_device *dev = *state;
    for (size_t k = 0; k < NCASES; k++) {
        if (CASES[k].attention)
            setenv("CLTRAIN_ATTENTION", CASES[k].attention, 1);
        if (!clt_test_small() || CASES[k].no_batch1)
            run_case(dev, &CASES[k], false);
        if (!CASES[k].no_batch1)
            run_case(dev, &CASES[k], true);
        if (CASES[k].attention)
            unsetenv("CLTRAIN_ATTENTION");
    }
}

/* Whether row k runs in 16-bit storage p: the first row of each op in both fp16 and bf16, the
 * others in one of the two, alternating (fp16 and bf16 differ only in the loads and stores of
 * cl/common.cl, which every row's kernels use alike; each family's own tests run its kernels
 * in both storages). Every row runs in 16 bits, every op in both storages, and the test
 * builds about half as many 16-bit kernels (their builds are most of its time on PoCL). */
static bool in_storage(size_t k, enum clt_precision p)
{
    for (size_t j = 0; j < k; j++)
        if (strcmp(CASES[j].op, CASES[k].op) == 0)
            return (k % 2 == 0) == (p == CLT_PRECISION_FP16);
    return true;
}

/* Every row again in 16 bits (run_case16; fp16, bf16 or both: in_storage), at its batch-1
 * shapes (its full ones when it has no batch 1); rows the trainer refuses in 16 bits (an op without
 * 16-bit kernels, a loss read by the test's own loss) and rows that run GEMMs while clt__gemm does
 * not follow the storage are skipped and listed. Not under Oclgrind (small shapes): too slow there,
 * and every family's launcher tests run their 16-bit kernels under it. */
static void every_op_in_16_bits(void **state)
{
    struct clt_device *dev = *state;
    if (clt_test_small()) {
        /* Oclgrind: each family's own tests check its 16-bit kernels there. */
        printf("ops in 16 bits: not under CLTRAIN_TEST_SMALL (Oclgrind)\n");
        return;
    }
    const bool gemm = gemm_follows_storage(dev);
    for (enum clt_precision p = CLT_PRECISION_FP16; p <= CLT_PRECISION_BF16; p++) {
        char skipped[2048] = "";
        size_t at = 0, nskipped = 0, nrun = 0;
        struct clt_log saved = dev->log;
        for (size_t k = 0; k < NCASES; k++) {
            if (!in_storage(k, p))
                continue;
            bool ran = false;
            const char *why = "refused by the trainer";
            if (runs_gemm(&CASES[k]) && !gemm) {
                why = "GEMM does not follow the storage in this build";
            } else {
                if (CASES[k].attention)
                    setenv("CLTRAIN_ATTENTION", CASES[k].attention, 1);
                dev->log = (struct clt_log){quiet, NULL, CLT_LOG_ERROR}; /* listed below */
                ran = run_case16(dev, &CASES[k], !CASES[k].no_batch1, p);
                dev->log = saved;
                if (CASES[k].attention)
                    unsetenv("CLTRAIN_ATTENTION");
            }
            nrun += ran;
            if (!ran && at < sizeof skipped) {
                nskipped++;
                at += (size_t)snprintf(skipped + at, sizeof skipped - at, "\n  %s (%s): %s",
                                       CASES[k].what, CASES[k].op, why);
            }
        }
        printf("ops in %s: %zu rows run, %zu skipped:%s\n", clt_precision_name(p), nrun, nskipped,
               skipped);
        assert_true(nrun > 0);
    }
}

/* Builders report impossible descriptions through the graph's error, with the reason the
 * launcher-side check gave, and print nothing (the library never writes to stderr). */
static void builders_report_through_the_graph(void **state)
{
    (void)state;
    fflush(stderr);
    FILE *capture = tmpfile();
    assert_non_null(capture);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(capture), 2) >= 0);

    struct clt_graph *g, *h;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 4, (int64_t[]){1, 2, 4, 4});
    struct clt_conv2d_desc d = {.out_channels = 3, .kernel_h = 9, .kernel_w = 9};
    struct clt_tensor *y = clt_conv2d(g, x, &d, "conv");
    assert_int_equal(clt_graph_create(&h), CLT_OK);
    struct clt_tensor *z =
        clt_max_pool2d(h, clt_input(h, "x", CLT_F32, 4, (int64_t[]){1, 2, 3, 3}), 2, 1, 5);

    fflush(stderr);
    assert_true(dup2(saved, 2) >= 0);
    close(saved);
    fseek(capture, 0, SEEK_END);
    long printed = ftell(capture);
    fclose(capture);

    assert_null(y);
    assert_null(z);
    assert_int_equal(clt_graph_status(g), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(clt_graph_error(g), "conv2d conv: impossible parameters"));
    assert_int_equal(clt_graph_status(h), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(clt_graph_error(h), "pooling: impossible"));
    assert_int_equal(printed, 0);
    clt_graph_free(g);
    clt_graph_free(h);
}

/* Shapes that do not broadcast are a graph error naming both shapes and the axis. */
static void broadcast_shape_errors(void **state)
{
    (void)state;
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *a = clt_input(g, "a", CLT_F32, 3, (int64_t[]){2, 3, 4});
    struct clt_tensor *b = clt_input(g, "b", CLT_F32, 2, (int64_t[]){5, 4});
    assert_non_null(clt_add(g, a, clt_input(g, "c", CLT_F32, 2, (int64_t[]){3, 1})));
    assert_null(clt_sub(g, a, b));
    assert_int_equal(clt_graph_status(g), CLT_ERR_INVALID_ARGUMENT);
    const char *e = clt_graph_error(g);
    assert_non_null(strstr(e, "sub: \"a\" [2, 3, 4] and \"b\" [5, 4] do not broadcast"));
    assert_non_null(strstr(e, "axis -2: 3 against 5"));
    clt_graph_free(g);

    assert_int_equal(clt_graph_create(&g), CLT_OK);
    a = clt_input(g, "a", CLT_F32, 1, (int64_t[]){7});
    b = clt_input(g, "b", CLT_F32, 2, (int64_t[]){7, 6});
    assert_null(clt_mul(g, a, b));
    assert_non_null(strstr(clt_graph_error(g), "mul: \"a\" [7] and \"b\" [7, 6]"));
    clt_graph_free(g);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(every_op_has_a_case),    CLT_DEVICE_TEST(builders_report_through_the_graph),
        CLT_DEVICE_TEST(broadcast_shape_errors), CLT_DEVICE_TEST(every_op_matches_its_reference),
        CLT_DEVICE_TEST(every_op_in_16_bits),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
