/*
 * record.c: a trainer's step recorded once and replayed (docs/scheduling.md, "Recorded
 * launches").
 *
 * A step's kernel launches are the same, in the same order, from one step to the next: the
 * plan does not change, and neither do most arguments (buffers, offsets, sizes). What changes
 * is a handful: the input slot (two buffers, alternating), dropout's step counter, the
 * learning rate under a schedule. The recording keeps, for every launch of the step, its own
 * kernel object (clCreateKernel of the launcher's program and function name) with its
 * arguments set, and the bytes of those arguments. Replaying a launch compares what the
 * launcher passes with what was recorded, sets the arguments that differ, and enqueues the
 * recorded kernel with the recorded launch shape: no kernel look-up, no work-group query, and
 * one clSetKernelArg per changed argument instead of one per argument.
 *
 * The launcher's code still runs every step (it computes the arguments), so a replayed step
 * runs exactly what the plain path would: the recording cannot go stale. A launch that does
 * not match the recorded one at its position (another kernel, another shape: the plan ran
 * something else) switches the rest of the step to the plain path, and the next step records
 * again. Launches outside clt__launch_kernel (CLBlast, the host BLAS's native kernels, fills
 * and copies) are not recorded: they run as calls, in their place in the queue, as always.
 *
 * Under a kernel profile (profile.c, dev->prof set) a recorded or replayed launch keeps its
 * event; otherwise it asks for none.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Argument values up to this size are recorded (buffers, ints, floats); a launch with a
 * larger one runs on the plain path. */
#define VALUE_MAX 16

/* Sizes of buffers remembered during one step (clt__check_buf); a trainer uses a few. */
#define SIZES_MAX 16

/* Steps in a row that fell back part-way (no whole replay between them) after which a
 * recording gives up: its steps then run the plain path. A step that differs now and then
 * (a partial batch at the end of an epoch) only costs a recording each time. */
#define MISS_LIMIT 8

struct rec_arg {
    size_t size;
    bool local; /* a __local buffer: no value */
    unsigned char value[VALUE_MAX];
};

struct rec_launch {
    cl_kernel source; /* the launcher's kernel object */
    cl_kernel kernel; /* this launch's own copy, arguments set */
    cl_uint dims;
    size_t global[3], local[3]; /* as the launcher passed them; local 0: chosen */
    size_t g[3], l[3];          /* what is enqueued */
    uint32_t first_arg, nargs;  /* in rec->args */
};

enum rec_mode { REC_OFF, REC_RECORD, REC_REPLAY };

struct clt__rec {
    struct clt_device *dev;
    struct rec_launch *launches; /* [cap]; kernels of [0, nkernels) are live */
    uint32_t n, cap, nkernels;
    struct rec_arg *args;
    uint32_t nargs, args_cap;
    bool complete;       /* launches[0, n) is a whole step */
    uint32_t recordings; /* steps recorded whole */
    uint32_t misses;     /* steps that fell back part-way since the last whole replay */
    bool gave_up;
    /* The step being run. */
    enum rec_mode mode;
    uint32_t cursor, arg_cursor;
    struct {
        cl_mem mem;
        size_t size;
    } sizes[SIZES_MAX];
    uint32_t nsizes;
};

enum clt_status clt__rec_create(struct clt_device *dev, struct clt__rec **out)
{
    struct clt__rec *rec = calloc(1, sizeof *rec);
    if (!rec)
        return CLT_ERR_NO_MEMORY;
    rec->dev = dev;
    *out = rec;
    return CLT_OK;
}

void clt__rec_free(struct clt__rec *rec)
{
    if (!rec)
        return;
    for (uint32_t i = 0; i < rec->nkernels; i++)
        if (rec->launches[i].kernel)
            clReleaseKernel(rec->launches[i].kernel);
    free(rec->launches);
    free(rec->args);
    free(rec);
}

uint32_t clt__rec_recordings(const struct clt__rec *rec)
{
    return rec ? rec->recordings : 0;
}

uint32_t clt__rec_launches(const struct clt__rec *rec)
{
    uint32_t n = 0;
    for (uint32_t i = 0; rec && rec->complete && i < rec->n; i++)
        n += rec->launches[i].dims != 0;
    return n;
}

void clt__rec_begin(struct clt_device *dev, struct clt__rec *rec)
{
    dev->rec = rec;
    rec->cursor = rec->arg_cursor = 0;
    rec->nsizes = 0;
    if (rec->gave_up)
        rec->mode = REC_OFF;
    else if (rec->complete)
        rec->mode = REC_REPLAY;
    else
        rec->mode = REC_RECORD;
}

