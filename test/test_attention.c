/*
 * test_attention.c: attention (engine/ops/attention.c) against the C reference
 * (test/ref_attention.c), on both its paths: the GEMM path (its softmax in cl/loss.cl) and the
 * tiled path (cl/attention.cl). Every test runs once per path (the _tiled variants); the tiled
 * path is also checked against finite differences of its own forward here, the graph op sdpa
 * on both paths in test_ops.c.
 *
 * Inputs q, k, v, dO uniform in [-1, 1); shapes with odd T and D, one or several heads,
 * multi-head, grouped-query (2 and 3 query heads per key/value head) and multi-query, batch 1
 * and more, causal masking on and off, tensors at non-zero buffer offsets.
 *
 * Tolerances, |got - want| <= atol + rtol * |want|, each about 10 times the largest error
 * seen on PoCL (CLBlast and own GEMM), rusticl and Oclgrind, so that a slip of 1e-4 relative
 * in the softmax normaliser or the row sum of the backward fails:
 * - P and O: atol 2e-7 * (D + T), rtol 1e-5. A score is a float sum of D products of
 *   magnitude <= 1, which exp turns into a relative error of P of the same size; O adds a
 *   float sum of T products of magnitude <= 1.
 * - dQ, dK, dV: atol 5e-7 * (D + T) * (1 + T / 8) * R, rtol 1e-5: two more chained GEMMs of
 *   length T or D, and dS's difference dP - rowsum(P dP) cancels; with grouped queries dK and
 *   dV sum over the R = H / HKV heads of a group (R = 1 for multi-head attention).
 * - Large scores (q, k in [-30, 30): |S| in the hundreds, exp would overflow without the
 *   max subtraction; P nearly one-hot): the score error grows with |S|, so P and O: atol 1e-4,
 *   rtol 1e-4; gradients (up to ~30 in magnitude): atol 2e-3, rtol 1e-3.
 * - One gradient asked for at a time (B=1, H=2, T=5, D=3): atol 5e-6, rtol 1e-5, the
 *   dQ/dK/dV tolerance above for that shape; the gradients not asked for must keep their
 *   contents exactly.
 * - Causal masking: rows of O before a changed key/value are compared bit for bit, and masked
 *   entries of P must be exactly 0.
 * - The tiled path's log-sum-exp: the tolerance of P and O (it is a score plus the log of a sum
 *   in [1, T]).
 * - Finite differences of the tiled path (loss sum(O * W), W uniform in [-1, 1), central
 *   differences with step 1e-2 of a float forward): atol 2e-3, rtol 1e-2, about 20 times the
 *   largest error seen (rounding of the float loss over the step, and the step's cubic term).
 *
 * The launchers' tests are in this file, which lists every test; the attention layer through
 * the public API in test_attention_layer.c; the tensors and launches they share in
 * attention_rig.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention_rig.h"
#include "cl/shared.h"
#include "ops/attention.h"
#include "ref_attention.h"

static void matches_reference(void **state)
{
    struct clt_device *dev = *state;
    /* Multi-head, then grouped-query (two and three query heads per key/value head) and
     * multi-query (one key/value head). */
    static const struct shape big[] = {
        {1, 1, 1, 1, 3},  {1, 2, 2, 5, 8},    {1, 3, 3, 13, 17}, {2, 3, 3, 13, 5},
        {3, 2, 2, 67, 9}, {1, 1, 1, 130, 33}, {2, 1, 1, 45, 64}, {1, 2, 2, 97, 1},
        {2, 4, 2, 7, 5},  {3, 6, 2, 11, 3},   {2, 3, 1, 9, 7},   {1, 6, 3, 67, 9},
    };
    /* T = 37 crosses a tile (32) and a work-group (32 rows at most) of the tiled path. */
    static const struct shape small[] = {{1, 1, 1, 1, 3},  {1, 2, 2, 5, 8}, {1, 3, 3, 13, 17},
                                         {1, 1, 1, 37, 3}, {2, 4, 2, 7, 5}, {1, 3, 1, 5, 3}};
    const struct shape *shapes = clt_test_small() ? small : big;
    size_t count = clt_test_small() ? sizeof small / sizeof small[0] : sizeof big / sizeof big[0];
    for (size_t i = 0; i < count; i++)
        for (int causal = 0; causal < 2; causal++) {
            const struct shape *s = &shapes[i];
            /* dK and dV of a group sum over its R = H / HKV heads: R times the terms. */
            double span = (double)(s->d + s->t), r = (double)(s->h / s->hkv);
            check_case(dev, s, causal, 1.0f, 2e-7 * span, 1e-5,
                       5e-7 * span * r * (1.0 + (double)s->t / 8.0), 1e-5);
        }
}

