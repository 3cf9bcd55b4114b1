/*
 * elementwise.cl: basic tensor arithmetic, sums and the bias of the linear layer.
 *
 *   fill_forward        y = value
 *   copy_forward        y = x
 *   copy_backward       dx (+)= dy          (also the backward of add and of bias for x)
 *   axpy_forward        y += alpha * x      (fused: one rounding)
 *   add_forward         y = a + b
 *   mul_forward         y = a * b
 *   mul_backward        dx (+)= dy * other  (da with other = b, db with other = a)
 *   scale_forward       y = alpha * x
 *   scale_backward      dx (+)= alpha * dy
 *   bias_forward        y[r, c] = x[r, c] + bias[c]
 *   bias_backward       dbias[c] (+)= sum over r of dy[r, c]
 *   mul_broadcast_forward     y[r, c] = x[r, c] * s[c]
 *   mul_broadcast_backward_x  dx[r, c] (+)= dy[r, c] * s[c]
 *   mul_broadcast_backward_s  ds[c] (+)= sum over r of dy[r, c] * x[r, c]
 *   sub_forward         y = a - b
 *   broadcast_forward   y = a op b (op: CLT__CL_BINARY_ADD, _SUB, _MUL), a and b stretched
 *                       along the axes they lack (numpy broadcasting, see below)
 *   broadcast_backward  dx[j, p] (+)= sign * sum over the p-th `chunk` of the `count`
 *                       outputs i that read x[j] of dy[i] (times other at i when
 *                       `product`): the gradient of either input, or its partial sums
 *   sum_rows_forward    y[r] = (sum over c of x[r, c]) / divisor
 *   sum_backward        dx[r, c] (+)= dy[r] / divisor
 *   sum_partials        part[j] = sum of x[j], x[j + parts], x[j + 2 parts], ... (< n)
 *   sum_finish          y[0] = (sum of x[0..n)) / divisor
 * divisor is 1 for sums and the number of summed elements for means. The full sum of n
 * elements runs sum_partials with parts = ceil(n / 256) as often as needed to bring the
 * count to 256 or fewer, then sum_finish; the launcher owns that constant.
 *
 * Buffers: every tensor is dense, row-major float, passed as a __global pointer and an int
 * element offset (x, x_off). Elementwise tensors have n elements; bias, broadcast products
 * and row reductions see x as [rows, cols], bias, s and their gradients as [cols], row sums
 * and their dy as [rows]. An
 * elementwise output may be the same memory as an input (same offset): each work-item
 * reads its element before writing it.
 *
 * Broadcasts: the output's axes, merged where neighbours are stretched alike and without
 * its axes of size 1, arrive innermost first as s0..s5 (ndim of them, at most
 * CLT__CL_BROADCAST_DIMS); bit d of a mask (amask, bmask; xmask for the gradient's input,
 * omask for the other one) is set when that input has axis d and clear when it is stretched
 * along it. Each input is dense over the axes it has, so its offsets follow from s and its
 * mask; the output is dense over all of them. broadcast_backward enumerates the `count`
 * outputs of an element of x in a fixed order (the stretched axes, innermost fastest) and
 * sums the `chunk` of them numbered from p * chunk on; with parts = 1 and chunk = count it
 * is the whole gradient, else the launcher reduces the [nx, parts] partials in further
 * rounds (x stretched along parts) until one part is left. No work-item loops more than
 * 256 * (1 + ndim) times, far below llvmpipe's 65 535 iterations per invocation, shared by
 * all its loops, past which it ends them.
 *
 * Work-items (1-D, any work-group size; items past the real size return at once):
 *   elementwise ops, bias_forward, sum_backward,
 *   mul_broadcast_forward and _backward_x         one per output element
 *   sum_rows_forward                              one per row, walking its columns in order
 *   bias_backward, mul_broadcast_backward_s       one per column, walking the rows in order
 *   sub_forward, broadcast_forward                one per output element
 *   broadcast_backward                            one per element of dx [nx, parts]
 *   sum_partials                                  one per partial sum
 *   sum_finish                                    one, the first
 *
 * Sums use Neumaier's compensated summation in a fixed order, so a result depends only on
 * the data and the shape, never on the launch shape, and its error stays within a few ulp
 * of the sum of absolute values instead of growing with the length.
 *
 * Backward kernels take `accumulate`: 0 writes dx without reading it, 1 adds to it.
 *
 * Tunables: none.
 */

/* One step of Neumaier's compensated sum: acc.x is the running sum, acc.y the low-order
 * part that rounding dropped from it. Exact while no term exceeds the float range. */
float2 sum_add(float2 acc, float v)
{
    const float t = acc.x + v;
    if (fabs(acc.x) >= fabs(v))
        acc.y += (acc.x - t) + v;
    else
        acc.y += (v - t) + acc.x;
    acc.x = t;
    return acc;
}

/* The value of a compensated sum. An infinite running sum is the answer as it stands: its
 * compensation is NaN. */
