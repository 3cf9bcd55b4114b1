/*
 * test_loss16.c: the loss family (cl/loss.cl) and attention (cl/attention.cl, and the GEMM
 * path of engine/ops/attention.c) in 16-bit storage (fp16 and bf16, docs/precision.md):
 * softmax (plain and causal, as attention's GEMM path runs it), log-softmax, cross-entropy, mse
 * and attention's two paths through their launchers, with the device's storage set
 * (clt__storage_set) and put back. The GEMM path is skipped while clt__gemm runs in fp32 only.
 * The fp32 builds are test_loss.c's and test_attention.c's, unchanged.
 *
 * Inputs are drawn as floats and rounded to the storage on the host; the C references
 * (test/ref_loss.c, test/ref_attention.c, in double) take the rounded inputs, so what is left is
 * the kernels' float arithmetic and the rounding of each stored output (unit roundoff eps: fp16
 * 2^-11 = 4.9e-4, bf16 2^-8 = 3.9e-3), and for the backward kernels the rounding of the stored
 * forward output they read (y, O) and of the result. Tolerances, |got - want| <= atol + k eps
 * |want|, the same k for fp16 and bf16; measured with CLTRAIN_TEST_MEASURE=1, which prints for
 * each comparison the k it needs and the atol / eps it needs at the k used (largest seen on
 * PoCL, rusticl and Oclgrind in brackets):
 *   softmax, log-softmax, causal softmax forward  k 1.5 [0.98: the output's rounding]; atol
 *                                                  1e-6 (softmax: fp16's subnormals, 2^-25) or
 *                                                  1e-5 (log-softmax: fp32's)
 *   softmax backward (plain, causal)               k 2, atol eps [0.28 eps]: the stored y is
 *                                                  rounded, an error of eps y |dy - y.dy|
 *   log-softmax backward                           k 2, atol 0.5 eps (1 + sqrt(cols)) [1.28 eps
 *                                                  at cols 101, 0.8 eps at 7]: exp of a rounded
 *                                                  y times sum(dy), which grows ~sqrt(cols)
 *   cross-entropy gradient                         k 1.5 [0.99], atol 1e-6 (fp32's)
 *   mse gradient                                   k 1.5 [0.995], atol 1e-7 (fp32's)
 *   cross-entropy and mse loss                     fp32's tolerances (rtol 1e-5): the loss is a
 *                                                  float computed in float from the rounded
 *                                                  inputs, never a 16-bit value
 *   attention                                      see test_loss16_attention.c
 * Inputs: x, logits in [-4, 4), rows of +-60 with one 1e4, logits of +-1e4 (cross-entropy);
 * dy, old gradients, q, k, v, dO in [-1, 1); mse's x and target in [-2, 2). Shapes are odd, tensors
 * sit between guard elements at non-zero offsets, gradients are written over NaN and accumulated
 * onto rounded values, ignored labels (-1) and labels out of range are mixed in.
 * storage16_is_the_one_read checks that 16-bit data read in another storage (the other 16-bit one,
 * or fp32) fail these comparisons: a kernel that ignored the storage could not pass;
 * sizes_are_checked_in_the_storage that launchers size the tensors by the storage and the loss,
 * workspaces and log-sum-exp as floats. A softmax that stores each exp and divides it in place
 * (rounding twice) fails the softmax forward's k 1.5.
 *
 * The loss family's tests are in this file, which lists every test; attention's in
 * test_loss16_attention.c; the guarded tensors and comparisons they share in loss16_rig.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "loss16_rig.h"
#include "ops/attention.h"
#include "ops/loss.h"
#include "ref_attention.h"
#include "ref_loss.h"

/* Labels in [0, classes), with ignored rows (-1) and out-of-range labels at every third row. */
static void make_labels(int32_t *labels, int64_t rows, int64_t classes, uint64_t seed)
{
    float *u = xmalloc((size_t)rows * sizeof *u);
    clt_test_fill(u, (size_t)rows, seed, 0.0f, 1.0f);
    for (int64_t r = 0; r < rows; r++)
        labels[r] = (int32_t)(u[r] * (float)classes) % (int32_t)classes;
    const int32_t odd[] = {-1, (int32_t)classes, -100, INT32_MAX, INT32_MIN, -1};
    for (int64_t r = 1; r < rows; r += 3)
        labels[r] = odd[(r / 3) % 6];
    free(u);
}

