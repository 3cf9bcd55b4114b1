/*
 * shape.c: the shape family: launchers of cl/shape.cl (permute, concat, slice; contracts in
 * shape.h, kernel notes in docs/kernels/shape.md), then the graph ops reshape (a view;
 * clt_flatten builds one), permute, concat and slice: their definitions and public builders.
 * Embedding, of the same family, is in ops/embedding.c.
 */
#include <string.h>

#include "graph.h"
#include "ops/shape.h"

/* ==== Argument checks =================================================================== */

/* Checks ndim and every dimension (>= 0) and writes the element count (< 2^31). */
static enum clt_status check_shape(struct clt_device *dev, uint32_t ndim, const int64_t *shape,
                                   const char *op, int64_t *count)
{
    if (ndim == 0 || ndim > CLT_MAX_DIMS || !shape) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: %u dimensions (1..%d allowed)", op, ndim,
                 CLT_MAX_DIMS);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    int64_t n = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        if (shape[i] < 0 || shape[i] > INT32_MAX) {
            clt__log(&dev->log, CLT_LOG_ERROR, "%s: dimension %u is %lld", op, i,
                     (long long)shape[i]);
            return CLT_ERR_INVALID_ARGUMENT;
        }
        n *= shape[i];
        if (n > INT32_MAX) {
            clt__log(&dev->log, CLT_LOG_ERROR, "%s: more than 2^31 elements", op);
            return CLT_ERR_INVALID_ARGUMENT;
        }
    }
    *count = n;
    return CLT_OK;
}

/* ==== Permute =========================================================================== */

/* A dense gather: dst has shape size[0..6) and dst[c] = src[sum c_k * stride[k]]. */
struct gather {
    int64_t size[CLT_MAX_DIMS];
    int64_t stride[CLT_MAX_DIMS];
};

/* Builds the gather for dst dims given as (size, src stride) pairs, simplified: dims of size
 * 1 dropped, neighbours that are also neighbours in src merged, and the rest right-aligned
 * in 6 dims behind leading (1, 0) pairs. */
static void gather_build(uint32_t ndim, const int64_t *size, const int64_t *stride,
                         struct gather *g)
{
    int64_t s[CLT_MAX_DIMS], t[CLT_MAX_DIMS];
    uint32_t m = 0;
    for (uint32_t k = 0; k < ndim; k++) {
        if (size[k] == 1)
            continue;
        if (m > 0 && t[m - 1] == size[k] * stride[k]) {
            s[m - 1] *= size[k];
            t[m - 1] = stride[k];
        } else {
            s[m] = size[k];
            t[m] = stride[k];
            m++;
        }
    }
    for (uint32_t k = 0; k < CLT_MAX_DIMS; k++) {
        bool pad = k < CLT_MAX_DIMS - m;
        g->size[k] = pad ? 1 : s[k - (CLT_MAX_DIMS - m)];
        g->stride[k] = pad ? 0 : t[k - (CLT_MAX_DIMS - m)];
    }
}

static enum clt_status gather_run(struct clt_device *dev, const struct gather *g, int64_t n,
                                  struct clt__buf src, struct clt__buf dst, bool accumulate)
{
    const int64_t *s = g->size, *t = g->stride;
    if (n == 0)
        return CLT_OK;
    /* 3-D: the last two dimensions, then the rest (n < 2^31, so it fits int). */
    size_t items[3] = {(size_t)s[5], (size_t)s[4], (size_t)(s[0] * s[1] * s[2] * s[3])};
    return CLT__RUN_ND(dev, CLT__K_permute_gather, 3, items, CLT__I32(s[0]), CLT__I32(s[1]),
                       CLT__I32(s[2]), CLT__I32(s[3]), CLT__I32(s[4]), CLT__I32(s[5]),
                       CLT__I32(accumulate), CLT__BUF(src), CLT__BUF(dst), CLT__I32(t[0]),
                       CLT__I32(t[1]), CLT__I32(t[2]), CLT__I32(t[3]), CLT__I32(t[4]),
                       CLT__I32(t[5]));
}

