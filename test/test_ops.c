/*
 * test_ops.c: every op of the registry (engine/ops/ops.h), through the public graph API,
 * against a C reference in double.
 *
 * One table row per case (an op with one set of parameters). For each row, at its own odd
 * shapes and again with its batch axis 1, the test builds y = op(declared tensors) and the
 * loss L = sum(y * W) (W a fixed random input of y's shape, so dL/dy = W), and makes trainers
 * with SGD, lr 1, no momentum and no weight decay, so that one update leaves p - grad and the
 * gradient is read as p_before - p_after. It checks:
 *
 * - forward: clt_trainer_eval's y against the reference in evaluation mode (atol 1e-5 +
 *   rtol 1e-4 unless the row says otherwise), and the loss of the training step against
 *   sum(reference y * W) (atol 1e-5 per output element + rtol 1e-4);
 * - backward, write: the gradient of every trained parameter (the op's inputs and the
 *   layer's own parameters) against central differences of the reference loss in double,
 *   with steps of 5e-4 on values spread 2 / n apart and away from 0, so that no step crosses
 *   a kink of relu or a tie of max pooling (atol 1e-4 + rtol 1e-3 unless the row says
 *   otherwise);
 * - backward, accumulate: with an extra term sum(p * V) made after the op for each declared
 *   parameter p, whose backward runs first, the op's backward adds to the gradient: expect
 *   the write gradient + V (atol 1e-5 + rtol 1e-5);
 * - backward, micro-batches: with accumulate = 2 and the same batch twice, the second step
 *   adds to the first and the update averages: expect the write gradient (same tolerance).
 *
 * 16-bit storage (every_op_in_16_bits, run_case16): every row again in 16 bits at its batch-1
 * shapes (the first row of each op in fp16 and bf16, the others in one of the two, alternating),
 * inputs and parameters rounded to the storage: the forward and the training loss against the
 * reference, the gradient against an fp32 trainer's on the same values, accumulate and
 * micro-batches; within four ulps of the storage (fp16 2^-9, bf16 2^-6) relative and absolute times
 * the row's tol16 factor (1 for every row today: measured on PoCL, every row passes at it). Rows
 * the trainer refuses in 16 bits (the losses: the test's loss reads their fp32 output) and rows
 * that run GEMMs while clt__gemm does not follow the storage are skipped and listed. The
 * finite-difference checks stay fp32.
 *
 * Dropout draws its mask from the step, so its rows check the mask's shape instead: every
 * gradient element is 0 or W / (1 - p) (a mean of two such over two micro-batches).
 *
 * Builders of conv2d and pooling report impossible descriptions through the graph's error and
 * print nothing. A registry op without a row, or without a bench example (unless a view),
 * fails `every_op_has_a_case`. Under Oclgrind
 * (CLTRAIN_TEST_SMALL) only the batch-1 shapes run (and the rows without a batch axis).
 *
 * The tests are in this file; the rows, with their references and builders, in one file per
 * family of ops (test_ops_linear.c, test_ops_shape.c, test_ops_conv.c, test_ops_norm.c);
 * running a row in fp32 in ops_rig.c, in 16 bits in ops_rig16.c; what they share in
 * ops_rig.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops_rig.h"

/* Every row of the families' tables, family by family in the registry's order (in_storage
 * alternates storages by the index in it); filled by collect_cases before the tests run. */
#define MAX_CASES 64
static struct op_case cases[MAX_CASES];
static size_t ncases;

static bool collect_cases(void)
{
    const struct op_case *const tables[] = {ops_linear_cases, ops_shape_cases, ops_conv_cases,
                                            ops_norm_cases};
    const size_t counts[] = {ops_linear_count, ops_shape_count, ops_conv_count, ops_norm_count};
    for (size_t f = 0; f < sizeof tables / sizeof tables[0]; f++)
        for (size_t i = 0; i < counts[f]; i++) {
            if (ncases == MAX_CASES)
                return false;
            cases[ncases++] = tables[f][i];
        }
    return true;
}

