/*
 * test_allreduce.c: the hook of a sum across processes (clt_trainer_set_allreduce,
 * engine/parallel.c), on one device, without MPI: what `cltrain train` under mpirun relies on
 * (test/mpi_test.sh checks the MPI side).
 *
 * - The hook runs once per step that updates (every step; every 2nd with accumulate 2), with
 *   n = the trained parameters' count.
 * - What it leaves in the buffer is what the optimizer applies: a hook that doubles the sum
 *   at lr 0.1 gives, step by step, the losses of a plain trainer at lr 0.2, within LOSS_ATOL +
 *   LOSS_RTOL |loss| (doubling is exact in fp32, but 0.1 and 0.2 are not, and the two trainers
 *   take different paths through a step); a hook that zeroes it leaves the parameters
 *   unchanged, bit for bit. A hook that is not called, or not applied, fails the first.
 * - A hook that fails fails the step with its status; a trainer that is not data-parallel, or
 *   none, is refused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

enum { ROWS = 13, IN = 7, HID = 9, CLS = 3, STEPS = 6 };
#define LOSS_ATOL 1e-5
#define LOSS_RTOL 1e-5
/* The trained parameters: fc1 7x9 + 9, fc2 9x3 + 3. */
#define TRAINED (IN * HID + HID + HID * CLS + CLS)

struct model {
    struct clt_graph *g;
    struct clt_tensor *loss;
};

static void build(struct model *m)
{
    assert_int_equal(clt_graph_create(&m->g), CLT_OK);
    struct clt_tensor *x = clt_input(m->g, "x", CLT_F32, 2, (int64_t[]){ROWS, IN});
    struct clt_tensor *y = clt_input(m->g, "y", CLT_I32, 1, (int64_t[]){ROWS});
    struct clt_tensor *h = clt_relu(m->g, clt_linear(m->g, x, HID, true, "fc1"));
    m->loss = clt_cross_entropy(m->g, clt_linear(m->g, h, CLS, true, "fc2"), y, -1, 0.0f);
    assert_int_equal(clt_graph_status(m->g), CLT_OK);
}

struct hook {
    float scale;
    enum clt_status result;
    int calls;
    uint64_t n;
};

static enum clt_status hook_fn(void *user, float *sum, uint64_t n)
{
    struct hook *h = user;
    h->calls++;
    h->n = n;
    for (uint64_t e = 0; e < n; e++)
        sum[e] *= h->scale;
    return h->result;
}

/* A data-parallel trainer of one device (hook set when h), or a plain one. */
static struct clt_trainer *make(struct clt_device *dev, struct model *m, double lr,
                                uint32_t accumulate, struct hook *h)
{
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.seed = 5;
    o.optimizer.lr = lr;
    o.optimizer.momentum = 0;
    o.optimizer.accumulate = accumulate;
    struct clt_trainer *tr = NULL;
    if (h) {
        assert_int_equal(clt_trainer_create_parallel(&dev, 1, m->g, m->loss, ROWS, &o, &tr),
                         CLT_OK);
        assert_int_equal(clt_trainer_set_allreduce(tr, hook_fn, h), CLT_OK);
    } else {
        assert_int_equal(clt_trainer_create(dev, m->g, m->loss, &o, &tr), CLT_OK);
    }
    return tr;
}

static enum clt_status step(struct clt_trainer *tr, int s, float *loss)
{
    float xv[ROWS * IN];
    int32_t yv[ROWS];
    clt_test_fill(xv, ROWS * IN, 40 + (uint64_t)s, -1.0f, 1.0f);
    for (int i = 0; i < ROWS; i++)
        yv[i] = (int32_t)((xv[i * IN] > 0) + (xv[i * IN + 1] > 0.3f));
    const void *batch[2] = {xv, yv};
    enum clt_status st = clt_trainer_step(tr, batch);
    if (st == CLT_OK && loss)
        st = clt_trainer_loss(tr, loss);
    return st;
}

static void hook_is_applied(void **state)
{
    struct clt_device *dev = *state;
    struct model m;
    build(&m);
    struct hook h = {2.0f, CLT_OK, 0, 0};
    struct clt_trainer *hooked = make(dev, &m, 0.1, 1, &h);
    struct clt_trainer *plain = make(dev, &m, 0.2, 1, NULL);
    for (int s = 0; s < STEPS; s++) {
        float a = 0, b = 0;
        assert_int_equal(step(hooked, s, &a), CLT_OK);
        assert_int_equal(step(plain, s, &b), CLT_OK);
        if (!(fabsf(a - b) <= LOSS_ATOL + LOSS_RTOL * fabsf(b)))
            fail_msg("step %d: loss %.9g with the doubling hook at lr 0.1, %.9g at lr 0.2", s, a,
                     b);
    }
    assert_int_equal(h.calls, STEPS);
    assert_int_equal(h.n, TRAINED);
    clt_trainer_free(hooked);
    clt_trainer_free(plain);

    /* Accumulating 2 steps: the hook runs on the second. */
    struct hook acc = {1.0f, CLT_OK, 0, 0};
    struct clt_trainer *tr = make(dev, &m, 0.1, 2, &acc);
    for (int s = 0; s < 4; s++)
        assert_int_equal(step(tr, s, NULL), CLT_OK);
    assert_int_equal(acc.calls, 2);
    clt_trainer_free(tr);
    clt_graph_free(m.g);
}

static void zero_sum_keeps_parameters(void **state)
{
    struct clt_device *dev = *state;
    struct model m;
    build(&m);
    struct hook h = {0.0f, CLT_OK, 0, 0};
    struct clt_trainer *tr = make(dev, &m, 0.5, 1, &h);
    float before[IN * HID], after[IN * HID];
    assert_int_equal(clt_trainer_param_read(tr, "fc1.weight", before, IN * HID), CLT_OK);
    for (int s = 0; s < 3; s++)
        assert_int_equal(step(tr, s, NULL), CLT_OK);
    assert_int_equal(clt_trainer_param_read(tr, "fc1.weight", after, IN * HID), CLT_OK);
    assert_memory_equal(before, after, sizeof before);
    assert_int_equal(h.calls, 3);
    clt_trainer_free(tr);
    clt_graph_free(m.g);
}

static void errors(void **state)
{
    struct clt_device *dev = *state;
    struct model m;
    build(&m);
    struct hook h = {1.0f, CLT_ERR_IO, 0, 0};
    struct clt_trainer *tr = make(dev, &m, 0.1, 1, &h);
    assert_int_equal(step(tr, 0, NULL), CLT_ERR_IO);
    assert_int_equal(h.calls, 1);
    clt_trainer_free(tr);
    struct clt_trainer *plain = make(dev, &m, 0.1, 1, NULL);
    assert_int_equal(clt_trainer_set_allreduce(plain, hook_fn, &h), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_trainer_set_allreduce(NULL, hook_fn, &h), CLT_ERR_INVALID_ARGUMENT);
    clt_trainer_free(plain);
    clt_graph_free(m.g);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(hook_is_applied),
        CLT_DEVICE_TEST(zero_sum_keeps_parameters),
        CLT_DEVICE_TEST(errors),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
