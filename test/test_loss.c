/*
 * test_loss.c: the loss family (cl/loss.cl, engine/ops/loss.c) against its C reference:
 * softmax and log-softmax forward and backward, cross-entropy (ignore_index, labels out of
 * range, label smoothing, logits of magnitude 1e4, no counted row) and mean squared error;
 * finite differences of cross-entropy; results independent of the work-group size;
 * argument checking.
 *
 * Inputs are uniform: x and logits in [-4, 4), dy and old dx in [-1, 1), mse x and target in
 * [-2, 2). Tolerances, |got - want| <= atol + rtol |want|, against a double reference:
 *   softmax forward        atol 1e-6, rtol 1e-5   (float exp and division, values <= 1)
 *   log-softmax forward    atol 1e-5, rtol 1e-6   (values down to -15, abs error ~ulp(15))
 *   softmax backward       atol 2e-6, rtol 1e-4
 *   log-softmax backward   atol 1e-6 * (1 + sqrt(cols)), rtol 1e-4 (sum(dy) grows ~sqrt(cols))
 *   cross-entropy loss     atol 1e-5, rtol 1e-5;  gradient atol 1e-6, rtol 1e-4
 *   logits of +-1e4        as above: loss rtol 1e-5 (it reaches 2e4), gradient atol 1e-6
 *   no counted row         loss exactly 0, gradient exactly 0 (or the old dx, accumulating)
 *   mse loss               atol 1e-6, rtol 1e-5;  gradient atol 1e-7, rtol 1e-5
 * Finite differences (cross-entropy only, with ignored and out-of-range labels mixed in,
 * which test_ops.c does not draw; every op's plain finite-difference check is there):
 * central, eps 1e-3, of the double reference of the forward, against the device's backward:
 * atol 1e-4, rtol 1e-3 (truncation ~eps^2 and the float device gradient; a wrong term is off
 * by far more).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/loss.h"
#include "ref_loss.h"

#define IGNORE (-100)

/* ---- Device tensors ---------------------------------------------------------------------- */

/* Elements kept on each side of every device tensor, holding GUARD_VALUE: a kernel that
 * writes past its tensor is caught on every implementation, not only under Oclgrind. */
#define GUARD 3
#define GUARD_VALUE -1234.5f

/* count elements (F32 or I32) on the device, GUARD elements into a view of count + 2 GUARD in
 * an arena of their own. Each tensor has its own arena, always written whole in one piece
 * from the arena's start: Oclgrind 21.10 (--uninitialized) re-creates a buffer's shadow
 * memory on every host write, so tensors that share an arena would appear uninitialised
 * after a neighbour is written. */
struct tensor {
    struct clt_arena *arena;
    struct clt_view view;
    struct clt__buf buf; /* the data: buffer and element offset GUARD */
    size_t count;
    enum clt_dtype dtype;
};

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

/* Writes the guards and host[0..count) (NaN, or INT32_MIN for I32, where host is NULL). */
static void tensor_write(const struct tensor *t, const void *host)
{
    size_t total = t->count + 2 * GUARD;
    if (t->dtype == CLT_I32) {
        int32_t *all = xmalloc(total * sizeof *all);
        for (size_t i = 0; i < total; i++)
            all[i] = i < GUARD || i >= GUARD + t->count ? -12345 : INT32_MIN;
        if (host && t->count)
            memcpy(all + GUARD, host, t->count * sizeof *all);
        assert_int_equal(clt_view_write(&t->view, all, total * sizeof *all, NULL), CLT_OK);
        free(all);
        return;
    }
    float *all = xmalloc(total * sizeof *all);
    for (size_t i = 0; i < total; i++)
        all[i] = i < GUARD || i >= GUARD + t->count ? GUARD_VALUE : NAN;
    if (host && t->count)
        memcpy(all + GUARD, host, t->count * sizeof *all);
    assert_int_equal(clt_view_write(&t->view, all, total * sizeof *all, NULL), CLT_OK);
    free(all);
}

