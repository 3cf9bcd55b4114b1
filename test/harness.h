/*
 * harness.h: what every cltrain test shares: opening the device under test, deterministic
 * data, comparisons with stated tolerances, and finite-difference gradient checks.
 *
 * Device tests are run by meson once per OpenCL implementation, with CLTRAIN_DEVICE naming
 * it (pocl, llvmpipe, oclgrind). CLTRAIN_TEST_SMALL=1 asks for small shapes (Oclgrind, and
 * rusticl for the GEMM tests).
 */
#ifndef CLTRAIN_TEST_HARNESS_H
#define CLTRAIN_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"

/* Exits with 77 (skipped) when the machine has no OpenCL device at all. Call first in main. */
void clt_test_require_device(void);

/* Opens the device named by CLTRAIN_DEVICE with a fresh, private binary cache. Fails the
 * test when devices exist but none matches. Close with clt_device_close. */
struct clt_device *clt_test_open(void);

/* Makes a folder from tmpl ("/tmp/name-XXXXXX", rewritten in place, as mkdtemp) that is
 * removed with all its contents when the test program exits normally. False when it could not
 * be made. */
bool clt_test_temp_dir(char *tmpl);

/* cmocka group setup/teardown that open the device into *state and close it. */
int clt_test_group_setup(void **state);
int clt_test_group_teardown(void **state);

/* cmocka per-test setup/teardown for tests of a group opened by clt_test_group_setup: the
 * teardown puts the shared device's log callback back as the setup found it, so a test that
 * fails while the log points at its own stack frame cannot leave the next test a dangling
 * callback. CLT_DEVICE_TEST(f) is cmocka_unit_test(f) with both. */
int clt_test_setup(void **state);
int clt_test_teardown(void **state);
#define CLT_DEVICE_TEST(f) cmocka_unit_test_setup_teardown(f, clt_test_setup, clt_test_teardown)

/* True when the test should use small shapes (under Oclgrind). */
bool clt_test_small(void);

/* Fills x[0..n) with uniform values in [lo, hi) from a fixed seed (splitmix64). */
void clt_test_fill(float *x, size_t n, uint64_t seed, float lo, float hi);

/* Asserts |got[i] - want[i]| <= atol + rtol * |want[i]| for every i; on failure prints the
 * worst index and values, prefixed by what. NaN never passes. */
void clt_test_assert_close(const char *what, const float *got, const double *want, size_t n,
                           double atol, double rtol);

/* Allocates a view of `count` floats (a 1-D shape) in an arena and uploads host data into it
 * (host may be NULL to leave it unset). Fails the test on error. Under Oclgrind, whose 21.10
 * release corrupts buffers written at a non-zero offset, it rewrites the whole arena. */
struct clt_view clt_test_upload(struct clt_arena *arena, const float *host, size_t count);

/* Downloads count floats from a view (blocking). */
void clt_test_download(const struct clt_view *view, float *host, size_t count);

/* Writes host data at the start of a view (blocking) by rewriting the whole arena from
 * offset 0: read it, patch the view's range, write it back. Oclgrind 21.10's check for
 * uninitialised memory mishandles host writes at a non-zero buffer offset (it replaces its
 * record of the whole buffer by one the size of the write, then reports false errors or lets
 * kernels read wrong values); this write is right on every device. Fails the test on error.
 * clt_test_put writes `count` floats, clt_test_put_bytes `bytes` bytes of any type. */
void clt_test_put(const struct clt_view *view, const float *host, size_t count);
void clt_test_put_bytes(const struct clt_view *view, const void *host, size_t bytes);

/* clt_test_put of `count` NaN: an output value that fails any comparison if a kernel leaves
 * it in place. */
void clt_test_put_nan(const struct clt_view *view, size_t count);

/* Allocates a view of `count` floats in an arena and writes host[0..count) into it, or NaN
 * when host is NULL, with clt_test_put. */
struct clt_view clt_test_tensor(struct clt_arena *arena, const float *host, size_t count);

/* ---- Tensors in a storage (docs/precision.md): fp32, or 16 bits (fp16, bf16) per element ----
 * For launcher tests of kernels that read and write store_t (cl/common.cl): set the device's
 * storage with clt__storage_set (and put it back), make the tensors with clt_test_tensor_st,
 * pass clt_test_buf_st(view, s) to the launcher, read results with clt_test_get_st. */

/* Bytes per element of a storage: 4 or 2. */
size_t clt_test_storage_bytes(enum clt_precision s);

/* The unit roundoff of a storage: 2^-24 (fp32), 2^-11 (fp16), 2^-8 (bf16). */
double clt_test_eps(enum clt_precision s);

/* Rounds x[0..n) in place to the values the storage can hold (nearest even; fp32: none). */
void clt_test_round(float *x, size_t n, enum clt_precision s);

/* A view holding `count` elements of the storage (an F32 view of ceil(count * bytes / 4)
 * floats), written from host[0..count) rounded to the storage, or NaN when host is NULL,
 * through clt_test_put_bytes (right under Oclgrind too). */
struct clt_view clt_test_tensor_st(struct clt_arena *arena, const float *host, size_t count,
                                   enum clt_precision s);

/* The launcher argument of such a view: its buffer and its offset in storage elements. */
struct clt__buf clt_test_buf_st(const struct clt_view *view, enum clt_precision s);

/* Reads `count` storage elements of a view, widened to floats (blocking). */
void clt_test_get_st(const struct clt_view *view, float *host, size_t count, enum clt_precision s);

/* malloc'd arrays of n floats or doubles (room for one at least when n is 0). Fail the test
 * when memory runs out. */
float *clt_test_floats(size_t n);
double *clt_test_doubles(size_t n);

/* A scalar function of the n floats at x, for clt_test_gradcheck. */
typedef double (*clt_test_loss_fn)(void *ctx, const float *x, size_t n);

/* Checks an analytic gradient against central differences (f(x+eps) - f(x-eps)) / 2eps at
 * up to `samples` indices spread over x. x is perturbed and restored. Passes when each
 * |fd - grad| <= atol + rtol * |fd|; fails the test otherwise, printing the index. */
void clt_test_gradcheck(const char *what, clt_test_loss_fn loss, void *ctx, float *x, size_t n,
                        const float *grad, size_t samples, double eps, double atol, double rtol);

/* A log callback that appends messages to a buffer (struct clt_test_log), for tests that
 * check what the library said. */
struct clt_test_log {
    char text[65536];
    size_t len;
};
void clt_test_log_fn(void *user, enum clt_log_level level, const char *message);

#endif
