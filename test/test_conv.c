/*
 * test_conv.c: 2-D convolution against the C reference (ref_conv.c): forward with and
 * without bias, backward writing and accumulating, each gradient alone, for configurations
 * with stride, padding, dilation, groups, depthwise, 1x1, non-square kernels, batch 1, odd
 * sizes, and batches cut into chunks (the last one smaller); a finite-difference check of
 * every gradient; the choice of the chunk; argument checking.
 *
 * Data: x, weight, bias, dy uniform in [-1, 1). Tolerances, for a float sum of `terms`
 * products of magnitude < 1 against a double reference:
 *     |got - want| <= TOL_TERM * (terms + 1) + 1e-5 * |want|
 * with terms = C_in/G * KH * KW for y, C_out/G * KH * KW for dx, N * OH * OW for dweight
 * and dbias. Measured errors on PoCL and rusticl stay below a tenth of this.
 * Outputs written without accumulation start as NaN, so a kernel that reads them fails.
 *
 * 16-bit storage (fp16, bf16): the helper kernels of cl/conv.cl, launched directly, and
 * dbias through the launcher (the only pass without a GEMM; the full passes need clt__gemm
 * in 16 bits, tested with the trainer's 16-bit tests), on inputs rounded to the storage on
 * the host, against references on those values:
 *     im2col, pack, unpack without bias: copies, exact;
 *     unpack with bias, col2im (terms = KH * KW taps, plus dx's old value when
 *     accumulating), dbias (terms = N * OH * OW):
 *         |got - want| <= TOL_TERM * (terms + 1) + (1e-5 + u) |want|
 *     with u the storage's unit roundoff (fp16 2^-11 = 4.9e-4, bf16 2^-8 = 3.9e-3): the
 *     float sum is rounded once, when stored. Measured on PoCL: at most 1.0 u relative where
 *     |want| > 1e-3. A col2im that rounded dx to the storage after each tap fails this
 *     (tried: 113 of 297 values of the first case off in fp16), as does a kernel built for
 *     another storage (fp32 data read as 16 bits, or the reverse).
 * The helper kernels also run in fp32 under the same checks (tolerance TOL_REL relative).
 *
 * Kept columns (a batch in one chunk keeps its forward's columns for dweight): in fp32,
 * fp16 and bf16, forward, backward and a second dweight-only backward with the columns kept
 * give the same bits as with them made again (the workspace NaN before every call, so
 * dweight must read the kept ones, and the dx GEMM must leave them whole), written and
 * accumulated; the written run also against the reference, with u per term added to the
 * tolerance above and 2 (1e-5 + u) relative (the GEMMs' outputs are rounded to the storage
 * before the helpers sum them: yt before the bias, dcol before the taps, dweight before the
 * second call adds to it); a batch in several chunks cannot keep them.
 *
 * Finite differences: loss = sum(y * dy) computed by the double reference, which is linear
 * in each of x, weight and bias, so central differences with eps = 1e-2 are exact up to
 * double rounding; the device gradient must match them at the tolerance above.
 *
 * The fp32 tests and the argument checks are in this file, which lists every test; the
 * 16-bit helper kernels in test_conv16.c; kept columns in test_conv_kept.c; the cases and
 * checks they share in conv_rig.c.
 */
#include <string.h>

#include "conv_rig.h"
#include "ref_conv.h"

static void forward_and_backward(void **state)
{
    struct clt_device *dev = *state;
    bool small = clt_test_small();
    const struct conv_case *cases = small ? small_cases : full_cases;
    size_t count = small ? sizeof small_cases / sizeof small_cases[0]
                         : sizeof full_cases / sizeof full_cases[0];
    for (size_t i = 0; i < count; i++)
        check_case(dev, &cases[i]);
}

/* The helper kernels with up to 32 lanes per row, as on a GPU (clt__row_lanes), over the
 * small cases: the device is told it is a GPU for the time of the test. */
static void gpu_lanes(void **state)
{
    struct clt_device *dev = *state;
    const enum clt_device_type saved = dev->info.type;
    dev->info.type = CLT_DEVICE_GPU;
    assert_int_equal(clt__row_lanes(dev, 5), 8);
    for (size_t i = 0; i < sizeof small_cases / sizeof small_cases[0]; i++)
        check_case(dev, &small_cases[i]);
    dev->info.type = saved;
}

