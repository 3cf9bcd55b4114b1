/*
 * parallel.c: data-parallel training in one process (docs/parallel.md). A trainer over n
 * devices is n ordinary trainers (replicas) of the same model and options, one per device; the
 * caller holds replica 0, whose par holds the others. Each replica's graph is planned for its
 * share of the global batch (one graph for all with an equal split; one per device with
 * clt_trainer_create_parallel_split). A step splits its rows into n contiguous row ranges by
 * clt_parallel_split, weighted by the replicas' full-step shares, and runs the forward and
 * backward pass of each range on its replica, all enqueued before the host waits for any.
 * Each replica's backward starts from d loss / d loss = rows_i / rows instead of 1, so that
 * for a loss that averages over rows (cross-entropy, mse, mean) the sum of the replicas'
 * gradients is the global batch's gradient, for any split.
 *
 * The reduction (reduce()) on a step that updates: the trained parameters are grouped into
 * buckets (contiguous ranges of the flat gradient buffer, last layer first); while a replica's
 * backward is enqueued, each bucket's read into a host buffer of that replica is enqueued on
 * the device's transfer queue as soon as the backward entry that completes the bucket is
 * (clt__parallel_backward_entry, after a marker), so it runs while the rest of the backward
 * does. The host takes the buckets in a fixed order, waits for every replica's read of one,
 * sums it in fp32 in device order (0, 1, ...), the same order for every element whatever the
 * buckets, hands it to the caller's all-reduce across processes where one is set
 * (clt_trainer_set_allreduce: tools/train_mpi.c does it for `cltrain train` under mpirun; the
 * library never calls MPI itself), and writes the sum back to every replica (exchange()); every
 * replica runs the same optimizer update on the same inputs.
 * Replicas of different implementations (another platform, device name or driver) may round
 * differently: after each update replica 0's trained parameters are copied to them.
 *
 * Everything else reads replica 0: the loss is the rows-weighted mean of the replicas' losses,
 * evaluation runs on replica 0 in chunks of its planned batch, checkpoints save replica 0 and
 * a load (or a parameter write) is copied from replica 0 to the others (clt__parallel_sync).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parallel.h"

int64_t clt__parallel_batch(const struct clt_trainer *tr)
{
    return tr->par->batch;
}

/* Splits a step of `rows` rows by the replicas' full-step shares into p->rows. */
static void split_step(struct clt__parallel *p, int64_t rows)
{
    double w[CLT_PARALLEL_MAX];
    for (uint32_t i = 0; i < p->n; i++)
        w[i] = (double)p->weight[i];
    clt_parallel_split(rows, p->n, w, p->rows); /* rows >= n: checked by the caller */
}

/* Points p->ptrs at row `first` of each of the caller's inputs. */
static void offset_inputs(struct clt__parallel *p, const void *const *inputs, int64_t first)
{
    const struct clt_trainer *tr = p->rep[0];
    int64_t batch = clt__trainer_batch(tr);
    uint32_t k = 0;
    for (uint32_t id = 0; id < tr->plan.n; id++) {
        const struct clt_tensor *t = tr->graph->nodes[id];
        if (t->kind != CLT__NODE_INPUT)
            continue;
        size_t row_bytes = (size_t)(clt__count(t) / batch) * 4;
        p->ptrs[k] =
            inputs && inputs[k] ? (const char *)inputs[k] + (size_t)first * row_bytes : NULL;
        k++;
    }
}

enum clt_status clt__parallel_read(struct clt_trainer *tr, cl_mem mem, uint64_t bytes, void *dst)
{
    cl_int err =
        clEnqueueReadBuffer(tr->dev->queue, mem, CL_TRUE, 0, (size_t)bytes, dst, 0, NULL, NULL);
    return clt__cl_check(&tr->dev->log, err, "clEnqueueReadBuffer (data-parallel)");
}

enum clt_status clt__parallel_write(struct clt_trainer *tr, cl_mem mem, uint64_t bytes,
                                    const void *src)
{
    cl_int err =
        clEnqueueWriteBuffer(tr->dev->queue, mem, CL_TRUE, 0, (size_t)bytes, src, 0, NULL, NULL);
    return clt__cl_check(&tr->dev->log, err, "clEnqueueWriteBuffer (data-parallel)");
}

