/*
 * test_pool.c: max pool, average pool and global average pool against the C reference
 * (ref_pool.c): odd sizes, stride different from the window, overlapping windows, padding,
 * non-square windows, batch 1; backward writing and accumulating; max pool with ties,
 * all-negative inputs next to padding, NaNs and signed zeros (every storage), at odd element
 * offsets (the 2x2 element kernels; even offsets take the 16-bit pair kernels), and without
 * argmax; 2x2 cases with odd plane counts, OW = 1, odd H and W; finite differences of every
 * backward; argument checking.
 *
 * Tolerances (data uniform in [-1, 1) unless said otherwise):
 *   max pool forward: exact (y is one of the inputs) and argmax equal to the reference's.
 *   every other comparison: |got - want| <= 2e-6 + 1e-5 |want|, for float sums of at most a
 *     few hundred terms of magnitude <= 1 (each divided by the window size or H * W);
 *     measured errors on PoCL and rusticl stay below 1e-6.
 *   16-bit storage (fp16, bf16: x, dy and dx's starting values rounded to the storage on
 *     the host, the reference computed on those values): max pool forward exact and argmax
 *     equal (y is one of the inputs, which the storage holds exactly); every other
 *     comparison |got - want| <= 2e-6 + (1e-5 + u) |want|, u the storage's unit roundoff
 *     (fp16 2^-11 = 4.9e-4, bf16 2^-8 = 3.9e-3): the float sum is rounded once, when it is
 *     stored; measured on PoCL: at most 1.0 u relative where |want| > 1e-3. A kernel that
 *     summed in the storage (rounding each partial sum) or ignored it (read 16-bit data as
 *     floats) fails this.
 * Finite differences: loss = sum(y * dy) by the double reference, eps = 1e-3. Average pools
 * are linear, so central differences are exact up to double rounding. For max pool the
 * values of each plane are distinct multiples of 1e-2 (a shuffled ramp), so a step of 1e-3
 * never changes which element wins a window: the loss is linear there too. The device
 * gradient must match at the tolerance above.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref_pool.h"

#define ATOL 2e-6
#define RTOL 1e-5
#define EPS 1e-3

static const struct clt__buf none = {NULL, 0};

/* An int view of n elements, each -7 (an index no kernel may leave behind). */
static struct clt_view indices(struct clt_arena *arena, int64_t n)
{
    struct clt_view v;
    assert_int_equal(clt_arena_alloc(arena, CLT_I32, 1, (int64_t[]){n}, &v), CLT_OK);
    int32_t *fill = malloc((size_t)n * sizeof *fill);
    assert_non_null(fill);
    for (int64_t i = 0; i < n; i++)
        fill[i] = -7;
    clt_test_put_bytes(&v, fill, (size_t)n * sizeof *fill);
    free(fill);
    return v;
}

/* The relative tolerance of a comparison in storage s (see the opening comment). */
static double rtol_of(enum clt_precision s)
{
    return s == CLT_PRECISION_FP32 ? RTOL : RTOL + clt_test_eps(s);
}

static void compare(const char *kind, const char *name, const char *what, const float *got,
                    const float *base, const double *ref, int64_t n, double atol,
                    enum clt_precision s)
{
    char label[200];
    snprintf(label, sizeof label, "%s %s: %s%s", kind, name, what,
             s == CLT_PRECISION_FP16   ? " (fp16)"
             : s == CLT_PRECISION_BF16 ? " (bf16)"
                                       : "");
    double *want = clt_test_doubles(n);
    for (int64_t i = 0; i < n; i++)
        want[i] = (base ? (double)base[i] : 0.0) + ref[i];
    clt_test_assert_close(label, got, want, (size_t)n, atol, rtol_of(s));
    free(want);
}

/* ==== 2-D max and average pooling ======================================================= */

enum kind { MAX, AVG };

struct pool_case {
    const char *name;
    struct clt__pool2d p;
};

/* Host data of one case. */
struct host {
    enum kind kind;
    struct clt__pool2d p;
    int64_t nx, ny;
    float *x, *dy, *dx0; /* inputs, and dx's starting value for accumulation */
    float *y, *dx;       /* device results */
    int32_t *argmax, *argmax_ref;
    double *y_ref, *dx_ref, *scratch;
};

