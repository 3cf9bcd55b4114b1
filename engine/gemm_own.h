/*
 * gemm_own.h: the engine's own GEMM kernel (cl/gemm.cl) and its tunable configurations.
 *
 * A configuration names one compiled variant of the kernel (tile sizes, vector widths,
 * local-memory staging: the #ifndef tunables of cl/gemm.cl). The tuner (gemm.c, tune.c) asks
 * for a search space per device and shape, times each candidate, and keeps the best by its
 * text form; everything else treats the struct as opaque.
 *
 * Split-K (split S > 1): a product with few output tiles for the device's compute units and a
 * long k runs as S partial products over consecutive chunks of k (k / S each; the k % S left
 * over as one more partial), computed by the variant's batched kernel into an fp32 scratch
 * (dev->gemm_split, grown on demand), then added by gemm_split_reduce into C as alpha * sum +
 * beta * C in the storage. In a 16-bit storage the partials stay fp32 (the variant is built
 * with CLT_GEMM_C_F32), so only C's final value is rounded. Batched shapes (batch > 1) run
 * with S = 1 whatever the configuration says.
 */
#ifndef CLTRAIN_GEMM_OWN_H
#define CLTRAIN_GEMM_OWN_H

#include "internal.h"

/* One variant of cl/gemm.cl. Fields are the kernel's tunables; 0 in every field is not a
 * valid configuration (use clt__gemm_own_default). */
struct clt__gemm_config {
    uint16_t mwg, nwg, kwg; /* C tile per work-group: rows, columns; k step per stage */
    uint16_t mdim, ndim;    /* work-group shape: work-items along rows, columns */
    uint8_t vw;             /* vector width of global loads (1, 2, 4, 8, 16) */
    uint8_t stage;          /* bit 0: A tile through local memory, bit 1: B tile; bit 2:
                             * serial mode, one work-item per group runs the mdim x ndim
                             * blocks in turn over packed panels (CPU devices); or 8
                             * (CLT__GEMM_STAGE_DOT): dot mode, A B^T only, one work-item per
                             * group computes its mwg x nwg block of C as dot products along k,
                             * vw elements of k at a time (mdim = ndim = 1, kwg = vw) */
    uint16_t split;         /* k splits S (split-K, above); 0 or 1: none. At most
                             * CLT__GEMM_MAX_SPLIT */
};

/* Most k splits a configuration may ask for. */
#define CLT__GEMM_MAX_SPLIT 64

/* The stage of dot mode (above). */
#define CLT__GEMM_STAGE_DOT 8

/* The configuration used without tuning on this device for this (resolved) shape: the first
 * of clt__gemm_own_space. g may be NULL (no shape preference). */
void clt__gemm_own_default(struct clt_device *dev, const struct clt_gemm_shape *g,
                           struct clt__gemm_config *out);

/* Writes up to `max` candidate configurations valid on this device (local memory, work-group
 * size) for this shape into out, likeliest first; returns how many (at most the list's 25 on
 * a CPU, 18 elsewhere, plus 2 fitted, plus 6, plus 4 in dot mode). The set is a fixed list per
 * kind of device (CPU or other) filtered by its limits; on a CPU device a product of fewer than
 * 16 rows and at least 32 columns also gets fitted tiles of exactly m rows (64 and 32 columns
 * wide, as many as fit in n) before the list (gemm_own.c, base_space).
 * The shape moves candidates whose tiles would mostly compute padding, or leave compute units
 * idle, to the end (serial mode first there, then the least padded first), and adds split-K
 * candidates (at most 6, after the fitting ones) for one product with a long k and few output
 * tiles, or a k much longer than it is wide (gemm_own.c, split_space); on a CPU device, for
 * A B^T with such a k or fewer than 16 columns, dot mode's candidates first (dot_space). g may be
 * NULL: the device's list in its own order, none fitted, none split, no dot mode. */
