/*
 * test_conv16.c: the convolution's helper kernels (im2col, col2im, pack, unpack, dbias)
 * in each storage (fp32, fp16, bf16) against references on the same rounded values, with
 * GPU-like lanes too, and buffers sized by the storage.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "conv_rig.h"
#include "ref_conv.h"

/* ==== 16-bit storage: the helper kernels ================================================ */

/* The 13 geometry arguments of the image kernels of cl/conv.cl (as engine/ops/conv.c). */
#define GEOMETRY(c)                                                                                \
    CLT__I32((c)->c_in), CLT__I32((c)->h), CLT__I32((c)->w), CLT__I32((c)->kh), CLT__I32((c)->kw), \
        CLT__I32((c)->stride_h), CLT__I32((c)->stride_w), CLT__I32((c)->pad_h),                    \
        CLT__I32((c)->pad_w), CLT__I32((c)->dil_h), CLT__I32((c)->dil_w), CLT__I32((c)->oh),       \
        CLT__I32((c)->ow)

/* Runs BODY for every element col[k, mm, oy, ox] of m images' columns (at = its index),
 * with `inside` true when it reads input element i of those images ([m, C_in, H, W]) and
 * false for the taps in the padding. */
#define FOR_EACH_TAP(c, m, BODY)                                                                   \
    for (int64_t k = 0; k < (c)->c_in * (c)->kh * (c)->kw; k++)                                    \
        for (int64_t mm = 0; mm < (m); mm++)                                                       \
            for (int64_t oy = 0; oy < (c)->oh; oy++)                                               \
                for (int64_t ox = 0; ox < (c)->ow; ox++) {                                         \
                    const int64_t ci = k / ((c)->kh * (c)->kw), ky = k / (c)->kw % (c)->kh;        \
                    const int64_t kx = k % (c)->kw;                                                \
                    const int64_t iy = oy * (c)->stride_h - (c)->pad_h + ky * (c)->dil_h;          \
                    const int64_t ix = ox * (c)->stride_w - (c)->pad_w + kx * (c)->dil_w;          \
                    const int64_t at = ((k * (m) + mm) * (c)->oh + oy) * (c)->ow + ox;             \
                    const bool inside = iy >= 0 && iy < (c)->h && ix >= 0 && ix < (c)->w;          \
                    const int64_t i = ((mm * (c)->c_in + ci) * (c)->h + iy) * (c)->w + ix;         \
                    BODY;                                                                          \
                }

static void check_st(const char *name, const char *what, enum clt_precision s,
                     const struct clt_view *v, const double *want, int64_t n, double atol,
                     double rtol)
{
    char label[200];
    snprintf(label, sizeof label, "conv2d %s (%s): %s", name, storage_name(s), what);
    float *got = clt_test_floats(n);
    clt_test_get_st(v, got, (size_t)n, s);
    clt_test_assert_close(label, got, want, (size_t)n, atol, rtol);
    free(got);
}

/* The helper kernels over the images 1.. of a case (0.. for batch 1), so that x and dx start
 * at a non-zero offset, with `lanes` lanes per row, in storage s (the device's, set by the
 * caller). */
