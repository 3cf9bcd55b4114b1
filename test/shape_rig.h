/*
 * shape_rig.h: what the shape family's tests share: tolerances, device tensors between
 * sentinels in the current storage, a pool that frees a case's tensors and host arrays
 * together, and finite-difference checks of linear ops.
 */
#ifndef CLTRAIN_TEST_SHAPE_RIG_H
#define CLTRAIN_TEST_SHAPE_RIG_H

#include "harness.h"

#define GRAD_ATOL 1e-5
#define GRAD_RTOL 1e-5
#define GRAD_EPS 1e-2
#define ACC_RTOL 1.2e-7

/* Elements on each side of every device tensor, holding a sentinel: a kernel that reads or
 * writes past its tensor is caught on every implementation, not only under Oclgrind. */
#define GUARD 4
#define SENTINEL_F (-1234.5f)
#define SENTINEL_I (-12345)

/* The storage of the F32 tensors made from now on, and of the inputs randoms() draws (rounded
 * to it): fp32 except in storage16() (test_shape.c), which sets it with the device's. */
extern enum clt_precision storage;

/* count elements (F32 or I32), GUARD elements into an arena of their own. One arena per
 * tensor, always written whole from its start: Oclgrind 21.10 (--uninitialized) re-creates a
 * buffer's record of initialised bytes on every host write, so tensors sharing an arena
 * would look uninitialised after a neighbour's upload; and its bounds checks then guard each
 * tensor. The data starts at a non-zero offset (GUARD) of its buffer. */
struct tensor {
    struct clt_arena *arena;
    struct clt_view view; /* GUARD + count + GUARD elements */
    struct clt__buf buf;  /* the data */
    int64_t count;
    enum clt_dtype dtype;
    enum clt_precision storage; /* of an F32 tensor's elements (fp32 for I32) */
};

/* The device tensors and host arrays of one test case, freed together. */
#define POOL_MAX 48
struct pool {
    struct clt_device *dev;
    struct tensor t[POOL_MAX];
    size_t n;
    void *host[POOL_MAX];
    size_t n_host;
};

/* A linear op under finite differences: forward() computes y from the inputs x[0..nx), whose
 * values the loss sum(w * y) (in double) takes one after the other from the probed vector. */
struct fd {
    struct clt_device *dev;
    const void *c; /* the case */
    struct tensor *x[3], *y, *aux;
    uint32_t nx;
    const float *w; /* y->count */
    float *y_host;
    enum clt_status (*forward)(const struct fd *f);
};

/* "" in fp32, else the storage's name, for the messages. */
const char *storage_note(void);

/* The relative tolerance of one addition with accumulate (test_shape.c's opening comment). */
double acc_rtol(void);

/* Writes the guards and host[0..count), or NaN (F32) / INT32_MIN (I32) where host is NULL:
 * values that fail a comparison if a kernel leaves them in place. */
void tensor_put(const struct tensor *t, const void *host);

/* Reads the data into host (may be NULL) and fails when a guard has changed. */
void tensor_get(const struct tensor *t, void *host, const char *what);

/* A tensor of count elements of dtype in the pool, written with tensor_put. */
struct tensor *tensor_new(struct pool *p, enum clt_dtype dtype, int64_t count, const void *host);

/* tensor_new of F32 elements. */
struct tensor *floats(struct pool *p, const float *host, int64_t count);

/* Frees the pool's tensors and host arrays; the pool can take new ones. */
void pool_free(struct pool *p);

/* A host array of the pool (malloc'd, freed by pool_free); fails the test without memory. */
void *pool_alloc(struct pool *p, size_t bytes);

/* pool_alloc of n floats or doubles. */
float *alloc_f(struct pool *p, int64_t n);
double *alloc_d(struct pool *p, int64_t n);

/* Uniform in [-1, 1), rounded to `storage`. */
float *randoms(struct pool *p, int64_t n, uint64_t seed);

/* The element count of a shape. */
int64_t count_of(uint32_t ndim, const int64_t *shape);

/* Checks the gradients in dx[0..nx) (one per input, filled by the backward with dy = w)
 * against central differences at points spread over all the inputs, starting from x0. The
 * ops are linear, so a few probes suffice where each launch is slow (Oclgrind). */
void fd_check(const char *what, struct fd *f, struct tensor *const *dx, const float *x0);

/* The workspace of embedding's backward (vocab rows, `tokens` ids), as I32 elements. */
struct tensor *workspace(struct pool *p, int64_t vocab, int64_t tokens);

/* ---- Tests, by the file that defines them (test_shape.c lists them all) ---- */

/* test_shape_checks.c */
void reshape_shares_memory(void **state);
void launchers_check_arguments(void **state);

#endif
