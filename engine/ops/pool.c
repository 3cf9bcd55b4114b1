/*
 * pool.c: the pool family: launchers of 2-D pooling (see pool.h and docs/kernels/pool.md),
 * one kernel of cl/pool.cl per call over a 3-D NDRange (column, row, plane) of the output
 * (forward; backward where windows do not overlap: each output element writes its cell of
 * dx) or of the input (backward, overlapping windows: a gather per input element); then the graph
 * op pool2d (max, average and global average pooling): its definition and public builders.
 */
#include "graph.h"
#include "ops/pool.h"

static bool mul_fits(int64_t a, int64_t b, int64_t *out)
{
    if (a != 0 && b > INT32_MAX / a)
        return false;
    *out = a * b;
    return true;
}

/* Element counts of [a, b, c, d] below 2^31. */
static bool count_fits(int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t p;
    return mul_fits(a, b, &p) && mul_fits(p, c, &p) && mul_fits(p, d, &p);
}

enum clt_status clt__pool2d_resolve(const struct clt_log *log, struct clt__pool2d *p)
{
    const int64_t fields[] = {p->n,  p->c,        p->h,        p->w,     p->kh,
                              p->kw, p->stride_h, p->stride_w, p->pad_h, p->pad_w};
    bool ok = true;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        ok = ok && fields[i] >= 0 && fields[i] <= INT32_MAX;
    ok = ok && p->h >= 1 && p->w >= 1 && p->kh >= 1 && p->kw >= 1 && p->stride_h >= 1 &&
         p->stride_w >= 1;
    /* PyTorch's rule: with more padding a window could lie wholly in the padding. */
    ok = ok && p->pad_h <= p->kh / 2 && p->pad_w <= p->kw / 2;
    /* The window must fit in the padded input (both terms are below 2^31). */
    ok = ok && p->kh <= p->h + 2 * p->pad_h && p->kw <= p->w + 2 * p->pad_w;
    if (!ok) {
        clt__log(log, CLT_LOG_ERROR,
                 "pool2d: impossible parameters N=%lld C=%lld H=%lld "
                 "W=%lld window %lldx%lld stride %lldx%lld pad %lldx%lld (pad at most half "
                 "the window)",
                 (long long)p->n, (long long)p->c, (long long)p->h, (long long)p->w,
                 (long long)p->kh, (long long)p->kw, (long long)p->stride_h, (long long)p->stride_w,
                 (long long)p->pad_h, (long long)p->pad_w);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    const int64_t oh = (p->h + 2 * p->pad_h - p->kh) / p->stride_h + 1;
    const int64_t ow = (p->w + 2 * p->pad_w - p->kw) / p->stride_w + 1;
    if (!count_fits(p->n, p->c, p->h, p->w) || !count_fits(p->n, p->c, oh, ow) ||
        p->h + p->pad_h > INT32_MAX || p->w + p->pad_w > INT32_MAX) {
        clt__log(log, CLT_LOG_ERROR, "pool2d: a tensor has 2^31 elements or more");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    p->oh = oh;
    p->ow = ow;
    return CLT_OK;
}

/* Resolves p into *out and checks the buffers: `in` is x or dx, `bufs` the tensors of the
 * output's shape (y, dy, argmax), NULL mems allowed where optional[i]. x, dx, y and dy have
 * elements of the storage (clt__storage_bytes), argmax (is_int[i]) 4-byte ints. */
static enum clt_status prepare(struct clt_device *dev, const char *op, const struct clt__pool2d *p,
                               struct clt__pool2d *out, const char *in_name, struct clt__buf in,
                               const char **names, const struct clt__buf *bufs,
                               const bool *optional, const bool *is_int, size_t count)
{
    if (!dev || !p)
        return CLT_ERR_INVALID_ARGUMENT;
    *out = *p;
    const size_t e = clt__storage_bytes(dev);
    enum clt_status st = clt__pool2d_resolve(&dev->log, out);
    if (st == CLT_OK)
        st = clt__check_buf(dev, in, out->n * out->c * out->h * out->w, e, op, in_name);
    for (size_t i = 0; i < count && st == CLT_OK; i++)
        if (bufs[i].mem || !optional[i])
            st = clt__check_buf(dev, bufs[i], out->n * out->c * out->oh * out->ow,
                                is_int[i] ? sizeof(cl_int) : e, op, names[i]);
    return st;
}

/* The 11 geometry arguments every kernel of cl/pool.cl starts with; N and C as one. */
#define GEOMETRY(p)                                                                                \
    CLT__I32((p)->n *(p)->c), CLT__I32((p)->h), CLT__I32((p)->w), CLT__I32((p)->kh),               \
        CLT__I32((p)->kw), CLT__I32((p)->stride_h), CLT__I32((p)->stride_w), CLT__I32((p)->pad_h), \
        CLT__I32((p)->pad_w), CLT__I32((p)->oh), CLT__I32((p)->ow)

/* The NDRanges of cl/pool.cl: (column, row, plane) of the output and of the input. A
 * compound literal lives to the end of the enclosing block: the launcher's. */
#define OUT_RANGE(p)                                                                               \
    ((const size_t[3]){(size_t)(p)->ow, (size_t)(p)->oh, (size_t)((p)->n * (p)->c)})
#define IN_RANGE(p) ((const size_t[3]){(size_t)(p)->w, (size_t)(p)->h, (size_t)((p)->n * (p)->c)})

/* Windows that do not overlap (stride >= window both ways): the backward runs per output
 * element, each writing its cell of dx (cl/pool.cl). */
static bool disjoint(const struct clt__pool2d *p)
{
    return p->stride_h >= p->kh && p->stride_w >= p->kw;
}

/* 2x2 windows, stride 2, no padding: the unrolled kernels of cl/pool.cl (the backward one
 * only when H and W are even, so that the windows are the cells). */
static bool is_2x2(const struct clt__pool2d *p)
{
    return p->kh == 2 && p->kw == 2 && p->stride_h == 2 && p->stride_w == 2 && p->pad_h == 0 &&
           p->pad_w == 0;
}

/* Whether the 2x2 kernels may read and write the window rows of `in` (x or dx) as aligned
 * pairs of elements (the _pairs kernels): W and in's offset even. Only in 16-bit storage: the
 * 16-bit element kernels run one work-item at a time on PoCL (stride-2 16-bit accesses do
 * not vectorize there), while in fp32 the element kernels vectorize and the 64-bit pairs did
 * not (measured: forward 0.63 against 0.93 ms per cnn step). */
static bool pairs(const struct clt_device *dev, const struct clt__pool2d *p, struct clt__buf in)
{
    return clt__storage_bytes(dev) == 2 && p->w % 2 == 0 && in.offset % 2 == 0;
}

/* The 5 geometry arguments of the 2x2 kernels (their NDRange is OUT_RANGE). */
#define GEOMETRY_2X2(p)                                                                            \
    CLT__I32((p)->n *(p)->c), CLT__I32((p)->h), CLT__I32((p)->w), CLT__I32((p)->oh),               \
        CLT__I32((p)->ow)

enum clt_status clt__maxpool2d_forward(struct clt_device *dev, const struct clt__pool2d *pool,
                                       struct clt__buf x, struct clt__buf y, struct clt__buf argmax)
{
    struct clt__pool2d p;
    const char *names[] = {"y", "argmax"};
    const struct clt__buf bufs[] = {y, argmax};
    const bool optional[] = {false, true}, is_int[] = {false, true};
    enum clt_status st =
        prepare(dev, "maxpool2d_forward", pool, &p, "x", x, names, bufs, optional, is_int, 2);
    if (st != CLT_OK)
        return st;
    /* Without argmax the kernel gets y's buffer in its place and never touches it. */
    const struct clt__buf a = {argmax.mem ? argmax.mem : y.mem, argmax.offset};
    if (is_2x2(&p) && pairs(dev, &p, x))
        return CLT__RUN_ND(dev, CLT__K_maxpool2d_forward_2x2_pairs, 3, OUT_RANGE(&p),
                           GEOMETRY_2X2(&p), CLT__I32(argmax.mem != NULL), CLT__BUF(x), CLT__BUF(y),
                           CLT__BUF(a));
    if (is_2x2(&p))
        return CLT__RUN_ND(dev, CLT__K_maxpool2d_forward_2x2, 3, OUT_RANGE(&p), GEOMETRY_2X2(&p),
                           CLT__I32(argmax.mem != NULL), CLT__BUF(x), CLT__BUF(y), CLT__BUF(a));
    return CLT__RUN_ND(dev, CLT__K_maxpool2d_forward, 3, OUT_RANGE(&p), GEOMETRY(&p),
                       CLT__I32(argmax.mem != NULL), CLT__BUF(x), CLT__BUF(y), CLT__BUF(a));
}

enum clt_status clt__maxpool2d_backward(struct clt_device *dev, const struct clt__pool2d *pool,
                                        struct clt__buf argmax, struct clt__buf dy,
                                        struct clt__buf dx, bool accumulate)
{
    struct clt__pool2d p;
    const char *names[] = {"argmax", "dy"};
    const struct clt__buf bufs[] = {argmax, dy};
    const bool optional[] = {false, false}, is_int[] = {true, false};
    enum clt_status st =
        prepare(dev, "maxpool2d_backward", pool, &p, "dx", dx, names, bufs, optional, is_int, 2);
    if (st != CLT_OK)
        return st;
    if (is_2x2(&p) && p.h % 2 == 0 && pairs(dev, &p, dx))
        return CLT__RUN_ND(dev, CLT__K_maxpool2d_backward_2x2_pairs, 3, OUT_RANGE(&p),
                           GEOMETRY_2X2(&p), CLT__I32(accumulate), CLT__BUF(argmax), CLT__BUF(dy),
                           CLT__BUF(dx));
    if (is_2x2(&p) && p.h % 2 == 0 && p.w % 2 == 0)
        return CLT__RUN_ND(dev, CLT__K_maxpool2d_backward_2x2, 3, OUT_RANGE(&p), GEOMETRY_2X2(&p),
                           CLT__I32(accumulate), CLT__BUF(argmax), CLT__BUF(dy), CLT__BUF(dx));
    if (disjoint(&p))
        return CLT__RUN_ND(dev, CLT__K_maxpool2d_backward_cells, 3, OUT_RANGE(&p), GEOMETRY(&p),
                           CLT__I32(accumulate), CLT__BUF(argmax), CLT__BUF(dy), CLT__BUF(dx));
    return CLT__RUN_ND(dev, CLT__K_maxpool2d_backward, 3, IN_RANGE(&p), GEOMETRY(&p),
                       CLT__I32(accumulate), CLT__BUF(argmax), CLT__BUF(dy), CLT__BUF(dx));
}

enum clt_status clt__avgpool2d_forward(struct clt_device *dev, const struct clt__pool2d *pool,
                                       struct clt__buf x, struct clt__buf y)
{
    struct clt__pool2d p;
    const char *names[] = {"y"};
    const bool optional[] = {false}, is_int[] = {false};
    enum clt_status st =
        prepare(dev, "avgpool2d_forward", pool, &p, "x", x, names, &y, optional, is_int, 1);
    if (st != CLT_OK)
        return st;
    return CLT__RUN_ND(dev, CLT__K_avgpool2d_forward, 3, OUT_RANGE(&p), GEOMETRY(&p), CLT__BUF(x),
                       CLT__BUF(y));
}

enum clt_status clt__avgpool2d_backward(struct clt_device *dev, const struct clt__pool2d *pool,
                                        struct clt__buf dy, struct clt__buf dx, bool accumulate)
{
    struct clt__pool2d p;
    const char *names[] = {"dy"};
    const bool optional[] = {false}, is_int[] = {false};
    enum clt_status st =
        prepare(dev, "avgpool2d_backward", pool, &p, "dx", dx, names, &dy, optional, is_int, 1);
    if (st != CLT_OK)
        return st;
    if (disjoint(&p))
        return CLT__RUN_ND(dev, CLT__K_avgpool2d_backward_cells, 3, OUT_RANGE(&p), GEOMETRY(&p),
                           CLT__I32(accumulate), CLT__BUF(dy), CLT__BUF(dx));
    return CLT__RUN_ND(dev, CLT__K_avgpool2d_backward, 3, IN_RANGE(&p), GEOMETRY(&p),
                       CLT__I32(accumulate), CLT__BUF(dy), CLT__BUF(dx));
}

/* Checks a global average pool's shape and buffers: `big` is [N, C, H, W], `small` [N, C]. */
static enum clt_status check_global(struct clt_device *dev, const char *op, int64_t n, int64_t c,
                                    int64_t h, int64_t w, const char *big_name, struct clt__buf big,
                                    const char *small_name, struct clt__buf small)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    if (n < 0 || c < 0 || h < 1 || w < 1 || n > INT32_MAX || c > INT32_MAX || h > INT32_MAX ||
        w > INT32_MAX || !count_fits(n, c, h, w)) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: impossible shape N=%lld C=%lld H=%lld W=%lld", op,
                 (long long)n, (long long)c, (long long)h, (long long)w);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    const size_t e = clt__storage_bytes(dev);
    enum clt_status st = clt__check_buf(dev, big, n * c * h * w, e, op, big_name);
    if (st == CLT_OK)
        st = clt__check_buf(dev, small, n * c, e, op, small_name);
    return st;
}

