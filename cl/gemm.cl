/*
 * gemm.cl: the engine's own GEMM, register-blocked, with tunable tiles, vector width and
 * local-memory staging. The engine builds one program per configuration (engine/gemm_own.c
 * prepends the tunables as #defines); every tunable has a default, so the file compiles alone.
 *
 * Computes, for each batch item z,
 *     C_z = alpha * op(A_z) * op(B_z) + beta * C_z
 * row-major, op(A) [m, k], op(B) [k, n], C [m, n]:
 *     A is [m, k] with row stride lda, or (trans_a) [k, m] with row stride lda;
 *     B is [k, n] with row stride ldb, or (trans_b) [n, k] with row stride ldb.
 * Matrix z starts at element <buf>_off + z * stride_<buf>. With beta == 0, C is not read.
 * Four kernels, one per transpose pair: gemm_nn, gemm_nt (trans_b), gemm_tn (trans_a),
 * gemm_tt; the transposes are compile-time constants inside each.
 *
 * Work-items: local (NDIM, MDIM, 1), global (ceil(n / NWG) * NDIM, ceil(m / MWG) * MDIM,
 * batch). Work-group (gx, gy, z) owns the MWG x NWG tile of C_z at rows gy * MWG, columns
 * gx * NWG; within it, work-item (lx, ly) owns the MWI x NWI block (MWI = MWG / MDIM,
 * NWI = NWG / NDIM) at rows ly * MWI, columns lx * NWI, held in registers as MWI x (NWI / VW)
 * vectors of VW floats. For each k it loads MWI values of op(A) and NWI / VW vectors of op(B)
 * and does MWI * NWI / VW vector fma.
 *
 * Staging (STAGE bit 0: A, bit 1: B): the work-group walks k in steps of KWG, copies the
 * MWG x KWG tile of op(A) and/or the KWG x NWG tile of op(B) into local memory (k-major,
 * transposes undone by the copy), and its work-items compute from there. Unstaged operands
 * are read from global memory directly; the k loop still runs in steps of KWG, unrolled by KWI.
 *
 * Edges: only work-groups whose tile crosses row m or column n take the guarded path, where
 * row and column indices of loads are clamped into the matrix (the extra rows and columns are
 * computed and never stored) and stores are bounds-checked. The k remainder (k mod KWG) runs a
 * plain loop, so no padding enters any sum. Vector loads use vloadN, which needs only float
 * alignment: any leading dimension and offset is valid.
 *
 * Reduction order: each output is one fma chain over k = 0, 1, ..., k - 1, in that order,
 * whatever the configuration; alpha and beta are applied after it as alpha * acc + beta * c.
 *
 * Tunables (defaults in parentheses):
 *   MWG, NWG (32, 64)  C tile per work-group, rows and columns
 *   KWG (32)           k step per stage (the staged tile depth)
 *   MDIM, NDIM (4, 4)  work-items per work-group along rows and columns; MWG % MDIM == 0,
 *                      NWG % (NDIM * VW) == 0
 *   VW (8)             vector width along columns: 1, 2, 4, 8 or 16
 *   STAGE (0)          bit 0: stage A in local memory, bit 1: stage B
 *   KWI                unroll factor of the k loop: 4, 2 or 1, the largest dividing KWG
 */
#ifndef MWG
#define MWG 32
#endif
#ifndef NWG
#define NWG 64
#endif
#ifndef KWG
#define KWG 32
#endif
#ifndef MDIM
#define MDIM 4
#endif
#ifndef NDIM
#define NDIM 4
#endif
#ifndef VW
#define VW 8
#endif
#ifndef STAGE
#define STAGE 0
#endif
#ifndef KWI
#if KWG % 4 == 0
#define KWI 4
#elif KWG % 2 == 0
#define KWI 2
#else
#define KWI 1
#endif
#endif

#define MWI (MWG / MDIM) /* rows of C per work-item */
#define NWI (NWG / NDIM) /* columns of C per work-item */
#define NVW (NWI / VW)   /* vectors per row of a work-item's block */
#define WGS (MDIM * NDIM)
#define STAGE_A (STAGE & 1)
#define STAGE_B ((STAGE >> 1) & 1)

#if MWG % MDIM != 0 || NWG % NDIM != 0 || NWI % VW != 0 || KWG % KWI != 0
#error "gemm.cl: MWG % MDIM, NWG % (NDIM * VW) and KWG % KWI must be 0"
#endif

