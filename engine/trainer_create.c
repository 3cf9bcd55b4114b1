/*
 * trainer_create.c: making and freeing a trainer (trainer.h): the options' one check, the
 * 16-bit precision's checks and loss scaling, the plan (a training plan, or an executor's
 * forward-only one), the optimizer's parameter groups, the memory report and the fit check,
 * the buffers, a dry run that compiles every kernel, and the initial values; also the
 * narrowing of the fp32 masters into a 16-bit trainer's working copy, the loss scaler's
 * state, and the kernel profiler's switch. What ops see of the buffers and access to
 * parameters are in trainer.c, the step in step.c.
 */
#include <stdlib.h>
#include <string.h>

#include "ops/optim.h"
#include "precision.h"
#include "trainer.h"

/* The tensor whose memory t is: t, or what the views it is made of view. */
static const struct clt_tensor *memory_root(const struct clt_tensor *t)
{
    while (t->kind == CLT__NODE_OP && clt__def(t)->is_view)
        t = t->in[0];
    return t;
}

/* Whether graph can train in the 16-bit precision p (docs/precision.md): every op that runs
 * kernels has them in 16 bits (clt__op_def.storage16), and no op reads the output of a
 * wide_output op (a loss: kept in fp32, which its reader would take for 16-bit). Logs the
 * first op that fails, by name and node. */
static enum clt_status check_precision(struct clt_device *dev, const struct clt_graph *g,
                                       enum clt_precision p)
{
    for (uint32_t id = 0; id < g->count; id++) {
        const struct clt_tensor *t = g->nodes[id];
        if (t->kind != CLT__NODE_OP || clt__def(t)->is_view)
            continue;
        if (!clt__def(t)->storage16) {
            clt__log(&dev->log, CLT_LOG_ERROR,
                     "precision %s: op %s (node %u) has no 16-bit kernels in this build; train "
                     "this graph in fp32",
                     clt_precision_name(p), clt__op_names[t->op], (unsigned)id);
            return CLT_ERR_UNSUPPORTED;
        }
        for (uint32_t i = 0; i < t->nin; i++) {
            const struct clt_tensor *r = memory_root(t->in[i]);
            if (r->kind == CLT__NODE_OP && clt__def(r)->wide_output) {
                clt__log(&dev->log, CLT_LOG_ERROR,
                         "precision %s: op %s (node %u) reads the output of %s (node %u), a loss "
                         "kept in fp32 in a 16-bit plan; only the trainer may read a loss there",
                         clt_precision_name(p), clt__op_names[t->op], (unsigned)id,
                         clt__op_names[r->op], (unsigned)r->id);
                return CLT_ERR_UNSUPPORTED;
            }
        }
    }
    return CLT_OK;
}

/* options.loss_scaling with GradScaler's defaults for the fields left 0, checked. */
static enum clt_status scaler_config(const struct clt_log *log, const struct clt_loss_scaling *o,
                                     struct clt__scaler_config *c)
{
    clt__scaler_config_init(c);
    if (o->init_scale != 0)
        c->init_scale = o->init_scale;
    if (o->growth_factor != 0)
        c->growth_factor = o->growth_factor;
    if (o->backoff_factor != 0)
        c->backoff_factor = o->backoff_factor;
    if (o->growth_interval != 0)
        c->growth_interval = o->growth_interval;
    c->min_scale = o->min_scale;
    return clt__scaler_config_check(log, c);
}

/* Resolves the optimizer's parameter groups into ranges of the flat trained buffer (adjacent
 * parameters with the same settings share a range: one update launch each), and logs what
 * each group selected (a WARN for a name pattern that selected nothing). Without groups the config
 * keeps no ranges: one launch. */
