/*
 * broadcast.c: the binary arithmetic family: planning a numpy broadcast, its launchers
 * (contracts in ops/broadcast.h), then the graph ops add, sub and mul of any two shapes that
 * broadcast, and add_bias and mul_broadcast, whose second input is the trailing axes of the
 * first (their definitions in the registry, ops/ops.h, and their public builders). Tensors
 * are in the device's storage (clt__storage_bytes); the partial sums of the workspace float.
 */
#include <stdio.h>
#include <string.h>

#include "graph.h"
#include "ops/broadcast.h"
#include "ops/elementwise.h"

/* ==== Planning ========================================================================== */

/* Size of axis i counted from the end (0 the last) of a shape of n axes; 1 past its start. */
static int64_t axis_from_end(uint32_t n, const int64_t *shape, uint32_t i)
{
    return i < n ? shape[n - 1 - i] : 1;
}

bool clt__broadcast_shape(uint32_t an, const int64_t *as, uint32_t bn, const int64_t *bs,
                          uint32_t *yn, int64_t *ys, int *axis)
{
    uint32_t n = an > bn ? an : bn;
    for (uint32_t i = 0; i < n; i++) {
        int64_t sa = axis_from_end(an, as, i), sb = axis_from_end(bn, bs, i);
        if (sa != sb && sa != 1 && sb != 1) {
            *axis = -(int)i - 1;
            return false;
        }
        ys[n - 1 - i] = sa == 1 ? sb : sa;
    }
    *yn = n;
    return true;
}

void clt__broadcast_plan(uint32_t an, const int64_t *as, uint32_t bn, const int64_t *bs,
                         struct clt__broadcast *plan)
{
    uint32_t n = an > bn ? an : bn, d = 0;
    uint32_t last_a = 0, last_b = 0; /* what the previous merged axis has */
    memset(plan, 0, sizeof *plan);
    for (uint32_t i = 0; i < n; i++) {
        int64_t sa = axis_from_end(an, as, i), sb = axis_from_end(bn, bs, i);
        int64_t sy = sa == 1 ? sb : sa;
        if (sy == 1)
            continue; /* no axis: every input has its one element */
        uint32_t ha = sa == sy, hb = sb == sy;
        if (d > 0 && ha == last_a && hb == last_b) {
            plan->shape[d - 1] *= sy;
            continue;
        }
        plan->shape[d] = sy;
        plan->amask |= ha << d;
        plan->bmask |= hb << d;
        last_a = ha;
        last_b = hb;
        d++;
    }
    if (d == 0) {
        plan->shape[0] = 1;
        plan->amask = plan->bmask = 1;
        d = 1;
    }
    plan->ndim = d;
}

/* Elements of the axes of a mask (all axes: mask of every bit). */
static int64_t plan_count(const struct clt__broadcast *plan, uint32_t mask)
{
    int64_t n = 1;
    for (uint32_t d = 0; d < plan->ndim; d++)
        if ((mask >> d) & 1)
            n *= plan->shape[d];
    return n;
}

static uint32_t all_axes(const struct clt__broadcast *plan)
{
    return (1u << plan->ndim) - 1;
}

/* The plan is well formed and its output fits int indexing. */
static enum clt_status check_plan(struct clt_device *dev, const char *op,
                                  const struct clt__broadcast *plan)
{
    bool ok = plan && plan->ndim >= 1 && plan->ndim <= CLT__CL_BROADCAST_DIMS &&
              (plan->amask | plan->bmask) == all_axes(plan);
    int64_t n = 1;
    for (uint32_t d = 0; ok && d < plan->ndim; d++) {
        ok = plan->shape[d] >= 1 && plan->shape[d] <= INT32_MAX / n;
        n *= ok ? plan->shape[d] : 1;
    }
    if (ok)
        return CLT_OK;
    clt__log(&dev->log, CLT_LOG_ERROR,
             "%s: a broadcast plan needs 1..%d axes, each of a size >= 1, with at most 2^31-1 "
             "elements and every axis had by an input",
             op, CLT__CL_BROADCAST_DIMS);
    return CLT_ERR_INVALID_ARGUMENT;
}

