/*
 * ops_bench.c: forward and backward time of each op family's launcher at one representative
 * shape (the same in --quick and full runs, so that figures compare across both; the shapes
 * are listed in docs/bench.md). Each run brackets 4 (quick: 2) back-to-back calls with profiling
 * markers while the queue is held (bench_bracket_*), and divides: device time per call, host
 * enqueue cost excluded. GEMM-based ops (linear, conv2d) use the device's GEMM backend.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/conv.h"
#include "ops/elementwise.h"
#include "ops/loss.h"
#include "ops/norm.h"
#include "ops/optim.h"
#include "ops/pool.h"
#include "ops/shape.h"

#define NBUF 12

typedef enum clt_status (*op_fn)(struct clt_device *dev, const struct clt__buf *b);

struct op_case {
    const char *name;
    /* Elements of each buffer b[0..NBUF) (0: unused, mem NULL); ints[i]: int32 ids i % 96. */
    void (*sizes)(int64_t *count, bool *ints);
    op_fn fwd, bwd; /* bwd NULL: no backward figure */
};

/* ---- Activations and elementwise: n = 2^20 floats ----------------------------------- */

enum { EW_N = 1 << 20 };

static void ew_sizes(int64_t *n, bool *ints)
{
    (void)ints;
    n[0] = n[1] = n[2] = n[3] = EW_N;
}
static enum clt_status gelu_fwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__activation_forward(d, CLT__ACT_GELU_TANH, 0, EW_N, b[0], b[1]);
}
static enum clt_status gelu_bwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__activation_backward(d, CLT__ACT_GELU_TANH, 0, EW_N, b[0], b[2], b[3], false);
}
static enum clt_status relu_fwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__activation_forward(d, CLT__ACT_RELU, 0, EW_N, b[0], b[1]);
}
static enum clt_status relu_bwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__activation_backward(d, CLT__ACT_RELU, 0, EW_N, b[0], b[2], b[3], false);
}
static enum clt_status add_fwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__add_forward(d, EW_N, b[0], b[1], b[2]);
}
static enum clt_status add_bwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__add_backward(d, EW_N, b[2], b[0], b[3], false);
}

/* ---- Linear: x [128, 784] -> [128, 128] ----------------------------------------------- */

enum { LIN_N = 128, LIN_IN = 784, LIN_OUT = 128 };

static void linear_sizes(int64_t *n, bool *ints)
{
    (void)ints;
    n[0] = n[4] = LIN_N * LIN_IN;   /* x, dx */
    n[1] = n[5] = LIN_OUT * LIN_IN; /* weight, dweight */
    n[2] = n[6] = LIN_OUT;          /* bias, dbias */
    n[3] = n[7] = LIN_N * LIN_OUT;  /* y, dy */
}
static enum clt_status linear_fwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__linear_forward(d, LIN_N, LIN_IN, LIN_OUT, b[0], b[1], b[2], b[3]);
}
static enum clt_status linear_bwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__linear_backward(d, LIN_N, LIN_IN, LIN_OUT, b[0], b[1], b[7], b[4], b[5], b[6],
                                false);
}

/* ---- conv2d: x [32, 32, 14, 14], 64 filters 3x3, padding 1 ------------------------------ */

static struct clt__conv2d conv_params(void)
{
    struct clt__conv2d c = {.n = 32,
                            .c_in = 32,
                            .h = 14,
                            .w = 14,
                            .c_out = 64,
                            .kh = 3,
                            .kw = 3,
                            .stride_h = 1,
                            .stride_w = 1,
                            .pad_h = 1,
                            .pad_w = 1,
                            .dil_h = 1,
                            .dil_w = 1,
                            .groups = 1};
    clt__conv2d_resolve(NULL, &c);
    return c;
}
static void conv_sizes(int64_t *n, bool *ints)
{
    (void)ints;
    struct clt__conv2d c = conv_params();
    n[0] = n[4] = c.n * c.c_in * c.h * c.w;       /* x, dx */
    n[1] = n[5] = c.c_out * c.c_in * c.kh * c.kw; /* weight, dweight */
    n[2] = n[6] = c.c_out;                        /* bias, dbias */
    n[3] = n[7] = c.n * c.c_out * c.oh * c.ow;    /* y, dy */
    n[8] = (int64_t)clt__conv2d_workspace_bytes(&c) / 4 + 1;
}
static enum clt_status conv_fwd(struct clt_device *d, const struct clt__buf *b)
{
    struct clt__conv2d c = conv_params();
    return clt__conv2d_forward(d, &c, b[0], b[1], b[2], b[3], b[8]);
}
static enum clt_status conv_bwd(struct clt_device *d, const struct clt__buf *b)
{
    struct clt__conv2d c = conv_params();
    return clt__conv2d_backward(d, &c, b[0], b[1], b[7], b[4], b[5], b[6], b[8], false);
}

