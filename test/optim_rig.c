/*
 * optim_rig.c: the fixture and rig test_optim.c's cases share (optim_rig.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim_rig.h"

/* Enough for the largest rig: 4 buffers of 300007 floats (4500 under Oclgrind, where a large
 * arena makes every launch slow), the workspace and alignment. */
static uint64_t arena_bytes(void)
{
    return clt_test_small() ? (uint64_t)256 << 10 : (uint64_t)8 << 20;
}

static const char *copy_source =
    "__kernel void test_optim_copy(__global const float *src, __global float *dst, int off,\n"
    "                              int n)\n"
    "{\n"
    "    const size_t i = get_global_id(0);\n"
    "    if (i < (size_t)n)\n"
    "        dst[off + i] = src[i];\n"
    "}\n";

int optim_fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    void *dev = NULL;
    if (!fx || clt_test_group_setup(&dev) != 0)
        return -1;
    fx->dev = dev;
    if (clt_arena_create(fx->dev, arena_bytes(), &fx->arena) != CLT_OK)
        return -1;
    cl_int err;
    fx->program = clCreateProgramWithSource(fx->dev->context, 1, &copy_source, NULL, &err);
    if (err == CL_SUCCESS)
        err = clBuildProgram(fx->program, 1, &fx->dev->id, "-cl-std=CL1.2", NULL, NULL);
    if (err == CL_SUCCESS)
        fx->copy = clCreateKernel(fx->program, "test_optim_copy", &err);
    *state = fx;
    return err == CL_SUCCESS ? 0 : -1;
}

int optim_fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    if (fx->copy)
        clReleaseKernel(fx->copy);
    if (fx->program)
        clReleaseProgram(fx->program);
    clt_arena_free(fx->arena);
    void *dev = fx->dev;
    int rc = clt_test_group_teardown(&dev);
    free(fx);
    return rc;
}

