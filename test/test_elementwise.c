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
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/elementwise.h"
#include "ref_elementwise.h"
#include "st_tensor.h"

/* ==== Tensors between guards ============================================================ */

/* Elements kept on each side of every device tensor, holding GUARD_VALUE. */
#define GUARD 3
#define GUARD_VALUE -1234.5f

static const struct clt__buf NONE = {NULL, 0};

/* n elements of a storage (fp32, or 16 bits: st_tensor.h) on the device, GUARD elements
 * into a buffer of n + 2 * GUARD that is always written whole. Each tensor has a buffer (an
 * arena) of its own because Oclgrind 21.10's --uninitialized check forgets what a buffer held
 * whenever the host writes part of it (each host write replaces the buffer's whole shadow),
 * and reports false errors. */
struct tensor {
    struct clt_arena *arena;
    struct clt_view view;
    size_t n;
    enum clt_precision s;
};

/* GUARD_VALUE as the storage holds it. */
static float guard_value(enum clt_precision s)
{
    float g = GUARD_VALUE;
    clt_test_round(&g, 1, s);
    return g;
}

/* Writes the guards and host[0..n) (NaN everywhere when host is NULL), rounded to the
 * storage. */
static void tensor_write(const struct tensor *t, const float *host)
{
    size_t total = t->n + 2 * GUARD, bytes = clt_test_storage_bytes(t->s);
    float *all = malloc(total * sizeof *all);
    unsigned char *image = malloc(total * bytes);
    assert_true(all && image);
    for (size_t i = 0; i < total; i++)
        all[i] = NAN;
    for (size_t i = 0; i < GUARD; i++)
        all[i] = all[GUARD + t->n + i] = GUARD_VALUE;
    if (host)
        memcpy(all + GUARD, host, t->n * sizeof *host);
    for (size_t i = 0; i < total; i++) {
        if (bytes == 4) {
            memcpy(image + 4 * i, &all[i], 4);
            continue;
        }
        uint16_t h =
            t->s == CLT_PRECISION_FP16 ? clt__f32_to_f16(all[i]) : clt__f32_to_bf16(all[i]);
        memcpy(image + 2 * i, &h, 2);
    }
    assert_int_equal(clt_view_write(&t->view, image, total * bytes, NULL), CLT_OK);
    free(all);
    free(image);
}

static struct tensor tensor_new_st(struct clt_device *dev, const float *host, size_t n,
                                   enum clt_precision s)
{
    struct tensor t = {.n = n, .s = s};
    size_t floats = ((n + 2 * GUARD) * clt_test_storage_bytes(s) + 3) / 4;
    assert_int_equal(clt_arena_create(dev, floats * sizeof(float), &t.arena), CLT_OK);
    t.view = clt_test_upload(t.arena, NULL, floats);
    tensor_write(&t, host);
    return t;
}

static struct tensor tensor_new(struct clt_device *dev, const float *host, size_t n)
{
    return tensor_new_st(dev, host, n, CLT_PRECISION_FP32);
}

static void tensor_free(struct tensor *t)
{
    clt_arena_free(t->arena);
    t->arena = NULL;
}

/* Reads the n elements into host, widened; fails when a guard changed. */
static void tensor_read(const struct tensor *t, float *host, const char *what)
{
    size_t total = t->n + 2 * GUARD;
    float *all = malloc(total * sizeof *all), guard = guard_value(t->s);
    assert_non_null(all);
    clt_test_get_st(&t->view, all, total, t->s);
    for (size_t i = 0; i < GUARD; i++)
        if (all[i] != guard || all[GUARD + t->n + i] != guard)
            fail_msg("%s: an element beside the tensor was overwritten", what);
    if (host)
        memcpy(host, all + GUARD, t->n * sizeof *host);
    free(all);
}

static struct clt__buf tensor_buf(const struct tensor *t)
{
    struct clt__buf b = clt_test_buf_st(&t->view, t->s);
    b.offset += GUARD;
    return b;
}

/* ==== One op on one shape =============================================================== */

