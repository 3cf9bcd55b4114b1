/*
 * test_select.c: the rules of selection strings, on made-up device lists. No device needed.
 */
#include <string.h>

#include "harness.h"

static struct clt_device_info dev_info(uint32_t p, uint32_t d, enum clt_device_type type,
                                       const char *platform, const char *name)
{
    struct clt_device_info i;
    memset(&i, 0, sizeof i);
    i.platform_index = p;
    i.device_index = d;
    i.type = type;
    snprintf(i.platform, sizeof i.platform, "%s", platform);
    snprintf(i.name, sizeof i.name, "%s", name);
    return i;
}

static void make_list(struct clt_device_info *list)
{
    list[0] = dev_info(0, 0, CLT_DEVICE_CPU, "Portable Computing Language", "pthread-skylake");
    list[1] = dev_info(1, 0, CLT_DEVICE_GPU, "rusticl", "llvmpipe (LLVM 15)");
    list[2] = dev_info(2, 0, CLT_DEVICE_GPU, "NVIDIA CUDA", "NVIDIA H100");
    list[3] = dev_info(2, 1, CLT_DEVICE_GPU, "NVIDIA CUDA", "NVIDIA A10");
}

static size_t pick(const struct clt_device_info *list, size_t n, const char *sel)
{
    size_t idx = 999;
    assert_int_equal(clt_device_select(list, n, sel, &idx), CLT_OK);
    return idx;
}

static void by_index_pair(void **state)
{
    (void)state;
    struct clt_device_info list[4];
    make_list(list);
    assert_int_equal(pick(list, 4, "0:0"), 0);
    assert_int_equal(pick(list, 4, "2:1"), 3);
    assert_int_equal(pick(list, 4, " 2:1 "), 3);
    size_t idx = 7;
    assert_int_equal(clt_device_select(list, 4, "3:0", &idx), CLT_ERR_NO_DEVICE);
    assert_int_equal(clt_device_select(list, 4, "2:9", &idx), CLT_ERR_NO_DEVICE);
    assert_int_equal(clt_device_select(list, 4, "2:", &idx), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_device_select(list, 4, ":1", &idx), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_device_select(list, 4, "1:2:3", &idx), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_device_select(list, 4, "99999999999:0", &idx), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(idx, 7);
}

static void by_name_ignoring_case(void **state)
{
    (void)state;
    struct clt_device_info list[4];
    make_list(list);
    assert_int_equal(pick(list, 4, "portable"), 0);
    assert_int_equal(pick(list, 4, "LLVMPIPE"), 1);
    assert_int_equal(pick(list, 4, "nvidia"), 2);
    assert_int_equal(pick(list, 4, "a10"), 3);
    assert_int_equal(pick(list, 4, "rusticl"), 1);
    size_t idx;
    assert_int_equal(clt_device_select(list, 4, "amd", &idx), CLT_ERR_NO_DEVICE);
}

static void by_type(void **state)
{
    (void)state;
    struct clt_device_info list[4];
    make_list(list);
    assert_int_equal(pick(list, 4, "gpu"), 1);
    assert_int_equal(pick(list, 4, "GPU"), 1);
    assert_int_equal(pick(list, 4, "cpu"), 0);
    size_t idx;
    assert_int_equal(clt_device_select(list, 1, "gpu", &idx), CLT_ERR_NO_DEVICE);
}

static void default_prefers_gpu(void **state)
{
    (void)state;
    struct clt_device_info list[4];
    make_list(list);
    assert_int_equal(pick(list, 4, NULL), 1);
    assert_int_equal(pick(list, 4, ""), 1);
    assert_int_equal(pick(list, 1, NULL), 0);
}

static void bad_arguments(void **state)
{
    (void)state;
    struct clt_device_info list[4];
    make_list(list);
    size_t idx;
    assert_int_equal(clt_device_select(NULL, 0, "gpu", &idx), CLT_ERR_NO_DEVICE);
    assert_int_equal(clt_device_select(NULL, 2, "gpu", &idx), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_device_select(list, 4, "gpu", NULL), CLT_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(by_index_pair), cmocka_unit_test(by_name_ignoring_case),
        cmocka_unit_test(by_type),       cmocka_unit_test(default_prefers_gpu),
        cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