static void large_scores_are_stable(void **state)
{
    struct clt_device *dev = *state;
    /* q, k in [-30, 30): scores of several hundred, beyond exp's float range (88). */
    const struct shape s = {1, 2, 2, 7, 8};
    for (int causal = 0; causal < 2; causal++)
        check_case(dev, &s, causal, 30.0f, 1e-4, 1e-4, 2e-3, 1e-3);
}

/* ---- Causal masking -------------------------------------------------------------------- */

/* Changing key/value j must leave rows i < j of O bit for bit as they were, must change row j,
 * and a dO that is zero from row j on must give exactly zero dK and dV at row j. */
static void causal_ignores_the_future(void **state)
{
    struct clt_device *dev = *state;
    const struct shape s = {1, 2, 2, 9, 5};
    const int64_t j = 4;
    size_t n = (size_t)(s.b * s.h * s.t * s.d);
    float *q = clt_test_floats(n), *k = clt_test_floats(n), *v = clt_test_floats(n);
    float *dout = clt_test_floats(n);
    float *o1 = clt_test_floats(n), *o2 = clt_test_floats(n), *g = clt_test_floats(n);
    clt_test_fill(q, n, 7, -1.0f, 1.0f);
    clt_test_fill(k, n, 8, -1.0f, 1.0f);
    clt_test_fill(v, n, 9, -1.0f, 1.0f);
    struct tensors x;
    tensors_create(dev, &s, &x);
    const float scale = clt__attention_scale(s.d);
    clt_test_put(&x.q, q, n);
    clt_test_put(&x.k, k, n);
    clt_test_put(&x.v, v, n);
    forward(dev, &s, true, scale, &x);
    clt_test_download(&x.o, o1, n);

    /* New key and value at position j in every head. */
    for (int64_t z = 0; z < s.b * s.h; z++)
        for (int64_t c = 0; c < s.d; c++) {
            k[(z * s.t + j) * s.d + c] += 0.75f;
            v[(z * s.t + j) * s.d + c] -= 0.5f;
        }
    clt_test_put(&x.k, k, n);
    clt_test_put(&x.v, v, n);
    forward(dev, &s, true, scale, &x);
    clt_test_download(&x.o, o2, n);
    for (int64_t z = 0; z < s.b * s.h; z++) {
        const int64_t head = z * s.t * s.d;
        for (int64_t i = 0; i < j; i++)
            for (int64_t c = 0; c < s.d; c++)
                if (memcmp(&o1[head + i * s.d + c], &o2[head + i * s.d + c], sizeof(float)))
                    fail_msg("head %lld: O[%lld, %lld] changed from %.9g to %.9g after key %lld "
                             "changed",
                             (long long)z, (long long)i, (long long)c,
                             (double)o1[head + i * s.d + c], (double)o2[head + i * s.d + c],
                             (long long)j);
        bool changed = false;
        for (int64_t c = 0; c < s.d; c++)
            changed |= o1[head + j * s.d + c] != o2[head + j * s.d + c];
        if (!changed)
            fail_msg("head %lld: row %lld of O did not change with its own key", (long long)z,
                     (long long)j);
    }

    /* dO nonzero only on rows < j: key/value j received no attention, so zero gradient. */
    clt_test_fill(dout, n, 10, -1.0f, 1.0f);
    for (int64_t z = 0; z < s.b * s.h; z++)
        for (int64_t i = j; i < s.t; i++)
            for (int64_t c = 0; c < s.d; c++)
                dout[(z * s.t + i) * s.d + c] = 0.0f;
    clt_test_put(&x.dout, dout, n);
    backward(dev, &s, true, scale, 0, &x);
    for (int w = 0; w < 2; w++) {
        clt_test_download(w == 0 ? &x.dk : &x.dv, g, n);
        for (int64_t z = 0; z < s.b * s.h; z++)
            for (int64_t i = j; i < s.t; i++)
                for (int64_t c = 0; c < s.d; c++)
                    if (g[(z * s.t + i) * s.d + c] != 0.0f)
                        fail_msg("%s[%lld, %lld, %lld] = %g, want exactly 0", w ? "dV" : "dK",
                                 (long long)z, (long long)i, (long long)c,
                                 (double)g[(z * s.t + i) * s.d + c]);
    }
    clt_arena_free(x.arena);
    free(q);
    free(k);
    free(v);
    free(dout);
    free(o1);
    free(o2);
    free(g);
}

