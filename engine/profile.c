/*
 * profile.c: where a training step's device time goes, per kernel and per op of the plan,
 * from OpenCL profiling events (docs/bench.md, "Kernel profile"). Portable: any device whose
 * queues were made with profiling on (clt_device_options.profiling) gives it, unlike a
 * driver's own tracer.
 *
 * While a trainer's profile is on (clt__trainer_profile), a step runs with dev->prof set:
 * every enqueue of the step's work asks clt__prof_event for an event to pass (a kernel
 * launch, recorded or not, by the kernel's function name; the host BLAS's native kernel as
 * "host_sgemm"; CLBlast's GEMM as "clblast_sgemm", whose event is that of CLBlast's last
 * kernel), tagged with the op the step is running (clt__prof_op: the plan's node and pass).
 * A marker at the start and one at the end of the step's compute give its span. The events
 * are kept, and read (START to END) when the profile is read or when many are pending; reading
 * waits for them. With the profile off dev->prof is NULL and an enqueue passes no event:
 * profiling costs a branch per launch.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Events kept before they are read at the next step's start (bounds memory, not accuracy). */
#define PENDING_MAX 16384

#define NONE UINT16_MAX

struct name_slot {
    cl_kernel key;    /* a kernel's names are keyed by the launcher's kernel object */
    const char *call; /* or, for calls (host_sgemm, ...), by this static string */
    char name[64];
    uint64_t count, ns;
};

struct op_slot {
    const char *op, *pass; /* static strings, compared by address */
    uint64_t count, ns;
};

struct pending {
    cl_event ev; /* NULL: the enqueue failed or gave none */
    uint16_t name, op;
};

struct clt__prof {
    struct clt_device *dev;
    struct name_slot *names;
    uint32_t nnames, names_cap;
    struct op_slot *ops;
    uint32_t nops, ops_cap;
    struct pending *pend;
    uint32_t npend, pend_cap;
    cl_event span[2]; /* the current step's start and end markers */
    struct {
        cl_event start, end;
    } * steps; /* steps whose span is pending */
    uint32_t nsteps, steps_cap;
    uint16_t op; /* the op now enqueueing, NONE for none */
    uint32_t done_steps;
    uint64_t span_ns;
    uint32_t lost; /* launches whose event could not be kept or read */
};

static bool grow(void **p, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap)
        return true;
    uint32_t c = *cap ? *cap * 2 : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, (size_t)c * size);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

enum clt_status clt__prof_create(struct clt_device *dev, struct clt__prof **out)
{
    *out = NULL;
    if (!dev->profiling) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "a kernel profile needs a device opened with profiling on");
        return CLT_ERR_UNSUPPORTED;
    }
    struct clt__prof *p = calloc(1, sizeof *p);
    if (!p)
        return CLT_ERR_NO_MEMORY;
    p->dev = dev;
    p->op = NONE;
    *out = p;
    return CLT_OK;
}

static void release_pending(struct clt__prof *p)
{
    for (uint32_t i = 0; i < p->npend; i++)
        if (p->pend[i].ev)
            clReleaseEvent(p->pend[i].ev);
    p->npend = 0;
    for (uint32_t i = 0; i < p->nsteps; i++) {
        if (p->steps[i].start)
            clReleaseEvent(p->steps[i].start);
        if (p->steps[i].end)
            clReleaseEvent(p->steps[i].end);
    }
    p->nsteps = 0;
    for (int i = 0; i < 2; i++)
        if (p->span[i])
            clReleaseEvent(p->span[i]);
    p->span[0] = p->span[1] = NULL;
}

void clt__prof_free(struct clt__prof *p)
{
    if (!p)
        return;
    release_pending(p);
    free(p->names);
    free(p->ops);
    free(p->pend);
    free(p->steps);
    free(p);
}

