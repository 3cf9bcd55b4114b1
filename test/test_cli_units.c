/*
 * test_cli_units.c: the host-side pieces of the cltrain commands added for users, no device
 * needed: per-class precision, recall and F1 from a confusion matrix (cltrain eval); the CSV
 * rows, the output file and its safety checks of cltrain predict; the training plot's
 * smoothing and panels; --precision's names, fp16's scale on the progress line and the
 * metrics' loss_scale beside loss; `cltrain devices`' note on a guest whose vCPUs halt at once.
 * Tolerances: 1e-12 absolute on scores computed from small integer counts.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#include <stdio.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tools/common.h"
#include "../tools/evaluate.h"
#include "../tools/metrics.h"
#include "../tools/outputs.h"
#include "../tools/plot.h"
#include "../tools/predictions.h"
#include "../tools/progress.h"

static void class_scores_known_matrix(void **state)
{
    (void)state;
    /* rows: label, columns: prediction. Class 2 is never labelled, class 3 never predicted
     * and never labelled right. */
    const uint64_t m[16] = {
        8, 1, 1, 0, /* label 0: 10 examples */
        2, 6, 0, 0, /* label 1: 8 */
        0, 0, 0, 0, /* label 2: none */
        1, 0, 1, 0, /* label 3: 2, none right */
    };
    struct class_scores s[4];
    class_scores_of(m, 4, s);
    assert_true(fabs(s[0].precision - 8.0 / 11.0) < 1e-12);
    assert_true(fabs(s[0].recall - 0.8) < 1e-12);
    double f0 = 2 * (8.0 / 11.0) * 0.8 / (8.0 / 11.0 + 0.8);
    assert_true(fabs(s[0].f1 - f0) < 1e-12);
    assert_true(s[0].support == 10 && s[0].predicted == 11);
    assert_true(fabs(s[1].precision - 6.0 / 7.0) < 1e-12);
    assert_true(fabs(s[1].recall - 0.75) < 1e-12);
    /* Class 2: predicted twice, never right, never labelled: precision 0, recall undefined. */
    assert_true(s[2].precision == 0 && isnan(s[2].recall) && isnan(s[2].f1));
    assert_true(s[2].support == 0 && s[2].predicted == 2);
    /* Class 3: labelled twice, never predicted: precision undefined, recall 0. */
    assert_true(isnan(s[3].precision) && s[3].recall == 0 && isnan(s[3].f1));
    /* Macro averages over the defined values only. */
    double p = (8.0 / 11.0 + 6.0 / 7.0 + 0) / 3;
    assert_true(fabs(class_scores_macro(s, 4, 'p') - p) < 1e-12);
    assert_true(fabs(class_scores_macro(s, 4, 'r') - (0.8 + 0.75 + 0) / 3) < 1e-12);
}

static void class_scores_perfect_and_empty(void **state)
{
    (void)state;
    const uint64_t perfect[4] = {3, 0, 0, 5};
    struct class_scores s[2];
    class_scores_of(perfect, 2, s);
    for (int c = 0; c < 2; c++)
        assert_true(s[c].precision == 1 && s[c].recall == 1 && s[c].f1 == 1);
    /* Both classes labelled, all predictions wrong: precision and recall 0, F1 0 (not NaN). */
    const uint64_t wrong[4] = {0, 4, 4, 0};
    class_scores_of(wrong, 2, s);
    assert_true(s[0].precision == 0 && s[0].recall == 0 && s[0].f1 == 0);
    const uint64_t none[4] = {0, 0, 0, 0};
    class_scores_of(none, 2, s);
    assert_true(isnan(class_scores_macro(s, 2, 'f')));
}

