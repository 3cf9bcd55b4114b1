/*
 * models_large.c: the bench's large models, gpt2s and resnet18 (models_large.h). gpt2s is
 * models.c's gpt at other sizes; resnet18 is built here, its layers named as torchvision's
 * resnet18 names them (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, fc), so that a
 * checkpoint reads into a PyTorch ResNet by name (bench/torch_train.py).
 */
#include "models_large.h"

#include <stdio.h>
#include <string.h>

#define IMAGE_SIZE 64
#define IMAGE_CLASSES 100
#define TEXT_VOCAB 256

bool model_large_known(const char *name)
{
    return strcmp(name, "gpt2s") == 0 || strcmp(name, "resnet18") == 0;
}

void model_large_data(const char *name, struct clt_dataset_info *info)
{
    memset(info, 0, sizeof *info);
    if (strcmp(name, "gpt2s") == 0) {
        info->kind = CLT_DATASET_TEXT;
        info->count = 1 << 20;
        info->vocab = TEXT_VOCAB;
    } else if (strcmp(name, "resnet18") == 0) {
        info->kind = CLT_DATASET_CLASSES;
        info->count = 100000;
        info->ndim = 3;
        info->shape[0] = 3;
        info->shape[1] = IMAGE_SIZE;
        info->shape[2] = IMAGE_SIZE;
        info->classes = IMAGE_CLASSES;
    }
}

/* conv k x k (padding k / 2, no bias) -> batch norm, named "<prefix>conv<i>" and
 * "<prefix>bn<i>" (or, for a shortcut, "<prefix>downsample.0" and ".1"). */
static struct clt_tensor *conv_bn(struct model *m, struct clt_tensor *x, int64_t channels,
                                  int64_t k, int64_t stride, const char *conv, const char *bn)
{
    struct clt_conv2d_desc c = {.out_channels = channels,
                                .kernel_h = k,
                                .kernel_w = k,
                                .stride_h = stride,
                                .stride_w = stride,
                                .padding_h = k / 2,
                                .padding_w = k / 2};
    x = model_note(m, conv, clt_conv2d(m->g, x, &c, conv));
    return model_note(m, bn, clt_batch_norm(m->g, x, 1e-5f, 0.1f, bn));
}

/* The basic block "layer<s>.<b>": x [B, C, H, W] -> [B, channels, H / stride, W / stride],
 *   relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),
 * conv1 3x3 with the stride, conv2 3x3; the shortcut is x itself, or conv 1x1 with the
 * stride and batch norm when the shape changes. */
static struct clt_tensor *basic_block(struct model *m, struct clt_tensor *x, int64_t channels,
                                      int64_t stride, int s, int b)
{
    char conv[48], bn[48];
    struct clt_tensor *skip = x;
    if (stride != 1 || clt_tensor_dim(x, 1) != channels) {
        snprintf(conv, sizeof conv, "layer%d.%d.downsample.0", s, b);
        snprintf(bn, sizeof bn, "layer%d.%d.downsample.1", s, b);
        skip = conv_bn(m, x, channels, 1, stride, conv, bn);
    }
    snprintf(conv, sizeof conv, "layer%d.%d.conv1", s, b);
    snprintf(bn, sizeof bn, "layer%d.%d.bn1", s, b);
    struct clt_tensor *y = clt_relu(m->g, conv_bn(m, x, channels, 3, stride, conv, bn));
    snprintf(conv, sizeof conv, "layer%d.%d.conv2", s, b);
    snprintf(bn, sizeof bn, "layer%d.%d.bn2", s, b);
    y = conv_bn(m, y, channels, 3, 1, conv, bn);
    snprintf(conv, sizeof conv, "layer%d.%d", s, b);
    return model_note(m, conv, clt_relu(m->g, clt_add(m->g, y, skip)));
}

/* x [B, 3, 64, 64] -> logits [B, 100] (models_large.h). */
static struct clt_tensor *build_resnet18(struct model *m, struct clt_tensor *x, int64_t width)
{
    x = clt_relu(m->g, conv_bn(m, x, width, 3, 1, "conv1", "bn1"));
    for (int s = 1; s <= 4; s++)
        for (int b = 0; b < 2; b++)
            x = basic_block(m, x, width << (s - 1), s > 1 && b == 0 ? 2 : 1, s, b);
    x = model_note(m, "avgpool", clt_global_avg_pool2d(m->g, x));
    return model_note(m, "fc", clt_linear(m->g, x, IMAGE_CLASSES, true, "fc"));
}

enum clt_status model_large_build(const char *name, int64_t batch, struct model *out, char *err,
                                  size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (!model_large_known(name)) {
        model_say(err, err_size, "unknown large model \"%s\" (gpt2s, resnet18)", name);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    struct clt_dataset_info info;
    model_large_data(name, &info);
    if (strcmp(name, "gpt2s") == 0) {
        /* GPT-2 small: D 768, 12 blocks of 12 heads (64 features each), 256 positions. */
        struct model_desc d;
        model_desc_init(&d, "gpt");
        d.width = 768;
        d.depth = 12;
        d.heads = 12;
        d.context = 256;
        d.dropout = 0.0f;
        return model_build(&d, &info, batch, out, err, err_size);
    }
    if (batch <= 0) {
        model_say(err, err_size, "the batch size must be positive");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    enum clt_status st = clt_graph_create(&out->g);
    if (st != CLT_OK) {
        model_say(err, err_size, "cannot create a graph: %s", clt_status_str(st));
        return st;
    }
    struct model *m = out;
    m->batch = batch;
    m->positions = 1;
    m->classes = info.classes;
    int64_t shape[4] = {batch, info.shape[0], info.shape[1], info.shape[2]};
    m->x = clt_input(m->g, "x", CLT_F32, 4, shape);
    m->y = clt_input(m->g, "y", CLT_I32, 1, (int64_t[]){batch});
    m->logits = build_resnet18(m, m->x, 64);
    m->loss = clt_cross_entropy(m->g, m->logits, m->y, -1, 0.0f);
    if ((st = clt_graph_status(m->g)) != CLT_OK) {
        model_say(err, err_size, "cannot build model %s: %s", name, clt_graph_error(m->g));
        model_free(m);
    }
    return st;
}
