/*
 * faultcl.c: a thin wrapper over the OpenCL calls the engine makes, for tests. Preloaded
 * (LD_PRELOAD) into a test program, it forwards every wrapped call to the real OpenCL library
 * and can make one chosen call fail with a chosen error, and it counts the OpenCL objects
 * alive so that a test can check that nothing leaked after a failure.
 *
 * Control, from the test (looked up with dlsym, so the test also runs without the wrapper):
 *   faultcl_arm(name, nth, error)  the nth call (1-based, counted from now) of the named
 *                                  function ("*" for any wrapped call) returns `error`
 *                                  without reaching the driver; 0 disarms
 *   faultcl_fired()                whether the armed failure has happened
 *   faultcl_live(kind)             objects alive: "mem", "program", "kernel", "event",
 *                                  "queue", "context"
 * or, for a whole program such as `cltrain train`, from the environment at load time:
 *   FAULTCL_ARM=NAME:NTH:ERROR     e.g. clEnqueueNDRangeKernel:2000:-5
 *
 * Functions that create an object report the error through their errcode_ret argument and
 * return NULL, as a driver would. The wrapper is test code: it keeps global state, guarded by
 * a mutex.
 */
#define _GNU_SOURCE
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { MEM, PROGRAM, KERNEL, EVENT, QUEUE, CONTEXT, KINDS };
static const char *kind_names[KINDS] = {"mem", "program", "kernel", "event", "queue", "context"};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char armed_name[64];
static long armed_left; /* calls to go before the failure; 0: disarmed */
static cl_int armed_error;
static bool fired;
static long live[KINDS];

void faultcl_arm(const char *name, long nth, cl_int error)
{
    pthread_mutex_lock(&lock);
    snprintf(armed_name, sizeof armed_name, "%s", name ? name : "");
    armed_left = nth;
    armed_error = error;
    fired = false;
    pthread_mutex_unlock(&lock);
}

bool faultcl_fired(void)
{
    pthread_mutex_lock(&lock);
    bool f = fired;
    pthread_mutex_unlock(&lock);
    return f;
}

long faultcl_live(const char *kind)
{
    long n = -1;
    pthread_mutex_lock(&lock);
    for (int k = 0; k < KINDS; k++)
        if (strcmp(kind, kind_names[k]) == 0)
            n = live[k];
    pthread_mutex_unlock(&lock);
    return n;
}

/* Arms the wrapper from FAULTCL_ARM when the library is loaded. */
__attribute__((constructor)) static void arm_from_environment(void)
{
    const char *spec = getenv("FAULTCL_ARM");
    char name[64];
    long nth = 0, error = 0;
    if (spec && sscanf(spec, "%63[^:]:%ld:%ld", name, &nth, &error) == 3)
        faultcl_arm(name, nth, (cl_int)error);
}

/* Whether this call of `name` is the one that must fail; writes the error. */
static bool should_fail(const char *name, cl_int *error)
{
    bool fail = false;
    pthread_mutex_lock(&lock);
    if (armed_left > 0 && (strcmp(armed_name, "*") == 0 || strcmp(armed_name, name) == 0)) {
        if (--armed_left == 0) {
            fail = true;
            fired = true;
            *error = armed_error;
        }
    }
    pthread_mutex_unlock(&lock);
    return fail;
}

static void tally(enum kind k, long delta)
{
    pthread_mutex_lock(&lock);
    live[k] += delta;
    pthread_mutex_unlock(&lock);
}

/* The real function of the OpenCL library next in the search order. */
#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

