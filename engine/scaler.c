/*
 * scaler.c: the dynamic loss scaler (scaler.h): the host's state and rule, its checkpoint
 * metadata, and the launchers of its device state (cl/precision.cl).
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

#include "cl/shared.h"

#define FLT_MAX_AS_D ((double)FLT_MAX)

_Static_assert(sizeof(struct clt__scaler_state) == 32, "scaler state layout");
_Static_assert(offsetof(struct clt__scaler_state, found) == 4 * CLT__SCALER_FOUND_WORD,
               "scaler found word");

void clt__scaler_config_init(struct clt__scaler_config *cfg)
{
    *cfg = (struct clt__scaler_config){.init_scale = 65536.0,
                                       .growth_factor = 2.0,
                                       .backoff_factor = 0.5,
                                       .growth_interval = 2000,
                                       .min_scale = 0.0};
}

/* The first field of cfg out of its range, or NULL. */
static const char *config_fault(const struct clt__scaler_config *cfg)
{
    if (!(isfinite(cfg->init_scale) && cfg->init_scale > 0 && cfg->init_scale <= FLT_MAX_AS_D))
        return "init_scale must be finite and > 0 in fp32";
    if (!(isfinite(cfg->growth_factor) && cfg->growth_factor > 1.0))
        return "growth_factor must be finite and > 1";
    if (!(cfg->backoff_factor > 0.0 && cfg->backoff_factor < 1.0))
        return "backoff_factor must be in (0, 1)";
    if (cfg->growth_interval < 1)
        return "growth_interval must be >= 1";
    if (!(cfg->min_scale >= 0.0 && cfg->min_scale <= cfg->init_scale))
        return "min_scale must be in [0, init_scale]";
    return NULL;
}

enum clt_status clt__scaler_config_check(const struct clt_log *log,
                                         const struct clt__scaler_config *cfg)
{
    const char *bad = cfg ? config_fault(cfg) : "no config";
    if (!bad)
        return CLT_OK;
    clt__log(log, CLT_LOG_ERROR, "loss scaler: %s", bad);
    return CLT_ERR_INVALID_ARGUMENT;
}

void clt__scaler_init(struct clt__scaler *s, const struct clt__scaler_config *cfg)
{
    *s = (struct clt__scaler){.cfg = *cfg, .scale = (float)cfg->init_scale};
}

float clt__scaler_inv_scale(const struct clt__scaler *s)
{
    return (float)(1.0 / (double)s->scale);
}

bool clt__scaler_update(struct clt__scaler *s, bool found)
{
    const float growth = (float)s->cfg.growth_factor, backoff = (float)s->cfg.backoff_factor;
    if (found) {
        s->scale = fmaxf(s->scale * backoff, (float)s->cfg.min_scale);
        s->growth_tracker = 0;
        s->skipped = s->skipped < INT32_MAX ? s->skipped + 1 : INT32_MAX;
        return false;
    }
    if (s->growth_tracker + 1 >= s->cfg.growth_interval) {
        const float grown = s->scale * growth;
        if (isfinite(grown))
            s->scale = grown;
        s->growth_tracker = 0;
    } else {
        s->growth_tracker++;
    }
    return true;
}

/* ==== Checkpoints ======================================================================= */

static const char *const meta_keys[CLT__SCALER_META] = {
    "scaler.scale",         "scaler.growth_tracker", "scaler.skipped",         "scaler.init_scale",
    "scaler.growth_factor", "scaler.backoff_factor", "scaler.growth_interval", "scaler.min_scale",
};

void clt__scaler_meta(const struct clt__scaler *s, struct clt_meta *out,
                      char text[][CLT__SCALER_TEXT])
{
    /* %.9g reads back as the same float, %.17g as the same double. */
    snprintf(text[0], CLT__SCALER_TEXT, "%.9g", (double)s->scale);
    snprintf(text[1], CLT__SCALER_TEXT, "%d", (int)s->growth_tracker);
    snprintf(text[2], CLT__SCALER_TEXT, "%d", (int)s->skipped);
    snprintf(text[3], CLT__SCALER_TEXT, "%.17g", s->cfg.init_scale);
    snprintf(text[4], CLT__SCALER_TEXT, "%.17g", s->cfg.growth_factor);
    snprintf(text[5], CLT__SCALER_TEXT, "%.17g", s->cfg.backoff_factor);
    snprintf(text[6], CLT__SCALER_TEXT, "%d", (int)s->cfg.growth_interval);
    snprintf(text[7], CLT__SCALER_TEXT, "%.17g", s->cfg.min_scale);
    for (int i = 0; i < CLT__SCALER_META; i++)
        out[i] = (struct clt_meta){meta_keys[i], text[i]};
}

/* A whole finite decimal number (no hex, inf or nan). */
static bool parse_double(const char *v, double *out)
{
    if (!v || !*v || strspn(v, "0123456789+-.eE") != strlen(v))
        return false;
    char *end;
    errno = 0;
    *out = strtod(v, &end);
    return *end == 0 && errno == 0 && isfinite(*out);
}

/* A whole decimal integer in 0 .. INT32_MAX. */
static bool parse_count(const char *v, int32_t *out)
{
    if (!v || !*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 10)
        return false;
    long long x = strtoll(v, NULL, 10);
    if (x > INT32_MAX)
        return false;
    *out = (int32_t)x;
    return true;
}

