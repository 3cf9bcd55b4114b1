/*
 * trainer.c: a planned graph on a device: what an op's forward and backward see of the
 * trainer's buffers (clt__val, clt__grad, clt__aux, clt__workspace and the per-input
 * accumulate decisions), the options' defaults, the memory report, and access to parameters.
 *
 * Creation (the options' one check, plan, fit check, buffers, initial values) and freeing are
 * in trainer_create.c; the step itself (upload, forward, backward, optimizer, loss readback,
 * all enqueued), its queues and events, and evaluation in step.c (docs/scheduling.md).
 */
#include <stdlib.h>
#include <string.h>

#include "trainer.h"

struct clt__buf clt__val(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt_trainer *tr = x->tr;
    const struct clt__tinfo *ri = &tr->plan.info[tr->plan.info[t->id].root];
    const struct clt_tensor *r = tr->graph->nodes[tr->plan.info[t->id].root];
    struct clt__buf b = {NULL, 0};
    switch (r->kind) {
    case CLT__NODE_INPUT:
        b.mem = tr->inputs[tr->slot];
        b.offset = (size_t)ri->offset;
        break;
    case CLT__NODE_PARAM: /* a 16-bit plan reads the working copy */
        b.mem = tr->shadow ? tr->shadow : tr->params;
        b.offset = (size_t)ri->offset;
        break;
    case CLT__NODE_STATE:
        b.mem = tr->params;
        b.offset = (size_t)ri->offset;
        break;
    case CLT__NODE_OP: {
        int32_t s = x->in_backward && ri->val_bwd >= 0 ? ri->val_bwd : ri->val;
        b.mem = tr->acts;
        b.offset = (size_t)(tr->plan.st[s].offset / ri->elem_bytes);
        break;
    }
    }
    return b;
}

struct clt__buf clt__grad(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt_trainer *tr = x->tr;
    uint32_t root = tr->plan.info[t->id].root;
    const struct clt__tinfo *ri = &tr->plan.info[root];
    struct clt__buf b = {NULL, 0};
    if (!ri->needs_grad)
        return b;
    if (tr->graph->nodes[root]->kind == CLT__NODE_PARAM) {
        b.mem = tr->grads16 ? tr->grads16 : tr->grads;
        b.offset = (size_t)ri->grad_offset;
    } else {
        b.mem = tr->acts;
        b.offset = (size_t)(tr->plan.st[ri->grad].offset / ri->elem_bytes);
    }
    return b;
}

bool clt__accumulate(struct clt__exec *x, const struct clt_tensor *t, uint32_t slot)
{
    struct clt_trainer *tr = x->tr;
    bool first = tr->plan.info[t->id].first_contrib[slot];
    uint32_t root = tr->plan.info[t->in[slot]->id].root;
    /* The 16-bit gradients of parameters are written afresh each micro-step (the widening into
     * the fp32 ones adds across micro-steps); the fp32 ones add from the second. */
    if (first && tr->graph->nodes[root]->kind == CLT__NODE_PARAM)
        return tr->grads16 ? false : x->micro > 0;
    return !first;
}

uint32_t clt__accumulate_mask(struct clt__exec *x, const struct clt_tensor *t)
{
    uint32_t acc = 0;
    for (uint32_t i = 0; i < t->nin; i++)
        if (clt__accumulate(x, t, i))
            acc |= 1u << i;
    return acc;
}

struct clt__buf clt__aux(struct clt__exec *x, const struct clt_tensor *t, uint32_t k)
{
    struct clt_trainer *tr = x->tr;
    int32_t s = tr->plan.info[t->id].aux[k];
    if (s < 0)
        return (struct clt__buf){NULL, 0};
    const bool cache = (clt__def(t)->aux_cache >> k) & 1u;
    const size_t e =
        cache && tr->plan.storage != CLT_PRECISION_FP32 ? 2 : clt__dtype_size(t->aux_dtype[k]);
    return (struct clt__buf){tr->acts, (size_t)(tr->plan.st[s].offset / e)};
}

