/*
 * device.c: platforms and devices, their capability records, and opening a device
 * (context, compute queue, transfer queue).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Reads a string parameter of a device into a fixed buffer, truncating. */
static cl_int device_string(cl_device_id id, cl_device_info what, char *buf, size_t size)
{
    size_t got = 0;
    buf[0] = 0;
    cl_int err = clGetDeviceInfo(id, what, size - 1, buf, &got);
    if (err == CL_INVALID_VALUE) {
        /* Longer than the buffer: fetch it whole and keep the start. */
        err = clGetDeviceInfo(id, what, 0, NULL, &got);
        char *tmp = err == CL_SUCCESS ? malloc(got + 1) : NULL;
        if (tmp) {
            err = clGetDeviceInfo(id, what, got, tmp, NULL);
            tmp[got] = 0;
            snprintf(buf, size, "%s", tmp);
            free(tmp);
            return err;
        }
        return err ? err : CL_OUT_OF_HOST_MEMORY;
    }
    buf[size - 1] = 0;
    return err;
}

static cl_int device_value(cl_device_id id, cl_device_info what, void *out, size_t size)
{
    memset(out, 0, size);
    return clGetDeviceInfo(id, what, size, out, NULL);
}

enum clt_status clt__device_query(const struct clt_log *log, cl_platform_id platform,
                                  cl_device_id id, uint32_t platform_index, uint32_t device_index,
                                  struct clt_device_info *out)
{
    struct clt_device_info info;
    memset(&info, 0, sizeof info);
    info.platform_index = platform_index;
    info.device_index = device_index;

    cl_int err = clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof info.platform - 1,
                                   info.platform, NULL);
    if (err != CL_SUCCESS)
        snprintf(info.platform, sizeof info.platform, "platform %u", (unsigned)platform_index);

    cl_device_type type = 0;
    cl_uint cu = 0, clock = 0, align_bits = 0;
    cl_ulong gmem = 0, lmem = 0, maxalloc = 0;
    size_t wg = 0, items[3] = {0, 0, 0};
    cl_device_local_mem_type ltype = 0;
    cl_device_fp_config dfp = 0;
    char ext[4096];
    if (err == CL_SUCCESS)
        err = device_string(id, CL_DEVICE_NAME, info.name, sizeof info.name);
    if (err == CL_SUCCESS)
        err = device_string(id, CL_DEVICE_VENDOR, info.vendor, sizeof info.vendor);
    if (err == CL_SUCCESS)
        err = device_string(id, CL_DRIVER_VERSION, info.driver_version, sizeof info.driver_version);
    if (err == CL_SUCCESS)
        err = device_string(id, CL_DEVICE_VERSION, info.device_version, sizeof info.device_version);
    if (err == CL_SUCCESS)
        err = device_string(id, CL_DEVICE_OPENCL_C_VERSION, info.opencl_c_version,
                            sizeof info.opencl_c_version);
    if (err == CL_SUCCESS)
        err = device_value(id, CL_DEVICE_TYPE, &type, sizeof type);
    if (err == CL_SUCCESS)
        err = device_value(id, CL_DEVICE_MAX_COMPUTE_UNITS, &cu, sizeof cu);
    if (err == CL_SUCCESS)
        err = device_value(id, CL_DEVICE_MAX_CLOCK_FREQUENCY, &clock, sizeof clock);
    if (err == CL_SUCCESS)
        err = device_value(id, CL_DEVICE_GLOBAL_MEM_SIZE, &gmem, sizeof gmem);
    if (err == CL_SUCCESS)
        err = device_value(id, CL_DEVICE_LOCAL_MEM_SIZE, &lmem, sizeof lmem);
    if (err == CL_SUCCESS)
        err = device_value(id, CL_DEVICE_LOCAL_MEM_TYPE, &ltype, sizeof ltype);
    if (err == CL_SUCCESS)
        err = device_value(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, &maxalloc, sizeof maxalloc);
    if (err == CL_SUCCESS)
        err = device_value(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, &wg, sizeof wg);
    if (err == CL_SUCCESS)
        err = device_value(id, CL_DEVICE_MAX_WORK_ITEM_SIZES, items, sizeof items);
    if (err == CL_SUCCESS)
        err = device_value(id, CL_DEVICE_MEM_BASE_ADDR_ALIGN, &align_bits, sizeof align_bits);
    if (err == CL_SUCCESS)
        err = device_string(id, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
    if (err != CL_SUCCESS)
        return clt__cl_check(log, err, "clGetDeviceInfo");
    /* Optional in OpenCL 1.2 without cl_khr_fp64: an error here only means "no doubles". */
    device_value(id, CL_DEVICE_DOUBLE_FP_CONFIG, &dfp, sizeof dfp);

    if (type & CL_DEVICE_TYPE_GPU)
        info.type = CLT_DEVICE_GPU;
    else if (type & CL_DEVICE_TYPE_CPU)
        info.type = CLT_DEVICE_CPU;
    else if (type & CL_DEVICE_TYPE_ACCELERATOR)
        info.type = CLT_DEVICE_ACCELERATOR;
    info.compute_units = cu;
    info.clock_mhz = clock;
    info.global_mem_bytes = gmem;
    info.local_mem_bytes = lmem;
    info.max_alloc_bytes = maxalloc;
    info.max_work_group_size = wg;
    for (int i = 0; i < 3; i++)
        info.max_work_item_sizes[i] = items[i];
    info.mem_base_align_bytes = align_bits / 8 ? align_bits / 8 : 128;
    info.local_mem_is_local = ltype == CL_LOCAL;
    info.has_fp16 = strstr(ext, "cl_khr_fp16") != NULL;
    info.has_fp64 = strstr(ext, "cl_khr_fp64") != NULL || dfp != 0;
    *out = info;
    return CLT_OK;
}

