/*
 * report.c: the results as a table on stdout, as JSON and as CSV. The JSON layout (read back
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
 */
#include <math.h>
#include <stdio.h>
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

void bench_print_table(const struct bench_results *r)
{
    printf("cltrain-bench %s, %s run: %d warm-up and %d measured runs per figure\n\n",
           clt_version(), r->mode, r->warmup, r->runs);
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
    fprintf(f, ", \"runs\": %d}", g->runs);
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
    fputs("device,label,section,name,unit,better,median,min,max,runs\n", f);
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
            fputs(",,,\n", f);
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
            fprintf(f, ",%s,%.9g,%.9g,%.9g,%d\n", g->higher_better ? "higher" : "lower", g->median,
                    g->min, g->max, g->runs);
        }
    }
    return close_file(f, path);
}
