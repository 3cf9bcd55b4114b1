/*
 * train_setup.c: the setup of a `cltrain train` run (train_run.h), before its first step: the
 * outputs checked and claimed, the data loaded, the devices opened and each one's rows of a
 * batch chosen, the models built, the trainer made (and the checkpoint being resumed loaded),
 * the batcher made, and under MPI the ranks' agreement on all of it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets.h"
#include "outputs.h"
#include "progress.h"
#include "train_run.h"

/* --device-weights: "measure", or one number > 0 a device. */
static int parse_weights(struct run *r, double *w)
{
    const char *s = r->c->device_weights, *cmd = r->tl->cmd;
    if (strcmp(s, "measure") == 0) {
        r->measure = true;
        return 0;
    }
    uint32_t k = 0;
    for (const char *p = s;; p++) {
        char *end = NULL;
        double v = strtod(p, &end);
        if (end == p || !(v > 0) || !isfinite(v) || (*end != ',' && *end != '\0') || k >= r->ndev) {
            fprintf(stderr,
                    "%s: --device-weights \"%s\": give \"measure\" or %u numbers above 0, "
                    "one a device, separated by commas\n",
                    cmd, s, (unsigned)r->ndev);
            return 1;
        }
        w[k++] = v;
        p = end;
        if (*end == '\0')
            break;
    }
    if (k != r->ndev) {
        fprintf(stderr, "%s: --device-weights \"%s\": %u weights for %u devices\n", cmd, s,
                (unsigned)k, (unsigned)r->ndev);
        return 1;
    }
    return 0;
}

/* The split a resumed run recorded (train.device_rows), when it is one for as many devices
 * and the same batch; rows untouched otherwise. */
static bool recorded_split(struct run *r, int64_t *rows)
{
    struct clt_checkpoint *ck = NULL;
    if (clt_checkpoint_open(r->c->resume, NULL, &ck) != CLT_OK)
        return false;
    const char *s = clt_checkpoint_meta(ck, "train.device_rows");
    int64_t got[TOOL_MAX_DEVICES], sum = 0;
    uint32_t k = 0;
    bool ok = s != NULL;
    for (const char *p = s; ok; p++) {
        char *end = NULL;
        long long v = strtoll(p, &end, 10);
        ok = end != p && v >= 1 && k < r->ndev && (*end == ',' || *end == '\0');
        if (ok) {
            got[k++] = v;
            sum += v;
        }
        p = end;
        if (!ok || *end == '\0')
            break;
    }
    clt_checkpoint_close(ck);
    if (!ok || k != r->ndev || sum != r->rank_rows)
        return false;
    memcpy(rows, got, k * sizeof *rows);
    return true;
}

/* Each device's rows of the rank's share of a batch (docs/parallel.md, "The split"): the split
 * a resumed run recorded, else --device-weights' numbers, else equal (and timed after creation
 * with "measure"). */
static int choose_split(struct run *r)
{
    struct train_config *c = r->c;
    double w[TOOL_MAX_DEVICES];
    int64_t equal[TOOL_MAX_DEVICES];
    if (c->device_weights && r->ndev == 1) {
        fprintf(stderr, "%s: --device-weights needs several devices (--device a,b or all)\n",
                r->tl->cmd);
        return 1;
    }
    if (c->device_weights && r->mpi->size > 1) {
        fprintf(stderr,
                "%s: --device-weights is not available under MPI yet: every rank splits its rows "
                "equally over its devices\n",
                r->tl->cmd);
        return 1;
    }
    if (c->device_weights && parse_weights(r, w) != 0)
        return 1;
    clt_parallel_split(r->rank_rows, r->ndev, NULL, equal);
    memcpy(r->rows, equal, r->ndev * sizeof *r->rows);
    if (r->ndev > 1 && c->resuming && recorded_split(r, r->rows)) {
        r->measure = false; /* the split of the run being resumed, so that it resumes exactly */
    } else if (c->device_weights && !r->measure &&
               clt_parallel_split(r->rank_rows, r->ndev, w, r->rows) != CLT_OK) {
        fprintf(stderr, "%s: cannot split a batch of %lld over %u devices\n", r->tl->cmd,
                (long long)r->rank_rows, (unsigned)r->ndev);
        return 1;
    }
    r->uneven = memcmp(r->rows, equal, r->ndev * sizeof *r->rows) != 0;
    return 0;
}

/* The model of each device: one for ceil(rows / devices) rows with an equal split, rows the
 * most a rank takes of a batch (the same model on every rank), else one for each device's rows
 * (r->m is device 0's). */
