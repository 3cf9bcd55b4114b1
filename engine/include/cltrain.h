/*
 * cltrain.h: the whole public API of libcltrain, a portable OpenCL engine for training
 * neural networks.
 *
 * A program trains a model in four steps: open a device, describe the model as a graph,
 * make a trainer from the graph, and feed it batches. This one is examples/train_mlp.c (from
 * its #include on; the suite builds and runs that file and checks that the two agree): an
 * 8-32-3 MLP that learns which of three features is largest.
 *
 * ---- examples/train_mlp.c ----
 *     #include <cltrain.h>
 *     #include <stdio.h>
 *     #include <stdlib.h>
 *
 *     enum { BATCH = 64, FEATURES = 8, HIDDEN = 32, CLASSES = 3, STEPS = 300 };
 *
 *     // Fills one batch from a simple linear congruential generator.
 *     static void make_batch(float *x, int32_t *y, uint32_t *rng)
 *     {
 *         for (int r = 0; r < BATCH; r++) {
 *             for (int f = 0; f < FEATURES; f++) {
 *                 *rng = *rng * 1664525u + 1013904223u;
 *                 x[r * FEATURES + f] = (float)(*rng >> 8) / 8388608.0f - 1.0f;
 *             }
 *             int best = 0;
 *             for (int c = 1; c < CLASSES; c++)
 *                 if (x[r * FEATURES + c] > x[r * FEATURES + best])
 *                     best = c;
 *             y[r] = best;
 *         }
 *     }
 *
 *     int main(int argc, char **argv)
 *     {
 *         struct clt_device *dev = NULL;
 *         struct clt_graph *g = NULL;
 *         struct clt_trainer *tr = NULL;
 *         enum clt_status st = clt_device_open(argc > 1 ? argv[1] : NULL, NULL, &dev);
 *         if (st == CLT_OK)
 *             st = clt_graph_create(&g);
 *         if (st != CLT_OK) {
 *             fprintf(stderr, "train_mlp: %s\n", clt_status_str(st));
 *             return 1;
 *         }
 *
 *         // The model: x [B, 8] -> linear 32 -> relu -> linear 3 -> cross-entropy with y [B].
 *         struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){BATCH, FEATURES});
 *         struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){BATCH});
 *         struct clt_tensor *h = clt_relu(g, clt_linear(g, x, HIDDEN, true, "fc1"));
 *         struct clt_tensor *logits = clt_linear(g, h, CLASSES, true, "fc2");
 *         struct clt_tensor *loss = clt_cross_entropy(g, logits, y, -1, 0.0f);
 *         if (clt_graph_status(g) != CLT_OK) {
 *             fprintf(stderr, "train_mlp: %s\n", clt_graph_error(g));
 *             return 1;
 *         }
 *
 *         struct clt_trainer_options opt;
 *         clt_trainer_options_init(&opt, CLT_OPTIM_ADAM);
 *         opt.optimizer.lr = 0.01;
 *         opt.seed = 42;
 *         st = clt_trainer_create(dev, g, loss, &opt, &tr);
 *
 *         static float xb[BATCH * FEATURES];
 *         static int32_t yb[BATCH];
 *         uint32_t rng = 1;
 *         float value = 0.0f;
 *         for (int step = 0; st == CLT_OK && step < STEPS; step++) {
 *             make_batch(xb, yb, &rng);
 *             const void *batch[] = {xb, yb};
 *             st = clt_trainer_step(tr, batch); // enqueues; returns at once
 *             if (st == CLT_OK && step % 100 == 0 && (st = clt_trainer_loss(tr, &value)) == CLT_OK)
 *                 printf("step %3d  loss %.4f\n", step, value);
 *         }
 *
 *         // Held-out accuracy, forward only.
 *         static float out[BATCH * CLASSES];
 *         int correct = 0;
 *         make_batch(xb, yb, &rng);
 *         const void *batch[] = {xb, yb};
 *         if (st == CLT_OK)
 *             st = clt_trainer_eval(tr, batch, logits, out, BATCH * CLASSES, &value);
 *         for (int r = 0; st == CLT_OK && r < BATCH; r++) {
 *             int best = 0;
 *             for (int c = 1; c < CLASSES; c++)
 *                 if (out[r * CLASSES + c] > out[r * CLASSES + best])
 *                     best = c;
 *             correct += best == yb[r];
 *         }
 *         if (st == CLT_OK)
 *             printf("held-out loss %.4f, accuracy %d/%d\n", value, correct, BATCH);
 *         else
 *             fprintf(stderr, "train_mlp: %s\n", clt_status_str(st));
 *
 *         clt_trainer_free(tr);
 *         clt_graph_free(g);
 *         clt_device_close(dev);
 *         return st == CLT_OK && correct >= BATCH * 8 / 10 ? 0 : 1;
 *     }
 * ---- end of examples/train_mlp.c ----
 *
 * The reference follows, in the order a program meets it: status codes and logging,
 * devices, arenas and views, GEMM, graphs (inputs, parameters, ops, layers, losses),
 * trainers, datasets and batches, checkpoints. Each declaration has its contract: ownership,
 * whether it blocks or only enqueues, shapes.
 *
 * Overview
 * --------
 * A `struct clt_device` owns everything that belongs to one OpenCL device: its context, a
 * compute queue and a transfer queue, the compiled kernel programs (built once, cached on
 * disk), the GEMM backend and its temporary buffer. Device memory is handed out by arenas:
 * a few large buffers per model, from which tensors are taken as views
 * (buffer, byte offset, shape). Work is only enqueued; the host waits where it asks to.
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
 * CLTRAIN_CACHE_BINARIES  1 or 0: program binaries are (not) written to the cache, whatever
 *                    the driver (see clt_device_options.binaries)
 * CLTRAIN_GEMM       clblast, own or auto: the GEMM backend when the options say AUTO
 * CLTRAIN_TUNE       0: under AUTO, use the default GEMM per shape without timing
 * CLTRAIN_TUNE_BUDGET  seconds one tuning session may spend (trainer creation 10,
 *                      clt_device_gemm_tune 60)
 * CLTRAIN_HOST_BLAS  0: never use the host's BLAS on CPU devices
 * CLTRAIN_RECORD     0: a trainer sets every kernel argument of every step instead of replaying
 *                    its recorded launches (read at trainer creation)
 * CLTRAIN_FUSE       0: trainers created now run every elementwise op as its own kernel
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
    /* Whether programs built from source have their binaries written to the cache (entries
     * already there are read either way): 1 yes, 0 no, -1: CLTRAIN_CACHE_BINARIES when it is
     * 0 or 1, else yes unless the driver is PoCL with its own kernel cache on (POCL_KERNEL_CACHE
     * not 0), where only clt_device_warm writes them. PoCL compiles a kernel at its first
     * launch and keeps it in that cache; asked for a program's binary it compiles every kernel
     * of the program first, which made the time to a model's first step from empty caches
     * about twice as long (docs/architecture.md). */
    int32_t binaries;
    const char *cl_dir; /* NULL: CLTRAIN_CL_DIR if set, else the embedded sources */
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
 * GEMM backend, so later work compiles nothing. Writes the binaries to the cache where
 * clt_device_options.binaries is -1 and only the driver said no (PoCL): compiling every kernel
 * is what warming asks for. Blocks. report may be NULL. */
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
/*
 * The engine's GEMM is usable on its own, over views of an arena.
 *
 * Example: multiply two matrices on the default device, outside any graph.
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
 */

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
 * within a time budget (CLTRAIN_TUNE_BUDGET seconds, default 10: on a cold CPU device timing
 * one shape means compiling a dozen kernels); clt_device_gemm_tune times given shapes ahead
 * of time (default budget 60 s). Shapes not timed (left out by the budget, or met outside a
 * tuning session, as by clt_gemm) take the choice of the nearest timed shape with the same
 * transposes (within 4x in one size, 2x in two), else the default, until a session times them; a
 * shape the budget ran out in the middle of is stored as partial: the best candidate timed serves
 * it, and a later session times the candidates not yet timed (at least one per session), so no
 * candidate is timed twice and every shape gets its whole list in the end. CLTRAIN_TUNE=0 uses the
 * defaults without timing. Every candidate's result is checked against a host reference before it
 * may win. Progress goes to the log at INFO. */

