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
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/pool.h"
#include "ref_conv.h"

#define TOL_TERM 5e-7
#define TOL_REL 1e-5

static double tol(int64_t terms)
{
    return TOL_TERM * (double)(terms + 1);
}

struct conv_case {
    const char *name;
    struct clt__conv2d c;
    bool bias;
};

/* Host tensors of one case. */
struct host {
    struct clt__conv2d c;
    int64_t nx, ny, nw, nb;
    float *x, *w, *b, *dy;
    float *y, *dx, *dw, *db; /* device results */
    float *dx0, *dw0, *db0;  /* starting values for accumulation */
    double *y_ref, *dx_ref, *dw_ref, *db_ref;
    double *scratch; /* [ny] for the finite-difference loss */
};

static void host_init(struct host *h, const struct conv_case *cc)
{
    memset(h, 0, sizeof *h);
    h->c = cc->c;
    assert_int_equal(clt__conv2d_resolve(NULL, &h->c), CLT_OK);
    const struct clt__conv2d *c = &h->c;
    h->nx = c->n * c->c_in * c->h * c->w;
    h->ny = c->n * c->c_out * c->oh * c->ow;
    h->nw = c->c_out * (c->c_in / c->groups) * c->kh * c->kw;
    h->nb = c->c_out;
    h->x = clt_test_floats(h->nx);
    h->w = clt_test_floats(h->nw);
    h->b = clt_test_floats(h->nb);
    h->dy = clt_test_floats(h->ny);
    h->y = clt_test_floats(h->ny);
    h->dx = clt_test_floats(h->nx);
    h->dw = clt_test_floats(h->nw);
    h->db = clt_test_floats(h->nb);
    h->dx0 = clt_test_floats(h->nx);
    h->dw0 = clt_test_floats(h->nw);
    h->db0 = clt_test_floats(h->nb);
    h->y_ref = clt_test_doubles(h->ny);
    h->dx_ref = clt_test_doubles(h->nx);
    h->dw_ref = clt_test_doubles(h->nw);
    h->db_ref = clt_test_doubles(h->nb);
    h->scratch = clt_test_doubles(h->ny);
    clt_test_fill(h->x, h->nx, 101 + h->nx, -1.0f, 1.0f);
    clt_test_fill(h->w, h->nw, 202 + h->nw, -1.0f, 1.0f);
    clt_test_fill(h->b, h->nb, 303, -1.0f, 1.0f);
    clt_test_fill(h->dy, h->ny, 404 + h->ny, -1.0f, 1.0f);
    clt_test_fill(h->dx0, h->nx, 505, -1.0f, 1.0f);
    clt_test_fill(h->dw0, h->nw, 606, -1.0f, 1.0f);
    clt_test_fill(h->db0, h->nb, 707, -1.0f, 1.0f);
    ref_conv2d_forward(c, h->x, h->w, cc->bias ? h->b : NULL, h->y_ref);
    ref_conv2d_backward(c, h->x, h->w, h->dy, h->dx_ref, h->dw_ref, h->db_ref);
}

static void host_free(struct host *h)
{
    float *f[] = {h->x, h->w, h->b, h->dy, h->y, h->dx, h->dw, h->db, h->dx0, h->dw0, h->db0};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        free(f[i]);
    double *d[] = {h->y_ref, h->dx_ref, h->dw_ref, h->db_ref, h->scratch};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        free(d[i]);
}

/* Device tensors of one case, at non-zero offsets of one arena. */
struct device {
    struct clt_arena *arena;
    struct clt_view x, w, b, y, dy, dx, dw, db, ws;
    bool has_ws;
    int64_t nws; /* floats of workspace */
};

