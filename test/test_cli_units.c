/*
 * test_cli_units.c: the host-side pieces of the cltrain commands added for users, no device
 * needed: per-class precision, recall and F1 from a confusion matrix (cltrain eval).
 * Tolerance: 1e-12 absolute on scores computed from small integer counts.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#include "../tools/evaluate.h"

static void class_scores_known_matrix(void **state)
{
    (void)state;
    /* rows: label, columns: prediction. Class 2 is never labelled, class 3 never predicted
     * and never labelled right. */
    const uint64_t m[16] = {
        8, 1, 1, 0, /* label 0: 10 examples */
        2, 6, 0, 0, /* label 1: 8 */
        0, 0, 0, 0, /* label 2: none */
        1, 0, 1, 0, /* label 3: 2, none right */
    };
    struct class_scores s[4];
    class_scores_of(m, 4, s);
    assert_true(fabs(s[0].precision - 8.0 / 11.0) < 1e-12);
    assert_true(fabs(s[0].recall - 0.8) < 1e-12);
    double f0 = 2 * (8.0 / 11.0) * 0.8 / (8.0 / 11.0 + 0.8);
    assert_true(fabs(s[0].f1 - f0) < 1e-12);
    assert_true(s[0].support == 10 && s[0].predicted == 11);
    assert_true(fabs(s[1].precision - 6.0 / 7.0) < 1e-12);
    assert_true(fabs(s[1].recall - 0.75) < 1e-12);
    /* Class 2: predicted twice, never right, never labelled: precision 0, recall undefined. */
    assert_true(s[2].precision == 0 && isnan(s[2].recall) && isnan(s[2].f1));
    assert_true(s[2].support == 0 && s[2].predicted == 2);
    /* Class 3: labelled twice, never predicted: precision undefined, recall 0. */
    assert_true(isnan(s[3].precision) && s[3].recall == 0 && isnan(s[3].f1));
    /* Macro averages over the defined values only. */
    double p = (8.0 / 11.0 + 6.0 / 7.0 + 0) / 3;
    assert_true(fabs(class_scores_macro(s, 4, 'p') - p) < 1e-12);
    assert_true(fabs(class_scores_macro(s, 4, 'r') - (0.8 + 0.75 + 0) / 3) < 1e-12);
}

static void class_scores_perfect_and_empty(void **state)
{
    (void)state;
    const uint64_t perfect[4] = {3, 0, 0, 5};
    struct class_scores s[2];
    class_scores_of(perfect, 2, s);
    for (int c = 0; c < 2; c++)
        assert_true(s[c].precision == 1 && s[c].recall == 1 && s[c].f1 == 1);
    /* Both classes labelled, all predictions wrong: precision and recall 0, F1 0 (not NaN). */
    const uint64_t wrong[4] = {0, 4, 4, 0};
    class_scores_of(wrong, 2, s);
    assert_true(s[0].precision == 0 && s[0].recall == 0 && s[0].f1 == 0);
    const uint64_t none[4] = {0, 0, 0, 0};
    class_scores_of(none, 2, s);
    assert_true(isnan(class_scores_macro(s, 2, 'f')));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(class_scores_known_matrix),
        cmocka_unit_test(class_scores_perfect_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