/* clang-format off */
enum op { OP_COPY, OP_ADD, OP_MUL, OP_SCALE, OP_BIAS, OP_SUM, OP_MEAN, OP_SUM_ROWS,
          OP_MEAN_ROWS, OP_LINEAR };
/* clang-format on */
static const char *const op_names[] = {"copy", "add",  "mul",      "scale",     "bias",
                                       "sum",  "mean", "sum_rows", "mean_rows", "linear"};

/* Shapes: copy, add, mul, scale, sum, mean have n = cols elements (rows 1); bias, sum_rows
 * and mean_rows [rows, cols]; linear has n = rows, in = cols, out = outs. Inputs are the
 * tensors with gradients, in the launchers' order. */
struct problem {
    struct clt_device *dev;
    enum clt_precision s; /* the storage of every tensor but the workspace, which is float */
    enum op op;
    int64_t rows, cols, outs;
    bool bias;   /* linear: with a bias, the third input */
    float alpha; /* scale */
    size_t inputs;
    size_t in_n[3], y_n;
    float *x[3], *dy; /* host inputs and upstream gradient */
    struct tensor in[3], y, tdy, grad[3], ws;
    char name[96];
};

/* The most workspace any reduction of a [rows, cols] problem (and linear's bias gradient,
 * [rows, outs]) needs. */
static uint64_t workspace_bytes(int64_t rows, int64_t cols, int64_t outs)
{
    uint64_t w[] = {
        clt__reduce_workspace_bytes(rows * cols), clt__sum_axis_workspace_bytes(1, rows, cols),
        clt__sum_axis_workspace_bytes(rows, cols, 1), clt__sum_axis_workspace_bytes(1, rows, outs)};
    uint64_t most = 0;
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        most = w[i] > most ? w[i] : most;
    return most;
}

static void problem_open(struct problem *p, struct clt_device *dev, enum clt_precision s,
                         enum op op, int64_t rows, int64_t cols, int64_t outs, bool bias)
{
    *p = (struct problem){.dev = dev,
                          .s = s,
                          .op = op,
                          .rows = rows,
                          .cols = cols,
                          .outs = outs,
                          .bias = bias,
                          .alpha = -0.625f,
                          .inputs = 1};
    size_t n = (size_t)(rows * cols);
    p->in_n[0] = n;
    p->y_n = n;
    switch (op) {
    case OP_ADD:
    case OP_MUL:
        p->inputs = 2;
        p->in_n[1] = n;
        break;
    case OP_BIAS:
        p->inputs = 2;
        p->in_n[1] = (size_t)cols;
        break;
    case OP_SUM:
    case OP_MEAN:
        p->y_n = 1;
        break;
    case OP_SUM_ROWS:
    case OP_MEAN_ROWS:
        p->y_n = (size_t)rows;
        break;
    case OP_LINEAR:
        p->inputs = bias ? 3 : 2;
        p->in_n[1] = (size_t)(outs * cols);
        p->in_n[2] = (size_t)outs;
        p->y_n = (size_t)(rows * outs);
        break;
    default:
        break;
    }
    snprintf(p->name, sizeof p->name, "%s rows=%lld cols=%lld out=%lld%s %s", op_names[op],
             (long long)rows, (long long)cols, (long long)outs, bias ? " bias" : "", st_name(s));
    for (size_t i = 0; i < p->inputs; i++) {
        p->x[i] = malloc(p->in_n[i] * sizeof *p->x[i]);
        assert_non_null(p->x[i]);
        clt_test_fill(p->x[i], p->in_n[i], 100 + 17 * i + n, -1.0f, 1.0f);
        clt_test_round(p->x[i], p->in_n[i], s);
        p->in[i] = tensor_new_st(dev, p->x[i], p->in_n[i], s);
        p->grad[i] = tensor_new_st(dev, NULL, p->in_n[i], s);
    }
    p->dy = malloc(p->y_n * sizeof *p->dy);
    assert_non_null(p->dy);
    clt_test_fill(p->dy, p->y_n, 7 + n, -1.0f, 1.0f);
    clt_test_round(p->dy, p->y_n, s);
    p->tdy = tensor_new_st(dev, p->dy, p->y_n, s);
    p->y = tensor_new_st(dev, NULL, p->y_n, s);
    size_t ws = (size_t)(workspace_bytes(rows, cols, outs) / sizeof(float));
    p->ws = tensor_new(dev, NULL, ws > 0 ? ws : 1);
}

