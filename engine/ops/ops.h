/*
 * ops.h: the op registry. One list, CLT__OPS, names every op of the graph once, with the
 * family file that defines it (engine/ops/<family>.c); from it come the op enum, the table
 * of op definitions (clt__op_registry) and the op names. The typed parameters a node carries
 * (union clt__op_params) are declared here too, one struct per op that has parameters.
 *
 * Adding an op: a row in CLT__OPS, its parameter struct below (if it has parameters), and
 * in its family file the definition `const struct clt__op_def clt__op_<name>` and the public
 * builder. docs/ops-conventions.md gives the whole recipe.
 */
#ifndef CLTRAIN_OPS_OPS_H
#define CLTRAIN_OPS_OPS_H

#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/pool.h"

/* X(name, family): every op, grouped by family. test/test_ops.c fails for an op of this list
 * that its table lacks. */
#define CLT__OPS(X)                                                                                \
    X(matmul, elementwise)                                                                         \
    X(linear, elementwise)                                                                         \
    X(add, broadcast)                                                                              \
    X(sub, broadcast)                                                                              \
    X(mul, broadcast)                                                                              \
    X(scale, elementwise)                                                                          \
    X(add_bias, broadcast)                                                                         \
    X(mul_broadcast, broadcast)                                                                    \
    X(sum, elementwise)                                                                            \
    X(activation, activation)                                                                      \
    X(dropout, activation)                                                                         \
    X(reshape, shape)                                                                              \
    X(embedding, shape)                                                                            \
    X(permute, shape)                                                                              \
    X(concat, shape)                                                                               \
    X(slice, shape)                                                                                \
    X(conv2d, conv)                                                                                \
    X(pool2d, pool)                                                                                \
    X(batch_norm, norm)                                                                            \
    X(layer_norm, norm)                                                                            \
    X(softmax, loss)                                                                               \
    X(cross_entropy, loss)                                                                         \
    X(mse, loss)                                                                                   \
    X(sdpa, attention)

enum clt__op {
#define CLT__OP_ENUM(name, family) CLT__OP_##name,
    CLT__OPS(CLT__OP_ENUM)
#undef CLT__OP_ENUM
        CLT__OP_COUNT
};

/* ==== Typed parameters ================================================================== */

struct clt__matmul_params {
    bool trans_a, trans_b;
};

struct clt__scale_params {
    float alpha;
};

struct clt__sum_params {
    bool mean; /* the mean instead of the sum */
};

struct clt__activation_params {
    enum clt__act act;
    float slope; /* leaky ReLU */
};

struct clt__dropout_params {
    float p;
};

struct clt__permute_params {
    uint32_t perm[CLT_MAX_DIMS]; /* output axis i is input axis perm[i] */
};

struct clt__axis_params {
    uint32_t axis; /* concat, slice */
    int64_t start; /* slice */
};

enum clt__pool_kind { CLT__POOL_MAX = 0, CLT__POOL_AVG = 1, CLT__POOL_GLOBAL = 2 };

struct clt__pool_params {
    enum clt__pool_kind kind;
    struct clt__pool2d desc; /* resolved (oh, ow filled in); unused for global pooling */
};

struct clt__norm_params {
    float eps;
    float momentum; /* batch norm's running averages */
};

struct clt__softmax_params {
    bool log; /* log-softmax */
};

struct clt__cross_entropy_params {
    int32_t ignore_index;
    float label_smoothing;
};

struct clt__sdpa_params {
    bool causal;
    float scale;
};

/* The parameters of a node, read through the member of its op. */
union clt__op_params {
    struct clt__matmul_params matmul;
    struct clt__scale_params scale;
    struct clt__sum_params sum;
    struct clt__activation_params activation;
    struct clt__dropout_params dropout;
    struct clt__permute_params permute;
    struct clt__axis_params axis; /* concat, slice */
    struct clt__conv2d conv2d;    /* resolved (oh, ow filled in) */
    struct clt__pool_params pool2d;
    struct clt__norm_params norm; /* batch_norm, layer_norm */
    struct clt__softmax_params softmax;
    struct clt__cross_entropy_params cross_entropy;
    struct clt__sdpa_params sdpa;
};

/* ==== Definitions ======================================================================= */

struct clt_graph;
struct clt_tensor;
struct clt__exec;

/* Bits of clt__op_def.saves: which values the backward reads. */
#define CLT__SAVES_INPUT(i) (1u << (i))
#define CLT__SAVES_OUTPUT (1u << 31)

/* Bit i of a backward's `acc` mask: the node's contribution to the gradient of input i adds
 * to what is there (set) or writes it (clear: the first contributor of the step). */
#define CLT__ACC(acc, i) ((((acc) >> (i)) & 1u) != 0)

/* The scalars an elementwise description (struct clt__ew) reads, per node and step. */
struct clt__ew_scalars {
    float f0, f1;
    uint32_t u0, u1;
};

