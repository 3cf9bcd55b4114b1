/*
 * report.c: the results as a table on stdout (a summary first, then every figure), as JSON
 * and as CSV. The JSON layout (read back
 * by compare.c, described in docs/bench.md):
 *
 *   {"tool": "cltrain-bench", "format": 1, "cltrain_version": "0.1.0", "mode": "quick",
 *    "warmup": 1, "runs": 3,
 *    "devices": [{"id": "0:0", "label": "<platform> / <device>", "notes": "...",
 *                 "environment": {"platform": "...", "compute_units": 2, ...},
 *                 "micro": [FIGURE...], "gemm": [...], "ops": [...], "train": [...]}]}
 *
 *   FIGURE = {"name": "bandwidth.read", "unit": "GB/s", "better": "higher",
 *             "median": 8.1, "min": 7.9, "max": 8.3, "runs": 3}
 *
 * A train figure also has "precision": "fp32", "fp16" or "bf16" (its name is
 * "<model>@fp16.<what>" in 16 bits: bench_figure_precision); files without it load as fp32.
 *
 * With --profile a device also has "profile": [{"model": "mlp", "steps": 40, "step_ms": 5.2,
 * "kernels": [ROW...], "ops": [ROW...]}], ROW = {"name": "host_sgemm", "calls_per_step": 6,
 * "ms_per_step": 2.1, "pct_of_step": 40.4}, most time first; files without it still load.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "json.h"

/* The figure named "<name>.pct_peak" next to a GEMM figure, or NULL. */
static const struct bench_figure *pct_of(const struct bench_device *d, const struct bench_figure *f)
{
    char name[96];
    snprintf(name, sizeof name, "%s.pct_peak", f->name);
    for (size_t i = 0; i < d->nfigs; i++)
        if (strcmp(d->figs[i].name, name) == 0 && strcmp(d->figs[i].section, f->section) == 0)
            return &d->figs[i];
    return NULL;
}

static bool is_pct(const struct bench_figure *f)
{
    size_t n = strlen(f->name);
    return n > 9 && strcmp(f->name + n - 9, ".pct_peak") == 0;
}

/* Kernels and ops printed per model; the JSON has them all. */
#define PROFILE_TOP_KERNELS 15
#define PROFILE_TOP_OPS 10

static void print_rows(const char *what, const struct bench_prof_row *rows, size_t n, size_t top,
                       double step_ms)
{
    printf("  %-40s %10s %10s %9s\n", what, "calls/step", "ms/step", "% of step");
    double rest = 0;
    for (size_t i = 0; i < n; i++) {
        if (i >= top) {
            rest += rows[i].ms;
            continue;
        }
        printf("  %-40s %10.1f %10.3f %9.1f\n", rows[i].name, rows[i].calls, rows[i].ms,
               step_ms > 0 ? 100.0 * rows[i].ms / step_ms : 0.0);
    }
    if (n > top)
        printf("  (%zu more: %.3f ms/step)\n", n - top, rest);
}

/* --profile: each model's top kernels and ops by device time per step. */
static void print_profiles(const struct bench_device *d)
{
    for (size_t i = 0; i < d->nprofs; i++) {
        const struct bench_profile *p = &d->profs[i];
        double sum = 0;
        for (size_t k = 0; k < p->nkernels; k++)
            sum += p->kernels[k].ms;
        printf("\nprofile %s: %d steps; per step %.3f ms of compute span, %.3f ms in kernels "
               "(%.1f%%)\n",
               p->model, p->steps, p->step_ms, sum, p->step_ms > 0 ? 100.0 * sum / p->step_ms : 0);
        print_rows("kernel", p->kernels, p->nkernels, PROFILE_TOP_KERNELS, p->step_ms);
        print_rows("op.pass", p->ops, p->nops, PROFILE_TOP_OPS, p->step_ms);
    }
}

