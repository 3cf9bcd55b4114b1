/*
 * ops_rig.h: what test_ops.c's parts share: a row of the table (struct op_case: an op with
 * one set of parameters, its builder and its reference), the values a reference reads (struct
 * ctx), the families' tables (test_ops_*.c), and running a row in fp32 (ops_rig.c) and in 16
 * bits (ops_rig16.c).
 */
#ifndef CLTRAIN_TEST_OPS_RIG_H
#define CLTRAIN_TEST_OPS_RIG_H

#include "harness.h"
#include "ops/ops.h"

#define MAX_DECL 4
#define MAX_PARAMS 8

/* The step of the central differences: below half the distance between values of
 * fill_spread for every tensor of the table (at most 252 elements). */
#define FD_STEP 5e-4f

/* What a declared tensor is: a trained parameter the test fills, an F32 input, or I32 ids
 * or labels drawn from [lo, hi). */
enum role { PARAM, INPUT, IDS };

struct decl {
    enum role role;
    uint32_t ndim;
    int64_t shape[CLT_MAX_DIMS];
    int32_t lo, hi; /* IDS */
};

struct ctx;

struct op_case {
    const char *op; /* its name in the registry */
    const char *what;
    uint32_t ndecl;
    struct decl decl[MAX_DECL];
    struct clt_tensor *(*build)(struct clt_graph *g, struct clt_tensor *const *t);
    /* y of the training forward, from the values in ctx. */
    void (*ref)(const struct ctx *c, double *y);
    /* y in evaluation, when it differs (batch norm, dropout); NULL: ref. */
    void (*ref_eval)(const struct ctx *c, double *y);
    double fwd_atol, fwd_rtol, grad_atol, grad_rtol; /* 0: the defaults above */
    bool dropout;
    /* No batch-1 run: axis 0 is not a batch (transposed matmul), or one sample has no
     * variance (batch norm over [N, C]). */
    bool no_batch1;
    /* CLTRAIN_ATTENTION while the case runs (the graph op sdpa reads it when built); NULL:
     * unset. */
    const char *attention;
    /* The 16-bit tolerances' factor (run_case16); 0: 1. */
    double tol16;
};

/* The values the reference reads: declared tensors by index, and every parameter and state
 * tensor of the trainer in creation order (declared parameters first, then those the layer
 * made). d[k] points into p[] for declared parameters. */
struct ctx {
    const struct op_case *c;
    struct decl decl[MAX_DECL]; /* the shapes of this run */
    const void *d[MAX_DECL];
    uint32_t np;
    float *p[MAX_PARAMS];
    int64_t pn[MAX_PARAMS];
    bool trained[MAX_PARAMS];
    int64_t ny; /* elements of y */
};

/* The elements of a declared tensor. */
static inline int64_t count_of(const struct decl *d)
{
    int64_t n = 1;
    for (uint32_t i = 0; i < d->ndim; i++)
        n *= d->shape[i];
    return n;
}

/* Declared tensor k's floats. */
static inline const float *F(const struct ctx *c, int k)
{
    return c->d[k];
}

/* Declared tensor k's shape. */
static inline const int64_t *S(const struct ctx *c, int k)
{
    return c->decl[k].shape;
}

/* Declared parameters of 1 to 4 axes, for the tables' rows. */
#define P1(a)                                                                                      \
    {                                                                                              \
        PARAM, 1, {a}, 0, 0                                                                        \
    }
#define P2(a, b)                                                                                   \
    {                                                                                              \
        PARAM, 2, {a, b}, 0, 0                                                                     \
    }
#define P3(a, b, c)                                                                                \
    {                                                                                              \
        PARAM, 3, {a, b, c}, 0, 0                                                                  \
    }
#define P4(a, b, c, d)                                                                             \
    {                                                                                              \
        PARAM, 4, {a, b, c, d}, 0, 0                                                               \
    }

/* Shapes are odd and not multiples of any work-group size; the first axis of the first
 * declared tensor is the batch, set to 1 (with every declared axis 0 of the same size) in
 * the batch-1 run. Each family's rows, with their count. */
