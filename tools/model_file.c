/*
 * model_file.c: models described in a text file (docs/formats.md): reading the file, and
 * parsing it into a list of layers, one per line, with a message naming the line and word
 * of the first mistake. models.c builds the graph from the list. See models.h.
 */
#include "models.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct word {
    const char *s;
    size_t len;
};

static bool word_is(struct word w, const char *s)
{
    return w.len == strlen(s) && strncmp(w.s, s, w.len) == 0;
}

/* Splits one line (without its newline) into at most max words; returns the count or -1 if
 * there are more. A '#' starts a comment. */
static int split_words(const char *s, size_t len, struct word *w, int max)
{
    int n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
            i++;
        if (i >= len || s[i] == '#')
            break;
        size_t start = i;
        while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '#')
            i++;
        if (n == max)
            return -1;
        w[n++] = (struct word){s + start, i - start};
    }
    return n;
}

/* A positive count, or "classes" (-1) when allowed. */
static bool word_count(struct word w, bool classes_ok, int64_t *out)
{
    if (classes_ok && word_is(w, "classes")) {
        *out = -1;
        return true;
    }
    for (size_t i = 0; i < w.len; i++)
        if (!isdigit((unsigned char)w.s[i]))
            return false;
    return model_parse_i64(w.s, w.len, 1, 1 << 24, out);
}

/* Parses one "key=value" option: stride and pad for conv2d and pooling, bias for conv2d and
 * linear. */
static bool word_option(struct layer *l, struct word w, char *why, size_t why_size)
{
    const char *eq = memchr(w.s, '=', w.len);
    struct word key = {w.s, eq ? (size_t)(eq - w.s) : w.len};
    struct word val = {eq ? eq + 1 : w.s + w.len, eq ? w.len - key.len - 1 : 0};
    bool conv = l->kind == LAYER_CONV2D,
         pool = l->kind == LAYER_MAXPOOL || l->kind == LAYER_AVGPOOL;
    int64_t v = -1;
    bool num = val.len > 0;
    for (size_t i = 0; i < val.len; i++)
        num = num && isdigit((unsigned char)val.s[i]);
    num = num && model_parse_i64(val.s, val.len, 0, 1 << 16, &v);
    if ((conv || pool) && word_is(key, "stride") && num && v >= 1)
        l->stride = v;
    else if ((conv || pool) && word_is(key, "pad") && num)
        l->pad = v;
    else if ((conv || l->kind == LAYER_LINEAR) && word_is(key, "bias") &&
             (word_is(val, "true") || word_is(val, "false")))
        l->bias = word_is(val, "true");
    else {
        model_say(why, why_size, "bad option \"%.*s\" (%s)", (int)(w.len > 40 ? 40 : w.len), w.s,
                  conv   ? "stride=N, pad=N, bias=true|false"
                  : pool ? "stride=N, pad=N"
                         : "bias=true|false");
        return false;
    }
    return true;
}

struct layer_name {
    const char *name;
    enum layer_kind kind;
    int min_args, max_args; /* positional arguments */
};

static const struct layer_name layer_names[] = {
    {"linear", LAYER_LINEAR, 1, 1},
    {"conv2d", LAYER_CONV2D, 2, 2},
    {"maxpool", LAYER_MAXPOOL, 1, 1},
    {"avgpool", LAYER_AVGPOOL, 1, 1},
    {"globalavgpool", LAYER_GLOBALAVGPOOL, 0, 0},
    {"batchnorm", LAYER_BATCHNORM, 0, 0},
    {"layernorm", LAYER_LAYERNORM, 0, 0},
    {"flatten", LAYER_FLATTEN, 0, 0},
    {"dropout", LAYER_DROPOUT, 1, 1},
    {"relu", LAYER_RELU, 0, 0},
    {"leaky_relu", LAYER_LEAKY_RELU, 0, 1},
    {"gelu", LAYER_GELU, 0, 0},
    {"tanh", LAYER_TANH, 0, 0},
    {"sigmoid", LAYER_SIGMOID, 0, 0},
    {"silu", LAYER_SILU, 0, 0},
};
const char *model_layer_kind_name(enum layer_kind kind)
{
    for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++)
        if (layer_names[i].kind == kind)
            return layer_names[i].name;
    return "layer";
}

