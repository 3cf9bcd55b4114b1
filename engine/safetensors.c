/*
 * safetensors.c: the strict safetensors reader (safetensors.h; the format and the checks are
 * also in docs/formats.md, "Checkpoints"). The writer is safetensors_write.c.
 *
 * The header's JSON is parsed by cJSON, which keeps every member of an object in a list,
 * duplicates included, so duplicate keys are found by comparing names. cJSON reads numbers as
 * doubles: shapes and offsets must be integers in 0 .. 2^53, which holds every size a file can
 * have.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "precision.h"
#include "safetensors.h"

#define MAX_EXACT 9007199254740992.0 /* 2^53: every integer up to it is a double */

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [CLT__ST_BOOL] = {"BOOL", 1},       [CLT__ST_U8] = {"U8", 1},
    [CLT__ST_I8] = {"I8", 1},           [CLT__ST_F8_E4M3] = {"F8_E4M3", 1},
    [CLT__ST_F8_E5M2] = {"F8_E5M2", 1}, [CLT__ST_U16] = {"U16", 2},
    [CLT__ST_I16] = {"I16", 2},         [CLT__ST_F16] = {"F16", 2},
    [CLT__ST_BF16] = {"BF16", 2},       [CLT__ST_U32] = {"U32", 4},
    [CLT__ST_I32] = {"I32", 4},         [CLT__ST_F32] = {"F32", 4},
    [CLT__ST_U64] = {"U64", 8},         [CLT__ST_I64] = {"I64", 8},
    [CLT__ST_F64] = {"F64", 8},
};
#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

const char *clt__st_dtype_name(enum clt__st_dtype dtype)
{
    return (size_t)dtype < NDTYPES ? dtypes[dtype].name : "?";
}

size_t clt__st_dtype_size(enum clt__st_dtype dtype)
{
    return (size_t)dtype < NDTYPES ? dtypes[dtype].size : 0;
}

static bool host_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void clt__f32_from_le(float *dst, const unsigned char *src, size_t n)
{
    if (host_le()) {
        memcpy(dst, src, n * sizeof *dst);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                     (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
        memcpy(&dst[i], &u, sizeof u);
    }
}

/* The little-endian unsigned integer of `bytes` bytes at p. */
static uint64_t le_uint(const unsigned char *p, size_t bytes)
{
    uint64_t u = 0;
    for (size_t k = 0; k < bytes; k++)
        u |= (uint64_t)p[k] << (8 * k);
    return u;
}

enum clt_status clt__st_to_f32(const struct clt__st_tensor *t, float *dst)
{
    const size_t size = clt__st_dtype_size(t->dtype), n = (size_t)((t->end - t->begin) / size);
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case CLT__ST_F32:
        clt__f32_from_le(dst, p, n);
        return CLT_OK;
    case CLT__ST_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = clt__f16_to_f32((uint16_t)le_uint(p + 2 * i, 2));
        return CLT_OK;
    case CLT__ST_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = clt__bf16_to_f32((uint16_t)le_uint(p + 2 * i, 2));
        return CLT_OK;
    case CLT__ST_F64:
        for (size_t i = 0; i < n; i++) {
            const uint64_t u = le_uint(p + 8 * i, 8);
            double d;
            memcpy(&d, &u, sizeof d);
            dst[i] = (float)d;
        }
        return CLT_OK;
    case CLT__ST_I32:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)(int32_t)(uint32_t)le_uint(p + 4 * i, 4);
        return CLT_OK;
    case CLT__ST_I64:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)(int64_t)le_uint(p + 8 * i, 8);
        return CLT_OK;
    default:
        return CLT_ERR_UNSUPPORTED;
    }
}

enum clt_status clt__st_to_i64(const struct clt__st_tensor *t, int64_t *dst)
{
    const size_t size = clt__st_dtype_size(t->dtype), n = (size_t)((t->end - t->begin) / size);
    const unsigned char *p = t->data;
    bool is_signed;
    switch (t->dtype) {
    case CLT__ST_I8:
    case CLT__ST_I16:
    case CLT__ST_I32:
    case CLT__ST_I64:
        is_signed = true;
        break;
    case CLT__ST_BOOL:
    case CLT__ST_U8:
    case CLT__ST_U16:
    case CLT__ST_U32:
    case CLT__ST_U64:
        is_signed = false;
        break;
    default:
        return CLT_ERR_UNSUPPORTED;
    }
    for (size_t i = 0; i < n; i++) {
        const uint64_t u = le_uint(p + size * i, size);
        if (!is_signed && u > (uint64_t)INT64_MAX)
            return CLT_ERR_UNSUPPORTED;
        if (is_signed && size < 8 && (u >> (8 * size - 1)) & 1)
            dst[i] = (int64_t)(u | ~(uint64_t)0 << (8 * size)); /* sign-extended */
        else
            dst[i] = (int64_t)u;
    }
    return CLT_OK;
}

