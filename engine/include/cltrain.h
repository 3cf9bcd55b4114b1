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
 * CLTRAIN_TUNE       0: under AUTO, use the default GEMM per shape without timing
 * CLTRAIN_TUNE_BUDGET  seconds one tuning session (trainer creation) may spend (60)
 * CLTRAIN_HOST_BLAS  0: never use the host's BLAS on CPU devices
 * CLTRAIN_ATTENTION  gemm or tiled: the path of clt_sdpa nodes built from then on (default:
 *                    tiled when the [B, H, T, T] scores would take 256 MiB or more)
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
    CLT_ERR_NONFINITE = -11,       /* a loss or gradient was not finite (when asked to stop) */
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
    CLT_GEMM_AUTO = 0,    /* CLTRAIN_GEMM if set, else the tuner's choice per shape (host BLAS,
                             CLBlast, own kernel; see "GEMM tuning"), the own kernel for good
                             once CLBlast fails */
    CLT_GEMM_CLBLAST = 1, /* CLBlast only */
    CLT_GEMM_OWN = 2,     /* the engine's own tiled kernel only */
};

/* Options for clt_device_open. Fill with clt_device_options_init, then change fields. */
struct clt_device_options {
    struct clt_log log;
    const char *cache_dir; /* NULL: CLTRAIN_CACHE_DIR, else the XDG cache directory */
    int32_t cache;         /* 1 on, 0 off, -1: on unless CLTRAIN_CACHE=0 */
    const char *cl_dir;    /* NULL: CLTRAIN_CL_DIR if set, else the embedded sources */
    enum clt_gemm_backend gemm;
    bool profiling; /* create queues with CL_QUEUE_PROFILING_ENABLE */
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

/* The GEMM backend in use now: CLT_GEMM_CLBLAST or CLT_GEMM_OWN (after a fallback, OWN).
 * Under AUTO this names the fallback chain, not what serves each shape (the tuner decides
 * that: clt_device_gemm_tunings). */
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
                                        uint32_t ndim, const int64_t *shape, struct clt_view *out);

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
CLT_API enum clt_status clt_view_write(const struct clt_view *view, const void *src, uint64_t bytes,
                                       struct clt_event **done);

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
 * large enough for the shape (checked). Uses the device's backend; under AUTO the tuner's
 * choice for the shape, or the default when the shape is not tuned (it does not time
 * anything here); when CLBlast fails under AUTO, logs a warning and falls back to the
 * engine's own kernel for good. */
CLT_API enum clt_status clt_gemm(struct clt_device *dev, const struct clt_gemm_shape *shape,
                                 const struct clt_view *a, const struct clt_view *b,
                                 const struct clt_view *c);

/* ---- GEMM tuning ---------------------------------------------------------------------------
 * Under CLT_GEMM_AUTO, every GEMM shape is served by the fastest of several implementations
 * measured on the device: the engine's own kernel in several configurations, CLBlast, and on
 * CPU devices that run native kernels the host's BLAS. Trainer creation times the shapes of
 * its plan that the device's tuning cache (beside the program binaries) does not hold yet,
 * within a time budget (CLTRAIN_TUNE_BUDGET seconds, default 60); CLTRAIN_TUNE=0 uses the
 * defaults without timing. Every candidate's result is checked against a host reference
 * before it may win. Progress goes to the log at INFO. */

/* Most candidates one shape reports. */
#define CLT_GEMM_MAX_CANDIDATES 16

/* One implementation timed for one shape. */
struct clt_gemm_candidate {
    char name[96];          /* "own mwg=...", "clblast", "host OpenBLAS" */
    double gflops;          /* measured throughput; 0 when rejected */
    enum clt_status status; /* CLT_OK, else why it was rejected: the error that made it fail
                               to build or run, or CLT_ERR_GEMM with `wrong` set */
    bool wrong;             /* it ran but computed a wrong result */
};

/* What the tuner chose for one shape (row-major, transposes, m n k, batch) and why. */
struct clt_gemm_tuning {
    bool trans_a, trans_b;
    int64_t m, n, k, batch;
    char chosen[96]; /* the winner's name */
    uint32_t candidate_count;
    struct clt_gemm_candidate candidates[CLT_GEMM_MAX_CANDIDATES];
};

/* Times the given shapes now (those not yet in the tuning cache), as trainer creation does,
 * and writes the cache. Blocks. Under CLTRAIN_TUNE=0 or a forced backend it times nothing. */
CLT_API enum clt_status clt_device_gemm_tune(struct clt_device *dev,
                                             const struct clt_gemm_shape *shapes, size_t count);

