/*
 * shape.cl: ops that move data. No arithmetic beyond the sums of embedding_backward and the
 * additions of `accumulate`; every forward is an exact copy.
 *
 * Every tensor is a dense row-major array that starts at element <name>_off of its buffer:
 * store_t (the storage, cl/common.cl: read with LOAD, written with STORE) for values and
 * gradients, int for ids and the embedding workspace; all sizes and indices fit in int (the
 * launchers check). Sums and the additions of `accumulate` are in float, each element rounded
 * to the storage once; a copy is exact in every storage.
 * `accumulate` non-zero adds to the output (dx += ...), zero overwrites it (dx = ...).
 * The embedding sort kernels are launched 1-D, embedding_forward and _backward 2-D, permute
 * and slice 3-D (dimension 0 the contiguous
 * one, so no work-item divides to find its coordinates but permute's outer ones); one
 * work-item per output element as listed below, in any work-group size (except
 * embedding_sort_local); work-items past the real size return at once.
 *
 * Embedding, ids [tokens] int, table [vocab, dim], y and dy [tokens, dim]:
 *   embedding_forward     work-item (d, t) of a 2-D range:
 *                         y[t, d] = table[ids[t], d], or 0 when ids[t] is outside [0, vocab).
 *   A bitonic sort of the positions 0..n2-1 (n2 = tokens rounded up to a power of two, at
 *   least 2) by the key (id class of t, t), where the id class is ids[t] for a valid token
 *   and vocab for an invalid id or a padding position (t >= tokens). The keys are distinct,
 *   so the sorted order is unique: it does not depend on the work-group size or the schedule.
 *   embedding_sort_local  work-group of W work-items (W from the device, the only kernel here
 *                         with an explicit local size): the stages whose pairs lie within a
 *                         block of 2W positions, in local memory (2 x 2W ints).
 *   embedding_sort_step   one stage (k, j) with j >= 2W in global memory; work-item
 *                         i < n2 / 2 owns one pair of positions.
 *   embedding_bounds      work-item v <= vocab: bounds[v] = the first position of sorted
 *                         whose id class is >= v (binary search). Tokens of id v sit at
 *                         sorted[bounds[v] .. bounds[v + 1]) in increasing t.
 *   embedding_backward    work-item (d, v) of a 2-D range: sums dy[t, d] over its group
 *                         in increasing t, into dtable[v, d].
 * Workspace (int): sorted [n2] at ws_off, then bounds [vocab + 1].
 *
 * Permute:
 *   permute_gather        y (dense, up to 6 dims, shape [s0..s5], padded with leading 1s)
 *                         gets y[c0..c5] = x[x_off + sum_k c_k * t_k]: t_k is the stride in x
 *                         of the dimension that becomes y's dimension k. Forward (x strides
 *                         permuted) and backward (dy strides permuted back) both use it.
 *                         Work-item (c5, c4, z) over s5 x s4 x (s0 s1 s2 s3): only z, the
 *                         same along a row of the work-group, is split into digits.
 *
 * Concat and slice see a tensor as [outer, axis, inner] around the axis they work on:
 *   slice_copy            dst[o, dst_start + a, i] (+)= src[o, src_start + a, i] for
 *                         a < len; src and dst have src_axis and dst_axis entries on the
 *                         axis. The len x inner block of each o is one contiguous run of
 *                         run = len * inner elements in both: work-item (j, o), j < run.
 *                         Slice forward, concat forward (one launch per input) and concat
 *                         backward (one per input). slice_copy_cols32: the same when run is
 *                         a multiple of 32, the column not checked (PoCL vectorizes it in
 *                         16 bits).
 *   slice_backward        without accumulate: work-item (i, a, o) over dx [outer, axis,
 *                         inner] writes dx = dy[o, a - start, i] inside the slice, 0 outside.
 *                         (With accumulate the launcher uses slice_copy over the slice only.)
 *
 * No tunables. Only embedding_sort_local has a work-group size, which the launcher picks
 * from the device's limits and which does not change any result.
 */

/* COPY(dst, i, src, j): dst[i] = src[j], a stored element moved as it is, and ZERO(dst, i):
 * dst[i] = +0. The same values as STORE(dst, i, LOAD(src, j)) and STORE(dst, i, 0.0f) (every
 * stored value widens and narrows back exactly; NaN payloads are kept whole), without the
 * conversions: PoCL's vstore_half_rte runs scalar, an fp16 copy through LOAD and STORE took
 * 20 times as long as this one (4M elements: 79 ms against 4 ms, fp32 18 ms). In fp32 they
 * are plain assignments. */
#if CLT_STORAGE == 32
#define COPY(dst, i, src, j) ((dst)[i] = (src)[j])
#define ZERO(dst, i) ((dst)[i] = 0.0f)
#else
#define COPY(dst, i, src, j) (((__global ushort *)(dst))[i] = ((__global const ushort *)(src))[j])
#define ZERO(dst, i) (((__global ushort *)(dst))[i] = 0)
#endif

