/*
 * test_shape.c: the shape family (cl/shape.cl) against the C reference: embedding, permute,
 * concat and slice, forward and backward (with and without accumulate), a finite-difference
 * check of every backward, the reshape and flatten views, and argument checking.
 *
 * Shapes are odd (no multiple of any work-group size), include batch 1 and dimensions of
 * size 1, and every tensor sits at a non-zero offset of its own buffer between guard
 * elements that every read checks. Outputs start as NaN wherever an op must write every
 * element, so a skipped element fails. embedding_backward must give the same bits for any
 * work-group size of its sort (the test lowers dev->wg_1d).
 *
 * Tolerances:
 * - Forwards, and backwards without accumulate except embedding's, copy floats: exact
 *   (atol 0, rtol 0).
 * - Backwards with accumulate add two floats once: rtol 1.2e-7 (one rounding, 2^-24 relative,
 *   with margin), atol 0.
 * - embedding_backward sums up to `tokens` values in [-1, 1) in float: atol 1e-6 * tokens,
 *   rtol 1e-6 against the double reference; and, bit for bit, the same float sum taken in
 *   increasing token order on the host (the kernel's documented order).
 * - Finite differences of embedding's backward (repeated, unused and out-of-range ids; the
 *   other ops' plain checks are in test_ops.c): the op is linear and the loss sum(w * y) is
 *   taken in double, so central differences with eps 1e-2 are exact up to double rounding:
 *   atol 1e-5, rtol 1e-5, at 40 points spread over the inputs (12 under Oclgrind).
 * - 16-bit storage (fp16, bf16; the device's storage set for the time of the test): the same
 *   cases with every F32 tensor in the storage (guards included) and the inputs rounded to it
 *   on the host, against the references on those values. Copies stay exact (atol 0, rtol 0);
 *   one addition with accumulate is rounded once: rtol 1.2e-7 + u, u the storage's unit
 *   roundoff (fp16 2^-11 = 4.9e-4, bf16 2^-8 = 3.9e-3); embedding_backward: atol 1e-6 *
 *   tokens, rtol 1e-6 + u, and, bit for bit, the host's float sum in token order rounded to
 *   the storage once (so a kernel that rounded each partial sum, or summed in another order,
 *   fails), for every work-group size of the sort. No finite differences there (the
 *   gradients are rounded).
 *
 * The ops against the reference, in fp32 and 16 bits, are in this file, which lists every
 * test; the views and argument checks in test_shape_checks.c; the tensors, pool and finite
 * differences they share in shape_rig.c.
 */
#include <stdio.h>
#include <string.h>

#include "shape_rig.h"
#include "ops/shape.h"
#include "ref_shape.h"

/* ==== Embedding ========================================================================= */

struct emb_case {
    int64_t vocab, dim, tokens;
};

/* Ids with heavy repeats (every fourth token is 0), an unused id (vocab - 1, when vocab > 1)
 * and every seventh token out of range, cycling through -1, vocab, INT32_MAX, INT32_MIN. */
static int32_t *make_ids(struct pool *p, int64_t vocab, int64_t tokens, uint64_t seed)
{
    int32_t *ids = pool_alloc(p, (size_t)tokens * sizeof *ids);
    float *u = alloc_f(p, tokens);
    clt_test_fill(u, (size_t)tokens, seed, 0.0f, 1.0f);
    const int32_t bad[4] = {-1, (int32_t)vocab, INT32_MAX, INT32_MIN};
    int64_t used = vocab > 1 ? vocab - 1 : 1;
    for (int64_t t = 0; t < tokens; t++) {
        ids[t] = (int32_t)((int64_t)(u[t] * (float)used) % used);
        if (t % 4 == 1)
            ids[t] = 0;
        if (t % 7 == 6)
            ids[t] = bad[(t / 7) % 4];
    }
    return ids;
}

