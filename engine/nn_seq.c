/*
 * nn_seq.c: graph ops for sequence models and for moving data: layer norm, embedding,
 * permute, concat, slice, scaled dot-product attention and the multi-head attention layer.
 *
 * Attributes: layer_norm f[0] eps, aux 0 mean [rows], aux 1 rstd [rows]; permute i[0..5] the
 * permutation; concat i[0] the axis; slice i[0] axis, i[1] start; sdpa i[0] causal, f[0]
 * scale, aux 0 the probabilities [B, H, T, T].
 */
#include <math.h>
#include <string.h>

#include "graph.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/shape.h"

static bool fail(struct clt_graph *g, const char *what)
{
    clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "%s", what);
    return false;
}

/* ---- layer norm -------------------------------------------------------------------------- */

static void ln_dims(const struct clt_tensor *t, int64_t *rows, int64_t *d)
{
    *d = t->shape[t->ndim - 1];
    *rows = clt__count(t) / *d;
}

static uint64_t ln_workspace(const struct clt_tensor *t)
{
    int64_t rows, d;
    ln_dims(t, &rows, &d);
    return clt__layernorm_workspace_bytes(rows, d);
}

static enum clt_status ln_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t rows, d;
    ln_dims(t, &rows, &d);
    return clt__layernorm_forward(x->dev, rows, d, clt__val(x, t->in[0]), clt__val(x, t->in[1]),
                                  clt__val(x, t->in[2]), t->f[0], clt__val(x, t),
                                  clt__aux(x, t, 0), clt__aux(x, t, 1));
}

static enum clt_status ln_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t rows, d;
    ln_dims(t, &rows, &d);
    struct clt__buf none = {NULL, 0};
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; i < 3 && st == CLT_OK; i++) {
        struct clt__buf g = clt__grad(x, t->in[i]);
        if (g.mem)
            st = clt__layernorm_backward(x->dev, rows, d, clt__val(x, t->in[0]), clt__grad(x, t),
                                         clt__val(x, t->in[1]), clt__aux(x, t, 0),
                                         clt__aux(x, t, 1), i == 0 ? g : none,
                                         i == 1 ? g : none, i == 2 ? g : none,
                                         clt__accumulate(x, t, i), clt__workspace(x));
    }
    return st;
}

static const struct clt__op_def ln_def = {
    .name = "layer_norm",
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = ln_forward,
    .backward = ln_backward,
    .workspace = ln_workspace,
};

struct clt_tensor *clt_layer_norm(struct clt_graph *g, struct clt_tensor *x, float eps,
                                  const char *name)
{
    char wname[CLT__NAME_MAX], bname[CLT__NAME_MAX];
    if (!clt__graph_ok(g, 1, &x) || !clt__param_name(g, name, "weight", wname) ||
        !clt__param_name(g, name, "bias", bname))
        return NULL;
    if (x->dtype != CLT_F32 || !(eps >= 0.0f) || !isfinite(eps)) {
        fail(g, "layer_norm: needs F32 x and a finite eps >= 0");
        return NULL;
    }
    int64_t d = x->shape[x->ndim - 1];
    struct clt_tensor *w =
        clt_param(g, wname, 1, &d, (struct clt_init){CLT_INIT_CONSTANT, 1.0f, 0.0f});
    struct clt_tensor *b = clt_param(g, bname, 1, &d, (struct clt_init){CLT_INIT_ZEROS, 0, 0});
    struct clt_tensor *in[3] = {x, w, b};
    struct clt_tensor *t = w && b ? clt__node(g, &ln_def, 3, in, CLT_F32, x->ndim, x->shape)
                                  : NULL;
    if (t) {
        t->f[0] = eps;
        t->naux = 2;
        t->aux_dtype[0] = t->aux_dtype[1] = CLT_F32;
        t->aux_count[0] = t->aux_count[1] = clt__count(x) / d;
    }
    return t;
}

/* ---- embedding --------------------------------------------------------------------------- */

static uint64_t emb_workspace(const struct clt_tensor *t)
{
    return clt__embedding_workspace_bytes(t->in[0]->shape[0], clt__count(t->in[1]));
}

