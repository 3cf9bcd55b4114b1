/*
 * parallel_create.c: making a data-parallel trainer (docs/parallel.md): the split of the
 * global batch (clt_parallel_split, weighted), the replicas and their checks, timing each
 * device for a weighted split (clt_trainer_parallel_measure), and what a caller can read of
 * the split and the reduction (clt_trainer_parallel_info). The step and the reduction are in
 * parallel.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parallel.h"

enum clt_status clt_parallel_split(int64_t batch, uint32_t n, const double *weights, int64_t *rows)
{
    if (n == 0 || n > CLT_PARALLEL_MAX || batch < (int64_t)n || !rows)
        return CLT_ERR_INVALID_ARGUMENT;
    double total = 0, rem[CLT_PARALLEL_MAX];
    for (uint32_t i = 0; i < n; i++) {
        double w = weights ? weights[i] : 1.0;
        if (!isfinite(w) || w <= 0)
            return CLT_ERR_INVALID_ARGUMENT;
        total += w;
    }
    /* The floor of each exact share batch * w / total; whole weights (a replica's rows) and
     * batch below 2^53 make these exact. */
    int64_t given = 0;
    for (uint32_t i = 0; i < n; i++) {
        double exact = (double)batch * (weights ? weights[i] : 1.0) / total;
        rows[i] = (int64_t)floor(exact);
        rem[i] = exact - (double)rows[i];
        given += rows[i];
    }
    for (; given < batch; given++) {
        uint32_t best = 0;
        for (uint32_t i = 1; i < n; i++)
            if (rem[i] > rem[best])
                best = i;
        rows[best]++;
        rem[best] = -1;
    }
    for (uint32_t i = 0; i < n; i++)
        if (rows[i] == 0) {
            uint32_t big = 0;
            for (uint32_t j = 1; j < n; j++)
                if (rows[j] > rows[big])
                    big = j;
            rows[big]--;
            rows[i] = 1;
        }
    return CLT_OK;
}

/* Whether two devices are of the same implementation (their updates round alike). */
static bool same_kind(const struct clt_device *a, const struct clt_device *b)
{
    return strcmp(a->info.platform, b->info.platform) == 0 &&
           strcmp(a->info.name, b->info.name) == 0 &&
           strcmp(a->info.driver_version, b->info.driver_version) == 0;
}

/* The checks of the arguments that need no trainer, logged to the first device. */
static enum clt_status check_devices(struct clt_device *const *devices, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (!devices[i] || clt__device_usable(devices[i]) != CLT_OK)
            return CLT_ERR_INVALID_ARGUMENT;
        for (uint32_t j = 0; j < i; j++)
            if (devices[j] == devices[i] || devices[j]->id == devices[i]->id) {
                clt__log(&devices[0]->log, CLT_LOG_ERROR,
                         "data-parallel trainer: devices %u and %u are the same device (%s)",
                         (unsigned)j, (unsigned)i, devices[i]->info.name);
                return CLT_ERR_INVALID_ARGUMENT;
            }
    }
    return CLT_OK;
}

/* Whether replica r has replica 0's parameters (names, shapes, order) and buffer sizes. */
static bool same_params(struct clt_trainer *r0, struct clt_trainer *r)
{
    uint32_t n = clt_trainer_param_count(r0);
    if (clt_trainer_param_count(r) != n || r->plan.trained != r0->plan.trained ||
        r->plan.state != r0->plan.state)
        return false;
    for (uint32_t k = 0; k < n; k++) {
        struct clt_param_info a, b;
        if (clt_trainer_param_info(r0, k, &a) != CLT_OK ||
            clt_trainer_param_info(r, k, &b) != CLT_OK || strcmp(a.name, b.name) != 0 ||
            a.ndim != b.ndim || a.trained != b.trained ||
            memcmp(a.shape, b.shape, a.ndim * sizeof a.shape[0]) != 0)
            return false;
    }
    return true;
}

/* The part of creation after replica 0: the other replicas, their reduction state, the
 * buckets. p->weight and p->batch are set. */
