/*
 * gemm.c: matrix products. The only file that includes CLBlast.
 *
 * Implementations behind one call: CLBlast (row-major SGEMM with an engine-owned temporary
 * buffer, and strided batched SGEMM), the engine's own kernel in cl/gemm.cl in one of its
 * configurations (gemm_own.c), and on CPU devices that run native kernels the host's BLAS
 * (gemm_host.c). Under CLT_GEMM_AUTO the tuner (tune.c) picks one per shape; a forced
 * backend uses that backend only. When CLBlast fails under AUTO, the own kernel serves from
 * then on.
 *
 * CLBlast 1.5.3 keeps a process-wide cache of compiled kernels that is not thread-safe, so
 * every CLBlast call is made under one process-wide mutex: the one piece of global state in
 * the library, there because the library it guards has global state of its own.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_own.h"
#include "internal.h"
#include "precision.h"

#include <clblast_c.h>

static pthread_mutex_t clblast_lock = PTHREAD_MUTEX_INITIALIZER;

enum clt_status clt__gemm_setup(struct clt_device *dev, const struct clt_device_options *o)
{
    enum clt_gemm_backend b = o->gemm;
    if (b == CLT_GEMM_AUTO) {
        const char *env = getenv("CLTRAIN_GEMM");
        if (env && strcmp(env, "own") == 0)
            b = CLT_GEMM_OWN;
        else if (env && strcmp(env, "clblast") == 0)
            b = CLT_GEMM_CLBLAST;
        else if (env && *env && strcmp(env, "auto") != 0)
            clt__log(&dev->log, CLT_LOG_WARN,
                     "CLTRAIN_GEMM=%s is not clblast, own or auto; "
                     "using auto",
                     env);
    }
    if (b != CLT_GEMM_AUTO && b != CLT_GEMM_CLBLAST && b != CLT_GEMM_OWN)
        return CLT_ERR_INVALID_ARGUMENT;
    dev->gemm_may_fall_back = b == CLT_GEMM_AUTO;
    dev->gemm_backend = b == CLT_GEMM_OWN ? CLT_GEMM_OWN : CLT_GEMM_CLBLAST;
    if (b != CLT_GEMM_AUTO)
        return CLT_OK;
    clt__gemm_host_setup(dev);
    return clt__tune_setup(dev);
}

/* Releases CLBlast's temporary buffer (it is grown by replacing it). */
static void release_temp(struct clt_device *dev)
{
    if (dev->gemm_temp)
        clReleaseMemObject(dev->gemm_temp);
    dev->gemm_temp = NULL;
    dev->gemm_temp_bytes = 0;
}

void clt__gemm_teardown(struct clt_device *dev)
{
    clt__tune_teardown(dev);
    release_temp(dev);
    if (dev->gemm_wide)
        clReleaseMemObject(dev->gemm_wide);
    dev->gemm_wide = NULL;
    dev->gemm_wide_bytes = 0;
    if (dev->gemm_split)
        clReleaseMemObject(dev->gemm_split);
    dev->gemm_split = NULL;
    dev->gemm_split_bytes = 0;
}

enum clt_gemm_backend clt_device_gemm_backend(const struct clt_device *dev)
{
    return dev ? dev->gemm_backend : CLT_GEMM_AUTO;
}

