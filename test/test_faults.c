/*
 * test_faults.c: injected OpenCL failures (test/faultcl.c, preloaded by meson) at every
 * point of a trainer's life: device opening, allocation at creation and at first use, program
 * builds, enqueues inside a step, waits. Each must return a status, leak no OpenCL object,
 * and leave the device usable; a step that failed leaves the trainer usable.
 *
 * Without the wrapper (faultcl_arm not found) the test skips: it cannot inject anything.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#include <clblast_c.h>

static void (*arm)(const char *, long, cl_int);
static bool (*fired)(void);
static long (*live)(const char *);

static const char *kinds[] = {"mem", "program", "kernel", "event", "queue", "context"};
#define NKINDS (sizeof kinds / sizeof kinds[0])

/* CLBlast keeps the programs it compiles in a process-wide cache; emptying it before each
 * count leaves only the engine's own objects. */
static void snapshot(long *out)
{
    CLBlastClearCache();
    for (size_t k = 0; k < NKINDS; k++)
        out[k] = live(kinds[k]);
}

/* An injected failure must surface as a status, unless it hit a CLBlast GEMM that then fell
 * back to the engine's own kernel for good (the AUTO backend's documented behaviour). */
static void assert_failed_or_fell_back(struct clt_device *dev, enum clt_status st,
                                       enum clt_gemm_backend before, const char *what)
{
    if (st == CLT_OK &&
        !(before == CLT_GEMM_CLBLAST && clt_device_gemm_backend(dev) == CLT_GEMM_OWN))
        fail_msg("%s: the failure was neither reported nor absorbed by the GEMM fallback", what);
}

static void assert_no_leak(const long *base, const char *what)
{
    CLBlastClearCache();
    for (size_t k = 0; k < NKINDS; k++)
        if (live(kinds[k]) != base[k])
            fail_msg("%s: %ld %s objects alive, %ld before", what, live(kinds[k]), kinds[k],
                     base[k]);
}

/* A small MLP and its batch. */
struct model {
    struct clt_graph *g;
    struct clt_tensor *loss;
    float x[8 * 5];
    int32_t y[8];
};

static void make_model(struct model *m)
{
    assert_int_equal(clt_graph_create(&m->g), CLT_OK);
    struct clt_tensor *x = clt_input(m->g, "x", CLT_F32, 2, (int64_t[]){8, 5});
    struct clt_tensor *y = clt_input(m->g, "y", CLT_I32, 1, (int64_t[]){8});
    struct clt_tensor *h = clt_relu(m->g, clt_linear(m->g, x, 6, true, "fc1"));
    m->loss = clt_cross_entropy(m->g, clt_linear(m->g, h, 3, true, "fc2"), y, -1, 0.0f);
    assert_int_equal(clt_graph_status(m->g), CLT_OK);
    clt_test_fill(m->x, 40, 1, -1.0f, 1.0f);
    for (int i = 0; i < 8; i++)
        m->y[i] = i % 3;
}

/* Creates a trainer, runs two steps, reads the loss: must all work. */
static void train_ok(struct clt_device *dev, struct model *m)
{
    /* Tuned ahead (the explicit budget, as `cltrain tune`): the model's GEMM shapes are all
     * timed here, so that a later creation times no candidate. A failure injected into a
     * candidate's timing is skipped by design (test_tune), and would not surface; creation's
     * own budget (10 s) may stop short of the last shapes on a loaded machine. */
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.tune_ahead = true;
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, m->g, m->loss, &o, &tr), CLT_OK);
    const void *batch[2] = {m->x, m->y};
    float loss;
    for (int i = 0; i < 2; i++)
        assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    assert_int_equal(clt_trainer_loss(tr, &loss), CLT_OK);
    assert_true(isfinite(loss));
    clt_trainer_free(tr);
}

/* The injected failures are expected: their messages are dropped. */
static void discard(void *user, enum clt_log_level level, const char *message)
{
    (void)user;
    (void)level;
    (void)message;
}

static struct clt_log quiet = {discard, NULL, CLT_LOG_ERROR};