/* Checks a permutation and the shape, and writes x's dense strides. */
static enum clt_status permute_check(struct clt_device *dev, const char *op, uint32_t ndim,
                                     const int64_t *x_shape, const uint32_t *perm, int64_t *count,
                                     int64_t *x_stride)
{
    enum clt_status st = check_shape(dev, ndim, x_shape, op, count);
    if (st != CLT_OK)
        return st;
    bool seen[CLT_MAX_DIMS] = {false};
    for (uint32_t k = 0; perm && k < ndim; k++) {
        if (perm[k] >= ndim || seen[perm[k]])
            break;
        seen[perm[k]] = true;
    }
    for (uint32_t k = 0; k < ndim; k++) {
        if (!perm || !seen[k]) {
            clt__log(&dev->log, CLT_LOG_ERROR, "%s: perm is not a permutation of 0..%u", op,
                     ndim - 1);
            return CLT_ERR_INVALID_ARGUMENT;
        }
    }
    int64_t s = 1;
    for (uint32_t k = ndim; k-- > 0;) {
        x_stride[k] = s;
        s *= x_shape[k];
    }
    return CLT_OK;
}

enum clt_status clt__permute_forward(struct clt_device *dev, struct clt__buf x, struct clt__buf y,
                                     uint32_t ndim, const int64_t *x_shape, const uint32_t *perm)
{
    static const char op[] = "permute_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    int64_t n, x_stride[CLT_MAX_DIMS];
    enum clt_status st = permute_check(dev, op, ndim, x_shape, perm, &n, x_stride);
    if (st == CLT_OK)
        st = clt__check_buf(dev, x, n, clt__storage_bytes(dev), op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, n, clt__storage_bytes(dev), op, "y");
    if (st != CLT_OK)
        return st;
    /* y's dimension k is x's dimension perm[k]. */
    int64_t size[CLT_MAX_DIMS], stride[CLT_MAX_DIMS];
    for (uint32_t k = 0; k < ndim; k++) {
        size[k] = x_shape[perm[k]];
        stride[k] = x_stride[perm[k]];
    }
    struct gather g;
    gather_build(ndim, size, stride, &g);
    return gather_run(dev, &g, n, x, y, false);
}

enum clt_status clt__permute_backward(struct clt_device *dev, struct clt__buf dy,
                                      struct clt__buf dx, uint32_t ndim, const int64_t *x_shape,
                                      const uint32_t *perm, bool accumulate)
{
    static const char op[] = "permute_backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    int64_t n, x_stride[CLT_MAX_DIMS];
    enum clt_status st = permute_check(dev, op, ndim, x_shape, perm, &n, x_stride);
    if (st == CLT_OK)
        st = clt__check_buf(dev, dy, n, clt__storage_bytes(dev), op, "dy");
    if (st == CLT_OK)
        st = clt__check_buf(dev, dx, n, clt__storage_bytes(dev), op, "dx");
    if (st != CLT_OK)
        return st;
    /* dx is dense in x_shape; x's dimension perm[k] is dy's dimension k, whose stride in
     * dy (dense in the permuted shape) is the product of the permuted sizes after k. */
    int64_t stride[CLT_MAX_DIMS], s = 1;
    for (uint32_t k = ndim; k-- > 0;) {
        stride[perm[k]] = s;
        s *= x_shape[perm[k]];
    }
    struct gather g;
    gather_build(ndim, x_shape, stride, &g);
    return gather_run(dev, &g, n, dy, dx, accumulate);
}

/* ==== Concat and slice ================================================================== */

/* A tensor seen as [outer, axis, inner] around one axis. */
struct around {
    int64_t outer, axis, inner;
};

static enum clt_status around_axis(struct clt_device *dev, const char *op, uint32_t ndim,
                                   const int64_t *shape, uint32_t axis, struct around *out)
{
    int64_t count;
    enum clt_status st = check_shape(dev, ndim, shape, op, &count);
    if (st != CLT_OK)
        return st;
    if (axis >= ndim) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: axis %u of a %u-D tensor", op, axis, ndim);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    out->outer = 1;
    out->inner = 1;
    for (uint32_t k = 0; k < axis; k++)
        out->outer *= shape[k];
    for (uint32_t k = axis + 1; k < ndim; k++)
        out->inner *= shape[k];
    out->axis = shape[axis];
    return CLT_OK;
}

