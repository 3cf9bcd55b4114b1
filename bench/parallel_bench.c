/*
 * parallel_bench.c: data-parallel figures (docs/parallel.md), `cltrain-bench --parallel
 * SEL,SEL[,...]` (or `all`): for each built-in model (mlp, cnn, gpt, or --models), on random
 * inputs at the train section's batch B:
 *
 *   - samples/s of one device (the first) training on B rows, and of all the devices training
 *     on B rows split equally, the gradient buckets at their default size and as one bucket
 *     read after the backward pass (unbucketed); wall clock over the timed steps, the host
 *     waiting for the last loss;
 *   - from profiling events, per step that reduced: the device time of the gradient reads,
 *     the part of it hidden behind the backward pass, and the reduction left exposed (end of
 *     backward to the sums back on the device, on the device whose backward ended last);
 *   - the all-reduce alone (read every device's gradients, sum on the host, write the sums
 *     back), timed over repeated runs: algorithm bandwidth (gradient bytes / time, NCCL's
 *     "algbw") and the bytes through the host links per second (2 x devices x gradient bytes /
 *     time).
 *
 * The devices are opened with profiling. Not a test: no threshold, figures only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "models.h"
#include "trainer.h"

#define MAXDEV 16

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Opens the devices of a comma list of selections, or all of them. Returns how many, 0 on an
 * error (printed). */
static uint32_t open_devices(const char *list, struct clt_device **devs)
{
    struct clt_device_options o;
    clt_device_options_init(&o);
    o.profiling = true;
    char sel[MAXDEV][32];
    uint32_t n = 0;
    if (strcmp(list, "all") == 0) {
        struct clt_device_info *info = NULL;
        size_t count = 0;
        if (clt_devices_list(NULL, &info, &count) != CLT_OK)
            return 0;
        for (size_t i = 0; i < count && n < MAXDEV; i++, n++)
            snprintf(sel[n], sizeof sel[n], "%u:%u", (unsigned)info[i].platform_index,
                     (unsigned)info[i].device_index);
        clt_devices_free(info);
    } else {
        for (const char *p = list; *p && n < MAXDEV; n++) {
            size_t len = strcspn(p, ",");
            if (len == 0 || len >= sizeof sel[n]) {
                fprintf(stderr, "cltrain-bench: --parallel \"%s\": a bad item\n", list);
                return 0;
            }
            memcpy(sel[n], p, len);
            sel[n][len] = '\0';
            p += len + (p[len] == ',');
        }
    }
    if (n < 2) {
        fprintf(stderr, "cltrain-bench: --parallel needs two devices at least (%u found)\n",
                (unsigned)n);
        return 0;
    }
    for (uint32_t i = 0; i < n; i++)
        if (clt_device_open(sel[i], &o, &devs[i]) != CLT_OK) {
            fprintf(stderr, "cltrain-bench: --parallel: cannot open device %s\n", sel[i]);
            for (uint32_t j = 0; j < i; j++)
                clt_device_close(devs[j]);
            return 0;
        }
    return n;
}

/* Trains steps steps after two untimed ones; samples/s over the timed ones. */
static enum clt_status time_steps(struct clt_trainer *tr, const void *const *inputs, int64_t rows,
                                  int steps, double *samples_s)
{
    enum clt_status st = CLT_OK;
    float loss = 0;
    for (int s = 0; s < 2 && st == CLT_OK; s++)
        st = clt_trainer_step(tr, inputs);
    if (st == CLT_OK)
        st = clt_trainer_loss(tr, &loss);
    double t0 = now_s();
    for (int s = 0; s < steps && st == CLT_OK; s++)
        st = clt_trainer_step(tr, inputs);
    if (st == CLT_OK)
        st = clt_trainer_loss(tr, &loss);
    *samples_s = (double)rows * steps / (now_s() - t0);
    return st;
}

struct par_figures {
    double one, bucketed, unbucketed;      /* samples/s */
    double read_ms, hidden_ms, exposed_ms; /* per reducing step, bucketed */
    double exposed_unbucketed_ms;
    uint32_t buckets;
    uint64_t grad_bytes;
    double reduce_ms; /* the all-reduce alone */
};

