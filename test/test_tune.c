/*
 * test_tune.c: the GEMM tuner on a real device: a miss times the candidates and writes an
 * entry, a hit reads it back without timing, a corrupt or foreign entry is timed again, an
 * unwritable cache directory tunes in memory, CLTRAIN_TUNE=0 and a spent budget time
 * nothing, a budget spent among a shape's candidates stores their best as partial and a later
 * session times the rest without timing those again, trainer creation has a 10 s budget and
 * 60 s with tune_ahead, a shape not timed takes the choice of the nearest timed one of its
 * class, a stored choice the device cannot run gives way to the best stored one that can, a shape
 * timed under load (or at an unknown load) is timed again when the machine is quiet, an injected
 * candidate that computes a wrong result is never chosen, one that fails is skipped with a log
 * line, and the chosen implementation computes what the C reference does. CLBlast's Xgemm
 * parameters are decided once, kept in the entry, handed to CLBlast when it is read (which then
 * still computes correctly), and a malformed parameter line makes the entry corrupt.
 *
 * 16-bit storage: choices are kept per storage (fp32, fp16, bf16 entries of one shape side by
 * side, read back with their storage); an entry written before the storage existed reads as
 * fp32; 16-bit candidates are the own kernel in the storage and the widened path (never
 * CLBlast or the host BLAS directly); an injected 16-bit candidate whose result is off by more
 * than C's rounding is never chosen, a correct one passes the check; the chosen
 * implementation computes what the reference does on the rounded inputs (tolerance as
 * test_gemm.c: 1e-5 (k + 1) (1 + u) + u |want|, u = 2^-11 fp16, 2^-8 bf16).
 *
 * Split-K: at a product with few tiles and a long k the own kernel's split configurations
 * are candidates in fp32 and in fp16, each checked like every other (none computes a wrong
 * result), and the choice, split or not, computes what the reference does and reads back.
 *
 * Never a timing threshold: which candidate wins depends on the machine; what is checked is
 * that the winner is one that computed correctly.
 *
 * The cache's behaviour is tested in this file, which lists every test; the choice among
 * candidates in test_tune_choice.c; 16-bit storage and split-K in test_tune16.c; the fixture
 * and checks they share in tune_rig.c.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tune_rig.h"

/* The program binaries in dir. */
static int binaries_in(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".clbin") != NULL;
    if (d)
        closedir(d);
    return n;
}

/* A tuning of SHAPE on dev times nothing (its choice is stored), and the choice computes
 * what the reference does. */
static void tunes_nothing(struct fixture *f, struct clt_device *dev)
{
    f->log.len = 0;
    f->log.text[0] = 0;
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_null(strstr(f->log.text, "gemm tuning: m="));
    check_dispatch(dev, &SHAPE);
}

static void miss_then_hit(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 0);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_non_null(strstr(f->log.text, "gemm tuning: m=19 n=23 k=13"));
    assert_int_equal(tunings(dev, &list), 1);
    assert_true(list[0].m == 19 && list[0].n == 23 && list[0].k == 13 && list[0].trans_b &&
                !list[0].trans_a && list[0].batch == 1);
    check_entry(&list[0]);
    char chosen[96];
    snprintf(chosen, sizeof chosen, "%s", list[0].chosen);
    /* Only the chosen configuration's program is cached, not every own candidate's. */
    int own = 0;
    for (uint32_t i = 0; i < list[0].candidate_count; i++)
        own += strncmp(list[0].candidates[i].name, "own ", 4) == 0;
    assert_true(own >= 3);
    assert_true(binaries_in(f->dir) < own);
    free(list);
    check_dispatch(dev, &SHAPE);
    clt_device_close(dev);
    char path[256];
    assert_true(tune_file(f->dir, path, sizeof path));

    /* A second process reads the choice and times nothing. */
    dev = open_with(f, f->dir);
    assert_int_equal(tunings(dev, &list), 1);
    assert_string_equal(list[0].chosen, chosen);
    free(list);
    tunes_nothing(f, dev);
    clt_device_close(dev);
}

