/*
 * gemm_own.c: configurations of the engine's own GEMM kernel (see gemm_own.h and cl/gemm.cl).
 *
 * A configuration becomes a program variant: cl/gemm.cl with its tunables prepended as
 * #defines, built once per device (and kept in the binary cache, whose identity hashes the
 * defines with the source). The variant's four kernels, one per transpose pair, are created on
 * first use and kept in the variant's slots.
 *
 * The search space is a fixed list per kind of device (CPU devices, and the rest: GPUs and
 * accelerators), with tiles fitted to a product of few rows on CPU devices, filtered by the
 * device's limits and reordered by shape:
 * candidates whose tiles would mostly compute padding, or leave compute units idle, go last,
 * and split-K candidates (gemm_own.h) come between the two where the shape has few tiles and
 * a long k (split_space).
 */
#include <stdio.h>
#include <string.h>

#include "gemm_own.h"

/* Kernel names by slot: transpose pairs at trans_a * 2 + trans_b, then split-K's reduction. */
static const char *const kernel_names[5] = {"gemm_nn", "gemm_nt", "gemm_tn", "gemm_tt",
                                            "gemm_split_reduce"};
#define REDUCE_SLOT 4

/* Split-K candidates: at most SPLIT_BASES base configurations, SPLIT_TRIES values of S each. */
#define SPLIT_BASES 2
#define SPLIT_TRIES 3

/* Largest register block a work-item may hold (floats). */
#define MAX_BLOCK 256

/* Largest block of C a dot mode work-item may hold: as many vector sums, beside one vector of
 * each of its rows of A and B (16 + 8 of AVX-512's 32 registers). */
#define DOT_MAX_BLOCK 16

/* A candidate in the lists below: per-work-item block, work-group shape, k step, staging. */
struct entry {
    uint8_t mwi, nwi, mdim, ndim;
    uint16_t kwg;
    uint8_t vw, stage;
};

/* CPU devices (PoCL, rusticl on llvmpipe): serial mode first (stage 7: one work-item per
 * group runs the tile's blocks in turn over packed panels of A and B, BLIS-style; measured on
 * PoCL at 1024 square it is several times faster than reading rows a power of two apart
 * straight from global memory). 6 x 16 and 4 x 16 blocks fill 12 and 8 of AVX2's 16 vector
 * registers, 4 x 32 and 8 x 32 suit AVX-512. Large tiles of 8 x 32 blocks (256, 128 and
 * 64 rows of 128 columns) come first: each tile packs op(B)'s k x 128 panel once, so more rows
 * per tile pack B fewer times; at 1024 square, where B does not fit the cache, 128 x 128 tiles
 * ran 210 GFLOP/s on a 2-core Sapphire Rapids Xeon, 32 x 128 tiles 154; later 256 x 128 tiles
 * 270 to 280 where 128 x 128 ran 246 to 257, and 1.06 to 1.16x at the gpt's 1024-row products
 * (their local memory, 512 KiB, fits PoCL's 2 MiB). Mid-sized tiles of 8 x
 * 32 blocks (64 x 64, 64 x 32, 32 x 64, KWG 64) serve the batched products of attention (64 x
 * 64 x 32 and 64 x 32 x 64, batch 64 in the gpt: 1.5x the 24 x 64 tiles there). Small serial tiles
 * fit the 32 KiB of local memory rusticl offers. Skinny serial tiles, 8 x 16 blocks (32 x 16, 64 x
 * 16) and 16 x 64, serve products with a side of about 10 (the models' output layers): at `nt`
 * 128 x 10 x 256, 21 us with 32 x 16 tiles against 35 with 64 x 32; at `tn` 10 x 256 x 128, 18
 * us with 16 x 64 tiles against 30 with 32 x 128. The unstaged register-blocked variants (stage 0)
 * serve small and skinny products (at most 32 work-items per group: llvmpipe allows no more for
 * these kernels), and 1 x 1 blocks run anywhere. */
static const struct entry cpu_list[] = {
    {8, 32, 32, 4, 256, 16, 7}, {8, 32, 16, 4, 256, 16, 7}, {8, 32, 8, 4, 256, 16, 7},
    {6, 16, 8, 8, 256, 8, 7},   {6, 16, 8, 16, 128, 8, 7},  {4, 16, 16, 8, 256, 8, 7},
    {6, 16, 16, 8, 256, 8, 7},  {8, 8, 8, 16, 256, 8, 7},   {4, 32, 8, 4, 256, 16, 7},
    {8, 32, 4, 4, 256, 16, 7},  {8, 32, 8, 2, 64, 16, 7},   {8, 32, 8, 1, 64, 16, 7},
    {8, 32, 4, 2, 64, 16, 7},   {6, 16, 4, 4, 64, 8, 7},    {4, 16, 4, 2, 64, 8, 7},
    {8, 16, 4, 1, 128, 16, 7},  {8, 16, 8, 1, 64, 16, 7},   {8, 32, 2, 2, 128, 16, 7},
    {6, 16, 4, 2, 64, 8, 0},    {4, 16, 8, 4, 64, 8, 0},    {8, 8, 8, 4, 64, 8, 0},
    {4, 8, 8, 4, 32, 8, 0},     {2, 16, 8, 4, 32, 8, 0},    {1, 8, 8, 4, 16, 8, 0},
    {1, 1, 8, 4, 16, 1, 0},
};