static void device_init(struct clt_device *dev, struct device *d, const struct host *h)
{
    uint64_t ws = clt__conv2d_workspace_bytes(&h->c);
    uint64_t floats_needed = 2 * (uint64_t)(h->nx + h->ny + h->nw + h->nb) + ws / 4 + 16;
    assert_int_equal(clt_arena_create(dev, floats_needed * 4 + 65536, &d->arena), CLT_OK);
    /* A small first view puts every tensor at a non-zero offset. */
    (void)clt_test_tensor(d->arena, NULL, 3);
    d->x = clt_test_tensor(d->arena, h->x, h->nx);
    d->w = clt_test_tensor(d->arena, h->w, h->nw);
    d->b = clt_test_tensor(d->arena, h->b, h->nb);
    d->dy = clt_test_tensor(d->arena, h->dy, h->ny);
    d->y = clt_test_tensor(d->arena, NULL, h->ny);
    d->dx = clt_test_tensor(d->arena, NULL, h->nx);
    d->dw = clt_test_tensor(d->arena, NULL, h->nw);
    d->db = clt_test_tensor(d->arena, NULL, h->nb);
    d->has_ws = ws > 0;
    d->nws = (int64_t)(ws / 4);
    if (d->has_ws)
        d->ws = clt_test_tensor(d->arena, NULL, d->nws);
}

static struct clt__buf buf(const struct clt_view *v)
{
    return clt__view_buf(v);
}

static const struct clt__buf none = {NULL, 0};

static struct clt__buf ws_buf(const struct device *d)
{
    return d->has_ws ? buf(&d->ws) : none;
}

static void download(const struct clt_view *v, float *p, int64_t n)
{
    clt_test_download(v, p, (size_t)n);
}

/* Term counts of each output's sum (see the tolerance above). */
static int64_t terms_y(const struct clt__conv2d *c)
{
    return c->c_in / c->groups * c->kh * c->kw;
}
static int64_t terms_dx(const struct clt__conv2d *c)
{
    return c->c_out / c->groups * c->kh * c->kw;
}
static int64_t terms_dw(const struct clt__conv2d *c)
{
    return c->n * c->oh * c->ow;
}

/* want = base + ref, where base may be NULL. */
static double *plus(const float *base, const double *ref, int64_t n)
{
    double *out = clt_test_doubles(n);
    for (int64_t i = 0; i < n; i++)
        out[i] = (base ? (double)base[i] : 0.0) + ref[i];
    return out;
}

static void compare(const char *case_name, const char *what, const float *got, const float *base,
                    const double *ref, int64_t n, int64_t terms)
{
    char label[200];
    snprintf(label, sizeof label, "conv2d %s: %s", case_name, what);
    double *want = plus(base, ref, n);
    clt_test_assert_close(label, got, want, (size_t)n, tol(terms), TOL_REL);
    free(want);
}

static void check_forward(struct clt_device *dev, const struct conv_case *cc, struct host *h,
                          struct device *d)
{
    clt_test_put_nan(&d->y, h->ny);
    if (d->has_ws)
        clt_test_put_nan(&d->ws, d->nws);
    assert_int_equal(clt__conv2d_forward(dev, &h->c, buf(&d->x), buf(&d->w),
                                         cc->bias ? buf(&d->b) : none, buf(&d->y), ws_buf(d), none),
                     CLT_OK);
    download(&d->y, h->y, h->ny);
    compare(cc->name, "y", h->y, NULL, h->y_ref, h->ny, terms_y(&h->c));
}

/* Runs the backward pass into NaN-filled (accumulate false) or dx0/dw0/db0-filled
 * gradients, with each gradient wanted or not, and compares the wanted ones. */
