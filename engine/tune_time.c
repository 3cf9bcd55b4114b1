/*
 * tune_time.c: timing the GEMM candidates of one shape for the tuner (tune.c).
 *
 * Scratch buffers filled with seeded values in [-1, 1]; each candidate runs once (which
 * builds what it needs), its C is read back and checked against a double reference at up to
 * CHECK_POINTS positions; only a correct candidate is timed, by wall clock over back-to-back
 * runs ended by clFinish (best of TIMING_ROUNDS rounds of at least ROUND_SECONDS). A
 * candidate whose second run took more than SLOW_FACTOR times the best time so far is not
 * timed further: that run stands as its figure. The contenders (at most MAX_FINALISTS
 * candidates within FINAL_FACTOR of the best first-pass figure) are then timed again in
 * FINAL_ROUNDS interleaved rounds (each contender once per round, in turn), and the lowest
 * median wins: load on a shared machine that comes and goes then falls on every contender
 * alike instead of deciding alone (a candidate timed during a quiet moment would otherwise
 * beat a faster one timed under load). A candidate that fails to build or run is logged
 * and skipped. Before each candidate after the first this session timed, the session's
 * budget is checked (clt__tune_budget_spent): once it is spent, the candidates timed so far
 * decide and the entry is marked partial (tune.c stores it so). A later session given that
 * partial entry carries its candidates over with their figures instead of timing them again
 * and times from the first candidate it lists not (at least one): the final rounds below
 * then time the contenders side by side, carried or not, in the same minutes.
 *
 * In a 16-bit storage (dev->storage) the scratch buffers hold that storage, the host values
 * are rounded to it before the reference is computed, and the check allows C's rounding on
 * top of the fp32 bound (bench_check).
 *
 * The host BLAS is ranked by its time times HOST_CHARGE: timed back to back it runs with its
 * threads awake and its operands in cache, which it never has in a training step, where each
 * call follows the device's own kernels (docs/bench.md: in the gpt step on PoCL it reached
 * 0.65x the figure the tuner had timed on a quiet machine, 0.2x to 0.7x under load); so is
 * the widened path of a 16-bit storage when the host BLAS is the shape's fp32 choice inside it.
 * The widened path around a device kernel is ranked by its time times WIDEN_CHARGE: it is
 * three or four launches and two fp32 copies of the operands where the own kernel in the
 * storage is one launch, and under load its figures and the own kernel's differ by less than
 * the noise (docs/bench.md: on PoCL under load it won the mlp's first layer in bf16 by 5%,
 * and the step ran 1.08x faster with the own kernel, which a quiet tuning chose by 1.47x).
 * The figures reported stay the measured ones.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "precision.h"
#include "tune.h"

#define CHECK_POINTS 512
#define TIMING_ROUNDS 3
#define ROUND_SECONDS 0.02
#define SLOW_FACTOR 8.0
#define MAX_OWN_CANDIDATES 12
#define FINAL_FACTOR 1.5
#define MAX_FINALISTS 4
#define FINAL_ROUNDS 7
#define HOST_CHARGE CLT_GEMM_HOST_CHARGE
#define WIDEN_CHARGE CLT_GEMM_WIDEN_CHARGE

/* Scratch buffers of one shape and the host copies the check reads. */
struct bench {
    struct clt_device *dev;
    struct clt_gemm_shape g; /* resolved, tight, alpha 1, beta 0.5 */
    enum clt_precision storage;
    size_t elem; /* bytes per element of the storage */
    int64_t span[3];
    float *host[3];  /* A, B, C before any run (rounded to the storage) */
    void *image[3];  /* the same in the storage's bytes (fp32: NULL, host is the image) */
    float *got;      /* C after a run, as floats */
    uint16_t *got16; /* C after a run in a 16-bit storage */
    cl_mem mem[3];
};

static void bench_free(struct bench *b)
{
    for (int i = 0; i < 3; i++) {
        free(b->host[i]);
        free(b->image[i]);
        if (b->mem[i])
            clReleaseMemObject(b->mem[i]);
    }
    free(b->got);
    free(b->got16);
}