static enum clt_status create_rest(struct clt__parallel *p, struct clt_device *const *devices,
                                   const struct clt_graph *const *graphs,
                                   const struct clt_tensor *const *losses,
                                   const struct clt_trainer_options *options)
{
    struct clt_trainer *r0 = p->rep[0];
    const struct clt_log *log = &devices[0]->log;
    uint32_t ndevices = p->n;
    p->n = 1; /* counts the replicas made, for clt__parallel_free on an error */
    enum clt_status st = CLT_OK;
    for (uint32_t i = 1; i < ndevices && st == CLT_OK; i++) {
        st = clt_trainer_create(devices[i], graphs[i], losses[i], options, &p->rep[i]);
        if (st != CLT_OK)
            break;
        p->n++;
        p->broadcast = p->broadcast || !same_kind(devices[0], devices[i]);
        if (!same_params(r0, p->rep[i])) {
            clt__log(log, CLT_LOG_ERROR,
                     "data-parallel trainer: the graph of device %u has other parameters than "
                     "device 0's (names, shapes or order): the graphs must be one model",
                     (unsigned)i);
            st = CLT_ERR_INVALID_ARGUMENT;
        }
    }
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++) {
        struct clt_trainer *r = p->rep[i];
        int64_t b = clt__trainer_batch(r);
        if (p->weight[i] > b) {
            clt__log(log, CLT_LOG_ERROR,
                     "data-parallel trainer: device %u takes %lld rows of a global batch of %lld "
                     "but its graph is planned for %lld",
                     (unsigned)i, (long long)p->weight[i], (long long)p->batch, (long long)b);
            st = CLT_ERR_INVALID_ARGUMENT;
        } else if (p->weight[i] < b && r->plan.partial_error[0]) {
            clt__log(log, CLT_LOG_ERROR,
                     "data-parallel trainer: %lld rows on device %u, planned for %lld, need "
                     "partial batches, which this graph cannot run: %s",
                     (long long)p->weight[i], (unsigned)i, (long long)b, r->plan.partial_error);
            st = CLT_ERR_UNSUPPORTED;
        }
        if (st != CLT_OK)
            break;
        r->replica = calloc(1, sizeof *r->replica);
        if (!r->replica || !(r->replica->host = malloc((size_t)(r0->plan.trained + 1) * 4))) {
            st = CLT_ERR_NO_MEMORY;
            break;
        }
        r->replica->p = p;
        r->replica->index = i;
    }
    if (st == CLT_OK)
        st = clt__parallel_make_buckets(p, CLT_PARALLEL_BUCKET_BYTES);
    /* The same seed gave every replica the same initial values (initialisers run on the
     * host). */
    if (st == CLT_OK) {
        char split[CLT_PARALLEL_MAX * 24] = "";
        size_t at = 0;
        for (uint32_t i = 0; i < p->n && at < sizeof split; i++)
            at += (size_t)snprintf(split + at, sizeof split - at, "%s%lld", i ? " + " : "",
                                   (long long)p->weight[i]);
        clt__log(log, CLT_LOG_INFO,
                 "data-parallel trainer: %u devices, global batch %lld (%s rows), %u gradient "
                 "buckets, %s",
                 (unsigned)p->n, (long long)p->batch, split, (unsigned)p->nbuckets,
                 p->broadcast ? "replica 0's parameters copied to the others after each update"
                              : "the same update on every replica");
    }
    return st;
}

/* A graph's planned batch, as the planner takes it (plan.c, check_partial): the leading
 * dimension of its first input, 1 without one. */
static int64_t graph_batch(const struct clt_graph *g)
{
    for (uint32_t id = 0; id < g->count; id++) {
        const struct clt_tensor *t = g->nodes[id];
        if (t->kind == CLT__NODE_INPUT)
            return t->ndim > 0 && t->shape[0] > 0 ? t->shape[0] : 1;
    }
    return 1;
}