/* Fills each plane of x with a shuffled ramp: distinct multiples of 1e-2 around 0. */
static void fill_distinct(float *x, int64_t planes, int64_t hw, uint64_t seed)
{
    float *u = clt_test_floats(hw);
    int64_t *order = malloc((size_t)hw * sizeof *order);
    assert_non_null(order);
    for (int64_t c = 0; c < planes; c++) {
        clt_test_fill(u, (size_t)hw, seed + (uint64_t)c, 0.0f, 1.0f);
        for (int64_t i = 0; i < hw; i++)
            order[i] = i;
        for (int64_t i = hw - 1; i > 0; i--) { /* Fisher-Yates with the uniforms */
            int64_t j = (int64_t)(u[i] * (float)(i + 1));
            j = j > i ? i : j;
            int64_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int64_t i = 0; i < hw; i++)
            x[c * hw + order[i]] = (float)((double)(i - hw / 2) * 1e-2);
    }
    free(u);
    free(order);
}

/* x for a case: distinct values (MAX), uniform (AVG), or, with `ties`, integers in
 * {-3, -2, -1}: many equal maxima, and every value below the padding's 0. The inputs are
 * rounded to storage s before the reference sees them (in 16 bits, distinct values may
 * become ties: the reference takes the same first maximum). */
static void host_init(struct host *h, enum kind kind, const struct pool_case *pc, bool ties,
                      enum clt_precision s)
{
    memset(h, 0, sizeof *h);
    h->kind = kind;
    h->p = pc->p;
    assert_int_equal(clt__pool2d_resolve(NULL, &h->p), CLT_OK);
    const struct clt__pool2d *p = &h->p;
    h->nx = p->n * p->c * p->h * p->w;
    h->ny = p->n * p->c * p->oh * p->ow;
    h->x = clt_test_floats(h->nx);
    h->dy = clt_test_floats(h->ny);
    h->dx0 = clt_test_floats(h->nx);
    h->y = clt_test_floats(h->ny);
    h->dx = clt_test_floats(h->nx);
    h->argmax = malloc((size_t)h->ny * sizeof *h->argmax);
    h->argmax_ref = malloc((size_t)h->ny * sizeof *h->argmax_ref);
    assert_true(h->argmax && h->argmax_ref);
    h->y_ref = clt_test_doubles(h->ny);
    h->dx_ref = clt_test_doubles(h->nx);
    h->scratch = clt_test_doubles(h->ny);
    if (ties) {
        clt_test_fill(h->x, (size_t)h->nx, 17 + (uint64_t)h->nx, 0.0f, 3.0f);
        for (int64_t i = 0; i < h->nx; i++)
            h->x[i] = floorf(h->x[i]) - 3.0f;
    } else if (kind == MAX) {
        fill_distinct(h->x, p->n * p->c, p->h * p->w, 29 + (uint64_t)h->nx);
    } else {
        clt_test_fill(h->x, (size_t)h->nx, 31 + (uint64_t)h->nx, -1.0f, 1.0f);
    }
    clt_test_fill(h->dy, (size_t)h->ny, 43 + (uint64_t)h->ny, -1.0f, 1.0f);
    clt_test_fill(h->dx0, (size_t)h->nx, 47, -1.0f, 1.0f);
    clt_test_round(h->x, (size_t)h->nx, s);
    clt_test_round(h->dy, (size_t)h->ny, s);
    clt_test_round(h->dx0, (size_t)h->nx, s);
    if (kind == MAX) {
        ref_maxpool2d_forward(p, h->x, h->y_ref, h->argmax_ref);
        ref_maxpool2d_backward(p, h->x, h->dy, h->dx_ref);
    } else {
        ref_avgpool2d_forward(p, h->x, h->y_ref);
        ref_avgpool2d_backward(p, h->dy, h->dx_ref);
    }
}

static void host_free(struct host *h)
{
    free(h->x);
    free(h->dy);
    free(h->dx0);
    free(h->y);
    free(h->dx);
    free(h->argmax);
    free(h->argmax_ref);
    free(h->y_ref);
    free(h->dx_ref);
    free(h->scratch);
}

static double pool_loss(void *ctx, const float *unused, size_t n)
{
    (void)unused;
    (void)n;
    struct host *h = ctx;
    if (h->kind == MAX) {
        int32_t *at = malloc((size_t)h->ny * sizeof *at);
        assert_non_null(at);
        ref_maxpool2d_forward(&h->p, h->x, h->scratch, at);
        free(at);
    } else {
        ref_avgpool2d_forward(&h->p, h->x, h->scratch);
    }
    double loss = 0.0;
    for (int64_t i = 0; i < h->ny; i++)
        loss += h->scratch[i] * (double)h->dy[i];
    return loss;
}

/* Tensors are given in storage s (clt_test_buf_st). */
static enum clt_status forward(struct clt_device *dev, const struct host *h,
                               const struct clt_view *x, const struct clt_view *y,
                               const struct clt_view *argmax, enum clt_precision s)
{
    if (h->kind == MAX)
        return clt__maxpool2d_forward(dev, &h->p, clt_test_buf_st(x, s), clt_test_buf_st(y, s),
                                      argmax ? clt__view_buf(argmax) : none);
    return clt__avgpool2d_forward(dev, &h->p, clt_test_buf_st(x, s), clt_test_buf_st(y, s));
}