typedef enum clt_status (*rows_fwd_fn)(struct clt_device *, int64_t, int64_t, struct clt__buf,
                                       struct clt__buf);
typedef enum clt_status (*rows_bwd_fn)(struct clt_device *, int64_t, int64_t, struct clt__buf,
                                       struct clt__buf, struct clt__buf, bool);
typedef void (*ref_fwd_fn)(int64_t, int64_t, const float *, double *);
typedef void (*ref_bwd_fn)(int64_t, int64_t, const float *, const float *, double *);

struct softmax_kind {
    const char *name;
    rows_fwd_fn fwd;
    rows_bwd_fn bwd;
    ref_fwd_fn ref_fwd;
    ref_bwd_fn ref_bwd;
};

static const struct softmax_kind kinds[2] = {
    {"softmax", clt__softmax_forward, clt__softmax_backward, ref_softmax_forward,
     ref_softmax_backward},
    {"log_softmax", clt__log_softmax_forward, clt__log_softmax_backward, ref_log_softmax_forward,
     ref_log_softmax_backward},
};

static const int64_t big_shapes[][2] = {{1, 5}, {7, 13}, {33, 101}, {3, 1}, {130, 7}, {2, 4099}};
static const int64_t small_shapes[][2] = {{1, 5}, {7, 13}, {3, 1}, {3, 130}};

static size_t shapes(const int64_t (**out)[2])
{
    if (clt_test_small()) {
        *out = small_shapes;
        return sizeof small_shapes / sizeof small_shapes[0];
    }
    *out = big_shapes;
    return sizeof big_shapes / sizeof big_shapes[0];
}

struct ce_case {
    int64_t rows, classes;
    int32_t ignore_index;
    float smoothing;
    float dloss;
};

/* The reference of a causal softmax over [rows, cols] (row r: columns 0..r % cols live), or of
 * its backward when dy is given, one live prefix at a time. */
static void ref_softmax_causal(int64_t rows, int64_t cols, const float *x, const float *dy,
                               double *out)
{
    for (int64_t r = 0; r < rows; r++) {
        const int64_t live = r % cols + 1;
        if (dy)
            ref_softmax_backward(1, live, x + r * cols, dy + r * cols, out + r * cols);
        else
            ref_softmax_forward(1, live, x + r * cols, out + r * cols);
        for (int64_t j = live; j < cols; j++)
            out[r * cols + j] = 0.0;
    }
}

/* Forward, in place, backward writing and accumulating, of one kind (or of the causal softmax,
 * k NULL) in storage s, against the reference on the rounded inputs. */
