/*
 * test_elementwise.c: the elementwise family (cl/elementwise.cl, engine/ops/elementwise.c)
 * against the C reference. For every op: the forward; each backward alone with accumulate
 * off (the gradient buffer full of NaN first, so a kernel that reads it fails) and on, the
 * other gradients skipped and unchanged; all gradients in one call; and a finite-difference
 * check of each backward through the device's own forward. Every tensor sits at an odd
 * element offset between guard elements that must survive. Shapes include 1 and sizes that
 * are multiples of no work-group size. Also: fill and axpy, outputs that alias inputs, the
 * accuracy of long sums, results that do not depend on the work-group size, and argument
 * checks.
 *
 * Tolerances, inputs uniform in [-1, 1), |got - want| <= atol + rtol * |want|:
 *   fill, copy: exact.
 *   add, mul, scale, axpy, bias add and the elementwise backwards: atol 1e-7, rtol 2.4e-7.
 *     Each result is one float rounding (<= 0.5 ulp, 6e-8 relative) of the exact value
 *     (fma where an accumulation is fused), or two where a mean's gradient is accumulated.
 *   sums and means of k terms (bias gradient, row sums, full sums), divided by d (1 for a
 *     sum, k for a mean): atol 4e-7 k / d, rtol 2.4e-7. Compensated summation errs by
 *     about 2 ulp of the sum of |terms| (<= k), plus the rounding of partial sums.
 *   linear: atol 1e-5 (k + 1), rtol 1e-5, k the length of each dot product (in, out or n),
 *     as in test_gemm: the GEMM backends accumulate plainly in float.
 *   sums of 10^6 elements (65 999 under Oclgrind): rtol 1e-6, on uniform [0, 1) data and
 *     on 2^24 followed by ones, where plain float summation of a 256-element chunk loses
 *     255 and misses by 1.4e-5.
 *   finite differences: each op is linear in each input, so central differences are exact
 *     but for the forward's float rounding (about 1e-6 here); eps 0.25, rtol 1e-3, atol
 *     1e-3 times the largest reference gradient; 8 probes (4 under Oclgrind) per tensor
 *     of at most 4096 elements.
 *
 * In 16-bit storage (fp16, bf16; test/st_tensor.h), on inputs rounded to the storage and the
 * reference in double on them: every op but linear (whose GEMM test_gemm covers), the same
 * checks but the finite differences (which stay in fp32). The kernels compute in float and
 * round each result once to the storage (nearest even), so each fp32 tolerance above widens
 * by that rounding: rtol + u (u = 2^-11 fp16, 2^-8 bf16) and atol + 1e-7 (fp16's subnormals
 * are 6e-8 apart); copy and fill stay exact. That is the rounding's own bound, reached at
 * ties (measured worst on PoCL: 0.999 of the tolerance, an fp16 tie), so a kernel that
 * rounded twice, truncated or read the wrong storage fails.
 *
 * The fp32 tests are in this file, which lists every test; the 16-bit ones in
 * test_elementwise16.c; the guarded tensors and the one-op check they share in
 * elementwise_rig.c.
 */

#include <stdlib.h>
#include <string.h>

#include "elementwise_rig.h"
#include "ops/elementwise.h"
#include "ref_elementwise.h"

/* ==== Tests ============================================================================= */

static void arithmetic(void **state)
{
    static const int64_t big[][3] = {
        {1, 1, 0}, {1, 37, 0}, {1, 64, 0}, {1, 1000, 0}, {1, 65537, 0}};
    /* copy_backward: whole 32-element rows only (64), rows and a tail (37, 300, 1000), a
     * tail only (1). */
    static const int64_t small[][3] = {{1, 1, 0}, {1, 37, 0}, {1, 64, 0}, {1, 300, 0}};
    bool is_small = clt_test_small();
    const enum op ops[] = {OP_COPY, OP_ADD, OP_MUL, OP_SCALE};
    for (size_t o = 0; o < COUNT(ops); o++)
        run_shapes(*state, ops[o], is_small ? small : big, is_small ? COUNT(small) : COUNT(big),
                   false);
}

