/*
 * plot.c: see plot.h. The chart is 800 user units wide: the title above, then the panels,
 * each a plot area with a margin for tick labels on the left and its legend in the upper
 * right corner, separated by a gap; the x tick labels and x label below the last.
 */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "json.h"
#include "metrics.h"
#include "outputs.h"

enum { WIDTH = 800, HEIGHT = 480, LEFT = 70, RIGHT = 20, TOP = 40, BOTTOM = 55, GAP = 25 };

void plot_ticks(double lo, double hi, int want, double *first, double *step)
{
    double range = hi - lo;
    if (!(range > 0))
        range = fabs(hi) > 0 ? fabs(hi) : 1;
    double raw = range / (want > 1 ? want : 1);
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double nice = f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10;
    *step = nice * mag;
    *first = ceil(lo / *step - 1e-9) * *step;
}

/* Escapes text for SVG content. */
static void text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

/* A tick label: integers without decimals, others with as many as the step needs. */
static void tick_label(char *buf, size_t size, double v, double step)
{
    if (fabs(v) < step * 1e-6)
        v = 0;
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) >= 1e6)
        snprintf(buf, size, "%.3g", v);
    else
        snprintf(buf, size, "%.*f", decimals, v);
}

struct frame {
    double x0, x1, y0, y1; /* data range */
    int top, bottom;       /* the plot area's vertical extent, in user units */
};

static double px(const struct frame *fr, double x)
{
    return LEFT + (x - fr->x0) / (fr->x1 - fr->x0) * (WIDTH - LEFT - RIGHT);
}

static double py(const struct frame *fr, double y)
{
    return fr->bottom - (y - fr->y0) / (fr->y1 - fr->y0) * (fr->bottom - fr->top);
}

/* The x range of every panel's finite points together. */
static void x_range_of(const struct plot_panel *panels, size_t count, struct frame *fr)
{
    fr->x0 = INFINITY;
    fr->x1 = -INFINITY;
    for (size_t k = 0; k < count; k++)
        for (size_t i = 0; i < panels[k].count; i++) {
            const struct plot_series *s = &panels[k].series[i];
            for (size_t j = 0; j < s->n; j++)
                if (isfinite(s->x[j]) && isfinite(s->y[j])) {
                    fr->x0 = fmin(fr->x0, s->x[j]);
                    fr->x1 = fmax(fr->x1, s->x[j]);
                }
        }
    if (!isfinite(fr->x0)) {
        fr->x0 = 0;
        fr->x1 = 1;
    }
    if (fr->x1 <= fr->x0)
        fr->x1 = fr->x0 + 1;
    if (fr->x0 > 0 && fr->x0 <= 0.5 * fr->x1) /* steps: start the axis at 0 */
        fr->x0 = 0;
}

/* The y range of one panel's finite points. */
static void y_range_of(const struct plot_series *s, size_t count, struct frame *fr)
{
    fr->y0 = INFINITY;
    fr->y1 = -INFINITY;
    for (size_t i = 0; i < count; i++)
        for (size_t j = 0; j < s[i].n; j++) {
            if (!isfinite(s[i].x[j]) || !isfinite(s[i].y[j]))
                continue;
            fr->y0 = fmin(fr->y0, s[i].y[j]);
            fr->y1 = fmax(fr->y1, s[i].y[j]);
        }
    if (!isfinite(fr->y0)) {
        fr->y0 = 0;
        fr->y1 = 1;
    }
    if (fr->y1 <= fr->y0) {
        fr->y0 -= 0.5;
        fr->y1 += 0.5;
    }
    /* Losses are positive: start the axis at 0 unless the curve stays far above it. */
    if (fr->y0 >= 0 && fr->y0 < 0.5 * fr->y1)
        fr->y0 = 0;
    double pad = (fr->y1 - fr->y0) * 0.05;
    fr->y1 += pad;
    if (fr->y0 != 0)
        fr->y0 -= pad;
}

/* One panel's axes: y grid, ticks and label; x grid, with tick labels and the x label only
 * when last. */
