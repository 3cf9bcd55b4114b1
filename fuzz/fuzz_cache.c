/* fuzz_cache.c: the program binary cache's entry reader on arbitrary bytes, against a fixed
 * identity (a real entry for it is in the corpus). */
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *bin;
    size_t bin_size;
    clt__cache_parse(data, size, "cltrain fuzz identity\n", &bin, &bin_size);
    return 0;
}
