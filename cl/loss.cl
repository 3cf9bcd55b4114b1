/*
 * loss.cl: softmax and log-softmax along the last axis, cross-entropy with integer labels
 * (fused with log-softmax, optional label smoothing) and mean squared error, forward and
 * backward. The softmax is the engine's only one: attention (engine/ops/attention.c) runs it
 * in place on its [B * H * T, T] score rows with causal masking.
 *
 * Layouts (row-major, every tensor a __global pointer plus an element offset):
 *   x, y, dy, dx     [rows, cols]      softmax / log-softmax input, output and gradients
 *   logits, dlogits  [rows, classes]   cross-entropy input and its gradient
 *   labels           [rows] int        class index, or ignore_index
 *   ws               cross-entropy workspace, floats:
 *                      [0, rows)          loss of each row (0 where the row is ignored)
 *                      [rows, 2 rows)     max of each row of logits
 *                      [2 rows, 3 rows)   log(sum_j exp(logits[r, j] - max)) of each row
 *                      [3 rows]           number of counted rows (written by the finish)
 *                    mse workspace: one partial sum per block of block_size elements
 *   loss, dloss      [1]               scalar loss and its upstream gradient
 * Storage (cl/common.cl, docs/precision.md): x, y, dy, dx, logits, dlogits and mse's x, target
 * and dx are store_t (fp32, fp16 or bf16 by the program's build), read through LOAD/VLOAD8
 * into float and written through STORE/VSTORE8; labels, ws, loss and dloss stay int and float
 * in every build (the loss and its seed are the ops' wide outputs). Every max, sum and mean is
 * a float; each output element is rounded to the storage once.
 *
 * Work-items:
 *   softmax_forward, softmax_backward: one work-item per row. The backward walks it in column
 *   order (8 columns per step through VLOAD8 / VSTORE8, the dot product summed in column
 *   order); the forward 8 columns at a time (lane l sums the columns j % 8 == l in increasing
 *   order; the lanes are then combined as ((0 + 1) + (2 + 3)) + ((4 + 5) + (6 + 7))), so the
 *   order depends on the row only.
 *   cross_entropy_rows, cross_entropy_backward: one work-item per row, 8 columns at a time
 *   as softmax_forward.
 *   Row kernels (log_softmax_*): one work-group per row, any local size. The row is split into
 * LANES lanes: lane p walks columns p, p + LANES, ... in increasing order, and the LANES partial
 * results are combined by a fixed binary tree in local memory. Work-item l of a group of L computes
 * lanes l, l + L, ...: who computes a lane does not change its value, so results depend on LANES
 * only, never on the local size. Finish kernels (cross_entropy_finish, mse_finish): one work-group
 * in all, same lanes. mse_partial: one work-group per block of block_size elements (a constant of
 * the launcher, never derived from the device), same lanes. Elementwise kernel (mse_backward): one
 * work-item per element.
 *
 * The loops that write a row step by the local size with a trip count that is the same for
 * every work-item of the group (j0 = 0, L, 2L, ...; column j0 + l when it exists). PoCL 3.1
 * miscompiles the usual `for (j = l; j < cols; j += L)` when its body reads and writes dx
 * (accumulate): the vectorized loop writes past its row into the next group's, a race.
 *
 * Numerics: every softmax subtracts the row max before exp, so exp never overflows and the
 * row sum lies in [1, cols]; softmax_forward's exp is common.cl's exp_nonpos8 (relative error <=
 * 8.2e-8, no built-in, which PoCL runs one element at a time). Cross-entropy is computed from z =
 * logits - max (never from a log-sum-exp of the magnitude of the logits), so logits of 1e4 lose
 * nothing to cancellation. Sums of squares use separate multiply and add (FP_CONTRACT is off, no
 * fma).
 *
 * Tunable: CLT_LOSS_LANES (default 64, a power of two), the number of lanes of a reduction.
 * It fixes the summation order; launchers use at most that many work-items per group.
 */
#define LANES CLT__LOSS_LANES /* cl/shared.h */
#if (LANES & (LANES - 1)) != 0
#error "CLT__LOSS_LANES must be a power of two"
#endif