enum clt_status clt__gemm_resolve(const struct clt_log *log, const struct clt_gemm_shape *in,
                                  struct clt_gemm_shape *out, int64_t *span_a, int64_t *span_b,
                                  int64_t *span_c)
{
    struct clt_gemm_shape g = *in;
    if (g.m <= 0 || g.n <= 0 || g.k <= 0 || g.batch < 0 || g.lda < 0 || g.ldb < 0 || g.ldc < 0 ||
        g.stride_a < 0 || g.stride_b < 0 || g.stride_c < 0 || g.m > INT32_MAX || g.n > INT32_MAX ||
        g.k > INT32_MAX) {
        clt__log(log, CLT_LOG_ERROR, "gemm: impossible shape m=%lld n=%lld k=%lld batch=%lld",
                 (long long)g.m, (long long)g.n, (long long)g.k, (long long)g.batch);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if (g.batch == 0)
        g.batch = 1;
    int64_t a_rows = g.trans_a ? g.k : g.m, a_cols = g.trans_a ? g.m : g.k;
    int64_t b_rows = g.trans_b ? g.n : g.k, b_cols = g.trans_b ? g.k : g.n;
    if (g.lda == 0)
        g.lda = a_cols;
    if (g.ldb == 0)
        g.ldb = b_cols;
    if (g.ldc == 0)
        g.ldc = g.n;
    if (g.lda < a_cols || g.ldb < b_cols || g.ldc < g.n || g.lda > INT32_MAX || g.ldb > INT32_MAX ||
        g.ldc > INT32_MAX) {
        clt__log(log, CLT_LOG_ERROR, "gemm: leading dimension too small or too large");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    /* Elements one matrix spans: (rows - 1) * ld + cols. Sizes are below 2^31 each, so the
     * products below fit in 64 bits. */
    int64_t one_a = (a_rows - 1) * g.lda + a_cols;
    int64_t one_b = (b_rows - 1) * g.ldb + b_cols;
    int64_t one_c = (g.m - 1) * g.ldc + g.n;
    if (g.batch > 1) {
        if (g.stride_a == 0)
            g.stride_a = one_a;
        if (g.stride_b == 0)
            g.stride_b = one_b;
        if (g.stride_c == 0)
            g.stride_c = one_c;
    }
    if (g.batch > INT32_MAX || (g.batch > 1 && (g.stride_a > INT32_MAX || g.stride_b > INT32_MAX ||
                                                g.stride_c > INT32_MAX))) {
        clt__log(log, CLT_LOG_ERROR, "gemm: batch or stride beyond 2^31");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    *span_a = (g.batch - 1) * g.stride_a + one_a;
    *span_b = (g.batch - 1) * g.stride_b + one_b;
    *span_c = (g.batch - 1) * g.stride_c + one_c;
    *out = g;
    return CLT_OK;
}

static CLBlastTranspose trans(bool t)
{
    return t ? CLBlastTransposeYes : CLBlastTransposeNo;
}

/* Grows the engine-owned temporary buffer CLBlast's indirect GEMM needs. */
static enum clt_status ensure_temp(struct clt_device *dev, size_t bytes)
{
    if (bytes <= dev->gemm_temp_bytes)
        return CLT_OK;
    release_temp(dev);
    cl_int err;
    dev->gemm_temp = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    enum clt_status st = clt__cl_check(&dev->log, err, "clCreateBuffer (GEMM temporary)");
    if (st == CLT_OK)
        dev->gemm_temp_bytes = bytes;
    else
        dev->gemm_temp = NULL;
    return st;
}

int clt__clblast_params_get(cl_device_id device, const char *kernel, size_t count,
                            const char *const *names, size_t *values);

int clt__gemm_clblast_params(struct clt_device *dev, const char *kernel, size_t count,
                             const char *const *names, size_t *values)
{
    pthread_mutex_lock(&clblast_lock);
    int rc = clt__clblast_params_get(dev->id, kernel, count, names, values);
    pthread_mutex_unlock(&clblast_lock);
    return rc;
}

enum clt_status clt__gemm_clblast_override(struct clt_device *dev, const char *kernel, size_t count,
                                           const char *const *names, const size_t *values)
{
    pthread_mutex_lock(&clblast_lock);
    CLBlastStatusCode s = CLBlastOverrideParameters(dev->id, kernel, CLBlastPrecisionSingle, count,
                                                    (const char **)names, values);
    pthread_mutex_unlock(&clblast_lock);
    if (s == CLBlastSuccess)
        return CLT_OK;
    clt__log(&dev->log, CLT_LOG_WARN, "CLBlast refused parameters for %s (status %d)", kernel,
             (int)s);
    return CLT_ERR_GEMM;
}

enum clt_status clt__gemm_clblast(struct clt_device *dev, const struct clt_gemm_shape *g,
                                  struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    CLBlastStatusCode s;
    enum clt_status st = CLT_OK;
    pthread_mutex_lock(&clblast_lock);
    if (g->batch > 1) {
        s = CLBlastSgemmStridedBatched(
            CLBlastLayoutRowMajor, trans(g->trans_a), trans(g->trans_b), (size_t)g->m, (size_t)g->n,
            (size_t)g->k, g->alpha, a.mem, a.offset, (size_t)g->lda, (size_t)g->stride_a, b.mem,
            b.offset, (size_t)g->ldb, (size_t)g->stride_b, g->beta, c.mem, c.offset, (size_t)g->ldc,
            (size_t)g->stride_c, (size_t)g->batch, &dev->queue,
            dev->prof ? clt__prof_event(dev, NULL, "clblast_sgemm_batched") : NULL);
    } else {
        size_t temp = 0;
        s = CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, trans(g->trans_a), trans(g->trans_b),
                                       (size_t)g->m, (size_t)g->n, (size_t)g->k, a.offset,
                                       (size_t)g->lda, b.offset, (size_t)g->ldb, c.offset,
                                       (size_t)g->ldc, &dev->queue, &temp);
        if (s == CLBlastSuccess && temp > 0)
            st = ensure_temp(dev, temp);
        if (s == CLBlastSuccess && st == CLT_OK)
            s = CLBlastSgemmWithTempBuffer(
                CLBlastLayoutRowMajor, trans(g->trans_a), trans(g->trans_b), (size_t)g->m,
                (size_t)g->n, (size_t)g->k, g->alpha, a.mem, a.offset, (size_t)g->lda, b.mem,
                b.offset, (size_t)g->ldb, g->beta, c.mem, c.offset, (size_t)g->ldc, &dev->queue,
                dev->prof ? clt__prof_event(dev, NULL, "clblast_sgemm") : NULL,
                temp > 0 ? dev->gemm_temp : NULL);
    }
    pthread_mutex_unlock(&clblast_lock);
    if (st != CLT_OK)
        return st;
    if (s != CLBlastSuccess) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "CLBlast SGEMM failed with status %d (m=%lld n=%lld "
                 "k=%lld batch=%lld)",
                 (int)s, (long long)g->m, (long long)g->n, (long long)g->k, (long long)g->batch);
        return CLT_ERR_GEMM;
    }
    return CLT_OK;
}

