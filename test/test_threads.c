/*
 * test_threads.c: two trainers on two devices in two threads at once. meson runs it with
 * POCL_DEVICES="pthread pthread", which gives PoCL two devices. Each thread trains the same
 * MLP with the same seed on its own device; the results must equal, bit for bit, those of
 * the same training run alone beforehand (the kernels are deterministic and the devices
 * alike), which shows the threads did not disturb each other.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

enum { N = 32, IN = 10, HID = 16, CLS = 4, STEPS = 30 };

struct run {
    char selection[16];
    enum clt_status status;
    float loss;
    float weights[HID * IN];
};

static void *train(void *arg)
{
    struct run *r = arg;
    struct clt_device *dev = NULL;
    struct clt_graph *g = NULL;
    struct clt_trainer *tr = NULL;
    r->status = clt_device_open(r->selection, NULL, &dev);
    if (r->status == CLT_OK)
        r->status = clt_graph_create(&g);
    struct clt_tensor *loss = NULL;
    if (r->status == CLT_OK) {
        struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){N, IN});
        struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){N});
        struct clt_tensor *h =
            clt_dropout(g, clt_gelu(g, clt_linear(g, x, HID, true, "fc1"), true), 0.1f);
        loss = clt_cross_entropy(g, clt_linear(g, h, CLS, true, "fc2"), y, -1, 0.0f);
        r->status = clt_graph_status(g);
    }
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    o.seed = 7;
    o.optimizer.lr = 0.02;
    if (r->status == CLT_OK)
        r->status = clt_trainer_create(dev, g, loss, &o, &tr);
    float xv[N * IN];
    int32_t yv[N];
    for (int s = 0; r->status == CLT_OK && s < STEPS; s++) {
        clt_test_fill(xv, N * IN, 1000 + (uint64_t)s, -1.0f, 1.0f);
        for (int i = 0; i < N; i++)
            yv[i] = (xv[i * IN] > 0) + 2 * (xv[i * IN + 1] > 0);
        const void *batch[2] = {xv, yv};
        r->status = clt_trainer_step(tr, batch);
    }
    if (r->status == CLT_OK)
        r->status = clt_trainer_loss(tr, &r->loss);
    if (r->status == CLT_OK)
        r->status = clt_trainer_param_read(tr, "fc1.weight", r->weights, HID * IN);
    clt_trainer_free(tr);
    clt_graph_free(g);
    clt_device_close(dev);
    return NULL;
}

static void two_devices_two_threads(void **state)
{
    (void)state;
    struct clt_device_info *list = NULL;
    size_t count = 0;
    assert_int_equal(clt_devices_list(NULL, &list, &count), CLT_OK);
    /* The two PoCL devices: the first two devices of the PoCL platform. */
    struct run runs[2];
    memset(runs, 0, sizeof runs);
    int found = 0;
    for (size_t i = 0; i < count && found < 2; i++) {
        if (strstr(list[i].platform, "Portable Computing Language")) {
            snprintf(runs[found].selection, sizeof runs[found].selection, "%u:%u",
                     (unsigned)list[i].platform_index, (unsigned)list[i].device_index);
            found++;
        }
    }
    clt_devices_free(list);
    if (found < 2)
        fail_msg("two PoCL devices are needed: run with POCL_DEVICES=\"pthread pthread\"");

    struct run alone = runs[0];
    train(&alone);
    assert_int_equal(alone.status, CLT_OK);

    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, train, &runs[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(runs[i].status, CLT_OK);
        assert_memory_equal(&runs[i].loss, &alone.loss, sizeof alone.loss);
        assert_memory_equal(runs[i].weights, alone.weights, sizeof alone.weights);
    }
    assert_true(alone.loss < 1.2f); /* it did train: chance is ln 4 = 1.39 */
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_devices_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