static void problem_close(struct problem *p)
{
    for (size_t i = 0; i < p->inputs; i++) {
        free(p->x[i]);
        tensor_free(&p->in[i]);
        tensor_free(&p->grad[i]);
    }
    free(p->dy);
    tensor_free(&p->tdy);
    tensor_free(&p->y);
    tensor_free(&p->ws);
}

/* The four dispatchers below read as tables, one op per line: kept so by hand. */
/* clang-format off */

static void forward(struct problem *p)
{
    struct clt__buf a = tensor_buf(&p->in[0]), y = tensor_buf(&p->y);
    struct clt__buf b = p->inputs > 1 ? tensor_buf(&p->in[1]) : NONE;
    struct clt__buf c = p->inputs > 2 ? tensor_buf(&p->in[2]) : NONE;
    struct clt__buf ws = tensor_buf(&p->ws);
    int64_t n = p->rows * p->cols, r = p->rows, k = p->cols;
    struct clt_device *dev = p->dev;
    enum clt_status st = CLT_ERR_INVALID_ARGUMENT;
    switch (p->op) {
    case OP_COPY: st = clt__copy_forward(dev, n, a, y); break;
    case OP_ADD: st = clt__add_forward(dev, n, a, b, y); break;
    case OP_MUL: st = clt__mul_forward(dev, n, a, b, y); break;
    case OP_SCALE: st = clt__scale_forward(dev, n, p->alpha, a, y); break;
    case OP_BIAS: st = clt__bias_forward(dev, r, k, a, b, y); break;
    case OP_SUM: st = clt__sum_forward(dev, n, a, y, ws); break;
    case OP_MEAN: st = clt__mean_forward(dev, n, a, y, ws); break;
    case OP_SUM_ROWS: st = clt__sum_rows_forward(dev, r, k, a, y, ws); break;
    case OP_MEAN_ROWS: st = clt__mean_rows_forward(dev, r, k, a, y, ws); break;
    case OP_LINEAR: st = clt__linear_forward(dev, r, k, p->outs, a, b, c, y); break;
    }
    assert_int_equal(st, CLT_OK);
}

/* Runs the backward for the gradients in `want` (the others skipped). Inputs a backward
 * does not need for those gradients are not passed. */
static void backward(struct problem *p, const bool *want, bool accumulate)
{
    struct clt__buf g[3], dy = tensor_buf(&p->tdy);
    for (size_t i = 0; i < 3; i++)
        g[i] = i < p->inputs && want[i] ? tensor_buf(&p->grad[i]) : NONE;
    struct clt__buf a = want[1] ? tensor_buf(&p->in[0]) : NONE;
    struct clt__buf b = want[0] && p->inputs > 1 ? tensor_buf(&p->in[1]) : NONE;
    struct clt__buf ws = tensor_buf(&p->ws);
    int64_t n = p->rows * p->cols, r = p->rows, k = p->cols;
    struct clt_device *dev = p->dev;
    bool acc = accumulate;
    enum clt_status st = CLT_ERR_INVALID_ARGUMENT;
    switch (p->op) {
    case OP_COPY: st = clt__copy_backward(dev, n, dy, g[0], acc); break;
    case OP_ADD: st = clt__add_backward(dev, n, dy, g[0], g[1], acc); break;
    case OP_MUL: st = clt__mul_backward(dev, n, a, b, dy, g[0], g[1], acc); break;
    case OP_SCALE: st = clt__scale_backward(dev, n, p->alpha, dy, g[0], acc); break;
    case OP_BIAS: st = clt__bias_backward(dev, r, k, dy, g[0], g[1], acc, ws); break;
    case OP_SUM: st = clt__sum_backward(dev, n, dy, g[0], acc); break;
    case OP_MEAN: st = clt__mean_backward(dev, n, dy, g[0], acc); break;
    case OP_SUM_ROWS: st = clt__sum_rows_backward(dev, r, k, dy, g[0], acc); break;
    case OP_MEAN_ROWS: st = clt__mean_rows_backward(dev, r, k, dy, g[0], acc); break;
    case OP_LINEAR:
        st = clt__linear_backward(dev, r, k, p->outs, a, b, dy, g[0], g[1], g[2], acc, ws);
        break;
    }
    assert_int_equal(st, CLT_OK);
}