static void check_rows16(struct clt_device *dev, const struct softmax_kind *k, int64_t rows,
                         int64_t cols, const float *x0, enum clt_precision s)
{
    size_t n = (size_t)(rows * cols);
    float *raw = xmalloc(n * sizeof *raw), *got = xmalloc(n * sizeof *got);
    double *want = xmalloc(n * sizeof *want);
    float *x = rounded(x0, n, s);
    clt_test_fill(raw, n, 7 + n, -1.0f, 1.0f);
    float *dy = rounded(raw, n, s);
    clt_test_fill(raw, n, 9 + n, -1.0f, 1.0f);
    float *dx0 = rounded(raw, n, s);
    struct st_tensor tx = st_new(dev, x, n, s), ty = st_new(dev, NULL, n, s);
    struct st_tensor tdy = st_new(dev, dy, n, s), tdx = st_new(dev, NULL, n, s);
    const bool causal = k == NULL, logk = k && k->fwd == clt__log_softmax_forward;
    const char *name = causal ? "causal softmax" : k->name;
    /* Tolerances: see the top of the file. */
    const double eps = clt_test_eps(s);
    const double fwd_atol = logk ? 1e-5 : 1e-6, fwd_k = 1.5;
    const double bwd_atol = logk ? 0.5 * eps * (1.0 + sqrt((double)cols)) : eps, bwd_k = 2.0;
    char what[160];

    snprintf(what, sizeof what, "%s %s forward [%lld, %lld]", st_name(s), name, (long long)rows,
             (long long)cols);
    if (causal) {
        assert_int_equal(clt__softmax_masked_forward(dev, rows, cols, true, tx.buf, ty.buf),
                         CLT_OK);
        ref_softmax_causal(rows, cols, x, NULL, want);
    } else {
        assert_int_equal(k->fwd(dev, rows, cols, tx.buf, ty.buf), CLT_OK);
        k->ref_fwd(rows, cols, x, want);
    }
    st_read(&ty, got, what);
    close16(what, got, want, n, s, fwd_atol, fwd_k);

    snprintf(what, sizeof what, "%s %s backward [%lld, %lld]", st_name(s), name, (long long)rows,
             (long long)cols);
    for (int acc = 0; acc < 2; acc++) {
        st_write(&tdx, acc ? dx0 : NULL);
        if (causal) {
            assert_int_equal(
                clt__softmax_masked_backward(dev, rows, cols, true, ty.buf, tdy.buf, tdx.buf, acc),
                CLT_OK);
            ref_softmax_causal(rows, cols, x, dy, want);
        } else {
            assert_int_equal(k->bwd(dev, rows, cols, ty.buf, tdy.buf, tdx.buf, acc), CLT_OK);
            k->ref_bwd(rows, cols, x, dy, want);
        }
        for (size_t i = 0; acc && i < n; i++)
            want[i] += dx0[i];
        st_read(&tdx, got, what);
        close16(what, got, want, n, s, bwd_atol, bwd_k);
    }

    snprintf(what, sizeof what, "%s %s forward in place [%lld, %lld]", st_name(s), name,
             (long long)rows, (long long)cols);
    if (causal) {
        assert_int_equal(clt__softmax_masked_forward(dev, rows, cols, true, tx.buf, tx.buf),
                         CLT_OK);
        ref_softmax_causal(rows, cols, x, NULL, want);
    } else {
        assert_int_equal(k->fwd(dev, rows, cols, tx.buf, tx.buf), CLT_OK);
        k->ref_fwd(rows, cols, x, want);
    }
    st_read(&tx, got, what);
    close16(what, got, want, n, s, fwd_atol, fwd_k);

    st_free(&tx);
    st_free(&ty);
    st_free(&tdy);
    st_free(&tdx);
    free(raw);
    free(x);
    free(dy);
    free(dx0);
    free(got);
    free(want);
}

static void softmax_16bit_storage(void **state)
{
    struct clt_device *dev = *state;
    const int64_t(*sh)[2];
    size_t count = shapes(&sh);
    for (int si = 0; si < 2; si++) {
        const enum clt_precision s = storages16[si];
        const enum clt_precision old = clt__storage_set(dev, s);
        for (size_t i = 0; i < count; i++) {
            size_t n = (size_t)(sh[i][0] * sh[i][1]);
            float *x = xmalloc(n * sizeof *x);
            clt_test_fill(x, n, 3 + n, -4.0f, 4.0f);
            for (int k = 0; k < 3; k++)
                check_rows16(dev, k < 2 ? &kinds[k] : NULL, sh[i][0], sh[i][1], x, s);
            free(x);
        }
        /* Logits of +-60 (one row 1e4 among -1e4 in fp16 range): large, as attention's
         * scores. */
        float big[4 * 37];
        clt_test_fill(big, 4 * 37, 5, -60.0f, 60.0f);
        big[3 * 37 + 17] = 1e4f;
        for (int k = 0; k < 3; k++)
            check_rows16(dev, k < 2 ? &kinds[k] : NULL, 4, 37, big, s);
        clt__storage_set(dev, old);
    }
}