/* Fitted tiles on CPU devices: for a product of fewer rows than FIT_ROWS (the smallest tile of
 * the list has 16; the models' output layers give 10, a weight gradient m = 10), serial tiles
 * of exactly m rows, blocks of m x 16 columns (one AVX-512 vector per row), fit_ndims[i] blocks
 * across, KWG 128, where the product has at least a tile's columns. The list's tiles compute 16
 * or more rows there, mostly padding: on PoCL on a 2-core AMD EPYC, at `tn` 10 x 256 x 128, 10 x
 * 64 tiles ran 63 GFLOP/s (10 x 128: 62, 10 x 32: 55) against 43 for the list's best (16 x 64),
 * and PyTorch 59. Two widths, not more: each fitted tile is a program of its own, built for its
 * m (2 to 3 s on PoCL there, the first time), and narrower products are too small for the tile
 * to matter. */
#define FIT_ROWS 16
static const uint8_t fit_ndims[] = {4, 2};

/* Dot mode (stage 8) on CPU devices, for A B^T with a k much longer than the product is wide
 * (the weight gradients of a convolution, 16 x 9 x 50176 and 32 x 144 x 12544 in the cnn):
 * blocks of 4 x 4, 4 x 3 and 2 x 8 elements of C, 16 elements of k per step. On PoCL on a
 * 2-core AMD EPYC (AVX-512), at 16 x 9 x 50176, 200 us against 530 to 670 for the best tiled
 * configuration (split 8; PyTorch 250 to 300); at 32 x 144 x 12544, 600 to 800 us against
 * 1,640 (PyTorch 810). The tiled kernels transpose op(B) into panels and fill their blocks with
 * padding there; dot mode reads both operands along their rows. Also for A B^T of fewer than
 * DOT_NARROW columns, narrower than the tiled kernels' 16-wide vectors (the models' output
 * layers, n = 10): at 128 x 10 x 256, 12 us against 19 for the best tiled configuration; at
 * 128 x 10 x 784, 32 us against 66. */
#define DOT_NARROW 16
struct dot_entry {
    uint8_t mwg, nwg, vw;
};
static const struct dot_entry dot_list[] = {{4, 4, 16}, {4, 3, 16}, {2, 8, 16}};

/* GPUs and other devices: CLBlast-style 64 x 64 and 128 x 128 tiles staged in local memory with
 * 4 x 4 to 8 x 8 blocks per work-item, and smaller tiles for small products. */
static const struct entry gpu_list[] = {
    {8, 8, 8, 8, 16, 4, 3},   {4, 4, 16, 16, 16, 4, 3}, {8, 8, 16, 16, 16, 4, 3},
    {4, 8, 16, 8, 16, 4, 3},  {8, 4, 8, 16, 16, 4, 3},  {8, 8, 8, 8, 32, 4, 3},
    {4, 4, 16, 16, 32, 4, 3}, {4, 4, 8, 8, 16, 4, 3},   {8, 8, 16, 16, 8, 4, 3},
    {4, 4, 16, 16, 16, 2, 3}, {8, 8, 8, 8, 16, 8, 3},   {2, 2, 16, 16, 16, 2, 3},
    {4, 4, 16, 16, 16, 4, 2}, {4, 4, 16, 16, 16, 4, 0}, {2, 4, 8, 8, 16, 4, 3},
    {1, 1, 16, 16, 16, 1, 3}, {1, 1, 8, 8, 8, 1, 3},    {1, 1, 8, 8, 8, 1, 0},
};

static bool is_cpu(const struct clt_device *dev)
{
    return dev->info.type == CLT_DEVICE_CPU;
}

uint64_t clt__gemm_own_space_id(const struct clt_device *dev)
{
    const struct entry *list = is_cpu(dev) ? cpu_list : gpu_list;
    size_t n =
        is_cpu(dev) ? sizeof cpu_list / sizeof *cpu_list : sizeof gpu_list / sizeof *gpu_list;
    uint64_t h = CLT__FNV_SEED;
    for (size_t i = 0; i < n; i++) {
        const struct entry *e = &list[i];
        uint8_t f[8] = {
            e->mwi, e->nwi,  e->mdim, e->ndim, (uint8_t)(e->kwg & 0xff), (uint8_t)(e->kwg >> 8),
            e->vw,  e->stage};
        h = clt__hash64(h, f, sizeof f);
    }
    if (is_cpu(dev)) { /* the shape-dependent rules: fitted tiles, dot mode */
        const uint8_t rows[2] = {FIT_ROWS, DOT_NARROW};
        h = clt__hash64(h, rows, sizeof rows);
        h = clt__hash64(h, fit_ndims, sizeof fit_ndims);
        for (size_t i = 0; i < sizeof dot_list / sizeof *dot_list; i++) {
            const uint8_t f[4] = {dot_list[i].mwg, dot_list[i].nwg, dot_list[i].vw,
                                  CLT__GEMM_STAGE_DOT};
            h = clt__hash64(h, f, sizeof f);
        }
    }
    return h;
}

static struct clt__gemm_config from_entry(const struct entry *e)
{
    return (struct clt__gemm_config){.mwg = (uint16_t)(e->mwi * e->mdim),
                                     .nwg = (uint16_t)(e->nwi * e->ndim),
                                     .kwg = e->kwg,
                                     .mdim = e->mdim,
                                     .ndim = e->ndim,
                                     .vw = e->vw,
                                     .stage = e->stage,
                                     .split = 1};
}

