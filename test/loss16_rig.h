/*
 * loss16_rig.h: what the 16-bit loss and attention tests share: float and int tensors between
 * guards, tensors of a 16-bit storage between guards, inputs rounded to a storage, and the
 * comparison of a stored result within k units of its rounding.
 */
#ifndef CLTRAIN_TEST_LOSS16_RIG_H
#define CLTRAIN_TEST_LOSS16_RIG_H

#include "harness.h"

/* Elements kept on each side of every device tensor, holding GUARD_VALUE (rounded to the
 * storage): a kernel that writes past its tensor is caught on every implementation. */
#define GUARD 3
#define GUARD_VALUE -1234.5f

/* count floats or ints between guards; buf is the data (offset GUARD). */
struct tensor {
    struct clt_arena *arena;
    struct clt_view view;
    struct clt__buf buf; /* offset GUARD */
    size_t count;
};

static const enum clt_precision storages16[2] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16};

/* A tensor of count storage elements between GUARD guard elements each side, in an arena of its
 * own (as struct tensor above), in storage s. */
struct st_tensor {
    struct clt_arena *arena;
    struct clt_view view;
    struct clt__buf buf; /* the data: buffer and offset GUARD, in storage elements */
    size_t count;
    enum clt_precision s;
};

/* malloc that fails the test when memory runs out (room for one byte at least). */
void *xmalloc(size_t bytes);

/* count floats (or ints: host's bytes) between guards, in an arena of their own. */
struct tensor tensor_new(struct clt_device *dev, const void *host, size_t count);

/* Reads the count floats; fails when a guard changed. */
void tensor_read(const struct tensor *t, float *host, const char *what);

/* Frees the tensor's arena. */
void tensor_free(struct tensor *t);

/* (Re)writes the guards and host[0..count) rounded to the storage (NaN where host is NULL). */
void st_write(struct st_tensor *t, const float *host);

/* A tensor of count elements of storage s in an arena of its own, written with st_write. */
struct st_tensor st_new(struct clt_device *dev, const float *host, size_t count,
                        enum clt_precision s);

/* Reads the count values, widened; fails when a guard changed. */
void st_read(const struct st_tensor *t, float *host, const char *what);

/* Frees the tensor's arena. */
void st_free(struct st_tensor *t);

/* A copy of x[0..n) rounded to the storage. */
float *rounded(const float *x, size_t n, enum clt_precision s);

/* clt_test_assert_close with the 16-bit tolerance of test_loss16.c's header: atol, rtol k * eps.
 * With CLTRAIN_TEST_MEASURE set, prints the smallest k that passes (how that header's k were
 * measured). */
void close16(const char *what, const float *got, const double *want, size_t n, enum clt_precision s,
             double atol, double k);

/* "fp16" or "bf16". */
const char *st_name(enum clt_precision s);

/* ---- Tests, by the file that defines them (test_loss16.c lists them all) ---- */

/* test_loss16_attention.c */
void attention_tiled_16bit_storage(void **state);
void attention_gemm_16bit_storage(void **state);

#endif
