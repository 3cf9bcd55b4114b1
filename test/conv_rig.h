/*
 * conv_rig.h: what the convolution tests share: the cases (full, and small under Oclgrind),
 * their host and device tensors, the tolerance, and one case's forward, backward and
 * finite-difference checks against ref_conv.c.
 */
#ifndef CLTRAIN_TEST_CONV_RIG_H
#define CLTRAIN_TEST_CONV_RIG_H

#include "harness.h"
#include "ops/conv.h"

#define TOL_TERM 5e-7
#define TOL_REL 1e-5

/* A named configuration, with or without bias. */
struct conv_case {
    const char *name;
    struct clt__conv2d c;
    bool bias;
};

/* Host tensors of one case. */
struct host {
    struct clt__conv2d c;
    int64_t nx, ny, nw, nb;
    float *x, *w, *b, *dy;
    float *y, *dx, *dw, *db; /* device results */
    float *dx0, *dw0, *db0;  /* starting values for accumulation */
    double *y_ref, *dx_ref, *dw_ref, *db_ref;
    double *scratch; /* [ny] for the finite-difference loss */
};

/* Device tensors of one case, at non-zero offsets of one arena. */
struct device {
    struct clt_arena *arena;
    struct clt_view x, w, b, y, dy, dx, dw, db, ws;
    bool has_ws;
    int64_t nws; /* floats of workspace */
};

/* An absent optional buffer of a launcher. */
static const struct clt__buf none = {NULL, 0};

/* n, c_in, h, w, c_out, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
 * oh, ow and chunk (0 here) are filled in by clt__conv2d_resolve. CONV_CHUNK gives the
 * chunk: the batch then runs in chunks of that many images, the last one smaller. */
#define CONV(...) ((struct clt__conv2d){__VA_ARGS__, 0, 0, 0})
#define CONV_CHUNK(chunk, ...) ((struct clt__conv2d){__VA_ARGS__, 0, 0, chunk})

static const struct conv_case full_cases[] = {
    {"3x3 pad 1", CONV(2, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1), true},
    {"stride 2", CONV(3, 4, 13, 10, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1), true},
    {"dilation 2", CONV(2, 3, 12, 11, 4, 3, 3, 1, 1, 2, 2, 2, 2, 1), true},
    {"groups 2", CONV(2, 4, 7, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2), true},
    {"depthwise stride 2", CONV(2, 5, 11, 8, 5, 3, 3, 2, 2, 1, 1, 1, 1, 5), true},
    {"1x1", CONV(2, 7, 5, 6, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1), true},
    {"1x1 groups 3", CONV(1, 6, 4, 5, 9, 1, 1, 1, 1, 0, 0, 1, 1, 3), false},
    {"1x1 stride 2 groups 2", CONV(2, 6, 7, 9, 4, 1, 1, 2, 2, 0, 0, 1, 1, 2), true},
    {"2x5 kernel", CONV(2, 3, 10, 13, 4, 2, 5, 1, 2, 0, 2, 1, 1, 1), true},
    {"batch 1 odd", CONV(1, 2, 17, 19, 3, 5, 3, 3, 2, 2, 1, 1, 2, 1), false},
    {"larger", CONV(4, 8, 23, 21, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1), true},
    {"5 images in chunks of 2", CONV_CHUNK(2, 5, 3, 9, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1), true},
    {"7 images in chunks of 3, stride 2 groups 2",
     CONV_CHUNK(3, 7, 4, 10, 9, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2), true},
    {"3 images one at a time, 1x1", CONV_CHUNK(1, 3, 5, 4, 7, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1), false},
    /* Padding wider than a tap's reach: whole rows and columns of the columns read nothing
     * and some taps add to no pixel of a row of dx. */
    {"pad 3 on a 2-pixel-wide image", CONV(2, 2, 4, 2, 3, 3, 3, 1, 1, 0, 3, 1, 1, 1), true},
    {"5 images in chunks of 2, stride 3 dilation 3 pad 4x5",
     CONV_CHUNK(2, 5, 2, 11, 10, 3, 2, 3, 3, 3, 4, 5, 3, 3, 1), true},
    /* Rows wider than col2im's 16-bit chunk of 32 pixels, stride 1: taps' runs that start in
     * one chunk and end in the next. */
    {"45-pixel rows 3x5 pad 2 dilation 1x2", CONV(2, 2, 4, 45, 3, 3, 5, 1, 1, 1, 2, 1, 2, 1), true},
};

/* Under Oclgrind: few and small. */
static const struct conv_case small_cases[] = {
    {"3x3 pad 1", CONV(2, 2, 5, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1), true},
    {"stride 2 dilation 2", CONV(1, 2, 7, 6, 2, 3, 3, 2, 2, 2, 2, 2, 2, 1), true},
    {"groups 2 3x2", CONV(2, 4, 5, 4, 2, 3, 2, 1, 1, 1, 0, 1, 1, 2), false},
    {"depthwise", CONV(1, 3, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3), true},
    {"1x1", CONV(2, 3, 3, 4, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1), true},
    {"3 images in chunks of 2", CONV_CHUNK(2, 3, 2, 5, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1), true},
    {"pad 3 on a 2-pixel-wide image", CONV(2, 1, 3, 2, 2, 3, 3, 1, 1, 0, 3, 1, 1, 1), true},
    {"3 images in chunks of 2, stride 3 dilation 2 pad 3",
     CONV_CHUNK(2, 3, 1, 7, 8, 2, 2, 3, 3, 3, 3, 3, 2, 2, 1), false},
    {"35-pixel rows 1x3 pad 1", CONV(1, 1, 2, 35, 1, 1, 3, 1, 1, 0, 1, 1, 1, 1), true},
};

/* The absolute tolerance of a float sum of `terms` products (test_conv.c's opening comment). */
double tol(int64_t terms);

/* The launcher argument of a view (clt__view_buf). */
struct clt__buf buf(const struct clt_view *v);

/* Term counts of each output's sum (test_conv.c's opening comment). */
int64_t terms_y(const struct clt__conv2d *c);
int64_t terms_dx(const struct clt__conv2d *c);
int64_t terms_dw(const struct clt__conv2d *c);

/* want = base + ref, where base may be NULL. */
double *plus(const float *base, const double *ref, int64_t n);

/* One case in fp32: forward with and without bias, backward written and accumulated, each
 * gradient alone, and finite differences of every gradient. */
void check_case(struct clt_device *dev, const struct conv_case *cc);

/* "fp32", "fp16" or "bf16". */
const char *storage_name(enum clt_precision s);

/* The relative tolerance of a rounded result in storage s (test_conv.c's opening comment). */
double rtol_of(enum clt_precision s);

/* Uniform in [-1, 1), rounded to storage s. */
float *rounded(int64_t n, uint64_t seed, enum clt_precision s);

/* run(dev, case i, storage, i) over the cases, in fp32, fp16 and bf16 (the device's storage
 * set for the time of each). */
void each_storage_case(struct clt_device *dev,
                       void (*run)(struct clt_device *, const struct conv_case *,
                                   enum clt_precision, size_t));

/* ---- Tests, by the file that defines them (test_conv.c lists them all) ---- */

/* test_conv16.c */
void helper_kernels_in_each_storage(void **state);
void buffers_sized_by_storage(void **state);

/* test_conv_kept.c */
void kept_columns_in_each_storage(void **state);

#endif
