/*
 * embedding.c: the embedding op of the shape family: its launchers over cl/shape.cl's
 * embedding kernels (contracts in ops/shape.h, kernel notes in docs/kernels/shape.md: a
 * gather forward; a backward that groups the tokens by id with a bitonic sort, then sums
 * each (row, column) of the table in one work-item in increasing token order), then the
 * graph op: its definition and public builders.
 */
#include <string.h>

#include "graph.h"
#include "ops/shape.h"

/* ==== Embedding ========================================================================= */

/* The smallest power of two >= n, at least 2 (the sort's block). n <= 2^30. */
static int64_t pow2_ceil(int64_t n)
{
    int64_t p = 2;
    while (p < n)
        p *= 2;
    return p;
}

/* Checks the embedding's sizes: every tensor indexable with int. */
static bool embedding_sizes_ok(int64_t vocab, int64_t dim, int64_t tokens)
{
    return vocab >= 0 && dim >= 0 && tokens >= 0 && vocab < INT32_MAX && tokens <= (1 << 30) &&
           (dim == 0 || (vocab <= INT32_MAX / dim && tokens <= INT32_MAX / dim));
}

size_t clt__embedding_workspace_bytes(int64_t vocab, int64_t tokens)
{
    if (vocab < 0 || tokens < 0 || vocab >= INT32_MAX - (1 << 30) || tokens > (1 << 30))
        return 0;
    return (size_t)(pow2_ceil(tokens) + vocab + 1) * sizeof(cl_int);
}

enum clt_status clt__embedding_forward(struct clt_device *dev, struct clt__buf table,
                                       struct clt__buf ids, struct clt__buf y, int64_t vocab,
                                       int64_t dim, int64_t tokens)
{
    static const char op[] = "embedding_forward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    if (!embedding_sizes_ok(vocab, dim, tokens)) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: impossible sizes vocab=%lld dim=%lld tokens=%lld",
                 op, (long long)vocab, (long long)dim, (long long)tokens);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    const size_t e = clt__storage_bytes(dev);
    enum clt_status st = clt__check_buf(dev, table, vocab * dim, e, op, "table");
    if (st == CLT_OK)
        st = clt__check_buf(dev, ids, tokens, sizeof(cl_int), op, "ids");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, tokens * dim, e, op, "y");
    if (st != CLT_OK)
        return st;
    return CLT__RUN_ND(dev, CLT__K_embedding_forward, 2, ((size_t[]){(size_t)dim, (size_t)tokens}),
                       CLT__I32(tokens), CLT__I32(dim), CLT__I32(vocab), CLT__BUF(table),
                       CLT__BUF(ids), CLT__BUF(y));
}

/* The work-group size W of embedding_sort_local: a power of two within the device's 1-D size
 * and the kernel's limit, with its 2 x 2W ints of local memory within half the device's,
 * and 2W <= n2. */
static size_t sort_wg(const struct clt_device *dev, size_t kernel_wg, cl_int n2)
{
    size_t limit = dev->wg_1d < kernel_wg ? dev->wg_1d : kernel_wg, w = 1;
    while (w * 2 <= limit && w * 2 <= (size_t)n2 / 2 &&
           (w * 2) * 4 * sizeof(cl_int) <= dev->info.local_mem_bytes / 2)
        w *= 2;
    return w;
}

/* Sorts the positions 0..n2 by (id class, t) into sorted[0..n2) (cl/shape.cl): one local
 * launch sorts each block of 2W; then, for every larger k, the stages with j >= 2W run one
 * launch each in global memory and the rest in one local launch. */
static enum clt_status embedding_sort(struct clt_device *dev, struct clt__buf ids,
                                      struct clt__buf ws, cl_int n2, cl_int tokens, cl_int vocab)
{
    cl_kernel local_k;
    size_t local_wg;
    enum clt_status st = clt__kernel(dev, CLT__K_embedding_sort_local, &local_k, &local_wg);
    if (st != CLT_OK)
        return st;
    const size_t w = sort_wg(dev, local_wg, n2), pairs = (size_t)n2 / 2;
    const cl_int block = (cl_int)(2 * w);
    for (cl_int k = block; st == CLT_OK && k <= n2; k *= 2) {
        for (cl_int j = k / 2; st == CLT_OK && j >= block; j /= 2)
            st = CLT__RUN(dev, CLT__K_embedding_sort_step, pairs, CLT__I32(n2), CLT__I32(k),
                          CLT__I32(j), CLT__I32(tokens), CLT__I32(vocab), CLT__BUF(ids),
                          CLT__BUF(ws));
        /* First pass: every stage up to k = 2W; later: k's stages with j < 2W. */
        if (st == CLT_OK)
            st =
                CLT__RUN_WG(dev, CLT__K_embedding_sort_local, pairs, w, CLT__I32(n2),
                            CLT__I32(k == block ? 2 : k), CLT__I32(k), CLT__I32(k == block),
                            CLT__I32(tokens), CLT__I32(vocab), CLT__BUF(ids), CLT__BUF(ws),
                            CLT__LOCAL(2 * w * sizeof(cl_int)), CLT__LOCAL(2 * w * sizeof(cl_int)));
    }
    return st;
}

