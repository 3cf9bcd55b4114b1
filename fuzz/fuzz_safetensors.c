/* fuzz_safetensors.c: the safetensors reader (checkpoints) on arbitrary bytes. */
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct clt__safetensors st;
    char why[256];
    if (clt__safetensors_parse(data, size, &st, why, sizeof why) == CLT_OK)
        clt__safetensors_free(&st);
    return 0;
}