enum clt_status clt__global_avgpool_forward(struct clt_device *dev, int64_t n, int64_t c, int64_t h,
                                            int64_t w, struct clt__buf x, struct clt__buf y)
{
    enum clt_status st = check_global(dev, "global_avgpool_forward", n, c, h, w, "x", x, "y", y);
    if (st != CLT_OK)
        return st;
    return CLT__RUN(dev, CLT__K_global_avgpool_forward, (size_t)(n * c), CLT__I32(n * c),
                    CLT__I32(h * w), CLT__BUF(x), CLT__BUF(y));
}

enum clt_status clt__global_avgpool_backward(struct clt_device *dev, int64_t n, int64_t c,
                                             int64_t h, int64_t w, struct clt__buf dy,
                                             struct clt__buf dx, bool accumulate)
{
    enum clt_status st =
        check_global(dev, "global_avgpool_backward", n, c, h, w, "dx", dx, "dy", dy);
    if (st != CLT_OK)
        return st;
    const size_t range[2] = {(size_t)(h * w), (size_t)(n * c)};
    return CLT__RUN_ND(dev, CLT__K_global_avgpool_backward, 2, range, CLT__I32(n * c),
                       CLT__I32(h * w), CLT__I32(accumulate), CLT__BUF(dy), CLT__BUF(dx));
}

