/*
 * harness.c: see harness.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "precision.h"

void clt_test_require_device(void)
{
    struct clt_log quiet = {NULL, NULL, CLT_LOG_ERROR};
    struct clt_device_info *list = NULL;
    size_t count = 0;
    if (clt_devices_list(&quiet, &list, &count) != CLT_OK || count == 0) {
        fprintf(stderr, "no OpenCL device on this machine: skipping\n");
        clt_devices_free(list);
        exit(77);
    }
    clt_devices_free(list);
}

/* The folders clt_test_temp_dir made, removed when the test program exits. */
static char **temp_dirs;
static size_t temp_dir_count;

static void remove_temp_dirs(void)
{
    for (size_t i = 0; i < temp_dir_count; i++) {
        clt__remove_tree(temp_dirs[i]);
        free(temp_dirs[i]);
    }
    free(temp_dirs);
    temp_dirs = NULL;
    temp_dir_count = 0;
}

bool clt_test_temp_dir(char *tmpl)
{
    char *copy = NULL, **grown = NULL;
    if (!mkdtemp(tmpl))
        return false;
    if (temp_dir_count == 0 && atexit(remove_temp_dirs) != 0)
        return true; /* made, but left behind */
    copy = strdup(tmpl);
    grown = copy ? realloc(temp_dirs, (temp_dir_count + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(copy);
        return true;
    }
    temp_dirs = grown;
    temp_dirs[temp_dir_count++] = copy;
    return true;
}

struct clt_device *clt_test_open(void)
{
    struct clt_device_options o;
    clt_device_options_init(&o);
    /* Tests get their own cache so that they neither depend on nor disturb the user's. */
    char dir[] = "/tmp/cltrain-test-cache-XXXXXX";
    if (clt_test_temp_dir(dir))
        o.cache_dir = dir;
    struct clt_device *dev = NULL;
    enum clt_status st = clt_device_open(getenv("CLTRAIN_DEVICE"), &o, &dev);
    if (st != CLT_OK)
        fail_msg("cannot open device \"%s\": %s",
                 getenv("CLTRAIN_DEVICE") ? getenv("CLTRAIN_DEVICE") : "(default)",
                 clt_status_str(st));
    return dev;
}

/* The device of the running group and its log callback as the current test found it. */
static struct clt_device *group_device;
static struct clt_log group_log;

int clt_test_group_setup(void **state)
{
    group_device = clt_test_open();
    *state = group_device;
    return *state ? 0 : -1;
}

int clt_test_group_teardown(void **state)
{
    clt_device_close(*state);
    group_device = NULL;
    return 0;
}

int clt_test_setup(void **state)
{
    (void)state;
    if (group_device)
        group_log = group_device->log;
    return 0;
}

int clt_test_teardown(void **state)
{
    (void)state;
    if (group_device)
        group_device->log = group_log;
    return 0;
}

bool clt_test_small(void)
{
    const char *s = getenv("CLTRAIN_TEST_SMALL");
    return s && *s && strcmp(s, "0") != 0;
}

void clt_test_fill(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        double u = (double)(z >> 11) / 9007199254740992.0;
        x[i] = (float)(lo + (hi - lo) * u);
    }
}

void clt_test_assert_close(const char *what, const float *got, const double *want, size_t n,
                           double atol, double rtol)
{
    size_t worst = 0;
    double worst_excess = -1.0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        double tol = atol + rtol * fabs(want[i]);
        double excess = isnan(err) ? INFINITY : err - tol;
        if (excess > 0)
            bad++;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (bad > 0)
        fail_msg("%s: %zu of %zu values off; worst at %zu: got %.9g, want %.9g (atol %g, "
                 "rtol %g)",
                 what, bad, n, worst, (double)got[worst], want[worst], atol, rtol);
}

/* Oclgrind 21.10 mishandles host writes at a non-zero buffer offset (see clt_test_put), so
 * under Oclgrind an upload rewrites the whole arena from offset 0. */
static bool is_oclgrind(const struct clt_arena *arena)
{
    return strstr(arena->dev->info.platform, "Oclgrind") != NULL;
}

struct clt_view clt_test_upload(struct clt_arena *arena, const float *host, size_t count)
{
    struct clt_view v;
    int64_t shape[1] = {(int64_t)count};
    assert_int_equal(clt_arena_alloc(arena, CLT_F32, 1, shape, &v), CLT_OK);
    if (host && is_oclgrind(arena))
        clt_test_put(&v, host, count);
    else if (host)
        assert_int_equal(clt_view_write(&v, host, count * sizeof(float), NULL), CLT_OK);
    return v;
}

void clt_test_download(const struct clt_view *view, float *host, size_t count)
{
    assert_int_equal(clt_view_read(view, host, count * sizeof(float), NULL), CLT_OK);
}

void clt_test_put_bytes(const struct clt_view *view, const void *host, size_t bytes)
{
    struct clt_arena *arena = view->arena;
    cl_command_queue queue = arena->dev->queue;
    unsigned char *image = malloc((size_t)arena->size);
    assert_non_null(image);
    assert_true(view->offset + bytes <= arena->size);
    assert_int_equal(clEnqueueReadBuffer(queue, arena->mem, CL_TRUE, 0, (size_t)arena->size, image,
                                         0, NULL, NULL),
                     CL_SUCCESS);
    memcpy(image + view->offset, host, bytes);
    assert_int_equal(clEnqueueWriteBuffer(queue, arena->mem, CL_TRUE, 0, (size_t)arena->size, image,
                                          0, NULL, NULL),
                     CL_SUCCESS);
    free(image);
}

