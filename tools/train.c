/*
 * train.c: the training loop of `cltrain train` (see train.h).
 *
 * One step: the batcher fills a batch on the host, clt_trainer_step enqueues its upload,
 * forward, backward and update, and returns. The host waits for the device only where it
 * reads something: the loss at logged steps (every --log-every), evaluations, checkpoints.
 * Training batches drop an epoch's last partial batch (batch norm's statistics would see
 * the padding); evaluations visit every example.
 *
 * Under MPI (train_mpi.h) every rank batches the same global batches and steps its own share of
 * each (rank k takes batch / N rows, one more when k < batch % N, contiguous in rank order);
 * the trainer's all-reduce sums the ranks' gradients. Rank 0 alone evaluates, prints and writes
 * checkpoints, metrics and plots; the ranks agree on stopping (a signal, --patience) before
 * each step, so that all stop at the same one.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets.h"
#include "evaluate.h"
#include "metrics.h"
#include "outputs.h"
#include "plot.h"
#include "progress.h"
#include "train.h"

/* The signal that asked the run to stop (SIGINT, SIGTERM or SIGHUP), or 0. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    interrupted = sig;
}

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define NSTOP (sizeof stop_signals / sizeof stop_signals[0])

struct run {
    struct train_config *c;
    struct tool_log *tl;
    struct data_sets data;
    struct clt_dataset_info info; /* what the model is built for */
    uint8_t symbols[256];
    struct model m;
    struct clt_device *dev; /* devs[0] */
    struct clt_device *devs[TOOL_MAX_DEVICES];
    char sel[TOOL_MAX_DEVICES][16];    /* "P:D" of each when ndev > 1 */
    uint32_t ndev;                     /* data-parallel over ndev devices (engine/parallel.c) */
    int64_t rows[TOOL_MAX_DEVICES];    /* each device's rows of a step of --batch */
    bool uneven;                       /* rows is not the equal split: a model per device */
    bool measure;                      /* --device-weights measure: time the devices first */
    struct model dm[TOOL_MAX_DEVICES]; /* the models of devices 1 .. ndev-1 when uneven */
    struct clt_trainer *tr;
    struct tool_mpi *mpi;
    bool lead;                     /* rank 0 (or one process): evaluates, prints, writes */
    int64_t rank_rows, rank_first; /* this rank's rows of every global batch, the first */
    size_t x_row, y_row;           /* values of one row of x and of y */
    FILE *quiet;                   /* /dev/null: the progress of the other ranks */
    uint64_t params;               /* trained parameters */
    struct clt_batcher *batcher;
    void *x;
    int32_t *y;
    struct metrics metrics;
    struct progress progress;
    uint64_t step, total_steps, steps_per_epoch, samples_per_step;
    double last_loss;
    double log_time; /* when the loss was last read, and at which step */
    uint64_t log_step;
    struct eval_result last_eval;
    uint64_t last_eval_step; /* 0: none yet */
    struct metrics_point *points;
    size_t npoints, cap;
    bool save_failed; /* the last save failed: the next one retries */
    double best_loss; /* the lowest validation loss so far (INFINITY: none) */
    uint64_t best_step;
    int64_t since_best;      /* evaluations since best_loss improved */
    bool early_stop;         /* --patience ran out */
    struct eval_result test; /* the final evaluation on the test set, when there is one */
};

static int64_t epoch_of(const struct run *r, uint64_t step)
{
    return step == 0 ? 1 : (int64_t)((step - 1) / r->steps_per_epoch) + 1;
}

static void add_point(struct run *r, bool eval, double loss, double accuracy, double lr)
{
    if (r->npoints == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        struct metrics_point *p = realloc(r->points, cap * sizeof *p);
        if (!p)
            return; /* the plot loses a point; training goes on */
        r->points = p;
        r->cap = cap;
    }
    r->points[r->npoints++] = (struct metrics_point){eval, (int64_t)r->step, loss, accuracy, lr};
}

/* Loads the data and builds the model for it. */
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

static void free_models(struct run *r)
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
    free_models(r);
    if (build_models(r) != 0)
        return CLT_ERR_INVALID_ARGUMENT;
    return create_trainer(r, o);
}

static int setup_data_and_model(struct run *r)
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

static int setup_trainer(struct run *r)
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

static int setup_batcher(struct run *r)
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

