/*
 * models.c: the built-in models (mlp, cnn, gpt), building models described in a text file
 * (model_file.c parses them), and the one-line description stored in checkpoints. See models.h for
 * the contract and docs/formats.md for the model file format.
 */
#include "models.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_SPEC_MAX (1u << 20) /* a model file larger than 1 MiB is surely a mistake */

void model_say(char *err, size_t size, const char *fmt, ...)
{
    if (!err || size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
}

/* ---- Descriptions ------------------------------------------------------------------------ */

void model_desc_init(struct model_desc *d, const char *kind)
{
    memset(d, 0, sizeof *d);
    d->dropout = -1.0f;
    snprintf(d->kind, sizeof d->kind, "%s", kind ? kind : "");
    model_defaults(d);
}

void model_defaults(struct model_desc *d)
{
    bool gpt = strcmp(d->kind, "gpt") == 0, cnn = strcmp(d->kind, "cnn") == 0;
    bool mlp = strcmp(d->kind, "mlp") == 0;
    if (d->width <= 0)
        d->width = gpt ? 128 : cnn ? 16 : mlp ? 256 : 0;
    if (d->depth <= 0)
        d->depth = gpt ? 2 : mlp ? 2 : 0;
    if (d->heads <= 0)
        d->heads = gpt ? 4 : 0;
    if (d->context <= 0)
        d->context = gpt ? 64 : 0;
    if (d->dropout < 0.0f)
        d->dropout = cnn ? 0.1f : 0.0f;
}

enum clt_status model_desc_from_arg(const char *arg, struct model_desc *d, char *err,
                                    size_t err_size)
{
    if (strncmp(arg, "file:", 5) == 0) {
        if (arg[5] == '\0' || strlen(arg + 5) >= sizeof d->path) {
            model_say(err, err_size, "--model file:PATH needs a path (at most %zu bytes)",
                      sizeof d->path - 1);
            return CLT_ERR_INVALID_ARGUMENT;
        }
        model_desc_init(d, "file");
        snprintf(d->path, sizeof d->path, "%s", arg + 5);
        return CLT_OK;
    }
    if (strcmp(arg, "mlp") == 0 || strcmp(arg, "cnn") == 0 || strcmp(arg, "gpt") == 0) {
        model_desc_init(d, arg);
        return CLT_OK;
    }
    model_say(err, err_size, "unknown model \"%s\" (mlp, cnn, gpt or file:PATH)", arg);
    return CLT_ERR_INVALID_ARGUMENT;
}

int model_desc_format(const struct model_desc *d, char *out, size_t size)
{
    int n = snprintf(out, size, "%s width=%lld depth=%lld heads=%lld context=%lld dropout=%g",
                     d->kind, (long long)d->width, (long long)d->depth, (long long)d->heads,
                     (long long)d->context, (double)d->dropout);
    if (strcmp(d->kind, "file") == 0 && n >= 0) {
        size_t used = (size_t)n < size ? (size_t)n : size;
        int m = snprintf(out + used, size - used, " path=%s", d->path);
        n = m < 0 ? m : n + m;
    }
    return n;
}

bool model_parse_i64(const char *s, size_t len, int64_t lo, int64_t hi, int64_t *out)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end = NULL;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool model_parse_f32(const char *s, size_t len, float *out)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno || *end != '\0' || !isfinite(v))
        return false;
    *out = (float)v;
    return true;
}