static void csv_rows_good_and_bad(void **state)
{
    (void)state;
    struct csv_rows r;
    char err[256];
    /* A header, CRLF line ends, spaces around fields, blank lines at the end. */
    assert_int_equal(
        csv_rows_parse("a,b,c\r\n1, 2.5 ,-3e1\r\n4,5,6\n\n\n", "t", &r, err, sizeof err), 0);
    assert_true(r.count == 2 && r.cols == 3);
    assert_true(r.values[1] == 2.5f && r.values[2] == -30.0f && r.values[5] == 6.0f);
    csv_rows_free(&r);
    /* A file without a header; one column. */
    assert_int_equal(csv_rows_parse("7\n8\n", "t", &r, err, sizeof err), 0);
    assert_true(r.count == 2 && r.cols == 1 && r.values[1] == 8.0f);
    csv_rows_free(&r);
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"1,2\n3\n", "line 2: 1 fields, the rows before have 2"},
        {"1,2\n3,x\n", "line 2: field 2 is not a number"},
        {"1,2\n\n3,4\n", "line 2: blank line"},
        {"1,nan\n", "line 1: field"}, /* a first line that is not all numbers is a header... */
        {"h\n1,inf\n", "line 2: field 2"},
        {"1,2\n1,1e39\n", "line 2: field 2"},
        {"", "no rows"},
        {"a,b\n", "no rows"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc = csv_rows_parse(bad[i].text, "t", &r, err, sizeof err);
        if (i == 3) { /* ...so "1,nan" alone is a header and the file has no rows */
            assert_int_equal(rc, -1);
            assert_non_null(strstr(err, "no rows"));
            continue;
        }
        if (rc != -1 || !strstr(err, bad[i].why))
            fail_msg("case %zu: rc %d, err \"%s\", wanted \"%s\"", i, rc, err, bad[i].why);
        assert_null(r.values);
    }
}

