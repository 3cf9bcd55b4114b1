/*
 * nn_loss.c: graph ops for softmax, log-softmax and the losses (cross-entropy, mean squared
 * error).
 *
 * Attributes: softmax i[0] 1 for log-softmax; cross_entropy i[0] ignore_index, f[0] label
 * smoothing, aux 0 the forward's per-row statistics kept for the backward.
 */
#include <math.h>
#include <string.h>

#include "graph.h"
#include "ops/loss.h"

static int64_t last_dim(const struct clt_tensor *t)
{
    return t->shape[t->ndim - 1];
}

/* ---- softmax and log-softmax ------------------------------------------------------------- */

static enum clt_status softmax_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t cols = last_dim(t), rows = clt__count(t) / cols;
    struct clt__buf in = clt__val(x, t->in[0]), out = clt__val(x, t);
    return t->i[0] ? clt__log_softmax_forward(x->dev, rows, cols, in, out)
                   : clt__softmax_forward(x->dev, rows, cols, in, out);
}

static enum clt_status softmax_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    int64_t cols = last_dim(t), rows = clt__count(t) / cols;
    struct clt__buf y = clt__val(x, t), dy = clt__grad(x, t), dx = clt__grad(x, t->in[0]);
    bool acc = clt__accumulate(x, t, 0);
    return t->i[0] ? clt__log_softmax_backward(x->dev, rows, cols, y, dy, dx, acc)
                   : clt__softmax_backward(x->dev, rows, cols, y, dy, dx, acc);
}

static const struct clt__op_def softmax_def = {
    .name = "softmax",
    .saves = CLT__SAVES_OUTPUT,
    .forward = softmax_forward,
    .backward = softmax_backward,
};

static struct clt_tensor *softmax(struct clt_graph *g, struct clt_tensor *x, bool log)
{
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    if (x->dtype != CLT_F32) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "softmax: x must be F32");
        return NULL;
    }
    struct clt_tensor *t = clt__node(g, &softmax_def, 1, &x, CLT_F32, x->ndim, x->shape);
    if (t)
        t->i[0] = log;
    return t;
}

struct clt_tensor *clt_softmax(struct clt_graph *g, struct clt_tensor *x)
{
    return softmax(g, x, false);
}

struct clt_tensor *clt_log_softmax(struct clt_graph *g, struct clt_tensor *x)
{
    return softmax(g, x, true);
}

/* ---- cross-entropy ----------------------------------------------------------------------- */

static enum clt_status ce_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    const struct clt_tensor *logits = t->in[0];
    int64_t classes = last_dim(logits), rows = clt__count(logits) / classes;
    return clt__cross_entropy_forward(x->dev, rows, classes, clt__val(x, logits),
                                      clt__val(x, t->in[1]), (int32_t)t->i[0], t->f[0],
                                      clt__aux(x, t, 0), clt__val(x, t));
}

static enum clt_status ce_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    const struct clt_tensor *logits = t->in[0];
    int64_t classes = last_dim(logits), rows = clt__count(logits) / classes;
    return clt__cross_entropy_backward(x->dev, rows, classes, clt__val(x, logits),
                                       clt__val(x, t->in[1]), (int32_t)t->i[0], t->f[0],
                                       clt__aux(x, t, 0), clt__grad(x, t), clt__grad(x, logits),
                                       clt__accumulate(x, t, 0));
}

static const struct clt__op_def ce_def = {
    .name = "cross_entropy",
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = ce_forward,
    .backward = ce_backward,
};

struct clt_tensor *clt_cross_entropy(struct clt_graph *g, struct clt_tensor *logits,
                                     struct clt_tensor *labels, int32_t ignore_index,
                                     float label_smoothing)
{
    struct clt_tensor *in[2] = {logits, labels};
    if (!clt__graph_ok(g, 2, in))
        return NULL;
    int64_t rows = clt__count(logits) / last_dim(logits);
    if (logits->dtype != CLT_F32 || labels->dtype != CLT_I32 || clt__count(labels) != rows ||
        !(label_smoothing >= 0.0f && label_smoothing < 1.0f)) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "cross_entropy: needs F32 logits [..., K], I32 labels with one label "
                        "per row, and label smoothing in [0, 1)");
        return NULL;
    }
    struct clt_tensor *t = clt__node(g, &ce_def, 2, in, CLT_F32, 1, (int64_t[]){1});
    if (t) {
        t->i[0] = ignore_index;
        t->f[0] = label_smoothing;
        t->naux = 1;
        t->aux_dtype[0] = CLT_F32;
        t->aux_count[0] = (int64_t)(clt__cross_entropy_workspace_bytes(rows) / 4);
    }
    return t;
}

/* ---- mean squared error ------------------------------------------------------------------ */

static uint64_t mse_workspace(const struct clt_tensor *t)
{
    return clt__mse_workspace_bytes(clt__count(t->in[0]));
}

static enum clt_status mse_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    return clt__mse_forward(x->dev, clt__count(t->in[0]), clt__val(x, t->in[0]),
                            clt__val(x, t->in[1]), clt__workspace(x), clt__val(x, t));
}

static enum clt_status mse_backward(struct clt__exec *x, const struct clt_tensor *t)
{
    if (clt__grad(x, t->in[1]).mem) {
        clt__log(&x->dev->log, CLT_LOG_ERROR, "mse: the target cannot need a gradient");
        return CLT_ERR_UNSUPPORTED;
    }
    return clt__mse_backward(x->dev, clt__count(t->in[0]), clt__val(x, t->in[0]),
                             clt__val(x, t->in[1]), clt__grad(x, t), clt__grad(x, t->in[0]),
                             clt__accumulate(x, t, 0));
}

static const struct clt__op_def mse_def = {
    .name = "mse",
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = mse_forward,
    .backward = mse_backward,
    .workspace = mse_workspace,
};

struct clt_tensor *clt_mse(struct clt_graph *g, struct clt_tensor *x, struct clt_tensor *target)
{
    struct clt_tensor *in[2] = {x, target};
    if (!clt__graph_ok(g, 2, in))
        return NULL;
    if (x->dtype != CLT_F32 || target->dtype != CLT_F32 || clt__count(x) != clt__count(target)) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "mse: x and target must be F32 with the same number of elements");
        return NULL;
    }
    return clt__node(g, &mse_def, 2, in, CLT_F32, 1, (int64_t[]){1});
}