/* Most candidates one shape reports. */
#define CLT_GEMM_MAX_CANDIDATES 16

/* The tuner ranks the host BLAS by its measured time times CLT_GEMM_HOST_CHARGE, and the
 * widened path of a 16-bit storage by its time times CLT_GEMM_WIDEN_CHARGE
 * (CLT_GEMM_HOST_CHARGE when the shape's fp32 choice inside it is the host BLAS): timed back
 * to back they run faster than they do inside a training step. The candidates' gflops stay
 * the measured figures; `cltrain tune --show` prints the ranked ones beside them. */
#define CLT_GEMM_HOST_CHARGE 1.5
#define CLT_GEMM_WIDEN_CHARGE 1.25

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
    uint32_t storage; /* the operands' storage, an enum clt_precision (below): fp32, or the
                       * 16-bit storage of a mixed-precision trainer's plan */
    char chosen[96];  /* the winner's name */
    bool partial;     /* the budget ran out among the candidates: the winner of those listed,
                       * and a later session times the rest (those listed are not timed again) */
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

/* CLBlast's SGEMM kernel parameters the tuner decided for the device, as text: "default"
 * (CLBlast's own kept), "NAME=VALUE,..." (found faster on the device and handed to CLBlast
 * through CLBlastOverrideParameters), or "" when not decided (CPU devices, where the host
 * BLAS and the own kernel serve, or nothing tuned yet). CLT_ERR_INVALID_ARGUMENT when out
 * is too small (256 bytes always suffice). */
CLT_API enum clt_status clt_device_gemm_clblast_params(const struct clt_device *dev, char *out,
                                                       size_t size);

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

/* A trained F32 parameter with a unique name (e.g. "fc1.weight"). Its kind is
 * CLT_PARAM_WEIGHT; the layer helpers below mark the parameters they make (see
 * clt_param_set_kind). */
CLT_API struct clt_tensor *clt_param(struct clt_graph *g, const char *name, uint32_t ndim,
                                     const int64_t *shape, struct clt_init init);

/* What a parameter is, for the optimizer's parameter groups (struct clt_param_group): the
 * layer helpers mark biases (clt_linear, clt_conv2d), norm gains and shifts (clt_layer_norm,
 * clt_batch_norm) and embedding tables (clt_embedding); every other parameter is a weight. */
enum clt_param_kind {
    CLT_PARAM_WEIGHT = 0,
    CLT_PARAM_BIAS = 1,
    CLT_PARAM_NORM = 2,      /* a normalisation layer's gain or shift */
    CLT_PARAM_EMBEDDING = 3, /* a lookup table */
};
#define CLT_PARAM_KIND_BIT(kind) (1u << (kind))

/* Sets the kind of a parameter made by clt_param (a hand-made bias, say). An error of the
 * graph (CLT_ERR_INVALID_ARGUMENT) for a tensor that is not a trained parameter or an
 * unknown kind. Accepts NULL (an earlier error of the graph). */
CLT_API void clt_param_set_kind(struct clt_tensor *param, enum clt_param_kind kind);

/* The kind of a parameter (CLT_PARAM_WEIGHT for any other tensor). */
CLT_API enum clt_param_kind clt_param_get_kind(const struct clt_tensor *param);

/* A kept, untrained F32 tensor with a unique name (batch norm's running averages), saved in
 * checkpoints like a parameter. */
CLT_API struct clt_tensor *clt_state(struct clt_graph *g, const char *name, uint32_t ndim,
                                     const int64_t *shape, struct clt_init init);

/* The parameter or state tensor named `name` ("fc1.weight", "bn.running_mean"), made by
 * clt_param, clt_state or a layer, to be used again: by clt_matmul and the other ops, or by a
 * layer given it through struct clt_layer_params (weight tying, below). When the graph has no
 * parameter or state of that name, returns NULL and records that as the graph's error, as a
 * builder would (inputs and op results are not found). */
CLT_API struct clt_tensor *clt_graph_param(struct clt_graph *g, const char *name);

/* ---- Arithmetic -----------------------------------------------------------------------
 * Broadcasting. clt_add, clt_sub and clt_mul follow numpy's (and PyTorch's) rules: the two
 * shapes are aligned from their last axes; at each axis the sizes must be equal or one of
 * them 1, and a missing leading axis counts as 1; the output has the larger size at every
 * axis, and an input of size 1 at an axis is read again along all of it. Learned positions
 * [T, D] add to activations [N, T, D]; [N, 1, D] * [1, T, 1] makes [N, T, D]; a [1] tensor
 * scales anything. In the backward pass the gradient of each input is the output's
 * gradient (for mul, times the other input) summed over the axes along which the input was
 * stretched, in a fixed order, so results do not depend on the device. Equal shapes, and a
 * trailing block over leading axes (a [D] bias on [N, D]), run the same kernels as
 * clt_add_bias and clt_mul_broadcast; those two remain for code that wants the trailing-axes
 * shape checked.
 */

/* op(a) * op(b): a [M, K] (trans_a: [K, M]), b [K, N] (trans_b: [N, K]) -> [M, N]. With 3-D
 * a [B, M, K] and b [B, K, N] the product is taken per batch item -> [B, M, N]. */
CLT_API struct clt_tensor *clt_matmul(struct clt_graph *g, struct clt_tensor *a,
                                      struct clt_tensor *b, bool trans_a, bool trans_b);

/* Elementwise a + b, a - b and a * b with broadcasting (above): any two shapes that
 * broadcast -> the broadcast shape, e.g. [T, D] + [N, T, D] -> [N, T, D],
 * [N, 1, D] * [1, T, 1] -> [N, T, D], [1] * [N, D] -> [N, D]. Shapes that do not broadcast
 * are a graph error naming both. */
