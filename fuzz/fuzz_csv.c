/* fuzz_csv.c: the CSV reader on arbitrary text; the first byte picks the label column. */
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
    if (size < 1)
        return 0;
    int32_t column = (int8_t)data[0] % 8;
    struct clt_log quiet = {discard, NULL, CLT_LOG_ERROR};
    struct clt_dataset *ds = NULL;
    if (clt__csv_parse((const char *)data + 1, size - 1, column == 0 ? -1 : column, &quiet,
                       "fuzz.csv", &ds) == CLT_OK)
        clt_dataset_free(ds);
    return 0;
}
