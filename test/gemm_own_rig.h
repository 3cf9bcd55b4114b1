/*
 * gemm_own_rig.h: what test_gemm_own.c (the tiled modes, split-K, the search space) and
 * test_gemm_dot.c (dot mode) share in the gemm_own test executable: the reference check of
 * one configuration at one shape, the storage it runs in, and dot mode's and the fitted tiles'
 * tests (test_gemm_fit.c), which test_gemm_own.c's main lists.
 */
#ifndef CLTRAIN_TEST_GEMM_OWN_RIG_H
#define CLTRAIN_TEST_GEMM_OWN_RIG_H

#include "gemm_own.h"
#include "harness.h"
#include "ref_gemm.h"

/* Room for a device's whole search space and the extra configurations. */
#define MAX_CONFIGS 64

/* The storage check_config runs in (its callers in 16 bits set it and put it back). */
extern enum clt_precision storage;

/* Runs the GEMM with configuration cfg in `storage`, checks it against the reference and,
 * when `bits` is not NULL, returns C's elements (the whole span) in *bits for the caller to
 * free. c_nan: C starts as NaN (beta 0 must not read it). */
void check_config(struct clt_device *dev, const struct clt__gemm_config *cfg,
                  const struct clt_gemm_shape *shape, bool c_nan, float **bits);

/* test_gemm_dot.c */
void dot_mode(void **state);
void dot_candidates_of_the_space(void **state);

/* test_gemm_fit.c */
void fitted_tiles_for_few_rows(void **state);
void misfits_least_padded_first(void **state);

#endif