static void release(cl_event *ev)
{
    if (*ev)
        clReleaseEvent(*ev);
    *ev = NULL;
}

/* ==== Buckets ============================================================================ */

/* The backward entry of each trained parameter of r's plan (k-th parameter node in id order)
 * after which its gradient is complete: the last entry that runs a backward reading it
 * directly or through a view (a fused chain's entry covers the chain's nodes and the node
 * whose bias it adds). -1: no entry writes it. */
static void param_ready(const struct clt_trainer *r, int32_t *ready)
{
    const struct clt__plan *pl = &r->plan;
    uint32_t np = 0;
    int32_t *by_id = malloc(pl->n * sizeof *by_id); /* the parameter index of node id, or -1 */
    if (!by_id) {
        for (uint32_t id = 0, k = 0; id < pl->n; id++)
            if (r->graph->nodes[id]->kind == CLT__NODE_PARAM)
                ready[k++] = INT32_MAX; /* no memory: every bucket after the whole backward */
        return;
    }
    for (uint32_t id = 0; id < pl->n; id++) {
        by_id[id] = r->graph->nodes[id]->kind == CLT__NODE_PARAM ? (int32_t)np : -1;
        if (by_id[id] >= 0)
            ready[np++] = -1;
    }
    for (uint32_t e = 0; e < pl->nbwd; e++) {
        if (pl->bwd[e].kind != CLT__ENTRY_BACKWARD)
            continue;
        const struct clt_tensor *t = r->graph->nodes[pl->bwd[e].node];
        uint32_t covered[CLT__FUSE_MAX + 2], nc = 0;
        covered[nc++] = t->id;
        int32_t g = pl->info[t->id].group;
        if (g >= 0) {
            const struct clt__fuse_group *gr = &pl->groups[g];
            for (uint32_t k = 0; k < gr->n; k++)
                covered[nc++] = gr->node[k];
            if (gr->bias >= 0)
                covered[nc++] = (uint32_t)gr->bias;
        }
        for (uint32_t c = 0; c < nc; c++) {
            const struct clt_tensor *node = r->graph->nodes[covered[c]];
            for (uint32_t k = 0; k < node->nin; k++) {
                int32_t pi = by_id[pl->info[node->in[k]->id].root];
                if (pi >= 0)
                    ready[pi] = (int32_t)e;
            }
        }
    }
    free(by_id);
}

/* Groups the trained parameters, last first, into buckets of about bytes (0: one bucket),
 * and each replica's ready entry of each bucket; the host order is replica 0's readiness. */
