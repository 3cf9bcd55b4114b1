/*
 * plan.c: reverse-mode differentiation of a graph and the memory plan of its step.
 *
 * The step's timeline: forward steps 0 .. F-1 (one per op node, in id order), the loss seed
 * at F, then the backward entries F+1 .. (each op's backward in reverse order, with
 * recomputations of dropped activations just before their first use), then the optimizer at
 * the end. Every activation, activation gradient and saved tensor is a storage with the
 * interval of the timeline in which it must hold its contents; storages whose intervals do
 * not meet share memory. A fused chain (fuse.c) runs forward at its last op's place and
 * backward at that op's entry; the values inside it have no gradient storage. Parameters, their
 * gradients, optimizer state and the inputs live in buffers of their own.
 *
 * Element sizes (docs/precision.md): in a 16-bit plan every F32 tensor, value and gradient,
 * takes 2 bytes an element (inputs, activations, the trained parameters' working copy and
 * their gradients), except state tensors and the output of a wide_output op (a loss) and its
 * gradient, which stay fp32; aux buffers keep their declared dtype (but a cache, such as
 * conv2d's columns, takes the storage's size) and I32 tensors 4 bytes.
 * Storages are sized in bytes and aligned as in fp32, so offsets divide by any element size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer.h"

#define ALIGN_BYTES 256u

static uint64_t round_up(uint64_t v)
{
    return (v + ALIGN_BYTES - 1) / ALIGN_BYTES * ALIGN_BYTES;
}

static int32_t add_storage(struct clt__plan *p, uint64_t bytes, int32_t first, int32_t last)
{
    struct clt__storage *s = &p->st[p->nst];
    s->bytes = round_up(bytes);
    s->first = first;
    s->last = last < first ? first : last;
    p->unshared_bytes += s->bytes;
    return (int32_t)p->nst++;
}

static bool meet(const struct clt__storage *a, const struct clt__storage *b)
{
    return a->first <= b->last && b->first <= a->last;
}

static int by_size_desc(const void *x, const void *y, void *ctx)
{
    const struct clt__storage *st = ctx;
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    if (st[a].bytes != st[b].bytes)
        return st[a].bytes < st[b].bytes ? 1 : -1;
    return a < b ? -1 : a > b;
}

/* Insertion sort with a context: qsort_r is not C11, and plans are small. */
static void sort_indices(uint32_t *idx, uint32_t n, const struct clt__storage *st)
{
    for (uint32_t i = 1; i < n; i++) {
        uint32_t v = idx[i];
        uint32_t j = i;
        while (j > 0 && by_size_desc(&idx[j - 1], &v, (void *)st) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

/* Places every storage at the lowest offset free of the storages it meets in time, largest
 * first. */
static enum clt_status assign_offsets(struct clt__plan *p)
{
    uint32_t *order = malloc((p->nst + 1) * sizeof *order);
    uint32_t *placed = malloc((p->nst + 1) * sizeof *placed);
    if (!order || !placed) {
        free(order);
        free(placed);
        return CLT_ERR_NO_MEMORY;
    }
    for (uint32_t i = 0; i < p->nst; i++)
        order[i] = i;
    sort_indices(order, p->nst, p->st);
    uint32_t nplaced = 0;
    p->arena_bytes = 0;
    for (uint32_t k = 0; k < p->nst; k++) {
        struct clt__storage *s = &p->st[order[k]];
        /* Candidates: 0 and the end of every placed storage that meets s in time. */
        uint64_t best = UINT64_MAX;
        for (uint32_t c = 0; c <= nplaced; c++) {
            uint64_t cand = 0;
            if (c < nplaced) {
                const struct clt__storage *q = &p->st[placed[c]];
                if (!meet(s, q))
                    continue;
                cand = q->offset + q->bytes;
            }
            if (cand >= best)
                continue;
            bool fits = true;
            for (uint32_t j = 0; j < nplaced && fits; j++) {
                const struct clt__storage *q = &p->st[placed[j]];
                if (meet(s, q) && cand < q->offset + q->bytes && q->offset < cand + s->bytes)
                    fits = false;
            }
            if (fits)
                best = cand;
        }
        s->offset = best;
        placed[nplaced++] = order[k];
        if (best + s->bytes > p->arena_bytes)
            p->arena_bytes = best + s->bytes;
    }
    free(order);
    free(placed);
    return CLT_OK;
}

static uint32_t root_of(const struct clt__plan *p, const struct clt_tensor *t)
{
    return p->info[t->id].root;
}

/* Which nodes the loss (or, without a loss, the outputs) depends on, which need gradients,
 * and where views point. */
static enum clt_status mark_nodes(struct clt_device *dev, const struct clt_graph *g,
                                  const struct clt_tensor *loss,
                                  const struct clt_tensor *const *outputs, uint32_t noutputs,
                                  struct clt__plan *p)
{
    for (uint32_t id = 0; id < p->n; id++) {
        struct clt__tinfo *ti = &p->info[id];
        const struct clt_tensor *t = g->nodes[id];
        ti->root =
            t->kind == CLT__NODE_OP && clt__def(t)->is_view ? p->info[t->in[0]->id].root : id;
        ti->val = ti->val_bwd = ti->grad = -1;
        for (uint32_t k = 0; k < CLT__MAX_AUX; k++)
            ti->aux[k] = -1;
        ti->fwd_pos = ti->bwd_pos = -1;
        ti->group = -1;
    }
    if (loss)
        p->info[loss->id].reached = p->info[root_of(p, loss)].output = true;
    for (uint32_t i = 0; i < noutputs; i++)
        p->info[outputs[i]->id].reached = p->info[root_of(p, outputs[i])].output = true;
    for (uint32_t id = p->n; id-- > 0;)
        if (p->info[id].reached)
            for (uint32_t i = 0; i < g->nodes[id]->nin; i++)
                p->info[g->nodes[id]->in[i]->id].reached = true;
    for (uint32_t id = 0; id < p->n; id++) {
        const struct clt_tensor *t = g->nodes[id];
        struct clt__tinfo *ti = &p->info[id];
        if (t->kind == CLT__NODE_PARAM)
            ti->needs_grad = ti->reached && loss;
        if (t->kind != CLT__NODE_OP || !ti->reached || t->dtype != CLT_F32)
            continue;
        for (uint32_t i = 0; i < t->nin; i++)
            ti->needs_grad = ti->needs_grad || p->info[t->in[i]->id].needs_grad;
        if (ti->needs_grad && !clt__def(t)->is_view && !clt__def(t)->backward) {
            clt__log(&dev->log, CLT_LOG_ERROR,
                     "op %s has no gradient, but a parameter "
                     "before it needs one",
                     clt__op_names[t->op]);
            return CLT_ERR_INVALID_ARGUMENT;
        }
        ti->has_bwd = ti->needs_grad && !clt__def(t)->is_view;
    }
    if (loss && !p->info[loss->id].needs_grad) {
        clt__log(&dev->log, CLT_LOG_ERROR, "the loss depends on no parameter");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return CLT_OK;
}

/* Bytes of one element of an F32 tensor in the plan's storage. */
static uint8_t storage_bytes(const struct clt__plan *p)
{
    return p->storage == CLT_PRECISION_FP32 ? 4 : 2;
}

/* Places parameters and state in the parameter buffer (offsets in elements, the same in the
 * fp32 masters and the 16-bit working copy), and inputs in an input slot (offsets in elements
 * of the input's own type). */
static void place_params_and_inputs(const struct clt_graph *g, struct clt__plan *p)
{
    for (uint32_t id = 0; id < p->n; id++) {
        const struct clt_tensor *t = g->nodes[id];
        if (t->kind == CLT__NODE_PARAM) {
            p->info[id].offset = p->info[id].grad_offset = p->trained;
            p->info[id].elem_bytes = storage_bytes(p);
            p->trained += (uint64_t)clt__count(t);
        }
    }
    for (uint32_t id = 0; id < p->n; id++) {
        const struct clt_tensor *t = g->nodes[id];
        if (t->kind == CLT__NODE_STATE) {
            p->info[id].offset = p->trained + p->state;
            p->info[id].elem_bytes = 4;
            p->state += (uint64_t)clt__count(t);
        } else if (t->kind == CLT__NODE_INPUT) {
            uint8_t e = t->dtype == CLT_F32 ? storage_bytes(p) : 4;
            p->info[id].elem_bytes = e;
            p->info[id].offset = p->input_bytes / e;
            p->input_bytes += round_up((uint64_t)clt__count(t) * e);
            p->ninputs++;
        }
    }
}

/* Whether node c's backward reads the value of its input slot i (in a fused chain: whether
 * the chain's backward does). */
static bool bwd_reads_input(const struct clt__plan *p, const struct clt_tensor *c, uint32_t i)
{
    if (p->info[c->id].group >= 0)
        return p->info[c->id].has_bwd && ((p->info[c->id].fused_reads >> i) & 1u);
    return p->info[c->id].has_bwd && (clt__def(c)->saves & CLT__SAVES_INPUT(i));
}

/* The forward position at which node c reads its inputs: a fused chain runs at its last
 * op's. */
static int32_t fwd_use_pos(const struct clt__plan *p, const struct clt_tensor *c)
{
    const struct clt__tinfo *ci = &p->info[c->id];
    if (ci->group < 0)
        return ci->fwd_pos;
    const struct clt__fuse_group *gr = &p->groups[ci->group];
    return p->info[gr->node[gr->n - 1]].fwd_pos;
}

/* The nodes whose backward one backward entry for node id runs: the node, or its whole fused
 * chain from the last op to the first. Returns their count. */
static uint32_t entry_nodes(const struct clt__plan *p, uint32_t id, uint32_t *out)
{
    if (p->info[id].group < 0) {
        out[0] = id;
        return 1;
    }
    const struct clt__fuse_group *gr = &p->groups[p->info[id].group];
    for (uint32_t k = 0; k < gr->n; k++)
        out[k] = gr->node[gr->n - 1 - k];
    return gr->n;
}

/* Whether node id, in a fused chain, is a recompute candidate: the chain's last op, with
 * every op recomputable, and every input of the chain read by its backward (so kept until
 * then) and not recomputed itself. The recomputation runs the chain's forward. */
static bool chain_recomputable(const struct clt_graph *g, const struct clt__plan *p, uint32_t id)
{
    if (p->info[id].fused_inside || !p->info[id].has_bwd)
        return false;
    const struct clt__fuse_group *gr = &p->groups[p->info[id].group];
    for (uint32_t k = 0; k < gr->n; k++) {
        const struct clt_tensor *c = g->nodes[gr->node[k]];
        if (!clt__def(c)->recomputable)
            return false;
        for (uint32_t i = 0; i < c->nin; i++) {
            if (k > 0 && i == gr->link[k])
                continue; /* inside the chain */
            if (p->info[root_of(p, c->in[i])].recompute ||
                !((p->info[c->id].fused_reads >> i) & 1u))
                return false;
        }
    }
    return true;
}

/* Builds the forward list and the backward entries, with recomputations. */
static enum clt_status schedule(const struct clt_graph *g, bool recompute, struct clt__plan *p)
{
    for (uint32_t id = 0; id < p->n; id++) {
        const struct clt_tensor *t = g->nodes[id];
        if (t->kind == CLT__NODE_OP && !clt__def(t)->is_view &&
            (p->reached_only ? p->info[id].reached : true)) {
            p->info[id].fwd_pos = (int32_t)p->nfwd;
            p->fwd[p->nfwd++] = id;
        }
    }
    /* Recompute candidates: cheap ops whose backward runs (so their inputs are kept until
     * then) and whose inputs are not recomputed themselves. */
    if (recompute) {
        for (uint32_t id = 0; id < p->n; id++) {
            const struct clt_tensor *t = g->nodes[id];
            if (p->info[id].group >= 0) {
                p->info[id].recompute = chain_recomputable(g, p, id);
                continue;
            }
            if (t->kind != CLT__NODE_OP || !clt__def(t)->recomputable || !p->info[id].has_bwd ||
                (clt__def(t)->saves & CLT__SAVES_OUTPUT))
                continue;
            /* Its inputs must be kept for its own backward, hence still be there. */
            bool ok = true;
            for (uint32_t i = 0; i < t->nin; i++)
                ok = ok && !p->info[root_of(p, t->in[i])].recompute &&
                     (clt__def(t)->saves & CLT__SAVES_INPUT(i));
            p->info[id].recompute = ok;
        }
    }
    bool *emitted = calloc(p->n, sizeof *emitted);
    if (!emitted)
        return CLT_ERR_NO_MEMORY;
    for (uint32_t id = p->n; id-- > 0;) {
        /* A fused chain has one entry, at its last op; the ops inside it have none. */
        if (!p->info[id].has_bwd || p->info[id].fused_inside)
            continue;
        uint32_t nodes[CLT__FUSE_MAX];
        uint32_t nn = entry_nodes(p, id, nodes);
        for (uint32_t k = 0; k < nn; k++) {
            const struct clt_tensor *c = g->nodes[nodes[k]];
            for (uint32_t i = 0; i < c->nin; i++) {
                uint32_t r = root_of(p, c->in[i]);
                if (bwd_reads_input(p, c, i) && p->info[r].recompute && !emitted[r]) {
                    emitted[r] = true;
                    p->bwd[p->nbwd++] = (struct clt__entry){CLT__ENTRY_RECOMPUTE, r};
                }
            }
        }
        for (uint32_t k = 0; k < nn; k++)
            p->info[nodes[k]].bwd_pos = (int32_t)(p->nfwd + 1 + p->nbwd);
        p->bwd[p->nbwd++] = (struct clt__entry){CLT__ENTRY_BACKWARD, id};
    }
    /* A candidate no backward reads needs no recomputation. */
    for (uint32_t id = 0; id < p->n; id++)
        p->info[id].recompute = p->info[id].recompute && emitted[id];
    free(emitted);
    return CLT_OK;
}

/* Decides, per node and input, whether its gradient contribution writes or adds. */
static enum clt_status mark_first_contributions(const struct clt_graph *g,
                                                const struct clt_tensor *loss, struct clt__plan *p)
{
    bool *seen = calloc(p->n, sizeof *seen);
    if (!seen)
        return CLT_ERR_NO_MEMORY;
    seen[root_of(p, loss)] = true; /* the seed writes the loss's gradient */
    for (uint32_t e = 0; e < p->nbwd; e++) {
        if (p->bwd[e].kind != CLT__ENTRY_BACKWARD)
            continue;
        /* A fused chain writes in the order its ops' own backwards would. */
        uint32_t nodes[CLT__FUSE_MAX];
        uint32_t nn = entry_nodes(p, p->bwd[e].node, nodes);
        for (uint32_t k = 0; k < nn; k++) {
            const struct clt_tensor *c = g->nodes[nodes[k]];
            for (uint32_t i = 0; i < c->nin; i++) {
                if (!p->info[c->in[i]->id].needs_grad)
                    continue;
                uint32_t r = root_of(p, c->in[i]);
                p->info[c->id].first_contrib[i] = !seen[r];
                seen[r] = true;
            }
        }
    }
    free(seen);
    return CLT_OK;
}

/* The timeline position of entry e of the backward list. */
static int32_t entry_pos(const struct clt__plan *p, uint32_t e)
{
    return (int32_t)(p->nfwd + 1 + e);
}

/* Makes the storages of one root op node: its value (and backward copy), its gradient. */
static void plan_root(const struct clt_graph *g, const struct clt_tensor *loss, uint32_t r,
                      struct clt__plan *p)
{
    const int32_t end = (int32_t)(p->nfwd + 1 + p->nbwd);
    struct clt__tinfo *ri = &p->info[r];
    const struct clt_tensor *rt = g->nodes[r];
    int32_t last = ri->fwd_pos, bwd_first = INT32_MAX, bwd_last = -1;
    int32_t grad_first = INT32_MAX;
    for (uint32_t id = r + 1; id < p->n; id++) {
        const struct clt_tensor *c = g->nodes[id];
        if (c->kind != CLT__NODE_OP || clt__def(c)->is_view)
            continue;
        for (uint32_t i = 0; i < c->nin; i++) {
            if (root_of(p, c->in[i]) != r)
                continue;
            if (fwd_use_pos(p, c) > last)
                last = fwd_use_pos(p, c);
            if (bwd_reads_input(p, c, i)) {
                int32_t pos = p->info[id].bwd_pos;
                if (ri->recompute) {
                    bwd_last = pos > bwd_last ? pos : bwd_last;
                } else if (pos > last) {
                    last = pos;
                }
            }
            if (p->info[id].has_bwd && p->info[c->in[i]->id].needs_grad &&
                p->info[id].bwd_pos < grad_first)
                grad_first = p->info[id].bwd_pos;
        }
    }
    if (ri->has_bwd && (clt__def(rt)->saves & CLT__SAVES_OUTPUT) && ri->bwd_pos > last)
        last = ri->bwd_pos;
    if (ri->output)
        last = end;
    if (loss && root_of(p, loss) == r)
        grad_first = (int32_t)p->nfwd;
    ri->elem_bytes = rt->dtype == CLT_F32 && !clt__def(rt)->wide_output ? storage_bytes(p) : 4;
    uint64_t bytes = (uint64_t)clt__count(rt) * ri->elem_bytes;
    ri->val = add_storage(p, bytes, ri->fwd_pos, last);
    if (ri->recompute) {
        for (uint32_t e = 0; e < p->nbwd; e++)
            if (p->bwd[e].kind == CLT__ENTRY_RECOMPUTE && p->bwd[e].node == r)
                bwd_first = entry_pos(p, e);
        ri->val_bwd = add_storage(p, bytes, bwd_first, bwd_last);
    }
    if (ri->needs_grad && !ri->fused_inside)
        ri->grad =
            add_storage(p, bytes, grad_first == INT32_MAX ? ri->bwd_pos : grad_first, ri->bwd_pos);
    const struct clt__op_def *def = clt__def(rt);
    for (uint32_t k = 0; k < rt->naux; k++) {
        /* A cache (clt__op_def.aux_cache) only for a backward that reads it, in the storage. */
        const bool cache = (def->aux_cache >> k) & 1u;
        if (cache && !(ri->has_bwd && p->info[rt->in[def->cache_input]->id].needs_grad))
            continue;
        uint64_t ab = (uint64_t)rt->aux_count[k] *
                      (cache ? storage_bytes(p) : clt__dtype_size(rt->aux_dtype[k]));
        ri->aux[k] = add_storage(p, ab, ri->fwd_pos, ri->has_bwd ? ri->bwd_pos : ri->fwd_pos);
    }
}

/* Partial batches (clt__exec.rows). Each tensor that depends on an input has a batch axis:
 * the inputs' leading one, followed through the ops. Ops that treat the batch items alike
 * (elementwise ones, views) may move it; ops that reduce over the batch or work per leading
 * item need it leading, where the real rows are the first elements; ops that would mix rows
 * make the graph run full batches only. */
#define NO_BATCH (-1)

/* The batch axis of a reshape's output given its input's axis b, or NO_BATCH when the batch
 * does not survive as one axis. */
static int8_t reshape_axis(const struct clt_tensor *t, int8_t b, int64_t n)
{
    const struct clt_tensor *x = t->in[0];
    int64_t outer = 1, o = 1;
    for (int8_t i = 0; i < b; i++)
        outer *= x->shape[i];
    for (uint32_t i = 0; i < t->ndim; o *= t->shape[i], i++)
        if (o == outer && t->shape[i] == n)
            return (int8_t)i;
    return NO_BATCH;
}

/* The batch axis of op t's output (axis[] of its inputs known), or why the op cannot run on a
 * partial batch (*why). */
static int8_t op_axis(const struct clt_tensor *t, const int8_t *axis, int64_t n, const char **why)
{
    int8_t b = NO_BATCH;
    for (uint32_t i = 0; i < t->nin; i++) {
        int8_t a = axis[t->in[i]->id];
        if (a == NO_BATCH)
            continue;
        if (b != NO_BATCH && a != b)
            *why = "its inputs hold the batch on different axes";
        b = a;
    }
    if (b == NO_BATCH || *why)
        return NO_BATCH;
    const struct clt_tensor *x = t->in[0];
    switch (t->op) {
    case CLT__OP_activation:
    case CLT__OP_dropout:
    case CLT__OP_scale:
    case CLT__OP_add:
    case CLT__OP_mul:
    case CLT__OP_add_bias:
    case CLT__OP_mul_broadcast:
    case CLT__OP_embedding:
        return b;
    case CLT__OP_linear:
        if (axis[x->id] == (int8_t)(x->ndim - 1))
            *why = "it contracts over the batch axis";
        return b;
    case CLT__OP_reshape: {
        int8_t r = reshape_axis(t, b, n);
        if (r == NO_BATCH)
            *why = "it merges or splits the batch axis";
        return r;
    }
    case CLT__OP_permute:
        for (uint32_t i = 0; i < t->ndim; i++)
            if (t->p.permute.perm[i] == (uint32_t)b)
                return (int8_t)i;
        return NO_BATCH;
    case CLT__OP_concat:
    case CLT__OP_slice:
        if (t->p.axis.axis == (uint32_t)b)
            *why = "it joins or cuts along the batch axis";
        return b;
    case CLT__OP_matmul:
        if (axis[t->in[1]->id] != NO_BATCH && t->ndim == 2)
            *why = "it multiplies across the rows of the batch";
        else if (b != 0 || (t->ndim == 2 && t->p.matmul.trans_a))
            *why = "it contracts over the batch axis";
        return 0;
    case CLT__OP_cross_entropy:
        if (axis[t->in[1]->id] != NO_BATCH && t->in[1]->kind != CLT__NODE_INPUT)
            *why = "its labels are not an input of the graph (only inputs are padded with "
                   "ignored labels)";
        break;
    default:
        break;
    }
    /* The rest work per leading item, or reduce over the batch: it must lead. */
    if (b != 0 || ((t->op == CLT__OP_softmax || t->op == CLT__OP_layer_norm) && x->ndim < 2))
        *why = "it needs the batch as the leading axis";
    if (t->op == CLT__OP_sum || t->op == CLT__OP_mse || t->op == CLT__OP_cross_entropy)
        return NO_BATCH; /* a scalar of the real rows */
    return 0;
}

/* Whether the step can run on fewer rows than planned (clt__plan.partial_error), and which
 * inputs are cross-entropy labels (padded with ignored labels). */
static void check_partial(const struct clt_graph *g, struct clt__plan *p)
{
    int8_t *axis = malloc((p->n ? p->n : 1) * sizeof *axis);
    if (!axis) {
        snprintf(p->partial_error, sizeof p->partial_error, "out of memory");
        return;
    }
    p->batch = -1;
    for (uint32_t id = 0; id < p->n && !p->partial_error[0]; id++) {
        const struct clt_tensor *t = g->nodes[id];
        axis[id] = NO_BATCH;
        if (t->kind == CLT__NODE_INPUT) {
            if (p->batch < 0)
                p->batch = t->ndim > 0 ? t->shape[0] : 1;
            if (t->ndim == 0 || t->shape[0] != p->batch)
                snprintf(p->partial_error, sizeof p->partial_error,
                         "input \"%s\" does not share the leading dimension (the batch, %lld) of "
                         "the first input",
                         t->name, (long long)p->batch);
            axis[id] = 0;
            p->info[id].batch_major = true;
            continue;
        }
        if (t->kind != CLT__NODE_OP || !p->info[id].reached)
            continue;
        if (t->op == CLT__OP_cross_entropy && t->in[1]->kind == CLT__NODE_INPUT)
            p->info[t->in[1]->id].pad_label = true;
        const char *why = NULL;
        axis[id] = op_axis(t, axis, p->batch, &why);
        p->info[id].batch_major = axis[id] == 0;
        if (why)
            snprintf(p->partial_error, sizeof p->partial_error, "op %s (node %u): %s",
                     clt__op_names[t->op], (unsigned)id, why);
    }
    if (p->batch < 0 && !p->partial_error[0])
        snprintf(p->partial_error, sizeof p->partial_error, "the graph has no input");
    free(axis);
}

/* The plan of a training step (loss) or of a forward pass (outputs, no loss). */
static enum clt_status make(struct clt_device *dev, const struct clt_graph *g,
                            const struct clt_tensor *loss, const struct clt_tensor *const *outputs,
                            uint32_t noutputs, bool recompute, enum clt_precision storage,
                            struct clt__plan *out)
{
    struct clt__plan p;
    memset(&p, 0, sizeof p);
    p.n = g->count;
    p.storage = storage;
    p.reached_only = !loss;
    p.info = calloc(p.n, sizeof *p.info);
    p.fwd = calloc(p.n, sizeof *p.fwd);
    p.bwd = calloc(2 * (size_t)p.n, sizeof *p.bwd);
    p.st = calloc((2 + CLT__MAX_AUX) * (size_t)p.n, sizeof *p.st);
    enum clt_status st = p.info && p.fwd && p.bwd && p.st ? CLT_OK : CLT_ERR_NO_MEMORY;
    if (st == CLT_OK)
        st = mark_nodes(dev, g, loss, outputs, noutputs, &p);
    if (st == CLT_OK) {
        place_params_and_inputs(g, &p);
        if (clt__fuse_enabled())
            st = clt__fuse_plan(g, loss, &p);
    }
    if (st == CLT_OK) {
        st = schedule(g, recompute, &p);
    }
    if (st == CLT_OK && loss)
        st = mark_first_contributions(g, loss, &p);
    if (st == CLT_OK) {
        for (uint32_t i = 0; i < p.nfwd; i++) {
            const struct clt_tensor *t = g->nodes[p.fwd[i]];
            plan_root(g, loss, p.fwd[i], &p);
            uint64_t w = clt__def(t)->workspace ? clt__def(t)->workspace(t) : 0;
            if (w > p.workspace_bytes)
                p.workspace_bytes = w;
        }
        st = assign_offsets(&p);
        /* A view's elements are its root's. */
        for (uint32_t id = 0; id < p.n; id++)
            p.info[id].elem_bytes = p.info[p.info[id].root].elem_bytes;
    }
    if (st == CLT_OK)
        check_partial(g, &p);
    if (st != CLT_OK) {
        clt__plan_free(&p);
        return st;
    }
    *out = p;
    return CLT_OK;
}

enum clt_status clt__plan_make(struct clt_device *dev, const struct clt_graph *g,
                               const struct clt_tensor *loss, bool recompute,
                               enum clt_precision storage, struct clt__plan *out)
{
    return make(dev, g, loss, NULL, 0, recompute, storage, out);
}

enum clt_status clt__plan_make_forward(struct clt_device *dev, const struct clt_graph *g,
                                       const struct clt_tensor *const *outputs, uint32_t n,
                                       struct clt__plan *out)
{
    return make(dev, g, NULL, outputs, n, false, CLT_PRECISION_FP32, out);
}

void clt__plan_free(struct clt__plan *p)
{
    free(p->info);
    free(p->fwd);
    free(p->bwd);
    free(p->st);
    free(p->groups);
    memset(p, 0, sizeof *p);
}
