/*
 * tune.c: the GEMM tuner. Chooses, per device and shape, the fastest correct implementation
 * among the own kernel's configurations (clt__gemm_own_space, split-K's among them where the
 * shape has a long k and few tiles, or a k much longer than it is wide), CLBlast and the host's
 * BLAS.
 *
 * Shapes are keyed exactly: (trans_a, trans_b, m, n, k, batch, storage). Leading dimensions,
 * strides, offsets, alpha and beta do not take part: every implementation serves them all.
 *
 * Storage (dev->storage, docs/precision.md): in fp32 the candidates are the own kernel's
 * configurations, CLBlast and the host BLAS. In fp16 and bf16 (A, B and C store_t) they are the
 * own kernel's configurations built in that storage and the widened path (A and B widened to
 * fp32, the shape's fp32 choice, C narrowed: CLBlast and the host BLAS serve 16-bit storage
 * through it), each checked against the fp32 reference with the storage's tolerance; the fp32
 * choice for the shape is settled first, so the widened path is timed as it will run.
 * CLBlast's HGEMM is not a candidate: it computes in half, and no device this was written
 * on offers cl_khr_fp16 to test it on.
 *
 * Timing one shape is tune_time.c's part.
 *
 * A session has a budget, CLTRAIN_TUNE_BUDGET seconds, by default EXPLICIT_BUDGET_SECONDS for
 * clt_device_gemm_tune (`cltrain tune`, `cltrain devices --warm`) and CREATE_BUDGET_SECONDS
 * for trainer creation: on a cold machine timing a shape means compiling its candidates
 * (about 20 s for one of the cnn's shapes on a 2-core PoCL machine, its compile-only cold
 * start 20 s), and the first step should not wait minutes for it. Past the budget, further
 * misses get the default without timing, and a shape whose candidates the budget ran out
 * among is stored as partial (clt_gemm_tuning.partial, a `partial` line in the entry): the
 * best of those timed serves it, and a later session with budget left times the rest,
 * carrying the figures of those timed (tune_time.c). Each session times at least one more
 * candidate of it, so a shape whose candidates take longer than one budget to time (cold
 * compilers, a slow device) is still timed whole in the end, no candidate twice.
 *
 * Load: each entry keeps the system's load average per core when its shape was timed. A
 * shape timed while the machine was oversubscribed (more than LOADED runnable threads per
 * core: other processes, not only the tuner's own work) holds a choice that load may have
 * decided; a later session that finds the machine at most half as loaded, and below
 * LOADED, times it again and replaces it. An entry without a load (written before loads were
 * kept) is timed again once by a session on a quiet machine (below QUIET per core). On a
 * quiet machine a cache timed quiet costs nothing.
 *
 * Persistence: one entry per device in the cache directory, <hash>.tune, in the container
 * format of the program binaries (cache.c: magic, identity text, checksum; written through
 * a temporary file, fsync and rename). The identity is the program identity of cl/gemm.cl
 * (library version, platform, device, driver, build options, source hash) with the host
 * BLAS and CLBlast named and the own kernel's search space hashed (clt__gemm_own_space_id). The
 * payload is text (docs/formats.md, "GEMM tuning entries"), read and written by tune_store.c.
 * A corrupt or foreign entry is logged and ignored; the shapes are timed again. Program binaries:
 * while a shape's candidates are timed the device defers them (clt_device.defer_binaries); only the
 * chosen configuration's program is written to the binary cache (clt__gemm_own_keep).
 */
/* getloadavg (glibc, the BSDs and macOS declare it in stdlib.h outside strict POSIX). */
#define _DEFAULT_SOURCE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gemm_own.h"
#include "internal.h"
#include "tune.h"

#define EXPLICIT_BUDGET_SECONDS 60.0
#define CREATE_BUDGET_SECONDS 10.0
#define LOADED 2.0
#define QUIET 1.0
#define NEAR 2.0 /* the farthest timed shape whose choice serves one not timed (nearest) */

