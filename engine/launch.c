/*
 * launch.c: setting kernel arguments and choosing launch shapes from the device's limits and
 * each kernel's CL_KERNEL_WORK_GROUP_SIZE; the one launch path (clt__launch_kernel), which a
 * recorded step (record.c) takes over.
 */
#include <string.h>

#include "internal.h"

enum clt_status clt__set_args(struct clt_device *dev, cl_kernel kernel, const struct clt__arg *args,
                              size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cl_int err = clSetKernelArg(kernel, (cl_uint)i, args[i].size, args[i].value);
        if (err != CL_SUCCESS) {
            clt__log(&dev->log, CLT_LOG_ERROR, "argument %zu of a kernel rejected", i);
            return clt__cl_check(&dev->log, err, "clSetKernelArg");
        }
    }
    return CLT_OK;
}

static size_t kernel_wg(struct clt_device *dev, cl_kernel kernel)
{
    size_t wg = 0;
    if (clGetKernelWorkGroupInfo(kernel, dev->id, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg,
                                 NULL) != CL_SUCCESS ||
        wg == 0)
        wg = 1;
    return wg;
}

static size_t pow2_at_most(size_t limit)
{
    size_t p = 1;
    while (p * 2 <= limit)
        p *= 2;
    return p;
}

/* Chooses a local shape within the kernel's and device's limits. */
static void choose_local(struct clt_device *dev, cl_kernel kernel, cl_uint dims, size_t *local)
{
    size_t wg = kernel_wg(dev, kernel);
    if (wg > dev->wg_1d)
        wg = dev->wg_1d;
    if (dims == 1) {
        size_t l = pow2_at_most(wg);
        if (l > dev->info.max_work_item_sizes[0])
            l = pow2_at_most((size_t)dev->info.max_work_item_sizes[0]);
        local[0] = l;
        return;
    }
    /* 2-D and 3-D: split the budget between the first two dimensions, x first. */
    size_t x = 1, y = 1;
    while (x * y * 2 <= wg) {
        if (x <= y && x * 2 <= dev->info.max_work_item_sizes[0])
            x *= 2;
        else if (y * 2 <= dev->info.max_work_item_sizes[1])
            y *= 2;
        else
            break;
    }
    local[0] = x;
    local[1] = y;
    if (dims == 3)
        local[2] = 1;
}

bool clt__launch_shape(struct clt_device *dev, cl_kernel kernel, cl_uint dims, const size_t *global,
                       const size_t *local, size_t g[3], size_t l[3])
{
    for (int d = 0; d < 3; d++)
        g[d] = l[d] = 1;
    if (local)
        memcpy(l, local, dims * sizeof *l);
    else
        choose_local(dev, kernel, dims, l);
    for (cl_uint d = 0; d < dims; d++) {
        if (global[d] == 0)
            return false;
        g[d] = (global[d] + l[d] - 1) / l[d] * l[d];
    }
    return true;
}

enum clt_status clt__launch(struct clt_device *dev, cl_kernel kernel, cl_uint dims,
                            const size_t *global, const size_t *local)
{
    size_t l[3], g[3];
    if (dims < 1 || dims > 3)
        return CLT_ERR_INVALID_ARGUMENT;
    if (!clt__launch_shape(dev, kernel, dims, global, local, g, l))
        return CLT_OK;
    cl_event *ev = dev->prof ? clt__prof_event(dev, kernel, NULL) : NULL;
    cl_int err = clEnqueueNDRangeKernel(dev->queue, kernel, dims, NULL, g, l, 0, NULL, ev);
    return clt__cl_check(&dev->log, err, "clEnqueueNDRangeKernel");
}

enum clt_status clt__launch_kernel(struct clt_device *dev, cl_kernel kernel,
                                   const struct clt__arg *args, size_t nargs, cl_uint dims,
                                   const size_t *global, const size_t *local)
{
    if (dims < 1 || dims > 3)
        return CLT_ERR_INVALID_ARGUMENT;
    if (dev->rec) {
        bool done = false;
        enum clt_status st = clt__rec_launch(dev, kernel, args, nargs, dims, global, local, &done);
        if (done || st != CLT_OK)
            return st;
    }
    enum clt_status st = clt__set_args(dev, kernel, args, nargs);
    return st == CLT_OK ? clt__launch(dev, kernel, dims, global, local) : st;
}

/* Most kernel arguments one launch of clt__enqueue sets (a tensor counts two). */
#define MAX_ARGS 64

/* Sets up raw arguments from a karg list: a tensor becomes its buffer and its int offset
 * (kept in offs). */
