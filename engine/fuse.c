/*
 * fuse.c: the fusion pass (docs/fusion.md). Chains of elementwise ops (those whose registry
 * definition has an elementwise description, struct clt__ew in ops/ops.h: activations,
 * dropout, add, mul, scale) become one generated kernel forward and one backward.
 *
 * A chain is a run of such ops of one element count in which the output of each op but the
 * last has exactly one consumer, the next op; every op may take one more input from outside
 * the chain (a residual, a multiplier). The plan (plan.c) runs the chain's forward at its last
 * op's place in the forward order and its backward at that op's backward entry; the values
 * inside the chain are neither written in a training step nor given gradient storage. The
 * backward recomputes, in registers, the values inside the chain that some op's backward reads
 * (activations read their input), from the chain's input and outside inputs, which the plan
 * keeps until then; dropout draws the same Philox stream per element as its own kernels.
 *
 * Kernels are generated from the expressions of clt__ew, built as a variant of
 * cl/activation.cl (whose act_eval and dropout_keep the expressions call) and cached like
 * every program. Their tensors are store_t, read with LOAD and written with STORE
 * (cl/common.cl), every operation in float, so a chain builds once per storage (fp32, or 16
 * bits in a 16-bit plan) like the op kernels it replaces: the variant's text mentions
 * store_t, and clt__program_variant_get prepends the device's storage to it. The text is the
 * body of a macro, CLT_FUSED_CHAIN, that cl/activation.cl expands at its end: a variant's text
 * comes before cl/common.cl, whose storage macros the kernels need. Scalars (dropout's key and p,
 * scale's alpha) are kernel arguments, except those an op fixes for its life (an activation's kind
 * and slope, clt__ew.fixed_scalars), which the text holds as constants, as it holds the length of
 * the bias a chain adds.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer.h"

bool clt__fuse_enabled(void)
{
    const char *v = getenv("CLTRAIN_FUSE");
    return !(v && strcmp(v, "0") == 0);
}

/* ==== The pass ========================================================================== */

/* Whether node t can be part of a chain: a reached elementwise op whose inputs all have its
 * element count (an op that broadcasts is left alone). */
static bool fusable(const struct clt__plan *p, const struct clt_tensor *t)
{
    if (t->kind != CLT__NODE_OP || !p->info[t->id].reached || t->dtype != CLT_F32 ||
        !clt__def(t)->ew || t->nin < 1 || t->nin > 2)
        return false;
    for (uint32_t i = 0; i < t->nin; i++)
        if (clt__count(t->in[i]) != clt__count(t) || t->in[i]->dtype != CLT_F32)
            return false;
    return true;
}

/* The slot of c's other input, or -1 for an op of one input. */
static int other_slot(const struct clt_tensor *c, uint32_t link)
{
    return c->nin == 2 ? (int)(1 - link) : -1;
}

/* Which values the chain's backward reads: per op, the inputs its backward expressions read;
 * a value inside the chain is recomputed from the inputs of the op that makes it. Sets
 * gr->recompute and the nodes' fused_reads. */
static void mark_reads(const struct clt_graph *g, struct clt__fuse_group *gr, struct clt__plan *p)
{
    bool need_in[CLT__FUSE_MAX] = {false}, need_other[CLT__FUSE_MAX] = {false};
    for (uint32_t k = gr->n; k-- > 0;) {
        const struct clt_tensor *c = g->nodes[gr->node[k]];
        uint32_t reads = clt__def(c)->ew->reads;
        int o = other_slot(c, gr->link[k]);
        need_in[k] = need_in[k] || (reads >> gr->link[k]) & 1u;
        need_other[k] = need_other[k] || (o >= 0 && ((reads >> o) & 1u));
        if (need_in[k] && k > 0) {
            /* Recomputing the value entering op k runs op k - 1 forward. */
            const struct clt_tensor *prev = g->nodes[gr->node[k - 1]];
            need_in[k - 1] = true;
            need_other[k - 1] = need_other[k - 1] || other_slot(prev, gr->link[k - 1]) >= 0;
        }
    }
    gr->recompute = 0;
    for (uint32_t k = 0; k < gr->n; k++) {
        const struct clt_tensor *c = g->nodes[gr->node[k]];
        if (need_in[k])
            gr->recompute |= 1u << k;
        if (need_in[k] && k == 0)
            p->info[c->id].fused_reads |= 1u << gr->link[0];
        if (need_other[k])
            p->info[c->id].fused_reads |= 1u << other_slot(c, gr->link[k]);
    }
}