void clt__rec_end(struct clt_device *dev, bool ok)
{
    struct clt__rec *rec = dev->rec;
    dev->rec = NULL;
    if (!rec)
        return;
    if (rec->mode == REC_RECORD) {
        /* A step that failed part-way recorded part of itself: record again. */
        rec->complete = ok;
        rec->n = ok ? rec->cursor : 0;
        rec->nargs = ok ? rec->arg_cursor : 0;
        rec->recordings += ok ? 1 : 0;
    } else if (rec->mode == REC_REPLAY) {
        /* Fewer launches than recorded: the step ran something else. A failed step leaves
         * the recording as it was (what it replayed matched). */
        if (ok && rec->cursor != rec->n) {
            rec->complete = false;
            rec->misses++;
        } else if (ok) {
            rec->misses = 0;
        }
    } else if (!rec->gave_up) {
        /* Fell back part-way: a launch did not match, or could not be recorded. */
        rec->complete = false;
        rec->misses++;
    }
    if (rec->misses >= MISS_LIMIT && !rec->gave_up) {
        rec->gave_up = true;
        rec->complete = false;
        clt__log(&dev->log, CLT_LOG_WARN,
                 "a step's launches differed from their recording or could not be recorded "
                 "%u times; such steps run unrecorded from now on",
                 (unsigned)rec->misses);
    }
    rec->mode = REC_OFF;
}

cl_int clt__rec_mem_size(struct clt__rec *rec, cl_mem mem, size_t *bytes)
{
    for (uint32_t i = 0; i < rec->nsizes; i++)
        if (rec->sizes[i].mem == mem) {
            *bytes = rec->sizes[i].size;
            return CL_SUCCESS;
        }
    cl_int err = clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof *bytes, bytes, NULL);
    if (err == CL_SUCCESS && rec->nsizes < SIZES_MAX) {
        rec->sizes[rec->nsizes].mem = mem;
        rec->sizes[rec->nsizes].size = *bytes;
        rec->nsizes++;
    }
    return err;
}

/* A copy of `source` (same program, same function) with no arguments set. */
static enum clt_status copy_kernel(struct clt_device *dev, cl_kernel source, cl_kernel *out)
{
    cl_program program = NULL;
    char name[128];
    cl_int err = clGetKernelInfo(source, CL_KERNEL_PROGRAM, sizeof program, &program, NULL);
    if (err == CL_SUCCESS)
        err = clGetKernelInfo(source, CL_KERNEL_FUNCTION_NAME, sizeof name, name, NULL);
    if (err != CL_SUCCESS)
        return clt__cl_check(&dev->log, err, "clGetKernelInfo (recording a launch)");
    *out = clCreateKernel(program, name, &err);
    return clt__cl_check(&dev->log, err, "clCreateKernel (recording a launch)");
}

static bool grow(void **p, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap)
        return true;
    uint32_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, (size_t)c * size);
    if (!q)
        return false;
    memset((char *)q + (size_t)*cap * size, 0, (size_t)(c - *cap) * size);
    *p = q;
    *cap = c;
    return true;
}

/* Sets argument i of the recorded launch when it differs from what is recorded. */
static cl_int update_arg(cl_kernel k, cl_uint i, struct rec_arg *r, const struct clt__arg *a,
                         bool force)
{
    bool local = a->value == NULL;
    if (!force && r->size == a->size && r->local == local &&
        (local || memcmp(r->value, a->value, a->size) == 0))
        return CL_SUCCESS;
    cl_int err = clSetKernelArg(k, i, a->size, a->value);
    if (err == CL_SUCCESS) {
        r->size = a->size;
        r->local = local;
        if (!local)
            memcpy(r->value, a->value, a->size);
    }
    return err;
}

static bool recordable(const struct clt__arg *args, size_t nargs)
{
    for (size_t i = 0; i < nargs; i++)
        if (args[i].size > VALUE_MAX && args[i].value)
            return false;
    return true;
}