static void predictions_format(void **state)
{
    (void)state;
    assert_true(predictions_header_is_mine("row,prediction,p0,p1\n"));
    assert_true(predictions_header_is_mine("row,label,prediction,p0\n"));
    assert_true(predictions_header_is_mine("row,prompt,text\n"));
    assert_false(predictions_header_is_mine("a,b,c,label\n"));
    assert_false(predictions_header_is_mine("row,pred\n"));
    assert_false(predictions_header_is_mine(""));

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    csv_field(f, "plain", 5);
    fputc('|', f);
    csv_field(f, "a,b", 3);
    fputc('|', f);
    csv_field(f, "say \"hi\"\nnow", 12);
    fputc('|', f);
    csv_field(f, "the ", 4);
    fclose(f);
    assert_string_equal(buf, "plain|\"a,b\"|\"say \"\"hi\"\"\nnow\"|\"the \"");
    free(buf);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* outputs_check of one predict --out path against one input. */
static int check(const char *path, const struct input *in, bool force, char *err, size_t size)
{
    struct outputs os = {0};
    outputs_add(&os, path, "--out", OUTPUT_PREDICTIONS);
    return outputs_check(&os, in, 1, force, err, size);
}

static void outpath_rules(void **state)
{
    (void)state;
    char dir[] = "/tmp/cltrain-outpath-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char in[128], out[128], own[128], empty[128], sub[128], missing[128], link[128], err[512];
    snprintf(in, sizeof in, "%s/in.csv", dir);
    snprintf(out, sizeof out, "%s/out.csv", dir);
    snprintf(own, sizeof own, "%s/own.csv", dir);
    snprintf(empty, sizeof empty, "%s/empty.csv", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(missing, sizeof missing, "%s/none/out.csv", dir);
    snprintf(link, sizeof link, "%s/link.csv", dir);
    write_file(in, "row,prediction,p0\n0,0,1\n"); /* looks like predict's own output */
    write_file(own, "row,prediction,p0\n0,0,1\n");
    write_file(empty, "");
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(symlink(in, link), 0);
    const struct input inputs[] = {{in, "--data", false}};

    /* A new file in an existing directory, and standard output (nothing to claim). */
    assert_int_equal(check(out, inputs, false, err, sizeof err), 0);
    struct outputs os = {0};
    outputs_add(&os, "-", "--out", OUTPUT_PREDICTIONS);
    assert_int_equal(os.n, 0);
    /* An input, also through a link, even with force and even if it looked like ours. */
    assert_int_equal(check(in, inputs, true, err, sizeof err), 2);
    assert_non_null(strstr(err, "an input"));
    assert_int_equal(check(link, inputs, true, err, sizeof err), 2);
    /* Someone else's file: refused unless force or ours; an empty file may be replaced. */
    write_file(out, "precious\n");
    assert_int_equal(check(out, inputs, false, err, sizeof err), 2);
    assert_non_null(strstr(err, "--force"));
    assert_int_equal(check(out, inputs, true, err, sizeof err), 0);
    assert_int_equal(check(own, inputs, false, err, sizeof err), 0);
    assert_int_equal(check(empty, inputs, false, err, sizeof err), 0);
    /* A directory, a missing directory, an empty path, a device. */
    assert_int_equal(check(sub, inputs, true, err, sizeof err), 2);
    assert_non_null(strstr(err, "directory"));
    assert_int_equal(check(missing, inputs, true, err, sizeof err), 1);
    assert_non_null(strstr(err, "does not exist"));
    assert_int_equal(check("", inputs, true, err, sizeof err), 2);
    assert_int_equal(check("/dev/null", inputs, true, err, sizeof err), 2);

    /* Claiming: the lock is held until release, and only then. */
    char lock[160];
    snprintf(lock, sizeof lock, "%s.lock", out);
    outputs_add(&os, out, "--out", OUTPUT_PREDICTIONS);
    assert_int_equal(outputs_claim(&os, "test", inputs, 1, true), 0);
    assert_int_equal(access(lock, F_OK), 0);
    outputs_release(&os);
    assert_int_equal(access(lock, F_OK), -1);
    outputs_release(&os); /* safe twice */

    /* Atomic writes: the old content stays until commit; abort leaves it and no temp file. */
    struct outfile o;
    assert_int_equal(outfile_open(&o, out, err, sizeof err), 0);
    fputs("new\n", o.f);
    char tmp[sizeof o.tmp];
    snprintf(tmp, sizeof tmp, "%s", o.tmp);
    assert_int_equal(access(tmp, F_OK), 0);
    char prefix[160]; /* "<path>.tmp.<pid>.": a later run knows whose it is */
    snprintf(prefix, sizeof prefix, "%s.tmp.%ld.", out, (long)getpid());
    assert_int_equal(strncmp(tmp, prefix, strlen(prefix)), 0);
    outfile_abort(&o);
    assert_int_equal(access(tmp, F_OK), -1);
    char line[64] = "";
    FILE *f = fopen(out, "r");
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "precious\n");
    assert_int_equal(outfile_open(&o, out, err, sizeof err), 0);
    fputs("new\n", o.f);
    assert_int_equal(outfile_commit(&o, err, sizeof err), 0);
    f = fopen(out, "r");
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "new\n");
    outfile_abort(&o); /* safe after commit */
    assert_int_equal(outfile_open(&o, missing, err, sizeof err), -1);
    assert_non_null(strstr(err, missing)); /* named as the user gave it */

    unlink(link);
    unlink(own);
    unlink(in);
    unlink(out);
    unlink(empty);
    rmdir(sub);
    assert_int_equal(rmdir(dir), 0); /* nothing else left behind */
}

static void smoothing_starts_at_the_first_value(void **state)
{
    (void)state;
    /* Bias-corrected EMA: the first output is the first value, a constant stays constant,
     * and each output is a weighted mean of the values so far (never a later one). */
    const double y[6] = {4.0, 2.0, NAN, 2.0, 2.0, 8.0};
    double out[6];
    plot_smooth(y, 6, 0.9, out);
    assert_true(out[0] == 4.0);
    double w1 = 0.9 * 0.1, w2 = 0.1; /* weights of y0 and y1 before correction */
    assert_true(fabs(out[1] - (w1 * 4 + w2 * 2) / (1 - 0.81)) < 1e-12);
    assert_true(isnan(out[2]));
    assert_true(out[5] > out[4] && out[5] < 8.0);
    const double c[4] = {3.0, 3.0, 3.0, 3.0};
    plot_smooth(c, 4, 0.9, out);
    for (int i = 0; i < 4; i++)
        assert_true(fabs(out[i] - 3.0) < 1e-12);
    plot_smooth(c, 4, 0.0, out); /* beta 0: no smoothing */
    assert_true(out[3] == 3.0);
}