/* The float sum in increasing token order that embedding_backward promises, bit for bit. */
static void embedding_float_order(const int32_t *ids, const float *dy, const float *prev,
                                  const struct emb_case *c, float *out)
{
    for (int64_t v = 0; v < c->vocab; v++)
        for (int64_t d = 0; d < c->dim; d++) {
            float acc = 0.0f;
            for (int64_t t = 0; t < c->tokens; t++)
                if (ids[t] == v)
                    acc += dy[t * c->dim + d];
            out[v * c->dim + d] = prev ? prev[v * c->dim + d] + acc : acc;
        }
}

static void embedding_case(struct clt_device *dev, const struct emb_case *c)
{
    const int64_t nt = c->vocab * c->dim, ny = c->tokens * c->dim;
    struct pool p = {.dev = dev};
    int32_t *ids = make_ids(&p, c->vocab, c->tokens, 5 + (uint64_t)ny);
    float *table = randoms(&p, nt, 17 + (uint64_t)nt), *dy = randoms(&p, ny, 29 + (uint64_t)ny);
    float *prev = randoms(&p, nt, 41 + (uint64_t)nt), *got = alloc_f(&p, ny > nt ? ny : nt);
    float *order = alloc_f(&p, nt);
    double *want = alloc_d(&p, ny > nt ? ny : nt);
    char what[160];
    struct tensor *vt = floats(&p, table, nt), *vi = tensor_new(&p, CLT_I32, c->tokens, ids);
    struct tensor *vy = floats(&p, NULL, ny), *vdy = floats(&p, dy, ny);
    struct tensor *vdt = floats(&p, NULL, nt), *ws = workspace(&p, c->vocab, c->tokens);

    snprintf(what, sizeof what, "embedding vocab=%lld dim=%lld tokens=%lld%s", (long long)c->vocab,
             (long long)c->dim, (long long)c->tokens, storage_note());
    assert_int_equal(
        clt__embedding_forward(dev, vt->buf, vi->buf, vy->buf, c->vocab, c->dim, c->tokens),
        CLT_OK);
    tensor_get(vy, got, what);
    ref_embedding_forward(table, ids, c->vocab, c->dim, c->tokens, want);
    clt_test_assert_close(what, got, want, (size_t)ny, 0.0, 0.0);

    for (int accumulate = 0; accumulate < 2; accumulate++) {
        const float *before = accumulate ? prev : NULL;
        tensor_put(vdt, before);
        assert_int_equal(clt__embedding_backward(dev, vi->buf, vdy->buf, vdt->buf, ws->buf,
                                                 c->vocab, c->dim, c->tokens, accumulate),
                         CLT_OK);
        snprintf(what, sizeof what, "embedding_backward vocab=%lld dim=%lld tokens=%lld acc=%d%s",
                 (long long)c->vocab, (long long)c->dim, (long long)c->tokens, accumulate,
                 storage_note());
        tensor_get(vdt, got, what);
        tensor_get(ws, NULL, what);
        ref_embedding_backward(ids, dy, before, c->vocab, c->dim, c->tokens, want);
        const double u = storage == CLT_PRECISION_FP32 ? 0.0 : clt_test_eps(storage);
        clt_test_assert_close(what, got, want, (size_t)nt, 1e-6 * (double)c->tokens, 1e-6 + u);
        embedding_float_order(ids, dy, before, c, order);
        clt_test_round(order, (size_t)nt, storage);
        for (int64_t i = 0; i < nt; i++)
            if (memcmp(&got[i], &order[i], sizeof(float)) != 0)
                fail_msg("%s: element %lld is %.9g, the float sum in token order is %.9g", what,
                         (long long)i, (double)got[i], (double)order[i]);
    }
    pool_free(&p);
}

static void embedding_matches_reference(void **state)
{
    /* {4, 3, 0}: no tokens; the forward writes nothing, the backward clears dtable. */
    static const struct emb_case big[] = {
        {1, 1, 1}, {7, 5, 13}, {65, 17, 1}, {97, 33, 301}, {3, 130, 1000}, {200, 3, 77}, {4, 3, 0},
    };
    static const struct emb_case small[] = {
        {1, 1, 1}, {7, 5, 13}, {5, 3, 1}, {11, 6, 37}, {4, 3, 0}};
    bool is_small = clt_test_small();
    size_t n = is_small ? sizeof small / sizeof small[0] : sizeof big / sizeof big[0];
    for (size_t i = 0; i < n; i++)
        embedding_case(*state, is_small ? &small[i] : &big[i]);
}

