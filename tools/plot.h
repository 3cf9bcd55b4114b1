/*
 * plot.h: line charts as standalone SVG files (no scripts, no external fonts), for the loss
 * curves of a training run (`cltrain train --plot FILE.svg`).
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

/* Draws the series on one pair of axes with ticks, axis labels, a title and a legend, and
 * writes the SVG to path (replacing it atomically through "<path>.tmp.<pid>"). Non-finite points are skipped. Returns 0,
 * or -1 with a message in err. */
int plot_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
             const struct plot_series *series, size_t count, char *err, size_t err_size);

/* Tick positions for [lo, hi]: a "nice" step (1, 2 or 5 times a power of ten) giving about
 * `want` ticks; writes the first tick and the step. */
void plot_ticks(double lo, double hi, int want, double *first, double *step);

#endif
