/*
 * test_arena.c: arenas and views: alignment, running out, reset, bad shapes, and copies in
 * both directions, blocking and with events.
 */
#include <string.h>

#include "harness.h"

static void views_are_aligned_and_disjoint(void **state)
{
    struct clt_device *dev = *state;
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, 1 << 16, &arena), CLT_OK);
    uint64_t align = clt_device_info(dev)->mem_base_align_bytes;
    struct clt_view a, b;
    assert_int_equal(clt_arena_alloc(arena, CLT_F32, 2, (int64_t[]){3, 5}, &a), CLT_OK);
    assert_int_equal(clt_arena_alloc(arena, CLT_I32, 1, (int64_t[]){7}, &b), CLT_OK);
    assert_int_equal(a.offset % align, 0);
    assert_int_equal(b.offset % align, 0);
    assert_true(b.offset >= a.offset + 60);
    assert_int_equal(clt_view_count(&a), 15);
    assert_int_equal(clt_view_bytes(&b), 28);
    assert_int_equal(clt_arena_used(arena), b.offset + 28);
    assert_int_equal(clt_arena_size(arena), 1 << 16);
    clt_arena_reset(arena);
    assert_int_equal(clt_arena_used(arena), 0);
    clt_arena_free(arena);
    clt_arena_free(NULL);
}

static void full_arena_and_bad_shapes(void **state)
{
    struct clt_device *dev = *state;
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, 1024, &arena), CLT_OK);
    struct clt_view v;
    memset(&v, 0x5a, sizeof v);
    struct clt_view before = v;
    assert_int_equal(clt_arena_alloc(arena, CLT_F32, 1, (int64_t[]){257}, &v),
                     CLT_ERR_DEVICE_MEMORY);
    assert_memory_equal(&v, &before, sizeof v);
    assert_int_equal(clt_arena_alloc(arena, CLT_F32, 1, (int64_t[]){256}, &v), CLT_OK);
    assert_int_equal(clt_arena_alloc(arena, CLT_F32, 1, (int64_t[]){1}, &v), CLT_ERR_DEVICE_MEMORY);
    assert_int_equal(clt_arena_alloc(arena, CLT_F32, 1, (int64_t[]){0}, &v),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_arena_alloc(arena, CLT_F32, 1, (int64_t[]){-3}, &v),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_arena_alloc(arena, CLT_F32, 0, (int64_t[]){1}, &v),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        clt_arena_alloc(arena, CLT_F32, CLT_MAX_DIMS + 1, (int64_t[]){1, 1, 1, 1, 1, 1, 1}, &v),
        CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_arena_alloc(arena, CLT_F32, 3, (int64_t[]){INT64_MAX / 2, 4, 4}, &v),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_arena_alloc(arena, (enum clt_dtype)9, 1, (int64_t[]){1}, &v),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_arena_alloc(NULL, CLT_F32, 1, (int64_t[]){1}, &v),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_arena_alloc(arena, CLT_F32, 1, NULL, &v), CLT_ERR_INVALID_ARGUMENT);
    clt_arena_free(arena);
}

static void arena_larger_than_device(void **state)
{
    struct clt_device *dev = *state;
    struct clt_arena *arena = NULL;
    uint64_t too_big = clt_device_info(dev)->max_alloc_bytes + 1;
    assert_int_equal(clt_arena_create(dev, too_big, &arena), CLT_ERR_DEVICE_MEMORY);
    assert_null(arena);
    assert_int_equal(clt_arena_create(dev, 0, &arena), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_arena_create(NULL, 64, &arena), CLT_ERR_INVALID_ARGUMENT);
}

static void copies_round_trip(void **state)
{
    struct clt_device *dev = *state;
    struct clt_arena *arena;
    assert_int_equal(clt_arena_create(dev, 1 << 16, &arena), CLT_OK);
    enum { N = 1001 };
    float src[N], dst[N];
    clt_test_fill(src, N, 1, -1.0f, 1.0f);
    struct clt_view pad = clt_test_upload(arena, NULL, 3);
    (void)pad;
    struct clt_view v = clt_test_upload(arena, src, N);
    memset(dst, 0, sizeof dst);
    clt_test_download(&v, dst, N);
    assert_memory_equal(src, dst, sizeof src);

    /* Asynchronous: write, read, then wait on the read's event only (the queue is in order). */
    float src2[N], dst2[N];
    clt_test_fill(src2, N, 2, -1.0f, 1.0f);
    struct clt_event *w = NULL, *r = NULL;
    assert_int_equal(clt_view_write(&v, src2, sizeof src2, &w), CLT_OK);
    assert_int_equal(clt_view_read(&v, dst2, sizeof dst2, &r), CLT_OK);
    assert_int_equal(clt_event_wait(r), CLT_OK);
    assert_int_equal(clt_event_wait(w), CLT_OK);
    assert_memory_equal(src2, dst2, sizeof src2);
    clt_event_free(w);
    clt_event_free(r);
    clt_event_free(NULL);
    assert_int_equal(clt_event_wait(NULL), CLT_ERR_INVALID_ARGUMENT);

    /* Partial copies and copies that do not fit. */
    assert_int_equal(clt_view_read(&v, dst, 4, NULL), CLT_OK);
    assert_int_equal(clt_view_write(&v, src, sizeof src + 4, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_view_read(&v, dst, 0, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_view_read(&v, NULL, 4, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_view_write(NULL, src, 4, NULL), CLT_ERR_INVALID_ARGUMENT);
    clt_arena_free(arena);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(views_are_aligned_and_disjoint),
        CLT_DEVICE_TEST(full_arena_and_bad_shapes),
        CLT_DEVICE_TEST(arena_larger_than_device),
        CLT_DEVICE_TEST(copies_round_trip),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