enum clt_status clt__scaler_load(struct clt__scaler *s, const struct clt__safetensors *file,
                                 const char *path, const struct clt_log *log)
{
    const char *v[CLT__SCALER_META];
    for (int i = 0; i < CLT__SCALER_META; i++) {
        v[i] = clt__safetensors_meta(file, meta_keys[i]);
        if (!v[i]) {
            clt__log(log, CLT_LOG_ERROR, "%s has no \"%s\" metadata (the loss scaler's state)",
                     path, meta_keys[i]);
            return CLT_ERR_FORMAT;
        }
    }
    struct clt__scaler n;
    double scale;
    int bad = -1;
    if (!parse_double(v[0], &scale) || scale <= 0 || scale > FLT_MAX_AS_D)
        bad = 0;
    else if (!parse_count(v[1], &n.growth_tracker))
        bad = 1;
    else if (!parse_count(v[2], &n.skipped))
        bad = 2;
    else if (!parse_double(v[3], &n.cfg.init_scale))
        bad = 3;
    else if (!parse_double(v[4], &n.cfg.growth_factor))
        bad = 4;
    else if (!parse_double(v[5], &n.cfg.backoff_factor))
        bad = 5;
    else if (!parse_count(v[6], &n.cfg.growth_interval))
        bad = 6;
    else if (!parse_double(v[7], &n.cfg.min_scale))
        bad = 7;
    if (bad >= 0) {
        clt__log(log, CLT_LOG_ERROR, "%s: metadata \"%s\" = \"%.60s\" is not a valid value", path,
                 meta_keys[bad], v[bad]);
        return CLT_ERR_FORMAT;
    }
    n.scale = (float)scale; /* the nine digits of clt__scaler_meta give the same float back */
    const char *fault = config_fault(&n.cfg);
    if (!fault && n.growth_tracker >= n.cfg.growth_interval)
        fault = "growth_tracker must be below growth_interval";
    if (!fault && (double)n.scale < n.cfg.min_scale)
        fault = "scale must be >= min_scale";
    if (fault) {
        clt__log(log, CLT_LOG_ERROR, "%s: the loss scaler's metadata is inconsistent: %s", path,
                 fault);
        return CLT_ERR_FORMAT;
    }
    *s = n;
    return CLT_OK;
}

/* ==== The device state ================================================================== */

static enum clt_status state_check(struct clt_device *dev, struct clt__buf state)
{
    return clt__check_buf(dev, state, CLT__SCALER_STATE_BYTES / 4, 4, "loss scaler", "state");
}

enum clt_status clt__scaler_state_set(struct clt_device *dev, struct clt__buf state,
                                      const struct clt__scaler *s)
{
    if (!dev || !s)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = state_check(dev, state);
    if (st != CLT_OK)
        return st;
    return CLT__RUN(dev, CLT__K_scaler_set, 1, CLT__F32(s->scale), CLT__I32(s->growth_tracker),
                    CLT__I32(s->skipped), CLT__BUF(state));
}

enum clt_status clt__scaler_state_update(struct clt_device *dev,
                                         const struct clt__scaler_config *cfg,
                                         struct clt__buf found, int32_t found_mask,
                                         struct clt__buf state)
{
    if (!dev || !cfg)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = clt__scaler_config_check(&dev->log, cfg);
    if (st == CLT_OK)
        st = state_check(dev, state);
    if (st == CLT_OK)
        st = clt__check_buf(dev, found, 1, 4, "loss scaler", "found");
    if (st != CLT_OK)
        return st;
    return CLT__RUN(dev, CLT__K_scaler_update, 1, CLT__BUF(found), CLT__I32(found_mask),
                    CLT__F32(cfg->growth_factor), CLT__F32(cfg->backoff_factor),
                    CLT__I32(cfg->growth_interval), CLT__F32(cfg->min_scale), CLT__BUF(state));
}

enum clt_status clt__scaler_seed(struct clt_device *dev, struct clt__buf state, float mul,
                                 enum clt_precision format, struct clt__buf dst)
{
    if (!dev || (unsigned)format > CLT_PRECISION_BF16)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = state_check(dev, state);
    if (st == CLT_OK)
        st = clt__check_buf(dev, dst, 1, format == CLT_PRECISION_FP32 ? 4 : 2, "loss scaler",
                            "seed");
    if (st != CLT_OK)
        return st;
    const int32_t code = format == CLT_PRECISION_FP16   ? 16
                         : format == CLT_PRECISION_BF16 ? 161
                                                        : 32;
    return CLT__RUN(dev, CLT__K_scaler_seed, 1, CLT__BUF(state), CLT__F32(mul), CLT__I32(code),
                    CLT__BUF(dst));
}

enum clt_status clt__scaler_state_read(struct clt_device *dev, struct clt__buf state,
                                       struct clt__scaler *s)
{
    if (!dev || !s)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = state_check(dev, state);
    if (st != CLT_OK)
        return st;
    struct clt__scaler_state d;
    cl_int err = clEnqueueReadBuffer(dev->queue, state.mem, CL_TRUE, state.offset * 4, sizeof d, &d,
                                     0, NULL, NULL);
    st = clt__cl_check(&dev->log, err, "clEnqueueReadBuffer (loss scaler)");
    if (st != CLT_OK)
        return st;
    s->scale = d.scale;
    s->growth_tracker = d.growth_tracker;
    s->skipped = d.skipped;
    return CLT_OK;
}