static enum clt_status backward(struct clt_device *dev, const struct host *h,
                                const struct clt_view *argmax, const struct clt_view *dy,
                                const struct clt_view *dx, bool accumulate, enum clt_precision s)
{
    if (h->kind == MAX)
        return clt__maxpool2d_backward(dev, &h->p, clt__view_buf(argmax), clt_test_buf_st(dy, s),
                                       clt_test_buf_st(dx, s), accumulate);
    return clt__avgpool2d_backward(dev, &h->p, clt_test_buf_st(dy, s), clt_test_buf_st(dx, s),
                                   accumulate);
}

/* A tensor of count elements at an odd element offset (one element past a view's start),
 * holding host (NULL: zeros) in storage s: the 2x2 kernels read and write pairs of elements
 * only at even offsets, and take single elements otherwise. */
static struct clt__buf odd_tensor(struct clt_arena *arena, const float *host, int64_t count,
                                  enum clt_precision s, struct clt_view *view)
{
    float *image = clt_test_floats(count + 1);
    image[0] = 0.0f;
    if (host)
        memcpy(image + 1, host, (size_t)count * sizeof *image);
    else
        memset(image + 1, 0, (size_t)count * sizeof *image);
    *view = clt_test_tensor_st(arena, image, count + 1, s);
    free(image);
    struct clt__buf b = clt_test_buf_st(view, s);
    b.offset += 1;
    return b;
}

/* Max pool at odd offsets of x and dx: y and argmax as the reference's, dx written and
 * accumulated (the single-element 2x2 kernels where the case is 2x2). */
static void check_odd_offsets(struct clt_device *dev, struct host *h, const char *name,
                              struct clt_arena *arena, const struct clt_view *dy,
                              enum clt_precision s)
{
    struct clt_view xv, dxv, yv = clt_test_tensor_st(arena, NULL, h->ny, s);
    struct clt_view argmax = indices(arena, h->ny);
    const struct clt__buf x = odd_tensor(arena, h->x, h->nx, s, &xv);
    assert_int_equal(
        clt__maxpool2d_forward(dev, &h->p, x, clt_test_buf_st(&yv, s), clt__view_buf(&argmax)),
        CLT_OK);
    clt_test_get_st(&yv, h->y, (size_t)h->ny, s);
    compare("maxpool2d", name, "y at an odd offset", h->y, NULL, h->y_ref, h->ny, 0.0, s);
    assert_int_equal(clt_view_read(&argmax, h->argmax, (uint64_t)h->ny * 4, NULL), CLT_OK);
    for (int64_t i = 0; i < h->ny; i++)
        if (h->argmax[i] != h->argmax_ref[i])
            fail_msg("maxpool2d %s: argmax[%lld] = %d at an odd offset, want %d", name,
                     (long long)i, h->argmax[i], h->argmax_ref[i]);
    float *got = clt_test_floats(h->nx + 1);
    for (int accumulate = 0; accumulate < 2; accumulate++) {
        const struct clt__buf dx = odd_tensor(arena, accumulate ? h->dx0 : NULL, h->nx, s, &dxv);
        assert_int_equal(clt__maxpool2d_backward(dev, &h->p, clt__view_buf(&argmax),
                                                 clt_test_buf_st(dy, s), dx, accumulate),
                         CLT_OK);
        clt_test_get_st(&dxv, got, (size_t)h->nx + 1, s);
        assert_true(got[0] == 0.0f); /* the element before dx is left alone */
        compare("maxpool2d", name,
                accumulate ? "dx accumulated at an odd offset" : "dx written at an odd offset",
                got + 1, accumulate ? h->dx0 : NULL, h->dx_ref, h->nx, ATOL, s);
    }
    free(got);
}