/* ---- Gradients asked for one at a time --------------------------------------------------- */

/* A backward given only one of dq, dk, dv (the others {NULL, 0}, and work too when only dv is
 * asked for) writes that one as the full backward would and leaves the others alone; the
 * accumulate bits of the gradients not asked for are set, and must be ignored. */
static void computes_only_the_gradients_asked_for(void **state)
{
    struct clt_device *dev = *state;
    const struct shape s = {1, 2, 2, 5, 3};
    const size_t n = 30;
    float in[4][30], got[30], sentinel[30];
    double want[3][30];
    for (int i = 0; i < 4; i++)
        clt_test_fill(in[i], n, 301 + (uint64_t)i, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i++)
        sentinel[i] = 7.0f;
    const float scale = clt__attention_scale(s.d);
    ref_attention_backward(in[0], in[1], in[2], in[3], s.b, s.h, s.t, s.d, scale, true, want[0],
                           want[1], want[2]);
    struct tensors x;
    tensors_create(dev, &s, &x);
    clt_test_put(&x.q, in[0], n);
    clt_test_put(&x.k, in[1], n);
    clt_test_put(&x.v, in[2], n);
    clt_test_put(&x.dout, in[3], n);
    forward(dev, &s, true, scale, &x);
    struct clt_view *views[3] = {&x.dq, &x.dk, &x.dv};
    const char *names[3] = {"dQ", "dK", "dV"};
    const struct clt__buf none = {NULL, 0};
    for (int only = 0; only < 3; only++) {
        for (int i = 0; i < 3; i++)
            clt_test_put(views[i], sentinel, n);
        struct clt__buf g[3];
        for (int i = 0; i < 3; i++)
            g[i] = i == only ? clt__view_buf(views[i]) : none;
        /* The GEMM path needs no scratch for dV alone; the tiled one always does. */
        struct clt__buf work = only == 2 && !tiled ? none : clt__view_buf(&x.work);
        assert_int_equal(backward_into(dev, &s, true, scale, CLT__ATTENTION_ACC_ALL & ~(1u << only),
                                       &x, work, g[0], g[1], g[2]),
                         CLT_OK);
        for (int i = 0; i < 3; i++) {
            char what[64];
            clt_test_download(views[i], got, n);
            snprintf(what, sizeof what, "%s with only %s asked for", names[i], names[only]);
            if (i == only) {
                clt_test_assert_close(what, got, want[i], n, 5e-6, 1e-5);
            } else {
                for (size_t j = 0; j < n; j++)
                    if (got[j] != 7.0f)
                        fail_msg("%s: element %zu changed to %g", what, j, (double)got[j]);
            }
        }
    }
    clt_arena_free(x.arena);
}

/* ---- Per-gradient write or accumulate ----------------------------------------------------- */

/* Under each of the eight masks, one backward computes all three gradients: those whose bit is
 * set end at g0 + reference, the others at the reference whatever they held (g0 here). The
 * mask's bits are the graph op's input order (q, k, v), as its acc mask is. */
