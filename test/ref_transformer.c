/*
 * ref_transformer.c: see ref_transformer.h. Plain loops in double, one small function per
 * layer and direction (llm.c's *_forward / *_backward pairs). R = N * T rows; every backward
 * adds into its gradient outputs, which start at zero.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ref_transformer.h"

static const char *const param_names[REF_TRANSFORMER_NPARAMS] = {
    "emb.weight",       "ln1.weight",     "ln1.bias",   "attn.qkv.weight", "attn.qkv.bias",
    "attn.proj.weight", "attn.proj.bias", "ln2.weight", "ln2.bias",        "fc.weight",
    "fc.bias",          "proj.weight",    "proj.bias",  "head.weight",     "head.bias",
};

const char *ref_transformer_param_name(enum ref_transformer_param which)
{
    return (unsigned)which < REF_TRANSFORMER_NPARAMS ? param_names[which] : "";
}

int64_t ref_transformer_param_size(const struct ref_transformer_dims *dims,
                                   enum ref_transformer_param which)
{
    const int64_t d = dims->d, f = 4 * d, v = dims->vocab;
    switch (which) {
    case REF_TRANSFORMER_EMB_W:
    case REF_TRANSFORMER_HEAD_W:
        return v * d;
    case REF_TRANSFORMER_QKV_W:
        return 3 * d * d;
    case REF_TRANSFORMER_QKV_B:
        return 3 * d;
    case REF_TRANSFORMER_APROJ_W:
        return d * d;
    case REF_TRANSFORMER_FC_W:
    case REF_TRANSFORMER_PROJ_W:
        return f * d;
    case REF_TRANSFORMER_FC_B:
        return f;
    case REF_TRANSFORMER_HEAD_B:
        return v;
    case REF_TRANSFORMER_LN1_W:
    case REF_TRANSFORMER_LN1_B:
    case REF_TRANSFORMER_APROJ_B:
    case REF_TRANSFORMER_LN2_W:
    case REF_TRANSFORMER_LN2_B:
    case REF_TRANSFORMER_PROJ_B:
        return d;
    default:
        return 0;
    }
}

int64_t ref_transformer_param_offset(const struct ref_transformer_dims *dims,
                                     enum ref_transformer_param which)
{
    int64_t off = 0;
    for (int i = 0; i < (int)which && i < REF_TRANSFORMER_NPARAMS; i++)
        off += ref_transformer_param_size(dims, (enum ref_transformer_param)i);
    return off;
}

int64_t ref_transformer_params_total(const struct ref_transformer_dims *dims)
{
    return ref_transformer_param_offset(dims, REF_TRANSFORMER_NPARAMS);
}

static double *zeros(int64_t n)
{
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    if (!p)
        abort();
    return p;
}

/* ---- linear: x [rows, in], w [out, in], b [out], y [rows, out] ---------------------------- */

static void linear_forward(int64_t rows, int64_t in, int64_t out, const double *x, const double *w,
                           const double *b, double *y)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double s = b[o];
            for (int64_t i = 0; i < in; i++)
                s += x[r * in + i] * w[o * in + i];
            y[r * out + o] = s;
        }
}

/* dx += dy w, dw += dy^T x, db += column sums of dy. */
static void linear_backward(int64_t rows, int64_t in, int64_t out, const double *x, const double *w,
                            const double *dy, double *dx, double *dw, double *db)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            const double g = dy[r * out + o];
            db[o] += g;
            for (int64_t i = 0; i < in; i++) {
                dx[r * in + i] += g * w[o * in + i];
                dw[o * in + i] += g * x[r * in + i];
            }
        }
}

/* ---- layer norm: x, y [rows, d], gamma, beta [d], mean, rstd [rows] ------------------------ */

