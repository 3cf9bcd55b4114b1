/*
 * train_bench.c: training figures of the built-in models (tools/models.h) and, when asked,
 * the large ones (tools/models_large.h) on random data of the right shapes: samples per second,
 * device time per step, the split between forward, backward and optimizer, peak device memory, and
 * the time to the first step with cold and warm kernel caches (measured in child processes, see
 * first_step.c). --precision runs each model in fp16 and bf16 as well (clt_trainer_options
 * .precision): the same figures, but the split and the first step, which are fp32's.
 *
 * The split: the trainer's step (engine/step.c) runs forward, backward and update as static
 * functions with no markers between them, so this file runs the same sequence itself,
 * through the trainer's plan and each op's forward and backward (trainer.h, graph.h), with a
 * profiling marker after each phase, the queue held until all is enqueued (bench_bracket).
 * It mirrors step.c's forward(), backward() and update() and must follow them if they change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "models.h"
#include "models_large.h"
#include "ops/optim.h"
#include "trainer.h"

/* The models and their sizes (docs/bench.md): the built-in ones on Fashion-MNIST-shaped
 * images and a character model with 96 symbols, which run by default; and the large ones
 * (models_large.h), which run when --models names them, at a batch that depends on the
 * device: a GPU's (or accelerator's), or a CPU's, small enough for a test on PoCL. */
struct train_case {
    const char *kind;
    bool large;
    int64_t batch, gpu_batch;
    int steps, quick_steps; /* training steps per throughput run */
};
static const struct train_case cases[] = {
    {"mlp", false, 128, 128, 8, 4}, {"cnn", false, 64, 64, 4, 2},    {"gpt", false, 16, 16, 3, 1},
    {"gpt2s", true, 1, 8, 3, 1},    {"resnet18", true, 1, 32, 3, 1},
};
#define NCASES (sizeof cases / sizeof cases[0])

static const struct train_case *find_case(const char *kind)
{
    for (size_t i = 0; i < NCASES; i++)
        if (strcmp(cases[i].kind, kind) == 0)
            return &cases[i];
    return NULL;
}

bool bench_train_parse_models(const char *list, unsigned *mask)
{
    *mask = 0;
    char buf[128];
    if (strlen(list) >= sizeof buf)
        return false;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        const struct train_case *tc = find_case(tok);
        if (!tc)
            return false;
        *mask |= 1u << (tc - cases);
    }
    return *mask != 0;
}

int64_t bench_train_batch(const char *kind, const struct clt_device *dev)
{
    const struct train_case *tc = find_case(kind);
    if (!tc)
        return 0;
    enum clt_device_type t = dev ? clt_device_info(dev)->type : CLT_DEVICE_CPU;
    return t == CLT_DEVICE_GPU || t == CLT_DEVICE_ACCELERATOR ? tc->gpu_batch : tc->batch;
}

