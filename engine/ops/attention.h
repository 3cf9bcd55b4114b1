/*
 * attention.h: scaled dot-product attention with several heads and an optional causal mask,
 * multi-head or grouped-query.
 *
 * Letters: B batch, H query heads, HKV key/value heads (HKV divides H; R = H / HKV), T sequence
 * length (queries and keys), D head size.
 * Layout: q, o and their gradients are [B, H, T, D]; k, v and theirs [B, HKV, T, D];
 * contiguous, row-major. Query head h uses key/value head h / R (grouped-query attention;
 * HKV = H is multi-head attention, HKV = 1 multi-query). A model whose activations are
 * [B, T, H * D] permutes them to [B, H, T, D] before and back after; that permutation is
 * another op.
 *
 * Forward:  S = scale * Q K^T          [B, H, T, T]
 *           P = softmax(mask(S))       row-wise; masked entries are exactly 0
 *           O = P V                    [B, H, T, D]
 * Backward: dV = P^T dO,  dP = dO V^T,  dS = scale * P * (dP - rowsum(dP * P)),
 *           dQ = dS K,    dK = dS^T Q.
 * Causal masking: query i attends to keys j <= i.
 *
 * The forward keeps P in a caller-provided buffer of clt__attention_probs_bytes() that the
 * backward reads; the backward needs a scratch buffer of clt__attention_workspace_bytes().
 * Launchers only enqueue on dev->queue: they never allocate and never block. Buffers must not
 * overlap, except that q, k and v may be the same read-only tensor.
 */
#ifndef CLTRAIN_OPS_ATTENTION_H
#define CLTRAIN_OPS_ATTENTION_H

#include "internal.h"

/* The default scale 1 / sqrt(d); d > 0. */
float clt__attention_scale(int64_t d);

/* Bytes of the probability buffer P the forward writes and the backward reads:
 * B * H * T * T floats. 0 for negative sizes. */
uint64_t clt__attention_probs_bytes(int64_t b, int64_t h, int64_t t);

/* Bytes of the backward's scratch buffer (dP, then dS): B * H * T * T floats. */
uint64_t clt__attention_workspace_bytes(int64_t b, int64_t h, int64_t t);

/* Enqueues O = softmax(mask(scale * Q K^T)) V and keeps the probabilities in p.
 * b, h, t may be 0 (nothing is enqueued; hkv 0 with h 0); d must be positive. */
enum clt_status clt__attention_forward(struct clt_device *dev, struct clt__buf q, /* [B, H, T, D] */
                                       struct clt__buf k, /* [B, HKV, T, D] */
                                       struct clt__buf v, /* [B, HKV, T, D] */
                                       struct clt__buf p, /* out: [B, H, T, T] */
                                       struct clt__buf o, /* out: [B, H, T, D] */
                                       int64_t b, int64_t h, int64_t hkv, int64_t t, int64_t d,
                                       float scale, bool causal);

/* Bits of clt__attention_backward's write/accumulate mask, in the order of the graph op
 * sdpa's inputs (q, k, v), so that the op passes its acc mask through: set, the gradient is
 * added to (g += ...); clear, written (g = ...). */
#define CLT__ATTENTION_ACC_DQ 1
#define CLT__ATTENTION_ACC_DK 2
#define CLT__ATTENTION_ACC_DV 4
#define CLT__ATTENTION_ACC_ALL 7

/* Enqueues dQ, dK, dV from dO in one pass, given the forward's inputs and its p: dP and the
 * softmax's backward run once, however many of dQ and dK are asked for. Each gradient is
 * written or accumulated as its bit of acc_mask says. Any of dq, dk, dv may be {NULL, 0}:
 * that gradient is skipped (and its bit ignored). work is overwritten; it may be {NULL, 0}
 * when dq and dk both are. */