static void bias_and_row_sums(void **state)
{
    /* 64 entries sum in one work-item, 65 in two chunks, 4097 in two rounds of chunks.
     * Columns a multiple of 32 take bias_forward_cols32. */
    static const int64_t big[][3] = {{1, 1, 0},    {1, 37, 0},   {5, 19, 0},   {37, 1, 0},
                                     {130, 67, 0}, {1000, 3, 0}, {64, 5, 0},   {65, 65, 0},
                                     {4097, 2, 0}, {3, 4097, 0}, {4097, 8, 0}, {130, 68, 0},
                                     {7, 64, 0},   {131, 96, 0}, {4097, 48, 0}};
    /* Columns in fours take sum_axis4, in sixteens sum_axis16 on a CPU. */
    static const int64_t small[][3] = {{1, 1, 0},  {1, 37, 0}, {5, 19, 0}, {13, 3, 0}, {65, 3, 0},
                                       {3, 65, 0}, {65, 4, 0}, {5, 32, 0}, {65, 16, 0}};
    bool is_small = clt_test_small();
    const enum op ops[] = {OP_BIAS, OP_SUM_ROWS, OP_MEAN_ROWS};
    for (size_t o = 0; o < COUNT(ops); o++)
        run_shapes(*state, ops[o], is_small ? small : big, is_small ? COUNT(small) : COUNT(big),
                   false);
}

/* llvmpipe ends a loop after 65,535 iterations of one work-item: sums along an axis longer
 * than that (bias and broadcast-product gradients over the rows, row sums over the
 * columns) must still be whole. */
static void sums_longer_than_a_work_item_loop(void **state)
{
    static const int64_t shapes[][3] = {{65535 + 2, 3, 0}, {65535 + 2, 4, 0}, {2, 65535 + 2, 0}};
    if (clt_test_small()) /* Oclgrind: too slow; PoCL and rusticl run it */
        skip();
    const enum op ops[] = {OP_BIAS, OP_SUM_ROWS, OP_MEAN_ROWS};
    for (size_t o = 0; o < COUNT(ops); o++)
        run_shapes(*state, ops[o], shapes, COUNT(shapes), false);

    struct clt_device *dev = *state;
    const size_t rows = 65535 + 2, cols = 3, n = rows * cols;
    float *x = malloc(n * sizeof *x), *dy = malloc(n * sizeof *dy), got[3];
    assert_true(x && dy);
    clt_test_fill(x, n, 31, -1.0f, 1.0f);
    clt_test_fill(dy, n, 32, -1.0f, 1.0f);
    double want[3] = {0.0, 0.0, 0.0};
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            want[c] += (double)dy[r * cols + c] * (double)x[r * cols + c];
    size_t ws =
        (size_t)(clt__sum_axis_workspace_bytes(1, (int64_t)rows, (int64_t)cols) / sizeof(float));
    struct tensor tx = tensor_new(dev, x, n), tdy = tensor_new(dev, dy, n);
    struct tensor tds = tensor_new(dev, NULL, cols), tws = tensor_new(dev, NULL, ws);
    assert_int_equal(clt__mul_broadcast_backward(dev, (int64_t)rows, (int64_t)cols, tensor_buf(&tx),
                                                 NONE, tensor_buf(&tdy), NONE, tensor_buf(&tds), 0,
                                                 tensor_buf(&tws)),
                     CLT_OK);
    tensor_read(&tds, got, "long mul_broadcast ds");
    tensor_read(&tws, NULL, "long mul_broadcast workspace");
    /* Compensated sums: a few ulp of the sum of |terms| (< rows). */
    clt_test_assert_close("mul_broadcast ds over 65537 rows", got, want, cols, 1e-6 * (double)rows,
                          1e-6);
    tensor_free(&tx);
    tensor_free(&tdy);
    tensor_free(&tds);
    tensor_free(&tws);
    free(x);
    free(dy);
}