/* The sort's work-group size comes from dev->wg_1d; every size must give the same bits.
 * Small sizes also run the sort's global stages on small shapes (under Oclgrind). */
static void embedding_any_work_group_size(void **state)
{
    struct clt_device *dev = *state;
    const struct emb_case c = {11, 6, clt_test_small() ? 37 : 700};
    const int64_t nt = c.vocab * c.dim;
    struct pool p = {.dev = dev};
    int32_t *ids = make_ids(&p, c.vocab, c.tokens, 77);
    float *dy = randoms(&p, c.tokens * c.dim, 78), *first = alloc_f(&p, nt), *got = alloc_f(&p, nt);
    struct tensor *vi = tensor_new(&p, CLT_I32, c.tokens, ids);
    struct tensor *vdy = floats(&p, dy, c.tokens * c.dim), *vdt = floats(&p, NULL, nt);
    struct tensor *ws = workspace(&p, c.vocab, c.tokens);
    const size_t keep = dev->wg_1d, sizes[] = {keep, 1, 2, 8};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        dev->wg_1d = sizes[i] <= keep ? sizes[i] : keep;
        tensor_put(vdt, NULL);
        assert_int_equal(clt__embedding_backward(dev, vi->buf, vdy->buf, vdt->buf, ws->buf, c.vocab,
                                                 c.dim, c.tokens, false),
                         CLT_OK);
        tensor_get(vdt, i == 0 ? first : got, "embedding_backward, work-group sizes");
        if (i > 0 && memcmp(first, got, (size_t)nt * sizeof(float)) != 0)
            fail_msg("embedding_backward differs with work-groups of %zu", sizes[i]);
    }
    dev->wg_1d = keep;
    pool_free(&p);
}

static enum clt_status embedding_fd_forward(const struct fd *f)
{
    const struct emb_case *c = f->c;
    return clt__embedding_forward(f->dev, f->x[0]->buf, f->aux->buf, f->y->buf, c->vocab, c->dim,
                                  c->tokens);
}

static void embedding_gradient(void **state)
{
    struct clt_device *dev = *state;
    static const struct emb_case c = {7, 5, 29};
    const int64_t nt = c.vocab * c.dim, ny = c.tokens * c.dim;
    struct pool p = {.dev = dev};
    int32_t *ids = make_ids(&p, c.vocab, c.tokens, 3);
    float *table = randoms(&p, nt, 7), *w = randoms(&p, ny, 9);
    struct fd f = {.dev = dev, .c = &c, .nx = 1, .w = w, .forward = embedding_fd_forward};
    f.x[0] = floats(&p, table, nt);
    f.aux = tensor_new(&p, CLT_I32, c.tokens, ids);
    f.y = floats(&p, NULL, ny);
    struct tensor *dy = floats(&p, w, ny), *dt = floats(&p, NULL, nt);
    struct tensor *ws = workspace(&p, c.vocab, c.tokens);
    assert_int_equal(clt__embedding_backward(dev, f.aux->buf, dy->buf, dt->buf, ws->buf, c.vocab,
                                             c.dim, c.tokens, false),
                     CLT_OK);
    fd_check("embedding_backward", &f, &dt, table);
    pool_free(&p);
}

/* ==== Permute =========================================================================== */

struct perm_case {
    uint32_t ndim;
    int64_t shape[CLT_MAX_DIMS];
    uint32_t perm[CLT_MAX_DIMS];
};

