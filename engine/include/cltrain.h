/*
 * cltrain.h: the whole public API of libcltrain, a portable OpenCL engine for training
 * neural networks.
 *
 * Overview
 * --------
 * A `struct clt_device` owns everything that belongs to one OpenCL device: its context, a
 * compute queue and a transfer queue, the compiled kernel programs (built once, cached on
 * disk), the GEMM backend and its temporary buffer. Device memory is handed out by arenas:
 * a few large buffers per model, from which tensors are taken as views
 * (buffer, byte offset, shape). Work is only enqueued; the host waits where it asks to.
 *
 * Example: multiply two matrices on the default device.
 *
 *     struct clt_device *dev = NULL;
 *     struct clt_arena *arena = NULL;
 *     struct clt_view a, b, c;
 *     enum clt_status st = clt_device_open(NULL, NULL, &dev);   // CLTRAIN_DEVICE or first GPU
 *     if (st == CLT_OK)
 *         st = clt_arena_create(dev, 1 << 20, &arena);
 *     if (st == CLT_OK)
 *         st = clt_arena_alloc(arena, CLT_F32, 2, (int64_t[]){M, K}, &a);
 *     ... same for b [K, N] and c [M, N] ...
 *     if (st == CLT_OK)
 *         st = clt_view_write(&a, host_a, M * K * sizeof(float), NULL);  // blocking
 *     struct clt_gemm_shape g = {.m = M, .n = N, .k = K, .alpha = 1.0f};
 *     if (st == CLT_OK)
 *         st = clt_gemm(dev, &g, &a, &b, &c);                            // enqueues only
 *     if (st == CLT_OK)
 *         st = clt_view_read(&c, host_c, M * N * sizeof(float), NULL);   // waits for it
 *     if (st != CLT_OK)
 *         fprintf(stderr, "cltrain: %s\n", clt_status_str(st));
 *     clt_arena_free(arena);
 *     clt_device_close(dev);
 *
 * Conventions
 * -----------
 * - Every fallible function returns `enum clt_status`: CLT_OK (0) or a negative code.
 *   Details (the failed OpenCL call by name, a kernel's build log) go once to the log
 *   callback. The library never exits, aborts or prints except through that callback.
 * - Results are written through out-parameters, which are left untouched on failure
 *   unless stated otherwise.
 * - Objects pair as _create/_free or _open/_close; every destructor accepts NULL.
 * - Matrices are row-major. Shapes are written [rows, cols].
 * - There is no global mutable state. Distinct devices may be used from distinct threads;
 *   one device and everything made from it must be used by one thread at a time.
 *
 * Environment variables read by the library
 * ------------------------------------------
 * CLTRAIN_DEVICE     selection string used when clt_device_open gets NULL
 * CLTRAIN_CL_DIR     read kernel sources from this directory instead of the embedded copies
 * CLTRAIN_CACHE_DIR  directory of the program binary cache ($XDG_CACHE_HOME/cltrain or
 *                    ~/.cache/cltrain by default)
 * CLTRAIN_CACHE      0 disables the program binary cache
 * CLTRAIN_GEMM       clblast, own or auto: the GEMM backend when the options say AUTO
 */
#ifndef CLTRAIN_H
#define CLTRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CLT_BUILDING_LIBRARY) && defined(__GNUC__)
#define CLT_API __attribute__((visibility("default")))
#else
#define CLT_API
#endif

/* ==== Version =========================================================================== */

#define CLT_VERSION_MAJOR 0
#define CLT_VERSION_MINOR 1
#define CLT_VERSION_PATCH 0
#define CLT_VERSION_STRING "0.1.0"

/* The version of the library actually linked, as "MAJOR.MINOR.PATCH". */
CLT_API const char *clt_version(void);

/* ==== Status codes and logging ========================================================== */

