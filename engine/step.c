/*
 * step.c: running a trainer: the training step, the dry run at creation, evaluation (and the
 * forward pass of an executor, infer.c), and the loss and counters read back.
 *
 * Partial batches: a call of fewer rows than planned stages the real rows and pads the rest
 * (zeros; -1 for cross-entropy labels), and hands the row count to the ops in the exec
 * struct; the plan says whether the graph allows it (docs/graph.md, "Partial batches").
 *
 * Queues and events (docs/scheduling.md): batch uploads go through the transfer queue from
 * one of two host staging slots into one of two device input slots, so the upload of step
 * k+1 overlaps the compute of step k. The compute queue waits for the upload with a barrier
 * on its event; the next upload into the same device slot waits for the end of the step that
 * last read it: the event of its loss readback, which follows all of its compute (no marker:
 * on PoCL each command costs a round through the worker threads). The loss is read back without
 * blocking into a host slot; the host waits only when asked for the loss, or when it is about
 * to reuse a host staging slot whose upload has not finished (two steps later).
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ops/optim.h"
#include "precision.h"
#include "trainer.h"

int64_t clt__trainer_batch(const struct clt_trainer *tr)
{
    return tr->plan.batch > 0 ? tr->plan.batch : 1;
}

enum clt_status clt__trainer_check_rows(struct clt_trainer *tr, int64_t rows, const char *what)
{
    int64_t full = clt__trainer_batch(tr);
    if (rows < 1 || rows > full) {
        clt__log(&tr->dev->log, CLT_LOG_ERROR,
                 "%s: %lld rows, outside 1 .. %lld (the planned batch)", what, (long long)rows,
                 (long long)full);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if (rows < full && tr->plan.partial_error[0]) {
        clt__log(&tr->dev->log, CLT_LOG_ERROR,
                 "%s: %lld rows of a batch of %lld, but this graph cannot run a partial batch: "
                 "%s",
                 what, (long long)rows, (long long)full, tr->plan.partial_error);
        return CLT_ERR_UNSUPPORTED;
    }
    return CLT_OK;
}

static struct clt__exec exec_for(struct clt_trainer *tr, bool training, int64_t rows)
{
    struct clt__exec x;
    memset(&x, 0, sizeof x);
    x.batch = clt__trainer_batch(tr);
    x.rows = rows;
    x.dev = tr->dev;
    x.tr = tr;
    x.training = training;
    x.seed = tr->options.seed;
    x.step = tr->steps;
    x.micro = (uint32_t)(tr->steps % tr->options.optimizer.accumulate);
    return x;
}

/* Logs which op failed, once. */
static enum clt_status op_failed(struct clt_trainer *tr, const struct clt_tensor *t,
                                 const char *pass, enum clt_status st)
{
    clt__log(&tr->dev->log, CLT_LOG_ERROR, "%s of op %s (node %u) failed: %s", pass,
             clt__op_names[t->op], (unsigned)t->id, clt_status_str(st));
    return st;
}

/* The forward pass over the nodes marked in need (NULL: those the loss depends on). A
 * training pass runs each fused chain as one kernel at its last op; evaluation runs every op
 * on its own (an output it asks for may lie inside a chain). */
static enum clt_status forward(struct clt_trainer *tr, struct clt__exec *x, const bool *need)
{
    /* The op kernels in the plan's storage; fp32 again after (docs/precision.md). */
    const enum clt_precision was = clt__storage_set(tr->dev, tr->plan.storage);
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; st == CLT_OK && i < tr->plan.nfwd; i++) {
        uint32_t id = tr->plan.fwd[i];
        if (need ? !need[id] : !tr->plan.info[id].reached)
            continue;
        const struct clt_tensor *t = tr->graph->nodes[id];
        int32_t group = tr->plan.info[id].group;
        if (x->training && group >= 0 && tr->plan.info[id].fused_inside)
            continue;
        if (x->dev->prof)
            clt__prof_op(x->dev, clt__op_names[t->op],
                         x->training && group >= 0 ? "fused_forward" : "forward");
        st = x->training && group >= 0 ? clt__fuse_forward(x, &tr->plan.groups[group])
                                       : clt__def(t)->forward(x, t);
        if (st != CLT_OK)
            st = op_failed(tr, t, "forward", st);
    }
    clt__storage_set(tr->dev, was);
    return st;
}

/* How a kernel profile (profile.c) names a backward entry's pass. */
static const char *backward_pass(enum clt__entry_kind kind, int32_t group)
{
    if (kind == CLT__ENTRY_RECOMPUTE)
        return group >= 0 ? "fused_recompute" : "recompute";
    return group >= 0 ? "fused_backward" : "backward";
}