/* One case in storage s (the device's storage, set by the caller). */
static void check_case(struct clt_device *dev, enum kind kind, const struct pool_case *pc,
                       bool ties, enum clt_precision s)
{
    struct host h;
    host_init(&h, kind, pc, ties, s);
    const char *kname = kind == MAX ? "maxpool2d" : "avgpool2d";
    char name[120];
    snprintf(name, sizeof name, "%s%s", pc->name, ties ? " (ties)" : "");

    struct clt_arena *arena;
    uint64_t bytes = (uint64_t)(7 * h.nx + 6 * h.ny) * 4 + 65536;
    assert_int_equal(clt_arena_create(dev, bytes, &arena), CLT_OK);
    (void)clt_test_tensor(arena, NULL, 5); /* every tensor at a non-zero offset */
    struct clt_view x = clt_test_tensor_st(arena, h.x, h.nx, s);
    struct clt_view dy = clt_test_tensor_st(arena, h.dy, h.ny, s);
    struct clt_view y = clt_test_tensor_st(arena, NULL, h.ny, s);
    struct clt_view argmax = indices(arena, h.ny);

    /* Forward. Max pool: y exact, argmax identical; then once more without argmax. */
    assert_int_equal(forward(dev, &h, &x, &y, &argmax, s), CLT_OK);
    clt_test_get_st(&y, h.y, (size_t)h.ny, s);
    compare(kname, name, "y", h.y, NULL, h.y_ref, h.ny, kind == MAX ? 0.0 : ATOL, s);
    if (kind == MAX) {
        assert_int_equal(clt_view_read(&argmax, h.argmax, (uint64_t)h.ny * 4, NULL), CLT_OK);
        for (int64_t i = 0; i < h.ny; i++)
            if (h.argmax[i] != h.argmax_ref[i])
                fail_msg("%s %s: argmax[%lld] = %d, want %d", kname, name, (long long)i,
                         h.argmax[i], h.argmax_ref[i]);
        struct clt_view y2 = clt_test_tensor_st(arena, NULL, h.ny, s);
        assert_int_equal(forward(dev, &h, &x, &y2, NULL, s), CLT_OK);
        clt_test_get_st(&y2, h.y, (size_t)h.ny, s);
        compare(kname, name, "y without argmax", h.y, NULL, h.y_ref, h.ny, 0.0, s);
    }

    /* Backward, accumulating into dx0, then writing into NaN (kept for the gradcheck). */
    struct clt_view dx = clt_test_tensor_st(arena, h.dx0, h.nx, s);
    assert_int_equal(backward(dev, &h, &argmax, &dy, &dx, true, s), CLT_OK);
    clt_test_get_st(&dx, h.dx, (size_t)h.nx, s);
    compare(kname, name, "dx accumulated", h.dx, h.dx0, h.dx_ref, h.nx, ATOL, s);
    dx = clt_test_tensor_st(arena, NULL, h.nx, s);
    assert_int_equal(backward(dev, &h, &argmax, &dy, &dx, false, s), CLT_OK);
    clt_test_get_st(&dx, h.dx, (size_t)h.nx, s);
    compare(kname, name, "dx written", h.dx, NULL, h.dx_ref, h.nx, ATOL, s);

    if (kind == MAX)
        check_odd_offsets(dev, &h, name, arena, &dy, s);

    /* In 16 bits the comparison with the reference above is the check: dx holds rounded
     * gradients, beyond the finite differences' tolerance. */
    if (!ties && s == CLT_PRECISION_FP32) {
        char what[200];
        snprintf(what, sizeof what, "%s %s: dx by finite differences", kname, name);
        clt_test_gradcheck(what, pool_loss, &h, h.x, (size_t)h.nx, h.dx, 32, EPS, ATOL, RTOL);
    }
    clt_arena_free(arena);
    host_free(&h);
}

/* n, c, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w; oh and ow (0 here) are filled in
 * by clt__pool2d_resolve. */
#define POOL(...) ((struct clt__pool2d){__VA_ARGS__, 0, 0})

static const struct pool_case full_cases[] = {
    {"2x2 stride 2, odd width", POOL(2, 3, 10, 9, 2, 2, 2, 2, 0, 0)},
    {"2x2 stride 2, odd height", POOL(3, 2, 11, 8, 2, 2, 2, 2, 0, 0)},
    {"2x2 stride 2, even sizes", POOL(3, 5, 12, 18, 2, 2, 2, 2, 0, 0)},
    {"2x2 stride 2, 5 planes of 3x3 outputs", POOL(1, 5, 6, 6, 2, 2, 2, 2, 0, 0)},
    {"2x2 stride 2, OW = 1", POOL(3, 1, 4, 3, 2, 2, 2, 2, 0, 0)},
    {"2x2 stride 2, odd sizes", POOL(1, 7, 9, 11, 2, 2, 2, 2, 0, 0)},
    {"2x2 stride 2, 3822 outputs", POOL(3, 7, 28, 26, 2, 2, 2, 2, 0, 0)},
    {"3x3 stride 2 pad 1", POOL(2, 3, 11, 13, 3, 3, 2, 2, 1, 1)},
    {"3x3 stride 1 pad 1", POOL(1, 4, 9, 7, 3, 3, 1, 1, 1, 1)},
    {"3x2 stride 2x1 pad 1x0", POOL(3, 2, 8, 11, 3, 2, 2, 1, 1, 0)},
    {"2x2 stride 3 pad 1", POOL(2, 2, 13, 12, 2, 2, 3, 3, 1, 1)},
    {"window = input", POOL(2, 5, 5, 5, 5, 5, 1, 1, 0, 0)},
    {"1x1 stride 2, batch 1", POOL(1, 3, 7, 7, 1, 1, 2, 2, 0, 0)},
    {"larger", POOL(4, 16, 33, 31, 3, 3, 2, 2, 1, 1)},
};

