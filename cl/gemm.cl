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
 * Work-items (STAGE 0 to 3): local (NDIM, MDIM, 1), global (ceil(n / NWG) * NDIM,
 * ceil(m / MWG) * MDIM, batch). Work-group (gx, gy, z) owns the MWG x NWG tile of C_z at rows gy *
 * MWG, columns gx * NWG; within it, work-item (lx, ly) owns the MWI x NWI block (MWI = MWG / MDIM,
 * NWI = NWG / NDIM) at rows ly * MWI, columns lx * NWI, held in registers as MWI x (NWI / VW)
 * vectors of VW floats. For each k it loads MWI values of op(A) and NWI / VW vectors of op(B)
 * and does MWI * NWI / VW vector fma.
 *
 * Staging (STAGE bit 0: A, bit 1: B): the work-group walks k in steps of KWG, copies the
 * MWG x KWG tile of op(A) and/or the KWG x NWG tile of op(B) into local memory (k-major,
 * transposes undone by the copy), and its work-items compute from there. Unstaged operands
 * are read from global memory directly; the k loop still runs in steps of KWG, unrolled by KWI.
 *
 * Serial mode (STAGE bit 2), for CPU devices: local (1, 1, 1), global (ceil(n / NWG),
 * ceil(m / MWG), batch). The one work-item of a group runs the same MDIM x NDIM blocks in
 * turn instead of in parallel; per k step it packs the staged operands into block panels
 * (la[bi][kk][MWI], lb[bj][kk][NWI]) and keeps the tile's sums in local memory between steps
 * (see gemm_serial).
 *
 * Edges: only work-groups whose tile crosses row m or column n take the guarded path, where
 * row and column indices of loads are clamped into the matrix (the extra rows and columns are
 * computed and never stored) and stores are bounds-checked. The k remainder (k mod KWG) runs a
 * plain loop, so no padding enters any sum. Vector loads use vloadN, which needs only float
 * alignment: any leading dimension and offset is valid.
 *
 * Dot mode (STAGE 8, A B^T only: gemm_nt alone): local (1, 1, 1), global (ceil(n / NWG),
 * ceil(m / MWG), batch); the one work-item of a group computes its MWG x NWG block of C as
 * dot products of rows of A and rows of B, VW elements of k at a time (see the kernel).
 *
 * Reduction order: each output is one fma chain over k = 0, 1, ..., k - 1, in that order,
 * whatever the configuration, except in dot mode (VW chains, one per lane, then added in a
 * fixed order: a fixed order for a given VW); alpha and beta are applied after it as
 * alpha * acc + beta * c.
 *
 * Storage (CLT_STORAGE, cl/common.cl): A, B and C are store_t, offsets, leading dimensions and
 * strides in storage elements. Every global read goes through LOAD or VLOADn into float
 * registers (staged tiles and packed panels are float in local memory), the sums are float
 * whatever the storage, and C is written once through STORE or VSTOREn (rounded to nearest
 * even); beta != 0 reads C in the storage. In the fp32 build the macros are plain float code.
 * With CLT_GEMM_C_F32 set to 1, C alone is fp32 (cstore_t, CLOAD, CSTORE, CGLOAD, CGSTORE)
 * whatever the storage: split-K's partial products (below) are kept unrounded.
 *
 * Split-K (engine/gemm_own.c): a product with few tiles and a long k runs as S partial
 * products over consecutive chunks of k, the batch index z choosing the chunk (the chunk's
 * offset as the batch stride), into an fp32 scratch [S][m][n]; gemm_split_reduce then writes
 * C = alpha * (P_0 + P_1 + ... + P_{S-1}) + beta * C in the storage. Each output is then S fma
 * chains, each in k order, added in chunk order: a fixed order, given S.
 *
 * Tunables (defaults in parentheses):
 *   MWG, NWG (32, 64)  C tile per work-group, rows and columns
 *   KWG (32)           k step per stage (the staged tile depth)
 *   MDIM, NDIM (4, 4)  blocks per tile along rows and columns (work-items per group, except
 *                      in serial mode); MWG % MDIM == 0, NWG % (NDIM * VW) == 0
 *   VW (8)             vector width along columns: 1, 2, 4, 8 or 16
 *   STAGE (0)          bit 0: stage A in local memory, bit 1: stage B, bit 2: serial mode;
 *                      or 8: dot mode (MDIM = NDIM = 1, KWG = VW >= 4, MWG * NWG <= 16)
 *   KWI                unroll factor of the k loop: 4, 2 or 1, the largest dividing KWG
 *   CLT_GEMM_C_F32 (0) C is fp32 whatever the storage (split-K's partial products)
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
#define SERIAL ((STAGE >> 2) & 1)

#define DOT (STAGE == 8)

#if STAGE < 0 || STAGE > 8
#error "gemm.cl: STAGE must be 0 to 8"
#endif

#if !DOT && (MWG % MDIM != 0 || NWG % NDIM != 0 || NWI % VW != 0 || KWG % KWI != 0)
#error "gemm.cl: MWG % MDIM, NWG % (NDIM * VW) and KWG % KWI must be 0"
#endif

#if DOT && (MDIM != 1 || NDIM != 1 || KWG != VW || VW < 4 || MWG * NWG > 16)
#error "gemm.cl: dot mode needs MDIM = NDIM = 1, KWG = VW >= 4 and MWG * NWG <= 16"
#endif

/* VLOAD, VSTORE: VW floats at p in local or private memory; GLOAD, GSTORE: VW elements of
 * the storage at p in global memory, as floats. */
#if VW == 1
typedef float floatv;
#define VLOAD(p) (*(p))
#define VSTORE(v, p) (*(p) = (v))
#define GLOAD(p) LOAD(p, 0)
#define GSTORE(v, p) STORE(p, 0, v)
#elif VW == 2
typedef float2 floatv;
#define VLOAD(p) vload2(0, p)
#define VSTORE(v, p) vstore2(v, 0, p)
#define GLOAD(p) VLOAD2(0, p)
#define GSTORE(v, p) VSTORE2(v, 0, p)
#elif VW == 4
typedef float4 floatv;
#define VLOAD(p) vload4(0, p)
#define VSTORE(v, p) vstore4(v, 0, p)
#define GLOAD(p) VLOAD4(0, p)
#define GSTORE(v, p) VSTORE4(v, 0, p)
#elif VW == 8
typedef float8 floatv;
#define VLOAD(p) vload8(0, p)
#define VSTORE(v, p) vstore8(v, 0, p)
#define GLOAD(p) VLOAD8(0, p)
#define GSTORE(v, p) VSTORE8(v, 0, p)
#elif VW == 16
typedef float16 floatv;
#define VLOAD(p) vload16(0, p)
#define VSTORE(v, p) vstore16(v, 0, p)
#define GLOAD(p) VLOAD16(0, p)
#define GSTORE(v, p) VSTORE16(v, 0, p)
#else
#error "gemm.cl: VW must be 1, 2, 4, 8 or 16"
#endif

/* C's elements: the storage's (cstore_t, CLOAD, CSTORE; CGLOAD, CGSTORE for VW of them in
 * global memory), or fp32 with CLT_GEMM_C_F32. */
#ifndef CLT_GEMM_C_F32
#define CLT_GEMM_C_F32 0
#endif
#if CLT_GEMM_C_F32
#define cstore_t float
#define CLOAD(p, i) ((p)[i])
#define CSTORE(p, i, v) ((p)[i] = (v))
#define CGLOAD(p) VLOAD(p)
#define CGSTORE(v, p) VSTORE(v, p)
#else
#define cstore_t store_t
#define CLOAD(p, i) LOAD(p, i)
#define CSTORE(p, i, v) STORE(p, i, v)
#define CGLOAD(p) GLOAD(p)
#define CGSTORE(v, p) GSTORE(v, p)
#endif

#if !DOT /* the tiled kernels, to the instances below */

/* op(A)[r, kk] and op(B)[kk, col] in global memory. */
#define OP_A(ta, r, kk) ((ta) ? LOAD(a, (size_t)(kk)*lda + (r)) : LOAD(a, (size_t)(r)*lda + (kk)))
#define OP_B(tb, kk, col)                                                                          \
    ((tb) ? LOAD(b, (size_t)(col)*ldb + (kk)) : LOAD(b, (size_t)(kk)*ldb + (col)))

/* Copies op(A)[row0 .. row0 + MWG, k0 .. k0 + kc] into la[kk * MWG + r] and
 * op(B)[k0 .. k0 + kc, col0 .. col0 + NWG] into lb[kk * NWG + col], clamping rows and columns
 * into the matrix. Consecutive work-items read consecutive global addresses. */
inline void stage_tiles(const int ta, const int tb, int m, int n, int k0, int kc, int row0,
                        int col0, __global const store_t *a, int lda, __global const store_t *b,
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

/* One step of k: acc[i][j] += op(A)[row i, kk] * op(B)[kk, vector j] for the block. `ra`
 * holds the block's (clamped) global rows, `cb` its first global column. Staged operands come
 * from local memory: a_local is the expression of op(A)[row i, kk] there, b_local the address
 * of vector j of op(B)[kk, ...]. */
#define K_STEP(kk_global, a_local, b_local)                                                        \
    do {                                                                                           \
        floatv bv[NVW];                                                                            \
        _Pragma("unroll") for (int j = 0; j < NVW; j++)                                            \
        {                                                                                          \
            if (STAGE_B) {                                                                         \
                bv[j] = VLOAD(b_local);                                                            \
            } else if (!tb && !edge) {                                                             \
                bv[j] = GLOAD(b + (size_t)(kk_global)*ldb + cb + j * VW);                          \
            } else {                                                                               \
                float t[VW];                                                                       \
                _Pragma("unroll") for (int e = 0; e < VW; e++) t[e] =                              \
                    OP_B(tb, kk_global, min(cb + j * VW + e, n - 1));                              \
                bv[j] = VLOAD(t);                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("unroll") for (int i = 0; i < MWI; i++)                                            \
        {                                                                                          \
            const float av = STAGE_A ? (a_local) : OP_A(ta, ra[i], kk_global);                     \
            _Pragma("unroll") for (int j = 0; j < NVW; j++) acc[i][j] =                            \
                fma((floatv)(av), bv[j], acc[i][j]);                                               \
        }                                                                                          \
    } while (0)

/* The whole work-group's computation for one transpose pair; `edge` is a compile-time
 * constant after inlining, true only for tiles that cross row m or column n. */
inline void gemm_body(const int ta, const int tb, const int edge, int m, int n, int k, float alpha,
                      float beta, __global const store_t *a, int lda, __global const store_t *b,
                      int ldb, __global cstore_t *c, int ldc, __local float *la, __local float *lb)
{
    const int lx = get_local_id(0), ly = get_local_id(1);
    const int row0 = get_group_id(1) * MWG, col0 = get_group_id(0) * NWG;
    const int rb = row0 + ly * MWI, cb = col0 + lx * NWI; /* the block's first row, column */
    int ra[MWI];
    _Pragma("unroll") for (int i = 0; i < MWI; i++) ra[i] = min(rb + i, m - 1);

    floatv acc[MWI][NVW];
    _Pragma("unroll") for (int i = 0; i < MWI; i++) _Pragma("unroll") for (int j = 0; j < NVW; j++)
        acc[i][j] = (floatv)(0.0f);

    for (int k0 = 0; k0 < k; k0 += KWG) {
        const int kc = min(KWG, k - k0);
        if (STAGE_A || STAGE_B) {
            barrier(CLK_LOCAL_MEM_FENCE);
            stage_tiles(ta, tb, m, n, k0, kc, row0, col0, a, lda, b, ldb, la, lb);
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (kc == KWG) {
            for (int kk = 0; kk < KWG; kk += KWI)
                _Pragma("unroll") for (int u = 0; u < KWI; u++)
                    K_STEP(k0 + kk + u, la[(kk + u) * MWG + ly * MWI + i],
                           lb + (kk + u) * NWG + lx * NWI + j * VW);
        } else {
            for (int kk = 0; kk < kc; kk++)
                K_STEP(k0 + kk, la[kk * MWG + ly * MWI + i], lb + kk * NWG + lx * NWI + j * VW);
        }
    }

    _Pragma("unroll") for (int i = 0; i < MWI; i++)
    {
        const int row = rb + i;
        if (edge && row >= m)
            break;
        __global cstore_t *cr = c + (size_t)row * ldc + cb;
        _Pragma("unroll") for (int j = 0; j < NVW; j++)
        {
            if (!edge || cb + (j + 1) * VW <= n) {
                const floatv r = alpha * acc[i][j];
                CGSTORE(beta == 0.0f ? r : r + beta * CGLOAD(cr + j * VW), cr + j * VW);
            } else {
                float t[VW];
                VSTORE(acc[i][j], t);
                for (int e = 0; e < VW && cb + j * VW + e < n; e++) {
                    const float r = alpha * t[e];
                    CSTORE(cr, j * VW + e, beta == 0.0f ? r : r + beta * CLOAD(cr, j * VW + e));
                }
            }
        }
    }
}

#if SERIAL
/* PACK_K: dst[kk * step] = src[kk] for kk < kc, src contiguous in k: eight elements a load
 * (VLOAD8: one conversion of eight in 16-bit storage, where one element at a time ran scalar
 * conversions), the last kc % 8 one by one. */
#define PACK_K(dst, step, src, kc)                                                                 \
    {                                                                                              \
        int kk = 0;                                                                                \
        for (; kk + 8 <= (kc); kk += 8) {                                                          \
            const float8 v = VLOAD8(0, (src) + kk);                                                \
            (dst)[(kk + 0) * (step)] = v.s0;                                                       \
            (dst)[(kk + 1) * (step)] = v.s1;                                                       \
            (dst)[(kk + 2) * (step)] = v.s2;                                                       \
            (dst)[(kk + 3) * (step)] = v.s3;                                                       \
            (dst)[(kk + 4) * (step)] = v.s4;                                                       \
            (dst)[(kk + 5) * (step)] = v.s5;                                                       \
            (dst)[(kk + 6) * (step)] = v.s6;                                                       \
            (dst)[(kk + 7) * (step)] = v.s7;                                                       \
        }                                                                                          \
        for (; kk < (kc); kk++)                                                                    \
            (dst)[kk * (step)] = LOAD((src), kk);                                                  \
    }

/* T8_STORE: the 8 x 8 block of rows v0 to v7 (eight k each) transposed in registers and
 * stored as dst[(kk + j) * step + i] = vi.sj, eight contiguous floats a store. */
#define T8_STORE(dst, step, kk, v0, v1, v2, v3, v4, v5, v6, v7)                                    \
    {                                                                                              \
        vstore8((float8)(v0.s0, v1.s0, v2.s0, v3.s0, v4.s0, v5.s0, v6.s0, v7.s0), 0,               \
                (dst) + ((kk) + 0) * (step));                                                      \
        vstore8((float8)(v0.s1, v1.s1, v2.s1, v3.s1, v4.s1, v5.s1, v6.s1, v7.s1), 0,               \
                (dst) + ((kk) + 1) * (step));                                                      \
        vstore8((float8)(v0.s2, v1.s2, v2.s2, v3.s2, v4.s2, v5.s2, v6.s2, v7.s2), 0,               \
                (dst) + ((kk) + 2) * (step));                                                      \
        vstore8((float8)(v0.s3, v1.s3, v2.s3, v3.s3, v4.s3, v5.s3, v6.s3, v7.s3), 0,               \
                (dst) + ((kk) + 3) * (step));                                                      \
        vstore8((float8)(v0.s4, v1.s4, v2.s4, v3.s4, v4.s4, v5.s4, v6.s4, v7.s4), 0,               \
                (dst) + ((kk) + 4) * (step));                                                      \
        vstore8((float8)(v0.s5, v1.s5, v2.s5, v3.s5, v4.s5, v5.s5, v6.s5, v7.s5), 0,               \
                (dst) + ((kk) + 5) * (step));                                                      \
        vstore8((float8)(v0.s6, v1.s6, v2.s6, v3.s6, v4.s6, v5.s6, v6.s6, v7.s6), 0,               \
                (dst) + ((kk) + 6) * (step));                                                      \
        vstore8((float8)(v0.s7, v1.s7, v2.s7, v3.s7, v4.s7, v5.s7, v6.s7, v7.s7), 0,               \
                (dst) + ((kk) + 7) * (step));                                                      \
    }

/* PACK_K8: dst[kk * step + i] = src[i * ld + kk] for i < 8 and kk < kc: eight rows of k, ld
 * apart, packed eight by eight, each 8 x 8 block transposed in registers (eight loads of
 * eight, eight stores of eight, where PACK_K stores one element at a time); the last kc % 8
 * one by one. */
#define PACK_K8(dst, step, src, ld, kc)                                                            \
    {                                                                                              \
        int kk = 0;                                                                                \
        for (; kk + 8 <= (kc); kk += 8) {                                                          \
            const float8 r0 = VLOAD8(0, (src) + kk), r1 = VLOAD8(0, (src) + (ld) + kk);            \
            const float8 r2 = VLOAD8(0, (src) + 2 * (ld) + kk);                                    \
            const float8 r3 = VLOAD8(0, (src) + 3 * (ld) + kk);                                    \
            const float8 r4 = VLOAD8(0, (src) + 4 * (ld) + kk);                                    \
            const float8 r5 = VLOAD8(0, (src) + 5 * (ld) + kk);                                    \
            const float8 r6 = VLOAD8(0, (src) + 6 * (ld) + kk);                                    \
            const float8 r7 = VLOAD8(0, (src) + 7 * (ld) + kk);                                    \
            T8_STORE(dst, step, kk, r0, r1, r2, r3, r4, r5, r6, r7)                                \
        }                                                                                          \
        for (; kk < (kc); kk++)                                                                    \
            for (int i8 = 0; i8 < 8; i8++)                                                         \
                (dst)[kk * (step) + i8] = LOAD((src), (size_t)i8 * (ld) + kk);                     \
    }

/* PACK_K8_EDGE: PACK_K8 in an edge tile, row i of the eight being row min(r0 + i, rlast) of
 * the matrix at base (k from k0): rows past the matrix repeat its last row (computed, never
 * stored), as the element-wise packing's clamp does. */
#define PACK_K8_EDGE(dst, step, base, r0, rlast, ld, k0, kc)                                       \
    {                                                                                              \
        __global const store_t *p8[8];                                                             \
        _Pragma("unroll") for (int i8 = 0; i8 < 8; i8++) p8[i8] =                                  \
            (base) + (size_t)min((r0) + i8, (rlast)) * (ld) + (k0);                                \
        int kk = 0;                                                                                \
        for (; kk + 8 <= (kc); kk += 8) {                                                          \
            const float8 e0 = VLOAD8(0, p8[0] + kk), e1 = VLOAD8(0, p8[1] + kk);                   \
            const float8 e2 = VLOAD8(0, p8[2] + kk), e3 = VLOAD8(0, p8[3] + kk);                   \
            const float8 e4 = VLOAD8(0, p8[4] + kk), e5 = VLOAD8(0, p8[5] + kk);                   \
            const float8 e6 = VLOAD8(0, p8[6] + kk), e7 = VLOAD8(0, p8[7] + kk);                   \
            T8_STORE(dst, step, kk, e0, e1, e2, e3, e4, e5, e6, e7)                                \
        }                                                                                          \
        for (; kk < (kc); kk++)                                                                    \
            _Pragma("unroll") for (int i8 = 0; i8 < 8; i8++)(dst)[kk * (step) + i8] =              \
                LOAD(p8[i8], kk);                                                                  \
    }

/* Serial mode (STAGE bit 2), for CPU devices: one work-item per work-group runs the MDIM x NDIM
 * blocks of its tile one after another, BLIS-style. For each k step it packs the staged
 * operands as panels, op(A) as la[bi][kk][MWI] and op(B) as lb[bj][kk][NWI] (a block then
 * streams through contiguous memory, free of the cache-set conflicts that rows a power of two
 * apart cause), and each block carries its sums across k steps in lacc[MWG][NWG]; a float
 * stored and reloaded is unchanged, so the sums are the same fma chains as in the other
 * modes. At the last k step a block of an interior tile writes C straight from its registers
 * (alpha * acc + beta * c, as below); edge tiles keep their sums in lacc and write C after,
 * within the matrix. No barrier is needed: the work-group is one work-item. */
inline void gemm_serial(const int ta, const int tb, const int edge, int m, int n, int k,
                        float alpha, float beta, __global const store_t *a, int lda,
                        __global const store_t *b, int ldb, __global cstore_t *c, int ldc,
                        __local float *la, __local float *lb, __local float *lacc)
{
    const int row0 = get_group_id(1) * MWG, col0 = get_group_id(0) * NWG;
    for (int k0 = 0; k0 < k; k0 += KWG) {
        const int kc = min(KWG, k - k0);
        /* Pack op(A): la[(bi * KWG + kk) * MWI + i] = op(A)[row0 + bi * MWI + i, k0 + kk]. */
        if (STAGE_A && ta) {
            for (int kk = 0; kk < kc; kk++) {
                __global const store_t *src = a + (size_t)(k0 + kk) * lda;
#if MWG % 8 == 0
                /* the tile's MWG elements of this row eight a load, in an edge tile those
                 * eights that lie in the matrix, the others element by element (clamped) */
                _Pragma("unroll") for (int x = 0; x < MWG; x += 8)
                {
                    float t[8];
                    if (!edge || row0 + x + 8 <= m)
                        vstore8(VLOAD8(0, src + row0 + x), 0, t);
                    else
                        _Pragma("unroll") for (int e = 0; e < 8; e++) t[e] =
                            LOAD(src, min(row0 + x + e, m - 1));
                    _Pragma("unroll") for (int e = 0; e < 8; e++)
                        la[((x + e) / MWI * KWG + kk) * MWI + (x + e) % MWI] = t[e];
                }
                continue;
#endif
                for (int bi = 0; bi < MDIM; bi++) {
                    __local float *dst = la + (bi * KWG + kk) * MWI;
                    const int r0 = row0 + bi * MWI;
                    _Pragma("unroll") for (int i = 0; i < MWI; i++) dst[i] =
                        LOAD(src, edge ? min(r0 + i, m - 1) : r0 + i);
                }
            }
        } else if (STAGE_A) {
#if MWI % 8 == 0
            /* eight rows at a time, transposed in registers; an edge tile's rows past m
             * clamped to the last */
            for (int bi = 0; bi < MDIM; bi++)
                for (int i = 0; i < MWI; i += 8) {
                    const int r = row0 + bi * MWI + i;
                    __local float *dst = la + bi * KWG * MWI + i;
                    if (edge)
                        PACK_K8_EDGE(dst, MWI, a, r, m - 1, lda, k0, kc)
                    else
                        PACK_K8(dst, MWI, a + (size_t)r * lda + k0, lda, kc)
                }
#else
            for (int bi = 0; bi < MDIM; bi++)
                _Pragma("unroll") for (int i = 0; i < MWI; i++)
                {
                    const int r = row0 + bi * MWI + i;
                    __global const store_t *src = a + (size_t)(edge ? min(r, m - 1) : r) * lda + k0;
                    __local float *dst = la + bi * KWG * MWI + i;
                    PACK_K(dst, MWI, src, kc);
                }
#endif
        }
        /* Pack op(B): lb[(bj * KWG + kk) * NWI + x] = op(B)[k0 + kk, col0 + bj * NWI + x]. */
        if (STAGE_B && tb) {
#if NWI % 8 == 0
            /* eight columns at a time, transposed in registers; an edge tile's columns past
             * n clamped to the last */
            for (int bj = 0; bj < NDIM; bj++)
                for (int x = 0; x < NWI; x += 8) {
                    const int col = col0 + bj * NWI + x;
                    __local float *dst = lb + bj * KWG * NWI + x;
                    if (edge)
                        PACK_K8_EDGE(dst, NWI, b, col, n - 1, ldb, k0, kc)
                    else
                        PACK_K8(dst, NWI, b + (size_t)col * ldb + k0, ldb, kc)
                }
#else
            for (int bj = 0; bj < NDIM; bj++)
                for (int x = 0; x < NWI; x++) {
                    const int col = col0 + bj * NWI + x;
                    __global const store_t *src =
                        b + (size_t)(edge ? min(col, n - 1) : col) * ldb + k0;
                    __local float *dst = lb + bj * KWG * NWI + x;
                    PACK_K(dst, NWI, src, kc);
                }
#endif
        } else if (STAGE_B) {
            for (int kk = 0; kk < kc; kk++) {
                __global const store_t *br = b + (size_t)(k0 + kk) * ldb + col0;
                for (int x = 0; x < NWG; x += VW) {
                    __local float *dst = lb + ((x / NWI) * KWG + kk) * NWI + x % NWI;
                    if (!edge || col0 + x + VW <= n) {
                        VSTORE(GLOAD(br + x), dst);
                    } else {
                        for (int e = 0; e < VW; e++)
                            dst[e] = LOAD(br, min(col0 + x + e, n - 1) - col0);
                    }
                }
            }
        }
        /* Each block: its sums from lacc (zero at the first step), kc steps, back. */
        for (int bi = 0; bi < MDIM; bi++) {
            int ra[MWI];
            _Pragma("unroll") for (int i = 0; i < MWI; i++) ra[i] = min(row0 + bi * MWI + i, m - 1);
            for (int bj = 0; bj < NDIM; bj++) {
                const int cb = col0 + bj * NWI;
                __local float *accp = lacc + (bi * MWI) * NWG + bj * NWI;
                floatv acc[MWI][NVW];
                _Pragma("unroll") for (int i = 0; i < MWI; i++)
                    _Pragma("unroll") for (int j = 0; j < NVW; j++) acc[i][j] =
                        k0 == 0 ? (floatv)(0.0f) : VLOAD(accp + i * NWG + j * VW);
                __local const float *pa = la + bi * KWG * MWI;
                __local const float *pb = lb + bj * KWG * NWI;
                for (int kk = 0; kk < kc; kk++)
                    K_STEP(k0 + kk, pa[kk * MWI + i], pb + kk * NWI + j * VW);
                if (!edge && k0 + KWG >= k) { /* the last step of an interior tile: C */
                    _Pragma("unroll") for (int i = 0; i < MWI; i++)
                    {
                        __global cstore_t *cr = c + (size_t)(row0 + bi * MWI + i) * ldc + cb;
                        _Pragma("unroll") for (int j = 0; j < NVW; j++)
                        {
                            const floatv v = alpha * acc[i][j];
                            CGSTORE(beta == 0.0f ? v : v + beta * CGLOAD(cr + j * VW), cr + j * VW);
                        }
                    }
                } else {
                    _Pragma("unroll") for (int i = 0; i < MWI; i++)
                        _Pragma("unroll") for (int j = 0; j < NVW; j++)
                            VSTORE(acc[i][j], accp + i * NWG + j * VW);
                }
            }
        }
    }
    if (!edge)
        return; /* interior tiles wrote C from their registers at the last step */
    /* Edge tiles, C from the sums: alpha * acc + beta * c, within the matrix. */
    for (int r = 0; r < MWG; r++) {
        const int row = row0 + r;
        if (edge && row >= m)
            break;
        __global cstore_t *cr = c + (size_t)row * ldc + col0;
        for (int x = 0; x < NWG; x += VW) {
            if (!edge || col0 + x + VW <= n) {
                const floatv v = alpha * VLOAD(lacc + r * NWG + x);
                CGSTORE(beta == 0.0f ? v : v + beta * CGLOAD(cr + x), cr + x);
            } else {
                for (int e = 0; e < VW && col0 + x + e < n; e++) {
                    const float v = alpha * lacc[r * NWG + x + e];
                    CSTORE(cr, x + e, beta == 0.0f ? v : v + beta * CLOAD(cr, x + e));
                }
            }
        }
    }
}
#endif

#endif /* !DOT */

/* The work-group's tile crosses row m or column n. */
#define TILE_IS_EDGE()                                                                             \
    ((int)(get_group_id(1) + 1) * MWG > m || (int)(get_group_id(0) + 1) * NWG > n)

#if SERIAL
#define LOCAL_A_SIZE (STAGE_A ? KWG * MWG : 1)
#define LOCAL_B_SIZE (STAGE_B ? KWG * NWG : 1)
#define LOCAL_ACC_SIZE (MWG * NWG)
#define WG_SHAPE 1, 1, 1
#define BODY gemm_serial
#define LACC , lacc
#else
#define LOCAL_A_SIZE (STAGE_A ? MWG * KWG : 1)
#define LOCAL_B_SIZE (STAGE_B ? KWG * NWG : 1)
#define LOCAL_ACC_SIZE 1
#define WG_SHAPE NDIM, MDIM, 1
#define BODY gemm_body
#define LACC
#endif

#define GEMM_KERNEL(name, ta, tb)                                                                  \
    __kernel __attribute__((reqd_work_group_size(WG_SHAPE))) void name(                            \
        int m, int n, int k, float alpha, float beta, __global const store_t *a, int a_off,        \
        int lda, int stride_a,                                       /* op(A) [m, k] */            \
        __global const store_t *b, int b_off, int ldb, int stride_b, /* op(B) [k, n] */            \
        __global cstore_t *c, int c_off, int ldc, int stride_c)      /* C [m, n] */                \
    {                                                                                              \
        __local float la[LOCAL_A_SIZE];     /* staged or packed op(A) */                           \
        __local float lb[LOCAL_B_SIZE];     /* staged or packed op(B) */                           \
        __local float lacc[LOCAL_ACC_SIZE]; /* serial mode: the tile's sums */                     \
        (void)lacc;                                                                                \
        const size_t z = get_global_id(2);                                                         \
        a += a_off + z * (size_t)stride_a;                                                         \
        b += b_off + z * (size_t)stride_b;                                                         \
        c += c_off + z * (size_t)stride_c;                                                         \
        if (TILE_IS_EDGE())                                                                        \
            BODY(ta, tb, 1, m, n, k, alpha, beta, a, lda, b, ldb, c, ldc, la, lb LACC);            \
        else                                                                                       \
            BODY(ta, tb, 0, m, n, k, alpha, beta, a, lda, b, ldb, c, ldc, la, lb LACC);            \
    }

/* engine/gemm_own.c builds one program per transpose pair (CLT_GEMM_PAIR 0 to 3, trans_a * 2
 * + trans_b) and one for split-K's reduction (4), so that a configuration compiles only the
 * kernel it runs: on PoCL, whose program binaries hold every kernel compiled, a configuration
 * with all five cost a tuner about 10 s to build, one with one kernel 5 s. Without
 * CLT_GEMM_PAIR (-1: the file alone) all five are built. */
#ifndef CLT_GEMM_PAIR
#define CLT_GEMM_PAIR -1
#endif
#define CLT_GEMM_HAS(pair) (CLT_GEMM_PAIR < 0 || CLT_GEMM_PAIR == (pair))
#if DOT
#if CLT_GEMM_PAIR != 1 && CLT_GEMM_PAIR != 4
#error "gemm.cl: dot mode (STAGE 8) computes A B^T alone (CLT_GEMM_PAIR 1)"
#endif
#if CLT_GEMM_HAS(1)
/* Dot mode (STAGE 8), for A B^T with a long k on CPU devices (the weight gradients of a
 * convolution: C is small, A's and B's rows are long and contiguous). Local (1, 1, 1), global
 * (ceil(n / NWG), ceil(m / MWG), batch), as in serial mode. The one work-item of a group owns
 * the MWG x NWG block of C at rows gy * MWG, columns gx * NWG, and computes each element as a
 * dot product of a row of A and a row of B, VW elements of k at a time: MWG x NWG vector sums,
 * lane e taking k = e, e + VW, e + 2 VW, ... in order (one fma chain per lane), then added
 * lanes pairwise (halves of the vector, then halves of those) and the k remainder (k mod VW)
 * added in order. No packing, no local memory: both operands are read along their rows, which
 * the tiled kernels would have to transpose into panels for a product of few columns. Rows
 * and columns past the matrix read its last row (computed, never stored). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
gemm_nt(int m, int n, int k, float alpha, float beta, __global const store_t *a, int a_off, int lda,
        int stride_a, __global const store_t *b, int b_off, int ldb, int stride_b,
        __global cstore_t *c, int c_off, int ldc, int stride_c)
{
    const size_t z = get_global_id(2);
    const int row0 = (int)get_global_id(1) * MWG, col0 = (int)get_global_id(0) * NWG;
    a += a_off + z * (size_t)stride_a;
    b += b_off + z * (size_t)stride_b;
    c += c_off + z * (size_t)stride_c;
    __global const store_t *ar[MWG];
    __global const store_t *br[NWG];
    _Pragma("unroll") for (int i = 0; i < MWG; i++) ar[i] = a + (size_t)min(row0 + i, m - 1) * lda;
    _Pragma("unroll") for (int j = 0; j < NWG; j++) br[j] = b + (size_t)min(col0 + j, n - 1) * ldb;
    floatv acc[MWG][NWG];
    _Pragma("unroll") for (int i = 0; i < MWG; i++) _Pragma("unroll") for (int j = 0; j < NWG; j++)
        acc[i][j] = (floatv)0.0f;
    int kk = 0;
    for (; kk + VW <= k; kk += VW) {
        floatv bv[NWG];
        _Pragma("unroll") for (int j = 0; j < NWG; j++) bv[j] = GLOAD(br[j] + kk);
        _Pragma("unroll") for (int i = 0; i < MWG; i++)
        {
            const floatv av = GLOAD(ar[i] + kk);
            _Pragma("unroll") for (int j = 0; j < NWG; j++) acc[i][j] = fma(av, bv[j], acc[i][j]);
        }
    }
    _Pragma("unroll") for (int i = 0; i < MWG; i++)
    {
        _Pragma("unroll") for (int j = 0; j < NWG; j++)
        {
            const floatv v = acc[i][j];
#if VW == 16
            const float8 h8 = v.lo + v.hi;
            const float4 h4 = h8.lo + h8.hi;
#elif VW == 8
            const float4 h4 = v.lo + v.hi;
#else
            const float4 h4 = v;
#endif
            const float2 h2 = h4.lo + h4.hi;
            float s = h2.x + h2.y;
            for (int q = kk; q < k; q++)
                s = fma(LOAD(ar[i], q), LOAD(br[j], q), s);
            const int row = row0 + i, col = col0 + j;
            if (row < m && col < n) {
                const size_t at = (size_t)row * ldc + col;
                const float r = alpha * s;
                CSTORE(c, at, beta == 0.0f ? r : r + beta * CLOAD(c, at));
            }
        }
    }
}
#endif
#else
#if CLT_GEMM_HAS(0)
GEMM_KERNEL(gemm_nn, 0, 0)
#endif
#if CLT_GEMM_HAS(1)
GEMM_KERNEL(gemm_nt, 0, 1)
#endif
#if CLT_GEMM_HAS(2)
GEMM_KERNEL(gemm_tn, 1, 0)
#endif
#if CLT_GEMM_HAS(3)
GEMM_KERNEL(gemm_tt, 1, 1)
#endif
#endif /* DOT */

/* gemm_split_reduce: C = alpha * (P_0 + ... + P_{parts-1}) + beta * C, the last step of
 * split-K. P is [parts][m][n] fp32 partial products (tight, from element p_off), C [m, n] in
 * the storage with row stride ldc from element c_off; with beta == 0, C is not read. One
 * work-item per element of C: global (n, m), any local shape; work-items past the matrix
 * return. The partials are added in order s = 0, 1, ..., whatever the work-group. */
#if CLT_GEMM_HAS(4)
__kernel void gemm_split_reduce(int m, int n, int parts, float alpha, float beta,
                                __global const float *p, int p_off,      /* [parts, m, n] */
                                __global store_t *c, int c_off, int ldc) /* C [m, n] */
{
    const int col = get_global_id(0), row = get_global_id(1);
    if (row >= m || col >= n)
        return;
    p += p_off + (size_t)row * n + col;
    float s = p[0];
    for (int i = 1; i < parts; i++)
        s += p[(size_t)i * m * n];
    const float r = alpha * s;
    c += c_off;
    const size_t at = (size_t)row * ldc + col;
    STORE(c, at, beta == 0.0f ? r : r + beta * LOAD(c, at));
}
#endif