/* ---- Max pool 2x2 stride 2: x [32, 32, 28, 28] ---------------------------------------- */

static struct clt__pool2d pool_params(void)
{
    struct clt__pool2d p = {
        .n = 32, .c = 32, .h = 28, .w = 28, .kh = 2, .kw = 2, .stride_h = 2, .stride_w = 2};
    clt__pool2d_resolve(NULL, &p);
    return p;
}
static void pool_sizes(int64_t *n, bool *ints)
{
    struct clt__pool2d p = pool_params();
    n[0] = n[3] = p.n * p.c * p.h * p.w;          /* x, dx */
    n[1] = n[2] = n[4] = p.n * p.c * p.oh * p.ow; /* y, argmax, dy */
    ints[2] = true;
}
static enum clt_status pool_fwd(struct clt_device *d, const struct clt__buf *b)
{
    struct clt__pool2d p = pool_params();
    return clt__maxpool2d_forward(d, &p, b[0], b[1], b[2]);
}
static enum clt_status pool_bwd(struct clt_device *d, const struct clt__buf *b)
{
    struct clt__pool2d p = pool_params();
    return clt__maxpool2d_backward(d, &p, b[2], b[4], b[3], false);
}

/* ---- Batch norm (training): x [32, 32, 28 x 28] ---------------------------------------- */

enum { BN_N = 32, BN_C = 32, BN_S = 28 * 28 };

static void bn_sizes(int64_t *n, bool *ints)
{
    (void)ints;
    n[0] = n[1] = n[2] = BN_N * BN_C * BN_S;        /* x, y, dy */
    n[3] = n[4] = n[5] = n[6] = n[7] = n[8] = BN_C; /* gamma, beta, running mean and
                                                       var, mean, inv_std */
    n[9] = (int64_t)clt__batchnorm_workspace_bytes(BN_N, BN_C, BN_S) / 4 + 1;
}
static enum clt_status bn_fwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__batchnorm_forward(d, BN_N, BN_C, BN_S, b[0], b[3], b[4], 1e-5f, 0.1f, b[5], b[6],
                                  b[1], b[7], b[8], b[9]);
}
static enum clt_status bn_bwd(struct clt_device *d, const struct clt__buf *b)
{
    /* dx into y's buffer, dgamma and dbeta into the running statistics' buffers. */
    return clt__batchnorm_backward(d, BN_N, BN_C, BN_S, b[0], b[2], b[3], b[7], b[8], b[1], b[5],
                                   b[6], false, b[9]);
}

/* ---- Layer norm: x [2048, 128] --------------------------------------------------------- */

enum { LN_ROWS = 2048, LN_D = 128 };

static void ln_sizes(int64_t *n, bool *ints)
{
    (void)ints;
    n[0] = n[1] = n[2] = n[3] = LN_ROWS * LN_D; /* x, y, dy, dx */
    n[4] = n[5] = n[8] = n[9] = LN_D;           /* gamma, beta, dgamma, dbeta */
    n[6] = n[7] = LN_ROWS;                      /* mean, rstd */
    n[10] = (int64_t)clt__layernorm_workspace_bytes(LN_ROWS, LN_D) / 4 + 1;
}
static enum clt_status ln_fwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__layernorm_forward(d, LN_ROWS, LN_D, b[0], b[4], b[5], 1e-5f, b[1], b[6], b[7]);
}
static enum clt_status ln_bwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__layernorm_backward(d, LN_ROWS, LN_D, b[0], b[2], b[4], b[6], b[7], b[3], b[8], b[9],
                                   false, b[10]);
}

/* ---- Cross-entropy: logits [2048, 96], labels [2048] ----------------------------------- */

enum { CE_ROWS = 2048, CE_K = 96 };