void clt_test_put(const struct clt_view *view, const float *host, size_t count)
{
    clt_test_put_bytes(view, host, count * sizeof(float));
}

void clt_test_put_nan(const struct clt_view *view, size_t count)
{
    float *nan = clt_test_floats(count);
    for (size_t i = 0; i < count; i++)
        nan[i] = NAN;
    clt_test_put(view, nan, count);
    free(nan);
}

struct clt_view clt_test_tensor(struct clt_arena *arena, const float *host, size_t count)
{
    struct clt_view v = clt_test_upload(arena, NULL, count);
    if (host)
        clt_test_put(&v, host, count);
    else
        clt_test_put_nan(&v, count);
    return v;
}

size_t clt_test_storage_bytes(enum clt_precision s)
{
    return s == CLT_PRECISION_FP32 ? 4 : 2;
}

double clt_test_eps(enum clt_precision s)
{
    return s == CLT_PRECISION_FP16 ? 0x1p-11 : s == CLT_PRECISION_BF16 ? 0x1p-8 : 0x1p-24;
}

/* x narrowed to the storage's bits (fp32: x's bits). */
static uint32_t storage_bits(float x, enum clt_precision s)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return s == CLT_PRECISION_FP16   ? clt__f32_to_f16(x)
           : s == CLT_PRECISION_BF16 ? clt__f32_to_bf16(x)
                                     : u;
}

static float storage_value(uint32_t bits, enum clt_precision s)
{
    float f;
    memcpy(&f, &bits, 4);
    return s == CLT_PRECISION_FP16   ? clt__f16_to_f32((uint16_t)bits)
           : s == CLT_PRECISION_BF16 ? clt__bf16_to_f32((uint16_t)bits)
                                     : f;
}

void clt_test_round(float *x, size_t n, enum clt_precision s)
{
    for (size_t i = 0; i < n; i++)
        x[i] = storage_value(storage_bits(x[i], s), s);
}

struct clt_view clt_test_tensor_st(struct clt_arena *arena, const float *host, size_t count,
                                   enum clt_precision s)
{
    size_t bytes = clt_test_storage_bytes(s);
    struct clt_view v = clt_test_upload(arena, NULL, (count * bytes + 3) / 4);
    unsigned char *image = calloc(count ? count : 1, bytes);
    assert_non_null(image);
    for (size_t i = 0; i < count; i++) {
        uint32_t b = storage_bits(host ? host[i] : NAN, s);
        if (bytes == 4)
            memcpy(image + 4 * i, &b, 4);
        else {
            uint16_t h = (uint16_t)b;
            memcpy(image + 2 * i, &h, 2);
        }
    }
    clt_test_put_bytes(&v, image, count * bytes);
    free(image);
    return v;
}

struct clt__buf clt_test_buf_st(const struct clt_view *view, enum clt_precision s)
{
    struct clt__buf b = {view->arena->mem, (size_t)(view->offset / clt_test_storage_bytes(s))};
    return b;
}

void clt_test_get_st(const struct clt_view *view, float *host, size_t count, enum clt_precision s)
{
    size_t bytes = clt_test_storage_bytes(s);
    unsigned char *image = malloc(count ? count * bytes : 1);
    assert_non_null(image);
    assert_int_equal(clt_view_read(view, image, count * bytes, NULL), CLT_OK);
    for (size_t i = 0; i < count; i++) {
        uint32_t b = 0;
        if (bytes == 4)
            memcpy(&b, image + 4 * i, 4);
        else {
            uint16_t h;
            memcpy(&h, image + 2 * i, 2);
            b = h;
        }
        host[i] = storage_value(b, s);
    }
    free(image);
}

float *clt_test_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    return p;
}

double *clt_test_doubles(size_t n)
{
    double *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    return p;
}

void clt_test_gradcheck(const char *what, clt_test_loss_fn loss, void *ctx, float *x, size_t n,
                        const float *grad, size_t samples, double eps, double atol, double rtol)
{
    if (samples > n)
        samples = n;
    for (size_t s = 0; s < samples; s++) {
        /* Spread the probes over the whole tensor, first and last element included. */
        size_t i = samples == 1 ? 0 : s * (n - 1) / (samples - 1);
        float keep = x[i];
        x[i] = (float)(keep + eps);
        double up = loss(ctx, x, n);
        x[i] = (float)(keep - eps);
        double down = loss(ctx, x, n);
        /* The real step after rounding to float. */
        double h = (double)(float)(keep + eps) - (double)(float)(keep - eps);
        x[i] = keep;
        double fd = (up - down) / h;
        double err = fabs(fd - (double)grad[i]);
        if (!(err <= atol + rtol * fabs(fd)))
            fail_msg("%s: gradient at %zu: analytic %.7g, finite difference %.7g (eps %g, "
                     "atol %g, rtol %g)",
                     what, i, (double)grad[i], fd, eps, atol, rtol);
    }
}

void clt_test_log_fn(void *user, enum clt_log_level level, const char *message)
{
    (void)level;
    struct clt_test_log *log = user;
    int n = snprintf(log->text + log->len, sizeof log->text - log->len, "%s\n", message);
    if (n > 0)
        log->len +=
            (size_t)n < sizeof log->text - log->len ? (size_t)n : sizeof log->text - log->len - 1;
}