static void ref_forward(const struct problem *p, double *y)
{
    size_t n = (size_t)(p->rows * p->cols), r = (size_t)p->rows, c = (size_t)p->cols;
    const float *a = p->x[0], *b = p->x[1], *bias = p->bias ? p->x[2] : NULL;
    switch (p->op) {
    case OP_COPY: ref_copy_forward(n, a, y); break;
    case OP_ADD: ref_add_forward(n, a, b, y); break;
    case OP_MUL: ref_mul_forward(n, a, b, y); break;
    case OP_SCALE: ref_scale_forward(n, p->alpha, a, y); break;
    case OP_BIAS: ref_bias_forward(r, c, a, b, y); break;
    case OP_SUM: y[0] = ref_sum_forward(n, a); break;
    case OP_MEAN: y[0] = ref_sum_forward(n, a) / (double)n; break;
    case OP_SUM_ROWS: ref_sum_rows_forward(r, c, 1.0, a, y); break;
    case OP_MEAN_ROWS: ref_sum_rows_forward(r, c, (double)c, a, y); break;
    case OP_LINEAR: ref_linear_forward(r, c, (size_t)p->outs, a, b, bias, y); break;
    }
}

/* The gradient of input i for the upstream p->dy, added to prev unless prev is NULL. */
static void ref_grad(const struct problem *p, size_t i, const float *prev, double *g)
{
    size_t n = (size_t)(p->rows * p->cols), r = (size_t)p->rows, c = (size_t)p->cols;
    size_t out = (size_t)p->outs;
    const float *dy = p->dy;
    switch (p->op) {
    case OP_COPY:
    case OP_ADD: ref_copy_backward(n, dy, prev, g); break;
    case OP_MUL: ref_mul_backward(n, dy, p->x[1 - i], prev, g); break;
    case OP_SCALE: ref_scale_backward(n, p->alpha, dy, prev, g); break;
    case OP_BIAS:
        if (i == 0)
            ref_copy_backward(n, dy, prev, g);
        else
            ref_bias_backward(r, c, dy, prev, g);
        break;
    case OP_SUM: ref_sum_backward(1, n, 1.0, dy, prev, g); break;
    case OP_MEAN: ref_sum_backward(1, n, (double)n, dy, prev, g); break;
    case OP_SUM_ROWS: ref_sum_backward(r, c, 1.0, dy, prev, g); break;
    case OP_MEAN_ROWS: ref_sum_backward(r, c, (double)c, dy, prev, g); break;
    case OP_LINEAR:
        if (i == 0)
            ref_linear_backward_x(r, c, out, p->x[1], dy, prev, g);
        else if (i == 1)
            ref_linear_backward_weight(r, c, out, p->x[0], dy, prev, g);
        else
            ref_bias_backward(r, out, dy, prev, g);
        break;
    }
}

/* clang-format on */

struct tol {
    double atol, rtol;
};

static const struct tol ELEMENTWISE = {1e-7, 2.4e-7};

/* A sum of k terms in [-1, 1) divided by d. */
static struct tol sum_tol(int64_t k, double d)
{
    return (struct tol){4e-7 * (double)k / d, 2.4e-7};
}

/* A GEMM with dot products of length k. */
static struct tol gemm_tol(int64_t k)
{
    return (struct tol){1e-5 * (double)(k + 1), 1e-5};
}

