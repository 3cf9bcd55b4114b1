/*
 * test_record.c: recorded launches (engine/record.c) on their own, outside a trainer.
 *
 * A "step" here is two launches between clt__rec_begin and clt__rec_end: fill_forward by id
 * (CLT__RUN) and scale_forward as a kernel object without an id (clt__enqueue_kernel), the
 * path of kernels generated at run time. Checked exactly (the values are small integers and
 * their products):
 * - the first step records, later ones replay and see every changed argument (a scalar, a
 *   buffer offset, a work size that stays the same while the value changes);
 * - a step that launches something else (copy_forward instead of scale_forward) still runs
 *   right, on the plain path, and the next step records again, then replays;
 * - a step with fewer launches than recorded is right and is recorded again;
 * - a step that differs every 4th time is recorded again each time; steps that differ every
 *   time make the recording give up after 8 (and stay right);
 * - an odd item count (not a multiple of any work-group size).
 */
#include <string.h>

#include "harness.h"

enum { N = 37 };

struct fx {
    struct clt_device *dev;
    cl_mem a, b; /* [2 N] floats each */
    cl_kernel scale;
    struct clt__rec *rec;
};

static void setup(struct fx *f, struct clt_device *dev)
{
    f->dev = dev;
    cl_int err;
    f->a = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, 2 * N * sizeof(float), NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    f->b = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, 2 * N * sizeof(float), NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    size_t wg;
    assert_int_equal(clt__kernel_get(dev, "elementwise", "scale_forward", &f->scale, &wg), CLT_OK);
    assert_int_equal(clt__rec_create(dev, &f->rec), CLT_OK);
}

static void teardown(struct fx *f)
{
    clt__rec_free(f->rec);
    clReleaseMemObject(f->a);
    clReleaseMemObject(f->b);
}

/* a[off..off+N) = value; b[off..off+N) = alpha * a[off..), or a copy when copy is set;
 * scale false: the second launch is left out. */
static void step(struct fx *f, float value, float alpha, int off, bool copy, bool scale)
{
    struct clt__buf a = {f->a, (size_t)off}, b = {f->b, (size_t)off};
    clt__rec_begin(f->dev, f->rec);
    enum clt_status st =
        CLT__RUN(f->dev, CLT__K_fill_forward, N, CLT__I32(N), CLT__F32(value), CLT__BUF(a));
    if (st == CLT_OK && copy)
        st = CLT__RUN(f->dev, CLT__K_copy_forward, N, CLT__I32(N), CLT__BUF(a), CLT__BUF(b));
    else if (st == CLT_OK && scale)
        st =
            clt__enqueue_kernel(f->dev, f->scale, "scale_forward", N, 0,
                                CLT__KARGS(CLT__I32(N), CLT__F32(alpha), CLT__BUF(a), CLT__BUF(b)));
    clt__rec_end(f->dev, st == CLT_OK);
    assert_int_equal(st, CLT_OK);
    assert_null(f->dev->rec);
}

static void expect(struct fx *f, int off, float want_a, float want_b)
{
    float a[N], b[N];
    assert_int_equal(clEnqueueReadBuffer(f->dev->queue, f->a, CL_TRUE, (size_t)off * 4, sizeof a, a,
                                         0, NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueReadBuffer(f->dev->queue, f->b, CL_TRUE, (size_t)off * 4, sizeof b, b,
                                         0, NULL, NULL),
                     CL_SUCCESS);
    for (int i = 0; i < N; i++)
        if (a[i] != want_a || b[i] != want_b)
            fail_msg("element %d (offset %d): a %g b %g, want %g and %g", i, off, a[i], b[i],
                     want_a, want_b);
}

static void replay_sets_changed_arguments(void **state)
{
    struct fx f;
    setup(&f, *state);
    for (int s = 0; s < 5; s++) {
        int off = s % 2 == 0 ? 0 : N;
        step(&f, (float)(s + 1), (float)(2 * s + 3), off, false, true);
        expect(&f, off, (float)(s + 1), (float)((s + 1) * (2 * s + 3)));
    }
    assert_int_equal(clt__rec_recordings(f.rec), 1);
    teardown(&f);
}

static void other_launches_fall_back_and_record_again(void **state)
{
    struct fx f;
    setup(&f, *state);
    step(&f, 2.0f, 3.0f, 0, false, true);
    assert_int_equal(clt__rec_recordings(f.rec), 1);
    /* copy_forward where scale_forward was recorded: plain path, then recorded anew. */
    step(&f, 4.0f, 3.0f, 0, true, false);
    expect(&f, 0, 4.0f, 4.0f);
    assert_int_equal(clt__rec_recordings(f.rec), 1);
    step(&f, 5.0f, 3.0f, N, true, false);
    expect(&f, N, 5.0f, 5.0f);
    assert_int_equal(clt__rec_recordings(f.rec), 2);
    step(&f, 6.0f, 3.0f, 0, true, false);
    expect(&f, 0, 6.0f, 6.0f);
    assert_int_equal(clt__rec_recordings(f.rec), 2);
    /* Fewer launches than recorded: right, and recorded again by the next step. */
    step(&f, 7.0f, 3.0f, 0, false, false);
    expect(&f, 0, 7.0f, 6.0f);
    step(&f, 8.0f, 3.0f, 0, false, false);
    expect(&f, 0, 8.0f, 6.0f);
    assert_int_equal(clt__rec_recordings(f.rec), 3);
    teardown(&f);
}

static void alternating_steps_give_up_occasional_ones_do_not(void **state)
{
    struct fx f;
    setup(&f, *state);
    struct clt_log saved = f.dev->log;
    static struct clt_test_log text;
    text.len = 0;
    text.text[0] = 0;
    f.dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_WARN};
    /* A different step every 4th: recorded again each time, never given up. */
    for (int s = 0; s < 40; s++) {
        bool copy = s % 4 == 3;
        step(&f, (float)s, 2.0f, 0, copy, true);
        expect(&f, 0, (float)s, copy ? (float)s : 2.0f * (float)s);
    }
    uint32_t occasional = clt__rec_recordings(f.rec);
    assert_true(occasional >= 10);
    /* Every step differs from the last: the recording gives up after 8, and the steps stay
     * right. */
    for (int s = 0; s < 30; s++) {
        bool copy = s % 2 == 1;
        step(&f, (float)s, 3.0f, 0, copy, true);
        expect(&f, 0, (float)s, copy ? (float)s : 3.0f * (float)s);
    }
    uint32_t after = clt__rec_recordings(f.rec);
    if (after - occasional > 9)
        fail_msg("recorded %u times in 30 alternating steps", after - occasional);
    f.dev->log = saved;
    assert_non_null(strstr(text.text, "run unrecorded from now on"));
    teardown(&f);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(replay_sets_changed_arguments),
        CLT_DEVICE_TEST(other_launches_fall_back_and_record_again),
        CLT_DEVICE_TEST(alternating_steps_give_up_occasional_ones_do_not),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