static enum clt_status resolve_groups(struct clt_trainer *tr)
{
    const struct clt_optimizer *o = &tr->options.optimizer;
    if (o->ngroups == 0)
        return CLT_OK;
    uint32_t nparams = 0;
    for (uint32_t id = 0; id < tr->plan.n; id++)
        nparams += tr->graph->nodes[id]->kind == CLT__NODE_PARAM;
    tr->ranges = calloc(nparams ? nparams : 1, sizeof *tr->ranges);
    if (!tr->ranges)
        return CLT_ERR_NO_MEMORY;
    uint32_t count[CLT_MAX_PARAM_GROUPS + 1] = {0};
    uint64_t elements[CLT_MAX_PARAM_GROUPS + 1] = {0};
    uint32_t k = 0;
    /* Trained parameters lie in the flat buffer in node order (plan.c). */
    for (uint32_t id = 0; id < tr->plan.n; id++) {
        const struct clt_tensor *t = tr->graph->nodes[id];
        if (t->kind != CLT__NODE_PARAM)
            continue;
        const int grp = clt__optim_group_of(o, t->name, t->param_kind);
        const int64_t begin = (int64_t)tr->plan.info[id].grad_offset, n = clt__count(t);
        const double scale = grp >= 0 ? o->groups[grp].lr_scale : 1.0;
        const double wd = grp >= 0 ? o->groups[grp].weight_decay : o->weight_decay;
        count[grp + 1]++;
        elements[grp + 1] += (uint64_t)n;
        if (n == 0)
            continue;
        struct clt__optim_range *last = k > 0 ? &tr->ranges[k - 1] : NULL;
        if (last && last->end == begin && last->lr_scale == scale && last->weight_decay == wd)
            last->end = begin + n;
        else
            tr->ranges[k++] = (struct clt__optim_range){begin, begin + n, scale, wd};
    }
    tr->optim.ranges = tr->ranges;
    tr->optim.nranges = k;
    for (uint32_t i = 0; i <= o->ngroups; i++) {
        const struct clt_param_group *g = i > 0 ? &o->groups[i - 1] : NULL;
        /* A name pattern that selects nothing is likely a typo; a group by kind alone
         * (clt_optimizer_exempt_decay on a model without biases) is not. */
        const bool typo = g && g->pattern[0] != '\0' && count[i] == 0;
        clt__log(&tr->dev->log, typo ? CLT_LOG_WARN : CLT_LOG_INFO,
                 "parameter group %u (pattern \"%s\", kinds 0x%x, lr x %g, weight decay %g): "
                 "%u tensors, %llu elements%s",
                 i, g ? g->pattern : "*", g ? g->kinds : 0u, g ? g->lr_scale : 1.0,
                 g ? g->weight_decay : o->weight_decay, count[i], (unsigned long long)elements[i],
                 i == 0 ? " (no group: the optimizer's settings)" : "");
    }
    return CLT_OK;
}

static enum clt_status create_buffer(struct clt_trainer *tr, uint64_t bytes, cl_mem *out,
                                     const char *what)
{
    cl_int err;
    *out = NULL;
    if (bytes == 0)
        bytes = 4;
    *out = clCreateBuffer(tr->dev->context, CL_MEM_READ_WRITE, (size_t)bytes, NULL, &err);
    enum clt_status st = clt__cl_check(&tr->dev->log, err, "clCreateBuffer");
    if (st != CLT_OK)
        clt__log(&tr->dev->log, CLT_LOG_ERROR, "could not allocate %s (%llu bytes)", what,
                 (unsigned long long)bytes);
    return st;
}

/* Checks the plan against the device before anything is allocated. */
static enum clt_status check_fits(struct clt_trainer *tr)
{
    const struct clt_device_info *d = &tr->dev->info;
    struct clt_memory_report *m = &tr->memory;
    struct {
        const char *what;
        uint64_t bytes;
    } buffers[] = {
        {"parameters and state", m->params},
        {"gradients", m->grads - m->params_shadow},
        {"optimizer moments", m->optimizer / 2},
        {"activations", m->activations},
        {"workspace", m->workspace},
        {"an input slot", m->inputs / 2},
    };
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) {
        if (buffers[i].bytes > d->max_alloc_bytes) {
            clt__log(&tr->dev->log, CLT_LOG_ERROR,
                     "the model does not fit %s: %s need %.1f MiB in one buffer, the largest "
                     "allocation is %.1f MiB",
                     d->name, buffers[i].what, (double)buffers[i].bytes / 1048576.0,
                     (double)d->max_alloc_bytes / 1048576.0);
            return CLT_ERR_DEVICE_MEMORY;
        }
    }
    if (m->total > d->global_mem_bytes) {
        clt__log(&tr->dev->log, CLT_LOG_ERROR,
                 "the model does not fit %s: it needs %.1f MiB of device memory (parameters "
                 "%.1f, gradients %.1f, optimizer %.1f, activations %.1f, workspace %.1f, "
                 "inputs %.1f), the device has %.1f MiB",
                 d->name, (double)m->total / 1048576.0, (double)m->params / 1048576.0,
                 (double)m->grads / 1048576.0, (double)m->optimizer / 1048576.0,
                 (double)m->activations / 1048576.0, (double)m->workspace / 1048576.0,
                 (double)m->inputs / 1048576.0, (double)d->global_mem_bytes / 1048576.0);
        return CLT_ERR_DEVICE_MEMORY;
    }
    return CLT_OK;
}

