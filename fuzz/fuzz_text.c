/* fuzz_text.c: the text reader and a batcher over what it read. */
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
    struct clt_log quiet = {discard, NULL, CLT_LOG_ERROR};
    struct clt_dataset *ds = NULL;
    if (clt__text_parse(data, size, &quiet, "fuzz.txt", &ds) != CLT_OK)
        return 0;
    struct clt_batcher *b = NULL;
    if (clt_batcher_create(ds, 2, 3, 1, true, &b) == CLT_OK) {
        int32_t x[6], y[6];
        clt_batcher_next(b, false, x, y, NULL, NULL);
        clt_batcher_free(b);
    }
    clt_dataset_free(ds);
    return 0;
}