CLT_API struct clt_tensor *clt_add(struct clt_graph *g, struct clt_tensor *a, struct clt_tensor *b);
CLT_API struct clt_tensor *clt_sub(struct clt_graph *g, struct clt_tensor *a, struct clt_tensor *b);
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
/*
 * Weight tying and shared layers. Each layer has an _ex form that takes a struct
 * clt_layer_params: every member given (non-NULL) is used as that part of the layer instead of
 * a new parameter, and the layer makes only the parts left NULL, under its name (a layer given
 * every part makes none, and its name may be NULL). A given weight or bias must be a
 * parameter of the same graph (clt_param, or a layer's, found with clt_graph_param) of exactly
 * the shape the layer would make; batch norm's running averages must be state tensors of shape
 * [C]. A member the layer does not have (a bias with bias off, running averages for any layer
 * but batch norm) is an error too. Errors are recorded in the graph and name the layer, the
 * part and both shapes. A parameter used by several layers or ops is one tensor: it is saved,
 * initialised (by its first maker's rule) and updated once, and its gradient is the sum of the
 * contributions of every use.
 *
 * Tying a language model's output layer to its token embedding, as GPT-2 does: the embedding's
 * weight [vocab, dim] is exactly the [out, in] weight of a linear layer from dim to vocab, so
 * no transpose is needed:
 *
 *     struct clt_tensor *h = clt_embedding(g, ids, vocab, dim, "tok");      // [N, T, dim]
 *     ... transformer blocks ...
 *     struct clt_layer_params tied = {.weight = clt_graph_param(g, "tok.weight")};
 *     struct clt_tensor *logits = clt_linear_ex(g, h, vocab, false, "head", &tied);
 *
 * examples/char_gpt.c trains such a model on a text file and samples from it.
 */
struct clt_layer_params {
    struct clt_tensor *weight;
    struct clt_tensor *bias;
    struct clt_tensor *running_mean; /* batch norm only */
    struct clt_tensor *running_var;  /* batch norm only */
};

/* x [..., in] -> [..., out]: x * weight^T + bias; weight [out, in] Kaiming-uniform with
 * a = 1/sqrt(3) (PyTorch's nn.Linear), bias [out] U(-1/sqrt(in), 1/sqrt(in)).
 * Parameters "<name>.weight", "<name>.bias". */
CLT_API struct clt_tensor *clt_linear(struct clt_graph *g, struct clt_tensor *x,
                                      int64_t out_features, bool bias, const char *name);
/* The same with given parameters (use may be NULL): weight [out, in], bias [out]. */
CLT_API struct clt_tensor *clt_linear_ex(struct clt_graph *g, struct clt_tensor *x,
                                         int64_t out_features, bool bias, const char *name,
                                         const struct clt_layer_params *use);

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
/* The same with given parameters (use may be NULL): weight [out, C / groups, kh, kw], bias
 * [out] (with desc->bias). */
CLT_API struct clt_tensor *clt_conv2d_ex(struct clt_graph *g, struct clt_tensor *x,
                                         const struct clt_conv2d_desc *desc, const char *name,
                                         const struct clt_layer_params *use);

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
/* The same with given parameters and state (use may be NULL), each [C]. */
CLT_API struct clt_tensor *clt_batch_norm_ex(struct clt_graph *g, struct clt_tensor *x, float eps,
                                             float momentum, const char *name,
                                             const struct clt_layer_params *use);

/* Layer norm over the last axis of x [..., D]. Parameters "<name>.weight" [D] (ones),
 * "<name>.bias" [D] (zeros). -> shape of x. */
CLT_API struct clt_tensor *clt_layer_norm(struct clt_graph *g, struct clt_tensor *x, float eps,
                                          const char *name);
/* The same with given parameters (use may be NULL): weight and bias [D]. */
CLT_API struct clt_tensor *clt_layer_norm_ex(struct clt_graph *g, struct clt_tensor *x, float eps,
                                             const char *name, const struct clt_layer_params *use);

/* I32 ids [...] -> [..., dim]: rows of "<name>.weight" [vocab, dim] (N(0, 1), as PyTorch).
 * Ids outside [0, vocab) give zero rows. */
CLT_API struct clt_tensor *clt_embedding(struct clt_graph *g, struct clt_tensor *ids, int64_t vocab,
                                         int64_t dim, const char *name);
/* The same with a given weight [vocab, dim] (use may be NULL; a bias is an error). */
CLT_API struct clt_tensor *clt_embedding_ex(struct clt_graph *g, struct clt_tensor *ids,
                                            int64_t vocab, int64_t dim, const char *name,
                                            const struct clt_layer_params *use);

/* Scaled dot-product attention of q [B, H, T, Dh] with k, v [B, HKV, T, Dh] -> [B, H, T, Dh],
 * scale 1/sqrt(Dh); with causal, position t attends to positions <= t. HKV = H is multi-head
 * attention; HKV dividing H is grouped-query attention: query head h uses key/value head
 * h / (H / HKV) (PyTorch's repeat_interleave of k and v, as in Llama), and the gradients of k
 * and v sum over the heads of each group. */
CLT_API struct clt_tensor *clt_sdpa(struct clt_graph *g, struct clt_tensor *q, struct clt_tensor *k,
                                    struct clt_tensor *v, bool causal);

/* Multi-head self-attention of x [N, T, D] -> [N, T, D]: one linear layer "<name>.qkv"
 * (D -> 3D) makes queries, keys and values, split into heads of D / heads features, then
 * clt_sdpa, then the linear layer "<name>.proj" (D -> D). D divisible by heads. Both linear
 * layers have biases: this is clt_attention_ex with .heads = heads, .causal = causal and
 * .bias = true. */
CLT_API struct clt_tensor *clt_attention(struct clt_graph *g, struct clt_tensor *x, int64_t heads,
                                         bool causal, const char *name);

/* The attention layer's options. A zeroed description has no biases (as clt_conv2d_desc). */
struct clt_attention_desc {
    int64_t heads;    /* H, query heads: D divisible by H; Dh = D / H features each */
    int64_t kv_heads; /* HKV, key/value heads, dividing H (1: multi-query); 0 means H */
    bool causal;      /* position t attends to positions <= t */
    bool bias;        /* biases on "<name>.qkv" and "<name>.proj" */
    struct clt_layer_params qkv, proj; /* given parameters of the two linear layers (tying);
                                          zeroed: the layer makes its own */
};