/* Calls fn for every device of every platform, in platform then device order. Platforms
 * that answer CL_DEVICE_NOT_FOUND, or fail to list devices, are skipped. */
typedef enum clt_status (*visit_fn)(void *ctx, cl_platform_id p, cl_device_id d, uint32_t pi,
                                    uint32_t di);

static enum clt_status visit_devices(const struct clt_log *log, visit_fn fn, void *ctx)
{
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR: no ICD installed */ || np == 0)
        return CLT_OK;
    if (err != CL_SUCCESS)
        return clt__cl_check(log, err, "clGetPlatformIDs");
    cl_platform_id *plats = calloc(np, sizeof *plats);
    if (!plats)
        return CLT_ERR_NO_MEMORY;
    enum clt_status st = clt__cl_check(log, clGetPlatformIDs(np, plats, NULL), "clGetPlatformIDs");
    for (cl_uint p = 0; st == CLT_OK && p < np; p++) {
        cl_uint nd = 0;
        err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
        if (err != CL_SUCCESS || nd == 0) {
            if (err != CL_DEVICE_NOT_FOUND && err != CL_SUCCESS)
                clt__log(log, CLT_LOG_INFO, "platform %u skipped: clGetDeviceIDs: %s", (unsigned)p,
                         clt__cl_error_name(err));
            continue;
        }
        cl_device_id *devs = calloc(nd, sizeof *devs);
        if (!devs) {
            st = CLT_ERR_NO_MEMORY;
            break;
        }
        err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL);
        for (cl_uint d = 0; err == CL_SUCCESS && st == CLT_OK && d < nd; d++)
            st = fn(ctx, plats[p], devs[d], p, d);
        free(devs);
    }
    free(plats);
    return st;
}

struct list_ctx {
    const struct clt_log *log;
    struct clt_device_info *items;
    size_t count, cap;
};

static enum clt_status list_one(void *vctx, cl_platform_id p, cl_device_id d, uint32_t pi,
                                uint32_t di)
{
    struct list_ctx *ctx = vctx;
    if (ctx->count == ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap * 2 : 4;
        struct clt_device_info *items = realloc(ctx->items, cap * sizeof *items);
        if (!items)
            return CLT_ERR_NO_MEMORY;
        ctx->items = items;
        ctx->cap = cap;
    }
    enum clt_status st = clt__device_query(ctx->log, p, d, pi, di, &ctx->items[ctx->count]);
    if (st == CLT_OK)
        ctx->count++;
    else
        clt__log(ctx->log, CLT_LOG_WARN, "device %u:%u skipped: its properties cannot be read",
                 (unsigned)pi, (unsigned)di);
    return st == CLT_ERR_NO_MEMORY ? st : CLT_OK;
}

enum clt_status clt_devices_list(const struct clt_log *log, struct clt_device_info **out,
                                 size_t *count)
{
    if (!out || !count)
        return CLT_ERR_INVALID_ARGUMENT;
    struct list_ctx ctx = {.log = log};
    enum clt_status st = visit_devices(log, list_one, &ctx);
    if (st != CLT_OK) {
        free(ctx.items);
        return st;
    }
    *out = ctx.items;
    *count = ctx.count;
    return CLT_OK;
}

void clt_devices_free(struct clt_device_info *list)
{
    free(list);
}

/* Finds the platform and device handles of a listed device again. */
struct find_ctx {
    uint32_t pi, di;
    cl_platform_id platform;
    cl_device_id device;
};

static enum clt_status find_one(void *vctx, cl_platform_id p, cl_device_id d, uint32_t pi,
                                uint32_t di)
{
    struct find_ctx *ctx = vctx;
    if (pi == ctx->pi && di == ctx->di) {
        ctx->platform = p;
        ctx->device = d;
    }
    return CLT_OK;
}

void clt_device_options_init(struct clt_device_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->log.max_level = CLT_LOG_WARN;
    o->cache = -1;
    o->binaries = -1;
    o->gemm = CLT_GEMM_AUTO;
}

/* The largest power of two <= limit and <= 256. */
static size_t pow2_floor(size_t limit)
{
    size_t p = 1;
    while (p * 2 <= limit && p * 2 <= 256)
        p *= 2;
    return p;
}