#if VW == 1
typedef float floatv;
#define VLOAD(p) (*(p))
#define VSTORE(v, p) (*(p) = (v))
#elif VW == 2
typedef float2 floatv;
#define VLOAD(p) vload2(0, p)
#define VSTORE(v, p) vstore2(v, 0, p)
#elif VW == 4
typedef float4 floatv;
#define VLOAD(p) vload4(0, p)
#define VSTORE(v, p) vstore4(v, 0, p)
#elif VW == 8
typedef float8 floatv;
#define VLOAD(p) vload8(0, p)
#define VSTORE(v, p) vstore8(v, 0, p)
#elif VW == 16
typedef float16 floatv;
#define VLOAD(p) vload16(0, p)
#define VSTORE(v, p) vstore16(v, 0, p)
#else
#error "gemm.cl: VW must be 1, 2, 4, 8 or 16"
#endif

/* op(A)[r, kk] and op(B)[kk, col] in global memory. */
#define OP_A(ta, r, kk) ((ta) ? a[(size_t)(kk) * lda + (r)] : a[(size_t)(r) * lda + (kk)])
#define OP_B(tb, kk, col) ((tb) ? b[(size_t)(col) * ldb + (kk)] : b[(size_t)(kk) * ldb + (col)])

/* Copies op(A)[row0 .. row0 + MWG, k0 .. k0 + kc] into la[kk * MWG + r] and
 * op(B)[k0 .. k0 + kc, col0 .. col0 + NWG] into lb[kk * NWG + col], clamping rows and columns
 * into the matrix. Consecutive work-items read consecutive global addresses. */
inline void stage_tiles(const int ta, const int tb, int m, int n, int k0, int kc, int row0,
                        int col0, __global const float *a, int lda, __global const float *b,
                        int ldb, __local float *la, __local float *lb)
{
    const int lid = get_local_id(1) * NDIM + get_local_id(0);
    if (STAGE_A) {
        for (int i = lid; i < MWG * KWG; i += WGS) {
            const int r = ta ? i % MWG : i / KWG, kk = ta ? i / MWG : i % KWG;
            if (kk < kc)
                la[kk * MWG + r] = OP_A(ta, min(row0 + r, m - 1), k0 + kk);
        }
    }
    if (STAGE_B) {
        for (int i = lid; i < NWG * KWG; i += WGS) {
            const int col = tb ? i / KWG : i % NWG, kk = tb ? i % KWG : i / NWG;
            if (kk < kc)
                lb[kk * NWG + col] = OP_B(tb, k0 + kk, min(col0 + col, n - 1));
        }
    }
}

/* One step of k: acc[i][j] += op(A)[row i, kk] * op(B)[kk, vector j] for the work-item's
 * block. `ra` holds the (clamped) global rows, `cb` the global first column of the block;
 * `la_kk` and `lb_kk` point at row kk of the staged tiles. */
#define K_STEP(kk_global, la_kk, lb_kk)                                                       \
    do {                                                                                      \
        floatv bv[NVW];                                                                       \
        _Pragma("unroll") for (int j = 0; j < NVW; j++)                                       \
        {                                                                                     \
            if (STAGE_B) {                                                                    \
                bv[j] = VLOAD((lb_kk) + lx * NWI + j * VW);                                   \
            } else if (!tb && !edge) {                                                        \
                bv[j] = VLOAD(b + (size_t)(kk_global) * ldb + cb + j * VW);                   \
            } else {                                                                          \
                float t[VW];                                                                  \
                _Pragma("unroll") for (int e = 0; e < VW; e++) t[e] =                         \
                    OP_B(tb, kk_global, min(cb + j * VW + e, n - 1));                         \
                bv[j] = VLOAD(t);                                                             \
            }                                                                                 \
        }                                                                                     \
        _Pragma("unroll") for (int i = 0; i < MWI; i++)                                       \
        {                                                                                     \
            const float av =                                                                  \
                STAGE_A ? (la_kk)[ly * MWI + i] : OP_A(ta, ra[i], kk_global);                  \
            _Pragma("unroll") for (int j = 0; j < NVW; j++) acc[i][j] =                       \
                fma((floatv)(av), bv[j], acc[i][j]);                                          \
        }                                                                                     \
    } while (0)

/* The whole work-group's computation for one transpose pair; `edge` is a compile-time
 * constant after inlining, true only for tiles that cross row m or column n. */