enum clt_status {
    CLT_OK = 0,
    CLT_ERR_INVALID_ARGUMENT = -1, /* a NULL pointer, an impossible shape, a bad string */
    CLT_ERR_NO_MEMORY = -2,        /* host allocation failed */
    CLT_ERR_NO_DEVICE = -3,        /* no OpenCL device, or none matches the selection */
    CLT_ERR_OPENCL = -4,           /* an OpenCL call failed; the log names it */
    CLT_ERR_BUILD = -5,            /* a kernel program did not compile; the log has it */
    CLT_ERR_DEVICE_MEMORY = -6,    /* the device cannot hold what was asked */
    CLT_ERR_IO = -7,               /* a file could not be read or written */
    CLT_ERR_FORMAT = -8,           /* a file or string is malformed */
    CLT_ERR_UNSUPPORTED = -9,      /* the device or build lacks a needed feature */
    CLT_ERR_GEMM = -10,            /* the GEMM backend failed */
};

/* A short English name of a status code; never NULL, "unknown status" for foreign codes. */
CLT_API const char *clt_status_str(enum clt_status status);

enum clt_log_level {
    CLT_LOG_ERROR = 0,
    CLT_LOG_WARN = 1,
    CLT_LOG_INFO = 2,
    CLT_LOG_DEBUG = 3,
};

/* Receives each log message (one line or a build log, no trailing newline). */
typedef void (*clt_log_fn)(void *user, enum clt_log_level level, const char *message);

/* Where a device's messages go. fn NULL means stderr, prefixed with "cltrain: ". Messages
 * above max_level are dropped. */
struct clt_log {
    clt_log_fn fn;
    void *user;
    enum clt_log_level max_level;
};

/* ==== Devices =========================================================================== */

enum clt_device_type {
    CLT_DEVICE_OTHER = 0,
    CLT_DEVICE_CPU = 1,
    CLT_DEVICE_GPU = 2,
    CLT_DEVICE_ACCELERATOR = 3,
};

/* What the engine knows of a device: its identity and the limits that decide launch shapes.
 * A plain record; strings are NUL-terminated and truncated to fit. */
struct clt_device_info {
    uint32_t platform_index; /* P in the selection "P:D" */
    uint32_t device_index;   /* D: index among the platform's devices */
    enum clt_device_type type;
    char platform[128];         /* CL_PLATFORM_NAME */
    char name[128];             /* CL_DEVICE_NAME */
    char vendor[128];           /* CL_DEVICE_VENDOR */
    char driver_version[128];   /* CL_DRIVER_VERSION */
    char device_version[128];   /* CL_DEVICE_VERSION, "OpenCL X.Y ..." */
    char opencl_c_version[128]; /* CL_DEVICE_OPENCL_C_VERSION */
    uint32_t compute_units;
    uint32_t clock_mhz;
    uint64_t global_mem_bytes;
    uint64_t local_mem_bytes;
    uint64_t max_alloc_bytes;
    uint64_t max_work_group_size;
    uint64_t max_work_item_sizes[3];
    uint32_t mem_base_align_bytes; /* CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes */
    bool local_mem_is_local;       /* dedicated local memory (CL_LOCAL), not emulated */
    bool has_fp16;                 /* cl_khr_fp16 */
    bool has_fp64;                 /* cl_khr_fp64 or a double FP config */
};

/* Enumerates every device of every platform. Platforms that have no device are skipped.
 * On success *out is an array of *count records the caller frees with clt_devices_free;
 * zero devices is success with *count 0. log may be NULL (stderr). */
CLT_API enum clt_status clt_devices_list(const struct clt_log *log, struct clt_device_info **out,
                                         size_t *count);

/* Frees a list from clt_devices_list. Accepts NULL. */
CLT_API void clt_devices_free(struct clt_device_info *list);

