/*
 * ref_loss.c: see ref_loss.h.
 */
#include <math.h>
#include <stdlib.h>

#include "ref_loss.h"

/* log_softmax of one row x [cols] into out, stable: (x - max) - log sum exp(x - max). */
static void log_softmax_row(int64_t cols, const float *x, double *out)
{
    double m = -INFINITY, s = 0.0;
    for (int64_t j = 0; j < cols; j++)
        m = x[j] > m ? x[j] : m;
    for (int64_t j = 0; j < cols; j++)
        s += exp((double)x[j] - m);
    for (int64_t j = 0; j < cols; j++)
        out[j] = ((double)x[j] - m) - log(s);
}

void ref_softmax_forward(int64_t rows, int64_t cols, const float *x, double *y)
{
    ref_log_softmax_forward(rows, cols, x, y);
    for (int64_t i = 0; i < rows * cols; i++)
        y[i] = exp(y[i]);
}

void ref_log_softmax_forward(int64_t rows, int64_t cols, const float *x, double *y)
{
    for (int64_t r = 0; r < rows; r++)
        log_softmax_row(cols, x + r * cols, y + r * cols);
}

void ref_softmax_backward(int64_t rows, int64_t cols, const float *x, const float *dy, double *dx)
{
    ref_softmax_forward(rows, cols, x, dx);
    for (int64_t r = 0; r < rows; r++) {
        double *y = dx + r * cols;
        const float *g = dy + r * cols;
        double dot = 0.0;
        for (int64_t j = 0; j < cols; j++)
            dot += g[j] * y[j];
        for (int64_t j = 0; j < cols; j++)
            y[j] = y[j] * (g[j] - dot);
    }
}

void ref_log_softmax_backward(int64_t rows, int64_t cols, const float *x, const float *dy,
                              double *dx)
{
    ref_softmax_forward(rows, cols, x, dx);
    for (int64_t r = 0; r < rows; r++) {
        double *p = dx + r * cols;
        const float *g = dy + r * cols;
        double sum = 0.0;
        for (int64_t j = 0; j < cols; j++)
            sum += g[j];
        for (int64_t j = 0; j < cols; j++)
            p[j] = g[j] - p[j] * sum;
    }
}

/* Whether a row with this label counts in the mean. */
static bool counts(int32_t label, int64_t classes, int32_t ignore_index)
{
    return label != ignore_index && label >= 0 && label < classes;
}

double ref_cross_entropy(int64_t rows, int64_t classes, const float *logits, const int32_t *labels,
                         int32_t ignore_index, double smoothing, double dloss, double *dlogits)
{
    int64_t count = 0;
    for (int64_t r = 0; r < rows; r++)
        count += counts(labels[r], classes, ignore_index);
    double *logp = malloc((size_t)classes * sizeof *logp);
    if (!logp)
        abort();
    double total = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        double *g = dlogits ? dlogits + r * classes : NULL;
        bool counted = counts(labels[r], classes, ignore_index);
        log_softmax_row(classes, logits + r * classes, logp);
        for (int64_t j = 0; j < classes; j++) {
            double target = smoothing / (double)classes + (j == labels[r] ? 1.0 - smoothing : 0.0);
            if (counted)
                total -= target * logp[j];
            if (g)
                g[j] = counted ? (exp(logp[j]) - target) * dloss / (double)count : 0.0;
        }
    }
    free(logp);
    return count > 0 ? total / (double)count : 0.0;
}

double ref_mse(int64_t n, const float *x, const float *target, double dloss, double *dx)
{
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)target[i];
        total += d * d;
        if (dx)
            dx[i] = 2.0 * d / (double)n * dloss;
    }
    return n > 0 ? total / (double)n : 0.0;
}