/* dst[o, dst_start + a, i] (+)= src[o, src_start + a, i] for a < len; buffers checked. */
static enum clt_status slice_copy(struct clt_device *dev, const struct around *r, int64_t len,
                                  struct clt__buf src, int64_t src_axis, int64_t src_start,
                                  struct clt__buf dst, int64_t dst_axis, int64_t dst_start,
                                  bool accumulate)
{
    /* Each outer index's len x inner block is one contiguous run in src and in dst; whole
     * 32-element blocks take the kernel that checks no column (cl/shape.cl). */
    const int64_t run = len * r->inner;
    size_t items[2] = {(size_t)run, (size_t)r->outer};
    return CLT__RUN_ND(dev, run % 32 == 0 ? CLT__K_slice_copy_cols32 : CLT__K_slice_copy, 2, items,
                       CLT__I32(r->outer), CLT__I32(run), CLT__I32(r->inner), CLT__I32(accumulate),
                       CLT__BUF(src), CLT__I32(src_axis), CLT__I32(src_start), CLT__BUF(dst),
                       CLT__I32(dst_axis), CLT__I32(dst_start));
}

/* Checks concat's lengths against y's shape and every buffer (xs are inputs or gradients;
 * with skip_null, entries with a NULL buffer are not checked: the caller skips them). */
static enum clt_status concat_check(struct clt_device *dev, const char *op, uint32_t count,
                                    const struct clt__buf *xs, const int64_t *len,
                                    struct clt__buf y, uint32_t ndim, const int64_t *shape,
                                    uint32_t axis, bool skip_null, struct around *r)
{
    enum clt_status st = around_axis(dev, op, ndim, shape, axis, r);
    if (st != CLT_OK)
        return st;
    if (count == 0 || !xs || !len) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: no inputs", op);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    int64_t sum = 0;
    for (uint32_t k = 0; k < count && sum <= r->axis; k++) {
        if (len[k] < 0) {
            sum = -1;
            break;
        }
        sum += len[k];
    }
    if (sum != r->axis) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "%s: the input lengths do not add up to %lld along axis %u", op,
                 (long long)r->axis, axis);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    st = clt__check_buf(dev, y, r->outer * r->axis * r->inner, clt__storage_bytes(dev), op,
                        "the concatenation");
    for (uint32_t k = 0; k < count && st == CLT_OK; k++)
        if (xs[k].mem || !skip_null)
            st = clt__check_buf(dev, xs[k], r->outer * len[k] * r->inner, clt__storage_bytes(dev),
                                op, "an input");
    return st;
}

enum clt_status clt__concat_forward(struct clt_device *dev, uint32_t count,
                                    const struct clt__buf *x, const int64_t *len, struct clt__buf y,
                                    uint32_t ndim, const int64_t *shape, uint32_t axis)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    struct around r;
    enum clt_status st =
        concat_check(dev, "concat_forward", count, x, len, y, ndim, shape, axis, false, &r);
    int64_t at = 0;
    for (uint32_t k = 0; k < count && st == CLT_OK; k++) {
        st = slice_copy(dev, &r, len[k], x[k], len[k], 0, y, r.axis, at, false);
        at += len[k];
    }
    return st;
}

enum clt_status clt__concat_backward(struct clt_device *dev, struct clt__buf dy, uint32_t count,
                                     const struct clt__buf *dx, const int64_t *len, uint32_t ndim,
                                     const int64_t *shape, uint32_t axis, bool accumulate)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    struct around r;
    enum clt_status st =
        concat_check(dev, "concat_backward", count, dx, len, dy, ndim, shape, axis, true, &r);
    int64_t at = 0;
    for (uint32_t k = 0; k < count && st == CLT_OK; k++) {
        if (dx[k].mem)
            st = slice_copy(dev, &r, len[k], dy, r.axis, at, dx[k], len[k], 0, accumulate);
        at += len[k];
    }
    return st;
}

/* Checks a slice of x_shape and both buffers (x: the full tensor, y: the slice). */
static enum clt_status slice_check(struct clt_device *dev, const char *op, struct clt__buf x,
                                   struct clt__buf y, uint32_t ndim, const int64_t *x_shape,
                                   uint32_t axis, int64_t start, int64_t len, struct around *r)
{
    enum clt_status st = around_axis(dev, op, ndim, x_shape, axis, r);
    if (st != CLT_OK)
        return st;
    if (start < 0 || len < 0 || start > r->axis || len > r->axis - start) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: slice %lld..%lld of an axis of %lld", op,
                 (long long)start, (long long)(start + len), (long long)r->axis);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    st = clt__check_buf(dev, x, r->outer * r->axis * r->inner, clt__storage_bytes(dev), op,
                        "the whole tensor");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, r->outer * len * r->inner, clt__storage_bytes(dev), op,
                            "the slice");
    return st;
}

