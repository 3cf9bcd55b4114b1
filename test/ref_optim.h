/*
 * ref_optim.h: the C reference of the optimizer step (cl/optim.cl), in double: PyTorch's
 * torch.optim.SGD, Adam and AdamW, clip_grad_norm_, and the skip rules of the device.
 */
#ifndef CLTRAIN_TEST_REF_OPTIM_H
#define CLTRAIN_TEST_REF_OPTIM_H

#include <stdint.h>

#include "ops/optim.h"

/* One optimizer's state over n elements, in double: what the device keeps in params, m, v
 * and the status. The caller allocates p, m and v ([n] each) and sets them. */
struct ref_optim {
    int64_t n;
    double *p, *m, *v;
    int64_t t;        /* steps applied */
    int64_t skipped;  /* steps skipped */
    int last_skip;    /* CLT__OPTIM_SKIP_* bits of the last step */
    double grad_norm; /* of the last step, before clipping */
    double clip_coef; /* of the last step (1 when skipped) */
};

/* The 2-norm of scale * grads[0..n), accumulated in double. */
double ref_optim_grad_norm(int64_t n, const float *grads, double scale);

/* One step with the learning rate lr: skipped (state untouched, skipped + 1) when the norm
 * of scale * grads or the loss is not finite; else clipping by cfg->clip_norm and the update
 * of cfg->kind, as torch.optim does it, each element with its range's (cfg->ranges) rate
 * scale and weight decay, as torch.optim's param_groups. */
void ref_optim_step(const struct clt__optim_config *cfg, struct ref_optim *r, const float *grads,
                    double loss, double lr, double scale);

#endif
