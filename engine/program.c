/*
 * program.c: kernel sources, build options, and building each program once per device,
 * through the on-disk binary cache (cache.c) when it is enabled.
 *
 * A program is one file of cl/, built with cl/common.cl prepended. Kernel objects are
 * created once per device and kept in a small table.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static long find_source(const char *name)
{
    for (size_t i = 0; i < clt__cl_source_count; i++)
        if (strcmp(clt__cl_sources[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* Reads a whole file into a NUL-terminated malloc'd buffer. */
static enum clt_status read_file(const char *path, char **out, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return CLT_ERR_IO;
    enum clt_status st = CLT_OK;
    char *buf = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0)
        st = CLT_ERR_IO;
    if (st == CLT_OK) {
        buf = malloc((size_t)len + 1);
        if (!buf)
            st = CLT_ERR_NO_MEMORY;
    }
    if (st == CLT_OK && fread(buf, 1, (size_t)len, f) != (size_t)len)
        st = CLT_ERR_IO;
    fclose(f);
    if (st != CLT_OK) {
        free(buf);
        return st;
    }
    buf[len] = 0;
    *out = buf;
    *size = (size_t)len;
    return CLT_OK;
}

enum clt_status clt__source_read(const struct clt_device *dev, const char *name, char **out,
                                 size_t *size)
{
    if (dev->cl_dir[0]) {
        char path[1200];
        /* A name with an extension (shared.h) is the file's name; others are cl/<name>.cl. */
        snprintf(path, sizeof path, "%s/%s%s", dev->cl_dir, name, strchr(name, '.') ? "" : ".cl");
        enum clt_status st = read_file(path, out, size);
        if (st == CLT_ERR_IO)
            clt__log(&dev->log, CLT_LOG_ERROR, "cannot read kernel source %s", path);
        return st;
    }
    long i = find_source(name);
    if (i < 0) {
        clt__log(&dev->log, CLT_LOG_ERROR, "no kernel source named \"%s\"", name);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    char *buf = malloc(clt__cl_sources[i].size + 1);
    if (!buf)
        return CLT_ERR_NO_MEMORY;
    memcpy(buf, clt__cl_sources[i].data, clt__cl_sources[i].size);
    buf[clt__cl_sources[i].size] = 0;
    *out = buf;
    *size = clt__cl_sources[i].size;
    return CLT_OK;
}

/* Whether the driver compiles each kernel at its first launch and keeps it in a cache of its
 * own, so that a binary of ours costs more than it saves: PoCL with its kernel cache on. Asked
 * for a program's binary, PoCL first compiles every kernel of the program (each file of cl/
 * has tens, of which a model launches a few), which doubled the time to a model's first step
 * from empty caches (12 of the mlp's 25 s, docs/architecture.md); its own cache already spares
 * a later process the compiles. */
static bool driver_caches_kernels(const struct clt_device *dev)
{
    const char *pocl_cache = getenv("POCL_KERNEL_CACHE");
    return strstr(dev->info.platform, "Portable Computing Language") &&
           !(pocl_cache && strcmp(pocl_cache, "0") == 0);
}

/* Decides dev->write_binaries from clt_device_options.binaries (-1: CLTRAIN_CACHE_BINARIES
 * when it is 0 or 1, else the driver); dev->binaries_driver_off when the driver alone said no. */
static void decide_binaries(struct clt_device *dev, int32_t option)
{
    dev->write_binaries = dev->binaries_driver_off = false;
    if (!dev->cache_dir[0])
        return;
    if (option >= 0) {
        dev->write_binaries = option != 0;
        return;
    }
    const char *env = getenv("CLTRAIN_CACHE_BINARIES");
    if (env && (strcmp(env, "0") == 0 || strcmp(env, "1") == 0)) {
        dev->write_binaries = env[0] == '1';
        return;
    }
    if (env && *env)
        clt__log(&dev->log, CLT_LOG_WARN,
                 "CLTRAIN_CACHE_BINARIES=%s is neither 0 nor 1; the driver decides", env);
    dev->binaries_driver_off = driver_caches_kernels(dev);
    dev->write_binaries = !dev->binaries_driver_off;
    if (dev->binaries_driver_off)
        clt__log(&dev->log, CLT_LOG_INFO,
                 "%s compiles kernels at first launch into its own cache: program binaries are "
                 "written to ours only by clt_device_warm (CLTRAIN_CACHE_BINARIES=1: always)",
                 dev->info.platform);
}

enum clt_status clt__program_setup(struct clt_device *dev, const struct clt_device_options *o)
{
    if (clt__cl_source_count > CLT__MAX_PROGRAMS) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%zu kernel sources exceed CLT__MAX_PROGRAMS",
                 clt__cl_source_count);
        return CLT_ERR_UNSUPPORTED;
    }
    const char *cl_dir = o->cl_dir ? o->cl_dir : getenv("CLTRAIN_CL_DIR");
    if (cl_dir && *cl_dir)
        snprintf(dev->cl_dir, sizeof dev->cl_dir, "%s", cl_dir);

    int cache = o->cache;
    if (cache < 0) {
        const char *env = getenv("CLTRAIN_CACHE");
        cache = !(env && strcmp(env, "0") == 0);
    }
    if (cache) {
        const char *dir = o->cache_dir ? o->cache_dir : getenv("CLTRAIN_CACHE_DIR");
        const char *xdg = getenv("XDG_CACHE_HOME");
        const char *home = getenv("HOME");
        if (dir && *dir)
            snprintf(dev->cache_dir, sizeof dev->cache_dir, "%s", dir);
        else if (xdg && *xdg)
            snprintf(dev->cache_dir, sizeof dev->cache_dir, "%s/cltrain", xdg);
        else if (home && *home)
            snprintf(dev->cache_dir, sizeof dev->cache_dir, "%s/.cache/cltrain", home);
        if (!dev->cache_dir[0])
            clt__log(&dev->log, CLT_LOG_INFO, "no cache directory (HOME unset): cache off");
    }
    decide_binaries(dev, o->binaries);

    snprintf(dev->build_options, sizeof dev->build_options, "-cl-std=CL1.2 -w -DCLT_WG_1D=%zu",
             dev->wg_1d);
    return CLT_OK;
}