/* Every shape the device's tuner knows (cached or timed in this process), in a malloc'd array
 * of *count records freed with free(); *out is NULL when there are none. */
CLT_API enum clt_status clt_device_gemm_tunings(struct clt_device *dev,
                                                struct clt_gemm_tuning **out, size_t *count);

/* ==== Graphs: describing a model ======================================================== */
/*
 * A model is a static graph, built once: inputs (a batch's data), parameters (trained,
 * initialised by a named rule), state (not trained but kept, like batch norm's running
 * averages), and ops that make new tensors from old ones. Layer helpers (clt_linear,
 * clt_conv2d, ...) add parameters and ops under a name prefix. The graph names a scalar
 * loss and becomes a trainer (below).
 *
 * Building reads like the model: every builder returns the new tensor, or NULL on error. The
 * first error is kept in the graph (clt_graph_status, clt_graph_error); builders given a NULL
 * tensor return NULL without a second message, so a model can be written without a check
 * after every line and checked once at the end. (This is the one place the API returns
 * pointers instead of statuses: a status per line would bury the model.)
 *
 * Tensors belong to their graph and die with it. Shapes are row-major; a tensor from another
 * graph is an error. A tensor holds at most 2^31 - 1 elements (kernels index with 32-bit
 * integers): a larger shape is refused when it is built, with CLT_ERR_INVALID_ARGUMENT and a
 * message naming the tensor, its shape and the limit. A model that is too large for the
 * device as a whole fails at clt_trainer_create with CLT_ERR_DEVICE_MEMORY. Letters in the shape
 * rules: N batch, C channels, H and W image height and width, T sequence length, D features.
 *
 *     struct clt_graph *g = NULL;
 *     clt_graph_create(&g);
 *     struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){64, 784});
 *     struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){64});
 *     struct clt_tensor *h = clt_relu(g, clt_linear(g, x, 128, true, "fc1"));
 *     struct clt_tensor *logits = clt_linear(g, h, 10, true, "fc2");
 *     struct clt_tensor *loss = clt_cross_entropy(g, logits, y, -1, 0.0f);
 *     if (clt_graph_status(g) != CLT_OK)
 *         fprintf(stderr, "%s\n", clt_graph_error(g));
 */

struct clt_graph;
struct clt_tensor;

/* Creates an empty graph; free it with clt_graph_free (which frees its tensors). */
CLT_API enum clt_status clt_graph_create(struct clt_graph **out);
CLT_API void clt_graph_free(struct clt_graph *graph);

/* The first error met while building (CLT_OK if none), and its message ("" if none). */
CLT_API enum clt_status clt_graph_status(const struct clt_graph *graph);
CLT_API const char *clt_graph_error(const struct clt_graph *graph);

/* Facts about a tensor. clt_tensor_name is "" for unnamed op results. */
CLT_API uint32_t clt_tensor_ndim(const struct clt_tensor *t);
CLT_API int64_t clt_tensor_dim(const struct clt_tensor *t, uint32_t axis);
CLT_API enum clt_dtype clt_tensor_dtype(const struct clt_tensor *t);
CLT_API const char *clt_tensor_name(const struct clt_tensor *t);

enum clt_init_kind {
    CLT_INIT_ZEROS = 0,
    CLT_INIT_CONSTANT,        /* every element a */
    CLT_INIT_UNIFORM,         /* uniform in [a, b) */
    CLT_INIT_NORMAL,          /* mean a, standard deviation b */
    CLT_INIT_XAVIER_UNIFORM,  /* Glorot: U(-r, r), r = a * sqrt(6 / (fan_in + fan_out)) */
    CLT_INIT_XAVIER_NORMAL,   /* Glorot: N(0, a * sqrt(2 / (fan_in + fan_out))) */
    CLT_INIT_KAIMING_UNIFORM, /* He: U(-r, r), r = a * sqrt(3 / fan_in) */
    CLT_INIT_KAIMING_NORMAL,  /* He: N(0, a / sqrt(fan_in)) */
};

/* An initialiser. For the Xavier and Kaiming rules, a is the gain (0 means 1 for Xavier and
 * sqrt(2) for Kaiming, the ReLU gain) and the fans come from the shape as PyTorch computes
 * them: [out, in] gives fan_in = in, fan_out = out; [out, in, kh, kw] multiplies both by
 * kh * kw; a 1-D shape has fan_in = fan_out = its size. Values are drawn on the host from the
 * trainer's seed and the parameter's name, so they do not depend on the device. */