/* ---- Group reductions -------------------------------------------------------------------- */

/* What loss_tree combines lanes with. */
#define LOSS_SUM 0
#define LOSS_MAX 1

/* The sum (op LOSS_SUM) or the maximum (op LOSS_MAX) of part[0..LANES) by a fixed binary tree
 * (lane p takes in lane p + s, for s = LANES/2 down to 1), returned to every work-item of the
 * group. The maximum is exact in any order; NaN never wins a comparison. Every work-item must
 * call it after writing its lanes; part may be rewritten once it returns. */
float loss_tree(__local float *part, int op)
{
    const int lid = get_local_id(0), lsz = get_local_size(0);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = LANES / 2; s > 0; s >>= 1) {
        for (int p = lid; p < s; p += lsz) {
            const float a = part[p], b = part[p + s];
            part[p] = op == LOSS_MAX ? (b > a ? b : a) : a + b;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float total = part[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}

/* The sum for integers (row counts, which a float sum would round past 2^24). */
int loss_tree_sum_int(__local int *part)
{
    const int lid = get_local_id(0), lsz = get_local_size(0);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = LANES / 2; s > 0; s >>= 1) {
        for (int p = lid; p < s; p += lsz)
            part[p] += part[p + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const int total = part[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}

/* max_j x[j] over one row x [cols]. */
float loss_row_max(__global const store_t *x, int cols, __local float *part)
{
    for (int p = get_local_id(0); p < LANES; p += get_local_size(0)) {
        float m = -INFINITY;
        for (int j = p; j < cols; j += LANES) {
            const float v = LOAD(x, j);
            m = v > m ? v : m;
        }
        part[p] = m;
    }
    return loss_tree(part, LOSS_MAX);
}

/* sum_j exp(x[j] - m) over one row x [cols]. */
float loss_row_sum_exp(__global const store_t *x, int cols, float m, __local float *part)
{
    for (int p = get_local_id(0); p < LANES; p += get_local_size(0)) {
        float acc = 0.0f;
        for (int j = p; j < cols; j += LANES)
            acc += exp(LOAD(x, j) - m);
        part[p] = acc;
    }
    return loss_tree(part, LOSS_SUM);
}

/* sum_j a[j] * b[j] over one row a, b [cols]. */
float loss_row_dot(__global const store_t *a, __global const store_t *b, int cols,
                   __local float *part)
{
    for (int p = get_local_id(0); p < LANES; p += get_local_size(0)) {
        float acc = 0.0f;
        for (int j = p; j < cols; j += LANES)
            acc += LOAD(a, j) * LOAD(b, j);
        part[p] = acc;
    }
    return loss_tree(part, LOSS_SUM);
}

/* sum_j (a[j] - shift) over one row a [cols]. */
float loss_row_sum_shifted(__global const store_t *a, int cols, float shift, __local float *part)
{
    for (int p = get_local_id(0); p < LANES; p += get_local_size(0)) {
        float acc = 0.0f;
        for (int j = p; j < cols; j += LANES)
            acc += LOAD(a, j) - shift;
        part[p] = acc;
    }
    return loss_tree(part, LOSS_SUM);
}

/* Writes v into out[i], or adds it when accumulating (in float, stored once). */
void loss_store(__global store_t *out, int i, float v, int accumulate)
{
    STORE(out, i, accumulate ? LOAD(out, i) + v : v);
}

/* ---- Softmax and log-softmax ------------------------------------------------------------- */

/* The live columns of a softmax row: all cols, or with causal masking (attention's score
 * rows, [B * H * T, T]: row r is query r % T) the columns 0..r % cols. */
int softmax_live(int row, int cols, int causal)
{
    return causal ? row % cols + 1 : cols;
}

/* ---- Softmax rows by 8 lanes ---------------------------------------------------------------
 * softmax_forward walks a row 8 columns at a time in float8: lane l holds
 * the columns j with j % 8 == l, in increasing j, and a row's lanes are combined as
 * ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). The order depends on nothing but the row;
 * CPU devices run the float8 operations as vector instructions (PoCL does not vectorize a loop
 * per work-item across work-items). */

/* Columns j .. j + 7 of row x, those at n or past it read as fill. */
float8 loss_load8(__global const store_t *x, int j, int n, float fill)
{
    if (j + 8 <= n)
        return VLOAD8(0, x + j);
    float a[8];
    for (int l = 0; l < 8; l++)
        a[l] = j + l < n ? LOAD(x, j + l) : fill;
    return vload8(0, a);
}

/* Writes the lanes of v whose column j + l is below n (added to the row when accumulate). */
void loss_store8(__global store_t *y, int j, int n, float8 v, int accumulate)
{
    if (j + 8 <= n) {
        VSTORE8(accumulate ? VLOAD8(0, y + j) + v : v, 0, y + j);
        return;
    }
    float a[8];
    vstore8(v, 0, a);
    for (int l = 0; j + l < n && l < 8; l++)
        loss_store(y, j + l, a[l], accumulate);
}

/* The maximum of the lanes of v (NaN never wins; exact in any order). */
float loss_max8(float8 v)
{
    float m = v.s0;
    const float ms[7] = {v.s1, v.s2, v.s3, v.s4, v.s5, v.s6, v.s7};
    for (int l = 0; l < 7; l++)
        m = ms[l] > m ? ms[l] : m;
    return m;
}

float loss_sum8(float8 v)
{
    return ((v.s0 + v.s1) + (v.s2 + v.s3)) + ((v.s4 + v.s5) + (v.s6 + v.s7));
}

/* y[r, j] = exp(x[r, j] - max_r) / sum_k exp(x[r, k] - max_r) over the live columns k of the
 * row, exact zeros in the masked ones. Unlike the other row kernels, one work-item per row
 * (its rows are many and short: attention's scores, class scores), walking the row by 8
 * lanes (above), so every sum has a fixed order whatever the launch shape. In fp32 each exp is
 * computed once and held in y until the division; in 16-bit storage that would round it twice,
 * so the last pass computes each exp again (the same function of the same input: the same
 * value) and stores the quotient once. y may be x (in place): each element is read before it
 * is written, by the same work-item. */
__kernel void softmax_forward(int rows, int cols, int causal, __global const store_t *x,
                              int x_off,                      /* [rows, cols] */
                              __global store_t *y, int y_off) /* [rows, cols] */
{
    const int row = get_global_id(0);
    if (row >= rows)
        return;
    const int live = softmax_live(row, cols, causal);
    x += x_off + (size_t)row * cols;
    y += y_off + (size_t)row * cols;
    float8 m8 = (float8)(-INFINITY);
    for (int j = 0; j < live; j += 8) {
        const float8 v = loss_load8(x, j, live, -INFINITY);
        m8 = select(m8, v, v > m8); /* NaN never wins */
    }
    const float m = loss_max8(m8);
    float8 s8 = (float8)(0.0f);
    for (int j = 0; j < live; j += 8) {
        const float8 e = exp_nonpos8(loss_load8(x, j, live, -INFINITY) - m);
#if CLT_STORAGE == 32
        loss_store8(y, j, live, e, 0);
#endif
        s8 += e;
    }
    const float s = loss_sum8(s8);
    for (int j = 0; j < live; j += 8) {
#if CLT_STORAGE == 32
        const float8 e = loss_load8(y, j, live, 0.0f);
#else
        const float8 e = exp_nonpos8(loss_load8(x, j, live, -INFINITY) - m);
#endif
        loss_store8(y, j, live, e / s, 0);
    }
    for (int j = live; j < cols; j++)
        STORE(y, j, 0.0f);
}

/* dx[r, j] (+)= y[r, j] * (dy[r, j] - sum_k dy[r, k] * y[r, k]), y the softmax output, the
 * sum over the live columns k in increasing order; masked columns get 0. One work-item per
 * row, as the forward. dx may be dy (in place). */
__kernel void softmax_backward(int rows, int cols, int causal, __global const store_t *y,
                               int y_off,                              /* [rows, cols] */
                               __global const store_t *dy, int dy_off, /* [rows, cols] */
                               __global store_t *dx, int dx_off,       /* [rows, cols] */
                               int accumulate)
{
    const int row = get_global_id(0);
    if (row >= rows)
        return;
    const int live = softmax_live(row, cols, causal);
    y += y_off + (size_t)row * cols;
    dy += dy_off + (size_t)row * cols;
    dx += dx_off + (size_t)row * cols;
    /* 8 columns at a time through VLOAD8 / VSTORE8 (16-bit elements converted 8 at a time, not
     * one by one), the dot product still summed in column order, then the last columns one by
     * one: the same values as a column at a time. The zeros past a causal row's live columns
     * go one by one (an 8-wide form of that loop crashed PoCL 3.1's compiler in fp16). */
    float dot = 0.0f;
    int j = 0;
    for (; j + 8 <= live; j += 8) {
        const float8 p = VLOAD8(0, dy + j) * VLOAD8(0, y + j);
        dot += p.s0;
        dot += p.s1;
        dot += p.s2;
        dot += p.s3;
        dot += p.s4;
        dot += p.s5;
        dot += p.s6;
        dot += p.s7;
    }
    for (; j < live; j++)
        dot += LOAD(dy, j) * LOAD(y, j);
    for (j = 0; j + 8 <= live; j += 8) {
        const float8 v = VLOAD8(0, y + j) * (VLOAD8(0, dy + j) - dot);
        VSTORE8(accumulate ? VLOAD8(0, dx + j) + v : v, 0, dx + j);
    }
    for (; j < live; j++)
        loss_store(dx, j, LOAD(y, j) * (LOAD(dy, j) - dot), accumulate);
    for (; j < cols; j++)
        loss_store(dx, j, 0.0f, accumulate);
}

/* y[r, j] = (x[r, j] - max_r) - log(sum_k exp(x[r, k] - max_r)). One group per row. */
__kernel void log_softmax_forward(int rows, int cols, __global const store_t *x,
                                  int x_off,                      /* [rows, cols] */
                                  __global store_t *y, int y_off) /* [rows, cols] */
{
    __local float part[LANES];
    const int row = get_group_id(0);
    if (row >= rows)
        return;
    x += x_off + (size_t)row * cols;
    y += y_off + (size_t)row * cols;
    const float m = loss_row_max(x, cols, part);
    const float log_s = log(loss_row_sum_exp(x, cols, m, part));
    for (int j0 = 0; j0 < cols; j0 += get_local_size(0)) {
        const int j = j0 + get_local_id(0);
        if (j < cols)
            STORE(y, j, (LOAD(x, j) - m) - log_s);
    }
}

/* dx[r, j] (+)= dy[r, j] - exp(y[r, j]) * sum_k dy[r, k], y the log-softmax output. */
__kernel void log_softmax_backward(int rows, int cols, __global const store_t *y,
                                   int y_off,                              /* [rows, cols] */
                                   __global const store_t *dy, int dy_off, /* [rows, cols] */
                                   __global store_t *dx, int dx_off,       /* [rows, cols] */
                                   int accumulate)
{
    __local float part[LANES];
    const int row = get_group_id(0);
    if (row >= rows)
        return;
    y += y_off + (size_t)row * cols;
    dy += dy_off + (size_t)row * cols;
    dx += dx_off + (size_t)row * cols;
    const float sum_dy = loss_row_sum_shifted(dy, cols, 0.0f, part);
    for (int j0 = 0; j0 < cols; j0 += get_local_size(0)) {
        const int j = j0 + get_local_id(0);
        if (j < cols)
            loss_store(dx, j, LOAD(dy, j) - exp(LOAD(y, j)) * sum_dy, accumulate);
    }
}

/* ---- Cross-entropy with integer labels --------------------------------------------------- */

/* A row counts when its label is a class; ignore_index and labels outside [0, classes) do
 * not, and no kernel indexes with them. */
int loss_label_counts(int label, int classes, int ignore_index)
{
    return label != ignore_index && label >= 0 && label < classes;
}

/* Per row r, with z = logits[r, :] - max_r and log_s = log sum_j exp(z_j):
 *     ws[r] = log_s - (1 - eps) z[label] - eps * mean_j z_j     (0 when the row is ignored),
 * the cross-entropy of the row against (1 - eps) onehot(label) + eps / classes; and
 * ws[rows + r] = max_r, ws[2 rows + r] = log_s for the backward. One work-item per row,
 * walking it by 8 lanes as softmax_forward does. */
__kernel void cross_entropy_rows(int rows, int classes, __global const store_t *logits,
                                 int logits_off,                             /* [rows, classes] */
                                 __global const int *labels, int labels_off, /* [rows] */
                                 int ignore_index, float smoothing, __global float *ws,
                                 int ws_off) /* [3 rows + 1] */
{
    const int row = get_global_id(0);
    if (row >= rows)
        return;
    logits += logits_off + (size_t)row * classes;
    ws += ws_off;
    const int label = labels[labels_off + row];
    float8 m8 = (float8)(-INFINITY);
    for (int j = 0; j < classes; j += 8) {
        const float8 v = loss_load8(logits, j, classes, -INFINITY);
        m8 = select(m8, v, v > m8); /* NaN never wins */
    }
    const float m = loss_max8(m8);
    float8 s8 = (float8)(0.0f);
    for (int j = 0; j < classes; j += 8)
        s8 += exp_nonpos8(loss_load8(logits, j, classes, -INFINITY) - m);
    const float log_s = log(loss_sum8(s8));
    float mean_z = 0.0f;
    if (smoothing != 0.0f) {
        /* Past the end the load reads m, so z is 0 there. */
        float8 z8 = (float8)(0.0f);
        for (int j = 0; j < classes; j += 8)
            z8 += loss_load8(logits, j, classes, m) - m;
        mean_z = loss_sum8(z8) / (float)classes;
    }
    float loss = 0.0f;
    if (loss_label_counts(label, classes, ignore_index))
        loss = log_s - (1.0f - smoothing) * (LOAD(logits, label) - m) - smoothing * mean_z;
    ws[row] = loss;
    ws[rows + row] = m;
    ws[2 * rows + row] = log_s;
}

/* count = number of counted rows; loss[0] = sum_r ws[r] / count (0 when count is 0);
 * ws[3 rows] = count. One work-group in all. */
__kernel void cross_entropy_finish(int rows, int classes, __global const int *labels,
                                   int labels_off, /* [rows] */
                                   int ignore_index, __global float *ws,
                                   int ws_off,                         /* [3 rows + 1] */
                                   __global float *loss, int loss_off) /* [1] */
{
    __local float part[LANES];
    __local int count_part[LANES];
    if (get_group_id(0) != 0)
        return;
    labels += labels_off;
    ws += ws_off;
    for (int p = get_local_id(0); p < LANES; p += get_local_size(0)) {
        float acc = 0.0f;
        int count = 0;
        for (int r = p; r < rows; r += LANES) {
            acc += ws[r];
            count += loss_label_counts(labels[r], classes, ignore_index);
        }
        part[p] = acc;
        count_part[p] = count;
    }
    const float total = loss_tree(part, LOSS_SUM);
    const int count = loss_tree_sum_int(count_part);
    if (get_local_id(0) == 0) {
        ws[3 * rows] = (float)count;
        loss[loss_off] = count > 0 ? total / (float)count : 0.0f;
    }
}

/* dlogits[r, j] (+)= (softmax(logits)[r, j] - target[r, j]) * dloss / count for counted rows,
 * target = (1 - eps) onehot(label) + eps / classes; 0 for ignored rows. Reads max, log_s and
 * count from the workspace the forward filled. One work-item per row, 8 columns at a time. */
__kernel void cross_entropy_backward(int rows, int classes, __global const store_t *logits,
                                     int logits_off, /* [rows, classes] */
                                     __global const int *labels, int labels_off, /* [rows] */
                                     int ignore_index, float smoothing, __global const float *ws,
                                     int ws_off,                                 /* [3 rows + 1] */
                                     __global const float *dloss, int dloss_off, /* [1] */
                                     __global store_t *dlogits,
                                     int dlogits_off, /* [rows, classes] */
                                     int accumulate)
{
    const int row = get_global_id(0);
    if (row >= rows)
        return;
    const int label = labels[labels_off + row];
    logits += logits_off + (size_t)row * classes;
    dlogits += dlogits_off + (size_t)row * classes;
    ws += ws_off;
    if (!loss_label_counts(label, classes, ignore_index)) {
        for (int j = 0; j < classes; j += 8)
            loss_store8(dlogits, j, classes, (float8)(0.0f), accumulate);
        return;
    }
    const float m = ws[rows + row], log_s = ws[2 * rows + row];
    const float scale = dloss[dloss_off] / ws[3 * rows];
    const float8 base = (float8)(smoothing / (float)classes);
    for (int j = 0; j < classes; j += 8) {
        /* Past the end the load reads m: an exp of -log_s <= 0, never stored. */
        const float8 p = exp_nonpos8((loss_load8(logits, j, classes, m) - m) - log_s);
        const int8 hit = (int8)(j) + (int8)(0, 1, 2, 3, 4, 5, 6, 7) == (int8)(label);
        const float8 target = select(base, base + (1.0f - smoothing), hit);
        loss_store8(dlogits, j, classes, (p - target) * scale, accumulate);
    }
}

/* ---- Mean squared error ------------------------------------------------------------------ */

/* ws[b] = sum of (x[i] - target[i])^2 over i in [b block_size, (b + 1) block_size). One
 * group per block. */
__kernel void mse_partial(int n, int block_size, __global const store_t *x, int x_off, /* [n] */
                          __global const store_t *target, int target_off,              /* [n] */
                          __global float *ws, int ws_off) /* [blocks] */
{
    __local float part[LANES];
    const int block = get_group_id(0);
    const int start = block * block_size;
    if (start >= n)
        return;
    x += x_off;
    target += target_off;
    for (int p = get_local_id(0); p < LANES; p += get_local_size(0)) {
        float acc = 0.0f;
        for (int i = start + p; i < start + block_size && i < n; i += LANES) {
            const float d = LOAD(x, i) - LOAD(target, i);
            acc += d * d;
        }
        part[p] = acc;
    }
    const float total = loss_tree(part, LOSS_SUM);
    if (get_local_id(0) == 0)
        ws[ws_off + block] = total;
}

/* loss[0] = sum_b ws[b] / n over the ceil(n / block_size) partials (0 when n is 0). One
 * work-group in all. */
__kernel void mse_finish(int n, int block_size, __global const float *ws, int ws_off, /* [blocks] */
                         __global float *loss, int loss_off)                          /* [1] */
{
    __local float part[LANES];
    if (get_group_id(0) != 0)
        return;
    const int blocks = n / block_size + (n % block_size != 0);
    ws += ws_off;
    for (int p = get_local_id(0); p < LANES; p += get_local_size(0)) {
        float acc = 0.0f;
        for (int b = p; b < blocks; b += LANES)
            acc += ws[b];
        part[p] = acc;
    }
    const float total = loss_tree(part, LOSS_SUM);
    if (get_local_id(0) == 0)
        loss[loss_off] = n > 0 ? total / (float)n : 0.0f;
}

/* dx[i] (+)= 2 (x[i] - target[i]) * dloss / n. One work-item per element. */
__kernel void mse_backward(int n, __global const store_t *x, int x_off,    /* [n] */
                           __global const store_t *target, int target_off, /* [n] */
                           __global const float *dloss, int dloss_off,     /* [1] */
                           __global store_t *dx, int dx_off,               /* [n] */
                           int accumulate)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float scale = 2.0f * dloss[dloss_off] / (float)n;
    loss_store(dx + dx_off, i, (LOAD(x, x_off + i) - LOAD(target, target_off + i)) * scale,
               accumulate);
}