void clt__program_teardown(struct clt_device *dev)
{
    for (size_t i = 0; i < dev->kernel_count; i++)
        clReleaseKernel(dev->kernels[i].kernel);
    dev->kernel_count = 0;
    for (size_t s = 0; s < CLT__STORAGES; s++)
        for (size_t i = 0; i < CLT__K_COUNT; i++) {
            if (dev->by_id[s][i].kernel)
                clReleaseKernel(dev->by_id[s][i].kernel);
            dev->by_id[s][i].kernel = NULL;
        }
    for (size_t i = 0; i < dev->variant_count; i++) {
        struct clt__program_variant *v = &dev->variants[i];
        for (size_t j = 0; j < sizeof v->kernels / sizeof v->kernels[0]; j++)
            if (v->kernels[j])
                clReleaseKernel(v->kernels[j]);
        clReleaseProgram(v->program);
        free(v->defines);
        free(v->pending_path);
        free(v->pending_identity);
    }
    dev->variant_count = 0;
    for (size_t s = 0; s < CLT__STORAGES; s++)
        for (size_t i = 0; i < CLT__MAX_PROGRAMS; i++) {
            if (dev->programs[s][i])
                clReleaseProgram(dev->programs[s][i]);
            dev->programs[s][i] = NULL;
        }
}

enum clt_precision clt__storage_set(struct clt_device *dev, enum clt_precision storage)
{
    enum clt_precision was = dev->storage;
    dev->storage = (unsigned)storage < CLT__STORAGES ? storage : CLT_PRECISION_FP32;
    return was;
}

size_t clt__storage_bytes(const struct clt_device *dev)
{
    return dev->storage == CLT_PRECISION_FP32 ? 4 : 2;
}

const char *clt__storage_define(enum clt_precision storage)
{
    switch (storage) {
    case CLT_PRECISION_FP16:
        return "#define CLT_STORAGE 16\n";
    case CLT_PRECISION_BF16:
        return "#define CLT_STORAGE 161\n";
    case CLT_PRECISION_FP32:
        break;
    }
    return "";
}

