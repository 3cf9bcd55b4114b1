/*
 * cltrain.c: the command-line program. Dispatches to a subcommand.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cltrain.h"
#include "commands.h"
#include "common.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: cltrain COMMAND [OPTIONS]\n"
               "\n"
               "commands:\n"
               "  devices [--json] [--warm] [--device SEL|all]\n"
               "          list OpenCL devices; --warm builds every kernel and tunes the GEMM\n"
               "          shapes of the built-in models for the selected device (default:\n"
               "          CLTRAIN_DEVICE, else the first GPU, else the first)\n"
               "  train --model M --data D [--epochs N] [--device SEL] [--metrics FILE]\n"
               "        [--out CHECKPOINT] [--resume CHECKPOINT] [--plot FILE.svg] ...\n"
               "          train a model (mlp, cnn, gpt, file:PATH) on a dataset\n"
               "          (fashion-mnist, idx:DIR, csv:FILE, text:FILE)\n"
               "  eval --checkpoint FILE [--data D]\n"
               "          loss, accuracy, confusion matrix and per-class precision, recall, F1\n"
               "  sample --checkpoint FILE [--length N] [--prompt TEXT] [--temperature T]\n"
               "          generate text from a gpt checkpoint\n"
               "  predict --checkpoint FILE --data D [--out predictions.csv] [--force]\n"
               "          each row's class and class probabilities (csv:FILE, idx:DIR,\n"
               "          fashion-mnist), or text generated after each line of text:FILE\n"
               "  tune [--device SEL] [--model M|all] [--show [--json]]\n"
               "          time the GEMM implementations for the built-in models' shapes and\n"
               "          cache the fastest; --show prints the choices and every figure\n"
               "  export --checkpoint FILE --precision fp16|bf16|fp32 --out FILE [--force]\n"
               "          write a checkpoint's weights as F16, BF16 or F32 safetensors\n"
               "\n"
               "  cltrain COMMAND --help shows a command's options.\n"
               "\n"
               "  cltrain --version | --help\n");
}

/* The --device argument of a command's options (the last one given), or NULL; *help is set
 * when the options ask for --help. */
static const char *device_arg(int argc, char **argv, bool *help)
{
    const char *sel = NULL;
    *help = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            *help = true;
        else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
            sel = argv[++i];
        else if (strncmp(argv[i], "--device=", 9) == 0)
            sel = argv[i] + 9;
    }
    return sel;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("cltrain %s\n", clt_version());
        return 0;
    }
    if (strcmp(cmd, "devices") == 0)
        return cmd_devices(argc - 2, argv + 2);
    if (strcmp(cmd, "export") == 0) /* reads and writes files only: no device */
        return cmd_export(argc - 2, argv + 2);
    /* Every other command opens a device: a selection that matches none (from --device or
     * CLTRAIN_DEVICE) is refused here, before any data is read or any model built. */
    bool help = false;
    const char *device = device_arg(argc - 2, argv + 2, &help);
    bool known = strcmp(cmd, "train") == 0 || strcmp(cmd, "eval") == 0 ||
                 strcmp(cmd, "sample") == 0 || strcmp(cmd, "predict") == 0;
    if (known && !help) {
        char name[32];
        snprintf(name, sizeof name, "cltrain %s", cmd);
        /* train takes several devices too: "all" or a comma list (data-parallel). */
        char sel[TOOL_MAX_DEVICES][16];
        uint32_t n = 1;
        if (strcmp(cmd, "train") == 0 && tool_devices_resolve(name, device, sel, &n) != 0)
            return 1;
        if (n == 1 && tool_device_check(name, device, false) != 0)
            return 1;
    }
    if (strcmp(cmd, "train") == 0)
        return cmd_train(argc - 2, argv + 2);
    if (strcmp(cmd, "eval") == 0)
        return cmd_eval(argc - 2, argv + 2);
    if (strcmp(cmd, "sample") == 0)
        return cmd_sample(argc - 2, argv + 2);
    if (strcmp(cmd, "predict") == 0)
        return cmd_predict(argc - 2, argv + 2);
    if (strcmp(cmd, "tune") == 0)
        return cmd_tune(argc - 2, argv + 2);
    fprintf(stderr, "cltrain: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
