/*
 * summary.c: model_summary (models.h), the table of layers `cltrain train` prints at the start.
 */
#include <stdio.h>
#include <string.h>

#include "models.h"

static uint64_t count_of(const int64_t *shape, uint32_t ndim)
{
    uint64_t k = 1;
    for (uint32_t d = 0; d < ndim; d++)
        k *= (uint64_t)shape[d];
    return k;
}

void model_summary(FILE *f, const struct model *m, const struct clt_trainer *tr)
{
    fprintf(f, "  %-16s %-22s %12s\n", "layer", "output shape", "parameters");
    for (int i = 0; i < m->nlayers; i++) {
        const struct model_layer *l = &m->layers[i];
        char shape[96] = "[B";
        size_t at = 2;
        for (uint32_t d = 1; d < clt_tensor_ndim(l->out) && at < sizeof shape; d++)
            at += (size_t)snprintf(shape + at, sizeof shape - at, ", %lld",
                                   (long long)clt_tensor_dim(l->out, d));
        if (at < sizeof shape)
            snprintf(shape + at, sizeof shape - at, "]");
        uint64_t params = 0;
        size_t len = strlen(l->name);
        for (uint32_t p = 0; p < clt_trainer_param_count(tr); p++) {
            struct clt_param_info pi;
            if (clt_trainer_param_info(tr, p, &pi) == CLT_OK &&
                strncmp(pi.name, l->name, len) == 0 && pi.name[len] == '.')
                params += count_of(pi.shape, pi.ndim);
        }
        fprintf(f, "  %-16s %-22s %12llu\n", l->name, shape, (unsigned long long)params);
    }
    if (m->more_layers)
        fprintf(f, "  (%d more layers)\n", m->more_layers);
    uint64_t all = 0, trained = 0;
    for (uint32_t p = 0; p < clt_trainer_param_count(tr); p++) {
        struct clt_param_info pi;
        if (clt_trainer_param_info(tr, p, &pi) == CLT_OK) {
            all += count_of(pi.shape, pi.ndim);
            trained += pi.trained ? count_of(pi.shape, pi.ndim) : 0;
        }
    }
    fprintf(f, "  %-16s %-22s %12llu  (%llu trained)\n", "total", "", (unsigned long long)all,
            (unsigned long long)trained);
}