static const struct pool_case small_cases[] = {
    {"3x3 stride 2 pad 1", POOL(2, 2, 7, 6, 3, 3, 2, 2, 1, 1)},
    {"3x2 stride 1x2 pad 1x1, batch 1", POOL(1, 3, 5, 7, 3, 2, 1, 2, 1, 1)},
    {"2x2 stride 3", POOL(1, 2, 8, 7, 2, 2, 3, 3, 0, 0)},
    {"2x2 stride 2, even sizes", POOL(2, 3, 6, 4, 2, 2, 2, 2, 0, 0)},
    {"2x2 stride 2, odd width", POOL(1, 2, 4, 5, 2, 2, 2, 2, 0, 0)},
    {"2x2 stride 2, 5 planes of 3x3 outputs", POOL(1, 5, 6, 6, 2, 2, 2, 2, 0, 0)},
    {"2x2 stride 2, OW = 1, odd height", POOL(3, 1, 5, 2, 2, 2, 2, 2, 0, 0)},
};

static void run_cases(struct clt_device *dev, enum kind kind)
{
    bool small = clt_test_small();
    const struct pool_case *cases = small ? small_cases : full_cases;
    size_t count = small ? sizeof small_cases / sizeof small_cases[0]
                         : sizeof full_cases / sizeof full_cases[0];
    for (size_t i = 0; i < count; i++)
        check_case(dev, kind, &cases[i], false, CLT_PRECISION_FP32);
}

static void max_pool(void **state)
{
    run_cases(*state, MAX);
}

static void avg_pool(void **state)
{
    run_cases(*state, AVG);
}

/* Equal maxima: the first in window order wins in the kernel as in the reference; inputs
 * all below zero next to padding: the padding is never chosen. */
static void max_pool_ties_and_padding(void **state)
{
    const struct pool_case cases[] = {
        {"3x3 stride 1 pad 1", POOL(2, 3, 6, 7, 3, 3, 1, 1, 1, 1)},
        {"2x4 stride 2x1 pad 1x2", POOL(1, 2, 5, 9, 2, 4, 2, 1, 1, 2)},
        {"2x2 stride 2", POOL(2, 3, 6, 8, 2, 2, 2, 2, 0, 0)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(*state, MAX, &cases[i], true, CLT_PRECISION_FP32);
}

/* NaN and signed zeros: the first NaN of a window wins over numbers, +0 and -0 tie (the
 * first is kept); y bit for bit (NaN where the reference has NaN; in fp32 the very bits of
 * the NaN chosen, payload and all: 0x7fa00001, a signalling one, comes through unquieted)
 * and argmax as the reference's, then dx written and accumulated from that argmax. The 2x2
 * kernels (odd plane counts, OW = 1, odd H) and the general one, in every storage. */
static void max_pool_nan_case(struct clt_device *dev, const struct pool_case *pc,
                              enum clt_precision s)
{
    const uint32_t payload = 0x7fa00001u;
    float snan;
    memcpy(&snan, &payload, sizeof snan);
    struct host h;
    host_init(&h, MAX, pc, false, s);
    const float values[] = {-1.0f, -0.0f, 0.0f, 2.0f, NAN, 1.0f, -0.0f, snan, -NAN, 0.0f, -3.0f};
    const int64_t nv = sizeof values / sizeof values[0];
    for (int64_t i = 0; i < h.nx; i++)
        h.x[i] = values[(i * 5 + i / 3) % nv];
    ref_maxpool2d_forward(&h.p, h.x, h.y_ref, h.argmax_ref);
    ref_maxpool2d_backward(&h.p, h.x, h.dy, h.dx_ref);
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, (uint64_t)(3 * h.nx + 3 * h.ny) * 4 + 65536, &arena),
                     CLT_OK);
    (void)clt_test_tensor(arena, NULL, 5);
    struct clt_view x = clt_test_tensor_st(arena, h.x, h.nx, s);
    struct clt_view dy = clt_test_tensor_st(arena, h.dy, h.ny, s);
    struct clt_view y = clt_test_tensor_st(arena, NULL, h.ny, s);
    struct clt_view argmax = indices(arena, h.ny);
    assert_int_equal(forward(dev, &h, &x, &y, &argmax, s), CLT_OK);
    clt_test_get_st(&y, h.y, (size_t)h.ny, s);
    assert_int_equal(clt_view_read(&argmax, h.argmax, (uint64_t)h.ny * 4, NULL), CLT_OK);
    bool some_nan = false, some_payload = false;
    for (int64_t i = 0; i < h.ny; i++) {
        const float want = (float)h.y_ref[i];
        some_nan = some_nan || isnan(want);
        if (isnan(want) ? !isnan(h.y[i]) : memcmp(&h.y[i], &want, sizeof want) != 0)
            fail_msg("%s: y[%lld] = %g, want %g", pc->name, (long long)i, (double)h.y[i],
                     (double)want);
        if (h.argmax[i] != h.argmax_ref[i])
            fail_msg("%s: argmax[%lld] = %d, want %d", pc->name, (long long)i, h.argmax[i],
                     h.argmax_ref[i]);
        const int64_t plane = i / (h.p.oh * h.p.ow);
        const float *chosen = &h.x[plane * h.p.h * h.p.w + h.argmax_ref[i]];
        if (s == CLT_PRECISION_FP32 && isnan(want)) {
            some_payload = some_payload || memcmp(chosen, &snan, sizeof snan) == 0;
            if (memcmp(&h.y[i], chosen, sizeof want) != 0)
                fail_msg("%s: y[%lld] is not the NaN chosen, bit for bit", pc->name, (long long)i);
        }
    }
    assert_true(some_nan);
    assert_true(s != CLT_PRECISION_FP32 || some_payload);
    struct clt_view dx = clt_test_tensor_st(arena, NULL, h.nx, s);
    assert_int_equal(backward(dev, &h, &argmax, &dy, &dx, false, s), CLT_OK);
    clt_test_get_st(&dx, h.dx, (size_t)h.nx, s);
    compare("maxpool2d", pc->name, "dx (NaN inputs)", h.dx, NULL, h.dx_ref, h.nx, ATOL, s);
    dx = clt_test_tensor_st(arena, h.dx0, h.nx, s);
    assert_int_equal(backward(dev, &h, &argmax, &dy, &dx, true, s), CLT_OK);
    clt_test_get_st(&dx, h.dx, (size_t)h.nx, s);
    compare("maxpool2d", pc->name, "dx accumulated (NaN inputs)", h.dx, h.dx0, h.dx_ref, h.nx, ATOL,
            s);
    clt_arena_free(arena);
    host_free(&h);
}

