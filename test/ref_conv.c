/*
 * ref_conv.c: see ref_conv.h. Written straight from the definition, one output at a time,
 * with none of the kernels' im2col machinery.
 */
#include <string.h>

#include "ref_conv.h"

/* Calls visit(ctx, x index, weight index, y index) for every product term of the
 * convolution: y[yi] += weight[wi] * x[xi]. Taps in the zero padding are skipped. */
typedef void (*term_fn)(void *ctx, int64_t xi, int64_t wi, int64_t yi);

static void for_each_term(const struct clt__conv2d *c, term_fn visit, void *ctx)
{
    const int64_t cg = c->c_in / c->groups, co = c->c_out / c->groups;
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t oc = 0; oc < c->c_out; oc++)
            for (int64_t oy = 0; oy < c->oh; oy++)
                for (int64_t ox = 0; ox < c->ow; ox++) {
                    const int64_t yi = ((n * c->c_out + oc) * c->oh + oy) * c->ow + ox;
                    const int64_t g = oc / co;
                    for (int64_t icg = 0; icg < cg; icg++)
                        for (int64_t ky = 0; ky < c->kh; ky++)
                            for (int64_t kx = 0; kx < c->kw; kx++) {
                                const int64_t iy = oy * c->stride_h - c->pad_h + ky * c->dil_h;
                                const int64_t ix = ox * c->stride_w - c->pad_w + kx * c->dil_w;
                                if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w)
                                    continue;
                                const int64_t ic = g * cg + icg;
                                const int64_t xi = ((n * c->c_in + ic) * c->h + iy) * c->w + ix;
                                const int64_t wi = ((oc * cg + icg) * c->kh + ky) * c->kw + kx;
                                visit(ctx, xi, wi, yi);
                            }
                }
}

struct forward_ctx {
    const float *x, *weight;
    double *y;
};

static void forward_term(void *ctx, int64_t xi, int64_t wi, int64_t yi)
{
    struct forward_ctx *f = ctx;
    f->y[yi] += (double)f->weight[wi] * (double)f->x[xi];
}

void ref_conv2d_forward(const struct clt__conv2d *c, const float *x, const float *weight,
                        const float *bias, double *y)
{
    const int64_t p = c->oh * c->ow;
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t oc = 0; oc < c->c_out; oc++)
            for (int64_t i = 0; i < p; i++)
                y[(n * c->c_out + oc) * p + i] = bias ? (double)bias[oc] : 0.0;
    struct forward_ctx f = {x, weight, y};
    for_each_term(c, forward_term, &f);
}

struct backward_ctx {
    const float *x, *weight, *dy;
    double *dx, *dweight;
};

static void backward_term(void *ctx, int64_t xi, int64_t wi, int64_t yi)
{
    struct backward_ctx *b = ctx;
    if (b->dx)
        b->dx[xi] += (double)b->weight[wi] * (double)b->dy[yi];
    if (b->dweight)
        b->dweight[wi] += (double)b->x[xi] * (double)b->dy[yi];
}

void ref_conv2d_backward(const struct clt__conv2d *c, const float *x, const float *weight,
                         const float *dy, double *dx, double *dweight, double *dbias)
{
    const int64_t p = c->oh * c->ow;
    if (dx)
        memset(dx, 0, (size_t)(c->n * c->c_in * c->h * c->w) * sizeof *dx);
    if (dweight)
        memset(dweight, 0,
               (size_t)(c->c_out * (c->c_in / c->groups) * c->kh * c->kw) * sizeof *dweight);
    if (dbias)
        for (int64_t oc = 0; oc < c->c_out; oc++) {
            double acc = 0.0;
            for (int64_t n = 0; n < c->n; n++)
                for (int64_t i = 0; i < p; i++)
                    acc += dy[(n * c->c_out + oc) * p + i];
            dbias[oc] = acc;
        }
    struct backward_ctx b = {x, weight, dy, dx, dweight};
    if (dx || dweight)
        for_each_term(c, backward_term, &b);
}