/* CLBlast grows the device's temporary buffer (1024-square products need one on PoCL) after
 * the tuner has entries: the tuner keeps them and keeps tuning. Growing the buffer once
 * released the whole GEMM state, the tuner's table included, in the middle of tuning. */
static void growing_the_clblast_buffer_keeps_the_tuner(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    struct clt_gemm_shape big = {.m = 1024, .n = 1024, .k = 1024, .alpha = 1.0f}, g;
    int64_t sa, sb, sc;
    assert_int_equal(clt__gemm_resolve(NULL, &big, &g, &sa, &sb, &sc), CLT_OK);
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, (uint64_t)(sa + sb + sc) * 4 + 4096, &arena), CLT_OK);
    struct clt_view va = clt_test_tensor(arena, NULL, (size_t)sa);
    struct clt_view vb = clt_test_tensor(arena, NULL, (size_t)sb);
    struct clt_view vc = clt_test_tensor(arena, NULL, (size_t)sc);
    enum clt_status st =
        clt__gemm_clblast(dev, &g, clt__view_buf(&va), clt__view_buf(&vb), clt__view_buf(&vc));
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    clt_arena_free(arena);
    if (st != CLT_OK || dev->gemm_temp_bytes == 0) {
        clt_device_close(dev);
        skip(); /* this device's CLBlast needs no temporary buffer for the shape */
    }
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 1);
    check_entry(&list[0]);
    free(list);
    struct clt_gemm_shape next = SHAPE;
    next.m += 4;
    assert_int_equal(clt_device_gemm_tune(dev, &next, 1), CLT_OK);
    assert_int_equal(tunings(dev, &list), 2);
    free(list);
    check_dispatch(dev, &next);
    clt_device_close(dev);
}

/* Flips one byte of the entry's payload (the last byte of the file). */
static void corrupt(const char *path)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, -2, SEEK_END), 0);
    int ch = fgetc(fp);
    assert_int_equal(fseek(fp, -2, SEEK_END), 0);
    fputc(ch ^ 0x01, fp);
    fclose(fp);
}

static void corrupt_and_foreign_entries_are_timed_again(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    clt_device_close(dev);
    char path[256];
    assert_true(tune_file(f->dir, path, sizeof path));
    corrupt(path);
    dev = open_with(f, f->dir);
    assert_non_null(strstr(f->log.text, "is corrupt or belongs to another"));
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 0);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_int_equal(tunings(dev, &list), 1);
    free(list);
    clt_device_close(dev);

    /* A well-formed entry written for another identity at this entry's path. */
    const char *other = "cltrain 0.0.0\nplatform elsewhere\n";
    const char *payload = "cltrain-tune 1\n";
    assert_int_equal(clt__cache_store(path, other, (const unsigned char *)payload, strlen(payload)),
                     CLT_OK);
    dev = open_with(f, f->dir);
    assert_non_null(strstr(f->log.text, "is corrupt or belongs to another"));
    assert_int_equal(tunings(dev, &list), 0);
    clt_device_close(dev);
}

/* The identity names the own kernel's search space: a library with another list of candidates
 * keeps its choices in another file, and times its shapes again. */
static void search_space_is_in_the_identity(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    char line[64];
    snprintf(line, sizeof line, "\ngemm-space %016llx\n",
             (unsigned long long)clt__gemm_own_space_id(dev));
    assert_non_null(dev->tune);
    assert_non_null(dev->tune->identity);
    assert_non_null(strstr(dev->tune->identity, line));
    clt_device_close(dev);
}

static void unwritable_cache_tunes_in_memory(void **state)
{
    struct fixture *f = *state;
    /* A cache directory under a regular file can be neither made nor written, even by root
     * (for whom a read-only directory is writable). */
    char file[128], dir[160];
    snprintf(file, sizeof file, "%s/not-a-directory", f->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(dir, sizeof dir, "%s/cache", file);
    struct clt_device *dev = open_with(f, dir);
    struct clt_gemm_shape second = SHAPE;
    second.m = 7;
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_int_equal(clt_device_gemm_tune(dev, &second, 1), CLT_OK);
    /* One warning, not one per write. */
    const char *w = strstr(f->log.text, "cannot be written");
    assert_non_null(w);
    assert_null(strstr(w + 1, "cannot be written"));
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 2);
    free(list);
    check_dispatch(dev, &second);
    clt_device_close(dev);
}