/* A tensor holding host[0..count) (NaN where host is NULL). */
static struct tensor tensor_new(struct clt_device *dev, enum clt_dtype dtype, const void *host,
                                size_t count)
{
    struct tensor t = {.count = count, .dtype = dtype};
    size_t total = count + 2 * GUARD;
    assert_int_equal(clt_arena_create(dev, total * 4 + 4096, &t.arena), CLT_OK);
    assert_int_equal(clt_arena_alloc(t.arena, dtype, 1, (int64_t[]){(int64_t)total}, &t.view),
                     CLT_OK);
    t.buf = clt__view_buf(&t.view);
    t.buf.offset += GUARD;
    tensor_write(&t, host);
    return t;
}

static struct tensor floats_new(struct clt_device *dev, const float *host, size_t count)
{
    return tensor_new(dev, CLT_F32, host, count);
}

/* Reads the count floats into host; fails when a guard changed. */
static void tensor_read(const struct tensor *t, float *host, const char *what)
{
    size_t total = t->count + 2 * GUARD;
    float *all = xmalloc(total * sizeof *all);
    clt_test_download(&t->view, all, total);
    for (size_t i = 0; i < GUARD; i++)
        if (all[i] != GUARD_VALUE || all[GUARD + t->count + i] != GUARD_VALUE)
            fail_msg("%s: a guard element next to the tensor was overwritten", what);
    memcpy(host, all + GUARD, t->count * sizeof *host);
    free(all);
}

static void tensor_free(struct tensor *t)
{
    clt_arena_free(t->arena);
    t->arena = NULL;
}

/* Labels in [0, classes), with ignored rows and out-of-range labels mixed in when `holes`. */
static void make_labels(int32_t *labels, int64_t rows, int64_t classes, uint64_t seed, bool holes)
{
    float *u = xmalloc((size_t)rows * sizeof *u);
    clt_test_fill(u, (size_t)rows, seed, 0.0f, 1.0f);
    for (int64_t r = 0; r < rows; r++)
        labels[r] = (int32_t)(u[r] * (float)classes) % (int32_t)classes;
    if (holes && rows >= 3) {
        const int32_t odd[] = {IGNORE, (int32_t)classes, -1, INT32_MAX, INT32_MIN, IGNORE};
        for (int64_t r = 1; r < rows; r += 3)
            labels[r] = odd[(r / 3) % 6];
    }
    free(u);
}

/* ---- Softmax and log-softmax -------------------------------------------------------------- */

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
    double fwd_atol, fwd_rtol;
};

static const struct softmax_kind kinds[2] = {
    {"softmax", clt__softmax_forward, clt__softmax_backward, ref_softmax_forward,
     ref_softmax_backward, 1e-6, 1e-5},
    {"log_softmax", clt__log_softmax_forward, clt__log_softmax_backward, ref_log_softmax_forward,
     ref_log_softmax_backward, 1e-5, 1e-6},
};

static double backward_atol(const struct softmax_kind *k, int64_t cols)
{
    return k->bwd == clt__softmax_backward ? 2e-6 : 1e-6 * (1.0 + sqrt((double)cols));
}

/* Forward, backward writing (dx NaN before) and backward accumulating, against the
 * reference, for one kind and shape; x given by the caller. */