static void axes(FILE *f, const struct frame *fr, const char *xlabel, const char *ylabel, bool last)
{
    double first, step;
    char label[32];
    plot_ticks(fr->y0, fr->y1, fr->bottom - fr->top > 200 ? 6 : 3, &first, &step);
    for (double v = first; v <= fr->y1 + step * 1e-9; v += step) {
        double y = py(fr, v);
        tick_label(label, sizeof label, v, step);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n", LEFT,
                y, WIDTH - RIGHT, y);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#000\"/>\n",
                LEFT - 5, y, LEFT, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", LEFT - 8, y + 4,
                label);
    }
    plot_ticks(fr->x0, fr->x1, 8, &first, &step);
    if (step < 1)
        step = 1, first = ceil(fr->x0);
    for (double v = first; v <= fr->x1 + step * 1e-9; v += step) {
        double x = px(fr, v);
        tick_label(label, sizeof label, v, step);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e0e0e0\"/>\n", x,
                fr->top, x, fr->bottom);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#000\"/>\n", x,
                fr->bottom, x, fr->bottom + 5);
        if (last)
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x,
                    fr->bottom + 20, label);
    }
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#000\"/>\n",
            LEFT, fr->top, WIDTH - LEFT - RIGHT, fr->bottom - fr->top);
    if (last) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (LEFT + WIDTH - RIGHT) / 2,
                fr->bottom + 43);
        text(f, xlabel);
        fputs("</text>\n", f);
    }
    int mid = (fr->top + fr->bottom) / 2;
    fprintf(f, "<text x=\"18\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 18 %d)\">",
            mid, mid);
    text(f, ylabel);
    fputs("</text>\n", f);
}

static void series_path(FILE *f, const struct frame *fr, const struct plot_series *s)
{
    fputs("<g><title>", f);
    text(f, s->name);
    fprintf(f, "</title><polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
            s->color);
    for (size_t j = 0; j < s->n; j++)
        if (isfinite(s->x[j]) && isfinite(s->y[j]))
            fprintf(f, "%.1f,%.1f ", px(fr, s->x[j]), py(fr, s->y[j]));
    fputs("\"/>\n", f);
    for (size_t j = 0; s->markers && j < s->n; j++)
        if (isfinite(s->x[j]) && isfinite(s->y[j]))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", px(fr, s->x[j]),
                    py(fr, s->y[j]), s->color);
    fputs("</g>\n", f);
}

/* Whether a series has a finite point. */
static bool has_points(const struct plot_series *s)
{
    for (size_t j = 0; j < s->n; j++)
        if (isfinite(s->x[j]) && isfinite(s->y[j]))
            return true;
    return false;
}

static void legend(FILE *f, const struct plot_series *s, size_t count, int top)
{
    int x = WIDTH - RIGHT - 190, y = top + 10;
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"180\" height=\"%d\" fill=\"#fff\" "
            "fill-opacity=\"0.85\" stroke=\"#999\"/>\n",
            x, y, (int)count * 20 + 8);
    for (size_t i = 0; i < count; i++) {
        int ly = y + 16 + (int)i * 20;
        fprintf(f,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                "stroke-width=\"2\"/>\n",
                x + 8, ly - 4, x + 36, ly - 4, s[i].color);
        if (s[i].markers)
            fprintf(f, "<circle cx=\"%d\" cy=\"%d\" r=\"3.5\" fill=\"%s\"/>\n", x + 22, ly - 4,
                    s[i].color);
        fprintf(f, "<text x=\"%d\" y=\"%d\">", x + 44, ly);
        text(f, s[i].name);
        fputs("</text>\n", f);
    }
}

/* One panel: axes, the series clipped to the plot area, the legend; "no data" when no
 * series has a point. */
static void panel(FILE *f, struct frame *fr, const struct plot_panel *p, const char *xlabel,
                  bool last)
{
    y_range_of(p->series, p->count, fr);
    axes(f, fr, xlabel, p->ylabel, last);
    fprintf(f,
            "<svg x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" viewBox=\"%d %d %d %d\" "
            "overflow=\"hidden\">\n",
            LEFT, fr->top, WIDTH - LEFT - RIGHT, fr->bottom - fr->top, LEFT, fr->top,
            WIDTH - LEFT - RIGHT, fr->bottom - fr->top);
    bool any = false;
    for (size_t i = 0; i < p->count; i++) {
        series_path(f, fr, &p->series[i]);
        any = any || has_points(&p->series[i]);
    }
    fputs("</svg>\n", f);
    if (!any)
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#777\">no data</text>\n",
                (LEFT + WIDTH - RIGHT) / 2, (fr->top + fr->bottom) / 2);
    legend(f, p->series, p->count, fr->top);
}