static void permute_case(struct clt_device *dev, const struct perm_case *c)
{
    const int64_t n = count_of(c->ndim, c->shape);
    struct pool p = {.dev = dev};
    float *x = randoms(&p, n, 3 + (uint64_t)n), *dy = randoms(&p, n, 5 + (uint64_t)n);
    float *prev = randoms(&p, n, 7 + (uint64_t)n), *got = alloc_f(&p, n);
    double *want = alloc_d(&p, n);
    char what[160];
    snprintf(what, sizeof what, "permute of %lld elements, perm %u %u %u %u %u %u (first %u)%s",
             (long long)n, c->perm[0], c->perm[1], c->perm[2], c->perm[3], c->perm[4], c->perm[5],
             c->ndim, storage_note());

    struct tensor *vx = floats(&p, x, n), *vy = floats(&p, NULL, n);
    struct tensor *vdy = floats(&p, dy, n), *vdx = floats(&p, NULL, n);
    assert_int_equal(clt__permute_forward(dev, vx->buf, vy->buf, c->ndim, c->shape, c->perm),
                     CLT_OK);
    tensor_get(vy, got, what);
    ref_permute_forward(x, c->ndim, c->shape, c->perm, want);
    clt_test_assert_close(what, got, want, (size_t)n, 0.0, 0.0);

    for (int accumulate = 0; accumulate < 2; accumulate++) {
        tensor_put(vdx, accumulate ? prev : NULL);
        assert_int_equal(
            clt__permute_backward(dev, vdy->buf, vdx->buf, c->ndim, c->shape, c->perm, accumulate),
            CLT_OK);
        tensor_get(vdx, got, what);
        ref_permute_backward(dy, accumulate ? prev : NULL, c->ndim, c->shape, c->perm, want);
        clt_test_assert_close(what, got, want, (size_t)n, 0.0, accumulate ? acc_rtol() : 0.0);
    }
    pool_free(&p);
}

static void permute_matches_reference(void **state)
{
    static const struct perm_case cases[] = {
        {1, {17}, {0}},
        {2, {5, 7}, {1, 0}},
        {3, {3, 4, 5}, {0, 1, 2}},
        {3, {3, 4, 5}, {0, 2, 1}},
        {3, {3, 4, 5}, {1, 0, 2}},
        {3, {3, 4, 5}, {1, 2, 0}},
        {3, {3, 4, 5}, {2, 0, 1}},
        {3, {3, 4, 5}, {2, 1, 0}},
        {4, {2, 3, 5, 7}, {0, 2, 1, 3}},
        {4, {2, 3, 5, 7}, {3, 1, 0, 2}},
        {4, {2, 3, 5, 7}, {0, 1, 3, 2}},
        {4, {1, 5, 1, 9}, {0, 2, 1, 3}},
        {4, {1, 3, 7, 1}, {3, 2, 0, 1}},
        {5, {2, 3, 1, 4, 5}, {4, 0, 3, 1, 2}},
        {6, {2, 3, 2, 3, 2, 3}, {5, 4, 3, 2, 1, 0}},
        {6, {2, 3, 2, 3, 2, 3}, {1, 0, 2, 3, 5, 4}},
        {6, {3, 1, 2, 5, 1, 3}, {2, 4, 0, 5, 3, 1}},
        /* A contiguous last dimension in fours, a copy of 4k elements. */
        {4, {2, 3, 5, 8}, {0, 2, 1, 3}},
        {2, {3, 4}, {0, 1}},
        /* Not under Oclgrind: attention's head split (batch, tokens, heads, head_dim), the
         * same with head_dim 32, and a plain transpose. */
        {4, {3, 37, 5, 29}, {0, 2, 1, 3}},
        {4, {3, 37, 5, 32}, {0, 2, 1, 3}},
        {2, {131, 67}, {1, 0}},
    };
    size_t n = sizeof cases / sizeof cases[0] - (clt_test_small() ? 3 : 0);
    for (size_t i = 0; i < n; i++)
        permute_case(*state, &cases[i]);
}

/* ==== Concat ============================================================================ */

struct concat_case {
    uint32_t ndim;
    int64_t shape[CLT_MAX_DIMS]; /* of y; shape[axis] is the sum of len */
    uint32_t axis;
    uint32_t count;
    int64_t len[8];
};