static void writes_or_accumulates_each_gradient_as_asked(void **state)
{
    _Static_assert(CLT__ATTENTION_ACC_DQ == 1u << 0 && CLT__ATTENTION_ACC_DK == 1u << 1 &&
                       CLT__ATTENTION_ACC_DV == 1u << 2,
                   "the mask's bits follow sdpa's inputs q, k, v");
    struct clt_device *dev = *state;
    const struct shape s = {2, 1, 1, 7, 3};
    const size_t n = 42;
    float in[4][42], g0[3][42], got[42];
    double want[3][42];
    for (int i = 0; i < 4; i++)
        clt_test_fill(in[i], n, 401 + (uint64_t)i, -1.0f, 1.0f);
    for (int i = 0; i < 3; i++)
        clt_test_fill(g0[i], n, 411 + (uint64_t)i, -1.0f, 1.0f);
    const float scale = clt__attention_scale(s.d);
    ref_attention_backward(in[0], in[1], in[2], in[3], s.b, s.h, s.t, s.d, scale, true, want[0],
                           want[1], want[2]);
    struct tensors x;
    tensors_create(dev, &s, &x);
    clt_test_put(&x.q, in[0], n);
    clt_test_put(&x.k, in[1], n);
    clt_test_put(&x.v, in[2], n);
    clt_test_put(&x.dout, in[3], n);
    forward(dev, &s, true, scale, &x);
    struct clt_view *views[3] = {&x.dq, &x.dk, &x.dv};
    const char *names[3] = {"dQ", "dK", "dV"};
    for (uint32_t mask = 0; mask <= CLT__ATTENTION_ACC_ALL; mask++) {
        for (int i = 0; i < 3; i++)
            clt_test_put(views[i], g0[i], n);
        backward(dev, &s, true, scale, mask, &x);
        for (int i = 0; i < 3; i++) {
            const bool acc = (mask >> i) & 1u;
            double expect[42];
            for (size_t j = 0; j < n; j++)
                expect[j] = want[i][j] + (acc ? (double)g0[i][j] : 0.0);
            char what[64];
            snprintf(what, sizeof what, "%s %s under mask %u", names[i],
                     acc ? "accumulated" : "written", (unsigned)mask);
            clt_test_download(views[i], got, n);
            clt_test_assert_close(what, got, expect, n, 5e-6, 1e-5);
        }
    }
    clt_arena_free(x.arena);
}

/* ---- Finite differences of the tiled path ----------------------------------------------- */

/* What the loss of a finite difference needs: the case's tensors, which input is perturbed
 * (0 q, 1 k, 2 v), the weights W of the loss sum(O * W). */
struct fd_ctx {
    struct clt_device *dev;
    const struct shape *s;
    struct tensors *x;
    bool causal;
    int input;
    const float *w;
    float *o;
};

static double fd_loss(void *ctx, const float *in, size_t n)
{
    struct fd_ctx *c = ctx;
    struct clt_view *views[3] = {&c->x->q, &c->x->k, &c->x->v};
    clt_test_put(views[c->input], in, n);
    forward(c->dev, c->s, c->causal, clt__attention_scale(c->s->d), c->x);
    clt_test_download(&c->x->o, c->o, n);
    double loss = 0.0;
    for (size_t i = 0; i < n; i++)
        loss += (double)c->o[i] * c->w[i];
    return loss;
}

/* dQ, dK, dV of the tiled backward against central differences of the tiled forward, causal
 * and not, at a T that spans two tiles and an odd D. */
static void tiled_matches_finite_differences(void **state)
{
    struct clt_device *dev = *state;
    const bool saved = tiled;
    tiled = true;
    const struct shape s = {1, 2, 2, 37, 5};
    const size_t n = (size_t)(s.b * s.h * s.t * s.d);
    float *in[3] = {clt_test_floats(n), clt_test_floats(n), clt_test_floats(n)};
    float *w = clt_test_floats(n), *o = clt_test_floats(n), *g = clt_test_floats(n);
    struct tensors x;
    tensors_create(dev, &s, &x);
    struct clt_view *views[3] = {&x.q, &x.k, &x.v};
    struct clt_view *grads[3] = {&x.dq, &x.dk, &x.dv};
    const char *names[3] = {"dQ", "dK", "dV"};
    for (int causal = 0; causal < 2; causal++) {
        for (int i = 0; i < 3; i++) {
            clt_test_fill(in[i], n, 501 + (uint64_t)(i + 3 * causal), -1.0f, 1.0f);
            clt_test_put(views[i], in[i], n);
        }
        clt_test_fill(w, n, 511 + (uint64_t)causal, -1.0f, 1.0f);
        clt_test_put(&x.dout, w, n);
        forward(dev, &s, causal, clt__attention_scale(s.d), &x);
        backward(dev, &s, causal, clt__attention_scale(s.d), 0, &x);
        for (int i = 0; i < 3; i++) {
            struct fd_ctx c = {dev, &s, &x, causal, i, w, o};
            char what[64];
            snprintf(what, sizeof what, "tiled %s causal=%d", names[i], causal);
            clt_test_download(grads[i], g, n);
            clt_test_gradcheck(what, fd_loss, &c, in[i], n, g, 24, 1e-2, 2e-3, 1e-2);
            clt_test_put(views[i], in[i], n);
        }
    }
    clt_arena_free(x.arena);
    for (int i = 0; i < 3; i++)
        free(in[i]);
    free(w);
    free(o);
    free(g);
    tiled = saved;
}

/* ---- Arguments ------------------------------------------------------------------------- */