/* The slot of a kernel's (kernel non-NULL) or a call's name; NONE when the table is full. */
static uint16_t name_of(struct clt__prof *p, cl_kernel kernel, const char *call)
{
    for (uint32_t i = 0; i < p->nnames; i++)
        if (kernel ? p->names[i].key == kernel : p->names[i].call == call)
            return (uint16_t)i;
    if (p->nnames >= NONE ||
        !grow((void **)&p->names, &p->names_cap, p->nnames + 1, sizeof *p->names))
        return NONE;
    struct name_slot *s = &p->names[p->nnames];
    memset(s, 0, sizeof *s);
    s->key = kernel;
    s->call = kernel ? NULL : call;
    if (!kernel || clGetKernelInfo(kernel, CL_KERNEL_FUNCTION_NAME, sizeof s->name, s->name,
                                   NULL) != CL_SUCCESS)
        snprintf(s->name, sizeof s->name, "%s", call ? call : "kernel");
    return (uint16_t)p->nnames++;
}

cl_event *clt__prof_event(struct clt_device *dev, cl_kernel kernel, const char *call)
{
    struct clt__prof *p = dev->prof;
    uint16_t name = name_of(p, kernel, call);
    if (name == NONE || !grow((void **)&p->pend, &p->pend_cap, p->npend + 1, sizeof *p->pend)) {
        p->lost++;
        return NULL;
    }
    struct pending *e = &p->pend[p->npend++];
    e->ev = NULL;
    e->name = name;
    e->op = p->op;
    return &e->ev;
}

void clt__prof_op(struct clt_device *dev, const char *op, const char *pass)
{
    struct clt__prof *p = dev->prof;
    uint32_t i = 0;
    while (i < p->nops && (p->ops[i].op != op || p->ops[i].pass != pass))
        i++;
    if (i == p->nops) {
        if (p->nops >= NONE || !grow((void **)&p->ops, &p->ops_cap, p->nops + 1, sizeof *p->ops)) {
            p->op = NONE;
            return;
        }
        p->ops[i] = (struct op_slot){op, pass, 0, 0};
        p->nops++;
    }
    p->op = (uint16_t)i;
}

/* END - START of an event in ns; false when it cannot be read. */
static bool duration(cl_event ev, uint64_t *ns)
{
    cl_ulong t0 = 0, t1 = 0;
    if (clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) !=
            CL_SUCCESS ||
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) != CL_SUCCESS)
        return false;
    *ns = t1 > t0 ? t1 - t0 : 0;
    return true;
}

/* Waits for the pending events and adds them to the totals. */
static enum clt_status collect(struct clt__prof *p)
{
    struct clt_device *dev = p->dev;
    for (uint32_t i = 0; i < p->npend; i++) {
        struct pending *e = &p->pend[i];
        uint64_t ns = 0;
        if (!e->ev)
            continue;
        if (clWaitForEvents(1, &e->ev) != CL_SUCCESS || !duration(e->ev, &ns)) {
            p->lost++;
            continue;
        }
        p->names[e->name].count++;
        p->names[e->name].ns += ns;
        if (e->op != NONE) {
            p->ops[e->op].count++;
            p->ops[e->op].ns += ns;
        }
    }
    for (uint32_t i = 0; i < p->nsteps; i++) {
        cl_ulong t0 = 0, t1 = 0;
        cl_event evs[2] = {p->steps[i].start, p->steps[i].end};
        cl_int err = clWaitForEvents(2, evs);
        if (err == CL_SUCCESS)
            err = clGetEventProfilingInfo(evs[0], CL_PROFILING_COMMAND_END, sizeof t0, &t0, NULL);
        if (err == CL_SUCCESS)
            err = clGetEventProfilingInfo(evs[1], CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
        if (err != CL_SUCCESS) {
            release_pending(p);
            return clt__cl_check(&dev->log, err, "clGetEventProfilingInfo (kernel profile)");
        }
        p->span_ns += t1 > t0 ? t1 - t0 : 0;
        p->done_steps++;
    }
    /* The current step's markers (span) are not pending steps: kept. */
    cl_event span[2] = {p->span[0], p->span[1]};
    p->span[0] = p->span[1] = NULL;
    release_pending(p);
    p->span[0] = span[0];
    p->span[1] = span[1];
    return CLT_OK;
}

enum clt_status clt__prof_step_begin(struct clt_device *dev, struct clt__prof *p)
{
    enum clt_status st = CLT_OK;
    if (p->npend >= PENDING_MAX)
        st = collect(p);
    dev->prof = p;
    p->op = NONE;
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log, clEnqueueMarkerWithWaitList(dev->queue, 0, NULL, &p->span[0]),
                           "clEnqueueMarkerWithWaitList");
    return st;
}