enum clt_status clt__slice_forward(struct clt_device *dev, struct clt__buf x, struct clt__buf y,
                                   uint32_t ndim, const int64_t *x_shape, uint32_t axis,
                                   int64_t start, int64_t len)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    struct around r;
    enum clt_status st =
        slice_check(dev, "slice_forward", x, y, ndim, x_shape, axis, start, len, &r);
    if (st != CLT_OK)
        return st;
    return slice_copy(dev, &r, len, x, r.axis, start, y, len, 0, false);
}

enum clt_status clt__slice_backward(struct clt_device *dev, struct clt__buf dy, struct clt__buf dx,
                                    uint32_t ndim, const int64_t *x_shape, uint32_t axis,
                                    int64_t start, int64_t len, bool accumulate)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    struct around r;
    enum clt_status st =
        slice_check(dev, "slice_backward", dx, dy, ndim, x_shape, axis, start, len, &r);
    if (st != CLT_OK)
        return st;
    /* Accumulating leaves dx outside the slice alone: only the slice's elements need work. */
    if (accumulate)
        return slice_copy(dev, &r, len, dy, len, 0, dx, r.axis, start, true);
    size_t items[3] = {(size_t)r.inner, (size_t)r.axis, (size_t)r.outer};
    return CLT__RUN_ND(dev, CLT__K_slice_backward, 3, items, CLT__I32(r.outer), CLT__I32(r.axis),
                       CLT__I32(r.inner), CLT__I32(start), CLT__I32(len), CLT__BUF(dy),
                       CLT__BUF(dx));
}

/* ==== Views ============================================================================= */

enum clt_status clt__view_reshape(const struct clt_view *in, uint32_t ndim, const int64_t *shape,
                                  struct clt_view *out)
{
    if (!in || !in->arena || !out || !shape || ndim == 0 || ndim > CLT_MAX_DIMS)
        return CLT_ERR_INVALID_ARGUMENT;
    const struct clt_log *log = &in->arena->dev->log;
    int64_t count = clt_view_count(in), known = 1;
    int inferred = -1;
    for (uint32_t k = 0; k < ndim; k++) {
        if (shape[k] == -1 && inferred < 0) {
            inferred = (int)k;
        } else if (shape[k] <= 0 || known > count / shape[k]) {
            clt__log(log, CLT_LOG_ERROR,
                     "reshape: dimension %u (%lld) does not fit a view of %lld elements", k,
                     (long long)shape[k], (long long)count);
            return CLT_ERR_INVALID_ARGUMENT;
        } else {
            known *= shape[k];
        }
    }
    if (count == 0 || count % known != 0 || (inferred < 0 && known != count)) {
        clt__log(log, CLT_LOG_ERROR,
                 "reshape: a view of %lld elements cannot take a shape of %lld%s", (long long)count,
                 (long long)known, inferred >= 0 ? " x ?" : "");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    struct clt_view v = *in;
    memset(v.shape, 0, sizeof v.shape);
    v.ndim = ndim;
    for (uint32_t k = 0; k < ndim; k++)
        v.shape[k] = (int)k == inferred ? count / known : shape[k];
    *out = v;
    return CLT_OK;
}

enum clt_status clt__view_flatten(const struct clt_view *in, uint32_t first, uint32_t last,
                                  struct clt_view *out)
{
    if (!in || !out || clt_view_count(in) == 0 || first > last || last >= in->ndim)
        return CLT_ERR_INVALID_ARGUMENT;
    int64_t shape[CLT_MAX_DIMS];
    uint32_t m = 0;
    for (uint32_t k = 0; k < in->ndim; k++) {
        if (k <= first || k > last)
            shape[m++] = in->shape[k];
        else
            shape[m - 1] *= in->shape[k];
    }
    return clt__view_reshape(in, m, shape, out);
}

/* ==== Graph ops: definitions and public builders ========================================= */

/* ---- reshape and flatten ----------------------------------------------------------------- */

const struct clt__op_def clt__op_reshape = {.is_view = true, .storage16 = true};

struct clt_tensor *clt_reshape(struct clt_graph *g, struct clt_tensor *x, uint32_t ndim,
                               const int64_t *shape)
{
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    int64_t n = 1;
    for (uint32_t i = 0; shape && i < ndim && i < CLT_MAX_DIMS; i++)
        n *= shape[i] > 0 ? shape[i] : 0;
    if (!clt__require(g, shape && ndim >= 1 && ndim <= CLT_MAX_DIMS && n == clt__count(x),
                      "reshape: the new shape must hold as many elements as the old one"))
        return NULL;
    return clt__node(g, CLT__OP_reshape, 1, &x, x->dtype, ndim, shape);
}

struct clt_tensor *clt_flatten(struct clt_graph *g, struct clt_tensor *x)
{
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    int64_t shape[2] = {x->shape[0], clt__count(x) / x->shape[0]};
    return clt_reshape(g, x, 2, shape);
}

/* ---- permute ----------------------------------------------------------------------------- */

static void perm_of(const struct clt_tensor *t, uint32_t *perm)
{
    for (uint32_t i = 0; i < t->ndim; i++)
        perm[i] = t->p.permute.perm[i];
}

static enum clt_status permute_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    uint32_t perm[CLT_MAX_DIMS];
    perm_of(t, perm);
    const struct clt_tensor *in = t->in[0];
    return clt__permute_forward(x->dev, clt__val(x, in), clt__val(x, t), in->ndim, in->shape, perm);
}