/* Writes the loss seed: d loss / d loss = loss_seed (1, or a data-parallel replica's share
 * of the batch), times the loss scale in a 16-bit plan (read on the device: 1 in bf16). */
static enum clt_status seed(struct clt_trainer *tr, struct clt__exec *x)
{
    struct clt__buf b = clt__grad(x, tr->loss);
    if (tr->scaler) {
        const uint8_t e = tr->plan.info[tr->plan.info[tr->loss->id].root].elem_bytes;
        return clt__scaler_seed(tr->dev, (struct clt__buf){tr->scaler, 0}, tr->loss_seed,
                                e == 4 ? CLT_PRECISION_FP32 : tr->plan.storage, b);
    }
    float one = tr->loss_seed;
    cl_int err = clEnqueueFillBuffer(tr->dev->queue, b.mem, &one, sizeof one, b.offset * 4,
                                     sizeof one, 0, NULL, NULL);
    return clt__cl_check(&tr->dev->log, err, "clEnqueueFillBuffer");
}

/* 16-bit plans: the parameters' 16-bit gradients of this micro-step, times 1 / scale, into
 * the fp32 ones (added from the second micro-step of an accumulation on). */
static enum clt_status widen_grads(struct clt_trainer *tr, struct clt__exec *x)
{
    if (!tr->grads16 || tr->plan.trained == 0)
        return CLT_OK;
    if (x->dev->prof)
        clt__prof_op(x->dev, "precision", "widen_grads");
    return clt__precision_widen_grads(
        tr->dev, tr->plan.storage, (int64_t)tr->plan.trained, (struct clt__buf){tr->grads16, 0},
        (struct clt__buf){tr->grads, 0}, (struct clt__buf){tr->scaler, 0}, x->micro > 0);
}

/* The loss seed and the backward entries (in the plan's storage), then the widening of the
 * parameters' gradients in a 16-bit plan. */
static enum clt_status backward(struct clt_trainer *tr, struct clt__exec *x)
{
    enum clt_status st = seed(tr, x);
    const enum clt_precision was = clt__storage_set(tr->dev, tr->plan.storage);
    x->in_backward = true;
    for (uint32_t e = 0; st == CLT_OK && e < tr->plan.nbwd; e++) {
        const struct clt_tensor *t = tr->graph->nodes[tr->plan.bwd[e].node];
        int32_t group = tr->plan.info[t->id].group;
        if (x->dev->prof)
            clt__prof_op(x->dev, clt__op_names[t->op], backward_pass(tr->plan.bwd[e].kind, group));
        if (tr->plan.bwd[e].kind == CLT__ENTRY_RECOMPUTE) {
            st = group >= 0 ? clt__fuse_forward(x, &tr->plan.groups[group])
                            : clt__def(t)->forward(x, t);
            if (st != CLT_OK)
                st = op_failed(tr, t, "recomputation", st);
        } else if (group >= 0) {
            st = clt__fuse_backward(x, &tr->plan.groups[group]);
            if (st != CLT_OK)
                st = op_failed(tr, t, "fused backward", st);
        } else {
            st = clt__def(t)->backward(x, t, clt__accumulate_mask(x, t));
            if (st != CLT_OK)
                st = op_failed(tr, t, "backward", st);
        }
        if (st == CLT_OK && tr->replica) /* data-parallel: read the gradients now complete */
            st = clt__parallel_backward_entry(tr, e);
    }
    x->in_backward = false;
    clt__storage_set(tr->dev, was);
    if (st == CLT_OK)
        st = widen_grads(tr, x);
    return st;
}

enum clt_status clt__trainer_forward(struct clt_trainer *tr, struct clt__exec *x)
{
    return forward(tr, x, NULL);
}

enum clt_status clt__trainer_backward(struct clt_trainer *tr, struct clt__exec *x)
{
    return backward(tr, x);
}

/* The optimizer status's last_skip, in 32-bit words. */
#define LAST_SKIP_WORD (offsetof(struct clt__optim_status, last_skip) / 4)

/* One optimizer update over the flat parameter buffer, at learning rate lr. In fp16 the
 * optimizer's check of the (unscaled) gradient norm and the loss is GradScaler's found_inf:
 * the scaler's device state is updated from its status. In a 16-bit plan the update kernels
 * also narrow the new masters into the working copy (clt__optim_step_half; a skipped step
 * leaves both as they were). */