/* Cross-entropy in storage s: forward (the loss a float, to fp32 arithmetic on the rounded
 * logits), backward writing over NaN and accumulating. */
static void check_cross_entropy16(struct clt_device *dev, const struct ce_case *c,
                                  const float *logits0, const int32_t *labels, enum clt_precision s)
{
    size_t n = (size_t)(c->rows * c->classes);
    size_t ws_floats = clt__cross_entropy_workspace_bytes(c->rows) / sizeof(float);
    float *logits = rounded(logits0, n, s), *got = xmalloc(n * sizeof *got);
    float *raw = xmalloc(n * sizeof *raw);
    clt_test_fill(raw, n, 17 + n, -1.0f, 1.0f);
    float *g0 = rounded(raw, n, s);
    double *want = xmalloc(n * sizeof *want);
    struct st_tensor tl = st_new(dev, logits, n, s), tg = st_new(dev, NULL, n, s);
    struct tensor tlab = tensor_new(dev, labels, (size_t)c->rows);
    struct tensor tws = tensor_new(dev, NULL, ws_floats), tloss = tensor_new(dev, NULL, 1);
    struct tensor tdloss = tensor_new(dev, &c->dloss, 1);
    char what[160];
    snprintf(what, sizeof what, "%s cross_entropy [%lld, %lld] ignore %d smoothing %g", st_name(s),
             (long long)c->rows, (long long)c->classes, (int)c->ignore_index, (double)c->smoothing);

    assert_int_equal(clt__cross_entropy_forward(dev, c->rows, c->classes, tl.buf, tlab.buf,
                                                c->ignore_index, c->smoothing, tws.buf, tloss.buf),
                     CLT_OK);
    float loss;
    tensor_read(&tloss, &loss, what);
    double want_loss = ref_cross_entropy(c->rows, c->classes, logits, labels, c->ignore_index,
                                         c->smoothing, c->dloss, want);
    clt_test_assert_close(what, &loss, &want_loss, 1, 1e-5, 1e-5);

    for (int acc = 0; acc < 2; acc++) {
        st_write(&tg, acc ? g0 : NULL);
        assert_int_equal(clt__cross_entropy_backward(dev, c->rows, c->classes, tl.buf, tlab.buf,
                                                     c->ignore_index, c->smoothing, tws.buf,
                                                     tdloss.buf, tg.buf, acc),
                         CLT_OK);
        st_read(&tg, got, what);
        for (size_t i = 0; acc && i < n; i++)
            want[i] += g0[i];
        close16(what, got, want, n, s, 1e-6, 1.5);
    }
    st_free(&tl);
    st_free(&tg);
    tensor_free(&tlab);
    tensor_free(&tws);
    tensor_free(&tloss);
    tensor_free(&tdloss);
    free(logits);
    free(got);
    free(raw);
    free(g0);
    free(want);
}

static void cross_entropy_16bit_storage(void **state)
{
    struct clt_device *dev = *state;
    const int64_t(*sh)[2];
    size_t count = shapes(&sh);
    for (int si = 0; si < 2; si++) {
        const enum clt_precision s = storages16[si];
        const enum clt_precision old = clt__storage_set(dev, s);
        for (size_t i = 0; i < count; i++)
            for (int variant = 0; variant < 2; variant++) {
                /* Ignored rows (-1) and out-of-range labels; then with smoothing and dloss. */
                struct ce_case c = {sh[i][0], sh[i][1], -1, variant ? 0.1f : 0.0f,
                                    variant ? 0.5f : 1.0f};
                size_t n = (size_t)(c.rows * c.classes);
                float *logits = xmalloc(n * sizeof *logits);
                int32_t *labels = xmalloc((size_t)c.rows * sizeof *labels);
                clt_test_fill(logits, n, 29 + n + (uint64_t)variant, -4.0f, 4.0f);
                make_labels(labels, c.rows, c.classes, 31 + n);
                check_cross_entropy16(dev, &c, logits, labels, s);
                free(logits);
                free(labels);
            }
        /* Logits of +-1e4 (the loss reaches 2e4: a float, not a 16-bit value). */
        float logits[5 * 11];
        int32_t labels[5] = {3, 0, 2, 10, -1};
        clt_test_fill(logits, 5 * 11, 77, -1.0f, 1.0f);
        for (int64_t j = 0; j < 5 * 11; j++)
            logits[j] = logits[j] < 0 ? -1e4f : 1e4f;
        logits[2 * 11 + 2] = -1e4f;
        struct ce_case c = {5, 11, -1, 0.1f, 1.0f};
        check_cross_entropy16(dev, &c, logits, labels, s);
        clt__storage_set(dev, old);
    }
}