/* Self-attention of x [N, T, D] -> [N, T, D], multi-head or grouped-query.
 *
 * Weight layout. "<name>.qkv.weight" is [(H + 2 HKV) Dh, D], a linear layer's [out, in]: its
 * output features are the queries of head 0 .. H-1 (rows h Dh .. h Dh + Dh - 1 for head h),
 * then the keys of key/value head 0 .. HKV-1 (rows H Dh + j Dh ..), then the values (rows
 * (H + HKV) Dh + j Dh ..); feature c of a head is row (head's first row) + c.
 * "<name>.qkv.bias" [(H + 2 HKV) Dh] is in the same order. With HKV = H the weight is [3D, D],
 * q, k, v stacked: the layout of PyTorch's nn.MultiheadAttention in_proj_weight and in_proj_bias
 * (and of GPT-2's c_attn, whose Conv1D stores the transpose [D, 3D]). The heads' outputs are
 * joined as [H, Dh] = [D] per position (feature h Dh + c is head h's feature c) before
 * "<name>.proj" (weight [D, D], bias [D]). The scores are scaled by 1/sqrt(Dh).
 *
 * With desc->bias false neither linear layer has a bias (and none is made). desc->qkv and
 * desc->proj give parameters as clt_linear_ex takes them; name may be NULL when every
 * parameter is given. Errors (D not divisible by H, HKV not dividing H, a given parameter of
 * the wrong shape) are the graph's, naming the layer. */
CLT_API struct clt_tensor *clt_attention_ex(struct clt_graph *g, struct clt_tensor *x,
                                            const struct clt_attention_desc *desc,
                                            const char *name);

/* ==== Trainers: running a model ========================================================= */
/*
 * A trainer binds a graph and a scalar loss to a device. Creating it differentiates the
 * graph, plans memory (activations and gradients share storage where their lifetimes do not
 * overlap), compiles every kernel, warms every GEMM shape, allocates every buffer and
 * initialises the parameters. Nothing is allocated or compiled afterwards.
 *
 *     struct clt_trainer_options opt;
 *     clt_trainer_options_init(&opt, CLT_OPTIM_ADAMW);
 *     opt.optimizer.lr = 1e-3;
 *     clt_optimizer_exempt_decay(&opt.optimizer);     // no decay for biases, norms, embeddings
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

/* A parameter group: the trained parameters it selects are updated with the schedule's
 * rate times lr_scale and with their own weight decay (torch.optim's param_groups). A
 * parameter selects the first group both of whose tests it passes: its name matches pattern
 * (an fnmatch(3) glob such as "*.bias" or "blocks.*.attn.*"; "" matches every name) and its
 * kind is in kinds (bits CLT_PARAM_KIND_BIT(kind); 0 accepts every kind). Parameters of no
 * group use lr_scale 1 and the optimizer's weight_decay. Groups only change lr and weight
 * decay; every other hyper-parameter is the optimizer's. */
struct clt_param_group {
    char pattern[64];
    uint32_t kinds;
    double lr_scale;     /* >= 0 */
    double weight_decay; /* >= 0, replaces the optimizer's for this group */
};

#define CLT_MAX_PARAM_GROUPS 8

/* The optimizer, with PyTorch's meanings and defaults (clt_trainer_options_init).
 * Hyper-parameters are double, as in PyTorch: the engine derives what its float kernels use
 * (1 - beta1, 1 - beta2, 1 - lr * weight_decay, lr * lr_scale) in double on the host and
 * rounds each once, so 0.999 is 0.999 and not the float 0.99900001. The bias corrections
 * 1 - beta^t are computed on the device (where the step counter t lives, since skipped steps
 * do not count) from that 1 - beta, within a few float ulp. The schedule counts optimizer
 * updates; warmup_updates > 0 ramps the rate linearly from 0 over that many updates first.
 * clip_norm > 0 clips the global gradient norm. accumulate > 1 averages the gradients of that
 * many steps (micro-batches) before each update. groups[0 .. ngroups-1]: parameter groups
 * (clt_optimizer_add_group, clt_optimizer_exempt_decay). */
struct clt_optimizer {
    enum clt_optim_kind kind;
    double lr;
    double momentum;          /* SGD */
    double dampening;         /* SGD with momentum: buf = momentum * buf + (1 - dampening) * g */
    bool nesterov;            /* SGD; needs momentum > 0 and dampening 0 */
    double beta1, beta2, eps; /* Adam, AdamW */
    double weight_decay;      /* SGD and Adam: L2 added to the gradient; AdamW: decoupled */
    enum clt_lr_schedule schedule;
    int64_t step_size;
    double gamma;
    int64_t total_updates;
    double min_lr;
    int64_t warmup_updates;
    double clip_norm;
    uint32_t accumulate;
    uint32_t ngroups;
    struct clt_param_group groups[CLT_MAX_PARAM_GROUPS];
};

/* Appends a parameter group (see struct clt_param_group; pattern NULL is "").
 * CLT_ERR_INVALID_ARGUMENT when the optimizer has CLT_MAX_PARAM_GROUPS groups already, the
 * pattern does not fit, or lr_scale or weight_decay is negative or not finite. */
CLT_API enum clt_status clt_optimizer_add_group(struct clt_optimizer *opt, const char *pattern,
                                                uint32_t kinds, double lr_scale,
                                                double weight_decay);

/* AdamW's usual exemption in one call: appends a group of every bias, norm gain and shift,
 * and embedding (by kind, any name) with weight decay 0 and lr_scale 1. Groups added before
 * it take precedence. Errors as clt_optimizer_add_group. */
CLT_API enum clt_status clt_optimizer_exempt_decay(struct clt_optimizer *opt);

/* Number formats: how a trainer stores its tensors (clt_trainer_options.precision) and how
 * clt_checkpoint_export writes weights. docs/precision.md. */
enum clt_precision {
    CLT_PRECISION_FP32 = 0, /* IEEE binary32 */
    CLT_PRECISION_FP16 = 1, /* IEEE binary16: 11-bit significand, largest finite 65504 */
    CLT_PRECISION_BF16 = 2, /* bfloat16: fp32's range, 8-bit significand */
};

struct clt_trainer_options {
    struct clt_optimizer optimizer;
    uint64_t seed;          /* parameter initialisation and dropout */
    bool recompute;         /* recompute cheap activations in the backward pass to save memory */
    bool stop_on_nonfinite; /* a step whose loss or gradients are not finite fails with
                               CLT_ERR_NONFINITE instead of being skipped and counted */
    /* Storage of activations, GEMM operands and the parameters' working copy (fp16 or bf16:
     * 16 bits, with fp32 arithmetic, fp32 master weights, gradients and optimizer state;
     * fp16 with dynamic loss scaling). Default fp32. A 16-bit precision is refused
     * (CLT_ERR_UNSUPPORTED, the op named in the log) for a graph with an op that has no 16-bit
     * kernels or that reads a loss's output, and for data-parallel trainers. docs/precision.md. */
    enum clt_precision precision;
    /* fp16's dynamic loss scaling, torch.amp.GradScaler's rule; a field left 0 takes
     * GradScaler's default: init_scale 65536, growth_factor 2, backoff_factor 0.5,
     * growth_interval 2000; min_scale (a floor GradScaler lacks) 0: none. Ignored in fp32 and
     * bf16. Out of range: CLT_ERR_INVALID_ARGUMENT. */
    struct clt_loss_scaling {
        double init_scale;       /* > 0 */
        double growth_factor;    /* > 1 */
        double backoff_factor;   /* in (0, 1) */
        int32_t growth_interval; /* >= 1 */
        double min_scale;        /* >= 0, <= init_scale */
    } loss_scaling;
    /* Creation for tuning ahead of time (`cltrain tune`, `cltrain devices --warm`): the GEMM
     * shapes of the plan are timed within clt_device_gemm_tune's budget (CLTRAIN_TUNE_BUDGET,
     * else 60 s) instead of trainer creation's (CLTRAIN_TUNE_BUDGET, else 10 s). Default false. */
    bool tune_ahead;
};