static void checks_arguments(void **state)
{
    struct clt_device *dev = *state;
    /* B=1, H=2 (HKV 2, or 1 below), T=3, D=2. */
    const struct shape s = {1, 2, 2, 3, 2};
    struct tensors x;
    tensors_create(dev, &s, &x);
    float data[12];
    clt_test_fill(data, 12, 501, -1.0f, 1.0f);
    clt_test_put(&x.q, data, 12);
    clt_test_put(&x.k, data, 12);
    clt_test_put(&x.v, data, 12);
    clt_test_put(&x.dout, data, 12);
    struct clt__buf q = clt__view_buf(&x.q), k = clt__view_buf(&x.k), v = clt__view_buf(&x.v);
    struct clt__buf p = clt__view_buf(&x.p), o = clt__view_buf(&x.o);
    struct clt__buf dout = clt__view_buf(&x.dout), w = clt__view_buf(&x.work);
    struct clt__buf dq = clt__view_buf(&x.dq), dk = clt__view_buf(&x.dk);
    struct clt__buf dv = clt__view_buf(&x.dv), none = {NULL, 0};
    struct clt_test_log log = {0};
    const struct clt_log keep = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &log, CLT_LOG_DEBUG};

    assert_int_equal(clt__attention_forward(dev, q, k, v, p, o, 1, 2, 2, 3, 2, 0.5f, true), CLT_OK);
    assert_int_equal(
        clt__attention_backward(dev, q, k, v, p, dout, w, dq, dk, dv, 1, 2, 2, 3, 2, 0.5f, true, 0),
        CLT_OK);
    assert_int_equal(clt__attention_forward(dev, q, k, v, p, o, 1, 2, 1, 3, 2, 0.5f, true), CLT_OK);
    assert_int_equal(
        clt__attention_backward(dev, q, k, v, p, dout, w, dq, dk, dv, 1, 2, 1, 3, 2, 0.5f, true, 0),
        CLT_OK);
    /* Empty batches, heads or sequences enqueue nothing and succeed. */
    assert_int_equal(clt__attention_forward(dev, q, k, v, p, o, 0, 2, 2, 3, 2, 0.5f, false),
                     CLT_OK);
    assert_int_equal(clt__attention_forward(dev, q, k, v, p, o, 1, 0, 0, 3, 2, 0.5f, false),
                     CLT_OK);
    assert_int_equal(clt__attention_forward(dev, q, k, v, p, o, 1, 2, 2, 0, 2, 0.5f, false),
                     CLT_OK);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    assert_int_equal(log.len, 0);

    assert_int_equal(clt__attention_forward(dev, q, k, v, p, o, -1, 2, 2, 3, 2, 0.5f, false),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__attention_forward(dev, q, k, v, p, o, 1, 2, 2, 3, 0, 0.5f, false),
                     CLT_ERR_INVALID_ARGUMENT);
    /* Key/value heads that do not divide the query heads, none, or more than them. */
    const int64_t bad_heads[3][2] = {{3, 2}, {2, 0}, {2, 4}}; /* {H, HKV} */
    for (int i = 0; i < 3; i++)
        assert_int_equal(clt__attention_forward(dev, q, k, v, p, o, 1, bad_heads[i][0],
                                                bad_heads[i][1], 3, 2, 0.5f, false),
                         CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__attention_forward(dev, q, none, v, p, o, 1, 2, 2, 3, 2, 0.5f, false),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        clt__attention_forward(dev, q, k, v, p, o, 1, 2, 2, (int64_t)1 << 20, 2, 0.5f, false),
        CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__attention_backward(dev, q, k, v, p, dout, none, dq, dk, dv, 1, 2, 2, 3, 2,
                                             0.5f, false, 0),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__attention_backward(dev, q, k, v, p, dout, w, dq, dk, dv, 1, -3, 1, 3, 2,
                                             0.5f, false, CLT__ATTENTION_ACC_ALL),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__attention_backward(dev, q, k, v, p, dout, w, dq, dk, dv, 1, 2, 3, 3, 2,
                                             0.5f, false, CLT__ATTENTION_ACC_ALL),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__attention_forward(NULL, q, k, v, p, o, 1, 2, 2, 3, 2, 0.5f, false),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(log.text, "attention_forward"));
    assert_non_null(strstr(log.text, "attention_backward"));
    assert_non_null(strstr(log.text, "HKV must divide H"));

    assert_true(fabsf(clt__attention_scale(16) - 0.25f) == 0.0f);
    assert_true(clt__attention_probs_bytes(2, 3, 5) == 2 * 3 * 5 * 5 * sizeof(float));
    assert_true(clt__attention_workspace_bytes(2, 3, 5) == 2 * 3 * 5 * 5 * sizeof(float));
    assert_true(clt__attention_probs_bytes(-1, 3, 5) == 0);
    assert_true(clt__attention_lse_bytes(2, 3, 5) == 2 * 3 * 5 * sizeof(float));
    assert_true(clt__attention_lse_bytes(2, -3, 5) == 0);

    /* The tiled path: the same checks, and a head size beyond its private rows refused. */
    struct clt__buf lse = clt__view_buf(&x.lse);
    log.len = 0;
    log.text[0] = 0;
    assert_int_equal(clt__attention_flash_forward(dev, q, k, v, lse, o, 1, 1, 3, 2, 0.5f, true),
                     CLT_OK);
    assert_int_equal(clt__attention_flash_backward(dev, q, k, v, o, lse, dout, w, dq, dk, dv, 1, 1,
                                                   3, 2, 0.5f, true, 0),
                     CLT_OK);
    assert_int_equal(clt__attention_flash_forward(dev, q, k, v, lse, o, 1, 1, 0, 2, 0.5f, true),
                     CLT_OK);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    assert_int_equal(log.len, 0);
    assert_int_equal(clt__attention_flash_forward(dev, q, k, v, none, o, 1, 1, 3, 2, 0.5f, true),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__attention_flash_backward(dev, q, k, v, o, lse, dout, none, dq, dk, dv, 1,
                                                   1, 3, 2, 0.5f, true, 0),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        clt__attention_flash_forward(dev, q, k, v, lse, o, 1, 1, 1, CLT__ATT_DMAX + 1, 0.5f, false),
        CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt__attention_flash_forward(NULL, q, k, v, lse, o, 1, 1, 3, 2, 0.5f, false),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(log.text, "attention_flash_forward"));
    assert_non_null(strstr(log.text, "attention_flash_backward"));
    assert_non_null(strstr(log.text, "head size"));
    /* The rule: P of 256 MiB or more, or forced; never beyond CLT__ATT_DMAX. */
    assert_false(clt__attention_flash_chosen(16, 4, 64, 32, NULL));
    assert_false(clt__attention_flash_chosen(16, 4, 512, 32, NULL));
    assert_true(clt__attention_flash_chosen(16, 4, 1024, 32, NULL));
    assert_false(clt__attention_flash_chosen(16, 4, 1024, 32, "gemm"));
    assert_true(clt__attention_flash_chosen(1, 1, 5, 3, "tiled"));
    assert_false(clt__attention_flash_chosen(1, 1, 1 << 20, CLT__ATT_DMAX + 1, "tiled"));
    assert_true(clt__attention_flash_chosen(1, 1, 1 << 20, CLT__ATT_DMAX, NULL));
    dev->log = keep;
    clt_arena_free(x.arena);
}

