/*
 * gemm_host.c: GEMM by the host's BLAS (OpenBLAS) on CPU devices, in queue order.
 *
 * A CPU device that shares host memory and runs native kernels (PoCL: "Run native kernels:
 * Yes") can run any host function as a command of its queue: clEnqueueNativeKernel copies an
 * argument block, replaces the cl_mem handles listed in mem_list by the host addresses of
 * those buffers, and calls the function when the command's turn comes, after every command
 * enqueued before it and before every command enqueued after it. The function here calls
 * cblas_sgemm once per batch item. The in-order compute queue runs one command at a time, so
 * PoCL's worker threads are idle during the call and OpenBLAS's own threads (one per core by
 * default) have the cores to themselves (docs/bench.md has the figures).
 *
 * Built only when meson finds OpenBLAS (option host_blas); clt__gemm_host_available then
 * says false everywhere. CLTRAIN_HOST_BLAS=0 refuses it at run time.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef CLT_HAVE_HOST_BLAS
#include <cblas.h>

/* The argument block the runtime copies. mem[0..count) hold the distinct cl_mem handles of
 * A, B and C when enqueued and the host addresses of those buffers' first bytes when the
 * function runs; A, B and C are mem[which[0]], mem[which[1]] and mem[which[2]]. Each buffer
 * is listed once: PoCL 3.1 replaces only the first location of a buffer listed twice (as
 * when A and C are views of one arena). Offsets, leading dimensions and strides are in
 * elements. */
struct host_gemm_args {
    void *mem[3];
    int32_t which[3];
    int64_t oa, ob, oc;
    int64_t sa, sb, sc;
    int32_t m, n, k, lda, ldb, ldc, batch;
    int32_t trans_a, trans_b;
    float alpha, beta;
};

static void CL_CALLBACK host_gemm(void *p)
{
    const struct host_gemm_args *h = p;
    const float *a = (const float *)h->mem[h->which[0]] + h->oa;
    const float *b = (const float *)h->mem[h->which[1]] + h->ob;
    float *c = (float *)h->mem[h->which[2]] + h->oc;
    for (int32_t i = 0; i < h->batch; i++)
        cblas_sgemm(CblasRowMajor, h->trans_a ? CblasTrans : CblasNoTrans,
                    h->trans_b ? CblasTrans : CblasNoTrans, h->m, h->n, h->k, h->alpha,
                    a + i * h->sa, h->lda, b + i * h->sb, h->ldb, h->beta, c + i * h->sc, h->ldc);
}

static bool built_in(void)
{
    return true;
}
#else
static bool built_in(void)
{
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
    if (!built_in() || (env && strcmp(env, "0") == 0))
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
    dev->gemm_host = (type & CL_DEVICE_TYPE_CPU) && unified && (caps & CL_EXEC_NATIVE_KERNEL);
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
    struct host_gemm_args h = {
        .oa = (int64_t)a.offset,
        .ob = (int64_t)b.offset,
        .oc = (int64_t)c.offset,
        .sa = g->stride_a,
        .sb = g->stride_b,
        .sc = g->stride_c,
        .m = (int32_t)g->m,
        .n = (int32_t)g->n,
        .k = (int32_t)g->k,
        .lda = (int32_t)g->lda,
        .ldb = (int32_t)g->ldb,
        .ldc = (int32_t)g->ldc,
        .batch = (int32_t)(g->batch > 0 ? g->batch : 1),
        .trans_a = g->trans_a,
        .trans_b = g->trans_b,
        .alpha = g->alpha,
        .beta = g->beta,
    };
    cl_mem operands[3] = {a.mem, b.mem, c.mem}, mems[3];
    const void *locs[3];
    cl_uint count = 0;
    for (int i = 0; i < 3; i++) {
        cl_uint j = 0;
        while (j < count && mems[j] != operands[i])
            j++;
        if (j == count) {
            mems[count] = operands[i];
            h.mem[count] = operands[i];
            locs[count] = &h.mem[count];
            count++;
        }
        h.which[i] = (int32_t)j;
    }
    cl_int err = clEnqueueNativeKernel(dev->queue, host_gemm, &h, sizeof h, count, mems, locs, 0,
                                       NULL, NULL);
    return clt__cl_check(&dev->log, err, "clEnqueueNativeKernel (host GEMM)");
#else
    (void)g;
    (void)a;
    (void)b;
    (void)c;
    return CLT_ERR_UNSUPPORTED;
#endif
}
