/*
 * plot.c: see plot.h. The chart is 800 x 480 user units: a plot area with a margin for tick
 * labels on the left and below, the title above, and the legend in the upper right corner of
 * the plot area.
 */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "json.h"

enum { WIDTH = 800, HEIGHT = 480, LEFT = 70, RIGHT = 20, TOP = 40, BOTTOM = 55 };

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
};

static double px(const struct frame *fr, double x)
{
    return LEFT + (x - fr->x0) / (fr->x1 - fr->x0) * (WIDTH - LEFT - RIGHT);
}

static double py(const struct frame *fr, double y)
{
    return HEIGHT - BOTTOM - (y - fr->y0) / (fr->y1 - fr->y0) * (HEIGHT - TOP - BOTTOM);
}

static void range_of(const struct plot_series *s, size_t count, struct frame *fr)
{
    fr->x0 = fr->y0 = INFINITY;
    fr->x1 = fr->y1 = -INFINITY;
    for (size_t i = 0; i < count; i++)
        for (size_t j = 0; j < s[i].n; j++) {
            if (!isfinite(s[i].x[j]) || !isfinite(s[i].y[j]))
                continue;
            fr->x0 = fmin(fr->x0, s[i].x[j]);
            fr->x1 = fmax(fr->x1, s[i].x[j]);
            fr->y0 = fmin(fr->y0, s[i].y[j]);
            fr->y1 = fmax(fr->y1, s[i].y[j]);
        }
    if (!isfinite(fr->x0)) {
        fr->x0 = fr->y0 = 0;
        fr->x1 = fr->y1 = 1;
    }
    if (fr->x1 <= fr->x0)
        fr->x1 = fr->x0 + 1;
    if (fr->x0 > 0 && fr->x0 <= 0.5 * fr->x1) /* steps: start the axis at 0 */
        fr->x0 = 0;
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

static void axes(FILE *f, const struct frame *fr, const char *xlabel, const char *ylabel)
{
    double first, step;
    char label[32];
    plot_ticks(fr->y0, fr->y1, 6, &first, &step);
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
                TOP, x, HEIGHT - BOTTOM);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#000\"/>\n", x,
                HEIGHT - BOTTOM, x, HEIGHT - BOTTOM + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x,
                HEIGHT - BOTTOM + 20, label);
    }
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#000\"/>\n",
            LEFT, TOP, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (LEFT + WIDTH - RIGHT) / 2,
            HEIGHT - 12);
    text(f, xlabel);
    fprintf(f,
            "</text>\n<text x=\"18\" y=\"%d\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 18 %d)\">",
            (TOP + HEIGHT - BOTTOM) / 2, (TOP + HEIGHT - BOTTOM) / 2);
    text(f, ylabel);
    fputs("</text>\n", f);
}

static void series_path(FILE *f, const struct frame *fr, const struct plot_series *s)
{
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", s->color);
    for (size_t j = 0; j < s->n; j++)
        if (isfinite(s->x[j]) && isfinite(s->y[j]))
            fprintf(f, "%.1f,%.1f ", px(fr, s->x[j]), py(fr, s->y[j]));
    fputs("\"/>\n", f);
    for (size_t j = 0; s->markers && j < s->n; j++)
        if (isfinite(s->x[j]) && isfinite(s->y[j]))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", px(fr, s->x[j]),
                    py(fr, s->y[j]), s->color);
}

static void legend(FILE *f, const struct plot_series *s, size_t count)
{
    int x = WIDTH - RIGHT - 190, y = TOP + 10;
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

int plot_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
             const struct plot_series *series, size_t count, char *err, size_t err_size)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, err_size, "plot path too long");
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    struct frame fr;
    range_of(series, count, &fr);
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- " PLOT_GENERATOR " -->\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
            WIDTH, HEIGHT, WIDTH, HEIGHT);
    fprintf(f, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">",
            (LEFT + WIDTH - RIGHT) / 2);
    text(f, title);
    fputs("</text>\n", f);
    axes(f, &fr, xlabel, ylabel);
    fprintf(f,
            "<svg x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" viewBox=\"%d %d %d %d\" "
            "overflow=\"hidden\">\n",
            LEFT, TOP, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM, LEFT, TOP, WIDTH - LEFT - RIGHT,
            HEIGHT - TOP - BOTTOM);
    for (size_t i = 0; i < count; i++)
        series_path(f, &fr, &series[i]);
    fputs("</svg>\n", f);
    legend(f, series, count);
    fputs("</svg>\n", f);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}
