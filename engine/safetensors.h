/*
 * safetensors.h: a strict reader and an atomic writer of safetensors files, independent of
 * the trainer (engine/checkpoint.c builds checkpoints on it).
 *
 * The format: an 8-byte little-endian length N, N bytes of UTF-8 JSON (the header), then the
 * data section. The header is one object: each key a tensor name mapping to
 *     {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}
 * (byte offsets into the data section, end exclusive), plus an optional "__metadata__"
 * object of string values. The header may be padded at its end with spaces (0x20).
 *
 * The reader (clt__safetensors_parse) works on a byte buffer, so that fuzzers and tests can
 * call it without files. It accepts a buffer only when all of these hold, and otherwise
 * writes the first reason it met into `why`:
 *   - the buffer holds at least 8 bytes; 2 <= N < 100 MiB and N <= size - 8;
 *   - the header is valid UTF-8 without NUL or other control bytes (tab, newline and carriage
 *     return aside), starts with '{', is one JSON object and nothing follows it but spaces;
 *   - no key appears twice, in the header, in an entry or in the metadata;
 *   - "__metadata__", when present, is an object whose values are all strings;
 *   - every other entry is an object with exactly the fields dtype (a known dtype name),
 *     shape (an array of at most CLT__ST_MAX_DIMS integers >= 0) and data_offsets (two
 *     integers, begin <= end), and element count * dtype size == end - begin without
 *     overflow;
 *   - taken in order of their offsets, the tensors cover the data section exactly: the
 *     first begins at 0, each begins where the previous ended (no overlap, no hole), the last
 *     ends at the end of the buffer (no trailing bytes).
 *
 * Data is little-endian in the file; the reader hands out pointers into the caller's
 * buffer, which carry no alignment promise beyond the buffer's own.
 */
#ifndef CLTRAIN_SAFETENSORS_H
#define CLTRAIN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Most dimensions of a tensor the reader accepts. */
#define CLT__ST_MAX_DIMS 8
/* The header length must be below this (the reference implementation's limit). */
#define CLT__ST_MAX_HEADER (100u << 20)

/* The dtypes the reader knows (whole-byte ones of the specification). */
enum clt__st_dtype {
    CLT__ST_BOOL,
    CLT__ST_U8,
    CLT__ST_I8,
    CLT__ST_F8_E4M3,
    CLT__ST_F8_E5M2,
    CLT__ST_U16,
    CLT__ST_I16,
    CLT__ST_F16,
    CLT__ST_BF16,
    CLT__ST_U32,
    CLT__ST_I32,
    CLT__ST_F32,
    CLT__ST_U64,
    CLT__ST_I64,
    CLT__ST_F64,
};

/* The name of a dtype in headers ("F32"), and its size in bytes. */
const char *clt__st_dtype_name(enum clt__st_dtype dtype);
size_t clt__st_dtype_size(enum clt__st_dtype dtype);

/* One tensor of a parsed file. name points into the parse result; data into the buffer. */
struct clt__st_tensor {
    const char *name;
    enum clt__st_dtype dtype;
    uint32_t ndim;
    int64_t shape[CLT__ST_MAX_DIMS];
    uint64_t begin, end;       /* bytes into the data section */
    const unsigned char *data; /* buffer + 8 + N + begin */
};

struct clt__st_meta {
    const char *key;
    const char *value;
};

/* A parsed file: tensors sorted by name, metadata in header order. Borrows the buffer. */
struct clt__safetensors {
    struct clt__st_tensor *tensors;
    uint32_t count;
    struct clt__st_meta *meta;
    uint32_t nmeta;
    uint64_t header_bytes; /* N */
    uint64_t data_bytes;   /* size - 8 - N */
    void *json;            /* the parsed header (cJSON), owner of every string */
};

/* Parses and checks size bytes at buf (see the top of this file). CLT_OK, or CLT_ERR_FORMAT
 * with the reason in why (a sentence fragment, NUL-terminated, cut to why_size), or
 * CLT_ERR_NO_MEMORY. On failure *out is left empty (safe to free). The buffer must outlive
 * *out. */
enum clt_status clt__safetensors_parse(const unsigned char *buf, size_t size,
                                       struct clt__safetensors *out, char *why, size_t why_size);

/* Frees what a parse allocated (not the buffer). Accepts NULL and an empty result. */
void clt__safetensors_free(struct clt__safetensors *st);

/* The tensor named name, or NULL (binary search). */
const struct clt__st_tensor *clt__safetensors_find(const struct clt__safetensors *st,
                                                   const char *name);