/* Dot mode (stage 8): A B^T as dot products along k (cl/gemm.cl). */
static bool dot(const struct clt__gemm_config *c)
{
    return c->stage == CLT__GEMM_STAGE_DOT;
}

/* The rules that make a configuration compile (cl/gemm.cl's #error), device aside. */
static bool well_formed(const struct clt__gemm_config *c)
{
    if (c->mwg == 0 || c->nwg == 0 || c->kwg == 0 || c->mdim == 0 || c->ndim == 0 || c->mwg > 256 ||
        c->nwg > 256 || c->kwg > 256 || c->stage > CLT__GEMM_STAGE_DOT ||
        c->split > CLT__GEMM_MAX_SPLIT)
        return false;
    if (c->vw != 1 && c->vw != 2 && c->vw != 4 && c->vw != 8 && c->vw != 16)
        return false;
    if (dot(c))
        return c->mdim == 1 && c->ndim == 1 && c->kwg == c->vw && c->vw >= 4 &&
               c->mwg * c->nwg <= DOT_MAX_BLOCK;
    if (c->mwg % c->mdim != 0 || c->nwg % (c->ndim * c->vw) != 0)
        return false;
    return (c->mwg / c->mdim) * (c->nwg / c->ndim) <= MAX_BLOCK;
}

/* The number of k splits, S (1: none). */
static unsigned splits(const struct clt__gemm_config *c)
{
    return c->split > 1 ? c->split : 1;
}

/* Serial mode (stage bit 2): one work-item per group runs the tile's blocks in turn. */
static bool serial(const struct clt__gemm_config *c)
{
    return (c->stage & 4) != 0;
}

/* One work-item per work-group: serial and dot modes. */
static bool one_item(const struct clt__gemm_config *c)
{
    return serial(c) || dot(c);
}

/* Work-items per work-group. */
static size_t group_items(const struct clt__gemm_config *c)
{
    return one_item(c) ? 1 : (size_t)c->mdim * c->ndim;
}

static size_t local_bytes(const struct clt__gemm_config *c)
{
    if (dot(c))
        return 0;
    size_t sums = serial(c) ? (size_t)c->mwg * c->nwg : 1;
    size_t a = (c->stage & 1) ? (size_t)c->mwg * c->kwg : 1;
    size_t b = (c->stage & 2) ? (size_t)c->kwg * c->nwg : 1;
    return (a + b + sums) * sizeof(float);
}

/* Mesa's llvmpipe (rusticl) ends a work-item's loops, all of them together, after 65535
 * iterations (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS, "shared between every loop in a
 * shader"), silently: the kernel finishes with partial sums. Serial mode, where one work-item
 * runs a whole tile's blocks, packing loops included, passes that count at k of about 100 (24 x
 * 64 tiles, B transposed), so it is not offered there. */
static bool loops_limited(const struct clt_device *dev)
{
    return strstr(dev->info.name, "llvmpipe") != NULL;
}

/* Why the device cannot run c, or NULL when it can (before building). */
static const char *device_refusal(const struct clt_device *dev, const struct clt__gemm_config *c)
{
    const struct clt_device_info *i = &dev->info;
    if (!well_formed(c))
        return "malformed configuration";
    if (serial(c) && loops_limited(dev))
        return "serial mode runs more loop iterations per work-item than llvmpipe allows "
               "(65535 in all)";
    if (!one_item(c) &&
        ((uint64_t)c->mdim * c->ndim > i->max_work_group_size ||
         c->ndim > i->max_work_item_sizes[0] || c->mdim > i->max_work_item_sizes[1]))
        return "work-group larger than the device allows";
    if (local_bytes(c) > i->local_mem_bytes)
        return "staged tiles exceed the device's local memory";
    return NULL;
}

/* The C elements c's tiles cover for g, over those of the product (1: no padding). */
static double padding(const struct clt_gemm_shape *g, const struct clt__gemm_config *c)
{
    int64_t tm = (g->m + c->mwg - 1) / c->mwg, tn = (g->n + c->nwg - 1) / c->nwg;
    return (double)(tm * c->mwg) * (double)(tn * c->nwg) / ((double)g->m * (double)g->n);
}

/* The rank of a configuration that misfits g, lower first: serial mode before the others
 * (the CPU list's two tiers), then the least padded. */
static double misfit_rank(const struct clt_gemm_shape *g, const struct clt__gemm_config *c)
{
    return padding(g, c) + (serial(c) ? 0.0 : 1e9);
}

/* How badly c fits the shape: 0 fits, 1 computes mostly padding or leaves compute units idle. */
static int misfit(const struct clt_device *dev, const struct clt_gemm_shape *g,
                  const struct clt__gemm_config *c)
{
    if (!g)
        return 0;
    int64_t tm = (g->m + c->mwg - 1) / c->mwg, tn = (g->n + c->nwg - 1) / c->nwg;
    int64_t groups = tm * tn * (g->batch > 0 ? g->batch : 1);
    return padding(g, c) > 1.5 || groups < (int64_t)dev->info.compute_units;
}

const char *clt__gemm_own_refusal(const struct clt_device *dev, const struct clt__gemm_config *c)
{
    return device_refusal(dev, c);
}

bool clt__gemm_own_computes(const struct clt__gemm_config *c, bool trans_a, bool trans_b)
{
    return !dot(c) || (!trans_a && trans_b);
}

/* Whether k is much longer than the product is wide (a weight gradient). */
static bool long_k(const struct clt_gemm_shape *g)
{
    return g->k >= 16 * (g->m > g->n ? g->m : g->n);
}

