/*
 * test_ops_linear.c: the rows of test_ops.c's table for matmul, linear and the elementwise and
 * broadcasting ops (add, sub, mul, scale, add_bias, mul_broadcast, sum, mean): their C
 * references in double, their builders and their rows.
 */

#include "ops_rig.h"
#include "ref_elementwise.h"

/* ==== References ========================================================================= */

static void matmul_ref(const struct ctx *c, bool ta, bool tb, double *y)
{
    const struct decl *a = &c->decl[0], *b = &c->decl[1];
    uint32_t d = a->ndim;
    int64_t batch = d == 3 ? a->shape[0] : 1;
    int64_t m = ta ? a->shape[d - 1] : a->shape[d - 2], k = ta ? a->shape[d - 2] : a->shape[d - 1];
    int64_t n = tb ? b->shape[d - 2] : b->shape[d - 1];
    for (int64_t q = 0; q < batch; q++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t l = 0; l < k; l++) {
                    double av = F(c, 0)[q * m * k + (ta ? l * m + i : i * k + l)];
                    double bv = F(c, 1)[q * k * n + (tb ? j * k + l : l * n + j)];
                    s += av * bv;
                }
                y[(q * m + i) * n + j] = s;
            }
}

static void ref_matmul(const struct ctx *c, double *y)
{
    matmul_ref(c, false, false, y);
}

static void ref_matmul_tt(const struct ctx *c, double *y)
{
    matmul_ref(c, true, true, y);
}

/* linear: x is p[0], weight p[1], bias p[2] (when made). */
static void ref_linear(const struct ctx *c, double *y)
{
    int64_t in = c->decl[0].shape[c->decl[0].ndim - 1], n = count_of(&c->decl[0]) / in;
    int64_t out = c->pn[1] / in;
    ref_linear_forward((size_t)n, (size_t)in, (size_t)out, c->p[0], c->p[1],
                       c->np > 2 ? c->p[2] : NULL, y);
}

/* add, sub, mul: declared a and b of any shapes that broadcast. */
static void ref_binary(const struct ctx *c, char op, double *y)
{
    ref_broadcast_forward(op, c->decl[0].ndim, S(c, 0), F(c, 0), c->decl[1].ndim, S(c, 1), F(c, 1),
                          y);
}

static void ref_add(const struct ctx *c, double *y)
{
    ref_binary(c, '+', y);
}

static void ref_sub(const struct ctx *c, double *y)
{
    ref_binary(c, '-', y);
}

static void ref_mul(const struct ctx *c, double *y)
{
    ref_binary(c, '*', y);
}

static void ref_scale(const struct ctx *c, double *y)
{
    ref_scale_forward((size_t)c->ny, -1.75f, F(c, 0), y);
}

static void ref_add_bias(const struct ctx *c, double *y)
{
    int64_t cols = count_of(&c->decl[1]);
    ref_bias_forward((size_t)(c->ny / cols), (size_t)cols, F(c, 0), F(c, 1), y);
}

static void ref_mul_broadcast(const struct ctx *c, double *y)
{
    int64_t cols = count_of(&c->decl[1]);
    for (int64_t i = 0; i < c->ny; i++)
        y[i] = (double)F(c, 0)[i] * F(c, 1)[i % cols];
}

static void ref_sum(const struct ctx *c, double *y)
{
    y[0] = ref_sum_forward((size_t)count_of(&c->decl[0]), F(c, 0));
}

static void ref_mean(const struct ctx *c, double *y)
{
    int64_t n = count_of(&c->decl[0]);
    y[0] = ref_sum_forward((size_t)n, F(c, 0)) / (double)n;
}

/* ==== Builders =========================================================================== */

static struct clt_tensor *b_matmul(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_matmul(g, t[0], t[1], false, false);
}

static struct clt_tensor *b_matmul_tt(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_matmul(g, t[0], t[1], true, true);
}

static struct clt_tensor *b_linear(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_linear(g, t[0], 6, true, "fc");
}

static struct clt_tensor *b_linear_nobias(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_linear(g, t[0], 4, false, "fc");
}

static struct clt_tensor *b_add(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_add(g, t[0], t[1]);
}

static struct clt_tensor *b_sub(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_sub(g, t[0], t[1]);
}

static struct clt_tensor *b_mul(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_mul(g, t[0], t[1]);
}

