/*
 * library_checkpoint.c: a program that trains with the library alone, as an application
 * would, and saves a checkpoint that `cltrain eval` reads: the recipe of docs/training.md,
 * "Checkpoints of library programs". The model is the model file "linear 12 / relu /
 * linear classes" (tensors fc1.*, fc2.*) on 3 features and 3 classes, the label being the
 * largest feature: the data of test/cli_outputs_test.sh.
 *
 * Usage: library_checkpoint OUT DATA [bare]
 *   OUT   the checkpoint to write
 *   DATA  the --data spec recorded in it (cltrain eval's default data)
 *   bare  save without cltrain's metadata (cltrain eval must then refuse it clearly)
 * Exit status 0, 1 on a failure, 77 without an OpenCL device.
 */
#include <cltrain.h>
#include <stdio.h>
#include <string.h>

enum { BATCH = 32, FEATURES = 3, HIDDEN = 12, CLASSES = 3, STEPS = 200 };

static void make_batch(float *x, int32_t *y, uint32_t *rng)
{
    for (int r = 0; r < BATCH; r++) {
        int best = 0;
        for (int f = 0; f < FEATURES; f++) {
            *rng = *rng * 1664525u + 1013904223u;
            x[r * FEATURES + f] = (float)(*rng >> 8) / 16777216.0f;
            if (x[r * FEATURES + f] > x[r * FEATURES + best])
                best = f;
        }
        y[r] = best;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: library_checkpoint OUT DATA [bare]\n");
        return 1;
    }
    struct clt_device *dev = NULL;
    struct clt_graph *g = NULL;
    struct clt_trainer *tr = NULL;
    enum clt_status st = clt_device_open(NULL, NULL, &dev);
    if (st == CLT_ERR_NO_DEVICE)
        return 77;
    if (st == CLT_OK)
        st = clt_graph_create(&g);
    if (st != CLT_OK) {
        fprintf(stderr, "library_checkpoint: %s\n", clt_status_str(st));
        clt_device_close(dev);
        return 1;
    }
    /* x [B, 3] -> fc1 (12) -> relu -> fc2 (3): the names cltrain gives a model file's layers. */
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){BATCH, FEATURES});
    struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){BATCH});
    struct clt_tensor *h = clt_relu(g, clt_linear(g, x, HIDDEN, true, "fc1"));
    struct clt_tensor *logits = clt_linear(g, h, CLASSES, true, "fc2");
    struct clt_tensor *loss = clt_cross_entropy(g, logits, y, -1, 0.0f);
    struct clt_trainer_options opt;
    clt_trainer_options_init(&opt, CLT_OPTIM_ADAM);
    opt.optimizer.lr = 0.02;
    st = clt_graph_status(g);
    if (st == CLT_OK)
        st = clt_trainer_create(dev, g, loss, &opt, &tr);
    static float xb[BATCH * FEATURES];
    static int32_t yb[BATCH];
    uint32_t rng = 7;
    for (int step = 0; st == CLT_OK && step < STEPS; step++) {
        make_batch(xb, yb, &rng);
        const void *batch[] = {xb, yb};
        st = clt_trainer_step(tr, batch);
    }
    /* What `cltrain eval` needs to rebuild the model and find its data. */
    const struct clt_meta meta[] = {
        {"model", "file path=model.txt"},
        {"model.spec", "linear 12\nrelu\nlinear classes\n"},
        {"data", argv[2]},
        {"data.shape", "3"},
        {"data.classes", "3"},
    };
    bool bare = argc > 3 && strcmp(argv[3], "bare") == 0;
    if (st == CLT_OK)
        st = clt_trainer_save(tr, argv[1], bare ? NULL : meta, bare ? 0 : 5);
    if (st != CLT_OK)
        fprintf(stderr, "library_checkpoint: %s\n", clt_status_str(st));
    clt_trainer_free(tr);
    clt_graph_free(g);
    clt_device_close(dev);
    return st == CLT_OK ? 0 : 1;
}