struct clt_init {
    enum clt_init_kind kind;
    float a;
    float b;
};

/* A batch input: its data is given to each clt_trainer_step in the order inputs were made.
 * F32 for features, I32 for labels and token ids. */
CLT_API struct clt_tensor *clt_input(struct clt_graph *g, const char *name, enum clt_dtype dtype,
                                     uint32_t ndim, const int64_t *shape);

/* A trained F32 parameter with a unique name (e.g. "fc1.weight"). */
CLT_API struct clt_tensor *clt_param(struct clt_graph *g, const char *name, uint32_t ndim,
                                     const int64_t *shape, struct clt_init init);

/* A kept, untrained F32 tensor with a unique name (batch norm's running averages), saved in
 * checkpoints like a parameter. */
CLT_API struct clt_tensor *clt_state(struct clt_graph *g, const char *name, uint32_t ndim,
                                     const int64_t *shape, struct clt_init init);

/* ---- Arithmetic --------------------------------------------------------------------- */

/* op(a) * op(b): a [M, K] (trans_a: [K, M]), b [K, N] (trans_b: [N, K]) -> [M, N]. With 3-D
 * a [B, M, K] and b [B, K, N] the product is taken per batch item -> [B, M, N]. */
CLT_API struct clt_tensor *clt_matmul(struct clt_graph *g, struct clt_tensor *a,
                                      struct clt_tensor *b, bool trans_a, bool trans_b);

/* Elementwise a + b and a * b: same shapes -> that shape. */
CLT_API struct clt_tensor *clt_add(struct clt_graph *g, struct clt_tensor *a, struct clt_tensor *b);
CLT_API struct clt_tensor *clt_mul(struct clt_graph *g, struct clt_tensor *a, struct clt_tensor *b);

/* alpha * x -> shape of x. */
CLT_API struct clt_tensor *clt_scale(struct clt_graph *g, struct clt_tensor *x, float alpha);

/* x [..., S...] + bias [S...], the bias added along the leading axes -> shape of x. The
 * bias's shape is the trailing axes of x: [D] for a layer's bias on x [..., D], [T, D] for
 * learned positions on x [N, T, D]. (Earlier versions took only [D].) */
CLT_API struct clt_tensor *clt_add_bias(struct clt_graph *g, struct clt_tensor *x,
                                        struct clt_tensor *bias);

/* x [..., S...] * s [S...], s multiplied along the leading axes (a per-feature gain [D] on
 * x [..., D], a [T, D] mask on x [N, T, D]) -> shape of x. s's shape is the trailing axes of
 * x. */
CLT_API struct clt_tensor *clt_mul_broadcast(struct clt_graph *g, struct clt_tensor *x,
                                             struct clt_tensor *s);

/* Sum or mean of all elements -> [1]. */
CLT_API struct clt_tensor *clt_sum(struct clt_graph *g, struct clt_tensor *x);
CLT_API struct clt_tensor *clt_mean(struct clt_graph *g, struct clt_tensor *x);

/* ---- Activations and dropout ---------------------------------------------------------- */

/* Elementwise -> shape of x. clt_gelu: tanh_approximation selects PyTorch's
 * approximate="tanh", else the exact erf form. */
CLT_API struct clt_tensor *clt_relu(struct clt_graph *g, struct clt_tensor *x);
CLT_API struct clt_tensor *clt_leaky_relu(struct clt_graph *g, struct clt_tensor *x,
                                          float negative_slope);
CLT_API struct clt_tensor *clt_gelu(struct clt_graph *g, struct clt_tensor *x,
                                    bool tanh_approximation);
CLT_API struct clt_tensor *clt_tanh(struct clt_graph *g, struct clt_tensor *x);
CLT_API struct clt_tensor *clt_sigmoid(struct clt_graph *g, struct clt_tensor *x);
CLT_API struct clt_tensor *clt_silu(struct clt_graph *g, struct clt_tensor *x);

/* In training, zeroes each element with probability p (0 <= p < 1) and scales the rest by
 * 1 / (1 - p); the mask depends only on the trainer's seed, the step and the element's index.
 * In evaluation, the identity. -> shape of x. */
CLT_API struct clt_tensor *clt_dropout(struct clt_graph *g, struct clt_tensor *x, float p);

/* ---- Softmax and losses --------------------------------------------------------------- */

/* Along the last axis -> shape of x. */
CLT_API struct clt_tensor *clt_softmax(struct clt_graph *g, struct clt_tensor *x);
CLT_API struct clt_tensor *clt_log_softmax(struct clt_graph *g, struct clt_tensor *x);