/* Writes count floats from the host into the start of a view (blocking for the host data). */
void optim_put(struct fixture *fx, const struct clt_view *view, const void *host, size_t count)
{
    if (count == 0)
        return;
    struct clt_device *dev = fx->dev;
    cl_int err;
    cl_mem stage = clCreateBuffer(dev->context, CL_MEM_READ_ONLY, count * 4, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    assert_int_equal(
        clEnqueueWriteBuffer(dev->queue, stage, CL_TRUE, 0, count * 4, host, 0, NULL, NULL),
        CL_SUCCESS);
    const struct clt__buf dst = clt__view_buf(view);
    cl_int off = (cl_int)dst.offset, n = (cl_int)count;
    struct clt__arg args[] = {CLT__ARG(stage), CLT__ARG(dst.mem), CLT__ARG(off), CLT__ARG(n)};
    assert_int_equal(clt__set_args(dev, fx->copy, args, 4), CLT_OK);
    assert_int_equal(
        clEnqueueNDRangeKernel(dev->queue, fx->copy, 1, NULL, &count, NULL, 0, NULL, NULL),
        CL_SUCCESS);
    /* Oclgrind forgets a buffer's shadow once the application releases it, even while a
     * command still uses it: wait for the copy first. */
    assert_int_equal(clFinish(dev->queue), CL_SUCCESS);
    clReleaseMemObject(stage);
}

/* ==== A rig: one optimizer's device buffers, their host mirrors and the reference ======= */

static bool uses_m(const struct clt__optim_config *cfg)
{
    return cfg->kind != CLT__OPTIM_SGD || cfg->momentum != 0.0;
}

static bool uses_v(const struct clt__optim_config *cfg)
{
    return cfg->kind != CLT__OPTIM_SGD;
}

/* Creates the buffers of n elements: params uniform in [-1, 1), m and v zero for Adam; for
 * SGD m is NaN, which the first step must not read (torch sets the buffer to the gradient). */
void rig_init(struct rig *r, struct fixture *fx, const struct clt__optim_config *cfg, int64_t n,
              uint64_t seed)
{
    struct clt_device *dev = fx->dev;
    memset(r, 0, sizeof *r);
    r->fx = fx;
    r->dev = dev;
    r->cfg = *cfg;
    r->n = n;
    r->use_loss = true;
    const size_t ws_floats = clt__optim_workspace_bytes(n) / sizeof(float);
    const uint64_t bytes = ((uint64_t)n * 4 + ws_floats + 64) * 4 + 16 * 4096;
    r->arena = fx->arena;
    clt_arena_reset(r->arena);
    assert_true(bytes <= clt_arena_size(r->arena));

    const size_t count = (size_t)(n > 0 ? n : 1);
    float *p = malloc(count * sizeof *p), *mv = malloc(count * sizeof *mv);
    r->grads_host = calloc(count, sizeof *r->grads_host);
    r->got = malloc(count * sizeof *r->got);
    r->ref.p = malloc(count * sizeof *r->ref.p);
    r->ref.m = malloc(count * sizeof *r->ref.m);
    r->ref.v = malloc(count * sizeof *r->ref.v);
    assert_true(p && mv && r->grads_host && r->got && r->ref.p && r->ref.m && r->ref.v);
    r->ref.n = n;

    clt_test_fill(p, count, seed, -1.0f, 1.0f);
    const float m0 = cfg->kind == CLT__OPTIM_SGD ? NAN : 0.0f;
    for (size_t i = 0; i < count; i++) {
        mv[i] = m0;
        r->ref.p[i] = p[i];
        r->ref.m[i] = 0.0;
        r->ref.v[i] = 0.0;
    }
    /* A small first view puts every buffer at a non-zero offset. */
    (void)clt_test_upload(r->arena, NULL, 3);
    r->params = clt_test_upload(r->arena, NULL, count);
    r->grads = clt_test_upload(r->arena, NULL, count);
    r->m = clt_test_upload(r->arena, NULL, count);
    r->v = clt_test_upload(r->arena, NULL, count);
    r->loss = clt_test_upload(r->arena, NULL, 1);
    optim_put(fx, &r->params, p, count);
    optim_put(fx, &r->grads, r->grads_host, count); /* zeros */
    optim_put(fx, &r->m, mv, count);
    for (size_t i = 0; i < count; i++)
        mv[i] = 0.0f;
    optim_put(fx, &r->v, mv, count);
    optim_put(fx, &r->loss, mv, 1);
    r->ws = clt_test_upload(r->arena, NULL, ws_floats);
    r->status = clt_test_upload(r->arena, NULL, CLT__OPTIM_STATUS_BYTES / 4);
    assert_int_equal(clt__optim_status_reset(dev, clt__view_buf(&r->status)), CLT_OK);
    free(p);
    free(mv);
}

void rig_free(struct rig *r)
{
    free(r->grads_host);
    free(r->got);
    free(r->ref.p);
    free(r->ref.m);
    free(r->ref.v);
}

static struct clt__buf maybe(const struct clt_view *view, bool used)
{
    return used ? clt__view_buf(view) : (struct clt__buf){NULL, 0};
}

/* Enqueues one device step with the gradient in grads_host and the given loss. */
enum clt_status rig_device_step(struct rig *r, float lr, float scale, float loss)
{
    optim_put(r->fx, &r->grads, r->grads_host, (size_t)r->n);
    optim_put(r->fx, &r->loss, &loss, 1);
    return clt__optim_step(r->dev, &r->cfg, r->n, clt__view_buf(&r->params),
                           clt__view_buf(&r->grads), maybe(&r->m, uses_m(&r->cfg)),
                           maybe(&r->v, uses_v(&r->cfg)), maybe(&r->loss, r->use_loss),
                           clt__view_buf(&r->ws), clt__view_buf(&r->status), lr, scale);
}

/* One step on the device and in the reference. */
void rig_step(struct rig *r, float lr, float scale, float loss)
{
    assert_int_equal(rig_device_step(r, lr, scale, loss), CLT_OK);
    ref_optim_step(&r->cfg, &r->ref, r->grads_host, r->use_loss ? (double)loss : 0.0, (double)lr,
                   (double)scale);
}

struct clt__optim_status rig_status(struct rig *r)
{
    struct clt__optim_status s;
    assert_int_equal(clt__optim_status_read(r->dev, clt__view_buf(&r->status), &s), CLT_OK);
    return s;
}

static void compare_buffer(struct rig *r, const char *what, const struct clt_view *view,
                           const double *want, double atol, double rtol)
{
    if (r->n == 0)
        return;
    clt_test_download(view, r->got, (size_t)r->n);
    clt_test_assert_close(what, r->got, want, (size_t)r->n, atol, rtol);
}

/* Compares the device's params, state and status with the reference. */
void rig_compare(struct rig *r, const char *what)
{
    char label[200];
    const bool sgd = r->cfg.kind == CLT__OPTIM_SGD;
    struct clt__optim_status s = rig_status(r);
    if (s.step != r->ref.t || s.skipped != r->ref.skipped || s.last_skip != r->ref.last_skip)
        fail_msg("%s: status step %d skipped %d last_skip %d, want %lld %lld %d", what, s.step,
                 s.skipped, s.last_skip, (long long)r->ref.t, (long long)r->ref.skipped,
                 r->ref.last_skip);
    const double want_norm = r->ref.grad_norm;
    if (isfinite(want_norm)) {
        double want_coef = r->ref.clip_coef;
        snprintf(label, sizeof label, "%s: grad norm", what);
        clt_test_assert_close(label, &s.grad_norm, &want_norm, 1, 1e-30, 5e-7);
        snprintf(label, sizeof label, "%s: clip factor", what);
        clt_test_assert_close(label, &s.clip_coef, &want_coef, 1, 0.0, 1e-6);
    } else if (isnan(want_norm) != isnan(s.grad_norm) || isinf(s.grad_norm) != isinf(want_norm)) {
        fail_msg("%s: grad norm %g, want %g", what, (double)s.grad_norm, want_norm);
    }
    if (!sgd && r->ref.t > 0) {
        /* Computed from 1 - beta in double on the host, so beta = 0.999 keeps its digits. */
        const double want_bc[2] = {1.0 - pow(r->cfg.beta1, (double)r->ref.t),
                                   1.0 - pow(r->cfg.beta2, (double)r->ref.t)};
        const float got_bc[2] = {s.bias_correction1, s.bias_correction2};
        snprintf(label, sizeof label, "%s: bias corrections", what);
        clt_test_assert_close(label, got_bc, want_bc, 2, 0.0, 2e-6);
    }
    snprintf(label, sizeof label, "%s: params", what);
    compare_buffer(r, label, &r->params, r->ref.p, 1e-6, 1e-6);
    if (sgd && uses_m(&r->cfg) && r->ref.t > 0) {
        snprintf(label, sizeof label, "%s: momentum buffer", what);
        compare_buffer(r, label, &r->m, r->ref.m, 1e-6, 2e-6);
    }
    if (!sgd) {
        snprintf(label, sizeof label, "%s: m", what);
        compare_buffer(r, label, &r->m, r->ref.m, 1e-7, 4e-6);
        snprintf(label, sizeof label, "%s: v", what);
        compare_buffer(r, label, &r->v, r->ref.v, 1e-9, 4e-6);
    }
}

/* Downloads params, m and v into one host array [3 n] for bit comparisons. */
float *rig_snapshot(struct rig *r)
{
    const size_t n = (size_t)r->n;
    float *s = malloc((3 * n + 1) * sizeof *s);
    assert_non_null(s);
    if (n == 0)
        return s;
    clt_test_download(&r->params, s, n);
    clt_test_download(&r->m, s + n, n);
    clt_test_download(&r->v, s + 2 * n, n);
    return s;
}

/* ==== Sizes ============================================================================= */

static const int64_t sizes_big[] = {1, 37, 1001};
static const int64_t sizes_small[] = {1, 37, 101};

const int64_t *optim_sizes(void)
{
    return clt_test_small() ? sizes_small : sizes_big;
}

/* Runs `steps` steps of cfg on every size with the schedule's learning rate, comparing with
 * the reference after each one. */
void optim_run_steps(struct fixture *fx, const struct clt__optim_config *cfg,
                     const struct clt__lr_schedule *sched, int steps, float scale, const char *name)
{
    assert_int_equal(clt__lr_schedule_check(NULL, sched), CLT_OK);
    for (int k = 0; k < NSIZES; k++) {
        const int64_t n = optim_sizes()[k];
        struct rig r;
        rig_init(&r, fx, cfg, n, 100 + (uint64_t)n);
        for (int s = 0; s < steps; s++) {
            clt_test_fill(r.grads_host, (size_t)n, 1000 * (uint64_t)s + (uint64_t)n, -1.0f, 1.0f);
            rig_step(&r, (float)clt__lr_at(sched, s), scale, 2.5f);
            char what[160];
            snprintf(what, sizeof what, "%s n=%lld step %d", name, (long long)n, s);
            rig_compare(&r, what);
        }
        rig_free(&r);
    }
}

/* cl/optim.cl's optim_kahan_add. */
static void kahan_add(float *s, float *c, float x)
{
    const float y = x - *c;
    const float t = *s + y;
    *c = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

/* cl/optim.cl's norm_chunk: the sum of work-item i of a level. */
static float norm_chunk(const float *in, int64_t count, int64_t parts, int64_t i, bool square,
                        float scale)
{
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f}, c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t k = 0; k < 64; k++) {
        const int64_t j = i + k * parts;
        if (j >= count)
            continue;
        float x = in[j];
        if (square) {
            x = x * scale;
            x = x * x;
        }
        kahan_add(&s[k % 4], &c[k % 4], x);
    }
    float t = s[0], tc = c[0];
    for (int w = 1; w < 4; w++)
        kahan_add(&t, &tc, s[w] - c[w]);
    return t;
}

float optim_norm_in_kernel_order(const float *g, int64_t n, float scale)
{
    const float *in = g;
    float *level = NULL;
    int64_t count = n;
    bool square = true;
    while (count > 64 || square) {
        const int64_t parts = (count + 63) / 64;
        float *next = malloc((size_t)parts * sizeof *next);
        assert_non_null(next);
        for (int64_t i = 0; i < parts; i++)
            next[i] = norm_chunk(in, count, parts, i, square, scale);
        free(level);
        in = level = next;
        count = parts;
        square = false;
    }
    float s = 0.0f, c = 0.0f;
    for (int64_t j = 0; j < count; j++)
        kahan_add(&s, &c, in[j]);
    free(level);
    return sqrtf(s);
}
