/*
 * internal.h: what the engine's modules share and nothing outside the library sees.
 *
 * Names: public clt_, internal non-static clt__, static no prefix. Tests link the static
 * library and may call clt__ functions directly.
 */
#ifndef CLTRAIN_INTERNAL_H
#define CLTRAIN_INTERNAL_H

#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>

#include <stdarg.h>
#include <stdio.h>

#include "cltrain.h"

/* ==== status.c: logging and OpenCL errors =============================================== */

/* Sends one message to the log (printf-style). log NULL means stderr at WARN. */
void clt__log(const struct clt_log *log, enum clt_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The name of an OpenCL error code ("CL_OUT_OF_RESOURCES"), or "CL_ERROR(<n>)". */
const char *clt__cl_error_name(cl_int err);

/* CLT_OK for CL_SUCCESS; otherwise logs "<call> failed: <name>" at ERROR and returns the
 * matching status (CLT_ERR_DEVICE_MEMORY for allocation failures, else CLT_ERR_OPENCL). */
enum clt_status clt__cl_check(const struct clt_log *log, cl_int err, const char *call);

/* ==== hash.c ============================================================================ */

/* 64-bit FNV-1a over bytes, continuing from `seed` (use CLT__FNV_SEED to start). */
#define CLT__FNV_SEED 0xcbf29ce484222325ULL
uint64_t clt__hash64(uint64_t seed, const void *data, size_t size);

/* ==== Kernel sources (generated at build time from the files of cl/) =================== */

struct clt__cl_source {
    const char *name; /* file name without ".cl" */
    const unsigned char *data;
    size_t size;
};
extern const struct clt__cl_source clt__cl_sources[];
extern const size_t clt__cl_source_count;

/* The source file prepended to every program (cl/common.cl). */
#define CLT__CL_PRELUDE "common"
/* cl/shared.h, prepended before the prelude (what C and OpenCL C agree on). */
#define CLT__CL_SHARED "shared.h"

/* ==== device.c ========================================================================== */

/* Most programs one device keeps (one per cl/ file). */
#define CLT__MAX_PROGRAMS 48
/* Most kernel objects one device keeps. */
#define CLT__MAX_KERNELS 256

struct clt__kernel_slot {
    char name[64];
    enum clt_precision storage; /* the build it comes from (clt__kernel_get's table) */
    cl_kernel kernel;
    size_t wg_size; /* CL_KERNEL_WORK_GROUP_SIZE for this device */
};

/* The kernels of cl/ by id (generated from cl/ at build time: CLT__K_<kernel>). */
#include "cl_kernels.h"

/* Storages a program can be built for: enum clt_precision's values. */
#define CLT__STORAGES 3

/* Most program variants (a program built with extra #defines or generated text: GEMM
 * configurations, one per transpose pair and storage; fused chains) one device keeps. */
#define CLT__MAX_VARIANTS 512

/* One variant of a program: cl/<name>.cl with `defines` prepended (any source text: GEMM's
 * tunables, a fused chain's generated kernels). Its kernels are created by the module that
 * asked for it (slots indexed as that module chooses) and released with the program in
 * clt__program_teardown, which frees `defines` too. */
struct clt__program_variant {
    char name[32];
    char *defines;
    cl_program program;
    cl_kernel kernels[5];
    /* Built while binaries were deferred (clt_device.defer_binaries) and not cached yet: the
     * cache entry's path and identity, freed once it is written; NULL otherwise. */
    char *pending_path;
    char *pending_identity;
};

struct clt_device {
    struct clt_device_info info;
    struct clt_log log;
    cl_platform_id platform;
    cl_device_id id;
    cl_context context;
    cl_command_queue queue;    /* compute: kernels, GEMM, in-order */
    cl_command_queue transfer; /* host <-> device copies that overlap compute */
    bool profiling;            /* queues made with CL_QUEUE_PROFILING_ENABLE */
    uint32_t children;         /* arenas and trainers alive on this device */
    bool closed;               /* clt_device_close was called while children lived */

    /* program.c */
    char cache_dir[1024]; /* empty: cache disabled */
    char cl_dir[1024];    /* empty: embedded sources */
    char build_options[256];
    /* Storage of the op kernels launched now (CLT_STORAGE, cl/common.cl): every program that
     * uses store_t is built once per storage it is asked in; the others once. Set around a
     * 16-bit trainer's forward and backward (clt__storage_set); fp32 otherwise. */
    enum clt_precision storage;
    /* Whether cl/<name>.cl uses store_t, by source index: 0 not known yet, 1 no, 2 yes. */
    uint8_t uses_storage[CLT__MAX_PROGRAMS];
    /* [storage][source index]; NULL: not built */
    cl_program programs[CLT__STORAGES][CLT__MAX_PROGRAMS];
    struct clt__kernel_slot kernels[CLT__MAX_KERNELS]; /* by name: GEMM's generated kernels */
    size_t kernel_count;
    struct clt__kernel_slot by_id[CLT__STORAGES][CLT__K_COUNT]; /* NULL: not created yet */
    struct clt__program_variant variants[CLT__MAX_VARIANTS];
    size_t variant_count;
    uint32_t cache_hits;
    uint32_t cache_writes;
    bool write_binaries;      /* clt_device_options.binaries, decided (program.c) */
    bool binaries_driver_off; /* write_binaries is false only because the driver caches kernels */
    /* Set while the GEMM tuner times candidates (tune.c): a program variant built then is not
     * written to the cache (on PoCL reading a binary compiles every kernel of the program
     * again, about 2 s a candidate) until it is asked for again with this unset, as the
     * configurations the tuner chooses are. */
    bool defer_binaries;

    /* gemm.c */
    enum clt_gemm_backend gemm_backend; /* CLBLAST or OWN, never AUTO */
    bool gemm_may_fall_back;
    cl_mem gemm_temp;
    size_t gemm_temp_bytes;
    cl_mem gemm_wide; /* 16-bit storage: A, B and C widened to fp32 (clt__gemm_widened) */
    size_t gemm_wide_bytes;
    cl_mem gemm_split; /* gemm_own.c: split-K's fp32 partial products */
    size_t gemm_split_bytes;
    bool gemm_host;         /* gemm_host.c: the host's BLAS runs as a native kernel here */
    struct clt__tune *tune; /* tune.c: the GEMM choices of this device; NULL: not tuning */

    /* Largest 1-D work-group size that suits every simple kernel on this device: a power of
     * two, at most 256 and at most the device limit. */
    size_t wg_1d;

    /* record.c: the recording a trainer's step is running under; NULL outside a step. */
    struct clt__rec *rec;

    /* profile.c: the kernel profile a trainer's step is running under; NULL when off. */
    struct clt__prof *prof;
};

/* Arenas and trainers hold their device: closing a device whose children live only marks it
 * closed (their calls then fail) and the last child's release frees it. */
void clt__device_hold(struct clt_device *dev);
void clt__device_release(struct clt_device *dev);

/* CLT_OK for an open device; CLT_ERR_INVALID_ARGUMENT, logged, for NULL or a closed one. */
enum clt_status clt__device_usable(const struct clt_device *dev);

/* Reads a device's record (no context needed). */
enum clt_status clt__device_query(const struct clt_log *log, cl_platform_id platform,
                                  cl_device_id id, uint32_t platform_index, uint32_t device_index,
                                  struct clt_device_info *out);

/* ==== program.c: building and caching programs ========================================== */

/* Chooses the cache directory and build options for a freshly opened device. */
enum clt_status clt__program_setup(struct clt_device *dev, const struct clt_device_options *o);

/* Releases every program and kernel of the device. */
void clt__program_teardown(struct clt_device *dev);

/* The storage op kernels use from now on (dev->storage); returns the one it replaces, for
 * the caller to put back. */
enum clt_precision clt__storage_set(struct clt_device *dev, enum clt_precision storage);

/* Bytes of one element of a tensor in the current storage: 4 (fp32) or 2 (fp16, bf16).
 * Launchers check the buffers of store_t arguments with it (clt__check_buf). */
size_t clt__storage_bytes(const struct clt_device *dev);

/* The "#define CLT_STORAGE v" line of a storage ("" for fp32). */
const char *clt__storage_define(enum clt_precision storage);

/* The built program made from cl/<name>.cl, building it (or loading it from the cache) on
 * first use: in the current storage when the file uses store_t, else the one build. */
enum clt_status clt__program_get(struct clt_device *dev, const char *name, cl_program *out);

/* The variant of cl/<name>.cl built with `defines` (lines of "#define X v") prepended to its
 * source, and the current storage's define when the file uses store_t, built (or loaded from the
 * binary cache, whose identity covers the defines) on first use and kept for the device's life. */
enum clt_status clt__program_variant_get(struct clt_device *dev, const char *name,
                                         const char *defines, struct clt__program_variant **out);

/* The kernel `kernel` of program cl/<program>.cl, created once per device and kept (a kernel
 * with an id is the same object clt__kernel gives). Its arguments are whatever the last
 * launcher set; a launcher sets them all. For kernels without an id (GEMM's, built with
 * per-configuration names) and for tests; launchers of ops use clt__kernel. */
enum clt_status clt__kernel_get(struct clt_device *dev, const char *program, const char *kernel,
                                cl_kernel *out, size_t *wg_size);

/* The kernel of an id, created on first use on this device (building its program then) and
 * kept: a launch looks no name up. */
enum clt_status clt__kernel(struct clt_device *dev, enum clt__kernel_id id, cl_kernel *out,
                            size_t *wg_size);

/* Reads a source file's text: cl/<name>.cl from dev->cl_dir when set, else the embedded copy.
 * *out is malloc'd and NUL-terminated; the caller frees it. */
enum clt_status clt__source_read(const struct clt_device *dev, const char *name, char **out,
                                 size_t *size);

/* ==== cache.c: the on-disk binary cache (format in docs/formats.md) ===================== */

/* The identity text that keys a program binary: library version, platform, device, driver,
 * build options and a hash of the full source. *out is malloc'd. */
enum clt_status clt__cache_identity(const struct clt_device *dev, const char *source,
                                    size_t source_size, char **out);

/* Path of the entry for an identity: <dir>/<16 hex digits>.clbin. */
void clt__cache_path(const char *dir, const char *identity, char *path, size_t path_size);

/* Loads the binary stored for `identity`. CLT_OK with *binary malloc'd; CLT_ERR_IO when the
 * entry is missing; CLT_ERR_FORMAT when it is corrupt or was written for another identity. */
enum clt_status clt__cache_load(const char *path, const char *identity, unsigned char **binary,
                                size_t *size);

/* Checks an entry held in memory against `identity`; on success *binary points into data. */
enum clt_status clt__cache_parse(const unsigned char *data, size_t size, const char *identity,
                                 const unsigned char **binary, size_t *binary_size);

/* Writes an entry atomically (temporary file, fsync, rename). */
enum clt_status clt__cache_store(const char *path, const char *identity,
                                 const unsigned char *binary, size_t size);

/* Creates a directory and its parents (mode 0755). */
enum clt_status clt__mkdir_p(const char *path);

/* Removes path and, when it is a directory, everything in it, as far as it can (symbolic
 * links are removed, never followed; a path too long to name is left). For the programs and
 * tests that make scratch folders; the library itself removes no folder. */
void clt__remove_tree(const char *path);

/* ==== arena.c =========================================================================== */

struct clt_arena {
    struct clt_device *dev;
    cl_mem mem;
    uint64_t size;
    uint64_t used;
};

struct clt_event {
    cl_event event;
    const struct clt_log *log;
};

/* A device buffer and an element offset: how launchers receive tensors. */
struct clt__buf {
    cl_mem mem;
    size_t offset; /* in elements of the kernel's type */
};

/* The buffer and element offset of a view. */
struct clt__buf clt__view_buf(const struct clt_view *view);

/* Bytes per element of a dtype. */
size_t clt__dtype_size(enum clt_dtype dtype);

/* Wraps a cl_event (taking its reference) into a clt_event. */
enum clt_status clt__event_wrap(struct clt_device *dev, cl_event ev, struct clt_event **out);

/* ==== launch.c: kernel arguments and launch shapes ====================================== */

/* Raw kernel arguments, for the launches outside the op layer (GEMM's own kernel, the
 * bench's probes, tests that launch a kernel by hand): CLT__ARG(x) passes sizeof(x) bytes
 * at &x. Op launchers use CLT__RUN below instead. */
struct clt__arg {
    size_t size;
    const void *value;
};

#define CLT__ARG(x) ((struct clt__arg){sizeof(x), &(x)})

/* Sets arguments 0..n-1 of a kernel. */
enum clt_status clt__set_args(struct clt_device *dev, cl_kernel kernel, const struct clt__arg *args,
                              size_t n);

/* Enqueues `kernel` on the compute queue over `global` work-items in `dims` dimensions, each
 * rounded up to a multiple of the local size. local NULL: the engine chooses (1-D: the
 * largest power of two <= min(dev->wg_1d, kernel wg size); 2-D/3-D: a square-ish shape within
 * the limits). Kernels must ignore work-items past their real size. Not recorded: for tests
 * and probes that set arguments themselves (clt__set_args); the engine launches through
 * clt__launch_kernel. */
enum clt_status clt__launch(struct clt_device *dev, cl_kernel kernel, cl_uint dims,
                            const size_t *global, const size_t *local);

/* The launch path every kernel of the engine goes through: sets arguments 0..nargs-1 of
 * `kernel` (a kernel object the device keeps for its life: clt__kernel's, a program
 * variant's) and enqueues it as clt__launch does. Inside a recorded step (dev->rec, record.c)
 * the launch runs on its own recorded copy of the kernel instead, whose arguments stay set
 * from one step to the next: only those that changed are set again. Either way the device
 * runs the same kernel with the same arguments. */
enum clt_status clt__launch_kernel(struct clt_device *dev, cl_kernel kernel,
                                   const struct clt__arg *args, size_t nargs, cl_uint dims,
                                   const size_t *global, const size_t *local);

/* The rounded global and the local shape clt__launch uses; false when a dimension is 0
 * (nothing to run). */
bool clt__launch_shape(struct clt_device *dev, cl_kernel kernel, cl_uint dims, const size_t *global,
                       const size_t *local, size_t g[3], size_t l[3]);

/* One argument of a launch, by value: an int, an unsigned int, a float, a tensor (struct
 * clt__buf), which a kernel takes as two arguments, its buffer (NULL when mem is NULL: "not
 * wanted") and its int element offset, or a __local buffer of a number of bytes. Launchers
 * check offsets and sizes first (clt__check_buf). */
enum clt__karg_kind { CLT__KARG_I32, CLT__KARG_U32, CLT__KARG_F32, CLT__KARG_BUF, CLT__KARG_LOCAL };

struct clt__karg {
    enum clt__karg_kind kind;
    union {
        cl_int i;
        cl_uint u;
        float f;
        struct clt__buf b;
        size_t bytes;
    } v;
};

#define CLT__I32(x) ((struct clt__karg){.kind = CLT__KARG_I32, .v.i = (cl_int)(x)})
#define CLT__U32(x) ((struct clt__karg){.kind = CLT__KARG_U32, .v.u = (cl_uint)(x)})
#define CLT__F32(x) ((struct clt__karg){.kind = CLT__KARG_F32, .v.f = (float)(x)})
#define CLT__BUF(x) ((struct clt__karg){.kind = CLT__KARG_BUF, .v.b = (x)})
#define CLT__LOCAL(n) ((struct clt__karg){.kind = CLT__KARG_LOCAL, .v.bytes = (size_t)(n)})

/* The one launch helper of ops: gets the kernel of an id, sets its arguments from the list (a
 * tensor sets two) and enqueues it (through clt__launch_kernel, so recorded in a trainer's
 * step) over `items` work-items (1-D), rounded up to a multiple of the local size. local 0: the
 * engine chooses it (clt__launch); otherwise it is the work-group size, and one beyond the kernel's
 * CL_KERNEL_WORK_GROUP_SIZE is refused with CLT_ERR_INVALID_ARGUMENT and a log line. 0 items
 * enqueue nothing. */
enum clt_status clt__enqueue(struct clt_device *dev, enum clt__kernel_id id, size_t items,
                             size_t local, const struct clt__karg *args, size_t nargs);

/* clt__enqueue for a kernel object without an id (a program variant's, a kernel generated at
 * run time), kept by the device for its life. */
enum clt_status clt__enqueue_kernel(struct clt_device *dev, cl_kernel kernel, const char *name,
                                    size_t items, size_t local, const struct clt__karg *args,
                                    size_t nargs);

#define CLT__KARGS(...)                                                                            \
    (const struct clt__karg[]){__VA_ARGS__},                                                       \
        sizeof((const struct clt__karg[]){__VA_ARGS__}) / sizeof(struct clt__karg)

/* clt__enqueue with the arguments written in place: CLT__RUN(dev, CLT__K_x, n, CLT__I32(n),
 * CLT__BUF(x), ...), the local size chosen; CLT__RUN_WG(dev, CLT__K_x, n, local, ...) with
 * the work-group size given. */
#define CLT__RUN(dev, id, items, ...) clt__enqueue((dev), (id), (items), 0, CLT__KARGS(__VA_ARGS__))
#define CLT__RUN_WG(dev, id, items, local, ...)                                                    \
    clt__enqueue((dev), (id), (items), (local), CLT__KARGS(__VA_ARGS__))

/* clt__enqueue over a 2-D or 3-D NDRange of global[0..dims-1] work-items (0 in any
 * dimension enqueues nothing), through clt__launch_kernel. The local shape is powers of two
 * within min(dev->wg_1d, the kernel's work-group size, the work-items / 64, so that there are
 * 64 groups or more): dimension 0 up to 32, then 1, then 2,
 * none beyond its global size rounded up to a power of two; global is rounded up to a
 * multiple of it, so kernels must ignore work-items past their real size. Kernels get their
 * coordinates from get_global_id(0..2) and need no division to find them. */
enum clt_status clt__enqueue_nd(struct clt_device *dev, enum clt__kernel_id id, cl_uint dims,
                                const size_t *global, const struct clt__karg *args, size_t nargs);

/* Lanes per row of the row kernels of pool, conv and batch norm (cl/pool.cl, cl/conv.cl,
 * cl/norm.cl): work-item (lane, row...) takes the elements lane, lane + lanes, ... of its row
 * of `len` elements, lanes = get_global_size(0). One lane on CPU devices, so that a work-item
 * walks its row with unit stride and the driver vectorizes the loop (PoCL: 3 to 10 times
 * faster than one work-item per element over 3-D NDRanges); elsewhere up to 32 (a power of
 * two), so that neighbouring work-items read neighbouring elements; and more where a row is
 * longer than CLT__ROW_STEPS lanes' worth, so that no loop runs past llvmpipe's 65,535
 * iterations per work-item. The results never depend on the lanes: the row kernels do not
 * sum across lanes. */
#define CLT__ROW_STEPS 32768
size_t clt__row_lanes(const struct clt_device *dev, int64_t len);

/* clt__enqueue_nd for a kernel object without an id (clt__enqueue_kernel's kernels). */
enum clt_status clt__enqueue_kernel_nd(struct clt_device *dev, cl_kernel kernel, const char *name,
                                       cl_uint dims, const size_t *global,
                                       const struct clt__karg *args, size_t nargs);

/* clt__enqueue_nd with the arguments written in place: CLT__RUN_ND(dev, CLT__K_x, 3, g, ...)
 * with `const size_t g[3]`. */
#define CLT__RUN_ND(dev, id, dims, global, ...)                                                    \
    clt__enqueue_nd((dev), (id), (dims), (global), CLT__KARGS(__VA_ARGS__))

/* CLT_OK when 0 <= v <= INT32_MAX; kernels index with int. Logs `what` otherwise. */
enum clt_status clt__check_i32(struct clt_device *dev, int64_t v, const char *what);

/* CLT_OK when b is a tensor argument a kernel can use: b.mem is not NULL, count >= 0,
 * offset + count <= 2^31 - 1 elements (kernels index with int) and the buffer's
 * CL_MEM_SIZE holds (offset + count) * elem_size bytes. Otherwise logs "<op>: <what> ..."
 * and returns CLT_ERR_INVALID_ARGUMENT (or clt__cl_check's status when the size cannot be
 * read). Callers for which a NULL buffer means "skip" test b.mem first. */
enum clt_status clt__check_buf(struct clt_device *dev, struct clt__buf b, int64_t count,
                               size_t elem_size, const char *op, const char *what);

/* ==== record.c: a trainer's step recorded once and replayed ============================ */

/* A recording: the kernel launches of one kind of step, in order, each with its own kernel
 * object (a copy of the launcher's, made with clCreateKernel from the same program and name)
 * whose arguments stay set, and the arguments last set on it. The first step run under it
 * records; later ones replay: each launch is matched with the next recorded one (the same
 * kernel, dimensions and work sizes), sets only the arguments whose bytes differ (the input
 * slot's buffer, dropout's step, the learning rate) and enqueues the recorded copy. A launch
 * that does not match (the step ran other kernels) turns the rest of the step back to the
 * plain path and the next step records again. What is not a kernel launch through
 * clt__launch_kernel (CLBlast's and the host BLAS's GEMMs, fills, copies) runs as a call, as
 * it always does. Owned by its trainer; used by one thread at a time. */
struct clt__rec;

enum clt_status clt__rec_create(struct clt_device *dev, struct clt__rec **out);
void clt__rec_free(struct clt__rec *rec);

/* Starts a step under rec (dev->rec = rec): replays when rec holds a complete recording,
 * records otherwise. */
void clt__rec_begin(struct clt_device *dev, struct clt__rec *rec);

/* Ends the step (dev->rec = NULL). ok false: the step failed part-way, and what was
 * recorded is dropped. */
void clt__rec_end(struct clt_device *dev, bool ok);

/* Times rec recorded a step (tests). */
uint32_t clt__rec_recordings(const struct clt__rec *rec);

/* Launches of rec's complete recording that enqueue a kernel (empty launches left out); 0
 * while it holds none (tests). */
uint32_t clt__rec_launches(const struct clt__rec *rec);

/* Called by clt__launch_kernel when dev->rec is set: enqueues the launch through the
 * recording and sets *done, or leaves *done false for the plain path (recording off for the
 * rest of this step). */
enum clt_status clt__rec_launch(struct clt_device *dev, cl_kernel kernel,
                                const struct clt__arg *args, size_t nargs, cl_uint dims,
                                const size_t *global, const size_t *local, bool *done);

/* CL_MEM_SIZE of a buffer, remembered for the rest of the step (clt__check_buf). */
cl_int clt__rec_mem_size(struct clt__rec *rec, cl_mem mem, size_t *bytes);

/* ==== profile.c: device time per kernel and per op, from profiling events ============== */

/* A trainer's kernel profile (clt__trainer_profile): while a step runs under it (dev->prof),
 * every enqueue of the step's work keeps its event, named by the kernel's function name (or
 * a call's name: "host_sgemm", "clblast_sgemm") and tagged with the op enqueueing it; reading
 * the profile waits for them and sums END - START per name and per op. dev->prof NULL: no
 * event is asked for. Needs a device opened with profiling (CLT_ERR_UNSUPPORTED, logged,
 * otherwise). Used by one thread at a time. */
struct clt__prof;

enum clt_status clt__prof_create(struct clt_device *dev, struct clt__prof **out);
void clt__prof_free(struct clt__prof *p);

/* Starts a step under p (dev->prof = p) with a marker that opens its span; ends it (dev->prof
 * = NULL) with one that closes it. ok false: the step failed and what it enqueued, with what
 * was not read yet, is dropped. */
enum clt_status clt__prof_step_begin(struct clt_device *dev, struct clt__prof *p);
void clt__prof_step_end(struct clt_device *dev, bool ok);

/* Where an enqueue made while dev->prof is set writes its event: a kernel launch passes its
 * kernel object (the launcher's, not a recorded copy: names are keyed by it), a call (a
 * native kernel, a library's launch) NULL and a static name. NULL when the profile cannot
 * keep it (counted as lost). The pointer is valid until the next call. */
cl_event *clt__prof_event(struct clt_device *dev, cl_kernel kernel, const char *call);

/* The op whose work is enqueued next (static strings, compared by address): the op's name
 * and the pass ("forward", "backward", "recompute"), or "fused" and the pass, or "optimizer"
 * and "update". */
void clt__prof_op(struct clt_device *dev, const char *op, const char *pass);

struct clt__prof_entry {
    char name[96]; /* a kernel's name, or "<op>.<pass>" */
    uint64_t count;
    uint64_t ns; /* sum of END - START */
};

/* Totals since the profile was made, most time first. steps: steps whose span was read;
 * span_ns: the sum of their compute spans (first to last marker). lost: launches whose event
 * could not be kept or read. */
struct clt__prof_report {
    uint32_t steps;
    uint64_t span_ns;
    uint32_t lost;
    struct clt__prof_entry *kernels, *ops;
    size_t nkernels, nops;
};

/* Waits for the pending events and fills out (free with clt__prof_report_free). */
enum clt_status clt__prof_read(struct clt__prof *p, struct clt__prof_report *out);
void clt__prof_report_free(struct clt__prof_report *r);

/* ==== gemm.c ============================================================================ */

/* Chooses the GEMM backend for a freshly opened device. */
enum clt_status clt__gemm_setup(struct clt_device *dev, const struct clt_device_options *o);
void clt__gemm_teardown(struct clt_device *dev);

/* Enqueues a GEMM (clt_gemm_shape semantics: leading dimensions and strides of 0 mean the
 * tight ones) on the compute queue with the device's backend. Buffers with element offsets;
 * the caller makes sure they are large enough. A, B and C are in dev->storage (store_t:
 * offsets, leading dimensions and strides in storage elements); sums are fp32 in every
 * storage. */
enum clt_status clt__gemm(struct clt_device *dev, const struct clt_gemm_shape *g, struct clt__buf a,
                          struct clt__buf b, struct clt__buf c);

/* Fills in default leading dimensions and strides of a shape and checks it; writes the
 * number of elements each of A, B, C must span. */
enum clt_status clt__gemm_resolve(const struct clt_log *log, const struct clt_gemm_shape *in,
                                  struct clt_gemm_shape *out, int64_t *span_a, int64_t *span_b,
                                  int64_t *span_c);

/* Enqueues with one backend explicitly, without fallback (tests and the bench). */
/* CLBlast's tuning parameters of `kernel` (single precision) on dev: read (0 when done, else
 * CLBlast's status, or 1 for a name the kernel lacks) and overridden (logged on failure).
 * Behind the lock every CLBlast call takes. */
int clt__gemm_clblast_params(struct clt_device *dev, const char *kernel, size_t count,
                             const char *const *names, size_t *values);
enum clt_status clt__gemm_clblast_override(struct clt_device *dev, const char *kernel, size_t count,
                                           const char *const *names, const size_t *values);
enum clt_status clt__gemm_clblast(struct clt_device *dev, const struct clt_gemm_shape *g,
                                  struct clt__buf a, struct clt__buf b, struct clt__buf c);
enum clt_status clt__gemm_own(struct clt_device *dev, const struct clt_gemm_shape *g,
                              struct clt__buf a, struct clt__buf b, struct clt__buf c);

/* Builds CLBlast's GEMM kernels for a shape now, so the first real call compiles nothing. */
enum clt_status clt__gemm_warm(struct clt_device *dev, const struct clt_gemm_shape *g);

/* The implementations clt__gemm chooses among for one (resolved) shape. */
enum clt__gemm_impl {
    CLT__GEMM_IMPL_OWN = 0,     /* cl/gemm.cl in one configuration (gemm_own.h) */
    CLT__GEMM_IMPL_CLBLAST = 1, /* CLBlast's SGEMM */
    CLT__GEMM_IMPL_HOST = 2,    /* the host's BLAS as a native kernel (gemm_host.c) */
    CLT__GEMM_IMPL_TEST = 3,    /* a test's injected candidate (never stored) */
    CLT__GEMM_IMPL_WIDEN = 4,   /* 16-bit storage: clt__gemm_widened (fp32's choice inside) */
};

/* ==== gemm_host.c: the host's BLAS on CPU devices ======================================= */

/* "OpenBLAS", or "none" when the library was built without a host BLAS. */
const char *clt__gemm_host_name(void);

/* Sets dev->gemm_host: built with a host BLAS, a CPU device with unified memory that runs
 * native kernels, and CLTRAIN_HOST_BLAS is not "0". */
void clt__gemm_host_setup(struct clt_device *dev);

/* Enqueues the GEMM of a resolved shape as a native kernel calling the host's sgemm, in
 * queue order. CLT_ERR_UNSUPPORTED (logged) when dev->gemm_host is false. */
enum clt_status clt__gemm_host(struct clt_device *dev, const struct clt_gemm_shape *g,
                               struct clt__buf a, struct clt__buf b, struct clt__buf c);

/* ==== tune.c: choosing a GEMM implementation per device and shape ======================= */

/* Reads CLTRAIN_TUNE and CLTRAIN_TUNE_BUDGET and loads the device's tuning cache entry (a
 * corrupt or foreign one is logged and ignored). Called under CLT_GEMM_AUTO only. */
enum clt_status clt__tune_setup(struct clt_device *dev);
void clt__tune_teardown(struct clt_device *dev);

/* Starts a tuning session: misses met by clt__gemm until clt__tune_end are timed, within the
 * session's time budget (CLTRAIN_TUNE_BUDGET, else 60 s for an explicit session:
 * clt_device_gemm_tune and a trainer created with tune_ahead, as `cltrain tune` does; 10 s
 * for other trainer creation). Sessions do not
 * nest; end writes the cache entry when something new was learnt. No-ops when dev->tune is
 * NULL. */
void clt__tune_begin(struct clt_device *dev, bool explicit_session);
void clt__tune_end(struct clt_device *dev);

/* The implementation for a resolved shape in dev->storage: the cached choice; on a miss
 * inside a session, the winner of timing every candidate now (blocks: finishes the queue);
 * otherwise the default (fp32: host BLAS where available, else CLBlast; 16-bit: the widened
 * path, or the own kernel in the storage when the backend is forced to it). *cfg is set for
 * CLT__GEMM_IMPL_OWN. Choices are kept per storage: in 16 bits the candidates are the own
 * kernel's configurations built in the storage and the widened path. */
struct clt__gemm_config;
enum clt__gemm_impl clt__tune_choose(struct clt_device *dev, const struct clt_gemm_shape *g,
                                     struct clt__gemm_config *cfg);

/* Records the distinct shapes (resolved) clt__gemm meets from start until stop, which
 * copies up to max of them into out and returns how many there were. For cltrain-bench,
 * which takes its GEMM shapes from the built-in models' plans. Needs dev->tune (AUTO). */
void clt__tune_record_start(struct clt_device *dev);
size_t clt__tune_record_stop(struct clt_device *dev, struct clt_gemm_shape *out, size_t max);

/* Tests only: an extra candidate, timed and checked like the others, named `name` in
 * reports; it may win in this process but is never written to the cache. fn NULL removes
 * it. clt__tune_test_fn is what clt__gemm calls for CLT__GEMM_IMPL_TEST. */
typedef enum clt_status (*clt__gemm_fn)(struct clt_device *dev, const struct clt_gemm_shape *g,
                                        struct clt__buf a, struct clt__buf b, struct clt__buf c);
void clt__tune_test_candidate(struct clt_device *dev, const char *name, clt__gemm_fn fn);
clt__gemm_fn clt__tune_test_fn(const struct clt_device *dev);

/* gemm.c: the GEMM of a resolved shape in a 16-bit dev->storage through fp32: A and B (and C
 * where it is read: beta != 0, or rows and batch items with gaps between them) widened into
 * dev->gemm_wide, the fp32 GEMM by fp32 (NULL: clt__gemm's fp32 choice for the shape) with
 * dev->storage fp32 meanwhile, C narrowed back. Exact but for C's rounding: the always
 * correct 16-bit path. In fp32 storage, fp32 (or clt__gemm) itself. */
enum clt_status clt__gemm_widened(struct clt_device *dev, const struct clt_gemm_shape *g,
                                  struct clt__buf a, struct clt__buf b, struct clt__buf c,
                                  clt__gemm_fn fp32);

#endif /* CLTRAIN_INTERNAL_H */