/* The sizes of a plan as the kernels' s0..s5 (unused axes 1). */
static void plan_sizes(const struct clt__broadcast *plan, cl_int s[CLT__CL_BROADCAST_DIMS])
{
    for (uint32_t d = 0; d < CLT__CL_BROADCAST_DIMS; d++)
        s[d] = d < plan->ndim ? (cl_int)plan->shape[d] : 1;
}

/* The stride in an input of mask m of every axis of the plan: 0 where it is stretched, else
 * the product of the sizes of its axes inside this one (unused axes 0). */
static void plan_strides(const struct clt__broadcast *plan, uint32_t m,
                         cl_int t[CLT__CL_BROADCAST_DIMS])
{
    int64_t stride = 1;
    for (uint32_t d = 0; d < CLT__CL_BROADCAST_DIMS; d++) {
        bool has = d < plan->ndim && ((m >> d) & 1);
        t[d] = has ? (cl_int)stride : 0;
        stride *= has ? plan->shape[d] : 1;
    }
}

/* When an input of mask m is stretched along exactly one axis of the plan, the plan seen as
 * [outer, count, inner] around that axis (count its size), and true. */
static bool one_stretched_axis(const struct clt__broadcast *plan, uint32_t m, int64_t *outer,
                               int64_t *count, int64_t *inner)
{
    uint32_t missing = ~m & ((1u << plan->ndim) - 1), axis = 0;
    if (missing == 0 || (missing & (missing - 1)) != 0)
        return false;
    while (!((missing >> axis) & 1))
        axis++;
    *inner = *outer = 1;
    for (uint32_t d = 0; d < plan->ndim; d++) {
        if (d < axis)
            *inner *= plan->shape[d];
        else if (d > axis)
            *outer *= plan->shape[d];
    }
    *count = plan->shape[axis];
    return true;
}

/* A trailing block broadcast over leading axes: two axes, the inner one had by both, the
 * outer one by `full` only. */
static bool is_bias(const struct clt__broadcast *plan, uint32_t full, uint32_t part)
{
    return plan->ndim == 2 && full == 3 && part == 1;
}

/* ==== Launchers ========================================================================= */

enum clt_status clt__broadcast_forward(struct clt_device *dev, enum clt__binary op,
                                       const struct clt__broadcast *plan, struct clt__buf a,
                                       struct clt__buf b, struct clt__buf y)
{
    static const char name[] = "broadcast_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_plan(dev, name, plan);
    if (st != CLT_OK)
        return st;
    uint32_t all = all_axes(plan), am = plan->amask, bm = plan->bmask;
    int64_t n = plan_count(plan, all);
    if (am == all && bm == all) {
        if (op == CLT__BINARY_ADD)
            return clt__add_forward(dev, n, a, b, y);
        if (op == CLT__BINARY_MUL)
            return clt__mul_forward(dev, n, a, b, y);
    }
    int64_t rows = plan->shape[1], cols = plan->shape[0];
    if (op == CLT__BINARY_ADD && (is_bias(plan, am, bm) || is_bias(plan, bm, am)))
        return is_bias(plan, am, bm) ? clt__bias_forward(dev, rows, cols, a, b, y)
                                     : clt__bias_forward(dev, rows, cols, b, a, y);
    if (op == CLT__BINARY_MUL && (is_bias(plan, am, bm) || is_bias(plan, bm, am)))
        return is_bias(plan, am, bm) ? clt__mul_broadcast_forward(dev, rows, cols, a, b, y)
                                     : clt__mul_broadcast_forward(dev, rows, cols, b, a, y);
    size_t bytes = clt__storage_bytes(dev);
    st = clt__check_buf(dev, a, plan_count(plan, am), bytes, name, "a");
    if (st == CLT_OK)
        st = clt__check_buf(dev, b, plan_count(plan, bm), bytes, name, "b");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, n, bytes, name, "y");
    if (st != CLT_OK)
        return st;
    if (op == CLT__BINARY_SUB && am == all && bm == all)
        return CLT__RUN(dev, CLT__K_sub_forward, (size_t)n, CLT__I32(n), CLT__BUF(a), CLT__BUF(b),
                        CLT__BUF(y));
    cl_int s[CLT__CL_BROADCAST_DIMS], as[CLT__CL_BROADCAST_DIMS], bs[CLT__CL_BROADCAST_DIMS];
    plan_sizes(plan, s);
    plan_strides(plan, am, as);
    plan_strides(plan, bm, bs);
    /* 3-D: axes 0 and 1, then the rest (the output has < 2^31 elements). */
    size_t items[3] = {(size_t)s[0], (size_t)s[1], (size_t)(s[2] * s[3] * s[4] * s[5])};
    return CLT__RUN_ND(dev, CLT__K_broadcast_forward, 3, items, CLT__I32(op), CLT__I32(s[0]),
                       CLT__I32(s[1]), CLT__I32(s[2]), CLT__I32(s[3]), CLT__I32(s[4]),
                       CLT__I32(s[5]), CLT__I32(as[0]), CLT__I32(as[1]), CLT__I32(as[2]),
                       CLT__I32(as[3]), CLT__I32(as[4]), CLT__I32(as[5]), CLT__I32(bs[0]),
                       CLT__I32(bs[1]), CLT__I32(bs[2]), CLT__I32(bs[3]), CLT__I32(bs[4]),
                       CLT__I32(bs[5]), CLT__BUF(a), CLT__BUF(b), CLT__BUF(y));
}

