/*
 * attention.c: the attention family: launchers of scaled dot-product attention (see
 * attention.h and docs/kernels/attention.md) on two paths: five batched GEMMs over the B * H
 * heads and the engine's softmax (ops/loss.h, cl/loss.cl) with causal masking, in place on the
 * score rows; or the tiled kernels of cl/attention.cl, which never form the scores (multi-head
 * only). Then the graph op sdpa, which picks a path per node, and the attention layer
 * clt_attention (multi-head or grouped-query, with or without biases): definition and public
 * builders.
 *
 * Every GEMM below runs over batch = B * HKV groups of contiguous matrices: the R = H / HKV
 * query heads of a group as one [R T, D] matrix of q, o or their gradients (R T * D elements
 * after the previous group's), its key/value head as one [T, D] matrix of k, v or theirs, its
 * scores as one [R T, T] matrix. With HKV = H (multi-head) a group is one head.
 *
 * Storage (docs/precision.md): q, k, v, o, their gradients and the scores (p, and the GEMM
 * path's workspace, which GEMM and the softmax read and write) are store_t, in
 * clt__storage_bytes(dev) per element, as GEMM's operands are; the tiled path's log-sum-exp and
 * deltas stay float. Sizes below (clt__attention_*_bytes) are those of fp32, enough for any
 * storage.
 */
#include <math.h>
#include <stdlib.h>

#include <string.h>

#include "graph.h"
#include "cl/shared.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/loss.h"

float clt__attention_scale(int64_t d)
{
    return d > 0 ? (float)(1.0 / sqrt((double)d)) : 0.0f;
}

uint64_t clt__attention_probs_bytes(int64_t b, int64_t h, int64_t t)
{
    if (b < 0 || h < 0 || t < 0)
        return 0;
    return (uint64_t)b * (uint64_t)h * (uint64_t)t * (uint64_t)t * sizeof(float);
}

uint64_t clt__attention_workspace_bytes(int64_t b, int64_t h, int64_t t)
{
    return clt__attention_probs_bytes(b, h, t);
}

/* What a tensor argument holds: a [T, D] matrix per query head (q, o and their gradients), per
 * key/value head (k, v, dk, dv), a [T, T] matrix per query head (p, work), or one value per
 * query row (the tiled path's log-sum-exp and deltas). The matrices are in the device's storage
 * (store_t: the tensors of the plan, and the scores the GEMMs and the softmax exchange); the
 * values per row are float in every storage. */
enum extent { PER_HEAD, PER_KV_HEAD, SQUARE, PER_ROW };

struct tensor {
    const char *what;
    struct clt__buf b;
    enum extent extent;
};

/* Checks sizes and buffers; `scores`: the launches index [T, T] matrices. *empty is set when
 * there is nothing to compute. */
static enum clt_status check(struct clt_device *dev, const char *op, const struct tensor *tensors,
                             size_t ntensors, int64_t b, int64_t h, int64_t hkv, int64_t t,
                             int64_t d, bool scores, bool *empty)
{
    const bool heads_ok = h == 0 ? hkv == 0 : hkv >= 1 && hkv <= h && h % hkv == 0;
    if (b < 0 || h < 0 || t < 0 || d <= 0 || !heads_ok) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "%s: impossible shape B=%lld H=%lld HKV=%lld T=%lld D=%lld (HKV must divide H)",
                 op, (long long)b, (long long)h, (long long)hkv, (long long)t, (long long)d);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    /* Each factor is checked before the product so the products cannot overflow. */
    enum clt_status st = clt__check_i32(dev, b, "attention B");
    if (st == CLT_OK)
        st = clt__check_i32(dev, h, "attention H");
    if (st == CLT_OK)
        st = clt__check_i32(dev, t, "attention T");
    if (st == CLT_OK)
        st = clt__check_i32(dev, d, "attention D");
    if (st == CLT_OK)
        st = clt__check_i32(dev, b * h, "attention B * H");
    if (st == CLT_OK)
        st = clt__check_i32(dev, b * h * t, "attention B * H * T");
    if (st == CLT_OK && t > 0 && scores)
        st = clt__check_i32(dev, b * h * t * (t > d ? t : d), "attention B * H * T * max(T, D)");
    if (st == CLT_OK && t > 0 && !scores)
        st = clt__check_i32(dev, b * h * t * d, "attention B * H * T * D");
    /* With the products checked, every tensor's element count fits in int. */
    for (size_t i = 0; i < ntensors && st == CLT_OK; i++) {
        const enum extent e = tensors[i].extent;
        const int64_t count = b * (e == PER_KV_HEAD ? hkv : h) * t *
                              (e == SQUARE    ? t
                               : e == PER_ROW ? 1
                                              : d);
        const size_t esize = e == PER_ROW ? sizeof(float) : clt__storage_bytes(dev);
        st = clt__check_buf(dev, tensors[i].b, count, esize, op, tensors[i].what);
    }
    *empty = b == 0 || h == 0 || t == 0;
    return st;
}