static enum clt_status update(struct clt_trainer *tr, struct clt__exec *x, float lr)
{
    struct clt__buf p = {tr->params, 0}, g = {tr->grads, 0};
    struct clt__buf m = {tr->moment1, 0}, v = {tr->moment2, 0};
    struct clt__buf status = {tr->status, 0}, work = {tr->work, 0};
    /* A 16-bit loss (not a wide_output op's) is not a float: the norm check alone. */
    struct clt__buf loss = clt__val(x, tr->loss);
    if (tr->plan.info[tr->plan.info[tr->loss->id].root].elem_bytes != 4)
        loss = (struct clt__buf){NULL, 0};
    if (tr->dev->prof)
        clt__prof_op(tr->dev, "optimizer", "update");
    const struct clt__optim_half half = {tr->plan.storage, {tr->shadow, 0}};
    const bool wide = tr->shadow && tr->plan.trained > 0;
    enum clt_status st = clt__optim_step_half(
        tr->dev, &tr->optim, (int64_t)tr->plan.trained, p, g, m, v, loss, work, status, lr,
        1.0f / (float)tr->options.optimizer.accumulate, wide ? &half : NULL);
    if (st == CLT_OK && tr->plan.storage == CLT_PRECISION_FP16)
        st = clt__scaler_state_update(
            tr->dev, &tr->scaler_cfg, (struct clt__buf){tr->status, LAST_SKIP_WORD},
            CLT__OPTIM_SKIP_GRAD | CLT__OPTIM_SKIP_LOSS, (struct clt__buf){tr->scaler, 0});
    return st;
}

enum clt_status clt__trainer_update(struct clt_trainer *tr, struct clt__exec *x, float lr)
{
    return update(tr, x, lr);
}

enum clt_status clt__trainer_dry_run(struct clt_trainer *tr)
{
    enum clt_status st = CLT_OK;
    for (int i = 0; i < 2 && st == CLT_OK; i++) {
        uint32_t zero = 0;
        if (tr->plan.input_bytes > 0)
            st =
                clt__cl_check(&tr->dev->log,
                              clEnqueueFillBuffer(tr->dev->queue, tr->inputs[i], &zero, sizeof zero,
                                                  0, (size_t)tr->plan.input_bytes, 0, NULL, NULL),
                              "clEnqueueFillBuffer");
    }
    if (st == CLT_OK && !tr->inference)
        st = clt__optim_status_reset(tr->dev, (struct clt__buf){tr->status, 0});
    tr->slot = 0;
    struct clt__exec x = exec_for(tr, true, clt__trainer_batch(tr));
    if (st == CLT_OK && !tr->inference)
        st = forward(tr, &x, NULL);
    if (st == CLT_OK && !tr->inference)
        st = backward(tr, &x);
    if (st == CLT_OK && !tr->inference)
        st = update(tr, &x, 0.0f);
    /* The evaluation kernels too (dropout off, batch norm on running averages). */
    struct clt__exec e = exec_for(tr, false, clt__trainer_batch(tr));
    if (st == CLT_OK)
        st = forward(tr, &e, NULL);
    if (st == CLT_OK)
        st = clt_device_finish(tr->dev);
    if (st != CLT_OK)
        clt__log(&tr->dev->log, CLT_LOG_ERROR, "the trial step at trainer creation failed");
    return st;
}

/* Replaces *ev by a new event (releasing the old one). */
static void release(cl_event *ev)
{
    if (*ev)
        clReleaseEvent(*ev);
    *ev = NULL;
}

/* Copies one input of `rows` real rows into its place in a staging slot (dst, the full
 * planned size) and pads the rest: zeros, or -1 (an ignored label) for cross-entropy labels.
 * A NULL src (an input nothing needs) becomes zeros. */
static void stage_input(const struct clt_trainer *tr, const struct clt_tensor *t, int64_t rows,
                        const void *src, char *dst)
{
    const size_t e = tr->plan.info[t->id].elem_bytes;
    size_t bytes = (size_t)clt__count(t) * e;
    int64_t batch = clt__trainer_batch(tr);
    size_t real = rows < batch ? bytes / (size_t)batch * (size_t)rows : bytes;
    if (!src) {
        memset(dst, 0, bytes);
        return;
    }
    if (e == 2) { /* F32 data into a 16-bit plan's storage, rounded to nearest even */
        clt__f32_to_half_n(tr->plan.storage, src, (uint16_t *)(void *)dst, real / 2);
    } else {
        memcpy(dst, src, real);
    }
    if (tr->plan.info[t->id].pad_label)
        memset(dst + real, 0xff, bytes - real); /* int32 -1 */
    else
        memset(dst + real, 0, bytes - real);
}

