/*
 * install_demo.c: built by install_test.sh against the installed library with
 * `pkg-config cltrain`. Multiplies two small matrices on the default device.
 */
#include <cltrain.h>
#include <math.h>
#include <stdio.h>

int main(void)
{
    printf("cltrain %s (header %s)\n", clt_version(), CLT_VERSION_STRING);
    struct clt_device_info *list = NULL;
    size_t count = 0;
    if (clt_devices_list(NULL, &list, &count) != CLT_OK || count == 0) {
        clt_devices_free(list);
        printf("no OpenCL device\n");
        return 77;
    }
    clt_devices_free(list);

    enum { M = 3, N = 2, K = 4 };
    float a[M * K], b[K * N], c[M * N];
    for (int i = 0; i < M * K; i++)
        a[i] = (float)(i + 1);
    for (int i = 0; i < K * N; i++)
        b[i] = (float)(i % 3) - 1.0f;
    struct clt_device *dev = NULL;
    struct clt_arena *arena = NULL;
    struct clt_view va, vb, vc;
    enum clt_status st = clt_device_open(NULL, NULL, &dev);
    if (st == CLT_OK)
        st = clt_arena_create(dev, 4096, &arena);
    if (st == CLT_OK)
        st = clt_arena_alloc(arena, CLT_F32, 2, (int64_t[]){M, K}, &va);
    if (st == CLT_OK)
        st = clt_arena_alloc(arena, CLT_F32, 2, (int64_t[]){K, N}, &vb);
    if (st == CLT_OK)
        st = clt_arena_alloc(arena, CLT_F32, 2, (int64_t[]){M, N}, &vc);
    if (st == CLT_OK)
        st = clt_view_write(&va, a, sizeof a, NULL);
    if (st == CLT_OK)
        st = clt_view_write(&vb, b, sizeof b, NULL);
    struct clt_gemm_shape g = {.m = M, .n = N, .k = K, .alpha = 1.0f};
    if (st == CLT_OK)
        st = clt_gemm(dev, &g, &va, &vb, &vc);
    if (st == CLT_OK)
        st = clt_view_read(&vc, c, sizeof c, NULL);
    clt_arena_free(arena);
    clt_device_close(dev);
    if (st != CLT_OK) {
        fprintf(stderr, "install_demo: %s\n", clt_status_str(st));
        return 1;
    }
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float want = 0.0f;
            for (int k = 0; k < K; k++)
                want += a[i * K + k] * b[k * N + j];
            if (fabsf(c[i * N + j] - want) > 1e-4f) {
                fprintf(stderr, "install_demo: c[%d,%d] = %g, want %g\n", i, j, c[i * N + j], want);
                return 1;
            }
        }
    }
    printf("install_demo: product correct\n");
    return 0;
}
