/*
 * data_text.c: a text for a character model. Every byte is a token; the vocabulary is the
 * set of distinct bytes, numbered in byte order (so id 0 is the smallest byte present), and
 * a text holds at least two tokens: one window of one token and its successor.
 */
#include <stdlib.h>
#include <string.h>

#include "data.h"

enum clt_status clt__text_parse(const unsigned char *data, size_t size, const struct clt_log *log,
                                const char *name, struct clt_dataset **out)
{
    if ((!data && size) || !out)
        return CLT_ERR_INVALID_ARGUMENT;
    if (!name)
        name = "text";
    if (size < 2) {
        clt__log(log, CLT_LOG_ERROR, "%s: %s: a text needs at least two bytes", name,
                 size ? "one byte" : "empty");
        return CLT_ERR_FORMAT;
    }
    bool seen[256] = {false};
    for (size_t i = 0; i < size; i++)
        seen[data[i]] = true;
    uint8_t id_of[256] = {0};
    struct clt_dataset *ds = NULL;
    enum clt_status st = clt__dataset_new_text(log, name, size, &ds);
    if (st != CLT_OK)
        return st;
    for (int byte = 0; byte < 256; byte++) {
        if (!seen[byte])
            continue;
        id_of[byte] = (uint8_t)ds->vocab;
        ds->symbols[ds->vocab++] = (uint8_t)byte;
    }
    for (size_t i = 0; i < size; i++)
        ds->tokens[i] = id_of[data[i]];
    *out = ds;
    return CLT_OK;
}

enum clt_status clt_dataset_load_text(const char *path, const struct clt_log *log,
                                      struct clt_dataset **out)
{
    if (!path || !out)
        return CLT_ERR_INVALID_ARGUMENT;
    unsigned char *data = NULL;
    size_t size = 0;
    enum clt_status st = clt__file_read(log, path, &data, &size);
    if (st == CLT_OK)
        st = clt__text_parse(data, size, log, path, out);
    free(data);
    return st;
}