/* The report of tr's plan; activations_fp32 is the arena of the same graph planned in fp32
 * (the plan's own in an fp32 trainer). */
static void fill_memory_report(struct clt_trainer *tr, uint64_t activations_fp32)
{
    struct clt_memory_report *m = &tr->memory;
    const struct clt__plan *p = &tr->plan;
    const bool half = p->storage != CLT_PRECISION_FP32;
    m->params = (p->trained + p->state) * 4;
    m->params_shadow = half ? p->trained * 2 : 0;
    m->grads = tr->inference ? 0 : p->trained * (half ? 6 : 4);
    m->optimizer = tr->inference ? 0
                                 : 2 * p->trained * 4 + CLT__OPTIM_STATUS_BYTES +
                                       (half ? CLT__SCALER_STATE_BYTES : 0);
    m->activations = p->arena_bytes;
    m->activations_fp32 = activations_fp32;
    m->activations_unshared = p->unshared_bytes;
    m->workspace = p->workspace_bytes > 0 ? p->workspace_bytes : 0;
    uint64_t ws = tr->inference ? 0 : clt__optim_workspace_bytes(p->trained);
    if (ws > m->workspace)
        m->workspace = ws;
    m->inputs = 2 * p->input_bytes;
    m->total = m->params + m->params_shadow + m->grads + m->optimizer + m->activations +
               m->workspace + m->inputs;
}

static enum clt_status allocate(struct clt_trainer *tr)
{
    const struct clt_memory_report *m = &tr->memory;
    const bool half = tr->plan.storage != CLT_PRECISION_FP32;
    enum clt_status st = create_buffer(tr, m->params, &tr->params, "parameters");
    if (st == CLT_OK && !tr->inference)
        st = create_buffer(tr, m->grads, &tr->grads, "gradients");
    if (st == CLT_OK && !tr->inference)
        st = create_buffer(tr, tr->plan.trained * 4, &tr->moment1, "first moments");
    if (st == CLT_OK && !tr->inference)
        st = create_buffer(tr, tr->plan.trained * 4, &tr->moment2, "second moments");
    if (st == CLT_OK && !tr->inference)
        st = create_buffer(tr, CLT__OPTIM_STATUS_BYTES, &tr->status, "optimizer status");
    if (st == CLT_OK && half)
        st = create_buffer(tr, m->params_shadow, &tr->shadow, "16-bit parameters");
    if (st == CLT_OK && half)
        st = create_buffer(tr, m->params_shadow, &tr->grads16, "16-bit gradients");
    if (st == CLT_OK && half)
        st = create_buffer(tr, CLT__SCALER_STATE_BYTES, &tr->scaler, "loss scaler state");
    if (st == CLT_OK)
        st = create_buffer(tr, m->activations, &tr->acts, "activations");
    if (st == CLT_OK)
        st = create_buffer(tr, m->workspace, &tr->work, "workspace");
    for (int i = 0; i < 2 && st == CLT_OK; i++) {
        st = create_buffer(tr, tr->plan.input_bytes, &tr->inputs[i], "inputs");
        if (st == CLT_OK) {
            tr->host_in[i] = calloc(1, tr->plan.input_bytes ? tr->plan.input_bytes : 4);
            if (!tr->host_in[i])
                st = CLT_ERR_NO_MEMORY;
        }
    }
    return st;
}

/* Fills a whole buffer with a float (or zero bytes), enqueued. */
static enum clt_status fill(struct clt_trainer *tr, cl_mem mem, uint64_t offset_bytes,
                            uint64_t bytes, float value)
{
    if (bytes == 0)
        return CLT_OK;
    cl_int err = clEnqueueFillBuffer(tr->dev->queue, mem, &value, sizeof value,
                                     (size_t)offset_bytes, (size_t)bytes, 0, NULL, NULL);
    return clt__cl_check(&tr->dev->log, err, "clEnqueueFillBuffer");
}