/* Mean cross-entropy of logits [N, K] (or [..., K]) against I32 labels [N] (or [...]),
 * computed from the log-softmax, over the rows whose label is not ignore_index (use -1 for
 * none); label_smoothing in [0, 1) mixes the one-hot target with the uniform one as PyTorch
 * does. Labels outside [0, K) count as ignored. -> [1]. */
CLT_API struct clt_tensor *clt_cross_entropy(struct clt_graph *g, struct clt_tensor *logits,
                                             struct clt_tensor *labels, int32_t ignore_index,
                                             float label_smoothing);

/* Mean of (x - target)^2 over all elements: same shapes -> [1]. */
CLT_API struct clt_tensor *clt_mse(struct clt_graph *g, struct clt_tensor *x,
                                   struct clt_tensor *target);

/* ---- Shapes --------------------------------------------------------------------------- */

/* The same elements with another shape of equal count (no copy). */
CLT_API struct clt_tensor *clt_reshape(struct clt_graph *g, struct clt_tensor *x, uint32_t ndim,
                                       const int64_t *shape);

/* [N, ...] -> [N, product of the rest] (no copy). */
CLT_API struct clt_tensor *clt_flatten(struct clt_graph *g, struct clt_tensor *x);

/* Axes reordered: output axis i is input axis perm[i]; perm has ndim(x) entries. */
CLT_API struct clt_tensor *clt_permute(struct clt_graph *g, struct clt_tensor *x,
                                       const uint32_t *perm);

/* n tensors of equal shape except along axis, joined along it. */
CLT_API struct clt_tensor *clt_concat(struct clt_graph *g, uint32_t n, struct clt_tensor *const *xs,
                                      uint32_t axis);

/* Elements start .. start + length - 1 along axis. */
CLT_API struct clt_tensor *clt_slice(struct clt_graph *g, struct clt_tensor *x, uint32_t axis,
                                     int64_t start, int64_t length);

/* ---- Layers (they add parameters named "<name>.<part>") ------------------------------- */

/* x [..., in] -> [..., out]: x * weight^T + bias; weight [out, in] Kaiming-uniform with
 * a = 1/sqrt(3) (PyTorch's nn.Linear), bias [out] U(-1/sqrt(in), 1/sqrt(in)).
 * Parameters "<name>.weight", "<name>.bias". */
CLT_API struct clt_tensor *clt_linear(struct clt_graph *g, struct clt_tensor *x,
                                      int64_t out_features, bool bias, const char *name);

struct clt_conv2d_desc {
    int64_t out_channels;
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w; /* 0 means 1 */
    int64_t padding_h, padding_w;
    int64_t dilation_h, dilation_w; /* 0 means 1 */
    int64_t groups;                 /* 0 means 1; C_in and out_channels divisible by it */
    bool bias;
};

/* x [N, C, H, W] -> [N, out_channels, OH, OW], OH = (H + 2 padding_h - dilation_h
 * (kernel_h - 1) - 1) / stride_h + 1. Parameters "<name>.weight" [out, C / groups, kh, kw]
 * and "<name>.bias" [out], initialised as PyTorch's nn.Conv2d. */
CLT_API struct clt_tensor *clt_conv2d(struct clt_graph *g, struct clt_tensor *x,
                                      const struct clt_conv2d_desc *desc, const char *name);

/* Max and average pooling of x [N, C, H, W] -> [N, C, OH, OW] (OH as for convolution with
 * dilation 1; stride 0 means the kernel size). Average pooling counts padded elements
 * (PyTorch's count_include_pad). */
CLT_API struct clt_tensor *clt_max_pool2d(struct clt_graph *g, struct clt_tensor *x, int64_t kernel,
                                          int64_t stride, int64_t padding);
CLT_API struct clt_tensor *clt_avg_pool2d(struct clt_graph *g, struct clt_tensor *x, int64_t kernel,
                                          int64_t stride, int64_t padding);

/* x [N, C, H, W] -> [N, C]: the mean over H and W. */
CLT_API struct clt_tensor *clt_global_avg_pool2d(struct clt_graph *g, struct clt_tensor *x);

/* Batch norm over x [N, C] or [N, C, H, W]: per channel, batch statistics in training
 * (running averages updated with momentum, PyTorch's convention), running averages in
 * evaluation. Parameters "<name>.weight" [C] (ones), "<name>.bias" [C] (zeros); state
 * "<name>.running_mean", "<name>.running_var". -> shape of x. */
