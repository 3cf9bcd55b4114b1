/*
 * arena.c: device memory. An arena is one device buffer; tensors are views into it taken by
 * a bump allocator, so a model needs a few allocations, not one per tensor.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

size_t clt__dtype_size(enum clt_dtype dtype)
{
    switch (dtype) {
    case CLT_F32:
    case CLT_I32:
        return 4;
    }
    return 0;
}

enum clt_status clt_arena_create(struct clt_device *dev, uint64_t bytes, struct clt_arena **out)
{
    if (!dev || !out || bytes == 0 || clt__device_usable(dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    if (bytes > dev->info.max_alloc_bytes) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "an arena of %llu bytes exceeds the device's largest allocation (%llu bytes)",
                 (unsigned long long)bytes, (unsigned long long)dev->info.max_alloc_bytes);
        return CLT_ERR_DEVICE_MEMORY;
    }
    struct clt_arena *a = calloc(1, sizeof *a);
    if (!a)
        return CLT_ERR_NO_MEMORY;
    cl_int err;
    a->mem = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, (size_t)bytes, NULL, &err);
    enum clt_status st = clt__cl_check(&dev->log, err, "clCreateBuffer");
    if (st != CLT_OK) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "could not allocate an arena of %llu bytes "
                 "(device memory %llu bytes)",
                 (unsigned long long)bytes, (unsigned long long)dev->info.global_mem_bytes);
        free(a);
        return st;
    }
    a->dev = dev;
    a->size = bytes;
    clt__device_hold(dev);
    *out = a;
    return CLT_OK;
}

void clt_arena_free(struct clt_arena *arena)
{
    if (!arena)
        return;
    struct clt_device *dev = arena->dev;
    clReleaseMemObject(arena->mem);
    free(arena);
    clt__device_release(dev);
}

/* Checks a shape and computes its element count; false when a dimension is not positive or
 * the count overflows. */
static bool shape_count(uint32_t ndim, const int64_t *shape, int64_t *count)
{
    if (ndim == 0 || ndim > CLT_MAX_DIMS || !shape)
        return false;
    int64_t n = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || n > INT64_MAX / shape[i])
            return false;
        n *= shape[i];
    }
    *count = n;
    return true;
}

enum clt_status clt_arena_alloc(struct clt_arena *arena, enum clt_dtype dtype, uint32_t ndim,
                                const int64_t *shape, struct clt_view *out)
{
    int64_t count;
    size_t esize = clt__dtype_size(dtype);
    if (!arena || !out || esize == 0 || !shape_count(ndim, shape, &count) ||
        (uint64_t)count > UINT64_MAX / esize)
        return CLT_ERR_INVALID_ARGUMENT;
    uint64_t align = arena->dev->info.mem_base_align_bytes;
    uint64_t start = (arena->used + align - 1) / align * align;
    uint64_t bytes = (uint64_t)count * esize;
    if (start > arena->size || bytes > arena->size - start) {
        clt__log(&arena->dev->log, CLT_LOG_ERROR,
                 "arena full: %llu bytes wanted, %llu of %llu in use", (unsigned long long)bytes,
                 (unsigned long long)arena->used, (unsigned long long)arena->size);
        return CLT_ERR_DEVICE_MEMORY;
    }
    struct clt_view v;
    memset(&v, 0, sizeof v);
    v.arena = arena;
    v.offset = start;
    v.dtype = dtype;
    v.ndim = ndim;
    memcpy(v.shape, shape, ndim * sizeof *shape);
    arena->used = start + bytes;
    *out = v;
    return CLT_OK;
}

void clt_arena_reset(struct clt_arena *arena)
{
    if (arena)
        arena->used = 0;
}

uint64_t clt_arena_used(const struct clt_arena *arena)
{
    return arena ? arena->used : 0;
}

uint64_t clt_arena_size(const struct clt_arena *arena)
{
    return arena ? arena->size : 0;
}