static enum clt_status emb_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    const struct clt_tensor *table = t->in[0];
    return clt__embedding_forward(x->dev, clt__val(x, table), clt__val(x, t->in[1]),
                                  clt__val(x, t), table->shape[0], table->shape[1],
                                  clt__count(t->in[1]));
}

static enum clt_status emb_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    const struct clt_tensor *table = t->in[0];
    return clt__embedding_backward(x->dev, clt__val(x, t->in[1]), clt__grad(x, t),
                                   clt__grad(x, table), clt__workspace(x), table->shape[0],
                                   table->shape[1], clt__count(t->in[1]),
                                   clt__accumulate(x, t, 0));
}

static const struct clt__op_def emb_def = {
    .name = "embedding",
    .saves = CLT__SAVES_INPUT(1),
    .forward = emb_forward,
    .backward = emb_backward,
    .workspace = emb_workspace,
};

struct clt_tensor *clt_embedding(struct clt_graph *g, struct clt_tensor *ids, int64_t vocab,
                                 int64_t dim, const char *name)
{
    char wname[CLT__NAME_MAX];
    if (!clt__graph_ok(g, 1, &ids) || !clt__param_name(g, name, "weight", wname))
        return NULL;
    if (ids->dtype != CLT_I32 || ids->ndim >= CLT_MAX_DIMS) {
        fail(g, "embedding: ids must be I32 with fewer than 6 dimensions");
        return NULL;
    }
    struct clt_tensor *w = clt_param(g, wname, 2, (int64_t[]){vocab, dim},
                                     (struct clt_init){CLT_INIT_NORMAL, 0.0f, 1.0f});
    if (!w)
        return NULL;
    int64_t shape[CLT_MAX_DIMS];
    memcpy(shape, ids->shape, ids->ndim * sizeof *shape);
    shape[ids->ndim] = dim;
    struct clt_tensor *in[2] = {w, ids};
    return clt__node(g, &emb_def, 2, in, CLT_F32, ids->ndim + 1, shape);
}

/* ---- permute ----------------------------------------------------------------------------- */

static void perm_of(const struct clt_tensor *t, uint32_t *perm)
{
    for (uint32_t i = 0; i < t->ndim; i++)
        perm[i] = (uint32_t)t->i[i];
}

static enum clt_status permute_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    uint32_t perm[CLT_MAX_DIMS];
    perm_of(t, perm);
    const struct clt_tensor *in = t->in[0];
    return clt__permute_forward(x->dev, clt__val(x, in), clt__val(x, t), in->ndim, in->shape,
                                perm);
}

static enum clt_status permute_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    uint32_t perm[CLT_MAX_DIMS];
    perm_of(t, perm);
    const struct clt_tensor *in = t->in[0];
    return clt__permute_backward(x->dev, clt__grad(x, t), clt__grad(x, in), in->ndim, in->shape,
                                 perm, clt__accumulate(x, t, 0));
}

static const struct clt__op_def permute_def = {
    .name = "permute", .forward = permute_forward, .backward = permute_backward};

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
        fail(g, "permute: perm must order the axes of an F32 tensor, each once");
        return NULL;
    }
    int64_t shape[CLT_MAX_DIMS];
    for (uint32_t i = 0; i < x->ndim; i++)
        shape[i] = x->shape[perm[i]];
    struct clt_tensor *t = clt__node(g, &permute_def, 1, &x, CLT_F32, x->ndim, shape);
    for (uint32_t i = 0; t && i < x->ndim; i++)
        t->i[i] = perm[i];
    return t;
}

/* ---- concat and slice -------------------------------------------------------------------- */

static enum clt_status concat_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__buf xs[CLT__MAX_INPUTS];
    int64_t len[CLT__MAX_INPUTS];
    uint32_t axis = (uint32_t)t->i[0];
    for (uint32_t k = 0; k < t->nin; k++) {
        xs[k] = clt__val(x, t->in[k]);
        len[k] = t->in[k]->shape[axis];
    }
    return clt__concat_forward(x->dev, t->nin, xs, len, clt__val(x, t), t->ndim, t->shape,
                               axis);
}