/* Outputs summed into one partial of a gradient element by broadcast_backward. A constant,
 * not a tunable: results depend on it, and must not depend on the device. */
#define CHUNK 256

/* Floats of workspace a gradient of nx elements, each the sum of count outputs, needs: the
 * partials of every round but the last. */
static int64_t reduce_floats(int64_t nx, int64_t count)
{
    int64_t floats = 0;
    while (count > CHUNK) {
        count = (count + CHUNK - 1) / CHUNK;
        floats += nx * count;
    }
    return floats;
}

/* Bytes either reduction of the gradient of an input of mask m may need. */
static uint64_t grad_workspace(const struct clt__broadcast *plan, uint32_t m)
{
    int64_t n = plan_count(plan, all_axes(plan)), nx = plan_count(plan, m), outer, count, inner;
    uint64_t general = (uint64_t)reduce_floats(nx, n / nx) * sizeof(float), axis = 0;
    if (one_stretched_axis(plan, m, &outer, &count, &inner))
        axis = clt__sum_axis_workspace_bytes(outer, count, inner);
    return general > axis ? general : axis;
}

uint64_t clt__broadcast_workspace_bytes(const struct clt__broadcast *plan)
{
    uint64_t a = grad_workspace(plan, plan->amask), b = grad_workspace(plan, plan->bmask);
    return a > b ? a : b;
}

/* The broadcast_backward kernels by what a round reads and writes (cl/elementwise.cl):
 * [src partials][dst partials], tensors in the storage, partials float. */
static const enum clt__kernel_id backward_ids[2][2] = {
    {CLT__K_broadcast_backward, CLT__K_broadcast_backward_part},
    {CLT__K_broadcast_backward_last, CLT__K_broadcast_backward_wide}};

/* One round of broadcast_backward over `plan`: dst [nx, parts] gets the sums of `chunk`
 * outputs each (the last part fewer), written or added times sign. src_part and dst_part:
 * src (and other) and dst are float partial sums of the workspace, not tensors. */
static enum clt_status reduce_round(struct clt_device *dev, const struct clt__broadcast *plan,
                                    uint32_t xm, uint32_t om, bool product, float sign,
                                    struct clt__buf src, struct clt__buf other, int64_t parts,
                                    int64_t chunk, struct clt__buf dst, bool accumulate,
                                    bool src_part, bool dst_part)
{
    int64_t nx = plan_count(plan, xm), count = plan_count(plan, all_axes(plan)) / nx;
    cl_int s[CLT__CL_BROADCAST_DIMS];
    plan_sizes(plan, s);
    return CLT__RUN(dev, backward_ids[src_part][dst_part], (size_t)(nx * parts),
                    CLT__I32(nx * parts), CLT__I32(parts), CLT__I32(chunk), CLT__I32(count),
                    CLT__I32(plan->ndim), CLT__I32(s[0]), CLT__I32(s[1]), CLT__I32(s[2]),
                    CLT__I32(s[3]), CLT__I32(s[4]), CLT__I32(s[5]), CLT__I32(xm), CLT__I32(om),
                    CLT__I32(product), CLT__F32(sign), CLT__I32(accumulate), CLT__BUF(src),
                    CLT__BUF(product ? other : src), CLT__BUF(dst));
}