enum clt_status model_desc_parse(const char *text, struct model_desc *d)
{
    struct model_desc r;
    memset(&r, 0, sizeof r);
    const char *p = text, *sp = strchr(text, ' ');
    size_t klen = sp ? (size_t)(sp - p) : strlen(p);
    if (klen == 0 || klen >= sizeof r.kind)
        return CLT_ERR_FORMAT;
    memcpy(r.kind, p, klen);
    if (strcmp(r.kind, "mlp") && strcmp(r.kind, "cnn") && strcmp(r.kind, "gpt") &&
        strcmp(r.kind, "file"))
        return CLT_ERR_FORMAT;
    p += klen;
    r.dropout = -1.0f;
    while (*p == ' ') {
        p++;
        if (strncmp(p, "path=", 5) == 0) { /* always last: the rest of the line */
            if (strlen(p + 5) >= sizeof r.path)
                return CLT_ERR_FORMAT;
            snprintf(r.path, sizeof r.path, "%s", p + 5);
            p += strlen(p);
            break;
        }
        const char *eq = strchr(p, '='), *end = strchr(p, ' ');
        if (!end)
            end = p + strlen(p);
        if (!eq || eq > end)
            return CLT_ERR_FORMAT;
        size_t nlen = (size_t)(eq - p), vlen = (size_t)(end - eq - 1);
        bool ok;
        if (nlen == 5 && strncmp(p, "width", 5) == 0)
            ok = model_parse_i64(eq + 1, vlen, 0, 1 << 20, &r.width);
        else if (nlen == 5 && strncmp(p, "depth", 5) == 0)
            ok = model_parse_i64(eq + 1, vlen, 0, 1 << 10, &r.depth);
        else if (nlen == 5 && strncmp(p, "heads", 5) == 0)
            ok = model_parse_i64(eq + 1, vlen, 0, 1 << 10, &r.heads);
        else if (nlen == 7 && strncmp(p, "context", 7) == 0)
            ok = model_parse_i64(eq + 1, vlen, 0, 1 << 20, &r.context);
        else if (nlen == 7 && strncmp(p, "dropout", 7) == 0)
            ok = model_parse_f32(eq + 1, vlen, &r.dropout) && r.dropout >= 0.0f && r.dropout < 1.0f;
        else
            ok = false;
        if (!ok)
            return CLT_ERR_FORMAT;
        p = end;
    }
    if (*p != '\0' || (strcmp(r.kind, "file") == 0 && r.path[0] == '\0'))
        return CLT_ERR_FORMAT;
    model_defaults(&r);
    *d = r;
    return CLT_OK;
}

/* ---- The summary -------------------------------------------------------------------------- */

/* Records a layer's output for the summary (returns x, so that it wraps a builder call). */
static struct clt_tensor *note(struct model *m, const char *name, struct clt_tensor *x)
{
    if (!x)
        return x;
    if (m->nlayers == MODEL_SUMMARY_MAX) {
        m->more_layers++;
        return x;
    }
    struct model_layer *l = &m->layers[m->nlayers++];
    snprintf(l->name, sizeof l->name, "%.63s", name);
    l->out = x;
    return x;
}

struct clt_tensor *model_note(struct model *m, const char *name, struct clt_tensor *x)
{
    return note(m, name, x);
}

/* ---- Built-in models ---------------------------------------------------------------------- */

/* x [B, shape...] -> flattened [B, D] -> (linear width, relu, dropout) x depth -> linear K. */
static struct clt_tensor *build_mlp(struct model *m, struct clt_graph *g,
                                    const struct model_desc *d, struct clt_tensor *x,
                                    int64_t classes)
{
    if (clt_tensor_ndim(x) > 2)
        x = note(m, "flatten", clt_flatten(g, x));
    char name[32];
    for (int64_t i = 0; i < d->depth; i++) {
        snprintf(name, sizeof name, "fc%lld", (long long)i + 1);
        x = note(m, name, clt_linear(g, x, d->width, true, name));
        x = note(m, "relu", clt_relu(g, x));
        if (d->dropout > 0.0f)
            x = note(m, "dropout", clt_dropout(g, x, d->dropout));
    }
    return note(m, "out", clt_linear(g, x, classes, true, "out"));
}

/* x [B, C, H, W]: two stages conv3x3 (width, then 2 width) - batch norm - relu - maxpool 2,
 * flatten, linear 4 width - relu - dropout, linear K. */
static struct clt_tensor *build_cnn(struct model *m, struct clt_graph *g,
                                    const struct model_desc *d, struct clt_tensor *x,
                                    int64_t classes)
{
    char name[16];
    for (int i = 0; i < 2; i++) {
        struct clt_conv2d_desc c = {.out_channels = d->width << i,
                                    .kernel_h = 3,
                                    .kernel_w = 3,
                                    .padding_h = 1,
                                    .padding_w = 1};
        snprintf(name, sizeof name, "conv%d", i + 1);
        x = note(m, name, clt_conv2d(g, x, &c, name));
        snprintf(name, sizeof name, "bn%d", i + 1);
        x = note(m, name, clt_batch_norm(g, x, 1e-5f, 0.1f, name));
        x = note(m, "relu", clt_relu(g, x));
        x = note(m, "maxpool", clt_max_pool2d(g, x, 2, 2, 0));
    }
    x = note(m, "flatten", clt_flatten(g, x));
    x = note(m, "fc1", clt_linear(g, x, 4 * d->width, true, "fc1"));
    x = note(m, "relu", clt_relu(g, x));
    if (d->dropout > 0.0f)
        x = note(m, "dropout", clt_dropout(g, x, d->dropout));
    return note(m, "fc2", clt_linear(g, x, classes, true, "fc2"));
}