/* One batched GEMM over the B * HKV groups of heads: C_z = alpha * op(A_z) op(B_z) + beta * C_z
 * with contiguous operands (row strides equal to the row lengths). The R = H / HKV query heads
 * of a group are adjacent in [B, H, T, D], so a group's queries are one [R T, D] matrix and its
 * scores one [R T, T] matrix against the group's single [T, D] keys and values. */
static enum clt_status heads_gemm(struct clt_device *dev, int64_t heads, bool trans_a, bool trans_b,
                                  int64_t m, int64_t n, int64_t kk, float alpha, float beta,
                                  struct clt__buf a, struct clt__buf bb, struct clt__buf c)
{
    const struct clt_gemm_shape want = {
        .trans_a = trans_a,
        .trans_b = trans_b,
        .m = m,
        .n = n,
        .k = kk,
        .alpha = alpha,
        .beta = beta,
        .batch = heads,
        .stride_a = m * kk,
        .stride_b = kk * n,
        .stride_c = m * n,
    };
    return clt__gemm(dev, &want, a, bb, c);
}

enum clt_status clt__attention_forward(struct clt_device *dev, struct clt__buf q, struct clt__buf k,
                                       struct clt__buf v, struct clt__buf p, struct clt__buf o,
                                       int64_t b, int64_t h, int64_t hkv, int64_t t, int64_t d,
                                       float scale, bool causal)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    const struct tensor tensors[] = {
        {"q", q, PER_HEAD}, {"k", k, PER_KV_HEAD}, {"v", v, PER_KV_HEAD},
        {"p", p, SQUARE},   {"o", o, PER_HEAD},
    };
    bool empty;
    enum clt_status st = check(dev, "attention_forward", tensors, 5, b, h, hkv, t, d, true, &empty);
    if (st != CLT_OK || empty)
        return st;
    const int64_t groups = b * hkv, rt = h / hkv * t;
    /* P = scale * Q K^T: [R T, D] x [T, D]^T per group, written straight into p. */
    st = heads_gemm(dev, groups, false, true, rt, t, d, scale, 0.0f, q, k, p);
    if (st == CLT_OK)
        st = clt__softmax_masked_forward(dev, b * h * t, t, causal, p, p);
    /* O = P V: [R T, T] x [T, D]. */
    if (st == CLT_OK)
        st = heads_gemm(dev, groups, false, false, rt, d, t, 1.0f, 0.0f, p, v, o);
    return st;
}