enum clt_status clt__embedding_backward(struct clt_device *dev, struct clt__buf ids,
                                        struct clt__buf dy, struct clt__buf dtable,
                                        struct clt__buf workspace, int64_t vocab, int64_t dim,
                                        int64_t tokens, bool accumulate)
{
    static const char op[] = "embedding_backward";
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    size_t ws_bytes = clt__embedding_workspace_bytes(vocab, tokens);
    if (!embedding_sizes_ok(vocab, dim, tokens) || ws_bytes == 0) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: impossible sizes vocab=%lld dim=%lld tokens=%lld",
                 op, (long long)vocab, (long long)dim, (long long)tokens);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    enum clt_status st = clt__check_buf(dev, ids, tokens, sizeof(cl_int), op, "ids");
    if (st == CLT_OK)
        st = clt__check_buf(dev, dy, tokens * dim, clt__storage_bytes(dev), op, "dy");
    if (st == CLT_OK)
        st = clt__check_buf(dev, dtable, vocab * dim, clt__storage_bytes(dev), op, "dtable");
    if (st == CLT_OK)
        st = clt__check_buf(dev, workspace, (int64_t)(ws_bytes / sizeof(cl_int)), sizeof(cl_int),
                            op, "workspace");
    if (st != CLT_OK || vocab * dim == 0)
        return st;

    cl_int n2 = (cl_int)pow2_ceil(tokens);
    st = embedding_sort(dev, ids, workspace, n2, (cl_int)tokens, (cl_int)vocab);
    if (st == CLT_OK)
        st = CLT__RUN(dev, CLT__K_embedding_bounds, (size_t)vocab + 1, CLT__I32(n2),
                      CLT__I32(tokens), CLT__I32(vocab), CLT__BUF(ids), CLT__BUF(workspace));
    if (st == CLT_OK)
        st =
            CLT__RUN_ND(dev, CLT__K_embedding_backward, 2, ((size_t[]){(size_t)dim, (size_t)vocab}),
                        CLT__I32(vocab), CLT__I32(dim), CLT__I32(n2), CLT__I32(accumulate),
                        CLT__BUF(workspace), CLT__BUF(dy), CLT__BUF(dtable));
    return st;
}

/* ==== Graph op: definition and public builders =========================================== */

/* ---- embedding --------------------------------------------------------------------------- */

static uint64_t emb_workspace(const struct clt_tensor *t)
{
    return clt__embedding_workspace_bytes(t->in[0]->shape[0], clt__count(t->in[1]));
}

static enum clt_status emb_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    const struct clt_tensor *table = t->in[0];
    return clt__embedding_forward(x->dev, clt__val(x, table), clt__val(x, t->in[1]), clt__val(x, t),
                                  table->shape[0], table->shape[1], clt__count(t->in[1]));
}

static enum clt_status emb_backward(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc)
{
    const struct clt_tensor *table = t->in[0];
    return clt__embedding_backward(x->dev, clt__val(x, t->in[1]), clt__grad(x, t),
                                   clt__grad(x, table), clt__workspace(x), table->shape[0],
                                   table->shape[1], clt__count(t->in[1]), CLT__ACC(acc, 0));
}

/* 2048 ids into a [96, 128] table. */
static struct clt_tensor *bench_embedding(struct clt_graph *g)
{
    return clt_embedding(g, clt_input(g, "ids", CLT_I32, 1, (int64_t[]){2048}), 96, 128, "emb");
}

const struct clt__op_def clt__op_embedding = {
    .saves = CLT__SAVES_INPUT(1),
    .forward = emb_forward,
    .backward = emb_backward,
    .workspace = emb_workspace,
    .bench = bench_embedding,
    .storage16 = true,
};

struct clt_tensor *clt_embedding(struct clt_graph *g, struct clt_tensor *ids, int64_t vocab,
                                 int64_t dim, const char *name)
{
    return clt_embedding_ex(g, ids, vocab, dim, name, NULL);
}

struct clt_tensor *clt_embedding_ex(struct clt_graph *g, struct clt_tensor *ids, int64_t vocab,
                                    int64_t dim, const char *name,
                                    const struct clt_layer_params *use)
{
    const struct clt_layer_params none = {0};
    if (!use)
        use = &none;
    if (!clt__graph_ok(g, 1, &ids) ||
        !clt__layer_params_only(g, "embedding", name, use, false, false))
        return NULL;
    if (ids->dtype != CLT_I32 || ids->ndim >= CLT_MAX_DIMS) {
        clt__require(g, false, "embedding: ids must be I32 with fewer than 6 dimensions");
        return NULL;
    }
    struct clt_tensor *w =
        clt__layer_param(g, "embedding", name, "weight", use->weight, false, 2,
                         (int64_t[]){vocab, dim}, (struct clt_init){CLT_INIT_NORMAL, 0.0f, 1.0f});
    if (!w)
        return NULL;
    clt_param_set_kind(w, CLT_PARAM_EMBEDDING);
    int64_t shape[CLT_MAX_DIMS];
    memcpy(shape, ids->shape, ids->ndim * sizeof *shape);
    shape[ids->ndim] = dim;
    struct clt_tensor *in[2] = {w, ids};
    return clt__node(g, CLT__OP_embedding, 2, in, CLT_F32, ids->ndim + 1, shape);
}