#ifndef CLT_CLBLAST_VERSION
#define CLT_CLBLAST_VERSION "unknown"
#endif

double clt__tune_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The system's load average over the last minute per online core; -1 when unknown. */
static double load_per_core(const struct clt__tune *tu)
{
    if (tu->test_load > 0)
        return tu->test_load;
    double l[1];
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (getloadavg(l, 1) != 1 || cores < 1)
        return -1;
    return l[0] / (double)cores;
}

static bool same_key(const struct clt_gemm_tuning *t, const struct clt_gemm_shape *g,
                     enum clt_precision storage)
{
    return t->trans_a == g->trans_a && t->trans_b == g->trans_b && t->m == g->m && t->n == g->n &&
           t->k == g->k && t->batch == (g->batch > 0 ? g->batch : 1) && t->storage == storage;
}

static struct clt__tune_entry *find(struct clt__tune *tu, const struct clt_gemm_shape *g,
                                    enum clt_precision storage)
{
    for (size_t i = 0; i < tu->count; i++)
        if (same_key(&tu->entries[i].t, g, storage))
            return &tu->entries[i];
    return NULL;
}

void clt__tune_impl_name(enum clt__gemm_impl impl, const struct clt__gemm_config *cfg, char *out,
                         size_t size)
{
    char c[80];
    switch (impl) {
    case CLT__GEMM_IMPL_OWN:
        clt__gemm_config_format(cfg, c, sizeof c);
        snprintf(out, size, "own %s", c);
        break;
    case CLT__GEMM_IMPL_CLBLAST:
        snprintf(out, size, "clblast");
        break;
    case CLT__GEMM_IMPL_HOST:
        snprintf(out, size, "host %s", clt__gemm_host_name());
        break;
    case CLT__GEMM_IMPL_TEST:
        snprintf(out, size, "test");
        break;
    case CLT__GEMM_IMPL_WIDEN:
        snprintf(out, size, "widen");
        break;
    }
}

enum clt_status clt__tune_setup(struct clt_device *dev)
{
    struct clt__tune *tu = calloc(1, sizeof *tu);
    if (!tu)
        return CLT_ERR_NO_MEMORY;
    const char *env = getenv("CLTRAIN_TUNE");
    tu->enabled = !(env && strcmp(env, "0") == 0);
    tu->budget = -1; /* the session's default */
    env = getenv("CLTRAIN_TUNE_BUDGET");
    if (env && *env) {
        char *end;
        double b = strtod(env, &end);
        if (*end == '\0' && b >= 0 && b <= 1e6)
            tu->budget = b;
        else
            clt__log(&dev->log, CLT_LOG_WARN,
                     "CLTRAIN_TUNE_BUDGET=%s is not a number of "
                     "seconds; using %.0f (trainer creation) and %.0f (explicit tuning)",
                     env, CREATE_BUDGET_SECONDS, EXPLICIT_BUDGET_SECONDS);
    }
    dev->tune = tu;
    if (!dev->cache_dir[0] || !tu->enabled)
        return CLT_OK;
    char *src = NULL, *gemm_id = NULL;
    size_t src_size = 0;
    enum clt_status st = clt__source_read(dev, "gemm", &src, &src_size);
    if (st == CLT_OK)
        st = clt__cache_identity(dev, src, src_size, &gemm_id);
    free(src);
    if (st == CLT_OK) {
        const char *fmt = "%s%s\nhost-blas %s\nclblast %s\ngemm-space %016llx\ngemm-tuning\n";
        unsigned long long space = (unsigned long long)clt__gemm_own_space_id(dev);
        int n = snprintf(NULL, 0, fmt, gemm_id, CLT__TUNE_MAGIC, clt__gemm_host_name(),
                         CLT_CLBLAST_VERSION, space);
        tu->identity = n < 0 ? NULL : malloc((size_t)n + 1);
        if (!tu->identity)
            st = CLT_ERR_NO_MEMORY;
        else
            snprintf(tu->identity, (size_t)n + 1, fmt, gemm_id, CLT__TUNE_MAGIC,
                     clt__gemm_host_name(), CLT_CLBLAST_VERSION, space);
    }
    free(gemm_id);
    if (st != CLT_OK)
        return st;
    uint64_t h = clt__hash64(CLT__FNV_SEED, tu->identity, strlen(tu->identity));
    snprintf(tu->path, sizeof tu->path, "%s/%016llx.tune", dev->cache_dir, (unsigned long long)h);
    clt__tune_load(dev, tu);
    return CLT_OK;
}