static void check_rows(struct clt_device *dev, const struct softmax_kind *k, int64_t rows,
                       int64_t cols, const float *x)
{
    size_t n = (size_t)(rows * cols);
    float *dy = xmalloc(n * sizeof *dy), *dx0 = xmalloc(n * sizeof *dx0);
    float *got = xmalloc(n * sizeof *got);
    double *want = xmalloc(n * sizeof *want);
    clt_test_fill(dy, n, 7 + n, -1.0f, 1.0f);
    clt_test_fill(dx0, n, 9 + n, -1.0f, 1.0f);
    struct tensor tx = floats_new(dev, x, n), ty = floats_new(dev, NULL, n);
    struct tensor tdy = floats_new(dev, dy, n), tdx = floats_new(dev, NULL, n);
    char what[128];

    snprintf(what, sizeof what, "%s forward [%lld, %lld]", k->name, (long long)rows,
             (long long)cols);
    assert_int_equal(k->fwd(dev, rows, cols, tx.buf, ty.buf), CLT_OK);
    tensor_read(&ty, got, what);
    k->ref_fwd(rows, cols, x, want);
    clt_test_assert_close(what, got, want, n, k->fwd_atol, k->fwd_rtol);

    /* Writing: the old dx (NaN, from tensor_new) must not be read. */
    snprintf(what, sizeof what, "%s backward [%lld, %lld]", k->name, (long long)rows,
             (long long)cols);
    assert_int_equal(k->bwd(dev, rows, cols, ty.buf, tdy.buf, tdx.buf, false), CLT_OK);
    tensor_read(&tdx, got, what);
    k->ref_bwd(rows, cols, x, dy, want);
    clt_test_assert_close(what, got, want, n, backward_atol(k, cols), 1e-4);

    /* Accumulating onto dx0. */
    snprintf(what, sizeof what, "%s backward accumulate [%lld, %lld]", k->name, (long long)rows,
             (long long)cols);
    tensor_write(&tdx, dx0);
    assert_int_equal(k->bwd(dev, rows, cols, ty.buf, tdy.buf, tdx.buf, true), CLT_OK);
    tensor_read(&tdx, got, what);
    for (size_t i = 0; i < n; i++)
        want[i] += dx0[i];
    clt_test_assert_close(what, got, want, n, backward_atol(k, cols), 1e-4);

    /* In place: y = x. */
    snprintf(what, sizeof what, "%s forward in place [%lld, %lld]", k->name, (long long)rows,
             (long long)cols);
    assert_int_equal(k->fwd(dev, rows, cols, tx.buf, tx.buf), CLT_OK);
    tensor_read(&tx, got, what);
    k->ref_fwd(rows, cols, x, want);
    clt_test_assert_close(what, got, want, n, k->fwd_atol, k->fwd_rtol);

    tensor_free(&tx);
    tensor_free(&ty);
    tensor_free(&tdy);
    tensor_free(&tdx);
    free(dy);
    free(dx0);
    free(got);
    free(want);
}

static const int64_t big_shapes[][2] = {{1, 5}, {7, 13},  {33, 101}, {1, 1},
                                        {3, 1}, {130, 7}, {5, 1000}, {2, 4099}};
static const int64_t small_shapes[][2] = {{1, 5}, {7, 13}, {33, 101}, {1, 1}, {3, 130}};

static size_t shapes(const int64_t (**out)[2])
{
    if (clt_test_small()) {
        *out = small_shapes;
        return sizeof small_shapes / sizeof small_shapes[0];
    }
    *out = big_shapes;
    return sizeof big_shapes / sizeof big_shapes[0];
}

static void softmax_matches_reference(void **state)
{
    struct clt_device *dev = *state;
    const int64_t(*sh)[2];
    size_t count = shapes(&sh);
    for (size_t s = 0; s < count; s++) {
        size_t n = (size_t)(sh[s][0] * sh[s][1]);
        float *x = xmalloc(n * sizeof *x);
        clt_test_fill(x, n, 3 + n, -4.0f, 4.0f);
        for (int k = 0; k < 2; k++)
            check_rows(dev, &kinds[k], sh[s][0], sh[s][1], x);
        free(x);
    }
}

/* Rows of +-1e4, all 1e4, all -1e4, and one 1e4 among -1e4: finite and as the reference. */
static void softmax_extreme_inputs(void **state)
{
    struct clt_device *dev = *state;
    const int64_t rows = 4, cols = 37;
    float x[4 * 37];
    clt_test_fill(x, 37, 5, -1.0f, 1.0f);
    for (int64_t j = 0; j < cols; j++) {
        x[j] = x[j] < 0 ? -1e4f : 1e4f;
        x[cols + j] = 1e4f;
        x[2 * cols + j] = -1e4f;
        x[3 * cols + j] = j == 17 ? 1e4f : -1e4f;
    }
    for (int k = 0; k < 2; k++)
        check_rows(dev, &kinds[k], rows, cols, x);
}

/* ---- Cross-entropy ------------------------------------------------------------------------ */

struct ce_case {
    int64_t rows, classes;
    int32_t ignore_index;
    float smoothing;
    float dloss;
};

/* Runs forward then backward (writing over NaN, then accumulating) for given logits and
 * labels, checks both against the reference and that everything is finite. */