CLT_API struct clt_tensor *clt_batch_norm(struct clt_graph *g, struct clt_tensor *x, float eps,
                                          float momentum, const char *name);

/* Layer norm over the last axis of x [..., D]. Parameters "<name>.weight" [D] (ones),
 * "<name>.bias" [D] (zeros). -> shape of x. */
CLT_API struct clt_tensor *clt_layer_norm(struct clt_graph *g, struct clt_tensor *x, float eps,
                                          const char *name);

/* I32 ids [...] -> [..., dim]: rows of "<name>.weight" [vocab, dim] (N(0, 1), as PyTorch).
 * Ids outside [0, vocab) give zero rows. */
CLT_API struct clt_tensor *clt_embedding(struct clt_graph *g, struct clt_tensor *ids, int64_t vocab,
                                         int64_t dim, const char *name);

/* Scaled dot-product attention of q, k, v [B, H, T, Dh] -> [B, H, T, Dh], scale
 * 1/sqrt(Dh); with causal, position t attends to positions <= t. */
CLT_API struct clt_tensor *clt_sdpa(struct clt_graph *g, struct clt_tensor *q, struct clt_tensor *k,
                                    struct clt_tensor *v, bool causal);

/* Multi-head self-attention of x [N, T, D] -> [N, T, D]: one linear layer "<name>.qkv"
 * (D -> 3D) makes queries, keys and values, split into heads of D / heads features, then
 * clt_sdpa, then the linear layer "<name>.proj" (D -> D). D divisible by heads. */
CLT_API struct clt_tensor *clt_attention(struct clt_graph *g, struct clt_tensor *x, int64_t heads,
                                         bool causal, const char *name);

/* ==== Trainers: running a model ========================================================= */
/*
 * A trainer binds a graph and a scalar loss to a device. Creating it differentiates the
 * graph, plans memory (activations and gradients share storage where their lifetimes do not
 * overlap), compiles every kernel, warms every GEMM shape, allocates every buffer and
 * initialises the parameters. Nothing is allocated or compiled afterwards.
 *
 *     struct clt_trainer_options opt;
 *     clt_trainer_options_init(&opt, CLT_OPTIM_ADAMW);
 *     opt.optimizer.lr = 1e-3f;
 *     struct clt_trainer *tr = NULL;
 *     st = clt_trainer_create(dev, g, loss, &opt, &tr);
 *     for (step = 0; st == CLT_OK && step < steps; step++) {
 *         const void *batch[] = {images, labels};     // one per input, in creation order
 *         st = clt_trainer_step(tr, batch);             // enqueues; returns at once
 *     }
 *     float last;
 *     clt_trainer_loss(tr, &last);                       // waits for the last step
 *     clt_trainer_free(tr);
 *     clt_graph_free(g);                                 // after the trainer
 */

enum clt_optim_kind {
    CLT_OPTIM_SGD = 0,   /* momentum, Nesterov, L2 weight decay */
    CLT_OPTIM_ADAM = 1,  /* L2 weight decay added to the gradient */
    CLT_OPTIM_ADAMW = 2, /* decoupled weight decay */
};

enum clt_lr_schedule {
    CLT_LR_CONSTANT = 0,
    CLT_LR_STEP = 1,   /* lr * gamma^(floor(update / step_size)) */
    CLT_LR_COSINE = 2, /* from lr down to min_lr over total_updates, half a cosine */
};

/* The optimizer, with PyTorch's meanings and defaults (clt_trainer_options_init). The
 * schedule counts optimizer updates; warmup_updates > 0 ramps the rate linearly from 0 over
 * that many updates first. clip_norm > 0 clips the global gradient norm. accumulate > 1
 * averages the gradients of that many steps (micro-batches) before each update. */
struct clt_optimizer {
    enum clt_optim_kind kind;
    float lr;
    float momentum;          /* SGD */
    bool nesterov;           /* SGD */
    float beta1, beta2, eps; /* Adam, AdamW */
    float weight_decay;
    enum clt_lr_schedule schedule;
    int64_t step_size;
    float gamma;
    int64_t total_updates;
    float min_lr;
    int64_t warmup_updates;
    float clip_norm;
    uint32_t accumulate;
};

struct clt_trainer_options {
    struct clt_optimizer optimizer;
    uint64_t seed;          /* parameter initialisation and dropout */
    bool recompute;         /* recompute cheap activations in the backward pass to save memory */
    bool stop_on_nonfinite; /* a step whose loss or gradients are not finite fails with
                               CLT_ERR_NONFINITE instead of being skipped and counted */
};