static void tune_zero_times_nothing(void **state)
{
    struct fixture *f = *state;
    struct clt_gemm_shape other = SHAPE;
    other.n = 5;
    setenv("CLTRAIN_TUNE", "0", 1);
    struct clt_device *dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_null(strstr(f->log.text, "gemm tuning"));
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 0);
    check_dispatch(dev, &SHAPE);
    clt_device_close(dev);
    char path[256];
    assert_false(tune_file(f->dir, path, sizeof path));

    /* A cache entry made with tuning on is not read either: defaults only. */
    unsetenv("CLTRAIN_TUNE");
    dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    clt_device_close(dev);
    assert_true(tune_file(f->dir, path, sizeof path));
    setenv("CLTRAIN_TUNE", "0", 1);
    dev = open_with(f, f->dir);
    assert_int_equal(tunings(dev, &list), 0);
    assert_int_equal(clt_device_gemm_tune(dev, &other, 1), CLT_OK);
    assert_null(strstr(f->log.text, "gemm tuning"));
    check_dispatch(dev, &SHAPE);
    clt_device_close(dev);
    unsetenv("CLTRAIN_TUNE");
}

/* A budget that runs out among a shape's candidates: the best of those timed serves the run
 * and is stored as partial (a shape timed whole in the same run beside it); the next session
 * reads it, serves it without timing when its budget is spent, and otherwise times the
 * candidates not yet timed, carrying the others' figures, until the shape is whole; then
 * nothing is timed. */
static void budget_spent_among_candidates(void **state)
{
    struct fixture *f = *state;
    struct clt_gemm_shape other = SHAPE;
    other.m += 4;
    struct clt_device *dev = open_with(f, f->dir);
    dev->tune->test_budget_candidates = 2;
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_non_null(strstr(f->log.text, "the budget ran out after 2 candidates"));
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 1);
    assert_int_equal(list[0].candidate_count, 2);
    assert_true(list[0].partial);
    check_entry(&list[0]);
    char first[2][96];
    for (int i = 0; i < 2; i++)
        snprintf(first[i], sizeof first[i], "%s", list[0].candidates[i].name);
    free(list);
    check_dispatch(dev, &SHAPE);
    dev->tune->test_budget_candidates = 0;
    assert_int_equal(clt_device_gemm_tune(dev, &other, 1), CLT_OK);
    char path[256];
    assert_true(tune_file(f->dir, path, sizeof path));
    char *text = entry_text(dev, path);
    assert_non_null(strstr(text, "\npartial\n"));
    free(text);
    clt_device_close(dev);

    /* With no budget left the partial choice serves, and nothing is timed. */
    setenv("CLTRAIN_TUNE_BUDGET", "0", 1);
    dev = open_with(f, f->dir);
    assert_int_equal(tunings(dev, &list), 2);
    free(list);
    tunes_nothing(f, dev);
    clt_device_close(dev);
    unsetenv("CLTRAIN_TUNE_BUDGET");

    /* Two more a session: the two timed before are carried over, listed first. */
    dev = open_with(f, f->dir);
    dev->tune->test_budget_candidates = 2;
    f->log.len = 0;
    f->log.text[0] = 0;
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_non_null(strstr(f->log.text, "has 2 candidates timed: timing the rest"));
    clt_device_close(dev);
    dev = open_with(f, f->dir);
    size_t count = tunings(dev, &list), at = count;
    for (size_t i = 0; i < count; i++)
        if (list[i].m == SHAPE.m)
            at = i;
    assert_true(at < count);
    assert_true(list[at].partial);
    assert_int_equal(list[at].candidate_count, 4);
    for (int i = 0; i < 2; i++)
        assert_string_equal(list[at].candidates[i].name, first[i]);
    check_entry(&list[at]);
    free(list);

    /* A session with budget times the rest: the shape is whole. */
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    clt_device_close(dev);
    dev = open_with(f, f->dir);
    assert_int_equal(tunings(dev, &list), 2);
    for (size_t i = 0; i < 2; i++) {
        assert_false(list[i].partial);
        assert_true(list[i].candidate_count > 4);
        check_entry(&list[i]);
    }
    free(list);
    tunes_nothing(f, dev);
    clt_device_close(dev);
}