/* The storage program idx is built for now: the device's when cl/<name>.cl uses store_t,
 * else fp32 (one build serves every storage). Reads the source once to know. */
static enum clt_status storage_of(struct clt_device *dev, long idx, enum clt_precision *out)
{
    *out = CLT_PRECISION_FP32;
    if (dev->storage == CLT_PRECISION_FP32)
        return CLT_OK;
    if (!dev->uses_storage[idx]) {
        char *text = NULL;
        size_t size = 0;
        enum clt_status st = clt__source_read(dev, clt__cl_sources[idx].name, &text, &size);
        if (st != CLT_OK)
            return st;
        dev->uses_storage[idx] = strstr(text, "store_t") ? 2 : 1;
        free(text);
    }
    if (dev->uses_storage[idx] == 2)
        *out = dev->storage;
    return CLT_OK;
}

static void log_build_failure(struct clt_device *dev, cl_program prog, const char *name,
                              const char *defines, cl_int err)
{
    size_t len = 0;
    char *text = NULL;
    if (clGetProgramBuildInfo(prog, dev->id, CL_PROGRAM_BUILD_LOG, 0, NULL, &len) == CL_SUCCESS)
        text = malloc(len + 1);
    if (text &&
        clGetProgramBuildInfo(prog, dev->id, CL_PROGRAM_BUILD_LOG, len, text, NULL) == CL_SUCCESS)
        text[len] = 0;
    else if (text)
        text[0] = 0;
    clt__log(&dev->log, CLT_LOG_ERROR,
             "building program %s.cl failed (%s) with options "
             "\"%s\"%s%s; build log:\n%s",
             name, clt__cl_error_name(err), dev->build_options, *defines ? " and defines\n" : "",
             defines, text ? text : "(unavailable)");
    free(text);
}

/* Tries to create the program from a cached binary. NULL when there is none or it is
 * rejected; a rejected entry is logged and later overwritten. */
static cl_program load_cached(struct clt_device *dev, const char *path, const char *identity)
{
    unsigned char *bin = NULL;
    size_t size = 0;
    enum clt_status st = clt__cache_load(path, identity, &bin, &size);
    if (st == CLT_ERR_FORMAT)
        clt__log(&dev->log, CLT_LOG_WARN, "cache entry %s is corrupt or foreign; rebuilding", path);
    if (st != CLT_OK)
        return NULL;
    const unsigned char *bins[1] = {bin};
    cl_int bin_status = CL_SUCCESS, err;
    cl_program prog =
        clCreateProgramWithBinary(dev->context, 1, &dev->id, &size, bins, &bin_status, &err);
    free(bin);
    if (err == CL_SUCCESS && bin_status == CL_SUCCESS)
        err = clBuildProgram(prog, 1, &dev->id, dev->build_options, NULL, NULL);
    if (err != CL_SUCCESS || bin_status != CL_SUCCESS) {
        clt__log(&dev->log, CLT_LOG_WARN,
                 "cache entry %s rejected by the driver (%s); "
                 "rebuilding",
                 path, clt__cl_error_name(err ? err : bin_status));
        if (prog)
            clReleaseProgram(prog);
        return NULL;
    }
    return prog;
}

/* Stores a built program's binary; a failure only costs a rebuild next time. */
static void store_binary(struct clt_device *dev, cl_program prog, const char *path,
                         const char *identity)
{
    if (!dev->write_binaries)
        return;
    size_t size = 0;
    cl_int err = clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL);
    if (err != CL_SUCCESS || size == 0) {
        clt__log(&dev->log, CLT_LOG_INFO, "driver gives no program binary: not cached");
        return;
    }
    unsigned char *bin = malloc(size);
    if (!bin)
        return;
    unsigned char *bins[1] = {bin};
    err = clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL);
    if (err == CL_SUCCESS && clt__mkdir_p(dev->cache_dir) == CLT_OK &&
        clt__cache_store(path, identity, bin, size) == CLT_OK)
        dev->cache_writes++;
    else
        clt__log(&dev->log, CLT_LOG_WARN, "cannot write cache entry %s; continuing without", path);
    free(bin);
}

/* The text a program is built from: `defines` (may be empty), cl/shared.h, the prelude
 * (common.cl), then the file, each followed by a newline. */