/* sum_axis4 and sum_axis16 (columns in fours, in sixteens on a CPU) add lane by lane as
 * sum_axis does: the column sums of X [rows, cols] equal, bit for bit, the row sums of its
 * transpose (inner 1, one at a time), which add the same values in the same chunks and order.
 * 68 columns take sum_axis4, 80 sum_axis16 on a CPU (sum_axis4 elsewhere). */
static void columns_sum_at_every_width_as_one(void **state)
{
    struct clt_device *dev = *state;
    const size_t widths[] = {68, 80};
    for (size_t w = 0; w < COUNT(widths); w++) {
        const size_t rows = clt_test_small() ? 70 : 4099, cols = widths[w], n = rows * cols;
        float *x = malloc(n * sizeof *x), *xt = malloc(n * sizeof *xt);
        float byv[80], by1[80];
        assert_true(x && xt);
        clt_test_fill(x, n, 77, -1.0f, 1.0f);
        x[5 * cols + 1] = 16777216.0f; /* a column whose compensation matters */
        x[9 * cols + cols - 1] = -16777216.0f;
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++)
                xt[c * rows + r] = x[r * cols + c];
        size_t ws = (size_t)(clt__sum_axis_workspace_bytes(1, (int64_t)rows, (int64_t)cols) /
                             sizeof(float));
        struct tensor tx = tensor_new(dev, x, n), txt = tensor_new(dev, xt, n);
        struct tensor ta = tensor_new(dev, NULL, cols), tb = tensor_new(dev, NULL, cols);
        struct tensor tws = tensor_new(dev, NULL, ws);
        assert_int_equal(clt__bias_backward(dev, (int64_t)rows, (int64_t)cols, tensor_buf(&tx),
                                            NONE, tensor_buf(&ta), false, tensor_buf(&tws)),
                         CLT_OK);
        assert_int_equal(clt__sum_rows_forward(dev, (int64_t)cols, (int64_t)rows, tensor_buf(&txt),
                                               tensor_buf(&tb), tensor_buf(&tws)),
                         CLT_OK);
        tensor_read(&ta, byv, "column sums by four or sixteen");
        tensor_read(&tb, by1, "row sums of the transpose");
        for (size_t c = 0; c < cols; c++)
            if (memcmp(&byv[c], &by1[c], sizeof byv[c]) != 0)
                fail_msg("%zu columns, column %zu: %.9g several at a time, %.9g one at a time",
                         cols, c, byv[c], by1[c]);
        tensor_free(&tx);
        tensor_free(&txt);
        tensor_free(&ta);
        tensor_free(&tb);
        tensor_free(&tws);
        free(x);
        free(xt);
    }
}

/* Neumaier's step as cl/elementwise.cl's sum_add takes it (additions only: no contraction). */
static void neumaier_add(float *sum, float *low, float v)
{
    const float t = *sum + v;
    *low += fabsf(*sum) >= fabsf(v) ? (*sum - t) + v : (v - t) + *sum;
    *sum = t;
}

static float neumaier_value(float sum, float low)
{
    return isinf(sum) ? sum : sum + low;
}

/* The column sums of a count of 65 to 256 rows, which a CPU makes in one launch
 * (sum_axis*_fold) and other devices in two rounds, are the bits of the two rounds: the
 * compensated sum of each chunk of 64 rows in order, then the compensated sum of those in
 * order, replayed here in C. Widths of one, four and sixteen columns per work-item; each
 * shape also with the device's type flipped, so that every device runs both kinds. */
