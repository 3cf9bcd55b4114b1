/*
 * elementwise_rig.c: the guarded tensors and the one-op-one-shape check of the elementwise
 * tests (elementwise_rig.h); the tolerances are stated at the top of test_elementwise.c.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elementwise_rig.h"
#include "ops/elementwise.h"
#include "ref_elementwise.h"

/* GUARD_VALUE as the storage holds it. */
static float guard_value(enum clt_precision s)
{
    float g = GUARD_VALUE;
    clt_test_round(&g, 1, s);
    return g;
}

/* Writes the guards and host[0..n) (NaN everywhere when host is NULL), rounded to the
 * storage. */
void tensor_write(const struct tensor *t, const float *host)
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

struct tensor tensor_new_st(struct clt_device *dev, const float *host, size_t n,
                            enum clt_precision s)
{
    struct tensor t = {.n = n, .s = s};
    size_t floats = ((n + 2 * GUARD) * clt_test_storage_bytes(s) + 3) / 4;
    assert_int_equal(clt_arena_create(dev, floats * sizeof(float), &t.arena), CLT_OK);
    t.view = clt_test_upload(t.arena, NULL, floats);
    tensor_write(&t, host);
    return t;
}

struct tensor tensor_new(struct clt_device *dev, const float *host, size_t n)
{
    return tensor_new_st(dev, host, n, CLT_PRECISION_FP32);
}

void tensor_free(struct tensor *t)
{
    clt_arena_free(t->arena);
    t->arena = NULL;
}

/* Reads the n elements into host, widened; fails when a guard changed. */
void tensor_read(const struct tensor *t, float *host, const char *what)
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

struct clt__buf tensor_buf(const struct tensor *t)
{
    struct clt__buf b = clt_test_buf_st(&t->view, t->s);
    b.offset += GUARD;
    return b;
}

static const char *const op_names[] = {"copy", "add",  "mul",      "scale",     "bias",
                                       "sum",  "mean", "sum_rows", "mean_rows", "linear"};

/* The most workspace any reduction of a [rows, cols] problem (and linear's bias gradient,
 * [rows, outs]) needs. */
uint64_t workspace_bytes(int64_t rows, int64_t cols, int64_t outs)
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

/* A sum of k terms in [-1, 1) divided by d. */
struct tol sum_tol(int64_t k, double d)
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
 * at the top of test_elementwise.c: in a 16-bit storage, the fp32 one plus the rounding of the
 * result to the storage (an exact fp32 result stays exact). */
static struct tol tolerance(const struct problem *p, int which)
{
    struct tol t = tolerance_fp32(p, which);
    if (p->s == CLT_PRECISION_FP32 || (t.atol == 0.0 && t.rtol == 0.0))
        return t;
    return (struct tol){t.atol + ST_ATOL, t.rtol + clt_test_eps(p->s)};
}

/* Compares n results of p with their tolerance. */
void assert_close(const struct problem *p, const char *what, const float *got, const double *want,
                  size_t n, struct tol t)
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
void run_shapes_st(struct clt_device *dev, enum clt_precision st, enum op op,
                   const int64_t (*shapes)[3], size_t count, bool bias)
{
    for (size_t s = 0; s < count; s++) {
        struct problem p;
        problem_open(&p, dev, st, op, shapes[s][0], shapes[s][1], shapes[s][2], bias);
        check_problem(&p);
        problem_close(&p);
    }
}

void run_shapes(struct clt_device *dev, enum op op, const int64_t (*shapes)[3], size_t count,
                bool bias)
{
    run_shapes_st(dev, CLT_PRECISION_FP32, op, shapes, count, bias);
}
