/*
 * trainer_rig.h: what the trainer tests share: a small MLP, its trainer, and reading
 * parameters back.
 */
#ifndef CLTRAIN_TEST_TRAINER_RIG_H
#define CLTRAIN_TEST_TRAINER_RIG_H

#include "harness.h"

struct mlp {
    struct clt_graph *g;
    struct clt_tensor *x, *y, *logits, *loss;
};

/* x [n, in] -> linear(hidden) -> relu -> linear(classes) -> cross-entropy with y [n]. */
struct mlp make_mlp(int64_t n, int64_t in, int64_t hidden, int64_t classes);

/* A trainer of m's loss with options o (NULL: defaults); fails the test on error. */
struct clt_trainer *make_trainer(struct clt_device *dev, struct mlp *m,
                                 const struct clt_trainer_options *o);

/* Reads a parameter into a malloc'd array. */
float *read_param(struct clt_trainer *tr, const char *name, uint64_t count);

/* A synthetic task: the label is the index of the largest of the first 3 features. */
void make_batch(float *x, int32_t *y, int n, int in, uint64_t seed);

/* ---- Tests, by the file that defines them (test_trainer.c lists them all) ---- */

/* test_trainer_grad.c */
void mlp_gradients_match_finite_differences(void **state);
void shared_parameter_gradients_accumulate(void **state);
void tied_embedding_and_output_gradients_match_finite_differences(void **state);
void shared_layers_gradients_accumulate(void **state);
void tying_mistakes_are_refused(void **state);
void cnn_gradients_match_finite_differences(void **state);
void sequence_ops_gradients_match_finite_differences(void **state);

/* test_trainer_limits.c */
void memory_is_shared_and_recomputation_saves(void **state);
void model_too_large_fails_at_creation(void **state);
void tensors_beyond_the_element_limit_are_refused(void **state);
void bad_graphs_are_refused(void **state);
void optimizer_options_are_checked_at_creation(void **state);
void parameter_groups_select_by_kind_and_name(void **state);
void closed_device_fails_cleanly(void **state);

#endif