float sum_value(float2 acc)
{
    return isinf(acc.x) ? acc.x : acc.x + acc.y;
}

/* The compensated sum of x[0], x[stride], ..., x[(count - 1) stride], in that order. */
float sum_strided(__global const float *x, int count, int stride)
{
    float2 acc = (float2)(0.0f, 0.0f);
    for (int k = 0; k < count; k++)
        acc = sum_add(acc, x[k * stride]);
    return sum_value(acc);
}

/* Stores a gradient: overwrite, or add to what is there. */
void grad_store(__global float *dx, int i, int accumulate, float g)
{
    if (accumulate)
        dx[i] = dx[i] + g;
    else
        dx[i] = g;
}

/* Stores the gradient a * b: overwrite, or add it to what is there in one rounding. */
void grad_store_product(__global float *dx, int i, int accumulate, float a, float b)
{
    if (accumulate)
        dx[i] = fma(a, b, dx[i]);
    else
        dx[i] = a * b;
}

__kernel void fill_forward(int n, float value, __global float *y, int y_off) /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    y[y_off + i] = value;
}

__kernel void copy_forward(int n, __global const float *x, int x_off, /* [n] */
                           __global float *y, int y_off)              /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    y[y_off + i] = x[x_off + i];
}

__kernel void copy_backward(int n, int accumulate, __global const float *dy, int dy_off, /* [n] */
                            __global float *dx, int dx_off)                              /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    grad_store(dx + dx_off, i, accumulate, dy[dy_off + i]);
}

__kernel void axpy_forward(int n, float alpha, __global const float *x, int x_off, /* [n] */
                           __global float *y, int y_off)                           /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    y[y_off + i] = fma(alpha, x[x_off + i], y[y_off + i]);
}

__kernel void add_forward(int n, __global const float *a, int a_off, /* [n] */
                          __global const float *b, int b_off,        /* [n] */
                          __global float *y, int y_off)              /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    y[y_off + i] = a[a_off + i] + b[b_off + i];
}

__kernel void mul_forward(int n, __global const float *a, int a_off, /* [n] */
                          __global const float *b, int b_off,        /* [n] */
                          __global float *y, int y_off)              /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    y[y_off + i] = a[a_off + i] * b[b_off + i];
}

__kernel void mul_backward(int n, int accumulate, __global const float *dy, int dy_off, /* [n] */
                           __global const float *other, int other_off,                  /* [n] */
                           __global float *dx, int dx_off)                              /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    grad_store_product(dx + dx_off, i, accumulate, dy[dy_off + i], other[other_off + i]);
}

__kernel void scale_forward(int n, float alpha, __global const float *x, int x_off, /* [n] */
                            __global float *y, int y_off)                           /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    y[y_off + i] = alpha * x[x_off + i];
}

__kernel void scale_backward(int n, float alpha, int accumulate, __global const float *dy,
                             int dy_off,                     /* [n] */
                             __global float *dx, int dx_off) /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    grad_store_product(dx + dx_off, i, accumulate, alpha, dy[dy_off + i]);
}

__kernel void bias_forward(int rows, int cols, __global const float *x,
                           int x_off,                                /* [rows, cols] */
                           __global const float *bias, int bias_off, /* [cols] */
                           __global float *y, int y_off)             /* [rows, cols] */
{
    const int i = get_global_id(0);
    if (i >= rows * cols)
        return;
    y[y_off + i] = x[x_off + i] + bias[bias_off + i % cols];
}

__kernel void bias_backward(int rows, int cols, int accumulate, __global const float *dy,
                            int dy_off,                           /* [rows, cols] */
                            __global float *dbias, int dbias_off) /* [cols] */
{
    const int c = get_global_id(0);
    if (c >= cols)
        return;
    grad_store(dbias + dbias_off, c, accumulate, sum_strided(dy + dy_off + c, rows, cols));
}

__kernel void mul_broadcast_forward(int rows, int cols, __global const float *x,
                                    int x_off,                          /* [rows, cols] */
                                    __global const float *s, int s_off, /* [cols] */
                                    __global float *y, int y_off)       /* [rows, cols] */
{
    const int i = get_global_id(0);
    if (i >= rows * cols)
        return;
    y[y_off + i] = x[x_off + i] * s[s_off + i % cols];
}

__kernel void mul_broadcast_backward_x(int rows, int cols, int accumulate, __global const float *dy,
                                       int dy_off,                         /* [rows, cols] */
                                       __global const float *s, int s_off, /* [cols] */
                                       __global float *dx, int dx_off)     /* [rows, cols] */
{
    const int i = get_global_id(0);
    if (i >= rows * cols)
        return;
    grad_store_product(dx + dx_off, i, accumulate, dy[dy_off + i], s[s_off + i % cols]);
}