/* Elements of input k. */
static int64_t concat_input_count(const struct concat_case *c, uint32_t k)
{
    return count_of(c->ndim, c->shape) / c->shape[c->axis] * c->len[k];
}

static void concat_case(struct clt_device *dev, const struct concat_case *c)
{
    const int64_t ny = count_of(c->ndim, c->shape);
    struct pool p = {.dev = dev};
    float *x[8], *prev[8], *got = alloc_f(&p, ny), *dy = randoms(&p, ny, 3 + (uint64_t)ny);
    double *want = alloc_d(&p, ny), *dx_write[8], *dx_add[8];
    struct tensor *vdx[8];
    struct clt__buf bx[8], bdx[8], some[8];
    char what[160];
    snprintf(what, sizeof what, "concat %u-D axis %u of %u inputs, y has %lld%s", c->ndim, c->axis,
             c->count, (long long)ny, storage_note());

    for (uint32_t k = 0; k < c->count; k++) {
        int64_t n = concat_input_count(c, k);
        x[k] = randoms(&p, n, 100 + k + (uint64_t)n);
        prev[k] = randoms(&p, n, 200 + k + (uint64_t)n);
        dx_write[k] = alloc_d(&p, n);
        dx_add[k] = alloc_d(&p, n);
        bx[k] = floats(&p, x[k], n)->buf;
        vdx[k] = floats(&p, NULL, n);
        bdx[k] = vdx[k]->buf;
    }
    struct tensor *vy = floats(&p, NULL, ny), *vdy = floats(&p, dy, ny);
    assert_int_equal(
        clt__concat_forward(dev, c->count, bx, c->len, vy->buf, c->ndim, c->shape, c->axis),
        CLT_OK);
    tensor_get(vy, got, what);
    ref_concat_forward(c->count, (const float *const *)x, c->len, c->ndim, c->shape, c->axis, want);
    clt_test_assert_close(what, got, want, (size_t)ny, 0.0, 0.0);

    /* Modes: 0 writes every gradient, 1 adds to every one, 2 writes the even inputs' and adds
     * to the odd inputs' in two calls, the others' buffers NULL in each (as the graph does). */
    ref_concat_backward(dy, c->count, NULL, c->len, c->ndim, c->shape, c->axis, dx_write);
    ref_concat_backward(dy, c->count, (const float *const *)prev, c->len, c->ndim, c->shape,
                        c->axis, dx_add);
    for (int mode = 0; mode < 3; mode++) {
        for (uint32_t k = 0; k < c->count; k++)
            tensor_put(vdx[k], mode == 1 || (mode == 2 && k % 2) ? prev[k] : NULL);
        for (int accumulate = 0; accumulate < 2; accumulate++) {
            for (uint32_t k = 0; k < c->count; k++)
                some[k] = mode < 2 || (int)(k % 2) == accumulate ? bdx[k] : (struct clt__buf){0};
            if (mode == 2 || mode == accumulate)
                assert_int_equal(clt__concat_backward(dev, vdy->buf, c->count, some, c->len,
                                                      c->ndim, c->shape, c->axis, accumulate),
                                 CLT_OK);
        }
        for (uint32_t k = 0; k < c->count; k++) {
            bool added = mode == 1 || (mode == 2 && k % 2);
            tensor_get(vdx[k], got, what);
            clt_test_assert_close(what, got, added ? dx_add[k] : dx_write[k],
                                  (size_t)concat_input_count(c, k), 0.0, added ? acc_rtol() : 0.0);
        }
    }
    pool_free(&p);
}