/* ids [B, T] -> token embedding [B, T, D] + learned positions, then `depth` pre-norm blocks
 *   x = x + attn(ln1(x)),  x = x + proj(gelu(fc(ln2(x))))   (fc: D -> 4D, proj: 4D -> D)
 * then a final layer norm and the head D -> V: logits [B, T, V].
 *
 * Positions: clt_add needs equal shapes and the graph has no broadcast add, but clt_add_bias
 * adds a [D'] vector to every row of [..., D']. Viewing the embeddings as [B, T * D] rows,
 * the position table is a parameter "pos.weight" [T * D] (row t of the [T, D] table at
 * t * D), added to every example in one op with no extra input. It starts N(0, 1), as the
 * token embedding does: a table much smaller than the tokens' (GPT-2's 0.02) is all but lost
 * in the first layer norm, and the model then learns positions slowly. */
static struct clt_tensor *build_gpt(struct model *mo, struct clt_graph *g,
                                    const struct model_desc *d, struct clt_tensor *ids,
                                    int64_t batch, int64_t vocab)
{
    int64_t T = d->context, D = d->width;
    struct clt_tensor *x = note(mo, "tok", clt_embedding(g, ids, vocab, D, "tok"));
    struct clt_tensor *pos = clt_param(g, "pos.weight", 1, (int64_t[]){T * D},
                                       (struct clt_init){CLT_INIT_NORMAL, 0.0f, 1.0f});
    clt_param_set_kind(pos, CLT_PARAM_EMBEDDING); /* learned positions: no weight decay */
    x = clt_reshape(g, x, 2, (int64_t[]){batch, T * D});
    x = note(mo, "pos", clt_reshape(g, clt_add_bias(g, x, pos), 3, (int64_t[]){batch, T, D}));
    if (d->dropout > 0.0f)
        x = clt_dropout(g, x, d->dropout);
    char name[64];
    for (int64_t i = 0; i < d->depth; i++) {
        long long b = (long long)i;
        snprintf(name, sizeof name, "block%lld.ln1", b);
        struct clt_tensor *a = clt_layer_norm(g, x, 1e-5f, name);
        snprintf(name, sizeof name, "block%lld.attn", b);
        a = clt_attention(g, a, d->heads, true, name);
        if (d->dropout > 0.0f)
            a = clt_dropout(g, a, d->dropout);
        x = clt_add(g, x, a);
        snprintf(name, sizeof name, "block%lld.ln2", b);
        struct clt_tensor *m = clt_layer_norm(g, x, 1e-5f, name);
        snprintf(name, sizeof name, "block%lld.fc", b);
        m = clt_gelu(g, clt_linear(g, m, 4 * D, true, name), true);
        snprintf(name, sizeof name, "block%lld.proj", b);
        m = clt_linear(g, m, D, true, name);
        if (d->dropout > 0.0f)
            m = clt_dropout(g, m, d->dropout);
        x = clt_add(g, x, m);
        snprintf(name, sizeof name, "block%lld", b);
        note(mo, name, x);
    }
    x = note(mo, "ln_f", clt_layer_norm(g, x, 1e-5f, "ln_f"));
    return note(mo, "head", clt_linear(g, x, vocab, true, "head"));
}

/* ---- Models from files -------------------------------------------------------------------- */