static void check_cross_entropy(struct clt_device *dev, const struct ce_case *c,
                                const float *logits, const int32_t *labels, double loss_atol,
                                double loss_rtol, double grad_atol, double grad_rtol)
{
    size_t n = (size_t)(c->rows * c->classes);
    size_t ws_floats = clt__cross_entropy_workspace_bytes(c->rows) / sizeof(float);
    float *got = xmalloc(n * sizeof *got), *g0 = xmalloc(n * sizeof *g0);
    double *want = xmalloc(n * sizeof *want);
    clt_test_fill(g0, n, 17 + n, -1.0f, 1.0f);
    struct tensor tl = floats_new(dev, logits, n);
    struct tensor tlab = tensor_new(dev, CLT_I32, labels, (size_t)c->rows);
    struct tensor tws = floats_new(dev, NULL, ws_floats), tloss = floats_new(dev, NULL, 1);
    struct tensor tdloss = floats_new(dev, &c->dloss, 1), tg = floats_new(dev, NULL, n);
    char what[160];
    snprintf(what, sizeof what, "cross_entropy [%lld, %lld] ignore %d smoothing %g",
             (long long)c->rows, (long long)c->classes, (int)c->ignore_index, (double)c->smoothing);

    assert_int_equal(clt__cross_entropy_forward(dev, c->rows, c->classes, tl.buf, tlab.buf,
                                                c->ignore_index, c->smoothing, tws.buf, tloss.buf),
                     CLT_OK);
    float loss;
    tensor_read(&tloss, &loss, what);
    double want_loss = ref_cross_entropy(c->rows, c->classes, logits, labels, c->ignore_index,
                                         c->smoothing, c->dloss, want);
    clt_test_assert_close(what, &loss, &want_loss, 1, loss_atol, loss_rtol);

    /* Writing over NaN. */
    assert_int_equal(clt__cross_entropy_backward(dev, c->rows, c->classes, tl.buf, tlab.buf,
                                                 c->ignore_index, c->smoothing, tws.buf, tdloss.buf,
                                                 tg.buf, false),
                     CLT_OK);
    tensor_read(&tg, got, what);
    clt_test_assert_close(what, got, want, n, grad_atol, grad_rtol);

    tensor_write(&tg, g0);
    assert_int_equal(clt__cross_entropy_backward(dev, c->rows, c->classes, tl.buf, tlab.buf,
                                                 c->ignore_index, c->smoothing, tws.buf, tdloss.buf,
                                                 tg.buf, true),
                     CLT_OK);
    tensor_read(&tg, got, what);
    for (size_t i = 0; i < n; i++)
        want[i] += g0[i];
    clt_test_assert_close(what, got, want, n, grad_atol, grad_rtol);

    tensor_free(&tl);
    tensor_free(&tlab);
    tensor_free(&tws);
    tensor_free(&tloss);
    tensor_free(&tdloss);
    tensor_free(&tg);
    free(got);
    free(g0);
    free(want);
}

static void cross_entropy_matches_reference(void **state)
{
    struct clt_device *dev = *state;
    const int64_t(*sh)[2];
    size_t count = shapes(&sh);
    for (size_t s = 0; s < count; s++)
        for (int variant = 0; variant < 4; variant++) {
            /* Variants: plain; holes (ignore_index, out-of-range labels) with smoothing;
             * smoothing alone; an ignore_index that is a real class (0). */
            struct ce_case c = {sh[s][0], sh[s][1], IGNORE, 0.0f, 1.0f};
            bool holes = variant == 1;
            if (variant == 1 || variant == 2)
                c.smoothing = 0.1f;
            if (variant == 2)
                c.dloss = 0.5f;
            if (variant == 3)
                c.ignore_index = 0;
            size_t n = (size_t)(c.rows * c.classes);
            float *logits = xmalloc(n * sizeof *logits);
            int32_t *labels = xmalloc((size_t)c.rows * sizeof *labels);
            clt_test_fill(logits, n, 29 + n + (uint64_t)variant, -4.0f, 4.0f);
            make_labels(labels, c.rows, c.classes, 31 + n, holes);
            check_cross_entropy(dev, &c, logits, labels, 1e-5, 1e-5, 1e-6, 1e-4);
            free(logits);
            free(labels);
        }
}

