/*
 * norm.cl: batch normalization and layer normalization, forward and backward.
 *
 * Batch norm normalizes each channel over the batch and the spatial positions:
 *     x, y, dx, dy  [n, c, s]  (s = height * width; s = 1 for features [n, c]);
 *                              element (b, ch, t) at b * c * s + ch * s + t
 *     gamma, beta, mean, inv_std, running_mean, running_var, dgamma, dbeta  [c]
 *     m = n * s values per channel
 *     y = (x - mean) * inv_std * gamma + beta,  inv_std = 1 / sqrt(var + eps)
 * Training mode takes mean and the biased variance of the batch (two launches: statistics
 * of fixed chunks, then one work-item per channel combining them in chunk order); inference
 * mode takes running_mean and running_var. The backward of training mode is, with
 * xhat = (x - mean) * inv_std,
 *     dbeta  = sum dy,   dgamma = sum dy * xhat          (sums over the m values of a channel)
 *     dx     = gamma * inv_std * (dy - dbeta / m - xhat * dgamma / m)
 * and of inference mode dx = dy * gamma / sqrt(running_var + eps).
 *
 * Layer norm normalizes each row of x [rows, d] over its d values:
 *     x, y, dx, dy  [rows, d];  gamma, beta, dgamma, dbeta  [d];  mean, rstd  [rows]
 *     y = (x - mean) * rstd * gamma + beta,  rstd = 1 / sqrt(var + eps)
 *     dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = gamma * dy (means over the row)
 *     dgamma = sum over rows of dy * xhat,  dbeta = sum over rows of dy
 *
 * Work-items and reduction order (nothing depends on the work-group size). The batch norm
 * kernels run over 3-D NDRanges, so no work-item divides to find its element. A chunk
 * (g, ch, k) of channel ch holds rows b = k * rows .. (k + 1) * rows - 1 (the last k may hold
 * fewer) at positions t = g * seg .. (g + 1) * seg - 1 (the last g may hold fewer), walked
 * b by b, each row a unit-stride run of t summed into 8 lanes and a tail, added in a fixed
 * tree at the end (bn_lanes_sum below); partials are [2, c, nchunks, nseg], chunk
 * (g, ch, k) at (ch * nchunks + k) * nseg + g. The launcher fixes seg and rows from s alone:
 *     batchnorm_stats             (g, ch, k): shifted two-pass mean and M2 of its chunk
 *     batchnorm_stats_combine     one per channel: merges the chunks in (k, g) order
 *                                 (Chan et al.), writes mean, inv_std, updates running stats
 *     batchnorm_forward           (lane, ch, b): positions lane, lane + lanes, ... of a row
 *                                 (lanes = get_global_size(0): 1 on CPU devices, so that the
 *                                 work-item walks the row with unit stride, engine/ops/pool.h)
 *     batchnorm_backward_partial  (g, ch, k): sums of dy and dy * (x - mean) over its chunk
 *     batchnorm_backward_combine  one per channel: adds the chunk sums in (k, g) order
 *     batchnorm_backward          (lane, ch, b): dx, rows as in batchnorm_forward
 *     batchnorm_backward_inference (lane, ch, b): dx in inference mode, rows likewise
 *     layernorm_forward           one per row: shifted two-pass statistics, then y
 *     layernorm_backward          one per row: the two row sums, then dx
 *                                 (both walk the row by 8 lanes, see "Layer norm rows")
 *     layernorm_param_partial     one per (chunk of `chunk` rows, 8 columns): sums over its rows
 *     layernorm_param_combine     one per column: adds the chunk sums in increasing order
 * The chunk sizes are kernel arguments fixed by the launchers (engine/ops/norm.c), not
 * tunables: results are the same on every device.
 *
 * Every tensor is a __global pointer plus an element offset. An optional output (dgamma,
 * dbeta, running statistics) may be a NULL buffer: the kernel then skips it. `accumulate`
 * non-zero adds to a gradient instead of overwriting it; the combine kernels take `acc`,
 * whose CLT__NORM_ACC_DGAMMA and CLT__NORM_ACC_DBETA bits (cl/shared.h) add to dgamma and
 * dbeta.
 *
 * Storage (cl/common.cl, docs/precision.md): x, y, dy, dx, gamma, beta, dgamma and dbeta are
 * store_t (fp32, fp16 or bf16 by the program's build), read with LOAD / VLOAD8 and written
 * with STORE / VSTORE8; mean, inv_std, rstd (aux), running_mean and running_var (state) and
 * the workspace's partials stay float. Every sum and every product is in float registers and
 * each output element is rounded to the storage once (an accumulated gradient: its old value
 * widened, the new term added in float, rounded once).
 *
 * Tunables: none.
 */