/* The tests above on the tiled path. */
#define TILED(f)                                                                                   \
    static void f##_tiled(void **state)                                                            \
    {                                                                                              \
        tiled = true;                                                                              \
        f(state);                                                                                  \
        tiled = false;                                                                             \
    }
TILED(matches_reference)
TILED(large_scores_are_stable)
TILED(causal_ignores_the_future)
TILED(computes_only_the_gradients_asked_for)
TILED(writes_or_accumulates_each_gradient_as_asked)

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(matches_reference),
        CLT_DEVICE_TEST(large_scores_are_stable),
        CLT_DEVICE_TEST(causal_ignores_the_future),
        CLT_DEVICE_TEST(computes_only_the_gradients_asked_for),
        CLT_DEVICE_TEST(writes_or_accumulates_each_gradient_as_asked),
        CLT_DEVICE_TEST(checks_arguments),
        CLT_DEVICE_TEST(layer_matches_reference),
        CLT_DEVICE_TEST(layer_refuses_bad_options),
        CLT_DEVICE_TEST(matches_reference_tiled),
        CLT_DEVICE_TEST(large_scores_are_stable_tiled),
        CLT_DEVICE_TEST(causal_ignores_the_future_tiled),
        CLT_DEVICE_TEST(computes_only_the_gradients_asked_for_tiled),
        CLT_DEVICE_TEST(writes_or_accumulates_each_gradient_as_asked_tiled),
        CLT_DEVICE_TEST(tiled_matches_finite_differences),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