/* mse in storage s: the loss a float to fp32 arithmetic, the gradient rounded once. */
static void mse_16bit_storage(void **state)
{
    struct clt_device *dev = *state;
    const int64_t big[] = {1, 5, 1025, 3001, 100003};
    const int64_t small[] = {1, 5, 1025, 2100};
    const bool is_small = clt_test_small();
    const size_t count = is_small ? sizeof small / sizeof small[0] : sizeof big / sizeof big[0];
    for (int si = 0; si < 2; si++) {
        const enum clt_precision s = storages16[si];
        const enum clt_precision old = clt__storage_set(dev, s);
        for (size_t c = 0; c < count; c++) {
            const int64_t n = is_small ? small[c] : big[c];
            const size_t m = (size_t)n, ws = clt__mse_workspace_bytes(n) / sizeof(float);
            const float dloss = c % 2 ? 0.5f : 1.0f;
            float *raw = xmalloc(m * sizeof *raw), *got = xmalloc(m * sizeof *got);
            clt_test_fill(raw, m, 61 + m, -2.0f, 2.0f);
            float *x = rounded(raw, m, s);
            clt_test_fill(raw, m, 67 + m, -2.0f, 2.0f);
            float *t = rounded(raw, m, s);
            clt_test_fill(raw, m, 71 + m, -1.0f, 1.0f);
            float *g0 = rounded(raw, m, s);
            double *want = xmalloc(m * sizeof *want);
            struct st_tensor tx = st_new(dev, x, m, s), tt = st_new(dev, t, m, s);
            struct st_tensor tg = st_new(dev, NULL, m, s);
            struct tensor tws = tensor_new(dev, NULL, ws), tloss = tensor_new(dev, NULL, 1);
            struct tensor tdloss = tensor_new(dev, &dloss, 1);
            char what[64];
            snprintf(what, sizeof what, "%s mse n=%lld", st_name(s), (long long)n);
            assert_int_equal(clt__mse_forward(dev, n, tx.buf, tt.buf, tws.buf, tloss.buf), CLT_OK);
            float loss;
            tensor_read(&tloss, &loss, what);
            double want_loss = ref_mse(n, x, t, dloss, want);
            clt_test_assert_close(what, &loss, &want_loss, 1, 1e-6, 1e-5);
            for (int acc = 0; acc < 2; acc++) {
                st_write(&tg, acc ? g0 : NULL);
                assert_int_equal(clt__mse_backward(dev, n, tx.buf, tt.buf, tdloss.buf, tg.buf, acc),
                                 CLT_OK);
                st_read(&tg, got, what);
                for (size_t i = 0; acc && i < m; i++)
                    want[i] += g0[i];
                close16(what, got, want, m, s, 1e-7, 1.5);
            }
            st_free(&tx);
            st_free(&tt);
            st_free(&tg);
            tensor_free(&tws);
            tensor_free(&tloss);
            tensor_free(&tdloss);
            free(raw);
            free(got);
            free(x);
            free(t);
            free(g0);
            free(want);
        }
        clt__storage_set(dev, old);
    }
}

/* The kernels read what dev->storage says: 16-bit data run in the other 16-bit storage, or in
 * fp32 (a kernel that ignored the storage), give a softmax, a loss and an attention output that
 * fail the tolerances above (values off by more than 4 eps relative), so the checks above
 * cannot pass with such a kernel. */
