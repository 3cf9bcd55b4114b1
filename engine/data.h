/*
 * data.h: what the files of the data module share (data.c: the dataset object, splits and
 * the batcher; data_idx.c, data_csv.c, data_text.c: the loaders).
 *
 * Every loader is two layers: a parser over bytes in memory (clt__*_parse), which checks
 * everything and never touches a file, and the public loader, which reads the file whole
 * (through zlib, so gzip is transparent) and hands the bytes to the parser. Fuzz targets
 * call the parsers directly.
 */
#ifndef CLTRAIN_DATA_H
#define CLTRAIN_DATA_H

#include "internal.h"

/* A dataset in host memory. Classes fill features and labels; a text fills tokens. */
struct clt_dataset {
    enum clt_dataset_kind kind;
    uint64_t count; /* examples, or tokens of a text */

    /* Classes. */
    uint32_t ndim;
    int64_t shape[CLT_MAX_DIMS]; /* one example's feature shape */
    size_t example_size;         /* floats per example: the product of shape */
    uint32_t classes;            /* 1 + the largest label, or as clt_dataset_check_classes set */
    uint64_t first_line;         /* a CSV file's line of example 0 (rows are contiguous); 0 */
    float *features;             /* [count, example_size] */
    int32_t *labels;             /* [count], each in 0 .. classes-1 */

    /* Text. */
    uint32_t vocab;       /* distinct symbols, 1 .. 256 */
    uint8_t symbols[256]; /* symbols[id]: the byte of id, increasing */
    uint8_t *tokens;      /* [count] ids */
};

/* A new dataset of `count` classification examples of the given feature shape, features
 * and labels allocated but not set (classes 0). CLT_ERR_NO_MEMORY when the sizes overflow or
 * the allocation fails (logged, naming `name`). */
enum clt_status clt__dataset_new_classes(const struct clt_log *log, const char *name,
                                         uint64_t count, uint32_t ndim, const int64_t *shape,
                                         struct clt_dataset **out);

/* A new text of `count` tokens, tokens allocated but not set (vocab 0). */
enum clt_status clt__dataset_new_text(const struct clt_log *log, const char *name, uint64_t count,
                                      struct clt_dataset **out);

/* Reads a whole file, plain or gzip-compressed, into *data (malloc'd; the caller frees it;
 * one extra NUL byte follows the data). CLT_ERR_IO when the file cannot be opened or read,
 * CLT_ERR_FORMAT when its gzip stream is corrupt or truncated, CLT_ERR_NO_MEMORY when it
 * does not fit in memory. Each failure is logged with the path. */
enum clt_status clt__file_read(const struct clt_log *log, const char *path, unsigned char **data,
                               size_t *size);

/* IDX images (magic 0x00000803, u8 [count, rows, cols]) and labels (0x00000801, u8 [count])
 * in memory to a dataset of features [1, rows, cols] scaled to [0, 1]. The names stand for
 * the two files in log messages. CLT_ERR_FORMAT on any inconsistency. */
enum clt_status clt__idx_parse(const unsigned char *images, size_t images_size,
                               const unsigned char *labels, size_t labels_size,
                               const struct clt_log *log, const char *images_name,
                               const char *labels_name, struct clt_dataset **out);

/* CSV text in memory (need not be NUL-terminated) to a dataset; clt_dataset_load_csv's
 * rules. CLT_ERR_FORMAT on any malformed line, CLT_ERR_INVALID_ARGUMENT for a label column
 * outside the rows. */
enum clt_status clt__csv_parse(const char *text, size_t size, int32_t label_column,
                               const struct clt_log *log, const char *name,
                               struct clt_dataset **out);

/* Bytes in memory to a text dataset (at least two bytes). */
enum clt_status clt__text_parse(const unsigned char *data, size_t size, const struct clt_log *log,
                                const char *name, struct clt_dataset **out);

/* The counter-based generator of the data module: a splitmix64 hash of (seed, stream, a, b).
 * Streams keep the uses apart: */
#define CLT__DATA_STREAM_SPLIT 1u   /* a: 0, b: Fisher-Yates step i */
#define CLT__DATA_STREAM_SHUFFLE 2u /* a: epoch, b: Fisher-Yates step i */
#define CLT__DATA_STREAM_WINDOW 3u  /* a: epoch, b: batch index * batch + row */
uint64_t clt__data_random(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b);

/* Fills order[0..n) with a permutation of 0..n-1: Fisher-Yates whose step i draws from
 * (seed, stream, a, i). */
void clt__data_permutation(uint64_t *order, uint64_t n, uint64_t seed, uint64_t stream, uint64_t a);

#endif /* CLTRAIN_DATA_H */