enum clt_status clt__parallel_make_buckets(struct clt__parallel *p, uint64_t bytes)
{
    const struct clt_trainer *r0 = p->rep[0];
    uint32_t np = 0;
    for (uint32_t id = 0; id < r0->plan.n; id++)
        np += r0->graph->nodes[id]->kind == CLT__NODE_PARAM;
    struct clt__bucket *b = calloc(np ? np : 1, sizeof *b);
    uint32_t *first =
        calloc(np ? np + 1 : 1, sizeof *first); /* bucket k: params [first[k+1], first[k]) */
    int32_t *ready = calloc(np ? np : 1, sizeof *ready);
    uint64_t *off = calloc(np ? np + 1 : 1, sizeof *off);
    enum clt_status st = b && first && ready && off ? CLT_OK : CLT_ERR_NO_MEMORY;
    uint32_t nb = 0;
    if (st == CLT_OK) {
        for (uint32_t id = 0, k = 0; id < r0->plan.n; id++)
            if (r0->graph->nodes[id]->kind == CLT__NODE_PARAM)
                off[k++] = r0->plan.info[id].grad_offset;
        off[np] = r0->plan.trained;
        /* From the last parameter down: a bucket closes once it holds bytes or more. */
        uint32_t top = np;
        for (uint32_t k = np; k-- > 0;) {
            if (bytes > 0 && (off[top] - off[k]) * 4 >= bytes) {
                b[nb].off = off[k];
                b[nb].n = off[top] - off[k];
                first[nb++] = top;
                top = k;
            }
        }
        if (top > 0 || nb == 0) {
            b[nb].off = 0;
            b[nb].n = off[top];
            first[nb++] = top;
        }
    }
    /* Each replica's new arrays are made before any old one is dropped, so that a failure
     * leaves the buckets as they were. */
    int32_t *nready[CLT_PARALLEL_MAX] = {0};
    bool *nstarted[CLT_PARALLEL_MAX] = {0};
    cl_event *nread[CLT_PARALLEL_MAX] = {0};
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++) {
        nready[i] = calloc(nb, sizeof *nready[i]);
        nstarted[i] = calloc(nb, sizeof *nstarted[i]);
        nread[i] = calloc(nb, sizeof *nread[i]);
        if (!nready[i] || !nstarted[i] || !nread[i]) {
            st = CLT_ERR_NO_MEMORY;
            break;
        }
        param_ready(p->rep[i], ready);
        for (uint32_t k = 0; k < nb; k++) {
            int32_t last = bytes == 0 ? INT32_MAX : -1; /* one bucket: after the backward */
            uint32_t lo = k + 1 < nb ? first[k + 1] : 0;
            for (uint32_t q = lo; q < first[k] && bytes > 0; q++)
                last = ready[q] > last ? ready[q] : last;
            nready[i][k] = last;
        }
    }
    for (uint32_t i = 0; i < p->n; i++) {
        struct clt__replica *rp = p->rep[i]->replica;
        if (st == CLT_OK) {
            for (uint32_t k = 0; rp->read_ev && k < p->nbuckets; k++)
                release(&rp->read_ev[k]);
            free(rp->ready);
            free(rp->started);
            free(rp->read_ev);
            rp->ready = nready[i];
            rp->started = nstarted[i];
            rp->read_ev = nread[i];
        } else {
            free(nready[i]);
            free(nstarted[i]);
            free(nread[i]);
        }
    }
    if (st == CLT_OK) {
        /* The buckets were made last parameter first; reduce them in replica 0's order of
         * readiness (a stable insertion sort: the same order every run). */
        struct clt__replica *rp0 = p->rep[0]->replica;
        for (uint32_t k = 1; k < nb; k++)
            for (uint32_t j = k; j > 0 && rp0->ready[j] < rp0->ready[j - 1]; j--)
                for (uint32_t i = 0; i < p->n; i++) {
                    struct clt__replica *rp = p->rep[i]->replica;
                    int32_t t = rp->ready[j];
                    rp->ready[j] = rp->ready[j - 1];
                    rp->ready[j - 1] = t;
                    if (i == 0) {
                        struct clt__bucket tb = b[j];
                        b[j] = b[j - 1];
                        b[j - 1] = tb;
                    }
                }
        free(p->buckets);
        p->buckets = b;
        p->nbuckets = nb;
        p->bucket_bytes = bytes;
        b = NULL;
    }
    free(b);
    free(first);
    free(ready);
    free(off);
    return st;
}

/* Enqueues the read of bucket k of replica r on its transfer queue, after a marker that
 * follows everything enqueued so far on its compute queue. */
static enum clt_status start_read(struct clt_trainer *r, uint32_t k)
{
    struct clt__replica *rp = r->replica;
    const struct clt__bucket *b = &rp->p->buckets[k];
    struct clt_device *dev = r->dev;
    cl_event marker = NULL;
    cl_int err = clEnqueueMarkerWithWaitList(dev->queue, 0, NULL, &marker);
    enum clt_status st = clt__cl_check(&dev->log, err, "clEnqueueMarkerWithWaitList (bucket)");
    release(&rp->read_ev[k]);
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log,
                           clEnqueueReadBuffer(dev->transfer, r->grads, CL_FALSE, b->off * 4,
                                               b->n * 4, rp->host + b->off, 1, &marker,
                                               &rp->read_ev[k]),
                           "clEnqueueReadBuffer (gradient bucket)");
    release(&marker);
    /* Both queues flushed: the marker reaches the device and the read waits only for it. */
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log, clFlush(dev->queue), "clFlush");
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log, clFlush(dev->transfer), "clFlush");
    rp->started[k] = st == CLT_OK;
    return st;
}

