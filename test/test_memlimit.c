/*
 * test_memlimit.c: a model larger than the device's memory, though each of its buffers fits
 * one allocation, fails at trainer creation with the sizes needed and available. meson runs
 * it on PoCL with POCL_MEMORY_LIMIT=1 (1 GiB of memory, 256 MiB per allocation).
 */
#include <string.h>

#include "harness.h"

static void too_large_for_the_device(void **state)
{
    (void)state;
    struct clt_device *dev = clt_test_open();
    const struct clt_device_info *info = clt_device_info(dev);
    if (info->global_mem_bytes > ((uint64_t)1 << 30))
        fail_msg("run with POCL_MEMORY_LIMIT=1: the device has %llu bytes",
                 (unsigned long long)info->global_mem_bytes);
    /* 8000 x 8192 weights: 250 MiB each for parameters, gradients and Adam's two moments;
     * a batch of 3000 adds about 190 MiB of inputs and 190 MiB of activations. */
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){3000, 8000});
    struct clt_tensor *loss = clt_sum(g, clt_linear(g, x, 8192, false, "big"));
    assert_int_equal(clt_graph_status(g), CLT_OK);
    struct clt_test_log text = {0};
    dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_WARN};
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, g, loss, &o, &tr), CLT_ERR_DEVICE_MEMORY);
    assert_null(tr);
    print_message("%s", text.text);
    assert_non_null(strstr(text.text, "needs"));
    assert_non_null(strstr(text.text, "the device has 1024.0 MiB"));
    clt_graph_free(g);
    clt_device_close(dev);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(too_large_for_the_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