static void layernorm_forward(int64_t rows, int64_t d, const double *x, const double *gamma,
                              const double *beta, double eps, double *y, double *mean, double *rstd)
{
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = x + r * d;
        double mu = 0.0, var = 0.0;
        for (int64_t j = 0; j < d; j++)
            mu += xr[j];
        mu /= (double)d;
        for (int64_t j = 0; j < d; j++)
            var += (xr[j] - mu) * (xr[j] - mu);
        var /= (double)d;
        mean[r] = mu;
        rstd[r] = 1.0 / sqrt(var + eps);
        for (int64_t j = 0; j < d; j++)
            y[r * d + j] = (xr[j] - mu) * rstd[r] * gamma[j] + beta[j];
    }
}

/* With xhat = (x - mean) rstd and g = gamma dy: dx += rstd (g - mean(g) - xhat mean(g xhat)),
 * dgamma += dy xhat, dbeta += dy. */
static void layernorm_backward(int64_t rows, int64_t d, const double *x, const double *gamma,
                               const double *mean, const double *rstd, const double *dy, double *dx,
                               double *dgamma, double *dbeta)
{
    for (int64_t r = 0; r < rows; r++) {
        double mg = 0.0, mgx = 0.0;
        for (int64_t j = 0; j < d; j++) {
            const double xhat = (x[r * d + j] - mean[r]) * rstd[r], g = gamma[j] * dy[r * d + j];
            mg += g;
            mgx += g * xhat;
            dgamma[j] += dy[r * d + j] * xhat;
            dbeta[j] += dy[r * d + j];
        }
        mg /= (double)d;
        mgx /= (double)d;
        for (int64_t j = 0; j < d; j++) {
            const double xhat = (x[r * d + j] - mean[r]) * rstd[r], g = gamma[j] * dy[r * d + j];
            dx[r * d + j] += rstd[r] * (g - mg - xhat * mgx);
        }
    }
}

/* ---- gelu, tanh form: 0.5 x (1 + tanh(u)), u = sqrt(2 / pi) (x + 0.044715 x^3) ------------- */

static double gelu_tanh(double x, double *grad)
{
    const double beta = 0.79788456080286535588, kappa = 0.044715; /* beta = sqrt(2 / pi) */
    const double th = tanh(beta * (x + kappa * x * x * x));
    *grad = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * beta * (1.0 + 3.0 * kappa * x * x);
    return 0.5 * x * (1.0 + th);
}

/* ---- causal attention over the packed qkv [N, T, 3, H, Dh] -------------------------------- */

/* Index of q (which 0), k (1) or v (2) of head h, feature e at (n, t) in qkv. */
static int64_t qkv_at(const struct ref_transformer_dims *dm, int64_t n, int64_t t, int which,
                      int64_t h, int64_t e)
{
    const int64_t dh = dm->d / dm->heads;
    return (((n * dm->t + t) * 3 + which) * dm->heads + h) * dh + e;
}

/* Index of head h, feature e at (n, t) in the joined output y [N, T, H, Dh] = [N, T, D]. */
static int64_t joined_at(const struct ref_transformer_dims *dm, int64_t n, int64_t t, int64_t h,
                         int64_t e)
{
    return ((n * dm->t + t) * dm->heads + h) * (dm->d / dm->heads) + e;
}

/* p [N, H, T, T] = softmax over j <= i of scale q_i . k_j (0 for j > i); y_i = sum_j p_ij v_j. */
static void attention_forward(const struct ref_transformer_dims *dm, const double *qkv, double *p,
                              double *y)
{
    const int64_t T = dm->t, dh = dm->d / dm->heads;
    const double scale = 1.0 / sqrt((double)dh);
    for (int64_t n = 0; n < dm->n; n++)
        for (int64_t h = 0; h < dm->heads; h++) {
            double *ph = p + (n * dm->heads + h) * T * T;
            for (int64_t i = 0; i < T; i++) {
                double *row = ph + i * T, mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j <= i; j++) {
                    double s = 0.0;
                    for (int64_t e = 0; e < dh; e++)
                        s += qkv[qkv_at(dm, n, i, 0, h, e)] * qkv[qkv_at(dm, n, j, 1, h, e)];
                    row[j] = scale * s;
                    mx = fmax(mx, row[j]);
                }
                for (int64_t j = 0; j <= i; j++) {
                    row[j] = exp(row[j] - mx);
                    sum += row[j];
                }
                for (int64_t j = 0; j < T; j++)
                    row[j] = j <= i ? row[j] / sum : 0.0;
                for (int64_t e = 0; e < dh; e++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j <= i; j++)
                        acc += row[j] * qkv[qkv_at(dm, n, j, 2, h, e)];
                    y[joined_at(dm, n, i, h, e)] = acc;
                }
            }
        }
}