int64_t clt__real_count(const struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t n = clt__count(t);
    if (x->rows >= x->batch || !x->tr->plan.info[t->id].batch_major)
        return n;
    return n / x->batch * x->rows;
}

enum clt_status clt__zero_padding(struct clt__exec *x, const struct clt_tensor *t,
                                  struct clt__buf b)
{
    int64_t n = clt__count(t), real = clt__real_count(x, t);
    if (!b.mem || real == n)
        return CLT_OK;
    const size_t e = x->tr->plan.info[x->tr->plan.info[t->id].root].elem_bytes;
    const uint32_t zero = 0; /* 0.0 in every storage */
    cl_int err = clEnqueueFillBuffer(x->dev->queue, b.mem, &zero, e, (b.offset + (size_t)real) * e,
                                     (size_t)(n - real) * e, 0, NULL, NULL);
    return clt__cl_check(&x->dev->log, err, "clEnqueueFillBuffer");
}

struct clt__buf clt__workspace(struct clt__exec *x)
{
    struct clt__buf b = {x->tr->work, 0};
    return b;
}

void clt_trainer_options_init(struct clt_trainer_options *o, enum clt_optim_kind kind)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    struct clt_optimizer *opt = &o->optimizer;
    opt->kind = kind;
    opt->lr = kind == CLT_OPTIM_SGD ? 0.01 : 1e-3;
    opt->beta1 = 0.9;
    opt->beta2 = 0.999;
    opt->eps = 1e-8;
    opt->weight_decay = kind == CLT_OPTIM_ADAMW ? 0.01 : 0.0;
    opt->gamma = 0.1;
    opt->accumulate = 1;
}

/* ---- Memory and parameters ------------------------------------------------------------- */

enum clt_status clt_trainer_memory(const struct clt_trainer *tr, struct clt_memory_report *out)
{
    if (!tr || !out)
        return CLT_ERR_INVALID_ARGUMENT;
    *out = tr->memory;
    return CLT_OK;
}

/* The index-th parameter or state node, in creation order. */
static const struct clt_tensor *param_at(const struct clt_trainer *tr, uint32_t index)
{
    uint32_t k = 0;
    for (uint32_t id = 0; id < tr->plan.n; id++) {
        const struct clt_tensor *t = tr->graph->nodes[id];
        if (t->kind == CLT__NODE_PARAM || t->kind == CLT__NODE_STATE) {
            if (k == index)
                return t;
            k++;
        }
    }
    return NULL;
}

uint32_t clt_trainer_param_count(const struct clt_trainer *tr)
{
    uint32_t k = 0;
    for (uint32_t id = 0; tr && id < tr->plan.n; id++)
        k += tr->graph->nodes[id]->kind == CLT__NODE_PARAM ||
             tr->graph->nodes[id]->kind == CLT__NODE_STATE;
    return k;
}

enum clt_status clt_trainer_param_info(const struct clt_trainer *tr, uint32_t index,
                                       struct clt_param_info *out)
{
    const struct clt_tensor *t = tr && out ? param_at(tr, index) : NULL;
    if (!t)
        return CLT_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->ndim = t->ndim;
    memcpy(out->shape, t->shape, t->ndim * sizeof *t->shape);
    out->trained = t->kind == CLT__NODE_PARAM;
    return CLT_OK;
}