/* The session budget of a trainer's creation: 10 s, 60 s with tune_ahead (as `cltrain tune`
 * creates them), CLTRAIN_TUNE_BUDGET's seconds whenever it is set. Nothing is timed here
 * (tuning is switched off on the device; the budget is set all the same). */
static double creation_budget(struct clt_device *dev, bool ahead)
{
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){4, 6});
    struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){4});
    struct clt_tensor *loss = clt_cross_entropy(g, clt_linear(g, x, 5, true, "fc"), y, -1, 0.0f);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.tune_ahead = ahead;
    struct clt_trainer *tr = NULL;
    dev->tune->session_budget = -1;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &tr), CLT_OK);
    clt_trainer_free(tr);
    clt_graph_free(g);
    return dev->tune->session_budget;
}

static void tune_ahead_has_the_explicit_budget(void **state)
{
    struct fixture *f = *state;
    struct clt_device *dev = open_with(f, f->dir);
    dev->tune->enabled = false;
    assert_true(creation_budget(dev, false) == 10.0);
    assert_true(creation_budget(dev, true) == 60.0);
    clt_device_close(dev);
    setenv("CLTRAIN_TUNE_BUDGET", "3", 1);
    dev = open_with(f, f->dir);
    dev->tune->enabled = false;
    assert_true(creation_budget(dev, false) == 3.0);
    assert_true(creation_budget(dev, true) == 3.0);
    clt_device_close(dev);
    unsetenv("CLTRAIN_TUNE_BUDGET");
}

/* A spent budget times nothing more: the shape gets the default and is not stored. */
static void spent_budget_times_nothing(void **state)
{
    struct fixture *f = *state;
    setenv("CLTRAIN_TUNE_BUDGET", "0", 1);
    struct clt_device *dev = open_with(f, f->dir);
    assert_int_equal(clt_device_gemm_tune(dev, &SHAPE, 1), CLT_OK);
    assert_non_null(strstr(f->log.text, "CLTRAIN_TUNE_BUDGET"));
    assert_null(strstr(f->log.text, "gemm tuning: m="));
    struct clt_gemm_tuning *list;
    assert_int_equal(tunings(dev, &list), 0);
    check_dispatch(dev, &SHAPE);
    clt_device_close(dev);
    unsetenv("CLTRAIN_TUNE_BUDGET");
    char path[256];
    assert_false(tune_file(f->dir, path, sizeof path));
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(miss_then_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(growing_the_clblast_buffer_keeps_the_tuner, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(corrupt_and_foreign_entries_are_timed_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(search_space_is_in_the_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(unwritable_cache_tunes_in_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(tune_zero_times_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(spent_budget_times_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(budget_spent_among_candidates, setup, teardown),
        cmocka_unit_test_setup_teardown(tune_ahead_has_the_explicit_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(injected_candidates, setup, teardown),
        cmocka_unit_test_setup_teardown(unusable_choice_gives_way, setup, teardown),
        cmocka_unit_test_setup_teardown(dot_choice_for_another_pair_gives_way, setup, teardown),
        cmocka_unit_test_setup_teardown(untimed_shape_takes_its_class_choice, setup, teardown),
        cmocka_unit_test_setup_teardown(every_transpose_and_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(loaded_entries_are_timed_again_when_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(clblast_parameters_are_decided_kept_and_applied, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(storages_are_keyed_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(old_entries_read_as_fp32, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_16_bit_candidate_is_never_chosen, setup, teardown),
        cmocka_unit_test_setup_teardown(split_candidates_are_timed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
