/*
 * train.h: the training run behind `cltrain train`: its configuration (from the command
 * line, or from a checkpoint being resumed: train_config.c) and the run itself (train.c and
 * train_setup.c, which share train_run.h).
 */
#ifndef CLTRAIN_TOOLS_TRAIN_H
#define CLTRAIN_TOOLS_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "args.h"
#include "common.h"
#include "models.h"
#include "train_mpi.h"

struct train_config {
    /* From the command line (strings point into argv or into the buffers below). */
    const char *model_arg, *data, *device, *metrics, *out, *resume, *plot;
    const char *eval_data, *expect_curve;
    const char *device_weights; /* --device-weights: "measure" or W,W,... (docs/parallel.md) */
    const char *optimizer, *schedule;
    const char *precision;             /* --precision: "fp32" (default), "fp16" or "bf16" */
    enum clt_precision precision_kind; /* precision, parsed by train_config_check */
    struct model_desc desc;
    int64_t epochs, max_steps, batch, warmup, seed, limit, log_every, eval_every, save_every;
    int64_t label_column; /* csv: the label's column, from 0; negative from the end */
    int64_t classes;      /* --classes: 0 from the labels */
    int64_t stop_at;      /* --stop-at: end the run at this step without shortening the schedule */
    int64_t patience;     /* --patience: stop after N evaluations without a better loss (0: off) */
    double val_fraction;  /* --val-fraction */
    double tolerance;     /* --tolerance of --expect-curve: |loss - golden| <= tolerance */
    bool keep_best;       /* --keep-best: also save the best evaluation's checkpoint */
    bool batch_default;   /* --batch not given: the model's default, capped for small data */
    double lr, momentum, weight_decay, clip, dropout;
    double expect_accuracy, expect_loss; /* NAN: no expectation */
    bool verbose, force;
    bool decay_all; /* --decay-all: weight decay on biases, norms and embeddings too */

    /* MPI (train_mpi.h): the ranks of this run (tool_mpi_start; size 1 for one process). A
     * checkpoint records the rank count (train.ranks, absent: 1), and a resume needs the same. */
    struct tool_mpi *mpi;

    /* Where a resumed run starts. */
    bool resuming;
    uint64_t start_step;
    uint64_t batcher_epoch, batcher_position;

    char *spec; /* a model file's text (owned; desc.spec points to it) */
    char data_buf[4096], eval_data_buf[4096], optimizer_buf[16], schedule_buf[16];
    char data_hash[17];   /* the data's fingerprint (data_fingerprint), "" if unknown */
    char best_path[4200]; /* --keep-best: "<out without .safetensors>.best.safetensors" */
};

/* The defaults, before the model's (model_training_defaults in cmd_train.c). */
void train_config_init(struct train_config *c);

/* Fills c from the checkpoint c->resume: the model, data and training options it was saved
 * with, and the step and batcher position to continue from. Options given on the command
 * line (o[i].seen) must agree with the checkpoint, except those that do not change the
 * trajectory (epochs, steps, device, outputs, evaluation and logging). Returns 0, 1 (an
 * unreadable checkpoint) or 2 (a conflicting option), with a message in err. */
int train_config_resume(struct train_config *c, struct opt *o, size_t n, struct tool_log *tl,
                        char *err, size_t err_size);

/* Checks the options' values and reads a model file. 0, 1 or 2 with a message in err. */
int train_config_check(struct train_config *c, char *err, size_t err_size);

/* The checkpoint metadata for c at a position; returns the number of pairs (at most 40). The
 * strings live in buf. */
size_t train_config_meta(const struct train_config *c, const struct clt_dataset_info *info,
                         const uint8_t *symbols, uint64_t step, uint64_t batcher_epoch,
                         uint64_t batcher_position, struct clt_meta *meta, char *buf,
                         size_t buf_size);

/* Runs the training; returns the exit status (0, 1, or 3 for a missed expectation). */
int train_run(struct train_config *c, struct tool_log *tl);

void train_config_free(struct train_config *c);

#endif