static void print_device(const struct bench_device *d)
{
    printf("== %s  %s\n", d->id, d->label);
    for (int i = 0; i < d->nenv; i++)
        printf("  %-22s %s\n", d->env[i].key, d->env[i].value);
    for (size_t s = 1; s < bench_section_count; s++) {
        printf("\n%-34s %12s %12s %12s  %s\n", bench_sections[s], "median", "min", "max", "unit");
        for (size_t i = 0; i < d->nfigs; i++) {
            const struct bench_figure *f = &d->figs[i];
            if (strcmp(f->section, bench_sections[s]) != 0 || is_pct(f))
                continue;
            printf("  %-32s %12.4g %12.4g %12.4g  %s", f->name, f->median, f->min, f->max, f->unit);
            const struct bench_figure *p = pct_of(d, f);
            if (p)
                printf("  (%.1f%% of peak)", p->median);
            printf("\n");
        }
    }
    print_profiles(d);
    if (d->notes[0])
        printf("\nnotes: %s\n", d->notes);
    printf("\n");
}

/* With several devices: the medians side by side, by figure of the first device. */
static void print_side_by_side(const struct bench_results *r)
{
    printf("== side by side (medians)\n%-40s %-10s", "figure", "unit");
    for (size_t k = 0; k < r->ndev; k++)
        printf(" %14s", r->devs[k].id);
    printf("\n");
    const struct bench_device *d0 = &r->devs[0];
    for (size_t i = 0; i < d0->nfigs; i++) {
        const struct bench_figure *f = &d0->figs[i];
        char full[120];
        snprintf(full, sizeof full, "%s.%s", f->section, f->name);
        printf("%-40s %-10s", full, f->unit);
        for (size_t k = 0; k < r->ndev; k++) {
            const struct bench_figure *g = NULL;
            for (size_t j = 0; j < r->devs[k].nfigs && !g; j++)
                if (strcmp(r->devs[k].figs[j].section, f->section) == 0 &&
                    strcmp(r->devs[k].figs[j].name, f->name) == 0)
                    g = &r->devs[k].figs[j];
            if (g)
                printf(" %14.4g", g->median);
            else
                printf(" %14s", "-");
        }
        printf("\n");
    }
    for (size_t k = 0; k < r->ndev; k++)
        printf("  %s = %s\n", r->devs[k].id, r->devs[k].label);
}

/* ---- The summary ------------------------------------------------------------------------ */

/* One line of the summary: a figure per device, the best of which is marked. */
struct summary_row {
    char what[64];    /* "training mlp", "best GEMM" */
    char unit[16];    /* "samples/s" */
    bool higher;      /* the better direction */
    double *value;    /* per device; NAN when the device lacks it */
    const char **src; /* per device: the figure chosen (best GEMM, bandwidth), or NULL */
};

static const struct bench_figure *figure(const struct bench_device *d, const char *section,
                                         const char *name)
{
    for (size_t i = 0; i < d->nfigs; i++)
        if (strcmp(d->figs[i].section, section) == 0 && strcmp(d->figs[i].name, name) == 0)
            return &d->figs[i];
    return NULL;
}

/* The best median of a section's figures with a unit and a name prefix ("" any); NAN if
 * none. *name is the chosen figure's name. */
static double best_of(const struct bench_device *d, const char *section, const char *unit,
                      const char *prefix, const char **name)
{
    double best = NAN;
    *name = NULL;
    for (size_t i = 0; i < d->nfigs; i++) {
        const struct bench_figure *f = &d->figs[i];
        if (strcmp(f->section, section) != 0 || strcmp(f->unit, unit) != 0 ||
            strncmp(f->name, prefix, strlen(prefix)) != 0 || !isfinite(f->median))
            continue;
        if (isnan(best) || f->median > best) {
            best = f->median;
            *name = f->name;
        }
    }
    return best;
}

/* The index of the best finite value, or -1. */
static int best_device(const struct summary_row *row, size_t n)
{
    int best = -1;
    for (size_t k = 0; k < n; k++) {
        double v = row->value[k];
        if (isfinite(v) &&
            (best < 0 || (row->higher ? v > row->value[best] : v < row->value[best])))
            best = (int)k;
    }
    return best;
}