bool clt__utf8_valid(const unsigned char *s, size_t size)
{
    size_t i = 0;
    while (i < size) {
        unsigned char c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false; /* a continuation byte, C0/C1 (overlong), or F5..FF */
        }
        if (size - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* ==== Reading =========================================================================== */

static enum clt_status fail(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum clt_status fail(char *why, size_t why_size, const char *fmt, ...)
{
    if (why && why_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return CLT_ERR_FORMAT;
}

/* A JSON number that is an integer in 0 .. 2^53. */
static bool get_index(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double d = item->valuedouble;
    if (!(d >= 0 && d <= MAX_EXACT) || d != (double)(uint64_t)d)
        return false;
    *out = (uint64_t)d;
    return true;
}

/* True when two members of object share a name. Quadratic, but headers hold few members
 * per object except the top level, which is checked by sorting instead. */
static const char *duplicate_member(const cJSON *object)
{
    for (const cJSON *a = object->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return a->string;
    return NULL;
}

static enum clt_status parse_metadata(const cJSON *m, struct clt__safetensors *st, char *why,
                                      size_t why_size)
{
    if (!cJSON_IsObject(m))
        return fail(why, why_size, "\"__metadata__\" is not an object");
    uint32_t n = 0;
    for (const cJSON *c = m->child; c; c = c->next, n++)
        if (!cJSON_IsString(c))
            return fail(why, why_size, "metadata value of \"%s\" is not a string", c->string);
    const char *dup = duplicate_member(m);
    if (dup)
        return fail(why, why_size, "metadata key \"%s\" appears twice", dup);
    st->meta = calloc(n ? n : 1, sizeof *st->meta);
    if (!st->meta)
        return CLT_ERR_NO_MEMORY;
    for (const cJSON *c = m->child; c; c = c->next, st->nmeta++) {
        st->meta[st->nmeta].key = c->string;
        st->meta[st->nmeta].value = c->valuestring;
    }
    return CLT_OK;
}

/* Checks one tensor entry and fills t (data not yet set). */
static enum clt_status parse_tensor(const cJSON *e, uint64_t data_bytes, struct clt__st_tensor *t,
                                    char *why, size_t why_size)
{
    const char *name = e->string;
    t->name = name;
    if (!cJSON_IsObject(e))
        return fail(why, why_size, "tensor \"%s\" is not an object", name);
    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (const cJSON *c = e->child; c; c = c->next) {
        const cJSON **slot = strcmp(c->string, "dtype") == 0          ? &dtype
                             : strcmp(c->string, "shape") == 0        ? &shape
                             : strcmp(c->string, "data_offsets") == 0 ? &offsets
                                                                      : NULL;
        if (!slot)
            return fail(why, why_size, "tensor \"%s\" has an unknown field \"%s\"", name,
                        c->string);
        if (*slot)
            return fail(why, why_size, "tensor \"%s\" has field \"%s\" twice", name, c->string);
        *slot = c;
    }
    if (!dtype || !shape || !offsets)
        return fail(why, why_size, "tensor \"%s\" has no %s", name,
                    !dtype   ? "dtype"
                    : !shape ? "shape"
                             : "data_offsets");
    if (!cJSON_IsString(dtype))
        return fail(why, why_size, "tensor \"%s\": dtype is not a string", name);
    size_t k = 0;
    while (k < NDTYPES && strcmp(dtypes[k].name, dtype->valuestring) != 0)
        k++;
    if (k == NDTYPES)
        return fail(why, why_size, "tensor \"%s\" has an unknown dtype \"%s\"", name,
                    dtype->valuestring);
    t->dtype = (enum clt__st_dtype)k;

    if (!cJSON_IsArray(shape))
        return fail(why, why_size, "tensor \"%s\": shape is not an array", name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > CLT__ST_MAX_DIMS)
        return fail(why, why_size, "tensor \"%s\" has %d dimensions, more than %d", name, ndim,
                    CLT__ST_MAX_DIMS);
    t->ndim = (uint32_t)ndim;
    uint64_t bytes = dtypes[k].size;
    uint32_t i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        uint64_t v;
        if (!get_index(d, &v))
            return fail(why, why_size, "tensor \"%s\": shape[%u] is not an integer >= 0", name,
                        (unsigned)i);
        t->shape[i] = (int64_t)v;
        if (v != 0 && bytes > UINT64_MAX / v)
            return fail(why, why_size, "tensor \"%s\": the size of its shape overflows", name);
        bytes *= v;
    }

    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return fail(why, why_size, "tensor \"%s\": data_offsets is not an array of two", name);
    if (!get_index(offsets->child, &t->begin) || !get_index(offsets->child->next, &t->end))
        return fail(why, why_size, "tensor \"%s\": data_offsets are not integers >= 0", name);
    if (t->end < t->begin)
        return fail(why, why_size, "tensor \"%s\": data_offsets [%llu, %llu] are reversed", name,
                    (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > data_bytes)
        return fail(why, why_size,
                    "tensor \"%s\": data_offsets [%llu, %llu] pass the end of the data (%llu "
                    "bytes)",
                    name, (unsigned long long)t->begin, (unsigned long long)t->end,
                    (unsigned long long)data_bytes);
    if (t->end - t->begin != bytes)
        return fail(why, why_size,
                    "tensor \"%s\": data_offsets [%llu, %llu] hold %llu bytes, its dtype %s and "
                    "shape need %llu",
                    name, (unsigned long long)t->begin, (unsigned long long)t->end,
                    (unsigned long long)(t->end - t->begin), dtypes[k].name,
                    (unsigned long long)bytes);
    return CLT_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct clt__st_tensor *)a)->name,
                  ((const struct clt__st_tensor *)b)->name);
}

static int by_offset(const void *a, const void *b)
{
    const struct clt__st_tensor *x = *(const struct clt__st_tensor *const *)a;
    const struct clt__st_tensor *y = *(const struct clt__st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* The tensors, in offset order, must tile the data section. */
static enum clt_status check_coverage(struct clt__safetensors *st, char *why, size_t why_size)
{
    const struct clt__st_tensor **order = malloc((st->count ? st->count : 1) * sizeof *order);
    if (!order)
        return CLT_ERR_NO_MEMORY;
    for (uint32_t i = 0; i < st->count; i++)
        order[i] = &st->tensors[i];
    qsort(order, st->count, sizeof *order, by_offset);
    enum clt_status s = CLT_OK;
    uint64_t next = 0;
    const char *prev = NULL;
    for (uint32_t i = 0; i < st->count && s == CLT_OK; i++) {
        const struct clt__st_tensor *t = order[i];
        if (t->begin < next)
            s = fail(why, why_size, "tensors \"%s\" and \"%s\" overlap", prev, t->name);
        else if (t->begin > next)
            s = fail(why, why_size, "bytes %llu to %llu of the data belong to no tensor",
                     (unsigned long long)next, (unsigned long long)t->begin);
        next = t->end;
        prev = t->name;
    }
    if (s == CLT_OK && next != st->data_bytes)
        s = fail(why, why_size, "%llu bytes follow the last tensor's data",
                 (unsigned long long)(st->data_bytes - next));
    free(order);
    return s;
}

static enum clt_status parse_entries(const cJSON *root, const unsigned char *data,
                                     struct clt__safetensors *st, char *why, size_t why_size)
{
    uint32_t n = 0;
    const cJSON *meta = NULL;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") != 0) {
            n++;
        } else if (meta) {
            return fail(why, why_size, "\"__metadata__\" appears twice");
        } else {
            meta = c;
        }
    }
    enum clt_status s = meta ? parse_metadata(meta, st, why, why_size) : CLT_OK;
    if (s != CLT_OK)
        return s;
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    if (!st->tensors)
        return CLT_ERR_NO_MEMORY;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (c == meta)
            continue;
        struct clt__st_tensor *t = &st->tensors[st->count++];
        s = parse_tensor(c, st->data_bytes, t, why, why_size);
        if (s != CLT_OK)
            return s;
        t->data = data + t->begin;
    }
    qsort(st->tensors, st->count, sizeof *st->tensors, by_name);
    for (uint32_t i = 1; i < st->count; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
            return fail(why, why_size, "tensor \"%s\" appears twice", st->tensors[i].name);
    return check_coverage(st, why, why_size);
}

enum clt_status clt__safetensors_parse(const unsigned char *buf, size_t size,
                                       struct clt__safetensors *out, char *why, size_t why_size)
{
    if (!out || (!buf && size > 0))
        return CLT_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (why && why_size > 0)
        why[0] = 0;
    if (size < 8)
        return fail(why, why_size, "%zu bytes: shorter than the 8-byte header length", size);
    uint64_t n = get_u64(buf);
    if (n >= CLT__ST_MAX_HEADER)
        return fail(why, why_size, "header length %llu is not below the limit of %u bytes",
                    (unsigned long long)n, CLT__ST_MAX_HEADER);
    if (n > size - 8)
        return fail(why, why_size, "header length %llu passes the end of the file (%zu bytes)",
                    (unsigned long long)n, size);
    if (n < 2)
        return fail(why, why_size, "header length %llu is too short for a JSON object",
                    (unsigned long long)n);
    const unsigned char *h = buf + 8;
    if (!clt__utf8_valid(h, (size_t)n))
        return fail(why, why_size, "the header is not valid UTF-8 (or holds a NUL byte)");
    for (size_t i = 0; i < (size_t)n; i++)
        if (h[i] < 0x20 && h[i] != '\t' && h[i] != '\n' && h[i] != '\r')
            return fail(why, why_size, "the header holds a control character at byte %zu", i);
    if (h[0] != '{')
        return fail(why, why_size, "the header does not start with '{'");
    size_t last = (size_t)n;
    while (last > 0 && h[last - 1] == ' ')
        last--;
    if (last == 0 || h[last - 1] != '}')
        return fail(why, why_size, "the header does not end with '}' and spaces");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)h, last, &end, false);
    if (!root) {
        size_t at = end && end >= (const char *)h ? (size_t)(end - (const char *)h) : 0;
        return fail(why, why_size, "the header is not valid JSON (near byte %zu)", at);
    }
    out->json = root;
    out->header_bytes = n;
    out->data_bytes = size - 8 - n;
    enum clt_status s = CLT_OK;
    if (end != (const char *)h + last)
        s = fail(why, why_size, "the header holds more than one JSON value");
    else if (!cJSON_IsObject(root))
        s = fail(why, why_size, "the header is not a JSON object");
    if (s == CLT_OK)
        s = parse_entries(root, h + n, out, why, why_size);
    if (s != CLT_OK) {
        clt__safetensors_free(out);
        memset(out, 0, sizeof *out);
    }
    return s;
}

