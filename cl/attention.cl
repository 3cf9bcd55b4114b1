/*
 * attention.cl: scaled dot-product attention by tiles with an online softmax (the scheme of
 * FlashAttention), forward and backward, causal or not. The [T, T] scores are never written
 * to global memory: the forward keeps, per query row, a running maximum and sum of exp and
 * saves only the row's log-sum-exp; the backward recomputes each score from q, k and that
 * log-sum-exp. engine/ops/attention.c launches them (the "tiled path"); its other path forms
 * the scores with GEMMs and the softmax of cl/loss.cl.
 *
 * Letters: Z = B * H heads, T sequence length (queries and keys), D head size (<= DMAX).
 * Layouts (row-major, every tensor a __global pointer plus an element offset):
 *   q, k, v, o, dout, dq, dk, dv  [Z, T, D]
 *   lse                           [Z, T]  log(sum_j exp(s_ij)) of every query row, where
 *                                          s_ij = scale * q_i . k_j over the live keys
 *   delta                         [Z, T]  rowsum(dO * O) of every query row
 * Storage (cl/common.cl, docs/precision.md): q, k, v, o, dout, dq, dk, dv are store_t (fp32,
 * fp16 or bf16 by the program's build), read through LOAD into float registers and local
 * memory and written through STORE once per element; lse and delta stay float in every build.
 * The online softmax, every dot product and every sum is in float.
 *
 * Forward, per query row i:   m = max_j s_ij,  l = sum_j exp(s_ij - m),
 *                             o_i = sum_j exp(s_ij - m) v_j / l,  lse_i = m + log(l);
 *   m, l and the unnormalised o_i are updated key by key (when a key raises m, l and o_i are
 *   first multiplied by exp(m_old - m_new)).
 * Backward, with p_ij = exp(s_ij - lse_i) and ds_ij = p_ij (dO_i . v_j - delta_i):
 *   dq_i = scale * sum_j ds_ij k_j,  dk_j = scale * sum_i ds_ij q_i,  dv_j = sum_i p_ij dO_i.
 * Causal masking: query i attends to keys j <= i; masked pairs are skipped, never computed.
 *
 * Work-items: one work-item per row it owns (attention_flash_forward and attention_flash_dq:
 * a query row; attention_flash_dkdv: a key row), L rows per work-group (the local size, any
 * value), in groups ordered head by head: group g covers head g / ceil(T / L) and rows
 * (g % ceil(T / L)) * L onwards. The owned row and its accumulators live in private arrays of
 * DMAX / 4 float4, zero-padded past D (as are the tiles' rows). The rows of the other side (keys
 * and values, or queries, dO, lse and delta) are streamed through local memory TILE rows at a time,
 * loaded by the whole group. Rows past T still take part in the loads and barriers but write
 * nothing. attention_flash_delta: one work-item per query row.
 *
 * Reduction order: every sum over keys (forward, dq) or queries (dk, dv) runs in increasing
 * index order, one term at a time; a dot product over D keeps four lanes (elements c = 4n + l
 * go to lane l, in increasing n, with fma) and adds them as (l0 + l1) + (l2 + l3). The
 * forward, dq and dkdv kernels compute every score with the same function, so the same
 * value. Results depend neither on the local size nor on TILE. No atomics: each output row has one
 * owner, so runs are identical.
 *
 * Tunables (cl/shared.h; each has an #ifndef default there):
 *   CLT__ATT_TILE  rows per streamed tile (default 32)
 *   CLT__ATT_DMAX  largest head size D (default 64); the launcher refuses larger D
 * Local memory: forward and dq 2 * TILE * DMAX floats (16 KiB by default), dkdv that plus
 * 2 * TILE floats, within the 32 KiB of rusticl on llvmpipe.
 */
#define TILE CLT__ATT_TILE
#define DMAX CLT__ATT_DMAX
#define DV ((DMAX + 3) / 4) /* float4 vectors of a row at most */

