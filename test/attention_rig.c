/*
 * attention_rig.c: the tensors, launches and reference checks of the attention tests
 * (attention_rig.h); the tolerances are stated at the top of test_attention.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "attention_rig.h"
#include "ops/attention.h"
#include "ref_attention.h"

bool tiled;

void tensors_create(struct clt_device *dev, const struct shape *s, struct tensors *x)
{
    size_t n = (size_t)(s->b * s->h * s->t * s->d), nkv = (size_t)(s->b * s->hkv * s->t * s->d);
    size_t pn = (size_t)(clt__attention_probs_bytes(s->b, s->h, s->t) / sizeof(float));
    size_t wn = (size_t)(clt__attention_workspace_bytes(s->b, s->h, s->t) / sizeof(float));
    size_t ln = (size_t)(clt__attention_lse_bytes(s->b, s->h, s->t) / sizeof(float));
    uint64_t bytes = (uint64_t)(7 * n + pn + wn + ln + 16) * sizeof(float) + 13 * 4096;
    assert_int_equal(clt_arena_create(dev, bytes, &x->arena), CLT_OK);
    (void)clt_test_upload(x->arena, NULL, 3);
    x->q = clt_test_upload(x->arena, NULL, n);
    x->k = clt_test_upload(x->arena, NULL, nkv);
    x->v = clt_test_upload(x->arena, NULL, nkv);
    x->p = clt_test_upload(x->arena, NULL, pn);
    x->lse = clt_test_upload(x->arena, NULL, ln);
    x->o = clt_test_upload(x->arena, NULL, n);
    x->dout = clt_test_upload(x->arena, NULL, n);
    x->work = clt_test_upload(x->arena, NULL, wn);
    x->dq = clt_test_upload(x->arena, NULL, n);
    x->dk = clt_test_upload(x->arena, NULL, nkv);
    x->dv = clt_test_upload(x->arena, NULL, nkv);
}

void forward(struct clt_device *dev, const struct shape *s, bool causal, float scale,
             struct tensors *x)
{
    if (tiled) {
        assert_int_equal(clt__attention_flash_forward(dev, clt__view_buf(&x->q),
                                                      clt__view_buf(&x->k), clt__view_buf(&x->v),
                                                      clt__view_buf(&x->lse), clt__view_buf(&x->o),
                                                      s->b, s->h, s->t, s->d, scale, causal),
                         CLT_OK);
        return;
    }
    assert_int_equal(clt__attention_forward(dev, clt__view_buf(&x->q), clt__view_buf(&x->k),
                                            clt__view_buf(&x->v), clt__view_buf(&x->p),
                                            clt__view_buf(&x->o), s->b, s->h, s->hkv, s->t, s->d,
                                            scale, causal),
                     CLT_OK);
}

/* The backward of the current path into dq, dk, dv (any may be {NULL, 0}) with scratch work. */
enum clt_status backward_into(struct clt_device *dev, const struct shape *s, bool causal,
                              float scale, uint32_t acc_mask, struct tensors *x,
                              struct clt__buf work, struct clt__buf dq, struct clt__buf dk,
                              struct clt__buf dv)
{
    if (tiled)
        return clt__attention_flash_backward(
            dev, clt__view_buf(&x->q), clt__view_buf(&x->k), clt__view_buf(&x->v),
            clt__view_buf(&x->o), clt__view_buf(&x->lse), clt__view_buf(&x->dout), work, dq, dk, dv,
            s->b, s->h, s->t, s->d, scale, causal, acc_mask);
    return clt__attention_backward(dev, clt__view_buf(&x->q), clt__view_buf(&x->k),
                                   clt__view_buf(&x->v), clt__view_buf(&x->p),
                                   clt__view_buf(&x->dout), work, dq, dk, dv, s->b, s->h, s->hkv,
                                   s->t, s->d, scale, causal, acc_mask);
}

void backward(struct clt_device *dev, const struct shape *s, bool causal, float scale,
              uint32_t acc_mask, struct tensors *x)
{
    assert_int_equal(backward_into(dev, s, causal, scale, acc_mask, x, clt__view_buf(&x->work),
                                   clt__view_buf(&x->dq), clt__view_buf(&x->dk),
                                   clt__view_buf(&x->dv)),
                     CLT_OK);
}

/* Masked entries of P (key j > query i) must be exactly zero. */
static void assert_masked_zero(const char *what, const float *p, const struct shape *s)
{
    for (int64_t z = 0; z < s->b * s->h; z++)
        for (int64_t i = 0; i < s->t; i++)
            for (int64_t j = i + 1; j < s->t; j++)
                if (p[(z * s->t + i) * s->t + j] != 0.0f)
                    fail_msg("%s: P[%lld, %lld, %lld] = %g is masked and should be 0", what,
                             (long long)z, (long long)i, (long long)j,
                             (double)p[(z * s->t + i) * s->t + j]);
}

/* Forward and backward (all written, then all accumulated) of one shape against the reference, with
 * inputs uniform in [-amp, amp). */
