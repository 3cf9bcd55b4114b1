/*
 * activation_rig.h: what the activation and dropout tests share: tolerances, the special input
 * values, arenas, NaN outputs followed by a guard that no kernel may touch, and inputs.
 */
#ifndef CLTRAIN_TEST_ACTIVATION_RIG_H
#define CLTRAIN_TEST_ACTIVATION_RIG_H

#include "harness.h"
#include "ops/activation.h"

#define ACT_ATOL 1e-6
#define ACT_RTOL 1e-5
#define FD_EPS 1e-2
#define FD_ATOL 2e-3
#define FD_RTOL 1e-2
#define LEAKY_SLOPE 0.1f

/* Elements placed in every test input of at least 32 elements: zeros, tiny and large
 * magnitudes, 1e4 (the ops promise finite results up to there) and 1e20, whose square
 * overflows float. */
static const float special[] = {0.0f,   -0.0f,   1e-3f, -1e-3f, 0.5f,  -0.75f, 5.0f,  -5.0f,
                                10.0f,  -10.0f,  20.0f, -20.0f, 50.0f, -50.0f, 88.8f, -88.8f,
                                100.0f, -100.0f, 1e3f,  -1e3f,  1e4f,  -1e4f,  1e20f, -1e20f};
#define SPECIAL_COUNT (sizeof special / sizeof special[0])

/* Output views get GUARD elements of SENTINEL after their n elements, which no kernel may
 * touch: more than a work-group (<= 256 work-items, 4 elements each for dropout) past n. */
#define GUARD 1024
#define SENTINEL 12345.0f

/* An arena for `floats` floats in up to 8 views, with room for alignment. */
struct clt_arena *arena_for(struct clt_device *dev, size_t floats);

/* n NaN (a value no kernel may read when it is told to overwrite) and the guard after it. */
float *nan_and_guard(size_t n);

/* Fails when anything wrote to the guard after the first n elements of a view. */
void assert_guard(const char *what, const struct clt_view *v, size_t n);

/* The slope of act for negative inputs: LEAKY_SLOPE for leaky relu, else 0. */
float slope_of(enum clt__act act);

/* Test input: uniform in [-6, 6), with the special values spread over it when it is long
 * enough. */
void fill_input(float *x, size_t n, uint64_t seed);

/* Compares float arrays bit for bit. */
void assert_same_bits(const char *what, const float *got, const float *want, size_t n);

/* ---- Tests, by the file that defines them (test_activation.c lists them all) ---- */

/* test_activation_dropout.c */
void dropout_gradient_matches_finite_differences(void **state);
void philox_known_answers(void **state);
void dropout_matches_reference_bit_for_bit(void **state);
void dropout_statistics(void **state);

/* test_activation16.c */
void activations_in_16_bit(void **state);
void dropout_in_16_bit(void **state);
void launchers_size_buffers_by_the_storage(void **state);

#endif