/* Logits of magnitude 1e4: random signs, a row all 1e4, the label on a -1e4 among 1e4 (a
 * loss of 2e4), with and without smoothing. */
static void cross_entropy_extreme_logits(void **state)
{
    struct clt_device *dev = *state;
    const int64_t rows = 5, classes = 11;
    float logits[5 * 11];
    int32_t labels[5] = {3, 0, 2, 10, 7};
    clt_test_fill(logits, 5 * 11, 77, -1.0f, 1.0f);
    for (int64_t i = 0; i < rows * classes; i++)
        logits[i] = logits[i] < 0 ? -1e4f : 1e4f;
    for (int64_t j = 0; j < classes; j++) {
        logits[1 * classes + j] = 1e4f;
        logits[2 * classes + j] = j == 2 ? -1e4f : 1e4f;
        logits[3 * classes + j] = j == 10 ? 1e4f : -1e4f;
    }
    for (int s = 0; s < 2; s++) {
        struct ce_case c = {rows, classes, IGNORE, s ? 0.1f : 0.0f, 1.0f};
        check_cross_entropy(dev, &c, logits, labels, 1e-5, 1e-5, 1e-6, 1e-4);
    }
}

/* No counted row: loss 0 and gradient 0, never NaN; and no rows at all. */
static void cross_entropy_nothing_counted(void **state)
{
    struct clt_device *dev = *state;
    float logits[3 * 4];
    clt_test_fill(logits, 12, 5, -4.0f, 4.0f);
    int32_t labels[3] = {IGNORE, 4, -7};
    struct ce_case c = {3, 4, IGNORE, 0.1f, 1.0f};
    check_cross_entropy(dev, &c, logits, labels, 0.0, 0.0, 0.0, 0.0);
    struct ce_case none = {0, 4, IGNORE, 0.0f, 1.0f};
    check_cross_entropy(dev, &none, logits, labels, 0.0, 0.0, 0.0, 0.0);
}

struct ce_ctx {
    const struct ce_case *c;
    const int32_t *labels;
};

static double ce_loss(void *ctx, const float *x, size_t n)
{
    (void)n;
    struct ce_ctx *e = ctx;
    return e->c->dloss * ref_cross_entropy(e->c->rows, e->c->classes, x, e->labels,
                                           e->c->ignore_index, e->c->smoothing, 1.0, NULL);
}

static void cross_entropy_gradcheck(void **state)
{
    struct clt_device *dev = *state;
    const struct ce_case cases[] = {
        {7, 13, IGNORE, 0.0f, 1.0f}, {7, 13, IGNORE, 0.1f, 0.7f}, {1, 5, IGNORE, 0.0f, 1.0f},
        {1, 5, IGNORE, 0.1f, -2.0f}, {10, 3, 1, 0.25f, 1.0f},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const struct ce_case *c = &cases[t];
        size_t n = (size_t)(c->rows * c->classes);
        float *x = xmalloc(n * sizeof *x), *grad = xmalloc(n * sizeof *grad);
        int32_t *labels = xmalloc((size_t)c->rows * sizeof *labels);
        clt_test_fill(x, n, 51 + t, -4.0f, 4.0f);
        make_labels(labels, c->rows, c->classes, 53 + t, true);
        struct tensor tx = floats_new(dev, x, n);
        struct tensor tlab = tensor_new(dev, CLT_I32, labels, (size_t)c->rows);
        struct tensor tws =
            floats_new(dev, NULL, clt__cross_entropy_workspace_bytes(c->rows) / sizeof(float));
        struct tensor tloss = floats_new(dev, NULL, 1), tdloss = floats_new(dev, &c->dloss, 1);
        struct tensor tg = floats_new(dev, NULL, n);
        assert_int_equal(clt__cross_entropy_forward(dev, c->rows, c->classes, tx.buf, tlab.buf,
                                                    c->ignore_index, c->smoothing, tws.buf,
                                                    tloss.buf),
                         CLT_OK);
        assert_int_equal(clt__cross_entropy_backward(dev, c->rows, c->classes, tx.buf, tlab.buf,
                                                     c->ignore_index, c->smoothing, tws.buf,
                                                     tdloss.buf, tg.buf, false),
                         CLT_OK);
        tensor_read(&tg, grad, "cross_entropy gradcheck");
        struct ce_ctx ctx = {c, labels};
        char what[128];
        snprintf(what, sizeof what, "cross_entropy gradcheck [%lld, %lld] smoothing %g",
                 (long long)c->rows, (long long)c->classes, (double)c->smoothing);
        clt_test_gradcheck(what, ce_loss, &ctx, x, n, grad, 64, 1e-3, 1e-4, 1e-3);
        tensor_free(&tx);
        tensor_free(&tlab);
        tensor_free(&tws);
        tensor_free(&tloss);
        tensor_free(&tdloss);
        tensor_free(&tg);
        free(x);
        free(grad);
        free(labels);
    }
}