static int build_models(struct run *r)
{
    struct train_config *c = r->c;
    char err[512];
    int64_t ranks = r->mpi->size, most = (c->batch + ranks - 1) / ranks;
    int64_t rows = (most + r->ndev - 1) / r->ndev;
    for (uint32_t i = 0; i < (r->uneven ? r->ndev : 1); i++) {
        struct model *m = i == 0 ? &r->m : &r->dm[i];
        enum clt_status st =
            model_build(&c->desc, &r->info, r->uneven ? r->rows[i] : rows, m, err, sizeof err);
        if (st != CLT_OK) {
            fprintf(stderr, "%s: %s\n", r->tl->cmd, err);
            return 1;
        }
    }
    return 0;
}

void train_free_models(struct run *r)
{
    model_free(&r->m);
    for (uint32_t i = 1; i < TOOL_MAX_DEVICES; i++)
        model_free(&r->dm[i]);
}

/* Makes r->tr; under MPI it is data-parallel even on one device (the all-reduce is its hook),
 * and its gradients are weighted by the rank's share of the batch. */
static enum clt_status create_trainer(struct run *r, const struct clt_trainer_options *o)
{
    if (r->ndev == 1 && r->mpi->size == 1)
        return clt_trainer_create(r->dev, r->m.g, r->m.loss, o, &r->tr);
    if (!r->uneven) {
        enum clt_status st = clt_trainer_create_parallel(r->devs, r->ndev, r->m.g, r->m.loss,
                                                         r->rank_rows, o, &r->tr);
        if (st == CLT_OK && r->mpi->size > 1) {
            r->mpi->weight = (double)r->rank_rows / (double)r->c->batch;
            st = clt_trainer_set_allreduce(r->tr, tool_mpi_allreduce, r->mpi);
        }
        return st;
    }
    const struct clt_graph *gs[TOOL_MAX_DEVICES];
    const struct clt_tensor *ls[TOOL_MAX_DEVICES];
    for (uint32_t i = 0; i < r->ndev; i++) {
        gs[i] = i == 0 ? r->m.g : r->dm[i].g;
        ls[i] = i == 0 ? r->m.loss : r->dm[i].loss;
    }
    return clt_trainer_create_parallel_split(r->devs, r->ndev, gs, ls, o, &r->tr);
}

/* --device-weights measure: each device timed alone, the batch split by the speeds, and the
 * trainer made again with a model per device when that split is not the equal one. */
static enum clt_status measure_split(struct run *r, const struct clt_trainer_options *o)
{
    double speed[TOOL_MAX_DEVICES];
    enum clt_status st = clt_trainer_parallel_measure(r->tr, 3, speed);
    if (st == CLT_OK)
        st = clt_parallel_split(r->rank_rows, r->ndev, speed, r->rows);
    if (st != CLT_OK)
        return st;
    int64_t equal[TOOL_MAX_DEVICES];
    clt_parallel_split(r->rank_rows, r->ndev, NULL, equal);
    fprintf(stderr, "data-parallel: measured");
    for (uint32_t i = 0; i < r->ndev; i++)
        fprintf(stderr, "%s %.0f", i ? "," : "", speed[i]);
    fprintf(stderr, " rows/s alone\n");
    r->uneven = memcmp(r->rows, equal, r->ndev * sizeof *r->rows) != 0;
    if (!r->uneven)
        return CLT_OK;
    clt_trainer_free(r->tr);
    r->tr = NULL;
    train_free_models(r);
    if (build_models(r) != 0)
        return CLT_ERR_INVALID_ARGUMENT;
    return create_trainer(r, o);
}