static enum clt_status full_source(struct clt_device *dev, const char *name, const char *defines,
                                   char **out, size_t *size)
{
    const char *parts[3] = {CLT__CL_SHARED, CLT__CL_PRELUDE, name};
    char *text[3] = {NULL, NULL, NULL};
    size_t len[3] = {0, 0, 0}, ndef = strlen(defines);
    enum clt_status st = CLT_OK;
    for (int i = 0; i < 3 && st == CLT_OK; i++)
        st = clt__source_read(dev, parts[i], &text[i], &len[i]);
    char *all = NULL;
    if (st == CLT_OK) {
        all = malloc(ndef + len[0] + len[1] + len[2] + 3);
        if (!all)
            st = CLT_ERR_NO_MEMORY;
    }
    if (st == CLT_OK) {
        memcpy(all, defines, ndef);
        size_t at = ndef;
        for (int i = 0; i < 3; i++) {
            memcpy(all + at, text[i], len[i]);
            at += len[i];
            all[at++] = '\n';
        }
        all[at - 1] = 0;
        *out = all;
        *size = at - 1;
    }
    for (int i = 0; i < 3; i++)
        free(text[i]);
    return st;
}

static enum clt_status build_from_source(struct clt_device *dev, const char *name,
                                         const char *defines, const char *src, size_t size,
                                         cl_program *out)
{
    cl_int err;
    const char *srcs[1] = {src};
    cl_program prog = clCreateProgramWithSource(dev->context, 1, srcs, &size, &err);
    enum clt_status st = clt__cl_check(&dev->log, err, "clCreateProgramWithSource");
    if (st != CLT_OK)
        return st;
    err = clBuildProgram(prog, 1, &dev->id, dev->build_options, NULL, NULL);
    if (err != CL_SUCCESS) {
        log_build_failure(dev, prog, name, defines, err);
        clReleaseProgram(prog);
        return CLT_ERR_BUILD;
    }
    *out = prog;
    return CLT_OK;
}

/* Builds cl/<name>.cl with `defines` prepended, through the binary cache when enabled. A
 * program built from source has its binary cached, unless `pending` is given and the device
 * defers binaries: then the entry's path and identity go to pending (NULL when there is no
 * cache) for clt__program_variant_get to write later. */
static enum clt_status build_program(struct clt_device *dev, const char *name, const char *defines,
                                     cl_program *out, struct clt__program_variant *pending)
{
    char *src = NULL, *identity = NULL;
    size_t size = 0;
    char path[1300] = "";
    cl_program prog = NULL;
    enum clt_status st = full_source(dev, name, defines, &src, &size);
    if (st == CLT_OK && dev->cache_dir[0]) {
        st = clt__cache_identity(dev, src, size, &identity);
        if (st == CLT_OK) {
            clt__cache_path(dev->cache_dir, identity, path, sizeof path);
            prog = load_cached(dev, path, identity);
            if (prog)
                dev->cache_hits++;
        }
    }
    if (st == CLT_OK && !prog) {
        st = build_from_source(dev, name, defines, src, size, &prog);
        if (st == CLT_OK && identity && pending && dev->defer_binaries) {
            pending->pending_path = strdup(path);
            pending->pending_identity = identity; /* a failed strdup: not cached, rebuilt */
            identity = NULL;
        } else if (st == CLT_OK && identity) {
            store_binary(dev, prog, path, identity);
        }
    }
    free(src);
    free(identity);
    if (st == CLT_OK)
        *out = prog;
    return st;
}

/* The program of source idx built for storage (storage_of's). */
static enum clt_status program_for(struct clt_device *dev, long idx, enum clt_precision storage,
                                   cl_program *out)
{
    if (dev->programs[storage][idx]) {
        *out = dev->programs[storage][idx];
        return CLT_OK;
    }
    cl_program prog;
    enum clt_status st =
        build_program(dev, clt__cl_sources[idx].name, clt__storage_define(storage), &prog, NULL);
    if (st != CLT_OK)
        return st;
    dev->programs[storage][idx] = prog;
    *out = prog;
    return CLT_OK;
}