/* ==== Embedding ========================================================================= */

__kernel void embedding_forward(int tokens, int dim, int vocab, __global const store_t *table,
                                int table_off,                        /* [vocab, dim] */
                                __global const int *ids, int ids_off, /* [tokens] */
                                __global store_t *y, int y_off)       /* [tokens, dim] */
{
    const int d = get_global_id(0), t = get_global_id(1);
    if (d >= dim || t >= tokens)
        return;
    const int id = ids[ids_off + t];
    if (id >= 0 && id < vocab)
        COPY(y, y_off + t * dim + d, table, table_off + id * dim + d);
    else
        ZERO(y, y_off + t * dim + d);
}

/* The id class that orders token t: its id when valid, vocab for an invalid id or a padding
 * position (t >= tokens), so that those sort after every real group. */
static int id_class(__global const int *ids, int ids_off, int tokens, int vocab, int t)
{
    if (t >= tokens)
        return vocab;
    const int id = ids[ids_off + t];
    return id >= 0 && id < vocab ? id : vocab;
}

/* Bitonic stages inside blocks of 2W positions, W = get_local_size(0) (any power of two, chosen
 * by the launcher from the device's limits, with 2W dividing n2): each work-group loads its
 * block (token index and id class) into local memory, runs the stages (k, j) for
 * k = k_lo, 2 k_lo, ..., k_hi and j = min(k / 2, W), ..., 2, 1 (every such pair lies in the
 * block), and writes the block back. first != 0: the block starts as the identity
 * (sorted[p] = p) instead of being read. Launched over exactly n2 / 2 work-items. */