/* Input k's gradient is the slice of dy it filled. Inputs whose contribution writes and
 * those whose contribution adds go in two calls; clt__concat_backward skips NULL entries. */
static enum clt_status concat_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    uint32_t axis = (uint32_t)t->i[0];
    struct clt__buf dy = clt__grad(x, t);
    struct clt__buf dx[CLT__MAX_INPUTS];
    int64_t len[CLT__MAX_INPUTS];
    enum clt_status st = CLT_OK;
    for (int pass = 0; pass < 2 && st == CLT_OK; pass++) {
        bool any = false;
        for (uint32_t k = 0; k < t->nin; k++) {
            len[k] = t->in[k]->shape[axis];
            dx[k] = clt__grad(x, t->in[k]);
            if (dx[k].mem && clt__accumulate(x, t, k) != (pass == 1))
                dx[k].mem = NULL;
            any = any || dx[k].mem;
        }
        if (any)
            st = clt__concat_backward(x->dev, dy, t->nin, dx, len, t->ndim, t->shape, axis,
                                      pass == 1);
    }
    return st;
}

static const struct clt__op_def concat_def = {
    .name = "concat", .forward = concat_forward, .backward = concat_backward};

struct clt_tensor *clt_concat(struct clt_graph *g, uint32_t n, struct clt_tensor *const *xs,
                              uint32_t axis)
{
    if (!g || n == 0 || n > CLT__MAX_INPUTS || !xs) {
        if (g)
            fail(g, "concat: 1 to 8 tensors");
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
        fail(g, "concat: F32 tensors of equal shape but along the axis");
        return NULL;
    }
    struct clt_tensor *t = clt__node(g, &concat_def, n, xs, CLT_F32, a->ndim, shape);
    if (t)
        t->i[0] = axis;
    return t;
}

static enum clt_status slice_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    const struct clt_tensor *in = t->in[0];
    uint32_t axis = (uint32_t)t->i[0];
    return clt__slice_forward(x->dev, clt__val(x, in), clt__val(x, t), in->ndim, in->shape, axis,
                              t->i[1], t->shape[axis]);
}

static enum clt_status slice_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    const struct clt_tensor *in = t->in[0];
    uint32_t axis = (uint32_t)t->i[0];
    return clt__slice_backward(x->dev, clt__grad(x, t), clt__grad(x, in), in->ndim, in->shape,
                               axis, t->i[1], t->shape[axis], clt__accumulate(x, t, 0));
}

static const struct clt__op_def slice_def = {
    .name = "slice", .forward = slice_forward, .backward = slice_backward};

struct clt_tensor *clt_slice(struct clt_graph *g, struct clt_tensor *x, uint32_t axis,
                             int64_t start, int64_t length)
{
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    if (x->dtype != CLT_F32 || axis >= x->ndim || start < 0 || length <= 0 ||
        start > x->shape[axis] - length) {
        fail(g, "slice: start and length must lie within the axis of an F32 tensor");
        return NULL;
    }
    int64_t shape[CLT_MAX_DIMS];
    memcpy(shape, x->shape, x->ndim * sizeof *shape);
    shape[axis] = length;
    struct clt_tensor *t = clt__node(g, &slice_def, 1, &x, CLT_F32, x->ndim, shape);
    if (t) {
        t->i[0] = axis;
        t->i[1] = start;
    }
    return t;
}

/* ---- attention --------------------------------------------------------------------------- */

static uint64_t sdpa_workspace(const struct clt_tensor *t)
{
    return clt__attention_workspace_bytes(t->shape[0], t->shape[1], t->shape[2]);
}

static enum clt_status sdpa_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    return clt__attention_forward(x->dev, clt__val(x, t->in[0]), clt__val(x, t->in[1]),
                                  clt__val(x, t->in[2]), clt__aux(x, t, 0), clt__val(x, t),
                                  t->shape[0], t->shape[1], t->shape[2], t->shape[3], t->f[0],
                                  t->i[0]);
}