/* Defaults: the optimizer's PyTorch defaults (SGD lr 0.01, momentum 0, dampening 0; Adam and
 * AdamW lr 1e-3, betas 0.9 and 0.999, eps 1e-8; AdamW weight decay 0.01), constant schedule,
 * no clipping, accumulate 1, no parameter groups (one weight decay for every parameter, as
 * torch.optim given model.parameters()), seed 0, no recomputation, non-finite steps skipped. */
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

/* Partial batches. The batch a graph is planned for is the leading dimension of its inputs
 * (every input must share it). A batch of fewer rows (the last of a dataset) runs on the same
 * plan: inputs[i] then holds only `rows` rows ([rows, ...], dense), the library pads the rest
 * with zeros, and labels read by clt_cross_entropy with -1 (ignored). Every op keeps its
 * planned shapes; the ops that reduce across the batch count real rows only: cross-entropy
 * (through the ignored labels), mse, sum and mean over a tensor whose leading dimension is the
 * batch, and batch norm in training mode (statistics and running averages over the real rows,
 * no gradient into the padded ones). A step on N' < N rows thus equals a step of the same
 * graph planned for N' rows (to rounding). With gradient accumulation a partial micro-batch
 * counts as one micro-batch, as in PyTorch. A graph whose ops mix rows (concat or slice along
 * axis 0, a permute that moves axis 0, a 2-D matmul across rows, a reduction over a tensor
 * whose leading dimension is not the batch, cross-entropy labels that are not an input) runs
 * full batches only: rows < N is CLT_ERR_UNSUPPORTED, naming the op, in the log. rows must be
 * 1 .. N; clt_trainer_step is clt_trainer_step_rows with rows = N. */
CLT_API enum clt_status clt_trainer_step_rows(struct clt_trainer *tr, const void *const *inputs,
                                              uint32_t rows);

/* The loss of the latest step; waits for that step only. CLT_ERR_INVALID_ARGUMENT before
 * the first step. */
CLT_API enum clt_status clt_trainer_loss(struct clt_trainer *tr, float *loss);

struct clt_trainer_stats {
    uint64_t steps;   /* calls to clt_trainer_step */
    uint64_t updates; /* optimizer updates applied */
    uint64_t skipped; /* updates skipped because the loss or gradients were not finite */
    float grad_norm;  /* global gradient norm of the latest update (before clipping) */
    float lr;         /* learning rate of the latest update */
    float loss_scale; /* fp16: the loss scale the next step uses; 1 in fp32 and bf16 */
};

/* Counters of the trainer. Waits for the device. */
CLT_API enum clt_status clt_trainer_stats(struct clt_trainer *tr, struct clt_trainer_stats *out);

/* Forward only, in evaluation mode (dropout off, batch norm with running averages), on one
 * batch. Copies `count` floats of `output` (a tensor of the graph, or NULL) into out, and the
 * loss into *loss (may be NULL). Only the nodes the output (and the loss, when asked for)
 * depend on run, and an input they do not depend on may be NULL (a classifier's labels when
 * only its logits are asked for). Blocks. */
CLT_API enum clt_status clt_trainer_eval(struct clt_trainer *tr, const void *const *inputs,
                                         const struct clt_tensor *output, float *out,
                                         uint64_t count, float *loss);

/* clt_trainer_eval on a batch of `rows` real rows (see clt_trainer_step_rows); count is the
 * output's size or, for an output whose leading dimension is the batch, the size of the real
 * rows (only those are copied). The loss is the mean over the real rows. Blocks. */
CLT_API enum clt_status clt_trainer_eval_rows(struct clt_trainer *tr, const void *const *inputs,
                                              uint32_t rows, const struct clt_tensor *output,
                                              float *out, uint64_t count, float *loss);

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
    /* 16-bit precisions: the parameters' 16-bit working copy (counted in total, not in
     * params); 0 in fp32. grads then also counts the 16-bit gradients the backward pass writes
     * (2 bytes a trained parameter) beside the fp32 ones the optimizer reads. */
    uint64_t params_shadow;
    /* What activations would take in fp32 (equal to activations in an fp32 trainer). */
    uint64_t activations_fp32;
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

/* ==== Data-parallel training: one trainer over several devices ========================= */
/*
 * A trainer over n devices (of one platform or of several: PoCL and rusticl in one process)
 * keeps a replica of the model on each and splits every step's global batch into n
 * contiguous row ranges: replica i takes rows / n rows, one more when i < rows % n, or, with
 * clt_trainer_create_parallel_split, a share weighted by each device's speed (a split fixed
 * per trainer; docs/parallel.md). The replicas' gradients are summed on the host in
 * fp32 in device order, in buckets read while the backward pass still runs, each replica's
 * weighted by its share of the rows, so that a loss
 * that averages over rows (clt_cross_entropy, clt_mse, clt_mean) gives the global batch's
 * gradient; every replica then runs the same update. The graph is built for the rows of one
 * device: ceil(batch / n) or more.
 *
 *     struct clt_device *devs[2];                          // two opened devices
 *     g = ... built for 64 rows ...;                        // a global batch of 128
 *     st = clt_trainer_create_parallel(devs, 2, g, loss, 128, &opt, &tr);
 *     st = clt_trainer_step(tr, batch);                    // 128 rows: 64 on each device
 *
 * The result is a clt_trainer, and every trainer call takes it: clt_trainer_step (the global
 * batch) and clt_trainer_step_rows (n .. batch rows, split as above), clt_trainer_loss (the
 * rows-weighted mean of the replicas' losses), clt_trainer_eval and _eval_rows (on device 0,
 * in chunks of the graph's batch; more rows than that need an output whose leading dimension
 * is the batch), clt_trainer_stats, the classifier helpers, checkpoints (saved from device 0;
 * a load reaches every replica), parameter reads (device 0) and writes (every replica).
 * clt_trainer_memory reports one device's memory. Batch norm in training mode normalises
 * with the statistics of each device's own rows (as PyTorch's DistributedDataParallel does);
 * its running averages are device 0's. Dropout draws each replica's mask from the element's
 * index within that replica's rows, so a run with dropout is identical run to run but not equal
 * to one device's. A step that fails part-way leaves the replicas out of step: free the
 * trainer.
 */