static struct clt_device *open_quiet(int cache)
{
    struct clt_device_options o;
    clt_device_options_init(&o);
    o.log = quiet;
    o.cache = cache;
    o.binaries = cache; /* the binary cache's paths on every driver, PoCL's too */
    char dir[] = "/tmp/cltrain-faults-XXXXXX";
    if (cache && clt_test_temp_dir(dir))
        o.cache_dir = dir;
    struct clt_device *dev = NULL;
    assert_int_equal(clt_device_open(getenv("CLTRAIN_DEVICE"), &o, &dev), CLT_OK);
    return dev;
}

/* Failures while opening a device: context and queues. */
static void device_open_failures(void **state)
{
    (void)state;
    long base[NKINDS];
    snapshot(base);
    const char *calls[] = {"clCreateContext", "clCreateCommandQueue", "clCreateCommandQueue"};
    long nth[] = {1, 1, 2};
    for (size_t i = 0; i < 3; i++) {
        struct clt_device_options o;
        clt_device_options_init(&o);
        o.log = quiet;
        struct clt_device *dev = NULL;
        arm(calls[i], nth[i], CL_OUT_OF_HOST_MEMORY);
        enum clt_status st = clt_device_open(getenv("CLTRAIN_DEVICE"), &o, &dev);
        assert_true(fired());
        arm("", 0, 0);
        assert_int_not_equal(st, CLT_OK);
        assert_null(dev);
        assert_no_leak(base, calls[i]);
    }
}

