/*
 * attention.cl: the row-wise softmax of scaled dot-product attention, forward and backward.
 * The matrix products around it (S = scale * Q K^T, O = P V and their gradients) are batched
 * GEMMs issued by the launcher (engine/ops/attention.c); these kernels only touch the
 * [rows, T] score matrices, rows = B * H * T.
 *
 * Layouts (row-major, contiguous):
 *     p, g  [B, H, T, T]: row r = (b * H + h) * T + i holds query i's scores over keys 0..T-1.
 * With causal masking query i attends to keys j <= i only; the row's first n = i + 1 entries
 * are live and the rest are masked. Without masking n = T. Every row has at least one live
 * entry, so no row is ever fully masked.
 *
 * attention_softmax_forward: in place on p. In: scaled scores S. Out: P = softmax over the
 *     live entries of each row, exact zeros in masked entries. Numerically stable: the row's
 *     maximum is subtracted before exp, so exp never overflows and the largest term is 1.
 * attention_softmax_backward: in place on g. In: dP = dO V^T and P. Out:
 *     dS[j] = scale * P[j] * (dP[j] - sum_k P[k] * dP[k]) on live entries, exact zeros on
 *     masked ones.
 *
 * Work-items: one per row, global size rows (rounded up; extra work-items return at once).
 * Each work-item walks its row in increasing column order, so every sum (the softmax
 * normaliser, the row dot product) has a fixed order that does not depend on the launch
 * shape. No local memory, no barriers, no assumption about the work-group size.
 *
 * Tunables: none.
 */

__kernel void attention_softmax_forward(int rows, int t, int causal,
                                        __global float *p, int p_off) /* [rows, t] */
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    __global float *row = p + p_off + (size_t)r * t;
    const int live = causal ? r % t + 1 : t; /* keys 0..live-1 are attended to */

    float m = -INFINITY;
    for (int j = 0; j < live; j++)
        m = fmax(m, row[j]);
    /* Scores of -inf everywhere (only from infinite inputs) would give exp(nan): such a row
     * attends to nothing and gets zeros. */
    if (m == -INFINITY)
        m = 0.0f;
    float sum = 0.0f;
    for (int j = 0; j < live; j++) {
        const float e = exp(row[j] - m);
        row[j] = e;
        sum += e;
    }
    /* sum >= 1 unless the row was all -inf; then every e is 0 and so is the result. */
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (int j = 0; j < live; j++)
        row[j] *= inv;
    for (int j = live; j < t; j++)
        row[j] = 0.0f;
}

__kernel void attention_softmax_backward(int rows, int t, int causal, float scale,
                                         __global const float *p, int p_off, /* [rows, t] */
                                         __global float *g, int g_off)       /* [rows, t] */
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *prow = p + p_off + (size_t)r * t;
    __global float *grow = g + g_off + (size_t)r * t;
    const int live = causal ? r % t + 1 : t;

    float dot = 0.0f; /* sum_k P[k] * dP[k], in increasing k */
    for (int j = 0; j < live; j++)
        dot = fma(prow[j], grow[j], dot);
    for (int j = 0; j < live; j++)
        grow[j] = scale * (prow[j] * (grow[j] - dot));
    for (int j = live; j < t; j++)
        grow[j] = 0.0f;
}