static void storage16_is_the_one_read(void **state)
{
    struct clt_device *dev = *state;
    const int64_t rows = 8, cols = 12; /* also attention's [1, 2, 4, 12] */
    const size_t n = (size_t)(rows * cols);
    float x[8 * 12], got[2 * (8 * 12 + 2 * GUARD)];
    double want[8 * 12], o[8 * 12], p[2 * 4 * 4];
    int32_t labels[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    clt_test_fill(x, n, 3, -4.0f, 4.0f);
    for (int si = 0; si < 2; si++)
        for (int wrong = 0; wrong < 2; wrong++) {
            const enum clt_precision s = storages16[si];
            const enum clt_precision other = wrong ? CLT_PRECISION_FP32 : storages16[1 - si];
            float *xr = rounded(x, n, s);
            /* Room for n floats each, as a kernel built for fp32 reads and writes. */
            struct st_tensor tx = st_new(dev, xr, 2 * n, s), ty = st_new(dev, NULL, 2 * n, s);
            struct st_tensor to = st_new(dev, NULL, 2 * n, s);
            struct tensor tlab = tensor_new(dev, labels, 8), tlse = tensor_new(dev, NULL, 8);
            struct tensor tws = tensor_new(dev, NULL, clt__cross_entropy_workspace_bytes(8) / 4);
            struct tensor tloss = tensor_new(dev, NULL, 1);
            ref_softmax_forward(rows, cols, xr, want);
            double want_loss = ref_cross_entropy(rows, cols, xr, labels, -1, 0.0, 1.0, NULL);
            const float scale = clt__attention_scale(12);
            ref_attention_forward(xr, xr, xr, 1, 2, 4, 12, scale, false, p, o);
            const enum clt_precision old = clt__storage_set(dev, other);
            assert_int_equal(clt__softmax_forward(dev, rows, cols, tx.buf, ty.buf), CLT_OK);
            assert_int_equal(clt__cross_entropy_forward(dev, rows, cols, tx.buf, tlab.buf, -1, 0.0f,
                                                        tws.buf, tloss.buf),
                             CLT_OK);
            assert_int_equal(clt__attention_flash_forward(dev, tx.buf, tx.buf, tx.buf, tlse.buf,
                                                          to.buf, 1, 2, 4, 12, scale, false),
                             CLT_OK);
            clt__storage_set(dev, old);
            float loss;
            tensor_read(&tloss, &loss, "loss");
            size_t off[2] = {0, 0};
            const struct st_tensor *outs[2] = {&ty, &to};
            const double *wants[2] = {want, o};
            for (int t = 0; t < 2; t++) {
                clt_test_get_st(&outs[t]->view, got, 2 * n + 2 * GUARD, s);
                for (size_t i = 0; i < n; i++) {
                    const double w = wants[t][i], e = fabs(got[GUARD + i] - w);
                    off[t] += !(e <= 1e-5 + 4.0 * clt_test_eps(s) * fabs(w));
                }
            }
            if (off[0] == 0 || off[1] == 0 || fabs(loss - want_loss) <= 1e-5 + 1e-5 * want_loss)
                fail_msg("%s data read as %s: %zu and %zu of %zu softmax and attention values "
                         "off, loss %g (right %g)",
                         st_name(s), other == CLT_PRECISION_FP32 ? "fp32" : st_name(other), off[0],
                         off[1], n, (double)loss, want_loss);
            st_free(&tx);
            st_free(&ty);
            st_free(&to);
            tensor_free(&tlab);
            tensor_free(&tlse);
            tensor_free(&tws);
            tensor_free(&tloss);
            free(xr);
        }
}

/* Launchers check the tensors of the plan in the storage's element size and the rest in 4
 * bytes: a buffer of exactly 12 16-bit elements holds a [3, 4] softmax, cross-entropy's logits,
 * mse's 12 values and attention's [1, 1, 3, 4] q, k, v, o in 16-bit storage, not in fp32; one
 * element short is refused, and so is a loss of 2 bytes (a float in every storage). */
static void sizes_are_checked_in_the_storage(void **state)
{
    struct clt_device *dev = *state;
    const enum clt_status bad = CLT_ERR_INVALID_ARGUMENT;
    float x[12];
    const int32_t labels[3] = {0, 1, 2};
    clt_test_fill(x, 12, 3, -1.0f, 1.0f);
    for (int si = 0; si < 2; si++) {
        const enum clt_precision s = storages16[si];
        struct clt_arena *exact, *two, *eight;
        assert_int_equal(clt_arena_create(dev, 24, &exact), CLT_OK);
        assert_int_equal(clt_arena_create(dev, 2, &two), CLT_OK);
        assert_int_equal(clt_arena_create(dev, 16, &eight), CLT_OK); /* P needs 9 */
        struct clt_view v = clt_test_tensor_st(exact, x, 12, s);
        struct clt__buf b = clt_test_buf_st(&v, s), b2 = {two->mem, 0}, short_b = b;
        short_b.offset += 1;
        struct tensor tlab = tensor_new(dev, labels, 3), tws = tensor_new(dev, NULL, 10);
        struct tensor tloss = tensor_new(dev, NULL, 1), tlse = tensor_new(dev, NULL, 3);
        const enum clt_precision old = clt__storage_set(dev, s);
        assert_int_equal(clt__softmax_forward(dev, 3, 4, b, b), CLT_OK);
        assert_int_equal(clt__log_softmax_backward(dev, 3, 4, b, b, b, true), CLT_OK);
        assert_int_equal(
            clt__cross_entropy_forward(dev, 3, 4, b, tlab.buf, -1, 0.0f, tws.buf, tloss.buf),
            CLT_OK);
        assert_int_equal(clt__mse_forward(dev, 12, b, b, tws.buf, tloss.buf), CLT_OK);
        assert_int_equal(
            clt__attention_flash_forward(dev, b, b, b, tlse.buf, b, 1, 1, 3, 4, 0.5f, true),
            CLT_OK);
        assert_int_equal(clt__softmax_forward(dev, 3, 4, b, short_b), bad);
        assert_int_equal(clt__mse_backward(dev, 12, b, short_b, tloss.buf, b, false), bad);
        assert_int_equal(clt__cross_entropy_forward(dev, 3, 4, b, tlab.buf, -1, 0.0f, tws.buf, b2),
                         bad);
        assert_int_equal(
            clt__attention_flash_forward(dev, b, b, b, tlse.buf, short_b, 1, 1, 3, 4, 0.5f, true),
            bad);
        struct clt__buf p = {eight->mem, 0};
        assert_int_equal(clt__attention_forward(dev, b, b, b, p, b, 1, 1, 1, 3, 4, 0.5f, true),
                         bad);
        clt__storage_set(dev, CLT_PRECISION_FP32);
        assert_int_equal(clt__softmax_forward(dev, 3, 4, b, b), bad);
        assert_int_equal(clt__mse_forward(dev, 12, b, b, tws.buf, tloss.buf), bad);
        clt__storage_set(dev, old);
        assert_int_equal(clt_device_finish(dev), CLT_OK);
        clt_arena_free(exact);
        clt_arena_free(two);
        tensor_free(&tlab);
        tensor_free(&tws);
        tensor_free(&tloss);
        tensor_free(&tlse);
        clt_arena_free(eight);
    }
}

/* A test of the 16-bit storage leaves the device in fp32 even when it fails half-way. */
static int storage_teardown(void **state)
{
    clt__storage_set(*state, CLT_PRECISION_FP32);
    return clt_test_teardown(state);
}
#define STORAGE_TEST(f) cmocka_unit_test_setup_teardown(f, clt_test_setup, storage_teardown)

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        STORAGE_TEST(softmax_16bit_storage),
        STORAGE_TEST(cross_entropy_16bit_storage),
        STORAGE_TEST(mse_16bit_storage),
        STORAGE_TEST(storage16_is_the_one_read),
        STORAGE_TEST(attention_tiled_16bit_storage),
        STORAGE_TEST(attention_gemm_16bit_storage),
        STORAGE_TEST(sizes_are_checked_in_the_storage),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
