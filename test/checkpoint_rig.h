/*
 * checkpoint_rig.h: what the checkpoint tests share: a small MLP and CNN with their trainers and
 * batches, parameters read back and compared, temporary folders and files, and the log
 * captured.
 */
#ifndef CLTRAIN_TEST_CHECKPOINT_RIG_H
#define CLTRAIN_TEST_CHECKPOINT_RIG_H

#include "harness.h"

/* The batch and the MLP's sizes. */
enum { N = 5, IN = 7, HID = 13, CLS = 4 };

/* A graph with its logits and loss, x [N, ...] and labels [N] in [0, classes). */
struct model {
    struct clt_graph *g;
    struct clt_tensor *logits, *loss;
    size_t x_count; /* floats of one batch's x */
    int classes;
};

/* x [N, IN] -> fc1 (hidden) -> relu -> dropout p -> fc2 (CLS) -> cross-entropy. */
struct model make_mlp(int64_t hidden, float p);

/* x [N, 2, 6, 6] -> conv 3x3 pad 1 (3) -> batch norm -> relu -> max pool 2 -> flatten ->
 * linear (3) -> cross-entropy. */
struct model make_cnn(void);

/* A trainer of m's loss with options o; fails the test on error. */
struct clt_trainer *trainer(struct clt_device *dev, const struct model *m,
                            const struct clt_trainer_options *o);

/* The batch of step s: x uniform in [-1, 1), labels from s. */
void batch(const struct model *m, int s, float *x, int32_t *y);

/* Steps s0 .. s1-1; the loss of each into losses[s] when given. */
void train(struct clt_trainer *tr, const struct model *m, int s0, int s1, float *losses);

/* Every parameter and state tensor, concatenated in index order (malloc'd). */
float *all_params(struct clt_trainer *tr, size_t *count);

/* Fails unless a and b hold the same parameters and state, bit for bit. */
void assert_same_params(struct clt_trainer *a, struct clt_trainer *b);

/* A new folder under /tmp (malloc'd path; remove with remove_dir). */
char *temp_dir(void);

/* Removes dir and the files in it. */
void remove_dir(char *dir);

/* Entries of dir other than . and .., and how many look like temporary files. */
int dir_entries(const char *dir, int *temps);

/* The whole file (malloc'd) and its size; fails the test when it cannot be read. */
unsigned char *file_bytes(const char *path, size_t *size);

/* Captures the device's log into *text until restored. */
struct clt_log capture(struct clt_device *dev, struct clt_test_log *text);

/* Fails unless the captured log contains what. */
void assert_logged(const struct clt_test_log *text, const char *what);

/* ---- Tests, by the file that defines them (test_checkpoint.c lists them all) ---- */

/* test_checkpoint_loads.c */
void bad_loads_leave_the_trainer_unchanged(void **state);
void partial_and_foreign_files(void **state);
void checksum_finds_a_flipped_byte(void **state);

#endif
