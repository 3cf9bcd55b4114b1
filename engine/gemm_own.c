/*
 * gemm_own.c: configurations of the engine's own GEMM kernel (see gemm_own.h).
 *
 * Today cl/gemm.cl has one variant, a square TS x TS tile staged in local memory with one
 * output per work-item, TS fixed by the device's build options; its space has one point.
 */
#include <stdio.h>
#include <string.h>

#include "gemm_own.h"

static uint16_t tile_edge(const struct clt_device *dev)
{
    return strstr(dev->build_options, "CLT_GEMM_TS=16") ? 16 : 8;
}

void clt__gemm_own_default(struct clt_device *dev, const struct clt_gemm_shape *g,
                           struct clt__gemm_config *out)
{
    (void)g;
    uint16_t ts = tile_edge(dev);
    *out = (struct clt__gemm_config){ts, ts, ts, ts, ts, 1, 3};
}

size_t clt__gemm_own_space(struct clt_device *dev, const struct clt_gemm_shape *g,
                           struct clt__gemm_config *out, size_t max)
{
    if (max == 0)
        return 0;
    clt__gemm_own_default(dev, g, out);
    return 1;
}

int clt__gemm_config_format(const struct clt__gemm_config *c, char *buf, size_t size)
{
    return snprintf(buf, size, "mwg=%u,nwg=%u,kwg=%u,mdim=%u,ndim=%u,vw=%u,stage=%u",
                    (unsigned)c->mwg, (unsigned)c->nwg, (unsigned)c->kwg, (unsigned)c->mdim,
                    (unsigned)c->ndim, (unsigned)c->vw, (unsigned)c->stage);
}

bool clt__gemm_config_parse(const char *s, struct clt__gemm_config *out)
{
    unsigned v[7];
    int used = 0;
    if (!s || sscanf(s, "mwg=%u,nwg=%u,kwg=%u,mdim=%u,ndim=%u,vw=%u,stage=%u%n", &v[0], &v[1],
                     &v[2], &v[3], &v[4], &v[5], &v[6], &used) != 7 || s[used] != '\0')
        return false;
    for (int i = 0; i < 5; i++)
        if (v[i] == 0 || v[i] > 256)
            return false;
    if (v[5] == 0 || v[5] > 8 || v[6] > 3)
        return false;
    *out = (struct clt__gemm_config){(uint16_t)v[0], (uint16_t)v[1], (uint16_t)v[2],
                                     (uint16_t)v[3], (uint16_t)v[4], (uint8_t)v[5],
                                     (uint8_t)v[6]};
    return true;
}

/* The one variant today: the configuration the device's build options fixed. */
static bool is_built_variant(struct clt_device *dev, const struct clt__gemm_config *c)
{
    struct clt__gemm_config d;
    clt__gemm_own_default(dev, NULL, &d);
    return memcmp(&d, c, sizeof d) == 0;
}

enum clt_status clt__gemm_own_prepare(struct clt_device *dev, const struct clt__gemm_config *c)
{
    if (!is_built_variant(dev, c)) {
        clt__log(&dev->log, CLT_LOG_ERROR, "gemm: configuration not available on %s",
                 dev->info.name);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    cl_program prog;
    return clt__program_get(dev, "gemm", &prog);
}

enum clt_status clt__gemm_own_run(struct clt_device *dev, const struct clt__gemm_config *c,
                                  const struct clt_gemm_shape *g, struct clt__buf a,
                                  struct clt__buf b, struct clt__buf cbuf)
{
    enum clt_status st = clt__gemm_own_prepare(dev, c);
    return st == CLT_OK ? clt__gemm_own(dev, g, a, b, cbuf) : st;
}