static void resolve_checks_parameters(void **state)
{
    (void)state;
    struct clt_test_log text = {0};
    struct clt_log quiet = {clt_test_log_fn, &text, CLT_LOG_DEBUG};
    struct clt__conv2d c = CONV(2, 4, 9, 7, 6, 3, 3, 2, 1, 1, 0, 1, 2, 2);
    assert_int_equal(clt__conv2d_resolve(&quiet, &c), CLT_OK);
    assert_int_equal(c.oh, (9 + 2 - 2 - 1) / 2 + 1);
    assert_int_equal(c.ow, (7 + 0 - 4 - 1) / 1 + 1);
    /* The whole batch in one chunk: its columns (C_in * KH * KW rows) and its GEMM output
     * (C_out rows), each of N * OH * OW columns. */
    assert_int_equal(c.chunk, 2);
    assert_int_equal(clt__conv2d_workspace_bytes(&c), 2 * (4 * 3 * 3 + 6) * c.oh * c.ow * 4);
    struct clt__conv2d p = CONV(2, 4, 9, 7, 6, 1, 1, 1, 1, 0, 0, 3, 3, 2);
    assert_int_equal(clt__conv2d_workspace_bytes(&p), 2 * (4 + 6) * 9 * 7 * 4);
    /* A batch whose columns pass the cap: 1000 images of (16 * 9 + 32) * 28 * 28 floats take
     * 9 chunks of at most 121 images, spread evenly: 112 each (the last 104). */
    struct clt__conv2d big = CONV(1000, 16, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    assert_int_equal(clt__conv2d_resolve(&quiet, &big), CLT_OK);
    const uint64_t image_bytes = (16 * 9 + 32) * 28 * 28 * 4;
    assert_int_equal(CLT__CONV2D_WORKSPACE_CAP / image_bytes, 121);
    assert_int_equal(big.chunk, 112);
    assert_int_equal(clt__conv2d_workspace_bytes(&big), 112 * image_bytes);
    /* One image past the cap still runs, one at a time. */
    struct clt__conv2d huge = CONV(3, 64, 256, 256, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    assert_int_equal(clt__conv2d_resolve(&quiet, &huge), CLT_OK);
    assert_int_equal(huge.chunk, 1);
    /* A chunk given is kept, or cut to the batch. */
    struct clt__conv2d given = CONV_CHUNK(3, 10, 2, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    assert_int_equal(clt__conv2d_resolve(&quiet, &given), CLT_OK);
    assert_int_equal(given.chunk, 3);
    assert_int_equal(clt__conv2d_workspace_bytes(&given), 3 * (2 * 9 + 2) * 25 * 4);
    given = CONV_CHUNK(30, 10, 2, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    assert_int_equal(clt__conv2d_resolve(&quiet, &given), CLT_OK);
    assert_int_equal(given.chunk, 10);

    struct clt__conv2d bad[] = {
        CONV(2, 4, 9, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 3),  /* groups divide neither */
        CONV(2, 4, 9, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 2),  /* groups do not divide C_out */
        CONV(2, 4, 9, 7, 6, 3, 3, 0, 1, 1, 1, 1, 1, 1),  /* stride 0 */
        CONV(2, 4, 9, 7, 6, 3, 3, 1, 1, -1, 1, 1, 1, 1), /* negative padding */
        CONV(2, 4, 9, 7, 6, 3, 3, 1, 1, 1, 1, 0, 1, 1),  /* dilation 0 */
        CONV(-1, 4, 9, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1), /* negative batch */
        CONV(2, 0, 9, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1),  /* no channels */
        CONV(2, 4, 2, 7, 6, 3, 3, 1, 1, 0, 0, 1, 1, 1),  /* kernel taller than the input */
        CONV(2, 4, 5, 7, 6, 3, 3, 1, 1, 0, 0, 3, 1, 1),  /* dilated kernel too tall */
        CONV(1 << 20, 4, 1 << 10, 1 << 10, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1), /* 2^42 elements */
        CONV(1, 1, (int64_t)1 << 32, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1),    /* H beyond int */
        CONV_CHUNK(-1, 2, 4, 9, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1),         /* negative chunk */
        /* a chunk of 2^16 images of 40960 floats: a workspace of 2^31 floats or more */
        CONV_CHUNK(1 << 16, 1 << 16, 1, 64, 64, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(clt__conv2d_resolve(&quiet, &bad[i]), CLT_ERR_INVALID_ARGUMENT);
        assert_int_equal(clt__conv2d_workspace_bytes(&bad[i]), 0);
    }
    assert_non_null(strstr(text.text, "conv2d: impossible parameters"));
    assert_non_null(strstr(text.text, "larger than the padded input"));
    assert_non_null(strstr(text.text, "2^31 elements or more"));
    assert_non_null(strstr(text.text, "the workspace of a chunk of 65536 images"));
}

static void launchers_check_buffers(void **state)
{
    struct clt_device *dev = *state;
    struct clt_test_log text = {0};
    struct clt_log saved = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_DEBUG};
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, 1 << 16, &arena), CLT_OK);
    /* Distinct zeroed tensors: b for inputs, o for outputs, t for the workspace. */
    float zeros[512] = {0};
    struct clt_view vb = clt_test_tensor(arena, zeros, 512),
                    vo = clt_test_tensor(arena, zeros, 512);
    struct clt_view vt = clt_test_tensor(arena, zeros, 512);
    struct clt__buf b = buf(&vb), o = buf(&vo), t = buf(&vt);
    struct clt__conv2d c = CONV(1, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    assert_int_equal(clt__conv2d_forward(dev, &c, none, b, none, o, t, none),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "x is NULL"));
    /* A 3x3 kernel needs the workspace. */
    assert_int_equal(clt__conv2d_forward(dev, &c, b, b, none, o, none, none),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "workspace is NULL"));
    assert_int_equal(clt__conv2d_backward(dev, &c, b, none, b, o, none, none, t, none, false),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "weight (needed for dx) is NULL"));
    assert_int_equal(clt__conv2d_backward(dev, &c, none, b, b, none, o, none, t, none, false),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "x (needed for dweight) is NULL"));
    struct clt__buf far = {b.mem, (size_t)INT32_MAX - 10};
    assert_int_equal(clt__conv2d_forward(dev, &c, far, b, none, o, t, none),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "beyond element 2^31"));
    struct clt__conv2d wrong = c;
    wrong.groups = 3;
    assert_int_equal(clt__conv2d_forward(dev, &wrong, b, b, none, o, t, none),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__conv2d_forward(NULL, &c, b, b, none, o, t, none),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__conv2d_forward(dev, NULL, b, b, none, o, t, none),
                     CLT_ERR_INVALID_ARGUMENT);
    /* A 1x1 kernel needs the workspace too; dbias alone does not. */
    struct clt__conv2d p = CONV(1, 2, 4, 4, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1);
    assert_int_equal(clt__conv2d_forward(dev, &p, b, b, b, o, none, none),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__conv2d_forward(dev, &p, b, b, b, o, t, none), CLT_OK);
    assert_int_equal(clt__conv2d_backward(dev, &c, none, none, b, none, none, o, none, none, false),
                     CLT_OK);
    /* An empty batch enqueues nothing. */
    struct clt__conv2d empty = c;
    empty.n = 0;
    assert_int_equal(clt__conv2d_forward(dev, &empty, b, b, none, o, t, none), CLT_OK);
    assert_int_equal(clt__conv2d_backward(dev, &empty, b, b, b, o, o, o, t, none, false), CLT_OK);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    clt_arena_free(arena);
    dev->log = saved;
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(resolve_checks_parameters),      CLT_DEVICE_TEST(launchers_check_buffers),
        CLT_DEVICE_TEST(forward_and_backward),           CLT_DEVICE_TEST(gpu_lanes),
        CLT_DEVICE_TEST(helper_kernels_in_each_storage), CLT_DEVICE_TEST(buffers_sized_by_storage),
        CLT_DEVICE_TEST(kept_columns_in_each_storage),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