/* ==== Batch norm ======================================================================== */

/* The batch norm chunk sums (batchnorm_stats, batchnorm_backward_partial) run in a fixed
 * order that a CPU vectorizes: each row's run of the chunk in steps of 8 positions into 8
 * lanes (lane j takes the positions t0 + j, t0 + j + 8, ... of every row, in row order), the
 * run's last (t1 - t0) % 8 positions into one more sum, and at the end
 *     ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) + tail. */
float bn_lanes_sum(float8 v, float tail)
{
    return ((v.s0 + v.s1) + (v.s2 + v.s3)) + ((v.s4 + v.s5) + (v.s6 + v.s7)) + tail;
}

/* Statistics of one chunk of one channel, relative to the shift x[0, ch, 0]: the mean of
 * (x - shift) over the chunk and M2, the sum of squared deviations from that mean. Both
 * passes read the chunk; the shift keeps the first sum free of a large common offset. */
__kernel void batchnorm_stats(int n, int c, int s, int rows, int nchunks, int seg, int nseg,
                              __global const store_t *x, int x_off, /* [n, c, s] */
                              __global float *part, int part_off)   /* [2, c, nchunks, nseg] */
{
    const int g = get_global_id(0), ch = get_global_id(1), k = get_global_id(2);
    if (g >= nseg || ch >= c || k >= nchunks)
        return;
    const int stride = c * s; /* from (b, ch, t) to (b + 1, ch, t) */
    const int b0 = k * rows, b1 = min(n, b0 + rows);
    const int t0 = g * seg, t1 = min(s, t0 + seg), len = t1 - t0, body = len & ~7;
    x += x_off + ch * s;
    const float shift = LOAD(x, 0);
    float8 acc = (float8)(0.0f);
    float tail = 0.0f;
    for (int b = b0; b < b1; b++) {
        __global const store_t *r = x + b * stride + t0;
        for (int t = 0; t < body; t += 8)
            acc += VLOAD8(0, r + t) - shift;
        for (int t = body; t < len; t++)
            tail += LOAD(r, t) - shift;
    }
    const float mu = bn_lanes_sum(acc, tail) / (float)((b1 - b0) * len);
    acc = (float8)(0.0f);
    tail = 0.0f;
    for (int b = b0; b < b1; b++) {
        __global const store_t *r = x + b * stride + t0;
        for (int t = 0; t < body; t += 8) {
            const float8 d = (VLOAD8(0, r + t) - shift) - mu;
            acc += d * d;
        }
        for (int t = body; t < len; t++) {
            const float d = (LOAD(r, t) - shift) - mu;
            tail += d * d;
        }
    }
    const float m2 = bn_lanes_sum(acc, tail);
    const int i = (ch * nchunks + k) * nseg + g;
    part += part_off;
    part[i] = mu;
    part[c * nchunks * nseg + i] = m2;
}

/* Merges the chunks of one channel in (k, g) order into the batch mean and biased
 * variance; writes mean and inv_std and, when running_mean is not NULL, moves the running
 * statistics towards the batch's (running_var towards the unbiased variance; the launcher
 * refuses m == 1 then). */
__kernel void batchnorm_stats_combine(int n, int c, int s, int rows, int nchunks, int seg, int nseg,
                                      float eps, float momentum, __global const store_t *x,
                                      int x_off, /* [n, c, s] */
                                      __global const float *part,
                                      int part_off, /* [2, c, nchunks, nseg] */
                                      __global float *mean, int mean_off,       /* [c] */
                                      __global float *inv_std, int inv_std_off, /* [c] */
                                      __global float *running_mean, int rm_off, /* [c] or NULL */
                                      __global float *running_var, int rv_off)  /* [c] or NULL */
{
    const int ch = get_global_id(0);
    if (ch >= c)
        return;
    const int m = n * s, plane = nchunks * nseg;
    part += part_off + ch * plane;
    float count = 0.0f, mu = 0.0f, m2 = 0.0f;
    for (int k = 0; k < nchunks; k++) {
        const int rows_k = min(rows, n - k * rows);
        for (int g = 0; g < nseg; g++) {
            const float count_k = (float)(rows_k * min(seg, s - g * seg));
            const float total = count + count_k;
            const float delta = part[k * nseg + g] - mu;
            mu += delta * (count_k / total);
            m2 += part[c * plane + k * nseg + g] + delta * delta * (count * (count_k / total));
            count = total;
        }
    }
    const float batch_mean = LOAD(x, x_off + ch * s) + mu;
    const float var = m2 / (float)m;
    mean[mean_off + ch] = batch_mean;
    inv_std[inv_std_off + ch] = rsqrt(var + eps);
    if (running_mean) {
        const float unbiased = m2 / (float)(m - 1);
        const float keep = 1.0f - momentum;
        running_mean[rm_off + ch] = keep * running_mean[rm_off + ch] + momentum * batch_mean;
        running_var[rv_off + ch] = keep * running_var[rv_off + ch] + momentum * unbiased;
    }
}