/* Whether dot mode's candidates serve g (dot_list's comment): a long k or few columns. */
static bool dot_shape(const struct clt_gemm_shape *g)
{
    return long_k(g) || g->n < DOT_NARROW;
}

/* The blocks of C a configuration computes g in (tiles, or dot mode's blocks). */
static int64_t tiles_of(const struct clt_gemm_shape *g, const struct clt__gemm_config *c)
{
    return ((g->m + c->mwg - 1) / c->mwg) * ((g->n + c->nwg - 1) / c->nwg);
}

/* S0, the splits that give `tiles` blocks at least 2 per compute unit (of cu): the smallest
 * power of two from 2, at most CLT__GEMM_MAX_SPLIT. */
static int64_t first_split(int64_t tiles, int64_t cu)
{
    int64_t s = 2;
    while (s < CLT__GEMM_MAX_SPLIT && tiles * s < 2 * cu)
        s *= 2;
    return s;
}

/* Dot mode's candidates for g (at most max): on a CPU device, for A B^T with a long k or
 * fewer than DOT_NARROW columns (k at least 4 vector steps), each of dot_list unsplit, and the
 * first split in S0 chunks when its blocks are fewer than 2 per compute unit (S0 as in split_space,
 * each chunk at least 4 vector steps long): for one product, where the blocks leave cores idle. */
static size_t dot_space(struct clt_device *dev, const struct clt_gemm_shape *g,
                        struct clt__gemm_config *out, size_t max)
{
    if (!g || !is_cpu(dev) || g->trans_a || !g->trans_b || !dot_shape(g))
        return 0;
    int64_t cu = dev->info.compute_units > 0 ? (int64_t)dev->info.compute_units : 1;
    size_t n = 0;
    for (size_t i = 0; i < sizeof dot_list / sizeof *dot_list && n < max; i++) {
        const struct dot_entry *e = &dot_list[i];
        struct clt__gemm_config c = {e->mwg, e->nwg, e->vw, 1, 1, e->vw, CLT__GEMM_STAGE_DOT, 1};
        if (device_refusal(dev, &c) || g->k < 4 * (int64_t)e->vw)
            continue;
        out[n++] = c;
        int64_t blocks = tiles_of(g, &c), s = first_split(blocks, cu);
        if (i == 0 && n < max && g->batch <= 1 && blocks < 2 * cu &&
            g->k / s >= 4 * (int64_t)e->vw) {
            out[n] = c;
            out[n++].split = (uint16_t)s;
        }
    }
    return n;
}

static int64_t launch_k_limit(const struct clt__gemm_config *c);

/* Split-K candidates for g (at most SPLIT_BASES * SPLIT_TRIES, fewer when max is smaller).
 * Only for one product (batch 1) with k at least 8 k steps of the tile (8 * kwg). A base is a
 * configuration of the device's list whose tiles leave compute units idle (fewer than 2 tiles
 * per compute unit), or any when k is much longer than the product is wide (k >= 16 *
 * max(m, n), a weight gradient: on PoCL a 16 x 32 tile at 32 x 144 x 12544, 10 tiles for 2
 * cores, ran from as fast to twice as fast split, its chunks of A and B smaller in cache; the
 * tuner decides). The bases taken are the first SPLIT_BASES in list order whose padding fits
 * the shape (misfit's bound), else the least padded; 1 x 1 blocks after all others (they run
 * anywhere, slowly). Per base, S0 is the smallest power of two that makes tiles * S0 >= 2 *
 * compute units (at least 2, at most CLT__GEMM_MAX_SPLIT), and S takes S0 / 2, S0 and 2 * S0
 * where each chunk of k (k / S) is at least 4 * kwg, so the partial products stay long next to
 * the reduction. */
static size_t split_space(struct clt_device *dev, const struct clt_gemm_shape *g,
                          struct clt__gemm_config *out, size_t max)
{
    if (!g || g->batch > 1)
        return 0;
    const struct entry *list = is_cpu(dev) ? cpu_list : gpu_list;
    size_t count =
        is_cpu(dev) ? sizeof cpu_list / sizeof cpu_list[0] : sizeof gpu_list / sizeof gpu_list[0];
    int64_t cu = dev->info.compute_units > 0 ? (int64_t)dev->info.compute_units : 1;
    bool weight_gradient = long_k(g);
    struct clt__gemm_config bases[SPLIT_BASES];
    double pads[SPLIT_BASES]; /* rank: fitting ones by list position, then by padding */
    size_t nb = 0;
    for (size_t i = 0; i < count; i++) {
        struct clt__gemm_config c = from_entry(&list[i]);
        int64_t tm = (g->m + c.mwg - 1) / c.mwg, tn = (g->n + c.nwg - 1) / c.nwg;
        if (device_refusal(dev, &c) || (tm * tn >= 2 * cu && !weight_gradient) ||
            g->k < 8 * (int64_t)c.kwg)
            continue;
        double padded = (double)(tm * c.mwg) * (double)(tn * c.nwg);
        bool fits = padded <= 1.5 * (double)g->m * (double)g->n;
        bool unblocked = c.mwg == c.mdim && c.nwg == c.ndim; /* 1 x 1 blocks: slow anywhere */
        double pad = (fits ? (double)i : (double)count + padded) + (unblocked ? 1e18 : 0.0);
        /* Insertion into the SPLIT_BASES best ranked so far; an equal one stays behind. */
        size_t at = nb;
        while (at > 0 && pads[at - 1] > pad)
            at--;
        if (at == SPLIT_BASES)
            continue;
        for (size_t j = (nb < SPLIT_BASES ? nb : SPLIT_BASES - 1); j > at; j--) {
            bases[j] = bases[j - 1];
            pads[j] = pads[j - 1];
        }
        bases[at] = c;
        pads[at] = pad;
        if (nb < SPLIT_BASES)
            nb++;
    }
    size_t n = 0;
    for (size_t b = 0; b < nb; b++) {
        const struct clt__gemm_config *c = &bases[b];
        int64_t s0 = first_split(tiles_of(g, c), cu);
        for (int t = 0; t < SPLIT_TRIES && n < max; t++) {
            int64_t s = (s0 / 2) << t, chunk = g->k / s;
            if (s < 2 || s > CLT__GEMM_MAX_SPLIT || chunk < 4 * (int64_t)c->kwg ||
                (loops_limited(dev) && chunk > launch_k_limit(c)))
                continue;
            out[n] = *c;
            out[n++].split = (uint16_t)s;
        }
    }
    return n;
}

