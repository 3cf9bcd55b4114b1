/*
 * test_device.c: enumeration, opening by selection, the capability record, and clear
 * failures: no matching device, a kernel source that does not compile, a missing source
 * directory.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static void list_has_the_device_under_test(void **state)
{
    (void)state;
    struct clt_device_info *list = NULL;
    size_t count = 0, idx = 0;
    assert_int_equal(clt_devices_list(NULL, &list, &count), CLT_OK);
    assert_true(count > 0);
    assert_int_equal(clt_device_select(list, count, getenv("CLTRAIN_DEVICE"), &idx), CLT_OK);
    for (size_t i = 0; i < count; i++) {
        assert_true(list[i].name[0] != 0);
        assert_true(list[i].platform[0] != 0);
        assert_true(list[i].max_work_group_size >= 1);
        assert_true(list[i].global_mem_bytes > 0);
        assert_true(list[i].max_alloc_bytes > 0);
        assert_true(list[i].compute_units > 0);
    }
    clt_devices_free(list);
    clt_devices_free(NULL);
    assert_int_equal(clt_devices_list(NULL, NULL, &count), CLT_ERR_INVALID_ARGUMENT);
}

static void open_reports_capabilities(void **state)
{
    struct clt_device *dev = *state;
    const struct clt_device_info *i = clt_device_info(dev);
    assert_non_null(i);
    assert_true(strlen(i->opencl_c_version) > 0);
    assert_true(i->local_mem_bytes >= 1024);
    assert_true(i->mem_base_align_bytes >= 4);
    assert_true(dev->wg_1d >= 1 && dev->wg_1d <= 256);
    assert_true(dev->wg_1d <= i->max_work_group_size);
    assert_int_equal(dev->wg_1d & (dev->wg_1d - 1), 0);
    assert_non_null(strstr(dev->build_options, "-cl-std=CL1.2"));
    assert_null(strstr(dev->build_options, "fast-relaxed-math"));
    assert_int_equal(clt_device_finish(dev), CLT_OK);
    assert_null(clt_device_info(NULL));
}

static void no_match_is_a_clear_error(void **state)
{
    (void)state;
    struct clt_test_log text = {0};
    struct clt_device_options o;
    clt_device_options_init(&o);
    o.log.fn = clt_test_log_fn;
    o.log.user = &text;
    struct clt_device *dev = (struct clt_device *)&text; /* must stay untouched */
    assert_int_equal(clt_device_open("no-such-device-xyz", &o, &dev), CLT_ERR_NO_DEVICE);
    assert_ptr_equal(dev, (struct clt_device *)&text);
    assert_non_null(strstr(text.text, "no device matches"));
    assert_int_equal(clt_device_open("7:x:", &o, &dev), CLT_ERR_NO_DEVICE);
    assert_int_equal(clt_device_open("1:", &o, &dev), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_device_open(NULL, &o, NULL), CLT_ERR_INVALID_ARGUMENT);
    clt_device_close(NULL);
}

/* Writes `text` to dir/name. */
static void write_text(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void build_failure_hands_over_the_log(void **state)
{
    (void)state;
    char dir[] = "/tmp/cltrain-cl-XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_text(dir, "shared.h", "#define CLT__LOSS_LANES 64\n");
    write_text(dir, "common.cl", "#pragma OPENCL FP_CONTRACT OFF\n");
    write_text(dir, "gemm.cl",
               "__kernel void gemm_tiled(__global float *x)\n"
               "{ x[0] = undeclared_thing_42; }\n");
    struct clt_test_log text = {0};
    struct clt_device_options o;
    clt_device_options_init(&o);
    o.log.fn = clt_test_log_fn;
    o.log.user = &text;
    o.cl_dir = dir;
    o.cache = 0;
    struct clt_device *dev = NULL;
    assert_int_equal(clt_device_open(getenv("CLTRAIN_DEVICE"), &o, &dev), CLT_OK);
    cl_kernel k;
    assert_int_equal(clt__kernel_get(dev, "gemm", "gemm_tiled", &k, NULL), CLT_ERR_BUILD);
    assert_non_null(strstr(text.text, "building program gemm.cl failed"));
    assert_non_null(strstr(text.text, "undeclared_thing_42"));
    /* The failure is not remembered as success: asking again fails again. */
    assert_int_equal(clt__kernel_get(dev, "gemm", "gemm_tiled", &k, NULL), CLT_ERR_BUILD);
    /* A source file the directory lacks is an I/O error naming the path. */
    text.len = 0;
    assert_int_equal(clt__source_read(dev, "absent", &(char *){NULL}, &(size_t){0}), CLT_ERR_IO);
    assert_non_null(strstr(text.text, "absent.cl"));
    /* A kernel name the program lacks. */
    write_text(dir, "gemm.cl", "__kernel void other(__global float *x) { x[0] = 1.0f; }\n");
    clt_device_close(dev);
    assert_int_equal(clt_device_open(getenv("CLTRAIN_DEVICE"), &o, &dev), CLT_OK);
    assert_int_equal(clt__kernel_get(dev, "gemm", "gemm_tiled", &k, NULL), CLT_ERR_OPENCL);
    assert_non_null(strstr(text.text, "kernel gemm_tiled not found"));
    clt_device_close(dev);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void unknown_program_is_an_error(void **state)
{
    struct clt_device *dev = *state;
    cl_program p;
    assert_int_equal(clt__program_get(dev, "no_such_program", &p), CLT_ERR_INVALID_ARGUMENT);
}

static void kernels_are_kept(void **state)
{
    struct clt_device *dev = *state;
    cl_kernel k1, k2;
    size_t wg1 = 0, wg2 = 0;
    assert_int_equal(clt__kernel_get(dev, "gemm", "gemm_nn", &k1, &wg1), CLT_OK);
    assert_int_equal(clt__kernel_get(dev, "gemm", "gemm_nn", &k2, &wg2), CLT_OK);
    assert_ptr_equal(k1, k2);
    assert_true(wg1 >= 1 && wg1 == wg2);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(list_has_the_device_under_test),
        CLT_DEVICE_TEST(open_reports_capabilities),
        CLT_DEVICE_TEST(no_match_is_a_clear_error),
        CLT_DEVICE_TEST(build_failure_hands_over_the_log),
        CLT_DEVICE_TEST(unknown_program_is_an_error),
        CLT_DEVICE_TEST(kernels_are_kept),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