/* Copies the caller's batch into a host staging slot and enqueues its upload on the
 * transfer queue, after the last step that read the device slot. */
static enum clt_status upload(struct clt_trainer *tr, uint32_t slot, const void *const *inputs,
                              int64_t rows, cl_event *start)
{
    struct clt_device *dev = tr->dev;
    if (tr->up_ev[slot]) {
        /* The upload from this host slot two steps ago must be done before we overwrite it. */
        enum clt_status st =
            clt__cl_check(&dev->log, clWaitForEvents(1, &tr->up_ev[slot]), "clWaitForEvents");
        release(&tr->up_ev[slot]);
        if (st != CLT_OK)
            return st;
    }
    uint32_t k = 0;
    for (uint32_t id = 0; id < tr->plan.n; id++) {
        const struct clt_tensor *t = tr->graph->nodes[id];
        if (t->kind != CLT__NODE_INPUT)
            continue;
        stage_input(tr, t, rows, inputs[k++],
                    (char *)tr->host_in[slot] +
                        tr->plan.info[id].offset * tr->plan.info[id].elem_bytes);
    }
    if (tr->plan.input_bytes == 0)
        return !start ? CLT_OK
                      : clt__cl_check(&dev->log,
                                      clEnqueueMarkerWithWaitList(dev->queue, 0, NULL, start),
                                      "clEnqueueMarkerWithWaitList");
    cl_event *wait = tr->done_ev[slot] ? &tr->done_ev[slot] : NULL;
    cl_int err = clEnqueueWriteBuffer(dev->transfer, tr->inputs[slot], CL_FALSE, 0,
                                      (size_t)tr->plan.input_bytes, tr->host_in[slot], wait ? 1 : 0,
                                      wait, &tr->up_ev[slot]);
    enum clt_status st = clt__cl_check(&dev->log, err, "clEnqueueWriteBuffer (batch upload)");
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log, clFlush(dev->transfer), "clFlush");
    /* The compute queue starts this step's work only once the batch is there; the barrier's
     * event, when asked for, marks the start of the step's compute. */
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log,
                           clEnqueueBarrierWithWaitList(dev->queue, 1, &tr->up_ev[slot], start),
                           "clEnqueueBarrierWithWaitList");
    return st;
}

/* In stop_on_nonfinite mode: fails when the previous update was skipped. Waits for it. */
static enum clt_status check_previous(struct clt_trainer *tr)
{
    if (!tr->options.stop_on_nonfinite || !tr->status_ev)
        return CLT_OK;
    enum clt_status st =
        clt__cl_check(&tr->dev->log, clWaitForEvents(1, &tr->status_ev), "clWaitForEvents");
    release(&tr->status_ev);
    struct clt__optim_status s;
    memcpy(&s, tr->host_status, sizeof s);
    /* In fp16 a gradient that overflows is the loss scaler's to handle (the step is skipped
     * and the scale lowered): only a non-finite loss stops. */
    if (tr->plan.storage == CLT_PRECISION_FP16)
        s.last_skip &= CLT__OPTIM_SKIP_LOSS;
    if (st == CLT_OK && s.last_skip != 0) {
        clt__log(&tr->dev->log, CLT_LOG_ERROR,
                 "step %llu: the %s was not finite; stopping as asked",
                 (unsigned long long)tr->status_step,
                 (s.last_skip & CLT__OPTIM_SKIP_LOSS) ? "loss" : "gradient");
        return CLT_ERR_NONFINITE;
    }
    return st;
}

enum clt_status clt_trainer_step(struct clt_trainer *tr, const void *const *inputs)
{
    int64_t rows = !tr ? 0 : tr->par ? clt__parallel_batch(tr) : clt__trainer_batch(tr);
    return clt_trainer_step_rows(tr, inputs, (uint32_t)rows);
}