enum clt_status clt__attention_backward(struct clt_device *dev, struct clt__buf q,
                                        struct clt__buf k, struct clt__buf v, struct clt__buf p,
                                        struct clt__buf dout, struct clt__buf work,
                                        struct clt__buf dq, struct clt__buf dk, struct clt__buf dv,
                                        int64_t b, int64_t h, int64_t hkv, int64_t t, int64_t d,
                                        float scale, bool causal, uint32_t acc_mask)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    /* Only the gradients asked for are checked and computed; dS (in work) only when dQ or
     * dK is. */
    const bool want_ds = dq.mem || dk.mem;
    struct tensor tensors[9] = {
        {"q", q, PER_HEAD}, {"k", k, PER_KV_HEAD},    {"v", v, PER_KV_HEAD},
        {"p", p, SQUARE},   {"dout", dout, PER_HEAD},
    };
    size_t ntensors = 5;
    if (want_ds)
        tensors[ntensors++] = (struct tensor){"work", work, SQUARE};
    const struct tensor outs[3] = {
        {"dq", dq, PER_HEAD}, {"dk", dk, PER_KV_HEAD}, {"dv", dv, PER_KV_HEAD}};
    for (int i = 0; i < 3; i++)
        if (outs[i].b.mem)
            tensors[ntensors++] = outs[i];
    bool empty;
    enum clt_status st =
        check(dev, "attention_backward", tensors, ntensors, b, h, hkv, t, d, true, &empty);
    if (st != CLT_OK || empty)
        return st;
    const int64_t groups = b * hkv, rt = h / hkv * t;
    /* GEMM beta per gradient: 1 adds to it, 0 writes it. */
    const float beta_dq = (acc_mask & CLT__ATTENTION_ACC_DQ) ? 1.0f : 0.0f;
    const float beta_dk = (acc_mask & CLT__ATTENTION_ACC_DK) ? 1.0f : 0.0f;
    const float beta_dv = (acc_mask & CLT__ATTENTION_ACC_DV) ? 1.0f : 0.0f;
    /* Per group of R query heads sharing one key/value head; dK and dV sum over the group's
     * heads inside one GEMM (its inner dimension is R T). */
    /* dV (+)= P^T dO: [R T, T]^T x [R T, D]. */
    if (dv.mem)
        st = heads_gemm(dev, groups, true, false, t, d, rt, 1.0f, beta_dv, p, dout, dv);
    /* dP = dO V^T: [R T, D] x [T, D]^T, into the workspace. */
    if (st == CLT_OK && want_ds)
        st = heads_gemm(dev, groups, false, true, rt, t, d, 1.0f, 0.0f, dout, v, work);
    /* dS / scale = P * (dP - rowsum(dP * P)), in place: the softmax's backward. */
    if (st == CLT_OK && want_ds)
        st = clt__softmax_masked_backward(dev, b * h * t, t, causal, p, work, work, false);
    /* dQ (+)= dS K = scale * (dS / scale) K: [R T, T] x [T, D]. */
    if (st == CLT_OK && dq.mem)
        st = heads_gemm(dev, groups, false, false, rt, d, t, scale, beta_dq, work, k, dq);
    /* dK (+)= dS^T Q: [R T, T]^T x [R T, D], scaled the same way. */
    if (st == CLT_OK && dk.mem)
        st = heads_gemm(dev, groups, true, false, t, d, rt, scale, beta_dk, work, q, dk);
    return st;
}

/* ==== The tiled path (cl/attention.cl) =================================================== */

bool clt__attention_flash_chosen(int64_t b, int64_t h, int64_t t, int64_t d, const char *force)
{
    if (d <= 0 || d > CLT__ATT_DMAX || b < 0 || h < 0 || t < 0)
        return false;
    if (force && strcmp(force, "tiled") == 0)
        return true;
    if (force && strcmp(force, "gemm") == 0)
        return false;
    return clt__attention_probs_bytes(b, h, t) >= CLT__ATTENTION_FLASH_MIN_BYTES;
}

uint64_t clt__attention_lse_bytes(int64_t b, int64_t h, int64_t t)
{
    if (b < 0 || h < 0 || t < 0)
        return 0;
    return (uint64_t)b * (uint64_t)h * (uint64_t)t * sizeof(float);
}

/* The local size of the tiled kernels: rows a work-group owns. Any size gives the same
 * results; see cl/attention.cl. */
