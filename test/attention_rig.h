/*
 * attention_rig.h: the device side of the attention tests: the tensors of one case, the forward and
 * backward launches on the path `tiled` names, and one case checked against
 * ref_attention.c.
 */
#ifndef CLTRAIN_TEST_ATTENTION_RIG_H
#define CLTRAIN_TEST_ATTENTION_RIG_H

#include "harness.h"

/* hkv key/value heads, dividing h (hkv = h: multi-head attention). */
struct shape {
    int64_t b, h, hkv, t, d;
};

/* Device tensors of one case, all in one arena, behind a small pad so that none starts at
 * offset 0. */
struct tensors {
    struct clt_arena *arena;
    struct clt_view q, k, v, p, lse, o, dout, work, dq, dk, dv;
};

/* The path the helpers run: the tiled kernels (true) or the GEMM path (false). Set only by
 * the _tiled wrappers of test_attention.c, around one test each. */
extern bool tiled;

/* Makes the arena of one case, every tensor in it unset (free with clt_arena_free). */
void tensors_create(struct clt_device *dev, const struct shape *s, struct tensors *x);

/* The forward of the current path: O (and P on the GEMM path, lse on the tiled) from q, k, v;
 * fails the test on error. */
void forward(struct clt_device *dev, const struct shape *s, bool causal, float scale,
             struct tensors *x);

/* The backward of the current path into dq, dk, dv (any may be {NULL, 0}) with scratch work. */
enum clt_status backward_into(struct clt_device *dev, const struct shape *s, bool causal,
                              float scale, uint32_t acc_mask, struct tensors *x,
                              struct clt__buf work, struct clt__buf dq, struct clt__buf dk,
                              struct clt__buf dv);

/* backward_into the case's own work, dq, dk and dv; fails the test on error. */
void backward(struct clt_device *dev, const struct shape *s, bool causal, float scale,
              uint32_t acc_mask, struct tensors *x);

/* Forward and backward (all written, then all accumulated) of one shape against the reference, with
 * inputs uniform in [-amp, amp). */
void check_case(struct clt_device *dev, const struct shape *s, bool causal, float amp,
                double atol_fwd, double rtol_fwd, double atol_bwd, double rtol_bwd);

/* ---- Tests, by the file that defines them (test_attention.c lists them all) ---- */

/* test_attention_layer.c */
void layer_matches_reference(void **state);
void layer_refuses_bad_options(void **state);

#endif