/* ---- Mean squared error ------------------------------------------------------------------- */

static void check_mse(struct clt_device *dev, int64_t n, float dloss)
{
    size_t m = (size_t)n, ws = clt__mse_workspace_bytes(n) / sizeof(float);
    float *x = xmalloc(m * sizeof *x), *t = xmalloc(m * sizeof *t);
    float *got = xmalloc(m * sizeof *got), *g0 = xmalloc(m * sizeof *g0);
    double *want = xmalloc(m * sizeof *want);
    clt_test_fill(x, m, 61 + m, -2.0f, 2.0f);
    clt_test_fill(t, m, 67 + m, -2.0f, 2.0f);
    clt_test_fill(g0, m, 71 + m, -1.0f, 1.0f);
    struct tensor tx = floats_new(dev, x, m), tt = floats_new(dev, t, m);
    struct tensor tws = floats_new(dev, NULL, ws), tloss = floats_new(dev, NULL, 1);
    struct tensor tdloss = floats_new(dev, &dloss, 1), tg = floats_new(dev, NULL, m);
    char what[64];
    snprintf(what, sizeof what, "mse n=%lld", (long long)n);

    assert_int_equal(clt__mse_forward(dev, n, tx.buf, tt.buf, tws.buf, tloss.buf), CLT_OK);
    float loss;
    tensor_read(&tloss, &loss, what);
    double want_loss = ref_mse(n, x, t, dloss, want);
    clt_test_assert_close(what, &loss, &want_loss, 1, 1e-6, 1e-5);

    /* Writing over NaN. */
    assert_int_equal(clt__mse_backward(dev, n, tx.buf, tt.buf, tdloss.buf, tg.buf, false), CLT_OK);
    tensor_read(&tg, got, what);
    clt_test_assert_close(what, got, want, m, 1e-7, 1e-5);

    tensor_write(&tg, g0);
    assert_int_equal(clt__mse_backward(dev, n, tx.buf, tt.buf, tdloss.buf, tg.buf, true), CLT_OK);
    tensor_read(&tg, got, what);
    for (size_t i = 0; i < m; i++)
        want[i] += g0[i];
    clt_test_assert_close(what, got, want, m, 1e-7, 1e-5);

    tensor_free(&tx);
    tensor_free(&tt);
    tensor_free(&tws);
    tensor_free(&tloss);
    tensor_free(&tdloss);
    tensor_free(&tg);
    free(x);
    free(t);
    free(got);
    free(g0);
    free(want);
}

static void mse_matches_reference(void **state)
{
    struct clt_device *dev = *state;
    const int64_t big[] = {0, 1, 5, 1023, 1024, 1025, 3001, 100003};
    const int64_t small[] = {0, 1, 5, 1025, 2100};
    bool is_small = clt_test_small();
    size_t count = is_small ? sizeof small / sizeof small[0] : sizeof big / sizeof big[0];
    for (size_t i = 0; i < count; i++)
        check_mse(dev, is_small ? small[i] : big[i], i % 2 ? 0.5f : 1.0f);
}

/* ---- Work-group size independence --------------------------------------------------------- */

/* Local sizes to try: every one the kernel allows from a list, beyond the 64 lanes too. */
static size_t local_sizes(size_t wg, size_t *out)
{
    const size_t all[] = {1, 3, 16, 64, 128};
    size_t n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i] <= wg)
            out[n++] = all[i];
    return n;
}