__kernel void mul_broadcast_backward_s(int rows, int cols, int accumulate, __global const float *dy,
                                       int dy_off,                         /* [rows, cols] */
                                       __global const float *x, int x_off, /* [rows, cols] */
                                       __global float *ds, int ds_off)     /* [cols] */
{
    const int c = get_global_id(0);
    if (c >= cols)
        return;
    float2 acc = (float2)(0.0f, 0.0f);
    for (int r = 0; r < rows; r++)
        acc = sum_add(acc, dy[dy_off + r * cols + c] * x[x_off + r * cols + c]);
    grad_store(ds + ds_off, c, accumulate, sum_value(acc));
}

__kernel void sub_forward(int n, __global const float *a, int a_off, /* [n] */
                          __global const float *b, int b_off,        /* [n] */
                          __global float *y, int y_off)              /* [n] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    y[y_off + i] = a[a_off + i] - b[b_off + i];
}

__kernel void broadcast_forward(int n, int op, int ndim, int s0, int s1, int s2, int s3, int s4,
                                int s5, int amask, int bmask, __global const float *a,
                                int a_off,                          /* the axes of amask */
                                __global const float *b, int b_off, /* the axes of bmask */
                                __global float *y, int y_off)       /* [n] = [s5, ..., s0] */
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const int s[CLT__CL_BROADCAST_DIMS] = {s0, s1, s2, s3, s4, s5};
    int rest = i, ai = 0, bi = 0, astride = 1, bstride = 1;
    for (int d = 0; d < ndim; d++) {
        const int c = rest % s[d];
        rest /= s[d];
        if ((amask >> d) & 1) {
            ai += c * astride;
            astride *= s[d];
        }
        if ((bmask >> d) & 1) {
            bi += c * bstride;
            bstride *= s[d];
        }
    }
    const float av = a[a_off + ai], bv = b[b_off + bi];
    y[y_off + i] = op == CLT__CL_BINARY_ADD   ? av + bv
                   : op == CLT__CL_BINARY_SUB ? av - bv
                                              : av * bv;
}

__kernel void broadcast_backward(int items, int parts, int chunk, int count, int ndim, int s0,
                                 int s1, int s2, int s3, int s4, int s5, int xmask, int omask,
                                 int product, float sign, int accumulate, __global const float *dy,
                                 int dy_off,                                 /* [s5, ..., s0] */
                                 __global const float *other, int other_off, /* axes of omask */
                                 __global float *dx, int dx_off) /* [axes of xmask, parts] */
{
    const int i = get_global_id(0);
    if (i >= items)
        return;
    const int j = i / parts, first = (i % parts) * chunk;
    const int last = min(count, first + chunk);
    const int s[CLT__CL_BROADCAST_DIMS] = {s0, s1, s2, s3, s4, s5};
    float2 acc = (float2)(0.0f, 0.0f);
    for (int k = first; k < last; k++) {
        /* Output element: the axes x has from j, the stretched ones from k, innermost first. */
        int jr = j, kr = k, yi = 0, oi = 0, ystride = 1, ostride = 1;
        for (int d = 0; d < ndim; d++) {
            int c;
            if ((xmask >> d) & 1) {
                c = jr % s[d];
                jr /= s[d];
            } else {
                c = kr % s[d];
                kr /= s[d];
            }
            yi += c * ystride;
            ystride *= s[d];
            if ((omask >> d) & 1) {
                oi += c * ostride;
                ostride *= s[d];
            }
        }
        const float g = dy[dy_off + yi];
        acc = sum_add(acc, product ? g * other[other_off + oi] : g);
    }
    grad_store(dx + dx_off, i, accumulate, sign * sum_value(acc));
}

__kernel void sum_rows_forward(int rows, int cols, float divisor, __global const float *x,
                               int x_off,                    /* [rows, cols] */
                               __global float *y, int y_off) /* [rows] */
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    y[y_off + r] = sum_strided(x + x_off + r * cols, cols, 1) / divisor;
}

__kernel void sum_backward(int rows, int cols, float divisor, int accumulate,
                           __global const float *dy, int dy_off, /* [rows] */
                           __global float *dx, int dx_off)       /* [rows, cols] */
{
    const int i = get_global_id(0);
    if (i >= rows * cols)
        return;
    grad_store(dx + dx_off, i, accumulate, dy[dy_off + i / cols] / divisor);
}

__kernel void sum_partials(int n, int parts, __global const float *x, int x_off, /* [n] */
                           __global float *part, int part_off)                   /* [parts] */
{
    const int j = get_global_id(0);
    if (j >= parts)
        return;
    x += x_off;
    /* Strided, so that neighbouring work-items read neighbouring elements. parts <= n, so
     * x[j] exists; the loop stops before i + parts could pass INT_MAX. */
    float2 acc = (float2)(0.0f, 0.0f);
    for (int i = j;; i += parts) {
        acc = sum_add(acc, x[i]);
        if (n - i <= parts)
            break;
    }
    part[part_off + j] = sum_value(acc);
}

__kernel void sum_finish(int n, float divisor, __global const float *x, int x_off, /* [n] */
                         __global float *y, int y_off)                             /* [1] */
{
    if (get_global_id(0) != 0)
        return;
    y[y_off] = sum_strided(x + x_off, n, 1) / divisor;
}
