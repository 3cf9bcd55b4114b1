/* fuzz_args.c: command-line option parsing on arbitrary argument vectors (the input split at
 * NUL bytes), with a table of every option type. */
#include <stdlib.h>
#include <string.h>

#include "args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    char *argv[64];
    int argc = 0;
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    for (size_t i = 0; i <= size && argc < 64; i++) {
        if (i == 0 || copy[i - 1] == 0)
            argv[argc++] = copy + i;
    }
    const char *model = NULL;
    int64_t epochs = 1;
    double lr = 0.001;
    bool quiet = false;
    struct opt opts[] = {
        {"model", OPT_STRING, &model, "M", "model", 0, 0, false},
        {"epochs", OPT_INT, &epochs, "N", "epochs", 1, 1e6, false},
        {"lr", OPT_FLOAT, &lr, "X", "rate", 0, 10, false},
        {"quiet", OPT_FLAG, &quiet, NULL, "quiet", 0, 0, false},
    };
    /* --help prints the usage to stdout: harmless. */
    args_parse("fuzz", argc, argv, opts, sizeof opts / sizeof opts[0]);
    free(copy);
    return 0;
}
