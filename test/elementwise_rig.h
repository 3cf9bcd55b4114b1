/*
 * elementwise_rig.h: what the elementwise tests share: device tensors between guards in any
 * storage, and one op checked on one shape (struct problem): forward, every backward alone and
 * together, write and accumulate, finite differences, all against ref_elementwise.c.
 */
#ifndef CLTRAIN_TEST_ELEMENTWISE_RIG_H
#define CLTRAIN_TEST_ELEMENTWISE_RIG_H

#include "harness.h"
#include "st_tensor.h"

/* Elements kept on each side of every device tensor, holding GUARD_VALUE. */
#define GUARD 3
#define GUARD_VALUE -1234.5f

static const struct clt__buf NONE = {NULL, 0};

/* n elements of a storage (fp32, or 16 bits: st_tensor.h) on the device, GUARD elements
 * into a buffer of n + 2 * GUARD that is always written whole. Each tensor has a buffer (an
 * arena) of its own because Oclgrind 21.10's --uninitialized check forgets what a buffer held
 * whenever the host writes part of it (each host write replaces the buffer's whole shadow),
 * and reports false errors. */
struct tensor {
    struct clt_arena *arena;
    struct clt_view view;
    size_t n;
    enum clt_precision s;
};

/* clang-format off */
enum op { OP_COPY, OP_ADD, OP_MUL, OP_SCALE, OP_BIAS, OP_SUM, OP_MEAN, OP_SUM_ROWS,
          OP_MEAN_ROWS, OP_LINEAR };
/* clang-format on */
/* Shapes: copy, add, mul, scale, sum, mean have n = cols elements (rows 1); bias, sum_rows
 * and mean_rows [rows, cols]; linear has n = rows, in = cols, out = outs. Inputs are the
 * tensors with gradients, in the launchers' order. */
struct problem {
    struct clt_device *dev;
    enum clt_precision s; /* the storage of every tensor but the workspace, which is float */
    enum op op;
    int64_t rows, cols, outs;
    bool bias;   /* linear: with a bias, the third input */
    float alpha; /* scale */
    size_t inputs;
    size_t in_n[3], y_n;
    float *x[3], *dy; /* host inputs and upstream gradient */
    struct tensor in[3], y, tdy, grad[3], ws;
    char name[96];
};

/* A tolerance: |got - want| <= atol + rtol * |want|. */
struct tol {
    double atol, rtol;
};

/* Of an elementwise op in fp32. */
static const struct tol ELEMENTWISE = {1e-7, 2.4e-7};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Writes the guards and host[0..n) (NaN everywhere when host is NULL), rounded to the
 * storage. */
void tensor_write(const struct tensor *t, const float *host);

/* A tensor of n elements of storage s holding host (NaN when NULL); fails the test on error. */
struct tensor tensor_new_st(struct clt_device *dev, const float *host, size_t n,
                            enum clt_precision s);

/* tensor_new_st in fp32. */
struct tensor tensor_new(struct clt_device *dev, const float *host, size_t n);

/* Frees the tensor's arena. */
void tensor_free(struct tensor *t);

/* Reads the n elements into host, widened; fails when a guard changed. */
void tensor_read(const struct tensor *t, float *host, const char *what);

/* The launcher argument of the tensor's n elements (after the guard). */
struct clt__buf tensor_buf(const struct tensor *t);

/* The most workspace any reduction of a [rows, cols] problem (and linear's bias gradient,
 * [rows, outs]) needs. */
uint64_t workspace_bytes(int64_t rows, int64_t cols, int64_t outs);

/* A sum of k terms in [-1, 1) divided by d. */
struct tol sum_tol(int64_t k, double d);

/* Compares n results of p with their tolerance. */
void assert_close(const struct problem *p, const char *what, const float *got, const double *want,
                  size_t n, struct tol t);

/* Runs one op over a list of {rows, cols, outs} shapes in a storage. */
void run_shapes_st(struct clt_device *dev, enum clt_precision st, enum op op,
                   const int64_t (*shapes)[3], size_t count, bool bias);

/* run_shapes_st in fp32. */
void run_shapes(struct clt_device *dev, enum op op, const int64_t (*shapes)[3], size_t count,
                bool bias);

/* ---- Tests, by the file that defines them (test_elementwise.c lists them all) ---- */

/* test_elementwise16.c */
void ops_in_16_bit(void **state);
void fill_axpy_and_aliasing_in_16_bit(void **state);
void buffers_are_checked_in_the_storage(void **state);

#endif