int train_setup_data_and_model(struct run *r)
{
    struct train_config *c = r->c;
    char err[1200];
    struct data_options o;
    data_options_init(&o);
    o.seed = (uint64_t)c->seed;
    o.limit = (uint64_t)c->limit;
    o.label_column = (int32_t)c->label_column;
    o.classes = (uint32_t)c->classes;
    o.val_fraction = c->val_fraction;
    o.eval_data = c->eval_data;
    enum clt_status st = data_open(c->data, &o, &r->tl->log, &r->data, err, sizeof err);
    if (st != CLT_OK) {
        tool_report(r->tl, err);
        if (st == CLT_ERR_FORMAT && strstr(err, "bad labels") && !c->classes)
            fprintf(stderr,
                    "%s: (--classes K says the number of classes when some of 0 .. K-1 have "
                    "no example)\n",
                    r->tl->cmd);
        return 1;
    }
    if (data_fingerprint(c->data, c->data_hash) != 0)
        c->data_hash[0] = '\0';
    r->info = r->data.train_info;
    /* A batch larger than the training set would train on nothing, and the default batch
     * is made small enough for 10 steps an epoch (iris: 135 examples, batches of 13). */
    uint64_t tenth = r->info.count / 10 ? r->info.count / 10 : 1;
    if (r->info.kind == CLT_DATASET_CLASSES && c->batch_default && !c->resuming &&
        (uint64_t)c->batch > tenth) {
        if (r->lead)
            fprintf(stderr,
                    "%s: %llu training examples: batches of %llu (not %lld) for 10 steps an "
                    "epoch; --batch N sets it\n",
                    r->tl->cmd, (unsigned long long)r->info.count, (unsigned long long)tenth,
                    (long long)c->batch);
        c->batch = (int64_t)tenth;
    }
    if (r->info.kind == CLT_DATASET_CLASSES && (uint64_t)c->batch > r->info.count) {
        if (r->lead)
            fprintf(stderr,
                    "%s: --batch %lld is more than the %llu training examples: using %llu\n",
                    r->tl->cmd, (long long)c->batch, (unsigned long long)r->info.count,
                    (unsigned long long)r->info.count);
        c->batch = (int64_t)r->info.count;
    }
    if (r->info.kind == CLT_DATASET_TEXT) {
        uint32_t vocab = 0;
        clt_dataset_symbols(r->data.train, r->symbols, &vocab);
        uint64_t shortest =
            r->data.eval_info.count < r->info.count ? r->data.eval_info.count : r->info.count;
        if (shortest <= (uint64_t)c->desc.context) {
            fprintf(stderr,
                    "%s: %s: the %s part has %llu tokens, fewer than one window of "
                    "--context %lld + 1: use a longer text or a shorter context\n",
                    r->tl->cmd, c->data, shortest == r->info.count ? "training" : "evaluation",
                    (unsigned long long)shortest, (long long)c->desc.context);
            return 1;
        }
    }
    /* Several devices: the model is built for one device's rows of the rank's share. */
    if (tool_devices_resolve(r->tl->cmd, c->device, r->sel, &r->ndev) != 0)
        return 1;
    int64_t ranks = r->mpi->size, rank = r->mpi->rank;
    if (c->batch < (int64_t)r->ndev * ranks) {
        fprintf(stderr,
                "%s: --batch %lld is fewer than the %u devices of %lld rank%s: one row each at "
                "least\n",
                r->tl->cmd, (long long)c->batch, (unsigned)r->ndev, (long long)ranks,
                ranks > 1 ? "s" : "");
        return 1;
    }
    int64_t base = c->batch / ranks, extra = c->batch % ranks;
    r->rank_rows = base + (rank < extra ? 1 : 0);
    r->rank_first = base * rank + (rank < extra ? rank : extra);
    if (choose_split(r) != 0)
        return 1;
    return build_models(r);
}

/* Loads the checkpoint being resumed (every rank reads it). */
static int load(struct run *r)
{
    enum clt_status st = clt_trainer_load(r->tr, r->c->resume, true);
    if (st != CLT_OK) {
        tool_fail(r->tl, st, "cannot load %s", r->c->resume);
        return 1;
    }
    return 0;
}

