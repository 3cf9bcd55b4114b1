/*
 * memplan.c: prints the memory plan of a few models with and without activation
 * recomputation: what activations and their gradients would take unshared, after the
 * liveness plan, and after recomputation; and the planned activations of a trainer in fp16
 * and bf16 with their share of fp32's (clt_memory_report.activations_fp32), or "refused"
 * where the library does not train the model in that precision. Used for docs/graph.md and
 * docs/precision.md.
 *
 *     cltrain-memplan [DEVICE]
 */
#include <stdio.h>

#include "cltrain.h"

/* An MLP of `depth` hidden layers of `width`, GELU, batch 256, 784 inputs. */
static struct clt_tensor *mlp(struct clt_graph *g, int depth, int64_t width)
{
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){256, 784});
    struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){256});
    char name[16];
    for (int i = 0; i < depth; i++) {
        snprintf(name, sizeof name, "h%d", i);
        x = clt_gelu(g, clt_linear(g, x, width, true, name), true);
    }
    return clt_cross_entropy(g, clt_linear(g, x, 10, true, "out"), y, -1, 0.0f);
}

/* A CNN for 28x28 images: two conv-BN-ReLU-pool stages, batch 128. */
static struct clt_tensor *cnn(struct clt_graph *g)
{
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 4, (int64_t[]){128, 1, 28, 28});
    struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){128});
    int64_t ch[2] = {32, 64};
    char name[16];
    for (int i = 0; i < 2; i++) {
        struct clt_conv2d_desc c = {
            .out_channels = ch[i], .kernel_h = 3, .kernel_w = 3, .padding_h = 1, .padding_w = 1};
        snprintf(name, sizeof name, "conv%d", i);
        x = clt_conv2d(g, x, &c, name);
        snprintf(name, sizeof name, "bn%d", i);
        x = clt_max_pool2d(g, clt_relu(g, clt_batch_norm(g, x, 1e-5f, 0.1f, name)), 2, 2, 0);
    }
    x = clt_relu(g, clt_linear(g, clt_flatten(g, x), 128, true, "fc1"));
    return clt_cross_entropy(g, clt_linear(g, x, 10, true, "fc2"), y, -1, 0.0f);
}

/* A character transformer: 4 blocks of width 128, 4 heads, context 128, batch 16. */
static struct clt_tensor *gpt(struct clt_graph *g)
{
    struct clt_tensor *ids = clt_input(g, "ids", CLT_I32, 2, (int64_t[]){16, 128});
    struct clt_tensor *tgt = clt_input(g, "tgt", CLT_I32, 2, (int64_t[]){16, 128});
    struct clt_tensor *x = clt_embedding(g, ids, 96, 128, "emb");
    char name[32], part[48];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "block%d", i);
        snprintf(part, sizeof part, "%s.ln1", name);
        struct clt_tensor *a = clt_layer_norm(g, x, 1e-5f, part);
        snprintf(part, sizeof part, "%s.attn", name);
        x = clt_add(g, x, clt_attention(g, a, 4, true, part));
        snprintf(part, sizeof part, "%s.ln2", name);
        struct clt_tensor *m = clt_layer_norm(g, x, 1e-5f, part);
        snprintf(part, sizeof part, "%s.fc", name);
        m = clt_gelu(g, clt_linear(g, m, 512, true, part), true);
        snprintf(part, sizeof part, "%s.proj", name);
        x = clt_add(g, x, clt_linear(g, m, 128, true, part));
    }
    x = clt_layer_norm(g, x, 1e-5f, "ln_f");
    return clt_cross_entropy(g, clt_linear(g, x, 96, true, "head"), tgt, -1, 0.0f);
}

static double mib(uint64_t b)
{
    return (double)b / 1048576.0;
}

/* The planned activations of a trainer in a 16-bit precision and their share of fp32's, or
 * "refused" (CLT_ERR_UNSUPPORTED), into cell. */
static enum clt_status planned16(struct clt_device *dev, struct clt_graph *g,
                                 struct clt_tensor *loss, enum clt_precision precision, char *cell,
                                 size_t size)
{
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    o.precision = precision;
    struct clt_trainer *tr = NULL;
    struct clt_memory_report r;
    enum clt_status st = clt_trainer_create(dev, g, loss, &o, &tr);
    if (st == CLT_OK)
        st = clt_trainer_memory(tr, &r);
    clt_trainer_free(tr);
    if (st == CLT_ERR_UNSUPPORTED) {
        snprintf(cell, size, "refused");
        return CLT_OK;
    }
    if (st == CLT_OK)
        snprintf(cell, size, "%.2f MiB (%.2fx)", mib(r.activations),
                 r.activations_fp32 ? (double)r.activations / (double)r.activations_fp32 : 1.0);
    return st;
}

int main(int argc, char **argv)
{
    struct clt_device *dev = NULL;
    enum clt_status st = clt_device_open(argc > 1 ? argv[1] : NULL, NULL, &dev);
    if (st != CLT_OK) {
        fprintf(stderr, "cltrain-memplan: %s\n", clt_status_str(st));
        return 1;
    }
    const char *names[3] = {"mlp 8x1024 (batch 256)", "cnn (batch 128)",
                            "gpt 4x128 (batch 16x128)"};
    printf("%-26s %12s %12s %12s %12s %20s %20s\n", "model", "unshared", "planned", "recomputed",
           "params", "fp16 planned", "bf16 planned");
    for (int m = 0; st == CLT_OK && m < 3; m++) {
        struct clt_graph *g = NULL;
        st = clt_graph_create(&g);
        struct clt_tensor *loss = NULL;
        if (st == CLT_OK)
            loss = m == 0 ? mlp(g, 8, 1024) : m == 1 ? cnn(g) : gpt(g);
        if (st == CLT_OK)
            st = clt_graph_status(g);
        struct clt_memory_report r[2];
        for (int re = 0; st == CLT_OK && re < 2; re++) {
            struct clt_trainer_options o;
            clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
            o.recompute = re;
            struct clt_trainer *tr = NULL;
            st = clt_trainer_create(dev, g, loss, &o, &tr);
            if (st == CLT_OK)
                st = clt_trainer_memory(tr, &r[re]);
            clt_trainer_free(tr);
        }
        char half[2][48] = {"", ""};
        if (st == CLT_OK)
            st = planned16(dev, g, loss, CLT_PRECISION_FP16, half[0], sizeof half[0]);
        if (st == CLT_OK)
            st = planned16(dev, g, loss, CLT_PRECISION_BF16, half[1], sizeof half[1]);
        if (st == CLT_OK)
            printf("%-26s %9.2f MiB %9.2f MiB %9.2f MiB %9.2f MiB %20s %20s\n", names[m],
                   mib(r[0].activations_unshared), mib(r[0].activations), mib(r[1].activations),
                   mib(r[0].params), half[0], half[1]);
        clt_graph_free(g);
    }
    if (st != CLT_OK)
        fprintf(stderr, "cltrain-memplan: %s\n", clt_status_str(st));
    clt_device_close(dev);
    return st == CLT_OK ? 0 : 1;
}