/* Defaults: the optimizer's PyTorch defaults (SGD lr 0.01, momentum 0; Adam and AdamW lr
 * 1e-3, betas 0.9 and 0.999, eps 1e-8; AdamW weight decay 0.01), constant schedule, no
 * clipping, accumulate 1, seed 0, no recomputation, non-finite steps skipped. */
CLT_API void clt_trainer_options_init(struct clt_trainer_options *options,
                                      enum clt_optim_kind kind);

struct clt_trainer;

/* Makes a trainer for loss ([1], computed from the graph's inputs and parameters) on dev.
 * The graph must be error-free and must outlive the trainer (the trainer reads its tensors);
 * building more of the graph after this has no effect on the trainer. CLT_ERR_DEVICE_MEMORY, with
 * the needed and available sizes in the log, when the model does not fit. Blocks (compiles and
 * initialises). */
CLT_API enum clt_status clt_trainer_create(struct clt_device *dev, const struct clt_graph *graph,
                                           const struct clt_tensor *loss,
                                           const struct clt_trainer_options *options,
                                           struct clt_trainer **out);

/* Waits for the trainer's work and frees it. Accepts NULL. */
CLT_API void clt_trainer_free(struct clt_trainer *tr);

/* One training step on one batch: inputs[i] points to the data of the graph's i-th input
 * (dense, its shape, F32 or I32). The data is copied before the call returns; the work is
 * only enqueued. Every accumulate-th step also updates the parameters. */
CLT_API enum clt_status clt_trainer_step(struct clt_trainer *tr, const void *const *inputs);

/* The loss of the latest step; waits for that step only. CLT_ERR_INVALID_ARGUMENT before
 * the first step. */
CLT_API enum clt_status clt_trainer_loss(struct clt_trainer *tr, float *loss);

struct clt_trainer_stats {
    uint64_t steps;   /* calls to clt_trainer_step */
    uint64_t updates; /* optimizer updates applied */
    uint64_t skipped; /* updates skipped because the loss or gradients were not finite */
    float grad_norm;  /* global gradient norm of the latest update (before clipping) */
    float lr;         /* learning rate of the latest update */
};

/* Counters of the trainer. Waits for the device. */
CLT_API enum clt_status clt_trainer_stats(struct clt_trainer *tr, struct clt_trainer_stats *out);

/* Forward only, in evaluation mode (dropout off, batch norm with running averages), on one
 * batch. Copies `count` floats of `output` (a tensor of the graph, or NULL) into out, and the
 * loss into *loss (may be NULL). Blocks. */
CLT_API enum clt_status clt_trainer_eval(struct clt_trainer *tr, const void *const *inputs,
                                         const struct clt_tensor *output, float *out,
                                         uint64_t count, float *loss);

/* Where device memory goes, in bytes. activations_unshared is what activations and their
 * gradients would take without the memory plan. */
struct clt_memory_report {
    uint64_t params; /* parameters and state */
    uint64_t grads;
    uint64_t optimizer;   /* moments, status */
    uint64_t activations; /* planned activations, their gradients, saved tensors */
    uint64_t activations_unshared;
    uint64_t workspace; /* scratch shared by all ops */
    uint64_t inputs;    /* double-buffered batch uploads */
    uint64_t total;
};

CLT_API enum clt_status clt_trainer_memory(const struct clt_trainer *tr,
                                           struct clt_memory_report *out);

/* Parameters and state, by index (0 .. count-1, in creation order) or by name. */
CLT_API uint32_t clt_trainer_param_count(const struct clt_trainer *tr);

struct clt_param_info {
    const char *name; /* valid while the trainer lives */
    uint32_t ndim;
    int64_t shape[CLT_MAX_DIMS];
    bool trained; /* false for state such as running averages */
};

CLT_API enum clt_status clt_trainer_param_info(const struct clt_trainer *tr, uint32_t index,
                                               struct clt_param_info *out);

/* Copies a parameter's `count` floats (its full size) to or from the host. Waits for the
 * device. CLT_ERR_INVALID_ARGUMENT for an unknown name or a wrong count. */
CLT_API enum clt_status clt_trainer_param_read(struct clt_trainer *tr, const char *name, float *dst,
                                               uint64_t count);
CLT_API enum clt_status clt_trainer_param_write(struct clt_trainer *tr, const char *name,
                                                const float *src, uint64_t count);