/* dx (+)= sign * the sum over x's stretched axes of dy (times other when product), by the
 * general kernel: while more than CHUNK outputs remain per element, a round writes
 * partials of CHUNK into the next stretch of the workspace, which the next round sums as
 * [nx, parts] with x stretched along parts; the last round stores into dx. The rounds
 * depend only on the shapes. */
static enum clt_status reduce_general(struct clt_device *dev, const struct clt__broadcast *plan,
                                      uint32_t xm, uint32_t om, bool product, float sign,
                                      struct clt__buf dy, struct clt__buf other, struct clt__buf dx,
                                      bool accumulate, struct clt__buf workspace)
{
    static const char name[] = "broadcast_backward";
    int64_t nx = plan_count(plan, xm), n = plan_count(plan, all_axes(plan));
    int64_t count = n / nx, floats = reduce_floats(nx, count);
    size_t bytes = clt__storage_bytes(dev);
    enum clt_status st = clt__check_buf(dev, dy, n, bytes, name, "dy");
    if (st == CLT_OK && product)
        st = clt__check_buf(dev, other, plan_count(plan, om), bytes, name, "other");
    if (st == CLT_OK)
        st = clt__check_buf(dev, dx, nx, bytes, name, "dx");
    if (st == CLT_OK && floats > 0)
        st = clt__check_buf(dev, workspace, floats, sizeof(float), name, "workspace");
    struct clt__broadcast round = *plan;
    struct clt__buf src = dy, part = workspace;
    bool src_part = false;
    while (st == CLT_OK && count > CHUNK) {
        int64_t parts = (count + CHUNK - 1) / CHUNK;
        st = reduce_round(dev, &round, xm, om, product, 1.0f, src, other, parts, CHUNK, part, false,
                          src_part, true);
        /* The partials [nx, parts]: x has the outer axis, and is stretched along parts. */
        round = (struct clt__broadcast){.ndim = 2, .shape = {parts, nx}, .amask = 2, .bmask = 1};
        xm = 2;
        om = 0;
        product = false;
        src = part;
        src_part = true;
        part.offset += (size_t)(nx * parts);
        count = parts;
    }
    if (st != CLT_OK)
        return st;
    return reduce_round(dev, &round, xm, om, product, sign, src, other, 1, count, dx, accumulate,
                        src_part, false);
}

/* The gradient of one input x (mask xm), the other input being `other` (mask om): the
 * dedicated kernels where the shapes allow, the general reduction otherwise. */
static enum clt_status grad_one(struct clt_device *dev, enum clt__binary op,
                                const struct clt__broadcast *plan, uint32_t xm, uint32_t om,
                                float sign, struct clt__buf other, struct clt__buf dy,
                                struct clt__buf dx, bool accumulate, struct clt__buf workspace)
{
    struct clt__buf none = {NULL, 0};
    uint32_t all = all_axes(plan);
    int64_t n = plan_count(plan, all), rows = plan->shape[1], cols = plan->shape[0];
    bool product = op == CLT__BINARY_MUL;
    if (xm == all && !product)
        return sign > 0 ? clt__copy_backward(dev, n, dy, dx, accumulate)
                        : clt__scale_backward(dev, n, -1.0f, dy, dx, accumulate);
    if (xm == all && om == all)
        return clt__mul_backward(dev, n, none, other, dy, dx, none, accumulate);
    if (product && is_bias(plan, xm, om)) /* dx [rows, cols] from s = other [cols] */
        return clt__mul_broadcast_backward(dev, rows, cols, none, other, dy, dx, none,
                                           accumulate ? 1u : 0u, workspace);
    if (product && is_bias(plan, om, xm)) /* ds = dx [cols] from x = other [rows, cols] */
        return clt__mul_broadcast_backward(dev, rows, cols, other, none, dy, none, dx,
                                           accumulate ? 2u : 0u, workspace);
    if (op == CLT__BINARY_ADD && is_bias(plan, om, xm))
        return clt__bias_backward(dev, rows, cols, dy, none, dx, accumulate, workspace);
    /* One stretched axis, and a product's other factor read where dy is: a sum along it. */
    int64_t outer, count, inner;
    if (one_stretched_axis(plan, xm, &outer, &count, &inner) && (!product || om == all))
        return clt__sum_axis(dev, outer, count, inner, sign, 1.0f, dy, product ? other : none, dx,
                             accumulate, workspace);
    return reduce_general(dev, plan, xm, om, product, sign, dy, other, dx, accumulate, workspace);
}

