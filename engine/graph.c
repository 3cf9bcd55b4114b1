/*
 * graph.c: building graphs: nodes, inputs, parameters and state, the first-error rule, and
 * facts about tensors.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

enum clt_status clt_graph_create(struct clt_graph **out)
{
    if (!out)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt_graph *g = calloc(1, sizeof *g);
    if (!g)
        return CLT_ERR_NO_MEMORY;
    *out = g;
    return CLT_OK;
}

void clt_graph_free(struct clt_graph *graph)
{
    if (!graph)
        return;
    for (uint32_t i = 0; i < graph->count; i++)
        free(graph->nodes[i]);
    free(graph->nodes);
    free(graph);
}

enum clt_status clt_graph_status(const struct clt_graph *graph)
{
    return graph ? graph->status : CLT_ERR_INVALID_ARGUMENT;
}

const char *clt_graph_error(const struct clt_graph *graph)
{
    return graph ? graph->error : "no graph";
}

void clt__graph_fail(struct clt_graph *g, enum clt_status status, const char *fmt, ...)
{
    if (!g || g->status != CLT_OK)
        return;
    g->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->error, sizeof g->error, fmt, ap);
    va_end(ap);
}

/* The log of a graph's builders: the latest message is kept in g->note. */
static void note(void *user, enum clt_log_level level, const char *message)
{
    struct clt_graph *g = user;
    (void)level;
    snprintf(g->note, sizeof g->note, "%s", message);
}

struct clt_log clt__graph_log(struct clt_graph *g)
{
    g->note[0] = '\0';
    return (struct clt_log){note, g, CLT_LOG_ERROR};
}

bool clt__require(struct clt_graph *g, bool cond, const char *what)
{
    if (!cond)
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "%s", what);
    return cond;
}

bool clt__is_f32(struct clt_graph *g, const struct clt_tensor *t, const char *op)
{
    if (t->dtype != CLT_F32)
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "%s: \"%s\" must be F32", op, t->name);
    return t->dtype == CLT_F32;
}

bool clt__same_shape(const struct clt_tensor *a, const struct clt_tensor *b)
{
    return a->ndim == b->ndim && memcmp(a->shape, b->shape, a->ndim * sizeof *a->shape) == 0;
}

int64_t clt__rows(const struct clt_tensor *t)
{
    return clt__count(t) / t->shape[t->ndim - 1];
}

bool clt__graph_ok(struct clt_graph *g, uint32_t n, struct clt_tensor *const *ts)
{
    if (!g)
        return false;
    if (g->status != CLT_OK)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        if (!ts[i]) {
            clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "a NULL tensor was passed to an op");
            return false;
        }
        if (ts[i]->graph != g) {
            clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "tensor \"%s\" belongs to another graph",
                            ts[i]->name);
            return false;
        }
    }
    return true;
}

/* Checks a shape: 1..CLT_MAX_DIMS positive dimensions whose product stays below 2^31 (the
 * kernels index with 32-bit integers). `what` names the tensor (a parameter's or input's
 * name, or the op that makes it). */
static bool shape_ok(struct clt_graph *g, uint32_t ndim, const int64_t *shape, const char *what)
{
    if (ndim == 0 || ndim > CLT_MAX_DIMS || !shape) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "%s: %u dimensions (1 to %d allowed)", what,
                        (unsigned)ndim, CLT_MAX_DIMS);
        return false;
    }
    for (uint32_t i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || shape[i] > INT32_MAX) {
            clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                            "%s: dimension %u is %lld (dimensions are 1 to 2^31 - 1)", what,
                            (unsigned)i, (long long)shape[i]);
            return false;
        }
    }
    /* Each factor is below 2^31, so the running product fits 64 bits until it passes 2^31. */
    int64_t n = 1;
    for (uint32_t i = 0; i < ndim && n <= INT32_MAX; i++)
        n *= shape[i];
    if (n > INT32_MAX) {
        char dims[CLT_MAX_DIMS * 24] = "";
        size_t len = 0;
        for (uint32_t i = 0; i < ndim && len < sizeof dims; i++)
            len += (size_t)snprintf(dims + len, sizeof dims - len, "%s%lld", i ? ", " : "",
                                    (long long)shape[i]);
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "%s: shape [%s] has 2^31 elements or more; a tensor holds at most "
                        "2^31 - 1 (%lld) elements, because kernels index with 32-bit integers",
                        what, dims, (long long)INT32_MAX);
        return false;
    }
    return true;
}