static int save_to(struct run *r, const char *path)
{
    struct train_config *c = r->c;
    struct clt_batcher_state s;
    clt_batcher_get(r->batcher, &s);
    struct clt_meta meta[48];
    char buf[8192];
    size_t n = train_config_meta(c, &r->info, r->symbols, r->step, s.epoch, s.position, meta, buf,
                                 sizeof buf);
    /* A data-parallel run records its split, so that --resume splits alike (docs/parallel.md). */
    char rows[TOOL_MAX_DEVICES * 24];
    size_t at = 0;
    for (uint32_t i = 0; i < r->ndev && r->ndev > 1 && at < sizeof rows; i++)
        at += (size_t)snprintf(rows + at, sizeof rows - at, "%s%lld", i ? "," : "",
                               (long long)r->rows[i]);
    if (r->ndev > 1 && n < sizeof meta / sizeof meta[0])
        meta[n++] = (struct clt_meta){"train.device_rows", rows};
    enum clt_status st = clt_trainer_save(r->tr, path, meta, n);
    if (st != CLT_OK) {
        tool_fail(r->tl, st, "cannot save the checkpoint %s", path);
        return 1;
    }
    return 0;
}

static int save(struct run *r)
{
    return save_to(r, r->c->out);
}

/* After an evaluation: the best checkpoint (--keep-best) and early stopping (--patience). */
static void track_best(struct run *r)
{
    struct train_config *c = r->c;
    double loss = r->last_eval.loss;
    if (loss < r->best_loss) {
        r->best_loss = loss;
        r->best_step = r->step;
        r->since_best = 0;
        if (c->keep_best && save_to(r, c->best_path) == 0)
            progress_note(&r->progress, "best so far: saved %s", c->best_path);
        return;
    }
    r->since_best++;
    if (c->patience > 0 && r->since_best >= c->patience) {
        r->early_stop = true;
        progress_note(&r->progress,
                      "early stop at step %llu: no lower validation loss in %lld evaluations "
                      "(best %.4f at step %llu)",
                      (unsigned long long)r->step, (long long)r->since_best, r->best_loss,
                      (unsigned long long)r->best_step);
    }
}

/* A periodic save that fails is reported, and retried at the next save; the last one's
 * failure ends the run. */
static int save_or_retry(struct run *r, bool last)
{
    if (save(r) == 0) {
        if (r->save_failed)
            progress_note(&r->progress, "saved %s at step %llu", r->c->out,
                          (unsigned long long)r->step);
        r->save_failed = false;
        return 0;
    }
    if (last)
        return 1;
    if (!r->save_failed)
        progress_note(&r->progress, "training goes on; the save is retried at the next save");
    r->save_failed = true;
    return 0;
}

/* Evaluates on the validation set (or the test set when there is no validation set); with
 * test, on the test set at the end ("test" records). */
static int run_eval_on(struct run *r, bool test)
{
    struct eval_result *e = test ? &r->test : &r->last_eval;
    const struct clt_dataset *ds = test ? r->data.test : r->data.eval;
    enum clt_status st = evaluate(r->tr, &r->m, ds, NULL, false, e);
    if (st != CLT_OK) {
        tool_fail(r->tl, st, "evaluation failed");
        return 1;
    }
    if (!test)
        r->last_eval_step = r->step;
    metrics_begin(&r->metrics, test ? "test" : "eval");
    metrics_int(&r->metrics, "epoch", epoch_of(r, r->step));
    metrics_int(&r->metrics, "step", (int64_t)r->step);
    metrics_num(&r->metrics, "loss", e->loss);
    metrics_num(&r->metrics, "accuracy", e->accuracy);
    metrics_int(&r->metrics, "examples", (int64_t)e->targets);
    metrics_num(&r->metrics, "seconds", e->seconds);
    metrics_num(&r->metrics, "elapsed", progress_now() - r->progress.start);
    metrics_end(&r->metrics);
    if (!test)
        add_point(r, true, e->loss, e->accuracy, NAN);
    progress_note(&r->progress,
                  "%s at step %llu (epoch %lld): loss %.4f  accuracy %.4f  "
                  "(%.1f s)",
                  test ? "test" : "eval", (unsigned long long)r->step,
                  (long long)epoch_of(r, r->step), e->loss, e->accuracy, e->seconds);
    return 0;
}

static int run_eval(struct run *r)
{
    if (run_eval_on(r, false) != 0)
        return 1;
    track_best(r);
    return 0;
}

