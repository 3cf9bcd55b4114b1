/*
 * gemm_bench.c: GEMM throughput of every implementation over square shapes and the shapes
 * the built-in models' training plans really contain (gathered by making each model's
 * trainer at the train section's batch), each also as a percentage of the measured peak (the
 * best of the micro section's peak figures). Per shape: "chosen" (clt__gemm: the tuner's
 * choice, tuned here when not cached), "host" (the host's BLAS, CPU devices), "clblast", and
 * "own" (the own kernel in the best configuration the tuner measured, else its default).
 * Figure names: <impl>.<shape>, shapes square_<n> and <model>_<ta><tb>_<m>x<n>x<k>[x<batch>]
 * (t: transposed). At the models' shapes, "fp16" and "bf16": clt__gemm with A, B and C in that
 * storage (the tuner's 16-bit choice: the own kernel built in the storage, or the widened
 * path around the fp32 choice), tuned here like "chosen". bench/torch_gemm.py writes PyTorch's
 * figures under "chosen" with the same shape names, so --compare sets cltrain beside PyTorch.
 *
 * Timing: each run brackets `inner` back-to-back calls with profiling markers while the queue
 * is held (bench_bracket_*), so host enqueue time is not counted, and divides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "gemm_own.h"
#include "models.h"

/* One GEMM shape, row-major, C [m, n] = op(A) [m, k] * op(B) [k, n], batch times. */
struct gemm_case {
    char name[64];
    struct clt_gemm_shape g;
};

/* Square shapes; the training shapes come from the built-in models' plans (gather). */
static const int64_t squares[] = {128, 256, 512, 1024};
static const char *const model_kinds[] = {"mlp", "cnn", "gpt"};

#define MAX_CASES 96

static void case_name(struct gemm_case *c, const char *prefix)
{
    const struct clt_gemm_shape *g = &c->g;
    int n =
        snprintf(c->name, sizeof c->name, "%s_%c%c_%lldx%lldx%lld", prefix, g->trans_a ? 't' : 'n',
                 g->trans_b ? 't' : 'n', (long long)g->m, (long long)g->n, (long long)g->k);
    if (g->batch > 1 && n > 0 && (size_t)n < sizeof c->name)
        snprintf(c->name + n, sizeof c->name - (size_t)n, "x%lld", (long long)g->batch);
}

static bool same_shape(const struct clt_gemm_shape *a, const struct clt_gemm_shape *b)
{
    return a->trans_a == b->trans_a && a->trans_b == b->trans_b && a->m == b->m && a->n == b->n &&
           a->k == b->k && a->batch == b->batch;
}

/* The GEMM shapes of one built-in model's training plan, at the batch the train section
 * uses: the shapes clt__gemm meets while a trainer is made (its dry run is one step). */
static enum clt_status model_shapes(struct clt_device *dev, const char *kind,
                                    struct gemm_case *cases, size_t *n)
{
    struct model_desc d;
    struct clt_dataset_info info;
    struct model m;
    char err[256] = "";
    memset(&m, 0, sizeof m);
    model_desc_init(&d, kind);
    model_default_data(kind, &info);
    enum clt_status st = model_build(&d, &info, bench_train_batch(kind, dev), &m, err, sizeof err);
    struct clt_trainer_options opt;
    clt_trainer_options_init(&opt, CLT_OPTIM_ADAMW);
    struct clt_trainer *tr = NULL;
    struct clt_gemm_shape seen[MAX_CASES];
    size_t nseen = 0;
    if (st == CLT_OK) {
        clt__tune_record_start(dev);
        st = clt_trainer_create(dev, m.g, m.loss, &opt, &tr);
        nseen = clt__tune_record_stop(dev, seen, MAX_CASES);
    }
    clt_trainer_free(tr);
    model_free(&m);
    if (st != CLT_OK) {
        fprintf(stderr, "cltrain-bench: gemm: cannot build %s: %s\n", kind,
                err[0] ? err : clt_status_str(st));
        return st;
    }
    for (size_t i = 0; i < nseen && i < MAX_CASES && *n < MAX_CASES; i++) {
        bool dup = false;
        for (size_t j = 0; j < *n && !dup; j++)
            dup = same_shape(&cases[j].g, &seen[i]);
        if (dup)
            continue;
        struct gemm_case *c = &cases[(*n)++];
        c->g = seen[i];
        c->g.alpha = 1.0f;
        c->g.beta = 0.0f;
        case_name(c, kind);
    }
    return CLT_OK;
}