/* Makes a trainer over devices[0 .. ndevices-1] (each at most once, all open and distinct;
 * ndevices >= 1) for loss, with the same contract as clt_trainer_create on each device.
 * batch is the global batch of clt_trainer_step; 0 means ndevices times the graph's batch.
 * CLT_ERR_INVALID_ARGUMENT, in device 0's log, when a device appears twice, when batch is
 * below ndevices, or when ceil(batch / ndevices) exceeds the graph's batch; CLT_ERR_UNSUPPORTED
 * when a device would run fewer rows than the graph's batch and the graph cannot run partial
 * batches; CLT_ERR_UNSUPPORTED for a 16-bit options.precision (16-bit training runs on one
 * device). Blocks (compiles and initialises on every device). Free with clt_trainer_free. */
CLT_API enum clt_status clt_trainer_create_parallel(struct clt_device *const *devices,
                                                    uint32_t ndevices,
                                                    const struct clt_graph *graph,
                                                    const struct clt_tensor *loss, int64_t batch,
                                                    const struct clt_trainer_options *options,
                                                    struct clt_trainer **out);

/* The most devices one data-parallel trainer spans. */
#define CLT_PARALLEL_MAX 16

/* Splits a global batch of `batch` rows over n devices in proportion to weights[0 .. n-1]
 * (each finite and > 0, e.g. each device's measured rows per second; NULL: equal weights)
 * into rows[0 .. n-1]: the floor of each exact share, the rows left over one each to the
 * largest remainders (the lower index first on a tie), then a device left with no row takes
 * one from the largest share. Equal weights give rows / n each, one more for i < rows % n.
 * The same rule splits every step, so a split is reproducible. CLT_ERR_INVALID_ARGUMENT when
 * n is 0 or above CLT_PARALLEL_MAX, batch < n, or a weight is bad. Pure: no device. */
CLT_API enum clt_status clt_parallel_split(int64_t batch, uint32_t n, const double *weights,
                                           int64_t *rows);

/* Makes a trainer over devices[0 .. ndevices-1] whose split is uneven (a slow device gets
 * fewer rows): graphs[i] is the same model as graphs[0] built for its own rows (the same
 * parameters, names and shapes, in the same order; the inputs' leading dimension may differ),
 * losses[i] its loss. Device i runs graphs[i]'s planned batch of a step of the global batch,
 * the sum of the planned batches; a step of fewer rows is split by clt_parallel_split with
 * those batches as weights. Each replica's gradients are weighted by its share of the rows, so
 * the sum is the global batch's gradient, for any split. The graphs must outlive the trainer.
 * Otherwise as clt_trainer_create_parallel (whose split is this one with equal graphs). */
CLT_API enum clt_status clt_trainer_create_parallel_split(struct clt_device *const *devices,
                                                          uint32_t ndevices,
                                                          const struct clt_graph *const *graphs,
                                                          const struct clt_tensor *const *losses,
                                                          const struct clt_trainer_options *options,
                                                          struct clt_trainer **out);

/* Times each device's forward, backward and update alone (one after the other, `passes` runs
 * each after one untimed, on zero inputs; the median) and writes its rows per second to
 * rows_per_s[i]: weights for clt_parallel_split. Leaves parameters, state, optimizer moments
 * and counters as they were. Call it between steps that update (not inside an accumulation).
 * Blocks. Timings are noisy: a split derived from them differs run to run, so a reproducible
 * run records the split (clt_trainer_parallel_info) and passes it again. */
CLT_API enum clt_status clt_trainer_parallel_measure(struct clt_trainer *tr, uint32_t passes,
                                                     double *rows_per_s);

/* The default size of a gradient bucket (clt_trainer_parallel_buckets). */
#define CLT_PARALLEL_BUCKET_BYTES (256u * 1024u)

/* Sets the size of the gradient buckets: the trained parameters are grouped, last layer first,
 * into buckets of about `bytes` (whole parameters); each bucket's read starts, on the device's
 * transfer queue, as soon as the backward operations that write its gradients are enqueued and
 * done, while the rest of the backward pass runs. 0: one bucket, read after the whole backward.
 * The sums are the same bit for bit either way. Takes effect at the next step; waits for the
 * devices. CLT_ERR_INVALID_ARGUMENT for a trainer over one device. */
CLT_API enum clt_status clt_trainer_parallel_buckets(struct clt_trainer *tr, uint64_t bytes);

/* A data-parallel trainer's split, buckets and reduction times. */
struct clt_parallel_info {
    uint32_t ndevices;
    int64_t batch;                  /* the global batch */
    int64_t rows[CLT_PARALLEL_MAX]; /* each device's rows in a step of the global batch */
    uint32_t buckets;               /* gradient buckets */
    uint64_t grad_bytes;            /* one device's gradients (the bytes each step reduces) */
    /* From profiling events, summed over the steps that reduced, on devices opened with
     * profiling (0 otherwise): the device time of the gradient reads, the part of it that ran
     * before the backward pass ended (hidden by it), and the time from the end of the backward
     * pass to the summed gradients back on the device (the reduction left exposed), the
     * smallest over the devices in each step (that of the device whose backward ended last,
     * which holds no wait for a slower device). */
    uint64_t profiled_steps;
    double read_s, hidden_s, exposed_s;
};

/* Fills *out for a trainer made by clt_trainer_create_parallel or _split
 * (CLT_ERR_INVALID_ARGUMENT for another). Waits for nothing. */
CLT_API enum clt_status clt_trainer_parallel_info(const struct clt_trainer *tr,
                                                  struct clt_parallel_info *out);

/* A sum across processes (MPI ranks, or any transport) of a data-parallel trainer's
 * gradients: called by every clt_trainer_step that updates, once per gradient bucket
 * (clt_trainer_parallel_buckets), in the same order in every process, with the host's fp32 sum
 * of this process's replicas' gradients of the bucket (n floats: a contiguous range of the
 * trained parameters in parameter order, each replica's weighted by its share of this
 * process's rows). It must replace sum[0 .. n-1] with the same values in every process (the
 * sum over processes, each weighted by its share of the global batch) and return CLT_OK, or an
 * error status, which fails the step. It runs on the
 * calling thread and may block. docs/parallel.md, "Across processes (MPI)". */
typedef enum clt_status (*clt_allreduce_fn)(void *user, float *sum, uint64_t n);

/* Sets the all-reduce of tr, a trainer of clt_trainer_create_parallel (of one device or
 * more); fn NULL removes it. The library never calls MPI itself: the caller initialises its
 * transport and gives every process the same graph, options and global batch split.
 * CLT_ERR_INVALID_ARGUMENT when tr is not data-parallel; CLT_ERR_UNSUPPORTED for a 16-bit
 * trainer. */
CLT_API enum clt_status clt_trainer_set_allreduce(struct clt_trainer *tr, clt_allreduce_fn fn,
                                                  void *user);

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

