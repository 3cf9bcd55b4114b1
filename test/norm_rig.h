/*
 * norm_rig.h: what the norm tests (test_norm.c, test_norm_layer.c) share: their tolerances,
 * deterministic host data and device tensors that each own a buffer (struct pool).
 */
#ifndef CLTRAIN_TEST_NORM_RIG_H
#define CLTRAIN_TEST_NORM_RIG_H

#include "harness.h"

#define EPS 1e-5f
#define MOMENTUM 0.1f

#define TOL_Y 2e-5
#define TOL_DX_ATOL 5e-5
#define TOL_DX_RTOL 1e-4
#define FD_STEP 1e-3
#define FD_ATOL 5e-5
#define FD_RTOL 1e-3
#define FD_SAMPLES 24

/* The device tensors of one case, each in a buffer (an arena) of its own that it fills
 * exactly under Oclgrind, always written whole, freed together.
 *
 * Why: Oclgrind 21.10's --uninitialized check loses track of host writes. Each host write
 * replaces the buffer's record by one covering only that write's length from the buffer's
 * start (so earlier writes into the same buffer, and writes at a non-zero offset, read as
 * uninitialized), and a released buffer's record outlives it and is inherited by the next
 * buffer that gets its id (so kernel results beyond the old record read as uninitialized).
 * A buffer written whole by the host as soon as it exists is tracked correctly. So every
 * tensor is uploaded at once, with NaN when it has no data yet: a kernel that reads an output
 * before writing it still shows, by a NaN in its results. Outside Oclgrind a small unused
 * view comes first, so that the launchers see non-zero offsets. (test/oclgrind.sh may run
 * without --uninitialized; the test is clean with it as well.) */
struct pool {
    struct clt_device *dev;
    struct clt_arena *arenas[16];
    size_t count;
};

/* An absent optional buffer of a launcher. */
static const struct clt__buf none = {NULL, 0};

/* malloc'd n floats uniform in [lo, hi) from seed (clt_test_fill); fails the test without memory.
 */
float *fill(size_t n, uint64_t seed, float lo, float hi);

/* calloc'd n doubles (room for one at least); fails the test without memory. */
double *dalloc(size_t n);

/* A tensor of `count` floats holding host[0..count), or NaN when host is NULL. */
struct clt_view tensor(struct pool *p, const float *host, size_t count);

/* Frees every tensor of the pool; the pool can take new ones. */
void pool_free(struct pool *p);

/* The launcher argument of a view (clt__view_buf). */
struct clt__buf buf(const struct clt_view *v);

/* Downloads a view and compares it with a reference. */
void expect(const char *what, const struct clt_view *v, const double *want, size_t n, double atol,
            double rtol);

/* Asserts that a skipped output still holds the NaN it was given. */
void expect_nan(const struct clt_view *v, size_t n);

/* Tolerance of a sum of `terms` terms of magnitude <= 3. */
double sum_atol(int64_t terms);

/* Writes value into the n floats of a view (blocking). */
void set_all(const struct clt_view *v, size_t n, float value);

/* ---- Tests, by the file that defines them (test_norm.c lists them all) ---- */

/* test_norm_layer.c */
void layernorm_matches_reference(void **state);
void layernorm_large_offset(void **state);
void layernorm_gradcheck(void **state);
void layernorm_checks_arguments(void **state);

#endif
