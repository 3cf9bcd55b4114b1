/*
 * activation_rig.c: the arenas, guards and inputs of the activation and dropout tests
 * (activation_rig.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "activation_rig.h"

/* An arena for `floats` floats in up to 8 views, with room for alignment. */
struct clt_arena *arena_for(struct clt_device *dev, size_t floats)
{
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, (uint64_t)floats * 4 + 8 * 4096, &arena), CLT_OK);
    return arena;
}

static void fill_nan(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
}

/* n NaN (a value no kernel may read when it is told to overwrite) and the guard after it. */
float *nan_and_guard(size_t n)
{
    float *p = clt_test_floats(n + GUARD);
    fill_nan(p, n);
    for (size_t i = n; i < n + GUARD; i++)
        p[i] = SENTINEL;
    return p;
}

/* Fails when anything wrote to the guard after the first n elements of a view. */
void assert_guard(const char *what, const struct clt_view *v, size_t n)
{
    float *all = clt_test_floats(n + GUARD);
    clt_test_download(v, all, n + GUARD);
    for (size_t i = n; i < n + GUARD; i++)
        if (all[i] != SENTINEL)
            fail_msg("%s: element %zu past the end (n = %zu) was written", what, i, n);
    free(all);
}

float slope_of(enum clt__act act)
{
    return act == CLT__ACT_LEAKY_RELU ? LEAKY_SLOPE : 0.0f;
}

/* Test input: uniform in [-6, 6), with the special values spread over it when it is long
 * enough. */
void fill_input(float *x, size_t n, uint64_t seed)
{
    clt_test_fill(x, n, seed, -6.0f, 6.0f);
    if (n >= 32)
        for (size_t s = 0; s < SPECIAL_COUNT; s++)
            x[s * (n / SPECIAL_COUNT)] = special[s];
}

/* Compares float arrays bit for bit. */
void assert_same_bits(const char *what, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            fail_msg("%s: element %zu of %zu: got %.9g, want %.9g", what, i, n, (double)got[i],
                     (double)want[i]);
}
