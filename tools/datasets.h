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
 *                  label_column says); a seeded held-out fraction (10%) for evaluation
 *   text:FILE      a text for a character model; its last 10% for evaluation
 */
#ifndef CLTRAIN_TOOLS_DATASETS_H
#define CLTRAIN_TOOLS_DATASETS_H

#include <stddef.h>
#include <stdint.h>

#include "cltrain.h"

#define DATA_HELD_OUT 0.1 /* the evaluation fraction of csv and text datasets */
#define DATA_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

struct data_sets {
    struct clt_dataset *train, *eval;
    struct clt_dataset_info train_info, eval_info;
};

/* Checks the form of a --data argument without reading anything. 0, or -1 with a message. */
int data_spec_check(const char *spec, char *err, size_t err_size);

/* Loads the datasets a spec names. seed chooses the held-out split of a csv file, whose
 * labels are in column label_column (from 0; negative counts from the end, -1 the last);
 * limit > 0 keeps only the first `limit` examples (tokens of a text) of each part. On failure
 * writes one line to err and returns the status (CLT_ERR_IO for a missing file, CLT_ERR_FORMAT for
 * a corrupt one, CLT_ERR_INVALID_ARGUMENT for a bad spec). log may be NULL. */
enum clt_status data_open(const char *spec, uint64_t seed, uint64_t limit, int32_t label_column,
                          const struct clt_log *log, struct data_sets *out, char *err,
                          size_t err_size);

void data_close(struct data_sets *d);

/* The files a spec reads (an idx folder: its four files, plain and .gz), written into
 * paths[0..max); returns how many. */
size_t data_input_paths(const char *spec, char (*paths)[4096], size_t max);

#endif