static enum clt_status permute_backward(struct clt__exec *x, const struct clt_tensor *t,
                                        uint32_t acc)
{
    uint32_t perm[CLT_MAX_DIMS];
    perm_of(t, perm);
    const struct clt_tensor *in = t->in[0];
    return clt__permute_backward(x->dev, clt__grad(x, t), clt__grad(x, in), in->ndim, in->shape,
                                 perm, CLT__ACC(acc, 0));
}

/* [16, 128, 4, 32] -> [16, 4, 128, 32] (attention's head split). */
static struct clt_tensor *bench_permute(struct clt_graph *g)
{
    return clt_permute(g, CLT__BENCH_PARAM(g, "x", 4, 16, 128, 4, 32), (uint32_t[]){0, 2, 1, 3});
}

const struct clt__op_def clt__op_permute = {.forward = permute_forward,
                                            .backward = permute_backward,
                                            .bench = bench_permute,
                                            .storage16 = true};

struct clt_tensor *clt_permute(struct clt_graph *g, struct clt_tensor *x, const uint32_t *perm)
{
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    bool seen[CLT_MAX_DIMS] = {false};
    bool ok = perm != NULL && x->dtype == CLT_F32;
    for (uint32_t i = 0; ok && i < x->ndim; i++) {
        ok = perm[i] < x->ndim && !seen[perm[i]];
        if (ok)
            seen[perm[i]] = true;
    }
    if (!ok) {
        clt__require(g, false, "permute: perm must order the axes of an F32 tensor, each once");
        return NULL;
    }
    int64_t shape[CLT_MAX_DIMS];
    for (uint32_t i = 0; i < x->ndim; i++)
        shape[i] = x->shape[perm[i]];
    struct clt_tensor *t = clt__node(g, CLT__OP_permute, 1, &x, CLT_F32, x->ndim, shape);
    for (uint32_t i = 0; t && i < x->ndim; i++)
        t->p.permute.perm[i] = perm[i];
    return t;
}

/* ---- concat and slice -------------------------------------------------------------------- */

static enum clt_status concat_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__buf xs[CLT__MAX_INPUTS];
    int64_t len[CLT__MAX_INPUTS];
    uint32_t axis = t->p.axis.axis;
    for (uint32_t k = 0; k < t->nin; k++) {
        xs[k] = clt__val(x, t->in[k]);
        len[k] = t->in[k]->shape[axis];
    }
    return clt__concat_forward(x->dev, t->nin, xs, len, clt__val(x, t), t->ndim, t->shape, axis);
}

/* Input k's gradient is the slice of dy it filled. Inputs whose contribution writes and
 * those whose contribution adds go in two calls; clt__concat_backward skips NULL entries. */
