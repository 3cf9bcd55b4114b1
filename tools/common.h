/*
 * common.h: what the commands share: a log that keeps the library's last error for the
 * command's own one-line message, opening the device, the metadata a cltrain checkpoint
 * carries about its model and data, and opening a checkpoint for inference (eval, predict,
 * sample).
 *
 * Metadata keys written by `cltrain train` (all values are strings; docs/formats.md):
 *   model            model_desc_format's line, e.g. "cnn width=32 depth=0 ..."
 *   model.spec       the text of a model file (kind "file" only)
 *   data             the --data spec, e.g. "fashion-mnist"
 *   data.seed        seed of the validation split; data.limit: --limit (0: none)
 *   data.val_fraction, data.eval, data.hash: --val-fraction, --eval-data, the data's
 *                    fingerprint (data_fingerprint)
 *   data.shape       one example's feature shape, "1,28,28" (classes)
 *   data.classes     number of classes; data.vocab and data.symbols (hex bytes) for a text
 *   train.*          the training options and position (see cmd_train.c)
 */
#ifndef CLTRAIN_TOOLS_COMMON_H
#define CLTRAIN_TOOLS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cltrain.h"
#include "models.h"

/* A log that prints warnings to stderr and keeps the last error. */
struct tool_log {
    struct clt_log log; /* give &tl.log to the library */
    const char *cmd;    /* "cltrain train" */
    char last[1024];    /* the last error message, "" if none */
    bool verbose;       /* print info messages too */
};

void tool_log_init(struct tool_log *tl, const char *cmd, bool verbose);

/* Prints "CMD: what: detail" to stderr, where detail is the library's last logged error if
 * there is one, else the status's name. */
void tool_fail(struct tool_log *tl, enum clt_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prints "CMD: message" and, if the library logged an error, ": detail" after it. For
 * messages that already say why (data_open's). */
void tool_report(struct tool_log *tl, const char *message);

/* Opens the device (NULL: CLTRAIN_DEVICE, else the default rule) with tl as its log.
 * Prints the error and returns NULL on failure. */
struct clt_device *tool_device_open(struct tool_log *tl, const char *selection);

/* Checks a device selection against the devices present, without opening one, so that a
 * command refuses a bad --device before any work. selection NULL or "" means CLTRAIN_DEVICE,
 * else the default rule (which only needs some device); "all" is accepted when allow_all.
 * Returns 0, or 1 after a message on stderr ("CMD: no device matches ...") that lists the
 * available devices, and says how to enable rusticl when it is not listed. */
int tool_device_check(const char *cmd, const char *selection, bool allow_all);

/* The most devices one data-parallel `cltrain train` spans. */
#define TOOL_MAX_DEVICES 16

/* Resolves a selection of several devices for data-parallel training: "all" (every device
 * listed) or a comma list ("pocl,llvmpipe", "0:0,0:1"), each item as clt_device_select.
 * selection NULL or "" means CLTRAIN_DEVICE. Writes each device's "P:D" into sel and their
 * number into *n; a selection of one device (no comma, not "all") gives *n = 1 and sel[0] ""
 * (open it with tool_device_open and the selection as given). Returns 0, or 1 after a message
 * on stderr: an empty item, an item no device matches, the same device named twice, more than
 * TOOL_MAX_DEVICES devices, or "all" with no device. */
int tool_devices_resolve(const char *cmd, const char *selection, char sel[][16], uint32_t *n);

/* Prints the devices of a list, one "  P:D  platform / name (type)" line each. */
void tool_devices_brief(FILE *f, const struct clt_device_info *list, size_t count);

/* When no device of Mesa's rusticl is in the list, prints how to enable it (rusticl lists
 * no device unless RUSTICL_ENABLE names a driver, e.g. RUSTICL_ENABLE=llvmpipe), or, when
 * RUSTICL_ENABLE is set, that it is installed with mesa-opencl-icd. */
void tool_rusticl_hint(FILE *f, const struct clt_device_info *list, size_t count);

/* Prints a note to f when list has a CPU device and this machine is a Linux guest whose idle
 * vCPUs halt at once (the haltpoll driver's guest_halt_poll_ns, read from `path`, is 0): then
 * a CPU device's threads wait for a halted vCPU at every kernel (docs/ci.md). Whether it
 * printed. */
bool tool_idle_hint(FILE *f, const struct clt_device_info *list, size_t count, const char *path);

/* The haltpoll driver's setting, tool_idle_hint's path on Linux. */
#define TOOL_HALT_POLL_PATH "/sys/module/haltpoll/parameters/guest_halt_poll_ns"

/* What a checkpoint says about its model and data. */
struct ckpt_model {
    struct model_desc desc; /* desc.spec points into spec */
    char *spec;             /* a model file's text, or NULL (owned) */
    char data[4096];        /* --data spec */
    uint64_t data_seed, data_limit;
    int32_t label_column;
    struct clt_dataset_info info; /* kind, shape, classes or vocab the model was built for */
    uint8_t symbols[256];         /* text: the byte of each id */
    int64_t batch;
};

/* Reads the model and data metadata of an open checkpoint. 0, or -1 with a message. */
int ckpt_model_read(const struct clt_checkpoint *ck, struct ckpt_model *out, char *err,
                    size_t err_size);
void ckpt_model_free(struct ckpt_model *m);

/* A checkpoint of `cltrain train` opened for inference (eval, predict, sample): its metadata
 * (ckpt_open), then its model built at a batch size on a device with the parameters loaded
 * (ckpt_load). Zero it before ckpt_open; ckpt_close frees what is held. */
struct ckpt {
    const char *path;
    struct clt_checkpoint *ck;
    struct ckpt_model cm;
    struct model m;
    struct clt_device *dev;
    struct clt_trainer *tr;
};

/* Opens the checkpoint at path and reads its model and data metadata. 0, or 1 after printing
 * why. */
int ckpt_open(struct tool_log *tl, const char *path, struct ckpt *c);

/* Builds the model at batch, opens the device (selection as tool_device_open) and loads the
 * parameters. 0, or 1 after printing why. */
int ckpt_load(struct tool_log *tl, struct ckpt *c, int64_t batch, const char *device);

void ckpt_close(struct ckpt *c);

/* Formats a dataset's shape and symbols for the metadata. */
void meta_shape(const struct clt_dataset_info *info, char *out, size_t size);
void meta_symbols(const uint8_t *symbols, uint32_t vocab, char *out, size_t size);

/* An unsigned integer of a metadata key; false if absent or malformed. */
bool meta_u64(const struct clt_checkpoint *ck, const char *key, uint64_t *out);

/* The precision named by s ("fp32", "fp16", "bf16": clt_precision_name's), or false. */
bool tool_precision_parse(const char *s, enum clt_precision *out);

/* Argmax of a row of n logits. */
int64_t argmax(const float *row, int64_t n);

#endif
