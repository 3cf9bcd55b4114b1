/*
 * test_ops_conv.c: the rows of test_ops.c's table for conv2d and pooling: their C references
 * in double, their builders and their rows.
 */

#include <stdlib.h>

#include "ops_rig.h"
#include "ref_conv.h"
#include "ref_pool.h"

/* ==== References ========================================================================= */

/* The convolutions of the table, in the order of its rows. */
static const struct clt_conv2d_desc CONV[2] = {
    {.out_channels = 4,
     .kernel_h = 3,
     .kernel_w = 3,
     .stride_h = 2,
     .stride_w = 1,
     .padding_h = 1,
     .padding_w = 1,
     .bias = true},
    {.out_channels = 4,
     .kernel_h = 2,
     .kernel_w = 3,
     .dilation_h = 2,
     .dilation_w = 1,
     .padding_w = 1,
     .groups = 2,
     .bias = false},
};

static struct clt__conv2d conv_of(const struct ctx *c, const struct clt_conv2d_desc *d)
{
    const int64_t *s = S(c, 0);
    struct clt__conv2d v = {.n = s[0],
                            .c_in = s[1],
                            .h = s[2],
                            .w = s[3],
                            .c_out = d->out_channels,
                            .kh = d->kernel_h,
                            .kw = d->kernel_w,
                            .stride_h = d->stride_h ? d->stride_h : 1,
                            .stride_w = d->stride_w ? d->stride_w : 1,
                            .pad_h = d->padding_h,
                            .pad_w = d->padding_w,
                            .dil_h = d->dilation_h ? d->dilation_h : 1,
                            .dil_w = d->dilation_w ? d->dilation_w : 1,
                            .groups = d->groups ? d->groups : 1};
    assert_int_equal(clt__conv2d_resolve(NULL, &v), CLT_OK);
    return v;
}

static void ref_conv0(const struct ctx *c, double *y)
{
    struct clt__conv2d v = conv_of(c, &CONV[0]);
    ref_conv2d_forward(&v, c->p[0], c->p[1], c->p[2], y);
}

static void ref_conv1(const struct ctx *c, double *y)
{
    struct clt__conv2d v = conv_of(c, &CONV[1]);
    ref_conv2d_forward(&v, c->p[0], c->p[1], NULL, y);
}

/* Pooling of the table: kernel 3, stride 2, padding 1. */
static struct clt__pool2d pool_of(const struct ctx *c)
{
    const int64_t *s = S(c, 0);
    struct clt__pool2d p = {.n = s[0],
                            .c = s[1],
                            .h = s[2],
                            .w = s[3],
                            .kh = 3,
                            .kw = 3,
                            .stride_h = 2,
                            .stride_w = 2,
                            .pad_h = 1,
                            .pad_w = 1};
    assert_int_equal(clt__pool2d_resolve(NULL, &p), CLT_OK);
    return p;
}

static void ref_max_pool(const struct ctx *c, double *y)
{
    struct clt__pool2d p = pool_of(c);
    int32_t *argmax = calloc((size_t)c->ny, sizeof *argmax);
    assert_non_null(argmax);
    ref_maxpool2d_forward(&p, F(c, 0), y, argmax);
    free(argmax);
}

static void ref_avg_pool(const struct ctx *c, double *y)
{
    struct clt__pool2d p = pool_of(c);
    ref_avgpool2d_forward(&p, F(c, 0), y);
}

static void ref_global_pool(const struct ctx *c, double *y)
{
    const int64_t *s = S(c, 0);
    ref_global_avgpool_forward(s[0] * s[1], s[2] * s[3], F(c, 0), y);
}

/* ==== Builders =========================================================================== */

static struct clt_tensor *b_conv0(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_conv2d(g, t[0], &CONV[0], "conv");
}

static struct clt_tensor *b_conv1(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_conv2d(g, t[0], &CONV[1], "conv");
}

static struct clt_tensor *b_max_pool(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_max_pool2d(g, t[0], 3, 2, 1);
}

static struct clt_tensor *b_avg_pool(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_avg_pool2d(g, t[0], 3, 2, 1);
}

static struct clt_tensor *b_global_pool(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_global_avg_pool2d(g, t[0]);
}

const struct op_case ops_conv_cases[] = {
    {"conv2d",
     "conv2d stride 2x1, padding, bias",
     1,
     {P4(2, 3, 7, 6)},
     .build = b_conv0,
     .ref = ref_conv0},
    {"conv2d",
     "conv2d dilation 2x1, groups 2",
     1,
     {P4(2, 4, 6, 5)},
     .build = b_conv1,
     .ref = ref_conv1},
    {"pool2d", "max_pool2d", 1, {P4(2, 3, 7, 6)}, .build = b_max_pool, .ref = ref_max_pool},
    {"pool2d", "avg_pool2d", 1, {P4(2, 3, 7, 6)}, .build = b_avg_pool, .ref = ref_avg_pool},
    {"pool2d",
     "global_avg_pool2d",
     1,
     {P4(2, 3, 5, 3)},
     .build = b_global_pool,
     .ref = ref_global_pool},
};
const size_t ops_conv_count = sizeof ops_conv_cases / sizeof ops_conv_cases[0];