static void concat_matches_reference(void **state)
{
    static const struct concat_case cases[] = {
        {3, {7, 4, 5}, 0, 3, {2, 1, 4}},
        {3, {3, 7, 5}, 1, 3, {2, 1, 4}},
        {3, {3, 4, 7}, 2, 3, {2, 1, 4}},
        {4, {2, 3, 1, 9}, 3, 5, {1, 3, 0, 2, 3}},
        {4, {2, 3, 6, 5}, 2, 2, {1, 5}},
        {2, {1, 6}, 1, 2, {4, 2}},
        {3, {3, 4, 7}, 2, 1, {7}},
        {2, {8, 1}, 0, 8, {1, 1, 1, 1, 1, 1, 1, 1}},
        /* Runs of 32 and 64 elements (slice_copy_cols32), odd outer sizes. */
        {2, {3, 64}, 1, 2, {32, 32}},
        {3, {5, 3, 32}, 1, 2, {1, 2}},
        /* Not under Oclgrind: q, k and v side by side, and a batch concatenation. */
        {3, {5, 33, 3 * 29}, 2, 3, {29, 29, 29}},
        {2, {3 + 61 + 1, 47}, 0, 3, {3, 61, 1}},
    };
    size_t n = sizeof cases / sizeof cases[0] - (clt_test_small() ? 2 : 0);
    for (size_t i = 0; i < n; i++)
        concat_case(*state, &cases[i]);
}

/* ==== Slice ============================================================================= */

struct slice_case {
    uint32_t ndim;
    int64_t shape[CLT_MAX_DIMS]; /* of x */
    uint32_t axis;
    int64_t start, len;
};

static int64_t slice_count(const struct slice_case *c)
{
    return count_of(c->ndim, c->shape) / c->shape[c->axis] * c->len;
}

static void slice_case(struct clt_device *dev, const struct slice_case *c)
{
    const int64_t nx = count_of(c->ndim, c->shape), ny = slice_count(c);
    struct pool p = {.dev = dev};
    float *x = randoms(&p, nx, 3 + (uint64_t)nx), *dy = randoms(&p, ny, 5 + (uint64_t)ny);
    float *prev = randoms(&p, nx, 7 + (uint64_t)nx), *got = alloc_f(&p, nx);
    double *want = alloc_d(&p, nx);
    char what[160];
    snprintf(what, sizeof what, "slice %u-D (x has %lld) axis %u start %lld len %lld%s", c->ndim,
             (long long)nx, c->axis, (long long)c->start, (long long)c->len, storage_note());

    struct tensor *vx = floats(&p, x, nx), *vy = floats(&p, NULL, ny);
    struct tensor *vdy = floats(&p, dy, ny), *vdx = floats(&p, NULL, nx);
    assert_int_equal(
        clt__slice_forward(dev, vx->buf, vy->buf, c->ndim, c->shape, c->axis, c->start, c->len),
        CLT_OK);
    tensor_get(vy, got, what);
    ref_slice_forward(x, c->ndim, c->shape, c->axis, c->start, c->len, want);
    clt_test_assert_close(what, got, want, (size_t)ny, 0.0, 0.0);

    for (int accumulate = 0; accumulate < 2; accumulate++) {
        tensor_put(vdx, accumulate ? prev : NULL);
        assert_int_equal(clt__slice_backward(dev, vdy->buf, vdx->buf, c->ndim, c->shape, c->axis,
                                             c->start, c->len, accumulate),
                         CLT_OK);
        tensor_get(vdx, got, what);
        ref_slice_backward(dy, accumulate ? prev : NULL, c->ndim, c->shape, c->axis, c->start,
                           c->len, want);
        clt_test_assert_close(what, got, want, (size_t)nx, 0.0, accumulate ? acc_rtol() : 0.0);
    }
    pool_free(&p);
}

