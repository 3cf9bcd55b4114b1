/*
 * micro.c: the micro figures, measured with the kernels of cl/bench.cl: global memory
 * bandwidth (read, write, copy), peak single-precision multiply-add rate at several vector
 * widths, kernel launch latency, and host <-> device transfer rates. Kernel times come from
 * the kernels' own profiling events (END - START); see docs/bench.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define FETCH 16       /* BENCH_FETCH of cl/bench.cl */
#define MADS 2048      /* BENCH_MADS of cl/bench.cl */
#define ILP_MADS 16384 /* BENCH_ILP_MADS of cl/bench.cl */
#define LAUNCHES 32    /* empty launches per latency run */

struct micro {
    struct bench_ctx *c;
    cl_kernel kernel;
    size_t wg;
    cl_mem x, y;
    cl_int items; /* work-items of the kernel */
    double work;  /* bytes or flops per launch */
    void *host;   /* transfer staging */
    size_t host_bytes;
    bool to_device;
};

/* Enqueues m->kernel over m->items work-items (rounded up to the work-group size). */
static enum clt_status launch(struct micro *m, cl_event *ev)
{
    size_t local = m->wg, global = ((size_t)m->items + local - 1) / local * local;
    return clt__cl_check(
        &m->c->dev->log,
        clEnqueueNDRangeKernel(m->c->dev->queue, m->kernel, 1, NULL, &global, &local, 0, NULL, ev),
        "clEnqueueNDRangeKernel");
}

/* One run: the kernel's rate in units of 1e9 work per second (GB/s, GFLOP/s). */
static enum clt_status rate_sample(void *ctx, double *value)
{
    struct micro *m = ctx;
    cl_event ev = NULL;
    double s = 0, t0 = bench_now();
    enum clt_status st = launch(m, &ev);
    if (st == CLT_OK)
        st = bench_event_seconds(m->c, ev, t0, &s);
    if (st == CLT_OK)
        *value = m->work / s * 1e-9;
    return st;
}

static enum clt_status get_kernel(struct micro *m, const char *name)
{
    enum clt_status st = clt__kernel_get(m->c->dev, "bench", name, &m->kernel, &m->wg);
    if (m->wg > m->c->dev->wg_1d)
        m->wg = m->c->dev->wg_1d;
    return st;
}

static enum clt_status measure(struct micro *m, const char *name, const char *unit)
{
    struct bench_stat s;
    enum clt_status st = bench_repeat(m->c->cfg->warmup, m->c->cfg->runs, rate_sample, m, &s);
    if (st == CLT_OK)
        st = bench_add(m->c->out, "micro", name, unit, true, &s);
    return st;
}

static cl_mem buffer(struct clt_device *dev, size_t bytes, enum clt_status *st)
{
    cl_int err;
    cl_mem b = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    *st = clt__cl_check(&dev->log, err, "clCreateBuffer");
    if (*st == CLT_OK) {
        float zero = 0.0f;
        *st = clt__cl_check(
            &dev->log,
            clEnqueueFillBuffer(dev->queue, b, &zero, sizeof zero, 0, bytes, 0, NULL, NULL),
            "clEnqueueFillBuffer");
    }
    return b;
}

/* The bandwidth buffers: the configured size, within half the largest allocation and an
 * eighth of the device memory, a multiple of one work-group's footprint at the wider width. */
static size_t bandwidth_bytes(struct bench_ctx *c)
{
    size_t want = (size_t)(c->cfg->quick ? 64 : 256) << 20;
    const struct clt_device_info *i = &c->dev->info;
    while (want > (1u << 20) && (want > i->max_alloc_bytes / 2 || want > i->global_mem_bytes / 8))
        want /= 2;
    size_t unit = 64 * FETCH * 256;
    return want / unit * unit;
}

/* Measures one bandwidth kernel (op 0 read, 1 write, 2 copy) at one width (4 or 16 floats)
 * into *s and adds it as "<name>.float<width>". */
static enum clt_status bandwidth_one(struct micro *m, size_t bytes, int op, int width,
                                     const char *name, struct bench_stat *s)
{
    static const char *const ops[] = {"read", "write", "copy"};
    char kernel[32], figure[64];
    snprintf(kernel, sizeof kernel, "bench_%s%d", ops[op], width);
    snprintf(figure, sizeof figure, "%s.float%d", name, width);
    m->items = (cl_int)(bytes / (4 * (size_t)width * FETCH));
    enum clt_status st = get_kernel(m, kernel);
    struct clt__arg read[] = {CLT__ARG(m->x), CLT__ARG(m->y), CLT__ARG(m->items)};
    struct clt__arg write[] = {CLT__ARG(m->y), CLT__ARG(m->items)};
    if (st == CLT_OK)
        st = clt__set_args(m->c->dev, m->kernel, op == 1 ? write : read, op == 1 ? 2 : 3);
    m->work = (double)bytes * (op == 2 ? 2 : 1);
    if (st == CLT_OK)
        st = bench_repeat(m->c->cfg->warmup, m->c->cfg->runs, rate_sample, m, s);
    if (st == CLT_OK)
        st = bench_add(m->c->out, "micro", figure, "GB/s", true, s);
    return st;
}

