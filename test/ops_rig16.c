/*
 * ops_rig16.c: running one row of test_ops.c's table in 16-bit storage (run_case16), and
 * what decides which rows run there, as test_ops.c's opening comment says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_rig.h"

/* The 16-bit tolerances, before a row's factor (op_case.tol16): four ulps of the storage,
 * relative and absolute (fp16 2^-11, bf16 2^-8 per rounding): inputs, parameters, the op's
 * stored output and the loss's product W * y each round once. */
static double tol16(enum clt_precision p)
{
    return p == CLT_PRECISION_FP16 ? 4.0 / 2048 : 4.0 / 256;
}

/* A log that drops what it is told: refusals this test expects, and lists itself. */
void quiet(void *user, enum clt_log_level level, const char *message)
{
    (void)user;
    (void)level;
    (void)message;
}

/* Whether clt__gemm follows the storage in this build (the GEMM branch of issue 16): a 2 x 3
 * by 3 x 2 product of small integers (exact in every storage) in fp16. Rows whose ops run
 * GEMMs are skipped in 16 bits otherwise. */
bool gemm_follows_storage(struct clt_device *dev)
{
    static int known = -1;
    if (known >= 0)
        return known;
    struct clt_arena *arena = NULL;
    assert_int_equal(clt_arena_create(dev, 4096, &arena), CLT_OK);
    const float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 2, 1, 0, 3};
    struct clt_view va = clt_test_tensor_st(arena, a, 6, CLT_PRECISION_FP16);
    struct clt_view vb = clt_test_tensor_st(arena, b, 6, CLT_PRECISION_FP16);
    struct clt_view vc = clt_test_tensor_st(arena, NULL, 4, CLT_PRECISION_FP16);
    struct clt_gemm_shape g = {.m = 2, .n = 2, .k = 3, .alpha = 1.0f, .beta = 0.0f};
    struct clt_log saved = dev->log;
    dev->log = (struct clt_log){quiet, NULL, CLT_LOG_ERROR}; /* a refusal is an answer here */
    enum clt_precision was = clt__storage_set(dev, CLT_PRECISION_FP16);
    enum clt_status st = clt__gemm(dev, &g, clt_test_buf_st(&va, CLT_PRECISION_FP16),
                                   clt_test_buf_st(&vb, CLT_PRECISION_FP16),
                                   clt_test_buf_st(&vc, CLT_PRECISION_FP16));
    clt__storage_set(dev, was);
    dev->log = saved;
    float c[4] = {0};
    if (st == CLT_OK)
        clt_test_get_st(&vc, c, 4, CLT_PRECISION_FP16);
    known = st == CLT_OK && c[0] == 5 && c[1] == 11 && c[2] == 14 && c[3] == 23;
    clt_arena_free(arena);
    return known;
}

/* Whether a row's op runs GEMMs: matmul, linear, conv2d, and sdpa but on its tiled path. */
bool runs_gemm(const struct op_case *oc)
{
    if (strcmp(oc->op, "sdpa") == 0)
        return !oc->attention || strcmp(oc->attention, "tiled") != 0;
    static const char *const ops[] = {"matmul", "linear", "conv2d"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(oc->op, ops[i]) == 0)
            return true;
    return false;
}

/* One row in a 16-bit storage, at its shapes (batch1: with its batch axis 1). Inputs, W, V
 * and the parameters are rounded to the storage first (the reference sees the values the
 * device holds), then:
 * - forward: evaluation's y against the reference in double, and the training loss;
 * - backward, write: the 16-bit gradient against an fp32 trainer's on the same values (the
 *   finite-difference checks are fp32's, run_case);
 * - accumulate: the write gradient + V; micro-batches: the write gradient (both micro-steps
 *   give the same 16-bit gradient, added and averaged in fp32: 1e-5).
 * Tolerances: tol16(prec) times the row's tol16 factor, relative and absolute (the loss:
 * absolute times the elements of y). Returns false when the trainer refuses the row. */
