/*
 * data_idx.c: IDX files, the format MNIST and Fashion-MNIST ship in.
 *
 * An IDX file is a big-endian header, then the data, nothing else:
 *
 *   0   4      magic: 0x00 0x00, the element type (0x08: unsigned byte), the number of
 *              dimensions N; so 0x00000803 for images [count, rows, cols] and 0x00000801
 *              for labels [count]
 *   4   4 * N  each dimension, u32 big-endian, none 0
 *   ..  prod   the elements, row-major
 *
 * The file must be exactly as long as its header says, and the images and labels must
 * count the same examples. Labels are bytes, so every label is a valid class; classes is
 * 1 + the largest one.
 */
#include <stdlib.h>

#include "data.h"

#define IDX_IMAGES 0x00000803u
#define IDX_LABELS 0x00000801u

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks one IDX file of `ndims` dimensions against `magic` and writes its dimensions. */
static enum clt_status check_header(const unsigned char *data, size_t size, uint32_t magic,
                                    uint32_t ndims, uint32_t *dims, const struct clt_log *log,
                                    const char *name)
{
    size_t head = 4 + 4 * (size_t)ndims;
    if (size < head) {
        clt__log(log, CLT_LOG_ERROR, "%s: truncated IDX header (%zu of %zu bytes)", name, size,
                 head);
        return CLT_ERR_FORMAT;
    }
    if (be32(data) != magic) {
        clt__log(log, CLT_LOG_ERROR, "%s: IDX magic 0x%08x, expected 0x%08x", name,
                 (unsigned)be32(data), (unsigned)magic);
        return CLT_ERR_FORMAT;
    }
    /* The data size, checked against what memory can address before it is multiplied. */
    uint64_t total = 1;
    for (uint32_t d = 0; d < ndims; d++) {
        dims[d] = be32(data + 4 + 4 * d);
        if (dims[d] == 0) {
            clt__log(log, CLT_LOG_ERROR, "%s: IDX dimension %u is 0", name, (unsigned)d);
            return CLT_ERR_FORMAT;
        }
        if (total > (SIZE_MAX - head) / dims[d]) {
            clt__log(log, CLT_LOG_ERROR, "%s: IDX dimensions overflow", name);
            return CLT_ERR_FORMAT;
        }
        total *= dims[d];
    }
    if (size - head != total) {
        clt__log(log, CLT_LOG_ERROR, "%s: %s IDX data: %zu bytes, the header says %llu", name,
                 size - head < total ? "truncated" : "extra bytes after the", size - head,
                 (unsigned long long)total);
        return CLT_ERR_FORMAT;
    }
    return CLT_OK;
}

enum clt_status clt__idx_parse(const unsigned char *images, size_t images_size,
                               const unsigned char *labels, size_t labels_size,
                               const struct clt_log *log, const char *images_name,
                               const char *labels_name, struct clt_dataset **out)
{
    if ((!images && images_size) || (!labels && labels_size) || !out)
        return CLT_ERR_INVALID_ARGUMENT;
    images_name = images_name ? images_name : "images";
    labels_name = labels_name ? labels_name : "labels";
    uint32_t idims[3], ldims[1];
    enum clt_status st = check_header(images, images_size, IDX_IMAGES, 3, idims, log, images_name);
    if (st == CLT_OK)
        st = check_header(labels, labels_size, IDX_LABELS, 1, ldims, log, labels_name);
    if (st != CLT_OK)
        return st;
    if (idims[0] != ldims[0]) {
        clt__log(log, CLT_LOG_ERROR, "%s: %u images but %s: %u labels", images_name,
                 (unsigned)idims[0], labels_name, (unsigned)ldims[0]);
        return CLT_ERR_FORMAT;
    }
    struct clt_dataset *ds = NULL;
    int64_t shape[3] = {1, idims[1], idims[2]};
    st = clt__dataset_new_classes(log, images_name, idims[0], 3, shape, &ds);
    if (st != CLT_OK)
        return st;

    /* Pixels to [0, 1] through a table: exactly v / 255, and fast on 47 M bytes. */
    float scale[256];
    for (int v = 0; v < 256; v++)
        scale[v] = (float)v / 255.0f;
    const unsigned char *px = images + 16;
    size_t n = (size_t)ds->count * ds->example_size;
    for (size_t i = 0; i < n; i++)
        ds->features[i] = scale[px[i]];
    uint32_t top = 0;
    for (size_t i = 0; i < (size_t)ds->count; i++) {
        uint8_t l = labels[8 + i];
        ds->labels[i] = l;
        top = l > top ? l : top;
    }
    ds->classes = top + 1;
    *out = ds;
    return CLT_OK;
}

enum clt_status clt_dataset_load_idx(const char *images_path, const char *labels_path,
                                     const struct clt_log *log, struct clt_dataset **out)
{
    if (!images_path || !labels_path || !out)
        return CLT_ERR_INVALID_ARGUMENT;
    unsigned char *images = NULL, *labels = NULL;
    size_t images_size = 0, labels_size = 0;
    enum clt_status st = clt__file_read(log, images_path, &images, &images_size);
    if (st == CLT_OK)
        st = clt__file_read(log, labels_path, &labels, &labels_size);
    if (st == CLT_OK)
        st = clt__idx_parse(images, images_size, labels, labels_size, log, images_path, labels_path,
                            out);
    free(images);
    free(labels);
    return st;
}
