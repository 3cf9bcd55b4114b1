/*
 * status.c: status codes, the log callback and the names of OpenCL error codes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

const char *clt_version(void)
{
    return CLT_VERSION_STRING;
}

const char *clt_status_str(enum clt_status status)
{
    switch (status) {
    case CLT_OK:
        return "success";
    case CLT_ERR_INVALID_ARGUMENT:
        return "invalid argument";
    case CLT_ERR_NO_MEMORY:
        return "out of host memory";
    case CLT_ERR_NO_DEVICE:
        return "no matching OpenCL device";
    case CLT_ERR_OPENCL:
        return "OpenCL call failed";
    case CLT_ERR_BUILD:
        return "kernel program build failed";
    case CLT_ERR_DEVICE_MEMORY:
        return "out of device memory";
    case CLT_ERR_IO:
        return "file input/output failed";
    case CLT_ERR_FORMAT:
        return "malformed input";
    case CLT_ERR_UNSUPPORTED:
        return "not supported by this device or build";
    case CLT_ERR_GEMM:
        return "GEMM backend failed";
    case CLT_ERR_NONFINITE:
        return "loss or gradient not finite";
    }
    return "unknown status";
}

static const char *level_name(enum clt_log_level level)
{
    switch (level) {
    case CLT_LOG_ERROR:
        return "error";
    case CLT_LOG_WARN:
        return "warning";
    case CLT_LOG_INFO:
        return "info";
    case CLT_LOG_DEBUG:
        return "debug";
    }
    return "log";
}

void clt__log(const struct clt_log *log, enum clt_log_level level, const char *fmt, ...)
{
    enum clt_log_level max = log ? log->max_level : CLT_LOG_WARN;
    if (level > max)
        return;
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    /* Build logs can be long: format again into a buffer of the right size. */
    char *text = small;
    char *big = NULL;
    if ((size_t)n >= sizeof small) {
        big = malloc((size_t)n + 1);
        if (big) {
            va_start(ap, fmt);
            vsnprintf(big, (size_t)n + 1, fmt, ap);
            va_end(ap);
            text = big;
        }
    }
    if (log && log->fn)
        log->fn(log->user, level, text);
    else
        fprintf(stderr, "cltrain: %s: %s\n", level_name(level), text);
    free(big);
}

const char *clt__cl_error_name(cl_int err)
{
    switch (err) {
#define NAME(code)                                                                                 \
    case code:                                                                                     \
        return #code;
        NAME(CL_SUCCESS)
        NAME(CL_DEVICE_NOT_FOUND)
        NAME(CL_DEVICE_NOT_AVAILABLE)
        NAME(CL_COMPILER_NOT_AVAILABLE)
        NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        NAME(CL_OUT_OF_RESOURCES)
        NAME(CL_OUT_OF_HOST_MEMORY)
        NAME(CL_PROFILING_INFO_NOT_AVAILABLE)
        NAME(CL_MEM_COPY_OVERLAP)
        NAME(CL_IMAGE_FORMAT_MISMATCH)
        NAME(CL_IMAGE_FORMAT_NOT_SUPPORTED)
        NAME(CL_BUILD_PROGRAM_FAILURE)
        NAME(CL_MAP_FAILURE)
        NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        NAME(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
        NAME(CL_COMPILE_PROGRAM_FAILURE)
        NAME(CL_LINKER_NOT_AVAILABLE)
        NAME(CL_LINK_PROGRAM_FAILURE)
        NAME(CL_DEVICE_PARTITION_FAILED)
        NAME(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
        NAME(CL_INVALID_VALUE)
        NAME(CL_INVALID_DEVICE_TYPE)
        NAME(CL_INVALID_PLATFORM)
        NAME(CL_INVALID_DEVICE)
        NAME(CL_INVALID_CONTEXT)
        NAME(CL_INVALID_QUEUE_PROPERTIES)
        NAME(CL_INVALID_COMMAND_QUEUE)
        NAME(CL_INVALID_HOST_PTR)
        NAME(CL_INVALID_MEM_OBJECT)
        NAME(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
        NAME(CL_INVALID_IMAGE_SIZE)
        NAME(CL_INVALID_SAMPLER)
        NAME(CL_INVALID_BINARY)
        NAME(CL_INVALID_BUILD_OPTIONS)
        NAME(CL_INVALID_PROGRAM)
        NAME(CL_INVALID_PROGRAM_EXECUTABLE)
        NAME(CL_INVALID_KERNEL_NAME)
        NAME(CL_INVALID_KERNEL_DEFINITION)
        NAME(CL_INVALID_KERNEL)
        NAME(CL_INVALID_ARG_INDEX)
        NAME(CL_INVALID_ARG_VALUE)
        NAME(CL_INVALID_ARG_SIZE)
        NAME(CL_INVALID_KERNEL_ARGS)
        NAME(CL_INVALID_WORK_DIMENSION)
        NAME(CL_INVALID_WORK_GROUP_SIZE)
        NAME(CL_INVALID_WORK_ITEM_SIZE)
        NAME(CL_INVALID_GLOBAL_OFFSET)
        NAME(CL_INVALID_EVENT_WAIT_LIST)
        NAME(CL_INVALID_EVENT)
        NAME(CL_INVALID_OPERATION)
        NAME(CL_INVALID_GL_OBJECT)
        NAME(CL_INVALID_BUFFER_SIZE)
        NAME(CL_INVALID_MIP_LEVEL)
        NAME(CL_INVALID_GLOBAL_WORK_SIZE)
        NAME(CL_INVALID_PROPERTY)
        NAME(CL_INVALID_IMAGE_DESCRIPTOR)
        NAME(CL_INVALID_COMPILER_OPTIONS)
        NAME(CL_INVALID_LINKER_OPTIONS)
        NAME(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef NAME
    case -1001:
        return "CL_PLATFORM_NOT_FOUND_KHR";
    }
    return "CL_ERROR(unknown)";
}

enum clt_status clt__cl_check(const struct clt_log *log, cl_int err, const char *call)
{
    if (err == CL_SUCCESS)
        return CLT_OK;
    clt__log(log, CLT_LOG_ERROR, "%s failed: %s (%d)", call, clt__cl_error_name(err), (int)err);
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_INVALID_BUFFER_SIZE)
        return CLT_ERR_DEVICE_MEMORY;
    if (err == CL_OUT_OF_HOST_MEMORY)
        return CLT_ERR_NO_MEMORY;
    return CLT_ERR_OPENCL;
}