/* ==== Datasets and batches ============================================================== */
/*
 * A dataset holds examples in host memory: classification examples (float features of one
 * shape and an integer label each) or a text (a stream of tokens for a character model).
 * Loaders check their files strictly: a wrong magic number, a truncated file, sizes that
 * overflow, a ragged CSV row or a label out of range is CLT_ERR_FORMAT (missing or unreadable
 * files CLT_ERR_IO) with the file and the reason in the log. Gzip-compressed files (".gz", or
 * detected by their magic) are read transparently.
 */

struct clt_dataset;

enum clt_dataset_kind {
    CLT_DATASET_CLASSES = 0, /* features [count, shape...] and labels [count] */
    CLT_DATASET_TEXT = 1,    /* tokens [count], ids in 0 .. vocab-1 */
};

struct clt_dataset_info {
    enum clt_dataset_kind kind;
    uint64_t count;              /* examples, or tokens of a text */
    uint32_t ndim;               /* dimensions of one example's features (classes) */
    int64_t shape[CLT_MAX_DIMS]; /* one example's feature shape, e.g. [1, 28, 28] */
    uint32_t classes;            /* 1 + the largest label, or as clt_dataset_check_classes set */
    uint32_t vocab;              /* distinct symbols (text) */
};

/* IDX files as MNIST ships them: images (magic 0x00000803, u8 [count, rows, cols]) and labels
 * (magic 0x00000801, u8 [count]) of equal count. Features are [1, rows, cols], scaled to
 * [0, 1]. */
CLT_API enum clt_status clt_dataset_load_idx(const char *images_path, const char *labels_path,
                                             const struct clt_log *log, struct clt_dataset **out);

/* CSV: one example per line, comma-separated numbers, one integer label column
 * (label_column; negative counts from the end, -1 the last). A first line that is not all
 * numbers is a header and skipped. Features [columns - 1], as read. */
CLT_API enum clt_status clt_dataset_load_csv(const char *path, int32_t label_column,
                                             const struct clt_log *log, struct clt_dataset **out);

/* A text file for a character model: each distinct byte is a symbol; ids number the symbols
 * in byte order. At least two tokens. */
CLT_API enum clt_status clt_dataset_load_text(const char *path, const struct clt_log *log,
                                              struct clt_dataset **out);

/* Frees a dataset. Accepts NULL. Datasets made by clt_dataset_split are independent. */
CLT_API void clt_dataset_free(struct clt_dataset *ds);

CLT_API enum clt_status clt_dataset_info(const struct clt_dataset *ds,
                                         struct clt_dataset_info *out);

/* Splits examples (or, for a text, the token stream: the first part, then the rest) into a
 * training part and a held-out fraction in (0, 1), chosen by a seeded shuffle for classes.
 * Both parts are new datasets; ds is unchanged. */
CLT_API enum clt_status clt_dataset_split(const struct clt_dataset *ds, double held_out,
                                          uint64_t seed, struct clt_dataset **train,
                                          struct clt_dataset **held);

/* A text's symbols: symbols[id] is the byte of id, for id < vocab (at most 256). */
CLT_API enum clt_status clt_dataset_symbols(const struct clt_dataset *ds, uint8_t *symbols,
                                            uint32_t *vocab);

/* Checks a classification dataset's labels and sets its number of classes. With classes 0
 * the labels must be exactly 0 .. K-1 for the K distinct labels seen (none missing: labels
 * that start at 1, gaps, or one label far beyond the others are refused); with classes > 0
 * every label must be below it, and the dataset's classes become that number. CLT_ERR_FORMAT
 * naming the first offending example (and its line, for a dataset loaded from CSV) and what
 * was expected, in the log; CLT_ERR_INVALID_ARGUMENT for a text. Call it before splitting. */
CLT_API enum clt_status clt_dataset_check_classes(struct clt_dataset *ds, uint32_t classes,
                                                  const struct clt_log *log);

/* The first `count` examples (or tokens) as a new dataset: small subsets for tests. */
CLT_API enum clt_status clt_dataset_head(const struct clt_dataset *ds, uint64_t count,
                                         struct clt_dataset **out);

struct clt_batcher;

/* Iterates a dataset in batches, epoch after epoch. Classes: each epoch visits the examples
 * in an order shuffled from (seed, epoch) (or in file order without shuffle). Text: each
 * batch holds `batch` windows of context + 1 tokens at offsets drawn from (seed, epoch,
 * index); an epoch is count / (batch * context) batches. The batcher borrows ds. */
CLT_API enum clt_status clt_batcher_create(const struct clt_dataset *ds, uint32_t batch,
                                           uint32_t context, uint64_t seed, bool shuffle,
                                           struct clt_batcher **out);
CLT_API void clt_batcher_free(struct clt_batcher *b);