size_t clt__gemm_own_space(struct clt_device *dev, const struct clt_gemm_shape *g,
                           struct clt__gemm_config *out, size_t max);

/* A hash of the fixed list of candidates of this kind of device (CPU or other), split-K's
 * rules aside: part of the tuning cache's identity, so that a library whose search space
 * changed times its shapes again instead of keeping choices made among other candidates. */
uint64_t clt__gemm_own_space_id(const struct clt_device *dev);

/* Text form, e.g. "mwg=64,nwg=64,kwg=16,mdim=8,ndim=8,vw=4,stage=3", for the tuning cache and
 * `cltrain tune --show`, with ",split=S" after it when S > 1. Returns what snprintf returns. */
int clt__gemm_config_format(const struct clt__gemm_config *c, char *buf, size_t size);

/* Parses the text form; false when it is malformed or not a valid configuration (split, when
 * present, is 2 to CLT__GEMM_MAX_SPLIT; absent, S = 1). */
bool clt__gemm_config_parse(const char *s, struct clt__gemm_config *out);

/* Builds (or loads from the binary cache) the variant now, with its four kernels (one per
 * transpose pair; dot mode's one) and, split, its reduction; logs and returns an error when the
 * device refuses it. Enqueues nothing. A device keeps at most CLT__MAX_VARIANTS variants of all
 * programs. */
enum clt_status clt__gemm_own_prepare(struct clt_device *dev, const struct clt__gemm_config *c);

/* Gets the program of c's kernel for transpose pair (trans_a, trans_b), and its reduction
 * when c splits k, as a run would: a program the tuner built for timing (binaries deferred,
 * clt_device.defer_binaries) is then written to the binary cache. */
enum clt_status clt__gemm_own_keep(struct clt_device *dev, const struct clt__gemm_config *c,
                                   bool trans_a, bool trans_b);

/* Why the device cannot run c (a sentence), or NULL when it may (before building: the kernel's
 * own work-group limit is checked by clt__gemm_own_prepare). */
const char *clt__gemm_own_refusal(const struct clt_device *dev, const struct clt__gemm_config *c);

/* Whether c computes products of this transpose pair: every configuration but dot mode's,
 * which computes A B^T (trans_a false, trans_b true) alone. */
bool clt__gemm_own_computes(const struct clt__gemm_config *c, bool trans_a, bool trans_b);

/* Enqueues the GEMM of a resolved shape (clt__gemm_resolve) with variant c, building it first
 * when needed, in dev->storage. Same semantics as clt__gemm. A dot mode configuration and a
 * shape other than A B^T: CLT_ERR_INVALID_ARGUMENT, logged. */
enum clt_status clt__gemm_own_run(struct clt_device *dev, const struct clt__gemm_config *c,
                                  const struct clt_gemm_shape *g, struct clt__buf a,
                                  struct clt__buf b, struct clt__buf cbuf);

/* clt__gemm_widened (internal.h) with the fp32 GEMM run by fp32, or when fp32 is NULL by the
 * own kernel in configuration own (not NULL), or by clt__gemm's fp32 choice. */
enum clt_status clt__gemm_widened_own(struct clt_device *dev, const struct clt_gemm_shape *g,
                                      struct clt__buf a, struct clt__buf b, struct clt__buf c,
                                      clt__gemm_fn fp32, const struct clt__gemm_config *own);

/* Grows the scratch buffer *buf (of *have bytes) to at least `bytes` by replacing it (commands
 * already enqueued keep the old one alive until they finish); on failure logs `what`, leaves
 * *buf NULL and *have 0. The widened path's and split-K's scratch (dev->gemm_wide,
 * dev->gemm_split). */
enum clt_status clt__gemm_scratch_grow(struct clt_device *dev, cl_mem *buf, size_t *have,
                                       size_t bytes, const char *what);

#endif /* CLTRAIN_GEMM_OWN_H */