/* Records launch number rec->cursor. */
static enum clt_status record(struct clt__rec *rec, cl_kernel kernel, const struct clt__arg *args,
                              size_t nargs, cl_uint dims, const size_t *global, const size_t *local,
                              struct rec_launch **out)
{
    struct clt_device *dev = rec->dev;
    uint32_t i = rec->cursor;
    if (!grow((void **)&rec->launches, &rec->cap, i + 1, sizeof *rec->launches) ||
        !grow((void **)&rec->args, &rec->args_cap, rec->arg_cursor + (uint32_t)nargs,
              sizeof *rec->args))
        return CLT_ERR_NO_MEMORY;
    struct rec_launch *e = &rec->launches[i];
    /* The copy made when this position was last recorded is kept if it copies the same. */
    if (i < rec->nkernels && e->source != kernel && e->kernel) {
        clReleaseKernel(e->kernel);
        e->kernel = NULL;
    }
    if (i >= rec->nkernels || !e->kernel) {
        enum clt_status st = copy_kernel(dev, kernel, &e->kernel);
        if (st != CLT_OK) {
            e->kernel = NULL;
            return st;
        }
        if (i >= rec->nkernels)
            rec->nkernels = i + 1;
    }
    e->source = kernel;
    for (cl_uint d = 0; d < 3; d++) {
        e->global[d] = d < dims ? global[d] : 1;
        e->local[d] = local && d < dims ? local[d] : 0;
    }
    e->first_arg = rec->arg_cursor;
    e->nargs = (uint32_t)nargs;
    for (size_t a = 0; a < nargs; a++) {
        cl_int err =
            update_arg(e->kernel, (cl_uint)a, &rec->args[e->first_arg + a], &args[a], true);
        if (err != CL_SUCCESS) {
            clt__log(&dev->log, CLT_LOG_ERROR, "argument %zu of a kernel rejected", a);
            return clt__cl_check(&dev->log, err, "clSetKernelArg");
        }
    }
    /* Empty launches are recorded too (they enqueue nothing), so positions stay aligned. */
    e->dims = clt__launch_shape(dev, e->kernel, dims, global, local, e->g, e->l) ? dims : 0;
    rec->arg_cursor += (uint32_t)nargs;
    *out = e;
    return CLT_OK;
}

/* The recorded launch at the cursor when it is this launch; NULL otherwise. */
static struct rec_launch *match(struct clt__rec *rec, cl_kernel kernel, size_t nargs, cl_uint dims,
                                const size_t *global, const size_t *local)
{
    if (rec->cursor >= rec->n)
        return NULL;
    struct rec_launch *e = &rec->launches[rec->cursor];
    if (e->source != kernel || e->nargs != nargs || e->first_arg != rec->arg_cursor)
        return NULL;
    for (cl_uint d = 0; d < 3; d++) {
        size_t gd = d < dims ? global[d] : 1, ld = local && d < dims ? local[d] : 0;
        if (e->global[d] != gd || e->local[d] != ld)
            return NULL;
    }
    /* e->dims is 0 for a recorded empty launch; its global sizes matched, so it is one. */
    return e->dims == 0 || e->dims == dims ? e : NULL;
}

enum clt_status clt__rec_launch(struct clt_device *dev, cl_kernel kernel,
                                const struct clt__arg *args, size_t nargs, cl_uint dims,
                                const size_t *global, const size_t *local, bool *done)
{
    struct clt__rec *rec = dev->rec;
    *done = false;
    if (rec->mode == REC_OFF)
        return CLT_OK;
    if (!recordable(args, nargs)) {
        rec->mode = REC_OFF;
        rec->complete = false;
        return CLT_OK;
    }
    struct rec_launch *e = NULL;
    if (rec->mode == REC_RECORD) {
        enum clt_status st = record(rec, kernel, args, nargs, dims, global, local, &e);
        if (st != CLT_OK) {
            /* The launch still runs, on the plain path; this recording is abandoned. */
            rec->mode = REC_OFF;
            rec->gave_up = true;
            clt__log(&dev->log, CLT_LOG_WARN, "recording the step failed; it runs unrecorded");
            return CLT_OK;
        }
    } else {
        e = match(rec, kernel, nargs, dims, global, local);
        if (!e) {
            rec->mode = REC_OFF;
            rec->complete = false;
            return CLT_OK;
        }
        for (size_t a = 0; a < nargs; a++) {
            cl_int err =
                update_arg(e->kernel, (cl_uint)a, &rec->args[e->first_arg + a], &args[a], false);
            if (err != CL_SUCCESS) {
                clt__log(&dev->log, CLT_LOG_ERROR, "argument %zu of a kernel rejected", a);
                *done = true;
                return clt__cl_check(&dev->log, err, "clSetKernelArg");
            }
        }
    }
    rec->cursor++;
    rec->arg_cursor += rec->mode == REC_REPLAY ? (uint32_t)nargs : 0;
    *done = true;
    if (e->dims == 0)
        return CLT_OK;
    /* A profiled step (profile.c) keeps the launch's event, named after the launcher's kernel. */
    cl_event *ev = dev->prof ? clt__prof_event(dev, e->source, NULL) : NULL;
    cl_int err =
        clEnqueueNDRangeKernel(dev->queue, e->kernel, e->dims, NULL, e->g, e->l, 0, NULL, ev);
    return clt__cl_check(&dev->log, err, "clEnqueueNDRangeKernel");
}
