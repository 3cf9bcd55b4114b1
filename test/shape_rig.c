/*
 * shape_rig.c: the tensors, pool and finite differences of the shape family's tests
 * (shape_rig.h); the tolerances are stated at the top of test_shape.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shape_rig.h"
#include "ops/shape.h"
#include "precision.h"

enum clt_precision storage = CLT_PRECISION_FP32;

/* "" in fp32, else the storage's name, for the messages. */
const char *storage_note(void)
{
    return storage == CLT_PRECISION_FP16   ? " (fp16)"
           : storage == CLT_PRECISION_BF16 ? " (bf16)"
                                           : "";
}

/* The relative tolerance of one addition with accumulate (see the opening comment). */
double acc_rtol(void)
{
    return storage == CLT_PRECISION_FP32 ? ACC_RTOL : ACC_RTOL + clt_test_eps(storage);
}

static size_t elem_bytes(const struct tensor *t)
{
    return clt_test_storage_bytes(t->storage);
}

/* Writes one element at `at`: f in the tensor's storage (F32), or n (I32). */
static void elem_put(const struct tensor *t, unsigned char *at, float f, int32_t n)
{
    uint16_t h = t->storage == CLT_PRECISION_FP16 ? clt__f32_to_f16(f) : clt__f32_to_bf16(f);
    if (t->dtype == CLT_I32)
        memcpy(at, &n, 4);
    else if (t->storage == CLT_PRECISION_FP32)
        memcpy(at, &f, 4);
    else
        memcpy(at, &h, 2);
}

/* The element at `at` as a float (F32) or its bits (I32), in 4 bytes. */
static void elem_get(const struct tensor *t, const unsigned char *at, void *out)
{
    uint16_t h;
    memcpy(&h, at, 2);
    float f = t->storage == CLT_PRECISION_FP16 ? clt__f16_to_f32(h) : clt__bf16_to_f32(h);
    if (t->dtype == CLT_I32 || t->storage == CLT_PRECISION_FP32)
        memcpy(out, at, 4);
    else
        memcpy(out, &f, 4);
}

/* Writes the guards and host[0..count), or NaN (F32) / INT32_MIN (I32) where host is NULL:
 * values that fail a comparison if a kernel leaves them in place. */
void tensor_put(const struct tensor *t, const void *host)
{
    const int64_t total = t->count + 2 * GUARD;
    const size_t eb = elem_bytes(t);
    unsigned char *all = malloc((size_t)total * eb);
    assert_non_null(all);
    for (int64_t i = 0; i < total; i++) {
        bool guard = i < GUARD || i >= GUARD + t->count;
        float f = guard ? SENTINEL_F : NAN;
        int32_t n = guard ? SENTINEL_I : INT32_MIN;
        if (host && !guard) {
            memcpy(&f, (const unsigned char *)host + (i - GUARD) * 4, 4);
            memcpy(&n, &f, 4);
        }
        elem_put(t, all + (size_t)i * eb, f, n);
    }
    assert_int_equal(clt_view_write(&t->view, all, (uint64_t)total * eb, NULL), CLT_OK);
    free(all);
}

/* Reads the data into host (may be NULL) and fails when a guard has changed. */
void tensor_get(const struct tensor *t, void *host, const char *what)
{
    const int64_t total = t->count + 2 * GUARD;
    const size_t eb = elem_bytes(t);
    unsigned char *all = malloc((size_t)total * eb), sentinel[4];
    assert_non_null(all);
    assert_int_equal(clt_view_read(&t->view, all, (uint64_t)total * eb, NULL), CLT_OK);
    elem_put(t, sentinel, SENTINEL_F, SENTINEL_I);
    for (int64_t i = 0; i < total; i++)
        if ((i < GUARD || i >= GUARD + t->count) && memcmp(all + (size_t)i * eb, sentinel, eb) != 0)
            fail_msg("%s: guard element %lld around a tensor of %lld was overwritten", what,
                     (long long)(i < GUARD ? i - GUARD : i - GUARD - t->count),
                     (long long)t->count);
    for (int64_t i = 0; host && i < t->count; i++)
        elem_get(t, all + (size_t)(GUARD + i) * eb, (unsigned char *)host + i * 4);
    free(all);
}

