/*
 * gemm.cl: the engine's own GEMM, used when CLBlast is unavailable or fails.
 *
 * Computes, for each batch item z,
 *     C_z = alpha * op(A_z) * op(B_z) + beta * C_z
 * row-major, op(A) [m, k], op(B) [k, n], C [m, n]; op transposes when trans_* is non-zero:
 *     A is [m, k] with row stride lda, or (trans_a) [k, m] with row stride lda;
 *     B is [k, n] with row stride ldb, or (trans_b) [n, k] with row stride ldb.
 * Matrix z starts at element <buf>_off + z * stride_<buf>. With beta == 0, C is not read.
 *
 * Work-items: global (n, m, batch) rounded up to the tile, local (TS, TS, 1); work-item
 * (col, row, z) computes C_z[row, col]. Each work-group walks k in steps of TS, staging a TS x TS
 * tile of op(A) and of op(B) in local memory; the sum over k runs in increasing order, the
 * same for every launch shape.
 *
 * Tunable: CLT_GEMM_TS (common.cl), the tile edge; the local size must be TS x TS.
 */
#define TS CLT_GEMM_TS

__kernel __attribute__((reqd_work_group_size(TS, TS, 1))) void
gemm_tiled(int m, int n, int k, float alpha, float beta, int trans_a, int trans_b,
           __global const float *a, int a_off, int lda, int stride_a, /* op(A) [m, k] */
           __global const float *b, int b_off, int ldb, int stride_b, /* op(B) [k, n] */
           __global float *c, int c_off, int ldc, int stride_c)       /* C [m, n] */
{
    __local float tile_a[TS][TS + 1]; /* tile_a[y][i] = op(A)[row y, k index i] */
    __local float tile_b[TS][TS + 1]; /* tile_b[i][x] = op(B)[k index i, col x] */
    const int col = get_global_id(0), row = get_global_id(1), z = get_global_id(2);
    const int lx = get_local_id(0), ly = get_local_id(1);
    a += a_off + (size_t)z * stride_a;
    b += b_off + (size_t)z * stride_b;
    c += c_off + (size_t)z * stride_c;

    float acc = 0.0f;
    for (int t = 0; t < k; t += TS) {
        const int ak = t + lx; /* this work-item loads op(A)[row, ak] */
        const int bk = t + ly; /* and op(B)[bk, col] */
        float av = 0.0f, bv = 0.0f;
        if (row < m && ak < k)
            av = trans_a ? a[(size_t)ak * lda + row] : a[(size_t)row * lda + ak];
        if (col < n && bk < k)
            bv = trans_b ? b[(size_t)col * ldb + bk] : b[(size_t)bk * ldb + col];
        tile_a[ly][lx] = av;
        tile_b[ly][lx] = bv;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = 0; i < TS; i++)
            acc += tile_a[ly][i] * tile_b[i][lx];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (row < m && col < n) {
        const size_t ci = (size_t)row * ldc + col;
        c[ci] = beta == 0.0f ? alpha * acc : alpha * acc + beta * c[ci];
    }
}