void clt__tune_teardown(struct clt_device *dev)
{
    if (!dev->tune)
        return;
    free(dev->tune->entries);
    free(dev->tune->rec.s);
    free(dev->tune->said.s);
    free(dev->tune->identity);
    free(dev->tune);
    dev->tune = NULL;
}

void clt__tune_begin(struct clt_device *dev, bool explicit_session)
{
    struct clt__tune *tu = dev->tune;
    if (!tu)
        return;
    if (tu->session++ == 0) {
        tu->session_start = clt__tune_now();
        tu->session_budget = tu->budget >= 0    ? tu->budget
                             : explicit_session ? EXPLICIT_BUDGET_SECONDS
                                                : CREATE_BUDGET_SECONDS;
        tu->budget_said = false;
        tu->said.n = 0;
    }
}

void clt__tune_end(struct clt_device *dev)
{
    struct clt__tune *tu = dev->tune;
    if (!tu || tu->session == 0)
        return;
    if (--tu->session == 0)
        clt__tune_save(dev, tu);
}

void clt__tune_test_candidate(struct clt_device *dev, const char *name, clt__gemm_fn fn)
{
    if (!dev->tune)
        return;
    dev->tune->test_name = name;
    dev->tune->test_fn = fn;
}

clt__gemm_fn clt__tune_test_fn(const struct clt_device *dev)
{
    return dev->tune ? dev->tune->test_fn : NULL;
}

/* The choice without timing: the own kernel when it is the device's backend; else host
 * BLAS where it runs, else CLBlast, and in 16 bits the widened path around them. */
static enum clt__gemm_impl default_impl(struct clt_device *dev, const struct clt_gemm_shape *g,
                                        struct clt__gemm_config *cfg)
{
    if (dev->gemm_backend == CLT_GEMM_OWN) {
        clt__gemm_own_default(dev, g, cfg);
        return CLT__GEMM_IMPL_OWN;
    }
    if (dev->storage != CLT_PRECISION_FP32)
        return CLT__GEMM_IMPL_WIDEN;
    return dev->gemm_host ? CLT__GEMM_IMPL_HOST : CLT__GEMM_IMPL_CLBLAST;
}

/* Whether the device can run impl (in configuration cfg for the own kernel) now, for the
 * transpose pair of t (an entry naming dot mode for another pair is foreign). */
static bool usable(struct clt_device *dev, enum clt__gemm_impl impl,
                   const struct clt__gemm_config *cfg, const struct clt_gemm_tuning *t)
{
    switch (impl) {
    case CLT__GEMM_IMPL_HOST:
        return dev->gemm_host;
    case CLT__GEMM_IMPL_CLBLAST:
        return dev->gemm_backend == CLT_GEMM_CLBLAST;
    case CLT__GEMM_IMPL_OWN:
        return clt__gemm_own_refusal(dev, cfg) == NULL &&
               clt__gemm_own_computes(cfg, t->trans_a, t->trans_b);
    case CLT__GEMM_IMPL_TEST:
        return dev->tune && dev->tune->test_fn;
    case CLT__GEMM_IMPL_WIDEN:
        return dev->storage != CLT_PRECISION_FP32;
    }
    return false;
}