/* a . b over dv vectors (a row of D floats zero-padded to 4 dv): four lanes summed in
 * increasing order with fma, then (x + y) + (z + w). */
float att_dot(const float4 *a, __local const float4 *b, int dv)
{
    float4 s = (float4)(0.0f);
    for (int c = 0; c < dv; c++)
        s = fma(a[c], b[c], s);
    return (s.x + s.y) + (s.z + s.w);
}

/* Row r of a [T, D] matrix as dv float4, zero-padded past D. */
float4 att_vec(__global const store_t *m, int r, int c, int d)
{
    const int e = 4 * c;
    __global const store_t *row = m + (size_t)r * d;
    return (float4)(e < d ? LOAD(row, e) : 0.0f, e + 1 < d ? LOAD(row, e + 1) : 0.0f,
                    e + 2 < d ? LOAD(row, e + 2) : 0.0f, e + 3 < d ? LOAD(row, e + 3) : 0.0f);
}

/* Loads rows [r0, r0 + TILE) of a [T, D] matrix into tile (dv float4 per row, zero-padded);
 * rows past T read 0. Every work-item of the group calls it; the loop's trip count is the same
 * for all. */
void att_load(__local float4 *tile, __global const store_t *m, int r0, int t, int d, int dv)
{
    const int n = TILE * dv, l = get_local_size(0), lid = get_local_id(0);
    for (int e0 = 0; e0 < n; e0 += l) {
        const int e = e0 + lid;
        if (e < n) {
            const int r = r0 + e / dv;
            tile[e] = r < t ? att_vec(m, r, e % dv, d) : (float4)(0.0f);
        }
    }
}

/* Element e of a [T, D] row: written (or added to, when accumulate) when e < d. */
void att_put(__global store_t *row, int e, int d, float y, int accumulate)
{
    if (e < d)
        STORE(row, e, accumulate ? LOAD(row, e) + y : y);
}

/* Writes (or adds to, when accumulate) row r of a [T, D] matrix from dv float4 times alpha. */
void att_store(__global store_t *m, int r, int d, const float4 *x, float alpha, int accumulate)
{
    __global store_t *row = m + (size_t)r * d;
    for (int c = 0; 4 * c < d; c++) {
        const float4 y = alpha * x[c];
        att_put(row, 4 * c, d, y.x, accumulate);
        att_put(row, 4 * c + 1, d, y.y, accumulate);
        att_put(row, 4 * c + 2, d, y.z, accumulate);
        att_put(row, 4 * c + 3, d, y.w, accumulate);
    }
}

/* The head and the first row of this work-group's rows. */
void att_group(int t, int *z, int *row0)
{
    const int l = get_local_size(0), tiles = (t + l - 1) / l, g = get_group_id(0);
    *z = g / tiles;
    *row0 = (g % tiles) * l;
}