static void ce_sizes(int64_t *n, bool *ints)
{
    n[0] = n[3] = CE_ROWS * CE_K; /* logits, dlogits */
    n[1] = CE_ROWS;               /* labels */
    ints[1] = true;
    n[2] = (int64_t)clt__cross_entropy_workspace_bytes(CE_ROWS) / 4 + 1;
    n[4] = n[5] = 1; /* loss, dloss */
}
static enum clt_status ce_fwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__cross_entropy_forward(d, CE_ROWS, CE_K, b[0], b[1], -1, 0.0f, b[2], b[4]);
}
static enum clt_status ce_bwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__cross_entropy_backward(d, CE_ROWS, CE_K, b[0], b[1], -1, 0.0f, b[2], b[5], b[3],
                                       false);
}

/* ---- Softmax: x [2048, 128] ------------------------------------------------------------ */

static void sm_sizes(int64_t *n, bool *ints)
{
    (void)ints;
    n[0] = n[1] = n[2] = n[3] = LN_ROWS * LN_D; /* x, y, dy, dx */
}
static enum clt_status sm_fwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__softmax_forward(d, LN_ROWS, LN_D, b[0], b[1]);
}
static enum clt_status sm_bwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__softmax_backward(d, LN_ROWS, LN_D, b[1], b[2], b[3], false);
}

/* ---- Attention: B 16, H 4, T 128, D 32, causal ----------------------------------------- */

enum { AT_B = 16, AT_H = 4, AT_T = 128, AT_D = 32 };

static void attn_sizes(int64_t *n, bool *ints)
{
    (void)ints;
    for (int i = 0; i < 8; i++)
        n[i] = AT_B * AT_H * AT_T * AT_D; /* q k v o dout dq dk dv */
    n[8] = (int64_t)clt__attention_probs_bytes(AT_B, AT_H, AT_T) / 4;
    n[9] = (int64_t)clt__attention_workspace_bytes(AT_B, AT_H, AT_T) / 4;
}
static enum clt_status attn_fwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__attention_forward(d, b[0], b[1], b[2], b[8], b[3], AT_B, AT_H, AT_T, AT_D,
                                  clt__attention_scale(AT_D), true);
}
static enum clt_status attn_bwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__attention_backward(d, b[0], b[1], b[2], b[8], b[4], b[9], b[5], b[6], b[7], AT_B,
                                   AT_H, AT_T, AT_D, clt__attention_scale(AT_D), true, false);
}

/* ---- Embedding: 2048 ids into a [96, 128] table ---------------------------------------- */

enum { EM_V = 96, EM_D = 128, EM_T = 2048 };

static void emb_sizes(int64_t *n, bool *ints)
{
    n[0] = n[3] = EM_V * EM_D; /* table, dtable */
    n[1] = EM_T;               /* ids */
    ints[1] = true;
    n[2] = EM_T * EM_D; /* y (and dy) */
    n[4] = (int64_t)clt__embedding_workspace_bytes(EM_V, EM_T) / 4 + 1;
}
static enum clt_status emb_fwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__embedding_forward(d, b[0], b[1], b[2], EM_V, EM_D, EM_T);
}
static enum clt_status emb_bwd(struct clt_device *d, const struct clt__buf *b)
{
    return clt__embedding_backward(d, b[1], b[2], b[3], b[4], EM_V, EM_D, EM_T, false);
}

/* ---- Optimizer: one AdamW update of 2^20 parameters ------------------------------------ */

static void adamw_sizes(int64_t *n, bool *ints)
{
    (void)ints;
    n[0] = n[1] = n[2] = n[3] = EW_N; /* params, grads, m, v */
    n[4] = 1;                         /* loss */
    n[5] = (int64_t)clt__optim_workspace_bytes(EW_N) / 4 + 1;
    n[6] = (int64_t)(CLT__OPTIM_STATUS_BYTES / 4) + 1;
}
static enum clt_status adamw_step(struct clt_device *d, const struct clt__buf *b)
{
    struct clt__optim_config cfg;
    clt__optim_config_init(&cfg, CLT__OPTIM_ADAMW);
    return clt__optim_step(d, &cfg, EW_N, b[0], b[1], b[2], b[3], b[4], b[5], b[6], 1e-3f, 1.0f);
}