/* Most candidates base_space gives: the larger list and the fitted tiles. */
#define BASE_MAX                                                                                   \
    ((sizeof cpu_list / sizeof cpu_list[0] > sizeof gpu_list / sizeof gpu_list[0]                  \
          ? sizeof cpu_list / sizeof cpu_list[0]                                                   \
          : sizeof gpu_list / sizeof gpu_list[0]) +                                                \
     sizeof fit_ndims / sizeof fit_ndims[0])

/* The candidates before the shape orders them: on a CPU device, for a product of fewer than
 * FIT_ROWS rows, the fitted tiles as wide as the product or narrower first (serial mode, which
 * llvmpipe is not offered); then the device's list. Writes at most BASE_MAX; returns how
 * many. */
static size_t base_space(const struct clt_device *dev, const struct clt_gemm_shape *g,
                         struct clt__gemm_config *out)
{
    size_t n = 0;
    if (g && is_cpu(dev) && g->m < FIT_ROWS && !loops_limited(dev))
        for (size_t i = 0; i < sizeof fit_ndims / sizeof fit_ndims[0]; i++)
            if (16 * (int64_t)fit_ndims[i] <= g->n)
                out[n++] = (struct clt__gemm_config){.mwg = (uint16_t)g->m,
                                                     .nwg = (uint16_t)(16 * fit_ndims[i]),
                                                     .kwg = 128,
                                                     .mdim = 1,
                                                     .ndim = fit_ndims[i],
                                                     .vw = 16,
                                                     .stage = 7,
                                                     .split = 1};
    const struct entry *list = is_cpu(dev) ? cpu_list : gpu_list;
    size_t count =
        is_cpu(dev) ? sizeof cpu_list / sizeof cpu_list[0] : sizeof gpu_list / sizeof gpu_list[0];
    for (size_t i = 0; i < count; i++)
        out[n++] = from_entry(&list[i]);
    return n;
}

size_t clt__gemm_own_space(struct clt_device *dev, const struct clt_gemm_shape *g,
                           struct clt__gemm_config *out, size_t max)
{
    struct clt__gemm_config base[BASE_MAX];
    size_t count = base_space(dev, g, base);
    /* Dot mode's candidates first, where it applies; then those that fit the shape, in base
     * order; split-K's next; then the rest, serial mode first and the least padded first
     * within each (base order among equals): where no tile fits, as at a side of 10, the tiles
     * nearest the shape are timed before the cap on candidates cuts the list. */
    size_t n = dot_space(dev, g, out, max);
    for (size_t i = 0; i < count && n < max; i++)
        if (!device_refusal(dev, &base[i]) && !misfit(dev, g, &base[i]))
            out[n++] = base[i];
    n += split_space(dev, g, out + n, max - n);
    if (n == max)
        return n; /* full (clt__gemm_own_default asks for one): no misfit can enter */
    size_t first_misfit = n;
    for (size_t i = 0; i < count; i++) {
        const struct clt__gemm_config *c = &base[i];
        if (device_refusal(dev, c) || !misfit(dev, g, c))
            continue;
        /* Insertion among the misfits taken so far; at max, the most padded falls off. */
        size_t at = n;
        while (at > first_misfit && misfit_rank(g, &out[at - 1]) > misfit_rank(g, c))
            at--;
        if (at == max)
            continue;
        size_t moved = (n < max ? n : max - 1) - at;
        memmove(out + at + 1, out + at, moved * sizeof *out);
        out[at] = *c;
        if (n < max)
            n++;
    }
    return n;
}

void clt__gemm_own_default(struct clt_device *dev, const struct clt_gemm_shape *g,
                           struct clt__gemm_config *out)
{
    /* The likeliest candidate; on a device too small for any (fewer than 32 work-items per
     * group), one work-item per group with a 1 x 1 block. */
    if (clt__gemm_own_space(dev, g, out, 1) == 1)
        return;
    *out = (struct clt__gemm_config){1, 1, 1, 1, 1, 1, 0, 1};
}