static void check_backward(struct clt_device *dev, const struct conv_case *cc, struct host *h,
                           struct device *d, bool accumulate, bool want_dx, bool want_dw,
                           bool want_db)
{
    const struct clt__conv2d *c = &h->c;
    if (accumulate) {
        clt_test_put(&d->dx, h->dx0, h->nx);
        clt_test_put(&d->dw, h->dw0, h->nw);
        clt_test_put(&d->db, h->db0, h->nb);
    } else {
        clt_test_put_nan(&d->dx, h->nx);
        clt_test_put_nan(&d->dw, h->nw);
        clt_test_put_nan(&d->db, h->nb);
    }
    /* The launcher must write the workspace before it reads it. */
    if (d->has_ws)
        clt_test_put_nan(&d->ws, d->nws);
    /* x is passed only when dweight needs it, weight only when dx does. */
    assert_int_equal(clt__conv2d_backward(
                         dev, c, want_dw ? buf(&d->x) : none, want_dx ? buf(&d->w) : none,
                         buf(&d->dy), want_dx ? buf(&d->dx) : none, want_dw ? buf(&d->dw) : none,
                         want_db ? buf(&d->db) : none, ws_buf(d), none, accumulate),
                     CLT_OK);
    char what[64];
    const char *mode = accumulate ? "accumulated" : "written";
    if (want_dx) {
        download(&d->dx, h->dx, h->nx);
        snprintf(what, sizeof what, "dx %s", mode);
        compare(cc->name, what, h->dx, accumulate ? h->dx0 : NULL, h->dx_ref, h->nx, terms_dx(c));
    }
    if (want_dw) {
        download(&d->dw, h->dw, h->nw);
        snprintf(what, sizeof what, "dweight %s", mode);
        compare(cc->name, what, h->dw, accumulate ? h->dw0 : NULL, h->dw_ref, h->nw, terms_dw(c));
    }
    if (want_db) {
        download(&d->db, h->db, h->nb);
        snprintf(what, sizeof what, "dbias %s", mode);
        compare(cc->name, what, h->db, accumulate ? h->db0 : NULL, h->db_ref, h->nb, terms_dw(c));
    }
}

/* loss = sum(y * dy) by the reference; the perturbed tensor is one of h's, in place. */
static double loss_fn(void *ctx, const float *unused, size_t n)
{
    (void)unused;
    (void)n;
    struct host *h = ctx;
    ref_conv2d_forward(&h->c, h->x, h->w, h->b, h->scratch);
    double loss = 0.0;
    for (int64_t i = 0; i < h->ny; i++)
        loss += h->scratch[i] * (double)h->dy[i];
    return loss;
}

/* Finite differences of the reference against the device gradients of the last written
 * backward pass (h->dx, h->dw, h->db). */
static void check_gradients(const struct conv_case *cc, struct host *h)
{
    char what[160];
    const struct clt__conv2d *c = &h->c;
    snprintf(what, sizeof what, "conv2d %s: dx by finite differences", cc->name);
    clt_test_gradcheck(what, loss_fn, h, h->x, (size_t)h->nx, h->dx, 24, 1e-2, tol(terms_dx(c)),
                       TOL_REL);
    snprintf(what, sizeof what, "conv2d %s: dweight by finite differences", cc->name);
    clt_test_gradcheck(what, loss_fn, h, h->w, (size_t)h->nw, h->dw, 24, 1e-2, tol(terms_dw(c)),
                       TOL_REL);
    snprintf(what, sizeof what, "conv2d %s: dbias by finite differences", cc->name);
    clt_test_gradcheck(what, loss_fn, h, h->b, (size_t)h->nb, h->db, 24, 1e-2, tol(terms_dw(c)),
                       TOL_REL);
}

static void check_case(struct clt_device *dev, const struct conv_case *cc)
{
    struct host h;
    struct device d;
    host_init(&h, cc);
    device_init(dev, &d, &h);
    check_forward(dev, cc, &h, &d);
    /* Each gradient alone, then accumulation, then all three written last: their values
     * feed the finite-difference check. */
    check_backward(dev, cc, &h, &d, false, true, false, false);
    check_backward(dev, cc, &h, &d, false, false, true, false);
    check_backward(dev, cc, &h, &d, false, false, false, true);
    check_backward(dev, cc, &h, &d, true, true, true, true);
    check_backward(dev, cc, &h, &d, false, true, true, true);
    check_gradients(cc, &h);
    clt_arena_free(d.arena);
    host_free(&h);
}