static enum clt_status sdpa_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__buf none = {NULL, 0};
    struct clt__buf g[3] = {clt__grad(x, t->in[0]), clt__grad(x, t->in[1]),
                            clt__grad(x, t->in[2])};
    enum clt_status st = CLT_OK;
    for (uint32_t i = 0; i < 3 && st == CLT_OK; i++) {
        if (!g[i].mem)
            continue;
        st = clt__attention_backward(x->dev, clt__val(x, t->in[0]), clt__val(x, t->in[1]),
                                     clt__val(x, t->in[2]), clt__aux(x, t, 0), clt__grad(x, t),
                                     clt__workspace(x), i == 0 ? g[0] : none,
                                     i == 1 ? g[1] : none, i == 2 ? g[2] : none, t->shape[0],
                                     t->shape[1], t->shape[2], t->shape[3], t->f[0], t->i[0],
                                     clt__accumulate(x, t, i));
    }
    return st;
}

static const struct clt__op_def sdpa_def = {
    .name = "sdpa",
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1) | CLT__SAVES_INPUT(2),
    .forward = sdpa_forward,
    .backward = sdpa_backward,
    .workspace = sdpa_workspace,
};

struct clt_tensor *clt_sdpa(struct clt_graph *g, struct clt_tensor *q, struct clt_tensor *k,
                            struct clt_tensor *v, bool causal)
{
    struct clt_tensor *in[3] = {q, k, v};
    if (!clt__graph_ok(g, 3, in))
        return NULL;
    bool ok = q->ndim == 4 && q->dtype == CLT_F32;
    for (int i = 1; ok && i < 3; i++)
        ok = in[i]->ndim == 4 && in[i]->dtype == CLT_F32 &&
             memcmp(in[i]->shape, q->shape, 4 * sizeof *q->shape) == 0;
    if (!ok) {
        fail(g, "sdpa: q, k and v must be F32 [B, H, T, Dh] of the same shape");
        return NULL;
    }
    struct clt_tensor *t = clt__node(g, &sdpa_def, 3, in, CLT_F32, 4, q->shape);
    if (t) {
        t->i[0] = causal;
        t->f[0] = clt__attention_scale(q->shape[3]);
        t->naux = 1;
        t->aux_dtype[0] = CLT_F32;
        t->aux_count[0] = q->shape[0] * q->shape[1] * q->shape[2] * q->shape[2];
    }
    return t;
}

struct clt_tensor *clt_attention(struct clt_graph *g, struct clt_tensor *x, int64_t heads,
                                 bool causal, const char *name)
{
    char qkv_name[CLT__NAME_MAX], proj_name[CLT__NAME_MAX];
    if (!clt__graph_ok(g, 1, &x) || !clt__param_name(g, name, "qkv", qkv_name) ||
        !clt__param_name(g, name, "proj", proj_name))
        return NULL;
    if (x->ndim != 3 || heads <= 0 || x->shape[2] % heads != 0) {
        fail(g, "attention: x must be [N, T, D] with D divisible by the number of heads");
        return NULL;
    }
    int64_t n = x->shape[0], t = x->shape[1], d = x->shape[2], dh = d / heads;
    /* [N, T, 3D] -> [N, T, 3, H, Dh] -> [3, N, H, T, Dh], then q, k, v [N, H, T, Dh]. */
    struct clt_tensor *qkv = clt_linear(g, x, 3 * d, true, qkv_name);
    qkv = clt_reshape(g, qkv, 5, (int64_t[]){n, t, 3, heads, dh});
    qkv = clt_permute(g, qkv, (uint32_t[]){2, 0, 3, 1, 4});
    struct clt_tensor *part[3];
    for (int i = 0; i < 3; i++)
        part[i] = clt_reshape(g, clt_slice(g, qkv, 0, i, 1), 4, (int64_t[]){n, heads, t, dh});
    struct clt_tensor *o = clt_sdpa(g, part[0], part[1], part[2], causal);
    /* [N, H, T, Dh] -> [N, T, H, Dh] -> [N, T, D]. */
    o = clt_reshape(g, clt_permute(g, o, (uint32_t[]){0, 2, 1, 3}), 3, (int64_t[]){n, t, d});
    return clt_linear(g, o, d, true, proj_name);
}