enum clt_status clt__gemm_own(struct clt_device *dev, const struct clt_gemm_shape *g,
                              struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    struct clt__gemm_config cfg;
    clt__gemm_own_default(dev, g, &cfg);
    return clt__gemm_own_run(dev, &cfg, g, a, b, c);
}

/* The fp32 GEMM of a resolved shape: the tuner's choice, CLBlast falling back to the own
 * kernel under AUTO. */
static enum clt_status gemm_fp32(struct clt_device *dev, const struct clt_gemm_shape *g,
                                 struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    struct clt__gemm_config cfg;
    switch (clt__tune_choose(dev, g, &cfg)) {
    case CLT__GEMM_IMPL_OWN:
        return clt__gemm_own_run(dev, &cfg, g, a, b, c);
    case CLT__GEMM_IMPL_HOST:
        return clt__gemm_host(dev, g, a, b, c);
    case CLT__GEMM_IMPL_TEST:
        return clt__tune_test_fn(dev)(dev, g, a, b, c);
    case CLT__GEMM_IMPL_WIDEN: /* never chosen in fp32 */
    case CLT__GEMM_IMPL_CLBLAST:
        break;
    }
    enum clt_status st = clt__gemm_clblast(dev, g, a, b, c);
    if (st == CLT_ERR_GEMM && dev->gemm_may_fall_back) {
        clt__log(&dev->log, CLT_LOG_WARN,
                 "CLBlast failed on %s; using the engine's own GEMM "
                 "kernel from now on",
                 dev->info.name);
        dev->gemm_backend = CLT_GEMM_OWN;
        clt__gemm_own_default(dev, g, &cfg);
        st = clt__gemm_own_run(dev, &cfg, g, a, b, c);
    }
    return st;
}