/* log_softmax_forward (a row kernel of one group per row; softmax is one work-item per row)
 * and mse_partial + mse_finish launched by hand with other local sizes give bit for bit what
 * the launchers give. */
static void results_do_not_depend_on_local_size(void **state)
{
    struct clt_device *dev = *state;
    const cl_int rows = 3, cols = 301, n = 2500;
    const size_t count = (size_t)(rows * cols);
    float x[3 * 301], mx[2500], mt[2500], want[3 * 301], got[3 * 301];
    clt_test_fill(x, count, 91, -4.0f, 4.0f);
    clt_test_fill(mx, (size_t)n, 93, -2.0f, 2.0f);
    clt_test_fill(mt, (size_t)n, 95, -2.0f, 2.0f);
    struct tensor tx = floats_new(dev, x, count), ty = floats_new(dev, NULL, count);
    struct tensor tmx = floats_new(dev, mx, (size_t)n), tmt = floats_new(dev, mt, (size_t)n);
    struct tensor tws = floats_new(dev, NULL, clt__mse_workspace_bytes(n) / sizeof(float));
    struct tensor tloss = floats_new(dev, NULL, 1);

    assert_int_equal(clt__log_softmax_forward(dev, rows, cols, tx.buf, ty.buf), CLT_OK);
    tensor_read(&ty, want, "log_softmax");
    assert_int_equal(clt__mse_forward(dev, n, tmx.buf, tmt.buf, tws.buf, tloss.buf), CLT_OK);
    float want_loss, got_loss;
    tensor_read(&tloss, &want_loss, "mse");

    cl_kernel ksm, kpart, kfin;
    size_t wg_sm, wg_part, wg_fin, sizes[8];
    assert_int_equal(clt__kernel(dev, CLT__K_log_softmax_forward, &ksm, &wg_sm), CLT_OK);
    assert_int_equal(clt__kernel(dev, CLT__K_mse_partial, &kpart, &wg_part), CLT_OK);
    assert_int_equal(clt__kernel(dev, CLT__K_mse_finish, &kfin, &wg_fin), CLT_OK);
    const cl_int block = 1024; /* MSE_BLOCK of loss.c */

    size_t tries = local_sizes(wg_sm, sizes);
    for (size_t i = 0; i < tries; i++) {
        tensor_write(&ty, NULL);
        assert_int_equal(CLT__RUN_WG(dev, CLT__K_log_softmax_forward, (size_t)rows * sizes[i],
                                     sizes[i], CLT__I32(rows), CLT__I32(cols), CLT__BUF(tx.buf),
                                     CLT__BUF(ty.buf)),
                         CLT_OK);
        tensor_read(&ty, got, "log_softmax");
        if (memcmp(got, want, sizeof got) != 0)
            fail_msg("log_softmax_forward with local size %zu differs from the launcher's",
                     sizes[i]);
    }
    tries = local_sizes(wg_part < wg_fin ? wg_part : wg_fin, sizes);
    for (size_t i = 0; i < tries; i++) {
        tensor_write(&tws, NULL);
        /* ceil(2500 / 1024) = 3 blocks, then one group. */
        assert_int_equal(CLT__RUN_WG(dev, CLT__K_mse_partial, 3 * sizes[i], sizes[i], CLT__I32(n),
                                     CLT__I32(block), CLT__BUF(tmx.buf), CLT__BUF(tmt.buf),
                                     CLT__BUF(tws.buf)),
                         CLT_OK);
        assert_int_equal(CLT__RUN_WG(dev, CLT__K_mse_finish, sizes[i], sizes[i], CLT__I32(n),
                                     CLT__I32(block), CLT__BUF(tws.buf), CLT__BUF(tloss.buf)),
                         CLT_OK);
        tensor_read(&tloss, &got_loss, "mse");
        if (memcmp(&got_loss, &want_loss, sizeof got_loss) != 0)
            fail_msg("mse with local size %zu: %.9g, the launcher's %.9g", sizes[i],
                     (double)got_loss, (double)want_loss);
    }
    tensor_free(&tx);
    tensor_free(&ty);
    tensor_free(&tmx);
    tensor_free(&tmt);
    tensor_free(&tws);
    tensor_free(&tloss);
}