enum clt_status clt__parallel_backward_entry(struct clt_trainer *tr, uint32_t e)
{
    struct clt__replica *rp = tr->replica;
    if (!rp->active)
        return CLT_OK;
    enum clt_status st = CLT_OK;
    for (uint32_t k = 0; k < rp->p->nbuckets && st == CLT_OK; k++)
        if (!rp->started[k] && rp->ready[k] <= (int32_t)e && e + 1 < tr->plan.nbwd)
            st = start_read(tr, k);
    return st;
}

/* After replica r's whole backward is enqueued: the end marker (with profiling) and the reads
 * of the buckets not started yet. */
static enum clt_status finish_reads(struct clt_trainer *r)
{
    struct clt__replica *rp = r->replica;
    enum clt_status st = CLT_OK;
    release(&rp->bwd_end);
    if (r->dev->profiling)
        st = clt__cl_check(&r->dev->log,
                           clEnqueueMarkerWithWaitList(r->dev->queue, 0, NULL, &rp->bwd_end),
                           "clEnqueueMarkerWithWaitList");
    for (uint32_t k = 0; k < rp->p->nbuckets && st == CLT_OK; k++)
        if (!rp->started[k])
            st = start_read(r, k);
    return st;
}

static double event_s(cl_event ev, cl_profiling_info what)
{
    cl_ulong t = 0;
    if (clGetEventProfilingInfo(ev, what, sizeof t, &t, NULL) != CL_SUCCESS)
        return 0;
    return (double)t * 1e-9;
}

/* With profiling devices: the reads' device time, the part before each backward's end, and the
 * reduction left exposed: the time from the backward's end to the sums written back, the
 * smallest over the replicas (the replica whose backward ended last, whose figure holds no
 * wait for a slower one). Each replica's times are on its own device's clock. */
static void add_overlap(struct clt__parallel *p)
{
    double exposed = -1;
    for (uint32_t i = 0; i < p->n; i++) {
        struct clt__replica *rp = p->rep[i]->replica;
        if (!p->rep[i]->dev->profiling || !rp->bwd_end || !rp->write_ev)
            return;
        double end = event_s(rp->bwd_end, CL_PROFILING_COMMAND_END);
        for (uint32_t k = 0; k < p->nbuckets; k++) {
            double s = event_s(rp->read_ev[k], CL_PROFILING_COMMAND_START);
            double f = event_s(rp->read_ev[k], CL_PROFILING_COMMAND_END);
            double before = f < end ? f : end;
            p->read_s += f - s;
            p->hidden_s += before > s ? before - s : 0;
        }
        double w = event_s(rp->write_ev, CL_PROFILING_COMMAND_END) - end;
        exposed = exposed < 0 || w < exposed ? w : exposed;
    }
    p->exposed_s += exposed > 0 ? exposed : 0;
    p->profiled_steps++;
}

/* ==== The reduction ====================================================================== */

/* The summed gradients of one bucket, sum[off .. off+n), go back to every replica (writes
 * enqueued on each compute queue, after its backward; the last bucket's event kept). The one
 * call that takes the summed host range; an all-reduce across processes comes just before it
 * (in reduce()). */
static enum clt_status exchange(struct clt__parallel *p, uint64_t off, uint64_t n, bool last)
{
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++) {
        struct clt_trainer *r = p->rep[i];
        cl_event *ev = last ? &r->replica->write_ev : NULL;
        if (ev)
            release(ev);
        st = clt__cl_check(&r->dev->log,
                           clEnqueueWriteBuffer(r->dev->queue, r->grads, CL_FALSE, off * 4, n * 4,
                                                p->sum + off, 0, NULL, ev),
                           "clEnqueueWriteBuffer (data-parallel)");
    }
    return st;
}

/* Sums the replicas' gradients, bucket by bucket in a fixed order, each element in device
 * order, and writes the sums to every replica. Waits for the reads and for the writes (the sum
 * buffer is reused by the next step). */
