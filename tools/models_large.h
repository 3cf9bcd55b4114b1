/*
 * models_large.h: the large models of cltrain-bench, for GPUs (docs/bench.md, "Large
 * models"). The built-in models (models.h) have 0.1 to 0.4 M parameters: on a GPU their
 * steps measure launch overhead. These two have the shapes of models people train:
 *
 *   gpt2s     the built-in gpt (models.c's builder) at GPT-2 small's shape: width 768,
 *             12 blocks, 12 heads, context 256, dropout 0, over a byte vocabulary (256
 *             symbols, not GPT-2's 50257: the 85.1 M parameters of the blocks are GPT-2
 *             small's, the token table and the head 0.2 M each, where GPT-2 has one tied
 *             table of 38.6 M): 85.6 M parameters.
 *   resnet18  ResNet-18 for 3 x 64 x 64 images and 100 classes: a 3x3 stem (64 channels,
 *             stride 1, no max pool: the usual layout for 64 x 64 inputs, which keeps an
 *             8 x 8 map at the last stage), four stages of two basic blocks (64, 128, 256,
 *             512 channels; stride 2 and a 1x1 projection shortcut with batch norm at the
 *             first block of stages 2 to 4), global average pooling, linear 512 -> 100:
 *             11.2 M parameters.
 *
 * The inputs, outputs and loss of a built model are models.h's: x F32 [B, 3, 64, 64] and
 * y I32 [B], or ids and targets I32 [B, 256].
 */
#ifndef CLTRAIN_TOOLS_MODELS_LARGE_H
#define CLTRAIN_TOOLS_MODELS_LARGE_H

#include <stdbool.h>

#include "models.h"

/* True for "gpt2s" and "resnet18". */
bool model_large_known(const char *name);

/* The synthetic data a large model is built for: text of 256 symbols (gpt2s), 3 x 64 x 64
 * images of 100 classes (resnet18). Zeroes info for an unknown name. */
void model_large_data(const char *name, struct clt_dataset_info *info);

/* Builds a large model at a batch size. On failure writes one line to err, returns an error
 * status and leaves *out empty (model_free is still safe). */
enum clt_status model_large_build(const char *name, int64_t batch, struct model *out, char *err,
                                  size_t err_size);

#endif