static struct tol tolerance_fp32(const struct problem *p, int which);

/* The tolerance of the forward output (which < 0) or of input which's gradient, as stated
 * at the top of the file: in a 16-bit storage, the fp32 one plus the rounding of the result
 * to the storage (an exact fp32 result stays exact). */
static struct tol tolerance(const struct problem *p, int which)
{
    struct tol t = tolerance_fp32(p, which);
    if (p->s == CLT_PRECISION_FP32 || (t.atol == 0.0 && t.rtol == 0.0))
        return t;
    return (struct tol){t.atol + ST_ATOL, t.rtol + clt_test_eps(p->s)};
}

/* Compares n results of p with their tolerance. */
static void assert_close(const struct problem *p, const char *what, const float *got,
                         const double *want, size_t n, struct tol t)
{
    if (p->s == CLT_PRECISION_FP32)
        clt_test_assert_close(what, got, want, n, t.atol, t.rtol);
    else
        st_assert_close(what, p->s, got, want, n, t.atol, t.rtol);
}

static struct tol tolerance_fp32(const struct problem *p, int which)
{
    int64_t n = p->rows * p->cols;
    switch (p->op) {
    case OP_COPY:
        return which < 0 ? (struct tol){0.0, 0.0} : ELEMENTWISE;
    case OP_BIAS:
        return which == 1 ? sum_tol(p->rows, 1.0) : ELEMENTWISE;
    case OP_SUM:
        return which < 0 ? sum_tol(n, 1.0) : ELEMENTWISE;
    case OP_MEAN:
        return which < 0 ? sum_tol(n, (double)n) : ELEMENTWISE;
    case OP_SUM_ROWS:
        return which < 0 ? sum_tol(p->cols, 1.0) : ELEMENTWISE;
    case OP_MEAN_ROWS:
        return which < 0 ? sum_tol(p->cols, (double)p->cols) : ELEMENTWISE;
    case OP_LINEAR:
        if (which < 0)
            return gemm_tol(p->cols + 1);
        if (which == 2)
            return sum_tol(p->rows, 1.0);
        return gemm_tol(which == 0 ? p->outs : p->rows);
    default:
        return ELEMENTWISE;
    }
}

/* The loss sum_j dy[j] * y[j] with one input replaced, through the device's forward. */
struct probe {
    struct problem *p;
    size_t input;
    float *y;
};

static double probe_loss(void *ctx, const float *x, size_t n)
{
    struct probe *pr = ctx;
    struct problem *p = pr->p;
    assert_int_equal(n, p->in_n[pr->input]);
    tensor_write(&p->in[pr->input], x);
    forward(p);
    tensor_read(&p->y, pr->y, p->name);
    double loss = 0.0;
    for (size_t j = 0; j < p->y_n; j++)
        loss += (double)p->dy[j] * pr->y[j];
    return loss;
}

/* Largest tensor a finite-difference check runs on. */
#define GRADCHECK_MAX 4096

static void check_gradients(struct problem *p, float *got, double *want)
{
    char what[160];
    for (size_t i = 0; i < p->inputs; i++) {
        size_t n = p->in_n[i];
        if (n > GRADCHECK_MAX)
            continue;
        bool one[3] = {false, false, false};
        one[i] = true;
        backward(p, one, false);
        tensor_read(&p->grad[i], got, p->name);
        ref_grad(p, i, NULL, want);
        double most = 0.0;
        for (size_t k = 0; k < n; k++)
            most = fmax(most, fabs(want[k]));
        struct probe pr = {p, i, malloc(p->y_n * sizeof(float))};
        assert_non_null(pr.y);
        snprintf(what, sizeof what, "%s: finite differences of gradient %zu", p->name, i);
        /* Fewer probes under Oclgrind, where each forward takes a while. */
        size_t samples = clt_test_small() ? 4 : 8;
        clt_test_gradcheck(what, probe_loss, &pr, p->x[i], n, got, samples, 0.25, 1e-3 * most,
                           1e-3);
        tensor_write(&p->in[i], p->x[i]);
        free(pr.y);
    }
}