/* From dy [N, T, D]: dv_j += sum_i p_ij dy_i; dp_ij = dy_i . v_j;
 * ds_ij = p_ij (dp_ij - sum_k p_ik dp_ik); dq_i += scale sum_j ds_ij k_j;
 * dk_j += scale sum_i ds_ij q_i. All into dqkv, laid out as qkv. */
static void attention_backward(const struct ref_transformer_dims *dm, const double *qkv,
                               const double *p, const double *dy, double *dqkv)
{
    const int64_t T = dm->t, dh = dm->d / dm->heads;
    const double scale = 1.0 / sqrt((double)dh);
    double *ds = zeros(T);
    for (int64_t n = 0; n < dm->n; n++)
        for (int64_t h = 0; h < dm->heads; h++) {
            const double *ph = p + (n * dm->heads + h) * T * T;
            for (int64_t i = 0; i < T; i++) {
                const double *row = ph + i * T;
                double dot = 0.0;
                for (int64_t j = 0; j <= i; j++) {
                    double dp = 0.0;
                    for (int64_t e = 0; e < dh; e++) {
                        const double g = dy[joined_at(dm, n, i, h, e)];
                        dp += g * qkv[qkv_at(dm, n, j, 2, h, e)];
                        dqkv[qkv_at(dm, n, j, 2, h, e)] += row[j] * g;
                    }
                    ds[j] = dp;
                    dot += row[j] * dp;
                }
                for (int64_t j = 0; j <= i; j++) {
                    const double s = scale * row[j] * (ds[j] - dot);
                    for (int64_t e = 0; e < dh; e++) {
                        dqkv[qkv_at(dm, n, i, 0, h, e)] += s * qkv[qkv_at(dm, n, j, 1, h, e)];
                        dqkv[qkv_at(dm, n, j, 1, h, e)] += s * qkv[qkv_at(dm, n, i, 0, h, e)];
                    }
                }
            }
        }
    free(ds);
}

/* ---- cross-entropy: logits, dlogits [rows, classes], labels [rows] ------------------------- */

static bool counted(int32_t label, int64_t classes, int32_t ignore_index)
{
    return label >= 0 && label < classes && label != ignore_index;
}

/* The mean over counted rows of logsumexp(row) - row[label]; dlogits = (softmax - onehot) /
 * counted rows on counted rows, 0 on the others. */
static double cross_entropy(int64_t rows, int64_t classes, const double *logits,
                            const int32_t *labels, int32_t ignore_index, double *dlogits)
{
    int64_t count = 0;
    for (int64_t r = 0; r < rows; r++)
        count += counted(labels[r], classes, ignore_index);
    double loss = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const double *row = logits + r * classes;
        double mx = -INFINITY, sum = 0.0;
        for (int64_t c = 0; c < classes; c++)
            mx = fmax(mx, row[c]);
        for (int64_t c = 0; c < classes; c++)
            sum += exp(row[c] - mx);
        const bool live = counted(labels[r], classes, ignore_index);
        if (live)
            loss += mx + log(sum) - row[labels[r]];
        for (int64_t c = 0; c < classes; c++)
            dlogits[r * classes + c] =
                live ? (exp(row[c] - mx) / sum - (c == labels[r])) / (double)count : 0.0;
    }
    return count > 0 ? loss / (double)count : 0.0;
}