static int log_step(struct run *r)
{
    float loss = 0;
    struct clt_trainer_stats stats;
    enum clt_status st = clt_trainer_loss(r->tr, &loss);
    if (st == CLT_OK)
        st = clt_trainer_stats(r->tr, &stats);
    if (st != CLT_OK) {
        tool_fail(r->tl, st, "training step %llu failed", (unsigned long long)r->step);
        return 1;
    }
    double mine = r->mpi->weight * loss, all = loss; /* the global batch's loss: rank order */
    if (r->mpi->size > 1 && tool_mpi_sum(r->mpi, &mine, &all, 1) != 0) {
        fprintf(stderr, "%s: MPI failed summing the loss\n", r->tl->cmd);
        return 1;
    }
    loss = (float)all;
    r->last_loss = loss;
    if (r->c->precision_kind == CLT_PRECISION_FP16) /* the progress line shows the loss scale */
        r->progress.scale = stats.loss_scale;
    /* Throughput between two loss reads: both waited for the device, so it is measured. */
    double now = progress_now();
    if (r->step > r->log_step && now > r->log_time)
        r->progress.rate =
            (double)((r->step - r->log_step) * r->samples_per_step) / (now - r->log_time);
    r->log_time = now;
    r->log_step = r->step;
    metrics_begin(&r->metrics, "train");
    metrics_int(&r->metrics, "epoch", epoch_of(r, r->step));
    metrics_int(&r->metrics, "step", (int64_t)r->step);
    metrics_num(&r->metrics, "loss", loss);
    metrics_num(&r->metrics, "lr", stats.lr);
    metrics_num(&r->metrics, "grad_norm", stats.grad_norm);
    metrics_num(&r->metrics, "loss_scale", stats.loss_scale);
    metrics_int(&r->metrics, "skipped_steps", (int64_t)stats.skipped);
    metrics_num(&r->metrics,
                r->samples_per_step > (uint64_t)r->c->batch ? "tokens_per_second"
                                                            : "samples_per_second",
                r->progress.rate);
    metrics_num(&r->metrics, "elapsed", progress_now() - r->progress.start);
    metrics_end(&r->metrics);
    add_point(r, false, loss, NAN, stats.lr);
    return 0;
}

/* Whether the run stops before the next step (a signal, --patience). Under MPI the ranks agree
 * (the largest signal, rank 0's early stop), so that all stop after the same step. */
static bool stopping(struct run *r)
{
    if (r->mpi->size > 1) {
        int v[2] = {(int)interrupted, r->early_stop ? 1 : 0};
        if (tool_mpi_max(r->mpi, v, 2) == 0) {
            interrupted = v[0];
            r->early_stop = v[1] != 0;
        }
    }
    return interrupted || r->early_stop;
}

static int train_loop(struct run *r)
{
    struct train_config *c = r->c;
    while (r->step < r->total_steps && !stopping(r)) {
        uint32_t filled = 0;
        bool epoch_done = false;
        enum clt_status st = clt_batcher_next(r->batcher, true, r->x, r->y, &filled, &epoch_done);
        /* This rank's rows of the global batch (all of it on one process). */
        const void *inputs[] = {(const char *)r->x + (size_t)r->rank_first * r->x_row * 4,
                                (const char *)(r->y + (size_t)r->rank_first * r->y_row)};
        if (st == CLT_OK)
            st = clt_trainer_step(r->tr, inputs);
        if (st != CLT_OK) {
            tool_fail(r->tl, st, "training step %llu failed", (unsigned long long)r->step + 1);
            return 1;
        }
        r->step++;
        bool last = r->step == r->total_steps;
        bool logged = r->step % (uint64_t)c->log_every == 0 || last;
        if (logged && log_step(r) != 0)
            return 1;
        /* A live line follows every step; plain lines only steps with a fresh loss. */
        double acc = r->last_eval_step ? r->last_eval.accuracy : -1;
        if (logged || r->progress.tty)
            progress_show(&r->progress, epoch_of(r, r->step), r->step, r->last_loss, acc, false);
        bool eval = epoch_done || last || (c->eval_every && r->step % (uint64_t)c->eval_every == 0);
        if (eval && r->lead && run_eval(r) != 0)
            return 1;
        last = last || r->early_stop;
        bool save_now = c->out && (epoch_done || last ||
                                   (c->save_every && r->step % (uint64_t)c->save_every == 0));
        if (save_now && save_or_retry(r, last) != 0)
            return 1;
        if (eval || save_now) { /* the throughput counts training only */
            r->log_time = progress_now();
            r->log_step = r->step;
        }
    }
    if (interrupted) {
        if (c->out && save(r) != 0)
            return 1;
        progress_note(&r->progress, "interrupted by %s at step %llu%s%s",
                      interrupted == SIGTERM  ? "SIGTERM"
                      : interrupted == SIGHUP ? "SIGHUP"
                                              : "SIGINT",
                      (unsigned long long)r->step, c->out ? "; continue with --resume " : "",
                      c->out ? c->out : "");
        return 128 + interrupted;
    }
    if (!r->lead)
        return 0;
    /* A resumed run that had already finished still reports its evaluation. */
    if ((r->last_eval_step != r->step || r->last_eval_step == 0) && run_eval(r) != 0)
        return 1;
    return r->data.test ? run_eval_on(r, true) : 0;
}

