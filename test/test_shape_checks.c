/*
 * test_shape_checks.c: the shape family's views and argument checks: reshape and flatten share
 * their input's memory, and the launchers refuse bad arguments.
 */
#include <string.h>

#include "shape_rig.h"
#include "ops/shape.h"

/* ==== Views ============================================================================= */

void reshape_shares_memory(void **state)
{
    struct clt_device *dev = *state;
    struct clt_test_log text = {.len = 0};
    struct clt_log keep = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_DEBUG};
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, 120 * sizeof(float), &arena), CLT_OK);
    float data[120], back[120];
    clt_test_fill(data, 120, 1, -1.0f, 1.0f);
    struct clt_view v, r, r2;
    assert_int_equal(clt_arena_alloc(arena, CLT_F32, 4, (int64_t[]){2, 3, 4, 5}, &v), CLT_OK);
    assert_int_equal(clt_view_write(&v, data, sizeof data, NULL), CLT_OK);

    assert_int_equal(clt__view_reshape(&v, 2, (int64_t[]){6, 20}, &r), CLT_OK);
    assert_ptr_equal(r.arena, v.arena);
    assert_true(r.offset == v.offset && r.dtype == v.dtype && r.ndim == 2);
    assert_true(r.shape[0] == 6 && r.shape[1] == 20);
    assert_int_equal(clt_view_read(&r, back, sizeof back, NULL), CLT_OK);
    assert_memory_equal(back, data, sizeof data);
    /* Written through the reshaped view, read through the original. */
    data[77] = 42.0f;
    assert_int_equal(clt_view_write(&r, data, sizeof data, NULL), CLT_OK);
    assert_int_equal(clt_view_read(&v, back, sizeof back, NULL), CLT_OK);
    assert_memory_equal(back, data, sizeof data);

    assert_int_equal(clt__view_reshape(&v, 3, (int64_t[]){4, -1, 3}, &r2), CLT_OK);
    assert_true(r2.ndim == 3 && r2.shape[1] == 10 && r2.offset == v.offset);
    assert_int_equal(clt__view_flatten(&v, 1, 2, &r2), CLT_OK);
    assert_true(r2.ndim == 3 && r2.shape[0] == 2 && r2.shape[1] == 12 && r2.shape[2] == 5);
    assert_int_equal(clt__view_flatten(&v, 0, 3, &r2), CLT_OK);
    assert_true(r2.ndim == 1 && r2.shape[0] == 120 && r2.offset == v.offset);
    assert_int_equal(clt__view_flatten(&v, 2, 2, &r2), CLT_OK);
    assert_true(r2.ndim == 4 && r2.shape[2] == 4);

    r2 = v; /* failures leave *out untouched */
    const enum clt_status bad = CLT_ERR_INVALID_ARGUMENT;
    assert_int_equal(clt__view_reshape(&v, 2, (int64_t[]){7, 17}, &r2), bad);
    assert_int_equal(clt__view_reshape(&v, 2, (int64_t[]){-1, 7}, &r2), bad);
    assert_int_equal(clt__view_reshape(&v, 2, (int64_t[]){-1, -1}, &r2), bad);
    assert_int_equal(clt__view_reshape(&v, 2, (int64_t[]){0, 120}, &r2), bad);
    assert_int_equal(clt__view_reshape(&v, 7, (int64_t[]){1, 1, 1, 1, 1, 1, 120}, &r2), bad);
    assert_int_equal(clt__view_flatten(&v, 2, 1, &r2), bad);
    assert_int_equal(clt__view_flatten(&v, 0, 4, &r2), bad);
    assert_memory_equal(&r2, &v, sizeof v);
    assert_non_null(strstr(text.text, "cannot take a shape"));
    dev->log = keep;
    clt_arena_free(arena);
}

/* ==== Argument checks =================================================================== */