void clt__safetensors_free(struct clt__safetensors *st)
{
    if (!st)
        return;
    free(st->tensors);
    free(st->meta);
    cJSON_Delete(st->json);
    st->tensors = NULL;
    st->meta = NULL;
    st->json = NULL;
    st->count = st->nmeta = 0;
}

const struct clt__st_tensor *clt__safetensors_find(const struct clt__safetensors *st,
                                                   const char *name)
{
    struct clt__st_tensor key;
    key.name = name;
    return st->count ? bsearch(&key, st->tensors, st->count, sizeof key, by_name) : NULL;
}

const char *clt__safetensors_meta(const struct clt__safetensors *st, const char *key)
{
    for (uint32_t i = 0; i < st->nmeta; i++)
        if (strcmp(st->meta[i].key, key) == 0)
            return st->meta[i].value;
    return NULL;
}

enum clt_status clt__safetensors_read_file(const char *path, const struct clt_log *log,
                                           unsigned char **buf, const unsigned char **data,
                                           size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        clt__log(log, CLT_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
        return CLT_ERR_IO;
    }
    struct stat sb;
    enum clt_status s = CLT_OK;
    unsigned char head[8];
    size_t shift = 0;
    unsigned char *b = NULL;
    if (fstat(fileno(f), &sb) != 0) {
        clt__log(log, CLT_LOG_ERROR, "cannot read %s: %s", path, strerror(errno));
        s = CLT_ERR_IO;
    } else if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > SIZE_MAX - 16) {
        clt__log(log, CLT_LOG_ERROR, "cannot read %s: not a regular file of a possible size", path);
        s = CLT_ERR_IO;
    }
    size_t n = s == CLT_OK ? (size_t)sb.st_size : 0;
    /* Place the file so that its data section (at 8 + N) starts 8-aligned. */
    if (s == CLT_OK && n >= 8 && fread(head, 1, 8, f) == 8)
        shift = (size_t)((8 - (get_u64(head) % 8)) % 8);
    if (s == CLT_OK && fseek(f, 0, SEEK_SET) != 0) {
        clt__log(log, CLT_LOG_ERROR, "cannot read %s: %s", path, strerror(errno));
        s = CLT_ERR_IO;
    }
    if (s == CLT_OK && !(b = malloc(n + shift + 1)))
        s = CLT_ERR_NO_MEMORY;
    if (s == CLT_OK && (fread(b + shift, 1, n, f) != n || fgetc(f) != EOF)) {
        clt__log(log, CLT_LOG_ERROR, "cannot read %s: %s", path,
                 ferror(f) ? strerror(errno) : "the file changed size while being read");
        s = CLT_ERR_IO;
    }
    fclose(f);
    if (s != CLT_OK) {
        free(b);
        return s;
    }
    *buf = b;
    *data = b + shift;
    *size = n;
    return CLT_OK;
}