static enum clt_status flash_local(struct clt_device *dev, enum clt__kernel_id id, size_t *local)
{
    cl_kernel kernel;
    size_t wg = 0;
    enum clt_status st = clt__kernel(dev, id, &kernel, &wg);
    size_t l = CLT__ATT_ROWS;
    while (l > 1 && (l > wg || l > dev->wg_1d || l > dev->info.max_work_item_sizes[0]))
        l /= 2;
    *local = l;
    return st;
}

/* The work-items of a tiled kernel over z heads of t rows: ceil(t / local) groups per head. */
static size_t flash_items(int64_t z, int64_t t, size_t local)
{
    return (size_t)z * (((size_t)t + local - 1) / local) * local;
}

/* The tiled kernels' own limits, after check(): D, and the work-items (B * H groups of rows
 * rounded up to CLT__ATT_ROWS) within int. */
static enum clt_status flash_check(struct clt_device *dev, const char *op, int64_t b, int64_t h,
                                   int64_t t, int64_t d)
{
    if (d > CLT__ATT_DMAX) {
        clt__log(&dev->log, CLT_LOG_ERROR, "%s: head size %lld is beyond the tiled kernels' %d", op,
                 (long long)d, CLT__ATT_DMAX);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return clt__check_i32(dev, b * h * (t + CLT__ATT_ROWS), "attention B * H * (T + rows)");
}

enum clt_status clt__attention_flash_forward(struct clt_device *dev, struct clt__buf q,
                                             struct clt__buf k, struct clt__buf v,
                                             struct clt__buf lse, struct clt__buf o, int64_t b,
                                             int64_t h, int64_t t, int64_t d, float scale,
                                             bool causal)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    const char *op = "attention_flash_forward";
    const struct tensor tensors[] = {
        {"q", q, PER_HEAD},    {"k", k, PER_HEAD}, {"v", v, PER_HEAD},
        {"lse", lse, PER_ROW}, {"o", o, PER_HEAD},
    };
    bool empty;
    enum clt_status st = check(dev, op, tensors, 5, b, h, h, t, d, false, &empty);
    if (st == CLT_OK)
        st = flash_check(dev, op, b, h, t, d);
    if (st != CLT_OK || empty)
        return st;
    size_t local;
    st = flash_local(dev, CLT__K_attention_flash_forward, &local);
    if (st != CLT_OK)
        return st;
    return CLT__RUN_WG(dev, CLT__K_attention_flash_forward, flash_items(b * h, t, local), local,
                       CLT__I32(t), CLT__I32(d), CLT__F32(scale), CLT__I32(causal), CLT__BUF(q),
                       CLT__BUF(k), CLT__BUF(v), CLT__BUF(o), CLT__BUF(lse));
}