/* The --plot chart: loss, accuracy and learning rate over the steps (plot_training). */
static void draw(struct run *r)
{
    const struct model_desc *d = &r->c->desc;
    char title[1300], err[600];
    if (strcmp(d->kind, "gpt") == 0)
        snprintf(title, sizeof title,
                 "gpt (width %lld, depth %lld, heads %lld, context %lld) "
                 "on %.60s",
                 (long long)d->width, (long long)d->depth, (long long)d->heads,
                 (long long)d->context, r->c->data);
    else if (strcmp(d->kind, "file") == 0)
        snprintf(title, sizeof title, "%.60s on %.60s", d->path, r->c->data);
    else
        snprintf(title, sizeof title, "%s (width %lld) on %.60s", d->kind, (long long)d->width,
                 r->c->data);
    if (r->c->precision_kind != CLT_PRECISION_FP32) {
        size_t at = strlen(title);
        snprintf(title + at, sizeof title - at, ", %s", r->c->precision);
    }
    if (plot_training(r->c->plot, title, r->points, r->npoints, err, sizeof err) != 0)
        fprintf(stderr, "%s: %s\n", r->tl->cmd, err);
}

/* --expect-curve: each training loss logged at a step the golden file also logged is within
 * --tolerance of the golden one. 0, or -1 after naming the first step that drifted. */
static int check_curve(struct run *r)
{
    const struct train_config *c = r->c;
    struct metrics_point *golden = NULL;
    size_t n = 0, cap = 0, compared = 0;
    if (metrics_read(c->expect_curve, -1, &golden, &n, &cap) != 0) {
        fprintf(stderr, "%s: cannot read the golden curve %s\n", r->tl->cmd, c->expect_curve);
        free(golden);
        return -1;
    }
    int rc = 0;
    size_t g = 0;
    for (size_t i = 0; i < r->npoints && rc == 0; i++) {
        const struct metrics_point *p = &r->points[i];
        if (p->eval)
            continue;
        for (g = 0; g < n && (golden[g].eval || golden[g].step != p->step); g++)
            ;
        if (g == n)
            continue;
        compared++;
        double d = fabs(p->loss - golden[g].loss);
        if (!(d <= c->tolerance)) {
            fprintf(stderr,
                    "%s: the loss curve drifted from %s at step %lld: loss %.9g, the golden "
                    "%.9g (difference %.3g, tolerance %g)\n",
                    r->tl->cmd, c->expect_curve, (long long)p->step, p->loss, golden[g].loss, d,
                    c->tolerance);
            rc = -1;
        }
    }
    if (rc == 0 && compared == 0) {
        fprintf(stderr, "%s: %s has no training loss at a step this run logged\n", r->tl->cmd,
                c->expect_curve);
        rc = -1;
    } else if (rc == 0) {
        fprintf(stderr, "loss curve within %g of %s at all %zu steps compared\n", c->tolerance,
                c->expect_curve, compared);
    }
    free(golden);
    return rc;
}