static enum clt_status raw_args(struct clt_device *dev, const char *name,
                                const struct clt__karg *args, size_t nargs, struct clt__arg *raw,
                                cl_int *offs, size_t *nraw)
{
    size_t n = 0;
    for (size_t i = 0; i < nargs; i++) {
        const struct clt__karg *a = &args[i];
        if (n + 2 > MAX_ARGS) {
            clt__log(&dev->log, CLT_LOG_ERROR, "kernel %s: more than %d arguments", name, MAX_ARGS);
            return CLT_ERR_INVALID_ARGUMENT;
        }
        if (a->kind == CLT__KARG_I32) {
            raw[n++] = (struct clt__arg){sizeof a->v.i, &a->v.i};
        } else if (a->kind == CLT__KARG_U32) {
            raw[n++] = (struct clt__arg){sizeof a->v.u, &a->v.u};
        } else if (a->kind == CLT__KARG_F32) {
            raw[n++] = (struct clt__arg){sizeof a->v.f, &a->v.f};
        } else if (a->kind == CLT__KARG_LOCAL) {
            raw[n++] = (struct clt__arg){a->v.bytes, NULL};
        } else {
            offs[i] = (cl_int)a->v.b.offset;
            raw[n++] = (struct clt__arg){sizeof a->v.b.mem, &a->v.b.mem};
            raw[n++] = (struct clt__arg){sizeof offs[i], &offs[i]};
        }
    }
    *nraw = n;
    return CLT_OK;
}

/* Turns args into raw kernel arguments and launches k through clt__launch_kernel. */
static enum clt_status launch_args(struct clt_device *dev, cl_kernel k, const char *name,
                                   const struct clt__karg *args, size_t nargs, cl_uint dims,
                                   const size_t *global, const size_t *local)
{
    struct clt__arg raw[MAX_ARGS];
    cl_int offs[MAX_ARGS];
    size_t nraw = 0;
    enum clt_status st = raw_args(dev, name, args, nargs, raw, offs, &nraw);
    if (st == CLT_OK)
        st = clt__launch_kernel(dev, k, raw, nraw, dims, global, local);
    return st;
}

/* Enqueues a kernel whose work-group limit is wg over `items` work-items. */
static enum clt_status enqueue_1d(struct clt_device *dev, cl_kernel k, size_t wg, const char *name,
                                  size_t items, size_t local, const struct clt__karg *args,
                                  size_t nargs)
{
    if (local > wg) {
        clt__log(&dev->log, CLT_LOG_ERROR, "work group %zu is beyond %s's limit %zu", local, name,
                 wg);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return launch_args(dev, k, name, args, nargs, 1, &items, local ? &local : NULL);
}

enum clt_status clt__enqueue(struct clt_device *dev, enum clt__kernel_id id, size_t items,
                             size_t local, const struct clt__karg *args, size_t nargs)
{
    if (items == 0)
        return CLT_OK;
    cl_kernel k;
    size_t wg = 0;
    enum clt_status st = clt__kernel(dev, id, &k, &wg);
    if (st != CLT_OK)
        return st;
    return enqueue_1d(dev, k, wg, clt__kernel_ids[id].kernel, items, local, args, nargs);
}

enum clt_status clt__enqueue_kernel(struct clt_device *dev, cl_kernel kernel, const char *name,
                                    size_t items, size_t local, const struct clt__karg *args,
                                    size_t nargs)
{
    if (items == 0)
        return CLT_OK;
    size_t wg = local ? kernel_wg(dev, kernel) : 0;
    return enqueue_1d(dev, kernel, wg, name, items, local, args, nargs);
}

/* The local size of dimension 0 of an ND launch at most: 32 adjacent work-items (two AVX-512
 * vectors on PoCL, a warp on NVIDIA), the other dimensions filling the rest of the group. */
#define ND_LOCAL_X 32
#define ND_MIN_GROUPS 64

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p *= 2;
    return p;
}

/* Launches k (work-group limit wg) over an ND range with the local shape clt__enqueue_nd
 * describes. */
