/*
 * datasets.h: the --data specifications of the cltrain programs, and the training and
 * evaluation sets they name:
 *
 *   fashion-mnist  Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist):
 *                  train-* for training, t10k-* for evaluation
 *   idx:DIR        a folder with the four MNIST-style IDX files (train-images-idx3-ubyte,
 *                  train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte,
 *                  each possibly with .gz)
 *   csv:FILE       one example per line, label in the last column (or the column
 *                  label_column says); a seeded validation fraction (10%) for evaluation
 *   text:FILE      a text for a character model; its last 10% for evaluation
 */
#ifndef CLTRAIN_TOOLS_DATASETS_H
#define CLTRAIN_TOOLS_DATASETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cltrain.h"

#define DATA_HELD_OUT 0.1 /* the default validation fraction (--val-fraction) */
#define DATA_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* How to read a --data spec. */
struct data_options {
    uint64_t seed, limit;  /* the validation split's seed; limit > 0: the first N of each set */
    int32_t label_column;  /* csv: from 0, negative from the end (-1: the last) */
    uint32_t classes;      /* 0: the labels must be 0 .. K-1 (checked); else every label < it */
    double val_fraction;   /* the part of the training data held out for validation (0: none) */
    const char *eval_data; /* csv:FILE or idx:DIR whose set is the test set, or NULL */
    bool whole;            /* the spec's whole data is the set to evaluate (cltrain eval) */
};

void data_options_init(struct data_options *o);

/* The sets of a run. eval is what the run evaluates on each epoch (the validation set when
 * there is one, else the test set); test is the set of the final evaluation (an idx folder's
 * t10k files, or --eval-data), or NULL when the final evaluation is on eval too. */
struct data_sets {
    struct clt_dataset *train, *eval, *test;
    struct clt_dataset_info train_info, eval_info, test_info;
};

/* Checks the form of a --data argument without reading anything. 0, or -1 with a message. */
int data_spec_check(const char *spec, char *err, size_t err_size);

/* Loads the datasets a spec names:
 *   fashion-mnist, idx:DIR  train-* split into training and validation (val_fraction), t10k-*
 *                           the test set;
 *   csv:FILE                the rows split into training and validation (val_fraction);
 *   text:FILE               the first (1 - val_fraction) of the bytes for training, the rest
 *                           for validation;
 * and eval_data's set (its t10k files for idx, every row for csv) as the test set. With
 * whole, the spec's data is not split: all of it (idx: t10k) is eval and there is no training
 * set. Labels are checked against the number of classes (clt_dataset_check_classes); the test
 * set's must be below the training set's. On failure writes one line to err and returns the
 * status (CLT_ERR_IO for a missing file, CLT_ERR_FORMAT for a corrupt one or bad labels,
 * CLT_ERR_INVALID_ARGUMENT for a bad spec). log may be NULL. */
enum clt_status data_open(const char *spec, const struct data_options *o, const struct clt_log *log,
                          struct data_sets *out, char *err, size_t err_size);

void data_close(struct data_sets *d);

/* The files a spec reads (an idx folder: its four files, plain and .gz), written into
 * paths[0..max); returns how many. */
size_t data_input_paths(const char *spec, char (*paths)[4096], size_t max);

/* A fingerprint of the files a spec reads (their sizes and bytes: FNV-1a 64) as 16 hex
 * digits in out[17]. 0, or -1 when one cannot be read. */
int data_fingerprint(const char *spec, char *out);

#endif
