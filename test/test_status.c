/*
 * test_status.c: status names, OpenCL error names, the log callback. No device needed.
 */
#include <string.h>

#include "harness.h"

static void status_names_are_distinct(void **state)
{
    (void)state;
    enum clt_status all[] = {CLT_OK,
                             CLT_ERR_INVALID_ARGUMENT,
                             CLT_ERR_NO_MEMORY,
                             CLT_ERR_NO_DEVICE,
                             CLT_ERR_OPENCL,
                             CLT_ERR_BUILD,
                             CLT_ERR_DEVICE_MEMORY,
                             CLT_ERR_IO,
                             CLT_ERR_FORMAT,
                             CLT_ERR_UNSUPPORTED,
                             CLT_ERR_GEMM,
                             CLT_ERR_NONFINITE};
    size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n; i++) {
        const char *s = clt_status_str(all[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 3);
        assert_string_not_equal(s, "unknown status");
        if (i > 0)
            assert_true(all[i] < 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, clt_status_str(all[j]));
    }
    assert_string_equal(clt_status_str((enum clt_status) - 999), "unknown status");
    assert_string_equal(clt_status_str((enum clt_status)7), "unknown status");
}

static void opencl_errors_are_named(void **state)
{
    (void)state;
    assert_string_equal(clt__cl_error_name(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
    assert_string_equal(clt__cl_error_name(CL_INVALID_KERNEL_ARGS), "CL_INVALID_KERNEL_ARGS");
    assert_string_equal(clt__cl_error_name(-12345), "CL_ERROR(unknown)");
}

static void cl_check_logs_the_call(void **state)
{
    (void)state;
    struct clt_test_log text = {0};
    struct clt_log log = {clt_test_log_fn, &text, CLT_LOG_DEBUG};
    assert_int_equal(clt__cl_check(&log, CL_SUCCESS, "clFinish"), CLT_OK);
    assert_int_equal(text.len, 0);
    assert_int_equal(clt__cl_check(&log, CL_INVALID_VALUE, "clFinish"), CLT_ERR_OPENCL);
    assert_non_null(strstr(text.text, "clFinish failed: CL_INVALID_VALUE"));
    assert_int_equal(clt__cl_check(&log, CL_MEM_OBJECT_ALLOCATION_FAILURE, "clCreateBuffer"),
                     CLT_ERR_DEVICE_MEMORY);
}

static void log_levels_filter(void **state)
{
    (void)state;
    struct clt_test_log text = {0};
    struct clt_log log = {clt_test_log_fn, &text, CLT_LOG_WARN};
    clt__log(&log, CLT_LOG_INFO, "hidden %d", 1);
    assert_int_equal(text.len, 0);
    clt__log(&log, CLT_LOG_ERROR, "shown %d", 2);
    assert_string_equal(text.text, "shown 2\n");
    /* Messages longer than the internal buffer arrive whole. */
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    text.len = 0;
    clt__log(&log, CLT_LOG_ERROR, "%s", big);
    assert_int_equal(text.len, sizeof big);
}

static void version_matches_header(void **state)
{
    (void)state;
    assert_string_equal(clt_version(), CLT_VERSION_STRING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_names_are_distinct), cmocka_unit_test(opencl_errors_are_named),
        cmocka_unit_test(cl_check_logs_the_call),    cmocka_unit_test(log_levels_filter),
        cmocka_unit_test(version_matches_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