int train_setup_trainer(struct run *r)
{
    struct train_config *c = r->c;
    for (uint32_t i = 0; i < r->ndev; i++)
        if (!(r->devs[i] = tool_device_open(r->tl, r->ndev > 1 ? r->sel[i] : c->device)))
            return 1;
    r->dev = r->devs[0];
    enum clt_optim_kind kind = strcmp(c->optimizer, "sgd") == 0    ? CLT_OPTIM_SGD
                               : strcmp(c->optimizer, "adam") == 0 ? CLT_OPTIM_ADAM
                                                                   : CLT_OPTIM_ADAMW;
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, kind);
    o.seed = (uint64_t)c->seed;
    o.optimizer.lr = c->lr;
    if (kind == CLT_OPTIM_SGD)
        o.optimizer.momentum = c->momentum;
    if (c->weight_decay >= 0)
        o.optimizer.weight_decay = c->weight_decay;
    /* As PyTorch users group their parameters for AdamW: no decay for biases, norm gains and
     * shifts, and embeddings (a no-op when the weight decay is 0). */
    if (!c->decay_all && clt_optimizer_exempt_decay(&o.optimizer) != CLT_OK)
        return 1;
    o.optimizer.clip_norm = c->clip;
    o.optimizer.warmup_updates = c->warmup;
    o.precision = c->precision_kind;
    if (strcmp(c->schedule, "cosine") == 0) {
        /* Over the whole run: --steps when it ends the run before --epochs would (not
         * --stop-at, so that a run stopped early and resumed follows the same rates). */
        o.optimizer.schedule = CLT_LR_COSINE;
        o.optimizer.total_updates = c->epochs * (int64_t)r->steps_per_epoch;
        if (c->max_steps > 0 && c->max_steps < o.optimizer.total_updates)
            o.optimizer.total_updates = c->max_steps;
        o.optimizer.min_lr = c->lr * 0.05;
    }
    double t0 = progress_now();
    enum clt_status st = create_trainer(r, &o);
    if (st == CLT_OK && r->measure)
        st = measure_split(r, &o);
    if (st != CLT_OK) {
        tool_fail(r->tl, st, "cannot set up the model");
        return 1;
    }
    struct clt_memory_report mem;
    clt_trainer_memory(r->tr, &mem);
    uint64_t params = 0;
    for (uint32_t i = 0; i < clt_trainer_param_count(r->tr); i++) {
        struct clt_param_info pi;
        if (clt_trainer_param_info(r->tr, i, &pi) == CLT_OK && pi.trained) {
            uint64_t k = 1;
            for (uint32_t d = 0; d < pi.ndim; d++)
                k *= (uint64_t)pi.shape[d];
            params += k;
        }
    }
    r->params = params;
    if (!r->lead)
        return c->resuming ? load(r) : 0;
    char desc[1200];
    model_desc_format(&c->desc, desc, sizeof desc);
    char where[1024];
    size_t at = (size_t)snprintf(where, sizeof where, "%s", r->ndev > 1 ? "each of " : "");
    for (uint32_t i = 0; i < r->ndev && at < sizeof where; i++)
        at += (size_t)snprintf(where + at, sizeof where - at, "%s%s", i ? ", " : "",
                               clt_device_info(r->devs[i])->name);
    /* A 16-bit run also shows what its activations take beside the fp32 plan's figure. */
    char half[160] = "";
    if (c->precision_kind != CLT_PRECISION_FP32)
        snprintf(
            half, sizeof half, " in %s (activations %.1f MiB, fp32 %.1f MiB: %.2fx)", c->precision,
            (double)mem.activations / 1048576.0, (double)mem.activations_fp32 / 1048576.0,
            mem.activations_fp32 ? (double)mem.activations / (double)mem.activations_fp32 : 1.0);
    fprintf(stderr, "model %s: %llu parameters, %.1f MiB on %s%s (ready in %.1f s)\n", desc,
            (unsigned long long)params, (double)mem.total / 1048576.0, where, half,
            progress_now() - t0);
    if (r->ndev > 1) {
        fprintf(stderr, "data-parallel: a batch of %lld over %u devices:", (long long)r->rank_rows,
                (unsigned)r->ndev);
        for (uint32_t i = 0; i < r->ndev; i++)
            fprintf(stderr, "%s %lld", i ? " +" : "", (long long)r->rows[i]);
        fprintf(stderr, " rows\n");
    }
    if (r->mpi->size > 1)
        fprintf(stderr,
                "MPI: a batch of %lld over %d ranks (%lld rows on rank 0), gradients summed by a "
                "ring all-reduce in a fixed order\n",
                (long long)c->batch, r->mpi->size, (long long)r->rank_rows);
    model_summary(stderr, &r->m, r->tr);
    return c->resuming ? load(r) : 0;
}