static enum clt_status concat_backward(struct clt__exec *x, const struct clt_tensor *t,
                                       uint32_t acc)
{
    uint32_t axis = t->p.axis.axis;
    struct clt__buf dy = clt__grad(x, t);
    struct clt__buf dx[CLT__MAX_INPUTS];
    int64_t len[CLT__MAX_INPUTS];
    enum clt_status st = CLT_OK;
    for (int pass = 0; pass < 2 && st == CLT_OK; pass++) {
        bool any = false;
        for (uint32_t k = 0; k < t->nin; k++) {
            len[k] = t->in[k]->shape[axis];
            dx[k] = clt__grad(x, t->in[k]);
            if (dx[k].mem && CLT__ACC(acc, k) != (pass == 1))
                dx[k].mem = NULL;
            any = any || dx[k].mem;
        }
        if (any)
            st = clt__concat_backward(x->dev, dy, t->nin, dx, len, t->ndim, t->shape, axis,
                                      pass == 1);
    }
    return st;
}

/* Two [2048, 256] along axis 1. */
static struct clt_tensor *bench_concat(struct clt_graph *g)
{
    struct clt_tensor *xs[2] = {CLT__BENCH_PARAM(g, "a", 2, 2048, 256),
                                CLT__BENCH_PARAM(g, "b", 2, 2048, 256)};
    return clt_concat(g, 2, xs, 1);
}

const struct clt__op_def clt__op_concat = {.forward = concat_forward,
                                           .backward = concat_backward,
                                           .bench = bench_concat,
                                           .storage16 = true};

struct clt_tensor *clt_concat(struct clt_graph *g, uint32_t n, struct clt_tensor *const *xs,
                              uint32_t axis)
{
    if (!g || n == 0 || n > CLT__MAX_INPUTS || !xs) {
        if (g)
            clt__require(g, false, "concat: 1 to 8 tensors");
        return NULL;
    }
    if (!clt__graph_ok(g, n, xs))
        return NULL;
    const struct clt_tensor *a = xs[0];
    int64_t shape[CLT_MAX_DIMS];
    memcpy(shape, a->shape, a->ndim * sizeof *shape);
    bool ok = axis < a->ndim && a->dtype == CLT_F32;
    for (uint32_t k = 1; ok && k < n; k++) {
        ok = xs[k]->ndim == a->ndim && xs[k]->dtype == CLT_F32;
        for (uint32_t d = 0; ok && d < a->ndim; d++)
            ok = d == axis || xs[k]->shape[d] == a->shape[d];
        if (ok)
            shape[axis] += xs[k]->shape[axis];
    }
    if (!ok) {
        clt__require(g, false, "concat: F32 tensors of equal shape but along the axis");
        return NULL;
    }
    struct clt_tensor *t = clt__node(g, CLT__OP_concat, n, xs, CLT_F32, a->ndim, shape);
    if (t)
        t->p.axis.axis = axis;
    return t;
}

static enum clt_status slice_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    const struct clt_tensor *in = t->in[0];
    uint32_t axis = t->p.axis.axis;
    return clt__slice_forward(x->dev, clt__val(x, in), clt__val(x, t), in->ndim, in->shape, axis,
                              t->p.axis.start, t->shape[axis]);
}

static enum clt_status slice_backward(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc)
{
    const struct clt_tensor *in = t->in[0];
    uint32_t axis = t->p.axis.axis;
    return clt__slice_backward(x->dev, clt__grad(x, t), clt__grad(x, in), in->ndim, in->shape, axis,
                               t->p.axis.start, t->shape[axis], CLT__ACC(acc, 0));
}

/* Columns 128..383 of x [2048, 512]. */
static struct clt_tensor *bench_slice(struct clt_graph *g)
{
    return clt_slice(g, CLT__BENCH_PARAM(g, "x", 2, 2048, 512), 1, 128, 256);
}

const struct clt__op_def clt__op_slice = {
    .forward = slice_forward, .backward = slice_backward, .bench = bench_slice, .storage16 = true};

struct clt_tensor *clt_slice(struct clt_graph *g, struct clt_tensor *x, uint32_t axis,
                             int64_t start, int64_t length)
{
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    if (x->dtype != CLT_F32 || axis >= x->ndim || start < 0 || length <= 0 ||
        start > x->shape[axis] - length) {
        clt__require(g, false, "slice: start and length must lie within the axis of an F32 tensor");
        return NULL;
    }
    int64_t shape[CLT_MAX_DIMS];
    memcpy(shape, x->shape, x->ndim * sizeof *shape);
    shape[axis] = length;
    struct clt_tensor *t = clt__node(g, CLT__OP_slice, 1, &x, CLT_F32, x->ndim, shape);
    if (t) {
        t->p.axis.axis = axis;
        t->p.axis.start = start;
    }
    return t;
}