/* Operand i as the device holds it. */
static const void *bench_image(const struct bench *b, int i)
{
    return b->image[i] ? b->image[i] : (const void *)b->host[i];
}

static enum clt_status bench_make(struct clt_device *dev, const struct clt_gemm_shape *shape,
                                  struct bench *b)
{
    memset(b, 0, sizeof *b);
    b->dev = dev;
    struct clt_gemm_shape in = {.trans_a = shape->trans_a,
                                .trans_b = shape->trans_b,
                                .m = shape->m,
                                .n = shape->n,
                                .k = shape->k,
                                .batch = shape->batch,
                                .alpha = 1.0f,
                                .beta = 0.5f};
    enum clt_status st =
        clt__gemm_resolve(&dev->log, &in, &b->g, &b->span[0], &b->span[1], &b->span[2]);
    b->storage = dev->storage;
    b->elem = b->storage == CLT_PRECISION_FP32 ? sizeof(float) : sizeof(uint16_t);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; st == CLT_OK && i < 3; i++) {
        b->host[i] = malloc((size_t)b->span[i] * sizeof(float));
        uint16_t *half = NULL;
        if (b->storage != CLT_PRECISION_FP32)
            b->image[i] = half = malloc((size_t)b->span[i] * sizeof(uint16_t));
        if (!b->host[i] || (b->storage != CLT_PRECISION_FP32 && !half)) {
            st = CLT_ERR_NO_MEMORY;
            break;
        }
        for (int64_t j = 0; j < b->span[i]; j++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            b->host[i][j] = (float)((double)(seed >> 40) / (double)(1ULL << 23) - 1.0);
            if (half) {
                half[j] = clt__f32_to_half(b->storage, b->host[i][j]);
                b->host[i][j] = clt__half_to_f32(b->storage, half[j]);
            }
        }
        size_t bytes = (size_t)b->span[i] * b->elem;
        cl_int err;
        b->mem[i] = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
        st = clt__cl_check(&dev->log, err, "clCreateBuffer (GEMM tuning)");
        if (st == CLT_OK && i < 2)
            st = clt__cl_check(&dev->log,
                               clEnqueueWriteBuffer(dev->queue, b->mem[i], CL_TRUE, 0, bytes,
                                                    bench_image(b, i), 0, NULL, NULL),
                               "clEnqueueWriteBuffer (GEMM tuning)");
    }
    if (st == CLT_OK) {
        b->got = malloc((size_t)b->span[2] * sizeof(float));
        if (b->storage != CLT_PRECISION_FP32)
            b->got16 = malloc((size_t)b->span[2] * sizeof(uint16_t));
        if (!b->got || (b->storage != CLT_PRECISION_FP32 && !b->got16))
            st = CLT_ERR_NO_MEMORY;
    }
    return st;
}

/* Element (i, j) of op(A) of batch item z, and of op(B). */
static double a_at(const struct bench *b, int64_t z, int64_t i, int64_t p)
{
    const struct clt_gemm_shape *g = &b->g;
    return b->host[0][z * g->stride_a + (g->trans_a ? p * g->lda + i : i * g->lda + p)];
}

static double b_at(const struct bench *b, int64_t z, int64_t p, int64_t j)
{
    const struct clt_gemm_shape *g = &b->g;
    return b->host[1][z * g->stride_b + (g->trans_b ? j * g->ldb + p : p * g->ldb + j)];
}

/* Runs fn once from a fresh C and checks C at sampled positions: *wrong when it ran but
 * computed a wrong result (then CLT_ERR_GEMM). */