static const struct clt_tensor *param_named(const struct clt_trainer *tr, const char *name)
{
    for (uint32_t id = 0; id < tr->plan.n; id++) {
        const struct clt_tensor *t = tr->graph->nodes[id];
        if ((t->kind == CLT__NODE_PARAM || t->kind == CLT__NODE_STATE) &&
            strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

/* Finds a named parameter whose size is count, logging why not. */
static const struct clt_tensor *param_for_copy(struct clt_trainer *tr, const char *name,
                                               const void *host, uint64_t count)
{
    if (!tr || !name || !host)
        return NULL;
    const struct clt_tensor *t = param_named(tr, name);
    if (!t)
        clt__log(&tr->dev->log, CLT_LOG_ERROR, "no parameter named \"%s\"", name);
    else if ((uint64_t)clt__count(t) != count)
        clt__log(&tr->dev->log, CLT_LOG_ERROR, "parameter \"%s\" has %lld elements, not %llu", name,
                 (long long)clt__count(t), (unsigned long long)count);
    return t && (uint64_t)clt__count(t) == count ? t : NULL;
}

enum clt_status clt_trainer_param_read(struct clt_trainer *tr, const char *name, float *dst,
                                       uint64_t count)
{
    const struct clt_tensor *t = param_for_copy(tr, name, dst, count);
    if (!t || clt__device_usable(tr->dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    cl_int err = clEnqueueReadBuffer(tr->dev->queue, tr->params, CL_TRUE,
                                     (size_t)(tr->plan.info[t->id].offset * 4), (size_t)(count * 4),
                                     dst, 0, NULL, NULL);
    return clt__cl_check(&tr->dev->log, err, "clEnqueueReadBuffer");
}

enum clt_status clt_trainer_param_write(struct clt_trainer *tr, const char *name, const float *src,
                                        uint64_t count)
{
    const struct clt_tensor *t = param_for_copy(tr, name, src, count);
    if (!t || clt__device_usable(tr->dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    cl_int err = clEnqueueWriteBuffer(tr->dev->queue, tr->params, CL_TRUE,
                                      (size_t)(tr->plan.info[t->id].offset * 4),
                                      (size_t)(count * 4), src, 0, NULL, NULL);
    enum clt_status st = clt__cl_check(&tr->dev->log, err, "clEnqueueWriteBuffer");
    if (st == CLT_OK && t->kind == CLT__NODE_PARAM)
        st = clt__trainer_shadow_refresh(tr);
    if (st == CLT_OK && tr->par) /* a data-parallel trainer: to the other replicas */
        st = clt__parallel_sync(tr);
    return st;
}

enum clt_status clt__trainer_copy_params(struct clt_trainer *dst, struct clt_trainer *src)
{
    if (clt__device_usable(dst->dev) != CLT_OK || clt__device_usable(src->dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    const struct clt_log *log = &dst->dev->log;
    enum clt_status st = clt_device_finish(src->dev);
    float *host = NULL;
    for (uint32_t id = 0; st == CLT_OK && id < dst->plan.n; id++) {
        const struct clt_tensor *t = dst->graph->nodes[id];
        if (t->kind != CLT__NODE_PARAM && t->kind != CLT__NODE_STATE)
            continue;
        const struct clt_tensor *s = param_named(src, t->name);
        if (!s || s->ndim != t->ndim || memcmp(s->shape, t->shape, t->ndim * sizeof *t->shape)) {
            clt__log(log, CLT_LOG_ERROR, "copy of parameters: the trainer has %s \"%s\"",
                     s ? "another shape for" : "no parameter named", t->name);
            st = CLT_ERR_INVALID_ARGUMENT;
            break;
        }
        size_t bytes = (size_t)clt__count(t) * 4;
        size_t from = (size_t)src->plan.info[s->id].offset * 4;
        size_t to = (size_t)dst->plan.info[id].offset * 4;
        if (dst->dev == src->dev) {
            st = clt__cl_check(log,
                               clEnqueueCopyBuffer(dst->dev->queue, src->params, dst->params, from,
                                                   to, bytes, 0, NULL, NULL),
                               "clEnqueueCopyBuffer");
            continue;
        }
        free(host);
        host = malloc(bytes ? bytes : 4);
        if (!host) {
            st = CLT_ERR_NO_MEMORY;
            break;
        }
        st = clt__cl_check(log,
                           clEnqueueReadBuffer(src->dev->queue, src->params, CL_TRUE, from, bytes,
                                               host, 0, NULL, NULL),
                           "clEnqueueReadBuffer");
        if (st == CLT_OK)
            st = clt__cl_check(log,
                               clEnqueueWriteBuffer(dst->dev->queue, dst->params, CL_TRUE, to,
                                                    bytes, host, 0, NULL, NULL),
                               "clEnqueueWriteBuffer");
    }
    free(host);
    if (st == CLT_OK)
        st = clt__trainer_shadow_refresh(dst);
    if (st == CLT_OK)
        st = clt_device_finish(dst->dev);
    return st;
}