static void column_sums_are_two_rounds_of_chunks(void **state)
{
    struct clt_device *dev = *state;
    static const size_t shapes[][2] = {{65, 3}, {128, 10}, {200, 68}, {256, 80}, {128, 256}};
    const size_t nshapes = COUNT(shapes);
    const enum clt_device_type type = dev->info.type;
    for (size_t s = 0; s < 2 * nshapes; s++) {
        if (s == nshapes)
            dev->info.type = type == CLT_DEVICE_CPU ? CLT_DEVICE_GPU : CLT_DEVICE_CPU;
        const size_t rows = shapes[s % nshapes][0], cols = shapes[s % nshapes][1];
        const size_t n = rows * cols;
        float *x = malloc(n * sizeof *x), *got = malloc(cols * sizeof *got);
        assert_true(x && got);
        clt_test_fill(x, n, 91, -1.0f, 1.0f);
        x[3 * cols] = 16777216.0f; /* a column whose compensation matters */
        x[(rows / 2) * cols + cols - 1] = -33554432.0f;
        size_t ws = (size_t)(clt__sum_axis_workspace_bytes(1, (int64_t)rows, (int64_t)cols) /
                             sizeof(float));
        struct tensor tx = tensor_new(dev, x, n), ts = tensor_new(dev, NULL, cols);
        struct tensor tws = tensor_new(dev, NULL, ws);
        assert_int_equal(clt__bias_backward(dev, (int64_t)rows, (int64_t)cols, tensor_buf(&tx),
                                            NONE, tensor_buf(&ts), false, tensor_buf(&tws)),
                         CLT_OK);
        tensor_read(&ts, got, "column sums");
        for (size_t c = 0; c < cols; c++) {
            float tsum = 0.0f, tlow = 0.0f;
            for (size_t first = 0; first < rows; first += CLT__SUM_AXIS_CHUNK) {
                float sum = 0.0f, low = 0.0f;
                for (size_t r = first; r < rows && r < first + CLT__SUM_AXIS_CHUNK; r++)
                    neumaier_add(&sum, &low, x[r * cols + c]);
                neumaier_add(&tsum, &tlow, neumaier_value(sum, low));
            }
            const float want = neumaier_value(tsum, tlow);
            if (memcmp(&got[c], &want, sizeof want) != 0) {
                dev->info.type = type;
                fail_msg("%zu x %zu%s, column %zu: %.9g, two rounds give %.9g", rows, cols,
                         s < nshapes ? "" : " (type flipped)", c, got[c], want);
            }
        }
        tensor_free(&tx);
        tensor_free(&ts);
        tensor_free(&tws);
        free(x);
        free(got);
    }
    dev->info.type = type;
}

static void full_sums(void **state)
{
    /* 257 and 4099 take one round of partial sums, 65537 two. */
    static const int64_t big[][3] = {{1, 1, 0},   {1, 255, 0},  {1, 256, 0},
                                     {1, 257, 0}, {1, 4099, 0}, {1, 65537, 0}};
    static const int64_t small[][3] = {{1, 1, 0}, {1, 256, 0}, {1, 257, 0}, {1, 4099, 0}};
    bool is_small = clt_test_small();
    const enum op ops[] = {OP_SUM, OP_MEAN};
    for (size_t o = 0; o < COUNT(ops); o++)
        run_shapes(*state, ops[o], is_small ? small : big, is_small ? COUNT(small) : COUNT(big),
                   false);
}

static void linear(void **state)
{
    /* {n, in, out} */
    static const int64_t big[][3] = {
        {1, 1, 1}, {1, 37, 19}, {5, 37, 19}, {64, 33, 10}, {17, 130, 65}};
    /* Under Oclgrind the GEMM is slow: two shapes with a bias, one without. */
    static const int64_t small[][3] = {{5, 37, 19}, {1, 37, 19}};
    bool is_small = clt_test_small();
    for (int bias = 0; bias < 2; bias++)
        run_shapes(*state, OP_LINEAR, is_small ? small : big,
                   is_small ? (size_t)1 + bias : COUNT(big), bias);
}