enum clt_status
clt__attention_flash_backward(struct clt_device *dev, struct clt__buf q, struct clt__buf k,
                              struct clt__buf v, struct clt__buf o, struct clt__buf lse,
                              struct clt__buf dout, struct clt__buf work, struct clt__buf dq,
                              struct clt__buf dk, struct clt__buf dv, int64_t b, int64_t h,
                              int64_t t, int64_t d, float scale, bool causal, uint32_t acc_mask)
{
    if (!dev)
        return CLT_ERR_INVALID_ARGUMENT;
    const char *op = "attention_flash_backward";
    struct tensor tensors[10] = {
        {"q", q, PER_HEAD},      {"k", k, PER_HEAD},    {"v", v, PER_HEAD},
        {"o", o, PER_HEAD},      {"lse", lse, PER_ROW}, {"dout", dout, PER_HEAD},
        {"work", work, PER_ROW},
    };
    size_t ntensors = 7;
    const struct tensor outs[3] = {
        {"dq", dq, PER_HEAD}, {"dk", dk, PER_HEAD}, {"dv", dv, PER_HEAD}};
    for (int i = 0; i < 3; i++)
        if (outs[i].b.mem)
            tensors[ntensors++] = outs[i];
    bool empty;
    enum clt_status st = check(dev, op, tensors, ntensors, b, h, h, t, d, false, &empty);
    if (st == CLT_OK)
        st = flash_check(dev, op, b, h, t, d);
    if (st != CLT_OK || empty || (!dq.mem && !dk.mem && !dv.mem))
        return st;
    const int64_t z = b * h;
    /* delta = rowsum(dO * O) [Z, T], into the workspace. */
    st = CLT__RUN(dev, CLT__K_attention_flash_delta, (size_t)(z * t), CLT__I32(z * t), CLT__I32(d),
                  CLT__BUF(dout), CLT__BUF(o), CLT__BUF(work));
    size_t local = 1;
    if (st == CLT_OK && dq.mem)
        st = flash_local(dev, CLT__K_attention_flash_dq, &local);
    if (st == CLT_OK && dq.mem)
        st =
            CLT__RUN_WG(dev, CLT__K_attention_flash_dq, flash_items(z, t, local), local,
                        CLT__I32(t), CLT__I32(d), CLT__F32(scale), CLT__I32(causal),
                        CLT__I32((acc_mask & CLT__ATTENTION_ACC_DQ) != 0), CLT__BUF(q), CLT__BUF(k),
                        CLT__BUF(v), CLT__BUF(dout), CLT__BUF(lse), CLT__BUF(work), CLT__BUF(dq));
    if (st == CLT_OK && (dk.mem || dv.mem))
        st = flash_local(dev, CLT__K_attention_flash_dkdv, &local);
    if (st == CLT_OK && (dk.mem || dv.mem))
        st = CLT__RUN_WG(dev, CLT__K_attention_flash_dkdv, flash_items(z, t, local), local,
                         CLT__I32(t), CLT__I32(d), CLT__F32(scale), CLT__I32(causal),
                         CLT__I32((acc_mask & CLT__ATTENTION_ACC_DK) != 0),
                         CLT__I32((acc_mask & CLT__ATTENTION_ACC_DV) != 0), CLT__BUF(q),
                         CLT__BUF(k), CLT__BUF(v), CLT__BUF(dout), CLT__BUF(lse), CLT__BUF(work),
                         CLT__BUF(dk), CLT__BUF(dv));
    return st;
}

/* ==== Graph ops: definitions and public builders ========================================= */

/* ---- attention --------------------------------------------------------------------------- */

/* The graph op takes the tiled path where clt__attention_flash_chosen says so when it is built
 * (CLTRAIN_ATTENTION may force either path; grouped-query nodes always take the GEMM path);
 * the node records the choice in its aux buffers, two on the tiled path, one on the GEMM path.
 * Its aux buffers are then the [B, H, T] log-sum-exp and a copy of O [B, H, T, D] (the
 * backward reads O; a copy keeps the GEMM path from holding its output), else the
 * [B, H, T, T] probabilities. */
static bool sdpa_flash(const struct clt_tensor *t)
{
    return t->naux == 2;
}

/* The copy of O (tiled path, aux 1) and the probabilities (GEMM path, aux 0) are store_t
 * tensors: the node declares them F32 (the log-sum-exp, aux 0 of the tiled path, is float in
 * every storage), so the plan gives them 4 bytes an element, room for any storage, and clt__aux
 * their offset in floats, which this turns into storage elements. */
static struct clt__buf sdpa_aux_st(struct clt__exec *x, const struct clt_tensor *t, uint32_t k)
{
    struct clt__buf b = clt__aux(x, t, k);
    b.offset = b.offset * sizeof(float) / clt__storage_bytes(x->dev);
    return b;
}

static uint64_t sdpa_workspace(const struct clt_tensor *t)
{
    if (sdpa_flash(t))
        return clt__attention_lse_bytes(t->shape[0], t->shape[1], t->shape[2]);
    return clt__attention_workspace_bytes(t->shape[0], t->shape[1], t->shape[2]);
}