/* ---- the block ---------------------------------------------------------------------------- */

/* What the forward keeps for the backward; [R, ...] per row. */
struct acts {
    double *x;                 /* [R, D] embeddings */
    double *a, *mean1, *rstd1; /* [R, D] ln1(x); [R] its statistics */
    double *qkv;               /* [R, 3D] */
    double *p;                 /* [N, H, T, T] attention probabilities */
    double *y;                 /* [R, D] attention output, heads joined */
    double *h;                 /* [R, D] x + aproj(y) */
    double *c, *mean2, *rstd2; /* [R, D] ln2(h); [R] its statistics */
    double *f, *gelu_grad;     /* [R, F] fc(c) and gelu'(f) */
    double *u;                 /* [R, F] gelu(f) */
    double *out;               /* [R, D] h + proj(u) */
    double *logits;            /* [R, V] */
};

static void acts_alloc(const struct ref_transformer_dims *dm, struct acts *s)
{
    const int64_t R = dm->n * dm->t, D = dm->d, F = 4 * D;
    s->x = zeros(R * D);
    s->a = zeros(R * D);
    s->mean1 = zeros(R);
    s->rstd1 = zeros(R);
    s->qkv = zeros(R * 3 * D);
    s->p = zeros(dm->n * dm->heads * dm->t * dm->t);
    s->y = zeros(R * D);
    s->h = zeros(R * D);
    s->c = zeros(R * D);
    s->mean2 = zeros(R);
    s->rstd2 = zeros(R);
    s->f = zeros(R * F);
    s->gelu_grad = zeros(R * F);
    s->u = zeros(R * F);
    s->out = zeros(R * D);
    s->logits = zeros(R * dm->vocab);
}

static void acts_free(struct acts *s)
{
    double *all[] = {s->x, s->a,     s->mean1, s->rstd1, s->qkv, s->p,   s->y,      s->h,
                     s->c, s->mean2, s->rstd2, s->f,     s->u,   s->out, s->logits, s->gelu_grad};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(all[i]);
}

static void block_forward(const struct ref_transformer_dims *dm, const double *params,
                          const int32_t *ids, struct acts *s)
{
    const int64_t R = dm->n * dm->t, D = dm->d, F = 4 * D, V = dm->vocab;
#define P(which) (params + ref_transformer_param_offset(dm, REF_TRANSFORMER_##which))
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = 0; j < D; j++)
            s->x[r * D + j] = ids[r] >= 0 && ids[r] < V ? P(EMB_W)[ids[r] * D + j] : 0.0;
    layernorm_forward(R, D, s->x, P(LN1_W), P(LN1_B), dm->eps, s->a, s->mean1, s->rstd1);
    linear_forward(R, D, 3 * D, s->a, P(QKV_W), P(QKV_B), s->qkv);
    attention_forward(dm, s->qkv, s->p, s->y);
    linear_forward(R, D, D, s->y, P(APROJ_W), P(APROJ_B), s->h);
    for (int64_t i = 0; i < R * D; i++)
        s->h[i] += s->x[i];
    layernorm_forward(R, D, s->h, P(LN2_W), P(LN2_B), dm->eps, s->c, s->mean2, s->rstd2);
    linear_forward(R, D, F, s->c, P(FC_W), P(FC_B), s->f);
    for (int64_t i = 0; i < R * F; i++)
        s->u[i] = gelu_tanh(s->f[i], &s->gelu_grad[i]);
    linear_forward(R, F, D, s->u, P(PROJ_W), P(PROJ_B), s->out);
    for (int64_t i = 0; i < R * D; i++)
        s->out[i] += s->h[i];
    linear_forward(R, D, V, s->out, P(HEAD_W), P(HEAD_B), s->logits);
