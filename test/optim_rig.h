/*
 * optim_rig.h: what test_optim.c's cases share (optim_rig.c): a fixture of one device, one
 * arena and an upload kernel, and a rig of one optimizer's device buffers, their host mirrors
 * and the double reference (ref_optim.c), stepped together and compared with the tolerances
 * test_optim.c's header states.
 */
#ifndef CLT_TEST_OPTIM_RIG_H
#define CLT_TEST_OPTIM_RIG_H

#include "harness.h"
#include "ref_optim.h"

/* Oclgrind 21.10 (--uninitialized) loses track of initialised memory in two ways: a host
 * write into a buffer at a non-zero offset reallocates its shadow of the whole buffer at the
 * size of the write, without initialising it, and a buffer created after another was freed
 * can inherit a stale shadow. Kernel reads of data the host wrote are then reported, or not,
 * at random as uninitialised. So the test keeps one arena for all its cases, and uploads go
 * through a staging buffer written whole at offset 0 and a copy kernel (kernels' writes are
 * tracked correctly). The test's state is the device, that arena and the copy kernel. */
struct fixture {
    struct clt_device *dev;
    struct clt_arena *arena; /* arena_bytes(), reset by each rig */
    cl_program program;
    cl_kernel copy;
};

/* cmocka group setup and teardown: creates (frees) the fixture in *state. */
int optim_fixture_setup(void **state);
int optim_fixture_teardown(void **state);

/* Writes count floats from the host into the start of a view (blocking for the host data). */
void optim_put(struct fixture *fx, const struct clt_view *view, const void *host, size_t count);

/* ==== A rig: one optimizer's device buffers, their host mirrors and the reference ======= */

struct rig {
    struct fixture *fx;
    struct clt_device *dev;
    struct clt_arena *arena; /* the fixture's */
    struct clt__optim_config cfg;
    int64_t n;
    struct clt_view params, grads, m, v, loss, ws, status;
    float *grads_host; /* [n] the gradient of the next step */
    float *got;        /* [n] scratch for downloads */
    struct ref_optim ref;
    bool use_loss; /* pass the loss buffer to the step (else mem NULL) */
};

/* Creates the buffers of n elements in the fixture's arena (reset) from seed; rig_free frees
 * the host side. */
void rig_init(struct rig *r, struct fixture *fx, const struct clt__optim_config *cfg, int64_t n,
              uint64_t seed);
void rig_free(struct rig *r);

/* Enqueues one device step with the gradient in grads_host and the given loss. */
enum clt_status rig_device_step(struct rig *r, float lr, float scale, float loss);

/* One step on the device and in the reference (asserts the device step succeeds). */
void rig_step(struct rig *r, float lr, float scale, float loss);

/* The device's optimizer status. */
struct clt__optim_status rig_status(struct rig *r);

/* Compares the device's params, state and status with the reference; fails with `what`. */
void rig_compare(struct rig *r, const char *what);

/* Downloads params, m and v into one new host array [3 n] (the caller frees it). */
float *rig_snapshot(struct rig *r);

/* The sizes the cases run: NSIZES of them, smaller under CLTRAIN_TEST_SMALL. */
#define NSIZES 3
const int64_t *optim_sizes(void);

/* Runs `steps` steps of cfg on every size with the schedule's learning rate, comparing with
 * the reference after each one. */
void optim_run_steps(struct fixture *fx, const struct clt__optim_config *cfg,
                     const struct clt__lr_schedule *sched, int steps, float scale,
                     const char *name);

/* The gradient norm of scale * g [n] in the kernels' order of summation, in float (cl/optim.cl:
 * levels of chunks of 64 terms, term k of a chunk in Kahan chain k mod 4, the chains added in
 * order, until at most 64 sums are left, which one chain adds), then sqrtf: the bits of
 * optim_step_begin's norm on a device whose sqrt is correctly rounded. */
float optim_norm_in_kernel_order(const float *g, int64_t n, float scale);

#endif