static struct clt_tensor *b_scale(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_scale(g, t[0], -1.75f);
}

static struct clt_tensor *b_add_bias(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_add_bias(g, t[0], t[1]);
}

static struct clt_tensor *b_mul_broadcast(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_mul_broadcast(g, t[0], t[1]);
}

static struct clt_tensor *b_sum(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_sum(g, t[0]);
}

static struct clt_tensor *b_mean(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_mean(g, t[0]);
}

const struct op_case ops_linear_cases[] = {
    {"matmul", "matmul", 2, {P2(3, 5), P2(5, 4)}, .build = b_matmul, .ref = ref_matmul},
    {"matmul",
     "matmul trans_a trans_b",
     2,
     {P2(5, 3), P2(4, 5)},
     .build = b_matmul_tt,
     .ref = ref_matmul_tt,
     .no_batch1 = true},
    {"matmul", "matmul 3-D", 2, {P3(2, 3, 5), P3(2, 5, 4)}, .build = b_matmul, .ref = ref_matmul},
    {"linear", "linear with bias, 3-D x", 1, {P3(3, 2, 7)}, .build = b_linear, .ref = ref_linear},
    {"linear", "linear without bias", 1, {P2(5, 7)}, .build = b_linear_nobias, .ref = ref_linear},
    {"add", "add", 2, {P2(3, 7), P2(3, 7)}, .build = b_add, .ref = ref_add},
    {"add", "add [T, D] + [N, T, D]", 2, {P2(4, 5), P3(3, 4, 5)}, .build = b_add, .ref = ref_add},
    {"add", "add [N, T, D] + [D]", 2, {P3(3, 4, 5), P1(5)}, .build = b_add, .ref = ref_add},
    {"sub", "sub", 2, {P2(3, 7), P2(3, 7)}, .build = b_sub, .ref = ref_sub},
    {"sub", "sub [N, T, D] - [T, 1]", 2, {P3(3, 4, 5), P2(4, 1)}, .build = b_sub, .ref = ref_sub},
    {"sub", "sub [1] - [N, D]", 2, {P1(1), P2(3, 7)}, .build = b_sub, .ref = ref_sub},
    {"mul", "mul", 2, {P2(3, 7), P2(3, 7)}, .build = b_mul, .ref = ref_mul},
    {"mul",
     "mul [N, 1, D] * [1, T, 1]",
     2,
     {P3(3, 1, 5), P3(1, 4, 1)},
     .build = b_mul,
     .ref = ref_mul},
    {"mul", "mul [N, T, D] * [T, D]", 2, {P3(3, 4, 5), P2(4, 5)}, .build = b_mul, .ref = ref_mul},
    {"mul",
     "mul [2, 1, 3, 1, 2, 1] * [3, 1, 2, 1, 2]",
     2,
     {{PARAM, 6, {2, 1, 3, 1, 2, 1}, 0, 0}, {PARAM, 5, {3, 1, 2, 1, 2}, 0, 0}},
     .build = b_mul,
     .ref = ref_mul},
    {"scale", "scale", 1, {P2(3, 7)}, .build = b_scale, .ref = ref_scale},
    {"add_bias",
     "add_bias",
     2,
     {P3(3, 4, 5), {PARAM, 1, {5}, 0, 0}},
     .build = b_add_bias,
     .ref = ref_add_bias},
    {"add_bias",
     "add_bias [T, D] on [N, T, D]",
     2,
     {P3(3, 4, 5), P2(4, 5)},
     .build = b_add_bias,
     .ref = ref_add_bias},
    {"mul_broadcast",
     "mul_broadcast [T, D] on [N, T, D]",
     2,
     {P3(3, 4, 5), P2(4, 5)},
     .build = b_mul_broadcast,
     .ref = ref_mul_broadcast},
    {"mul_broadcast",
     "mul_broadcast [D] on [N, D]",
     2,
     {P2(5, 7), {PARAM, 1, {7}, 0, 0}},
     .build = b_mul_broadcast,
     .ref = ref_mul_broadcast},
    {"sum", "sum", 1, {P2(3, 7)}, .build = b_sum, .ref = ref_sum},
    {"sum", "mean", 1, {P2(3, 7)}, .build = b_mean, .ref = ref_mean},
};
const size_t ops_linear_count = sizeof ops_linear_cases / sizeof ops_linear_cases[0];