/* The fastest of e's candidates that computed correctly and that the device can run now;
 * false when there is none. */
static bool second_best(struct clt_device *dev, const struct clt__tune_entry *e,
                        enum clt__gemm_impl *impl, struct clt__gemm_config *cfg)
{
    double best = 0;
    for (uint32_t i = 0; i < e->t.candidate_count; i++) {
        const struct clt_gemm_candidate *c = &e->t.candidates[i];
        enum clt__gemm_impl ci;
        struct clt__gemm_config cc = {0};
        if (c->status != CLT_OK || c->wrong || !(c->gflops > best) ||
            !clt__tune_parse_choice(c->name, &ci, &cc) || !usable(dev, ci, &cc, &e->t))
            continue;
        best = c->gflops;
        *impl = ci;
        *cfg = cc;
    }
    return best > 0;
}

/* Adds g to the set unless it is there; whether it was added (a full set, or one that cannot
 * grow, adds nothing). */
static bool shapes_add(struct clt__shapes *set, const struct clt_gemm_shape *g)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct clt_gemm_shape *r = &set->s[i];
        if (r->trans_a == g->trans_a && r->trans_b == g->trans_b && r->m == g->m && r->n == g->n &&
            r->k == g->k && r->batch == g->batch)
            return false;
    }
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        struct clt_gemm_shape *r =
            cap <= CLT__TUNE_MAX_ENTRIES ? realloc(set->s, cap * sizeof *r) : NULL;
        if (!r)
            return false;
        set->s = r;
        set->cap = cap;
    }
    set->s[set->n++] = *g;
    return true;
}

void clt__tune_record_start(struct clt_device *dev)
{
    if (!dev->tune)
        return;
    dev->tune->recording = true;
    dev->tune->rec.n = 0;
}

size_t clt__tune_record_stop(struct clt_device *dev, struct clt_gemm_shape *out, size_t max)
{
    struct clt__tune *tu = dev->tune;
    if (!tu)
        return 0;
    tu->recording = false;
    for (size_t i = 0; i < tu->rec.n && i < max; i++)
        out[i] = tu->rec.s[i];
    return tu->rec.n;
}

/* The stored choice for e, or when the device cannot run it now (CLBlast failed on this
 * device since, the host BLAS is refused by CLTRAIN_HOST_BLAS=0, or this library refuses an
 * own configuration on the device, as serial mode on llvmpipe) the fastest stored candidate
 * that can run, else the default. */
static enum clt__gemm_impl stored(struct clt_device *dev, const struct clt__tune_entry *e,
                                  const struct clt_gemm_shape *g, struct clt__gemm_config *cfg)
{
    if (usable(dev, e->impl, &e->cfg, &e->t)) {
        *cfg = e->cfg;
        return e->impl;
    }
    enum clt__gemm_impl impl = CLT__GEMM_IMPL_OWN;
    return second_best(dev, e, &impl, cfg) ? impl : default_impl(dev, g, cfg);
}

/* How far apart a timed shape and g are: the sum over m, n, k and the batch of |log2| of
 * their ratios (4x in one size is 2, 2x in two sizes is 2). */
static double distance(const struct clt_gemm_tuning *t, const struct clt_gemm_shape *g)
{
    const double a[4] = {(double)t->m, (double)t->n, (double)t->k, (double)t->batch};
    const double b[4] = {(double)g->m, (double)g->n, (double)g->k,
                         (double)(g->batch > 0 ? g->batch : 1)};
    double d = 0;
    for (int i = 0; i < 4; i++)
        d += fabs(log2(a[i] / b[i]));
    return d;
}