__kernel void attention_flash_forward(int t, int d, float scale, int causal,
                                      __global const store_t *q, int q_off, /* [Z, T, D] */
                                      __global const store_t *k, int k_off, /* [Z, T, D] */
                                      __global const store_t *v, int v_off, /* [Z, T, D] */
                                      __global store_t *o, int o_off,       /* out: [Z, T, D] */
                                      __global float *lse, int lse_off)     /* out: [Z, T] */
{
    __local float4 ks[TILE * DV], vs[TILE * DV];
    int z, i0;
    att_group(t, &z, &i0);
    const int i = i0 + (int)get_local_id(0), live = i < t, dv = (d + 3) / 4;
    const size_t head = (size_t)z * t * d;
    q += q_off + head;
    k += k_off + head;
    v += v_off + head;
    float4 qi[DV], acc[DV];
    for (int c = 0; c < dv; c++) {
        qi[c] = live ? att_vec(q, i, c, d) : (float4)(0.0f);
        acc[c] = (float4)(0.0f);
    }
    float m = -INFINITY, l = 0.0f;
    /* Keys the group's rows need: all, or up to its last row with causal masking. */
    const int last = i0 + (int)get_local_size(0) < t ? i0 + (int)get_local_size(0) : t;
    const int keys = causal ? last : t;
    for (int j0 = 0; j0 < keys; j0 += TILE) {
        barrier(CLK_LOCAL_MEM_FENCE);
        att_load(ks, k, j0, t, d, dv);
        att_load(vs, v, j0, t, d, dv);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!live)
            continue;
        int end = j0 + TILE < t ? j0 + TILE : t;
        if (causal && end > i + 1)
            end = i + 1;
        for (int j = j0; j < end; j++) {
            const int r = (j - j0) * dv;
            const float s = att_dot(qi, ks + r, dv) * scale;
            if (s > m) {
                const float corr = exp(m - s);
                l *= corr;
                for (int c = 0; c < dv; c++)
                    acc[c] *= corr;
                m = s;
            }
            const float p = exp(s - m);
            l += p;
            for (int c = 0; c < dv; c++)
                acc[c] = fma((float4)(p), vs[r + c], acc[c]);
        }
    }
    if (!live)
        return;
    /* Every live row has at least key 0, so l >= 1. */
    for (int c = 0; c < dv; c++)
        acc[c] /= l;
    att_store(o + o_off + head, i, d, acc, 1.0f, 0);
    lse[lse_off + (size_t)z * t + i] = m + log(l);
}

__kernel void attention_flash_delta(int rows, int d, __global const store_t *dout,
                                    int dout_off,                         /* [rows, D] */
                                    __global const store_t *o, int o_off, /* [rows, D] */
                                    __global float *delta, int delta_off) /* out: [rows] */
{
    const int row = get_global_id(0);
    if (row >= rows)
        return;
    dout += dout_off + (size_t)row * d;
    o += o_off + (size_t)row * d;
    float s = 0.0f;
    for (int c = 0; c < d; c++)
        s = fma(LOAD(dout, c), LOAD(o, c), s);
    delta[delta_off + row] = s;
}

__kernel void attention_flash_dq(int t, int d, float scale, int causal, int accumulate,
                                 __global const store_t *q, int q_off,       /* [Z, T, D] */
                                 __global const store_t *k, int k_off,       /* [Z, T, D] */
                                 __global const store_t *v, int v_off,       /* [Z, T, D] */
                                 __global const store_t *dout, int dout_off, /* [Z, T, D] */
                                 __global const float *lse, int lse_off,     /* [Z, T] */
                                 __global const float *delta, int delta_off, /* [Z, T] */
                                 __global store_t *dq, int dq_off)           /* out: [Z, T, D] */
{
    __local float4 ks[TILE * DV], vs[TILE * DV];
    int z, i0;
    att_group(t, &z, &i0);
    const int i = i0 + (int)get_local_id(0), live = i < t, dv = (d + 3) / 4;
    const size_t head = (size_t)z * t * d;
    q += q_off + head;
    k += k_off + head;
    v += v_off + head;
    dout += dout_off + head;
    float4 qi[DV], doi[DV], acc[DV];
    for (int c = 0; c < dv; c++) {
        qi[c] = live ? att_vec(q, i, c, d) : (float4)(0.0f);
        doi[c] = live ? att_vec(dout, i, c, d) : (float4)(0.0f);
        acc[c] = (float4)(0.0f);
    }
    const float lse_i = live ? lse[lse_off + (size_t)z * t + i] : 0.0f;
    const float delta_i = live ? delta[delta_off + (size_t)z * t + i] : 0.0f;
    const int last = i0 + (int)get_local_size(0) < t ? i0 + (int)get_local_size(0) : t;
    const int keys = causal ? last : t;
    for (int j0 = 0; j0 < keys; j0 += TILE) {
        barrier(CLK_LOCAL_MEM_FENCE);
        att_load(ks, k, j0, t, d, dv);
        att_load(vs, v, j0, t, d, dv);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!live)
            continue;
        int end = j0 + TILE < t ? j0 + TILE : t;
        if (causal && end > i + 1)
            end = i + 1;
        for (int j = j0; j < end; j++) {
            const int r = (j - j0) * dv;
            const float p = exp(att_dot(qi, ks + r, dv) * scale - lse_i);
            const float ds = p * (att_dot(doi, vs + r, dv) - delta_i);
            for (int c = 0; c < dv; c++)
                acc[c] = fma((float4)(ds), ks[r + c], acc[c]);
        }
    }
    if (live)
        att_store(dq + dq_off + head, i, d, acc, scale, accumulate);
}

