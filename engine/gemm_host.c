/*
 * gemm_host.c: GEMM by the host's BLAS (OpenBLAS) on CPU devices, in queue order.
 *
 * A CPU device that shares host memory and runs native kernels (PoCL: "Run native kernels:
 * Yes") can run any host function as a command of its queue: clEnqueueNativeKernel copies an
 * argument block and calls the function when the command's turn comes, after every command
 * enqueued before it and before every command enqueued after it. The operands' buffers are
 * mapped (in queue order, before the call) and unmapped after it; the function calls
 * cblas_sgemm once per batch item. The in-order compute queue runs one command at a time, so
 * PoCL's worker threads are idle during the call and OpenBLAS's own threads (one per core by
 * default) have the cores to themselves (docs/bench.md has the figures).
 *
 * OpenBLAS is loaded with dlopen on the first CPU device that can use it, not linked: its
 * pthreads build keeps a worker thread spinning (sched_yield) for about 2^28 cycles, 0.1 s,
 * after every call, reading the length from OPENBLAS_THREAD_TIMEOUT (log2 of the cycles) once,
 * when the library is loaded. A training step calls it every few milliseconds, so that thread
 * never slept and took a core's share from PoCL's threads running the step's kernels
 * (docs/bench.md, "OpenBLAS's spinning threads"). Unless the variable is set, or OpenBLAS is
 * already loaded in the process (then its setting stands), it is set to 4 (the least, 16
 * cycles) before the load: the threads sleep right after a call and wake on the next one.
 *
 * Built only when meson finds OpenBLAS (option host_blas; its headers at build time, the
 * library at run time: CLT_HOST_BLAS_LIB, else libopenblas.so.0 from the loader's path);
 * without it, or when the load fails (logged), clt__gemm_host_available says false and the
 * other implementations serve. CLTRAIN_HOST_BLAS=0 refuses it at run time.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef CLT_HAVE_HOST_BLAS
#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>

/* cblas_sgemm of the loaded library, NULL until loaded or when the load failed; the reason
 * of a failure, for the log. Written once under load_once. */
typedef void (*sgemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint,
                         blasint, blasint, float, const float *, blasint, const float *, blasint,
                         float, float *, blasint);
static sgemm_fn host_sgemm;
static char load_error[256];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

/* The thread timeout set before loading OpenBLAS when the environment has none. */
#define THREAD_TIMEOUT "4"

static void load_blas(void)
{
    const char *names[] = {CLT_HOST_BLAS_LIB, "libopenblas.so.0"};
    void *lib = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++)
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!lib) {
        /* Not loaded yet: OpenBLAS reads the timeout in its constructor, at dlopen. */
        setenv("OPENBLAS_THREAD_TIMEOUT", THREAD_TIMEOUT, 0);
        for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++)
            lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    }
    if (!lib) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "%s", why ? why : "not found");
        return;
    }
    /* POSIX's way to turn dlsym's object pointer into a function pointer. */
    *(void **)&host_sgemm = dlsym(lib, "cblas_sgemm");
    if (!host_sgemm)
        snprintf(load_error, sizeof load_error, "%s has no cblas_sgemm", CLT_HOST_BLAS_LIB);
}

/* The argument block the runtime copies: host addresses of A, B and C (already offset), and
 * the shape. Leading dimensions and strides are in elements. */
struct host_gemm_args {
    const float *a, *b;
    float *c;
    int64_t sa, sb, sc;
    int32_t m, n, k, lda, ldb, ldc, batch;
    int32_t trans_a, trans_b;
    float alpha, beta;
};

static void CL_CALLBACK host_gemm(void *p)
{
    const struct host_gemm_args *h = p;
    /* BLAS says beta 0 does not read C, but OpenBLAS 0.3.21 lets a NaN in C through at some
     * small shapes (1 x 1 x 1): C is cleared first, as clt_gemm_shape promises. */
    if (h->beta == 0.0f)
        for (int32_t i = 0; i < h->batch; i++)
            for (int32_t r = 0; r < h->m; r++)
                memset(h->c + i * h->sc + (int64_t)r * h->ldc, 0, (size_t)h->n * sizeof *h->c);
    for (int32_t i = 0; i < h->batch; i++)
        host_sgemm(CblasRowMajor, h->trans_a ? CblasTrans : CblasNoTrans,
                   h->trans_b ? CblasTrans : CblasNoTrans, h->m, h->n, h->k, h->alpha,
                   h->a + i * h->sa, h->lda, h->b + i * h->sb, h->ldb, h->beta, h->c + i * h->sc,
                   h->ldc);
}

/* The distinct buffers of one GEMM, each with the byte range its operands span. */
struct mapping {
    cl_mem mem;
    size_t lo, hi;
    bool write;
    void *ptr;
};

/* Elements one operand spans: (batch - 1) * stride + (rows - 1) * ld + cols. */
static size_t span(int64_t batch, int64_t stride, int64_t rows, int64_t ld, int64_t cols)
{
    return (size_t)((batch - 1) * stride + (rows - 1) * ld + cols);
}