static enum clt_status bench_check(struct bench *b, clt__gemm_fn fn,
                                   const struct clt__tune_entry *own, double *seconds, bool *wrong)
{
    *wrong = false;
    struct clt_device *dev = b->dev;
    const struct clt_gemm_shape *g = &b->g;
    size_t bytes = (size_t)b->span[2] * b->elem;
    enum clt_status st =
        clt__cl_check(&dev->log,
                      clEnqueueWriteBuffer(dev->queue, b->mem[2], CL_TRUE, 0, bytes,
                                           bench_image(b, 2), 0, NULL, NULL),
                      "clEnqueueWriteBuffer (GEMM tuning)");
    if (st != CLT_OK)
        return st;
    struct clt__buf ba = {b->mem[0], 0}, bb = {b->mem[1], 0}, bc = {b->mem[2], 0};
    double t0 = clt__tune_now();
    st = own ? clt__gemm_own_run(dev, &own->cfg, g, ba, bb, bc) : fn(dev, g, ba, bb, bc);
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log, clFinish(dev->queue), "clFinish (GEMM tuning)");
    *seconds = clt__tune_now() - t0;
    void *back = b->got16 ? (void *)b->got16 : (void *)b->got;
    if (st == CLT_OK)
        st = clt__cl_check(
            &dev->log,
            clEnqueueReadBuffer(dev->queue, b->mem[2], CL_TRUE, 0, bytes, back, 0, NULL, NULL),
            "clEnqueueReadBuffer (GEMM tuning)");
    if (st != CLT_OK)
        return st;
    if (b->got16)
        for (int64_t i = 0; i < b->span[2]; i++)
            b->got[i] = clt__half_to_f32(b->storage, b->got16[i]);
    /* C's one rounding to a 16-bit storage: its unit roundoff relative to the result. */
    const double u = b->storage == CLT_PRECISION_FP16   ? 1.0 / 2048
                     : b->storage == CLT_PRECISION_BF16 ? 1.0 / 256
                                                        : 0;
    /* Sampled positions spread over every batch item, row and column (a multiplicative
     * walk), with the first and last element always included. */
    int64_t total = g->batch * g->m * g->n;
    int64_t points = total < CHECK_POINTS ? total : CHECK_POINTS;
    for (int64_t s = 0; s < points; s++) {
        int64_t idx = s == points - 1 ? total - 1 : (s * 2654435761LL) % total;
        int64_t z = idx / (g->m * g->n), i = idx / g->n % g->m, j = idx % g->n;
        double want = 0, scale = 0;
        for (int64_t p = 0; p < g->k; p++) {
            double x = a_at(b, z, i, p) * b_at(b, z, p, j);
            want += x;
            scale += fabs(x);
        }
        double c0 = b->host[2][z * g->stride_c + i * g->ldc + j];
        want = g->alpha * want + g->beta * c0;
        scale = fabs(g->alpha) * scale + fabs(g->beta * c0);
        double got = b->got[z * g->stride_c + i * g->ldc + j];
        /* fp32 accumulation of k terms: well within 1e-4 of the sum of magnitudes; in 16 bits
         * C's rounding on top: u |want|. */
        if (!(fabs(got - want) <= 1e-4 * scale * (1 + u) + u * fabs(want) + 1e-6)) {
            *wrong = true;
            return CLT_ERR_GEMM;
        }
    }
    return CLT_OK;
}

/* Seconds per run: the best of `rounds` rounds of back-to-back runs, as many per round as
 * fill ROUND_SECONDS at the `estimate` (seconds per run), at most max_reps. */
static enum clt_status bench_time(struct bench *b, clt__gemm_fn fn,
                                  const struct clt__tune_entry *own, double estimate, int rounds,
                                  int max_reps, double *seconds)
{
    struct clt_device *dev = b->dev;
    struct clt__buf ba = {b->mem[0], 0}, bb = {b->mem[1], 0}, bc = {b->mem[2], 0};
    int reps = estimate > 0 ? (int)(ROUND_SECONDS / estimate) : max_reps;
    reps = reps < 1 ? 1 : reps > max_reps ? max_reps : reps;
    double best = estimate > 0 && rounds > 1 ? estimate : INFINITY;
    enum clt_status st = CLT_OK;
    for (int r = 0; st == CLT_OK && r < rounds; r++) {
        double t0 = clt__tune_now();
        for (int i = 0; st == CLT_OK && i < reps; i++)
            st = own ? clt__gemm_own_run(dev, &own->cfg, &b->g, ba, bb, bc)
                     : fn(dev, &b->g, ba, bb, bc);
        if (st == CLT_OK)
            st = clt__cl_check(&dev->log, clFinish(dev->queue), "clFinish (GEMM tuning)");
        double t = (clt__tune_now() - t0) / reps;
        if (t < best)
            best = t;
    }
    *seconds = best;
    return st;
}