static enum clt_status sdpa_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    if (sdpa_flash(t)) {
        enum clt_status st = clt__attention_flash_forward(
            x->dev, clt__val(x, t->in[0]), clt__val(x, t->in[1]), clt__val(x, t->in[2]),
            clt__aux(x, t, 0), sdpa_aux_st(x, t, 1), t->shape[0], t->shape[1], t->shape[2],
            t->shape[3], t->p.sdpa.scale, t->p.sdpa.causal);
        if (st == CLT_OK)
            st = clt__copy_forward(x->dev, t->aux_count[1], sdpa_aux_st(x, t, 1), clt__val(x, t));
        return st;
    }
    return clt__attention_forward(x->dev, clt__val(x, t->in[0]), clt__val(x, t->in[1]),
                                  clt__val(x, t->in[2]), sdpa_aux_st(x, t, 0), clt__val(x, t),
                                  t->shape[0], t->shape[1], t->in[1]->shape[1], t->shape[2],
                                  t->shape[3], t->p.sdpa.scale, t->p.sdpa.causal);
}

/* One launch computes every gradient asked for (dP and the softmax's backward once); the
 * mask's bits are in input order, as CLT__ATTENTION_ACC_* are. */
static enum clt_status sdpa_backward(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc)
{
    if (sdpa_flash(t))
        return clt__attention_flash_backward(
            x->dev, clt__val(x, t->in[0]), clt__val(x, t->in[1]), clt__val(x, t->in[2]),
            sdpa_aux_st(x, t, 1), clt__aux(x, t, 0), clt__grad(x, t), clt__workspace(x),
            clt__grad(x, t->in[0]), clt__grad(x, t->in[1]), clt__grad(x, t->in[2]), t->shape[0],
            t->shape[1], t->shape[2], t->shape[3], t->p.sdpa.scale, t->p.sdpa.causal,
            acc & CLT__ATTENTION_ACC_ALL);
    return clt__attention_backward(x->dev, clt__val(x, t->in[0]), clt__val(x, t->in[1]),
                                   clt__val(x, t->in[2]), sdpa_aux_st(x, t, 0), clt__grad(x, t),
                                   clt__workspace(x), clt__grad(x, t->in[0]),
                                   clt__grad(x, t->in[1]), clt__grad(x, t->in[2]), t->shape[0],
                                   t->shape[1], t->in[1]->shape[1], t->shape[2], t->shape[3],
                                   t->p.sdpa.scale, t->p.sdpa.causal, acc & CLT__ATTENTION_ACC_ALL);
}

/* q, k, v [16, 4, 128, 32] (B, H, T, D), causal. */
static struct clt_tensor *bench_sdpa(struct clt_graph *g)
{
    return clt_sdpa(g, CLT__BENCH_PARAM(g, "q", 4, 16, 4, 128, 32),
                    CLT__BENCH_PARAM(g, "k", 4, 16, 4, 128, 32),
                    CLT__BENCH_PARAM(g, "v", 4, 16, 4, 128, 32), true);
}

const struct clt__op_def clt__op_sdpa = {
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1) | CLT__SAVES_INPUT(2),
    .storage16 = true,
    .forward = sdpa_forward,
    .backward = sdpa_backward,
    .workspace = sdpa_workspace,
    .bench = bench_sdpa,
};

