/*
 * ref_attention.c: see ref_attention.h. Written for clarity, one head at a time, with the
 * textbook formulas and double accumulation throughout.
 */
#include <math.h>
#include <stdlib.h>

#include "ref_attention.h"

/* Softmax of one head's scores: p [T, T] from q, k [T, D]. */
static void head_probs(const float *q, const float *k, int64_t t, int64_t d, double scale,
                       bool causal, double *p)
{
    for (int64_t i = 0; i < t; i++) {
        int64_t live = causal ? i + 1 : t;
        double *row = p + i * t, m = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < live; j++) {
            double s = 0.0;
            for (int64_t c = 0; c < d; c++)
                s += (double)q[i * d + c] * (double)k[j * d + c];
            row[j] = scale * s;
            m = fmax(m, row[j]);
        }
        for (int64_t j = 0; j < live; j++) {
            row[j] = exp(row[j] - m);
            sum += row[j];
        }
        for (int64_t j = 0; j < live; j++)
            row[j] /= sum;
        for (int64_t j = live; j < t; j++)
            row[j] = 0.0;
    }
}

void ref_attention_gqa_forward(const float *q, const float *k, const float *v, int64_t b, int64_t h,
                               int64_t hkv, int64_t t, int64_t d, double scale, bool causal,
                               double *p, double *o)
{
    for (int64_t z = 0; z < b * h; z++) {
        const int64_t zkv = z / h * hkv + z % h / (h / hkv); /* its key/value head */
        const float *qz = q + z * t * d, *kz = k + zkv * t * d, *vz = v + zkv * t * d;
        double *pz = p + z * t * t, *oz = o + z * t * d;
        head_probs(qz, kz, t, d, scale, causal, pz);
        for (int64_t i = 0; i < t; i++)
            for (int64_t c = 0; c < d; c++) {
                double acc = 0.0;
                for (int64_t j = 0; j < t; j++)
                    acc += pz[i * t + j] * (double)vz[j * d + c];
                oz[i * d + c] = acc;
            }
    }
}

void ref_attention_forward(const float *q, const float *k, const float *v, int64_t b, int64_t h,
                           int64_t t, int64_t d, double scale, bool causal, double *p, double *o)
{
    ref_attention_gqa_forward(q, k, v, b, h, h, t, d, scale, causal, p, o);
}

void ref_attention_gqa_backward(const float *q, const float *k, const float *v, const float *dout,
                                int64_t b, int64_t h, int64_t hkv, int64_t t, int64_t d,
                                double scale, bool causal, double *dq, double *dk, double *dv)
{
    double *p = malloc((size_t)(t * t) * sizeof *p), *ds = malloc((size_t)(t * t) * sizeof *ds);
    if (!p || !ds)
        abort();
    /* dk and dv sum over the query heads of a group. */
    for (int64_t i = 0; i < b * hkv * t * d; i++)
        dk[i] = dv[i] = 0.0;
    for (int64_t z = 0; z < b * h; z++) {
        const int64_t off = z * t * d, kvoff = (z / h * hkv + z % h / (h / hkv)) * t * d;
        const float *qz = q + off, *kz = k + kvoff, *vz = v + kvoff, *gz = dout + off;
        head_probs(qz, kz, t, d, scale, causal, p);
        /* dV += P^T dO */
        for (int64_t j = 0; j < t; j++)
            for (int64_t c = 0; c < d; c++) {
                double acc = 0.0;
                for (int64_t i = 0; i < t; i++)
                    acc += p[i * t + j] * (double)gz[i * d + c];
                dv[kvoff + j * d + c] += acc;
            }
        /* dP = dO V^T, then dS = scale * P * (dP - sum_k P dP) row by row. */
        for (int64_t i = 0; i < t; i++) {
            double dot = 0.0;
            for (int64_t j = 0; j < t; j++) {
                double dp = 0.0;
                for (int64_t c = 0; c < d; c++)
                    dp += (double)gz[i * d + c] * (double)vz[j * d + c];
                ds[i * t + j] = dp;
                dot += p[i * t + j] * dp;
            }
            for (int64_t j = 0; j < t; j++)
                ds[i * t + j] = scale * p[i * t + j] * (ds[i * t + j] - dot);
        }
        /* dQ = dS K, dK += dS^T Q */
        for (int64_t i = 0; i < t; i++)
            for (int64_t c = 0; c < d; c++) {
                double aq = 0.0, ak = 0.0;
                for (int64_t j = 0; j < t; j++) {
                    aq += ds[i * t + j] * (double)kz[j * d + c];
                    ak += ds[j * t + i] * (double)qz[j * d + c];
                }
                dq[off + i * d + c] = aq;
                dk[kvoff + i * d + c] += ak;
            }
    }
    free(p);
    free(ds);
}

void ref_attention_backward(const float *q, const float *k, const float *v, const float *dout,
                            int64_t b, int64_t h, int64_t t, int64_t d, double scale, bool causal,
                            double *dq, double *dk, double *dv)
{
    ref_attention_gqa_backward(q, k, v, dout, b, h, h, t, d, scale, causal, dq, dk, dv);
}

void ref_attention_lse(const float *q, const float *k, int64_t b, int64_t h, int64_t t, int64_t d,
                       double scale, bool causal, double *lse)
{
    double *sc = malloc((size_t)t * sizeof *sc);
    if (!sc)
        abort();
    for (int64_t z = 0; z < b * h; z++)
        for (int64_t i = 0; i < t; i++) {
            const int64_t live = causal ? i + 1 : t;
            double m = -INFINITY, sum = 0.0;
            for (int64_t j = 0; j < live; j++) {
                double dot = 0.0;
                for (int64_t c = 0; c < d; c++)
                    dot += (double)q[(z * t + i) * d + c] * k[(z * t + j) * d + c];
                sc[j] = dot * scale;
                m = sc[j] > m ? sc[j] : m;
            }
            for (int64_t j = 0; j < live; j++)
                sum += exp(sc[j] - m);
            lse[z * t + i] = m + log(sum);
        }
    free(sc);
}