/* Reads a whole small file into a static buffer. */
static const char *slurp_small(const char *path)
{
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void training_plot_panels(void **state)
{
    (void)state;
    struct metrics_point p[] = {
        {false, 1, 2.0, NAN, 0.001},  {false, 2, 1.8, NAN, 0.002}, {true, 2, 1.7, 0.4, NAN},
        {false, 3, 1.5, NAN, 0.0015}, {true, 3, 1.2, 0.6, NAN},
    };
    char path[] = "/tmp/cltrain-plot-XXXXXX", err[256];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(plot_training(path, "t", p, 5, err, sizeof err), 0);
    const char *svg = slurp_small(path);
    assert_non_null(strstr(svg, ">accuracy</text>"));
    assert_non_null(strstr(svg, ">learning rate</text>"));
    assert_non_null(strstr(svg, "<title>evaluation accuracy</title>"));
    /* The smoothed curve starts where the training loss starts. */
    const char *raw = strstr(svg, "<title>training loss</title>");
    const char *smooth = strstr(svg, "<title>smoothed");
    assert_non_null(raw);
    assert_non_null(smooth);
    raw = strstr(raw, "points=\"") + 8;
    smooth = strstr(smooth, "points=\"") + 8;
    assert_true(strncmp(raw, smooth, strcspn(raw, " ")) == 0);
    /* Without evaluations, the accuracy panel says so instead of failing. */
    assert_int_equal(plot_training(path, "t", p, 2, err, sizeof err), 0);
    assert_non_null(strstr(slurp_small(path), "no data"));
    unlink(path);
}

/* SIGTERM while a lock is held and a temporary file is open removes both (the process still
 * ends by the signal), and an ignored SIGHUP stays ignored; a metrics file is replaced by its kept
 * records through a temporary file, which does not stay. */
static void signals_and_metrics_leave_nothing(void **state)
{
    (void)state;
    char dir[] = "/tmp/cltrain-signal-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char out[128];
    snprintf(out, sizeof out, "%s/p.csv", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct outputs os = {0};
        struct outfile o;
        char err[512];
        outputs_add(&os, out, "--out", OUTPUT_PREDICTIONS);
        if (outputs_claim(&os, "test", NULL, 0, false) != 0 ||
            outfile_open(&o, out, err, sizeof err) != 0)
            _exit(1);
        fputs("partial\n", o.f);
        fflush(o.f);
        raise(SIGTERM);
        _exit(2);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGTERM);

    /* An ignored SIGHUP (nohup) stays ignored while outputs are claimed. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct outputs os = {0};
        signal(SIGHUP, SIG_IGN);
        outputs_add(&os, out, "--out", OUTPUT_PREDICTIONS);
        if (outputs_claim(&os, "test", NULL, 0, false) != 0)
            _exit(1);
        raise(SIGHUP);
        outputs_release(&os);
        _exit(3);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);

    char metrics[128], line[256];
    snprintf(metrics, sizeof metrics, "%s/m.jsonl", dir);
    write_file(metrics, "{\"type\":\"train\",\"step\":1,\"loss\":2}\n"
                        "{\"type\":\"train\",\"step\":2,\"loss\":1}\n"
                        "{\"type\":\"train\",\"step\":3,\"loss\":0.5}\n");
    struct metrics m;
    assert_int_equal(metrics_open(&m, metrics, 2, line, sizeof line), 0);
    metrics_begin(&m, "eval");
    metrics_int(&m, "step", 4);
    metrics_end(&m);
    metrics_close(&m);
    FILE *f = fopen(metrics, "r");
    assert_non_null(f);
    int lines = 0;
    while (fgets(line, sizeof line, f))
        lines++;
    fclose(f);
    assert_int_equal(lines, 3); /* steps 1 and 2 kept, then the new record */
    assert_int_equal(unlink(metrics), 0);
    assert_int_equal(rmdir(dir), 0); /* no lock, temporary or output left */
}

/* --precision: the library's three names and nothing else; the progress line shows a loss
 * scale only when one is set (fp16 runs); a metrics record's "loss" is not its "loss_scale". */
static void precision_names_scale_and_metrics(void **state)
{
    (void)state;
    enum clt_precision p = CLT_PRECISION_BF16;
    assert_true(tool_precision_parse("fp32", &p) && p == CLT_PRECISION_FP32);
    assert_true(tool_precision_parse("fp16", &p) && p == CLT_PRECISION_FP16);
    assert_true(tool_precision_parse("bf16", &p) && p == CLT_PRECISION_BF16);
    const char *bad[] = {"", "FP16", "fp8", "fp16 ", "half", "16", "bf16,fp16"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = CLT_PRECISION_FP16;
        assert_false(tool_precision_parse(bad[i], &p));
        assert_int_equal(p, CLT_PRECISION_FP16); /* untouched */
    }
    assert_false(tool_precision_parse(NULL, &p));

    char text[2][512];
    for (int scaled = 0; scaled < 2; scaled++) {
        FILE *f = tmpfile();
        assert_non_null(f);
        struct progress pr;
        progress_init(&pr, f, 0, 100, 1);
        pr.scale = scaled ? 32768.0 : 0.0;
        progress_show(&pr, 1, 10, 0.5, -1, true);
        rewind(f);
        size_t n = fread(text[scaled], 1, sizeof text[scaled] - 1, f);
        text[scaled][n] = '\0';
        fclose(f);
    }
    assert_null(strstr(text[0], "scale"));
    assert_non_null(strstr(text[1], "loss 0.5000  scale 32768  ETA"));

    const char *line = "{\"type\":\"train\",\"step\":3,\"loss_scale\":65536,\"loss\":0.25,"
                       "\"skipped_steps\":2}";
    double v = 0;
    assert_true(metrics_field(line, "loss", &v) && v == 0.25);
    assert_true(metrics_field(line, "loss_scale", &v) && v == 65536);
    assert_true(metrics_field(line, "skipped_steps", &v) && v == 2);
}

/* The note on a guest whose idle vCPUs halt at once: printed for a list with a CPU device when
 * the setting reads 0, not for another value, a missing or unreadable file, or a list without
 * a CPU device. */
static void idle_hint_on_a_halting_guest(void **state)
{
    (void)state;
    char dir[] = "/tmp/cltrain-idle-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[96], missing[96];
    snprintf(path, sizeof path, "%s/guest_halt_poll_ns", dir);
    snprintf(missing, sizeof missing, "%s/none", dir);
    struct clt_device_info list[2];
    memset(list, 0, sizeof list);
    list[0].type = CLT_DEVICE_GPU;
    list[1].type = CLT_DEVICE_CPU;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);

    write_file(path, "0\n");
    assert_true(tool_idle_hint(out, list, 2, path));
    fflush(out);
    assert_non_null(strstr(text, "halt at once"));
    assert_non_null(strstr(text, path));
    size_t said = len;
    assert_false(tool_idle_hint(out, list, 1, path)); /* no CPU device */
    write_file(path, "200000\n");
    assert_false(tool_idle_hint(out, list, 2, path));
    write_file(path, "garbage\n");
    assert_false(tool_idle_hint(out, list, 2, path));
    assert_false(tool_idle_hint(out, list, 2, missing));
    assert_false(tool_idle_hint(out, list, 0, path));
    fflush(out);
    assert_int_equal(len, said); /* nothing more printed */
    fclose(out);
    free(text);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(class_scores_known_matrix),
        cmocka_unit_test(class_scores_perfect_and_empty),
        cmocka_unit_test(csv_rows_good_and_bad),
        cmocka_unit_test(predictions_format),
        cmocka_unit_test(outpath_rules),
        cmocka_unit_test(signals_and_metrics_leave_nothing),
        cmocka_unit_test(smoothing_starts_at_the_first_value),
        cmocka_unit_test(training_plot_panels),
        cmocka_unit_test(precision_names_scale_and_metrics),
        cmocka_unit_test(idle_hint_on_a_halting_guest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