static enum clt_status create_queues(struct clt_device *dev, bool profiling)
{
    cl_int err;
    cl_command_queue_properties props = profiling ? CL_QUEUE_PROFILING_ENABLE : 0;
    dev->profiling = profiling;
    dev->context = clCreateContext(NULL, 1, &dev->id, NULL, NULL, &err);
    enum clt_status st = clt__cl_check(&dev->log, err, "clCreateContext");
    if (st == CLT_OK) {
        dev->queue = clCreateCommandQueue(dev->context, dev->id, props, &err);
        st = clt__cl_check(&dev->log, err, "clCreateCommandQueue");
    }
    if (st == CLT_OK) {
        dev->transfer = clCreateCommandQueue(dev->context, dev->id, props, &err);
        st = clt__cl_check(&dev->log, err, "clCreateCommandQueue");
    }
    return st;
}

enum clt_status clt_device_open(const char *selection, const struct clt_device_options *options,
                                struct clt_device **out)
{
    if (!out)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt_device_options defaults;
    clt_device_options_init(&defaults);
    const struct clt_device_options *o = options ? options : &defaults;
    if (!selection)
        selection = getenv("CLTRAIN_DEVICE");

    struct clt_device_info *list = NULL;
    size_t count = 0, index = 0;
    enum clt_status st = clt_devices_list(&o->log, &list, &count);
    if (st != CLT_OK)
        return st;
    st = clt_device_select(list, count, selection, &index);
    if (st != CLT_OK) {
        if (count == 0)
            clt__log(&o->log, CLT_LOG_ERROR, "no OpenCL device found (is an ICD installed?)");
        else
            clt__log(&o->log, CLT_LOG_ERROR,
                     "no device matches \"%s\" (%zu devices; see "
                     "`cltrain devices`)",
                     selection ? selection : "", count);
        clt_devices_free(list);
        return st;
    }

    struct clt_device *dev = calloc(1, sizeof *dev);
    if (!dev) {
        clt_devices_free(list);
        return CLT_ERR_NO_MEMORY;
    }
    dev->info = list[index];
    dev->log = o->log;
    clt_devices_free(list);

    struct find_ctx find = {.pi = dev->info.platform_index, .di = dev->info.device_index};
    st = visit_devices(&dev->log, find_one, &find);
    if (st == CLT_OK && !find.device)
        st = CLT_ERR_NO_DEVICE;
    dev->platform = find.platform;
    dev->id = find.device;
    dev->wg_1d = pow2_floor(dev->info.max_work_group_size ? dev->info.max_work_group_size : 1);
    if (st == CLT_OK)
        st = create_queues(dev, o->profiling);
    if (st == CLT_OK)
        st = clt__program_setup(dev, o);
    if (st == CLT_OK)
        st = clt__gemm_setup(dev, o);
    if (st != CLT_OK) {
        clt_device_close(dev);
        return st;
    }
    clt__log(&dev->log, CLT_LOG_INFO, "opened %u:%u %s / %s", (unsigned)dev->info.platform_index,
             (unsigned)dev->info.device_index, dev->info.platform, dev->info.name);
    *out = dev;
    return CLT_OK;
}

/* Frees everything of a device. */
static void destroy(struct clt_device *dev)
{
    clt__gemm_teardown(dev);
    clt__program_teardown(dev);
    if (dev->transfer)
        clReleaseCommandQueue(dev->transfer);
    if (dev->queue)
        clReleaseCommandQueue(dev->queue);
    if (dev->context)
        clReleaseContext(dev->context);
    free(dev);
}

void clt_device_close(struct clt_device *dev)
{
    if (!dev || dev->closed)
        return;
    if (dev->queue)
        clFinish(dev->queue);
    if (dev->transfer)
        clFinish(dev->transfer);
    if (dev->children > 0) {
        clt__log(&dev->log, CLT_LOG_WARN,
                 "device %s closed while %u arenas or trainers use it: they fail from now on, "
                 "and the device is freed with the last of them",
                 dev->info.name, (unsigned)dev->children);
        dev->closed = true;
        return;
    }
    destroy(dev);
}

void clt__device_hold(struct clt_device *dev)
{
    dev->children++;
}

void clt__device_release(struct clt_device *dev)
{
    if (--dev->children == 0 && dev->closed)
        destroy(dev);
}

enum clt_status clt__device_usable(const struct clt_device *dev)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    if (dev->closed) {
        clt__log(&dev->log, CLT_LOG_ERROR, "device %s was closed", dev->info.name);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return CLT_OK;
}

const struct clt_device_info *clt_device_info(const struct clt_device *dev)
{
    return dev ? &dev->info : NULL;
}

enum clt_status clt_device_finish(struct clt_device *dev)
{
    enum clt_status st = clt__device_usable(dev);
    if (st != CLT_OK)
        return st;
    st = clt__cl_check(&dev->log, clFinish(dev->transfer), "clFinish");
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log, clFinish(dev->queue), "clFinish");
    return st;
}