enum clt_status clt__broadcast_backward(struct clt_device *dev, enum clt__binary op,
                                        const struct clt__broadcast *plan, struct clt__buf a,
                                        struct clt__buf b, struct clt__buf dy, struct clt__buf da,
                                        struct clt__buf db, uint32_t acc, struct clt__buf workspace)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_plan(dev, "broadcast_backward", plan);
    if (st == CLT_OK && da.mem)
        st = grad_one(dev, op, plan, plan->amask, plan->bmask, 1.0f, b, dy, da, CLT__ACC(acc, 0),
                      workspace);
    if (st == CLT_OK && db.mem)
        st = grad_one(dev, op, plan, plan->bmask, plan->amask, op == CLT__BINARY_SUB ? -1.0f : 1.0f,
                      a, dy, db, CLT__ACC(acc, 1), workspace);
    return st;
}

/* ==== Graph ops: definitions and public builders ========================================= */

/* ---- add, sub, mul ----------------------------------------------------------------------- */

static enum clt__binary binary_of(const struct clt_tensor *t)
{
    return t->op == CLT__OP_add   ? CLT__BINARY_ADD
           : t->op == CLT__OP_sub ? CLT__BINARY_SUB
                                  : CLT__BINARY_MUL;
}

static void plan_of(const struct clt_tensor *t, struct clt__broadcast *plan)
{
    const struct clt_tensor *a = t->in[0], *b = t->in[1];
    clt__broadcast_plan(a->ndim, a->shape, b->ndim, b->shape, plan);
}

static enum clt_status binary_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__broadcast plan;
    plan_of(t, &plan);
    return clt__broadcast_forward(x->dev, binary_of(t), &plan, clt__val(x, t->in[0]),
                                  clt__val(x, t->in[1]), clt__val(x, t));
}

static enum clt_status binary_backward(struct clt__exec *x, const struct clt_tensor *t,
                                       uint32_t acc)
{
    struct clt__broadcast plan;
    plan_of(t, &plan);
    bool mul = t->op == CLT__OP_mul;
    struct clt__buf none = {NULL, 0};
    /* The values are saved (and valid) for mul only. */
    return clt__broadcast_backward(x->dev, binary_of(t), &plan, mul ? clt__val(x, t->in[0]) : none,
                                   mul ? clt__val(x, t->in[1]) : none, clt__grad(x, t),
                                   clt__grad(x, t->in[0]), clt__grad(x, t->in[1]), acc,
                                   clt__workspace(x));
}

static uint64_t binary_workspace(const struct clt_tensor *t)
{
    struct clt__broadcast plan;
    plan_of(t, &plan);
    return clt__broadcast_workspace_bytes(&plan);
}

/* 2^20 elements. */
static struct clt_tensor *bench_add(struct clt_graph *g)
{
    return clt_add(g, CLT__BENCH_PARAM(g, "a", 1, 1 << 20), CLT__BENCH_PARAM(g, "b", 1, 1 << 20));
}

/* x [256, 64, 64] - y [256, 1, 64]: the general broadcast kernels (2^20 elements). */
static struct clt_tensor *bench_sub(struct clt_graph *g)
{
    return clt_sub(g, CLT__BENCH_PARAM(g, "a", 3, 256, 64, 64),
                   CLT__BENCH_PARAM(g, "b", 3, 256, 1, 64));
}

/* 2^20 elements. */
static struct clt_tensor *bench_mul(struct clt_graph *g)
{
    return clt_mul(g, CLT__BENCH_PARAM(g, "a", 1, 1 << 20), CLT__BENCH_PARAM(g, "b", 1, 1 << 20));
}