inline void gemm_body(const int ta, const int tb, const int edge, int m, int n, int k,
                      float alpha, float beta, __global const float *a, int lda,
                      __global const float *b, int ldb, __global float *c, int ldc,
                      __local float *la, __local float *lb)
{
    const int lx = get_local_id(0), ly = get_local_id(1);
    const int row0 = get_group_id(1) * MWG, col0 = get_group_id(0) * NWG;
    const int rb = row0 + ly * MWI, cb = col0 + lx * NWI; /* the block's first row, column */
    int ra[MWI];
    _Pragma("unroll") for (int i = 0; i < MWI; i++) ra[i] = min(rb + i, m - 1);

    floatv acc[MWI][NVW];
    _Pragma("unroll") for (int i = 0; i < MWI; i++)
        _Pragma("unroll") for (int j = 0; j < NVW; j++) acc[i][j] = (floatv)(0.0f);

    for (int k0 = 0; k0 < k; k0 += KWG) {
        const int kc = min(KWG, k - k0);
        if (STAGE) {
            barrier(CLK_LOCAL_MEM_FENCE);
            stage_tiles(ta, tb, m, n, k0, kc, row0, col0, a, lda, b, ldb, la, lb);
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (kc == KWG) {
            for (int kk = 0; kk < KWG; kk += KWI)
                _Pragma("unroll") for (int u = 0; u < KWI; u++)
                    K_STEP(k0 + kk + u, la + (kk + u) * MWG, lb + (kk + u) * NWG);
        } else {
            for (int kk = 0; kk < kc; kk++)
                K_STEP(k0 + kk, la + kk * MWG, lb + kk * NWG);
        }
    }

    _Pragma("unroll") for (int i = 0; i < MWI; i++)
    {
        const int row = rb + i;
        if (edge && row >= m)
            break;
        __global float *cr = c + (size_t)row * ldc + cb;
        _Pragma("unroll") for (int j = 0; j < NVW; j++)
        {
            if (!edge || cb + (j + 1) * VW <= n) {
                const floatv r = alpha * acc[i][j];
                VSTORE(beta == 0.0f ? r : r + beta * VLOAD(cr + j * VW), cr + j * VW);
            } else {
                float t[VW];
                VSTORE(acc[i][j], t);
                for (int e = 0; e < VW && cb + j * VW + e < n; e++) {
                    const float r = alpha * t[e];
                    cr[j * VW + e] = beta == 0.0f ? r : r + beta * cr[j * VW + e];
                }
            }
        }
    }
}

/* The work-group's tile crosses row m or column n. */
#define TILE_IS_EDGE()                                                                        \
    ((int)(get_group_id(1) + 1) * MWG > m || (int)(get_group_id(0) + 1) * NWG > n)

#define LOCAL_A_SIZE (STAGE_A ? MWG * KWG : 1)
#define LOCAL_B_SIZE (STAGE_B ? KWG * NWG : 1)

#define GEMM_KERNEL(name, ta, tb)                                                             \
    __kernel __attribute__((reqd_work_group_size(NDIM, MDIM, 1))) void name(                  \
        int m, int n, int k, float alpha, float beta,                                         \
        __global const float *a, int a_off, int lda, int stride_a, /* op(A) [m, k] */         \
        __global const float *b, int b_off, int ldb, int stride_b, /* op(B) [k, n] */         \
        __global float *c, int c_off, int ldc, int stride_c)       /* C [m, n] */             \
    {                                                                                         \
        __local float la[LOCAL_A_SIZE]; /* la[kk * MWG + r] = op(A)[row0 + r, k0 + kk] */     \
        __local float lb[LOCAL_B_SIZE]; /* lb[kk * NWG + x] = op(B)[k0 + kk, col0 + x] */     \
        const size_t z = get_global_id(2);                                                    \
        a += a_off + z * (size_t)stride_a;                                                    \
        b += b_off + z * (size_t)stride_b;                                                    \
        c += c_off + z * (size_t)stride_c;                                                    \
        if (TILE_IS_EDGE())                                                                   \
            gemm_body(ta, tb, 1, m, n, k, alpha, beta, a, lda, b, ldb, c, ldc, la, lb);       \
        else                                                                                  \
            gemm_body(ta, tb, 0, m, n, k, alpha, beta, a, lda, b, ldb, c, ldc, la, lb);       \
    }

GEMM_KERNEL(gemm_nn, 0, 0)
GEMM_KERNEL(gemm_nt, 0, 1)
GEMM_KERNEL(gemm_tn, 1, 0)
GEMM_KERNEL(gemm_tt, 1, 1)
