/*
 * conv_rig.c: the tensors and checks of one convolution case (conv_rig.h); the
 * tolerances are stated at the top of test_conv.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_rig.h"
#include "ref_conv.h"

double tol(int64_t terms)
{
    return TOL_TERM * (double)(terms + 1);
}

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

struct clt__buf buf(const struct clt_view *v)
{
    return clt__view_buf(v);
}

static struct clt__buf ws_buf(const struct device *d)
{
    return d->has_ws ? buf(&d->ws) : none;
}

static void download(const struct clt_view *v, float *p, int64_t n)
{
    clt_test_download(v, p, (size_t)n);
}

/* Term counts of each output's sum (see the tolerance above). */
int64_t terms_y(const struct clt__conv2d *c)
{
    return c->c_in / c->groups * c->kh * c->kw;
}
int64_t terms_dx(const struct clt__conv2d *c)
{
    return c->c_out / c->groups * c->kh * c->kw;
}
int64_t terms_dw(const struct clt__conv2d *c)
{
    return c->n * c->oh * c->ow;
}

/* want = base + ref, where base may be NULL. */
double *plus(const float *base, const double *ref, int64_t n)
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

void check_case(struct clt_device *dev, const struct conv_case *cc)
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

const char *storage_name(enum clt_precision s)
{
    return s == CLT_PRECISION_FP16 ? "fp16" : s == CLT_PRECISION_BF16 ? "bf16" : "fp32";
}

/* The relative tolerance of a rounded result in storage s (see the opening comment). */
double rtol_of(enum clt_precision s)
{
    return TOL_REL + (s == CLT_PRECISION_FP32 ? 0.0 : clt_test_eps(s));
}

/* Uniform in [-1, 1), rounded to storage s. */
float *rounded(int64_t n, uint64_t seed, enum clt_precision s)
{
    float *x = clt_test_floats(n);
    clt_test_fill(x, (size_t)n, seed, -1.0f, 1.0f);
    clt_test_round(x, (size_t)n, s);
    return x;
}

/* run(dev, case i, storage, i) over the cases, in fp32, fp16 and bf16 (the device's storage
 * set for the time of each). */
void each_storage_case(struct clt_device *dev,
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