/* Applies the layers of a model file to x [B, shape...]; the result must be [B, classes]. */
static struct clt_tensor *build_layers(struct model *m, struct clt_graph *g,
                                       const struct layer_list *list, struct clt_tensor *x,
                                       int64_t classes, char *err, size_t err_size)
{
    int convs = 0, linears = 0, norms = 0;
    char name[32];
    for (int i = 0; i < list->count && x; i++) {
        const struct layer *l = &list->layers[i];
        uint32_t nd = clt_tensor_ndim(x);
        bool image = nd == 4;
        switch (l->kind) {
        case LAYER_LINEAR:
            if (nd != 2) {
                model_say(err, err_size,
                          "line %d: linear needs [batch, features] input, got %u "
                          "dimensions (add `flatten` before it)",
                          l->line, (unsigned)nd);
                return NULL;
            }
            snprintf(name, sizeof name, "fc%d", ++linears);
            x = clt_linear(g, x, l->n < 0 ? classes : l->n, l->bias, name);
            break;
        case LAYER_CONV2D: {
            if (!image) {
                model_say(err, err_size,
                          "line %d: conv2d needs image input [batch, C, H, W], got "
                          "%u dimensions",
                          l->line, (unsigned)nd);
                return NULL;
            }
            struct clt_conv2d_desc c = {.out_channels = l->n,
                                        .kernel_h = l->k,
                                        .kernel_w = l->k,
                                        .stride_h = l->stride,
                                        .stride_w = l->stride,
                                        .padding_h = l->pad,
                                        .padding_w = l->pad,
                                        .bias = l->bias};
            snprintf(name, sizeof name, "conv%d", ++convs);
            x = clt_conv2d(g, x, &c, name);
            break;
        }
        case LAYER_MAXPOOL:
        case LAYER_AVGPOOL:
        case LAYER_GLOBALAVGPOOL:
            if (!image) {
                model_say(err, err_size,
                          "line %d: pooling needs image input [batch, C, H, W], "
                          "got %u dimensions",
                          l->line, (unsigned)nd);
                return NULL;
            }
            x = l->kind == LAYER_MAXPOOL   ? clt_max_pool2d(g, x, l->n, l->stride, l->pad)
                : l->kind == LAYER_AVGPOOL ? clt_avg_pool2d(g, x, l->n, l->stride, l->pad)
                                           : clt_global_avg_pool2d(g, x);
            break;
        case LAYER_BATCHNORM:
            if (nd != 2 && nd != 4) {
                model_say(err, err_size,
                          "line %d: batchnorm needs [batch, C] or [batch, C, H, W] "
                          "input",
                          l->line);
                return NULL;
            }
            snprintf(name, sizeof name, "bn%d", ++norms);
            x = clt_batch_norm(g, x, 1e-5f, 0.1f, name);
            break;
        case LAYER_LAYERNORM:
            snprintf(name, sizeof name, "ln%d", ++norms);
            x = clt_layer_norm(g, x, 1e-5f, name);
            break;
        case LAYER_FLATTEN:
            x = nd > 2 ? clt_flatten(g, x) : x;
            break;
        case LAYER_DROPOUT:
            x = l->f > 0.0f ? clt_dropout(g, x, l->f) : x;
            break;
        case LAYER_RELU:
            x = clt_relu(g, x);
            break;
        case LAYER_LEAKY_RELU:
            x = clt_leaky_relu(g, x, l->f);
            break;
        case LAYER_GELU:
            x = clt_gelu(g, x, true);
            break;
        case LAYER_TANH:
            x = clt_tanh(g, x);
            break;
        case LAYER_SIGMOID:
            x = clt_sigmoid(g, x);
            break;
        case LAYER_SILU:
            x = clt_silu(g, x);
            break;
        }
        if (!x || clt_graph_status(g) != CLT_OK) {
            model_say(err, err_size, "line %d: %s", l->line, clt_graph_error(g));
            return NULL;
        }
        bool named = l->kind == LAYER_LINEAR || l->kind == LAYER_CONV2D ||
                     l->kind == LAYER_BATCHNORM || l->kind == LAYER_LAYERNORM;
        note(m, named ? name : model_layer_kind_name(l->kind), x);
    }
    if (x && (clt_tensor_ndim(x) != 2 || clt_tensor_dim(x, 1) != classes)) {
        model_say(err, err_size,
                  "the model file's last layer must give [batch, %lld] (one output "
                  "per class): end it with `linear classes`",
                  (long long)classes);
        return NULL;
    }
    return x;
}

/* ---- Building ----------------------------------------------------------------------------- */

static enum clt_status build_file_model(struct model *m, const struct model_desc *d,
                                        struct clt_tensor *x, int64_t classes, char *err,
                                        size_t err_size)
{
    char *owned = NULL;
    const char *text = d->spec;
    if (!text) {
        char why[600];
        owned = model_read_file(d->path, MODEL_SPEC_MAX, why, sizeof why);
        if (!owned) {
            model_say(err, err_size, "%s", why);
            return CLT_ERR_IO;
        }
        text = owned;
    }
    struct layer_list *list = malloc(sizeof *list);
    enum clt_status st = list ? CLT_OK : CLT_ERR_NO_MEMORY;
    char why[256] = "";
    if (st == CLT_OK)
        st = model_file_parse(text, list, why, sizeof why);
    if (st == CLT_OK) {
        m->logits = build_layers(m, m->g, list, x, classes, why, sizeof why);
        if (!m->logits)
            st = CLT_ERR_FORMAT;
    }
    if (st == CLT_ERR_NO_MEMORY)
        snprintf(why, sizeof why, "out of memory");
    if (st != CLT_OK)
        model_say(err, err_size, "%s: %s", d->path[0] ? d->path : "model file", why);
    free(list);
    free(owned);
    return st;
}

