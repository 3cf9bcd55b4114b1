/*
 * ref_attention.h: the C reference of attention (engine/ops/attention.h), in double.
 *
 * q, k, v, dout [B, H, T, D]; p, dp [B, H, T, T]; every output in double. Causal masking:
 * query i attends to keys j <= i. The grouped-query forms take k, v with fewer heads.
 */
#ifndef CLTRAIN_TEST_REF_ATTENTION_H
#define CLTRAIN_TEST_REF_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>

/* Grouped-query attention: q, dout [B, H, T, D], k, v [B, HKV, T, D] with HKV dividing H;
 * query head h of batch item i uses key/value head h / (H / HKV) of item i. p [B, H, T, T],
 * o, dq [B, H, T, D], dk, dv [B, HKV, T, D]. */
void ref_attention_gqa_forward(const float *q, const float *k, const float *v, int64_t b, int64_t h,
                               int64_t hkv, int64_t t, int64_t d, double scale, bool causal,
                               double *p, double *o);
void ref_attention_gqa_backward(const float *q, const float *k, const float *v, const float *dout,
                                int64_t b, int64_t h, int64_t hkv, int64_t t, int64_t d,
                                double scale, bool causal, double *dq, double *dk, double *dv);

/* Multi-head attention (HKV = H): */
/* p = softmax(mask(scale * q k^T)) row-wise, o = p v. */
void ref_attention_forward(const float *q, const float *k, const float *v, int64_t b, int64_t h,
                           int64_t t, int64_t d, double scale, bool causal, double *p, double *o);

/* Gradients of the forward's o with respect to q, k and v given dout, recomputing p in
 * double. Overwrites dq, dk, dv. */
void ref_attention_backward(const float *q, const float *k, const float *v, const float *dout,
                            int64_t b, int64_t h, int64_t t, int64_t d, double scale, bool causal,
                            double *dq, double *dk, double *dv);

/* The log-sum-exp of every score row, lse [B, H, T]: m + log(sum_j exp(s_ij - m)) over the
 * live keys j, with s_ij = scale q_i . k_j and m the largest of them (what the tiled
 * attention keeps for its backward). */
void ref_attention_lse(const float *q, const float *k, int64_t b, int64_t h, int64_t t, int64_t d,
                       double scale, bool causal, double *lse);

#endif