int64_t clt_view_count(const struct clt_view *view)
{
    int64_t n;
    if (!view || !shape_count(view->ndim, view->shape, &n))
        return 0;
    return n;
}

uint64_t clt_view_bytes(const struct clt_view *view)
{
    return view ? (uint64_t)clt_view_count(view) * clt__dtype_size(view->dtype) : 0;
}

struct clt__buf clt__view_buf(const struct clt_view *view)
{
    struct clt__buf b = {view->arena->mem, (size_t)(view->offset / clt__dtype_size(view->dtype))};
    return b;
}

/* Checks a copy request against the view and its arena. */
static enum clt_status check_copy(const struct clt_view *view, const void *host, uint64_t bytes)
{
    if (!view || !view->arena || !host || bytes == 0 ||
        clt__device_usable(view->arena->dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    uint64_t vb = clt_view_bytes(view);
    if (vb == 0 || bytes > vb || view->offset > view->arena->size ||
        vb > view->arena->size - view->offset) {
        clt__log(&view->arena->dev->log, CLT_LOG_ERROR,
                 "copy of %llu bytes does not fit the view (%llu bytes)", (unsigned long long)bytes,
                 (unsigned long long)vb);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return CLT_OK;
}

enum clt_status clt__event_wrap(struct clt_device *dev, cl_event ev, struct clt_event **out)
{
    struct clt_event *e = malloc(sizeof *e);
    if (!e) {
        clWaitForEvents(1, &ev);
        clReleaseEvent(ev);
        return CLT_ERR_NO_MEMORY;
    }
    e->event = ev;
    e->log = &dev->log;
    *out = e;
    return CLT_OK;
}

/* Enqueues one copy between a view and host memory on the compute queue: host to view when
 * `to_device`, else view to host. Blocks unless `done` is given; then *done is its event. */
static enum clt_status view_copy(const struct clt_view *view, void *host, uint64_t bytes,
                                 bool to_device, struct clt_event **done)
{
    enum clt_status st = check_copy(view, host, bytes);
    if (st != CLT_OK)
        return st;
    struct clt_device *dev = view->arena->dev;
    const cl_bool blocking = done ? CL_FALSE : CL_TRUE;
    cl_event ev = NULL;
    cl_int err;
    if (to_device)
        err = clEnqueueWriteBuffer(dev->queue, view->arena->mem, blocking, (size_t)view->offset,
                                   (size_t)bytes, host, 0, NULL, done ? &ev : NULL);
    else
        err = clEnqueueReadBuffer(dev->queue, view->arena->mem, blocking, (size_t)view->offset,
                                  (size_t)bytes, host, 0, NULL, done ? &ev : NULL);
    st = clt__cl_check(&dev->log, err, to_device ? "clEnqueueWriteBuffer" : "clEnqueueReadBuffer");
    if (st == CLT_OK && done)
        st = clt__event_wrap(dev, ev, done);
    return st;
}

enum clt_status clt_view_write(const struct clt_view *view, const void *src, uint64_t bytes,
                               struct clt_event **done)
{
    /* The cast lets one function serve both directions: a write only reads src. */
    return view_copy(view, (void *)src, bytes, true, done);
}

enum clt_status clt_view_read(const struct clt_view *view, void *dst, uint64_t bytes,
                              struct clt_event **done)
{
    return view_copy(view, dst, bytes, false, done);
}

enum clt_status clt_event_wait(struct clt_event *event)
{
    if (!event)
        return CLT_ERR_INVALID_ARGUMENT;
    cl_int err = clWaitForEvents(1, &event->event);
    if (err == CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST || err == CL_SUCCESS) {
        cl_int state = CL_COMPLETE;
        clGetEventInfo(event->event, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof state, &state, NULL);
        if (state < 0)
            err = state;
    }
    return clt__cl_check(event->log, err, "clWaitForEvents");
}

void clt_event_free(struct clt_event *event)
{
    if (!event)
        return;
    clReleaseEvent(event->event);
    free(event);
}
