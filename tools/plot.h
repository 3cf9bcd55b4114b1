/*
 * plot.h: line charts as standalone SVG files (no scripts, no external fonts), for the
 * curves of a training run (`cltrain train --plot FILE.svg`): one or more panels stacked on
 * a shared x axis. Each series is drawn as <g><title>NAME</title><polyline .../></g>.
 */
#ifndef CLTRAIN_TOOLS_PLOT_H
#define CLTRAIN_TOOLS_PLOT_H

#include <stdbool.h>
#include <stddef.h>

/* A comment every plot carries after its XML declaration, so that a later run knows the file
 * as its own (tools/outputs.c). */
#define PLOT_GENERATOR "generator: cltrain"

struct plot_series {
    const char *name;  /* in the legend */
    const char *color; /* an SVG colour, e.g. "#1f77b4" */
    const double *x, *y;
    size_t n;
    bool markers; /* a dot at each point (for sparse series) */
};

/* A panel: series on one pair of axes, sharing the chart's x range. */
struct plot_panel {
    const char *ylabel;
    const struct plot_series *series;
    size_t count;
    int height; /* of the plot area, in SVG user units */
};

/* Draws the panels stacked, top to bottom, each with its own y ticks, label and legend, the
 * x ticks and xlabel under the last; writes the SVG to path (replacing it atomically, outputs.h).
 * Returns 0, or -1 with a message in err. */
int plot_svg_panels(const char *path, const char *title, const char *xlabel,
                    const struct plot_panel *panels, size_t count, char *err, size_t err_size);

/* Draws the series on one pair of axes with ticks, axis labels, a title and a legend, and
 * writes the SVG to path (replacing it atomically, outputs.h). Non-finite points are skipped.
 * Returns 0, or -1 with a message in err. */
int plot_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
             const struct plot_series *series, size_t count, char *err, size_t err_size);

/* Tick positions for [lo, hi]: a "nice" step (1, 2 or 5 times a power of ten) giving about
 * `want` ticks; writes the first tick and the step. */
void plot_ticks(double lo, double hi, int want, double *first, double *step);

/* Smooths y[0..n) with an exponential moving average with bias correction (as Adam corrects
 * its moments): s_t = beta s_{t-1} + (1 - beta) y_t from s_0 = 0, out_t = s_t / (1 - beta^t),
 * t counting the finite values so far. out starts at the first value itself (no lag towards
 * 0 and no look-ahead); non-finite values are skipped (out is NAN there). beta in [0, 1). */
void plot_smooth(const double *y, size_t n, double beta, double *out);

struct metrics_point;

/* The chart of a training run from its records: the loss (each logged training loss, their
 * smoothed curve, the evaluation losses), the evaluation accuracy, and the learning rate,
 * as three panels over the step. A panel without data says so. */
int plot_training(const char *path, const char *title, const struct metrics_point *points, size_t n,
                  char *err, size_t err_size);

#endif