/* Every case: the squares, then each model's shapes in plan order (deduplicated). */
static enum clt_status gather(struct clt_device *dev, bool quick, struct gemm_case *cases,
                              size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < sizeof squares / sizeof squares[0]; i++) {
        if (quick && squares[i] > 512)
            continue;
        struct gemm_case *c = &cases[(*n)++];
        int64_t e = squares[i];
        c->g = (struct clt_gemm_shape){.m = e, .n = e, .k = e, .alpha = 1.0f, .batch = 1};
        snprintf(c->name, sizeof c->name, "square_%lld", (long long)e);
    }
    if (!dev->tune) {
        fprintf(stderr, "cltrain-bench: gemm: the GEMM backend is forced (CLTRAIN_GEMM); the "
                        "models' shapes cannot be gathered, squares only\n");
        return CLT_OK;
    }
    enum clt_status st = CLT_OK;
    for (size_t k = 0; st == CLT_OK && k < sizeof model_kinds / sizeof model_kinds[0]; k++)
        st = model_shapes(dev, model_kinds[k], cases, n);
    return st;
}

int bench_gemm_shapes(const char *selection, bool quick)
{
    /* Listing times nothing: the shapes are the same tuned or not. */
    setenv("CLTRAIN_TUNE", "0", 1);
    struct clt_device *dev = NULL;
    enum clt_status st = clt_device_open(selection, NULL, &dev);
    struct gemm_case *cases = calloc(MAX_CASES, sizeof *cases);
    size_t n = 0;
    if (st == CLT_OK && !cases)
        st = CLT_ERR_NO_MEMORY;
    if (st == CLT_OK)
        st = gather(dev, quick, cases, &n);
    for (size_t i = 0; st == CLT_OK && i < n; i++) {
        const struct clt_gemm_shape *g = &cases[i].g;
        printf("%s %d %d %lld %lld %lld %lld\n", cases[i].name, g->trans_a, g->trans_b,
               (long long)g->m, (long long)g->n, (long long)g->k,
               (long long)(g->batch > 0 ? g->batch : 1));
    }
    free(cases);
    clt_device_close(dev);
    if (st != CLT_OK) {
        fprintf(stderr, "cltrain-bench: cannot list the GEMM shapes: %s\n", clt_status_str(st));
        return 1;
    }
    return 0;
}

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

/* The best own-kernel configuration the tuner measured for a shape, else the default. */
static void best_own(struct clt_device *dev, const struct clt_gemm_shape *g,
                     struct clt__gemm_config *cfg)
{
    clt__gemm_own_default(dev, g, cfg);
    struct clt_gemm_tuning *list = NULL;
    size_t n = 0;
    if (clt_device_gemm_tunings(dev, &list, &n) != CLT_OK)
        return;
    double best = 0;
    for (size_t i = 0; i < n; i++) {
        const struct clt_gemm_tuning *t = &list[i];
        if (t->trans_a != g->trans_a || t->trans_b != g->trans_b || t->m != g->m || t->n != g->n ||
            t->k != g->k || t->batch != (g->batch > 0 ? g->batch : 1) ||
            t->storage != CLT_PRECISION_FP32)
            continue;
        for (uint32_t j = 0; j < t->candidate_count; j++) {
            const struct clt_gemm_candidate *c = &t->candidates[j];
            struct clt__gemm_config parsed;
            if (c->status == CLT_OK && c->gflops > best && strncmp(c->name, "own ", 4) == 0 &&
                clt__gemm_config_parse(c->name + 4, &parsed)) {
                best = c->gflops;
                *cfg = parsed;
            }
        }
    }
    free(list);
}

/* The configuration own_best runs (set per case; the bench is single-threaded). */
static struct clt__gemm_config own_config;

static enum clt_status own_best(struct clt_device *dev, const struct clt_gemm_shape *g,
                                struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    return clt__gemm_own_run(dev, &own_config, g, a, b, c);
}