enum clt_status clt__gemm_scratch_grow(struct clt_device *dev, cl_mem *buf, size_t *have,
                                       size_t bytes, const char *what)
{
    if (bytes <= *have)
        return CLT_OK;
    if (*buf)
        clReleaseMemObject(*buf);
    *have = 0;
    cl_int err;
    *buf = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    enum clt_status st = clt__cl_check(&dev->log, err, what);
    if (st == CLT_OK)
        *have = bytes;
    else
        *buf = NULL;
    return st;
}

/* fp32 itself, or the own kernel in configuration own when fp32 is NULL and own is not, or
 * clt__gemm's fp32 choice. */
static enum clt_status run_fp32(struct clt_device *dev, const struct clt_gemm_shape *g,
                                struct clt__buf a, struct clt__buf b, struct clt__buf c,
                                clt__gemm_fn fp32, const struct clt__gemm_config *own)
{
    if (fp32)
        return fp32(dev, g, a, b, c);
    return own ? clt__gemm_own_run(dev, own, g, a, b, c) : gemm_fp32(dev, g, a, b, c);
}

enum clt_status clt__gemm_widened(struct clt_device *dev, const struct clt_gemm_shape *shape,
                                  struct clt__buf a, struct clt__buf b, struct clt__buf c,
                                  clt__gemm_fn fp32)
{
    return clt__gemm_widened_own(dev, shape, a, b, c, fp32, NULL);
}

enum clt_status clt__gemm_widened_own(struct clt_device *dev, const struct clt_gemm_shape *shape,
                                      struct clt__buf a, struct clt__buf b, struct clt__buf c,
                                      clt__gemm_fn fp32, const struct clt__gemm_config *own)
{
    struct clt_gemm_shape g;
    int64_t sa, sb, sc;
    enum clt_status st = clt__gemm_resolve(&dev->log, shape, &g, &sa, &sb, &sc);
    if (st != CLT_OK)
        return st;
    const enum clt_precision p = dev->storage;
    if (p == CLT_PRECISION_FP32)
        return run_fp32(dev, &g, a, b, c, fp32, own);
    if (sa + sb + sc > INT32_MAX) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "gemm: the widened operands (%lld elements) exceed 2^31 elements",
                 (long long)(sa + sb + sc));
        return CLT_ERR_INVALID_ARGUMENT;
    }
    st = clt__gemm_scratch_grow(dev, &dev->gemm_wide, &dev->gemm_wide_bytes,
                                (size_t)(sa + sb + sc) * sizeof(float),
                                "clCreateBuffer (GEMM widened operands)");
    if (st != CLT_OK)
        return st;
    struct clt__buf wa = {dev->gemm_wide, 0}, wb = {dev->gemm_wide, (size_t)sa};
    struct clt__buf wc = {dev->gemm_wide, (size_t)(sa + sb)};
    /* C is narrowed back whole, its span included: where that span has elements outside the
     * matrices (ldc > n, stride_c > the matrix), they go through the scratch too, and come
     * back unchanged (widening is exact, and narrowing an fp16 or bf16 value returns it). */
    bool read_c = g.beta != 0.0f || sc != g.batch * g.m * g.n;
    st = clt__precision_widen(dev, p, sa, a, wa);
    if (st == CLT_OK)
        st = clt__precision_widen(dev, p, sb, b, wb);
    if (st == CLT_OK && read_c)
        st = clt__precision_widen(dev, p, sc, c, wc);
    if (st != CLT_OK)
        return st;
    enum clt_precision prev = clt__storage_set(dev, CLT_PRECISION_FP32);
    st = run_fp32(dev, &g, wa, wb, wc, fp32, own);
    clt__storage_set(dev, prev);
    if (st == CLT_OK)
        st = clt__precision_narrow(dev, p, sc, wc, c);
    return st;
}