static void max_pool_nan(void **state)
{
    struct clt_device *dev = *state;
    const struct pool_case cases[] = {
        {"2x2 stride 2", POOL(2, 3, 6, 8, 2, 2, 2, 2, 0, 0)},
        {"2x2 stride 2, odd width", POOL(1, 2, 4, 5, 2, 2, 2, 2, 0, 0)},
        {"2x2 stride 2, 5 planes, odd height", POOL(1, 5, 7, 10, 2, 2, 2, 2, 0, 0)},
        {"2x2 stride 2, OW = 1", POOL(3, 3, 6, 2, 2, 2, 2, 2, 0, 0)},
        {"3x3 stride 2 pad 1", POOL(1, 2, 7, 6, 3, 3, 2, 2, 1, 1)},
    };
    const enum clt_precision storages[] = {CLT_PRECISION_FP32, CLT_PRECISION_FP16,
                                           CLT_PRECISION_BF16};
    for (size_t k = 0; k < 3; k++) {
        const enum clt_precision was = clt__storage_set(dev, storages[k]);
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            max_pool_nan_case(dev, &cases[c], storages[k]);
        clt__storage_set(dev, was);
    }
}

/* ==== Global average pooling ============================================================ */

static void global_case(struct clt_device *dev, int64_t n, int64_t c, int64_t hh, int64_t ww,
                        enum clt_precision s)
{
    const int64_t planes = n * c, hw = hh * ww, nx = planes * hw;
    float *x = clt_test_floats(nx), *dy = clt_test_floats(planes), *dx0 = clt_test_floats(nx);
    float *y = clt_test_floats(planes), *dx = clt_test_floats(nx);
    double *y_ref = clt_test_doubles(planes), *dx_ref = clt_test_doubles(nx);
    clt_test_fill(x, (size_t)nx, 53 + (uint64_t)nx, -1.0f, 1.0f);
    clt_test_fill(dy, (size_t)planes, 59, -1.0f, 1.0f);
    clt_test_fill(dx0, (size_t)nx, 61, -1.0f, 1.0f);
    clt_test_round(x, (size_t)nx, s);
    clt_test_round(dy, (size_t)planes, s);
    clt_test_round(dx0, (size_t)nx, s);
    ref_global_avgpool_forward(planes, hw, x, y_ref);
    ref_global_avgpool_backward(planes, hw, dy, dx_ref);

    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, (uint64_t)(3 * nx + 3 * planes) * 4 + 65536, &arena),
                     CLT_OK);
    (void)clt_test_tensor(arena, NULL, 5);
    struct clt_view vx = clt_test_tensor_st(arena, x, nx, s);
    struct clt_view vdy = clt_test_tensor_st(arena, dy, planes, s);
    struct clt_view vy = clt_test_tensor_st(arena, NULL, planes, s);
    char name[80];
    snprintf(name, sizeof name, "%lldx%lldx%lldx%lld", (long long)n, (long long)c, (long long)hh,
             (long long)ww);

    assert_int_equal(clt__global_avgpool_forward(dev, n, c, hh, ww, clt_test_buf_st(&vx, s),
                                                 clt_test_buf_st(&vy, s)),
                     CLT_OK);
    clt_test_get_st(&vy, y, (size_t)planes, s);
    compare("global_avgpool", name, "y", y, NULL, y_ref, planes, ATOL, s);

    struct clt_view vdx = clt_test_tensor_st(arena, dx0, nx, s);
    assert_int_equal(clt__global_avgpool_backward(dev, n, c, hh, ww, clt_test_buf_st(&vdy, s),
                                                  clt_test_buf_st(&vdx, s), true),
                     CLT_OK);
    clt_test_get_st(&vdx, dx, (size_t)nx, s);
    compare("global_avgpool", name, "dx accumulated", dx, dx0, dx_ref, nx, ATOL, s);
    vdx = clt_test_tensor_st(arena, NULL, nx, s);
    assert_int_equal(clt__global_avgpool_backward(dev, n, c, hh, ww, clt_test_buf_st(&vdy, s),
                                                  clt_test_buf_st(&vdx, s), false),
                     CLT_OK);
    clt_test_get_st(&vdx, dx, (size_t)nx, s);
    compare("global_avgpool", name, "dx written", dx, NULL, dx_ref, nx, ATOL, s);

    /* Finite differences of sum(y * dy): the pool as a 1 x 1 output of an H x W window (in
     * fp32: in 16 bits dx holds rounded gradients, checked against the reference above). */
    if (s == CLT_PRECISION_FP32) {
        struct host h = {.kind = AVG, .p = POOL(n, c, hh, ww, hh, ww, 1, 1, 0, 0)};
        assert_int_equal(clt__pool2d_resolve(NULL, &h.p), CLT_OK);
        h.x = x;
        h.dy = dy;
        h.ny = planes;
        h.scratch = clt_test_doubles(planes);
        char what[160];
        snprintf(what, sizeof what, "global_avgpool %s: dx by finite differences", name);
        clt_test_gradcheck(what, pool_loss, &h, x, (size_t)nx, dx, 32, EPS, ATOL, RTOL);
        free(h.scratch);
    }

    clt_arena_free(arena);
    free(x);
    free(dy);
    free(dx0);
    free(y);
    free(dx);
    free(y_ref);
    free(dx_ref);
}

