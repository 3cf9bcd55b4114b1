/*
 * cltrain.c: the command-line program. Dispatches to a subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "cltrain.h"
#include "commands.h"

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
               "          loss, accuracy and confusion matrix of a checkpoint\n"
               "  sample --checkpoint FILE [--length N] [--prompt TEXT] [--temperature T]\n"
               "          generate text from a gpt checkpoint\n"
               "  tune [--device SEL] [--model M|all] [--show [--json]]\n"
               "          time the GEMM implementations for the built-in models' shapes and\n"
               "          cache the fastest; --show prints the choices and every figure\n"
               "\n"
               "  cltrain COMMAND --help shows a command's options.\n"
               "\n"
               "  cltrain --version | --help\n");
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
    if (strcmp(cmd, "train") == 0)
        return cmd_train(argc - 2, argv + 2);
    if (strcmp(cmd, "eval") == 0)
        return cmd_eval(argc - 2, argv + 2);
    if (strcmp(cmd, "sample") == 0)
        return cmd_sample(argc - 2, argv + 2);
    if (strcmp(cmd, "tune") == 0)
        return cmd_tune(argc - 2, argv + 2);
    fprintf(stderr, "cltrain: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