static const struct op_case cases[] = {
    {"activation.gelu", ew_sizes, gelu_fwd, gelu_bwd},
    {"activation.relu", ew_sizes, relu_fwd, relu_bwd},
    {"elementwise.add", ew_sizes, add_fwd, add_bwd},
    {"linear", linear_sizes, linear_fwd, linear_bwd},
    {"conv2d", conv_sizes, conv_fwd, conv_bwd},
    {"pool.max", pool_sizes, pool_fwd, pool_bwd},
    {"batch_norm", bn_sizes, bn_fwd, bn_bwd},
    {"layer_norm", ln_sizes, ln_fwd, ln_bwd},
    {"softmax", sm_sizes, sm_fwd, sm_bwd},
    {"cross_entropy", ce_sizes, ce_fwd, ce_bwd},
    {"attention", attn_sizes, attn_fwd, attn_bwd},
    {"embedding", emb_sizes, emb_fwd, emb_bwd},
    {"optim.adamw", adamw_sizes, adamw_step, NULL},
};

struct op_run {
    struct bench_ctx *c;
    struct clt__buf b[NBUF];
    op_fn fn;
    int inner; /* calls per run */
};

static enum clt_status op_sample(void *ctx, double *value)
{
    struct op_run *r = ctx;
    struct bench_bracket br;
    double s = 0;
    enum clt_status st = bench_bracket_begin(r->c, &br);
    if (st != CLT_OK)
        return st;
    for (int i = 0; st == CLT_OK && i < r->inner; i++)
        st = r->fn(r->c->dev, r->b);
    enum clt_status st2 = bench_bracket_end(r->c, &br, &s);
    if (st == CLT_OK)
        st = st2;
    if (st == CLT_OK)
        *value = s / r->inner * 1e6;
    return st;
}

/* Allocates and fills the buffers of a case: floats 0.5 (a status buffer reset), ints
 * i % 96. */
static enum clt_status setup(struct op_run *r, const struct op_case *oc)
{
    struct clt_device *dev = r->c->dev;
    int64_t n[NBUF] = {0};
    bool ints[NBUF] = {false};
    oc->sizes(n, ints);
    enum clt_status st = CLT_OK;
    for (int i = 0; st == CLT_OK && i < NBUF; i++) {
        if (n[i] <= 0)
            continue;
        size_t bytes = (size_t)n[i] * 4;
        cl_int err;
        r->b[i].mem = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
        st = clt__cl_check(&dev->log, err, "clCreateBuffer");
        if (st == CLT_OK && ints[i]) {
            int32_t *h = malloc(bytes);
            if (!h)
                return CLT_ERR_NO_MEMORY;
            for (int64_t k = 0; k < n[i]; k++)
                h[k] = (int32_t)(k % 96);
            st = clt__cl_check(
                &dev->log,
                clEnqueueWriteBuffer(dev->queue, r->b[i].mem, CL_TRUE, 0, bytes, h, 0, NULL, NULL),
                "clEnqueueWriteBuffer");
            free(h);
        } else if (st == CLT_OK) {
            float v = 0.5f;
            st = clt__cl_check(
                &dev->log,
                clEnqueueFillBuffer(dev->queue, r->b[i].mem, &v, sizeof v, 0, bytes, 0, NULL, NULL),
                "clEnqueueFillBuffer");
        }
    }
    if (st == CLT_OK && oc->fwd == adamw_step)
        st = clt__optim_status_reset(dev, r->b[6]);
    return st;
}

static enum clt_status one_case(struct bench_ctx *c, const struct op_case *oc)
{
    struct op_run r = {.c = c, .inner = c->cfg->quick ? 2 : 4};
    enum clt_status st = setup(&r, oc);
    struct bench_stat s;
    char name[80];
    for (int pass = 0; st == CLT_OK && pass < 2; pass++) {
        r.fn = pass == 0 ? oc->fwd : oc->bwd;
        if (!r.fn)
            break;
        st = bench_repeat(c->cfg->warmup < 1 ? 1 : c->cfg->warmup, c->cfg->runs, op_sample, &r, &s);
        snprintf(name, sizeof name, "%s.%s", oc->name,
                 oc->bwd ? (pass == 0 ? "fwd" : "bwd") : "step");
        if (st == CLT_OK)
            st = bench_add(c->out, "ops", name, "us", false, &s);
    }
    for (int i = 0; i < NBUF; i++)
        if (r.b[i].mem)
            clReleaseMemObject(r.b[i].mem);
    return st;
}

enum clt_status bench_ops(struct bench_ctx *c)
{
    enum clt_status st = CLT_OK;
    for (size_t i = 0; st == CLT_OK && i < sizeof cases / sizeof cases[0]; i++) {
        if (c->cfg->verbose)
            fprintf(stderr, "cltrain-bench:   op %s\n", cases[i].name);
        st = one_case(c, &cases[i]);
    }
    return st;
}