static void print_row(const struct summary_row *row, size_t n)
{
    char label[96];
    snprintf(label, sizeof label, "%.63s (%.15s)", row->what, row->unit);
    printf("  %-34s %-10s", label, row->higher ? "higher" : "lower");
    int best = n > 1 ? best_device(row, n) : -1;
    for (size_t k = 0; k < n; k++) {
        if (isfinite(row->value[k]))
            printf(" %13.4g%s", row->value[k], (int)k == best ? "*" : " ");
        else
            printf(" %13s ", "-");
    }
    printf("\n");
    bool any = false;
    for (size_t k = 0; k < n; k++)
        any = any || row->src[k];
    if (!any)
        return;
    printf("  %-34s from", "");
    for (size_t k = 0; k < n; k++)
        printf("%s %s", k ? "," : "", row->src[k] ? row->src[k] : "-");
    printf("\n");
}

/* The models of the train section, in the order of the first device that has them. */
static size_t train_models(const struct bench_results *r, char models[][32], size_t cap)
{
    size_t n = 0;
    for (size_t k = 0; k < r->ndev; k++)
        for (size_t i = 0; i < r->devs[k].nfigs; i++) {
            const struct bench_figure *f = &r->devs[k].figs[i];
            const char *dot = strchr(f->name, '.');
            if (strcmp(f->section, "train") != 0 || !dot || strcmp(dot, ".samples_per_s") != 0)
                continue;
            size_t len = (size_t)(dot - f->name);
            bool seen = false;
            for (size_t m = 0; m < n; m++)
                seen = seen || (strlen(models[m]) == len && strncmp(models[m], f->name, len) == 0);
            if (!seen && n < cap && len < 32)
                snprintf(models[n++], 32, "%.*s", (int)len, f->name);
        }
    return n;
}

/* Names the winner: the device with the highest geometric mean of training samples/s over
 * the models every device has; without training figures, the best GEMM. */
static void print_winner(const struct bench_results *r, const struct summary_row *rows,
                         size_t nmodels, const struct summary_row *gemm)
{
    size_t n = r->ndev;
    double score[64];
    int used = 0;
    for (size_t k = 0; k < n && k < 64; k++)
        score[k] = 0;
    for (size_t m = 0; m < nmodels; m++) {
        bool all = true;
        for (size_t k = 0; k < n; k++)
            all = all && isfinite(rows[m].value[k]) && rows[m].value[k] > 0;
        if (!all)
            continue;
        for (size_t k = 0; k < n; k++)
            score[k] += log(rows[m].value[k]);
        used++;
    }
    const char *basis = "training samples/s, geometric mean over the models";
    if (used == 0) {
        for (size_t k = 0; k < n; k++)
            score[k] = isfinite(gemm->value[k]) && gemm->value[k] > 0 ? log(gemm->value[k]) : NAN;
        used = 1;
        basis = "best GEMM GFLOP/s (no training figures on every device)";
    }
    int best = -1, second = -1;
    for (size_t k = 0; k < n; k++) {
        if (!isfinite(score[k]))
            continue;
        if (best < 0 || score[k] > score[best]) {
            second = best;
            best = (int)k;
        } else if (second < 0 || score[k] > score[second]) {
            second = (int)k;
        }
    }
    if (best < 0 || second < 0) {
        printf("winner: none (no figure that every device has)\n");
        return;
    }
    printf("winner: %s (%s), %.2fx the runner-up %s by %s\n", r->devs[best].id, r->devs[best].label,
           exp((score[best] - score[second]) / used), r->devs[second].id, basis);
}