#undef P
}

/* Backward from dlogits [R, V] into grads (zeroed by the caller). */
static void block_backward(const struct ref_transformer_dims *dm, const double *params,
                           const int32_t *ids, const struct acts *s, const double *dlogits,
                           double *grads)
{
    const int64_t R = dm->n * dm->t, D = dm->d, F = 4 * D, V = dm->vocab;
#define P(which) (params + ref_transformer_param_offset(dm, REF_TRANSFORMER_##which))
#define G(which) (grads + ref_transformer_param_offset(dm, REF_TRANSFORMER_##which))
    double *dout = zeros(R * D), *du = zeros(R * F), *dc = zeros(R * D), *dy = zeros(R * D);
    double *dqkv = zeros(R * 3 * D), *dx = zeros(R * D);
    /* out feeds the head; the residual sends d out to both h and the MLP branch. */
    linear_backward(R, D, V, s->out, P(HEAD_W), dlogits, dout, G(HEAD_W), G(HEAD_B));
    linear_backward(R, F, D, s->u, P(PROJ_W), dout, du, G(PROJ_W), G(PROJ_B));
    for (int64_t i = 0; i < R * F; i++)
        du[i] *= s->gelu_grad[i]; /* now d f */
    linear_backward(R, D, F, s->c, P(FC_W), du, dc, G(FC_W), G(FC_B));
    double *dh = dout; /* d h = d out + what flows back through ln2 */
    layernorm_backward(R, D, s->h, P(LN2_W), s->mean2, s->rstd2, dc, dh, G(LN2_W), G(LN2_B));
    /* h = x + aproj(y): d h goes to x and through the attention branch. */
    linear_backward(R, D, D, s->y, P(APROJ_W), dh, dy, G(APROJ_W), G(APROJ_B));
    attention_backward(dm, s->qkv, s->p, dy, dqkv);
    double *da = dc; /* reused: d ln1(x) */
    memset(da, 0, (size_t)(R * D) * sizeof *da);
    linear_backward(R, D, 3 * D, s->a, P(QKV_W), dqkv, da, G(QKV_W), G(QKV_B));
    memcpy(dx, dh, (size_t)(R * D) * sizeof *dx);
    layernorm_backward(R, D, s->x, P(LN1_W), s->mean1, s->rstd1, da, dx, G(LN1_W), G(LN1_B));
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = 0; ids[r] >= 0 && ids[r] < V && j < D; j++)
            G(EMB_W)[ids[r] * D + j] += dx[r * D + j];
#undef P
#undef G
    free(dout);
    free(du);
    free(dc);
    free(dy);
    free(dqkv);
    free(dx);
}

double ref_transformer_loss(const struct ref_transformer_dims *dims, const double *params,
                            const int32_t *ids, const int32_t *labels, int32_t ignore_index,
                            double *grads)
{
    const int64_t R = dims->n * dims->t, V = dims->vocab;
    struct acts s;
    acts_alloc(dims, &s);
    block_forward(dims, params, ids, &s);
    double *dlogits = zeros(R * V);
    const double loss = cross_entropy(R, V, s.logits, labels, ignore_index, dlogits);
    if (grads) {
        memset(grads, 0, (size_t)ref_transformer_params_total(dims) * sizeof *grads);
        block_backward(dims, params, ids, &s, dlogits, grads);
    }
    free(dlogits);
    acts_free(&s);
    return loss;
}

/* ---- optimizers --------------------------------------------------------------------------- */

void ref_transformer_sgd_update(int64_t n, double *p, const double *g, double lr)
{
    for (int64_t i = 0; i < n; i++)
        p[i] -= lr * g[i];
}

void ref_transformer_adam_update(int64_t n, double *p, double *m, double *v, const double *g,
                                 int64_t t, double lr, double beta1, double beta2, double eps)
{
    const double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    for (int64_t i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i];
        p[i] -= lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + eps);
    }
}
