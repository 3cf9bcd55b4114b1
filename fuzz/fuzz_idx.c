/* fuzz_idx.c: the IDX reader (MNIST-style datasets) on arbitrary bytes. The first two bytes
 * say where the images file ends and the labels file starts. */
#include "data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void discard(void *user, enum clt_log_level level, const char *message)
{
    (void)user;
    (void)level;
    (void)message;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t split = ((size_t)data[0] << 8 | data[1]) % (size - 1);
    const uint8_t *rest = data + 2;
    size_t rest_size = size - 2;
    if (split > rest_size)
        split = rest_size;
    struct clt_log quiet = {discard, NULL, CLT_LOG_ERROR};
    struct clt_dataset *ds = NULL;
    if (clt__idx_parse(rest, split, rest + split, rest_size - split, &quiet, "images", "labels",
                       &ds) == CLT_OK)
        clt_dataset_free(ds);
    return 0;
}