/* Picks a device from a list by selection string:
 *   "P:D"            platform index P, device index D;
 *   "gpu", "cpu"     the first device of that type;
 *   any other text   the first device whose platform name, device name, vendor or
 *                    device version ("OpenCL 3.0 PoCL ...") contains it, ignoring case
 *                    ("pocl", "llvmpipe", "nvidia");
 *   NULL or ""       the first GPU, else the first device.
 * Writes the index into the list. CLT_ERR_NO_DEVICE when nothing matches,
 * CLT_ERR_INVALID_ARGUMENT for a malformed "P:D". Pure: no OpenCL calls. */
CLT_API enum clt_status clt_device_select(const struct clt_device_info *list, size_t count,
                                          const char *selection, size_t *index);

enum clt_gemm_backend {
    CLT_GEMM_AUTO = 0,    /* CLTRAIN_GEMM if set, else CLBlast falling back to the own kernel */
    CLT_GEMM_CLBLAST = 1, /* CLBlast only */
    CLT_GEMM_OWN = 2,     /* the engine's own tiled kernel only */
};

/* Options for clt_device_open. Fill with clt_device_options_init, then change fields. */
struct clt_device_options {
    struct clt_log log;
    const char *cache_dir;     /* NULL: CLTRAIN_CACHE_DIR, else the XDG cache directory */
    int32_t cache;             /* 1 on, 0 off, -1: on unless CLTRAIN_CACHE=0 */
    const char *cl_dir;        /* NULL: CLTRAIN_CL_DIR if set, else the embedded sources */
    enum clt_gemm_backend gemm;
    bool profiling;            /* create queues with CL_QUEUE_PROFILING_ENABLE */
};

/* Sets the defaults: stderr log at WARN, cache and sources from the environment, GEMM AUTO,
 * no profiling. */
CLT_API void clt_device_options_init(struct clt_device_options *options);

struct clt_device;

/* Opens the device chosen by selection (see clt_device_select; NULL means CLTRAIN_DEVICE,
 * then the default rule), creating its context and queues. Kernel programs are built on
 * first use or by clt_device_warm. options may be NULL for the defaults. The caller closes
 * *out with clt_device_close. */
CLT_API enum clt_status clt_device_open(const char *selection,
                                        const struct clt_device_options *options,
                                        struct clt_device **out);

/* Waits for the device's queues, then frees everything made for it. Arenas made from the
 * device must be freed first. Accepts NULL. */
CLT_API void clt_device_close(struct clt_device *dev);

/* The device's record. Valid until clt_device_close. */
CLT_API const struct clt_device_info *clt_device_info(const struct clt_device *dev);

/* Timing and cache figures of clt_device_warm. */
struct clt_warm_report {
    uint32_t programs;     /* programs made ready */
    uint32_t cache_hits;   /* of which loaded from the binary cache */
    uint32_t cache_writes; /* binaries written to the cache */
    double seconds;        /* wall time taken */
};

/* Builds every kernel program now (from the binary cache where possible) and prepares the
 * GEMM backend, so later work compiles nothing. Blocks. report may be NULL. */
CLT_API enum clt_status clt_device_warm(struct clt_device *dev, struct clt_warm_report *report);

/* Blocks until all work enqueued on the device has finished. */
CLT_API enum clt_status clt_device_finish(struct clt_device *dev);

/* The GEMM backend in use now: CLT_GEMM_CLBLAST or CLT_GEMM_OWN (after a fallback, OWN). */
CLT_API enum clt_gemm_backend clt_device_gemm_backend(const struct clt_device *dev);

/* ==== Arenas, views and events ========================================================== */

enum clt_dtype {
    CLT_F32 = 0,
    CLT_I32 = 1,
};

#define CLT_MAX_DIMS 6

struct clt_arena;

/* A tensor: a region of an arena with a shape. A plain value, copied freely; it does not
 * own memory and is valid while its arena lives. Elements are dense, row-major. */
struct clt_view {
    struct clt_arena *arena;
    uint64_t offset; /* bytes from the start of the arena's buffer */
    enum clt_dtype dtype;
    uint32_t ndim;
    int64_t shape[CLT_MAX_DIMS];
};

