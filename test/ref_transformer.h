/*
 * ref_transformer.h: the C reference of one training step of a small pre-norm transformer
 * block used as a language model, in double: forward, mean cross-entropy, the whole backward
 * written out by hand, and the SGD and Adam updates (torch.optim's formulas).
 *
 * The model, as test_transformer.c builds it through the public API (N batch, T sequence,
 * D features, H heads of Dh = D / H features, F = 4 D hidden features, V vocabulary):
 *
 *     x      = emb[ids]                                        [N, T, D]  (zero row for an
 *                                                                          id outside [0, V))
 *     h      = x + aproj(sdpa(qkv(ln1(x))))                    [N, T, D]
 *     out    = h + proj(gelu_tanh(fc(ln2(h))))                 [N, T, D]
 *     logits = head(out)                                       [N, T, V]
 *     loss   = mean over counted rows of -log softmax(logits)[label]
 *
 * Every linear layer is y = x w^T + b with w [out, in]. qkv (D -> 3D) is clt_attention's
 * single packed layer: its output row [3D] is read as [3, H, Dh], that is q, k, v, then the
 * head, then the feature. sdpa is causal with scale 1 / sqrt(Dh); the heads' outputs are joined
 * back as [H, Dh] = [D] per position before aproj (D -> D). Layer norms use the biased variance
 * and 1 / sqrt(var + eps). gelu_tanh is PyTorch's gelu(approximate="tanh"). A row counts in
 * the loss when its label is in [0, V) and is not ignore_index.
 *
 * Parameters are one flat block of doubles holding the tensors below one after the other, in
 * the order the engine creates them, each row-major; gradients use the same layout.
 */
#ifndef CLTRAIN_TEST_REF_TRANSFORMER_H
#define CLTRAIN_TEST_REF_TRANSFORMER_H

#include <stdint.h>

enum ref_transformer_param {
    REF_TRANSFORMER_EMB_W,   /* "emb.weight"       [V, D] */
    REF_TRANSFORMER_LN1_W,   /* "ln1.weight"       [D] */
    REF_TRANSFORMER_LN1_B,   /* "ln1.bias"         [D] */
    REF_TRANSFORMER_QKV_W,   /* "attn.qkv.weight"  [3D, D] */
    REF_TRANSFORMER_QKV_B,   /* "attn.qkv.bias"    [3D] */
    REF_TRANSFORMER_APROJ_W, /* "attn.proj.weight" [D, D] */
    REF_TRANSFORMER_APROJ_B, /* "attn.proj.bias"   [D] */
    REF_TRANSFORMER_LN2_W,   /* "ln2.weight"       [D] */
    REF_TRANSFORMER_LN2_B,   /* "ln2.bias"         [D] */
    REF_TRANSFORMER_FC_W,    /* "fc.weight"        [F, D] */
    REF_TRANSFORMER_FC_B,    /* "fc.bias"          [F] */
    REF_TRANSFORMER_PROJ_W,  /* "proj.weight"      [D, F] */
    REF_TRANSFORMER_PROJ_B,  /* "proj.bias"        [D] */
    REF_TRANSFORMER_HEAD_W,  /* "head.weight"      [V, D] */
    REF_TRANSFORMER_HEAD_B,  /* "head.bias"        [V] */
    REF_TRANSFORMER_NPARAMS,
};

struct ref_transformer_dims {
    int64_t n, t, d, heads, vocab;
    double eps; /* of both layer norms */
};

/* The parameter's name in the engine ("attn.qkv.weight"), its element count, its offset in
 * the flat block, and the size of the whole block. */
const char *ref_transformer_param_name(enum ref_transformer_param which);
int64_t ref_transformer_param_size(const struct ref_transformer_dims *dims,
                                   enum ref_transformer_param which);
int64_t ref_transformer_param_offset(const struct ref_transformer_dims *dims,
                                     enum ref_transformer_param which);
int64_t ref_transformer_params_total(const struct ref_transformer_dims *dims);

/* The loss of ids, labels [N, T] under params (the flat block); when grads is not NULL it
 * receives d loss / d params in the same layout (overwritten). Aborts if memory runs out. */
double ref_transformer_loss(const struct ref_transformer_dims *dims, const double *params,
                            const int32_t *ids, const int32_t *labels, int32_t ignore_index,
                            double *grads);

/* torch.optim.SGD without momentum or weight decay: p -= lr g over n elements. */
void ref_transformer_sgd_update(int64_t n, double *p, const double *g, double lr);

/* torch.optim.Adam without weight decay, the update of step t (1 for the first): m and v [n]
 * are the moments (zero before the first step), updated here; bias corrections 1 - beta^t. */
void ref_transformer_adam_update(int64_t n, double *p, double *m, double *v, const double *g,
                                 int64_t t, double lr, double beta1, double beta2, double eps);

#endif