static void helpers_case(struct clt_device *dev, const struct conv_case *cc, enum clt_precision s,
                         size_t lanes)
{
    struct clt__conv2d c = cc->c;
    assert_int_equal(clt__conv2d_resolve(NULL, &c), CLT_OK);
    const int64_t p = c.oh * c.ow, image_in = c.c_in * c.h * c.w, k = c.c_in * c.kh * c.kw;
    const int64_t first = c.n > 1 ? 1 : 0, m = c.n - first;
    const int64_t nx = c.n * image_in, ny = c.n * c.c_out * p, ncol = k * m * p;
    const int64_t nt = c.c_out * m * p;
    float *x = rounded(nx, 11 + (uint64_t)nx, s), *dcol = rounded(ncol, 13 + (uint64_t)ncol, s);
    float *dx0 = rounded(nx, 17, s), *dy = rounded(ny, 19 + (uint64_t)ny, s);
    float *yt = rounded(nt, 23, s), *bias = rounded(c.c_out, 29, s);
    float *db0 = rounded(c.c_out, 31, s);
    const int64_t most = ncol > ny ? ncol : ny;
    double *want = clt_test_doubles(most > nx ? most : nx);
    struct clt_arena *arena;
    const uint64_t elements = 3 * (uint64_t)nx + 2 * (uint64_t)ncol + 3 * (uint64_t)ny +
                              3 * (uint64_t)nt + 3 * (uint64_t)c.c_out + 64;
    assert_int_equal(clt_arena_create(dev, elements * 4 + (1 << 20), &arena), CLT_OK);
    (void)clt_test_tensor(arena, NULL, 3);
    struct clt_view vx = clt_test_tensor_st(arena, x, nx, s);
    const struct clt__buf x_first = {clt_test_buf_st(&vx, s).mem,
                                     clt_test_buf_st(&vx, s).offset + (size_t)(first * image_in)};
    const size_t g2[2] = {lanes, (size_t)(k * m)};

    /* im2col: a copy. */
    struct clt_view vcol = clt_test_tensor_st(arena, NULL, ncol, s);
    assert_int_equal(CLT__RUN_ND(dev, CLT__K_conv2d_im2col, 2, g2, GEOMETRY(&c), CLT__I32(m),
                                 CLT__BUF(x_first), CLT__BUF(clt_test_buf_st(&vcol, s))),
                     CLT_OK);
    FOR_EACH_TAP(&c, m, want[at] = inside ? (double)x[first * image_in + i] : 0.0);
    check_st(cc->name, "im2col", s, &vcol, want, ncol, 0.0, 0.0);

    /* col2im, written and accumulated: dx of images first.. (+)= the gather of dcol. */
    struct clt_view vdcol = clt_test_tensor_st(arena, dcol, ncol, s);
    for (int acc = 0; acc < 2; acc++) {
        struct clt_view vdx = clt_test_tensor_st(arena, acc ? dx0 : NULL, nx, s);
        const struct clt__buf dx_first = {clt_test_buf_st(&vdx, s).mem,
                                          clt_test_buf_st(&vdx, s).offset +
                                              (size_t)(first * image_in)};
        const size_t g[2] = {(size_t)c.h, (size_t)(m * c.c_in)};
        assert_int_equal(CLT__RUN_ND(dev, CLT__K_conv2d_col2im, 2, g, GEOMETRY(&c), CLT__I32(m),
                                     CLT__I32(acc), CLT__BUF(clt_test_buf_st(&vdcol, s)),
                                     CLT__BUF(dx_first)),
                         CLT_OK);
        /* Image 0 when first = 1: left as it was (NaN written, dx0 accumulated). */
        double *w1 = want + first * image_in;
        for (int64_t i = 0; i < m * image_in; i++)
            w1[i] = acc ? (double)dx0[first * image_in + i] : 0.0;
        FOR_EACH_TAP(&c, m, if (inside) w1[i] += (double)dcol[at]);
        float *got = clt_test_floats(nx);
        clt_test_get_st(&vdx, got, (size_t)nx, s);
        for (int64_t i = 0; i < first * image_in; i++)
            if (acc ? got[i] != dx0[i] : !isnan(got[i]))
                fail_msg("conv2d %s (%s): col2im changed dx outside its images at %lld", cc->name,
                         storage_name(s), (long long)i);
        char label[200];
        snprintf(label, sizeof label, "conv2d %s (%s): col2im %s", cc->name, storage_name(s),
                 acc ? "accumulated" : "written");
        clt_test_assert_close(label, got + first * image_in, w1, (size_t)(m * image_in),
                              tol(c.kh * c.kw + acc), rtol_of(s));
        free(got);
    }

    /* pack: dyt [C_out, M, P] = dy of images first.. transposed; a copy. */
    struct clt_view vdy = clt_test_tensor_st(arena, dy, ny, s);
    const struct clt__buf dy_first = {clt_test_buf_st(&vdy, s).mem,
                                      clt_test_buf_st(&vdy, s).offset +
                                          (size_t)(first * c.c_out * p)};
    struct clt_view vdyt = clt_test_tensor_st(arena, NULL, nt, s);
    const size_t g3[3] = {lanes, (size_t)m, (size_t)c.c_out};
    assert_int_equal(CLT__RUN_ND(dev, CLT__K_conv2d_pack, 3, g3, CLT__I32(m), CLT__I32(c.c_out),
                                 CLT__I32(p), CLT__BUF(dy_first),
                                 CLT__BUF(clt_test_buf_st(&vdyt, s))),
                     CLT_OK);
    for (int64_t co = 0; co < c.c_out; co++)
        for (int64_t mm = 0; mm < m; mm++)
            for (int64_t q = 0; q < p; q++)
                want[(co * m + mm) * p + q] = dy[((first + mm) * c.c_out + co) * p + q];
    check_st(cc->name, "pack", s, &vdyt, want, nt, 0.0, 0.0);

    /* unpack: y [M, C_out, P] = yt transposed, plus the bias or not; then in place for one
     * image (yt [C_out, 1, P] is y [1, C_out, P]). */
    struct clt_view vyt = clt_test_tensor_st(arena, yt, nt, s);
    struct clt_view vb = clt_test_tensor_st(arena, bias, c.c_out, s);
    const struct clt__buf none_b = {NULL, 0};
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        struct clt_view vy = clt_test_tensor_st(arena, NULL, nt, s);
        const size_t g[3] = {lanes, (size_t)c.c_out, (size_t)m};
        assert_int_equal(CLT__RUN_ND(dev, CLT__K_conv2d_unpack, 3, g, CLT__I32(m),
                                     CLT__I32(c.c_out), CLT__I32(p),
                                     CLT__BUF(clt_test_buf_st(&vyt, s)),
                                     CLT__BUF(with_bias ? clt_test_buf_st(&vb, s) : none_b),
                                     CLT__BUF(clt_test_buf_st(&vy, s))),
                         CLT_OK);
        for (int64_t mm = 0; mm < m; mm++)
            for (int64_t co = 0; co < c.c_out; co++)
                for (int64_t q = 0; q < p; q++)
                    want[(mm * c.c_out + co) * p + q] =
                        (double)yt[(co * m + mm) * p + q] + (with_bias ? (double)bias[co] : 0.0);
        check_st(cc->name, with_bias ? "unpack with bias" : "unpack", s, &vy, want, nt,
                 with_bias ? tol(1) : 0.0, with_bias ? rtol_of(s) : 0.0);
    }
    struct clt_view vone = clt_test_tensor_st(arena, yt, c.c_out * p, s);
    const size_t g1[3] = {lanes, (size_t)c.c_out, 1};
    assert_int_equal(CLT__RUN_ND(dev, CLT__K_conv2d_unpack, 3, g1, CLT__I32(1), CLT__I32(c.c_out),
                                 CLT__I32(p), CLT__BUF(clt_test_buf_st(&vone, s)),
                                 CLT__BUF(clt_test_buf_st(&vb, s)),
                                 CLT__BUF(clt_test_buf_st(&vone, s))),
                     CLT_OK);
    for (int64_t co = 0; co < c.c_out; co++)
        for (int64_t q = 0; q < p; q++)
            want[co * p + q] = (double)yt[co * p + q] + (double)bias[co];
    check_st(cc->name, "unpack in place", s, &vone, want, c.c_out * p, tol(1), rtol_of(s));

    /* dbias through the launcher (no GEMM), written and accumulated. */
    for (int acc = 0; acc < 2; acc++) {
        struct clt_view vdb = clt_test_tensor_st(arena, acc ? db0 : NULL, c.c_out, s);
        assert_int_equal(clt__conv2d_backward(dev, &c, none, none, clt_test_buf_st(&vdy, s), none,
                                              none, clt_test_buf_st(&vdb, s), none, none, acc),
                         CLT_OK);
        for (int64_t co = 0; co < c.c_out; co++) {
            want[co] = acc ? (double)db0[co] : 0.0;
            for (int64_t b = 0; b < c.n; b++)
                for (int64_t q = 0; q < p; q++)
                    want[co] += (double)dy[(b * c.c_out + co) * p + q];
        }
        check_st(cc->name, acc ? "dbias accumulated" : "dbias written", s, &vdb, want, c.c_out,
                 tol(c.n * p + acc), rtol_of(s));
    }

    clt_arena_free(arena);
    float *f[] = {x, dcol, dx0, dy, yt, bias, db0};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        free(f[i]);
    free(want);
}