/* Fills the next batch (filled and epoch_done may be NULL). Classes: x [batch, shape...]
 * floats, y [batch] labels; `context` is ignored. Text: x
 * [batch, context] int32 ids, y [batch, context] the ids that follow. *filled is the number
 * of real examples: at the end of an epoch of classes a last partial batch is padded with
 * zero features and label -1 (use ignore_index -1); with drop_last it is skipped instead.
 * *epoch_done is set when this batch ends an epoch. */
CLT_API enum clt_status clt_batcher_next(struct clt_batcher *b, bool drop_last, void *x, int32_t *y,
                                         uint32_t *filled, bool *epoch_done);

/* Batches in one epoch (with drop_last, or counting the padded last one). */
CLT_API uint64_t clt_batcher_epoch_batches(const struct clt_batcher *b, bool drop_last);

/* Where a batcher is, to resume it exactly. */
struct clt_batcher_state {
    uint64_t seed;
    uint64_t epoch;
    uint64_t position; /* batches done in this epoch */
};
CLT_API void clt_batcher_get(const struct clt_batcher *b, struct clt_batcher_state *out);
CLT_API enum clt_status clt_batcher_set(struct clt_batcher *b,
                                        const struct clt_batcher_state *state);

/* ==== Checkpoints ======================================================================= */
/*
 * Checkpoints are safetensors files: an 8-byte little-endian header length, a JSON header
 * naming each tensor's dtype, shape and byte range, then the raw little-endian data. A
 * trainer's checkpoint holds every parameter and state tensor under its own name ("fc1.weight"),
 * the optimizer's moments as "optimizer.m.<name>" and "optimizer.v.<name>", and string
 * metadata under "__metadata__": the caller's pairs, plus "cltrain.version",
 * "cltrain.steps", "cltrain.updates", "cltrain.seed", "optimizer.kind", "optimizer.t" and
 * "optimizer.skipped" (keys the caller may not use). Adam's second moments are
 * "optimizer.v.<name>" (SGD has none); a save in the middle of gradient accumulation also
 * keeps the partial gradients as "optimizer.grad.<name>". Tensors are stored sorted by name. Writes
 * are atomic: a temporary file in the same directory, flushed and fsync'ed, then renamed over the
 * old file, so a crash leaves the old checkpoint or the new one, never a mix. Readers check the
 * header strictly (sizes, offsets inside the file, no overlaps, valid UTF-8 JSON, known dtypes,
 * shapes that match the data) and fail with CLT_ERR_FORMAT and a log line. The format is in
 * docs/formats.md.
 */

/* A metadata pair. Keys and values are UTF-8 strings. */
struct clt_meta {
    const char *key;
    const char *value;
};

/* Saves the trainer's parameters, state, optimizer moments and counters, and n metadata
 * pairs, to path. Waits for the device. */
CLT_API enum clt_status clt_trainer_save(struct clt_trainer *tr, const char *path,
                                         const struct clt_meta *meta, size_t n);

/* Loads a checkpoint into a trainer made from the same model: every parameter and state
 * tensor must be present with the same shape (CLT_ERR_FORMAT naming the first mismatch
 * otherwise). With optimizer, also the moments and counters, so that training continues as
 * if never stopped. */
CLT_API enum clt_status clt_trainer_load(struct clt_trainer *tr, const char *path, bool optimizer);

struct clt_checkpoint;

/* Opens a checkpoint to read its metadata and tensors without a trainer (to rebuild the
 * model it describes, or to inspect it). */
CLT_API enum clt_status clt_checkpoint_open(const char *path, const struct clt_log *log,
                                            struct clt_checkpoint **out);
CLT_API void clt_checkpoint_close(struct clt_checkpoint *ck);

/* The metadata value of key, or NULL. Valid until clt_checkpoint_close. */
CLT_API const char *clt_checkpoint_meta(const struct clt_checkpoint *ck, const char *key);

/* Tensors: count, and the name, shape and F32 data of one (data valid until close), in name
 * order. A tensor of another dtype, or of more than CLT_MAX_DIMS dimensions, is
 * CLT_ERR_UNSUPPORTED. */
CLT_API uint32_t clt_checkpoint_tensor_count(const struct clt_checkpoint *ck);
CLT_API enum clt_status clt_checkpoint_tensor(const struct clt_checkpoint *ck, uint32_t index,
                                              const char **name, uint32_t *ndim, int64_t *shape,
                                              const float **data);

#ifdef __cplusplus
}
#endif

#endif /* CLTRAIN_H */
