/*
 * ref_gemm.h: the C reference of gemm, in double.
 */
#ifndef CLTRAIN_TEST_REF_GEMM_H
#define CLTRAIN_TEST_REF_GEMM_H

#include "cltrain.h"

/* out = alpha * op(A) * op(B) + beta * c, for a shape whose leading dimensions and strides
 * are resolved (clt__gemm_resolve). out has the layout of C; with beta 0, c is not read. */
void ref_gemm(const struct clt_gemm_shape *g, const float *a, const float *b, const float *c,
              double *out);

#endif