/* Parses one non-empty line's words into l; false with the reason in why. */
static bool parse_layer(const struct word *w, int n, struct layer *l, char *why, size_t why_size)
{
    const struct layer_name *ln = NULL;
    for (size_t i = 0; i < sizeof layer_names / sizeof *layer_names; i++)
        if (word_is(w[0], layer_names[i].name))
            ln = &layer_names[i];
    if (!ln) {
        model_say(why, why_size, "unknown layer \"%.*s\"", (int)(w[0].len > 40 ? 40 : w[0].len),
                  w[0].s);
        return false;
    }
    l->kind = ln->kind;
    l->bias = 1;
    l->f = l->kind == LAYER_LEAKY_RELU ? 0.01f : 0.0f;
    int pos = 0;
    while (1 + pos < n && !memchr(w[1 + pos].s, '=', w[1 + pos].len))
        pos++;
    if (pos < ln->min_args || pos > ln->max_args) {
        model_say(why, why_size, "%s takes %d%s argument%s, got %d", ln->name, ln->min_args,
                  ln->max_args > ln->min_args ? " or 1" : "", ln->max_args == 1 ? "" : "s", pos);
        return false;
    }
    bool ok = true;
    if (l->kind == LAYER_DROPOUT || l->kind == LAYER_LEAKY_RELU) {
        ok = pos == 0 || (model_parse_f32(w[1].s, w[1].len, &l->f) &&
                          (l->kind == LAYER_LEAKY_RELU || (l->f >= 0.0f && l->f < 1.0f)));
        if (!ok)
            model_say(why, why_size, "%s: bad number \"%.*s\"%s", ln->name, (int)w[1].len, w[1].s,
                      l->kind == LAYER_DROPOUT ? " (a probability in [0, 1))" : "");
    } else if (pos >= 1) {
        ok = word_count(w[1], l->kind == LAYER_LINEAR, &l->n) &&
             (pos < 2 || word_count(w[2], false, &l->k));
        if (!ok)
            model_say(why, why_size, "%s: arguments must be positive integers%s", ln->name,
                      l->kind == LAYER_LINEAR ? " or \"classes\"" : "");
    }
    if (l->kind == LAYER_MAXPOOL || l->kind == LAYER_AVGPOOL)
        l->stride = 0; /* the pool size */
    else
        l->stride = 1;
    bool takes_options = l->kind == LAYER_CONV2D || l->kind == LAYER_MAXPOOL ||
                         l->kind == LAYER_AVGPOOL || l->kind == LAYER_LINEAR;
    for (int i = 1 + pos; ok && i < n; i++) {
        if (!takes_options) {
            model_say(why, why_size, "%s takes no options", ln->name);
            return false;
        }
        ok = word_option(l, w[i], why, why_size);
    }
    return ok;
}

enum clt_status model_file_parse(const char *text, struct layer_list *out, char *err,
                                 size_t err_size)
{
    out->count = 0;
    int line = 0;
    const char *p = text;
    while (*p) {
        line++;
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        struct word w[8];
        int n = split_words(p, len, w, 8);
        char why[200] = "";
        if (n < 0) {
            model_say(err, err_size, "line %d: too many words", line);
            return CLT_ERR_FORMAT;
        }
        if (n > 0) {
            if (out->count == MODEL_FILE_MAX_LAYERS) {
                model_say(err, err_size, "line %d: more than %d layers", line,
                          MODEL_FILE_MAX_LAYERS);
                return CLT_ERR_FORMAT;
            }
            struct layer *l = &out->layers[out->count];
            memset(l, 0, sizeof *l);
            l->line = line;
            if (!parse_layer(w, n, l, why, sizeof why)) {
                model_say(err, err_size, "line %d: %s", line, why);
                return CLT_ERR_FORMAT;
            }
            out->count++;
        }
        p += len + (nl ? 1 : 0);
    }
    if (out->count == 0) {
        model_say(err, err_size, "no layers (one layer per line, e.g. `linear 128`)");
        return CLT_ERR_FORMAT;
    }
    return CLT_OK;
}

char *model_read_file(const char *path, size_t max_bytes, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        model_say(err, err_size, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap) {
            char *nb = cap > max_bytes ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                model_say(err, err_size, "%s: larger than %zu bytes", path, max_bytes);
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - 1 - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                model_say(err, err_size, "cannot read %s: %s", path, strerror(errno));
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    fclose(f);
    if (!buf)
        return NULL;
    if (memchr(buf, '\0', len)) {
        model_say(err, err_size, "%s: not a text file (contains a NUL byte)", path);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}