struct tensor *tensor_new(struct pool *p, enum clt_dtype dtype, int64_t count, const void *host)
{
    assert_true(p->n < POOL_MAX);
    struct tensor *t = &p->t[p->n++];
    *t = (struct tensor){
        .count = count, .dtype = dtype, .storage = dtype == CLT_F32 ? storage : CLT_PRECISION_FP32};
    /* 4-byte words holding GUARD + count + GUARD elements. */
    const int64_t total = count + 2 * GUARD;
    const int64_t words = (total * (int64_t)elem_bytes(t) + 3) / 4;
    assert_int_equal(clt_arena_create(p->dev, (uint64_t)words * 4, &t->arena), CLT_OK);
    assert_int_equal(clt_arena_alloc(t->arena, dtype, 1, &words, &t->view), CLT_OK);
    t->buf = clt_test_buf_st(&t->view, t->storage);
    t->buf.offset += GUARD;
    tensor_put(t, host);
    return t;
}

struct tensor *floats(struct pool *p, const float *host, int64_t count)
{
    return tensor_new(p, CLT_F32, count, host);
}

void pool_free(struct pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        clt_arena_free(p->t[i].arena);
    for (size_t i = 0; i < p->n_host; i++)
        free(p->host[i]);
    p->n = p->n_host = 0;
}

void *pool_alloc(struct pool *p, size_t bytes)
{
    assert_true(p->n_host < POOL_MAX);
    void *m = malloc(bytes ? bytes : 1);
    assert_non_null(m);
    return p->host[p->n_host++] = m;
}

float *alloc_f(struct pool *p, int64_t n)
{
    return pool_alloc(p, (size_t)n * sizeof(float));
}

double *alloc_d(struct pool *p, int64_t n)
{
    return pool_alloc(p, (size_t)n * sizeof(double));
}

/* Uniform in [-1, 1), rounded to `storage`. */
float *randoms(struct pool *p, int64_t n, uint64_t seed)
{
    float *x = alloc_f(p, n);
    clt_test_fill(x, (size_t)n, seed, -1.0f, 1.0f);
    clt_test_round(x, (size_t)n, storage);
    return x;
}

int64_t count_of(uint32_t ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (uint32_t k = 0; k < ndim; k++)
        n *= shape[k];
    return n;
}

static double fd_loss(void *ctx, const float *x, size_t n)
{
    struct fd *f = ctx;
    (void)n;
    for (uint32_t k = 0; k < f->nx; k++) {
        tensor_put(f->x[k], x);
        x += f->x[k]->count;
    }
    assert_int_equal(f->forward(f), CLT_OK);
    tensor_get(f->y, f->y_host, "forward");
    double s = 0.0;
    for (int64_t i = 0; i < f->y->count; i++)
        s += (double)f->w[i] * (double)f->y_host[i];
    return s;
}

/* Checks the gradients in dx[0..nx) (one per input, filled by the backward with dy = w)
 * against central differences at points spread over all the inputs, starting from x0. The
 * ops are linear, so a few probes suffice where each launch is slow (Oclgrind). */
void fd_check(const char *what, struct fd *f, struct tensor *const *dx, const float *x0)
{
    int64_t n = 0;
    for (uint32_t k = 0; k < f->nx; k++)
        n += f->x[k]->count;
    struct pool p = {.dev = f->dev};
    float *x = alloc_f(&p, n), *grad = alloc_f(&p, n);
    memcpy(x, x0, (size_t)n * sizeof *x);
    for (uint32_t k = 0, at = 0; k < f->nx; at += (uint32_t)dx[k]->count, k++)
        tensor_get(dx[k], grad + at, what);
    f->y_host = alloc_f(&p, f->y->count);
    clt_test_gradcheck(what, fd_loss, f, x, (size_t)n, grad, clt_test_small() ? 12 : 40, GRAD_EPS,
                       GRAD_ATOL, GRAD_RTOL);
    pool_free(&p);
}

struct tensor *workspace(struct pool *p, int64_t vocab, int64_t tokens)
{
    size_t bytes = clt__embedding_workspace_bytes(vocab, tokens);
    assert_true(bytes > 0 && bytes % 4 == 0);
    return tensor_new(p, CLT_I32, (int64_t)bytes / 4, NULL);
}