enum clt_status clt__attention_backward(struct clt_device *dev,
                                        struct clt__buf q,    /* [B, H, T, D] */
                                        struct clt__buf k,    /* [B, HKV, T, D] */
                                        struct clt__buf v,    /* [B, HKV, T, D] */
                                        struct clt__buf p,    /* [B, H, T, T] from forward */
                                        struct clt__buf dout, /* [B, H, T, D] */
                                        struct clt__buf work, /* scratch [B, H, T, T] */
                                        struct clt__buf dq,   /* out: [B, H, T, D] */
                                        struct clt__buf dk,   /* out: [B, HKV, T, D] */
                                        struct clt__buf dv,   /* out: [B, HKV, T, D] */
                                        int64_t b, int64_t h, int64_t hkv, int64_t t, int64_t d,
                                        float scale, bool causal, uint32_t acc_mask);

/* ---- The tiled path ----------------------------------------------------------------------
 * cl/attention.cl: the same function computed tile by tile with an online softmax; no [T, T]
 * matrix is ever written. The forward saves the [B, H, T] log-sum-exp of every score row
 * (clt__attention_lse_bytes) instead of P, and the backward reads O besides, recomputes the
 * scores from q, k and the log-sum-exp, and needs a scratch buffer of the same [B, H, T]
 * floats (for rowsum(dO * O)). D must be at most CLT__ATT_DMAX (cl/shared.h). Deterministic:
 * every output row has one owner, sums run in index order, no atomics. */

/* The graph op sdpa takes the tiled path when the GEMM path's P (B * H * T * T floats, and as
 * much again of workspace) would reach this many bytes. Below it the GEMM path is faster on
 * every device measured (PoCL: 2x to 3.4x at T = 64 to 1024; docs/bench.md, "Attention"); at
 * and above it the tiled path's memory, B * H * T * (D + 2) floats, wins. */
#define CLT__ATTENTION_FLASH_MIN_BYTES ((uint64_t)256 << 20)

/* Whether the graph op sdpa takes the tiled path at [B, H, T, D]: never when d >
 * CLT__ATT_DMAX; else always when force is "tiled", never when it is "gemm", and otherwise
 * when clt__attention_probs_bytes(b, h, t) >= CLT__ATTENTION_FLASH_MIN_BYTES. The builder
 * passes getenv("CLTRAIN_ATTENTION") as force. */
bool clt__attention_flash_chosen(int64_t b, int64_t h, int64_t t, int64_t d, const char *force);

/* Bytes of the tiled path's log-sum-exp, and of its backward's scratch: B * H * T floats. */
uint64_t clt__attention_lse_bytes(int64_t b, int64_t h, int64_t t);

/* Enqueues O as clt__attention_forward does, and the log-sum-exp of every score row. */
enum clt_status clt__attention_flash_forward(struct clt_device *dev,
                                             struct clt__buf q,   /* [B, H, T, D] */
                                             struct clt__buf k,   /* [B, H, T, D] */
                                             struct clt__buf v,   /* [B, H, T, D] */
                                             struct clt__buf lse, /* out: [B, H, T] */
                                             struct clt__buf o,   /* out: [B, H, T, D] */
                                             int64_t b, int64_t h, int64_t t, int64_t d,
                                             float scale, bool causal);

/* Enqueues dQ, dK, dV as clt__attention_backward does (same mask bits, same skipping of a
 * gradient whose buffer is {NULL, 0}), from the forward's o and lse. work is overwritten. */
enum clt_status clt__attention_flash_backward(struct clt_device *dev,
                                              struct clt__buf q,    /* [B, H, T, D] */
                                              struct clt__buf k,    /* [B, H, T, D] */
                                              struct clt__buf v,    /* [B, H, T, D] */
                                              struct clt__buf o,    /* [B, H, T, D] from forward */
                                              struct clt__buf lse,  /* [B, H, T] from forward */
                                              struct clt__buf dout, /* [B, H, T, D] */
                                              struct clt__buf work, /* scratch [B, H, T] */
                                              struct clt__buf dq,   /* out: [B, H, T, D] */
                                              struct clt__buf dk,   /* out: [B, H, T, D] */
                                              struct clt__buf dv,   /* out: [B, H, T, D] */
                                              int64_t b, int64_t h, int64_t t, int64_t d,
                                              float scale, bool causal, uint32_t acc_mask);

#endif