static struct clt_tensor *add_node(struct clt_graph *g, enum clt__node_kind kind,
                                   enum clt_dtype dtype, uint32_t ndim, const int64_t *shape,
                                   const char *what)
{
    if (!shape_ok(g, ndim, shape, what))
        return NULL;
    if (dtype != CLT_F32 && dtype != CLT_I32) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "%s: unknown dtype %d", what, (int)dtype);
        return NULL;
    }
    if (g->count == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 64;
        struct clt_tensor **nodes = realloc(g->nodes, cap * sizeof *nodes);
        if (!nodes) {
            clt__graph_fail(g, CLT_ERR_NO_MEMORY, "out of host memory");
            return NULL;
        }
        g->nodes = nodes;
        g->cap = cap;
    }
    struct clt_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        clt__graph_fail(g, CLT_ERR_NO_MEMORY, "out of host memory");
        return NULL;
    }
    t->graph = g;
    t->id = g->count;
    t->kind = kind;
    t->dtype = dtype;
    t->ndim = ndim;
    memcpy(t->shape, shape, ndim * sizeof *shape);
    g->nodes[g->count++] = t;
    return t;
}

struct clt_tensor *clt__node(struct clt_graph *g, enum clt__op op, uint32_t nin,
                             struct clt_tensor *const *in, enum clt_dtype dtype, uint32_t ndim,
                             const int64_t *shape)
{
    if (!clt__graph_ok(g, nin, in))
        return NULL;
    struct clt_tensor *t = add_node(g, CLT__NODE_OP, dtype, ndim, shape, clt__op_names[op]);
    if (!t)
        return NULL;
    t->op = op;
    t->nin = nin;
    for (uint32_t i = 0; i < nin; i++)
        t->in[i] = in[i];
    return t;
}

/* A name for an input, parameter or state: non-empty, fits, unique among named tensors. */
static bool name_ok(struct clt_graph *g, const char *name)
{
    if (!name || !*name || strlen(name) >= CLT__NAME_MAX) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "a name must have 1 to %d characters",
                        CLT__NAME_MAX - 1);
        return false;
    }
    for (uint32_t i = 0; i < g->count; i++) {
        if (g->nodes[i]->kind != CLT__NODE_OP && strcmp(g->nodes[i]->name, name) == 0) {
            clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "the name \"%s\" is already taken", name);
            return false;
        }
    }
    return true;
}

struct clt_tensor *clt_input(struct clt_graph *g, const char *name, enum clt_dtype dtype,
                             uint32_t ndim, const int64_t *shape)
{
    if (!clt__graph_ok(g, 0, NULL) || !name_ok(g, name))
        return NULL;
    struct clt_tensor *t = add_node(g, CLT__NODE_INPUT, dtype, ndim, shape, name);
    if (t)
        snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

static bool init_ok(struct clt_graph *g, const char *name, struct clt_init init)
{
    if ((unsigned)init.kind > CLT_INIT_KAIMING_NORMAL || !isfinite(init.a) || !isfinite(init.b) ||
        (init.kind == CLT_INIT_UNIFORM && !(init.a <= init.b)) ||
        (init.kind == CLT_INIT_NORMAL && init.b < 0)) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "%s: invalid initialiser", name);
        return false;
    }
    return true;
}

static struct clt_tensor *add_trained(struct clt_graph *g, enum clt__node_kind kind,
                                      const char *name, uint32_t ndim, const int64_t *shape,
                                      struct clt_init init)
{
    if (!clt__graph_ok(g, 0, NULL) || !name_ok(g, name) || !init_ok(g, name, init))
        return NULL;
    struct clt_tensor *t = add_node(g, kind, CLT_F32, ndim, shape, name);
    if (t) {
        snprintf(t->name, sizeof t->name, "%s", name);
        t->init = init;
    }
    return t;
}

struct clt_tensor *clt_param(struct clt_graph *g, const char *name, uint32_t ndim,
                             const int64_t *shape, struct clt_init init)
{
    return add_trained(g, CLT__NODE_PARAM, name, ndim, shape, init);
}

void clt_param_set_kind(struct clt_tensor *param, enum clt_param_kind kind)
{
    if (!param || param->graph->status != CLT_OK)
        return;
    if (param->kind != CLT__NODE_PARAM || (unsigned)kind > CLT_PARAM_EMBEDDING) {
        clt__graph_fail(param->graph, CLT_ERR_INVALID_ARGUMENT,
                        "clt_param_set_kind: \"%s\" is not a trained parameter, or kind %d "
                        "is unknown",
                        param->name, (int)kind);
        return;
    }
    param->param_kind = kind;
}

enum clt_param_kind clt_param_get_kind(const struct clt_tensor *param)
{
    return param && param->kind == CLT__NODE_PARAM ? param->param_kind : CLT_PARAM_WEIGHT;
}

struct clt_tensor *clt_state(struct clt_graph *g, const char *name, uint32_t ndim,
                             const int64_t *shape, struct clt_init init)
{
    return add_trained(g, CLT__NODE_STATE, name, ndim, shape, init);
}