int plot_svg_panels(const char *path, const char *title, const char *xlabel,
                    const struct plot_panel *panels, size_t count, char *err, size_t err_size)
{
    struct outfile out;
    if (outfile_open(&out, path, err, err_size) != 0)
        return -1;
    FILE *f = out.f;
    int height = TOP + BOTTOM;
    for (size_t k = 0; k < count; k++)
        height += panels[k].height + (k ? GAP : 0);
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- " PLOT_GENERATOR " -->\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
            WIDTH, height, WIDTH, height);
    fprintf(f, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">",
            (LEFT + WIDTH - RIGHT) / 2);
    text(f, title);
    fputs("</text>\n", f);
    struct frame fr;
    x_range_of(panels, count, &fr);
    fr.top = TOP;
    for (size_t k = 0; k < count; k++) {
        fr.bottom = fr.top + panels[k].height;
        panel(f, &fr, &panels[k], xlabel, k + 1 == count);
        fr.top = fr.bottom + GAP;
    }
    fputs("</svg>\n", f);
    return outfile_commit(&out, err, err_size);
}

int plot_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
             const struct plot_series *series, size_t count, char *err, size_t err_size)
{
    struct plot_panel p = {ylabel, series, count, HEIGHT - TOP - BOTTOM};
    return plot_svg_panels(path, title, xlabel, &p, 1, err, err_size);
}

void plot_smooth(const double *y, size_t n, double beta, double *out)
{
    double s = 0, power = 1; /* power: beta^t */
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) {
            out[i] = NAN;
            continue;
        }
        s = beta * s + (1 - beta) * y[i];
        power *= beta;
        out[i] = s / (1 - power);
    }
}

/* The smoothing of the training loss: an EMA over about 10 logged steps. */
#define LOSS_SMOOTHING 0.9

int plot_training(const char *path, const char *title, const struct metrics_point *points, size_t n,
                  char *err, size_t err_size)
{
    /* Columns of n each: train step, loss, smoothed loss, lr; eval step, loss, accuracy. */
    double *buf = malloc(7 * (n + 1) * sizeof *buf);
    if (!buf) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    double *tx = buf, *ty = tx + n, *ts = ty + n, *lr = ts + n, *ex = lr + n, *ey = ex + n,
           *ea = ey + n;
    size_t nt = 0, ne = 0;
    for (size_t i = 0; i < n; i++) {
        if (points[i].eval) {
            ex[ne] = (double)points[i].step;
            ea[ne] = points[i].accuracy;
            ey[ne++] = points[i].loss;
        } else {
            tx[nt] = (double)points[i].step;
            lr[nt] = points[i].lr;
            ty[nt++] = points[i].loss;
        }
    }
    plot_smooth(ty, nt, LOSS_SMOOTHING, ts);
    /* Single-step losses are noisy: drawn light, their smoothed curve on top. */
    const struct plot_series loss[] = {
        {"training loss", "#aec7e8", tx, ty, nt, false},
        {"smoothed (EMA 0.9)", "#1f77b4", tx, ts, nt, false},
        {"evaluation loss", "#d62728", ex, ey, ne, true},
    };
    const struct plot_series acc[] = {{"evaluation accuracy", "#2ca02c", ex, ea, ne, true}};
    const struct plot_series rate[] = {{"learning rate", "#9467bd", tx, lr, nt, false}};
    const struct plot_panel panels[] = {
        {"cross-entropy loss", loss, 3, 300},
        {"accuracy", acc, 1, 130},
        {"learning rate", rate, 1, 110},
    };
    int rc = plot_svg_panels(path, title, "step", panels, 3, err, err_size);
    free(buf);
    return rc;
}