/* Bits of clt__ew.reads: the input values the backward expressions read. */
#define CLT__EW_A 1u
#define CLT__EW_B 2u

/* An op that works element by element on inputs and output of one shape, described for the
 * fusion pass (engine/fuse.c, docs/fusion.md), which composes chains of such ops into one
 * generated kernel. The expressions are OpenCL C over: float a, b (inputs 0 and 1 at the
 * element), float dy (the gradient of the output there), the node's scalars float f0, f1 and
 * uint u0, u1, long e (the element index) and uint2 step (the step counter, low word first);
 * they may call act_eval and dropout_keep (cl/activation.cl). Each must compute exactly what
 * the op's own kernels compute, so that fusion changes no result. */
struct clt__ew {
    const char *forward;     /* the output */
    const char *backward[2]; /* the gradients of inputs 0 and 1 (only those of its inputs) */
    uint32_t reads;          /* CLT__EW_A | CLT__EW_B: what the backward expressions read */
    /* The scalars of node t in a training step under x (NULL: none). */
    void (*scalars)(const struct clt__exec *x, const struct clt_tensor *t,
                    struct clt__ew_scalars *out);
    /* The scalars are the same in every training step of a node (an activation's kind and
     * slope): a fused kernel holds them as constants, so that `act_eval` is resolved when the
     * kernel is compiled. */
    bool fixed_scalars;
};

struct clt__op_def {
    /* The output is the same memory as input 0 under another shape (reshape): no forward or
     * backward runs; gradients flow through the shared memory. */
    bool is_view;
    uint32_t saves;
    /* A cheap elementwise op whose backward reads only its inputs: under recomputation its
     * output is not kept for the backward pass but computed again. */
    bool recomputable;
    enum clt_status (*forward)(struct clt__exec *x, const struct clt_tensor *t);
    /* Writes or adds (per input, by the bits of acc) the node's contributions to the
     * gradients of its inputs that need one (clt__grad's mem non-NULL). NULL for an op with
     * no gradient (its inputs must then not need one). */
    enum clt_status (*backward)(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc);
    /* Scratch bytes the op needs (NULL: none). */
    uint64_t (*workspace)(const struct clt_tensor *t);
    /* The op at the representative shape cltrain-bench's op section times (bench/ops_bench.c,
     * docs/bench.md), built on an empty graph from fresh parameters (CLT__BENCH_PARAM, so that
     * every gradient is computed) and inputs; returns the op's node. NULL only for a view.
     * test/test_ops.c fails for an op that lacks one. */
    struct clt_tensor *(*bench)(struct clt_graph *g);
    /* Non-NULL for an op the fusion pass may merge with its neighbours (struct clt__ew). */
    const struct clt__ew *ew;
    /* Nonzero for an op whose last step adds a bias over the last axis (linear): the slot of
     * that input, when the node has it. The fusion pass may move the addition into the chain
     * that reads the op's output; the forward then leaves it out (clt__bias_fused). */
    uint32_t bias_input;
    /* The op's kernels read and write its tensors through store_t (cl/common.cl), so it runs
     * in a 16-bit plan (docs/precision.md); a trainer refuses a 16-bit precision for a graph
     * with an op that lacks it. */
    bool storage16;
    /* In a 16-bit plan the output, and its gradient, stay fp32 (float in the kernels): the
     * losses, whose one value is what training reports and what the scaler's seed starts. */
    bool wide_output;
    /* Bit k set: aux buffer k is a cache, not a result: values the forward computes anyway
     * and the backward would otherwise compute again (conv2d's column matrix). It holds F32
     * values in the plan's storage (2 bytes each in a 16-bit plan), and only a node whose
     * backward computes the gradient of input cache_input gets memory for it; elsewhere
     * (inference, evaluation, a frozen input) clt__aux's mem is NULL and the op does
     * without. */
    uint32_t aux_cache;
    uint32_t cache_input;
};

/* A parameter [shape...] for an op's bench example, uniform in [-1, 1), named `name`. */
struct clt_tensor *clt__bench_param(struct clt_graph *g, const char *name, uint32_t ndim,
                                    const int64_t *shape);
#define CLT__BENCH_PARAM(g, name, ndim, ...)                                                       \
    clt__bench_param((g), (name), (ndim), (const int64_t[]){__VA_ARGS__})

/* The definitions, one per row of CLT__OPS, each in its family file. */
#define CLT__OP_DECLARE(name, family) extern const struct clt__op_def clt__op_##name;
CLT__OPS(CLT__OP_DECLARE)
#undef CLT__OP_DECLARE

/* The registry (ops/ops.c): definition, name and family of every op, indexed by its enum. */
extern const struct clt__op_def *const clt__op_registry[CLT__OP_COUNT];
extern const char *const clt__op_names[CLT__OP_COUNT];
extern const char *const clt__op_families[CLT__OP_COUNT];

#endif /* CLTRAIN_OPS_OPS_H */