struct clt_tensor *clt_graph_param(struct clt_graph *g, const char *name)
{
    if (!clt__graph_ok(g, 0, NULL))
        return NULL;
    for (uint32_t i = 0; name && i < g->count; i++) {
        struct clt_tensor *t = g->nodes[i];
        if ((t->kind == CLT__NODE_PARAM || t->kind == CLT__NODE_STATE) &&
            strcmp(t->name, name) == 0)
            return t;
    }
    clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                    "clt_graph_param: no parameter or state named \"%s\"", name ? name : "(NULL)");
    return NULL;
}

/* "[a, b, c]" into buf. */
static const char *shape_str(uint32_t ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "[");
    for (uint32_t i = 0; i < ndim && len < size; i++)
        len +=
            (size_t)snprintf(buf + len, size - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < size)
        snprintf(buf + len, size - len, "]");
    return buf;
}

struct clt_tensor *clt__layer_param(struct clt_graph *g, const char *layer, const char *name,
                                    const char *part, struct clt_tensor *given, bool state,
                                    uint32_t ndim, const int64_t *shape, struct clt_init init)
{
    if (!clt__graph_ok(g, 0, NULL))
        return NULL;
    if (!given) {
        char full[CLT__NAME_MAX];
        if (!clt__param_name(g, name, part, full))
            return NULL;
        return state ? clt_state(g, full, ndim, shape, init)
                     : clt_param(g, full, ndim, shape, init);
    }
    const char *label = name && *name ? name : "(unnamed)";
    if (given->graph != g) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "%s \"%s\": the given %s belongs to another graph", layer, label, part);
        return NULL;
    }
    enum clt__node_kind want = state ? CLT__NODE_STATE : CLT__NODE_PARAM;
    if (given->kind != want) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "%s \"%s\": the given %s must be %s (clt_%s or a layer's), not %s%s%s",
                        layer, label, part, state ? "a state tensor" : "a parameter",
                        state ? "state" : "param",
                        given->kind == CLT__NODE_INPUT   ? "an input"
                        : given->kind == CLT__NODE_PARAM ? "a parameter"
                        : given->kind == CLT__NODE_STATE ? "a state tensor"
                                                         : "an op's result",
                        given->name[0] ? " " : "", given->name);
        return NULL;
    }
    if (given->ndim != ndim || memcmp(given->shape, shape, ndim * sizeof *shape) != 0) {
        char have[CLT_MAX_DIMS * 24], need[CLT_MAX_DIMS * 24];
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "%s \"%s\": the given %s \"%s\" is %s; the layer needs %s", layer, label,
                        part, given->name, shape_str(given->ndim, given->shape, have, sizeof have),
                        shape_str(ndim, shape, need, sizeof need));
        return NULL;
    }
    return given;
}

bool clt__layer_params_only(struct clt_graph *g, const char *layer, const char *name,
                            const struct clt_layer_params *use, bool bias, bool running)
{
    if (!use)
        return true;
    const char *label = name && *name ? name : "(unnamed)";
    const char *extra = use->bias && !bias                ? "bias"
                        : (use->running_mean && !running) ? "running_mean"
                        : (use->running_var && !running)  ? "running_var"
                                                          : NULL;
    if (extra)
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "%s \"%s\": a %s was given, but the layer has none%s", layer, label, extra,
                        strcmp(extra, "bias") == 0 ? " (its bias option is off)" : "");
    return extra == NULL;
}

bool clt__param_name(struct clt_graph *g, const char *prefix, const char *part, char *out)
{
    if (!prefix || !*prefix) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "a layer needs a name");
        return false;
    }
    int n = snprintf(out, CLT__NAME_MAX, "%s.%s", prefix, part);
    if (n < 0 || n >= CLT__NAME_MAX) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT, "layer name \"%s\" is too long", prefix);
        return false;
    }
    return true;
}

struct clt_init clt__init_torch_weight(void)
{
    return (struct clt_init){CLT_INIT_KAIMING_UNIFORM, 0.57735026918962576f, 0.0f};
}

struct clt_init clt__init_torch_bias(int64_t fan_in)
{
    float r = fan_in > 0 ? (float)(1.0 / sqrt((double)fan_in)) : 0.0f;
    return (struct clt_init){CLT_INIT_UNIFORM, -r, r};
}

int64_t clt__count(const struct clt_tensor *t)
{
    int64_t n = 1;
    for (uint32_t i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

uint32_t clt_tensor_ndim(const struct clt_tensor *t)
{
    return t ? t->ndim : 0;
}

int64_t clt_tensor_dim(const struct clt_tensor *t, uint32_t axis)
{
    return t && axis < t->ndim ? t->shape[axis] : 0;
}

enum clt_dtype clt_tensor_dtype(const struct clt_tensor *t)
{
    return t ? t->dtype : CLT_F32;
}

const char *clt_tensor_name(const struct clt_tensor *t)
{
    return t ? t->name : "";
}