void launchers_check_arguments(void **state)
{
    struct clt_device *dev = *state;
    struct clt_test_log text = {.len = 0};
    struct clt_log keep = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_DEBUG};
    float zeros[60] = {0.0f}; /* every buffer a kernel may read is set (Oclgrind checks) */
    struct pool p = {.dev = dev};
    struct clt__buf ba = floats(&p, zeros, 60)->buf, bb = floats(&p, zeros, 60)->buf;
    struct clt__buf bi = tensor_new(&p, CLT_I32, 4, (int32_t[]){0, 1, 2, 3})->buf;
    struct clt__buf bw = workspace(&p, 5, 4)->buf, none = {NULL, 0};
    struct clt__buf far = {ba.mem, 1u << 31};
    /* 9 elements before the end of a's buffer: too short for 60 floats or 10 ints. */
    struct clt__buf tail = {ba.mem, 60 + 2 * GUARD - 9};
    const int64_t shape[3] = {3, 4, 5};
    const enum clt_status bad = CLT_ERR_INVALID_ARGUMENT;

    /* Embedding: sizes, NULL buffers, buffers too short for the sizes. */
    assert_int_equal(clt__embedding_forward(dev, ba, bi, bb, 5, 12, 4), CLT_OK);
    assert_int_equal(clt__embedding_forward(dev, ba, bi, bb, -1, 12, 4), bad);
    assert_int_equal(clt__embedding_forward(dev, tail, bi, bb, 5, 12, 4), bad);
    assert_int_equal(clt__embedding_forward(dev, none, bi, bb, 5, 12, 4), bad);
    assert_int_equal(clt__embedding_forward(NULL, ba, bi, bb, 5, 12, 4), bad);
    assert_int_equal(clt__embedding_backward(dev, bi, bb, ba, bw, 5, 12, 4, false), CLT_OK);
    assert_int_equal(clt__embedding_backward(dev, bi, bb, ba, tail, 5, 12, 4, false), bad);
    assert_int_equal(clt__embedding_backward(dev, bi, bb, ba, bw, 5, 12, -4, false), bad);
    assert_true(clt__embedding_workspace_bytes(-1, 4) == 0);
    assert_true(clt__embedding_workspace_bytes(5, (int64_t)1 << 40) == 0);
    assert_true(clt__embedding_workspace_bytes(5, 5) == (8 + 6) * 4);
    assert_true(clt__embedding_workspace_bytes(5, 0) == (2 + 6) * 4);

    /* Permute: not a permutation, too many dimensions, buffers. */
    assert_int_equal(clt__permute_forward(dev, ba, bb, 3, shape, (uint32_t[]){2, 0, 1}), CLT_OK);
    assert_int_equal(clt__permute_forward(dev, ba, bb, 3, shape, (uint32_t[]){2, 0, 2}), bad);
    assert_int_equal(clt__permute_forward(dev, ba, bb, 3, shape, (uint32_t[]){0, 1, 3}), bad);
    assert_int_equal(clt__permute_forward(dev, ba, bb, 3, shape, NULL), bad);
    assert_int_equal(clt__permute_forward(dev, ba, bb, 0, shape, (uint32_t[]){0}), bad);
    assert_int_equal(clt__permute_forward(dev, ba, bb, 7, (int64_t[]){1, 1, 1, 1, 1, 1, 1},
                                          (uint32_t[]){0, 1, 2, 3, 4, 5, 6}),
                     bad);
    assert_int_equal(clt__permute_backward(dev, ba, far, 3, shape, (uint32_t[]){2, 0, 1}, true),
                     bad);
    assert_int_equal(clt__permute_backward(dev, ba, tail, 3, shape, (uint32_t[]){2, 0, 1}, true),
                     bad);

    /* Concat: lengths that do not add up, a bad axis, a missing or short buffer. */
    struct clt__buf two[2] = {ba, bb};
    assert_int_equal(clt__concat_forward(dev, 2, two, (int64_t[]){1, 2}, ba, 3, shape, 0), CLT_OK);
    assert_int_equal(clt__concat_forward(dev, 2, two, (int64_t[]){1, 1}, ba, 3, shape, 0), bad);
    assert_int_equal(clt__concat_forward(dev, 2, two, (int64_t[]){-1, 4}, ba, 3, shape, 0), bad);
    assert_int_equal(clt__concat_forward(dev, 2, two, (int64_t[]){1, 2}, ba, 3, shape, 3), bad);
    assert_int_equal(clt__concat_forward(dev, 0, two, (int64_t[]){3}, ba, 3, shape, 0), bad);
    assert_int_equal(clt__concat_forward(dev, 2, two, (int64_t[]){1, 2}, tail, 3, shape, 0), bad);
    assert_int_equal(clt__concat_forward(dev, 2, (struct clt__buf[]){ba, none}, (int64_t[]){1, 2},
                                         ba, 3, shape, 0),
                     bad);

    /* Slice: out of range, bad axis, missing or short buffers, negative sizes. */
    assert_int_equal(clt__slice_forward(dev, ba, bb, 3, shape, 1, 1, 3), CLT_OK);
    assert_int_equal(clt__slice_forward(dev, ba, bb, 3, shape, 1, 2, 3), bad);
    assert_int_equal(clt__slice_forward(dev, ba, bb, 3, shape, 1, -1, 2), bad);
    assert_int_equal(clt__slice_forward(dev, ba, bb, 3, shape, 3, 0, 1), bad);
    assert_int_equal(clt__slice_forward(dev, tail, bb, 3, shape, 1, 1, 3), bad);
    assert_int_equal(clt__slice_backward(dev, bb, none, 3, shape, 1, 1, 3, false), bad);
    assert_int_equal(clt__slice_backward(dev, bb, ba, 3, (int64_t[]){3, -4, 5}, 1, 1, 3, false),
                     bad);
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    assert_non_null(strstr(text.text, "permutation"));
    assert_non_null(strstr(text.text, "do not add up"));
    assert_non_null(strstr(text.text, "does not fit its buffer"));
    dev->log = keep;
    pool_free(&p);
}