/* One candidate: checked, then timed unless hopeless. Fills c and returns its seconds per
 * run (0 when rejected). */
static double try_candidate(struct bench *b, clt__gemm_fn fn, const struct clt__tune_entry *own,
                            double best, struct clt_gemm_candidate *c)
{
    struct clt_device *dev = b->dev;
    const struct clt_gemm_shape *g = &b->g;
    double first = 0, t = 0;
    bool wrong = false;
    enum clt_status st = bench_check(b, fn, own, &first, &wrong);
    /* The first run includes building; one more, alone, says whether timing is worth it. */
    if (st == CLT_OK)
        st = bench_time(b, fn, own, first, 1, 1, &t);
    if (st == CLT_OK && (best <= 0 || t <= SLOW_FACTOR * best))
        st = bench_time(b, fn, own, t, TIMING_ROUNDS, 64, &t);
    c->status = st;
    c->wrong = wrong;
    if (wrong)
        clt__log(&dev->log, CLT_LOG_WARN,
                 "gemm tuning: %s computed a wrong result for "
                 "m=%lld n=%lld k=%lld batch=%lld; not used",
                 c->name, (long long)g->m, (long long)g->n, (long long)g->k, (long long)g->batch);
    else if (st != CLT_OK)
        clt__log(&dev->log, CLT_LOG_WARN,
                 "gemm tuning: %s failed (%s) for m=%lld n=%lld "
                 "k=%lld batch=%lld; skipped",
                 c->name, clt_status_str(st), (long long)g->m, (long long)g->n, (long long)g->k,
                 (long long)g->batch);
    if (st != CLT_OK || t <= 0) {
        c->gflops = 0;
        return 0;
    }
    c->gflops = 2.0 * (double)g->m * (double)g->n * (double)g->k * (double)g->batch / t * 1e-9;
    return t;
}

/* One candidate of a shape: how to run it and its seconds per run (0: rejected). */
struct trial {
    enum clt__gemm_impl impl;
    clt__gemm_fn fn;            /* NULL for the own kernel */
    struct clt__tune_entry own; /* the own kernel's configuration */
    bool host;                  /* the host BLAS runs it (directly, or inside the widened path) */
    double seconds;
};

/* The seconds a candidate is ranked by: its time; the host BLAS's (alone or widened) times
 * HOST_CHARGE, the widened path's around a device kernel times WIDEN_CHARGE. */
static double charged(const struct trial *t)
{
    if (t->host)
        return t->seconds * HOST_CHARGE;
    return t->impl == CLT__GEMM_IMPL_WIDEN ? t->seconds * WIDEN_CHARGE : t->seconds;
}

