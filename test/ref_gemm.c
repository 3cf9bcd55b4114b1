/*
 * ref_gemm.c: see ref_gemm.h.
 */
#include "ref_gemm.h"

void ref_gemm(const struct clt_gemm_shape *g, const float *a, const float *b, const float *c,
              double *out)
{
    int64_t batch = g->batch > 0 ? g->batch : 1;
    for (int64_t z = 0; z < batch; z++) {
        const float *az = a + z * g->stride_a, *bz = b + z * g->stride_b;
        const float *cz = c + z * g->stride_c;
        double *oz = out + z * g->stride_c;
        for (int64_t i = 0; i < g->m; i++) {
            for (int64_t j = 0; j < g->n; j++) {
                double acc = 0.0;
                for (int64_t p = 0; p < g->k; p++) {
                    double x = g->trans_a ? az[p * g->lda + i] : az[i * g->lda + p];
                    double y = g->trans_b ? bz[j * g->ldb + p] : bz[p * g->ldb + j];
                    acc += x * y;
                }
                double prev = g->beta != 0.0f ? (double)cz[i * g->ldc + j] : 0.0;
                oz[i * g->ldc + j] = g->alpha * acc + (double)g->beta * prev;
            }
        }
    }
}