static enum clt_status reduce(struct clt__parallel *p)
{
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++)
        st = finish_reads(p->rep[i]);
    for (uint32_t k = 0; k < p->nbuckets && st == CLT_OK; k++) {
        const struct clt__bucket *b = &p->buckets[k];
        for (uint32_t i = 0; i < p->n && st == CLT_OK; i++) {
            struct clt_trainer *r = p->rep[i];
            st = clt__cl_check(&r->dev->log, clWaitForEvents(1, &r->replica->read_ev[k]),
                               "clWaitForEvents (gradient bucket)");
        }
        if (st != CLT_OK)
            break;
        float *sum = p->sum + b->off;
        memcpy(sum, p->rep[0]->replica->host + b->off, b->n * 4);
        for (uint32_t i = 1; i < p->n; i++) {
            const float *g = p->rep[i]->replica->host + b->off;
            for (uint64_t e = 0; e < b->n; e++)
                sum[e] += g[e];
        }
        /* sum[0 .. b->n) is this process's sum of the bucket; across processes the caller's
         * all-reduce (clt_trainer_set_allreduce, docs/parallel.md "Across processes (MPI)")
         * replaces it with the sum over processes before the writes: every process reduces
         * the same buckets in the same order. */
        if (p->allreduce)
            st = p->allreduce(p->allreduce_user, sum, b->n);
        if (st == CLT_OK)
            st = exchange(p, b->off, b->n, k + 1 == p->nbuckets);
    }
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++) {
        struct clt_trainer *r = p->rep[i];
        st = clt__cl_check(&r->dev->log, clFlush(r->dev->queue), "clFlush");
    }
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++) {
        struct clt_trainer *r = p->rep[i];
        if (r->replica->write_ev)
            st = clt__cl_check(&r->dev->log, clWaitForEvents(1, &r->replica->write_ev),
                               "clWaitForEvents (data-parallel)");
    }
    if (st == CLT_OK)
        add_overlap(p);
    return st;
}

/* Copies replica 0's trained parameters to the other replicas. Blocks. */
static enum clt_status broadcast_params(struct clt__parallel *p)
{
    uint64_t n = p->rep[0]->plan.trained;
    enum clt_status st =
        n ? clt__parallel_read(p->rep[0], p->rep[0]->params, n * 4, p->sum) : CLT_OK;
    for (uint32_t i = 1; i < p->n && st == CLT_OK && n; i++)
        st = clt__parallel_write(p->rep[i], p->rep[i]->params, n * 4, p->sum);
    return st;
}

enum clt_status clt__parallel_step(struct clt_trainer *tr, const void *const *inputs, int64_t rows)
{
    struct clt__parallel *p = tr->par;
    if (tr->plan.ninputs > 0 && !inputs)
        return CLT_ERR_INVALID_ARGUMENT;
    if (rows < p->n || rows > p->batch) {
        clt__log(&tr->dev->log, CLT_LOG_ERROR,
                 "step: %lld rows, outside %u .. %lld (one row per device at least, the global "
                 "batch at most)",
                 (long long)rows, (unsigned)p->n, (long long)p->batch);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    for (uint32_t i = 0; i < tr->plan.ninputs; i++)
        if (!inputs[i]) {
            clt__log(&tr->dev->log, CLT_LOG_ERROR, "step: input %u is NULL", (unsigned)i);
            return CLT_ERR_INVALID_ARGUMENT;
        }
    /* Every replica's rows are checked before any replica starts, so that a refused step
     * leaves them in step. */
    split_step(p, rows);
    for (uint32_t i = 0; i < p->n; i++) {
        struct clt_trainer *r = p->rep[i];
        if (p->rows[i] < clt__trainer_batch(r) && r->plan.partial_error[0]) {
            clt__log(&tr->dev->log, CLT_LOG_ERROR,
                     "step: %lld rows give device %u %lld rows of %lld, but this graph cannot "
                     "run a partial batch: %s",
                     (long long)rows, (unsigned)i, (long long)p->rows[i],
                     (long long)clt__trainer_batch(r), r->plan.partial_error);
            return CLT_ERR_UNSUPPORTED;
        }
    }
    bool updating = (tr->steps + 1) % tr->options.optimizer.accumulate == 0;
    enum clt_status st = CLT_OK;
    int64_t first = 0;
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++) {
        struct clt_trainer *r = p->rep[i];
        offset_inputs(p, inputs, first);
        first += p->rows[i];
        r->loss_seed = (float)((double)p->rows[i] / (double)rows);
        r->replica->active = updating;
        memset(r->replica->started, 0, p->nbuckets * sizeof *r->replica->started);
        st = clt__trainer_step_pass(r, p->ptrs, p->rows[i]);
        r->replica->active = false;
        if (st == CLT_OK) /* the device starts while the host enqueues the next one */
            st = clt__cl_check(&r->dev->log, clFlush(r->dev->queue), "clFlush");
    }
    if (st == CLT_OK && updating)
        st = reduce(p);
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++)
        st = clt__trainer_step_finish(p->rep[i]);
    if (st == CLT_OK && updating && p->broadcast)
        st = broadcast_params(p);
    if (st == CLT_OK)
        p->last_rows = rows;
    return st;
}

