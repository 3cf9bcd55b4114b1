/*
 * ops.c: the registry of ops, generated from the list in ops/ops.h: each op's definition
 * (defined in its family file), name and family, indexed by enum clt__op.
 */
#include "ops/ops.h"

const struct clt__op_def *const clt__op_registry[CLT__OP_COUNT] = {
#define CLT__OP_ENTRY(name, family) [CLT__OP_##name] = &clt__op_##name,
    CLT__OPS(CLT__OP_ENTRY)
#undef CLT__OP_ENTRY
};

const char *const clt__op_names[CLT__OP_COUNT] = {
#define CLT__OP_NAME(name, family) [CLT__OP_##name] = #name,
    CLT__OPS(CLT__OP_NAME)
#undef CLT__OP_NAME
};

const char *const clt__op_families[CLT__OP_COUNT] = {
#define CLT__OP_FAMILY(name, family) [CLT__OP_##name] = #family,
    CLT__OPS(CLT__OP_FAMILY)
#undef CLT__OP_FAMILY
};

struct clt_tensor *clt__bench_param(struct clt_graph *g, const char *name, uint32_t ndim,
                                    const int64_t *shape)
{
    return clt_param(g, name, ndim, shape, (struct clt_init){CLT_INIT_UNIFORM, -1.0f, 1.0f});
}