/* ==== Graph ops: definitions and public builders ========================================= */

/* ---- pooling ----------------------------------------------------------------------------- */

/* The launcher's description of a pooling node, resolved when the node was made. */
static struct clt__pool2d pool_of(const struct clt_tensor *t)
{
    struct clt__pool2d p = t->p.pool2d.desc;
    const struct clt_tensor *x = t->in[0];
    p.n = x->shape[0];
    p.c = x->shape[1];
    p.h = x->shape[2];
    p.w = x->shape[3];
    return p;
}

static enum clt_status pool_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__pool2d p = pool_of(t);
    struct clt__buf in = clt__val(x, t->in[0]), out = clt__val(x, t);
    switch (t->p.pool2d.kind) {
    case CLT__POOL_MAX:
        return clt__maxpool2d_forward(x->dev, &p, in, out, clt__aux(x, t, 0));
    case CLT__POOL_AVG:
        return clt__avgpool2d_forward(x->dev, &p, in, out);
    default:
        return clt__global_avgpool_forward(x->dev, p.n, p.c, p.h, p.w, in, out);
    }
}

static enum clt_status pool_backward(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc)
{
    struct clt__pool2d p = pool_of(t);
    struct clt__buf dy = clt__grad(x, t), dx = clt__grad(x, t->in[0]);
    bool add = CLT__ACC(acc, 0);
    switch (t->p.pool2d.kind) {
    case CLT__POOL_MAX:
        return clt__maxpool2d_backward(x->dev, &p, clt__aux(x, t, 0), dy, dx, add);
    case CLT__POOL_AVG:
        return clt__avgpool2d_backward(x->dev, &p, dy, dx, add);
    default:
        return clt__global_avgpool_backward(x->dev, p.n, p.c, p.h, p.w, dy, dx, add);
    }
}

