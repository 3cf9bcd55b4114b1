/*
 * commands.h: the subcommands of the cltrain program. Each takes the arguments after its
 * name and returns the process exit status: 0 success, 1 failure, 2 bad usage (train: 3 when
 * an --expect-* target is missed).
 */
#ifndef CLTRAIN_TOOLS_COMMANDS_H
#define CLTRAIN_TOOLS_COMMANDS_H

#include <stdint.h>

#include "cltrain.h"

int cmd_devices(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* cmd_tune.c: tunes the GEMM shapes of the built-in models ("mlp", "cnn", "gpt" or "all")
 * on an open device at a batch (0: cltrain train's default), printing progress on stderr as
 * CMD. Returns 0 or 1. */
struct clt_device;
int tune_models(struct clt_device *dev, const char *cmd, const char *model, int64_t batch);

/* A library log that prints warnings, errors and the tuner's progress lines on stderr. */
struct clt_log tune_progress_log(void);

#endif