enum clt_status clt_trainer_set_allreduce(struct clt_trainer *tr, clt_allreduce_fn fn, void *user)
{
    if (tr && !tr->par && tr->plan.storage != CLT_PRECISION_FP32) {
        clt__log(&tr->dev->log, CLT_LOG_ERROR,
                 "the all-reduce hook: precision %s is not supported (16-bit training runs on "
                 "one device, in one process); use fp32",
                 clt_precision_name(tr->plan.storage));
        return CLT_ERR_UNSUPPORTED;
    }
    if (!tr || !tr->par)
        return CLT_ERR_INVALID_ARGUMENT;
    tr->par->allreduce = fn;
    tr->par->allreduce_user = user;
    return CLT_OK;
}

enum clt_status clt__parallel_loss(struct clt_trainer *tr, float *loss)
{
    struct clt__parallel *p = tr->par;
    if (!loss || p->last_rows == 0)
        return CLT_ERR_INVALID_ARGUMENT;
    double sum = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        struct clt_trainer *r = p->rep[i];
        enum clt_status st = clt__cl_check(
            &r->dev->log, clWaitForEvents(1, &r->loss_ev[r->loss_slot]), "clWaitForEvents (loss)");
        if (st != CLT_OK)
            return st;
        sum += (double)p->rows[i] / (double)p->last_rows * (double)r->host_loss[r->loss_slot];
    }
    *loss = (float)sum;
    return CLT_OK;
}

enum clt_status clt__parallel_eval(struct clt_trainer *tr, const void *const *inputs, int64_t rows,
                                   const struct clt_tensor *output, float *out, uint64_t count,
                                   float *loss)
{
    struct clt__parallel *p = tr->par;
    int64_t batch = clt__trainer_batch(tr);
    if (rows <= batch)
        return clt__trainer_eval_one(tr, inputs, rows, output, out, count, loss);
    if (rows > p->batch || (output && !out)) {
        clt__log(&tr->dev->log, CLT_LOG_ERROR, "eval: %lld rows, more than the global batch %lld",
                 (long long)rows, (long long)p->batch);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    uint64_t per_row = 0;
    if (output) {
        if (output->graph != tr->graph || output->ndim == 0 || output->shape[0] != batch ||
            count != (uint64_t)(clt__count(output) / batch * rows)) {
            clt__log(&tr->dev->log, CLT_LOG_ERROR,
                     "eval of more rows than one device's batch (%lld): the output must have the "
                     "batch as its leading dimension, and count the size of the real rows",
                     (long long)batch);
            return CLT_ERR_UNSUPPORTED;
        }
        per_row = (uint64_t)(clt__count(output) / batch);
    }
    /* Replica 0 in chunks of its batch: its batch norm averages are the model's. */
    double sum = 0;
    enum clt_status st = CLT_OK;
    for (int64_t first = 0; first < rows && st == CLT_OK; first += batch) {
        int64_t n = rows - first < batch ? rows - first : batch;
        float chunk_loss = 0;
        offset_inputs(p, inputs, first);
        st = clt__trainer_eval_one(tr, p->ptrs, n, output,
                                   output ? out + (uint64_t)first * per_row : NULL,
                                   per_row * (uint64_t)n, loss ? &chunk_loss : NULL);
        sum += (double)n / (double)rows * (double)chunk_loss;
    }
    if (st == CLT_OK && loss)
        *loss = (float)sum;
    return st;
}

enum clt_status clt__parallel_sync(struct clt_trainer *tr)
{
    struct clt__parallel *p = tr->par;
    struct clt_trainer *r0 = p->rep[0];
    uint64_t np = r0->plan.trained + r0->plan.state, nt = r0->plan.trained;
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++)
        st = clt_device_finish(p->rep[i]->dev);
    float *host = malloc((size_t)(np ? np : 1) * 4);
    uint32_t status[CLT__OPTIM_STATUS_BYTES / 4];
    if (!host)
        return CLT_ERR_NO_MEMORY;
    struct {
        cl_mem *mem; /* member of replica 0; the same member of replica i is at the same offset */
        uint64_t bytes;
    } parts[4] = {{&r0->params, np * 4},
                  {&r0->moment1, nt * 4},
                  {&r0->moment2, nt * 4},
                  {&r0->status, CLT__OPTIM_STATUS_BYTES}};
    for (int k = 0; k < 4 && st == CLT_OK; k++) {
        if (parts[k].bytes == 0)
            continue;
        size_t member = (size_t)((char *)parts[k].mem - (char *)r0);
        void *dst = k == 3 ? (void *)status : (void *)host;
        st = clt__parallel_read(r0, *parts[k].mem, parts[k].bytes, dst);
        for (uint32_t i = 1; i < p->n && st == CLT_OK; i++) {
            cl_mem m = *(cl_mem *)((char *)p->rep[i] + member);
            st = clt__parallel_write(p->rep[i], m, parts[k].bytes, dst);
        }
    }
    free(host);
    for (uint32_t i = 1; i < p->n && st == CLT_OK; i++) {
        p->rep[i]->steps = r0->steps;
        p->rep[i]->updates = r0->updates;
        p->rep[i]->last_lr = r0->last_lr;
    }
    return st;
}