/* The op whose bias chain head h may add (-1: none): an input of h whose op adds a bias last
 * (clt__op_def.bias_input), with h its only consumer. The chain then enters h through that
 * input (*link). */
static int32_t bias_source(const struct clt_tensor *loss, const struct clt__plan *p,
                           const uint32_t *uses, const struct clt_tensor *h, uint8_t *link)
{
    for (uint32_t s = 0; s < h->nin; s++) {
        const struct clt_tensor *q = h->in[s];
        uint32_t b = q->kind == CLT__NODE_OP ? clt__def(q)->bias_input : 0;
        if (b == 0 || q->nin <= b || !p->info[q->id].reached || q == loss || uses[q->id] != 1 ||
            q->dtype != CLT_F32)
            continue;
        *link = (uint8_t)s;
        return (int32_t)q->id;
    }
    return -1;
}

enum clt_status clt__fuse_plan(const struct clt_graph *g, const struct clt_tensor *loss,
                               struct clt__plan *p)
{
    uint32_t n = p->n;
    uint32_t *uses = calloc(n, sizeof *uses);
    int32_t *next = malloc(n * sizeof *next);
    uint8_t *link = calloc(n, sizeof *link);
    bool *has_prev = calloc(n, sizeof *has_prev);
    p->groups = calloc(n / 2 + 1, sizeof *p->groups);
    enum clt_status st = uses && next && link && has_prev && p->groups ? CLT_OK : CLT_ERR_NO_MEMORY;
    for (uint32_t id = 0; st == CLT_OK && id < n; id++) {
        next[id] = -1;
        p->info[id].group = -1;
        for (uint32_t i = 0; i < g->nodes[id]->nin; i++)
            uses[g->nodes[id]->in[i]->id]++;
    }
    /* Links: c continues the chain of its input in slot s when that input is fusable, has no
     * other consumer, is not the loss, and c reads it through one slot only. */
    for (uint32_t id = 0; st == CLT_OK && id < n; id++) {
        const struct clt_tensor *c = g->nodes[id];
        if (!fusable(p, c))
            continue;
        for (uint32_t s = 0; s < c->nin; s++) {
            const struct clt_tensor *q = c->in[s];
            if (!fusable(p, q) || uses[q->id] != 1 || q == loss || next[q->id] >= 0)
                continue;
            next[q->id] = (int32_t)id;
            link[id] = (uint8_t)s;
            has_prev[id] = true;
            break;
        }
    }
    /* Chains from their first op, cut every CLT__FUSE_MAX ops. A chain whose input is the
     * output of an op with a bias to add last (linear) adds that bias itself: a chain then
     * may have one op. */
    for (uint32_t id = 0; st == CLT_OK && id < n; id++) {
        if (has_prev[id] || !fusable(p, g->nodes[id]))
            continue;
        int32_t at = (int32_t)id, bias = bias_source(loss, p, uses, g->nodes[id], &link[id]);
        while (at >= 0) {
            struct clt__fuse_group *gr = &p->groups[p->ngroups];
            memset(gr, 0, sizeof *gr);
            gr->bias = bias;
            while (at >= 0 && gr->n < CLT__FUSE_MAX) {
                gr->node[gr->n] = (uint32_t)at;
                gr->link[gr->n] = link[at];
                gr->n++;
                at = next[at];
            }
            bias = -1;
            if (gr->n < 2 && gr->bias < 0)
                continue;
            for (uint32_t k = 0; k < gr->n; k++) {
                p->info[gr->node[k]].group = (int32_t)p->ngroups;
                p->info[gr->node[k]].fused_inside = k + 1 < gr->n;
            }
            if (gr->bias >= 0)
                p->info[gr->bias].bias_fused = true;
            mark_reads(g, gr, p);
            p->ngroups++;
        }
    }
    free(uses);
    free(next);
    free(link);
    free(has_prev);
    return st;
}