static void global_avg_pool(void **state)
{
    struct clt_device *dev = *state;
    global_case(dev, 2, 3, 5, 7, CLT_PRECISION_FP32);
    global_case(dev, 1, 1, 1, 1, CLT_PRECISION_FP32);
    if (!clt_test_small()) {
        global_case(dev, 3, 17, 9, 11, CLT_PRECISION_FP32);
        global_case(dev, 1, 5, 33, 31, CLT_PRECISION_FP32);
    }
}

/* ==== 16-bit storage ==================================================================== */

/* Every kernel of cl/pool.cl in fp16 and bf16 (the device's storage set for the time of the
 * test): max and average pools over the cases that reach the 2x2, cell and gather kernels
 * (max pools: every small case, among them the 2x2 ones with an odd plane count, OW = 1 and
 * odd H), ties in the general and the 2x2 kernels, and the global average pool. */
static void storage16(void **state)
{
    struct clt_device *dev = *state;
    const enum clt_precision storages[] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16};
    const bool small = clt_test_small();
    const size_t cases = sizeof small_cases / sizeof small_cases[0];
    const size_t count = small ? 3 : cases;
    const struct pool_case ties[] = {
        {"3x3 stride 1 pad 1", POOL(2, 3, 6, 7, 3, 3, 1, 1, 1, 1)},
        {"2x2 stride 2, 3 planes", POOL(1, 3, 10, 6, 2, 2, 2, 2, 0, 0)},
    };
    for (size_t k = 0; k < 2; k++) {
        const enum clt_precision s = storages[k];
        const enum clt_precision was = clt__storage_set(dev, s);
        for (size_t i = 0; i < cases; i++)
            check_case(dev, MAX, &small_cases[i], false, s);
        for (size_t i = 0; i < count; i++)
            check_case(dev, AVG, &small_cases[i], false, s);
        for (size_t i = 0; i < sizeof ties / sizeof ties[0]; i++)
            check_case(dev, MAX, &ties[i], true, s);
        global_case(dev, 2, 3, 5, 7, s);
        if (!small)
            global_case(dev, 1, 5, 33, 31, s);
        clt__storage_set(dev, was);
    }
}