/* ==== Inference: executors and classifier helpers ====================================== */
/*
 * An executor runs a graph forward only, for inference: made from a device, a graph and the
 * outputs wanted, it plans only the nodes those outputs depend on (an input they do not depend
 * on, such as a classifier's labels, is not needed), allocates no gradients and no optimizer
 * state, and runs in evaluation mode (dropout off, batch norm on its running averages). Its
 * parameters start from their initialisers; take them from a trainer (clt_executor_copy_params),
 * a checkpoint (clt_executor_load) or the host, by name (clt_executor_param_write). After a run,
 * the value of any output (and of any input, parameter or state tensor) can be read, by tensor
 * or by name, until the next run. The graph must outlive the executor.
 *
 *     const struct clt_tensor *outs[] = {probs};
 *     struct clt_executor *ex = NULL;
 *     st = clt_executor_create(dev, g, outs, 1, &ex);
 *     if (st == CLT_OK) st = clt_executor_load(ex, "model.safetensors");
 *     const void *in[] = {images, NULL};                  // labels not needed
 *     if (st == CLT_OK) st = clt_executor_run(ex, in, rows);  // rows <= the planned batch
 *     if (st == CLT_OK) st = clt_executor_read(ex, probs, out, rows * 10);
 *     clt_executor_free(ex);
 */

struct clt_executor;

/* Makes an executor of the n outputs (F32 or I32 tensors of graph) on dev. Blocks (plans,
 * compiles, allocates, initialises). CLT_ERR_DEVICE_MEMORY when it does not fit. */
CLT_API enum clt_status clt_executor_create(struct clt_device *dev, const struct clt_graph *graph,
                                            const struct clt_tensor *const *outputs, uint32_t n,
                                            struct clt_executor **out);

/* Waits for the executor's work and frees it. Accepts NULL. */
CLT_API void clt_executor_free(struct clt_executor *ex);

/* The planned batch (the inputs' leading dimension; 1 for a graph without inputs). */
CLT_API int64_t clt_executor_batch(const struct clt_executor *ex);

/* Where the executor's device memory goes (gradients and optimizer are 0). */
CLT_API enum clt_status clt_executor_memory(const struct clt_executor *ex,
                                            struct clt_memory_report *out);

/* Copies every parameter and state tensor of the executor from the trainer's tensor of the
 * same name and shape (a device copy when both are on one device, through the host
 * otherwise). CLT_ERR_INVALID_ARGUMENT, naming the tensor, when one is missing or differs.
 * Blocks. */
CLT_API enum clt_status clt_executor_copy_params(struct clt_executor *ex, struct clt_trainer *tr);

/* Loads parameters and state from a checkpoint, as clt_trainer_load without the optimizer. */
CLT_API enum clt_status clt_executor_load(struct clt_executor *ex, const char *path);

/* A parameter's values to or from the host, by name, as clt_trainer_param_read/_write. */
CLT_API enum clt_status clt_executor_param_read(struct clt_executor *ex, const char *name,
                                                float *dst, uint64_t count);
CLT_API enum clt_status clt_executor_param_write(struct clt_executor *ex, const char *name,
                                                 const float *src, uint64_t count);

/* Runs the outputs forward on one batch of `rows` real rows (0 means the planned batch; fewer
 * rows as for clt_trainer_step_rows). inputs[i] is the data of the graph's i-th input, NULL
 * for an input the outputs do not depend on (inputs itself may be NULL if none is needed).
 * Blocks. */
CLT_API enum clt_status clt_executor_run(struct clt_executor *ex, const void *const *inputs,
                                         uint32_t rows);

/* Copies the latest run's value of t (an output, an input, a parameter or a state tensor;
 * other tensors' memory is reused during the run) into dst: count elements, F32 or I32 as t
 * is: its size or, when its leading dimension is the batch, the size of the latest run's
 * real rows. clt_executor_read_named finds the first tensor of that name. Blocks. */
CLT_API enum clt_status clt_executor_read(struct clt_executor *ex, const struct clt_tensor *t,
                                          void *dst, uint64_t count);
CLT_API enum clt_status clt_executor_read_named(struct clt_executor *ex, const char *name,
                                                void *dst, uint64_t count);

/*
 * Classifier helpers, for a trainer (evaluation mode, through clt_trainer_eval_rows) or an
 * executor (whose outputs must include the logits). A classifier is a graph with an F32
 * features input [N, example shape...], an I32 labels input [N] (only evaluation needs it)
 * and logits [N, K]. Over a dataset the examples run in file order, in batches of the planned
 * size; the last, partial, batch is padded (the real rows do not depend on the padding in
 * evaluation mode) and only its real rows are counted or written.
 */
struct clt_classifier {
    const struct clt_tensor *features; /* input [N, ...] F32 */
    const struct clt_tensor *labels;   /* input [N] I32, or NULL (prediction only) */
    const struct clt_tensor *logits;   /* [N, K] F32 */
};

struct clt_eval_result {
    uint64_t examples; /* examples counted: those whose label is in 0 .. K-1 */
    uint64_t correct;  /* of which the largest logit (the first, on ties) is the label */
    double loss;       /* mean cross-entropy of softmax(logits) against the labels, in nats,
                          computed on the host in double (no label smoothing) */
    double accuracy;   /* correct / examples (0 without examples) */
};

/* Evaluates the classifier over every example of ds. confusion, when not NULL, is [K, K] and
 * receives the counts (row = label, column = prediction). Blocks. */
CLT_API enum clt_status clt_trainer_evaluate(struct clt_trainer *tr, const struct clt_classifier *c,
                                             const struct clt_dataset *ds, uint64_t *confusion,
                                             struct clt_eval_result *out);
CLT_API enum clt_status clt_executor_evaluate(struct clt_executor *ex,
                                              const struct clt_classifier *c,
                                              const struct clt_dataset *ds, uint64_t *confusion,
                                              struct clt_eval_result *out);

/* Predicts one batch of `rows` real rows (inputs as for clt_executor_run; 1 .. N rows):
 * classes [rows] the largest logit's index, probs [rows, K] the softmax of the logits; either
 * may be NULL. Blocks. */
CLT_API enum clt_status clt_trainer_predict(struct clt_trainer *tr, const void *const *inputs,
                                            uint32_t rows, const struct clt_tensor *logits,
                                            int32_t *classes, float *probs);
CLT_API enum clt_status clt_executor_predict(struct clt_executor *ex, const void *const *inputs,
                                             uint32_t rows, const struct clt_tensor *logits,
                                             int32_t *classes, float *probs);

/* Predicts every example of ds: classes [count], probs [count, K] (either may be NULL). */
CLT_API enum clt_status clt_trainer_predict_dataset(struct clt_trainer *tr,
                                                    const struct clt_classifier *c,
                                                    const struct clt_dataset *ds, int32_t *classes,
                                                    float *probs);
CLT_API enum clt_status clt_executor_predict_dataset(struct clt_executor *ex,
                                                     const struct clt_classifier *c,
                                                     const struct clt_dataset *ds, int32_t *classes,
                                                     float *probs);

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

/* Loads a checkpoint into a trainer made from the same model, strictly: every parameter and
 * state tensor must be present with the same shape, and every tensor of the file must be one
 * of them or their optimizer state ("optimizer.m.<name>", ...); CLT_ERR_FORMAT naming the
 * first missing or mismatched tensor, or the tensors the model does not use, otherwise. With
 * optimizer, also the moments and counters, so that training continues as if never stopped.
 * clt_trainer_load_with with strict set. */