static enum clt_status enqueue_nd(struct clt_device *dev, cl_kernel k, size_t wg, const char *name,
                                  cl_uint dims, const size_t *global, const struct clt__karg *args,
                                  size_t nargs)
{
    /* Powers of two, so that few local shapes occur (PoCL compiles a kernel per shape); and
     * at least ND_MIN_GROUPS groups where there are enough work-items (PoCL runs a group on
     * one thread: one large group would leave the other cores idle). */
    size_t total = 1;
    for (cl_uint d = 0; d < dims; d++)
        total *= global[d];
    size_t budget = pow2_at_most(wg < dev->wg_1d ? wg : dev->wg_1d), local[3] = {1, 1, 1};
    if (budget > total / ND_MIN_GROUPS)
        budget = pow2_at_most(total / ND_MIN_GROUPS > 1 ? total / ND_MIN_GROUPS : 1);
    for (cl_uint d = 0; d < dims; d++) {
        size_t cap = d == 0 && budget > ND_LOCAL_X ? ND_LOCAL_X : budget;
        if (dev->info.max_work_item_sizes[d] && cap > dev->info.max_work_item_sizes[d])
            cap = pow2_at_most((size_t)dev->info.max_work_item_sizes[d]);
        local[d] = pow2_at_least(global[d]) < cap ? pow2_at_least(global[d]) : cap;
        budget /= local[d];
    }
    return launch_args(dev, k, name, args, nargs, dims, global, local);
}

/* Whether an ND launch has work: dims valid (else *st is set) and no dimension 0. */
static bool nd_work(cl_uint dims, const size_t *global, enum clt_status *st)
{
    *st = dims < 1 || dims > 3 ? CLT_ERR_INVALID_ARGUMENT : CLT_OK;
    for (cl_uint d = 0; *st == CLT_OK && d < dims; d++)
        if (global[d] == 0)
            return false;
    return *st == CLT_OK;
}

enum clt_status clt__enqueue_nd(struct clt_device *dev, enum clt__kernel_id id, cl_uint dims,
                                const size_t *global, const struct clt__karg *args, size_t nargs)
{
    enum clt_status st;
    if (!nd_work(dims, global, &st))
        return st;
    cl_kernel k;
    size_t wg = 0;
    st = clt__kernel(dev, id, &k, &wg);
    if (st != CLT_OK)
        return st;
    return enqueue_nd(dev, k, wg, clt__kernel_ids[id].kernel, dims, global, args, nargs);
}

enum clt_status clt__enqueue_kernel_nd(struct clt_device *dev, cl_kernel kernel, const char *name,
                                       cl_uint dims, const size_t *global,
                                       const struct clt__karg *args, size_t nargs)
{
    enum clt_status st;
    if (!nd_work(dims, global, &st))
        return st;
    return enqueue_nd(dev, kernel, kernel_wg(dev, kernel), name, dims, global, args, nargs);
}

size_t clt__row_lanes(const struct clt_device *dev, int64_t len)
{
    size_t lanes = 1;
    if (dev->info.type != CLT_DEVICE_CPU)
        while (lanes < 32 && (int64_t)lanes < len)
            lanes *= 2;
    /* At most CLT__ROW_STEPS elements per lane (llvmpipe ends longer loops). */
    while ((int64_t)lanes * CLT__ROW_STEPS < len)
        lanes *= 2;
    return lanes;
}

enum clt_status clt__check_i32(struct clt_device *dev, int64_t v, const char *what)
{
    if (v >= 0 && v <= INT32_MAX)
        return CLT_OK;
    clt__log(&dev->log, CLT_LOG_ERROR, "%s = %lld is outside 0..2^31-1", what, (long long)v);
    return CLT_ERR_INVALID_ARGUMENT;
}

enum clt_status clt__check_buf(struct clt_device *dev, struct clt__buf b, int64_t count,
                               size_t elem_size, const char *op, const char *what)
{
    if (!b.mem) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: %s is NULL", op, what);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if (count < 0) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: %s has a negative element count %lld", op, what,
                 (long long)count);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if (b.offset > INT32_MAX || count > INT32_MAX - (int64_t)b.offset) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "%s: %s (offset %zu, %lld elements) ends beyond element 2^31 - 1 of its buffer",
                 op, what, b.offset, (long long)count);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    size_t bytes = 0;
    cl_int err = dev->rec ? clt__rec_mem_size(dev->rec, b.mem, &bytes)
                          : clGetMemObjectInfo(b.mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    if (err != CL_SUCCESS) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: %s is not a buffer", op, what);
        return clt__cl_check(&dev->log, err, "clGetMemObjectInfo (CL_MEM_SIZE)");
    }
    /* offset + count < 2^31, so the product fits 64 bits for any element size. */
    if (((uint64_t)b.offset + (uint64_t)count) * elem_size > bytes) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "%s: %s (offset %zu, %lld elements of %zu bytes) does not fit its buffer of "
                 "%zu bytes",
                 op, what, b.offset, (long long)count, elem_size, bytes);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return CLT_OK;
}