/* The metadata value of key, or NULL. */
const char *clt__safetensors_meta(const struct clt__safetensors *st, const char *key);

/* Reads a whole file into memory, placed so that the data section starts at an address
 * aligned to 8 bytes (for a file whose header length can be read). *buf is malloc'd and
 * *data is where the file's bytes start inside it: free(*buf) when done. CLT_ERR_IO with the
 * path and strerror in the log when the file cannot be read. */
enum clt_status clt__safetensors_read_file(const char *path, const struct clt_log *log,
                                           unsigned char **buf, const unsigned char **data,
                                           size_t *size);

/* ==== Writing =========================================================================== */

/* A tensor to write: data holds count * dtype size bytes in host byte order. */
struct clt__st_entry {
    const char *name;
    enum clt__st_dtype dtype;
    uint32_t ndim;
    const int64_t *shape;
    const void *data;
};

/* Makes the header of a file of these tensors (laid out in order of their names) and
 * metadata (in the order given; nmeta 0 writes no "__metadata__"): *header is malloc'd, its
 * length *len padded with spaces to make 8 + *len a multiple of 8. CLT_ERR_INVALID_ARGUMENT
 * with the reason in why for duplicate or invalid UTF-8 names or keys, a tensor named
 * "__metadata__", a negative dimension or an overflowing size. */
enum clt_status clt__safetensors_header(const struct clt__st_entry *tensors, size_t n,
                                        const struct clt_meta *meta, size_t nmeta, char **header,
                                        size_t *len, char *why, size_t why_size);

/* A whole file in memory (*out malloc'd, *size bytes): the 8-byte length, the header and
 * the data. Errors as clt__safetensors_header. */
enum clt_status clt__safetensors_encode(const struct clt__st_entry *tensors, size_t n,
                                        const struct clt_meta *meta, size_t nmeta,
                                        unsigned char **out, size_t *size, char *why,
                                        size_t why_size);

/* Writes a file atomically: a temporary file "<path>.tmp.<pid>.XXXXXX" in the same directory
 * (mkstemp), the whole content written, fsync'ed and closed, renamed over path, then the
 * directory fsync'ed. The file takes the mode of the file it replaces, or 0644. On any
 * failure the temporary file is removed and an old file at path is left as it was:
 * CLT_ERR_IO with the path and strerror in the log (ENOSPC, EROFS, EACCES, ...), or the
 * header's errors as CLT_ERR_INVALID_ARGUMENT. Blocks. */
enum clt_status clt__safetensors_write(const char *path, const struct clt__st_entry *tensors,
                                       size_t n, const struct clt_meta *meta, size_t nmeta,
                                       const struct clt_log *log);

/* The CRC-32 (zlib's crc32) of the data section a file of these tensors has: their data in
 * little-endian order, laid out in order of their names, as clt__safetensors_write writes
 * it. The tensors must pass the writer's checks. CLT_ERR_NO_MEMORY, else CLT_OK. */
enum clt_status clt__safetensors_data_crc32(const struct clt__st_entry *tensors, size_t n,
                                            uint32_t *crc);

/* ==== Helpers =========================================================================== */

/* True when size bytes at s are valid UTF-8 (no overlong forms, surrogates or code points
 * past U+10FFFF) and contain no NUL byte. */
bool clt__utf8_valid(const unsigned char *s, size_t size);

/* Copies n little-endian floats from src (any alignment) to dst in host order. */
void clt__f32_from_le(float *dst, const unsigned char *src, size_t n);

/* A parsed tensor's elements as floats into dst (its element count of them): F32, F16 and
 * BF16 exactly, F64 rounded, I32 and I64 converted. CLT_ERR_UNSUPPORTED for other dtypes
 * (nothing written). No log: the caller says what it was reading. */
enum clt_status clt__st_to_f32(const struct clt__st_tensor *t, float *dst);

/* The same into int64_t from the integer dtypes (BOOL, U8, I8, U16, I16, U32, I32, I64, and
 * U64 values up to INT64_MAX). CLT_ERR_UNSUPPORTED for float dtypes and larger U64 values
 * (dst then partly written). */
enum clt_status clt__st_to_i64(const struct clt__st_tensor *t, int64_t *dst);

/* Checks the data section of a parsed file (bytes: the whole file) against its
 * "cltrain.data_crc32" metadata when it has one: CLT_OK, or CLT_ERR_FORMAT with a log line
 * naming path. (checkpoint.c) */
enum clt_status clt__checkpoint_verify_crc(const char *path, const unsigned char *bytes,
                                           const struct clt__safetensors *file,
                                           const struct clt_log *log);

#endif /* CLTRAIN_SAFETENSORS_H */