struct clt_tensor *clt_sdpa(struct clt_graph *g, struct clt_tensor *q, struct clt_tensor *k,
                            struct clt_tensor *v, bool causal)
{
    struct clt_tensor *in[3] = {q, k, v};
    if (!clt__graph_ok(g, 3, in))
        return NULL;
    /* k and v alike; their heads divide q's; batch, length and head size shared. */
    bool ok = q->ndim == 4 && q->dtype == CLT_F32;
    for (int i = 1; ok && i < 3; i++)
        ok = in[i]->ndim == 4 && in[i]->dtype == CLT_F32 &&
             memcmp(in[i]->shape, k->shape, 4 * sizeof *k->shape) == 0;
    ok = ok && k->shape[0] == q->shape[0] && k->shape[2] == q->shape[2] &&
         k->shape[3] == q->shape[3] && q->shape[1] % k->shape[1] == 0;
    if (!ok) {
        clt__require(g, false,
                     "sdpa: q must be F32 [B, H, T, Dh] and k, v F32 [B, HKV, T, Dh] of one "
                     "shape, with HKV dividing H");
        return NULL;
    }
    struct clt_tensor *t = clt__node(g, CLT__OP_sdpa, 3, in, CLT_F32, 4, q->shape);
    if (t) {
        t->p.sdpa.causal = causal;
        t->p.sdpa.scale = clt__attention_scale(q->shape[3]);
        const int64_t rows = q->shape[0] * q->shape[1] * q->shape[2];
        const bool flash = k->shape[1] == q->shape[1] &&
                           clt__attention_flash_chosen(q->shape[0], q->shape[1], q->shape[2],
                                                       q->shape[3], getenv("CLTRAIN_ATTENTION"));
        t->naux = flash ? 2 : 1;
        t->aux_dtype[0] = CLT_F32;
        t->aux_count[0] = rows * (flash ? 1 : q->shape[2]); /* log-sum-exp, or P */
        t->aux_dtype[1] = CLT_F32;
        t->aux_count[1] = flash ? rows * q->shape[3] : 0; /* O */
    }
    return t;
}

struct clt_tensor *clt_attention(struct clt_graph *g, struct clt_tensor *x, int64_t heads,
                                 bool causal, const char *name)
{
    const struct clt_attention_desc desc = {.heads = heads, .causal = causal, .bias = true};
    return clt_attention_ex(g, x, &desc, name);
}

struct clt_tensor *clt_attention_ex(struct clt_graph *g, struct clt_tensor *x,
                                    const struct clt_attention_desc *desc, const char *name)
{
    char qkv_name[CLT__NAME_MAX] = "", proj_name[CLT__NAME_MAX] = "";
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    /* The sublayers' names, when a name is given (a layer given all its parameters may have
     * none: the linear layers then report a missing name only if they must make one). */
    if (name && (!clt__param_name(g, name, "qkv", qkv_name) ||
                 !clt__param_name(g, name, "proj", proj_name)))
        return NULL;
    const int64_t h = desc ? desc->heads : 0;
    const int64_t hkv = desc && desc->kv_heads ? desc->kv_heads : h;
    if (!desc || x->ndim != 3 || x->dtype != CLT_F32 || h <= 0 || x->shape[2] % h != 0 ||
        hkv <= 0 || h % hkv != 0) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "attention \"%s\": x must be F32 [N, T, D] with D divisible by the heads, "
                        "and kv_heads must divide the heads (heads %lld, kv_heads %lld)",
                        name ? name : "(unnamed)", (long long)h, (long long)hkv);
        return NULL;
    }
    int64_t n = x->shape[0], t = x->shape[1], d = x->shape[2], dh = d / h;
    /* [N, T, (H + 2 HKV) Dh] -> [N, T, H + 2 HKV, Dh] -> [N, H + 2 HKV, T, Dh]; then heads
     * 0 .. H-1 are the queries, the next HKV the keys, the last HKV the values. */
    struct clt_tensor *qkv =
        clt_linear_ex(g, x, (h + 2 * hkv) * dh, desc->bias, name ? qkv_name : NULL, &desc->qkv);
    qkv = clt_reshape(g, qkv, 4, (int64_t[]){n, t, h + 2 * hkv, dh});
    qkv = clt_permute(g, qkv, (uint32_t[]){0, 2, 1, 3});
    struct clt_tensor *q = clt_slice(g, qkv, 1, 0, h);
    struct clt_tensor *k = clt_slice(g, qkv, 1, h, hkv);
    struct clt_tensor *v = clt_slice(g, qkv, 1, h + hkv, hkv);
    struct clt_tensor *o = clt_sdpa(g, q, k, v, desc->causal);
    /* [N, H, T, Dh] -> [N, T, H, Dh] -> [N, T, D]. */
    o = clt_reshape(g, clt_permute(g, o, (uint32_t[]){0, 2, 1, 3}), 3, (int64_t[]){n, t, d});
    return clt_linear_ex(g, o, d, desc->bias, name ? proj_name : NULL, &desc->proj);
}
