/*
 * graph.h: the graph's tensors, the table of op definitions, and what an op's forward and
 * backward see while a trainer runs them.
 *
 * Every op is a row of the registry (ops/ops.h) and is defined in one place: a
 * `struct clt__op_def` with its forward, its backward and what its backward needs kept from
 * the forward, next to its public builder (clt_relu, clt_linear, ...) and its launchers in
 * engine/ops/<family>.c.
 */
#ifndef CLTRAIN_GRAPH_H
#define CLTRAIN_GRAPH_H

#include "internal.h"
#include "ops/ops.h"

#define CLT__MAX_INPUTS 8
#define CLT__MAX_AUX 3
#define CLT__NAME_MAX 128

enum clt__node_kind {
    CLT__NODE_INPUT,
    CLT__NODE_PARAM,
    CLT__NODE_STATE,
    CLT__NODE_OP,
};

struct clt__exec;

/* A tensor is a node of its graph. Nodes are made in a topological order: an op's inputs
 * always have smaller ids. */
struct clt_tensor {
    struct clt_graph *graph;
    uint32_t id;
    enum clt__node_kind kind;
    enum clt__op op; /* CLT__NODE_OP only */
    struct clt_tensor *in[CLT__MAX_INPUTS];
    uint32_t nin;
    enum clt_dtype dtype;
    uint32_t ndim;
    int64_t shape[CLT_MAX_DIMS];
    char name[CLT__NAME_MAX];
    struct clt_init init;           /* params and state */
    enum clt_param_kind param_kind; /* params: what the optimizer's groups select by */
    union clt__op_params p;         /* the op's parameters: the member named after the op */
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
    char note[256]; /* the latest message of clt__graph_log */
};

/* The definition of an op node. */
static inline const struct clt__op_def *clt__def(const struct clt_tensor *t)
{
    return clt__op_registry[t->op];
}

/* What a forward or backward sees. */
struct clt__exec {
    struct clt_device *dev;
    struct clt_trainer *tr;
    bool training;    /* false in evaluation: dropout off, batch norm on running averages */
    bool in_backward; /* recomputed values are read from their backward copies */
    uint64_t seed;
    uint64_t step;  /* the trainer's step counter (dropout's random stream) */
    uint32_t micro; /* index of the step within gradient accumulation */
    /* Partial batches: the planned batch (the inputs' leading dimension) and the real rows of
     * this one (rows == batch for a full batch). The real rows are the first ones; the rest
     * hold zeros (ignored labels for cross-entropy). Only ops that reduce across the batch
     * (clt__real_count) look at rows; every other op runs on the whole planned batch. */
    int64_t batch, rows;
};

/* The elements of t that belong to real rows: all of them for a full batch or a tensor that
 * does not hold the batch as its leading axis (parameters, say), else rows * (elements per
 * row). */
int64_t clt__real_count(const struct clt__exec *x, const struct clt_tensor *t);

/* Zeroes the elements of b (laid out as t) past t's real rows; nothing for a full batch.
 * Enqueued. Ops that honour rows keep padded rows at zero with it (their outputs, and the
 * gradients they write), so that no padded value reaches a real one. */
enum clt_status clt__zero_padding(struct clt__exec *x, const struct clt_tensor *t,
                                  struct clt__buf b);

/* The value of a tensor. */
struct clt__buf clt__val(struct clt__exec *x, const struct clt_tensor *t);

/* The gradient of a tensor; mem NULL when the tensor needs none (launchers skip it). */
struct clt__buf clt__grad(struct clt__exec *x, const struct clt_tensor *t);

/* Whether node t's contribution to the gradient of its input `slot` adds to what is there
 * (true) or writes it (false: t is the first contributor of the step). */
bool clt__accumulate(struct clt__exec *x, const struct clt_tensor *t, uint32_t slot);

/* The same for every input of t, as the bits of a backward's `acc` mask (CLT__ACC). */
uint32_t clt__accumulate_mask(struct clt__exec *x, const struct clt_tensor *t);

/* Whether node t's forward leaves out its bias (clt__op_def.bias_input) because the fused
 * chain that reads its output adds it: in training steps only. */
bool clt__bias_fused(const struct clt__exec *x, const struct clt_tensor *t);

/* Aux buffer k of a node (mem NULL for a cache the plan gave no memory, clt__op_def.aux_cache),
 * and the shared scratch buffer. */
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
 * caller afterwards (t->p). */
struct clt_tensor *clt__node(struct clt_graph *g, enum clt__op op, uint32_t nin,
                             struct clt_tensor *const *in, enum clt_dtype dtype, uint32_t ndim,
                             const int64_t *shape);

/* A log for launcher-side checks run by builders (clt__conv2d_resolve): it prints nothing
 * and keeps the latest message in g->note, for the builder's error. */
struct clt_log clt__graph_log(struct clt_graph *g);

/* Records `what` as the graph's error unless cond holds; returns cond. */
bool clt__require(struct clt_graph *g, bool cond, const char *what);

/* True when t is F32; records an error naming op and t otherwise. */
bool clt__is_f32(struct clt_graph *g, const struct clt_tensor *t, const char *op);

bool clt__same_shape(const struct clt_tensor *a, const struct clt_tensor *b);

/* Elements of all axes but the last: the rows of a [..., D] tensor. */
int64_t clt__rows(const struct clt_tensor *t);

/* True when every pointer is a tensor of g and g is healthy; records an error otherwise
 * (unless an input is NULL, which means an earlier error was recorded). */
bool clt__graph_ok(struct clt_graph *g, uint32_t n, struct clt_tensor *const *ts);

/* Makes "<prefix>.<part>" into out; an error (recorded) when it does not fit. */
bool clt__param_name(struct clt_graph *g, const char *prefix, const char *part, char *out);

/* A layer's parameter (or, with state, state tensor) `part`: `given` after checking that it
 * is a parameter (state) of g with exactly this shape, else a new one named "<name>.<part>"
 * with init. Records an error naming the layer kind and name and returns NULL otherwise. */
struct clt_tensor *clt__layer_param(struct clt_graph *g, const char *layer, const char *name,
                                    const char *part, struct clt_tensor *given, bool state,
                                    uint32_t ndim, const int64_t *shape, struct clt_init init);

/* Checks that `use` (may be NULL) gives no bias unless the layer has one and no running
 * averages unless it keeps them; records an error otherwise. */
bool clt__layer_params_only(struct clt_graph *g, const char *layer, const char *name,
                            const struct clt_layer_params *use, bool bias, bool running);

/* The default initialisers of PyTorch's layers: weights Kaiming uniform with gain 1/sqrt(3)
 * (PyTorch's a = sqrt(5)), which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)); biases
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
struct clt_init clt__init_torch_weight(void);
struct clt_init clt__init_torch_bias(int64_t fan_in);

/* ==== Initialisation (init.c) =========================================================== */

/* Fills a parameter's values on the host from its rule, the trainer's seed and its name. */
enum clt_status clt__init_fill(const struct clt_tensor *t, uint64_t seed, float *out);

#endif /* CLTRAIN_GRAPH_H */