/* y = (x - mean) * inv_std * gamma + beta. In training mode `stat` is the saved inv_std; in
 * inference mode (stat_is_var non-zero) mean and stat are the running mean and variance and
 * inv_std = 1 / sqrt(stat + eps). */
__kernel void batchnorm_forward(int n, int c, int s, float eps, int stat_is_var,
                                __global const store_t *x, int x_off,         /* [n, c, s] */
                                __global const float *mean, int mean_off,     /* [c] */
                                __global const float *stat, int stat_off,     /* [c] */
                                __global const store_t *gamma, int gamma_off, /* [c] */
                                __global const store_t *beta, int beta_off,   /* [c] */
                                __global store_t *y, int y_off)               /* [n, c, s] */
{
    const int lane = get_global_id(0), lanes = get_global_size(0);
    const int ch = get_global_id(1), b = get_global_id(2);
    if (ch >= c || b >= n)
        return;
    const int row = (b * c + ch) * s;
    const float v = stat[stat_off + ch];
    const float inv = stat_is_var ? rsqrt(v + eps) : v;
    const float mu = mean[mean_off + ch], ga = LOAD(gamma, gamma_off + ch);
    const float be = LOAD(beta, beta_off + ch);
    __global const store_t *xr = x + x_off + row;
    __global store_t *yr = y + y_off + row;
    for (int t = lane; t < s; t += lanes) {
        const float xhat = (LOAD(xr, t) - mu) * inv;
        STORE(yr, t, xhat * ga + be);
    }
}

/* Sums over one chunk of one channel: of dy, and of dy * (x - mean). */
__kernel void batchnorm_backward_partial(int n, int c, int s, int rows, int nchunks, int seg,
                                         int nseg, __global const store_t *x,
                                         int x_off,                                /* [n, c, s] */
                                         __global const store_t *dy, int dy_off,   /* [n, c, s] */
                                         __global const float *mean, int mean_off, /* [c] */
                                         __global float *part,
                                         int part_off) /* [2, c, nchunks, nseg] */
{
    const int g = get_global_id(0), ch = get_global_id(1), k = get_global_id(2);
    if (g >= nseg || ch >= c || k >= nchunks)
        return;
    const int stride = c * s;
    const int b0 = k * rows, b1 = min(n, b0 + rows);
    const int t0 = g * seg, t1 = min(s, t0 + seg);
    x += x_off + ch * s;
    dy += dy_off + ch * s;
    const float mu = mean[mean_off + ch];
    const int len = t1 - t0, body = len & ~7;
    float8 acc_dy = (float8)(0.0f), acc_dyx = (float8)(0.0f);
    float tail_dy = 0.0f, tail_dyx = 0.0f;
    for (int b = b0; b < b1; b++) {
        __global const store_t *xr = x + b * stride + t0, *gr = dy + b * stride + t0;
        for (int t = 0; t < body; t += 8) {
            const float8 d = VLOAD8(0, gr + t);
            acc_dy += d;
            acc_dyx += d * (VLOAD8(0, xr + t) - mu);
        }
        for (int t = body; t < len; t++) {
            const float d = LOAD(gr, t);
            tail_dy += d;
            tail_dyx += d * (LOAD(xr, t) - mu);
        }
    }
    const float sum_dy = bn_lanes_sum(acc_dy, tail_dy), sum_dyx = bn_lanes_sum(acc_dyx, tail_dyx);
    const int i = (ch * nchunks + k) * nseg + g;
    part += part_off;
    part[i] = sum_dy;
    part[c * nchunks * nseg + i] = sum_dyx;
}