/* Case i of the helper kernels, with one lane per row (i even) or 3 (as on a GPU, and not a
 * power of two). */
static void helpers_case_lanes(struct clt_device *dev, const struct conv_case *cc,
                               enum clt_precision s, size_t i)
{
    helpers_case(dev, cc, s, i % 2 ? 3 : 1);
}

/* The helper kernels in each storage. */
void helper_kernels_in_each_storage(void **state)
{
    each_storage_case(*state, helpers_case_lanes);
}

/* The launchers check tensors at the storage's element size: a dy and a dbias whose buffers
 * hold exactly their 16-bit elements pass in fp16, not in fp32. */
void buffers_sized_by_storage(void **state)
{
    struct clt_device *dev = *state;
    struct clt_test_log text = {0};
    struct clt_log saved = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_DEBUG};
    struct clt__conv2d c = CONV(2, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    assert_int_equal(clt__conv2d_resolve(NULL, &c), CLT_OK);
    const int64_t ny = c.n * c.c_out * c.oh * c.ow; /* 64: even, so the buffers are exact */
    struct clt_arena *a_dy, *a_db;
    assert_int_equal(clt_arena_create(dev, (uint64_t)ny * 2, &a_dy), CLT_OK);
    assert_int_equal(clt_arena_create(dev, (uint64_t)c.c_out * 2, &a_db), CLT_OK);
    float *dy = rounded(ny, 37, CLT_PRECISION_FP16);
    struct clt_view vdy = clt_test_tensor_st(a_dy, dy, ny, CLT_PRECISION_FP16);
    struct clt_view vdb = clt_test_tensor_st(a_db, NULL, c.c_out, CLT_PRECISION_FP16);
    const struct clt__buf bdy = clt_test_buf_st(&vdy, CLT_PRECISION_FP16);
    const struct clt__buf bdb = clt_test_buf_st(&vdb, CLT_PRECISION_FP16);
    const enum clt_precision was = clt__storage_set(dev, CLT_PRECISION_FP16);
    assert_int_equal(
        clt__conv2d_backward(dev, &c, none, none, bdy, none, none, bdb, none, none, false), CLT_OK);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    clt__storage_set(dev, CLT_PRECISION_FP32);
    assert_int_equal(
        clt__conv2d_backward(dev, &c, none, none, bdy, none, none, bdb, none, none, false),
        CLT_ERR_INVALID_ARGUMENT);
    clt__storage_set(dev, was);
    clt_arena_free(a_dy);
    clt_arena_free(a_db);
    free(dy);
    dev->log = saved;
}
