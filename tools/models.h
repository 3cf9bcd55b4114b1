/*
 * models.h: the models the cltrain programs know how to build: the built-in `mlp`, `cnn` and
 * `gpt`, and models described layer by layer in a text file (docs/formats.md, "Model
 * files"). A model is described by a `struct model_desc` (a kind and sizes, as given on the
 * command line), which has a one-line text form stored in checkpoints under "model", and is
 * built for a dataset's shape at a batch size through the public graph API.
 *
 * Inputs of a built model, in the order clt_trainer_step wants them:
 *   classes (mlp, cnn, file):  x F32 [batch, shape...], y I32 [batch]   (labels, -1 ignored)
 *   text (gpt):                x I32 [batch, context], y I32 [batch, context]
 * logits are [batch, classes] or [batch, context, vocab]; loss is the mean cross-entropy
 * ([1]) with ignore_index -1.
 */
#ifndef CLTRAIN_TOOLS_MODELS_H
#define CLTRAIN_TOOLS_MODELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cltrain.h"

/* What to build. Sizes of 0 (and dropout < 0) mean the kind's default, see model_defaults. */
struct model_desc {
    char kind[16];    /* "mlp", "cnn", "gpt" or "file" */
    char path[512];   /* kind "file": the model file (read by model_build unless spec is set) */
    const char *spec; /* kind "file": the file's text, if already in memory (borrowed); the
                         programs store it in checkpoints under "model.spec" */
    int64_t width;    /* mlp: hidden features; cnn: channels of the first conv; gpt: D */
    int64_t depth;    /* mlp: hidden layers; gpt: transformer blocks */
    int64_t heads;    /* gpt: attention heads (width divisible by heads) */
    int64_t context;  /* gpt: tokens per window T */
    float dropout;    /* mlp, cnn, gpt: dropout probability */
};

/* A layer of a built model for its summary: a name ("fc1", "relu", "block0") and its output.
 * A layer's parameters are the trainer's parameters named "<name>.*". */
struct model_layer {
    char name[64];
    const struct clt_tensor *out;
};

#define MODEL_SUMMARY_MAX 96

/* A built model. The graph owns the tensors; model_free frees it all. */
struct model {
    struct clt_graph *g;
    struct clt_tensor *x, *y, *logits, *loss;
    int64_t batch;
    int64_t classes;   /* the last dimension of logits (classes or vocab) */
    int64_t positions; /* gpt: context T (logits rows per example); 1 otherwise */
    struct model_layer layers[MODEL_SUMMARY_MAX]; /* in order, for model_summary */
    int nlayers, more_layers;                     /* more_layers: past MODEL_SUMMARY_MAX */
};

/* Prints the model's layers, one a line: name, output shape ("B" for the batch) and the
 * number of parameters (trained and state) whose names start with "<name>.", then the
 * total. tr is the model's trainer. */
void model_summary(FILE *f, const struct model *m, const struct clt_trainer *tr);

/* Sets d to kind's defaults (kind "mlp", "cnn", "gpt" or "file"); zeroes path and spec. */
void model_desc_init(struct model_desc *d, const char *kind);

/* Replaces every "default" field (0, dropout < 0) of d with the kind's default. */
void model_defaults(struct model_desc *d);

/* The data a built-in model is sized for when no dataset is at hand (tuning ahead of time,
 * the bench): 28 x 28 images of 10 classes for mlp and cnn, text of 96 symbols for gpt. */
void model_default_data(const char *kind, struct clt_dataset_info *info);

/* Parses a --model argument: "mlp", "cnn", "gpt" or "file:PATH" into d (sizes left at the
 * defaults). CLT_ERR_INVALID_ARGUMENT, with a message in err, for anything else. */
enum clt_status model_desc_from_arg(const char *arg, struct model_desc *d, char *err,
                                    size_t err_size);

/* Builds the model for a dataset (its kind and shape, classes or vocab) at a batch size.
 * On failure writes one line to err and leaves *out empty (model_free is still safe). */
enum clt_status model_build(const struct model_desc *d, const struct clt_dataset_info *data,
                            int64_t batch, struct model *out, char *err, size_t err_size);

/* Records a layer's output x under name for model_summary (builders of other files, such as
 * models_large.c); returns x, so that it wraps a builder call. */
struct clt_tensor *model_note(struct model *m, const char *name, struct clt_tensor *x);

/* Writes a message into err (err_size bytes, always terminated; nothing when err is NULL). */
void model_say(char *err, size_t size, const char *fmt, ...);

/* Parse a whole token of len bytes as an integer in [lo, hi] or a finite float; false (out
 * untouched) otherwise. */
bool model_parse_i64(const char *s, size_t len, int64_t lo, int64_t hi, int64_t *out);
bool model_parse_f32(const char *s, size_t len, float *out);

/* Frees the graph. Accepts a zeroed or failed model. */
void model_free(struct model *m);

/* The description as one line, e.g. "gpt width=128 depth=4 heads=4 context=64 dropout=0",
 * or "file path=models/small.txt dropout=0". Returns the length snprintf would give. */
int model_desc_format(const struct model_desc *d, char *out, size_t size);

/* Parses model_desc_format's text back (spec is left NULL). CLT_ERR_FORMAT if malformed. */
enum clt_status model_desc_parse(const char *text, struct model_desc *d);

/* ---- Model files ------------------------------------------------------------------------ */

enum layer_kind {
    LAYER_LINEAR,
    LAYER_CONV2D,
    LAYER_MAXPOOL,
    LAYER_AVGPOOL,
    LAYER_GLOBALAVGPOOL,
    LAYER_BATCHNORM,
    LAYER_LAYERNORM,
    LAYER_FLATTEN,
    LAYER_DROPOUT,
    LAYER_RELU,
    LAYER_LEAKY_RELU,
    LAYER_GELU,
    LAYER_TANH,
    LAYER_SIGMOID,
    LAYER_SILU,
};

/* The model file's word for a layer kind ("linear", "conv", ...). */
const char *model_layer_kind_name(enum layer_kind kind);

/* One line of a model file. n is the main count (features, channels, pool size; -1 for
 * "classes"), k the kernel, f a float argument (dropout p, leaky slope). */
struct layer {
    enum layer_kind kind;
    int line;
    int64_t n, k, stride, pad;
    float f;
    int bias;
};

#define MODEL_FILE_MAX_LAYERS 256

struct layer_list {
    int count;
    struct layer layers[MODEL_FILE_MAX_LAYERS];
};

/* Parses a model file's text (NUL-terminated, any size; need not come from a file). On a
 * malformed line writes "line N: reason" to err and returns CLT_ERR_FORMAT. Never reads past
 * the terminator; safe on arbitrary bytes. */
enum clt_status model_file_parse(const char *text, struct layer_list *out, char *err,
                                 size_t err_size);

/* Reads a whole file into a NUL-terminated heap string (free with free). NULL with a message
 * in err when it cannot be read or is larger than max_bytes. */
char *model_read_file(const char *path, size_t max_bytes, char *err, size_t err_size);

#endif
