/*
 * train.c: the training loop of `cltrain train` (see train.h), after its setup (train_setup.c,
 * train_run.h), and the end of the run: the plot, the final evaluation, the expectations.
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
#include "train_run.h"

/* The signal that asked the run to stop (SIGINT, SIGTERM or SIGHUP), or 0. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    interrupted = sig;
}

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define NSTOP (sizeof stop_signals / sizeof stop_signals[0])

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
    int rc = r.lead ? train_claim_outputs(c, &outs, tl->cmd) : 0;
    if (rc != 0) {
        train_config_free(c);
        return rc;
    }
    rc = train_setup_data_and_model(&r);
    if (rc == 0)
        rc = train_setup_batcher(&r);
    if (rc == 0)
        rc = train_setup_trainer(&r);
    if (rc == 0 && r.mpi->size > 1)
        rc = train_agree(&r);
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
    train_free_models(&r);
    for (uint32_t i = 0; i < r.ndev; i++)
        clt_device_close(r.devs[i]);
    data_close(&r.data);
    outputs_release(&outs);
    if (r.quiet)
        fclose(r.quiet);
    train_config_free(c);
    return rc;
}