/* Max pooling 2x2, stride 2, of x [32, 32, 28, 28]. */
static struct clt_tensor *bench_pool2d(struct clt_graph *g)
{
    return clt_max_pool2d(g, CLT__BENCH_PARAM(g, "x", 4, 32, 32, 28, 28), 2, 2, 0);
}

const struct clt__op_def clt__op_pool2d = {
    .forward = pool_forward,
    .backward = pool_backward,
    .bench = bench_pool2d,
    .storage16 = true,
};

static struct clt_tensor *pool(struct clt_graph *g, struct clt_tensor *x, enum clt__pool_kind kind,
                               int64_t kernel, int64_t stride, int64_t padding)
{
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    if (x->ndim != 4 || x->dtype != CLT_F32) {
        clt__require(g, false, "pooling: needs F32 x [N, C, H, W]");
        return NULL;
    }
    if (kind == CLT__POOL_GLOBAL) {
        struct clt_tensor *t =
            clt__node(g, CLT__OP_pool2d, 1, &x, CLT_F32, 2, (int64_t[]){x->shape[0], x->shape[1]});
        if (t)
            t->p.pool2d.kind = kind;
        return t;
    }
    struct clt__pool2d p = {
        .n = x->shape[0],
        .c = x->shape[1],
        .h = x->shape[2],
        .w = x->shape[3],
        .kh = kernel,
        .kw = kernel,
        .stride_h = stride ? stride : kernel,
        .stride_w = stride ? stride : kernel,
        .pad_h = padding,
        .pad_w = padding,
    };
    struct clt_log log = clt__graph_log(g);
    if (clt__pool2d_resolve(&log, &p) != CLT_OK) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "pooling: impossible kernel, stride or padding for this input: %s",
                        g->note);
        return NULL;
    }
    struct clt_tensor *t =
        clt__node(g, CLT__OP_pool2d, 1, &x, CLT_F32, 4, (int64_t[]){p.n, p.c, p.oh, p.ow});
    if (t) {
        t->p.pool2d.kind = kind;
        t->p.pool2d.desc = p;
        if (kind == CLT__POOL_MAX) {
            t->naux = 1;
            t->aux_dtype[0] = CLT_I32;
            t->aux_count[0] = clt__count(t);
        }
    }
    return t;
}

struct clt_tensor *clt_max_pool2d(struct clt_graph *g, struct clt_tensor *x, int64_t kernel,
                                  int64_t stride, int64_t padding)
{
    return pool(g, x, CLT__POOL_MAX, kernel, stride, padding);
}

struct clt_tensor *clt_avg_pool2d(struct clt_graph *g, struct clt_tensor *x, int64_t kernel,
                                  int64_t stride, int64_t padding)
{
    return pool(g, x, CLT__POOL_AVG, kernel, stride, padding);
}

struct clt_tensor *clt_global_avg_pool2d(struct clt_graph *g, struct clt_tensor *x)
{
    return pool(g, x, CLT__POOL_GLOBAL, 0, 0, 0);
}