/* The choice for a shape that no entry holds and that is not timed now (outside a tuning
 * session, or past its budget): its class's, that of the nearest timed shape of the same
 * storage and transposes within NEAR (distance), when the device can run it; else the
 * default. The gpt's A B^T products (1024 x {96, 128, 384, 512} x 128) are within 4x of each
 * other; on PoCL the host BLAS, the default, ran 87 to 120 GFLOP/s at them where their own
 * configurations ran 125 to 146 (docs/bench.md, 2026-12-06). Never inside a timing (a
 * candidate that runs clt__gemm) nor under CLTRAIN_TUNE=0, which get the default. */
static enum clt__gemm_impl nearest(struct clt_device *dev, const struct clt_gemm_shape *g,
                                   struct clt__gemm_config *cfg)
{
    struct clt__tune *tu = dev->tune;
    const struct clt__tune_entry *best = NULL;
    double near = NEAR;
    for (size_t i = 0; i < tu->count; i++) {
        const struct clt__tune_entry *e = &tu->entries[i];
        if (e->t.storage != (uint32_t)dev->storage || e->t.trans_a != g->trans_a ||
            e->t.trans_b != g->trans_b)
            continue;
        double d = distance(&e->t, g);
        if (d <= near && usable(dev, e->impl, &e->cfg, &e->t)) {
            best = e;
            near = d;
        }
    }
    if (!best)
        return default_impl(dev, g, cfg);
    if (tu->session > 0 && shapes_add(&tu->said, g)) /* (a session's; not every step's) */
        clt__log(&dev->log, CLT_LOG_INFO,
                 "gemm tuning: m=%lld n=%lld k=%lld not timed: %s serves it, as it serves "
                 "m=%lld n=%lld k=%lld",
                 (long long)g->m, (long long)g->n, (long long)g->k, best->t.chosen,
                 (long long)best->t.m, (long long)best->t.n, (long long)best->t.k);
    *cfg = best->cfg;
    return best->impl;
}

/* Whether e should be timed again in this session: it was timed on an oversubscribed
 * machine (LOADED per core or more) and the machine is now at most half as loaded and below
 * LOADED, or its load is not known (an entry written before loads were kept) and the machine
 * is now quiet (below QUIET per core). */
static bool timed_loaded(struct clt__tune *tu, const struct clt__tune_entry *e)
{
    if (tu->session == 0 || (e->load >= 0 && e->load < LOADED))
        return false;
    double now = load_per_core(tu);
    if (now < 0)
        return false;
    return e->load < 0 ? now < QUIET : now < LOADED && now <= e->load / 2;
}

bool clt__tune_budget_spent(const struct clt__tune *tu, uint32_t timed)
{
    if (tu->test_budget_candidates)
        return timed >= tu->test_budget_candidates;
    return clt__tune_now() - tu->session_start >= tu->session_budget;
}

/* Whether the session's budget leaves time to time a shape (said once when not). */
static bool budget_left(struct clt_device *dev, struct clt__tune *tu)
{
    if (!clt__tune_budget_spent(tu, 0))
        return true;
    if (!tu->budget_said)
        clt__log(&dev->log, CLT_LOG_WARN,
                 "gemm tuning: the budget of %.0f s "
                 "(CLTRAIN_TUNE_BUDGET) is spent; further shapes take the choice of a timed "
                 "shape of their class, or the default, until a later run times them (`cltrain "
                 "tune` times them all ahead of time)",
                 tu->session_budget);
    tu->budget_said = true;
    return false;
}

