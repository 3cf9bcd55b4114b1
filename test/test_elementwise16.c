/*
 * test_elementwise16.c: the elementwise family in 16-bit storage (fp16, bf16): every op but
 * linear through the same problems as test_elementwise.c, fill, axpy and aliasing, and sizes
 * checked in storage elements.
 */

#include <stdlib.h>
#include <string.h>

#include "elementwise_rig.h"
#include "ops/elementwise.h"
#include "ref_elementwise.h"

/* ==== 16-bit storage ===================================================================== */

/* Every op but linear (its GEMM is tested in test_gemm) in fp16 and bf16, through the same
 * problems as above (guards, odd offsets, accumulate, skipped gradients, every gradient in
 * one call) on inputs rounded to the storage: the elementwise ops; bias and row sums with
 * sums along an axis of one round (5), two (65: sum_axis_part and _last) and three (4099:
 * _wide too), in ones, fours and sixteens of columns (bias: and in whole 32-column blocks, which
 * take bias_forward_cols32); full sums of one chunk, of one round of partials (257:
 * sum_finish_wide) and of two (66001: sum_partials_wide). */
void ops_in_16_bit(void **state)
{
    struct clt_device *dev = *state;
    static const int64_t ew_big[][3] = {{1, 1, 0}, {1, 37, 0}, {1, 64, 0}, {1, 1000, 0}};
    static const int64_t ew_small[][3] = {{1, 1, 0}, {1, 37, 0}, {1, 64, 0}};
    static const int64_t axis_big[][3] = {{5, 19, 0},   {65, 3, 0},   {65, 8, 0},
                                          {4099, 3, 0}, {4099, 8, 0}, {3, 4099, 0},
                                          {7, 64, 0},   {65, 48, 0},  {4099, 16, 0}};
    static const int64_t axis_small[][3] = {{5, 19, 0}, {65, 3, 0}, {65, 4, 0},
                                            {3, 65, 0}, {5, 32, 0}, {65, 16, 0}};
    static const int64_t sums_big[][3] = {{1, 1, 0}, {1, 257, 0}, {1, 66001, 0}};
    static const int64_t sums_small[][3] = {{1, 1, 0}, {1, 257, 0}};
    const bool small = clt_test_small();
    const enum op ew[] = {OP_COPY, OP_ADD, OP_MUL, OP_SCALE};
    const enum op axis[] = {OP_BIAS, OP_SUM_ROWS, OP_MEAN_ROWS};
    const enum op sums[] = {OP_SUM, OP_MEAN};
    for (size_t k = 0; k < ST_STORAGES; k++) {
        enum clt_precision s = st_storages[k], was = clt__storage_set(dev, s);
        for (size_t o = 0; o < COUNT(ew); o++)
            run_shapes_st(dev, s, ew[o], small ? ew_small : ew_big,
                          small ? COUNT(ew_small) : COUNT(ew_big), false);
        for (size_t o = 0; o < COUNT(axis); o++)
            run_shapes_st(dev, s, axis[o], small ? axis_small : axis_big,
                          small ? COUNT(axis_small) : COUNT(axis_big), false);
        for (size_t o = 0; o < COUNT(sums); o++)
            run_shapes_st(dev, s, sums[o], small ? sums_small : sums_big,
                          small ? COUNT(sums_small) : COUNT(sums_big), false);
        clt__storage_set(dev, was);
    }
    st_report("ops_in_16_bit");
}

/* fill (exact: the value rounded once), axpy, mul_broadcast's ds (a product summed along the
 * rows) and outputs over their inputs, in fp16 and bf16. */
