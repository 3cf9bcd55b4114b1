/*
 * ref_pool.c: see ref_pool.h. Written from the definitions: the backward passes scatter
 * from each window (the kernels gather), so the two directions are checked against each
 * other.
 */
#include <math.h>
#include <string.h>

#include "ref_pool.h"

/* The first maximum of window (plane, oy, ox): its index in the plane. Every window holds
 * at least one input element (pad <= window / 2). */
static int64_t window_max(const struct clt__pool2d *p, const float *plane, int64_t oy, int64_t ox)
{
    int64_t best_at = -1;
    float best = 0.0f;
    for (int64_t ky = 0; ky < p->kh; ky++)
        for (int64_t kx = 0; kx < p->kw; kx++) {
            const int64_t iy = oy * p->stride_h - p->pad_h + ky;
            const int64_t ix = ox * p->stride_w - p->pad_w + kx;
            if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w)
                continue;
            const float v = plane[iy * p->w + ix];
            if (best_at < 0 || v > best || (isnan(v) && !isnan(best))) {
                best = v;
                best_at = iy * p->w + ix;
            }
        }
    return best_at;
}

void ref_maxpool2d_forward(const struct clt__pool2d *p, const float *x, double *y, int32_t *argmax)
{
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow;
    for (int64_t c = 0; c < p->n * p->c; c++)
        for (int64_t oy = 0; oy < p->oh; oy++)
            for (int64_t ox = 0; ox < p->ow; ox++) {
                const int64_t at = window_max(p, x + c * hw, oy, ox);
                y[c * ohw + oy * p->ow + ox] = x[c * hw + at];
                argmax[c * ohw + oy * p->ow + ox] = (int32_t)at;
            }
}

void ref_maxpool2d_backward(const struct clt__pool2d *p, const float *x, const float *dy,
                            double *dx)
{
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow;
    memset(dx, 0, (size_t)(p->n * p->c * hw) * sizeof *dx);
    for (int64_t c = 0; c < p->n * p->c; c++)
        for (int64_t oy = 0; oy < p->oh; oy++)
            for (int64_t ox = 0; ox < p->ow; ox++)
                dx[c * hw + window_max(p, x + c * hw, oy, ox)] += dy[c * ohw + oy * p->ow + ox];
}

void ref_avgpool2d_forward(const struct clt__pool2d *p, const float *x, double *y)
{
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow;
    for (int64_t c = 0; c < p->n * p->c; c++)
        for (int64_t oy = 0; oy < p->oh; oy++)
            for (int64_t ox = 0; ox < p->ow; ox++) {
                double acc = 0.0;
                for (int64_t ky = 0; ky < p->kh; ky++)
                    for (int64_t kx = 0; kx < p->kw; kx++) {
                        const int64_t iy = oy * p->stride_h - p->pad_h + ky;
                        const int64_t ix = ox * p->stride_w - p->pad_w + kx;
                        if (iy >= 0 && iy < p->h && ix >= 0 && ix < p->w)
                            acc += x[c * hw + iy * p->w + ix];
                    }
                y[c * ohw + oy * p->ow + ox] = acc / (double)(p->kh * p->kw);
            }
}

void ref_avgpool2d_backward(const struct clt__pool2d *p, const float *dy, double *dx)
{
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow;
    memset(dx, 0, (size_t)(p->n * p->c * hw) * sizeof *dx);
    for (int64_t c = 0; c < p->n * p->c; c++)
        for (int64_t oy = 0; oy < p->oh; oy++)
            for (int64_t ox = 0; ox < p->ow; ox++) {
                const double g = dy[c * ohw + oy * p->ow + ox] / (double)(p->kh * p->kw);
                for (int64_t ky = 0; ky < p->kh; ky++)
                    for (int64_t kx = 0; kx < p->kw; kx++) {
                        const int64_t iy = oy * p->stride_h - p->pad_h + ky;
                        const int64_t ix = ox * p->stride_w - p->pad_w + kx;
                        if (iy >= 0 && iy < p->h && ix >= 0 && ix < p->w)
                            dx[c * hw + iy * p->w + ix] += g;
                    }
            }
}

void ref_global_avgpool_forward(int64_t planes, int64_t hw, const float *x, double *y)
{
    for (int64_t c = 0; c < planes; c++) {
        double acc = 0.0;
        for (int64_t i = 0; i < hw; i++)
            acc += x[c * hw + i];
        y[c] = acc / (double)hw;
    }
}

void ref_global_avgpool_backward(int64_t planes, int64_t hw, const float *dy, double *dx)
{
    for (int64_t c = 0; c < planes; c++)
        for (int64_t i = 0; i < hw; i++)
            dx[c * hw + i] = dy[c] / (double)hw;
}
