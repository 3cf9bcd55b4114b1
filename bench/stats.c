/*
 * stats.c: repetitions (warm-up, then measured runs reduced to median, minimum and maximum),
 * the figure list of a device, and timing from OpenCL profiling events.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

const char *const bench_sections[] = {"environment", "micro", "gemm", "ops", "train"};
const size_t bench_section_count = sizeof bench_sections / sizeof bench_sections[0];

void bench_env(struct bench_device *d, const char *key, const char *value, bool is_number)
{
    if (d->nenv >= BENCH_MAX_ENV)
        return;
    struct bench_kv *kv = &d->env[d->nenv++];
    snprintf(kv->key, sizeof kv->key, "%s", key);
    snprintf(kv->value, sizeof kv->value, "%s", value);
    kv->is_number = is_number;
}

const char *bench_env_get(const struct bench_device *d, const char *key)
{
    for (int i = 0; i < d->nenv; i++)
        if (strcmp(d->env[i].key, key) == 0)
            return d->env[i].value;
    return NULL;
}

void bench_note(struct bench_device *d, const char *fmt, ...)
{
    size_t len = strlen(d->notes);
    if (len > 0 && len + 2 < sizeof d->notes) {
        memcpy(d->notes + len, "; ", 3);
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->notes + len, sizeof d->notes - len, fmt, ap);
    va_end(ap);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_stat_of(double *v, int n, struct bench_stat *out)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    out->min = v[0];
    out->max = v[n - 1];
    out->median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    out->runs = n;
}

enum clt_status bench_profile_add(struct bench_device *d, struct bench_profile *p)
{
    struct bench_profile *all = realloc(d->profs, (d->nprofs + 1) * sizeof *all);
    if (!all) {
        free(p->kernels);
        free(p->ops);
        return CLT_ERR_NO_MEMORY;
    }
    d->profs = all;
    d->profs[d->nprofs++] = *p;
    return CLT_OK;
}

void bench_profiles_free(struct bench_device *d)
{
    for (size_t i = 0; i < d->nprofs; i++) {
        free(d->profs[i].kernels);
        free(d->profs[i].ops);
    }
    free(d->profs);
    d->profs = NULL;
    d->nprofs = 0;
}

const char *bench_figure_precision(const struct bench_figure *f, char *buf, size_t size)
{
    if (strcmp(f->section, "train") != 0)
        return NULL;
    const char *at = strchr(f->name, '@'), *dot = strchr(f->name, '.');
    if (!at || (dot && dot < at))
        return "fp32";
    size_t n = dot ? (size_t)(dot - at - 1) : strlen(at + 1);
    snprintf(buf, size, "%.*s", (int)n, at + 1);
    return buf;
}

bool bench_parse_precisions(const char *list, unsigned *mask)
{
    *mask = 0;
    char buf[64];
    if (strlen(list) >= sizeof buf)
        return false;
    snprintf(buf, sizeof buf, "%s", list);
    static const enum clt_precision all[] = {CLT_PRECISION_FP32, CLT_PRECISION_FP16,
                                             CLT_PRECISION_BF16};
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        size_t k = 0;
        while (k < sizeof all / sizeof all[0] && strcmp(tok, clt_precision_name(all[k])) != 0)
            k++;
        if (k == sizeof all / sizeof all[0])
            return false;
        *mask |= 1u << all[k];
    }
    return *mask != 0;
}

enum clt_status bench_add(struct bench_device *d, const char *section, const char *name,
                          const char *unit, bool higher_better, const struct bench_stat *s)
{
    if (d->nfigs == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        struct bench_figure *f = realloc(d->figs, cap * sizeof *f);
        if (!f)
            return CLT_ERR_NO_MEMORY;
        d->figs = f;
        d->cap = cap;
    }
    struct bench_figure *f = &d->figs[d->nfigs++];
    memset(f, 0, sizeof *f);
    snprintf(f->section, sizeof f->section, "%s", section);
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->unit, sizeof f->unit, "%s", unit);
    f->higher_better = higher_better;
    f->median = s->median;
    f->min = s->min;
    f->max = s->max;
    f->runs = s->runs;
    return CLT_OK;
}

enum clt_status bench_repeat(int warmup, int runs, bench_sample_fn fn, void *ctx,
                             struct bench_stat *out)
{
    if (runs < 1)
        runs = 1;
    double *v = malloc((size_t)runs * sizeof *v);
    if (!v)
        return CLT_ERR_NO_MEMORY;
    enum clt_status st = CLT_OK;
    for (int i = 0; st == CLT_OK && i < warmup; i++) {
        double ignored;
        st = fn(ctx, &ignored);
    }
    for (int i = 0; st == CLT_OK && i < runs; i++)
        st = fn(ctx, &v[i]);
    if (st == CLT_OK)
        bench_stat_of(v, runs, out);
    free(v);
    return st;
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* END of an event's command, ns. */
static cl_int end_ns(cl_event ev, cl_ulong *t)
{
    return clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof *t, t, NULL);
}