/* ==== Tests ============================================================================== */

static void every_op_has_a_case(void **state)
{
    (void)state;
    for (int op = 0; op < CLT__OP_COUNT; op++) {
        bool found = false;
        for (size_t k = 0; k < ncases && !found; k++)
            found = strcmp(cases[k].op, clt__op_names[op]) == 0;
        if (!found)
            fail_msg("op %s (family %s) has no row in test_ops_*.c", clt__op_names[op],
                     clt__op_families[op]);
        /* cltrain-bench times every op but a view through its definition's example. */
        if (!clt__op_registry[op]->is_view && !clt__op_registry[op]->bench)
            fail_msg("op %s (family %s) has no bench example", clt__op_names[op],
                     clt__op_families[op]);
    }
    for (size_t k = 0; k < ncases; k++) {
        bool found = false;
        for (int op = 0; op < CLT__OP_COUNT && !found; op++)
            found = strcmp(cases[k].op, clt__op_names[op]) == 0;
        if (!found)
            fail_msg("row \"%s\" names %s, which is not in the registry", cases[k].what,
                     cases[k].op);
    }
}

static void every_op_matches_its_reference(void **state)
{
    struct clt_device *dev = *state;
    for (size_t k = 0; k < ncases; k++) {
        if (cases[k].attention)
            setenv("CLTRAIN_ATTENTION", cases[k].attention, 1);
        if (!clt_test_small() || cases[k].no_batch1)
            run_case(dev, &cases[k], false);
        if (!cases[k].no_batch1)
            run_case(dev, &cases[k], true);
        if (cases[k].attention)
            unsetenv("CLTRAIN_ATTENTION");
    }
}

/* Whether row k runs in 16-bit storage p: the first row of each op in both fp16 and bf16, the
 * others in one of the two, alternating (fp16 and bf16 differ only in the loads and stores of
 * cl/common.cl, which every row's kernels use alike; each family's own tests run its kernels
 * in both storages). Every row runs in 16 bits, every op in both storages, and the test
 * builds about half as many 16-bit kernels (their builds are most of its time on PoCL). */
static bool in_storage(size_t k, enum clt_precision p)
{
    for (size_t j = 0; j < k; j++)
        if (strcmp(cases[j].op, cases[k].op) == 0)
            return (k % 2 == 0) == (p == CLT_PRECISION_FP16);
    return true;
}

/* Every row again in 16 bits (run_case16; fp16, bf16 or both: in_storage), at its batch-1
 * shapes (its full ones when it has no batch 1); rows the trainer refuses in 16 bits (an op without
 * 16-bit kernels, a loss read by the test's own loss) and rows that run GEMMs while clt__gemm does
 * not follow the storage are skipped and listed. Not under Oclgrind (small shapes): too slow there,
 * and every family's launcher tests run their 16-bit kernels under it. */
static void every_op_in_16_bits(void **state)
{
    struct clt_device *dev = *state;
    if (clt_test_small()) {
        /* Oclgrind: each family's own tests check its 16-bit kernels there. */
        printf("ops in 16 bits: not under CLTRAIN_TEST_SMALL (Oclgrind)\n");
        return;
    }
    const bool gemm = gemm_follows_storage(dev);
    for (enum clt_precision p = CLT_PRECISION_FP16; p <= CLT_PRECISION_BF16; p++) {
        char skipped[2048] = "";
        size_t at = 0, nskipped = 0, nrun = 0;
        struct clt_log saved = dev->log;
        for (size_t k = 0; k < ncases; k++) {
            if (!in_storage(k, p))
                continue;
            bool ran = false;
            const char *why = "refused by the trainer";
            if (runs_gemm(&cases[k]) && !gemm) {
                why = "GEMM does not follow the storage in this build";
            } else {
                if (cases[k].attention)
                    setenv("CLTRAIN_ATTENTION", cases[k].attention, 1);
                dev->log = (struct clt_log){quiet, NULL, CLT_LOG_ERROR}; /* listed below */
                ran = run_case16(dev, &cases[k], !cases[k].no_batch1, p);
                dev->log = saved;
                if (cases[k].attention)
                    unsetenv("CLTRAIN_ATTENTION");
            }
            nrun += ran;
            if (!ran && at < sizeof skipped) {
                nskipped++;
                at += (size_t)snprintf(skipped + at, sizeof skipped - at, "\n  %s (%s): %s",
                                       cases[k].what, cases[k].op, why);
            }
        }
        printf("ops in %s: %zu rows run, %zu skipped:%s\n", clt_precision_name(p), nrun, nskipped,
               skipped);
        assert_true(nrun > 0);
    }
}

