/*
 * test_profile.c: the kernel profile of a trainer's steps (engine/profile.c) on a small MLP
 * (x [37, 20] -> linear 24 -> relu -> linear 5 -> cross-entropy, AdamW), on a device opened
 * with profiling on.
 *
 * - With fusion on and off (CLTRAIN_FUSE=0), after 4 profiled steps the profile lists a GEMM
 *   (untuned, CLTRAIN_TUNE=0: the host BLAS's native kernel on PoCL, CLBlast's elsewhere),
 *   the loss's and the optimizer's kernels, and bias and activation kernels (unfused) or the
 *   fused chain's kernels (fused); the op table lists the linear layers, the activation, the
 *   loss and the optimizer.
 * - Every kernel is launched the same number of times each step; the launches per step of
 *   kernels launched through clt__launch_kernel equal the recorded step's non-empty launches
 *   (when recording is on); the op table counts every launch once.
 * - The summed kernel time is positive and at most the steps' summed compute span, where the
 *   device's timestamps are usable (PoCL's are; a driver whose are all zero, rusticl 22.x,
 *   gets the count checks only, and the test says so).
 * - Without a profile no event is asked for (dev->prof stays NULL through a step); a profile
 *   turned off and on again starts from zero; a device opened without profiling refuses one.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "trainer.h"

enum { N = 37, IN = 20, HID = 24, CLS = 5, STEPS = 4 };

struct net {
    struct clt_graph *g;
    struct clt_tensor *loss;
    struct clt_trainer *tr;
    float x[N * IN];
    int32_t y[N];
};

static void make_net(struct clt_device *dev, struct net *m)
{
    assert_int_equal(clt_graph_create(&m->g), CLT_OK);
    struct clt_tensor *x = clt_input(m->g, "x", CLT_F32, 2, (int64_t[]){N, IN});
    struct clt_tensor *y = clt_input(m->g, "y", CLT_I32, 1, (int64_t[]){N});
    struct clt_tensor *h = clt_relu(m->g, clt_linear(m->g, x, HID, true, "fc1"));
    m->loss = clt_cross_entropy(m->g, clt_linear(m->g, h, CLS, true, "fc2"), y, -1, 0.0f);
    assert_int_equal(clt_graph_status(m->g), CLT_OK);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAMW);
    assert_int_equal(clt_trainer_create(dev, m->g, m->loss, &o, &m->tr), CLT_OK);
    clt_test_fill(m->x, N * IN, 7, -1.0f, 1.0f);
    for (int i = 0; i < N; i++)
        m->y[i] = (i * 3) % CLS;
}

static void free_net(struct net *m)
{
    clt_trainer_free(m->tr);
    clt_graph_free(m->g);
}

static void steps(struct net *m, int n)
{
    const void *in[2] = {m->x, m->y};
    for (int i = 0; i < n; i++) {
        assert_int_equal(clt_trainer_step(m->tr, in), CLT_OK);
        assert_null(m->tr->dev->prof);
    }
    float loss;
    assert_int_equal(clt_trainer_loss(m->tr, &loss), CLT_OK);
}

static const struct clt__prof_entry *find(const struct clt__prof_entry *e, size_t n,
                                          const char *prefix)
{
    for (size_t i = 0; i < n; i++)
        if (strncmp(e[i].name, prefix, strlen(prefix)) == 0)
            return &e[i];
    return NULL;
}

static bool is_call(const char *name)
{
    return strcmp(name, "host_sgemm") == 0 || strncmp(name, "clblast_", 8) == 0;
}

static struct clt_device *open_profiling(bool profiling)
{
    struct clt_device_options o;
    clt_device_options_init(&o);
    char dir[] = "/tmp/cltrain-test-cache-XXXXXX";
    if (clt_test_temp_dir(dir))
        o.cache_dir = dir;
    o.profiling = profiling;
    struct clt_device *dev = NULL;
    assert_int_equal(clt_device_open(getenv("CLTRAIN_DEVICE"), &o, &dev), CLT_OK);
    return dev;
}

static void check_profile(bool fused)
{
    if (!fused)
        setenv("CLTRAIN_FUSE", "0", 1);
    struct clt_device *dev = open_profiling(true);
    struct net m;
    make_net(dev, &m);
    steps(&m, 1); /* unprofiled: the recording is made here */
    assert_int_equal(clt__trainer_profile(m.tr, true), CLT_OK);
    steps(&m, STEPS);
    struct clt__prof_report r;
    assert_int_equal(clt__prof_read(m.tr->kprof, &r), CLT_OK);
    assert_int_equal(r.steps, STEPS);
    assert_int_equal(r.lost, 0);

    /* The kernels expected. */
    bool gemm = false;
    for (size_t i = 0; i < r.nkernels; i++) {
        gemm |= strstr(r.kernels[i].name, "gemm") != NULL;
        print_message("  %-32s %4llu calls %10.3f ms\n", r.kernels[i].name,
                      (unsigned long long)r.kernels[i].count, (double)r.kernels[i].ns * 1e-6);
    }
    assert_true(gemm);
    assert_non_null(find(r.kernels, r.nkernels, "cross_entropy"));
    assert_non_null(find(r.kernels, r.nkernels, "optim_adam_update"));
    if (fused) {
        assert_non_null(find(r.kernels, r.nkernels, "fused_forward"));
        assert_non_null(find(r.kernels, r.nkernels, "fused_backward"));
    } else {
        assert_non_null(find(r.kernels, r.nkernels, "bias_forward"));
        assert_non_null(find(r.kernels, r.nkernels, "sum_axis"));
        assert_non_null(find(r.kernels, r.nkernels, "activation_relu_forward"));
        assert_non_null(find(r.kernels, r.nkernels, "activation_relu_backward"));
    }
    assert_non_null(find(r.ops, r.nops, "linear.forward"));
    assert_non_null(find(r.ops, r.nops, "cross_entropy.forward"));
    assert_non_null(find(r.ops, r.nops, "optimizer.update"));
    assert_non_null(find(r.ops, r.nops, fused ? "activation.fused_forward" : "activation.forward"));

    /* Counts: the same each step, the recorded launches, every launch in one op. */
    uint64_t launched = 0, all = 0, by_op = 0, ns = 0;
    for (size_t i = 0; i < r.nkernels; i++) {
        assert_int_equal(r.kernels[i].count % STEPS, 0);
        all += r.kernels[i].count;
        launched += is_call(r.kernels[i].name) ? 0 : r.kernels[i].count;
        ns += r.kernels[i].ns;
    }
    for (size_t i = 0; i < r.nops; i++) {
        assert_int_equal(r.ops[i].count % STEPS, 0);
        by_op += r.ops[i].count;
    }
    assert_int_equal(by_op, all);
    if (m.tr->rec[3]) {
        print_message("  %llu launches per step, %u recorded\n",
                      (unsigned long long)(launched / STEPS),
                      (unsigned)clt__rec_launches(m.tr->rec[3]));
        assert_int_equal(launched / STEPS, clt__rec_launches(m.tr->rec[3]));
    }

    /* Times: within the steps' spans. */
    print_message("  kernels %.3f ms, span %.3f ms over %d steps\n", (double)ns * 1e-6,
                  (double)r.span_ns * 1e-6, STEPS);
    bool pocl = strstr(clt_device_info(dev)->platform, "Portable Computing") != NULL;
    if (r.span_ns == 0 && !pocl) {
        print_message("  this device's profiling timestamps are zero: times not checked\n");
    } else {
        assert_true(ns > 0);
        assert_true(ns <= r.span_ns);
    }
    clt__prof_report_free(&r);

    /* Off, then on again: a fresh profile; unprofiled steps keep nothing. */
    assert_int_equal(clt__trainer_profile(m.tr, false), CLT_OK);
    assert_null(m.tr->kprof);
    steps(&m, 2);
    assert_int_equal(clt__trainer_profile(m.tr, true), CLT_OK);
    assert_int_equal(clt__prof_read(m.tr->kprof, &r), CLT_OK);
    assert_int_equal(r.steps, 0);
    assert_int_equal(r.nkernels, 0);
    clt__prof_report_free(&r);
    steps(&m, 1);
    assert_int_equal(clt__prof_read(m.tr->kprof, &r), CLT_OK);
    assert_int_equal(r.steps, 1);
    assert_int_equal(r.lost, 0);
    clt__prof_report_free(&r);

    free_net(&m);
    clt_device_close(dev);
    unsetenv("CLTRAIN_FUSE");
}

static void test_profile_fused(void **state)
{
    (void)state;
    const char *fuse = getenv("CLTRAIN_FUSE");
    if (fuse && strcmp(fuse, "0") == 0)
        skip();
    check_profile(true);
}

static void test_profile_unfused(void **state)
{
    (void)state;
    check_profile(false);
}

/* A device without profiling refuses a profile; its steps ask for no event. */
static void test_profile_off(void **state)
{
    (void)state;
    struct clt_device *dev = open_profiling(false);
    struct net m;
    make_net(dev, &m);
    assert_int_equal(clt__trainer_profile(m.tr, true), CLT_ERR_UNSUPPORTED);
    assert_null(m.tr->kprof);
    steps(&m, 2);
    free_net(&m);
    clt_device_close(dev);
}

int main(void)
{
    clt_test_require_device();
    /* No GEMM tuning (each device here has a fresh cache): the default GEMM, the host BLAS's
     * native kernel where there is one, CLBlast elsewhere. */
    setenv("CLTRAIN_TUNE", "0", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile_fused),
        cmocka_unit_test(test_profile_unfused),
        cmocka_unit_test(test_profile_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