/* Read, write and copy at both widths; "bandwidth.<op>" is the better width's figure. */
static enum clt_status bandwidth(struct bench_ctx *c)
{
    struct micro m = {.c = c};
    size_t bytes = bandwidth_bytes(c);
    enum clt_status st;
    m.x = buffer(c->dev, bytes, &st);
    if (st == CLT_OK)
        m.y = buffer(c->dev, bytes, &st);
    static const char *const names[] = {"bandwidth.read", "bandwidth.write", "bandwidth.copy"};
    for (int op = 0; st == CLT_OK && op < 3; op++) {
        struct bench_stat s4, s16;
        st = bandwidth_one(&m, bytes, op, 4, names[op], &s4);
        if (st == CLT_OK)
            st = bandwidth_one(&m, bytes, op, 16, names[op], &s16);
        if (st == CLT_OK)
            st = bench_add(c->out, "micro", names[op], "GB/s", true,
                           s16.median > s4.median ? &s16 : &s4);
    }
    if (m.x)
        clReleaseMemObject(m.x);
    if (m.y)
        clReleaseMemObject(m.y);
    return st;
}

/* The peak kernels: the clpeak-like dependent chains at four widths, then eight
 * independent chains at two widths; multiply-adds per work-item and the argument a. */
static const struct {
    const char *kernel, *figure;
    double mads;
    float a;
} peaks[] = {
    {"bench_peak_float", "peak.float", MADS, 1.3f},
    {"bench_peak_float4", "peak.float4", MADS, 1.3f},
    {"bench_peak_float8", "peak.float8", MADS, 1.3f},
    {"bench_peak_float16", "peak.float16", MADS, 1.3f},
    {"bench_peak_float4_ilp8", "peak.float4_ilp8", ILP_MADS, 0.999f},
    {"bench_peak_float16_ilp8", "peak.float16_ilp8", ILP_MADS, 0.999f},
};

/* Peak rate: for each kernel, grows the launch until one takes target_s, then measures.
 * The best median becomes c->peak_gflops. */
static enum clt_status peak(struct bench_ctx *c)
{
    const cl_int max_items = 1 << 24;
    struct micro m = {.c = c};
    enum clt_status st;
    m.x = buffer(c->dev, (size_t)max_items * 4, &st);
    c->peak_gflops = 0;
    for (size_t k = 0; st == CLT_OK && k < sizeof peaks / sizeof peaks[0]; k++) {
        float a = peaks[k].a;
        st = get_kernel(&m, peaks[k].kernel);
        m.items = (cl_int)(c->dev->info.compute_units * m.wg * 4);
        double rate = 0;
        for (;;) {
            struct clt__arg args[] = {CLT__ARG(m.x), CLT__ARG(a), CLT__ARG(m.items)};
            if (st == CLT_OK)
                st = clt__set_args(c->dev, m.kernel, args, 3);
            m.work = (double)m.items * 2.0 * peaks[k].mads;
            double t0 = bench_now();
            if (st == CLT_OK)
                st = rate_sample(&m, &rate);
            /* The host clock also stops the growth, should the device's clock be wrong. */
            if (st != CLT_OK || m.work / (rate * 1e9) >= c->cfg->target_s ||
                bench_now() - t0 >= 4 * c->cfg->target_s || m.items >= max_items / 2)
                break;
            m.items *= 2;
        }
        if (st == CLT_OK)
            st = measure(&m, peaks[k].figure, "GFLOP/s");
        if (st == CLT_OK && c->out->figs[c->out->nfigs - 1].median > c->peak_gflops)
            c->peak_gflops = c->out->figs[c->out->nfigs - 1].median;
    }
    if (m.x)
        clReleaseMemObject(m.x);
    return st;
}

/* One latency run: the mean over LAUNCHES empty launches of the time from enqueue (QUEUED)
 * to START, in microseconds; or, with round_trip, of the host time of enqueue + clFinish. */