/* The tuner's name of the implementation chosen for a shape in the device's storage, or
 * "default". */
static void chosen_name(struct clt_device *dev, const struct clt_gemm_shape *g, char *out,
                        size_t size)
{
    snprintf(out, size, "default");
    struct clt_gemm_tuning *list = NULL;
    size_t n = 0;
    if (clt_device_gemm_tunings(dev, &list, &n) != CLT_OK)
        return;
    for (size_t i = 0; i < n; i++)
        if (list[i].trans_a == g->trans_a && list[i].trans_b == g->trans_b && list[i].m == g->m &&
            list[i].n == g->n && list[i].k == g->k &&
            list[i].batch == (g->batch > 0 ? g->batch : 1) && list[i].storage == dev->storage)
            snprintf(out, size, "%s", list[i].chosen);
    free(list);
}

static enum clt_status one_case(struct bench_ctx *c, const struct gemm_case *gc, bool *clblast_ok)
{
    struct gemm_run r = {.c = c};
    int64_t sa, sb, sc;
    enum clt_status st = clt__gemm_resolve(&c->dev->log, &gc->g, &r.g, &sa, &sb, &sc);
    /* The tuner's choice first: tuning a square here is what trainer creation does. */
    if (st == CLT_OK)
        st = clt_device_gemm_tune(c->dev, &r.g, 1);
    if (st == CLT_OK)
        r.a = filled(c->dev, sa, &st);
    if (st == CLT_OK)
        r.b = filled(c->dev, sb, &st);
    if (st == CLT_OK)
        r.out = filled(c->dev, sc, &st);
    r.flops = 2.0 * (double)r.g.m * (double)r.g.n * (double)r.g.k * (double)r.g.batch;
    r.inner = (int)(1e8 / r.flops);
    r.inner = r.inner < 1 ? 1 : r.inner > 32 ? 32 : r.inner;
    if (st == CLT_OK && c->dev->gemm_host) {
        r.fn = clt__gemm_host;
        st = measure(&r, "host", gc->name);
    }
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
        best_own(c->dev, &r.g, &own_config);
        r.fn = own_best;
        st = measure(&r, "own", gc->name);
    }
    /* The choice last: measured first, right after tuning, it came out below the same
     * implementation measured on its own after it. */
    if (st == CLT_OK) {
        char chosen[96];
        chosen_name(c->dev, &r.g, chosen, sizeof chosen);
        if (c->cfg->verbose)
            fprintf(stderr, "cltrain-bench:   gemm %s: chosen %s\n", gc->name, chosen);
        r.fn = clt__gemm;
        st = measure(&r, "chosen", gc->name);
    }
    /* The 16-bit storages at the models' shapes (the buffers, sized for floats, hold them;
     * their fill reads as finite 16-bit values). */
    static const enum clt_precision st16[2] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16};
    for (int i = 0; i < 2 && st == CLT_OK && strncmp(gc->name, "square", 6) != 0; i++) {
        enum clt_precision prev = clt__storage_set(c->dev, st16[i]);
        st = clt_device_gemm_tune(c->dev, &r.g, 1);
        if (st == CLT_OK && c->cfg->verbose) {
            char chosen[96];
            chosen_name(c->dev, &r.g, chosen, sizeof chosen);
            fprintf(stderr, "cltrain-bench:   gemm %s %s: chosen %s\n", gc->name,
                    clt_precision_name(st16[i]), chosen);
        }
        r.fn = clt__gemm;
        if (st == CLT_OK)
            st = measure(&r, clt_precision_name(st16[i]), gc->name);
        clt__storage_set(c->dev, prev);
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
    struct gemm_case *cases = calloc(MAX_CASES, sizeof *cases);
    if (!cases)
        return CLT_ERR_NO_MEMORY;
    size_t n = 0;
    enum clt_status st = gather(c->dev, c->cfg->quick, cases, &n);
    bool clblast_ok = true;
    for (size_t i = 0; st == CLT_OK && i < n; i++) {
        if (c->cfg->verbose)
            fprintf(stderr, "cltrain-bench:   gemm %s\n", cases[i].name);
        st = one_case(c, &cases[i], &clblast_ok);
    }
    free(cases);
    return st;
}