int clt__gemm_config_format(const struct clt__gemm_config *c, char *buf, size_t size)
{
    char split[16] = "";
    if (splits(c) > 1)
        snprintf(split, sizeof split, ",split=%u", splits(c));
    return snprintf(buf, size, "mwg=%u,nwg=%u,kwg=%u,mdim=%u,ndim=%u,vw=%u,stage=%u%s",
                    (unsigned)c->mwg, (unsigned)c->nwg, (unsigned)c->kwg, (unsigned)c->mdim,
                    (unsigned)c->ndim, (unsigned)c->vw, (unsigned)c->stage, split);
}

bool clt__gemm_config_parse(const char *s, struct clt__gemm_config *out)
{
    /* Fields as digits only: sscanf's %u would also take signs and spaces. The eighth, split,
     * is optional: its absence is S = 1. */
    static const char *const keys[8] = {
        "mwg=", "nwg=", "kwg=", "mdim=", "ndim=", "vw=", "stage=", "split="};
    unsigned v[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    if (!s)
        return false;
    for (int i = 0; i < 8; i++) {
        if (i == 7 && s[-1] != ',')
            break; /* stage ended the text */
        size_t kl = strlen(keys[i]);
        if (strncmp(s, keys[i], kl) != 0)
            return false;
        s += kl;
        unsigned x = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 4) {
            x = x * 10 + (unsigned)(*s++ - '0');
            digits++;
        }
        if (digits == 0 || (*s >= '0' && *s <= '9'))
            return false;
        if (*s != (i < 6 || (i == 6 && *s == ',') ? ',' : '\0'))
            return false;
        s += *s == ',';
        v[i] = x;
        if (i == 7 && (x < 2 || x > CLT__GEMM_MAX_SPLIT))
            return false;
    }
    for (int i = 0; i < 7; i++)
        if (v[i] > 256)
            return false;
    struct clt__gemm_config c = {(uint16_t)v[0], (uint16_t)v[1], (uint16_t)v[2], (uint16_t)v[3],
                                 (uint16_t)v[4], (uint8_t)v[5],  (uint8_t)v[6],  (uint16_t)v[7]};
    if (!well_formed(&c))
        return false;
    *out = c;
    return true;
}

/* The kernel in one slot of variant c (kernel_names), building the variant when needed. A
 * split configuration in a 16-bit storage is its own variant, C in fp32 (CLT_GEMM_C_F32); in
 * fp32 it shares its twin's (the same configuration with S = 1). Each slot is a program of
 * its own (one kernel each); the reduction's program has no configuration. */
