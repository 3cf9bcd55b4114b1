/*
 * tune_rig.h: what the GEMM tuner's tests share: a fixture with a private cache folder and
 * a captured log, devices opened on it, the tuning file and entries, and checks that a
 * dispatched GEMM computes what ref_gemm.c does.
 */
#ifndef CLTRAIN_TEST_TUNE_RIG_H
#define CLTRAIN_TEST_TUNE_RIG_H

#include "harness.h"
#include "tune.h"

struct fixture {
    char dir[64];
    struct clt_test_log log;
};

/* An odd shape, small enough for every device under test. */
static const struct clt_gemm_shape SHAPE = {
    .m = 19, .n = 23, .k = 13, .trans_b = true, .alpha = 1.0f};

/* cmocka setup and teardown of every test: a fixture with a fresh cache folder under /tmp
 * (removed after) and CLTRAIN_TUNE unset. */
int setup(void **state);
int teardown(void **state);

/* Opens the device under test under CLT_GEMM_AUTO with a cache directory and the fixture's
 * log (INFO and up, so the tuner's progress lines are seen). */
struct clt_device *open_with(struct fixture *f, const char *cache_dir);

/* The one .tune file in dir (path written to out); false when there is none. */
bool tune_file(const char *dir, char *out, size_t size);

/* The device's tuning entries, in *out (malloc'd); their count. */
size_t tunings(struct clt_device *dev, struct clt_gemm_tuning **out);

/* Runs the shape through fn (clt__gemm: the tuner's choice; clt__gemm_clblast: CLBlast with
 * the parameters it has now) and compares with the reference. */
void check_with(struct clt_device *dev, const struct clt_gemm_shape *shape, clt__gemm_fn fn);

/* check_with the tuner's choice (clt__gemm). */
void check_dispatch(struct clt_device *dev, const struct clt_gemm_shape *shape);

/* A winner is one of the candidates, and computed correctly. */
void check_entry(const struct clt_gemm_tuning *t);

/* The payload of the device's entry (malloc'd), read through the cache container. */
char *entry_text(struct clt_device *dev, const char *path);

/* The entry's record of the candidate `name`. */
const struct clt_gemm_candidate *candidate(const struct clt_gemm_tuning *t, const char *name);

/* ---- Tests, by the file that defines them (test_tune.c lists them all) ---- */

/* test_tune_choice.c */
void injected_candidates(void **state);
void unusable_choice_gives_way(void **state);
void dot_choice_for_another_pair_gives_way(void **state);
void untimed_shape_takes_its_class_choice(void **state);
void every_transpose_and_batch(void **state);
void loaded_entries_are_timed_again_when_quiet(void **state);
void clblast_parameters_are_decided_kept_and_applied(void **state);

/* test_tune16.c */
void split_candidates_are_timed(void **state);
void storages_are_keyed_apart(void **state);
void old_entries_read_as_fp32(void **state);
void wrong_16_bit_candidate_is_never_chosen(void **state);

#endif