/* Both creations: replica i of graphs[i], taking weight[i] rows of a global step. */
static enum clt_status create(struct clt_device *const *devices, uint32_t ndevices,
                              const struct clt_graph *const *graphs,
                              const struct clt_tensor *const *losses, const int64_t *weight,
                              const struct clt_trainer_options *options, struct clt_trainer **out)
{
    /* 16-bit training runs on one device only: the gradient buckets, their reduction and the
     * all-reduce hook move fp32 gradients the 16-bit backward does not write in place
     * (docs/precision.md). */
    if (options && options->precision != CLT_PRECISION_FP32) {
        const bool known = (unsigned)options->precision <= CLT_PRECISION_BF16;
        clt__log(&devices[0]->log, CLT_LOG_ERROR,
                 known ? "data-parallel trainer: precision %s is not supported (16-bit training "
                         "runs on one device); use fp32"
                       : "data-parallel trainer: precision %s is none of fp32, fp16 and bf16",
                 clt_precision_name(options->precision));
        return known ? CLT_ERR_UNSUPPORTED : CLT_ERR_INVALID_ARGUMENT;
    }
    struct clt_trainer *r0 = NULL;
    enum clt_status st = clt_trainer_create(devices[0], graphs[0], losses[0], options, &r0);
    if (st != CLT_OK)
        return st;
    struct clt__parallel *p = calloc(1, sizeof *p);
    if (!p) {
        clt_trainer_free(r0);
        return CLT_ERR_NO_MEMORY;
    }
    r0->par = p; /* from here clt_trainer_free(r0) frees p and the replicas made so far */
    p->n = 1;
    p->rep = calloc(ndevices, sizeof *p->rep);
    p->weight = calloc(ndevices, sizeof *p->weight);
    p->rows = calloc(ndevices, sizeof *p->rows);
    p->ptrs = calloc(r0->plan.ninputs ? r0->plan.ninputs : 1, sizeof *p->ptrs);
    p->sum = malloc((size_t)(r0->plan.trained + 1) * 4);
    if (!p->rep || !p->weight || !p->rows || !p->ptrs || !p->sum) {
        clt_trainer_free(r0);
        return CLT_ERR_NO_MEMORY;
    }
    p->rep[0] = r0;
    for (uint32_t i = 0; i < ndevices; i++) {
        p->weight[i] = weight[i];
        p->batch += weight[i];
    }
    p->n = ndevices;
    st = create_rest(p, devices, graphs, losses, options);
    if (st != CLT_OK) {
        clt_trainer_free(r0);
        return st;
    }
    *out = r0;
    return CLT_OK;
}