enum clt_status clt__gemm(struct clt_device *dev, const struct clt_gemm_shape *shape,
                          struct clt__buf a, struct clt__buf b, struct clt__buf c)
{
    struct clt_gemm_shape g;
    int64_t sa, sb, sc;
    enum clt_status st = clt__gemm_resolve(&dev->log, shape, &g, &sa, &sb, &sc);
    if (st != CLT_OK)
        return st;
    if (dev->storage == CLT_PRECISION_FP32)
        return gemm_fp32(dev, &g, a, b, c);
    struct clt__gemm_config cfg;
    switch (clt__tune_choose(dev, &g, &cfg)) {
    case CLT__GEMM_IMPL_OWN:
        return clt__gemm_own_run(dev, &cfg, &g, a, b, c);
    case CLT__GEMM_IMPL_TEST:
        return clt__tune_test_fn(dev)(dev, &g, a, b, c);
    default: /* the widened path (CLBlast and the host BLAS serve only fp32, through it) */
        return clt__gemm_widened(dev, &g, a, b, c, NULL);
    }
}

enum clt_status clt__gemm_warm(struct clt_device *dev, const struct clt_gemm_shape *shape)
{
    struct clt_gemm_shape g;
    int64_t sa, sb, sc;
    enum clt_status st = clt__gemm_resolve(&dev->log, shape, &g, &sa, &sb, &sc);
    if (st != CLT_OK || dev->gemm_backend != CLT_GEMM_CLBLAST)
        return st;
    /* Run the shape once on scratch buffers: CLBlast compiles and caches what it needs. */
    cl_int err;
    size_t bytes = (size_t)(sa > sb ? (sa > sc ? sa : sc) : (sb > sc ? sb : sc)) * sizeof(float);
    cl_mem scratch[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3 && st == CLT_OK; i++) {
        scratch[i] = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
        st = clt__cl_check(&dev->log, err, "clCreateBuffer (GEMM warm-up)");
    }
    g.beta = 0.0f;
    if (st == CLT_OK) {
        struct clt__buf a = {scratch[0], 0}, b = {scratch[1], 0}, c = {scratch[2], 0};
        st = clt__gemm(dev, &g, a, b, c);
    }
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log, clFinish(dev->queue), "clFinish");
    for (int i = 0; i < 3; i++)
        if (scratch[i])
            clReleaseMemObject(scratch[i]);
    return st;
}

/* Checks that a view is F32 and spans `span` elements within its arena. */
static enum clt_status check_view(struct clt_device *dev, const struct clt_view *v, int64_t span,
                                  const char *which)
{
    if (!v || !v->arena || v->arena->dev != dev || v->dtype != CLT_F32) {
        clt__log(&dev->log, CLT_LOG_ERROR, "gemm: %s is not an F32 view of this device", which);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if ((uint64_t)span > (uint64_t)clt_view_count(v)) {
        clt__log(&dev->log, CLT_LOG_ERROR, "gemm: %s has %lld elements, the shape needs %lld",
                 which, (long long)clt_view_count(v), (long long)span);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return CLT_OK;
}

enum clt_status clt_gemm(struct clt_device *dev, const struct clt_gemm_shape *shape,
                         const struct clt_view *a, const struct clt_view *b,
                         const struct clt_view *c)
{
    if (!dev || !shape || clt__device_usable(dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt_gemm_shape g;
    int64_t sa, sb, sc;
    enum clt_status st = clt__gemm_resolve(&dev->log, shape, &g, &sa, &sb, &sc);
    if (st == CLT_OK)
        st = check_view(dev, a, sa, "A");
    if (st == CLT_OK)
        st = check_view(dev, b, sb, "B");
    if (st == CLT_OK)
        st = check_view(dev, c, sc, "C");
    if (st != CLT_OK)
        return st;
    return clt__gemm(dev, &g, clt__view_buf(a), clt__view_buf(b), clt__view_buf(c));
}