/* The figures that decide training speed, per device, before the long tables. */
static void print_summary(const struct bench_results *r)
{
    size_t n = r->ndev;
    char models[16][32]; /* a model in each precision: 5 x 3 at most */
    size_t nmodels = train_models(r, models, 16);
    size_t nrows = nmodels + 2;
    struct summary_row rows[18];
    double *values = calloc(nrows * n, sizeof *values);
    const char **srcs = calloc(nrows * n, sizeof *srcs);
    if (!values || !srcs || n > 64) {
        free(values);
        free(srcs);
        return;
    }
    for (size_t i = 0; i < nrows; i++) {
        rows[i] =
            (struct summary_row){.higher = true, .value = values + i * n, .src = srcs + i * n};
    }
    for (size_t m = 0; m < nmodels; m++) {
        snprintf(rows[m].what, sizeof rows[m].what, "training %s", models[m]);
        snprintf(rows[m].unit, sizeof rows[m].unit, "samples/s");
        char name[64];
        snprintf(name, sizeof name, "%s.samples_per_s", models[m]);
        for (size_t k = 0; k < n; k++) {
            const struct bench_figure *f = figure(&r->devs[k], "train", name);
            rows[m].value[k] = f ? f->median : NAN;
        }
    }
    struct summary_row *gemm = &rows[nmodels], *bw = &rows[nmodels + 1];
    snprintf(gemm->what, sizeof gemm->what, "best GEMM");
    snprintf(gemm->unit, sizeof gemm->unit, "GFLOP/s");
    snprintf(bw->what, sizeof bw->what, "memory bandwidth");
    snprintf(bw->unit, sizeof bw->unit, "GB/s");
    for (size_t k = 0; k < n; k++) {
        gemm->value[k] = best_of(&r->devs[k], "gemm", "GFLOP/s", "", &gemm->src[k]);
        bw->value[k] = best_of(&r->devs[k], "micro", "GB/s", "bandwidth.", &bw->src[k]);
    }
    printf("== summary: the figures that decide training speed (medians)\n");
    printf("  %-34s %-10s", "figure", "better");
    for (size_t k = 0; k < n; k++)
        printf(" %13.13s ", r->devs[k].id);
    printf("\n");
    for (size_t i = 0; i < nrows; i++)
        print_row(&rows[i], n);
    for (size_t k = 0; k < n; k++)
        printf("  %s = %s\n", r->devs[k].id, r->devs[k].label);
    if (n > 1) {
        printf("  * the best device of the row\n");
        print_winner(r, rows, nmodels, gemm);
    } else {
        printf("one device measured: `--device all`, or several --from files, compare devices "
               "and name a winner\n");
    }
    printf("\n");
    free(values);
    free(srcs);
}

void bench_print_table(const struct bench_results *r)
{
    printf("cltrain-bench %s, %s run: %d warm-up and %d measured runs per figure\n\n",
           clt_version(), r->mode, r->warmup, r->runs);
    print_summary(r);
    for (size_t k = 0; k < r->ndev; k++)
        print_device(&r->devs[k]);
    if (r->ndev > 1)
        print_side_by_side(r);
}

/* A number for JSON: finite values only (JSON has no NaN); others become null. */
static void json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

static void json_figure(FILE *f, const struct bench_figure *g)
{
    char buf[16];
    const char *precision = bench_figure_precision(g, buf, sizeof buf);
    fputs("{\"name\": ", f);
    json_string(f, g->name);
    fputs(", \"unit\": ", f);
    json_string(f, g->unit);
    fprintf(f, ", \"better\": \"%s\", \"median\": ", g->higher_better ? "higher" : "lower");
    json_number(f, g->median);
    fputs(", \"min\": ", f);
    json_number(f, g->min);
    fputs(", \"max\": ", f);
    json_number(f, g->max);
    fprintf(f, ", \"runs\": %d", g->runs);
    if (precision) {
        fputs(", \"precision\": ", f);
        json_string(f, precision);
    }
    fputs("}", f);
}

static void json_rows(FILE *f, const char *key, const struct bench_prof_row *rows, size_t n,
                      double step_ms)
{
    fprintf(f, ", \"%s\": [", key);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",\n         {\"name\": " : "\n         {\"name\": ", f);
        json_string(f, rows[i].name);
        fputs(", \"calls_per_step\": ", f);
        json_number(f, rows[i].calls);
        fputs(", \"ms_per_step\": ", f);
        json_number(f, rows[i].ms);
        fputs(", \"pct_of_step\": ", f);
        json_number(f, step_ms > 0 ? 100.0 * rows[i].ms / step_ms : 0.0);
        fputs("}", f);
    }
    fputs("]", f);
}

/* --profile: "profile": [{"model": ..., "steps": ..., "step_ms": ..., "kernels": [ROW...],
 * "ops": [ROW...]}], written only when there is one. */