/* Elementwise descriptions for the fusion pass (engine/fuse.c), which fuses an add or mul
 * only when its inputs have its output's element count (no broadcasting). */
static const struct clt__ew add_ew = {.forward = "a + b", .backward = {"dy", "dy"}};
static const struct clt__ew mul_ew = {
    .forward = "a * b", .backward = {"dy * b", "dy * a"}, .reads = CLT__EW_A | CLT__EW_B};

const struct clt__op_def clt__op_add = {.forward = binary_forward,
                                        .backward = binary_backward,
                                        .workspace = binary_workspace,
                                        .bench = bench_add,
                                        .ew = &add_ew,
                                        .storage16 = true};

const struct clt__op_def clt__op_sub = {.forward = binary_forward,
                                        .backward = binary_backward,
                                        .workspace = binary_workspace,
                                        .bench = bench_sub,
                                        .storage16 = true};

const struct clt__op_def clt__op_mul = {
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = binary_forward,
    .backward = binary_backward,
    .workspace = binary_workspace,
    .bench = bench_mul,
    .ew = &mul_ew,
    .storage16 = true,
};

/* "[3, 4, 5]". */
static void shape_text(char *out, size_t size, const struct clt_tensor *t)
{
    size_t len = (size_t)snprintf(out, size, "[");
    for (uint32_t i = 0; i < t->ndim && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%lld", i ? ", " : "",
                                (long long)t->shape[i]);
    if (len < size)
        snprintf(out + len, size - len, "]");
}

static struct clt_tensor *binary(struct clt_graph *g, enum clt__op op, struct clt_tensor *a,
                                 struct clt_tensor *b)
{
    struct clt_tensor *in[2] = {a, b};
    const char *name = clt__op_names[op];
    if (!clt__graph_ok(g, 2, in) || !clt__is_f32(g, a, name) || !clt__is_f32(g, b, name))
        return NULL;
    uint32_t yn;
    int64_t ys[CLT_MAX_DIMS];
    int axis;
    if (!clt__broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &yn, ys, &axis)) {
        char sa[128], sb[128];
        shape_text(sa, sizeof sa, a);
        shape_text(sb, sizeof sb, b);
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "%s: \"%s\" %s and \"%s\" %s do not broadcast (axis %d: %lld against "
                        "%lld; sizes must be equal or 1, aligned from the last axis)",
                        name, a->name, sa, b->name, sb, axis,
                        (long long)axis_from_end(a->ndim, a->shape, (uint32_t)(-axis - 1)),
                        (long long)axis_from_end(b->ndim, b->shape, (uint32_t)(-axis - 1)));
        return NULL;
    }
    return clt__node(g, op, 2, in, CLT_F32, yn, ys);
}

struct clt_tensor *clt_add(struct clt_graph *g, struct clt_tensor *a, struct clt_tensor *b)
{
    return binary(g, CLT__OP_add, a, b);
}

struct clt_tensor *clt_sub(struct clt_graph *g, struct clt_tensor *a, struct clt_tensor *b)
{
    return binary(g, CLT__OP_sub, a, b);
}

struct clt_tensor *clt_mul(struct clt_graph *g, struct clt_tensor *a, struct clt_tensor *b)
{
    return binary(g, CLT__OP_mul, a, b);
}

/* ---- add_bias and mul_broadcast ---------------------------------------------------------- */

/* Whether s's shape is the trailing axes of x's. */
static bool trailing(const struct clt_tensor *x, const struct clt_tensor *s)
{
    if (s->ndim > x->ndim)
        return false;
    uint32_t lead = x->ndim - s->ndim;
    return memcmp(x->shape + lead, s->shape, s->ndim * sizeof *s->shape) == 0;
}

/* x [rows, cols] as the leading axes of x times the trailing ones, which the bias has. */
static enum clt_status bias_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t cols = clt__count(t->in[1]);
    return clt__bias_forward(x->dev, clt__count(t) / cols, cols, clt__val(x, t->in[0]),
                             clt__val(x, t->in[1]), clt__val(x, t));
}