/* Compares gradient i on the device with the reference (prev: accumulated on). */
static void compare_grad(struct problem *p, size_t i, const float *prev, float *got, double *want,
                         const char *how)
{
    char what[160];
    struct tol t = tolerance(p, (int)i);
    tensor_read(&p->grad[i], got, p->name);
    ref_grad(p, i, prev, want);
    snprintf(what, sizeof what, "%s: gradient %zu, %s", p->name, i, how);
    assert_close(p, what, got, want, p->in_n[i], t);
}

static void check_problem(struct problem *p)
{
    size_t most = p->y_n;
    for (size_t i = 0; i < p->inputs; i++)
        most = p->in_n[i] > most ? p->in_n[i] : most;
    float *got = malloc(most * sizeof *got), *prev = malloc(most * sizeof *prev);
    double *want = malloc(most * sizeof *want);
    assert_true(got && prev && want);
    char what[160];

    forward(p);
    tensor_read(&p->y, got, p->name);
    tensor_read(&p->ws, NULL, p->name);
    ref_forward(p, want);
    struct tol t = tolerance(p, -1);
    snprintf(what, sizeof what, "%s: forward", p->name);
    assert_close(p, what, got, want, p->y_n, t);

    /* One gradient at a time: the others are skipped and keep what they hold. */
    for (size_t i = 0; i < p->inputs; i++) {
        bool one[3] = {false, false, false};
        one[i] = true;
        for (size_t j = 0; j < p->inputs; j++)
            tensor_write(&p->grad[j], j == i ? NULL : p->x[j]);
        backward(p, one, false);
        compare_grad(p, i, NULL, got, want, "written");
        for (size_t j = 0; j < p->inputs; j++) {
            if (j == i)
                continue;
            tensor_read(&p->grad[j], got, p->name);
            if (memcmp(got, p->x[j], p->in_n[j] * sizeof *got) != 0)
                fail_msg("%s: gradient %zu was skipped but changed", p->name, j);
        }
        clt_test_fill(prev, p->in_n[i], 55 + i, -1.0f, 1.0f);
        clt_test_round(prev, p->in_n[i], p->s);
        tensor_write(&p->grad[i], prev);
        backward(p, one, true);
        compare_grad(p, i, prev, got, want, "accumulated");
    }

    /* Every gradient in one call. */
    if (p->inputs > 1) {
        bool all[3] = {true, true, true};
        for (size_t i = 0; i < p->inputs; i++)
            tensor_write(&p->grad[i], NULL);
        backward(p, all, false);
        for (size_t i = 0; i < p->inputs; i++)
            compare_grad(p, i, NULL, got, want, "written with the others");
    }

    if (p->s == CLT_PRECISION_FP32) /* finite differences stay in fp32 */
        check_gradients(p, got, want);
    free(got);
    free(prev);
    free(want);
}

/* Runs one op over a list of {rows, cols, outs} shapes in a storage. */
static void run_shapes_st(struct clt_device *dev, enum clt_precision st, enum op op,
                          const int64_t (*shapes)[3], size_t count, bool bias)
{
    for (size_t s = 0; s < count; s++) {
        struct problem p;
        problem_open(&p, dev, st, op, shapes[s][0], shapes[s][1], shapes[s][2], bias);
        check_problem(&p);
        problem_close(&p);
    }
}

static void run_shapes(struct clt_device *dev, enum op op, const int64_t (*shapes)[3], size_t count,
                       bool bias)
{
    run_shapes_st(dev, CLT_PRECISION_FP32, op, shapes, count, bias);
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

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
                                     {7, 64, 0},   {131, 96, 0}};
    /* Columns in fours take sum_axis4. */
    static const int64_t small[][3] = {{1, 1, 0},  {1, 37, 0}, {5, 19, 0}, {13, 3, 0},
                                       {65, 3, 0}, {3, 65, 0}, {65, 4, 0}, {5, 32, 0}};
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

