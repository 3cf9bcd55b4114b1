/*
 * ops_rig.c: running one row of test_ops.c's table in fp32 (run_case): trainers over the
 * op, the forward, the gradients against central differences, accumulate and micro-batches,
 * as test_ops.c's opening comment says.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_rig.h"

/* Values spread evenly over (-1, 1), 2 / n apart and at least 0.5 / n from 0, in an order
 * shuffled by seed: no two elements tie and none sits at a kink within the step of the
 * finite differences. */
void fill_spread(float *x, int64_t n, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(((double)i + 0.25) / (double)n * 2.0 - 1.0);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = n - 1; i > 0; i--) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        int64_t j = (int64_t)(s % (uint64_t)(i + 1));
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

/* Makes the trainer of a variant in precision prec (fp16 with a loss scale of 1: the seed
 * 65536 itself would overflow sum's 16-bit gradient). Returns the creation's status: only
 * CLT_OK in fp32; CLT_ERR_UNSUPPORTED in 16 bits skips the row. */
enum clt_status run_make_in(struct clt_device *dev, struct ctx *c, enum variant v, const float *w,
                            float *const *vv, enum clt_precision prec, struct run *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(clt_graph_create(&r->g), CLT_OK);
    struct clt_tensor *t[MAX_DECL];
    for (uint32_t k = 0; k < c->c->ndecl; k++) {
        const struct decl *d = &c->decl[k];
        char name[16];
        snprintf(name, sizeof name, "t%u", k);
        if (d->role == PARAM) {
            t[k] = clt_param(r->g, name, d->ndim, d->shape, (struct clt_init){CLT_INIT_ZEROS});
        } else {
            t[k] = clt_input(r->g, name, d->role == IDS ? CLT_I32 : CLT_F32, d->ndim, d->shape);
            r->inputs[r->ninputs++] = c->d[k];
        }
    }
    r->y = c->c->build(r->g, t);
    if (clt_graph_status(r->g) != CLT_OK)
        fail_msg("%s: %s", c->c->what, clt_graph_error(r->g));
    int64_t yshape[CLT_MAX_DIMS];
    uint32_t yd = clt_tensor_ndim(r->y);
    for (uint32_t i = 0; i < yd; i++)
        yshape[i] = clt_tensor_dim(r->y, i);
    struct clt_tensor *wt = clt_input(r->g, "w", CLT_F32, yd, yshape);
    r->inputs[r->ninputs++] = w;
    struct clt_tensor *loss = clt_sum(r->g, clt_mul(r->g, r->y, wt));
    for (uint32_t k = 0; v == ACCUMULATE && k < c->c->ndecl; k++) {
        if (c->decl[k].role != PARAM)
            continue;
        char name[16];
        snprintf(name, sizeof name, "v%u", k);
        struct clt_tensor *vt = clt_input(r->g, name, CLT_F32, c->decl[k].ndim, c->decl[k].shape);
        r->inputs[r->ninputs++] = vv[k];
        loss = clt_add(r->g, loss, clt_sum(r->g, clt_mul(r->g, t[k], vt)));
    }
    assert_int_equal(clt_graph_status(r->g), CLT_OK);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.lr = 1.0;
    o.optimizer.accumulate = v == MICRO ? 2 : 1;
    o.seed = 7;
    o.precision = prec;
    o.loss_scaling.init_scale = 1.0;
    enum clt_status st = clt_trainer_create(dev, r->g, loss, &o, &r->tr);
    if (prec == CLT_PRECISION_FP32 || st != CLT_ERR_UNSUPPORTED)
        assert_int_equal(st, CLT_OK);
    return st;
}

void run_make(struct clt_device *dev, struct ctx *c, enum variant v, const float *w,
              float *const *vv, struct run *r)
{
    run_make_in(dev, c, v, w, vv, CLT_PRECISION_FP32, r);
}

void run_free(struct run *r)
{
    clt_trainer_free(r->tr);
    clt_graph_free(r->g);
}

/* Reads every parameter and state tensor of a trainer into c->p (allocated the first time). */
void read_params(struct clt_trainer *tr, struct ctx *c, float **into)
{
    uint32_t n = clt_trainer_param_count(tr);
    assert_true(n <= MAX_PARAMS);
    for (uint32_t i = 0; i < n; i++) {
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(tr, i, &info), CLT_OK);
        int64_t count = 1;
        for (uint32_t d = 0; d < info.ndim; d++)
            count *= info.shape[d];
        if (!into[i])
            into[i] = clt_test_floats((size_t)count);
        assert_int_equal(clt_trainer_param_read(tr, info.name, into[i], (uint64_t)count), CLT_OK);
        c->pn[i] = count;
        c->trained[i] = info.trained;
    }
    c->np = n;
}