enum clt_status clt_trainer_create_parallel(struct clt_device *const *devices, uint32_t ndevices,
                                            const struct clt_graph *graph,
                                            const struct clt_tensor *loss, int64_t batch,
                                            const struct clt_trainer_options *options,
                                            struct clt_trainer **out)
{
    if (!devices || ndevices == 0 || ndevices > CLT_PARALLEL_MAX || !out || batch < 0 || !graph ||
        !loss)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_devices(devices, ndevices);
    if (st != CLT_OK)
        return st;
    int64_t b = graph_batch(graph);
    int64_t global = batch ? batch : b * (int64_t)ndevices, weight[CLT_PARALLEL_MAX];
    if (clt_parallel_split(global, ndevices, NULL, weight) != CLT_OK || weight[0] > b) {
        clt__log(&devices[0]->log, CLT_LOG_ERROR,
                 "data-parallel trainer: a global batch of %lld rows over %u devices needs a "
                 "graph planned for %lld rows per device (and one row per device at least); "
                 "this one is planned for %lld",
                 (long long)global, (unsigned)ndevices,
                 (long long)((global + ndevices - 1) / ndevices), (long long)b);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    const struct clt_graph *graphs[CLT_PARALLEL_MAX];
    const struct clt_tensor *losses[CLT_PARALLEL_MAX];
    for (uint32_t i = 0; i < ndevices; i++) {
        graphs[i] = graph;
        losses[i] = loss;
    }
    return create(devices, ndevices, graphs, losses, weight, options, out);
}

enum clt_status clt_trainer_create_parallel_split(struct clt_device *const *devices,
                                                  uint32_t ndevices,
                                                  const struct clt_graph *const *graphs,
                                                  const struct clt_tensor *const *losses,
                                                  const struct clt_trainer_options *options,
                                                  struct clt_trainer **out)
{
    if (!devices || ndevices == 0 || ndevices > CLT_PARALLEL_MAX || !out || !graphs || !losses)
        return CLT_ERR_INVALID_ARGUMENT;
    for (uint32_t i = 0; i < ndevices; i++)
        if (!graphs[i] || !losses[i])
            return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_devices(devices, ndevices);
    if (st != CLT_OK)
        return st;
    int64_t weight[CLT_PARALLEL_MAX];
    for (uint32_t i = 0; i < ndevices; i++)
        weight[i] = graph_batch(graphs[i]);
    return create(devices, ndevices, graphs, losses, weight, options, out);
}

enum clt_status clt_trainer_parallel_info(const struct clt_trainer *tr,
                                          struct clt_parallel_info *out)
{
    if (!tr || !tr->par || !out)
        return CLT_ERR_INVALID_ARGUMENT;
    const struct clt__parallel *p = tr->par;
    memset(out, 0, sizeof *out);
    out->ndevices = p->n;
    out->batch = p->batch;
    for (uint32_t i = 0; i < p->n; i++)
        out->rows[i] = p->weight[i];
    out->buckets = p->nbuckets;
    out->grad_bytes = p->rep[0]->plan.trained * 4;
    out->profiled_steps = p->profiled_steps;
    out->read_s = p->read_s;
    out->hidden_s = p->hidden_s;
    out->exposed_s = p->exposed_s;
    return CLT_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Copies replica 0's parameters, state, moments and optimizer status to the host (save) or
 * back (restore). Blocks. */
static enum clt_status snapshot(struct clt_trainer *r0, float *host, uint32_t *status, bool restore)
{
    uint64_t np = r0->plan.trained + r0->plan.state, nt = r0->plan.trained;
    struct {
        cl_mem mem;
        uint64_t bytes;
        void *at;
    } parts[4] = {{r0->params, np * 4, host},
                  {r0->moment1, nt * 4, host + np},
                  {r0->moment2, nt * 4, host + np + nt},
                  {r0->status, CLT__OPTIM_STATUS_BYTES, status}};
    enum clt_status st = CLT_OK;
    for (int k = 0; k < 4 && st == CLT_OK; k++)
        if (parts[k].bytes > 0)
            st = restore ? clt__parallel_write(r0, parts[k].mem, parts[k].bytes, parts[k].at)
                         : clt__parallel_read(r0, parts[k].mem, parts[k].bytes, parts[k].at);
    return st;
}

enum clt_status clt_trainer_parallel_measure(struct clt_trainer *tr, uint32_t passes,
                                             double *rows_per_s)
{
    if (!tr || !tr->par || !rows_per_s || passes == 0 || passes > 100)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt__parallel *p = tr->par;
    if (tr->steps % tr->options.optimizer.accumulate != 0) {
        clt__log(&tr->dev->log, CLT_LOG_ERROR,
                 "parallel measure: inside an accumulation of gradients (step %llu of %u per "
                 "update); measure between updates",
                 (unsigned long long)tr->steps, (unsigned)tr->options.optimizer.accumulate);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    uint64_t np = tr->plan.trained + tr->plan.state, nt = tr->plan.trained;
    float *host = malloc((size_t)(np + 2 * nt + 1) * 4);
    double *t = malloc(passes * sizeof *t);
    uint32_t status[CLT__OPTIM_STATUS_BYTES / 4];
    enum clt_status st = host && t ? CLT_OK : CLT_ERR_NO_MEMORY;
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++)
        st = clt_device_finish(p->rep[i]->dev);
    if (st == CLT_OK)
        st = snapshot(p->rep[0], host, status, false);
    /* One device at a time, so that they do not share the host's attention; the trial step of
     * creation (forward, backward, an update at rate 0, an evaluation forward) on zero inputs. */
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++) {
        struct clt_trainer *r = p->rep[i];
        st = clt__trainer_dry_run(r);
        for (uint32_t k = 0; k < passes && st == CLT_OK; k++) {
            double t0 = now_s();
            st = clt__trainer_dry_run(r);
            t[k] = now_s() - t0;
        }
        if (st == CLT_OK) {
            qsort(t, passes, sizeof *t, cmp_double);
            double median = passes % 2 ? t[passes / 2] : 0.5 * (t[passes / 2 - 1] + t[passes / 2]);
            rows_per_s[i] = (double)clt__trainer_batch(r) / (median > 1e-9 ? median : 1e-9);
        }
    }
    /* The trial steps changed the moments, the optimizer status and batch norm's averages. */
    if (st == CLT_OK)
        st = snapshot(p->rep[0], host, status, true);
    if (st == CLT_OK)
        st = clt__parallel_sync(tr);
    free(host);
    free(t);
    return st;
}