bool bench_probe_profiling(struct bench_ctx *c)
{
    struct clt_device *dev = c->dev;
    cl_kernel k;
    size_t wg;
    cl_int err, items = 1 << 16; /* 16 float4 each: 16 MiB */
    cl_mem buf = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, (size_t)items * 256, NULL, &err);
    bool ok = false;
    if (err == CL_SUCCESS && clt__kernel_get(dev, "bench", "bench_write4", &k, &wg) == CLT_OK &&
        clt__set_args(dev, k, (struct clt__arg[]){CLT__ARG(buf), CLT__ARG(items)}, 2) == CLT_OK) {
        /* Writing 16 MiB takes more than a microsecond on any device of today; a driver
         * that reports less (rusticl 22.3 reports 0, 1, 2, 3) has no real timestamps. */
        for (int rep = 0; rep < 2; rep++) {
            size_t global = (size_t)items;
            cl_event ev = NULL;
            cl_ulong q = 0, t0 = 0, t1 = 0;
            ok = clEnqueueNDRangeKernel(dev->queue, k, 1, NULL, &global, NULL, 0, NULL, &ev) ==
                     CL_SUCCESS &&
                 clWaitForEvents(1, &ev) == CL_SUCCESS &&
                 clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_QUEUED, sizeof q, &q, NULL) ==
                     CL_SUCCESS &&
                 clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) ==
                     CL_SUCCESS &&
                 end_ns(ev, &t1) == CL_SUCCESS && q > 0 && t0 >= q && t1 > t0 + 1000;
            if (ev)
                clReleaseEvent(ev);
        }
    }
    if (buf)
        clReleaseMemObject(buf);
    c->profiling_ok = ok;
    return ok;
}

enum clt_status bench_bracket_begin(struct bench_ctx *c, struct bench_bracket *b)
{
    struct clt_device *dev = c->dev;
    cl_int err;
    b->start = NULL;
    b->gate = NULL;
    if (!c->profiling_ok) {
        enum clt_status st = clt__cl_check(&dev->log, clFinish(dev->queue), "clFinish");
        b->host_t0 = bench_now();
        return st;
    }
    b->gate = clCreateUserEvent(dev->context, &err);
    enum clt_status st = clt__cl_check(&dev->log, err, "clCreateUserEvent");
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log,
                           clEnqueueMarkerWithWaitList(dev->queue, 1, &b->gate, &b->start),
                           "clEnqueueMarkerWithWaitList");
    if (st != CLT_OK && b->gate) {
        clSetUserEventStatus(b->gate, CL_COMPLETE);
        clReleaseEvent(b->gate);
        b->gate = NULL;
    }
    return st;
}

enum clt_status bench_bracket_end(struct bench_ctx *c, struct bench_bracket *b, double *seconds)
{
    struct clt_device *dev = c->dev;
    if (!c->profiling_ok) {
        enum clt_status st = clt__cl_check(&dev->log, clFinish(dev->queue), "clFinish");
        double s = bench_now() - b->host_t0;
        *seconds = s > 1e-9 ? s : 1e-9;
        return st;
    }
    cl_event stop = NULL;
    enum clt_status st =
        clt__cl_check(&dev->log, clEnqueueMarkerWithWaitList(dev->queue, 0, NULL, &stop),
                      "clEnqueueMarkerWithWaitList");
    /* Release the queue whatever happened, so that nothing waits forever. */
    clSetUserEventStatus(b->gate, CL_COMPLETE);
    clReleaseEvent(b->gate);
    b->gate = NULL;
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log, clWaitForEvents(1, &stop), "clWaitForEvents");
    cl_ulong t0 = 0, t1 = 0;
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log, end_ns(b->start, &t0), "clGetEventProfilingInfo");
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log, end_ns(stop, &t1), "clGetEventProfilingInfo");
    if (st == CLT_OK)
        *seconds = t1 > t0 ? (double)(t1 - t0) * 1e-9 : 1e-9;
    clReleaseEvent(b->start);
    b->start = NULL;
    if (stop)
        clReleaseEvent(stop);
    return st;
}

enum clt_status bench_event_seconds(struct bench_ctx *c, cl_event ev, double host_t0,
                                    double *seconds)
{
    struct clt_device *dev = c->dev;
    cl_ulong t0 = 0, t1 = 0;
    enum clt_status st = clt__cl_check(&dev->log, clWaitForEvents(1, &ev), "clWaitForEvents");
    if (st == CLT_OK && !c->profiling_ok) {
        double s = bench_now() - host_t0;
        *seconds = s > 1e-9 ? s : 1e-9;
        clReleaseEvent(ev);
        return st;
    }
    if (st == CLT_OK)
        st = clt__cl_check(
            &dev->log,
            clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL),
            "clGetEventProfilingInfo");
    if (st == CLT_OK)
        st = clt__cl_check(&dev->log, end_ns(ev, &t1), "clGetEventProfilingInfo");
    if (st == CLT_OK)
        *seconds = t1 > t0 ? (double)(t1 - t0) * 1e-9 : 1e-9;
    clReleaseEvent(ev);
    return st;
}