/* The gradient of one update: before - after, per trained parameter. */
void step_gradients(struct run *r, struct ctx *c, uint32_t steps, float **grad)
{
    for (uint32_t s = 0; s < steps; s++)
        assert_int_equal(clt_trainer_step(r->tr, r->inputs), CLT_OK);
    float *after[MAX_PARAMS] = {NULL};
    struct ctx tmp = *c;
    read_params(r->tr, &tmp, after);
    for (uint32_t i = 0; i < c->np; i++) {
        grad[i] = clt_test_floats((size_t)c->pn[i]);
        for (int64_t e = 0; e < c->pn[i]; e++)
            grad[i][e] = c->p[i][e] - after[i][e];
        free(after[i]);
    }
}

/* sum(ref y * W) in double, in training mode. */
double ref_loss(const struct ctx *c, const float *w, double *y)
{
    c->c->ref(c, y);
    double s = 0;
    for (int64_t i = 0; i < c->ny; i++)
        s += y[i] * w[i];
    return s;
}

void run_case(struct clt_device *dev, const struct op_case *oc, bool batch1)
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
    snprintf(what, sizeof what, "%s (%s)%s", oc->what, oc->op, batch1 ? ", batch 1" : "");

    /* Declared inputs: F32 data, or ids spread over [lo, hi). */
    void *inputs[MAX_DECL] = {NULL};
    for (uint32_t k = 0; k < oc->ndecl; k++) {
        int64_t n = count_of(&c.decl[k]);
        if (c.decl[k].role == INPUT) {
            float *x = clt_test_floats((size_t)n);
            clt_test_fill(x, (size_t)n, 100 + k, -1.0f, 1.0f);
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

    /* The write trainer: fill the trained parameters, read them all back. */
    struct run a;
    float *w = NULL;
    float *vv[MAX_DECL] = {NULL};
    {
        /* W's size comes from the graph: build once with a placeholder to learn it. */
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
        if (clt_graph_status(g) != CLT_OK)
            fail_msg("%s: %s", what, clt_graph_error(g));
        c.ny = 1;
        for (uint32_t i = 0; i < clt_tensor_ndim(y); i++)
            c.ny *= clt_tensor_dim(y, i);
        clt_graph_free(g);
    }
    w = clt_test_floats((size_t)c.ny);
    clt_test_fill(w, (size_t)c.ny, 17, -1.0f, 1.0f);
    for (uint32_t k = 0; k < oc->ndecl; k++) {
        if (c.decl[k].role != PARAM)
            continue;
        int64_t n = count_of(&c.decl[k]);
        vv[k] = clt_test_floats((size_t)n);
        clt_test_fill(vv[k], (size_t)n, 200 + k, -1.0f, 1.0f);
    }
    run_make(dev, &c, WRITE, w, vv, &a);
    float *pv[MAX_PARAMS] = {NULL};
    read_params(a.tr, &c, pv);
    for (uint32_t i = 0; i < c.np; i++) {
        c.p[i] = pv[i];
        if (!c.trained[i])
            continue;
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(a.tr, i, &info), CLT_OK);
        fill_spread(pv[i], c.pn[i], 31 + i);
        assert_int_equal(clt_trainer_param_write(a.tr, info.name, pv[i], (uint64_t)c.pn[i]),
                         CLT_OK);
    }
    for (uint32_t k = 0, j = 0; k < oc->ndecl; k++)
        if (c.decl[k].role == PARAM)
            c.d[k] = c.p[j++];

    double fatol = oc->fwd_atol ? oc->fwd_atol : 1e-5, frtol = oc->fwd_rtol ? oc->fwd_rtol : 1e-4;
    double gatol = oc->grad_atol ? oc->grad_atol : 1e-4,
           grtol = oc->grad_rtol ? oc->grad_rtol : 1e-3;
    char msg[220];

    /* Forward in evaluation. */
    double *yref = clt_test_doubles((size_t)c.ny);
    float *y = clt_test_floats((size_t)c.ny);
    float loss_eval = 0;
    assert_int_equal(clt_trainer_eval(a.tr, a.inputs, a.y, y, (uint64_t)c.ny, &loss_eval), CLT_OK);
    (oc->ref_eval ? oc->ref_eval : oc->ref)(&c, yref);
    snprintf(msg, sizeof msg, "%s: forward", what);
    clt_test_assert_close(msg, y, yref, (size_t)c.ny, fatol, frtol);

    /* Write: one step; its loss is the training forward. */
    float *ga[MAX_PARAMS] = {NULL};
    step_gradients(&a, &c, 1, ga);
    if (!oc->dropout) {
        float loss = 0;
        assert_int_equal(clt_trainer_loss(a.tr, &loss), CLT_OK);
        double want = ref_loss(&c, w, yref);
        snprintf(msg, sizeof msg, "%s: training loss", what);
        clt_test_assert_close(msg, &loss, &want, 1, fatol * (double)c.ny, frtol);
        /* Central differences of the reference loss, per trained element. */
        for (uint32_t i = 0; i < c.np; i++) {
            if (!c.trained[i])
                continue;
            double *fd = clt_test_doubles((size_t)c.pn[i]);
            for (int64_t e = 0; e < c.pn[i]; e++) {
                float keep = c.p[i][e];
                c.p[i][e] = keep + FD_STEP;
                float hi = c.p[i][e];
                double lp = ref_loss(&c, w, yref);
                c.p[i][e] = keep - FD_STEP;
                float lo = c.p[i][e];
                double lm = ref_loss(&c, w, yref);
                c.p[i][e] = keep;
                fd[e] = (lp - lm) / ((double)hi - (double)lo);
            }
            snprintf(msg, sizeof msg, "%s: gradient of parameter %u (write)", what, i);
            clt_test_assert_close(msg, ga[i], fd, (size_t)c.pn[i], gatol, grtol);
            free(fd);
        }
    } else {
        /* Each element is dropped (0) or kept and scaled by 1 / (1 - p). */
        for (int64_t e = 0; e < c.pn[0]; e++) {
            double kept = w[e] / (1.0 - 0.3);
            bool ok = fabs(ga[0][e]) <= 1e-6 || fabs(ga[0][e] - kept) <= 1e-5 + 1e-5 * fabs(kept);
            if (!ok)
                fail_msg("%s: gradient element %lld is %g, neither 0 nor %g", what, (long long)e,
                         (double)ga[0][e], kept);
        }
    }
    run_free(&a);

    /* Accumulate: the extra terms' backward writes first, the op's adds. */
    struct run b;
    run_make(dev, &c, ACCUMULATE, w, vv, &b);
    for (uint32_t i = 0; i < c.np; i++)
        if (c.trained[i]) {
            struct clt_param_info info;
            assert_int_equal(clt_trainer_param_info(b.tr, i, &info), CLT_OK);
            assert_int_equal(clt_trainer_param_write(b.tr, info.name, c.p[i], (uint64_t)c.pn[i]),
                             CLT_OK);
        }
    float *gb[MAX_PARAMS] = {NULL};
    step_gradients(&b, &c, 1, gb);
    /* Declared parameters come first among the trainer's parameters, in their order. */
    int decl_of[MAX_PARAMS];
    for (uint32_t i = 0; i < MAX_PARAMS; i++)
        decl_of[i] = -1;
    for (uint32_t k = 0, j = 0; k < oc->ndecl; k++)
        if (c.decl[k].role == PARAM)
            decl_of[j++] = (int)k;
    for (uint32_t i = 0; i < c.np; i++) {
        if (!c.trained[i])
            continue;
        double *want = clt_test_doubles((size_t)c.pn[i]);
        for (int64_t e = 0; e < c.pn[i]; e++)
            want[e] = (double)ga[i][e] + (decl_of[i] >= 0 ? vv[decl_of[i]][e] : 0.0);
        snprintf(msg, sizeof msg, "%s: gradient of parameter %u (accumulate)", what, i);
        clt_test_assert_close(msg, gb[i], want, (size_t)c.pn[i], 1e-5, 1e-5);
        free(want);
    }
    run_free(&b);

    /* Micro-batches: two steps of the same batch, then one update with their mean. */
    struct run m;
    run_make(dev, &c, MICRO, w, vv, &m);
    for (uint32_t i = 0; i < c.np; i++)
        if (c.trained[i]) {
            struct clt_param_info info;
            assert_int_equal(clt_trainer_param_info(m.tr, i, &info), CLT_OK);
            assert_int_equal(clt_trainer_param_write(m.tr, info.name, c.p[i], (uint64_t)c.pn[i]),
                             CLT_OK);
        }
    float *gm[MAX_PARAMS] = {NULL};
    step_gradients(&m, &c, 2, gm);
    for (uint32_t i = 0; i < c.np; i++) {
        if (!c.trained[i])
            continue;
        if (oc->dropout) {
            /* Two masks: the mean of two elements each 0 or W / (1 - p). */
            for (int64_t e = 0; e < c.pn[i]; e++) {
                double r = gm[i][e] / (w[e] / (1.0 - 0.3));
                bool ok = fabs(r) < 1e-4 || fabs(r - 0.5) < 1e-4 || fabs(r - 1.0) < 1e-4;
                if (!ok)
                    fail_msg("%s: micro-batch gradient element %lld is %g W / (1 - p)", what,
                             (long long)e, r);
            }
        } else {
            double *want = clt_test_doubles((size_t)c.pn[i]);
            for (int64_t e = 0; e < c.pn[i]; e++)
                want[e] = ga[i][e];
            snprintf(msg, sizeof msg, "%s: gradient of parameter %u (micro-batches)", what, i);
            clt_test_assert_close(msg, gm[i], want, (size_t)c.pn[i], 1e-5, 1e-5);
            free(want);
        }
    }
    run_free(&m);

    for (uint32_t i = 0; i < MAX_PARAMS; i++) {
        free(pv[i]);
        free(ga[i]);
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
}