/* An enqueue that may create an event: fails, or forwards and counts the event. */
#define ENQUEUE(name, event, ...)                                                                  \
    cl_int err;                                                                                    \
    if (should_fail(#name, &err))                                                                  \
        return err;                                                                                \
    err = REAL(name)(__VA_ARGS__);                                                                 \
    if (err == CL_SUCCESS && (event))                                                              \
        tally(EVENT, 1);                                                                           \
    return err;

/* A constructor: fails through errcode_ret, or forwards and counts the object. */
#define CREATE(name, k, errcode_ret, ...)                                                          \
    cl_int err;                                                                                    \
    if (should_fail(#name, &err)) {                                                                \
        if (errcode_ret)                                                                           \
            *(errcode_ret) = err;                                                                  \
        return NULL;                                                                               \
    }                                                                                              \
    __typeof__(REAL(name)(__VA_ARGS__)) obj = REAL(name)(__VA_ARGS__);                             \
    if (obj)                                                                                       \
        tally(k, 1);                                                                               \
    return obj;

/* A release: forwards and uncounts. */
#define RELEASE(name, k, obj)                                                                      \
    cl_int err = REAL(name)(obj);                                                                  \
    if (err == CL_SUCCESS)                                                                         \
        tally(k, -1);                                                                              \
    return err;

CL_API_ENTRY cl_context CL_API_CALL clCreateContext(
    const cl_context_properties *properties, cl_uint num_devices, const cl_device_id *devices,
    void(CL_CALLBACK *notify)(const char *, const void *, size_t, void *), void *user_data,
    cl_int *errcode_ret){CREATE(clCreateContext, CONTEXT, errcode_ret, properties, num_devices,
                                devices, notify, user_data, errcode_ret)}

CL_API_ENTRY cl_int CL_API_CALL
    clReleaseContext(cl_context context){RELEASE(clReleaseContext, CONTEXT, context)}

CL_API_ENTRY cl_command_queue CL_API_CALL
    clCreateCommandQueue(cl_context context, cl_device_id device,
                         cl_command_queue_properties properties, cl_int *errcode_ret){
        CREATE(clCreateCommandQueue, QUEUE, errcode_ret, context, device, properties, errcode_ret)}

CL_API_ENTRY cl_int CL_API_CALL
    clReleaseCommandQueue(cl_command_queue queue){RELEASE(clReleaseCommandQueue, QUEUE, queue)}

CL_API_ENTRY cl_mem CL_API_CALL clCreateBuffer(cl_context context, cl_mem_flags flags, size_t size,
                                               void *host_ptr, cl_int *errcode_ret){
    CREATE(clCreateBuffer, MEM, errcode_ret, context, flags, size, host_ptr, errcode_ret)}

CL_API_ENTRY cl_int CL_API_CALL clRetainMemObject(cl_mem mem)
{
    cl_int err = REAL(clRetainMemObject)(mem);
    if (err == CL_SUCCESS)
        tally(MEM, 1);
    return err;
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseMemObject(cl_mem mem){
    RELEASE(clReleaseMemObject, MEM, mem)}

CL_API_ENTRY cl_program CL_API_CALL
    clCreateProgramWithSource(cl_context context, cl_uint count, const char **strings,
                              const size_t *lengths, cl_int *errcode_ret){
        CREATE(clCreateProgramWithSource, PROGRAM, errcode_ret, context, count, strings, lengths,
               errcode_ret)}

CL_API_ENTRY cl_program CL_API_CALL
    clCreateProgramWithBinary(cl_context context, cl_uint num_devices, const cl_device_id *devices,
                              const size_t *lengths, const unsigned char **binaries,
                              cl_int *binary_status, cl_int *errcode_ret){
        CREATE(clCreateProgramWithBinary, PROGRAM, errcode_ret, context, num_devices, devices,
               lengths, binaries, binary_status, errcode_ret)}

CL_API_ENTRY cl_int CL_API_CALL clRetainProgram(cl_program program)
{
    cl_int err = REAL(clRetainProgram)(program);
    if (err == CL_SUCCESS)
        tally(PROGRAM, 1);
    return err;
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseProgram(cl_program program){
    RELEASE(clReleaseProgram, PROGRAM, program)}

CL_API_ENTRY cl_int CL_API_CALL
    clBuildProgram(cl_program program, cl_uint num_devices, const cl_device_id *devices,
                   const char *options, void(CL_CALLBACK *notify)(cl_program, void *),
                   void *user_data)
{
    cl_int err;
    if (should_fail("clBuildProgram", &err))
        return err;
    return REAL(clBuildProgram)(program, num_devices, devices, options, notify, user_data);
}

CL_API_ENTRY cl_kernel CL_API_CALL clCreateKernel(cl_program program, const char *name,
                                                  cl_int *errcode_ret){
    CREATE(clCreateKernel, KERNEL, errcode_ret, program, name, errcode_ret)}

CL_API_ENTRY cl_int CL_API_CALL clRetainKernel(cl_kernel kernel)
{
    cl_int err = REAL(clRetainKernel)(kernel);
    if (err == CL_SUCCESS)
        tally(KERNEL, 1);
    return err;
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseKernel(cl_kernel kernel){
    RELEASE(clReleaseKernel, KERNEL, kernel)}

CL_API_ENTRY cl_int CL_API_CALL clRetainEvent(cl_event event)
{
    cl_int err = REAL(clRetainEvent)(event);
    if (err == CL_SUCCESS)
        tally(EVENT, 1);
    return err;
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseEvent(cl_event event){
    RELEASE(clReleaseEvent, EVENT, event)}

CL_API_ENTRY cl_int CL_API_CALL
    clEnqueueNDRangeKernel(cl_command_queue queue, cl_kernel kernel, cl_uint dims,
                           const size_t *offset, const size_t *global, const size_t *local,
                           cl_uint nwait, const cl_event *wait, cl_event *event){
        ENQUEUE(clEnqueueNDRangeKernel, event, queue, kernel, dims, offset, global, local, nwait,
                wait, event)}

CL_API_ENTRY cl_int CL_API_CALL
    clEnqueueWriteBuffer(cl_command_queue queue, cl_mem buffer, cl_bool blocking, size_t offset,
                         size_t size, const void *ptr, cl_uint nwait, const cl_event *wait,
                         cl_event *event){ENQUEUE(clEnqueueWriteBuffer, event, queue, buffer,
                                                  blocking, offset, size, ptr, nwait, wait, event)}

CL_API_ENTRY cl_int CL_API_CALL
    clEnqueueReadBuffer(cl_command_queue queue, cl_mem buffer, cl_bool blocking, size_t offset,
                        size_t size, void *ptr, cl_uint nwait, const cl_event *wait,
                        cl_event *event){ENQUEUE(clEnqueueReadBuffer, event, queue, buffer,
                                                 blocking, offset, size, ptr, nwait, wait, event)}

CL_API_ENTRY cl_int CL_API_CALL
    clEnqueueCopyBuffer(cl_command_queue queue, cl_mem src, cl_mem dst, size_t src_offset,
                        size_t dst_offset, size_t size, cl_uint nwait, const cl_event *wait,
                        cl_event *event){ENQUEUE(clEnqueueCopyBuffer, event, queue, src, dst,
                                                 src_offset, dst_offset, size, nwait, wait, event)}

CL_API_ENTRY cl_int CL_API_CALL
    clEnqueueFillBuffer(cl_command_queue queue, cl_mem buffer, const void *pattern,
                        size_t pattern_size, size_t offset, size_t size, cl_uint nwait,
                        const cl_event *wait,
                        cl_event *event){ENQUEUE(clEnqueueFillBuffer, event, queue, buffer, pattern,
                                                 pattern_size, offset, size, nwait, wait, event)}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueMarkerWithWaitList(cl_command_queue queue, cl_uint nwait,
                                                            const cl_event *wait, cl_event *event){
    ENQUEUE(clEnqueueMarkerWithWaitList, event, queue, nwait, wait, event)}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueBarrierWithWaitList(cl_command_queue queue, cl_uint nwait,
                                                             const cl_event *wait, cl_event *event){
    ENQUEUE(clEnqueueBarrierWithWaitList, event, queue, nwait, wait, event)}

CL_API_ENTRY cl_int CL_API_CALL clFinish(cl_command_queue queue)
{
    cl_int err;
    if (should_fail("clFinish", &err))
        return err;
    return REAL(clFinish)(queue);
}

CL_API_ENTRY cl_int CL_API_CALL clWaitForEvents(cl_uint n, const cl_event *events)
{
    cl_int err;
    if (should_fail("clWaitForEvents", &err))
        return err;
    return REAL(clWaitForEvents)(n, events);
}