/* n, c_in, h, w, c_out, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
 * oh, ow and chunk (0 here) are filled in by clt__conv2d_resolve. CONV_CHUNK gives the
 * chunk: the batch then runs in chunks of that many images, the last one smaller. */
#define CONV(...) ((struct clt__conv2d){__VA_ARGS__, 0, 0, 0})
#define CONV_CHUNK(chunk, ...) ((struct clt__conv2d){__VA_ARGS__, 0, 0, chunk})

static const struct conv_case full_cases[] = {
    {"3x3 pad 1", CONV(2, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1), true},
    {"stride 2", CONV(3, 4, 13, 10, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1), true},
    {"dilation 2", CONV(2, 3, 12, 11, 4, 3, 3, 1, 1, 2, 2, 2, 2, 1), true},
    {"groups 2", CONV(2, 4, 7, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2), true},
    {"depthwise stride 2", CONV(2, 5, 11, 8, 5, 3, 3, 2, 2, 1, 1, 1, 1, 5), true},
    {"1x1", CONV(2, 7, 5, 6, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1), true},
    {"1x1 groups 3", CONV(1, 6, 4, 5, 9, 1, 1, 1, 1, 0, 0, 1, 1, 3), false},
    {"1x1 stride 2 groups 2", CONV(2, 6, 7, 9, 4, 1, 1, 2, 2, 0, 0, 1, 1, 2), true},
    {"2x5 kernel", CONV(2, 3, 10, 13, 4, 2, 5, 1, 2, 0, 2, 1, 1, 1), true},
    {"batch 1 odd", CONV(1, 2, 17, 19, 3, 5, 3, 3, 2, 2, 1, 1, 2, 1), false},
    {"larger", CONV(4, 8, 23, 21, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1), true},
    {"5 images in chunks of 2", CONV_CHUNK(2, 5, 3, 9, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1), true},
    {"7 images in chunks of 3, stride 2 groups 2",
     CONV_CHUNK(3, 7, 4, 10, 9, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2), true},
    {"3 images one at a time, 1x1", CONV_CHUNK(1, 3, 5, 4, 7, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1), false},
    /* Padding wider than a tap's reach: whole rows and columns of the columns read nothing
     * and some taps add to no pixel of a row of dx. */
    {"pad 3 on a 2-pixel-wide image", CONV(2, 2, 4, 2, 3, 3, 3, 1, 1, 0, 3, 1, 1, 1), true},
    {"5 images in chunks of 2, stride 3 dilation 3 pad 4x5",
     CONV_CHUNK(2, 5, 2, 11, 10, 3, 2, 3, 3, 3, 4, 5, 3, 3, 1), true},
    /* Rows wider than col2im's 16-bit chunk of 32 pixels, stride 1: taps' runs that start in
     * one chunk and end in the next. */
    {"45-pixel rows 3x5 pad 2 dilation 1x2", CONV(2, 2, 4, 45, 3, 3, 5, 1, 1, 1, 2, 1, 2, 1), true},
};

/* Under Oclgrind: few and small. */
static const struct conv_case small_cases[] = {
    {"3x3 pad 1", CONV(2, 2, 5, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1), true},
    {"stride 2 dilation 2", CONV(1, 2, 7, 6, 2, 3, 3, 2, 2, 2, 2, 2, 2, 1), true},
    {"groups 2 3x2", CONV(2, 4, 5, 4, 2, 3, 2, 1, 1, 1, 0, 1, 1, 2), false},
    {"depthwise", CONV(1, 3, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3), true},
    {"1x1", CONV(2, 3, 3, 4, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1), true},
    {"3 images in chunks of 2", CONV_CHUNK(2, 3, 2, 5, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1), true},
    {"pad 3 on a 2-pixel-wide image", CONV(2, 1, 3, 2, 2, 3, 3, 1, 1, 0, 3, 1, 1, 1), true},
    {"3 images in chunks of 2, stride 3 dilation 2 pad 3",
     CONV_CHUNK(2, 3, 1, 7, 8, 2, 2, 3, 3, 3, 3, 3, 2, 2, 1), false},
    {"35-pixel rows 1x3 pad 1", CONV(1, 1, 2, 35, 1, 1, 3, 1, 1, 0, 1, 1, 1, 1), true},
};

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