int train_setup_batcher(struct run *r)
{
    struct train_config *c = r->c;
    uint32_t context = (uint32_t)(r->m.positions > 1 ? r->m.positions : 0);
    if (r->info.kind == CLT_DATASET_TEXT)
        context = (uint32_t)c->desc.context;
    enum clt_status st = clt_batcher_create(r->data.train, (uint32_t)c->batch, context,
                                            (uint64_t)c->seed, true, &r->batcher);
    if (st != CLT_OK) {
        tool_fail(r->tl, st, "cannot batch the training set (%llu %s, batch %lld%s)",
                  (unsigned long long)r->info.count,
                  r->info.kind == CLT_DATASET_TEXT ? "tokens" : "examples", (long long)c->batch,
                  context ? ", context too long?" : "");
        return 1;
    }
    r->steps_per_epoch = clt_batcher_epoch_batches(r->batcher, true);
    if (r->steps_per_epoch == 0) {
        fprintf(stderr,
                "%s: the training set has %llu examples, fewer than one batch of %lld: "
                "lower --batch\n",
                r->tl->cmd, (unsigned long long)r->info.count, (long long)c->batch);
        return 1;
    }
    if (c->resuming) {
        struct clt_batcher_state s = {(uint64_t)c->seed, c->batcher_epoch, c->batcher_position};
        if (clt_batcher_set(r->batcher, &s) != CLT_OK) {
            fprintf(stderr, "%s: %s: the batcher position does not fit this dataset\n", r->tl->cmd,
                    c->resume);
            return 1;
        }
    }
    r->total_steps = (uint64_t)c->epochs * r->steps_per_epoch;
    if (c->max_steps > 0 && (uint64_t)c->max_steps < r->total_steps)
        r->total_steps = (uint64_t)c->max_steps;
    if (c->stop_at > 0 && (uint64_t)c->stop_at < r->total_steps)
        r->total_steps = (uint64_t)c->stop_at;
    r->samples_per_step = (uint64_t)c->batch * (context ? context : 1);
    int64_t nx = c->batch, ny = c->batch;
    for (uint32_t i = 1; i < clt_tensor_ndim(r->m.x); i++)
        nx *= clt_tensor_dim(r->m.x, i);
    for (uint32_t i = 1; i < clt_tensor_ndim(r->m.y); i++)
        ny *= clt_tensor_dim(r->m.y, i);
    r->x_row = (size_t)(nx / c->batch);
    r->y_row = (size_t)(ny / c->batch);
    r->x = malloc((size_t)nx * 4);
    r->y = malloc((size_t)ny * 4);
    if (!r->x || !r->y) {
        fprintf(stderr, "%s: out of memory\n", r->tl->cmd);
        return 1;
    }
    return 0;
}

int train_claim_outputs(struct train_config *c, struct outputs *os, const char *cmd)
{
    static char paths[10][4096];
    struct input in[24];
    size_t n = data_input_paths(c->data, paths, 8);
    for (size_t i = 0; i < n; i++)
        in[i] = (struct input){paths[i], "--data", false};
    if (strcmp(c->desc.kind, "file") == 0 && c->desc.path[0])
        in[n++] = (struct input){c->desc.path, "--model", false};
    if (c->resume)
        in[n++] = (struct input){c->resume, "--resume", true};
    if (c->expect_curve)
        in[n++] = (struct input){c->expect_curve, "--expect-curve", false};
    static char eval_paths[8][4096];
    size_t ne = data_input_paths(c->eval_data, eval_paths, 8);
    for (size_t i = 0; i < ne && n < sizeof in / sizeof in[0]; i++)
        in[n++] = (struct input){eval_paths[i], "--eval-data", false};
    outputs_add(os, c->out, "--out", OUTPUT_CHECKPOINT);
    outputs_add(os, c->metrics, "--metrics", OUTPUT_METRICS);
    outputs_add(os, c->plot, "--plot", OUTPUT_PLOT);
    if (c->keep_best)
        outputs_add(os, c->best_path, "--keep-best", OUTPUT_CHECKPOINT);
    return outputs_claim(os, cmd, in, n, c->force);
}

int train_agree(struct run *r)
{
    const char *names[] = {"the global batch",     "the trained parameters", "the steps an epoch",
                           "the steps of the run", "the first step",         "the seed"};
    int64_t v[] = {r->c->batch,
                   (int64_t)r->params,
                   (int64_t)r->steps_per_epoch,
                   (int64_t)r->total_steps,
                   (int64_t)r->c->start_step,
                   r->c->seed};
    int64_t first[6];
    int which = 0, k = tool_mpi_same(r->mpi, v, first, 6, &which);
    if (k == 0)
        return 0;
    if (k < 0) {
        fprintf(stderr, "%s: MPI failed comparing the ranks' setups\n", r->tl->cmd);
        return 1;
    }
    if (memcmp(v, first, sizeof v) != 0) {
        for (which = 0; v[which] == first[which]; which++)
            ;
        fprintf(stderr,
                "%s: %s is %lld here and %lld on rank 0: every rank needs the same options "
                "and the same data\n",
                r->tl->cmd, names[which], (long long)v[which], (long long)first[which]);
        return 1;
    }
    tool_mpi_hold(r->mpi);
    return 1;
}