enum clt_status clt__program_get(struct clt_device *dev, const char *name, cl_program *out)
{
    long idx = find_source(name);
    if (idx < 0) {
        clt__log(&dev->log, CLT_LOG_ERROR, "no kernel program named \"%s\"", name);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    enum clt_precision storage;
    enum clt_status st = storage_of(dev, idx, &storage);
    return st != CLT_OK ? st : program_for(dev, idx, storage, out);
}

enum clt_status clt__program_variant_get(struct clt_device *dev, const char *name,
                                         const char *defines, struct clt__program_variant **out)
{
    long idx = find_source(name);
    if (idx < 0) {
        clt__log(&dev->log, CLT_LOG_ERROR, "no kernel program named \"%s\"", name);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    enum clt_precision storage;
    enum clt_status st = storage_of(dev, idx, &storage);
    if (st != CLT_OK)
        return st;
    if (storage == CLT_PRECISION_FP32 && dev->storage != CLT_PRECISION_FP32 &&
        strstr(defines, "store_t"))
        storage = dev->storage; /* generated text that uses the storage */
    const char *sdef = clt__storage_define(storage);
    size_t nsdef = strlen(sdef);
    for (size_t i = 0; i < dev->variant_count; i++) {
        struct clt__program_variant *v = &dev->variants[i];
        if (strcmp(v->name, name) == 0 && strncmp(v->defines, sdef, nsdef) == 0 &&
            strcmp(v->defines + nsdef, defines) == 0) {
            if (v->pending_identity && !dev->defer_binaries) {
                if (v->pending_path)
                    store_binary(dev, v->program, v->pending_path, v->pending_identity);
                free(v->pending_path);
                free(v->pending_identity);
                v->pending_path = v->pending_identity = NULL;
            }
            *out = v;
            return CLT_OK;
        }
    }
    if (dev->variant_count == CLT__MAX_VARIANTS || strlen(name) >= sizeof dev->variants[0].name) {
        clt__log(&dev->log, CLT_LOG_ERROR, "program variant table full or name too long: %s.cl",
                 name);
        return CLT_ERR_UNSUPPORTED;
    }
    char *copy = malloc(nsdef + strlen(defines) + 1);
    if (!copy)
        return CLT_ERR_NO_MEMORY;
    memcpy(copy, sdef, nsdef);
    strcpy(copy + nsdef, defines);
    defines = copy;
    cl_program prog;
    struct clt__program_variant pending = {.pending_path = NULL, .pending_identity = NULL};
    st = build_program(dev, name, defines, &prog, &pending);
    if (st != CLT_OK) {
        free(copy);
        return st;
    }
    struct clt__program_variant *v = &dev->variants[dev->variant_count++];
    memset(v, 0, sizeof *v);
    v->pending_path = pending.pending_path;
    v->pending_identity = pending.pending_identity;
    snprintf(v->name, sizeof v->name, "%s", name);
    v->defines = copy;
    v->program = prog;
    *out = v;
    return CLT_OK;
}

enum clt_status clt__kernel_get(struct clt_device *dev, const char *program, const char *kernel,
                                cl_kernel *out, size_t *wg_size)
{
    /* A kernel with an id is kept once, in its id's slot. */
    for (int id = 0; id < CLT__K_COUNT; id++)
        if (strcmp(clt__kernel_ids[id].kernel, kernel) == 0 &&
            strcmp(clt__kernel_ids[id].program, program) == 0)
            return clt__kernel(dev, (enum clt__kernel_id)id, out, wg_size);
    long idx = find_source(program);
    if (idx < 0) {
        clt__log(&dev->log, CLT_LOG_ERROR, "no kernel program named \"%s\"", program);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    enum clt_precision storage;
    enum clt_status st = storage_of(dev, idx, &storage);
    if (st != CLT_OK)
        return st;
    for (size_t i = 0; i < dev->kernel_count; i++) {
        if (strcmp(dev->kernels[i].name, kernel) == 0 && dev->kernels[i].storage == storage) {
            *out = dev->kernels[i].kernel;
            if (wg_size)
                *wg_size = dev->kernels[i].wg_size;
            return CLT_OK;
        }
    }
    if (dev->kernel_count == CLT__MAX_KERNELS || strlen(kernel) >= sizeof dev->kernels[0].name) {
        clt__log(&dev->log, CLT_LOG_ERROR, "kernel table full or name too long: %s", kernel);
        return CLT_ERR_UNSUPPORTED;
    }
    cl_program prog;
    st = program_for(dev, idx, storage, &prog);
    if (st != CLT_OK)
        return st;
    cl_int err;
    cl_kernel k = clCreateKernel(prog, kernel, &err);
    if (err != CL_SUCCESS) {
        clt__log(&dev->log, CLT_LOG_ERROR, "kernel %s not found in %s.cl", kernel, program);
        return clt__cl_check(&dev->log, err, "clCreateKernel");
    }
    size_t wg = 0;
    err = clGetKernelWorkGroupInfo(k, dev->id, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    if (err != CL_SUCCESS || wg == 0)
        wg = 1;
    struct clt__kernel_slot *slot = &dev->kernels[dev->kernel_count++];
    snprintf(slot->name, sizeof slot->name, "%s", kernel);
    slot->storage = storage;
    slot->kernel = k;
    slot->wg_size = wg;
    *out = k;
    if (wg_size)
        *wg_size = wg;
    return CLT_OK;
}

enum clt_status clt__kernel(struct clt_device *dev, enum clt__kernel_id id, cl_kernel *out,
                            size_t *wg_size)
{
    if ((unsigned)id >= CLT__K_COUNT)
        return CLT_ERR_INVALID_ARGUMENT;
    const struct clt__kernel_name *k = &clt__kernel_ids[id];
    long idx = find_source(k->program);
    if (idx < 0)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_precision storage;
    enum clt_status st = storage_of(dev, idx, &storage);
    if (st != CLT_OK)
        return st;
    struct clt__kernel_slot *slot = &dev->by_id[storage][id];
    if (!slot->kernel) {
        cl_program prog;
        st = program_for(dev, idx, storage, &prog);
        if (st != CLT_OK)
            return st;
        cl_int err;
        cl_kernel made = clCreateKernel(prog, k->kernel, &err);
        if (err != CL_SUCCESS) {
            clt__log(&dev->log, CLT_LOG_ERROR, "kernel %s not found in %s.cl", k->kernel,
                     k->program);
            return clt__cl_check(&dev->log, err, "clCreateKernel");
        }
        size_t wg = 0;
        err = clGetKernelWorkGroupInfo(made, dev->id, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg,
                                       NULL);
        slot->wg_size = err != CL_SUCCESS || wg == 0 ? 1 : wg;
        snprintf(slot->name, sizeof slot->name, "%s", k->kernel);
        slot->kernel = made;
    }
    *out = slot->kernel;
    if (wg_size)
        *wg_size = slot->wg_size;
    return CLT_OK;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

enum clt_status clt_device_warm(struct clt_device *dev, struct clt_warm_report *report)
{
    if (clt__device_usable(dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    double t0 = now_seconds();
    uint32_t hits0 = dev->cache_hits, writes0 = dev->cache_writes, built = 0;
    enum clt_status st = CLT_OK;
    /* Compiling every kernel now is what warming asks for: a driver that would compile each at
     * its first launch (binaries_driver_off) does so when its binary is read, for the cache. */
    const bool write = dev->write_binaries;
    dev->write_binaries |= dev->binaries_driver_off;
    for (size_t i = 0; st == CLT_OK && i < clt__cl_source_count; i++) {
        if (strcmp(clt__cl_sources[i].name, CLT__CL_PRELUDE) == 0 ||
            strcmp(clt__cl_sources[i].name, CLT__CL_SHARED) == 0)
            continue;
        cl_program prog;
        st = clt__program_get(dev, clt__cl_sources[i].name, &prog);
        built++;
    }
    dev->write_binaries = write;
    if (st == CLT_OK && dev->gemm_backend == CLT_GEMM_CLBLAST) {
        struct clt_gemm_shape g = {.m = 64, .n = 64, .k = 64, .alpha = 1.0f};
        st = clt__gemm_warm(dev, &g);
    }
    if (report) {
        report->programs = built;
        report->cache_hits = dev->cache_hits - hits0;
        report->cache_writes = dev->cache_writes - writes0;
        report->seconds = now_seconds() - t0;
    }
    return st;
}
