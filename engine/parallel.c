/*
 * parallel.c: data-parallel training in one process (docs/parallel.md). A trainer over n
 * devices is n ordinary trainers (replicas) of the same graph and options, one per device; the
 * caller holds replica 0, whose par holds the others. A step splits the global batch into n
 * contiguous row ranges, fixed per trainer (replica i takes rows/n rows, one more when i <
 * rows % n), and runs the forward and backward pass of each range on its replica, all
 * enqueued before the host waits for any. Each replica's backward starts from d loss / d loss
 * = rows_i / rows instead of 1, so that for a loss that averages over rows (cross-entropy,
 * mse, mean) the sum of the replicas' gradients is the global batch's gradient. On a step that
 * updates, the host reads every replica's flat gradient buffer, sums them in fp32 in device
 * order (0, 1, ...), writes the sum back to every replica, and every replica runs the same
 * optimizer update on the same inputs. Replicas of different implementations (another
 * platform, device name or driver) may round differently: after each update replica 0's
 * trained parameters are copied to them.
 *
 * Everything else reads replica 0: the loss is the rows-weighted mean of the replicas' losses,
 * evaluation runs on replica 0 in chunks of its planned batch, checkpoints save replica 0 and
 * a load (or a parameter write) is copied from replica 0 to the others (clt__parallel_sync).
 *
 * Across processes (MPI): the caller's all-reduce (clt_trainer_set_allreduce) replaces the
 * host sum with the sum over all processes before it is written back; the library itself
 * never calls MPI (tools/train_mpi.c does, for `cltrain train` under mpirun).
 */
#include <stdlib.h>
#include <string.h>

#include "trainer.h"

struct clt__parallel {
    uint32_t n;
    int64_t batch;            /* rows of a full global step */
    struct clt_trainer **rep; /* rep[0] is the trainer the caller holds */
    int64_t *rows;            /* rows of each replica in the latest step */
    int64_t last_rows;        /* rows of the latest step */
    const void **ptrs;        /* scratch: one replica's input pointers */
    float *sum, *tmp;         /* host reduction buffers, trained floats each */
    bool broadcast;           /* replicas of different implementations */
    /* The sum across processes (clt_trainer_set_allreduce) and its argument; NULL: none. */
    clt_allreduce_fn allreduce;
    void *allreduce_user;
};

int64_t clt__parallel_batch(const struct clt_trainer *tr)
{
    return tr->par->batch;
}

/* Replica i's rows of a step of `rows` rows, and the first of them. */
static int64_t share(const struct clt__parallel *p, uint32_t i, int64_t rows, int64_t *first)
{
    int64_t base = rows / p->n, extra = rows % p->n;
    if (first)
        *first = base * i + (i < extra ? i : extra);
    return base + (i < extra ? 1 : 0);
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

static enum clt_status read_buf(struct clt_trainer *tr, cl_mem mem, uint64_t bytes, void *dst)
{
    cl_int err =
        clEnqueueReadBuffer(tr->dev->queue, mem, CL_TRUE, 0, (size_t)bytes, dst, 0, NULL, NULL);
    return clt__cl_check(&tr->dev->log, err, "clEnqueueReadBuffer (data-parallel)");
}

static enum clt_status write_buf(struct clt_trainer *tr, cl_mem mem, uint64_t bytes,
                                 const void *src)
{
    cl_int err =
        clEnqueueWriteBuffer(tr->dev->queue, mem, CL_TRUE, 0, (size_t)bytes, src, 0, NULL, NULL);
    return clt__cl_check(&tr->dev->log, err, "clEnqueueWriteBuffer (data-parallel)");
}

/* Sums the replicas' gradients in device order and writes the sum to each. Blocks. */
static enum clt_status reduce(struct clt__parallel *p)
{
    uint64_t n = p->rep[0]->plan.trained;
    if (n == 0)
        return CLT_OK;
    enum clt_status st = read_buf(p->rep[0], p->rep[0]->grads, n * 4, p->sum);
    for (uint32_t i = 1; i < p->n && st == CLT_OK; i++) {
        st = read_buf(p->rep[i], p->rep[i]->grads, n * 4, p->tmp);
        for (uint64_t e = 0; st == CLT_OK && e < n; e++)
            p->sum[e] += p->tmp[e];
    }
    if (st == CLT_OK && p->allreduce) /* across processes: docs/parallel.md, MPI */
        st = p->allreduce(p->allreduce_user, p->sum, n);
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++)
        st = write_buf(p->rep[i], p->rep[i]->grads, n * 4, p->sum);
    return st;
}