void clt__replica_free(struct clt_trainer *r, uint32_t nbuckets)
{
    struct clt__replica *rp = r ? r->replica : NULL;
    if (!rp)
        return;
    r->replica = NULL;
    for (uint32_t k = 0; rp->read_ev && k < nbuckets; k++)
        release(&rp->read_ev[k]);
    release(&rp->write_ev);
    release(&rp->bwd_end);
    free(rp->read_ev);
    free(rp->ready);
    free(rp->started);
    free(rp->host);
    free(rp);
}

void clt__parallel_free(struct clt_trainer *tr)
{
    struct clt__parallel *p = tr->par;
    if (!p)
        return;
    tr->par = NULL;
    /* Pending reads write into the replicas' host buffers: let them end first. */
    for (uint32_t i = 0; i < p->n; i++)
        if (p->rep[i])
            clt_device_finish(p->rep[i]->dev);
    for (uint32_t i = 0; i < p->n; i++)
        clt__replica_free(p->rep[i], p->nbuckets);
    for (uint32_t i = 1; i < p->n; i++)
        clt_trainer_free(p->rep[i]);
    free(p->rep);
    free(p->weight);
    free(p->rows);
    free(p->ptrs);
    free(p->sum);
    free(p->buckets);
    free(p);
}

enum clt_status clt_trainer_parallel_buckets(struct clt_trainer *tr, uint64_t bytes)
{
    if (!tr || !tr->par)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt__parallel *p = tr->par;
    /* Reads of the previous step may still be pending into the buffers being replaced. */
    for (uint32_t i = 0; i < p->n; i++) {
        enum clt_status st = clt_device_finish(p->rep[i]->dev);
        if (st != CLT_OK)
            return st;
    }
    return clt__parallel_make_buckets(p, bytes);
}

enum clt_status clt__parallel_time_reduce(struct clt_trainer *tr, uint32_t reps, double *seconds)
{
    struct clt__parallel *p = tr->par;
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++)
        st = clt_device_finish(p->rep[i]->dev);
    /* The timed reductions are not steps: their overlap figures are not kept. */
    uint64_t steps = p->profiled_steps;
    double read = p->read_s, hidden = p->hidden_s, exposed = p->exposed_s;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint32_t k = 0; k < reps && st == CLT_OK; k++) {
        for (uint32_t i = 0; i < p->n; i++)
            memset(p->rep[i]->replica->started, 0, p->nbuckets * sizeof(bool));
        st = reduce(p);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    p->profiled_steps = steps;
    p->read_s = read;
    p->hidden_s = hidden;
    p->exposed_s = exposed;
    *seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return st;
}