static void slice_matches_reference(void **state)
{
    static const struct slice_case cases[] = {
        {3, {4, 5, 6}, 0, 1, 2},
        {3, {4, 5, 6}, 0, 0, 4},
        {3, {4, 5, 6}, 0, 3, 1},
        {3, {4, 5, 6}, 1, 1, 3},
        {3, {4, 5, 6}, 1, 4, 1},
        {3, {4, 5, 6}, 1, 0, 0},
        {3, {4, 5, 6}, 2, 2, 3},
        {3, {4, 5, 6}, 2, 0, 1},
        {3, {4, 5, 6}, 2, 0, 6},
        {2, {1, 9}, 1, 3, 5},
        {1, {13}, 0, 5, 7},
        {5, {2, 1, 3, 2, 5}, 3, 1, 1},
        {6, {2, 3, 1, 2, 3, 2}, 4, 1, 2},
        /* Runs of 32 and 64 elements (slice_copy_cols32). */
        {3, {3, 5, 16}, 1, 1, 2},
        {2, {5, 96}, 1, 32, 64},
        /* Not under Oclgrind: the last tokens of a batch, one head of an attention tensor. */
        {3, {7, 65, 33}, 1, 31, 34},
        {4, {3, 9, 37, 29}, 1, 4, 1},
    };
    size_t n = sizeof cases / sizeof cases[0] - (clt_test_small() ? 2 : 0);
    for (size_t i = 0; i < n; i++)
        slice_case(*state, &cases[i]);
}

/* ==== 16-bit storage ==================================================================== */

/* The cases above in fp16 and bf16: every kernel of cl/shape.cl with F32 tensors in the
 * storage (see the opening comment); then the launchers' buffer checks at 2 bytes an element:
 * a slice whose buffers hold exactly its 16-bit elements runs in fp16, not in fp32. */
static void storage16(void **state)
{
    struct clt_device *dev = *state;
    const enum clt_precision storages[] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16};
    for (size_t k = 0; k < 2; k++) {
        const enum clt_precision was = clt__storage_set(dev, storages[k]);
        storage = storages[k];
        embedding_matches_reference(state);
        embedding_any_work_group_size(state);
        permute_matches_reference(state);
        concat_matches_reference(state);
        slice_matches_reference(state);
        storage = CLT_PRECISION_FP32;
        clt__storage_set(dev, was);
    }

    const int64_t shape[2] = {6, 10}; /* columns 3..6: 24 elements, 48 bytes */
    struct clt_arena *ax, *ay;
    assert_int_equal(clt_arena_create(dev, 60 * 2, &ax), CLT_OK);
    assert_int_equal(clt_arena_create(dev, 24 * 2, &ay), CLT_OK);
    float x[60];
    for (int i = 0; i < 60; i++)
        x[i] = (float)i;
    struct clt_view vx = clt_test_tensor_st(ax, x, 60, CLT_PRECISION_FP16);
    struct clt_view vy = clt_test_tensor_st(ay, NULL, 24, CLT_PRECISION_FP16);
    const struct clt__buf bx = clt_test_buf_st(&vx, CLT_PRECISION_FP16);
    const struct clt__buf by = clt_test_buf_st(&vy, CLT_PRECISION_FP16);
    const enum clt_precision was = clt__storage_set(dev, CLT_PRECISION_FP16);
    assert_int_equal(clt__slice_forward(dev, bx, by, 2, shape, 1, 3, 4), CLT_OK);
    float y[24];
    clt_test_get_st(&vy, y, 24, CLT_PRECISION_FP16);
    for (int i = 0; i < 24; i++)
        assert_true(y[i] == x[i / 4 * 10 + 3 + i % 4]);
    struct clt_test_log text = {0};
    struct clt_log keep = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_DEBUG};
    clt__storage_set(dev, CLT_PRECISION_FP32);
    assert_int_equal(clt__slice_forward(dev, bx, by, 2, shape, 1, 3, 4), CLT_ERR_INVALID_ARGUMENT);
    dev->log = keep;
    clt__storage_set(dev, was);
    clt_arena_free(ax);
    clt_arena_free(ay);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(embedding_matches_reference),
        CLT_DEVICE_TEST(embedding_any_work_group_size),
        CLT_DEVICE_TEST(embedding_gradient),
        CLT_DEVICE_TEST(permute_matches_reference),
        CLT_DEVICE_TEST(concat_matches_reference),
        CLT_DEVICE_TEST(slice_matches_reference),
        CLT_DEVICE_TEST(reshape_shares_memory),
        CLT_DEVICE_TEST(launchers_check_arguments),
        CLT_DEVICE_TEST(storage16),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
