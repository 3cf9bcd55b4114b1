/*
 * tune_clblast.c: CLBlast's Xgemm parameters, found on the device.
 *
 * CLBlast 1.5 ships tuned parameters for the devices of its database and defaults for the
 * rest (recent NVIDIA parts among them). Its parameters are per device and kernel, not per
 * call (CLBlastOverrideParameters recompiles the kernel), so the tuner decides them once per
 * device (GPUs and accelerators: on CPU devices the host BLAS and the own kernel serve, both
 * far ahead of CLBlast), before it times the first shape: CLBlast's SGEMM is timed at a
 * representative shape (REP_SIZE cubed) with its own parameters, then with each valid set of a
 * small space (tiles, work-group shapes, vector widths and local-memory staging in the manner of
 * CLBlast's own tuner), each checked against a double reference before it may win; the fastest
 * stays (its defaults are read back first, so that they can be put back when they win). Where
 * CLBlast's defaults reach less than a quarter of the own kernel's default configuration (as on
 * PoCL, where CLBlast is 10x behind), the sets are not tried: no set of this space closes such a
 * gap, and each costs a kernel build. The decision is kept in the tuning cache entry (one
 * `clblast-xgemm` line, docs/formats.md) and handed to CLBlast when the entry is read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_own.h"
#include "tune.h"

#define REP_SIZE 512
#define HOPELESS 0.25

const char *const clt__xgemm_names[CLT__XGEMM_PARAMS] = {
    "GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
    "NDIMC", "NWG",  "SA",  "SB",  "STRM",  "STRN",  "VWM", "VWN"};

enum { GEMMK, KREG, KWG, KWI, MDIMA, MDIMC, MWG, NDIMB, NDIMC, NWG, SA, SB, STRM, STRN, VWM, VWN };

/* The space: sets known to suit GPU families of different sizes (wide tiles with staging
 * for large GPUs, 64-wide groups for smaller ones), and one for CPU-like devices. */
static const uint32_t space[][CLT__XGEMM_PARAMS] = {
    {0, 1, 32, 2, 16, 16, 128, 16, 16, 128, 1, 1, 0, 0, 4, 4},
    {0, 1, 16, 2, 16, 16, 64, 16, 16, 64, 0, 0, 0, 1, 2, 2},
    {0, 1, 32, 2, 16, 16, 64, 16, 16, 64, 1, 1, 1, 0, 2, 2},
    {0, 1, 32, 2, 8, 8, 32, 16, 16, 64, 1, 1, 0, 0, 4, 4},
    {0, 1, 16, 2, 32, 8, 64, 8, 8, 64, 1, 0, 0, 0, 2, 4},
    {0, 1, 16, 2, 8, 8, 64, 8, 8, 64, 0, 0, 0, 0, 4, 4},
    {0, 1, 32, 8, 16, 16, 128, 16, 16, 128, 1, 1, 1, 1, 4, 4},
    {0, 1, 32, 2, 8, 8, 32, 8, 8, 32, 0, 0, 0, 0, 4, 4},
};
#define SPACE_SIZE (sizeof space / sizeof space[0])

/* CLBlast's constraints on Xgemm's parameters (its tuner's), and the device's limits. */
static bool valid(const struct clt_device *dev, const uint32_t *p)
{
    uint32_t wg = p[MDIMC] * p[NDIMC];
    if (p[GEMMK] != 0 || p[KREG] != 1 || p[MDIMA] == 0 || p[NDIMB] == 0 || p[KWI] == 0 || wg == 0 ||
        p[MWG] % (p[MDIMC] * p[VWM]) != 0 || p[NWG] % (p[NDIMC] * p[VWN]) != 0 ||
        p[MWG] % (p[MDIMA] * p[VWM]) != 0 || p[NWG] % (p[NDIMB] * p[VWN]) != 0 ||
        p[KWG] % (wg / p[MDIMA]) != 0 || p[KWG] % (wg / p[NDIMB]) != 0 || p[KWG] % p[KWI] != 0)
        return false;
    uint64_t local =
        ((p[SA] ? (uint64_t)p[KWG] * p[MWG] : 0) + (p[SB] ? (uint64_t)p[KWG] * p[NWG] : 0)) *
        sizeof(float);
    return wg <= dev->info.max_work_group_size && p[MDIMC] <= dev->info.max_work_item_sizes[0] &&
           p[NDIMC] <= dev->info.max_work_item_sizes[1] && local <= dev->info.local_mem_bytes;
}

void clt__xgemm_format(const struct clt__tune *tu, char *out, size_t size)
{
    if (!tu->xgemm_set) {
        snprintf(out, size, "default");
        return;
    }
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < CLT__XGEMM_PARAMS && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%s=%u", i ? "," : "", clt__xgemm_names[i],
                                tu->xgemm[i]);
}

bool clt__xgemm_parse(struct clt__tune *tu, const char *line)
{
    if (strcmp(line, "default") == 0) {
        tu->xgemm_decided = true;
        tu->xgemm_set = false;
        return true;
    }
    const char *p = line;
    for (int i = 0; i < CLT__XGEMM_PARAMS; i++) {
        size_t len = strlen(clt__xgemm_names[i]);
        unsigned v;
        int used = 0;
        if (strncmp(p, clt__xgemm_names[i], len) != 0 || p[len] != '=' ||
            sscanf(p + len + 1, "%u%n", &v, &used) != 1 || used == 0 || v > 4096)
            return false;
        tu->xgemm[i] = v;
        p += len + 1 + (size_t)used;
        if (*p != (i + 1 < CLT__XGEMM_PARAMS ? ',' : '\0'))
            return false;
        p += i + 1 < CLT__XGEMM_PARAMS;
    }
    tu->xgemm_decided = true;
    tu->xgemm_set = true;
    return true;
}