/* Parameters and state from their initialisers (host), uploaded; gradients and moments 0. */
static enum clt_status initialise(struct clt_trainer *tr)
{
    const struct clt_graph *g = tr->graph;
    uint64_t n = tr->plan.trained + tr->plan.state;
    float *host = malloc((n ? n : 1) * sizeof *host);
    if (!host)
        return CLT_ERR_NO_MEMORY;
    enum clt_status st = CLT_OK;
    for (uint32_t id = 0; id < tr->plan.n && st == CLT_OK; id++) {
        const struct clt_tensor *t = g->nodes[id];
        if (t->kind == CLT__NODE_PARAM || t->kind == CLT__NODE_STATE)
            st = clt__init_fill(t, tr->options.seed, host + tr->plan.info[id].offset);
    }
    if (st == CLT_OK && n > 0)
        st = clt__cl_check(&tr->dev->log,
                           clEnqueueWriteBuffer(tr->dev->queue, tr->params, CL_TRUE, 0,
                                                (size_t)(n * 4), host, 0, NULL, NULL),
                           "clEnqueueWriteBuffer");
    free(host);
    if (tr->inference)
        return st == CLT_OK ? clt_device_finish(tr->dev) : st;
    if (st == CLT_OK)
        st = clt__trainer_shadow_refresh(tr);
    if (st == CLT_OK && tr->grads16 && tr->plan.trained > 0) {
        const uint16_t zero = 0;
        st = clt__cl_check(&tr->dev->log,
                           clEnqueueFillBuffer(tr->dev->queue, tr->grads16, &zero, sizeof zero, 0,
                                               (size_t)tr->plan.trained * 2, 0, NULL, NULL),
                           "clEnqueueFillBuffer");
    }
    if (st == CLT_OK && tr->scaler) {
        struct clt__scaler s;
        clt__scaler_init(&s, &tr->scaler_cfg);
        st = clt__trainer_scaler_set(tr, &s);
    }
    if (st == CLT_OK)
        st = fill(tr, tr->grads, 0, tr->plan.trained * 4, 0.0f);
    if (st == CLT_OK)
        st = fill(tr, tr->moment1, 0, tr->plan.trained * 4, 0.0f);
    if (st == CLT_OK)
        st = fill(tr, tr->moment2, 0, tr->plan.trained * 4, 0.0f);
    if (st == CLT_OK)
        st = clt__optim_status_reset(tr->dev, (struct clt__buf){tr->status, 0});
    if (st == CLT_OK)
        st = clt_device_finish(tr->dev);
    return st;
}

enum clt_status clt__trainer_shadow_refresh(struct clt_trainer *tr)
{
    if (!tr->shadow || tr->plan.trained == 0)
        return CLT_OK;
    return clt__precision_narrow(tr->dev, tr->plan.storage, (int64_t)tr->plan.trained,
                                 (struct clt__buf){tr->params, 0},
                                 (struct clt__buf){tr->shadow, 0});
}

enum clt_status clt__trainer_scaler_set(struct clt_trainer *tr, const struct clt__scaler *s)
{
    if (!tr->scaler)
        return CLT_OK;
    struct clt__scaler one;
    if (tr->plan.storage != CLT_PRECISION_FP16) { /* bf16: no scaling, scale 1 for good */
        clt__scaler_init(&one, &tr->scaler_cfg);
        one.scale = 1.0f;
        s = &one;
    }
    return clt__scaler_state_set(tr->dev, (struct clt__buf){tr->scaler, 0}, s);
}