/* Every allocation and every enqueue of trainer creation, failed in turn. */
static void creation_failures(void **state)
{
    (void)state;
    struct clt_device *dev = open_quiet(0);
    struct model m;
    make_model(&m);
    train_ok(dev, &m); /* builds and keeps the device's programs */
    long base[NKINDS];
    snapshot(base);
    struct {
        const char *call;
        cl_int error;
        enum clt_status want;
    } cases[] = {
        {"clCreateBuffer", CL_MEM_OBJECT_ALLOCATION_FAILURE, CLT_ERR_DEVICE_MEMORY},
        {"clEnqueueWriteBuffer", CL_MEM_OBJECT_ALLOCATION_FAILURE, CLT_ERR_DEVICE_MEMORY},
        {"clEnqueueFillBuffer", CL_MEM_OBJECT_ALLOCATION_FAILURE, CLT_ERR_DEVICE_MEMORY},
        {"clEnqueueNDRangeKernel", CL_OUT_OF_RESOURCES, CLT_ERR_OPENCL},
        {"clFinish", CL_OUT_OF_RESOURCES, CLT_ERR_OPENCL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int failures = 0;
        for (long nth = 1; nth < 200; nth++) {
            struct clt_trainer *tr = NULL;
            enum clt_gemm_backend before = clt_device_gemm_backend(dev);
            arm(cases[c].call, nth, cases[c].error);
            enum clt_status st = clt_trainer_create(dev, m.g, m.loss, NULL, &tr);
            bool hit = fired();
            arm("", 0, 0);
            char what[64];
            snprintf(what, sizeof what, "%s #%ld", cases[c].call, nth);
            if (!hit) {
                assert_int_equal(st, CLT_OK);
                clt_trainer_free(tr);
                break; /* every call of this kind has been failed once */
            }
            failures++;
            assert_failed_or_fell_back(dev, st, before, what);
            if (st == CLT_OK) {
                /* The fallback built the own GEMM's program: a new baseline. */
                clt_trainer_free(tr);
                snapshot(base);
                continue;
            }
            assert_null(tr);
            if (st != cases[c].want && st != CLT_ERR_GEMM && st != CLT_ERR_OPENCL)
                fail_msg("%s failed with %s", what, clt_status_str(st));
            assert_no_leak(base, what);
        }
        assert_true(failures > 0);
    }
    train_ok(dev, &m);
    clt_graph_free(m.g);
    clt_device_close(dev);
}

/* A build failure: without the cache the trainer fails; with a cached binary the driver's
 * refusal of the binary is absorbed by a rebuild from source. */
static void build_failures(void **state)
{
    (void)state;
    struct model m;
    make_model(&m);
    long base[NKINDS];
    snapshot(base);
    struct clt_device *dev = open_quiet(0);
    struct clt_trainer *tr = NULL;
    arm("clBuildProgram", 1, CL_BUILD_PROGRAM_FAILURE);
    assert_int_equal(clt_trainer_create(dev, m.g, m.loss, NULL, &tr), CLT_ERR_BUILD);
    assert_true(fired());
    arm("", 0, 0);
    assert_null(tr);
    train_ok(dev, &m); /* the failure was not remembered */
    clt_device_close(dev);
    assert_no_leak(base, "build failure without cache");

    /* Fill a cache, then fail the first binary load of a fresh device. */
    dev = open_quiet(1);
    train_ok(dev, &m);
    struct clt_device_options o;
    clt_device_options_init(&o);
    o.log = quiet;
    o.cache_dir = dev->cache_dir;
    o.binaries = 1;
    struct clt_device *again = NULL;
    assert_int_equal(clt_device_open(getenv("CLTRAIN_DEVICE"), &o, &again), CLT_OK);
    arm("clBuildProgram", 1, CL_INVALID_BINARY);
    train_ok(again, &m);
    assert_true(fired());
    arm("", 0, 0);
    clt_device_close(again);
    clt_device_close(dev);
    clt_graph_free(m.g);
    assert_no_leak(base, "build failure with cache");
}

/* Each enqueue of a training step failed in turn: the step reports it, and the next steps
 * train normally. */
static void step_failures(void **state)
{
    (void)state;
    struct clt_device *dev = open_quiet(0);
    struct model m;
    make_model(&m);
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, m.g, m.loss, NULL, &tr), CLT_OK);
    const void *batch[2] = {m.x, m.y};
    assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    const char *calls[] = {"clEnqueueNDRangeKernel",      "clEnqueueWriteBuffer",
                           "clEnqueueReadBuffer",         "clEnqueueBarrierWithWaitList",
                           "clEnqueueMarkerWithWaitList", "clEnqueueFillBuffer"};
    int failures = 0;
    for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
        for (long nth = 1; nth < 100; nth++) {
            enum clt_gemm_backend before = clt_device_gemm_backend(dev);
            arm(calls[c], nth, CL_OUT_OF_RESOURCES);
            enum clt_status st = clt_trainer_step(tr, batch);
            bool hit = fired();
            arm("", 0, 0);
            if (!hit) {
                assert_int_equal(st, CLT_OK);
                break;
            }
            failures++;
            assert_failed_or_fell_back(dev, st, before, calls[c]);
            /* Still usable. */
            float loss;
            assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
            assert_int_equal(clt_trainer_loss(tr, &loss), CLT_OK);
            assert_true(isfinite(loss));
        }
    }
    assert_true(failures > 10);
    /* A failed wait for the loss is reported too. */
    assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    float loss;
    arm("clWaitForEvents", 1, CL_OUT_OF_RESOURCES);
    assert_int_not_equal(clt_trainer_loss(tr, &loss), CLT_OK);
    arm("", 0, 0);
    assert_int_equal(clt_trainer_loss(tr, &loss), CLT_OK);
    clt_trainer_free(tr);
    clt_graph_free(m.g);
    clt_device_close(dev);
}

int main(void)
{
    clt_test_require_device();
    arm = (void (*)(const char *, long, cl_int))dlsym(RTLD_DEFAULT, "faultcl_arm");
    fired = (bool (*)(void))dlsym(RTLD_DEFAULT, "faultcl_fired");
    live = (long (*)(const char *))dlsym(RTLD_DEFAULT, "faultcl_live");
    if (!arm || !fired || !live) {
        fprintf(stderr, "test/faultcl.c is not preloaded: nothing to inject, skipping\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(device_open_failures),
        cmocka_unit_test(creation_failures),
        cmocka_unit_test(build_failures),
        cmocka_unit_test(step_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