/* Adds the chunk sums of one channel in (k, g) order: dbeta = sum dy, dgamma =
 * sum dy * xhat (each skipped when NULL), and keeps dbeta / m and dgamma / m in `means` for
 * batchnorm_backward. */
__kernel void batchnorm_backward_combine(int n, int c, int s, int nchunks, int nseg, int acc,
                                         __global const float *part,
                                         int part_off, /* [2, c, nchunks, nseg] */
                                         __global const float *inv_std, int inv_std_off, /* [c] */
                                         __global float *means, int means_off,     /* [2, c] */
                                         __global store_t *dgamma, int dgamma_off, /* [c] or NULL */
                                         __global store_t *dbeta, int dbeta_off)   /* [c] or NULL */
{
    const int ch = get_global_id(0);
    if (ch >= c)
        return;
    const int plane = nchunks * nseg;
    part += part_off + ch * plane;
    float sum_dy = 0.0f, sum_dyx = 0.0f;
    for (int j = 0; j < plane; j++) {
        sum_dy += part[j];
        sum_dyx += part[c * plane + j];
    }
    const float sum_dyxhat = sum_dyx * inv_std[inv_std_off + ch];
    const float m = (float)(n * s);
    means[means_off + ch] = sum_dy / m;
    means[means_off + c + ch] = sum_dyxhat / m;
    if (dgamma)
        STORE(dgamma, dgamma_off + ch,
              (acc & CLT__NORM_ACC_DGAMMA) ? LOAD(dgamma, dgamma_off + ch) + sum_dyxhat
                                           : sum_dyxhat);
    if (dbeta)
        STORE(dbeta, dbeta_off + ch,
              (acc & CLT__NORM_ACC_DBETA) ? LOAD(dbeta, dbeta_off + ch) + sum_dy : sum_dy);
}

/* dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)). */
__kernel void batchnorm_backward(int n, int c, int s, int accumulate, __global const store_t *x,
                                 int x_off,                                      /* [n, c, s] */
                                 __global const store_t *dy, int dy_off,         /* [n, c, s] */
                                 __global const store_t *gamma, int gamma_off,   /* [c] */
                                 __global const float *mean, int mean_off,       /* [c] */
                                 __global const float *inv_std, int inv_std_off, /* [c] */
                                 __global const float *means, int means_off,     /* [2, c] */
                                 __global store_t *dx, int dx_off)               /* [n, c, s] */
{
    const int lane = get_global_id(0), lanes = get_global_size(0);
    const int ch = get_global_id(1), b = get_global_id(2);
    if (ch >= c || b >= n)
        return;
    const int row = (b * c + ch) * s;
    const float inv = inv_std[inv_std_off + ch], mu = mean[mean_off + ch];
    const float mean_dy = means[means_off + ch], mean_dyxhat = means[means_off + c + ch];
    const float scale = LOAD(gamma, gamma_off + ch) * inv;
    __global const store_t *xr = x + x_off + row, *gr = dy + dy_off + row;
    __global store_t *dr = dx + dx_off + row;
    if (accumulate) {
        for (int t = lane; t < s; t += lanes) {
            const float xhat = (LOAD(xr, t) - mu) * inv;
            STORE(dr, t, LOAD(dr, t) + scale * (LOAD(gr, t) - mean_dy - xhat * mean_dyxhat));
        }
    } else {
        for (int t = lane; t < s; t += lanes) {
            const float xhat = (LOAD(xr, t) - mu) * inv;
            STORE(dr, t, scale * (LOAD(gr, t) - mean_dy - xhat * mean_dyxhat));
        }
    }
}

/* Inference mode: dx = dy * gamma / sqrt(running_var + eps). */
__kernel void batchnorm_backward_inference(int n, int c, int s, float eps, int accumulate,
                                           __global const store_t *dy, int dy_off, /* [n, c, s] */
                                           __global const store_t *gamma, int gamma_off, /* [c] */
                                           __global const float *var, int var_off,       /* [c] */
                                           __global store_t *dx, int dx_off) /* [n, c, s] */
{
    const int lane = get_global_id(0), lanes = get_global_size(0);
    const int ch = get_global_id(1), b = get_global_id(2);
    if (ch >= c || b >= n)
        return;
    const int row = (b * c + ch) * s;
    const float scale = LOAD(gamma, gamma_off + ch) * rsqrt(var[var_off + ch] + eps);
    __global const store_t *gr = dy + dy_off + row;
    __global store_t *dr = dx + dx_off + row;
    if (accumulate) {
        for (int t = lane; t < s; t += lanes)
            STORE(dr, t, LOAD(dr, t) + LOAD(gr, t) * scale);
    } else {
        for (int t = lane; t < s; t += lanes)
            STORE(dr, t, LOAD(gr, t) * scale);
    }
}

