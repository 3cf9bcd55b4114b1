/*
 * test_ops_shape.c: the rows of test_ops.c's table for the activations, dropout, the views
 * (reshape, flatten) and the shape ops (embedding, permute, concat, slice): their C
 * references in double, their builders and their rows.
 */

#include "ops_rig.h"
#include "ref_activation.h"
#include "ref_elementwise.h"
#include "ref_shape.h"

/* ==== References ========================================================================= */

#define ACT_REF(fn, act, slope)                                                                    \
    static void fn(const struct ctx *c, double *y)                                                 \
    {                                                                                              \
        ref_activation_forward(act, slope, F(c, 0), y, (size_t)c->ny);                             \
    }
ACT_REF(ref_relu, CLT__ACT_RELU, 0.0f)
ACT_REF(ref_leaky_relu, CLT__ACT_LEAKY_RELU, 0.13f)
ACT_REF(ref_gelu_tanh, CLT__ACT_GELU_TANH, 0.0f)
ACT_REF(ref_gelu_erf, CLT__ACT_GELU_ERF, 0.0f)
ACT_REF(ref_tanh, CLT__ACT_TANH, 0.0f)
ACT_REF(ref_sigmoid, CLT__ACT_SIGMOID, 0.0f)
ACT_REF(ref_silu, CLT__ACT_SILU, 0.0f)

/* The identity: dropout in evaluation, and the views. */
static void ref_identity(const struct ctx *c, double *y)
{
    ref_copy_forward((size_t)c->ny, F(c, 0), y);
}

/* embedding: ids are declared tensor 0, the table p[0] [7, 5]. */
static void ref_embedding(const struct ctx *c, double *y)
{
    ref_embedding_forward(c->p[0], c->d[0], 7, 5, count_of(&c->decl[0]), y);
}

static const uint32_t PERM[3] = {2, 0, 1};

static void ref_permute(const struct ctx *c, double *y)
{
    ref_permute_forward(F(c, 0), 3, S(c, 0), PERM, y);
}

static void ref_concat(const struct ctx *c, double *y)
{
    const float *xs[3] = {F(c, 0), F(c, 1), F(c, 2)};
    int64_t len[3] = {S(c, 0)[1], S(c, 1)[1], S(c, 2)[1]};
    int64_t shape[3] = {S(c, 0)[0], len[0] + len[1] + len[2], S(c, 0)[2]};
    ref_concat_forward(3, xs, len, 3, shape, 1, y);
}

static void ref_slice(const struct ctx *c, double *y)
{
    ref_slice_forward(F(c, 0), 3, S(c, 0), 1, 1, 3, y);
}

/* ==== Builders =========================================================================== */

static struct clt_tensor *b_relu(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_relu(g, t[0]);
}

static struct clt_tensor *b_leaky_relu(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_leaky_relu(g, t[0], 0.13f);
}

static struct clt_tensor *b_gelu_tanh(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_gelu(g, t[0], true);
}

static struct clt_tensor *b_gelu_erf(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_gelu(g, t[0], false);
}

static struct clt_tensor *b_tanh(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_tanh(g, t[0]);
}

static struct clt_tensor *b_sigmoid(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_sigmoid(g, t[0]);
}

static struct clt_tensor *b_silu(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_silu(g, t[0]);
}

static struct clt_tensor *b_dropout(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_dropout(g, t[0], 0.3f);
}

static struct clt_tensor *b_reshape(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_reshape(g, t[0], 2, (int64_t[]){clt_tensor_dim(t[0], 0), 20});
}

static struct clt_tensor *b_flatten(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_flatten(g, t[0]);
}

static struct clt_tensor *b_embedding(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_embedding(g, t[0], 7, 5, "emb");
}

static struct clt_tensor *b_permute(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_permute(g, t[0], PERM);
}

static struct clt_tensor *b_concat(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_concat(g, 3, t, 1);
}

static struct clt_tensor *b_slice(struct clt_graph *g, struct clt_tensor *const *t)
{
    return clt_slice(g, t[0], 1, 1, 3);
}

const struct op_case ops_shape_cases[] = {
    {"activation", "relu", 1, {P2(3, 11)}, .build = b_relu, .ref = ref_relu},
    {"activation", "leaky_relu", 1, {P2(3, 11)}, .build = b_leaky_relu, .ref = ref_leaky_relu},
    {"activation", "gelu tanh", 1, {P2(3, 11)}, .build = b_gelu_tanh, .ref = ref_gelu_tanh},
    {"activation", "gelu erf", 1, {P2(3, 11)}, .build = b_gelu_erf, .ref = ref_gelu_erf},
    {"activation", "tanh", 1, {P2(3, 11)}, .build = b_tanh, .ref = ref_tanh},
    {"activation", "sigmoid", 1, {P2(3, 11)}, .build = b_sigmoid, .ref = ref_sigmoid},
    {"activation", "silu", 1, {P2(3, 11)}, .build = b_silu, .ref = ref_silu},
    {"dropout",
     "dropout",
     1,
     {P2(5, 13)},
     .build = b_dropout,
     .ref = NULL,
     .ref_eval = ref_identity,
     .dropout = true},
    {"reshape", "reshape", 1, {P3(3, 4, 5)}, .build = b_reshape, .ref = ref_identity},
    {"reshape", "flatten", 1, {P3(3, 2, 5)}, .build = b_flatten, .ref = ref_identity},
    {"embedding",
     "embedding, one id out of range",
     1,
     {{IDS, 2, {3, 4}, -1, 7}},
     .build = b_embedding,
     .ref = ref_embedding},
    {"permute", "permute", 1, {P3(3, 4, 5)}, .build = b_permute, .ref = ref_permute},
    {"concat",
     "concat",
     3,
     {P3(3, 2, 4), P3(3, 3, 4), P3(3, 1, 4)},
     .build = b_concat,
     .ref = ref_concat},
    {"slice", "slice", 1, {P3(3, 5, 4)}, .build = b_slice, .ref = ref_slice},
};
const size_t ops_shape_count = sizeof ops_shape_cases / sizeof ops_shape_cases[0];
