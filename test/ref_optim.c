/*
 * ref_optim.c: see ref_optim.h. Written from torch.optim's single-tensor code paths
 * (_single_tensor_sgd, _single_tensor_adam) and torch.nn.utils.clip_grad_norm_.
 */
#include <math.h>

#include "ref_optim.h"

double ref_optim_grad_norm(int64_t n, const float *grads, double scale)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double g = (double)grads[i] * scale;
        s += g * g;
    }
    return sqrt(s);
}

/* Element i's rate scale and weight decay: its range's, or 1 and the config's. */
static void group_of(const struct clt__optim_config *cfg, int64_t i, double *lr_scale,
                     double *weight_decay)
{
    *lr_scale = 1.0;
    *weight_decay = cfg->weight_decay;
    for (uint32_t k = 0; k < cfg->nranges; k++)
        if (i >= cfg->ranges[k].begin && i < cfg->ranges[k].end) {
            *lr_scale = cfg->ranges[k].lr_scale;
            *weight_decay = cfg->ranges[k].weight_decay;
        }
}

static void sgd(const struct clt__optim_config *cfg, struct ref_optim *r, const float *grads,
                double base_lr, double scale)
{
    for (int64_t i = 0; i < r->n; i++) {
        double lr_scale, wd;
        group_of(cfg, i, &lr_scale, &wd);
        const double lr = base_lr * lr_scale;
        double g = (double)grads[i] * scale * r->clip_coef;
        if (wd != 0.0)
            g += wd * r->p[i];
        if (cfg->momentum != 0.0) {
            /* torch: the buffer is a copy of the gradient at the first step. */
            if (r->t == 1)
                r->m[i] = g;
            else
                r->m[i] = cfg->momentum * r->m[i] + (1.0 - cfg->dampening) * g;
            g = cfg->nesterov ? g + cfg->momentum * r->m[i] : r->m[i];
        }
        r->p[i] -= lr * g;
    }
}

static void adam(const struct clt__optim_config *cfg, struct ref_optim *r, const float *grads,
                 double base_lr, double scale)
{
    const bool decoupled = cfg->kind == CLT__OPTIM_ADAMW;
    const double bc1 = 1.0 - pow(cfg->beta1, (double)r->t);
    const double bc2 = 1.0 - pow(cfg->beta2, (double)r->t);
    for (int64_t i = 0; i < r->n; i++) {
        double lr_scale, wd;
        group_of(cfg, i, &lr_scale, &wd);
        const double lr = base_lr * lr_scale;
        double g = (double)grads[i] * scale * r->clip_coef;
        if (decoupled)
            r->p[i] *= 1.0 - lr * wd;
        else
            g += wd * r->p[i];
        r->m[i] = cfg->beta1 * r->m[i] + (1.0 - cfg->beta1) * g;
        r->v[i] = cfg->beta2 * r->v[i] + (1.0 - cfg->beta2) * g * g;
        const double denom = sqrt(r->v[i]) / sqrt(bc2) + cfg->eps;
        r->p[i] -= lr / bc1 * r->m[i] / denom;
    }
}

void ref_optim_step(const struct clt__optim_config *cfg, struct ref_optim *r, const float *grads,
                    double loss, double lr, double scale)
{
    r->grad_norm = ref_optim_grad_norm(r->n, grads, scale);
    r->last_skip = (isfinite(r->grad_norm) ? 0 : CLT__OPTIM_SKIP_GRAD) |
                   (isfinite(loss) ? 0 : CLT__OPTIM_SKIP_LOSS);
    r->clip_coef = 1.0;
    if (r->last_skip) {
        r->skipped++;
        return;
    }
    r->t++;
    if (cfg->clip_norm > 0.0)
        r->clip_coef = fmin(cfg->clip_norm / (r->grad_norm + 1e-6), 1.0);
    if (cfg->kind == CLT__OPTIM_SGD)
        sgd(cfg, r, grads, lr, scale);
    else
        adam(cfg, r, grads, lr, scale);
}