/* ==== Layer norm ======================================================================== */

/* Layer norm rows by 8 lanes: layernorm_forward and layernorm_backward walk a row 8 columns at
 * a time in float8, lane l summing the columns j with j % 8 == l in increasing j; the lanes
 * are combined as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). The order depends on
 * nothing but d; CPU devices run the float8 operations as vector instructions (PoCL does not
 * vectorize a per-work-item loop across work-items). */

/* Which of the columns j .. j + 7 are below n. */
int8 ln_live8(int j, int n)
{
    return (int8)(j) + (int8)(0, 1, 2, 3, 4, 5, 6, 7) < (int8)(n);
}

/* Columns j .. j + 7 of a row of n, those past the end read as 0. */
float8 ln_load8(__global const store_t *x, int j, int n)
{
    if (j + 8 <= n)
        return VLOAD8(0, x + j);
    float a[8];
    for (int l = 0; l < 8; l++)
        a[l] = j + l < n ? LOAD(x, j + l) : 0.0f;
    return vload8(0, a);
}

/* Writes the lanes of v whose column is below n (added to the row when accumulate). */
void ln_store8(__global store_t *y, int j, int n, float8 v, int accumulate)
{
    if (j + 8 <= n) {
        VSTORE8(accumulate ? VLOAD8(0, y + j) + v : v, 0, y + j);
        return;
    }
    float a[8];
    vstore8(v, 0, a);
    for (int l = 0; l < 8 && j + l < n; l++)
        STORE(y, j + l, accumulate ? LOAD(y, j + l) + a[l] : a[l]);
}

float ln_sum8(float8 v)
{
    return ((v.s0 + v.s1) + (v.s2 + v.s3)) + ((v.s4 + v.s5) + (v.s6 + v.s7));
}

/* One row: the mean and M2 relative to the shift x[0] (two passes, by lanes), then
 * y = (x - mean) * rstd * gamma + beta. */
__kernel void layernorm_forward(int rows, int d, float eps, __global const store_t *x,
                                int x_off,                                    /* [rows, d] */
                                __global const store_t *gamma, int gamma_off, /* [d] */
                                __global const store_t *beta, int beta_off,   /* [d] */
                                __global store_t *y, int y_off,               /* [rows, d] */
                                __global float *mean, int mean_off,           /* [rows] */
                                __global float *rstd, int rstd_off)           /* [rows] */
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    x += x_off + r * d;
    y += y_off + r * d;
    gamma += gamma_off;
    beta += beta_off;
    const float shift = LOAD(x, 0);
    float8 sum8 = (float8)(0.0f);
    for (int j = 0; j < d; j += 8)
        sum8 += select((float8)(0.0f), ln_load8(x, j, d) - shift, ln_live8(j, d));
    const float mu = ln_sum8(sum8) / (float)d;
    float8 m8 = (float8)(0.0f);
    for (int j = 0; j < d; j += 8) {
        const float8 dev = (ln_load8(x, j, d) - shift) - mu;
        m8 += select((float8)(0.0f), dev * dev, ln_live8(j, d));
    }
    const float row_mean = shift + mu;
    const float inv = rsqrt(ln_sum8(m8) / (float)d + eps);
    mean[mean_off + r] = row_mean;
    rstd[rstd_off + r] = inv;
    for (int j = 0; j < d; j += 8)
        ln_store8(
            y, j, d,
            (ln_load8(x, j, d) - row_mean) * inv * ln_load8(gamma, j, d) + ln_load8(beta, j, d), 0);
}

/* One row: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = gamma * dy, the two row
 * sums by lanes. */