enum clt__gemm_impl clt__tune_choose(struct clt_device *dev, const struct clt_gemm_shape *g,
                                     struct clt__gemm_config *cfg)
{
    struct clt__tune *tu = dev->tune;
    if (tu && tu->recording)
        (void)shapes_add(&tu->rec, g);
    if (!tu || !dev->gemm_may_fall_back || !tu->enabled)
        return default_impl(dev, g, cfg);
    const enum clt_precision storage = dev->storage;
    struct clt__tune_entry *e = find(tu, g, storage);
    if (e) {
        /* Timed on an oversubscribed machine: timed again in a session that finds it at
         * most half as loaded, and no longer oversubscribed; chosen among some candidates
         * only (partial): the rest timed while the budget lasts. */
        if (tu->session == 0 || tu->timing || !(e->t.partial || timed_loaded(tu, e)) ||
            !budget_left(dev, tu))
            return stored(dev, e, g, cfg);
        if (e->t.partial)
            clt__log(&dev->log, CLT_LOG_INFO,
                     "gemm tuning: m=%lld n=%lld k=%lld has %u candidates timed: timing the rest",
                     (long long)g->m, (long long)g->n, (long long)g->k, e->t.candidate_count);
        else {
            if (e->load < 0)
                clt__log(&dev->log, CLT_LOG_INFO,
                         "gemm tuning: m=%lld n=%lld k=%lld was timed at an unknown load: "
                         "timing it again",
                         (long long)g->m, (long long)g->n, (long long)g->k);
            else
                clt__log(&dev->log, CLT_LOG_INFO,
                         "gemm tuning: m=%lld n=%lld k=%lld was timed at a load of %.1f per "
                         "core, now %.1f: timing it again",
                         (long long)g->m, (long long)g->n, (long long)g->k, e->load,
                         load_per_core(tu));
        }
    } else if (tu->timing) {
        /* (A candidate being timed that runs clt__gemm, as the widened path does, meets no
         * timing of its own.) */
        return default_impl(dev, g, cfg);
    } else if (tu->session == 0 || !budget_left(dev, tu)) {
        return nearest(dev, g, cfg);
    }
    if (storage == CLT_PRECISION_FP32) {
        /* CLBlast's own parameters are decided first, so that every shape times it as it
         * will run. */
        clt__xgemm_decide(dev);
    } else {
        /* The fp32 choice first: the widened path is then timed as it will run. */
        struct clt__gemm_config unused;
        enum clt_precision prev = clt__storage_set(dev, CLT_PRECISION_FP32);
        (void)clt__tune_choose(dev, g, &unused);
        clt__storage_set(dev, prev);
        e = find(tu, g, storage); /* (the fp32 choice may have grown the table) */
        if (!budget_left(dev, tu))
            return e ? stored(dev, e, g, cfg) : nearest(dev, g, cfg);
    }
    struct clt__tune_entry fresh;
    memset(&fresh, 0, sizeof fresh);
    fresh.t.storage = storage;
    fresh.t.trans_a = g->trans_a;
    fresh.t.trans_b = g->trans_b;
    fresh.t.m = g->m;
    fresh.t.n = g->n;
    fresh.t.k = g->k;
    fresh.t.batch = g->batch > 0 ? g->batch : 1;
    fresh.load = load_per_core(tu);
    double t0 = clt__tune_now();
    clt__log(&dev->log, CLT_LOG_INFO, "gemm tuning: m=%lld n=%lld k=%lld batch=%lld%s%s%s%s ...",
             (long long)g->m, (long long)g->n, (long long)g->k, (long long)fresh.t.batch,
             g->trans_a ? " A^T" : "", g->trans_b ? " B^T" : "",
             storage != CLT_PRECISION_FP32 ? " " : "", clt__tune_storage_word(storage));
    tu->timing = true;
    const bool deferred = dev->defer_binaries;
    dev->defer_binaries = true; /* the candidates' binaries: only the chosen one's is cached */
    enum clt_status timed = clt__tune_time_shape(dev, g, e && e->t.partial ? e : NULL, &fresh);
    dev->defer_binaries = deferred;
    tu->timing = false;
    if (timed != CLT_OK) {
        clt__log(&dev->log, CLT_LOG_WARN,
                 "gemm tuning: no candidate ran correctly for m=%lld "
                 "n=%lld k=%lld; using the %s",
                 (long long)g->m, (long long)g->n, (long long)g->k,
                 e ? "stored choice" : "default");
        return e ? stored(dev, e, g, cfg) : default_impl(dev, g, cfg);
    }
    double best = 0;
    for (uint32_t i = 0; i < fresh.t.candidate_count; i++)
        if (strcmp(fresh.t.candidates[i].name, fresh.t.chosen) == 0)
            best = fresh.t.candidates[i].gflops;
    clt__log(&dev->log, CLT_LOG_INFO, "gemm tuning: chose %s (%.1f GFLOP/s) in %.1f s",
             fresh.t.chosen, best, clt__tune_now() - t0);
    if (fresh.t.partial) {
        /* Stored as partial, the rest timed later; a whole entry that stands already (timed
         * again for load) is kept instead. */
        const bool whole = e && !e->t.partial;
        clt__log(&dev->log, CLT_LOG_INFO,
                 "gemm tuning: the budget ran out after %u candidates of m=%lld n=%lld k=%lld: "
                 "%s; a later run times the rest",
                 fresh.t.candidate_count, (long long)g->m, (long long)g->n, (long long)g->k,
                 whole ? "the stored choice serves" : "the best of them serves, stored as partial");
        if (whole)
            return stored(dev, e, g, cfg);
    }
    if (fresh.impl == CLT__GEMM_IMPL_OWN &&
        clt__gemm_own_keep(dev, &fresh.cfg, g->trans_a, g->trans_b) != CLT_OK) {
        /* The chosen configuration's program is cached now, the other candidates' not at all. */
        clt__log(&dev->log, CLT_LOG_WARN, "gemm tuning: the chosen configuration failed to build");
    }
    if (!e)
        e = clt__tune_add(tu);
    if (!e) {
        *cfg = fresh.cfg;
        return fresh.impl;
    }
    *e = fresh;
    tu->dirty = true;
    *cfg = e->cfg;
    return e->impl;
}