extern const struct op_case ops_linear_cases[]; /* test_ops_linear.c */
extern const size_t ops_linear_count;
extern const struct op_case ops_shape_cases[]; /* test_ops_shape.c */
extern const size_t ops_shape_count;
extern const struct op_case ops_conv_cases[]; /* test_ops_conv.c */
extern const size_t ops_conv_count;
extern const struct op_case ops_norm_cases[]; /* test_ops_norm.c */
extern const size_t ops_norm_count;

/* ---- Running one row (ops_rig.c) ---- */

/* The three runs of a row: write, accumulate, micro-batches. */
enum variant { WRITE, ACCUMULATE, MICRO };

/* One trainer over the case: graph, inputs (declared inputs, W, then V per declared
 * parameter), trainer. */
struct run {
    struct clt_graph *g;
    struct clt_tensor *y;
    struct clt_trainer *tr;
    const void *inputs[2 * MAX_DECL + 1];
    uint32_t ninputs;
};

/* Values spread evenly over (-1, 1), 2 / n apart and at least 0.5 / n from 0, in an order
 * shuffled by seed: no two elements tie and none sits at a kink within the step of the
 * finite differences. */
void fill_spread(float *x, int64_t n, uint64_t seed);

/* Makes the trainer of a variant in precision prec (fp16 with a loss scale of 1: the seed
 * 65536 itself would overflow sum's 16-bit gradient). Returns the creation's status: only
 * CLT_OK in fp32; CLT_ERR_UNSUPPORTED in 16 bits skips the row. */
enum clt_status run_make_in(struct clt_device *dev, struct ctx *c, enum variant v, const float *w,
                            float *const *vv, enum clt_precision prec, struct run *r);

/* run_make_in in fp32. */
void run_make(struct clt_device *dev, struct ctx *c, enum variant v, const float *w,
              float *const *vv, struct run *r);

/* Frees the run's trainer and graph. */
void run_free(struct run *r);

/* Reads every parameter and state tensor of a trainer into c->p (allocated the first time). */
void read_params(struct clt_trainer *tr, struct ctx *c, float **into);

/* The gradient of one update: before - after, per trained parameter. */
void step_gradients(struct run *r, struct ctx *c, uint32_t steps, float **grad);

/* sum(ref y * W) in double, in training mode. */
double ref_loss(const struct ctx *c, const float *w, double *y);

/* One row in fp32 at its shapes (batch1: with its batch axis 1): forward, gradients against
 * central differences, accumulate and micro-batches, as test_ops.c's opening comment says. */
void run_case(struct clt_device *dev, const struct op_case *oc, bool batch1);

/* ---- In 16-bit storage (ops_rig16.c) ---- */

/* A log that drops what it is told: refusals this test expects, and lists itself. */
void quiet(void *user, enum clt_log_level level, const char *message);

/* Whether clt__gemm follows the storage in this build (the GEMM branch of issue 16): a 2 x 3
 * by 3 x 2 product of small integers (exact in every storage) in fp16. Rows whose ops run
 * GEMMs are skipped in 16 bits otherwise. */
bool gemm_follows_storage(struct clt_device *dev);

/* Whether a row's op runs GEMMs: matmul, linear, conv2d, and sdpa but on its tiled path. */
bool runs_gemm(const struct op_case *oc);

/* One row in a 16-bit storage, at its shapes (batch1: with its batch axis 1). Inputs, W, V
 * and the parameters are rounded to the storage first (the reference sees the values the
 * device holds), then:
 * - forward: evaluation's y against the reference in double, and the training loss;
 * - backward, write: the 16-bit gradient against an fp32 trainer's on the same values (the
 *   finite-difference checks are fp32's, run_case);
 * - accumulate: the write gradient + V; micro-batches: the write gradient (both micro-steps
 *   give the same 16-bit gradient, added and averaged in fp32: 1e-5).
 * Tolerances: tol16(prec) times the row's tol16 factor, relative and absolute (the loss:
 * absolute times the elements of y). Returns false when the trainer refuses the row. */
bool run_case16(struct clt_device *dev, const struct op_case *oc, bool batch1,
                enum clt_precision prec);

#endif