/* Prints the final evaluation and checks the expectations: 0, or 3 if one is missed. */
static int finish(struct run *r, double seconds)
{
    const struct train_config *c = r->c;
    const struct eval_result *e = r->data.test ? &r->test : &r->last_eval;
    if (!r->lead)
        return 0;
    char took[32];
    progress_duration(seconds, took, sizeof took);
    progress_end(&r->progress);
    uint64_t steps = r->step - c->start_step;
    fprintf(stderr, "trained %llu step%s in %s\n", (unsigned long long)steps, steps == 1 ? "" : "s",
            took);
    eval_print(stdout, e);
    fflush(stdout);
    int rc = 0;
    if (!isnan(c->expect_accuracy) && !(e->accuracy >= c->expect_accuracy)) {
        fprintf(stderr, "%s: accuracy %.4f is below the expected %.4f\n", r->tl->cmd, e->accuracy,
                c->expect_accuracy);
        rc = 3;
    }
    if (!isnan(c->expect_loss) && !(e->loss < c->expect_loss)) {
        fprintf(stderr, "%s: loss %.4f is not below the expected %.4f\n", r->tl->cmd, e->loss,
                c->expect_loss);
        rc = 3;
    }
    if (c->expect_curve && check_curve(r) != 0)
        rc = 3;
    return rc;
}

/* Checks the outputs against the inputs and claims them (outputs.h). */
static int claim_outputs(struct train_config *c, struct outputs *os, const char *cmd)
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

/* Under MPI, before the first step: every rank has rank 0's global batch, model size, steps
 * and start (the same options and data), or the first rank that differs says so and fails;
 * the others wait for its exit or MPI_Abort to end them. */
static int agree(struct run *r)
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

int train_run(struct train_config *c, struct tool_log *tl)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.c = c;
    r.tl = tl;
    r.mpi = c->mpi;
    r.lead = r.mpi->rank == 0;
    r.last_loss = NAN;
    r.best_loss = INFINITY;
    if (!r.lead) { /* rank 0 writes every output */
        c->out = c->metrics = c->plot = c->expect_curve = NULL;
        c->keep_best = false;
        c->expect_accuracy = c->expect_loss = NAN;
        r.quiet = fopen("/dev/null", "w");
    }
    struct outputs outs = {0};
    int rc = r.lead ? claim_outputs(c, &outs, tl->cmd) : 0;
    if (rc != 0) {
        train_config_free(c);
        return rc;
    }
    rc = setup_data_and_model(&r);
    if (rc == 0)
        rc = setup_batcher(&r);
    if (rc == 0)
        rc = setup_trainer(&r);
    if (rc == 0 && r.mpi->size > 1)
        rc = agree(&r);
    char err[600];
    if (rc == 0 && c->resuming && c->metrics &&
        metrics_read(c->metrics, (int64_t)c->start_step, &r.points, &r.npoints, &r.cap) != 0) {
        fprintf(stderr, "%s: cannot read the metrics file %s\n", tl->cmd, c->metrics);
        rc = 1;
    }
    if (rc == 0 && metrics_open(&r.metrics, c->metrics, c->resuming ? (int64_t)c->start_step : -1,
                                err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", tl->cmd, err);
        rc = 1;
    }
    if (rc == 0) {
        r.step = c->start_step;
        progress_init(&r.progress, r.quiet ? r.quiet : stderr, r.step, r.total_steps, c->epochs);
        if (r.info.kind == CLT_DATASET_TEXT)
            r.progress.unit = "tokens";
        if (c->resuming && r.lead)
            fprintf(stderr, "resuming %s at step %llu of %llu\n", c->resume,
                    (unsigned long long)r.step, (unsigned long long)r.total_steps);
        struct sigaction sa, old[NSTOP];
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_interrupt;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < NSTOP; i++)
            sigaction(stop_signals[i], &sa, &old[i]);
        double start = progress_now();
        r.log_time = start;
        r.log_step = r.step;
        rc = train_loop(&r);
        for (size_t i = 0; i < NSTOP; i++)
            sigaction(stop_signals[i], &old[i], NULL);
        if (c->plot)
            draw(&r);
        if (rc == 0)
            rc = finish(&r, progress_now() - start);
    }
    progress_end(&r.progress);
    metrics_close(&r.metrics);
    free(r.points);
    free(r.test.confusion);
    free(r.x);
    free(r.y);
    clt_batcher_free(r.batcher);
    clt_trainer_free(r.tr);
    free_models(&r);
    for (uint32_t i = 0; i < r.ndev; i++)
        clt_device_close(r.devs[i]);
    data_close(&r.data);
    outputs_release(&outs);
    if (r.quiet)
        fclose(r.quiet);
    train_config_free(c);
    return rc;
}