static const char *storage_name(enum clt_precision s)
{
    return s == CLT_PRECISION_FP16 ? "fp16" : s == CLT_PRECISION_BF16 ? "bf16" : "fp32";
}

/* The relative tolerance of a rounded result in storage s (see the opening comment). */
static double rtol_of(enum clt_precision s)
{
    return TOL_REL + (s == CLT_PRECISION_FP32 ? 0.0 : clt_test_eps(s));
}

/* Uniform in [-1, 1), rounded to storage s. */
static float *rounded(int64_t n, uint64_t seed, enum clt_precision s)
{
    float *x = clt_test_floats(n);
    clt_test_fill(x, (size_t)n, seed, -1.0f, 1.0f);
    clt_test_round(x, (size_t)n, s);
    return x;
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

/* run(dev, case i, storage, i) over the cases, in fp32, fp16 and bf16 (the device's storage
 * set for the time of each). */
static void each_storage_case(struct clt_device *dev,
                              void (*run)(struct clt_device *, const struct conv_case *,
                                          enum clt_precision, size_t))
{
    const enum clt_precision storages[] = {CLT_PRECISION_FP32, CLT_PRECISION_FP16,
                                           CLT_PRECISION_BF16};
    const bool small = clt_test_small();
    const struct conv_case *cases = small ? small_cases : full_cases;
    const size_t count = small ? sizeof small_cases / sizeof small_cases[0]
                               : sizeof full_cases / sizeof full_cases[0];
    for (size_t k = 0; k < 3; k++) {
        const enum clt_precision was = clt__storage_set(dev, storages[k]);
        for (size_t i = 0; i < count; i++)
            run(dev, &cases[i], storages[k], i);
        clt__storage_set(dev, was);
    }
}

/* Case i of the helper kernels, with one lane per row (i even) or 3 (as on a GPU, and not a
 * power of two). */
static void helpers_case_lanes(struct clt_device *dev, const struct conv_case *cc,
                               enum clt_precision s, size_t i)
{
    helpers_case(dev, cc, s, i % 2 ? 3 : 1);
}

/* The helper kernels in each storage. */
static void helper_kernels_in_each_storage(void **state)
{
    each_storage_case(*state, helpers_case_lanes);
}

/* The launchers check tensors at the storage's element size: a dy and a dbias whose buffers
 * hold exactly their 16-bit elements pass in fp16, not in fp32. */
static void buffers_sized_by_storage(void **state)
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

/* ---- Kept columns ---------------------------------------------------------------------- */

/* Results of one run of the sequence below, widened to floats. */
struct kept_run {
    float *y, *dx, *dw;
};

/* forward, backward of dx and dweight (written, or added to dx0 and dw0), then a second
 * backward of dweight alone, added: with columns (the batch's, kept by the forward) or
 * without (made again by each backward). The workspace is NaN before each call, and so are the
 * kept columns before the forward: dweight must read the columns the forward left, not the
 * workspace, and the dx GEMM must leave them as they are for the second call. */
static struct kept_run kept_sequence(struct clt_device *dev, const struct clt__conv2d *c,
                                     enum clt_precision s, bool with_columns, bool accumulate,
                                     const float *x, const float *w, const float *b,
                                     const float *dy, const float *dx0, const float *dw0)
{
    const int64_t p = c->oh * c->ow, nx = c->n * c->c_in * c->h * c->w;
    const int64_t ny = c->n * c->c_out * p, nw = c->c_out * (c->c_in / c->groups) * c->kh * c->kw;
    const int64_t ncol = c->c_in * c->kh * c->kw * c->n * p;
    const int64_t nws = (int64_t)(clt__conv2d_workspace_bytes(c) / 4);
    struct clt_arena *arena;
    const uint64_t elements = 3 * (uint64_t)(nx + ny + nw + ncol + nws) + c->c_out + 64;
    assert_int_equal(clt_arena_create(dev, elements * 4 + (1 << 16), &arena), CLT_OK);
    (void)clt_test_tensor(arena, NULL, 3);
    struct clt_view vx = clt_test_tensor_st(arena, x, nx, s),
                    vw = clt_test_tensor_st(arena, w, nw, s);
    struct clt_view vb = clt_test_tensor_st(arena, b, c->c_out, s);
    struct clt_view vdy = clt_test_tensor_st(arena, dy, ny, s);
    struct clt_view vy = clt_test_tensor_st(arena, NULL, ny, s);
    struct clt_view vdx = clt_test_tensor_st(arena, accumulate ? dx0 : NULL, nx, s);
    struct clt_view vdw = clt_test_tensor_st(arena, accumulate ? dw0 : NULL, nw, s);
    struct clt_view vcol = clt_test_tensor_st(arena, NULL, ncol, s);
    struct clt__buf cols = with_columns ? clt_test_buf_st(&vcol, s) : none;
    struct clt_view ws[3];
    for (int i = 0; i < 3; i++)
        ws[i] = clt_test_tensor_st(arena, NULL, nws, s);
    assert_int_equal(clt__conv2d_forward(dev, c, clt_test_buf_st(&vx, s), clt_test_buf_st(&vw, s),
                                         clt_test_buf_st(&vb, s), clt_test_buf_st(&vy, s),
                                         clt_test_buf_st(&ws[0], s), cols),
                     CLT_OK);
    assert_int_equal(clt__conv2d_backward(dev, c, clt_test_buf_st(&vx, s), clt_test_buf_st(&vw, s),
                                          clt_test_buf_st(&vdy, s), clt_test_buf_st(&vdx, s),
                                          clt_test_buf_st(&vdw, s), none,
                                          clt_test_buf_st(&ws[1], s), cols, accumulate),
                     CLT_OK);
    assert_int_equal(clt__conv2d_backward(dev, c, clt_test_buf_st(&vx, s), none,
                                          clt_test_buf_st(&vdy, s), none, clt_test_buf_st(&vdw, s),
                                          none, clt_test_buf_st(&ws[2], s), cols, true),
                     CLT_OK);
    struct kept_run r = {clt_test_floats(ny), clt_test_floats(nx), clt_test_floats(nw)};
    clt_test_get_st(&vy, r.y, (size_t)ny, s);
    clt_test_get_st(&vdx, r.dx, (size_t)nx, s);
    clt_test_get_st(&vdw, r.dw, (size_t)nw, s);
    clt_arena_free(arena);
    return r;
}

/* got and want hold the same numbers, none of them NaN. */
static void assert_same(const char *name, enum clt_precision s, const char *what, bool acc,
                        const float *got, const float *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (isnan(want[i]) || memcmp(&got[i], &want[i], sizeof got[i]) != 0)
            fail_msg("conv2d %s (%s, %s): %s with kept columns %.9g, made again %.9g at %lld", name,
                     storage_name(s), acc ? "accumulated" : "written", what, (double)got[i],
                     (double)want[i], (long long)i);
}

/* One case in storage s: a batch in one chunk gives the same results with its columns kept as
 * without, bit for bit (written and accumulated; the written run is also checked against the
 * reference); a batch in several chunks cannot keep them. */
static void kept_case(struct clt_device *dev, const struct conv_case *cc, enum clt_precision s)
{
    struct clt__conv2d c = cc->c;
    assert_int_equal(clt__conv2d_resolve(NULL, &c), CLT_OK);
    const int64_t p = c.oh * c.ow, nx = c.n * c.c_in * c.h * c.w, ny = c.n * c.c_out * p;
    const int64_t nw = c.c_out * (c.c_in / c.groups) * c.kh * c.kw;
    const double u = s == CLT_PRECISION_FP32 ? 0.0 : clt_test_eps(s);
    if (c.chunk < c.n) {
        struct clt_test_log text = {0};
        struct clt_log saved = dev->log;
        dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_DEBUG};
        struct clt_arena *arena;
        assert_int_equal(clt_arena_create(dev, 1 << 16, &arena), CLT_OK);
        struct clt_view v = clt_test_tensor(arena, NULL, 16);
        assert_int_equal(
            clt__conv2d_forward(dev, &c, buf(&v), buf(&v), none, buf(&v), buf(&v), buf(&v)),
            CLT_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(text.text, "kept columns need the batch"));
        clt_arena_free(arena);
        dev->log = saved;
        return;
    }
    float *x = rounded(nx, 41 + (uint64_t)nx, s), *w = rounded(nw, 43 + (uint64_t)nw, s);
    float *b = rounded(c.c_out, 47, s), *dy = rounded(ny, 53 + (uint64_t)ny, s);
    float *dx0 = rounded(nx, 59, s), *dw0 = rounded(nw, 61, s);
    double *y_ref = clt_test_doubles(ny), *dx_ref = clt_test_doubles(nx);
    double *dw_ref = clt_test_doubles(nw), *db_ref = clt_test_doubles(c.c_out);
    ref_conv2d_forward(&c, x, w, b, y_ref);
    ref_conv2d_backward(&c, x, w, dy, dx_ref, dw_ref, db_ref);
    for (int acc = 0; acc < 2; acc++) {
        struct kept_run made = kept_sequence(dev, &c, s, false, acc, x, w, b, dy, dx0, dw0);
        struct kept_run kept = kept_sequence(dev, &c, s, true, acc, x, w, b, dy, dx0, dw0);
        assert_same(cc->name, s, "y", acc, kept.y, made.y, ny);
        assert_same(cc->name, s, "dx", acc, kept.dx, made.dx, nx);
        assert_same(cc->name, s, "dweight", acc, kept.dw, made.dw, nw);
        if (!acc) {
            /* Written, then one more dweight added: dw = 2 dw_ref. In 16 bits the GEMMs'
             * outputs are rounded to the storage before the helper kernels add them up (yt
             * before the bias, dcol before the taps' sum, dweight before the second call
             * adds to it): u per term on top of the tolerance above, twice u relative. */
            char label[200];
            snprintf(label, sizeof label, "conv2d %s (%s): y with kept columns", cc->name,
                     storage_name(s));
            clt_test_assert_close(label, kept.y, y_ref, (size_t)ny,
                                  tol(terms_y(&c) + 1) + u * (double)terms_y(&c), 2 * rtol_of(s));
            snprintf(label, sizeof label, "conv2d %s (%s): dx with kept columns", cc->name,
                     storage_name(s));
            clt_test_assert_close(label, kept.dx, dx_ref, (size_t)nx,
                                  tol(terms_dx(&c)) + u * (double)terms_dx(&c), 2 * rtol_of(s));
            for (int64_t i = 0; i < nw; i++)
                dw_ref[i] *= 2.0;
            snprintf(label, sizeof label, "conv2d %s (%s): dweight twice with kept columns",
                     cc->name, storage_name(s));
            clt_test_assert_close(label, kept.dw, dw_ref, (size_t)nw,
                                  2 * tol(terms_dw(&c)) + u * (double)terms_dw(&c), 2 * rtol_of(s));
        }
        float *f[] = {made.y, made.dx, made.dw, kept.y, kept.dx, kept.dw};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            free(f[i]);
    }
    float *f[] = {x, w, b, dy, dx0, dw0};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        free(f[i]);
    double *d[] = {y_ref, dx_ref, dw_ref, db_ref};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        free(d[i]);
}

/* Case i of the kept columns (every case alike). */
static void kept_case_any(struct clt_device *dev, const struct conv_case *cc, enum clt_precision s,
                          size_t i)
{
    (void)i;
    kept_case(dev, cc, s);
}

/* The kept columns over the cases, in each storage. */
static void kept_columns_in_each_storage(void **state)
{
    each_storage_case(*state, kept_case_any);
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