/* ==== Generating the kernels ============================================================ */

/* A growing string; `failed` once an allocation failed. */
struct text {
    char *s;
    size_t len, cap;
    bool failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->cap + (size_t)(n < 0 ? 0 : n) + 1) * 2;
        char *s = n < 0 ? NULL : realloc(t->s, cap);
        if (!s) {
            t->failed = true;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* The scalar parameters of both kernels: n, the step, then f0, f1, u0, u1 of every op. */
static void put_scalar_params(struct text *t, const struct clt__fuse_group *gr)
{
    put(t, "int n, uint step_lo, uint step_hi");
    for (uint32_t k = 0; k < gr->n; k++)
        put(t, ", float f0_%u, float f1_%u, uint u0_%u, uint u1_%u", k, k, k, k);
}

/* The chain's input and the outside inputs. */
static void put_input_params(struct text *t, const struct clt_graph *g,
                             const struct clt__fuse_group *gr)
{
    put(t, ",\n    __global const store_t *in_x, int in_x_off");
    if (gr->bias >= 0)
        put(t, ", __global const store_t *in_bias, int in_bias_off");
    for (uint32_t k = 0; k < gr->n; k++)
        if (other_slot(g->nodes[gr->node[k]], gr->link[k]) >= 0)
            put(t, ", __global const store_t *in_b%u, int in_b%u_off", k, k);
}

/* What the generated text needs besides the graph: the exec, for the scalars an op fixes
 * for its life (clt__ew.fixed_scalars), and the chain. */
struct chain_ctx {
    const struct clt_graph *g;
    struct clt__exec *x;
    const struct clt__fuse_group *gr;
};

/* Opens op k's block: its scalars (kernel arguments, or constants when the op fixes them),
 * and a and b from the value entering it (`value`, "0.0f" when not computed) and its outside
 * input (read when `read_other`). */
static void open_op(struct text *t, const struct chain_ctx *cx, const struct clt_tensor *c,
                    uint32_t k, const char *value, bool read_other)
{
    const struct clt__fuse_group *gr = cx->gr;
    const struct clt__ew *ew = clt__def(c)->ew;
    char other[48] = "0.0f";
    int o = other_slot(c, gr->link[k]);
    if (o >= 0 && read_other)
        snprintf(other, sizeof other, "LOAD_ALT(in_b%u, in_b%u_off + i)", k, k);
    put(t, "    {\n        /* %s */\n", clt__op_names[c->op]);
    if (ew->fixed_scalars && ew->scalars) {
        /* %a: the exact float; the scalars are finite (the builders check them). */
        struct clt__ew_scalars v = {0, 0, 0, 0};
        ew->scalars(cx->x, c, &v);
        put(t, "        const float f0 = %af, f1 = %af;\n", (double)v.f0, (double)v.f1);
        put(t, "        const uint u0 = %uu, u1 = %uu;\n", v.u0, v.u1);
    } else {
        put(t, "        const float f0 = f0_%u, f1 = f1_%u;\n", k, k);
        put(t, "        const uint u0 = u0_%u, u1 = u1_%u;\n", k, k);
    }
    put(t, "        const float a = %s, b = %s;\n", gr->link[k] == 0 ? value : other,
        gr->link[k] == 0 ? other : value);
}

/* The length of the bias chain gr adds (0: none). */
static int64_t bias_cols(const struct clt_graph *g, const struct clt__fuse_group *gr)
{
    if (gr->bias < 0)
        return 0;
    const struct clt_tensor *q = g->nodes[gr->bias];
    return clt__count(q->in[clt__def(q)->bias_input]);
}

/* The element a work-item owns, i, and the early return past the end. A chain without a bias
 * runs on a 1-D range of n work-items. A chain that adds a bias runs on a 2-D range (cols,
 * rows): the bias column is get_global_id(0), so no work-item divides to find it, and PoCL
 * vectorizes the loop along the row (with the column as i % cols and a work-group wider than
 * a row, it ran the kernel one element at a time). cols is written as a constant; rows is
 * n / cols, one division per row. When cols is a multiple of 32 no work-item lies past the
 * row's end (clt__enqueue_kernel_nd's local size along dimension 0 is a power of two up to
 * 32, and it rounds the global size up to a multiple of it), so only the row is checked:
 * PoCL then vectorizes without masking the loads and stores, which in 16-bit storage it
 * cannot do cheaply (AVX2 has no 16-bit masked loads or stores), and the kernel ran one
 * element at a time. */
static void put_index(struct text *t, const struct chain_ctx *cx)
{
    const int cols = (int)bias_cols(cx->g, cx->gr); /* <= n, which the kernels take as int */
    if (cols == 0) {
        put(t, "    const int i = get_global_id(0);\n    if (i >= n)\n        return;\n");
        return;
    }
    put(t, "    const int c = get_global_id(0), r = get_global_id(1);\n");
    if (cols % 32 == 0)
        put(t, "    if (r >= n / %d)\n        return;\n", cols);
    else
        put(t, "    if (c >= %d || r >= n / %d)\n        return;\n", cols, cols);
    put(t, "    const int i = r * %d + c;\n", cols);
}

/* The value entering the chain: its input, plus the bias the chain adds (column c; a bias of
 * no columns, on an empty chain, adds nothing). Outside inputs and the bias are read with
 * LOAD_ALT, the chain's input with LOAD (cl/common.cl: two identical conversions side by side
 * stop PoCL's vectorizer in fp16). */
static void put_chain_input(struct text *t, const struct chain_ctx *cx)
{
    if (bias_cols(cx->g, cx->gr) == 0)
        put(t, "LOAD(in_x, in_x_off + i)");
    else
        put(t, "LOAD(in_x, in_x_off + i) + LOAD_ALT(in_bias, in_bias_off + c)");
}

static void put_forward(struct text *t, const struct chain_ctx *cx)
{
    const struct clt_graph *g = cx->g;
    const struct clt__fuse_group *gr = cx->gr;
    put(t, "__kernel void fused_forward(");
    put_scalar_params(t, gr);
    put_input_params(t, g, gr);
    put(t, ",\n    __global store_t *out_y, int out_y_off)\n{\n");
    put_index(t, cx);
    put(t, "    const long e = i;\n    const uint2 step = (uint2)(step_lo, step_hi);\n");
    put(t, "    float v = ");
    put_chain_input(t, cx);
    put(t, ";\n");
    for (uint32_t k = 0; k < gr->n; k++) {
        const struct clt_tensor *c = g->nodes[gr->node[k]];
        open_op(t, cx, c, k, "v", true);
        put(t, "        v = %s;\n    }\n", clt__def(c)->ew->forward);
    }
    put(t, "    STORE(out_y, out_y_off + i, v);\n}\n\n");
}

/* Whether the plan keeps a gradient for t (clt__grad gives a buffer, not NULL): fixed for the
 * plan's life, so the text writes the gradients there are, with no test of the pointer. */
static bool has_grad(const struct chain_ctx *cx, const struct clt_tensor *t)
{
    const struct clt__plan *p = &cx->x->tr->plan;
    return p->info[p->info[t->id].root].needs_grad;
}

/* Writes gradient `d` to grad_<name>[i] (added when bit `bit` of acc is set) where the plan
 * keeps that gradient (`present`). No test of the pointer and the old value read whether or
 * not it is added: a store or a load under a per-launch condition is a masked one, which PoCL
 * does not vectorize in 16-bit storage (a single such store at the end of the kernel it
 * does). */
static void put_store(struct text *t, const char *name, const char *d, unsigned bit, bool present)
{
    if (!present)
        return;
    put(t, "        {\n");
    put(t, "            const float old = LOAD(grad_%s, grad_%s_off + i);\n", name, name);
    put(t, "            STORE(grad_%s, grad_%s_off + i, (acc >> %u) & 1u ? old + %s : %s);\n", name,
        name, bit, d, d);
    put(t, "        }\n");
}

static void put_backward(struct text *t, const struct chain_ctx *cx)
{
    const struct clt_graph *g = cx->g;
    const struct clt__fuse_group *gr = cx->gr;
    put(t, "__kernel void fused_backward(");
    put_scalar_params(t, gr);
    put(t, ", uint acc");
    put_input_params(t, g, gr);
    put(t, ",\n    __global const store_t *grad_y, int grad_y_off");
    put(t, ",\n    __global store_t *grad_x, int grad_x_off");
    for (uint32_t k = 0; k < gr->n; k++)
        if (other_slot(g->nodes[gr->node[k]], gr->link[k]) >= 0)
            put(t, ", __global store_t *grad_b%u, int grad_b%u_off", k, k);
    put(t, ")\n{\n");
    put_index(t, cx);
    put(t, "    const long e = i;\n    const uint2 step = (uint2)(step_lo, step_hi);\n");
    /* v<k>: the value entering op k, where the backward reads it. */
    for (uint32_t k = 0; k < gr->n; k++) {
        if (!((gr->recompute >> k) & 1u))
            continue;
        if (k == 0) {
            put(t, "    const float v0 = ");
            put_chain_input(t, cx);
            put(t, ";\n");
            continue;
        }
        const struct clt_tensor *c = g->nodes[gr->node[k - 1]];
        char prev[16];
        snprintf(prev, sizeof prev, "v%u", k - 1);
        put(t, "    float v%u;\n", k);
        open_op(t, cx, c, k - 1, prev, true);
        put(t, "        v%u = %s;\n    }\n", k, clt__def(c)->ew->forward);
    }
    put(t, "    float g = LOAD(grad_y, grad_y_off + i);\n");
    for (uint32_t k = gr->n; k-- > 0;) {
        const struct clt_tensor *c = g->nodes[gr->node[k]];
        const struct clt__ew *ew = clt__def(c)->ew;
        char value[16] = "0.0f";
        if ((gr->recompute >> k) & 1u)
            snprintf(value, sizeof value, "v%u", k);
        int o = other_slot(c, gr->link[k]);
        bool read_other = o >= 0 && (ew->reads >> o) & 1u;
        open_op(t, cx, c, k, value, read_other);
        put(t, "        const float dy = g;\n");
        put(t, "        const float d_in = %s;\n", ew->backward[gr->link[k]]);
        if (o >= 0)
            put(t, "        const float d_other = %s;\n", ew->backward[o]);
        /* In slot order, as the op's own backward writes. */
        for (uint32_t s = 0; s < c->nin; s++) {
            char name[16];
            if ((int)s == o) {
                snprintf(name, sizeof name, "b%u", k);
                put_store(t, name, "d_other", 2 * k + s, has_grad(cx, c->in[s]));
            } else if (k == 0) {
                put_store(t, "x", "d_in", s, has_grad(cx, c->in[s]));
            }
        }
        put(t, "        g = d_in;\n    }\n");
    }
    put(t, "}\n");
}

/* How every chain's text begins. */
static const char chain_head[] = "/* A fused chain (engine/fuse.c):";

/* The whole generated text, placed before cl/activation.cl: the kernels as the body of the
 * macro CLT_FUSED_CHAIN, which that file expands at its end (each line ends with a
 * backslash; the text holds no preprocessor directive and no // comment). */
static char *chain_source(struct clt__exec *x, const struct clt__fuse_group *gr)
{
    const struct clt_graph *g = x->tr->graph;
    const struct chain_ctx cx = {g, x, gr};
    struct text body = {NULL, 0, 0, false}, t = {NULL, 0, 0, false};
    put_forward(&body, &cx);
    put_backward(&body, &cx);
    put(&t, "%s%s", chain_head, gr->bias >= 0 ? " bias" : "");
    for (uint32_t k = 0; k < gr->n; k++)
        put(&t, " %s", clt__op_names[g->nodes[gr->node[k]]->op]);
    put(&t, " */\n#define CLT_FUSED_CHAIN \\\n");
    for (const char *line = body.s; !body.failed && line && *line;) {
        const char *end = strchr(line, '\n');
        int len = end ? (int)(end - line) : (int)strlen(line);
        put(&t, "%.*s \\\n", len, line);
        line = end ? end + 1 : line + len;
    }
    put(&t, "\n");
    free(body.s);
    if (t.failed || body.failed) {
        free(t.s);
        return NULL;
    }
    return t.s;
}

/* Whether the chain's program was built for the device's storage now (a device's storage
 * may change between a trainer's runs: the variant's text starts with the storage's define,
 * clt__program_variant_get's, and then the chain's own). */
static bool built_for_storage(const struct clt__exec *x, const struct clt__program_variant *v)
{
    const char *sdef = clt__storage_define(x->dev->storage);
    size_t n = strlen(sdef);
    return strncmp(v->defines, sdef, n) == 0 &&
           strncmp(v->defines + n, chain_head, sizeof chain_head - 1) == 0;
}

/* The chain's program, with fused_forward in kernel slot 0 and fused_backward in slot 1. */
static enum clt_status chain_program(struct clt__exec *x, struct clt__fuse_group *gr)
{
    if (gr->prog && built_for_storage(x, gr->prog))
        return CLT_OK;
    gr->prog = NULL;
    char *src = chain_source(x, gr);
    if (!src)
        return CLT_ERR_NO_MEMORY;
    struct clt__program_variant *v;
    enum clt_status st = clt__program_variant_get(x->dev, "activation", src, &v);
    free(src);
    const char *names[2] = {"fused_forward", "fused_backward"};
    for (int k = 0; k < 2 && st == CLT_OK; k++) {
        if (v->kernels[k])
            continue;
        cl_int err;
        v->kernels[k] = clCreateKernel(v->program, names[k], &err);
        st = clt__cl_check(&x->dev->log, err, "clCreateKernel (fused chain)");
    }
    if (st == CLT_OK)
        gr->prog = v;
    return st;
}

/* ==== Launching ========================================================================= */

#define MAX_ARGS (4 + 4 * CLT__FUSE_MAX + 3 * CLT__FUSE_MAX + 6)

bool clt__bias_fused(const struct clt__exec *x, const struct clt_tensor *t)
{
    return x->training && x->tr && x->tr->plan.info[t->id].bias_fused;
}

/* Appends the scalar arguments (n, step, every op's f0, f1, u0, u1). */
static size_t scalar_args(struct clt__exec *x, const struct clt__fuse_group *gr, int64_t n,
                          struct clt__karg *a)
{
    size_t k = 0;
    a[k++] = CLT__I32(n);
    a[k++] = CLT__U32(x->step);
    a[k++] = CLT__U32(x->step >> 32);
    for (uint32_t j = 0; j < gr->n; j++) {
        const struct clt_tensor *c = x->tr->graph->nodes[gr->node[j]];
        struct clt__ew_scalars s = {0, 0, 0, 0};
        if (clt__def(c)->ew->scalars)
            clt__def(c)->ew->scalars(x, c, &s);
        a[k++] = CLT__F32(s.f0);
        a[k++] = CLT__F32(s.f1);
        a[k++] = CLT__U32(s.u0);
        a[k++] = CLT__U32(s.u1);
    }
    return k;
}

/* The chain's input and outside inputs: their values where `all` or the backward reads them,
 * an unread placeholder (the activation arena) otherwise. */
static size_t input_args(struct clt__exec *x, const struct clt__fuse_group *gr, bool all,
                         struct clt__karg *a)
{
    const struct clt__plan *p = &x->tr->plan;
    struct clt__buf unread = {x->tr->acts, 0};
    size_t k = 0;
    for (uint32_t j = 0; j < gr->n; j++) {
        const struct clt_tensor *c = x->tr->graph->nodes[gr->node[j]];
        uint32_t reads = all ? ~0u : p->info[c->id].fused_reads;
        int o = other_slot(c, gr->link[j]);
        if (j == 0) {
            bool r = (reads >> gr->link[0]) & 1u;
            a[k++] = CLT__BUF(r ? clt__val(x, c->in[gr->link[0]]) : unread);
            if (gr->bias >= 0) {
                const struct clt_tensor *q = x->tr->graph->nodes[gr->bias];
                const struct clt_tensor *b = q->in[clt__def(q)->bias_input];
                a[k++] = CLT__BUF(r ? clt__val(x, b) : unread);
            }
        }
        if (o >= 0)
            a[k++] = CLT__BUF((reads >> o) & 1u ? clt__val(x, c->in[o]) : unread);
    }
    return k;
}

/* Enqueues kernel `slot` of the chain over its n elements: 1-D, or (cols, rows) when it adds
 * a bias (put_index). */
static enum clt_status launch(struct clt__exec *x, const struct clt__fuse_group *gr, int slot,
                              const char *name, int64_t n, const struct clt__karg *a, size_t k)
{
    const int64_t cols = bias_cols(x->tr->graph, gr);
    if (cols == 0)
        return clt__enqueue_kernel(x->dev, gr->prog->kernels[slot], name, (size_t)n, 0, a, k);
    const size_t global[2] = {(size_t)cols, (size_t)(n / cols)};
    return clt__enqueue_kernel_nd(x->dev, gr->prog->kernels[slot], name, 2, global, a, k);
}

enum clt_status clt__fuse_forward(struct clt__exec *x, struct clt__fuse_group *gr)
{
    enum clt_status st = chain_program(x, gr);
    if (st != CLT_OK)
        return st;
    const struct clt_tensor *last = x->tr->graph->nodes[gr->node[gr->n - 1]];
    struct clt__karg a[MAX_ARGS];
    int64_t n = clt__count(last);
    size_t k = scalar_args(x, gr, n, a);
    k += input_args(x, gr, true, a + k);
    a[k++] = CLT__BUF(clt__val(x, last));
    return launch(x, gr, 0, "fused_forward", n, a, k);
}

enum clt_status clt__fuse_backward(struct clt__exec *x, struct clt__fuse_group *gr)
{
    enum clt_status st = chain_program(x, gr);
    if (st != CLT_OK)
        return st;
    const struct clt_graph *g = x->tr->graph;
    const struct clt_tensor *last = g->nodes[gr->node[gr->n - 1]];
    struct clt__karg a[MAX_ARGS];
    int64_t n = clt__count(last);
    size_t k = scalar_args(x, gr, n, a);
    uint32_t acc = 0;
    for (uint32_t j = 0; j < gr->n; j++) {
        const struct clt_tensor *c = g->nodes[gr->node[j]];
        for (uint32_t s = 0; s < c->nin; s++)
            if ((j == 0 || (int)s == other_slot(c, gr->link[j])) && clt__accumulate(x, c, s))
                acc |= 1u << (2 * j + s);
    }
    a[k++] = CLT__U32(acc);
    k += input_args(x, gr, false, a + k);
    a[k++] = CLT__BUF(clt__grad(x, last));
    const struct clt_tensor *first = g->nodes[gr->node[0]];
    a[k++] = CLT__BUF(clt__grad(x, first->in[gr->link[0]]));
    for (uint32_t j = 0; j < gr->n; j++) {
        const struct clt_tensor *c = g->nodes[gr->node[j]];
        int o = other_slot(c, gr->link[j]);
        if (o >= 0)
            a[k++] = CLT__BUF(clt__grad(x, c->in[o]));
    }
    return launch(x, gr, 1, "fused_backward", n, a, k);
}