/* Hands values (in clt__xgemm_names' order) to CLBlast for this device. */
static enum clt_status override(struct clt_device *dev, const uint32_t *values)
{
    size_t v[CLT__XGEMM_PARAMS];
    for (int i = 0; i < CLT__XGEMM_PARAMS; i++)
        v[i] = values[i];
    return clt__gemm_clblast_override(dev, "Xgemm", CLT__XGEMM_PARAMS, clt__xgemm_names, v);
}

enum clt_status clt__xgemm_apply(struct clt_device *dev)
{
    struct clt__tune *tu = dev->tune;
    if (!tu || !tu->xgemm_set || dev->gemm_backend != CLT_GEMM_CLBLAST)
        return CLT_OK;
    if (!valid(dev, tu->xgemm)) {
        clt__log(&dev->log, CLT_LOG_WARN,
                 "gemm tuning: the cached CLBlast Xgemm parameters do not suit %s; using "
                 "CLBlast's own",
                 dev->info.name);
        tu->xgemm_set = false;
        return CLT_OK;
    }
    char text[256];
    clt__xgemm_format(tu, text, sizeof text);
    clt__log(&dev->log, CLT_LOG_INFO, "gemm tuning: CLBlast's Xgemm from the cache: %s", text);
    return override(dev, tu->xgemm);
}

/* CLBlast at the representative shape with the parameters it has now: GFLOP/s, 0 when it
 * failed or was wrong. */
static double time_clblast(struct clt_device *dev, const struct clt_gemm_shape *g)
{
    struct clt_gemm_candidate c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "clblast");
    return clt__tune_time_one(dev, g, clt__gemm_clblast, NULL, &c) == CLT_OK ? c.gflops : 0;
}

void clt__xgemm_decide(struct clt_device *dev)
{
    struct clt__tune *tu = dev->tune;
    if (!tu || tu->xgemm_decided || dev->gemm_backend != CLT_GEMM_CLBLAST)
        return;
    /* CPU devices have the host BLAS and the own kernel, both far ahead of CLBlast. */
    if (dev->info.type == CLT_DEVICE_CPU && !tu->xgemm_force)
        return;
    tu->xgemm_decided = true;
    tu->xgemm_set = false;
    tu->dirty = true;
    uint32_t defaults[CLT__XGEMM_PARAMS];
    size_t got[CLT__XGEMM_PARAMS];
    int rc = clt__gemm_clblast_params(dev, "Xgemm", CLT__XGEMM_PARAMS, clt__xgemm_names, got);
    if (rc != 0) {
        clt__log(&dev->log, CLT_LOG_INFO,
                 "gemm tuning: CLBlast's Xgemm parameters cannot be read (%d); keeping its own",
                 rc);
        return;
    }
    for (int i = 0; i < CLT__XGEMM_PARAMS; i++)
        defaults[i] = got[i] > 4096 ? 4096 : (uint32_t)got[i];

    int64_t rep = tu->xgemm_rep ? tu->xgemm_rep : REP_SIZE;
    struct clt_gemm_shape in = {.m = rep, .n = rep, .k = rep, .batch = 1, .alpha = 1.0f};
    struct clt_gemm_shape g;
    int64_t sa, sb, sc;
    if (clt__gemm_resolve(&dev->log, &in, &g, &sa, &sb, &sc) != CLT_OK)
        return;
    double t0 = clt__tune_now();
    double best = time_clblast(dev, &g);
    struct clt__gemm_config own;
    clt__gemm_own_default(dev, &g, &own);
    struct clt_gemm_candidate oc;
    memset(&oc, 0, sizeof oc);
    double own_gflops = clt__tune_time_one(dev, &g, NULL, &own, &oc) == CLT_OK ? oc.gflops : 0;
    if (!tu->xgemm_force && best < HOPELESS * own_gflops) {
        clt__log(&dev->log, CLT_LOG_INFO,
                 "gemm tuning: CLBlast's Xgemm keeps its own parameters (%.1f GFLOP/s at "
                 "%d cubed, against %.1f for the own kernel: too far behind to tune)",
                 best, (int)rep, own_gflops);
        return;
    }
    clt__log(&dev->log, CLT_LOG_INFO,
             "gemm tuning: CLBlast's Xgemm parameters at %d cubed (its own: %.1f GFLOP/s) ...",
             (int)rep, best);
    int won = -1;
    uint32_t tried = 0;
    for (size_t i = 0; i < SPACE_SIZE; i++) {
        if (!valid(dev, space[i]))
            continue;
        if (tu->xgemm_space_limit && tried >= tu->xgemm_space_limit)
            break;
        tried++;
        if (override(dev, space[i]) != CLT_OK)
            continue;
        double gf = time_clblast(dev, &g);
        if (gf > best) {
            best = gf;
            won = (int)i;
        }
    }
    if (won >= 0) {
        memcpy(tu->xgemm, space[won], sizeof tu->xgemm);
        tu->xgemm_set = true;
    }
    enum clt_status st = override(dev, won >= 0 ? space[won] : defaults);
    if (st != CLT_OK) {
        tu->xgemm_set = false;
        clt__log(&dev->log, CLT_LOG_WARN,
                 "gemm tuning: CLBlast refused its Xgemm parameters; CLBlast may be slow");
        return;
    }
    char text[256];
    clt__xgemm_format(tu, text, sizeof text);
    clt__log(&dev->log, CLT_LOG_INFO,
             "gemm tuning: CLBlast's Xgemm: %s (%.1f GFLOP/s, %u sets tried) in %.1f s", text, best,
             tried, clt__tune_now() - t0);
}