/* Builders report impossible descriptions through the graph's error, with the reason the
 * launcher-side check gave, and print nothing (the library never writes to stderr). */
static void builders_report_through_the_graph(void **state)
{
    (void)state;
    fflush(stderr);
    FILE *capture = tmpfile();
    assert_non_null(capture);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(capture), 2) >= 0);

    struct clt_graph *g, *h;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 4, (int64_t[]){1, 2, 4, 4});
    struct clt_conv2d_desc d = {.out_channels = 3, .kernel_h = 9, .kernel_w = 9};
    struct clt_tensor *y = clt_conv2d(g, x, &d, "conv");
    assert_int_equal(clt_graph_create(&h), CLT_OK);
    struct clt_tensor *z =
        clt_max_pool2d(h, clt_input(h, "x", CLT_F32, 4, (int64_t[]){1, 2, 3, 3}), 2, 1, 5);

    fflush(stderr);
    assert_true(dup2(saved, 2) >= 0);
    close(saved);
    fseek(capture, 0, SEEK_END);
    long printed = ftell(capture);
    fclose(capture);

    assert_null(y);
    assert_null(z);
    assert_int_equal(clt_graph_status(g), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(clt_graph_error(g), "conv2d conv: impossible parameters"));
    assert_int_equal(clt_graph_status(h), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(clt_graph_error(h), "pooling: impossible"));
    assert_int_equal(printed, 0);
    clt_graph_free(g);
    clt_graph_free(h);
}

/* Shapes that do not broadcast are a graph error naming both shapes and the axis. */
static void broadcast_shape_errors(void **state)
{
    (void)state;
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *a = clt_input(g, "a", CLT_F32, 3, (int64_t[]){2, 3, 4});
    struct clt_tensor *b = clt_input(g, "b", CLT_F32, 2, (int64_t[]){5, 4});
    assert_non_null(clt_add(g, a, clt_input(g, "c", CLT_F32, 2, (int64_t[]){3, 1})));
    assert_null(clt_sub(g, a, b));
    assert_int_equal(clt_graph_status(g), CLT_ERR_INVALID_ARGUMENT);
    const char *e = clt_graph_error(g);
    assert_non_null(strstr(e, "sub: \"a\" [2, 3, 4] and \"b\" [5, 4] do not broadcast"));
    assert_non_null(strstr(e, "axis -2: 3 against 5"));
    clt_graph_free(g);

    assert_int_equal(clt_graph_create(&g), CLT_OK);
    a = clt_input(g, "a", CLT_F32, 1, (int64_t[]){7});
    b = clt_input(g, "b", CLT_F32, 2, (int64_t[]){7, 6});
    assert_null(clt_mul(g, a, b));
    assert_non_null(strstr(clt_graph_error(g), "mul: \"a\" [7] and \"b\" [7, 6]"));
    clt_graph_free(g);
}

int main(void)
{
    clt_test_require_device();
    if (!collect_cases()) {
        fprintf(stderr, "test_ops: more than %d rows; raise MAX_CASES\n", MAX_CASES);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(every_op_has_a_case),    CLT_DEVICE_TEST(builders_report_through_the_graph),
        CLT_DEVICE_TEST(broadcast_shape_errors), CLT_DEVICE_TEST(every_op_matches_its_reference),
        CLT_DEVICE_TEST(every_op_in_16_bits),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