static void fill_and_axpy(void **state)
{
    struct clt_device *dev = *state;
    static const size_t sizes[] = {1, 37, 1000, 65537};
    size_t count = clt_test_small() ? 3 : 4;
    for (size_t s = 0; s < count; s++) {
        size_t n = sizes[s];
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        float *got = malloc(n * sizeof *got);
        double *want = malloc(n * sizeof *want);
        assert_true(x && y && got && want);
        clt_test_fill(x, n, 1 + n, -1.0f, 1.0f);
        clt_test_fill(y, n, 2 + n, -1.0f, 1.0f);
        struct tensor tx = tensor_new(dev, x, n), ty = tensor_new(dev, NULL, n);

        assert_int_equal(clt__fill_forward(dev, (int64_t)n, 0.375f, tensor_buf(&ty)), CLT_OK);
        tensor_read(&ty, got, "fill");
        for (size_t i = 0; i < n; i++)
            want[i] = 0.375;
        clt_test_assert_close("fill", got, want, n, 0.0, 0.0);

        tensor_write(&ty, y);
        assert_int_equal(
            clt__axpy_forward(dev, (int64_t)n, -1.5f, tensor_buf(&tx), tensor_buf(&ty)), CLT_OK);
        tensor_read(&ty, got, "axpy");
        ref_axpy_forward(n, -1.5f, x, y, want);
        clt_test_assert_close("axpy", got, want, n, ELEMENTWISE.atol, ELEMENTWISE.rtol);

        /* Nothing to do is no error, and writes nothing. */
        assert_int_equal(clt__fill_forward(dev, 0, 1.0f, tensor_buf(&ty)), CLT_OK);
        tensor_read(&ty, got, "fill of nothing");
        clt_test_assert_close("fill of nothing", got, want, n, ELEMENTWISE.atol, ELEMENTWISE.rtol);
        tensor_free(&tx);
        tensor_free(&ty);
        free(x);
        free(y);
        free(got);
        free(want);
    }
}

/* Elementwise outputs may be their input's memory: y = a + y, y = alpha * y, y = y + bias. */
static void outputs_may_alias_inputs(void **state)
{
    struct clt_device *dev = *state;
    const size_t rows = 7, cols = 13, n = rows * cols;
    float a[7 * 13], y[7 * 13], bias[13], got[7 * 13];
    double want[7 * 13];
    clt_test_fill(a, n, 3, -1.0f, 1.0f);
    clt_test_fill(y, n, 4, -1.0f, 1.0f);
    clt_test_fill(bias, cols, 5, -1.0f, 1.0f);
    struct tensor ta = tensor_new(dev, a, n), ty = tensor_new(dev, y, n);
    struct tensor tb = tensor_new(dev, bias, cols);

    assert_int_equal(clt__add_forward(dev, n, tensor_buf(&ta), tensor_buf(&ty), tensor_buf(&ty)),
                     CLT_OK);
    tensor_read(&ty, got, "add in place");
    ref_add_forward(n, a, y, want);
    clt_test_assert_close("add in place", got, want, n, ELEMENTWISE.atol, ELEMENTWISE.rtol);

    memcpy(y, got, sizeof y);
    assert_int_equal(clt__scale_forward(dev, n, 3.0f, tensor_buf(&ty), tensor_buf(&ty)), CLT_OK);
    tensor_read(&ty, got, "scale in place");
    ref_scale_forward(n, 3.0f, y, want);
    clt_test_assert_close("scale in place", got, want, n, ELEMENTWISE.atol, ELEMENTWISE.rtol);

    memcpy(y, got, sizeof y);
    assert_int_equal(
        clt__bias_forward(dev, rows, cols, tensor_buf(&ty), tensor_buf(&tb), tensor_buf(&ty)),
        CLT_OK);
    tensor_read(&ty, got, "bias in place");
    ref_bias_forward(rows, cols, y, bias, want);
    clt_test_assert_close("bias in place", got, want, n, ELEMENTWISE.atol, ELEMENTWISE.rtol);
    tensor_free(&ta);
    tensor_free(&ty);
    tensor_free(&tb);
}

