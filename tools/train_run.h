/*
 * train_run.h: what the two files of a `cltrain train` run share (train_run in train.h): the
 * run's state, and the setup's steps (train_setup.c) that train_run (train.c) calls before the
 * loop. Internal to those two files.
 */
#ifndef CLTRAIN_TOOLS_TRAIN_RUN_H
#define CLTRAIN_TOOLS_TRAIN_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "datasets.h"
#include "evaluate.h"
#include "metrics.h"
#include "outputs.h"
#include "progress.h"
#include "train.h"

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

/* Checks the outputs against the inputs and claims them (outputs.h). Returns as
 * outputs_claim: 0, 1 or 2. */
int train_claim_outputs(struct train_config *c, struct outputs *os, const char *cmd);

/* Loads the data and builds the model for it: opens the data (capping --batch to the training
 * set), resolves the devices, takes this rank's rows of every global batch, splits them over
 * the devices and builds each device's model. 0, or 1 after a message. */
int train_setup_data_and_model(struct run *r);

/* Makes the training batcher (at the recorded position when resuming), sets the steps of an
 * epoch and of the run, and allocates the host buffers of a global batch (r->x, r->y). 0, or 1
 * after a message. */
int train_setup_batcher(struct run *r);

/* Opens the devices and makes the trainer (after train_setup_batcher: a cosine schedule spans
 * the run's steps), timing the devices first for --device-weights measure; rank 0 prints the
 * model, its memory and the split; a resumed run loads its checkpoint on every rank. 0, or 1
 * after a message. */
int train_setup_trainer(struct run *r);

/* Frees the models of every device (r->m and r->dm), built or not. */
void train_free_models(struct run *r);

/* Under MPI, before the first step: every rank has rank 0's global batch, model size, steps
 * and start (the same options and data), or the first rank that differs says so and fails;
 * the others wait for its exit or MPI_Abort to end them. */
int train_agree(struct run *r);

#endif
