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
               "          list OpenCL devices; --warm builds every kernel for the selected\n"
               "          device (default: CLTRAIN_DEVICE, else the first GPU, else the first)\n"
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
    fprintf(stderr, "cltrain: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