/* Sums one long vector on the device; returns the result. */
static float device_sum(struct clt_device *dev, const float *x, size_t n)
{
    size_t ws = (size_t)(clt__reduce_workspace_bytes((int64_t)n) / sizeof(float));
    struct tensor tx = tensor_new(dev, x, n), ty = tensor_new(dev, NULL, 1);
    struct tensor tw = tensor_new(dev, NULL, ws);
    assert_int_equal(
        clt__sum_forward(dev, (int64_t)n, tensor_buf(&tx), tensor_buf(&ty), tensor_buf(&tw)),
        CLT_OK);
    float y;
    tensor_read(&ty, &y, "long sum");
    tensor_read(&tw, NULL, "long sum workspace");
    tensor_free(&tx);
    tensor_free(&ty);
    tensor_free(&tw);
    return y;
}

static void long_sums_are_accurate(void **state)
{
    struct clt_device *dev = *state;
    size_t n = clt_test_small() ? 65999 : 1000003;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);

    clt_test_fill(x, n, 99, 0.0f, 1.0f);
    float got = device_sum(dev, x, n);
    double want = ref_sum_forward(n, x);
    clt_test_assert_close("sum of uniform [0, 1)", &got, &want, 1, 0.0, 1e-6);

    /* 2^24 + 1 rounds back to 2^24 in float: every one added to the big value alone is
     * lost unless the summation compensates. */
    x[0] = 16777216.0f;
    for (size_t i = 1; i < n; i++)
        x[i] = 1.0f;
    got = device_sum(dev, x, n);
    want = ref_sum_forward(n, x);
    clt_test_assert_close("sum of 2^24 and ones", &got, &want, 1, 0.0, 1e-6);
    free(x);
}

/* Runs the reductions (full sum, row sums, bias gradient) and returns their results. */
static void reductions(struct clt_device *dev, const struct tensor *x, size_t n, size_t rows,
                       size_t cols, const struct tensor *out, const struct tensor *ws, float *got)
{
    struct clt__buf o = tensor_buf(out);
    assert_int_equal(clt__sum_forward(dev, n, tensor_buf(x), o, tensor_buf(ws)), CLT_OK);
    o.offset += 1;
    assert_int_equal(clt__sum_rows_forward(dev, rows, cols, tensor_buf(x), o, tensor_buf(ws)),
                     CLT_OK);
    o.offset += rows;
    assert_int_equal(
        clt__bias_backward(dev, rows, cols, tensor_buf(x), NONE, o, false, tensor_buf(ws)), CLT_OK);
    tensor_read(out, got, "reductions");
}

/* The same bits for every work-group size the launcher may choose, and on every run. */
static void results_do_not_depend_on_work_group_size(void **state)
{
    struct clt_device *dev = *state;
    size_t rows = clt_test_small() ? 31 : 1001, cols = 67, n = rows * cols;
    size_t outs = 1 + rows + cols;
    size_t ws = (size_t)(workspace_bytes((int64_t)rows, (int64_t)cols, 0) / sizeof(float));
    float *x = malloc(n * sizeof *x), *first = malloc(outs * sizeof *first);
    float *got = malloc(outs * sizeof *got);
    assert_true(x && first && got);
    clt_test_fill(x, n, 8, -1.0f, 1.0f);
    struct tensor tx = tensor_new(dev, x, n), tout = tensor_new(dev, NULL, outs);
    struct tensor tws = tensor_new(dev, NULL, ws);

    reductions(dev, &tx, n, rows, cols, &tout, &tws, first);
    const size_t keep = dev->wg_1d;
    const size_t sizes[] = {1, 2, 8, keep};
    for (size_t s = 0; s < COUNT(sizes); s++) {
        dev->wg_1d = sizes[s];
        tensor_write(&tout, NULL);
        reductions(dev, &tx, n, rows, cols, &tout, &tws, got);
        dev->wg_1d = keep;
        if (memcmp(got, first, outs * sizeof *got) != 0)
            fail_msg("reductions with work-groups of %zu differ from the first run", sizes[s]);
    }
    tensor_free(&tx);
    tensor_free(&tout);
    tensor_free(&tws);
    free(x);
    free(first);
    free(got);
}

