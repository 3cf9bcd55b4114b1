/*
 * scaler.h: the dynamic loss scaler of fp16 training, with torch.amp.GradScaler's rule.
 *
 * fp16 holds magnitudes from 6e-8 to 65504 only, and many gradients are smaller than its
 * smallest: the loss is multiplied by `scale` before the backward pass, so every gradient is
 * `scale` times larger, and the optimizer multiplies them by 1 / scale again (in fp32, where
 * nothing is lost). A scale too large makes some gradient overflow to Inf (or NaN); such a
 * step is skipped and the scale lowered. After each step:
 *
 *   NaN or Inf found:  scale = max(scale * backoff_factor, min_scale), growth_tracker = 0,
 *                      the step is skipped (the parameters and the optimizer's state are left
 *                      as they were) and counted in `skipped`;
 *   otherwise:         growth_tracker + 1; when it reaches growth_interval, scale *
 *                      growth_factor (unless that is Inf in fp32) and growth_tracker = 0.
 *
 * Defaults are GradScaler's: init_scale 65536, growth_factor 2, backoff_factor 0.5,
 * growth_interval 2000. min_scale has no GradScaler equivalent (it lets the scale fall to
 * zero); its default 0 keeps GradScaler's behaviour exactly, a floor such as 1 (DeepSpeed's
 * default) stops a run whose gradients overflow at every scale from driving it to zero. The
 * scale is an fp32 and the factors are rounded to fp32 once; the products are then the same
 * as GradScaler's (an fp32 times an fp32 rounded once), exact for the default factors.
 *
 * The state lives in two places that follow the same rule. On the host, struct clt__scaler
 * (clt__scaler_update) is the reference and what checkpoints hold (clt__scaler_meta and
 * clt__scaler_load: resuming continues exactly). On the device, struct clt__scaler_state
 * (cl/precision.cl's scaler_update) lets a trainer keep the scale in device memory, so that
 * no step waits for the host to learn whether the last one overflowed (docs/precision.md).
 */
#ifndef CLTRAIN_SCALER_H
#define CLTRAIN_SCALER_H

#include <stdbool.h>
#include <stdint.h>

#include "internal.h"
#include "safetensors.h"

struct clt__scaler_config {
    double init_scale;       /* > 0, finite: the first scale (65536) */
    double growth_factor;    /* > 1, finite (2) */
    double backoff_factor;   /* in (0, 1) (0.5) */
    int32_t growth_interval; /* >= 1: clean steps before the scale grows (2000) */
    double min_scale;        /* >= 0, <= init_scale: the scale's floor (0: none) */
};

/* GradScaler's defaults and min_scale 0. */
void clt__scaler_config_init(struct clt__scaler_config *cfg);

/* CLT_OK when every field is in its range; otherwise CLT_ERR_INVALID_ARGUMENT and a log line
 * naming the first field that is not. */
enum clt_status clt__scaler_config_check(const struct clt_log *log,
                                         const struct clt__scaler_config *cfg);

struct clt__scaler {
    struct clt__scaler_config cfg;
    float scale;            /* what the loss is multiplied by */
    int32_t growth_tracker; /* clean steps since the scale last changed */
    int32_t skipped;        /* steps skipped (saturates at INT32_MAX) */
};

/* A scaler at its first step: scale = init_scale, nothing counted. The config must pass
 * clt__scaler_config_check. */
void clt__scaler_init(struct clt__scaler *s, const struct clt__scaler_config *cfg);

/* 1 / scale in fp32 (as GradScaler: the reciprocal in double, rounded once): what the
 * optimizer multiplies the scaled gradients by. */
float clt__scaler_inv_scale(const struct clt__scaler *s);

/* The update after a step whose gradients held a NaN or Inf (found) or not. Returns true when
 * that step is to be applied, false when it is skipped. */
bool clt__scaler_update(struct clt__scaler *s, bool found);

/* ==== Checkpoints ======================================================================= */

/* The metadata pairs of a scaler, keys "scaler.<field>": scale, growth_tracker, skipped and
 * the five config fields, every float printed so that it reads back exactly. */
#define CLT__SCALER_META 8
#define CLT__SCALER_TEXT 40

/* Fills out[0..CLT__SCALER_META) with the pairs, their values written into text. */
void clt__scaler_meta(const struct clt__scaler *s, struct clt_meta *out,
                      char text[][CLT__SCALER_TEXT]);

/* Reads a scaler from a checkpoint's metadata: every "scaler.*" key present, decimal, in its
 * range and consistent (scale >= min_scale, growth_tracker < growth_interval). On success *s
 * is replaced (config included, as GradScaler.load_state_dict does); otherwise CLT_ERR_FORMAT
 * naming path and the key, and *s is unchanged. */
enum clt_status clt__scaler_load(struct clt__scaler *s, const struct clt__safetensors *file,
                                 const char *path, const struct clt_log *log);

/* ==== The device state ================================================================== */

/* struct scaler_state of cl/precision.cl: one device buffer of CLT__SCALER_STATE_BYTES per
 * trainer, kept across steps. */
struct clt__scaler_state {
    float scale;
    float inv_scale; /* 1 / scale */
    int32_t growth_tracker;
    int32_t skipped;
    int32_t found; /* a found word for clt__nonfinite_count; zeroed by each update */
    int32_t reserved[3];
};
#define CLT__SCALER_STATE_BYTES sizeof(struct clt__scaler_state)
/* Offset of the found word in 32-bit words, for a struct clt__buf pointing at it. */
#define CLT__SCALER_FOUND_WORD 4

/* Enqueues setting the device state (offset in 32-bit words) to the host scaler's. */
enum clt_status clt__scaler_state_set(struct clt_device *dev, struct clt__buf state,
                                      const struct clt__scaler *s);

/* Enqueues the update of the device state with cfg's factors, the step's finding being
 * found[0] & found_mask: a NaN/Inf count (mask -1), or an optimizer status's last_skip word
 * (mask CLT__OPTIM_SKIP_GRAD | CLT__OPTIM_SKIP_LOSS). found may point into the state. */
enum clt_status clt__scaler_state_update(struct clt_device *dev,
                                         const struct clt__scaler_config *cfg,
                                         struct clt__buf found, int32_t found_mask,
                                         struct clt__buf state);

/* Enqueues dst[0] = state.scale * mul, stored as format says: FP32 a float, FP16 a half,
 * BF16 a bf16 (rounded to nearest even): the loss seed of a 16-bit trainer's backward pass.
 * dst's offset is in elements of that format. */
enum clt_status clt__scaler_seed(struct clt_device *dev, struct clt__buf state, float mul,
                                 enum clt_precision format, struct clt__buf dst);

/* Reads the device state into s (scale, growth_tracker, skipped; the config stays). Blocks. */
enum clt_status clt__scaler_state_read(struct clt_device *dev, struct clt__buf state,
                                       struct clt__scaler *s);

#endif /* CLTRAIN_SCALER_H */