/* Creation of a trainer (loss) or of an executor's inference trainer (outputs). */
static enum clt_status create(struct clt_device *dev, const struct clt_graph *graph,
                              const struct clt_tensor *loss,
                              const struct clt_tensor *const *outputs, uint32_t noutputs,
                              const struct clt_trainer_options *o, struct clt_trainer **out)
{
    /* Checked once here, translated once below. */
    enum clt_status st = clt__optimizer_check(&dev->log, &o->optimizer);
    if (st != CLT_OK)
        return st;
    if ((unsigned)o->precision > CLT_PRECISION_BF16) {
        clt__log(&dev->log, CLT_LOG_ERROR, "precision %d is none of fp32, fp16 and bf16",
                 (int)o->precision);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    const enum clt_precision storage = loss ? o->precision : CLT_PRECISION_FP32;
    struct clt__scaler_config scfg;
    clt__scaler_config_init(&scfg);
    if (storage != CLT_PRECISION_FP32)
        st = check_precision(dev, graph, storage);
    if (st == CLT_OK && storage == CLT_PRECISION_FP16)
        st = scaler_config(&dev->log, &o->loss_scaling, &scfg);
    if (st != CLT_OK)
        return st;
    struct clt_trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return CLT_ERR_NO_MEMORY;
    tr->dev = dev;
    clt__device_hold(dev);
    tr->graph = graph;
    tr->loss = loss;
    tr->inference = !loss;
    tr->loss_seed = 1.0f;
    tr->options = *o;
    tr->scaler_cfg = scfg;
    clt__optim_from_public(&o->optimizer, &tr->optim, &tr->lr_schedule);
    st = loss ? clt__plan_make(dev, graph, loss, o->recompute, storage, &tr->plan)
              : clt__plan_make_forward(dev, graph, outputs, noutputs, &tr->plan);
    /* A 16-bit trainer reports what fp32 would take beside: a second plan, host time only. */
    uint64_t fp32_arena = tr->plan.arena_bytes;
    if (st == CLT_OK && storage != CLT_PRECISION_FP32) {
        struct clt__plan p32;
        st = clt__plan_make(dev, graph, loss, o->recompute, CLT_PRECISION_FP32, &p32);
        if (st == CLT_OK)
            fp32_arena = p32.arena_bytes;
        clt__plan_free(&p32);
    }
    if (st == CLT_OK && loss)
        st = resolve_groups(tr);
    if (st == CLT_OK) {
        tr->eval_need = calloc(tr->plan.n, sizeof *tr->eval_need);
        if (dev->profiling && loss)
            tr->prof = calloc(CLT__PROFILE_STEPS, sizeof *tr->prof);
        if (!tr->eval_need || (dev->profiling && loss && !tr->prof))
            st = CLT_ERR_NO_MEMORY;
    }
    if (st == CLT_OK) {
        fill_memory_report(tr, fp32_arena);
        if (storage != CLT_PRECISION_FP32)
            clt__log(&dev->log, CLT_LOG_INFO,
                     "precision %s: activations %.2f MiB, %.3f x the fp32 plan's %.2f MiB; 16-bit "
                     "parameters %.2f MiB beside the fp32 masters",
                     clt_precision_name(storage), (double)tr->memory.activations / 1048576.0,
                     tr->memory.activations_fp32
                         ? (double)tr->memory.activations / (double)tr->memory.activations_fp32
                         : 1.0,
                     (double)tr->memory.activations_fp32 / 1048576.0,
                     (double)tr->memory.params_shadow / 1048576.0);
        clt__log(&dev->log, CLT_LOG_INFO,
                 "memory plan%s: parameters %.2f MiB, gradients %.2f MiB, optimizer %.2f MiB, "
                 "activations %.2f MiB (%.2f MiB unshared), workspace %.2f MiB, inputs %.2f "
                 "MiB; total %.2f MiB",
                 loss ? "" : " (inference)", (double)tr->memory.params / 1048576.0,
                 (double)tr->memory.grads / 1048576.0, (double)tr->memory.optimizer / 1048576.0,
                 (double)tr->memory.activations / 1048576.0,
                 (double)tr->memory.activations_unshared / 1048576.0,
                 (double)tr->memory.workspace / 1048576.0, (double)tr->memory.inputs / 1048576.0,
                 (double)tr->memory.total / 1048576.0);
        st = check_fits(tr);
    }
    if (st == CLT_OK)
        st = allocate(tr);
    /* A dry run of one step on zero inputs compiles every kernel and warms every GEMM shape;
     * parameters are initialised afterwards, so it leaves no trace. */
    if (st == CLT_OK) {
        clt__tune_begin(dev, o->tune_ahead); /* GEMM shapes met first are timed (tune.c) */
        st = clt__trainer_dry_run(tr);
        clt__tune_end(dev);
    }
    if (st == CLT_OK)
        st = initialise(tr);
    const char *record = getenv("CLTRAIN_RECORD");
    for (int i = 0; i < 4 && st == CLT_OK && !(record && strcmp(record, "0") == 0); i++)
        st = clt__rec_create(dev, &tr->rec[i]);
    if (st != CLT_OK) {
        clt_trainer_free(tr);
        return st;
    }
    *out = tr;
    return CLT_OK;
}

/* The graph is usable: no error while building it. */
static enum clt_status graph_usable(struct clt_device *dev, const struct clt_graph *graph)
{
    if (graph->status != CLT_OK) {
        clt__log(&dev->log, CLT_LOG_ERROR, "the graph has an error: %s", graph->error);
        return graph->status;
    }
    return CLT_OK;
}

enum clt_status clt_trainer_create(struct clt_device *dev, const struct clt_graph *graph,
                                   const struct clt_tensor *loss,
                                   const struct clt_trainer_options *options,
                                   struct clt_trainer **out)
{
    if (!dev || !graph || !loss || !out || clt__device_usable(dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = graph_usable(dev, graph);
    if (st != CLT_OK)
        return st;
    if (loss->graph != graph || loss->dtype != CLT_F32 || clt__count(loss) != 1) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "the loss must be a one-element F32 tensor of the "
                 "graph");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    struct clt_trainer_options defaults;
    clt_trainer_options_init(&defaults, CLT_OPTIM_SGD);
    return create(dev, graph, loss, NULL, 0, options ? options : &defaults, out);
}

enum clt_status clt__trainer_create_inference(struct clt_device *dev, const struct clt_graph *graph,
                                              const struct clt_tensor *const *outputs, uint32_t n,
                                              struct clt_trainer **out)
{
    enum clt_status st = graph_usable(dev, graph);
    for (uint32_t i = 0; st == CLT_OK && i < n; i++) {
        if (!outputs[i] || outputs[i]->graph != graph) {
            clt__log(&dev->log, CLT_LOG_ERROR, "executor: output %u is not a tensor of the graph",
                     (unsigned)i);
            st = CLT_ERR_INVALID_ARGUMENT;
        } else if (outputs[i]->dtype != CLT_F32 && outputs[i]->dtype != CLT_I32) {
            clt__log(&dev->log, CLT_LOG_ERROR, "executor: output %u is neither F32 nor I32",
                     (unsigned)i);
            st = CLT_ERR_INVALID_ARGUMENT;
        }
    }
    struct clt_trainer_options defaults;
    clt_trainer_options_init(&defaults, CLT_OPTIM_SGD);
    return st == CLT_OK ? create(dev, graph, NULL, outputs, n, &defaults, out) : st;
}

void clt_trainer_free(struct clt_trainer *tr)
{
    if (!tr)
        return;
    clt__parallel_free(tr); /* the other replicas of a data-parallel trainer */
    clFinish(tr->dev->transfer);
    clFinish(tr->dev->queue);
    for (int i = 0; i < 2; i++) {
        if (tr->up_ev[i])
            clReleaseEvent(tr->up_ev[i]);
        if (tr->done_ev[i])
            clReleaseEvent(tr->done_ev[i]);
        if (tr->loss_ev[i])
            clReleaseEvent(tr->loss_ev[i]);
        if (tr->inputs[i])
            clReleaseMemObject(tr->inputs[i]);
        free(tr->host_in[i]);
    }
    if (tr->status_ev)
        clReleaseEvent(tr->status_ev);
    cl_mem bufs[] = {tr->params, tr->grads, tr->moment1, tr->moment2, tr->status,
                     tr->acts,   tr->work,  tr->shadow,  tr->grads16, tr->scaler};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i])
            clReleaseMemObject(bufs[i]);
    for (uint32_t i = 0; i < tr->nprof; i++) {
        clReleaseEvent(tr->prof[i].upload);
        clReleaseEvent(tr->prof[i].compute_start);
        clReleaseEvent(tr->prof[i].compute_end);
    }
    for (int i = 0; i < 4; i++)
        clt__rec_free(tr->rec[i]);
    clt__prof_free(tr->kprof);
    free(tr->prof);
    free(tr->eval_need);
    free(tr->ranges);
    clt__plan_free(&tr->plan);
    struct clt_device *dev = tr->dev;
    free(tr);
    clt__device_release(dev);
}

enum clt_status clt__trainer_profile(struct clt_trainer *tr, bool on)
{
    if (tr->kprof)
        clt_device_finish(tr->dev); /* its pending events are dropped whole */
    clt__prof_free(tr->kprof);
    tr->kprof = NULL;
    return on ? clt__prof_create(tr->dev, &tr->kprof) : CLT_OK;
}
