/*
 * train_mlp.c: train a small MLP through the public API only.
 *
 * The task is synthetic, so the example needs no files: each input has 8 features in
 * [-1, 1) and its label says which of the first three is largest. A 8-32-3 MLP with ReLU
 * learns it in a few hundred Adam steps. Run with an optional device selection:
 *
 *     ./train_mlp [pocl|llvmpipe|gpu|P:D]
 */
#include <cltrain.h>
#include <stdio.h>
#include <stdlib.h>

enum { BATCH = 64, FEATURES = 8, HIDDEN = 32, CLASSES = 3, STEPS = 300 };

// Fills one batch from a simple linear congruential generator.
static void make_batch(float *x, int32_t *y, uint32_t *rng)
{
    for (int r = 0; r < BATCH; r++) {
        for (int f = 0; f < FEATURES; f++) {
            *rng = *rng * 1664525u + 1013904223u;
            x[r * FEATURES + f] = (float)(*rng >> 8) / 8388608.0f - 1.0f;
        }
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            if (x[r * FEATURES + c] > x[r * FEATURES + best])
                best = c;
        y[r] = best;
    }
}

int main(int argc, char **argv)
{
    struct clt_device *dev = NULL;
    struct clt_graph *g = NULL;
    struct clt_trainer *tr = NULL;
    enum clt_status st = clt_device_open(argc > 1 ? argv[1] : NULL, NULL, &dev);
    if (st == CLT_OK)
        st = clt_graph_create(&g);
    if (st != CLT_OK) {
        fprintf(stderr, "train_mlp: %s\n", clt_status_str(st));
        return 1;
    }

    // The model: x [B, 8] -> linear 32 -> relu -> linear 3 -> cross-entropy with y [B].
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){BATCH, FEATURES});
    struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){BATCH});
    struct clt_tensor *h = clt_relu(g, clt_linear(g, x, HIDDEN, true, "fc1"));
    struct clt_tensor *logits = clt_linear(g, h, CLASSES, true, "fc2");
    struct clt_tensor *loss = clt_cross_entropy(g, logits, y, -1, 0.0f);
    if (clt_graph_status(g) != CLT_OK) {
        fprintf(stderr, "train_mlp: %s\n", clt_graph_error(g));
        return 1;
    }

    struct clt_trainer_options opt;
    clt_trainer_options_init(&opt, CLT_OPTIM_ADAM);
    opt.optimizer.lr = 0.01;
    opt.seed = 42;
    st = clt_trainer_create(dev, g, loss, &opt, &tr);

    static float xb[BATCH * FEATURES];
    static int32_t yb[BATCH];
    uint32_t rng = 1;
    float value = 0.0f;
    for (int step = 0; st == CLT_OK && step < STEPS; step++) {
        make_batch(xb, yb, &rng);
        const void *batch[] = {xb, yb};
        st = clt_trainer_step(tr, batch); // enqueues; returns at once
        if (st == CLT_OK && step % 100 == 0 && (st = clt_trainer_loss(tr, &value)) == CLT_OK)
            printf("step %3d  loss %.4f\n", step, value);
    }

    // Held-out accuracy, forward only.
    static float out[BATCH * CLASSES];
    int correct = 0;
    make_batch(xb, yb, &rng);
    const void *batch[] = {xb, yb};
    if (st == CLT_OK)
        st = clt_trainer_eval(tr, batch, logits, out, BATCH * CLASSES, &value);
    for (int r = 0; st == CLT_OK && r < BATCH; r++) {
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            if (out[r * CLASSES + c] > out[r * CLASSES + best])
                best = c;
        correct += best == yb[r];
    }
    if (st == CLT_OK)
        printf("held-out loss %.4f, accuracy %d/%d\n", value, correct, BATCH);
    else
        fprintf(stderr, "train_mlp: %s\n", clt_status_str(st));

    clt_trainer_free(tr);
    clt_graph_free(g);
    clt_device_close(dev);
    return st == CLT_OK && correct >= BATCH * 8 / 10 ? 0 : 1;
}