/* ---- Arguments ---------------------------------------------------------------------------- */

static void arguments_are_checked(void **state)
{
    struct clt_device *dev = *state;
    float twelve[12] = {0}, one_value = 1.0f;
    int32_t lab[3] = {0, 1, 2};
    struct tensor v = floats_new(dev, twelve, 12), s = floats_new(dev, &one_value, 1);
    struct tensor l = tensor_new(dev, CLT_I32, lab, 3), ws = floats_new(dev, NULL, 10);
    struct clt__buf b = v.buf, one = s.buf, bl = l.buf, bw = ws.buf;
    struct clt__buf null = {NULL, 0}, far = {b.mem, (size_t)INT32_MAX};
    const enum clt_status bad = CLT_ERR_INVALID_ARGUMENT;

    assert_int_equal(clt__softmax_forward(dev, 3, 4, b, b), CLT_OK);
    assert_int_equal(clt__softmax_forward(NULL, 3, 4, b, b), bad);
    assert_int_equal(clt__softmax_forward(dev, -1, 4, b, b), bad);
    assert_int_equal(clt__softmax_forward(dev, 3, 0, b, b), bad);
    assert_int_equal(clt__softmax_forward(dev, 3, 4, null, b), bad);
    assert_int_equal(clt__softmax_forward(dev, 3, 4, b, far), bad);
    /* The buffer holds 12 floats and its guards, far fewer than 1000 x 1000. */
    assert_int_equal(clt__log_softmax_forward(dev, 1000, 1000, b, b), bad);
    assert_int_equal(clt__softmax_backward(dev, 3, 4, b, b, null, false), bad);
    assert_int_equal(clt__log_softmax_backward(dev, (int64_t)1 << 40, 4, b, b, b, true), bad);

    assert_int_equal(clt__cross_entropy_workspace_bytes(3), 10 * sizeof(float));
    assert_int_equal(clt__cross_entropy_forward(dev, 3, 4, b, bl, IGNORE, 0.1f, bw, one), CLT_OK);
    assert_int_equal(clt__cross_entropy_forward(dev, 3, 4, b, bl, IGNORE, 1.0f, bw, one), bad);
    assert_int_equal(clt__cross_entropy_forward(dev, 3, 4, b, bl, IGNORE, -0.1f, bw, one), bad);
    assert_int_equal(clt__cross_entropy_forward(dev, 3, 4, b, bl, IGNORE, NAN, bw, one), bad);
    assert_int_equal(clt__cross_entropy_forward(dev, 3, 4, b, null, IGNORE, 0.0f, bw, one), bad);
    assert_int_equal(clt__cross_entropy_forward(dev, 3, 0, b, bl, IGNORE, 0.0f, bw, one), bad);
    assert_int_equal(
        clt__cross_entropy_backward(dev, 3, 4, b, bl, IGNORE, 0.0f, bw, null, b, false), bad);

    assert_int_equal(clt__mse_workspace_bytes(0), 0);
    assert_int_equal(clt__mse_workspace_bytes(1025), 2 * sizeof(float));
    assert_int_equal(clt__mse_forward(dev, 12, b, b, bw, one), CLT_OK);
    assert_int_equal(clt__mse_forward(dev, -1, b, b, bw, one), bad);
    assert_int_equal(clt__mse_forward(dev, 12, b, b, bw, null), bad);
    assert_int_equal(clt__mse_backward(dev, 12, b, b, one, null, false), bad);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    tensor_free(&v);
    tensor_free(&s);
    tensor_free(&l);
    tensor_free(&ws);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(softmax_matches_reference),
        CLT_DEVICE_TEST(softmax_extreme_inputs),
        CLT_DEVICE_TEST(cross_entropy_matches_reference),
        CLT_DEVICE_TEST(cross_entropy_extreme_logits),
        CLT_DEVICE_TEST(cross_entropy_nothing_counted),
        CLT_DEVICE_TEST(cross_entropy_gradcheck),
        CLT_DEVICE_TEST(mse_matches_reference),
        CLT_DEVICE_TEST(results_do_not_depend_on_local_size),
        CLT_DEVICE_TEST(arguments_are_checked),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