/* The checks of a step, and those of the previous one in stop_on_nonfinite mode. */
static enum clt_status step_check(struct clt_trainer *tr, const void *const *inputs, int64_t rows)
{
    if (!tr || tr->inference || (tr->plan.ninputs > 0 && !inputs) ||
        clt__device_usable(tr->dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    for (uint32_t i = 0; i < tr->plan.ninputs; i++)
        if (!inputs[i]) {
            clt__log(&tr->dev->log, CLT_LOG_ERROR, "step: input %u is NULL", (unsigned)i);
            return CLT_ERR_INVALID_ARGUMENT;
        }
    enum clt_status st = clt__trainer_check_rows(tr, rows, "step");
    if (st == CLT_OK)
        st = check_previous(tr);
    return st;
}

/* The step's profiling record, when it has one. */
static struct clt__step_events *step_prof(struct clt_trainer *tr)
{
    return tr->prof && tr->nprof < CLT__PROFILE_STEPS ? &tr->prof[tr->nprof] : NULL;
}

/* Upload (whose barrier starts the step's compute), forward and backward (recording launches into
 * rec from the forward on, when rec is set). */
static enum clt_status step_pass(struct clt_trainer *tr, const void *const *inputs, int64_t rows,
                                 struct clt__exec *x, struct clt__rec *rec)
{
    struct clt_device *dev = tr->dev;
    uint32_t slot = (uint32_t)(tr->steps % 2);
    tr->slot = slot;
    struct clt__step_events *prof = step_prof(tr);
    enum clt_status st = upload(tr, slot, inputs, rows, prof ? &prof->compute_start : NULL);
    *x = exec_for(tr, true, rows);
    if (st == CLT_OK && rec)
        clt__rec_begin(dev, rec);
    if (st == CLT_OK && tr->kprof)
        st = clt__prof_step_begin(dev, tr->kprof);
    if (st == CLT_OK)
        st = forward(tr, x, NULL);
    if (st == CLT_OK)
        st = backward(tr, x);
    return st;
}

/* Whether the step x is the last micro-step of an accumulation (the one that updates). */
static bool step_updates(const struct clt_trainer *tr, const struct clt__exec *x)
{
    return x->micro + 1 == tr->options.optimizer.accumulate;
}

static enum clt_status step_update(struct clt_trainer *tr, struct clt__exec *x)
{
    tr->last_lr = (float)clt__lr_at(&tr->lr_schedule, (int64_t)tr->updates);
    enum clt_status st = update(tr, x, tr->last_lr);
    tr->updates++;
    return st;
}

/* After the update: the loss readback (which ends the step), the status readback, the flush,
 * the profiling record and the counters. st is the status so far. */
static enum clt_status step_finish(struct clt_trainer *tr, struct clt__exec *x, enum clt_status st)
{
    struct clt_device *dev = tr->dev;
    uint32_t slot = tr->slot;
    struct clt__step_events *prof = step_prof(tr);
    /* The loss readback follows all of the step's compute on the in-order compute queue: its
     * event also ends the step (done_ev), without a marker of its own. */
    if (st == CLT_OK) {
        struct clt__buf l = clt__val(x, tr->loss);
        const size_t e = tr->plan.info[tr->plan.info[tr->loss->id].root].elem_bytes;
        void *dst = e == 4 ? (void *)&tr->host_loss[slot] : (void *)&tr->host_loss16[slot];
        release(&tr->loss_ev[slot]);
        release(&tr->done_ev[slot]);
        st = clt__cl_check(&dev->log,
                           clEnqueueReadBuffer(dev->queue, l.mem, CL_FALSE, l.offset * e, e, dst, 0,
                                               NULL, &tr->loss_ev[slot]),
                           "clEnqueueReadBuffer (loss)");
        if (st == CLT_OK) {
            tr->done_ev[slot] = tr->loss_ev[slot];
            clRetainEvent(tr->done_ev[slot]);
        }
    }
    if (st == CLT_OK && step_updates(tr, x) && tr->options.stop_on_nonfinite) {
        st = clt__cl_check(&dev->log,
                           clEnqueueReadBuffer(dev->queue, tr->status, CL_FALSE, 0,
                                               CLT__OPTIM_STATUS_BYTES, tr->host_status, 0, NULL,
                                               &tr->status_ev),
                           "clEnqueueReadBuffer (status)");
        tr->status_step = tr->steps;
    }
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log, clFlush(dev->queue), "clFlush");
    if (st == CLT_OK && prof && tr->up_ev[slot]) {
        prof->upload = tr->up_ev[slot];
        prof->compute_end = tr->done_ev[slot];
        clRetainEvent(prof->upload);
        clRetainEvent(prof->compute_end);
        tr->nprof++;
    } else if (prof && prof->compute_start) {
        clReleaseEvent(prof->compute_start);
        prof->compute_start = NULL;
    }
    if (st == CLT_OK) {
        tr->have_loss = true;
        tr->loss_slot = slot;
        tr->steps++;
    }
    return st;
}

enum clt_status clt_trainer_step_rows(struct clt_trainer *tr, const void *const *inputs,
                                      uint32_t rows)
{
    if (tr && tr->par)
        return clt__parallel_step(tr, inputs, rows);
    enum clt_status st = step_check(tr, inputs, rows);
    if (st != CLT_OK)
        return st;
    struct clt_device *dev = tr->dev;
    struct clt__exec x = exec_for(tr, true, rows);
    bool updating = step_updates(tr, &x);
    struct clt__rec *rec = tr->rec[(x.micro == 0 ? 1 : 0) | (updating ? 2 : 0)];
    /* A partial batch (at most one an epoch) runs unrecorded: its row counts and zero fills
     * differ from the recorded full step's. */
    if (rows != clt__trainer_batch(tr))
        rec = NULL;
    st = step_pass(tr, inputs, rows, &x, rec);
    if (st == CLT_OK && updating)
        st = step_update(tr, &x);
    clt__rec_end(dev, st == CLT_OK);
    clt__prof_step_end(dev, st == CLT_OK);
    return step_finish(tr, &x, st);
}

enum clt_status clt__trainer_step_pass(struct clt_trainer *tr, const void *const *inputs,
                                       int64_t rows)
{
    enum clt_status st = step_check(tr, inputs, rows);
    struct clt__exec x;
    if (st == CLT_OK)
        st = step_pass(tr, inputs, rows, &x, NULL);
    tr->pass_rows = st == CLT_OK ? rows : 0;
    if (st != CLT_OK)
        clt__prof_step_end(tr->dev, false);
    return st;
}

enum clt_status clt__trainer_step_finish(struct clt_trainer *tr)
{
    if (tr->pass_rows < 1)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt__exec x = exec_for(tr, true, tr->pass_rows);
    tr->pass_rows = 0;
    enum clt_status st = step_updates(tr, &x) ? step_update(tr, &x) : CLT_OK;
    clt__prof_step_end(tr->dev, st == CLT_OK);
    return step_finish(tr, &x, st);
}

enum clt_status clt__trainer_step_times(struct clt_trainer *tr, uint32_t i, uint64_t times[4])
{
    if (!tr->prof || i >= tr->nprof)
        return CLT_ERR_UNSUPPORTED;
    const struct clt__step_events *e = &tr->prof[i];
    cl_event evs[3] = {e->upload, e->compute_start, e->compute_end};
    cl_int err = clWaitForEvents(3, evs);
    cl_ulong t[4] = {0, 0, 0, 0};
    if (err == CL_SUCCESS)
        err = clGetEventProfilingInfo(e->upload, CL_PROFILING_COMMAND_START, sizeof t[0], &t[0],
                                      NULL);
    if (err == CL_SUCCESS)
        err =
            clGetEventProfilingInfo(e->upload, CL_PROFILING_COMMAND_END, sizeof t[1], &t[1], NULL);
    if (err == CL_SUCCESS)
        err = clGetEventProfilingInfo(e->compute_start, CL_PROFILING_COMMAND_END, sizeof t[2],
                                      &t[2], NULL);
    if (err == CL_SUCCESS)
        err = clGetEventProfilingInfo(e->compute_end, CL_PROFILING_COMMAND_END, sizeof t[3], &t[3],
                                      NULL);
    for (int k = 0; k < 4; k++)
        times[k] = t[k];
    return clt__cl_check(&tr->dev->log, err, "clGetEventProfilingInfo");
}

enum clt_status clt_trainer_loss(struct clt_trainer *tr, float *loss)
{
    if (tr && tr->par)
        return clt__parallel_loss(tr, loss);
    if (!tr || !loss || !tr->have_loss || clt__device_usable(tr->dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    uint32_t slot = tr->loss_slot;
    enum clt_status st = clt__cl_check(&tr->dev->log, clWaitForEvents(1, &tr->loss_ev[slot]),
                                       "clWaitForEvents (loss)");
    const uint8_t e = tr->plan.info[tr->plan.info[tr->loss->id].root].elem_bytes;
    if (st == CLT_OK)
        *loss = e == 4 ? tr->host_loss[slot]
                       : clt__half_to_f32(tr->plan.storage, tr->host_loss16[slot]);
    return st;
}

enum clt_status clt_trainer_stats(struct clt_trainer *tr, struct clt_trainer_stats *out)
{
    if (!tr || !out || clt__device_usable(tr->dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt__optim_status s;
    enum clt_status st = clt__optim_status_read(tr->dev, (struct clt__buf){tr->status, 0}, &s);
    if (st != CLT_OK)
        return st;
    memset(out, 0, sizeof *out);
    out->steps = tr->steps;
    out->updates = (uint64_t)s.step;
    out->skipped = (uint64_t)s.skipped;
    out->grad_norm = s.grad_norm;
    out->lr = tr->last_lr;
    out->loss_scale = 1.0f;
    if (tr->plan.storage == CLT_PRECISION_FP16) {
        struct clt__scaler sc;
        clt__scaler_init(&sc, &tr->scaler_cfg);
        st = clt__scaler_state_read(tr->dev, (struct clt__buf){tr->scaler, 0}, &sc);
        out->loss_scale = sc.scale;
    }
    return st;
}

/* Marks the nodes t depends on (t included). */
static void mark_needed(const struct clt_trainer *tr, const struct clt_tensor *t, bool *need)
{
    need[t->id] = true;
    for (uint32_t id = t->id + 1; id-- > 0;)
        if (need[id])
            for (uint32_t i = 0; i < tr->graph->nodes[id]->nin; i++)
                need[tr->graph->nodes[id]->in[i]->id] = true;
}

/* Enqueues a non-blocking read of count elements of t's value into out; a 16-bit value
 * goes into *half (allocated here, count 16-bit elements) for the caller to widen into out
 * once the read is done. */
static enum clt_status read_value(struct clt_trainer *tr, struct clt__exec *x,
                                  const struct clt_tensor *t, void *out, uint64_t count,
                                  uint16_t **half)
{
    struct clt__buf b = clt__val(x, t);
    const size_t e = tr->plan.info[t->id].elem_bytes;
    if (e == 2) {
        free(*half);
        *half = malloc(count ? (size_t)count * 2 : 2);
        if (!*half)
            return CLT_ERR_NO_MEMORY;
        out = *half;
    }
    cl_int err = clEnqueueReadBuffer(tr->dev->queue, b.mem, CL_FALSE, b.offset * e,
                                     (size_t)(count * e), out, 0, NULL, NULL);
    return clt__cl_check(&tr->dev->log, err, "clEnqueueReadBuffer");
}

/* Logs and fails when an input the pass needs is NULL. */
static enum clt_status check_needed_inputs(struct clt_trainer *tr, const void *const *inputs,
                                           const bool *need)
{
    uint32_t k = 0;
    for (uint32_t id = 0; id < tr->plan.n; id++) {
        const struct clt_tensor *t = tr->graph->nodes[id];
        if (t->kind != CLT__NODE_INPUT)
            continue;
        bool needed = need ? need[id] : tr->plan.info[id].reached;
        if (needed && (!inputs || !inputs[k])) {
            clt__log(&tr->dev->log, CLT_LOG_ERROR,
                     "input %u (\"%s\") is NULL, but the requested outputs depend on it",
                     (unsigned)k, t->name);
            return CLT_ERR_INVALID_ARGUMENT;
        }
        k++;
    }
    return CLT_OK;
}

enum clt_status clt__trainer_run_forward(struct clt_trainer *tr, const void *const *inputs,
                                         int64_t rows, const bool *need,
                                         const struct clt_tensor *const *reads, void *const *dst,
                                         const uint64_t *count, uint32_t nread)
{
    enum clt_status st = check_needed_inputs(tr, inputs, need);
    if (st == CLT_OK)
        st = clt__trainer_check_rows(tr, rows, "forward pass");
    /* The pass blocks anyway: let earlier steps finish first. */
    if (st == CLT_OK)
        st = clt_device_finish(tr->dev);
    uint32_t slot = (uint32_t)(tr->steps % 2);
    tr->slot = slot;
    if (st == CLT_OK && tr->plan.ninputs > 0) {
        /* Inputs nothing needs may be omitted (inputs NULL) or NULL. */
        const void **all = calloc(tr->plan.ninputs, sizeof *all);
        if (!all)
            return CLT_ERR_NO_MEMORY;
        for (uint32_t i = 0; inputs && i < tr->plan.ninputs; i++)
            all[i] = inputs[i];
        st = upload(tr, slot, all, rows, NULL);
        free(all);
    }
    struct clt__exec x = exec_for(tr, false, rows);
    uint16_t **half = calloc(nread ? nread : 1, sizeof *half);
    if (!half)
        st = st == CLT_OK ? CLT_ERR_NO_MEMORY : st;
    /* Tensors that are not op results (inputs, parameters) are there already. */
    for (uint32_t r = 0; st == CLT_OK && r < nread; r++)
        if (tr->graph->nodes[tr->plan.info[reads[r]->id].root]->kind != CLT__NODE_OP)
            st = read_value(tr, &x, reads[r], dst[r], count[r], &half[r]);
    const enum clt_precision was = clt__storage_set(tr->dev, tr->plan.storage);
    for (uint32_t i = 0; st == CLT_OK && i < tr->plan.nfwd; i++) {
        uint32_t id = tr->plan.fwd[i];
        if (need ? !need[id] : !tr->plan.info[id].reached)
            continue;
        const struct clt_tensor *t = tr->graph->nodes[id];
        st = clt__def(t)->forward(&x, t);
        if (st != CLT_OK)
            st = op_failed(tr, t, "forward", st);
        /* Read an output as soon as it exists: its memory may be reused later. */
        for (uint32_t r = 0; st == CLT_OK && r < nread; r++)
            if (tr->plan.info[reads[r]->id].root == id)
                st = read_value(tr, &x, reads[r], dst[r], count[r], &half[r]);
    }
    clt__storage_set(tr->dev, was);
    if (st == CLT_OK) {
        release(&tr->done_ev[slot]);
        st = clt__cl_check(&tr->dev->log,
                           clEnqueueMarkerWithWaitList(tr->dev->queue, 0, NULL, &tr->done_ev[slot]),
                           "clEnqueueMarkerWithWaitList");
    }
    if (st == CLT_OK)
        st = clt_device_finish(tr->dev);
    else
        clt_device_finish(tr->dev); /* no read may land in a freed buffer */
    /* 16-bit values widened (exact) into the caller's floats. */
    for (uint32_t r = 0; half && r < nread; r++) {
        for (uint64_t i = 0; st == CLT_OK && half[r] && i < count[r]; i++)
            ((float *)dst[r])[i] = clt__half_to_f32(tr->plan.storage, half[r][i]);
        free(half[r]);
    }
    free(half);
    return st;
}

/* The elements of t a caller may ask for: all of them, or, for a tensor whose leading
 * dimension is the batch, those of the real rows. */
static bool count_ok(const struct clt_trainer *tr, const struct clt_tensor *t, int64_t rows,
                     uint64_t count)
{
    int64_t n = clt__count(t), batch = clt__trainer_batch(tr);
    if ((uint64_t)n == count)
        return true;
    return t->ndim > 0 && t->shape[0] == batch && (uint64_t)(n / batch * rows) == count;
}

enum clt_status clt_trainer_eval(struct clt_trainer *tr, const void *const *inputs,
                                 const struct clt_tensor *output, float *out, uint64_t count,
                                 float *loss)
{
    int64_t rows = !tr ? 0 : tr->par ? clt__parallel_batch(tr) : clt__trainer_batch(tr);
    return clt_trainer_eval_rows(tr, inputs, (uint32_t)rows, output, out, count, loss);
}

enum clt_status clt_trainer_eval_rows(struct clt_trainer *tr, const void *const *inputs,
                                      uint32_t rows, const struct clt_tensor *output, float *out,
                                      uint64_t count, float *loss)
{
    if (tr && tr->par)
        return clt__parallel_eval(tr, inputs, rows, output, out, count, loss);
    return clt__trainer_eval_one(tr, inputs, rows, output, out, count, loss);
}

enum clt_status clt__trainer_eval_one(struct clt_trainer *tr, const void *const *inputs,
                                      int64_t rows, const struct clt_tensor *output, float *out,
                                      uint64_t count, float *loss)
{
    if (!tr || tr->inference || (output && !out) || clt__device_usable(tr->dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    if (output && (output->graph != tr->graph || output->id >= tr->plan.n ||
                   !count_ok(tr, output, rows, count))) {
        clt__log(&tr->dev->log, CLT_LOG_ERROR,
                 "eval: the output must be a tensor of the trainer's graph and count its size "
                 "(or, for a tensor whose leading dimension is the batch, that of the real "
                 "rows)");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    memset(tr->eval_need, 0, tr->plan.n * sizeof *tr->eval_need);
    if (loss)
        mark_needed(tr, tr->loss, tr->eval_need);
    if (output)
        mark_needed(tr, output, tr->eval_need);
    const struct clt_tensor *reads[2];
    void *dst[2];
    uint64_t counts[2];
    uint32_t nread = 0;
    float host_loss = 0;
    if (output) {
        reads[nread] = output;
        dst[nread] = out;
        counts[nread++] = count;
    }
    if (loss) {
        reads[nread] = tr->loss;
        dst[nread] = &host_loss;
        counts[nread++] = 1;
    }
    enum clt_status st =
        clt__trainer_run_forward(tr, inputs, rows, tr->eval_need, reads, dst, counts, nread);
    if (st == CLT_OK && loss)
        *loss = host_loss;
    return st;
}