CLT_API enum clt_status clt_trainer_load(struct clt_trainer *tr, const char *path, bool optimizer);

/* How clt_trainer_load_with loads. */
struct clt_load_options {
    bool optimizer; /* also the optimizer's moments and counters (needs them all in the file) */
    bool strict;    /* refuse a file that lacks a parameter or holds tensors not used */
};

/* What a load found. A tensor of the file is used when it is a parameter or state of the
 * model, or that parameter's optimizer state ("optimizer.m.<name>", "optimizer.v.<name>",
 * "optimizer.grad.<name>"; used even when the load leaves the optimizer out). */
struct clt_load_report {
    uint32_t loaded;  /* parameters and state tensors loaded */
    uint32_t missing; /* parameters and state tensors the file lacks (not strict: they keep
                         their values) */
    uint32_t unused;  /* tensors of the file the model has no use for */
};

/* Loads a checkpoint as options say (NULL: parameters only, strict) and fills report (may be
 * NULL) whether it succeeds or not. Each missing parameter and unused tensor is named in the
 * log (WARN when not strict, ERROR when strict: the first ten of each, then a count). A
 * parameter whose shape or dtype differs is an error in both modes. Like clt_trainer_load,
 * it checks everything before it writes to the device: a failed load leaves the trainer as
 * it was. Blocks. */
CLT_API enum clt_status clt_trainer_load_with(struct clt_trainer *tr, const char *path,
                                              const struct clt_load_options *options,
                                              struct clt_load_report *report);

struct clt_checkpoint;

/* Opens a checkpoint to read its metadata and tensors without a trainer (to rebuild the
 * model it describes, or to inspect it). */
CLT_API enum clt_status clt_checkpoint_open(const char *path, const struct clt_log *log,
                                            struct clt_checkpoint **out);
CLT_API void clt_checkpoint_close(struct clt_checkpoint *ck);

/* The metadata value of key, or NULL. Valid until clt_checkpoint_close. */
CLT_API const char *clt_checkpoint_meta(const struct clt_checkpoint *ck, const char *key);

/* Tensors are numbered 0 .. count-1 in name order. Any tensor of a valid file can be
 * described (clt_checkpoint_tensor_info) and found by name (clt_checkpoint_find); its data can
 * be read converted (clt_checkpoint_read_f32, clt_checkpoint_read_i64) or, for F32 tensors of
 * at most CLT_MAX_DIMS dimensions, borrowed (clt_checkpoint_tensor). */
CLT_API uint32_t clt_checkpoint_tensor_count(const struct clt_checkpoint *ck);

/* Most dimensions of a tensor in a file cltrain reads. */
#define CLT_CHECKPOINT_MAX_DIMS 8

struct clt_checkpoint_info {
    const char *name;  /* valid until clt_checkpoint_close */
    const char *dtype; /* as the file says: "F32", "F16", "BF16", "I64", "I32", "U8", ... */
    uint32_t ndim;
    int64_t shape[CLT_CHECKPOINT_MAX_DIMS];
    uint64_t count; /* elements */
};

/* Describes tensor `index`. CLT_ERR_INVALID_ARGUMENT (no log) for an index out of range. */
CLT_API enum clt_status clt_checkpoint_tensor_info(const struct clt_checkpoint *ck, uint32_t index,
                                                   struct clt_checkpoint_info *out);

/* The index of the tensor named name. CLT_ERR_INVALID_ARGUMENT, with no log line, when the
 * file has none (a question, not a failure: the caller decides). */
CLT_API enum clt_status clt_checkpoint_find(const struct clt_checkpoint *ck, const char *name,
                                            uint32_t *index);

/* Copies the tensor named name, of exactly count elements, into dst as floats: F32 as is,
 * F16 and BF16 widened exactly, F64 rounded, I32 and I64 converted (exact up to 2^24 in
 * magnitude). Other dtypes are CLT_ERR_UNSUPPORTED; a missing name or a wrong count
 * CLT_ERR_INVALID_ARGUMENT. Each failure logs one ERROR line naming the tensor and why. */
CLT_API enum clt_status clt_checkpoint_read_f32(const struct clt_checkpoint *ck, const char *name,
                                                float *dst, uint64_t count);

/* The same into 64-bit integers, from I64, I32 (and the other integer dtypes: I8, U8, I16,
 * U16, U32, BOOL); float dtypes and U64 values above INT64_MAX are CLT_ERR_UNSUPPORTED. */
CLT_API enum clt_status clt_checkpoint_read_i64(const struct clt_checkpoint *ck, const char *name,
                                                int64_t *dst, uint64_t count);

/* The name, shape and F32 data of tensor `index`, borrowed (data valid until close). A tensor
 * of another dtype, or of more than CLT_MAX_DIMS dimensions, is CLT_ERR_UNSUPPORTED with no
 * log line (clt_checkpoint_tensor_info says which; clt_checkpoint_read_f32 converts). */
CLT_API enum clt_status clt_checkpoint_tensor(const struct clt_checkpoint *ck, uint32_t index,
                                              const char **name, uint32_t *ndim, int64_t *shape,
                                              const float **data);

/* ==== Precision and 16-bit export ======================================================= */

/* "fp32", "fp16" or "bf16"; "?" for a value outside the enum. */
CLT_API const char *clt_precision_name(enum clt_precision precision);

/* What clt_checkpoint_export wrote. */
struct clt_export_report {
    uint32_t converted;  /* float tensors written in the chosen precision */
    uint32_t copied;     /* integer and bool tensors written as they were */
    uint32_t dropped;    /* optimizer tensors ("optimizer.*") left out */
    uint64_t elements;   /* elements of the converted tensors */
    uint64_t underflows; /* non-zero values that rounded to zero (fp16's smallest is 6e-8) */
};

/* Writes the weights of the safetensors file at src to dst, every float tensor (F32, F16,
 * BF16; F64 through fp32) rounded to nearest even into `precision` (F32, F16 or BF16), the
 * optimizer's tensors left out, other tensors copied, and src's metadata kept except the
 * optimizer's and the checksum, which is computed anew; "cltrain.precision" names the
 * precision. The file loads in PyTorch (safetensors) and in clt_trainer_load, which widens it.
 * Refused before anything is written (CLT_ERR_FORMAT, the tensor and element in the log): a
 * NaN or Inf in src, or a finite value beyond the precision's range (fp16: |x| >= 65520, which
 * would become Inf). dst is written atomically (a temporary file renamed over it) and must not
 * be src (CLT_ERR_INVALID_ARGUMENT); replacing another existing file is the caller's choice.
 * report may be NULL. Blocks; needs no device. */
CLT_API enum clt_status clt_checkpoint_export(const char *src, const char *dst,
                                              enum clt_precision precision,
                                              const struct clt_log *log,
                                              struct clt_export_report *report);

#ifdef __cplusplus
}
#endif

#endif /* CLTRAIN_H */