__kernel void embedding_sort_local(int n2, int k_lo, int k_hi, int first, int tokens, int vocab,
                                   __global const int *ids, int ids_off, /* [tokens] */
                                   __global int *ws, int ws_off,         /* sorted [n2] */
                                   __local int *key,                     /* [2W] id classes */
                                   __local int *tok)                     /* [2W] token indices */
{
    const int w = get_local_size(0), l = get_local_id(0);
    const int base = get_group_id(0) * 2 * w;
    for (int e = l; e < 2 * w; e += w) {
        const int t = first ? base + e : ws[ws_off + base + e];
        tok[e] = t;
        key[e] = id_class(ids, ids_off, tokens, vocab, t);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = k_lo; k <= k_hi; k *= 2) {
        for (int j = min(k / 2, w); j >= 1; j /= 2) {
            const int lo = ((l & ~(j - 1)) << 1) | (l & (j - 1)), hi = lo + j;
            const bool ascending = ((base + lo) & k) == 0;
            const int ka = key[lo], kb = key[hi], a = tok[lo], b = tok[hi];
            const bool a_after_b = ka > kb || (ka == kb && a > b);
            if (a_after_b == ascending) {
                key[lo] = kb;
                key[hi] = ka;
                tok[lo] = b;
                tok[hi] = a;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
    }
    for (int e = l; e < 2 * w; e += w)
        ws[ws_off + base + e] = tok[e];
}

/* Stage (k, j) of the bitonic network: k the size of the sequences being merged, j the
 * distance of the pairs compared, both powers of two with j < k <= n2. */
__kernel void embedding_sort_step(int n2, int k, int j, int tokens, int vocab,
                                  __global const int *ids, int ids_off, /* [tokens] */
                                  __global int *ws, int ws_off)         /* sorted [n2] */
{
    const int i = get_global_id(0);
    if (i >= n2 / 2)
        return;
    /* Pair i: positions lo and lo + j, where lo has a 0 in bit j. */
    const int lo = ((i & ~(j - 1)) << 1) | (i & (j - 1)), hi = lo + j;
    const bool ascending = (lo & k) == 0;
    const int a = ws[ws_off + lo], b = ws[ws_off + hi];
    const int ka = id_class(ids, ids_off, tokens, vocab, a);
    const int kb = id_class(ids, ids_off, tokens, vocab, b);
    const bool a_after_b = ka > kb || (ka == kb && a > b);
    if (a_after_b == ascending) {
        ws[ws_off + lo] = b;
        ws[ws_off + hi] = a;
    }
}

__kernel void embedding_bounds(int n2, int tokens, int vocab, __global const int *ids,
                               int ids_off,                  /* [tokens] */
                               __global int *ws, int ws_off) /* sorted, bounds */
{
    const int v = get_global_id(0);
    if (v > vocab)
        return;
    int lo = 0, hi = n2;
    while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        if (id_class(ids, ids_off, tokens, vocab, ws[ws_off + mid]) < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    ws[ws_off + n2 + v] = lo;
}

__kernel void embedding_backward(int vocab, int dim, int n2, int accumulate, __global const int *ws,
                                 int ws_off,                             /* sorted, bounds */
                                 __global const store_t *dy, int dy_off, /* [tokens, dim] */
                                 __global store_t *dtable, int dt_off)   /* [vocab, dim] */
{
    const int d = get_global_id(0), v = get_global_id(1);
    if (d >= dim || v >= vocab)
        return;
    const int gid = v * dim + d;
    const int begin = ws[ws_off + n2 + v], end = ws[ws_off + n2 + v + 1];
    float acc = 0.0f;
    for (int p = begin; p < end; p++)
        acc += LOAD(dy, dy_off + ws[ws_off + p] * dim + d);
    STORE(dtable, dt_off + gid, accumulate ? LOAD(dtable, dt_off + gid) + acc : acc);
}

/* ==== Permute =========================================================================== */

__kernel void permute_gather(int s0, int s1, int s2, int s3, int s4, int s5, int accumulate,
                             __global const store_t *x, int x_off, /* strided source */
                             __global store_t *y, int y_off,       /* [s0, ..., s5] dense */
                             int t0, int t1, int t2, int t3, int t4, int t5)
{
    const int i5 = get_global_id(0), i4 = get_global_id(1), z = get_global_id(2);
    /* The digits of z in the mixed radix [s0, ..., s3], last fastest, times their strides:
     * computed before the bounds test, unconditionally (every s_k >= 1), so that the compiler
     * may hoist the divisions out of the loop over dimension 0 (z is the same along it) and
     * PoCL vectorizes that loop; with the divisions after the test, it ran one element at a
     * time. Remainders are written r - q * s: LLVM turns a % next to a / into a `freeze`,
     * which Oclgrind's uninitialized-value checker cannot run. */
    const int q3 = z / s3, q2 = q3 / s2, q1 = q2 / s1;
    const int src = (z - q3 * s3) * t3 + (q3 - q2 * s2) * t2 + (q2 - q1 * s1) * t1 + q1 * t0 +
                    i4 * t4 + i5 * t5;
    if (i5 >= s5 || i4 >= s4 || z >= s0 * s1 * s2 * s3)
        return;
    const int dst = y_off + (z * s4 + i4) * s5 + i5;
    if (accumulate)
        STORE(y, dst, LOAD(y, dst) + LOAD(x, x_off + src));
    else
        COPY(y, dst, x, x_off + src);
}

/* ==== Concat and slice ================================================================== */

__kernel void slice_copy(int outer, int run, int inner, int accumulate, __global const store_t *src,
                         int src_off, int src_axis, int src_start, __global store_t *dst,
                         int dst_off, int dst_axis, int dst_start)
{
    const int j = get_global_id(0), o = get_global_id(1);
    if (j >= run || o >= outer)
        return;
    const int si = src_off + (o * src_axis + src_start) * inner + j;
    const int di = dst_off + (o * dst_axis + dst_start) * inner + j;
    if (accumulate)
        STORE(dst, di, LOAD(dst, di) + LOAD(src, si));
    else
        COPY(dst, di, src, si);
}

/* The bits STORE would write for v (BITS_T: the storage's element as an unsigned integer). */
#if CLT_STORAGE == 32
#define BITS_T uint
#define BITS_OF(v) as_uint(v)
#elif CLT_STORAGE == 16
#define BITS_T ushort
#define BITS_OF(v) f16_bits(v)
#else
#define BITS_T ushort
#define BITS_OF(v) bf16_bits(v)
#endif

/* slice_copy when run is a multiple of 32: the launch then rounds no column up (its local size
 * in dimension 0 is a power of two up to 32), so only the row is checked, and both values are
 * read and one is stored whatever accumulate says. A check of the column, or a load or store
 * under the per-launch accumulate, makes them masked ones, which AVX2 has not for 16-bit
 * elements: PoCL ran slice_copy one work-item at a time in fp16 and bf16. The same results:
 * without accumulate the source's bits, with it STORE's. */
__kernel void slice_copy_cols32(int outer, int run, int inner, int accumulate,
                                __global const store_t *src, int src_off, int src_axis,
                                int src_start, __global store_t *dst, int dst_off, int dst_axis,
                                int dst_start)
{
    const int j = get_global_id(0), o = get_global_id(1);
    if (o >= outer)
        return;
    const int si = src_off + (o * src_axis + src_start) * inner + j;
    const int di = dst_off + (o * dst_axis + dst_start) * inner + j;
    const BITS_T bits = ((__global const BITS_T *)src)[si];
    const float sum = LOAD(dst, di) + LOAD_ALT(src, si);
    ((__global BITS_T *)dst)[di] = accumulate ? BITS_OF(sum) : bits;
}

__kernel void slice_backward(int outer, int axis, int inner, int start, int len,
                             __global const store_t *dy, int dy_off, /* [outer, len, inner] */
                             __global store_t *dx, int dx_off)       /* [outer, axis, inner] */
{
    const int i = get_global_id(0), a = get_global_id(1), o = get_global_id(2);
    if (i >= inner || a >= axis || o >= outer)
        return;
    const bool inside = a >= start && a < start + len;
    if (inside)
        COPY(dx, dx_off + (o * axis + a) * inner + i, dy,
             dy_off + (o * len + a - start) * inner + i);
    else
        ZERO(dx, dx_off + (o * axis + a) * inner + i);
}