bool run_case16(struct clt_device *dev, const struct op_case *oc, bool batch1,
                enum clt_precision prec)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.c = oc;
    memcpy(c.decl, oc->decl, sizeof c.decl);
    int64_t b0 = oc->decl[0].shape[0];
    for (uint32_t k = 0; batch1 && k < oc->ndecl; k++)
        if (c.decl[k].shape[0] == b0)
            c.decl[k].shape[0] = 1;
    char what[160];
    snprintf(what, sizeof what, "%s (%s)%s in %s", oc->what, oc->op, batch1 ? ", batch 1" : "",
             clt_precision_name(prec));
    void *inputs[MAX_DECL] = {NULL};
    for (uint32_t k = 0; k < oc->ndecl; k++) {
        int64_t n = count_of(&c.decl[k]);
        if (c.decl[k].role == INPUT) {
            float *x = clt_test_floats((size_t)n);
            clt_test_fill(x, (size_t)n, 100 + k, -1.0f, 1.0f);
            clt_test_round(x, (size_t)n, prec);
            inputs[k] = x;
        } else if (c.decl[k].role == IDS) {
            int32_t *ids = calloc((size_t)n, sizeof *ids);
            assert_non_null(ids);
            int32_t span = c.decl[k].hi - c.decl[k].lo;
            for (int64_t i = 0; i < n; i++)
                ids[i] = c.decl[k].lo + (int32_t)((i * 5 + 3) % span);
            inputs[k] = ids;
        }
        c.d[k] = inputs[k];
    }
    {
        struct clt_graph *g;
        assert_int_equal(clt_graph_create(&g), CLT_OK);
        struct clt_tensor *t[MAX_DECL];
        for (uint32_t k = 0; k < oc->ndecl; k++) {
            char name[16];
            snprintf(name, sizeof name, "t%u", k);
            t[k] = clt_input(g, name, c.decl[k].role == IDS ? CLT_I32 : CLT_F32, c.decl[k].ndim,
                             c.decl[k].shape);
        }
        struct clt_tensor *y = oc->build(g, t);
        c.ny = 1;
        for (uint32_t i = 0; i < clt_tensor_ndim(y); i++)
            c.ny *= clt_tensor_dim(y, i);
        clt_graph_free(g);
    }
    float *w = clt_test_floats((size_t)c.ny);
    clt_test_fill(w, (size_t)c.ny, 17, -1.0f, 1.0f);
    clt_test_round(w, (size_t)c.ny, prec);
    float *vv[MAX_DECL] = {NULL};
    for (uint32_t k = 0; k < oc->ndecl; k++) {
        if (c.decl[k].role != PARAM)
            continue;
        int64_t n = count_of(&c.decl[k]);
        vv[k] = clt_test_floats((size_t)n);
        clt_test_fill(vv[k], (size_t)n, 200 + k, -1.0f, 1.0f);
        clt_test_round(vv[k], (size_t)n, prec);
    }
    struct run a, r32;
    bool ran = run_make_in(dev, &c, WRITE, w, vv, prec, &a) == CLT_OK;
    float *pv[MAX_PARAMS] = {NULL}, *ga[MAX_PARAMS] = {NULL}, *g32[MAX_PARAMS] = {NULL};
    float *gb[MAX_PARAMS] = {NULL}, *gm[MAX_PARAMS] = {NULL};
    double *yref = clt_test_doubles((size_t)c.ny);
    float *y = clt_test_floats((size_t)c.ny);
    if (!ran) {
        run_free(&a);
        goto out;
    }
    read_params(a.tr, &c, pv);
    for (uint32_t i = 0; i < c.np; i++) {
        c.p[i] = pv[i];
        if (!c.trained[i])
            continue;
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(a.tr, i, &info), CLT_OK);
        fill_spread(pv[i], c.pn[i], 31 + i);
        clt_test_round(pv[i], (size_t)c.pn[i], prec);
        assert_int_equal(clt_trainer_param_write(a.tr, info.name, pv[i], (uint64_t)c.pn[i]),
                         CLT_OK);
    }
    for (uint32_t k = 0, j = 0; k < oc->ndecl; k++)
        if (c.decl[k].role == PARAM)
            c.d[k] = c.p[j++];
    const double f = oc->tol16 ? oc->tol16 : 1.0, tol = tol16(prec) * f;
    char msg[240];

    float loss_eval = 0;
    assert_int_equal(clt_trainer_eval(a.tr, a.inputs, a.y, y, (uint64_t)c.ny, &loss_eval), CLT_OK);
    (oc->ref_eval ? oc->ref_eval : oc->ref)(&c, yref);
    snprintf(msg, sizeof msg, "%s: forward", what);
    clt_test_assert_close(msg, y, yref, (size_t)c.ny, tol, tol);

    /* The fp32 gradient on the same values. */
    run_make(dev, &c, WRITE, w, vv, &r32);
    for (uint32_t i = 0; i < c.np; i++) {
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(r32.tr, i, &info), CLT_OK);
        assert_int_equal(clt_trainer_param_write(r32.tr, info.name, c.p[i], (uint64_t)c.pn[i]),
                         CLT_OK);
    }
    step_gradients(&r32, &c, 1, g32);
    run_free(&r32);
    step_gradients(&a, &c, 1, ga);
    if (!oc->dropout) {
        float loss = 0;
        assert_int_equal(clt_trainer_loss(a.tr, &loss), CLT_OK);
        double want = ref_loss(&c, w, yref);
        snprintf(msg, sizeof msg, "%s: training loss", what);
        clt_test_assert_close(msg, &loss, &want, 1, tol * (double)c.ny, tol);
    }
    for (uint32_t i = 0; i < c.np; i++) {
        if (!c.trained[i])
            continue;
        double *want = clt_test_doubles((size_t)c.pn[i]);
        for (int64_t e = 0; e < c.pn[i]; e++)
            want[e] = g32[i][e];
        /* Dropout's masks are the same in both trainers (seed, step, index). */
        snprintf(msg, sizeof msg, "%s: gradient of parameter %u against fp32's", what, i);
        clt_test_assert_close(msg, ga[i], want, (size_t)c.pn[i], tol, tol);
        free(want);
    }
    run_free(&a);

    struct run b;
    run_make_in(dev, &c, ACCUMULATE, w, vv, prec, &b);
    for (uint32_t i = 0; i < c.np; i++)
        if (c.trained[i]) {
            struct clt_param_info info;
            assert_int_equal(clt_trainer_param_info(b.tr, i, &info), CLT_OK);
            assert_int_equal(clt_trainer_param_write(b.tr, info.name, c.p[i], (uint64_t)c.pn[i]),
                             CLT_OK);
        }
    step_gradients(&b, &c, 1, gb);
    for (uint32_t k = 0, j = 0; k < oc->ndecl; k++) {
        if (c.decl[k].role != PARAM)
            continue;
        double *want = clt_test_doubles((size_t)c.pn[j]);
        for (int64_t e = 0; e < c.pn[j]; e++)
            want[e] = (double)ga[j][e] + vv[k][e];
        snprintf(msg, sizeof msg, "%s: gradient of parameter %u (accumulate)", what, j);
        clt_test_assert_close(msg, gb[j], want, (size_t)c.pn[j], tol, tol);
        free(want);
        j++;
    }
    run_free(&b);

    if (!oc->dropout) {
        struct run m;
        run_make_in(dev, &c, MICRO, w, vv, prec, &m);
        for (uint32_t i = 0; i < c.np; i++)
            if (c.trained[i]) {
                struct clt_param_info info;
                assert_int_equal(clt_trainer_param_info(m.tr, i, &info), CLT_OK);
                assert_int_equal(
                    clt_trainer_param_write(m.tr, info.name, c.p[i], (uint64_t)c.pn[i]), CLT_OK);
            }
        step_gradients(&m, &c, 2, gm);
        for (uint32_t i = 0; i < c.np; i++) {
            if (!c.trained[i])
                continue;
            double *want = clt_test_doubles((size_t)c.pn[i]);
            for (int64_t e = 0; e < c.pn[i]; e++)
                want[e] = ga[i][e];
            snprintf(msg, sizeof msg, "%s: gradient of parameter %u (micro-batches)", what, i);
            clt_test_assert_close(msg, gm[i], want, (size_t)c.pn[i], 1e-5, 1e-5);
            free(want);
        }
        run_free(&m);
    }
out:
    for (uint32_t i = 0; i < MAX_PARAMS; i++) {
        free(pv[i]);
        free(ga[i]);
        free(g32[i]);
        free(gb[i]);
        free(gm[i]);
    }
    for (uint32_t k = 0; k < MAX_DECL; k++) {
        free(inputs[k]);
        free(vv[k]);
    }
    free(w);
    free(y);
    free(yref);
    return ran;
}
