/*
 * ops_bench.c: forward and backward time of every op of the registry (engine/ops/ops.h), and
 * of one optimizer update. Each op is built at its representative shape by its definition's
 * `bench` example (the same in --quick and full runs, so that figures compare across both;
 * docs/bench.md lists the shapes) into a graph of its own, with loss sum(y); a trainer
 * plans and allocates it (and runs its dry pass); then the op's own forward and backward, as
 * the step calls them, are timed on the trainer's buffers. Each run brackets 4 (quick: 2)
 * back-to-back calls with profiling markers while the queue is held (bench_bracket_*), and
 * divides: device time per call, host enqueue cost excluded. A new op of the registry
 * appears here without a change to this file; views (reshape) have no work and no figure.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "graph.h"
#include "ops/ops.h"
#include "ops/optim.h"
#include "trainer.h"

/* One timed call: a registry op's forward or backward on a trainer's buffers, or an AdamW
 * update. */
struct op_run {
    struct bench_ctx *c;
    struct clt__exec x;
    const struct clt_tensor *node;
    bool backward;
    /* The optimizer case: its buffers (params, grads, m, v, loss, workspace, status). */
    struct clt__buf b[7];
    int inner; /* calls per run */
};

enum { ADAMW_N = 1 << 20 };

static enum clt_status adamw_step(struct op_run *r)
{
    struct clt__optim_config cfg;
    clt__optim_config_init(&cfg, CLT__OPTIM_ADAMW);
    return clt__optim_step(r->c->dev, &cfg, ADAMW_N, r->b[0], r->b[1], r->b[2], r->b[3], r->b[4],
                           r->b[5], r->b[6], 1e-3f, 1.0f);
}

static enum clt_status call(struct op_run *r)
{
    if (!r->node)
        return adamw_step(r);
    const struct clt__op_def *def = clt__def(r->node);
    r->x.in_backward = r->backward;
    /* acc 0: the backward writes every gradient, as the first contributor of a step. */
    return r->backward ? def->backward(&r->x, r->node, 0) : def->forward(&r->x, r->node);
}

static enum clt_status op_sample(void *ctx, double *value)
{
    struct op_run *r = ctx;
    struct bench_bracket br;
    double s = 0;
    enum clt_status st = bench_bracket_begin(r->c, &br);
    if (st != CLT_OK)
        return st;
    for (int i = 0; st == CLT_OK && i < r->inner; i++)
        st = call(r);
    enum clt_status st2 = bench_bracket_end(r->c, &br, &s);
    if (st == CLT_OK)
        st = st2;
    if (st == CLT_OK)
        *value = s / r->inner * 1e6;
    return st;
}

/* Times one pass and adds the figure `<name>.<suffix>`. */
static enum clt_status figure(struct op_run *r, const char *name, const char *suffix)
{
    struct bench_ctx *c = r->c;
    struct bench_stat s;
    char full[80];
    enum clt_status st =
        bench_repeat(c->cfg->warmup < 1 ? 1 : c->cfg->warmup, c->cfg->runs, op_sample, r, &s);
    snprintf(full, sizeof full, "%s.%s", name, suffix);
    if (st == CLT_OK)
        st = bench_add(c->out, "ops", full, "us", false, &s);
    return st;
}

/* Registry op `op`: its bench example in a graph of its own, a trainer over it, then the
 * forward and backward figures. */
static enum clt_status one_op(struct bench_ctx *c, enum clt__op op)
{
    const struct clt__op_def *def = clt__op_registry[op];
    const char *name = clt__op_names[op];
    if (!def->bench) {
        clt__log(&c->dev->log, CLT_LOG_ERROR, "bench: op %s has no bench example", name);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    struct clt_graph *g = NULL;
    struct clt_trainer *tr = NULL;
    enum clt_status st = clt_graph_create(&g);
    if (st != CLT_OK)
        return st;
    struct clt_tensor *y = def->bench(g);
    struct clt_tensor *loss = y && clt__count(y) == 1 ? y : clt_sum(g, y);
    st = clt_graph_status(g);
    if (st == CLT_OK && (!y || y->op != op)) {
        clt__log(&c->dev->log, CLT_LOG_ERROR, "bench: the example of op %s makes another op", name);
        st = CLT_ERR_INVALID_ARGUMENT;
    }
    if (st != CLT_OK)
        clt__log(&c->dev->log, CLT_LOG_ERROR, "bench: op %s: %s", name, clt_graph_error(g));
    struct clt_trainer_options opt;
    clt_trainer_options_init(&opt, CLT_OPTIM_SGD);
    if (st == CLT_OK)
        st = clt_trainer_create(c->dev, g, loss, &opt, &tr);
    struct op_run r = {.c = c, .node = y, .inner = c->cfg->quick ? 2 : 4};
    if (st == CLT_OK) {
        r.x = (struct clt__exec){
            .dev = c->dev, .tr = tr, .training = true, .seed = opt.seed, .step = 0};
        st = figure(&r, name, "fwd");
    }
    if (st == CLT_OK && def->backward) {
        r.backward = true;
        st = figure(&r, name, "bwd");
    }
    if (st == CLT_OK)
        st = clt_device_finish(c->dev);
    clt_trainer_free(tr);
    clt_graph_free(g);
    return st;
}

/* One AdamW update of 2^20 parameters: the optimizer is not an op of the graph. Floats 0.5,
 * the status record reset. */
static enum clt_status optimizer(struct bench_ctx *c)
{
    struct clt_device *dev = c->dev;
    const int64_t n[7] = {ADAMW_N,
                          ADAMW_N,
                          ADAMW_N,
                          ADAMW_N,
                          1,
                          (int64_t)clt__optim_workspace_bytes(ADAMW_N) / 4 + 1,
                          (int64_t)(CLT__OPTIM_STATUS_BYTES / 4) + 1};
    struct op_run r = {.c = c, .inner = c->cfg->quick ? 2 : 4};
    enum clt_status st = CLT_OK;
    for (int i = 0; st == CLT_OK && i < 7; i++) {
        size_t bytes = (size_t)n[i] * 4;
        cl_int err;
        float v = 0.5f;
        r.b[i].mem = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
        st = clt__cl_check(&dev->log, err, "clCreateBuffer");
        if (st == CLT_OK)
            st = clt__cl_check(
                &dev->log,
                clEnqueueFillBuffer(dev->queue, r.b[i].mem, &v, sizeof v, 0, bytes, 0, NULL, NULL),
                "clEnqueueFillBuffer");
    }
    if (st == CLT_OK)
        st = clt__optim_status_reset(dev, r.b[6]);
    if (st == CLT_OK)
        st = figure(&r, "optim.adamw", "step");
    if (st == CLT_OK)
        st = clt_device_finish(dev);
    for (int i = 0; i < 7; i++)
        if (r.b[i].mem)
            clReleaseMemObject(r.b[i].mem);
    return st;
}

enum clt_status bench_ops(struct bench_ctx *c)
{
    enum clt_status st = CLT_OK;
    for (int op = 0; st == CLT_OK && op < CLT__OP_COUNT; op++) {
        if (clt__op_registry[op]->is_view)
            continue;
        if (c->cfg->verbose)
            fprintf(stderr, "cltrain-bench:   op %s\n", clt__op_names[op]);
        st = one_op(c, (enum clt__op)op);
    }
    if (st == CLT_OK)
        st = optimizer(c);
    return st;
}