enum clt_status bench_train_build(const struct clt_device *dev, const char *kind, struct model *m,
                                  char *err, size_t err_size)
{
    const struct train_case *tc = find_case(kind);
    int64_t batch = bench_train_batch(kind, dev);
    memset(m, 0, sizeof *m);
    if (!tc) {
        snprintf(err, err_size, "unknown model \"%s\"", kind);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if (tc->large)
        return model_large_build(kind, batch, m, err, err_size);
    struct model_desc d;
    struct clt_dataset_info info;
    model_desc_init(&d, kind);
    model_default_data(kind, &info);
    return model_build(&d, &info, batch, m, err, err_size);
}

/* Random inputs for a built model: features in [0, 1), labels and ids in range. */
enum clt_status bench_train_inputs(const struct model *m, void **x, void **y)
{
    int64_t nx = 1, ny = 1;
    for (uint32_t i = 0; i < clt_tensor_ndim(m->x); i++)
        nx *= clt_tensor_dim(m->x, i);
    for (uint32_t i = 0; i < clt_tensor_ndim(m->y); i++)
        ny *= clt_tensor_dim(m->y, i);
    *x = malloc((size_t)nx * 4);
    *y = malloc((size_t)ny * 4);
    if (!*x || !*y)
        return CLT_ERR_NO_MEMORY;
    uint32_t s = 12345;
    bool ids = clt_tensor_dtype(m->x) == CLT_I32;
    for (int64_t i = 0; i < nx; i++) {
        s = s * 1664525u + 1013904223u;
        if (ids)
            ((int32_t *)*x)[i] = (int32_t)((s >> 8) % (uint32_t)m->classes);
        else
            ((float *)*x)[i] = (float)(s >> 8) / 16777216.0f;
    }
    for (int64_t i = 0; i < ny; i++) {
        s = s * 1664525u + 1013904223u;
        ((int32_t *)*y)[i] = (int32_t)((s >> 8) % (uint32_t)m->classes);
    }
    return CLT_OK;
}

struct train_run {
    struct bench_ctx *c;
    struct clt_trainer *tr;
    const void *inputs[2];
    int64_t batch;
    int steps;           /* per run */
    double split[3][64]; /* forward, backward, optimizer seconds of each split run */
    int nsplit;
    double host[2][64]; /* per throughput run: host CPU and wall ms inside clt_trainer_step,
                           mean per step */
    int nhost;
};

/* CPU time of the calling thread, seconds. */
static double thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One run of `steps` training steps: samples per second, wall clock. */
static enum clt_status throughput_sample(void *ctx, double *value)
{
    struct train_run *r = ctx;
    enum clt_status st = clt_device_finish(r->c->dev);
    double t0 = bench_now(), cpu = 0, wall = 0;
    for (int i = 0; st == CLT_OK && i < r->steps; i++) {
        double c0 = thread_cpu_now(), w0 = bench_now();
        st = clt_trainer_step(r->tr, r->inputs);
        cpu += thread_cpu_now() - c0;
        wall += bench_now() - w0;
    }
    if (r->nhost < 64) {
        r->host[0][r->nhost] = cpu * 1e3 / r->steps;
        r->host[1][r->nhost] = wall * 1e3 / r->steps;
        r->nhost++;
    }
    float loss;
    if (st == CLT_OK)
        st = clt_trainer_loss(r->tr, &loss);
    if (st == CLT_OK)
        st = clt_device_finish(r->c->dev);
    if (st == CLT_OK)
        *value = (double)(r->steps * r->batch) / (bench_now() - t0);
    return st;
}

static enum clt_status mark(struct clt_device *dev, cl_event *ev)
{
    return clt__cl_check(&dev->log, clEnqueueMarkerWithWaitList(dev->queue, 0, NULL, ev),
                         "clEnqueueMarkerWithWaitList");
}

/* Waits for the queue and reads the host clock: phase boundaries without profiling. */
static enum clt_status host_mark(struct clt_device *dev, double *t)
{
    enum clt_status st = clt__cl_check(&dev->log, clFinish(dev->queue), "clFinish");
    *t = bench_now();
    return st;
}

/* Enqueues forward, backward and update of the latest uploaded batch with a marker after
 * each (step.c's sequence, without the upload); host non-NULL: waits after each phase and
 * records the host clock instead. */
static enum clt_status split_enqueue(struct clt_trainer *tr, cl_event ev[3], double *host)
{
    struct clt_device *dev = tr->dev;
    struct clt__exec x = {.dev = dev,
                          .tr = tr,
                          .training = true,
                          .seed = tr->options.seed,
                          .step = tr->steps,
                          .batch = clt__trainer_batch(tr),
                          .rows = clt__trainer_batch(tr)};
    enum clt_status st = clt__trainer_forward(tr, &x);
    if (st == CLT_OK)
        st = host ? host_mark(dev, &host[1]) : mark(dev, &ev[0]);
    if (st == CLT_OK)
        st = clt__trainer_backward(tr, &x);
    if (st == CLT_OK)
        st = host ? host_mark(dev, &host[2]) : mark(dev, &ev[1]);
    if (st == CLT_OK)
        st = clt__optim_step(dev, &tr->optim, (int64_t)tr->plan.trained,
                             (struct clt__buf){tr->params, 0}, (struct clt__buf){tr->grads, 0},
                             (struct clt__buf){tr->moment1, 0}, (struct clt__buf){tr->moment2, 0},
                             clt__val(&x, tr->loss), (struct clt__buf){tr->work, 0},
                             (struct clt__buf){tr->status, 0}, tr->options.optimizer.lr, 1.0f);
    if (st == CLT_OK)
        st = host ? host_mark(dev, &host[3]) : mark(dev, &ev[2]);
    return st;
}

static void keep_split(struct train_run *r, const double part[3])
{
    if (r->nsplit >= 64)
        return;
    for (int i = 0; i < 3; i++)
        r->split[i][r->nsplit] = part[i] > 0 ? part[i] * 1e3 : 1e-6;
    r->nsplit++;
}

/* One split run: forward, backward and optimizer time of one step; the value is their sum
 * in milliseconds. */
static enum clt_status split_sample(void *ctx, double *value)
{
    struct train_run *r = ctx;
    struct clt_device *dev = r->c->dev;
    enum clt_status st = clt_device_finish(dev);
    if (st == CLT_OK && !r->c->profiling_ok) {
        double host[4];
        st = host_mark(dev, &host[0]);
        if (st == CLT_OK)
            st = split_enqueue(r->tr, NULL, host);
        if (st != CLT_OK)
            return st;
        double part[3] = {host[1] - host[0], host[2] - host[1], host[3] - host[2]};
        keep_split(r, part);
        *value = (host[3] - host[0]) * 1e3;
        return CLT_OK;
    }
    cl_event ev[3] = {NULL, NULL, NULL};
    struct bench_bracket br;
    if (st == CLT_OK)
        st = bench_bracket_begin(r->c, &br);
    if (st != CLT_OK)
        return st;
    st = split_enqueue(r->tr, ev, NULL);
    double total = 0;
    enum clt_status st2 = bench_bracket_end(r->c, &br, &total);
    st = st == CLT_OK ? st2 : st;
    cl_ulong t[4] = {0, 0, 0, 0};
    for (int i = 0; st == CLT_OK && i < 3; i++)
        st = clt__cl_check(&dev->log,
                           clGetEventProfilingInfo(ev[i], CL_PROFILING_COMMAND_END, sizeof t[i + 1],
                                                   &t[i + 1], NULL),
                           "clGetEventProfilingInfo");
    for (int i = 0; i < 3; i++)
        if (ev[i])
            clReleaseEvent(ev[i]);
    if (st != CLT_OK)
        return st;
    /* The forward phase starts where the bracket did: total - (end - forward end). */
    double fwd = total - (double)(t[3] - t[1]) * 1e-9;
    double part[3] = {fwd, (double)(t[2] - t[1]) * 1e-9, (double)(t[3] - t[2]) * 1e-9};
    keep_split(r, part);
    *value = total * 1e3;
    return CLT_OK;
}

static enum clt_status add1(struct bench_ctx *c, const char *model, const char *what,
                            const char *unit, bool higher, const struct bench_stat *s)
{
    char name[80];
    snprintf(name, sizeof name, "%s.%s", model, what);
    return bench_add(c->out, "train", name, unit, higher, s);
}

/* The device time of the steps the trainer profiled (start of compute to its end), mean per
 * step of each run. */
static enum clt_status step_times(struct train_run *r, const char *model, uint32_t first)
{
    double v[64];
    int n = 0;
    enum clt_status st = CLT_OK;
    for (uint32_t i = first; st == CLT_OK && i + (uint32_t)r->steps <= r->tr->nprof && n < 64;
         i += (uint32_t)r->steps) {
        double sum = 0;
        for (int k = 0; st == CLT_OK && k < r->steps; k++) {
            uint64_t t[4];
            st = clt__trainer_step_times(r->tr, i + (uint32_t)k, t);
            sum += t[3] > t[2] ? (double)(t[3] - t[2]) * 1e-6 : 1e-6;
        }
        v[n++] = sum / r->steps;
    }
    if (st != CLT_OK || n == 0)
        return st;
    struct bench_stat s;
    bench_stat_of(v, n, &s);
    return add1(r->c, model, "step_device_ms", "ms", false, &s);
}

/* Rows of a profile per step, from the engine's totals over `steps` steps. */
static struct bench_prof_row *prof_rows(const struct clt__prof_entry *e, size_t n, int steps)
{
    struct bench_prof_row *rows = calloc(n ? n : 1, sizeof *rows);
    for (size_t i = 0; rows && i < n; i++) {
        snprintf(rows[i].name, sizeof rows[i].name, "%s", e[i].name);
        rows[i].calls = (double)e[i].count / steps;
        rows[i].ms = (double)e[i].ns * 1e-6 / steps;
    }
    return rows;
}

/* --profile: runs `runs` throughput runs' worth of steps with the trainer's kernel profile on
 * (engine/profile.c) and keeps device time per step by kernel and by op. Its own steps, after
 * the throughput runs: the events it keeps do not weigh on those. */
static enum clt_status profile(struct train_run *r, const char *model)
{
    struct bench_ctx *c = r->c;
    if (!c->profiling_ok) {
        bench_note(c->out, "train: %s: no profile (profiling timestamps unusable)", model);
        return CLT_OK;
    }
    enum clt_status st = clt__trainer_profile(r->tr, true);
    int n = c->cfg->runs * r->steps;
    for (int i = 0; st == CLT_OK && i < n; i++)
        st = clt_trainer_step(r->tr, r->inputs);
    struct clt__prof_report rep = {0};
    if (st == CLT_OK)
        st = clt__prof_read(r->tr->kprof, &rep);
    if (st == CLT_OK && (rep.steps != (uint32_t)n || rep.lost > 0))
        bench_note(c->out, "train: %s: profile of %u steps of %d, %u launches lost", model,
                   (unsigned)rep.steps, n, (unsigned)rep.lost);
    if (st == CLT_OK && rep.steps > 0) {
        struct bench_profile p = {.steps = (int)rep.steps,
                                  .step_ms = (double)rep.span_ns * 1e-6 / rep.steps,
                                  .nkernels = rep.nkernels,
                                  .nops = rep.nops};
        snprintf(p.model, sizeof p.model, "%s", model);
        p.kernels = prof_rows(rep.kernels, rep.nkernels, (int)rep.steps);
        p.ops = prof_rows(rep.ops, rep.nops, (int)rep.steps);
        if (!p.kernels || !p.ops) {
            free(p.kernels);
            free(p.ops);
            st = CLT_ERR_NO_MEMORY;
        } else {
            st = bench_profile_add(c->out, &p);
        }
    }
    clt__prof_report_free(&rep);
    enum clt_status off = clt__trainer_profile(r->tr, false);
    return st == CLT_OK ? off : st;
}

/* --train-init: saves the trainer's initial weights to DIR/<model>.safetensors, then adds
 * three figures: the evaluation loss of the bench batch at those weights (loss_init_eval:
 * dropout off, batch norm on its initial running averages), the training loss of the first
 * step (loss_step1) and that of the second (loss_step2: the same batch after one update,
 * which depends on the gradients and the optimizer, not only the forward pass).
 * bench/torch_train.py computes all three from the same file and batch (and
 * bench/torch_autocast.py in fp16 and bf16). The model's first precision writes the file; the
 * others (*written) load it, so that every precision starts from the same fp32 weights. The
 * steps are the trainer's; throughput runs follow them. */
#define TRAIN_INIT_STEPS 2
static enum clt_status train_init(struct train_run *r, const char *model, const char *label,
                                  bool *written)
{
    char path[1200];
    int n = snprintf(path, sizeof path, "%s/%s.safetensors", r->c->cfg->train_init, model);
    if (n < 0 || (size_t)n >= sizeof path)
        return CLT_ERR_INVALID_ARGUMENT;
    char batch[32];
    snprintf(batch, sizeof batch, "%lld", (long long)r->batch);
    const struct clt_meta meta[] = {{"bench.model", model}, {"bench.batch", batch}};
    enum clt_status st =
        *written ? clt_trainer_load(r->tr, path, false) : clt_trainer_save(r->tr, path, meta, 2);
    *written = *written || st == CLT_OK;
    float loss[1 + TRAIN_INIT_STEPS] = {0};
    if (st == CLT_OK)
        st = clt_trainer_eval(r->tr, r->inputs, NULL, NULL, 0, &loss[0]);
    for (int i = 1; st == CLT_OK && i <= TRAIN_INIT_STEPS; i++) {
        st = clt_trainer_step(r->tr, r->inputs);
        if (st == CLT_OK)
            st = clt_trainer_loss(r->tr, &loss[i]);
    }
    static const char *const names[] = {"loss_init_eval", "loss_step1", "loss_step2"};
    for (int i = 0; st == CLT_OK && i <= TRAIN_INIT_STEPS; i++) {
        struct bench_stat s = {loss[i], loss[i], loss[i], 1};
        st = add1(r->c, label, names[i], "loss", false, &s);
    }
    return st;
}

/* One model in one precision: its figures are named "<model>.<what>" in fp32 (as before
 * there was a choice) and "<model>@<precision>.<what>" in fp16 and bf16. A 16-bit precision
 * that the library refuses (CLT_ERR_UNSUPPORTED: a build that trains in fp32 only, or a model
 * with an op not converted) is noted, not a failure. */
static enum clt_status one_model(struct bench_ctx *c, const struct train_case *tc,
                                 enum clt_precision precision, bool *init_written)
{
    const bool fp32 = precision == CLT_PRECISION_FP32;
    char label[16]; /* "resnet18@bf16" at most */
    snprintf(label, sizeof label, "%s%s%s", tc->kind, fp32 ? "" : "@",
             fp32 ? "" : clt_precision_name(precision));
    struct model m;
    char err[256] = "";
    enum clt_status st = bench_train_build(c->dev, tc->kind, &m, err, sizeof err);
    if (st != CLT_OK) {
        bench_note(c->out, "train: %s not built: %s", label, err);
        return st;
    }
    struct train_run r = {
        .c = c, .batch = m.batch, .steps = c->cfg->quick ? tc->quick_steps : tc->steps};
    void *x = NULL, *y = NULL;
    st = bench_train_inputs(&m, &x, &y);
    r.inputs[0] = x;
    r.inputs[1] = y;
    struct clt_trainer_options opt;
    clt_trainer_options_init(&opt, CLT_OPTIM_ADAMW);
    opt.precision = precision;
    /* Outside --quick the model's GEMM shapes that the tuning cache lacks are timed first,
     * with the explicit budget, as `cltrain tune --model` does: the figures are then those of
     * the tuned step, not of whatever the cache held (a creation's 10 s budget leaves some
     * shapes at the default). */
    opt.tune_ahead = !c->cfg->quick;
    if (st == CLT_OK)
        st = clt_trainer_create(c->dev, m.g, m.loss, &opt, &r.tr);
    if (st == CLT_ERR_UNSUPPORTED && !fp32) {
        bench_note(c->out, "train: %s not run: the library refuses precision %s (%s)", label,
                   clt_precision_name(precision), clt_status_str(st));
        model_free(&m);
        free(x);
        free(y);
        return CLT_OK;
    }
    struct bench_stat s;
    if (st == CLT_OK && c->cfg->train_init)
        st = train_init(&r, tc->kind, label, init_written);
    /* The init's steps are the trainer's first profiled ones. */
    uint32_t first =
        (uint32_t)(c->cfg->warmup * r.steps) + (c->cfg->train_init ? TRAIN_INIT_STEPS : 0u);
    if (st == CLT_OK)
        st = bench_repeat(c->cfg->warmup, c->cfg->runs, throughput_sample, &r, &s);
    if (st == CLT_OK)
        st = add1(c, label, "samples_per_s", "samples/s", true, &s);
    /* tokens_per_s from the same runs (s is samples_per_s until the next figure). */
    if (st == CLT_OK && m.positions > 1) {
        struct bench_stat tok = {s.median * (double)m.positions, s.min * (double)m.positions,
                                 s.max * (double)m.positions, s.runs};
        st = add1(c, label, "tokens_per_s", "tokens/s", true, &tok);
    }
    int nh = r.nhost - c->cfg->warmup;
    if (st == CLT_OK && nh > 0) {
        bench_stat_of(r.host[0] + c->cfg->warmup, nh, &s);
        st = add1(c, label, "step_host_ms", "ms", false, &s);
    }
    if (st == CLT_OK && nh > 0) {
        bench_stat_of(r.host[1] + c->cfg->warmup, nh, &s);
        st = add1(c, label, "step_call_ms", "ms", false, &s);
    }
    if (st == CLT_OK && c->profiling_ok)
        st = step_times(&r, label, first);
    if (st == CLT_OK && c->cfg->profile)
        st = profile(&r, label);
    /* The split mirrors step.c's fp32 step (split_enqueue); 16-bit steps are not split. */
    if (st == CLT_OK && fp32)
        st = bench_repeat(c->cfg->warmup, c->cfg->runs, split_sample, &r, &s);
    if (st == CLT_OK && fp32)
        st = add1(c, label, "split_total_ms", "ms", false, &s);
    static const char *const parts[] = {"forward_ms", "backward_ms", "optimizer_ms"};
    int n = fp32 ? r.nsplit - c->cfg->warmup : 0;
    for (int i = 0; st == CLT_OK && i < 3 && n > 0; i++) {
        bench_stat_of(r.split[i] + c->cfg->warmup, n, &s);
        st = add1(c, label, parts[i], "ms", false, &s);
    }
    struct clt_memory_report mem;
    if (st == CLT_OK)
        st = clt_trainer_memory(r.tr, &mem);
    if (st == CLT_OK) {
        double mib = (double)mem.total / 1048576.0;
        struct bench_stat one = {mib, mib, mib, 1};
        st = add1(c, label, "peak_memory_mib", "MiB", false, &one);
    }
    /* 16-bit: the activations' memory, and its share of what the fp32 plan takes. */
    if (st == CLT_OK && !fp32) {
        double mib = (double)mem.activations / 1048576.0;
        struct bench_stat one = {mib, mib, mib, 1};
        st = add1(c, label, "activations_mib", "MiB", false, &one);
    }
    if (st == CLT_OK && !fp32 && mem.activations_fp32 > 0) {
        double x = (double)mem.activations / (double)mem.activations_fp32;
        struct bench_stat one = {x, x, x, 1};
        st = add1(c, label, "activations_vs_fp32", "x", false, &one);
    }
    clt_trainer_free(r.tr);
    model_free(&m);
    free(x);
    free(y);
    /* The time to the first step is measured in fp32 (first_step.c's child). */
    if (st == CLT_OK && fp32)
        st = bench_first_step(c, tc->kind);
    return st;
}

/* Each model in each precision of --precision (fp32 alone by default). A model that fails
 * (too large for the device, say) is noted and the next one still runs; the status is the
 * first failure. */
enum clt_status bench_train(struct bench_ctx *c)
{
    enum clt_status first = CLT_OK;
    unsigned precisions = c->cfg->precisions ? c->cfg->precisions : 1u << CLT_PRECISION_FP32;
    static const enum clt_precision order[] = {CLT_PRECISION_FP32, CLT_PRECISION_FP16,
                                               CLT_PRECISION_BF16};
    for (size_t i = 0; i < NCASES; i++) {
        bool asked = c->cfg->models ? (c->cfg->models >> i) & 1u : !cases[i].large;
        bool init_written = false;
        for (size_t k = 0; asked && k < sizeof order / sizeof order[0]; k++) {
            if (!((precisions >> order[k]) & 1u))
                continue;
            const char *name = clt_precision_name(order[k]);
            bool fp32 = order[k] == CLT_PRECISION_FP32;
            if (c->cfg->verbose)
                fprintf(stderr, "cltrain-bench:   train %s%s%s\n", cases[i].kind,
                        fp32 ? "" : " in ", fp32 ? "" : name);
            enum clt_status st = one_model(c, &cases[i], order[k], &init_written);
            if (st != CLT_OK) {
                bench_note(c->out, "train: %s%s%s failed: %s", cases[i].kind, fp32 ? "" : "@",
                           fp32 ? "" : name, clt_status_str(st));
                clt_device_finish(c->dev);
                first = first == CLT_OK ? st : first;
            }
        }
    }
    return first;
}