static enum clt_status latency_run(struct micro *m, bool round_trip, double *value)
{
    struct clt_device *dev = m->c->dev;
    double sum = 0;
    enum clt_status st = CLT_OK;
    for (int i = 0; st == CLT_OK && i < LAUNCHES; i++) {
        size_t one = 1;
        cl_event ev = NULL;
        double t0 = bench_now();
        st = clt__cl_check(&dev->log,
                           clEnqueueNDRangeKernel(dev->queue, m->kernel, 1, NULL, &one, &one, 0,
                                                  NULL, round_trip ? NULL : &ev),
                           "clEnqueueNDRangeKernel");
        if (st == CLT_OK)
            st = clt__cl_check(&dev->log, clFinish(dev->queue), "clFinish");
        double t1 = bench_now();
        cl_ulong q = 0, s = 0;
        if (st == CLT_OK && !round_trip) {
            st = clt__cl_check(
                &dev->log,
                clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_QUEUED, sizeof q, &q, NULL),
                "clGetEventProfilingInfo");
            if (st == CLT_OK)
                st = clt__cl_check(
                    &dev->log,
                    clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof s, &s, NULL),
                    "clGetEventProfilingInfo");
        }
        if (ev)
            clReleaseEvent(ev);
        sum += round_trip ? (t1 - t0) * 1e6 : (s > q ? (double)(s - q) * 1e-3 : 0.0);
    }
    /* A device whose clock reports no gap gets a nanosecond, keeping the figure positive. */
    *value = sum > 0 ? sum / LAUNCHES : 1e-3;
    return st;
}

static enum clt_status latency_start(void *ctx, double *value)
{
    return latency_run(ctx, false, value);
}

static enum clt_status latency_round_trip(void *ctx, double *value)
{
    return latency_run(ctx, true, value);
}

static enum clt_status latency(struct bench_ctx *c)
{
    struct micro m = {.c = c};
    struct bench_stat s;
    enum clt_status st = get_kernel(&m, "bench_empty");
    if (st == CLT_OK && c->profiling_ok)
        st = bench_repeat(c->cfg->warmup, c->cfg->runs, latency_start, &m, &s);
    if (st == CLT_OK && c->profiling_ok)
        st = bench_add(c->out, "micro", "launch.enqueue_to_start", "us", false, &s);
    else if (st == CLT_OK)
        bench_note(c->out, "micro: launch.enqueue_to_start needs profiling timestamps");
    if (st == CLT_OK)
        st = bench_repeat(c->cfg->warmup, c->cfg->runs, latency_round_trip, &m, &s);
    if (st == CLT_OK)
        st = bench_add(c->out, "micro", "launch.round_trip", "us", false, &s);
    return st;
}

/* One transfer run: a blocking write (or read) of host_bytes from ordinary (pageable) host
 * memory, timed by its event. GB/s. */
static enum clt_status transfer_sample(void *ctx, double *value)
{
    struct micro *m = ctx;
    struct clt_device *dev = m->c->dev;
    cl_event ev = NULL;
    double t0 = bench_now();
    cl_int err = m->to_device ? clEnqueueWriteBuffer(dev->queue, m->x, CL_TRUE, 0, m->host_bytes,
                                                     m->host, 0, NULL, &ev)
                              : clEnqueueReadBuffer(dev->queue, m->x, CL_TRUE, 0, m->host_bytes,
                                                    m->host, 0, NULL, &ev);
    double s = 0;
    enum clt_status st = clt__cl_check(
        &dev->log, err, m->to_device ? "clEnqueueWriteBuffer" : "clEnqueueReadBuffer");
    if (st == CLT_OK)
        st = bench_event_seconds(m->c, ev, t0, &s);
    if (st == CLT_OK)
        *value = (double)m->host_bytes / s * 1e-9;
    return st;
}

static enum clt_status transfers(struct bench_ctx *c)
{
    struct micro m = {.c = c};
    enum clt_status st;
    m.host_bytes = bandwidth_bytes(c) / 2;
    m.x = buffer(c->dev, m.host_bytes, &st);
    m.host = st == CLT_OK ? malloc(m.host_bytes) : NULL;
    if (st == CLT_OK && !m.host)
        st = CLT_ERR_NO_MEMORY;
    if (st == CLT_OK)
        memset(m.host, 1, m.host_bytes); /* touch every page before timing */
    struct bench_stat s;
    for (int k = 0; st == CLT_OK && k < 2; k++) {
        m.to_device = k == 0;
        st = bench_repeat(c->cfg->warmup, c->cfg->runs, transfer_sample, &m, &s);
        if (st == CLT_OK)
            st = bench_add(c->out, "micro",
                           k == 0 ? "transfer.host_to_device" : "transfer.device_to_host", "GB/s",
                           true, &s);
    }
    free(m.host);
    if (m.x)
        clReleaseMemObject(m.x);
    return st;
}

enum clt_status bench_micro(struct bench_ctx *c)
{
    enum clt_status st = bandwidth(c);
    if (st == CLT_OK)
        st = peak(c);
    if (st == CLT_OK)
        st = latency(c);
    if (st == CLT_OK)
        st = transfers(c);
    return st;
}