void clt__prof_step_end(struct clt_device *dev, bool ok)
{
    struct clt__prof *p = dev->prof;
    dev->prof = NULL;
    if (!p)
        return;
    if (ok && p->span[0] &&
        clEnqueueMarkerWithWaitList(dev->queue, 0, NULL, &p->span[1]) == CL_SUCCESS &&
        grow((void **)&p->steps, &p->steps_cap, p->nsteps + 1, sizeof *p->steps)) {
        p->steps[p->nsteps].start = p->span[0];
        p->steps[p->nsteps].end = p->span[1];
        p->nsteps++;
        p->span[0] = p->span[1] = NULL;
        return;
    }
    /* A failed step: what it enqueued is not a step's worth; dropped. */
    release_pending(p);
}

static int by_time(const void *a, const void *b)
{
    const struct clt__prof_entry *x = a, *y = b;
    if (x->ns != y->ns)
        return x->ns < y->ns ? 1 : -1;
    return strcmp(x->name, y->name);
}

enum clt_status clt__prof_read(struct clt__prof *p, struct clt__prof_report *out)
{
    memset(out, 0, sizeof *out);
    enum clt_status st = collect(p);
    if (st != CLT_OK)
        return st;
    out->kernels = calloc(p->nnames ? p->nnames : 1, sizeof *out->kernels);
    out->ops = calloc(p->nops ? p->nops : 1, sizeof *out->ops);
    if (!out->kernels || !out->ops) {
        clt__prof_report_free(out);
        return CLT_ERR_NO_MEMORY;
    }
    /* Kernel objects of one name (the own GEMM's configurations, every fused chain's
     * fused_forward) add up under that name. */
    for (uint32_t i = 0; i < p->nnames; i++) {
        if (p->names[i].count == 0)
            continue;
        size_t k = 0;
        while (k < out->nkernels && strcmp(out->kernels[k].name, p->names[i].name) != 0)
            k++;
        struct clt__prof_entry *e = &out->kernels[k];
        if (k == out->nkernels) {
            out->nkernels++;
            snprintf(e->name, sizeof e->name, "%s", p->names[i].name);
        }
        e->count += p->names[i].count;
        e->ns += p->names[i].ns;
    }
    for (uint32_t i = 0; i < p->nops; i++) {
        if (p->ops[i].count == 0)
            continue;
        struct clt__prof_entry *e = &out->ops[out->nops++];
        snprintf(e->name, sizeof e->name, "%s.%s", p->ops[i].op, p->ops[i].pass);
        e->count = p->ops[i].count;
        e->ns = p->ops[i].ns;
    }
    qsort(out->kernels, out->nkernels, sizeof *out->kernels, by_time);
    qsort(out->ops, out->nops, sizeof *out->ops, by_time);
    out->steps = p->done_steps;
    out->span_ns = p->span_ns;
    out->lost = p->lost;
    return CLT_OK;
}

void clt__prof_report_free(struct clt__prof_report *r)
{
    if (!r)
        return;
    free(r->kernels);
    free(r->ops);
    r->kernels = r->ops = NULL;
    r->nkernels = r->nops = 0;
}