void check_case(struct clt_device *dev, const struct shape *s, bool causal, float amp,
                double atol_fwd, double rtol_fwd, double atol_bwd, double rtol_bwd)
{
    if (tiled && s->hkv != s->h)
        return; /* the tiled path is multi-head only (clt_sdpa takes the GEMM path otherwise) */
    size_t n = (size_t)(s->b * s->h * s->t * s->d), pn = (size_t)(s->b * s->h * s->t * s->t);
    size_t nkv = (size_t)(s->b * s->hkv * s->t * s->d);
    size_t sizes[3] = {n, nkv, nkv}; /* of dQ, dK, dV */
    float *q = clt_test_floats(n), *k = clt_test_floats(nkv), *v = clt_test_floats(nkv);
    float *dout = clt_test_floats(n);
    float *g0[3] = {clt_test_floats(n), clt_test_floats(nkv), clt_test_floats(nkv)};
    float *got = clt_test_floats(n > pn ? n : pn);
    double *p = clt_test_doubles(pn), *o = clt_test_doubles(n);
    double *want[3] = {clt_test_doubles(n), clt_test_doubles(nkv), clt_test_doubles(nkv)};
    uint64_t seed =
        (uint64_t)(s->b * 1000003 + s->h * 1009 + s->hkv * 97 + s->t * 31 + s->d) * 2 + causal;
    clt_test_fill(q, n, seed + 1, -amp, amp);
    clt_test_fill(k, nkv, seed + 2, -amp, amp);
    clt_test_fill(v, nkv, seed + 3, -1.0f, 1.0f);
    clt_test_fill(dout, n, seed + 4, -1.0f, 1.0f);
    for (int i = 0; i < 3; i++)
        clt_test_fill(g0[i], sizes[i], seed + 5 + (uint64_t)i, -1.0f, 1.0f);
    const float scale = clt__attention_scale(s->d);
    ref_attention_gqa_forward(q, k, v, s->b, s->h, s->hkv, s->t, s->d, scale, causal, p, o);
    ref_attention_gqa_backward(q, k, v, dout, s->b, s->h, s->hkv, s->t, s->d, scale, causal,
                               want[0], want[1], want[2]);

    struct tensors x;
    tensors_create(dev, s, &x);
    clt_test_put(&x.q, q, n);
    clt_test_put(&x.k, k, nkv);
    clt_test_put(&x.v, v, nkv);
    clt_test_put(&x.dout, dout, n);
    /* Garbage in the outputs must not leak into a non-accumulating backward. */
    float *nan = clt_test_floats(n);
    for (size_t i = 0; i < n; i++)
        nan[i] = NAN;
    clt_test_put(&x.dq, nan, n);
    clt_test_put(&x.dk, nan, nkv);
    clt_test_put(&x.dv, nan, nkv);
    free(nan);

    char what[160];
    const char *names[3] = {"dQ", "dK", "dV"};
    struct clt_view *grads[3] = {&x.dq, &x.dk, &x.dv};
    forward(dev, s, causal, scale, &x);
    backward(dev, s, causal, scale, 0, &x);

    snprintf(what, sizeof what, "%s B=%lld H=%lld HKV=%lld T=%lld D=%lld causal=%d amp=%g",
             tiled ? "tiled" : "gemm", (long long)s->b, (long long)s->h, (long long)s->hkv,
             (long long)s->t, (long long)s->d, causal, (double)amp);
    char msg[200];
    if (tiled) {
        const size_t ln = (size_t)(s->b * s->h * s->t);
        double *lse = clt_test_doubles(ln);
        ref_attention_lse(q, k, s->b, s->h, s->t, s->d, scale, causal, lse);
        clt_test_download(&x.lse, got, ln);
        snprintf(msg, sizeof msg, "tiled LSE %s", what);
        clt_test_assert_close(msg, got, lse, ln, atol_fwd, rtol_fwd);
        free(lse);
    } else {
        clt_test_download(&x.p, got, pn);
        snprintf(msg, sizeof msg, "P %s", what);
        clt_test_assert_close(msg, got, p, pn, atol_fwd, rtol_fwd);
        if (causal)
            assert_masked_zero(msg, got, s);
    }
    clt_test_download(&x.o, got, n);
    snprintf(msg, sizeof msg, "O %s", what);
    clt_test_assert_close(msg, got, o, n, atol_fwd, rtol_fwd);
    for (int i = 0; i < 3; i++) {
        clt_test_download(grads[i], got, sizes[i]);
        snprintf(msg, sizeof msg, "%s %s", names[i], what);
        clt_test_assert_close(msg, got, want[i], sizes[i], atol_bwd, rtol_bwd);
    }

    /* accumulate: gradients start at g0 and must end at g0 + reference. */
    for (int i = 0; i < 3; i++)
        clt_test_put(grads[i], g0[i], sizes[i]);
    backward(dev, s, causal, scale, CLT__ATTENTION_ACC_ALL, &x);
    for (int i = 0; i < 3; i++) {
        for (size_t j = 0; j < sizes[i]; j++)
            want[i][j] += (double)g0[i][j];
        clt_test_download(grads[i], got, sizes[i]);
        snprintf(msg, sizeof msg, "%s (accumulate) %s", names[i], what);
        clt_test_assert_close(msg, got, want[i], sizes[i], atol_bwd, rtol_bwd);
    }

    clt_arena_free(x.arena);
    for (int i = 0; i < 3; i++) {
        free(g0[i]);
        free(want[i]);
    }
    free(q);
    free(k);
    free(v);
    free(dout);
    free(got);
    free(p);
    free(o);
}
