/*
 * export_mlp.c: writes what test/check_torch.py checks a checkpoint against.
 *
 *     export_mlp DIR
 *
 * Trains an MLP a few steps (AdamW) on the device named by CLTRAIN_DEVICE, then writes
 *   DIR/mlp.safetensors  the checkpoint (clt_trainer_save), its layers described in the
 *                        metadata "check.layers" and "check.activations"
 *   DIR/io.safetensors   "x" [N, IN], inputs the model has not seen, and "logits" [N, OUT], what
 *                        clt_trainer_eval gives for them
 * The model: x [N, 19] -> fc1 (24) -> relu -> fc2 (17) -> gelu (erf form) -> fc3 (5), with a
 * cross-entropy loss. Exit status 0, 1 on an error, 77 when there is no OpenCL device.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

enum { N = 11, IN = 19, H1 = 24, H2 = 17, OUT = 5, STEPS = 6 };

/* Uniform values in [lo, hi) from a seed (splitmix64). */
static void fill(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        x[i] = lo + (hi - lo) * (float)((double)(z >> 11) / 9007199254740992.0);
    }
}

static int run(struct clt_device *dev, const char *dir)
{
    struct clt_graph *g = NULL;
    if (clt_graph_create(&g) != CLT_OK)
        return 1;
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){N, IN});
    struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){N});
    struct clt_tensor *h = clt_relu(g, clt_linear(g, x, H1, true, "fc1"));
    h = clt_gelu(g, clt_linear(g, h, H2, true, "fc2"), false);
    struct clt_tensor *logits = clt_linear(g, h, OUT, true, "fc3");
    struct clt_tensor *loss = clt_cross_entropy(g, logits, y, -1, 0.0f);
    if (clt_graph_status(g) != CLT_OK) {
        fprintf(stderr, "export_mlp: %s\n", clt_graph_error(g));
        clt_graph_free(g);
        return 1;
    }
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAMW);
    o.optimizer.lr = 0.01;
    o.seed = 42;
    struct clt_trainer *tr = NULL;
    enum clt_status st = clt_trainer_create(dev, g, loss, &o, &tr);
    float xs[N * IN], out[N * OUT];
    int32_t ys[N];
    for (int s = 0; st == CLT_OK && s < STEPS; s++) {
        fill(xs, N * IN, (uint64_t)s, -2.0f, 2.0f);
        for (int i = 0; i < N; i++)
            ys[i] = (i + s) % OUT;
        const void *in[2] = {xs, ys};
        st = clt_trainer_step(tr, in);
    }
    char path[1024];
    struct clt_meta meta[2] = {{"check.layers", "fc1,fc2,fc3"}, {"check.activations", "relu,gelu"}};
    snprintf(path, sizeof path, "%s/mlp.safetensors", dir);
    if (st == CLT_OK)
        st = clt_trainer_save(tr, path, meta, 2);
    /* Fresh inputs, evaluated. */
    fill(xs, N * IN, 1000, -2.0f, 2.0f);
    for (int i = 0; i < N; i++)
        ys[i] = 0;
    const void *in[2] = {xs, ys};
    if (st == CLT_OK)
        st = clt_trainer_eval(tr, in, logits, out, N * OUT, NULL);
    int64_t xshape[2] = {N, IN}, oshape[2] = {N, OUT};
    struct clt__st_entry io[2] = {{"x", CLT__ST_F32, 2, xshape, xs},
                                  {"logits", CLT__ST_F32, 2, oshape, out}};
    snprintf(path, sizeof path, "%s/io.safetensors", dir);
    if (st == CLT_OK)
        st = clt__safetensors_write(path, io, 2, NULL, 0, NULL);
    if (st != CLT_OK)
        fprintf(stderr, "export_mlp: %s\n", clt_status_str(st));
    clt_trainer_free(tr);
    clt_graph_free(g);
    return st == CLT_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: export_mlp DIR\n");
        return 2;
    }
    struct clt_log quiet = {NULL, NULL, CLT_LOG_ERROR};
    struct clt_device_info *list = NULL;
    size_t count = 0;
    if (clt_devices_list(&quiet, &list, &count) != CLT_OK || count == 0) {
        fprintf(stderr, "export_mlp: no OpenCL device: skipping\n");
        clt_devices_free(list);
        return 77;
    }
    clt_devices_free(list);
    struct clt_device *dev = NULL;
    enum clt_status st = clt_device_open(NULL, NULL, &dev);
    if (st != CLT_OK) {
        fprintf(stderr, "export_mlp: cannot open a device: %s\n", clt_status_str(st));
        return 1;
    }
    int rc = run(dev, argv[1]);
    clt_device_close(dev);
    return rc;
}
