/*
 * graph.h: the graph's tensors, the table of op definitions, and what an op's forward and
 * backward see while a trainer runs them.
 *
 * Every op is defined in one place: a `struct clt__op_def` with its forward, its backward and
 * what its backward needs kept from the forward. The public builder of the op (clt_relu,
 * clt_linear, ...) sits next to its definition in engine/nn_<family>.c.
 */
#ifndef CLTRAIN_GRAPH_H
#define CLTRAIN_GRAPH_H

#include "internal.h"

#define CLT__MAX_INPUTS 8
#define CLT__MAX_AUX 3
#define CLT__NAME_MAX 128

enum clt__node_kind {
    CLT__NODE_INPUT,
    CLT__NODE_PARAM,
    CLT__NODE_STATE,
    CLT__NODE_OP,
};

struct clt__op_def;
struct clt__exec;

/* A tensor is a node of its graph. Nodes are made in a topological order: an op's inputs
 * always have smaller ids. */
struct clt_tensor {
    struct clt_graph *graph;
    uint32_t id;
    enum clt__node_kind kind;
    const struct clt__op_def *op; /* CLT__NODE_OP only */
    struct clt_tensor *in[CLT__MAX_INPUTS];
    uint32_t nin;
    enum clt_dtype dtype;
    uint32_t ndim;
    int64_t shape[CLT_MAX_DIMS];
    char name[CLT__NAME_MAX];
    struct clt_init init; /* params and state */
    /* Attributes whose meaning each op defines next to its builder. */
    float f[4];
    int64_t i[16];
    /* Buffers the op keeps from its forward to its backward (batch norm's statistics,
     * attention's probabilities), counted in elements of aux_dtype. */
    uint32_t naux;
    int64_t aux_count[CLT__MAX_AUX];
    enum clt_dtype aux_dtype[CLT__MAX_AUX];
};

struct clt_graph {
    struct clt_tensor **nodes;
    uint32_t count, cap;
    enum clt_status status;
    char error[512];
};

/* Bits of clt__op_def.saves: which values the backward reads. */
#define CLT__SAVES_INPUT(i) (1u << (i))
#define CLT__SAVES_OUTPUT (1u << 31)

struct clt__op_def {
    const char *name;
    /* The output is the same memory as input 0 under another shape (reshape): no forward or
     * backward runs; gradients flow through the shared memory. */
    bool is_view;
    uint32_t saves;
    /* A cheap elementwise op whose backward reads only its inputs: under recomputation its
     * output is not kept for the backward pass but computed again. */
    bool recomputable;
    enum clt_status (*forward)(struct clt__exec *x, const struct clt_tensor *t);
    /* Adds the node's contributions to the gradients of its inputs that need one. NULL for
     * an op with no gradient (its inputs must then not need one). */
    enum clt_status (*backward)(struct clt__exec *x, const struct clt_tensor *t);
    /* Scratch bytes the op needs (NULL: none). */
    uint64_t (*workspace)(const struct clt_tensor *t);
};

/* What a forward or backward sees. */
struct clt__exec {
    struct clt_device *dev;
    struct clt_trainer *tr;
    bool training;    /* false in evaluation: dropout off, batch norm on running averages */
    bool in_backward; /* recomputed values are read from their backward copies */
    uint64_t seed;
    uint64_t step;    /* the trainer's step counter (dropout's random stream) */
    uint32_t micro;   /* index of the step within gradient accumulation */
};

/* The value of a tensor. */
struct clt__buf clt__val(struct clt__exec *x, const struct clt_tensor *t);

/* The gradient of a tensor; mem NULL when the tensor needs none (launchers skip it). */
struct clt__buf clt__grad(struct clt__exec *x, const struct clt_tensor *t);

/* Whether node t's contribution to the gradient of its input `slot` adds to what is there
 * (true) or writes it (false: t is the first contributor of the step). */
bool clt__accumulate(struct clt__exec *x, const struct clt_tensor *t, uint32_t slot);

/* Aux buffer k of a node, and the shared scratch buffer. */
struct clt__buf clt__aux(struct clt__exec *x, const struct clt_tensor *t, uint32_t k);
struct clt__buf clt__workspace(struct clt__exec *x);

/* Elements of a tensor. */
int64_t clt__count(const struct clt_tensor *t);

/* ==== Building (graph.c) ================================================================ */

/* Records the first error of a graph (later ones are dropped). */
void clt__graph_fail(struct clt_graph *g, enum clt_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Adds an op node after checking that the graph is healthy and every input is a tensor of
 * this graph. Returns NULL (recording why) otherwise. Attributes are filled in by the
 * caller afterwards. */
struct clt_tensor *clt__node(struct clt_graph *g, const struct clt__op_def *op, uint32_t nin,
                             struct clt_tensor *const *in, enum clt_dtype dtype, uint32_t ndim,
                             const int64_t *shape);

/* True when every pointer is a tensor of g and g is healthy; records an error otherwise
 * (unless an input is NULL, which means an earlier error was recorded). */
bool clt__graph_ok(struct clt_graph *g, uint32_t n, struct clt_tensor *const *ts);

/* Makes "<prefix>.<part>" into out; an error (recorded) when it does not fit. */
bool clt__param_name(struct clt_graph *g, const char *prefix, const char *part, char *out);

/* The default initialisers of PyTorch's layers: weights Kaiming uniform with gain 1/sqrt(3)
 * (PyTorch's a = sqrt(5)), which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)); biases
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
struct clt_init clt__init_torch_weight(void);
struct clt_init clt__init_torch_bias(int64_t fan_in);

/* ==== Initialisation (init.c) =========================================================== */

/* Fills a parameter's values on the host from its rule, the trainer's seed and its name. */
enum clt_status clt__init_fill(const struct clt_tensor *t, uint64_t seed, float *out);

#endif /* CLTRAIN_GRAPH_H */