__kernel void attention_flash_dkdv(int t, int d, float scale, int causal, int acc_dk, int acc_dv,
                                   __global const store_t *q, int q_off,       /* [Z, T, D] */
                                   __global const store_t *k, int k_off,       /* [Z, T, D] */
                                   __global const store_t *v, int v_off,       /* [Z, T, D] */
                                   __global const store_t *dout, int dout_off, /* [Z, T, D] */
                                   __global const float *lse, int lse_off,     /* [Z, T] */
                                   __global const float *delta, int delta_off, /* [Z, T] */
                                   __global store_t *dk, int dk_off,  /* out: [Z, T, D] or NULL */
                                   __global store_t *dv_, int dv_off) /* out: [Z, T, D] or NULL */
{
    __local float4 qs[TILE * DV], dos[TILE * DV];
    __local float lse_t[TILE], delta_t[TILE];
    int z, j0;
    att_group(t, &z, &j0);
    const int j = j0 + (int)get_local_id(0), live = j < t, lid = get_local_id(0);
    const int dv = (d + 3) / 4;
    const size_t head = (size_t)z * t * d;
    q += q_off + head;
    k += k_off + head;
    v += v_off + head;
    dout += dout_off + head;
    lse += lse_off + (size_t)z * t;
    delta += delta_off + (size_t)z * t;
    float4 kj[DV], vj[DV], gk[DV], gv[DV];
    for (int c = 0; c < dv; c++) {
        kj[c] = live ? att_vec(k, j, c, d) : (float4)(0.0f);
        vj[c] = live ? att_vec(v, j, c, d) : (float4)(0.0f);
        gk[c] = (float4)(0.0f);
        gv[c] = (float4)(0.0f);
    }
    /* Queries that see the group's keys: all, or from its first key on with causal masking. */
    for (int i0 = causal ? j0 : 0; i0 < t; i0 += TILE) {
        barrier(CLK_LOCAL_MEM_FENCE);
        att_load(qs, q, i0, t, d, dv);
        att_load(dos, dout, i0, t, d, dv);
        for (int e0 = 0; e0 < TILE; e0 += get_local_size(0)) {
            const int e = e0 + lid;
            if (e < TILE) {
                lse_t[e] = i0 + e < t ? lse[i0 + e] : 0.0f;
                delta_t[e] = i0 + e < t ? delta[i0 + e] : 0.0f;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!live)
            continue;
        const int end = i0 + TILE < t ? i0 + TILE : t;
        for (int i = causal && i0 < j ? j : i0; i < end; i++) {
            const int r = (i - i0) * dv;
            const float p = exp(att_dot(kj, qs + r, dv) * scale - lse_t[i - i0]);
            const float ds = p * (att_dot(vj, dos + r, dv) - delta_t[i - i0]);
            for (int c = 0; c < dv; c++) {
                gv[c] = fma((float4)(p), dos[r + c], gv[c]);
                gk[c] = fma((float4)(ds), qs[r + c], gk[c]);
            }
        }
    }
    if (!live)
        return;
    if (dk)
        att_store(dk + dk_off + head, j, d, gk, scale, acc_dk);
    if (dv_)
        att_store(dv_ + dv_off + head, j, d, gv, 1.0f, acc_dv);
}