__kernel void layernorm_backward(int rows, int d, int accumulate, __global const store_t *x,
                                 int x_off,                                    /* [rows, d] */
                                 __global const store_t *dy, int dy_off,       /* [rows, d] */
                                 __global const store_t *gamma, int gamma_off, /* [d] */
                                 __global const float *mean, int mean_off,     /* [rows] */
                                 __global const float *rstd, int rstd_off,     /* [rows] */
                                 __global store_t *dx, int dx_off)             /* [rows, d] */
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    x += x_off + r * d;
    dy += dy_off + r * d;
    dx += dx_off + r * d;
    gamma += gamma_off;
    const float mu = mean[mean_off + r], inv = rstd[rstd_off + r];
    float8 g8 = (float8)(0.0f), gx8 = (float8)(0.0f);
    for (int j = 0; j < d; j += 8) {
        /* Past the end gamma and dy read 0, so g is 0 there and adds nothing. */
        const float8 g = ln_load8(gamma, j, d) * ln_load8(dy, j, d);
        g8 += g;
        gx8 += g * ((ln_load8(x, j, d) - mu) * inv);
    }
    const float mean_g = ln_sum8(g8) / (float)d, mean_gx = ln_sum8(gx8) / (float)d;
    for (int j = 0; j < d; j += 8) {
        const float8 xhat = (ln_load8(x, j, d) - mu) * inv;
        const float8 v =
            inv * (ln_load8(gamma, j, d) * ln_load8(dy, j, d) - mean_g - xhat * mean_gx);
        ln_store8(dx, j, d, v, accumulate);
    }
}

/* Sums over rows k * chunk .. (k + 1) * chunk - 1 of eight columns j .. j + 7 (those below d):
 * of dy * xhat and of dy, each column's in row order. Eight columns a work-item through
 * VLOAD8 (in fp16 the vector conversion): at 1024 x 128 on PoCL, 415 -> 180 us in fp32,
 * 1003 -> 166 in fp16, 393 -> 165 in bf16, against one column a work-item. */
__kernel void layernorm_param_partial(int rows, int d, int chunk, int nchunks,
                                      __global const store_t *x, int x_off,     /* [rows, d] */
                                      __global const store_t *dy, int dy_off,   /* [rows, d] */
                                      __global const float *mean, int mean_off, /* [rows] */
                                      __global const float *rstd, int rstd_off, /* [rows] */
                                      __global float *part, int part_off) /* [2, nchunks, d] */
{
    const int i = get_global_id(0), d8 = (d + 7) / 8;
    if (i >= nchunks * d8)
        return;
    const int k = i / d8, j = 8 * (i - k * d8);
    const int r1 = min(rows, (k + 1) * chunk);
    float8 sum_dyxhat = (float8)(0.0f), sum_dy = (float8)(0.0f);
    for (int r = k * chunk; r < r1; r++) {
        const float8 g = ln_load8(dy + dy_off + r * d, j, d);
        const float8 xhat =
            (ln_load8(x + x_off + r * d, j, d) - mean[mean_off + r]) * rstd[rstd_off + r];
        sum_dyxhat += g * xhat;
        sum_dy += g;
    }
    part += part_off + k * d + j;
    if (j + 8 <= d) {
        vstore8(sum_dyxhat, 0, part);
        vstore8(sum_dy, 0, part + nchunks * d);
        return;
    }
    float a[8], b[8];
    vstore8(sum_dyxhat, 0, a);
    vstore8(sum_dy, 0, b);
    for (int l = 0; j + l < d; l++) {
        part[l] = a[l];
        part[nchunks * d + l] = b[l];
    }
}

/* Adds the chunk sums of one column in increasing order into dgamma and dbeta (each
 * skipped when NULL). */
__kernel void layernorm_param_combine(int d, int nchunks, int acc, __global const float *part,
                                      int part_off, /* [2, nchunks, d] */
                                      __global store_t *dgamma, int dgamma_off, /* [d] or NULL */
                                      __global store_t *dbeta, int dbeta_off)   /* [d] or NULL */
{
    const int j = get_global_id(0);
    if (j >= d)
        return;
    part += part_off;
    float sum_dyxhat = 0.0f, sum_dy = 0.0f;
    for (int k = 0; k < nchunks; k++) {
        sum_dyxhat += part[k * d + j];
        sum_dy += part[(nchunks + k) * d + j];
    }
    if (dgamma)
        STORE(dgamma, dgamma_off + j,
              (acc & CLT__NORM_ACC_DGAMMA) ? LOAD(dgamma, dgamma_off + j) + sum_dyxhat
                                           : sum_dyxhat);
    if (dbeta)
        STORE(dbeta, dbeta_off + j,
              (acc & CLT__NORM_ACC_DBETA) ? LOAD(dbeta, dbeta_off + j) + sum_dy : sum_dy);
}