static enum clt_status bias_backward(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc)
{
    struct clt__buf none = {NULL, 0}, dy = clt__grad(x, t);
    int64_t cols = clt__count(t->in[1]);
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; i < 2 && st == CLT_OK; i++) {
        struct clt__buf d = clt__grad(x, t->in[i]);
        if (d.mem)
            st = clt__bias_backward(x->dev, clt__count(t) / cols, cols, dy, i == 0 ? d : none,
                                    i == 1 ? d : none, CLT__ACC(acc, i), clt__workspace(x));
    }
    return st;
}

/* x [2048, 512] + bias [512]. */
static struct clt_tensor *bench_add_bias(struct clt_graph *g)
{
    return clt_add_bias(g, CLT__BENCH_PARAM(g, "x", 2, 2048, 512),
                        CLT__BENCH_PARAM(g, "bias", 1, 512));
}

/* The bias gradient's (or mul_broadcast's ds's) partial column sums. */
static uint64_t trailing_workspace(const struct clt_tensor *t)
{
    int64_t cols = clt__count(t->in[1]);
    return clt__sum_axis_workspace_bytes(1, cols ? clt__count(t) / cols : 0, cols);
}

const struct clt__op_def clt__op_add_bias = {.forward = bias_forward,
                                             .backward = bias_backward,
                                             .workspace = trailing_workspace,
                                             .bench = bench_add_bias,
                                             .storage16 = true};

struct clt_tensor *clt_add_bias(struct clt_graph *g, struct clt_tensor *x, struct clt_tensor *bias)
{
    struct clt_tensor *in[2] = {x, bias};
    if (!clt__graph_ok(g, 2, in) || !clt__is_f32(g, x, "add_bias") ||
        !clt__is_f32(g, bias, "add_bias"))
        return NULL;
    if (!clt__require(g, trailing(x, bias),
                      "add_bias: the shape of the bias must be the trailing axes of x"))
        return NULL;
    return clt__node(g, CLT__OP_add_bias, 2, in, CLT_F32, x->ndim, x->shape);
}

/* ---- mul_broadcast --------------------------------------------------------------------- */

/* x [rows, cols] as the leading axes of x times the trailing ones, which s has. */
static enum clt_status mul_broadcast_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t cols = clt__count(t->in[1]);
    return clt__mul_broadcast_forward(x->dev, clt__count(t) / cols, cols, clt__val(x, t->in[0]),
                                      clt__val(x, t->in[1]), clt__val(x, t));
}

static enum clt_status mul_broadcast_backward(struct clt__exec *x, const struct clt_tensor *t,
                                              uint32_t acc)
{
    int64_t cols = clt__count(t->in[1]);
    return clt__mul_broadcast_backward(
        x->dev, clt__count(t) / cols, cols, clt__val(x, t->in[0]), clt__val(x, t->in[1]),
        clt__grad(x, t), clt__grad(x, t->in[0]), clt__grad(x, t->in[1]), acc, clt__workspace(x));
}

/* x [2048, 512] * s [512]. */
static struct clt_tensor *bench_mul_broadcast(struct clt_graph *g)
{
    return clt_mul_broadcast(g, CLT__BENCH_PARAM(g, "x", 2, 2048, 512),
                             CLT__BENCH_PARAM(g, "s", 1, 512));
}

const struct clt__op_def clt__op_mul_broadcast = {
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = mul_broadcast_forward,
    .backward = mul_broadcast_backward,
    .workspace = trailing_workspace,
    .bench = bench_mul_broadcast,
    .storage16 = true,
};

struct clt_tensor *clt_mul_broadcast(struct clt_graph *g, struct clt_tensor *x,
                                     struct clt_tensor *s)
{
    struct clt_tensor *in[2] = {x, s};
    if (!clt__graph_ok(g, 2, in) || !clt__is_f32(g, x, "mul_broadcast") ||
        !clt__is_f32(g, s, "mul_broadcast"))
        return NULL;
    if (!clt__require(g, trailing(x, s),
                      "mul_broadcast: the shape of s must be the trailing axes of x"))
        return NULL;
    return clt__node(g, CLT__OP_mul_broadcast, 2, in, CLT_F32, x->ndim, x->shape);
}