/* Creates one device buffer of `bytes` bytes (at most the device's largest allocation).
 * CLT_ERR_DEVICE_MEMORY, with the sizes in the log, when it cannot be had. */
CLT_API enum clt_status clt_arena_create(struct clt_device *dev, uint64_t bytes,
                                         struct clt_arena **out);

/* Frees the buffer; views of it become invalid. Accepts NULL. */
CLT_API void clt_arena_free(struct clt_arena *arena);

/* Takes the next region for a tensor of the given shape (every dimension > 0, ndim in
 * 1..CLT_MAX_DIMS), aligned to the device's base address alignment. CLT_ERR_DEVICE_MEMORY
 * when the arena is full. Allocates no device memory. */
CLT_API enum clt_status clt_arena_alloc(struct clt_arena *arena, enum clt_dtype dtype,
                                        uint32_t ndim, const int64_t *shape,
                                        struct clt_view *out);

/* Forgets every region taken so far; the memory is reused by later clt_arena_alloc calls. */
CLT_API void clt_arena_reset(struct clt_arena *arena);

/* Bytes in use and bytes in all. */
CLT_API uint64_t clt_arena_used(const struct clt_arena *arena);
CLT_API uint64_t clt_arena_size(const struct clt_arena *arena);

/* Elements and bytes of a view (0 for an invalid shape). */
CLT_API int64_t clt_view_count(const struct clt_view *view);
CLT_API uint64_t clt_view_bytes(const struct clt_view *view);

struct clt_event;

/* Copies `bytes` bytes (at most clt_view_bytes) from host memory into the start of the view.
 * done NULL: blocks until the copy is complete. done non-NULL: enqueues the copy in order
 * with the device's other work and returns at once; src must stay valid and unchanged until
 * the event completes; the caller frees *done with clt_event_free. */
CLT_API enum clt_status clt_view_write(const struct clt_view *view, const void *src,
                                       uint64_t bytes, struct clt_event **done);

/* Copies from the start of the view into host memory, after all work enqueued before it.
 * done NULL: blocks until dst holds the data. done non-NULL: returns at once; dst is valid
 * once the event completes. */
CLT_API enum clt_status clt_view_read(const struct clt_view *view, void *dst, uint64_t bytes,
                                      struct clt_event **done);

/* Blocks until the event's work is complete; an error if that work failed. */
CLT_API enum clt_status clt_event_wait(struct clt_event *event);

/* Releases an event (does not wait for it). Accepts NULL. */
CLT_API void clt_event_free(struct clt_event *event);

/* ==== GEMM ============================================================================== */

/* C = alpha * op(A) * op(B) + beta * C, row-major, for each of `batch` matrix triples.
 * op(A) is [m, k]: A is [m, k] (lda >= k) or, with trans_a, [k, m] (lda >= m).
 * op(B) is [k, n]: B is [k, n] (ldb >= n) or, with trans_b, [n, k] (ldb >= k).
 * C is [m, n] (ldc >= n). A leading dimension of 0 means the tight one.
 * Batch item i uses A + i * stride_a, B + i * stride_b, C + i * stride_c (elements; 0 with
 * batch > 1 means the tight stride). batch 0 means 1. With beta 0, C is not read. */
struct clt_gemm_shape {
    bool trans_a;
    bool trans_b;
    int64_t m, n, k;
    float alpha;
    float beta;
    int64_t lda, ldb, ldc;
    int64_t batch;
    int64_t stride_a, stride_b, stride_c;
};

/* Enqueues the GEMM on the device's compute queue; does not wait. The views must be F32 and
 * large enough for the shape (checked). Uses the device's backend; when CLBlast fails under
 * AUTO, logs a warning and falls back to the engine's own kernel for good. */
CLT_API enum clt_status clt_gemm(struct clt_device *dev, const struct clt_gemm_shape *shape,
                                 const struct clt_view *a, const struct clt_view *b,
                                 const struct clt_view *c);

#ifdef __cplusplus
}
#endif

#endif /* CLTRAIN_H */