/* Copies replica 0's trained parameters to the other replicas. Blocks. */
static enum clt_status broadcast_params(struct clt__parallel *p)
{
    uint64_t n = p->rep[0]->plan.trained;
    enum clt_status st = n ? read_buf(p->rep[0], p->rep[0]->params, n * 4, p->sum) : CLT_OK;
    for (uint32_t i = 1; i < p->n && st == CLT_OK && n; i++)
        st = write_buf(p->rep[i], p->rep[i]->params, n * 4, p->sum);
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
    if (rows / p->n < clt__trainer_batch(tr) && tr->plan.partial_error[0]) {
        clt__log(&tr->dev->log, CLT_LOG_ERROR,
                 "step: %lld rows give a device %lld rows of %lld, but this graph cannot run a "
                 "partial batch: %s",
                 (long long)rows, (long long)(rows / p->n), (long long)clt__trainer_batch(tr),
                 tr->plan.partial_error);
        return CLT_ERR_UNSUPPORTED;
    }
    bool updating = (tr->steps + 1) % tr->options.optimizer.accumulate == 0;
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; i < p->n && st == CLT_OK; i++) {
        struct clt_trainer *r = p->rep[i];
        int64_t first;
        p->rows[i] = share(p, i, rows, &first);
        offset_inputs(p, inputs, first);
        r->loss_seed = (float)((double)p->rows[i] / (double)rows);
        st = clt__trainer_step_pass(r, p->ptrs, p->rows[i]);
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
        st = read_buf(r0, *parts[k].mem, parts[k].bytes, dst);
        for (uint32_t i = 1; i < p->n && st == CLT_OK; i++) {
            cl_mem m = *(cl_mem *)((char *)p->rep[i] + member);
            st = write_buf(p->rep[i], m, parts[k].bytes, dst);
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

void clt__parallel_free(struct clt_trainer *tr)
{
    struct clt__parallel *p = tr->par;
    if (!p)
        return;
    tr->par = NULL;
    for (uint32_t i = 1; i < p->n; i++)
        clt_trainer_free(p->rep[i]);
    free(p->rep);
    free(p->rows);
    free(p->ptrs);
    free(p->sum);
    free(p->tmp);
    free(p);
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

enum clt_status clt_trainer_create_parallel(struct clt_device *const *devices, uint32_t ndevices,
                                            const struct clt_graph *graph,
                                            const struct clt_tensor *loss, int64_t batch,
                                            const struct clt_trainer_options *options,
                                            struct clt_trainer **out)
{
    if (!devices || ndevices == 0 || !out || batch < 0)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_devices(devices, ndevices);
    if (st != CLT_OK)
        return st;
    struct clt_trainer *r0 = NULL;
    st = clt_trainer_create(devices[0], graph, loss, options, &r0);
    if (st != CLT_OK)
        return st;
    const struct clt_log *log = &devices[0]->log;
    struct clt__parallel *p = calloc(1, sizeof *p);
    if (!p) {
        clt_trainer_free(r0);
        return CLT_ERR_NO_MEMORY;
    }
    r0->par = p; /* from here clt_trainer_free(r0) frees p and the replicas made so far */
    int64_t b = clt__trainer_batch(r0);
    p->batch = batch ? batch : b * (int64_t)ndevices;
    int64_t least = p->batch / ndevices, most = least + (p->batch % ndevices ? 1 : 0);
    if (least < 1 || most > b) {
        clt__log(log, CLT_LOG_ERROR,
                 "data-parallel trainer: a global batch of %lld rows over %u devices needs a "
                 "graph planned for %lld rows per device (and one row per device at least); "
                 "this one is planned for %lld",
                 (long long)p->batch, (unsigned)ndevices, (long long)most, (long long)b);
        st = CLT_ERR_INVALID_ARGUMENT;
    } else if (least < b && r0->plan.partial_error[0]) {
        clt__log(log, CLT_LOG_ERROR,
                 "data-parallel trainer: %lld rows on a device planned for %lld need partial "
                 "batches, which this graph cannot run: %s",
                 (long long)least, (long long)b, r0->plan.partial_error);
        st = CLT_ERR_UNSUPPORTED;
    }
    uint64_t nt = r0->plan.trained ? r0->plan.trained : 1;
    if (st == CLT_OK) {
        p->rep = calloc(ndevices, sizeof *p->rep);
        p->rows = calloc(ndevices, sizeof *p->rows);
        p->ptrs = calloc(r0->plan.ninputs ? r0->plan.ninputs : 1, sizeof *p->ptrs);
        p->sum = malloc((size_t)nt * 4);
        p->tmp = malloc((size_t)nt * 4);
        if (!p->rep || !p->rows || !p->ptrs || !p->sum || !p->tmp)
            st = CLT_ERR_NO_MEMORY;
    }
    if (st == CLT_OK) {
        p->rep[0] = r0;
        p->n = 1; /* counts the replicas made, for clt__parallel_free on an error */
    }
    for (uint32_t i = 1; i < ndevices && st == CLT_OK; i++) {
        st = clt_trainer_create(devices[i], graph, loss, options, &p->rep[i]);
        if (st == CLT_OK) {
            p->n++;
            p->broadcast = p->broadcast || !same_kind(devices[0], devices[i]);
        }
    }
    /* The same seed gave every replica the same initial values (initialisers run on the
     * host). */
    if (st != CLT_OK) {
        clt_trainer_free(r0);
        return st;
    }
    clt__log(log, CLT_LOG_INFO,
             "data-parallel trainer: %u devices, global batch %lld (%lld to %lld rows each), "
             "%s",
             (unsigned)ndevices, (long long)p->batch, (long long)least, (long long)most,
             p->broadcast ? "replica 0's parameters copied to the others after each update"
                          : "the same update on every replica");
    *out = r0;
    return CLT_OK;
}
