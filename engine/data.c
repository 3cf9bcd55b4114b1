/*
 * data.c: the dataset object (info, head, split, symbols), the counter-based generator, and
 * reading files through zlib. The batcher is in data_batch.c, the loaders in data_*.c.
 *
 * Randomness is counter-based: every draw is a hash of (seed, stream, a, b), never the
 * state of a generator, so any epoch's order or any batch's windows can be recomputed from
 * the batcher's state alone. That is what makes a batcher resumable exactly.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "data.h"

/* ==== The counter-based generator ======================================================= */

/* splitmix64's step: add the golden-ratio increment, then its finalizer. */
static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t clt__data_random(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b)
{
    return mix(mix(mix(mix(seed) ^ stream) ^ a) ^ b);
}

void clt__data_permutation(uint64_t *order, uint64_t n, uint64_t seed, uint64_t stream, uint64_t a)
{
    /* Fisher-Yates from the end; the modulo's bias is below n / 2^64. */
    for (uint64_t i = 0; i < n; i++)
        order[i] = i;
    for (uint64_t i = n; i-- > 1;) {
        uint64_t j = clt__data_random(seed, stream, a, i) % (i + 1);
        uint64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* ==== Datasets ========================================================================== */

enum clt_status clt__dataset_new_classes(const struct clt_log *log, const char *name,
                                         uint64_t count, uint32_t ndim, const int64_t *shape,
                                         struct clt_dataset **out)
{
    if (count == 0 || ndim == 0 || ndim > CLT_MAX_DIMS)
        return CLT_ERR_INVALID_ARGUMENT;
    size_t example = 1;
    for (uint32_t d = 0; d < ndim; d++) {
        if (shape[d] <= 0)
            return CLT_ERR_INVALID_ARGUMENT;
        if ((uint64_t)shape[d] > SIZE_MAX / sizeof(float) / example)
            goto too_large;
        example *= (size_t)shape[d];
    }
    if (count > SIZE_MAX / sizeof(float) / example || count > SIZE_MAX / sizeof(int32_t))
        goto too_large;
    struct clt_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        goto too_large;
    ds->kind = CLT_DATASET_CLASSES;
    ds->count = count;
    ds->ndim = ndim;
    memcpy(ds->shape, shape, ndim * sizeof *shape);
    ds->example_size = example;
    ds->features = malloc((size_t)count * example * sizeof(float));
    ds->labels = malloc((size_t)count * sizeof(int32_t));
    if (!ds->features || !ds->labels) {
        clt_dataset_free(ds);
        goto too_large;
    }
    *out = ds;
    return CLT_OK;
too_large:
    clt__log(log, CLT_LOG_ERROR, "%s: %llu examples of %llu floats do not fit in memory", name,
             (unsigned long long)count, (unsigned long long)example);
    return CLT_ERR_NO_MEMORY;
}

enum clt_status clt__dataset_new_text(const struct clt_log *log, const char *name, uint64_t count,
                                      struct clt_dataset **out)
{
    if (count == 0)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt_dataset *ds = count <= SIZE_MAX ? calloc(1, sizeof *ds) : NULL;
    if (ds) {
        ds->kind = CLT_DATASET_TEXT;
        ds->count = count;
        ds->tokens = malloc((size_t)count);
        if (ds->tokens) {
            *out = ds;
            return CLT_OK;
        }
        free(ds);
    }
    clt__log(log, CLT_LOG_ERROR, "%s: %llu tokens do not fit in memory", name,
             (unsigned long long)count);
    return CLT_ERR_NO_MEMORY;
}

void clt_dataset_free(struct clt_dataset *ds)
{
    if (!ds)
        return;
    free(ds->features);
    free(ds->labels);
    free(ds->tokens);
    free(ds);
}

enum clt_status clt_dataset_info(const struct clt_dataset *ds, struct clt_dataset_info *out)
{
    if (!ds || !out)
        return CLT_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    out->kind = ds->kind;
    out->count = ds->count;
    out->ndim = ds->ndim;
    memcpy(out->shape, ds->shape, sizeof out->shape);
    out->classes = ds->classes;
    out->vocab = ds->vocab;
    return CLT_OK;
}

enum clt_status clt_dataset_symbols(const struct clt_dataset *ds, uint8_t *symbols, uint32_t *vocab)
{
    if (!ds || !symbols || !vocab || ds->kind != CLT_DATASET_TEXT)
        return CLT_ERR_INVALID_ARGUMENT;
    memcpy(symbols, ds->symbols, ds->vocab);
    *vocab = ds->vocab;
    return CLT_OK;
}

/* A new dataset like ds (shape, classes, vocabulary) holding the n examples or tokens that
 * `pick` lists, or (pick NULL) those from `first` on. */
static enum clt_status subset(const struct clt_dataset *ds, const uint64_t *pick, uint64_t first,
                              uint64_t n, struct clt_dataset **out)
{
    struct clt_dataset *s = NULL;
    enum clt_status st;
    if (ds->kind == CLT_DATASET_TEXT) {
        st = clt__dataset_new_text(NULL, "dataset subset", n, &s);
        if (st != CLT_OK)
            return st;
        s->vocab = ds->vocab;
        memcpy(s->symbols, ds->symbols, sizeof s->symbols);
        memcpy(s->tokens, ds->tokens + first, (size_t)n);
        *out = s;
        return CLT_OK;
    }
    st = clt__dataset_new_classes(NULL, "dataset subset", n, ds->ndim, ds->shape, &s);
    if (st != CLT_OK)
        return st;
    s->classes = ds->classes;
    size_t e = ds->example_size;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t src = pick ? pick[i] : first + i;
        memcpy(s->features + i * e, ds->features + src * e, e * sizeof(float));
        s->labels[i] = ds->labels[src];
    }
    *out = s;
    return CLT_OK;
}

enum clt_status clt_dataset_head(const struct clt_dataset *ds, uint64_t count,
                                 struct clt_dataset **out)
{
    if (!ds || !out || count == 0 || count > ds->count ||
        (ds->kind == CLT_DATASET_TEXT && count < 2))
        return CLT_ERR_INVALID_ARGUMENT;
    return subset(ds, NULL, 0, count, out);
}

enum clt_status clt_dataset_split(const struct clt_dataset *ds, double held_out, uint64_t seed,
                                  struct clt_dataset **train, struct clt_dataset **held)
{
    /* The negated test also refuses NaN. */
    if (!ds || !train || !held || !(held_out > 0.0 && held_out < 1.0))
        return CLT_ERR_INVALID_ARGUMENT;
    uint64_t n_held = (uint64_t)((double)ds->count * held_out + 0.5);
    uint64_t least = ds->kind == CLT_DATASET_TEXT ? 2 : 1;
    if (n_held < least || n_held > ds->count - least)
        return CLT_ERR_INVALID_ARGUMENT;
    uint64_t n_train = ds->count - n_held;

    uint64_t *order = NULL;
    if (ds->kind == CLT_DATASET_CLASSES) {
        order = ds->count <= SIZE_MAX / sizeof *order ? malloc((size_t)ds->count * sizeof *order)
                                                      : NULL;
        if (!order)
            return CLT_ERR_NO_MEMORY;
        clt__data_permutation(order, ds->count, seed, CLT__DATA_STREAM_SPLIT, 0);
    }
    struct clt_dataset *a = NULL, *b = NULL;
    enum clt_status st = subset(ds, order, 0, n_train, &a);
    if (st == CLT_OK)
        st = subset(ds, order ? order + n_train : NULL, n_train, n_held, &b);
    free(order);
    if (st != CLT_OK) {
        clt_dataset_free(a);
        return st;
    }
    *train = a;
    *held = b;
    return CLT_OK;
}

/* ==== Reading files ===================================================================== */

enum clt_status clt__file_read(const struct clt_log *log, const char *path, unsigned char **data,
                               size_t *size)
{
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        if (errno == 0) {
            clt__log(log, CLT_LOG_ERROR, "%s: out of memory opening the file", path);
            return CLT_ERR_NO_MEMORY;
        }
        clt__log(log, CLT_LOG_ERROR, "%s: cannot open: %s", path, strerror(errno));
        return CLT_ERR_IO;
    }
    gzbuffer(f, 1u << 18);
    enum clt_status st = CLT_OK;
    size_t cap = 1u << 20, len = 0;
    unsigned char *buf = malloc(cap + 1);
    if (!buf)
        st = CLT_ERR_NO_MEMORY;
    while (st == CLT_OK) {
        if (len == cap) {
            unsigned char *bigger = cap <= (SIZE_MAX - 1) / 2 ? realloc(buf, 2 * cap + 1) : NULL;
            if (!bigger) {
                st = CLT_ERR_NO_MEMORY;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t want = cap - len < (1u << 30) ? cap - len : (1u << 30);
        int n = gzread(f, buf + len, (unsigned)want);
        if (n < 0) {
            int err = Z_OK;
            const char *msg = gzerror(f, &err);
            if (err == Z_MEM_ERROR) {
                st = CLT_ERR_NO_MEMORY;
                break;
            }
            clt__log(log, CLT_LOG_ERROR, "%s: %s", path, err == Z_ERRNO ? strerror(errno) : msg);
            st = err == Z_ERRNO ? CLT_ERR_IO : CLT_ERR_FORMAT;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    /* A gzip stream that ends early reads as a short file; gzclose says so. */
    int rc = gzclose(f);
    if (st == CLT_OK && rc == Z_BUF_ERROR) {
        clt__log(log, CLT_LOG_ERROR, "%s: truncated gzip stream", path);
        st = CLT_ERR_FORMAT;
    } else if (st == CLT_OK && rc != Z_OK) {
        clt__log(log, CLT_LOG_ERROR, "%s: read failed", path);
        st = CLT_ERR_IO;
    }
    if (st == CLT_ERR_NO_MEMORY)
        clt__log(log, CLT_LOG_ERROR, "%s: the file does not fit in memory", path);
    if (st != CLT_OK) {
        free(buf);
        return st;
    }
    buf[len] = 0;
    *data = buf;
    *size = len;
    return CLT_OK;
}

/* "example 6 (line 8)" or "example 6" into out. */
static void where(const struct clt_dataset *ds, uint64_t i, char *out, size_t size)
{
    if (ds->first_line)
        snprintf(out, size, "line %llu", (unsigned long long)(ds->first_line + i));
    else
        snprintf(out, size, "example %llu", (unsigned long long)i);
}

enum clt_status clt_dataset_check_classes(struct clt_dataset *ds, uint32_t classes,
                                          const struct clt_log *log)
{
    if (!ds || ds->kind != CLT_DATASET_CLASSES)
        return CLT_ERR_INVALID_ARGUMENT;
    char at[64];
    if (classes > 0) {
        for (uint64_t i = 0; i < ds->count; i++) {
            if ((uint32_t)ds->labels[i] >= classes) {
                where(ds, i, at, sizeof at);
                clt__log(log, CLT_LOG_ERROR,
                         "%s: label %d is not below the number of classes, %u (labels 0 .. %u)", at,
                         (int)ds->labels[i], (unsigned)classes, (unsigned)classes - 1);
                return CLT_ERR_FORMAT;
            }
        }
        ds->classes = classes;
        return CLT_OK;
    }
    /* seen[v] for v <= count: K distinct labels that are exactly 0 .. K-1 are all below
     * count + 1, so anything past that is already a gap. */
    unsigned char *seen = calloc((size_t)ds->count + 1, 1);
    if (!seen)
        return CLT_ERR_NO_MEMORY;
    uint64_t distinct = 0;
    int32_t top = -1;
    for (uint64_t i = 0; i < ds->count; i++) {
        int32_t v = ds->labels[i];
        top = v > top ? v : top;
        if ((uint64_t)v <= ds->count && !seen[v]) {
            seen[v] = 1;
            distinct++;
        }
    }
    uint64_t missing = 0;
    while (missing <= ds->count && seen[missing])
        missing++;
    free(seen);
    if (top < 0 || (uint64_t)top + 1 == distinct) {
        ds->classes = (uint32_t)(top + 1);
        return CLT_OK;
    }
    /* The first example whose label lies past the first missing one. */
    uint64_t i = 0;
    while (i < ds->count && (uint64_t)ds->labels[i] <= missing)
        i++;
    where(ds, i < ds->count ? i : 0, at, sizeof at);
    int32_t v = ds->labels[i < ds->count ? i : 0];
    if (missing == 0)
        clt__log(log, CLT_LOG_ERROR,
                 "%s: label %d, but no example has label 0: labels must number the classes "
                 "from 0",
                 at, (int)v);
    else
        clt__log(log, CLT_LOG_ERROR,
                 "%s: label %d, but no example has label %llu: the labels of K classes must be "
                 "0 .. K-1, none missing (the largest label is %d)",
                 at, (int)v, (unsigned long long)missing, (int)top);
    return CLT_ERR_FORMAT;
}