static void json_profiles(FILE *f, const struct bench_device *d)
{
    if (d->nprofs == 0)
        return;
    fputs(",\n     \"profile\": [", f);
    for (size_t i = 0; i < d->nprofs; i++) {
        const struct bench_profile *p = &d->profs[i];
        fputs(i ? ",\n       {\"model\": " : "\n       {\"model\": ", f);
        json_string(f, p->model);
        fprintf(f, ", \"steps\": %d, \"step_ms\": ", p->steps);
        json_number(f, p->step_ms);
        json_rows(f, "kernels", p->kernels, p->nkernels, p->step_ms);
        json_rows(f, "ops", p->ops, p->nops, p->step_ms);
        fputs("}", f);
    }
    fputs("]", f);
}

static void json_device(FILE *f, const struct bench_device *d)
{
    fputs("    {\"id\": ", f);
    json_string(f, d->id);
    fputs(", \"label\": ", f);
    json_string(f, d->label);
    fputs(", \"notes\": ", f);
    json_string(f, d->notes);
    fputs(",\n     \"environment\": {", f);
    for (int i = 0; i < d->nenv; i++) {
        fputs(i ? ", " : "", f);
        json_string(f, d->env[i].key);
        fputs(": ", f);
        if (d->env[i].is_number)
            fputs(d->env[i].value, f);
        else
            json_string(f, d->env[i].value);
    }
    fputs("}", f);
    for (size_t s = 1; s < bench_section_count; s++) {
        fprintf(f, ",\n     \"%s\": [", bench_sections[s]);
        bool first = true;
        for (size_t i = 0; i < d->nfigs; i++) {
            if (strcmp(d->figs[i].section, bench_sections[s]) != 0)
                continue;
            fputs(first ? "\n       " : ",\n       ", f);
            json_figure(f, &d->figs[i]);
            first = false;
        }
        fputs("]", f);
    }
    json_profiles(f, d);
    fputs("}", f);
}

static enum clt_status close_file(FILE *f, const char *path)
{
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "cltrain-bench: could not write %s\n", path);
        return CLT_ERR_IO;
    }
    return CLT_OK;
}

static FILE *open_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "cltrain-bench: cannot open %s for writing\n", path);
    return f;
}

enum clt_status bench_write_json(const struct bench_results *r, const char *path)
{
    FILE *f = open_out(path);
    if (!f)
        return CLT_ERR_IO;
    fprintf(f,
            "{\"tool\": \"cltrain-bench\", \"format\": 1, \"cltrain_version\": \"%s\", "
            "\"mode\": ",
            clt_version());
    json_string(f, r->mode);
    fprintf(f, ", \"warmup\": %d, \"runs\": %d,\n  \"devices\": [\n", r->warmup, r->runs);
    for (size_t k = 0; k < r->ndev; k++) {
        json_device(f, &r->devs[k]);
        fputs(k + 1 < r->ndev ? ",\n" : "\n", f);
    }
    fputs("  ]\n}\n", f);
    return close_file(f, path);
}

/* A CSV field, quoted when it holds a comma, a quote or a line break. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

enum clt_status bench_write_csv(const struct bench_results *r, const char *path)
{
    FILE *f = open_out(path);
    if (!f)
        return CLT_ERR_IO;
    fputs("device,label,section,name,unit,better,median,min,max,runs,precision\n", f);
    for (size_t k = 0; k < r->ndev; k++) {
        const struct bench_device *d = &r->devs[k];
        for (int i = 0; i < d->nenv; i++) {
            csv_field(f, d->id);
            fputc(',', f);
            csv_field(f, d->label);
            fputs(",environment,", f);
            csv_field(f, d->env[i].key);
            fputs(",,,", f);
            csv_field(f, d->env[i].value);
            fputs(",,,,\n", f);
        }
        for (size_t i = 0; i < d->nfigs; i++) {
            const struct bench_figure *g = &d->figs[i];
            csv_field(f, d->id);
            fputc(',', f);
            csv_field(f, d->label);
            fprintf(f, ",%s,", g->section);
            csv_field(f, g->name);
            fputc(',', f);
            csv_field(f, g->unit);
            char buf[16];
            const char *precision = bench_figure_precision(g, buf, sizeof buf);
            fprintf(f, ",%s,%.9g,%.9g,%.9g,%d,", g->higher_better ? "higher" : "lower", g->median,
                    g->min, g->max, g->runs);
            csv_field(f, precision ? precision : "");
            fputc('\n', f);
        }
    }
    return close_file(f, path);
}