void fill_axpy_and_aliasing_in_16_bit(void **state)
{
    struct clt_device *dev = *state;
    const size_t rows = 67, cols = 13, n = rows * cols;
    for (size_t k = 0; k < ST_STORAGES; k++) {
        enum clt_precision s = st_storages[k], was = clt__storage_set(dev, s);
        const struct tol t = {ELEMENTWISE.atol + ST_ATOL, ELEMENTWISE.rtol + clt_test_eps(s)};
        float *a = st_input(n, 3, -1.0f, 1.0f, s), *y = st_input(n, 4, -1.0f, 1.0f, s);
        float *bias = st_input(cols, 5, -1.0f, 1.0f, s), *got = clt_test_floats(n);
        double *want = clt_test_doubles(n);
        struct tensor ta = tensor_new_st(dev, a, n, s), ty = tensor_new_st(dev, NULL, n, s);
        struct tensor tb = tensor_new_st(dev, bias, cols, s);
        struct problem p = {.s = s}; /* for assert_close */

        float value = 0.1f;
        assert_int_equal(clt__fill_forward(dev, (int64_t)n, value, tensor_buf(&ty)), CLT_OK);
        tensor_read(&ty, got, "fill");
        clt_test_round(&value, 1, s);
        for (size_t i = 0; i < n; i++)
            want[i] = value;
        assert_close(&p, "fill", got, want, n, (struct tol){0.0, 0.0});

        tensor_write(&ty, y);
        assert_int_equal(
            clt__axpy_forward(dev, (int64_t)n, -1.5f, tensor_buf(&ta), tensor_buf(&ty)), CLT_OK);
        tensor_read(&ty, got, "axpy");
        ref_axpy_forward(n, -1.5f, a, y, want);
        assert_close(&p, "axpy", got, want, n, t);

        tensor_write(&ty, y);
        assert_int_equal(
            clt__add_forward(dev, n, tensor_buf(&ta), tensor_buf(&ty), tensor_buf(&ty)), CLT_OK);
        tensor_read(&ty, got, "add in place");
        ref_add_forward(n, a, y, want);
        assert_close(&p, "add in place", got, want, n, t);
        memcpy(y, got, n * sizeof *y);
        assert_int_equal(clt__scale_forward(dev, n, 3.0f, tensor_buf(&ty), tensor_buf(&ty)),
                         CLT_OK);
        tensor_read(&ty, got, "scale in place");
        ref_scale_forward(n, 3.0f, y, want);
        assert_close(&p, "scale in place", got, want, n, t);
        memcpy(y, got, n * sizeof *y);
        assert_int_equal(
            clt__bias_forward(dev, rows, cols, tensor_buf(&ty), tensor_buf(&tb), tensor_buf(&ty)),
            CLT_OK);
        tensor_read(&ty, got, "bias in place");
        ref_bias_forward(rows, cols, y, bias, want);
        assert_close(&p, "bias in place", got, want, n, t);

        /* ds[c] = sum over rows of dy * x, 67 rows: sum_axis_part and _last, the product read
         * in the first round only; added to what ds holds. */
        memcpy(y, got, n * sizeof *y);
        size_t ws = (size_t)(clt__sum_axis_workspace_bytes(1, (int64_t)rows, (int64_t)cols) /
                             sizeof(float));
        struct tensor tws = tensor_new(dev, NULL, ws);
        tensor_write(&tb, bias);
        assert_int_equal(clt__mul_broadcast_backward(dev, rows, cols, tensor_buf(&ta), NONE,
                                                     tensor_buf(&ty), NONE, tensor_buf(&tb), 2u,
                                                     tensor_buf(&tws)),
                         CLT_OK);
        tensor_read(&tb, got, "mul_broadcast ds");
        for (size_t c = 0; c < cols; c++) {
            want[c] = bias[c];
            for (size_t r = 0; r < rows; r++)
                want[c] += (double)y[r * cols + c] * a[r * cols + c];
        }
        struct tol ts = sum_tol((int64_t)rows, 1.0);
        assert_close(&p, "mul_broadcast ds", got, want, cols,
                     (struct tol){ts.atol + ST_ATOL, ts.rtol + clt_test_eps(s)});
        tensor_free(&tws);
        tensor_free(&ta);
        tensor_free(&ty);
        tensor_free(&tb);
        free(a);
        free(y);
        free(bias);
        free(got);
        free(want);
        clt__storage_set(dev, was);
    }
}

/* The launchers check tensors in the storage's element size and workspaces in floats: n
 * elements of 16 bits fit a buffer that n floats would overflow. */
void buffers_are_checked_in_the_storage(void **state)
{
    struct clt_device *dev = *state;
    struct tensor t = tensor_new(dev, NULL, 2000); /* 2006 floats, 8024 bytes */
    struct clt__buf b = tensor_buf(&t), none = {NULL, 0};
    static struct clt_test_log log;
    struct clt_log saved = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &log, CLT_LOG_DEBUG};
    b.offset = 0;
    /* No two arguments of a launch overlap, but an output and its input in place. */
    struct clt__buf bias = {b.mem, 3000}, dbias = {b.mem, 2000};
    enum clt_precision was = clt__storage_set(dev, CLT_PRECISION_FP32);
    assert_int_equal(clt__copy_forward(dev, 3000, b, b), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__bias_forward(dev, 200, 15, b, bias, b), CLT_ERR_INVALID_ARGUMENT);
    for (size_t k = 0; k < ST_STORAGES; k++) {
        clt__storage_set(dev, st_storages[k]);
        assert_int_equal(clt__copy_forward(dev, 3000, b, b), CLT_OK);
        assert_int_equal(clt__bias_forward(dev, 200, 15, b, bias, b), CLT_OK);
        assert_int_equal(clt__copy_forward(dev, 4013, b, b), CLT_ERR_INVALID_ARGUMENT);
        /* 2000 rows sum in 32 chunks: 32 floats of workspace, which fit the 2006 floats of
         * the buffer from float 1974 on (past dy and dbias, 4002 bytes), not from 1975. */
        struct clt__buf ws = {b.mem, 1975};
        assert_int_equal(clt__bias_backward(dev, 2000, 1, b, none, dbias, false, ws),
                         CLT_ERR_INVALID_ARGUMENT);
        ws.offset = 1974;
        assert_int_equal(clt__bias_backward(dev, 2000, 1, b, none, dbias, false, ws), CLT_OK);
    }
    clt__storage_set(dev, was);
    assert_int_equal(clFinish(dev->queue), CL_SUCCESS);
    dev->log = saved;
    tensor_free(&t);
}