static enum clt_status get_kernel(struct clt_device *dev, const struct clt__gemm_config *c,
                                  int pair, cl_kernel *out)
{
    const char *why = device_refusal(dev, c);
    if (why) {
        char text[96];
        clt__gemm_config_format(c, text, sizeof text);
        clt__log(&dev->log, CLT_LOG_ERROR, "gemm: configuration %s refused on %s: %s", text,
                 dev->info.name, why);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    /* One program per transpose pair, and one reduction for every configuration (cl/gemm.cl,
     * CLT_GEMM_PAIR): a configuration compiles only the kernels it runs. */
    char defines[256];
    bool c_f32 = splits(c) > 1 && dev->storage != CLT_PRECISION_FP32;
    if (pair == REDUCE_SLOT)
        snprintf(defines, sizeof defines, "#define CLT_GEMM_PAIR %d\n", pair);
    else
        snprintf(defines, sizeof defines,
                 "#define MWG %u\n#define NWG %u\n#define KWG %u\n#define MDIM %u\n"
                 "#define NDIM %u\n#define VW %u\n#define STAGE %u\n%s#define CLT_GEMM_PAIR %d\n",
                 (unsigned)c->mwg, (unsigned)c->nwg, (unsigned)c->kwg, (unsigned)c->mdim,
                 (unsigned)c->ndim, (unsigned)c->vw, (unsigned)c->stage,
                 c_f32 ? "#define CLT_GEMM_C_F32 1\n" : "", pair);
    struct clt__program_variant *v;
    enum clt_status st = clt__program_variant_get(dev, "gemm", defines, &v);
    if (st != CLT_OK)
        return st;
    if (v->kernels[pair]) {
        *out = v->kernels[pair];
        return CLT_OK;
    }
    cl_int err;
    cl_kernel k = clCreateKernel(v->program, kernel_names[pair], &err);
    st = clt__cl_check(&dev->log, err, "clCreateKernel (gemm variant)");
    if (st != CLT_OK)
        return st;
    /* A GPU may allow fewer work-items for this kernel than for the device (registers). */
    size_t wg = 0;
    err = clGetKernelWorkGroupInfo(k, dev->id, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    if (err == CL_SUCCESS && pair != REDUCE_SLOT && wg < group_items(c)) {
        char text[96];
        clt__gemm_config_format(c, text, sizeof text);
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "gemm: configuration %s needs %u work-items per "
                 "group, %s allows %zu for this kernel",
                 text, (unsigned)(c->mdim * c->ndim), dev->info.name, wg);
        clReleaseKernel(k);
        return CLT_ERR_UNSUPPORTED;
    }
    v->kernels[pair] = k;
    *out = k;
    return CLT_OK;
}

enum clt_status clt__gemm_own_prepare(struct clt_device *dev, const struct clt__gemm_config *c)
{
    enum clt_status st = CLT_OK;
    for (int pair = 0; pair < (splits(c) > 1 ? 5 : 4) && st == CLT_OK; pair++) {
        cl_kernel k;
        if (clt__gemm_own_computes(c, pair >> 1 & 1, pair & 1) || pair == REDUCE_SLOT)
            st = get_kernel(dev, c, pair, &k);
    }
    return st;
}

enum clt_status clt__gemm_own_keep(struct clt_device *dev, const struct clt__gemm_config *c,
                                   bool trans_a, bool trans_b)
{
    cl_kernel k;
    enum clt_status st = get_kernel(dev, c, trans_a * 2 + trans_b, &k);
    if (st == CLT_OK && splits(c) > 1)
        st = get_kernel(dev, c, REDUCE_SLOT, &k);
    return st;
}

/* One launch of variant c for the whole of g. */
static enum clt_status run_one(struct clt_device *dev, const struct clt__gemm_config *c,
                               const struct clt_gemm_shape *g, struct clt__buf a, struct clt__buf b,
                               struct clt__buf cbuf)
{
    if (a.offset > INT32_MAX || b.offset > INT32_MAX || cbuf.offset > INT32_MAX) {
        clt__log(&dev->log, CLT_LOG_ERROR, "gemm: buffer offset beyond 2^31 elements");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    cl_kernel k;
    enum clt_status st = get_kernel(dev, c, g->trans_a * 2 + g->trans_b, &k);
    if (st != CLT_OK)
        return st;
    cl_int m = (cl_int)g->m, n = (cl_int)g->n, kk = (cl_int)g->k;
    cl_int lda = (cl_int)g->lda, ldb = (cl_int)g->ldb, ldc = (cl_int)g->ldc;
    cl_int sa = (cl_int)g->stride_a, sb = (cl_int)g->stride_b, sc = (cl_int)g->stride_c;
    cl_int oa = (cl_int)a.offset, ob = (cl_int)b.offset, oc = (cl_int)cbuf.offset;
    float alpha = g->alpha, beta = g->beta;
    struct clt__arg args[] = {
        CLT__ARG(m),     CLT__ARG(n),   CLT__ARG(kk),  CLT__ARG(alpha),    CLT__ARG(beta),
        CLT__ARG(a.mem), CLT__ARG(oa),  CLT__ARG(lda), CLT__ARG(sa),       CLT__ARG(b.mem),
        CLT__ARG(ob),    CLT__ARG(ldb), CLT__ARG(sb),  CLT__ARG(cbuf.mem), CLT__ARG(oc),
        CLT__ARG(ldc),   CLT__ARG(sc),
    };
    size_t batch = (size_t)(g->batch > 0 ? g->batch : 1);

    size_t lx = one_item(c) ? 1 : c->ndim, ly = one_item(c) ? 1 : c->mdim;
    size_t global[3] = {(size_t)((g->n + c->nwg - 1) / c->nwg) * lx,
                        (size_t)((g->m + c->mwg - 1) / c->mwg) * ly, batch};
    size_t local[3] = {lx, ly, 1};
    return clt__launch_kernel(dev, k, args, sizeof args / sizeof args[0], 3, global, local);
}

/* The most k one launch of c may take on a device that ends a work-item's loops after 65535
 * iterations (loops_limited), counting every loop of gemm_body as if none were unrolled: per
 * step of k the step itself, the loads of op(B) (NVW vectors, VW elements each on the guarded
 * path) and the MWI x NVW fma; the stores at the end take MWI x NVW x (VW + 1). A multiple
 * of KWG, at least one KWG. */
static int64_t launch_k_limit(const struct clt__gemm_config *c)
{
    if (dot(c)) {
        /* Per vw of k, every loop's iterations and its exit test counted: the step, nwg loads
         * of B, mwg loads of A with their nwg fma. Before and after: the row pointers, the
         * sums' zeroing and, per element of C, up to vw - 1 remainder steps. Measured on
         * llvmpipe with m = 5, n = 11: 4 x 4 blocks right at k = 32,000 and wrong at 40,000,
         * 4 x 3 right at 40,000 and wrong at 47,808, as this count predicts (33,824 and
         * 40,330); the 55,000 of 65,535 leaves a margin. */
        int64_t mwg = c->mwg, nwg = c->nwg;
        int64_t per = 3 + nwg + 2 * mwg + mwg * nwg;
        int64_t fixed = 2 * (mwg + nwg) + 2 * mwg * nwg + mwg * nwg * (c->vw + 1);
        int64_t steps = (55000 - fixed) / per;
        return steps > 1 ? steps * c->vw : c->vw;
    }
    int64_t mwi = c->mwg / c->mdim, nvw = c->nwg / c->ndim / c->vw;
    int64_t per_k = 2 + nvw * (1 + c->vw) + mwi * (1 + nvw);
    int64_t budget = 60000 - mwi * nvw * (c->vw + 1);
    int64_t kmax = budget / per_k / c->kwg * c->kwg;
    return kmax > c->kwg ? kmax : c->kwg;
}

/* Whether c runs g split: S > 1, one product, a chunk of at least one k, every offset and
 * stride of the partial launches within 2^31 elements (A and B from elements a_off, b_off),
 * and on llvmpipe a chunk one launch may take. */
static bool runs_split(const struct clt_device *dev, const struct clt__gemm_config *c,
                       const struct clt_gemm_shape *g, size_t a_off, size_t b_off)
{
    int64_t s = splits(c), chunk = g->k / s;
    if (s < 2 || g->batch > 1 || chunk < 1)
        return false;
    int64_t parts = s + (g->k % s != 0);
    int64_t sa = g->trans_a ? chunk * g->lda : chunk, sb = g->trans_b ? chunk : chunk * g->ldb;
    if ((int64_t)a_off + s * sa > INT32_MAX || (int64_t)b_off + s * sb > INT32_MAX ||
        parts * g->m * g->n > INT32_MAX)
        return false;
    return !loops_limited(dev) || chunk <= launch_k_limit(c);
}

/* Split-K (gemm_own.h): S partial products over chunks of k into dev->gemm_split, the k % S
 * left over as one more, then C = alpha * their sum + beta * C. */
static enum clt_status run_split(struct clt_device *dev, const struct clt__gemm_config *c,
                                 const struct clt_gemm_shape *g, struct clt__buf a,
                                 struct clt__buf b, struct clt__buf cbuf)
{
    int64_t s = splits(c), chunk = g->k / s, rest = g->k - s * chunk;
    int64_t mn = g->m * g->n, parts = s + (rest > 0);
    enum clt_status st = clt__gemm_scratch_grow(dev, &dev->gemm_split, &dev->gemm_split_bytes,
                                                (size_t)(parts * mn) * sizeof(float),
                                                "clCreateBuffer (GEMM split-K partials)");
    if (st != CLT_OK)
        return st;
    struct clt_gemm_shape p = *g;
    p.k = chunk;
    p.batch = s;
    p.alpha = 1.0f;
    p.beta = 0.0f;
    p.ldc = g->n;
    p.stride_a = g->trans_a ? chunk * g->lda : chunk;
    p.stride_b = g->trans_b ? chunk : chunk * g->ldb;
    p.stride_c = mn;
    st = run_one(dev, c, &p, a, b, (struct clt__buf){dev->gemm_split, 0});
    if (st == CLT_OK && rest > 0) {
        struct clt__buf ra = a, rb = b;
        ra.offset += (size_t)(s * p.stride_a);
        rb.offset += (size_t)(s * p.stride_b);
        p.k = rest;
        p.batch = 1;
        st = run_one(dev, c, &p, ra, rb, (struct clt__buf){dev->gemm_split, (size_t)(s * mn)});
    }
    cl_kernel k;
    if (st == CLT_OK)
        st = get_kernel(dev, c, REDUCE_SLOT, &k);
    if (st != CLT_OK)
        return st;
    cl_int m = (cl_int)g->m, n = (cl_int)g->n, np = (cl_int)parts, ldc = (cl_int)g->ldc;
    cl_int zero = 0, oc = (cl_int)cbuf.offset;
    cl_mem parts_mem = dev->gemm_split;
    float alpha = g->alpha, beta = g->beta;
    struct clt__arg args[] = {
        CLT__ARG(m),         CLT__ARG(n),    CLT__ARG(np),       CLT__ARG(alpha), CLT__ARG(beta),
        CLT__ARG(parts_mem), CLT__ARG(zero), CLT__ARG(cbuf.mem), CLT__ARG(oc),    CLT__ARG(ldc),
    };
    size_t global[2] = {(size_t)g->n, (size_t)g->m};
    return clt__launch_kernel(dev, k, args, sizeof args / sizeof args[0], 2, global, NULL);
}

enum clt_status clt__gemm_own_run(struct clt_device *dev, const struct clt__gemm_config *config,
                                  const struct clt_gemm_shape *g, struct clt__buf a,
                                  struct clt__buf b, struct clt__buf cbuf)
{
    if (cbuf.offset > INT32_MAX) {
        clt__log(&dev->log, CLT_LOG_ERROR, "gemm: buffer offset beyond 2^31 elements");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if (!clt__gemm_own_computes(config, g->trans_a, g->trans_b)) {
        char text[96];
        clt__gemm_config_format(config, text, sizeof text);
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "gemm: configuration %s (dot mode) computes A B^T only, not %s%s", text,
                 g->trans_a ? "A^T " : "A ", g->trans_b ? "B^T" : "B");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if (runs_split(dev, config, g, a.offset, b.offset))
        return run_split(dev, config, g, a, b, cbuf);
    /* Unsplit: the twin with S = 1 (in a 16-bit storage the split variant's C is fp32). */
    struct clt__gemm_config twin = *config;
    twin.split = 1;
    const struct clt__gemm_config *c = &twin;
    int64_t kmax = loops_limited(dev) ? launch_k_limit(c) : g->k;
    if (g->k <= kmax)
        return run_one(dev, c, g, a, b, cbuf);
    /* In a 16-bit storage the slices' partial sums would be rounded to it in C between
     * launches: the slices run on fp32 copies instead (widened, then C narrowed once). */
    if (dev->storage != CLT_PRECISION_FP32)
        return clt__gemm_widened_own(dev, g, a, b, cbuf, NULL, c);
    /* On llvmpipe, a long k runs as launches over consecutive slices of k, each adding
     * alpha * op(A) op(B) over its slice to C (beta applies to the first only): the sums are
     * then a few fma chains added together rather than one, within the same tolerance. */
    enum clt_status st = CLT_OK;
    for (int64_t k0 = 0; k0 < g->k && st == CLT_OK; k0 += kmax) {
        struct clt_gemm_shape part = *g;
        part.k = g->k - k0 < kmax ? g->k - k0 : kmax;
        if (k0 > 0)
            part.beta = 1.0f;
        struct clt__buf pa = a, pb = b;
        pa.offset += (size_t)(g->trans_a ? k0 * g->lda : k0);
        pb.offset += (size_t)(g->trans_b ? k0 : k0 * g->ldb);
        st = run_one(dev, c, &part, pa, pb, cbuf);
    }
    return st;
}