static void bad_arguments_are_refused(void **state)
{
    struct clt_device *dev = *state;
    struct clt_test_log log = {.len = 0};
    const struct clt_log keep = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &log, CLT_LOG_DEBUG};
    /* t holds the 1000 elements the sums below read, so that only their workspace is short. */
    struct tensor t = tensor_new(dev, NULL, 1000), t2 = tensor_new(dev, NULL, 64);
    struct tensor t3 = tensor_new(dev, NULL, 64);
    struct clt__buf b = tensor_buf(&t), b2 = tensor_buf(&t2), b3 = tensor_buf(&t3), far = b;
    far.offset = (size_t)INT32_MAX - 10;
    const enum clt_status bad = CLT_ERR_INVALID_ARGUMENT;

    assert_int_equal(clt__add_forward(dev, -1, b, b, b), bad);
    assert_int_equal(clt__add_forward(dev, 4, b, NONE, b), bad);
    assert_int_equal(clt__add_forward(NULL, 4, b, b, b), bad);
    assert_int_equal(clt__copy_forward(dev, 20, far, b), bad);
    assert_int_equal(clt__fill_forward(dev, (int64_t)1 << 31, 0.0f, b), bad);
    assert_int_equal(clt__bias_forward(dev, 1 << 16, 1 << 16, b, b, b), bad);
    assert_int_equal(clt__sum_rows_forward(dev, 4, -2, b, b, NONE), bad);
    assert_int_equal(clt__mean_rows_forward(dev, 4, 0, b, b, NONE), bad);
    assert_int_equal(clt__mean_forward(dev, 0, b, b, NONE), bad);
    assert_int_equal(clt__mean_backward(dev, 0, b, b, false), bad);
    assert_int_equal(clt__copy_backward(dev, 4, b, NONE, false), bad);
    /* A workspace that ends too soon: 1000 elements need 16 bytes of it. */
    assert_int_equal(clt__reduce_workspace_bytes(1000), 16);
    struct clt__buf end = b;
    end.offset = t.n + 2 * GUARD - 2;
    assert_int_equal(clt__sum_forward(dev, 1000, b, b, NONE), bad);
    assert_int_equal(clt__sum_forward(dev, 1000, b, b, end), bad);
    assert_int_equal(clt__linear_forward(dev, 2, 0, 3, b, b, NONE, b), bad);
    assert_int_equal(clt__linear_forward(dev, 2, 3, 3, b, NONE, NONE, b), bad);
    /* dx needs no x. */
    assert_int_equal(clt__linear_backward(dev, 2, 3, 3, NONE, b, b2, b3, NONE, NONE, false, NONE),
                     CLT_OK);
    assert_int_equal(clt__linear_backward(dev, 2, 3, 3, NONE, b, b, NONE, b, NONE, false, NONE),
                     bad);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    dev->log = keep;
    assert_non_null(strstr(log.text, "add_forward: b is NULL"));
    assert_non_null(strstr(log.text, "sum_forward: workspace"));
    tensor_free(&t);
    tensor_free(&t2);
    tensor_free(&t3);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(arithmetic),
        CLT_DEVICE_TEST(bias_and_row_sums),
        CLT_DEVICE_TEST(full_sums),
        CLT_DEVICE_TEST(sums_longer_than_a_work_item_loop),
        CLT_DEVICE_TEST(columns_sum_at_every_width_as_one),
        CLT_DEVICE_TEST(column_sums_are_two_rounds_of_chunks),
        CLT_DEVICE_TEST(linear),
        CLT_DEVICE_TEST(fill_and_axpy),
        CLT_DEVICE_TEST(outputs_may_alias_inputs),
        CLT_DEVICE_TEST(long_sums_are_accurate),
        CLT_DEVICE_TEST(results_do_not_depend_on_work_group_size),
        CLT_DEVICE_TEST(bad_arguments_are_refused),
        CLT_DEVICE_TEST(ops_in_16_bit),
        CLT_DEVICE_TEST(fill_axpy_and_aliasing_in_16_bit),
        CLT_DEVICE_TEST(buffers_are_checked_in_the_storage),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