static enum clt_status check_desc(const struct model_desc *d, const struct clt_dataset_info *data,
                                  char *err, size_t err_size)
{
    bool gpt = strcmp(d->kind, "gpt") == 0;
    if (gpt != (data->kind == CLT_DATASET_TEXT)) {
        model_say(err, err_size,
                  gpt ? "model gpt needs a text dataset (--data text:FILE)"
                      : "model %s needs a classification dataset, not a text",
                  d->kind);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if (strcmp(d->kind, "cnn") == 0 &&
        (data->ndim != 3 || data->shape[1] < 4 || data->shape[2] < 4)) {
        model_say(err, err_size,
                  "model cnn needs images of at least 4x4 ([C, H, W] features, as "
                  "IDX files give), not %u-dimensional features",
                  (unsigned)data->ndim);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    bool file = strcmp(d->kind, "file") == 0;
    if ((!file && d->width <= 0) ||
        (gpt && (d->heads <= 0 || d->width % d->heads || d->context <= 0)) ||
        !(d->dropout >= 0.0f && d->dropout < 1.0f)) {
        model_say(err, err_size,
                  "bad model sizes: width %lld, heads %lld (must divide the width), "
                  "context %lld, dropout %g",
                  (long long)d->width, (long long)d->heads, (long long)d->context,
                  (double)d->dropout);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if (!gpt && (data->classes < 2 || data->ndim < 1)) {
        model_say(err, err_size, "the dataset needs at least 2 classes (found %u)",
                  (unsigned)data->classes);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if (gpt && data->vocab < 1) {
        model_say(err, err_size, "the text has no symbols");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return CLT_OK;
}

enum clt_status model_build(const struct model_desc *desc, const struct clt_dataset_info *data,
                            int64_t batch, struct model *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    struct model_desc d = *desc;
    model_defaults(&d);
    enum clt_status st = check_desc(&d, data, err, err_size);
    if (st == CLT_OK && batch <= 0) {
        model_say(err, err_size, "the batch size must be positive");
        st = CLT_ERR_INVALID_ARGUMENT;
    }
    if (st == CLT_OK && (st = clt_graph_create(&out->g)) != CLT_OK)
        model_say(err, err_size, "cannot create a graph: %s", clt_status_str(st));
    if (st != CLT_OK)
        return st;

    struct model *m = out;
    m->batch = batch;
    m->positions = 1;
    if (strcmp(d.kind, "gpt") == 0) {
        int64_t shape[2] = {batch, d.context};
        m->x = clt_input(m->g, "x", CLT_I32, 2, shape);
        m->y = clt_input(m->g, "y", CLT_I32, 2, shape);
        m->classes = data->vocab;
        m->positions = d.context;
        m->logits = build_gpt(m, m->g, &d, m->x, batch, data->vocab);
    } else {
        int64_t shape[CLT_MAX_DIMS] = {batch};
        uint32_t nd = data->ndim + 1 <= CLT_MAX_DIMS ? data->ndim + 1 : CLT_MAX_DIMS;
        memcpy(shape + 1, data->shape, (nd - 1) * sizeof *shape);
        m->x = clt_input(m->g, "x", CLT_F32, nd, shape);
        m->y = clt_input(m->g, "y", CLT_I32, 1, (int64_t[]){batch});
        m->classes = data->classes;
        if (strcmp(d.kind, "mlp") == 0)
            m->logits = build_mlp(m, m->g, &d, m->x, data->classes);
        else if (strcmp(d.kind, "cnn") == 0)
            m->logits = build_cnn(m, m->g, &d, m->x, data->classes);
        else if (clt_graph_status(m->g) == CLT_OK)
            st = build_file_model(m, &d, m->x, data->classes, err, err_size);
    }
    if (st == CLT_OK)
        m->loss = clt_cross_entropy(m->g, m->logits, m->y, -1, 0.0f);
    if (st == CLT_OK && (st = clt_graph_status(m->g)) != CLT_OK)
        model_say(err, err_size, "cannot build model %s: %s", d.kind, clt_graph_error(m->g));
    if (st != CLT_OK)
        model_free(m);
    return st;
}

void model_free(struct model *m)
{
    if (!m)
        return;
    clt_graph_free(m->g);
    memset(m, 0, sizeof *m);
}

void model_default_data(const char *kind, struct clt_dataset_info *info)
{
    memset(info, 0, sizeof *info);
    if (strcmp(kind, "gpt") == 0) {
        info->kind = CLT_DATASET_TEXT;
        info->count = 1 << 20;
        info->vocab = 96;
        return;
    }
    info->kind = CLT_DATASET_CLASSES;
    info->count = 60000;
    info->ndim = 3;
    info->shape[0] = 1;
    info->shape[1] = 28;
    info->shape[2] = 28;
    info->classes = 10;
}
