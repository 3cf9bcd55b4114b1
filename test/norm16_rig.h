/*
 * norm16_rig.h: what the 16-bit norm tests share: tolerances, the storages, tensors of a
 * storage between guards in arenas of their own, and comparisons of stored results with
 * the reference.
 */
#ifndef CLTRAIN_TEST_NORM16_RIG_H
#define CLTRAIN_TEST_NORM16_RIG_H

#include "harness.h"

#define EPS 1e-5f
#define MOMENTUM 0.1f

#define LEAD 3        /* elements before a tensor in its buffer: its launcher offset */
#define TAIL 5        /* guard elements after it */
#define GUARD -77.0f  /* exact in every storage */
#define TOL_STAT 2e-5 /* statistics (float) and the absolute part of y */
#define TOL_DX_ATOL 5e-5
#define TOL_DX_RTOL 1e-4

static const enum clt_precision storages[] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16,
                                              CLT_PRECISION_FP32};
#define NSTORAGES (sizeof storages / sizeof storages[0])

/* A tensor of `count` elements of storage s (CLT_PRECISION_FP32 for the float ones) at LEAD
 * elements into an arena of its own, with guards around it. */
struct tensor {
    struct clt_arena *arena;
    struct clt_view v;
    size_t count;
    enum clt_precision s;
};

/* The tensors of one case, freed together. */
struct pool {
    struct clt_device *dev;
    struct tensor t[16];
    size_t n;
};

/* An absent optional buffer of a launcher. */
static const struct clt__buf none = {NULL, 0};

/* "fp16", "bf16" or "fp32". */
const char *storage_name(enum clt_precision s);

/* malloc'd n floats uniform in [lo, hi) from seed; fails the test without memory. */
float *fill(size_t n, uint64_t seed, float lo, float hi);

/* fill, rounded to the storage. */
float *fill_st(size_t n, uint64_t seed, float lo, float hi, enum clt_precision s);

/* calloc'd n doubles (room for one at least); fails the test without memory. */
double *dalloc(size_t n);

/* A tensor of the pool holding host (NaN when NULL) in storage s, between guards. */
struct tensor *tensor(struct pool *p, const float *host, size_t count, enum clt_precision s);

/* Frees the pool's tensors; the pool can take new ones. */
void pool_free(struct pool *p);

/* The launcher argument of a tensor: its buffer and offset (LEAD) in storage elements. */
struct clt__buf buf(const struct tensor *t);

/* Rewrites a tensor with host[0..count) rounded to its storage (NaN when host is NULL), and
 * its guards, in one write of the whole buffer. */
void put(const struct tensor *t, const float *host);

/* Reads a tensor's values into out[0..count) and asserts that its guards are unchanged. */
void get(const struct tensor *t, float *out);

/* Whether |got - want| <= atol + rtol |want| for every element (NaN never is). Prints the
 * worst element when not and `complain`; under CLTRAIN_NORM16_MEASURE prints the largest
 * |got - want| / (|want| + 1e-3) as well. */
bool within(const char *what, const float *got, const double *want, size_t n, double atol,
            double rtol, bool complain);

/* Reads a tensor and asserts it matches want. */
void expect(const char *what, const char *name, const struct tensor *t, const double *want,
            double atol, double rtol);

/* The tolerances of test_norm16.c's header for storage s, and of a sum of `terms` terms. */
double rtol_y(enum clt_precision s);
double rtol_dx(enum clt_precision s);
double rtol_sum(enum clt_precision s);
double atol_sum(int64_t terms);

/* Asserts that some want[i] rounded to storage s is off by more than the statistics'
 * tolerance: a kernel that kept these values in the storage would fail. */
void expect_not_storable(const double *want, size_t n, enum clt_precision s);

/* A layer norm case: x [rows, d]. */
struct ln_shape {
    int64_t rows, d;
    float eps;
};

/* x [rows, d] uniform in [-1, 1) plus an offset per row, rounded to the storage. */
float *ln_input(const struct ln_shape *sh, uint64_t seed, enum clt_precision s);

/* ---- Tests, by the file that defines them (test_norm16.c lists them all) ---- */

/* test_norm16_layer.c */
void layernorm16(void **state);

#endif