static enum clt_status enqueue(struct clt_device *dev, const struct clt_gemm_shape *g,
                               struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    int64_t batch = g->batch > 0 ? g->batch : 1;
    struct clt__buf ops[3] = {a, b, c};
    size_t len[3] = {
        span(batch, g->stride_a, g->trans_a ? g->k : g->m, g->lda, g->trans_a ? g->m : g->k),
        span(batch, g->stride_b, g->trans_b ? g->n : g->k, g->ldb, g->trans_b ? g->k : g->n),
        span(batch, g->stride_c, g->m, g->ldc, g->n),
    };
    struct mapping map[3];
    int which[3], count = 0;
    for (int i = 0; i < 3; i++) {
        size_t lo = ops[i].offset * sizeof(float), hi = lo + len[i] * sizeof(float);
        int j = 0;
        while (j < count && map[j].mem != ops[i].mem)
            j++;
        if (j == count)
            map[count++] = (struct mapping){ops[i].mem, lo, hi, false, NULL};
        map[j].lo = lo < map[j].lo ? lo : map[j].lo;
        map[j].hi = hi > map[j].hi ? hi : map[j].hi;
        map[j].write |= i == 2;
        which[i] = j;
    }
    /* Mapping is the portable way to reach a buffer's bytes from the host, and keeps the
     * runtime's own view of where the latest contents are right: PoCL 3.1 hands a native
     * kernel's mem_list stale device copies. The maps, the call and the unmaps run in queue
     * order; on a CPU device with unified memory a map copies nothing. */
    cl_int err = CL_SUCCESS;
    int mapped = 0;
    for (; mapped < count && err == CL_SUCCESS; mapped++) {
        cl_map_flags flags = map[mapped].write ? CL_MAP_READ | CL_MAP_WRITE : CL_MAP_READ;
        map[mapped].ptr =
            clEnqueueMapBuffer(dev->queue, map[mapped].mem, CL_FALSE, flags, map[mapped].lo,
                               map[mapped].hi - map[mapped].lo, 0, NULL, NULL, &err);
    }
    if (err != CL_SUCCESS)
        mapped--;
    enum clt_status st = clt__cl_check(&dev->log, err, "clEnqueueMapBuffer (host GEMM)");
    if (st == CLT_OK) {
        char *base[3];
        for (int i = 0; i < 3; i++)
            base[i] =
                (char *)map[which[i]].ptr + (ops[i].offset * sizeof(float) - map[which[i]].lo);
        struct host_gemm_args h = {
            .a = (const float *)base[0],
            .b = (const float *)base[1],
            .c = (float *)base[2],
            .sa = g->stride_a,
            .sb = g->stride_b,
            .sc = g->stride_c,
            .m = (int32_t)g->m,
            .n = (int32_t)g->n,
            .k = (int32_t)g->k,
            .lda = (int32_t)g->lda,
            .ldb = (int32_t)g->ldb,
            .ldc = (int32_t)g->ldc,
            .batch = (int32_t)batch,
            .trans_a = g->trans_a,
            .trans_b = g->trans_b,
            .alpha = g->alpha,
            .beta = g->beta,
        };
        st = clt__cl_check(
            &dev->log,
            clEnqueueNativeKernel(dev->queue, host_gemm, &h, sizeof h, 0, NULL, NULL, 0, NULL,
                                  dev->prof ? clt__prof_event(dev, NULL, "host_sgemm") : NULL),
            "clEnqueueNativeKernel (host GEMM)");
    }
    /* Unmapped whatever happened, so no map outlives the call. */
    for (int i = 0; i < mapped; i++) {
        enum clt_status st2 = clt__cl_check(
            &dev->log, clEnqueueUnmapMemObject(dev->queue, map[i].mem, map[i].ptr, 0, NULL, NULL),
            "clEnqueueUnmapMemObject (host GEMM)");
        if (st == CLT_OK)
            st = st2;
    }
    return st;
}

/* Whether OpenBLAS is loaded (loading it on the first call); a failure is logged once per
 * device. */
static bool built_in(struct clt_device *dev)
{
    pthread_once(&load_once, load_blas);
    if (!host_sgemm)
        clt__log(&dev->log, CLT_LOG_WARN, "gemm: host OpenBLAS not loaded (%s)", load_error);
    return host_sgemm != NULL;
}
#else
static bool built_in(struct clt_device *dev)
{
    (void)dev;
    return false;
}
#endif

const char *clt__gemm_host_name(void)
{
#ifdef CLT_HAVE_HOST_BLAS
    return "OpenBLAS";
#else
    return "none";
#endif
}

void clt__gemm_host_setup(struct clt_device *dev)
{
    dev->gemm_host = false;
    const char *env = getenv("CLTRAIN_HOST_BLAS");
    if (env && strcmp(env, "0") == 0)
        return;
    cl_device_type type = 0;
    cl_bool unified = CL_FALSE;
    cl_device_exec_capabilities caps = 0;
    if (clGetDeviceInfo(dev->id, CL_DEVICE_TYPE, sizeof type, &type, NULL) != CL_SUCCESS ||
        clGetDeviceInfo(dev->id, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL) !=
            CL_SUCCESS ||
        clGetDeviceInfo(dev->id, CL_DEVICE_EXECUTION_CAPABILITIES, sizeof caps, &caps, NULL) !=
            CL_SUCCESS)
        return;
    /* The device first: a GPU never loads the library. */
    dev->gemm_host =
        (type & CL_DEVICE_TYPE_CPU) && unified && (caps & CL_EXEC_NATIVE_KERNEL) && built_in(dev);
    if (dev->gemm_host)
        clt__log(&dev->log, CLT_LOG_INFO, "gemm: %s runs native kernels; host %s available",
                 dev->info.name, clt__gemm_host_name());
}

enum clt_status clt__gemm_host(struct clt_device *dev, const struct clt_gemm_shape *g,
                               struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    if (!dev->gemm_host) {
        clt__log(&dev->log, CLT_LOG_ERROR, "gemm: host BLAS is not available on %s",
                 dev->info.name);
        return CLT_ERR_UNSUPPORTED;
    }
#ifdef CLT_HAVE_HOST_BLAS
    return enqueue(dev, g, a, b, c);
#else
    (void)g;
    (void)a;
    (void)b;
    (void)c;
    return CLT_ERR_UNSUPPORTED;
#endif
}