/* sum_axis4 (columns in fours) adds lane by lane as sum_axis does: the column sums of X
 * [rows, 68] (four at a time) equal, bit for bit, the row sums of its transpose (inner 1,
 * one at a time), which add the same values in the same chunks and order. */
static void four_columns_sum_as_one(void **state)
{
    struct clt_device *dev = *state;
    const size_t rows = clt_test_small() ? 70 : 4099, cols = 68, n = rows * cols;
    float *x = malloc(n * sizeof *x), *xt = malloc(n * sizeof *xt);
    float by4[68], by1[68];
    assert_true(x && xt);
    clt_test_fill(x, n, 77, -1.0f, 1.0f);
    x[5 * cols + 1] = 16777216.0f; /* a column whose compensation matters */
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            xt[c * rows + r] = x[r * cols + c];
    size_t ws =
        (size_t)(clt__sum_axis_workspace_bytes(1, (int64_t)rows, (int64_t)cols) / sizeof(float));
    struct tensor tx = tensor_new(dev, x, n), txt = tensor_new(dev, xt, n);
    struct tensor ta = tensor_new(dev, NULL, cols), tb = tensor_new(dev, NULL, cols);
    struct tensor tws = tensor_new(dev, NULL, ws);
    assert_int_equal(clt__bias_backward(dev, (int64_t)rows, (int64_t)cols, tensor_buf(&tx), NONE,
                                        tensor_buf(&ta), false, tensor_buf(&tws)),
                     CLT_OK);
    assert_int_equal(clt__sum_rows_forward(dev, (int64_t)cols, (int64_t)rows, tensor_buf(&txt),
                                           tensor_buf(&tb), tensor_buf(&tws)),
                     CLT_OK);
    tensor_read(&ta, by4, "column sums by four");
    tensor_read(&tb, by1, "row sums of the transpose");
    for (size_t c = 0; c < cols; c++)
        if (memcmp(&by4[c], &by1[c], sizeof by4[c]) != 0)
            fail_msg("column %zu: %.9g by four, %.9g one at a time", c, by4[c], by1[c]);
    tensor_free(&tx);
    tensor_free(&txt);
    tensor_free(&ta);
    tensor_free(&tb);
    tensor_free(&tws);
    free(x);
    free(xt);
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

/* ==== 16-bit storage ===================================================================== */

/* Every op but linear (its GEMM is tested in test_gemm) in fp16 and bf16, through the same
 * problems as above (guards, odd offsets, accumulate, skipped gradients, every gradient in
 * one call) on inputs rounded to the storage: the elementwise ops; bias and row sums with
 * sums along an axis of one round (5), two (65: sum_axis_part and _last) and three (4099:
 * _wide too), in ones and in fours of columns (bias: and in whole 32-column blocks, which take
 * bias_forward_cols32); full sums of one chunk, of one round of
 * partials (257: sum_finish_wide) and of two (66001: sum_partials_wide). */
static void ops_in_16_bit(void **state)
{
    struct clt_device *dev = *state;
    static const int64_t ew_big[][3] = {{1, 1, 0}, {1, 37, 0}, {1, 64, 0}, {1, 1000, 0}};
    static const int64_t ew_small[][3] = {{1, 1, 0}, {1, 37, 0}, {1, 64, 0}};
    static const int64_t axis_big[][3] = {{5, 19, 0},   {65, 3, 0},   {65, 8, 0}, {4099, 3, 0},
                                          {4099, 8, 0}, {3, 4099, 0}, {7, 64, 0}};
    static const int64_t axis_small[][3] = {
        {5, 19, 0}, {65, 3, 0}, {65, 4, 0}, {3, 65, 0}, {5, 32, 0}};
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
static void fill_axpy_and_aliasing_in_16_bit(void **state)
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
static void buffers_are_checked_in_the_storage(void **state)
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

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(arithmetic),
        CLT_DEVICE_TEST(bias_and_row_sums),
        CLT_DEVICE_TEST(full_sums),
        CLT_DEVICE_TEST(sums_longer_than_a_work_item_loop),
        CLT_DEVICE_TEST(four_columns_sum_as_one),
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
