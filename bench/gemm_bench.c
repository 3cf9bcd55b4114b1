/*
 * gemm_bench.c: GEMM throughput of CLBlast (clt__gemm_clblast) and of the engine's own
 * kernel (clt__gemm_own) over square shapes and the skinny shapes training produces, each
 * also as a percentage of the measured peak (the best of the micro section's peak figures).
 *
 * Timing: each run brackets `inner` back-to-back calls with profiling markers while the queue
 * is held (bench_bracket_*), so host enqueue time is not counted, and divides.
 */
#include <stdio.h>

#include "bench.h"

/* One GEMM shape, row-major, C [m, n] = op(A) [m, k] * op(B) [k, n], batch times. */
struct gemm_case {
    const char *name;
    bool trans_a, trans_b;
    int64_t m, n, k, batch;
    bool quick; /* also in --quick */
};

/* B = 128 examples of 784 features into 128 units (an MLP's first layer); a character
 * transformer with B T = 16 x 128 tokens, width 128, 4 heads of 32. */
static const struct gemm_case cases[] = {
    {"square_128", false, false, 128, 128, 128, 1, true},
    {"square_256", false, false, 256, 256, 256, 1, true},
    {"square_512", false, false, 512, 512, 512, 1, true},
    {"square_1024", false, false, 1024, 1024, 1024, 1, false},
    /* linear forward x [B, 784] * W^T, W [128, 784] */
    {"mlp_fwd_128x128x784", false, true, 128, 128, 784, 1, true},
    /* input gradient dy [B, 128] * W [128, 784] */
    {"mlp_dx_128x784x128", false, false, 128, 784, 128, 1, false},
    /* weight gradient dy^T [128, B] * x [B, 784] */
    {"mlp_dw_128x784x128", true, false, 128, 784, 128, 1, true},
    /* transformer projections [B T, 128] * W^T, W [384, 128] (qkv) and [512, 128] (MLP) */
    {"gpt_qkv_2048x384x128", false, true, 2048, 384, 128, 1, false},
    {"gpt_fc_2048x512x128", false, true, 2048, 512, 128, 1, true},
    /* attention scores Q K^T and the weighted sum P V per (batch, head): 64 of them */
    {"attn_qk_64x128x128x32", false, true, 128, 128, 32, 64, true},
    {"attn_pv_64x128x32x128", false, false, 128, 32, 128, 64, false},
};

typedef enum clt_status (*gemm_fn)(struct clt_device *, const struct clt_gemm_shape *,
                                   struct clt__buf, struct clt__buf, struct clt__buf);

struct gemm_run {
    struct bench_ctx *c;
    struct clt_gemm_shape g;
    cl_mem a, b, out;
    gemm_fn fn;
    int inner;
    double flops;
};

static enum clt_status gemm_sample(void *ctx, double *value)
{
    struct gemm_run *r = ctx;
    struct bench_bracket br;
    double s = 0;
    enum clt_status st = bench_bracket_begin(r->c, &br);
    if (st != CLT_OK)
        return st;
    for (int i = 0; st == CLT_OK && i < r->inner; i++)
        st = r->fn(r->c->dev, &r->g, (struct clt__buf){r->a, 0}, (struct clt__buf){r->b, 0},
                   (struct clt__buf){r->out, 0});
    enum clt_status st2 = bench_bracket_end(r->c, &br, &s);
    if (st == CLT_OK)
        st = st2;
    if (st == CLT_OK)
        *value = r->flops * r->inner / s * 1e-9;
    return st;
}

static cl_mem filled(struct clt_device *dev, int64_t count, enum clt_status *st)
{
    cl_int err;
    cl_mem m = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, (size_t)count * 4, NULL, &err);
    *st = clt__cl_check(&dev->log, err, "clCreateBuffer");
    float v = 0.5f;
    if (*st == CLT_OK)
        *st = clt__cl_check(
            &dev->log,
            clEnqueueFillBuffer(dev->queue, m, &v, sizeof v, 0, (size_t)count * 4, 0, NULL, NULL),
            "clEnqueueFillBuffer");
    return m;
}

/* Measures one backend on one shape and adds its two figures. */
static enum clt_status measure(struct gemm_run *r, const char *backend, const char *shape)
{
    struct bench_stat s;
    char name[80];
    enum clt_status st = bench_repeat(r->c->cfg->warmup < 1 ? 1 : r->c->cfg->warmup,
                                      r->c->cfg->runs, gemm_sample, r, &s);
    if (st != CLT_OK)
        return st;
    snprintf(name, sizeof name, "%s.%s", backend, shape);
    st = bench_add(r->c->out, "gemm", name, "GFLOP/s", true, &s);
    if (st == CLT_OK && r->c->peak_gflops > 0) {
        double k = 100.0 / r->c->peak_gflops;
        struct bench_stat p = {s.median * k, s.min * k, s.max * k, s.runs};
        snprintf(name, sizeof name, "%s.%s.pct_peak", backend, shape);
        st = bench_add(r->c->out, "gemm", name, "%", true, &p);
    }
    return st;
}

static enum clt_status one_case(struct bench_ctx *c, const struct gemm_case *gc, bool *clblast_ok)
{
    struct gemm_run r = {.c = c};
    struct clt_gemm_shape in = {.trans_a = gc->trans_a,
                                .trans_b = gc->trans_b,
                                .m = gc->m,
                                .n = gc->n,
                                .k = gc->k,
                                .alpha = 1.0f,
                                .batch = gc->batch};
    int64_t sa, sb, sc;
    enum clt_status st = clt__gemm_resolve(&c->dev->log, &in, &r.g, &sa, &sb, &sc);
    if (st == CLT_OK)
        r.a = filled(c->dev, sa, &st);
    if (st == CLT_OK)
        r.b = filled(c->dev, sb, &st);
    if (st == CLT_OK)
        r.out = filled(c->dev, sc, &st);
    r.flops = 2.0 * (double)gc->m * (double)gc->n * (double)gc->k * (double)gc->batch;
    r.inner = (int)(1e8 / r.flops);
    r.inner = r.inner < 1 ? 1 : r.inner > 32 ? 32 : r.inner;
    if (st == CLT_OK && *clblast_ok) {
        r.fn = clt__gemm_clblast;
        enum clt_status cb = measure(&r, "clblast", gc->name);
        if (cb == CLT_ERR_GEMM) {
            bench_note(c->out, "gemm: CLBlast failed on %s; its figures are missing", gc->name);
            *clblast_ok = false;
        } else {
            st = cb;
        }
    }
    if (st == CLT_OK) {
        r.fn = clt__gemm_own;
        st = measure(&r, "own", gc->name);
    }
    if (r.a)
        clReleaseMemObject(r.a);
    if (r.b)
        clReleaseMemObject(r.b);
    if (r.out)
        clReleaseMemObject(r.out);
    return st;
}

enum clt_status bench_gemm(struct bench_ctx *c)
{
    enum clt_status st = CLT_OK;
    bool clblast_ok = true;
    for (size_t i = 0; st == CLT_OK && i < sizeof cases / sizeof cases[0]; i++) {
        if (c->cfg->quick && !cases[i].quick)
            continue;
        if (c->cfg->verbose)
            fprintf(stderr, "cltrain-bench:   gemm %s\n", cases[i].name);
        st = one_case(c, &cases[i], &clblast_ok);
    }
    return st;
}