/* ---- Public ------------------------------------------------------------------------------ */

enum clt_status clt_device_gemm_tune(struct clt_device *dev, const struct clt_gemm_shape *shapes,
                                     size_t count)
{
    if (clt__device_usable(dev) != CLT_OK || (count > 0 && !shapes))
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = CLT_OK;
    clt__tune_begin(dev, true);
    for (size_t i = 0; st == CLT_OK && i < count; i++) {
        struct clt_gemm_shape g;
        int64_t sa, sb, sc;
        st = clt__gemm_resolve(&dev->log, &shapes[i], &g, &sa, &sb, &sc);
        struct clt__gemm_config cfg;
        if (st == CLT_OK)
            (void)clt__tune_choose(dev, &g, &cfg);
    }
    clt__tune_end(dev);
    return st;
}

enum clt_status clt_device_gemm_tunings(struct clt_device *dev, struct clt_gemm_tuning **out,
                                        size_t *count)
{
    if (!out || !count || clt__device_usable(dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *count = 0;
    struct clt__tune *tu = dev->tune;
    if (!tu || tu->count == 0)
        return CLT_OK;
    struct clt_gemm_tuning *list = malloc(tu->count * sizeof *list);
    if (!list)
        return CLT_ERR_NO_MEMORY;
    for (size_t i = 0; i < tu->count; i++)
        list[i] = tu->entries[i].t;
    *out = list;
    *count = tu->count;
    return CLT_OK;
}

enum clt_status clt_device_gemm_clblast_params(const struct clt_device *dev, char *out, size_t size)
{
    if (!dev || !out || size == 0)
        return CLT_ERR_INVALID_ARGUMENT;
    out[0] = '\0';
    if (!dev->tune || !dev->tune->xgemm_decided)
        return CLT_OK;
    char text[256];
    clt__xgemm_format(dev->tune, text, sizeof text);
    if (strlen(text) >= size)
        return CLT_ERR_INVALID_ARGUMENT;
    memcpy(out, text, strlen(text) + 1);
    return CLT_OK;
}