static enum clt_status one_model(struct clt_device **devs, uint32_t n, const char *kind, int steps,
                                 struct par_figures *f)
{
    char err[512];
    int64_t batch = bench_train_batch(kind, devs[0]);
    struct model one, part;
    memset(&one, 0, sizeof one);
    memset(&part, 0, sizeof part);
    void *x = NULL, *y = NULL;
    struct clt_trainer *tr = NULL;
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAMW);
    enum clt_status st = bench_train_build(devs[0], kind, &one, err, sizeof err);
    if (st == CLT_OK)
        st = bench_train_inputs(&one, &x, &y);
    const void *inputs[2] = {x, y};
    if (st == CLT_OK)
        st = clt_trainer_create(devs[0], one.g, one.loss, &o, &tr);
    if (st == CLT_OK)
        st = time_steps(tr, inputs, batch, steps, &f->one);
    clt_trainer_free(tr);
    tr = NULL;
    /* The same global batch over n devices: a graph of ceil(B / n) rows each. */
    struct model_desc d;
    struct clt_dataset_info info;
    model_desc_init(&d, kind);
    model_default_data(kind, &info);
    if (st == CLT_OK)
        st = model_build(&d, &info, (batch + n - 1) / n, &part, err, sizeof err);
    if (st == CLT_OK)
        st = clt_trainer_create_parallel(devs, n, part.g, part.loss, batch, &o, &tr);
    for (int pass = 0; pass < 2 && st == CLT_OK; pass++) {
        /* pass 0: one bucket after the backward; pass 1: the default buckets. */
        st = clt_trainer_parallel_buckets(tr, pass == 0 ? 0 : CLT_PARALLEL_BUCKET_BYTES);
        struct clt_parallel_info before, after;
        if (st == CLT_OK)
            st = clt_trainer_parallel_info(tr, &before);
        if (st == CLT_OK)
            st = time_steps(tr, inputs, batch, steps, pass == 0 ? &f->unbucketed : &f->bucketed);
        if (st == CLT_OK)
            st = clt_trainer_parallel_info(tr, &after);
        if (st != CLT_OK)
            break;
        double k = (double)(after.profiled_steps - before.profiled_steps);
        k = k > 0 ? k : 1;
        if (pass == 0) {
            f->exposed_unbucketed_ms = (after.exposed_s - before.exposed_s) / k * 1e3;
        } else {
            f->read_ms = (after.read_s - before.read_s) / k * 1e3;
            f->hidden_ms = (after.hidden_s - before.hidden_s) / k * 1e3;
            f->exposed_ms = (after.exposed_s - before.exposed_s) / k * 1e3;
            f->buckets = after.buckets;
            f->grad_bytes = after.grad_bytes;
        }
    }
    double t = 0;
    int reps = 10;
    if (st == CLT_OK)
        st = clt__parallel_time_reduce(tr, 1, &t); /* warm */
    if (st == CLT_OK)
        st = clt__parallel_time_reduce(tr, (uint32_t)reps, &t);
    f->reduce_ms = t / reps * 1e3;
    if (st != CLT_OK && err[0] == '\0')
        snprintf(err, sizeof err, "%s", clt_status_str(st));
    if (st != CLT_OK)
        fprintf(stderr, "cltrain-bench: --parallel, model %s: %s\n", kind, err);
    clt_trainer_free(tr);
    model_free(&part);
    model_free(&one);
    free(x);
    free(y);
    return st;
}

int bench_parallel_run(const char *devices, const char *models, bool quick)
{
    struct clt_device *devs[MAXDEV];
    uint32_t n = open_devices(devices, devs);
    if (n == 0)
        return 1;
    char list[128];
    snprintf(list, sizeof list, "%s", models ? models : "mlp,cnn,gpt");
    int steps = quick ? 4 : 20, rc = 0;
    printf("data-parallel over %u devices:", (unsigned)n);
    for (uint32_t i = 0; i < n; i++)
        printf("%s %s", i ? "," : "", clt_device_info(devs[i])->name);
    printf("\n%d timed steps a run; global batch as the train section's; reductions from "
           "profiling events, per step\n\n",
           steps);
    printf("%-5s %9s %10s %10s %10s %7s %7s %8s %8s %8s %9s %9s %10s\n", "model", "grad MB",
           "1 dev s/s", "n dev s/s", "unbuck s/s", "effic", "buckets", "read ms", "hidden",
           "exposed", "exp.unb", "reduce ms", "algbw GB/s");
    for (char *save = NULL, *k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        struct par_figures f;
        memset(&f, 0, sizeof f);
        if (bench_train_batch(k, devs[0]) == 0) {
            fprintf(stderr, "cltrain-bench: --parallel: unknown model \"%s\"\n", k);
            rc = 1;
            continue;
        }
        if (one_model(devs, n, k, steps, &f) != CLT_OK) {
            rc = 1;
            continue;
        }
        double mb = (double)f.grad_bytes / 1e6;
        printf("%-5s %9.2f %10.0f %10.0f %10.0f %6.0f%% %7u %8.2f %7.0f%% %8.2f %9.2f %9.2f "
               "%10.2f\n",
               k, mb, f.one, f.bucketed, f.unbucketed, 100.0 * f.bucketed / (f.one * n),
               (unsigned)f.buckets, f.read_ms, f.read_ms > 0 ? 100.0 * f.hidden_ms / f.read_ms : 0,
               f.exposed_ms, f.exposed_unbucketed_ms, f.reduce_ms,
               f.reduce_ms > 0 ? mb / f.reduce_ms : 0);
        printf("      host link traffic of the all-reduce alone: %.2f GB/s (2 x %u x %.2f MB in "
               "%.2f ms)\n",
               f.reduce_ms > 0 ? 2.0 * n * mb / f.reduce_ms : 0, (unsigned)n, mb, f.reduce_ms);
    }
    printf("\neffic: n-device samples/s over n x one device's; hidden: the share of the "
           "gradient reads' device time before the backward pass ended; exposed: backward end "
           "to sums back on the device whose backward ended last (exp.unb: one bucket after the "
           "backward)\n");
    for (uint32_t i = 0; i < n; i++)
        clt_device_close(devs[i]);
    return rc;
}
