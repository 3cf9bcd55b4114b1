/*
 * precision.h: 16-bit number formats: conversions on the host, their device kernels
 * (cl/precision.cl), and the NaN/Inf count the loss scaler reads (engine/scaler.h).
 *
 * fp16 is IEEE binary16 (1 sign, 5 exponent, 10 fraction bits: largest finite 65504,
 * smallest normal 2^-14, smallest subnormal 2^-24); bf16 is the top half of an fp32 (1, 8,
 * 7: fp32's range, 8 significant bits). Both are held as uint16_t bit patterns on the host
 * and as half (fp16) or ushort (bf16) on the device.
 *
 * Narrowing rounds to nearest, ties to even, as IEEE 754's default and PyTorch's .half()
 * and .bfloat16() do: a value past the largest finite one by half an ulp or more becomes Inf
 * (fp16: |x| >= 65520), values below the smallest subnormal by half an ulp or less become a
 * signed zero, subnormals are kept (the host never flushes them). Inf stays Inf; a NaN stays
 * a NaN with its sign, its top payload bits and the quiet bit set. Widening is exact: every
 * fp16 and bf16 value is an fp32.
 *
 * Launchers only enqueue on dev->queue: they allocate nothing and never wait. n, every
 * offset, and every offset plus n lie in 0 .. 2^31 - 1; bad arguments are
 * CLT_ERR_INVALID_ARGUMENT with a line in the log.
 */
#ifndef CLTRAIN_PRECISION_H
#define CLTRAIN_PRECISION_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* ==== Host conversions ================================================================== */

uint16_t clt__f32_to_f16(float x);
float clt__f16_to_f32(uint16_t h);
uint16_t clt__f32_to_bf16(float x);
float clt__bf16_to_f32(uint16_t h);

/* The bits of x rounded into precision p, and back: BF16, or FP16 for any other p (callers
 * keep fp32 values as floats and never ask for FP32 here). */
uint16_t clt__f32_to_half(enum clt_precision p, float x);
float clt__half_to_f32(enum clt_precision p, uint16_t h);

/* dst[i] = clt__f32_to_half(p, src[i]) for i < n, the same bits, in blocks the compiler
 * vectorizes, through F16C (fp16) or AVX2 (bf16) where the x86-64 CPU has them (the batch
 * upload of a 16-bit trainer narrows every F32 input this way). */
void clt__f32_to_half_n(enum clt_precision p, const float *src, uint16_t *dst, size_t n);

/* True when the bits are a NaN or an Inf of the format. */
bool clt__f16_nonfinite(uint16_t h);
bool clt__bf16_nonfinite(uint16_t h);

/* ==== Device conversions ================================================================ */

/* Enqueues dst[i] = src[i] rounded into p (FP16 or BF16) for i < n.
 *   src  [n] floats
 *   dst  [n] 16-bit values (offset in 16-bit elements) */
enum clt_status clt__precision_narrow(struct clt_device *dev, enum clt_precision p, int64_t n,
                                      struct clt__buf src, /* [n] float */
                                      struct clt__buf dst /* [n] 16-bit */);

/* Enqueues dst[i] = src[i] widened to fp32 (exact) for i < n.
 *   src  [n] 16-bit values (offset in 16-bit elements)
 *   dst  [n] floats */
enum clt_status clt__precision_widen(struct clt_device *dev, enum clt_precision p, int64_t n,
                                     struct clt__buf src, /* [n] 16-bit */
                                     struct clt__buf dst /* [n] float */);

/* Enqueues dst[i] = (acc ? dst[i] : 0) + src[i] * state.inv_scale for i < n, in fp32: a
 * 16-bit trainer's parameter gradients of one micro-step (scaled by the loss scale in fp16)
 * into the fp32 ones the optimizer reads, added across the micro-steps of an accumulation.
 * The scale is read on the device (no host read inside a step).
 *   src    [n] 16-bit values of p (FP16 or BF16), offset in 16-bit elements
 *   dst    [n] floats
 *   state  struct clt__scaler_state (scaler.h), offset in 32-bit words */
enum clt_status clt__precision_widen_grads(struct clt_device *dev, enum clt_precision p, int64_t n,
                                           struct clt__buf src,   /* [n] 16-bit */
                                           struct clt__buf dst,   /* [n] float */
                                           struct clt__buf state, /* scaler state */
                                           bool acc);

/* ==== NaN and Inf ======================================================================= */

/* Partial counts one check of n elements uses (1 at least), and the workspace bytes. */
int32_t clt__nonfinite_parts(int64_t n);
size_t clt__nonfinite_workspace_bytes(int64_t n);

/* Enqueues found[0] += the number of NaN and Inf among x[0..n) (saturating at INT32_MAX),
 * through a workspace of clt__nonfinite_workspace_bytes(n) (an int offset). The count is exact
 * and the same on every device, whatever the work-group size.
 *   x          [n] floats
 *   workspace  [clt__nonfinite_parts(n)] ints
 *   found      [1] int, kept by the caller (the scaler's state has one) */
enum clt_status clt__nonfinite_count(struct clt_device *dev, int64_t n,
                                     struct clt__buf x,         /* [n] float */
                                     struct clt__buf workspace, /* [parts] int */
                                     struct clt__buf found /* [1] int */);

#endif /* CLTRAIN_PRECISION_H */