/* ==== Arguments ========================================================================= */

static void resolve_checks_parameters(void **state)
{
    (void)state;
    struct clt_test_log text = {0};
    struct clt_log log = {clt_test_log_fn, &text, CLT_LOG_DEBUG};
    struct clt__pool2d p = POOL(2, 3, 11, 8, 3, 2, 2, 3, 1, 1);
    assert_int_equal(clt__pool2d_resolve(&log, &p), CLT_OK);
    assert_int_equal(p.oh, (11 + 2 - 3) / 2 + 1);
    assert_int_equal(p.ow, (8 + 2 - 2) / 3 + 1);
    struct clt__pool2d bad[] = {
        POOL(2, 3, 11, 8, 3, 3, 1, 1, 2, 1),              /* padding more than half the window */
        POOL(2, 3, 11, 8, 3, 3, 0, 1, 1, 1),              /* stride 0 */
        POOL(2, 3, 11, 8, 0, 3, 1, 1, 0, 1),              /* empty window */
        POOL(-1, 3, 11, 8, 3, 3, 1, 1, 1, 1),             /* negative batch */
        POOL(2, 3, 0, 8, 1, 1, 1, 1, 0, 0),               /* empty input */
        POOL(2, 3, 2, 8, 5, 3, 1, 1, 1, 1),               /* window taller than the padded input */
        POOL(1 << 16, 1 << 10, 64, 64, 2, 2, 2, 2, 0, 0), /* 2^38 elements */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(clt__pool2d_resolve(&log, &bad[i]), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "pool2d: impossible parameters"));
    assert_non_null(strstr(text.text, "2^31 elements or more"));
}

static void launchers_check_buffers(void **state)
{
    struct clt_device *dev = *state;
    struct clt_test_log text = {0};
    struct clt_log saved = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_DEBUG};
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, 1 << 16, &arena), CLT_OK);
    float zeros[256] = {0};
    struct clt_view va = clt_test_tensor(arena, zeros, 256),
                    vb = clt_test_tensor(arena, zeros, 256);
    struct clt_view vi = indices(arena, 256);
    struct clt__buf a = clt__view_buf(&va), b = clt__view_buf(&vb), i = clt__view_buf(&vi);
    struct clt__pool2d p = POOL(1, 2, 6, 6, 2, 2, 2, 2, 0, 0);
    assert_int_equal(clt__maxpool2d_forward(dev, &p, none, b, i), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "maxpool2d_forward: x is NULL"));
    assert_int_equal(clt__maxpool2d_backward(dev, &p, none, a, b, false), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "maxpool2d_backward: argmax is NULL"));
    assert_int_equal(clt__avgpool2d_forward(dev, &p, a, none), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__avgpool2d_backward(dev, &p, none, b, true), CLT_ERR_INVALID_ARGUMENT);
    struct clt__buf far = {a.mem, (size_t)INT32_MAX - 10};
    assert_int_equal(clt__avgpool2d_forward(dev, &p, far, b), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "beyond element 2^31"));
    struct clt__pool2d wrong = p;
    wrong.pad_h = 2;
    assert_int_equal(clt__avgpool2d_forward(dev, &wrong, a, b), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__avgpool2d_forward(NULL, &p, a, b), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__maxpool2d_forward(dev, NULL, a, b, i), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__global_avgpool_forward(dev, 1, 2, 0, 3, a, b), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__global_avgpool_backward(dev, 1, 2, 3, 3, none, b, false),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__global_avgpool_forward(NULL, 1, 2, 3, 3, a, b), CLT_ERR_INVALID_ARGUMENT);
    /* Empty batches enqueue nothing. */
    struct clt__pool2d empty = p;
    empty.n = 0;
    assert_int_equal(clt__maxpool2d_forward(dev, &empty, a, b, i), CLT_OK);
    assert_int_equal(clt__maxpool2d_backward(dev, &empty, i, a, b, false), CLT_OK);
    assert_int_equal(clt__global_avgpool_forward(dev, 0, 2, 3, 3, a, b), CLT_OK);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    clt_arena_free(arena);
    dev->log = saved;
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(resolve_checks_parameters),
        CLT_DEVICE_TEST(launchers_check_buffers),
        CLT_DEVICE_TEST(max_pool),
        CLT_DEVICE_TEST(max_pool_ties_and_padding),
        CLT_DEVICE_TEST(max_pool_nan),
        CLT_DEVICE_TEST(avg_pool),
        CLT_DEVICE_TEST(global_avg_pool),
        CLT_DEVICE_TEST(storage16),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
