/*
 * svg.c: a standalone SVG chart of the devices side by side: one panel per section, one row
 * per figure, one bar per device. Bars are normalised per figure to the best device (its
 * bar is full length), so that a longer bar is always better: value / best for rates,
 * best / value for times. The measured median and unit are written beside each bar.
 * GEMM percentages of peak are left out (they repeat the GFLOP/s rows).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

enum { LABEL_W = 290, BAR_W = 520, TEXT_W = 150, BAR_H = 12, ROW_GAP = 6, HEAD_H = 30 };
#define MAX_DEVS 16

static const char *const colours[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759",
                                      "#76b7b2", "#edc948", "#b07aa1", "#9c755f"};

struct chart {
    const struct bench_device *devs[MAX_DEVS];
    char names[MAX_DEVS][340];
    size_t n;
};

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static const struct bench_figure *lookup(const struct bench_device *d, const char *section,
                                         const char *name)
{
    for (size_t i = 0; i < d->nfigs; i++)
        if (strcmp(d->figs[i].section, section) == 0 && strcmp(d->figs[i].name, name) == 0)
            return &d->figs[i];
    return NULL;
}

static bool charted(const struct bench_figure *f)
{
    size_t n = strlen(f->name);
    return !(n > 9 && strcmp(f->name + n - 9, ".pct_peak") == 0) && isfinite(f->median) &&
           f->median > 0;
}

/* Whether figure i of device k is the first occurrence of its (section, name). */
static bool first_occurrence(const struct chart *c, size_t k, const struct bench_figure *f)
{
    for (size_t j = 0; j < k; j++)
        if (lookup(c->devs[j], f->section, f->name))
            return false;
    return true;
}

/* Draws one figure's row at y; returns its height. */
static int row(FILE *out, const struct chart *c, const struct bench_figure *f, int y)
{
    double best = 0;
    for (size_t k = 0; k < c->n; k++) {
        const struct bench_figure *g = lookup(c->devs[k], f->section, f->name);
        if (g && charted(g) &&
            (best == 0 || (f->higher_better ? g->median > best : g->median < best)))
            best = g->median;
    }
    int h = (int)c->n * BAR_H + ROW_GAP;
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", LABEL_W - 8, y + h / 2 + 2);
    xml_text(out, f->name);
    fprintf(out, " (%s better)</text>\n", f->higher_better ? "higher" : "lower");
    for (size_t k = 0; k < c->n; k++) {
        const struct bench_figure *g = lookup(c->devs[k], f->section, f->name);
        int by = y + (int)k * BAR_H;
        if (!g || !charted(g)) {
            fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"v\">-</text>\n", LABEL_W + 4,
                    by + BAR_H - 2);
            continue;
        }
        double norm = f->higher_better ? g->median / best : best / g->median;
        int w = (int)lround(norm * BAR_W);
        fprintf(out,
                "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"%d\" class=\"v\">%.4g ",
                LABEL_W, by + 1, w < 1 ? 1 : w, BAR_H - 2, colours[k % 8], LABEL_W + w + 4,
                by + BAR_H - 2, g->median);
        xml_text(out, g->unit);
        fputs("</text>\n", out);
    }
    return h;
}

/* The rows of one section; returns the y after them. */
static int section(FILE *out, const struct chart *c, const char *name, int y)
{
    fprintf(out, "<text x=\"8\" y=\"%d\" class=\"h\">%s</text>\n", y + 20, name);
    y += HEAD_H;
    for (size_t k = 0; k < c->n; k++)
        for (size_t i = 0; i < c->devs[k]->nfigs; i++) {
            const struct bench_figure *f = &c->devs[k]->figs[i];
            if (strcmp(f->section, name) == 0 && charted(f) && first_occurrence(c, k, f))
                y += row(out, c, f, y);
        }
    return y;
}

/* Height of the chart: legend, then every section's header and rows. */
static int height(const struct chart *c)
{
    int rows = 0;
    for (size_t k = 0; k < c->n; k++)
        for (size_t i = 0; i < c->devs[k]->nfigs; i++)
            rows += charted(&c->devs[k]->figs[i]) && first_occurrence(c, k, &c->devs[k]->figs[i]);
    return 34 + (int)c->n * 18 + (int)(bench_section_count - 1) * (HEAD_H + 6) +
           rows * ((int)c->n * BAR_H + ROW_GAP) + 12;
}

static void add(struct chart *c, const struct bench_device *d, const char *prefix)
{
    if (c->n == MAX_DEVS)
        return;
    c->devs[c->n] = d;
    snprintf(c->names[c->n], sizeof c->names[c->n], "%s%s %s", prefix, d->id, d->label);
    c->n++;
}

enum clt_status bench_write_svg(const struct bench_results *r, const struct bench_results *base,
                                const char *path)
{
    struct chart c = {.n = 0};
    for (size_t k = 0; k < r->ndev; k++)
        add(&c, &r->devs[k], "");
    for (size_t k = 0; base && k < base->ndev; k++)
        add(&c, &base->devs[k], "baseline ");
    if (c.n == 0)
        return CLT_ERR_INVALID_ARGUMENT;
    FILE *out = fopen(path, "w");
    if (!out) {
        fprintf(stderr, "cltrain-bench: cannot open %s for writing\n", path);
        return CLT_ERR_IO;
    }
    int w = LABEL_W + BAR_W + TEXT_W, h = height(&c);
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n"
            "<style>.h{font-size:15px;font-weight:bold}.v{font-size:10px;fill:#333}</style>\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"8\" y=\"20\" class=\"h\">cltrain-bench %s: bars normalised to the best "
            "device per figure (longer is better); medians written beside</text>\n",
            w, h, w, h, clt_version());
    int y = 34;
    for (size_t k = 0; k < c.n; k++, y += 18) {
        fprintf(out,
                "<rect x=\"8\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                "<text x=\"26\" y=\"%d\">",
                y, colours[k % 8], y + 10);
        xml_text(out, c.names[k]);
        fputs("</text>\n", out);
    }
    for (size_t s = 1; s < bench_section_count; s++)
        y = section(out, &c, bench_sections[s], y + 6);
    fputs("</svg>\n", out);
    bool bad = ferror(out) != 0;
    if (fclose(out) != 0 || bad) {
        fprintf(stderr, "cltrain-bench: could not write %s\n", path);
        return CLT_ERR_IO;
    }
    return CLT_OK;
}