static int by_seconds(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

/* The final: the contenders (indices into trials, n of them) timed in FINAL_ROUNDS
 * interleaved rounds; each one's seconds become its median round. A contender that fails
 * in the final drops out (seconds 0). */
static void final_rounds(struct bench *b, struct trial *trials, const uint32_t *idx, uint32_t n)
{
    double times[MAX_FINALISTS][FINAL_ROUNDS];
    bool failed[MAX_FINALISTS] = {false};
    for (int r = 0; r < FINAL_ROUNDS; r++)
        for (uint32_t i = 0; i < n; i++) {
            struct trial *t = &trials[idx[i]];
            double s = 0;
            if (failed[i] ||
                bench_time(b, t->fn, t->fn ? NULL : &t->own, t->seconds, 1, 64, &s) != CLT_OK ||
                !(s > 0))
                failed[i] = true;
            times[i][r] = s;
        }
    for (uint32_t i = 0; i < n; i++) {
        qsort(times[i], FINAL_ROUNDS, sizeof times[i][0], by_seconds);
        trials[idx[i]].seconds = failed[i] ? 0 : times[i][FINAL_ROUNDS / 2];
    }
}

/* The widened path with the shape's fp32 choice (16-bit storages). */
static enum clt_status widened(struct clt_device *dev, const struct clt_gemm_shape *g,
                               struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    return clt__gemm_widened(dev, g, a, b, c, NULL);
}

/* The candidate of e named name; NULL when e is NULL or lists none. */
static const struct clt_gemm_candidate *listed(const struct clt__tune_entry *e, const char *name)
{
    for (uint32_t i = 0; e && i < e->t.candidate_count; i++)
        if (strcmp(e->t.candidates[i].name, name) == 0)
            return &e->t.candidates[i];
    return NULL;
}

/* Times every candidate for a shape into e (those `earlier` lists carried over, not timed).
 * CLT_OK when one won. A first pass checks and times each candidate in turn; the contenders
 * then meet in interleaved final rounds (the file's comment says why), which decide the
 * winner and their reported figures. */
enum clt_status clt__tune_time_shape(struct clt_device *dev, const struct clt_gemm_shape *g,
                                     const struct clt__tune_entry *earlier,
                                     struct clt__tune_entry *e)
{
    struct clt__tune *tu = dev->tune;
    struct bench b;
    enum clt_status st = bench_make(dev, g, &b);
    if (st != CLT_OK) {
        bench_free(&b);
        return st;
    }
    struct trial trials[CLT_GEMM_MAX_CANDIDATES];
    uint32_t n = 0;
    /* Host BLAS and CLBlast first (in 16 bits: the widened path, which runs them): their
     * times make hopeless own configurations quick. On a CPU device CLBlast comes last: there
     * it runs about 10x slower than both others (on PoCL it won none of 115 shapes) and its
     * first use compiles for seconds, which a budget that runs out among the candidates
     * should spend on the own configurations first. */
    bool clblast_last = false;
    if (b.storage != CLT_PRECISION_FP32) {
        /* The fp32 choice inside (settled before, clt__tune_choose). */
        struct clt__gemm_config unused;
        enum clt_precision prev = clt__storage_set(dev, CLT_PRECISION_FP32);
        bool host = clt__tune_choose(dev, &b.g, &unused) == CLT__GEMM_IMPL_HOST;
        clt__storage_set(dev, prev);
        trials[n++] = (struct trial){.impl = CLT__GEMM_IMPL_WIDEN, .fn = widened, .host = host};
    } else {
        if (dev->gemm_host)
            trials[n++] =
                (struct trial){.impl = CLT__GEMM_IMPL_HOST, .fn = clt__gemm_host, .host = true};
        clblast_last = dev->gemm_backend == CLT_GEMM_CLBLAST && dev->info.type == CLT_DEVICE_CPU;
        if (dev->gemm_backend == CLT_GEMM_CLBLAST && !clblast_last)
            trials[n++] = (struct trial){.impl = CLT__GEMM_IMPL_CLBLAST, .fn = clt__gemm_clblast};
    }
    struct clt__gemm_config cfgs[MAX_OWN_CANDIDATES];
    size_t ncfg = clt__gemm_own_space(dev, &b.g, cfgs, MAX_OWN_CANDIDATES);
    for (size_t i = 0; i < ncfg && n < CLT_GEMM_MAX_CANDIDATES - 1; i++)
        trials[n++] = (struct trial){.impl = CLT__GEMM_IMPL_OWN,
                                     .own = {.impl = CLT__GEMM_IMPL_OWN, .cfg = cfgs[i]}};
    if (clblast_last)
        trials[n++] = (struct trial){.impl = CLT__GEMM_IMPL_CLBLAST, .fn = clt__gemm_clblast};
    if (tu->test_fn)
        trials[n++] = (struct trial){.impl = CLT__GEMM_IMPL_TEST, .fn = tu->test_fn};

    double flops = 2.0 * (double)b.g.m * (double)b.g.n * (double)b.g.k * (double)b.g.batch;
    double best = 0;
    uint32_t timed = 0; /* by this session */
    e->t.partial = false;
    for (uint32_t i = 0; i < n; i++) {
        struct clt_gemm_candidate *c = &e->t.candidates[i];
        struct trial *t = &trials[i];
        if (t->impl == CLT__GEMM_IMPL_TEST)
            snprintf(c->name, sizeof c->name, "%s", tu->test_name ? tu->test_name : "test");
        else
            clt__tune_impl_name(t->impl, &t->own.cfg, c->name, sizeof c->name);
        const struct clt_gemm_candidate *was = listed(earlier, c->name);
        if (was) { /* timed by an earlier session */
            *c = *was;
            t->seconds = c->status == CLT_OK && c->gflops > 0 ? flops / c->gflops * 1e-9 : 0;
        } else if (timed > 0 && best > 0 && clt__tune_budget_spent(tu, timed)) {
            /* The session's budget spent: the candidates timed so far decide. */
            e->t.partial = true;
            n = i;
            break;
        } else {
            t->seconds = try_candidate(&b, t->fn, t->fn ? NULL : &t->own, best, c);
            timed++;
        }
        if (t->seconds > 0 && (best <= 0 || charged(t) < best))
            best = charged(t);
    }
    /* The contenders: the fastest first-pass figures within FINAL_FACTOR of the best. */
    uint32_t fin[MAX_FINALISTS], nfin = 0;
    for (uint32_t i = 0; best > 0 && i < n; i++) {
        if (trials[i].seconds <= 0 || charged(&trials[i]) > FINAL_FACTOR * best)
            continue;
        uint32_t at = nfin < MAX_FINALISTS ? nfin++ : MAX_FINALISTS;
        if (at == MAX_FINALISTS) {
            if (charged(&trials[i]) >= charged(&trials[fin[MAX_FINALISTS - 1]]))
                continue;
            at = MAX_FINALISTS - 1;
        }
        while (at > 0 && charged(&trials[fin[at - 1]]) > charged(&trials[i])) {
            fin[at] = fin[at - 1];
            at--;
        }
        fin[at] = i;
    }
    if (nfin > 1)
        final_rounds(&b, trials, fin, nfin);
    int won = -1;
    for (uint32_t i = 0; i < nfin; i++) {
        struct trial *t = &trials[fin[i]];
        if (t->seconds > 0) {
            e->t.candidates[fin[i]].gflops = flops / t->seconds * 1e-9;
            if (won < 0 || charged(t) < charged(&trials[won]))
                won = (int)fin[i];
        }
    }
    e->t.candidate_count = n;
    if (won >= 0) {
        e->impl = trials[won].impl;
        e->cfg = trials[won].own.cfg;
        snprintf(e->t.chosen, sizeof e->t.chosen, "%s", e->t.candidates[won].name);
    }
    bench_free(&b);
    return won >= 0 ? CLT_OK : CLT_ERR_GEMM;
}

enum clt_status clt__tune_time_one(struct clt_device *dev, const struct clt_gemm_shape *g,
                                   clt__gemm_fn fn, const struct clt__gemm_config *own,
                                   struct clt_gemm_candidate *c)
{
    struct bench b;
    enum clt_status st = bench_make(dev, g, &b);
    if (st == CLT_OK) {
        struct clt__tune_entry e = {.impl = CLT__GEMM_IMPL_OWN};
        if (own)
            e.cfg = *own;
        try_candidate(&b, fn, own ? &e : NULL, 0, c);
        st = c->status;
    }
    bench_free(&b);
    return st;
}
