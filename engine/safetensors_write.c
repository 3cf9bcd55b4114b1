/*
 * safetensors_write.c: the safetensors writer (safetensors.h): the header, a whole file in
 * memory, and the atomic write to disk (docs/formats.md, "Checkpoints").
 *
 * The header is printed here rather than by a JSON library, so that its text is fixed by the
 * tensors alone: integers printed as integers, metadata first, tensors in name order, no
 * spaces except the padding.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "safetensors.h"

#define MAX_EXACT 9007199254740992.0 /* 2^53: sizes past it could not be read back exactly */

static bool host_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void say(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t why_size, const char *fmt, ...)
{
    if (why && why_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
}

/* A growing string; a failed allocation is remembered and reported at the end. */
struct text {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct text *t, const char *s, size_t n)
{
    if (t->oom)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->oom = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

static void put_str(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void put_u(struct text *t, uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    put_str(t, b);
}

/* A JSON string: quotes, backslashes and control characters escaped, UTF-8 as is. */
static void put_string(struct text *t, const char *s)
{
    put(t, "\"", 1);
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if (u == '"' || u == '\\') {
            char e[2] = {'\\', (char)u};
            put(t, e, 2);
        } else if (u < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", u);
            put_str(t, e);
        } else {
            put(t, c, 1);
        }
    }
    put(t, "\"", 1);
}

static int entry_by_name(const void *a, const void *b)
{
    return strcmp((*(const struct clt__st_entry *const *)a)->name,
                  (*(const struct clt__st_entry *const *)b)->name);
}

static bool text_ok(const char *s)
{
    return s && clt__utf8_valid((const unsigned char *)s, strlen(s));
}

/* Bytes of an entry's data, or false when a dimension is negative or the size overflows. */
static bool entry_bytes(const struct clt__st_entry *e, uint64_t *out)
{
    uint64_t bytes = clt__st_dtype_size(e->dtype);
    if (bytes == 0 || e->ndim > CLT__ST_MAX_DIMS || (e->ndim > 0 && !e->shape))
        return false;
    for (uint32_t i = 0; i < e->ndim; i++) {
        if (e->shape[i] < 0 || (double)e->shape[i] > MAX_EXACT)
            return false;
        uint64_t d = (uint64_t)e->shape[i];
        if (d != 0 && bytes > UINT64_MAX / d)
            return false;
        bytes *= d;
    }
    *out = bytes;
    return (double)bytes <= MAX_EXACT && (bytes == 0 || e->data);
}

/* Checks the entries and metadata, and sorts the entries by name into order[]. */
static enum clt_status check_entries(const struct clt__st_entry *tensors, size_t n,
                                     const struct clt_meta *meta, size_t nmeta,
                                     const struct clt__st_entry **order, char *why, size_t why_size)
{
    if ((n > 0 && !tensors) || (nmeta > 0 && !meta))
        return CLT_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < nmeta; i++) {
        if (!text_ok(meta[i].key) || !text_ok(meta[i].value)) {
            say(why, why_size, "metadata pair %zu is not two UTF-8 strings", i);
            return CLT_ERR_INVALID_ARGUMENT;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(meta[i].key, meta[j].key) == 0) {
                say(why, why_size, "metadata key \"%s\" given twice", meta[i].key);
                return CLT_ERR_INVALID_ARGUMENT;
            }
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const struct clt__st_entry *e = &tensors[i];
        uint64_t bytes;
        if (!text_ok(e->name) || strcmp(e->name, "__metadata__") == 0) {
            say(why, why_size, "tensor %zu has no valid name", i);
            return CLT_ERR_INVALID_ARGUMENT;
        }
        if (!entry_bytes(e, &bytes) || bytes > UINT64_MAX - total) {
            say(why, why_size, "tensor \"%s\" has an invalid dtype, shape or data", e->name);
            return CLT_ERR_INVALID_ARGUMENT;
        }
        total += bytes;
        order[i] = e;
    }
    qsort(order, n, sizeof *order, entry_by_name);
    for (size_t i = 1; i < n; i++)
        if (strcmp(order[i - 1]->name, order[i]->name) == 0) {
            say(why, why_size, "tensor \"%s\" given twice", order[i]->name);
            return CLT_ERR_INVALID_ARGUMENT;
        }
    return CLT_OK;
}

/* The header text for entries already checked and sorted. */
static void header_text(struct text *t, const struct clt__st_entry *const *order, size_t n,
                        const struct clt_meta *meta, size_t nmeta)
{
    put(t, "{", 1);
    if (nmeta > 0) {
        put_str(t, "\"__metadata__\":{");
        for (size_t i = 0; i < nmeta; i++) {
            if (i > 0)
                put(t, ",", 1);
            put_string(t, meta[i].key);
            put(t, ":", 1);
            put_string(t, meta[i].value);
        }
        put(t, "}", 1);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const struct clt__st_entry *e = order[i];
        uint64_t bytes = 0;
        entry_bytes(e, &bytes);
        if (i > 0 || nmeta > 0)
            put(t, ",", 1);
        put_string(t, e->name);
        put_str(t, ":{\"dtype\":\"");
        put_str(t, clt__st_dtype_name(e->dtype));
        put_str(t, "\",\"shape\":[");
        for (uint32_t k = 0; k < e->ndim; k++) {
            if (k > 0)
                put(t, ",", 1);
            put_u(t, (uint64_t)e->shape[k]);
        }
        put_str(t, "],\"data_offsets\":[");
        put_u(t, offset);
        put(t, ",", 1);
        put_u(t, offset + bytes);
        put_str(t, "]}");
        offset += bytes;
    }
    put(t, "}", 1);
    while ((8 + t->len) % 8 != 0 && !t->oom)
        put(t, " ", 1);
}

/* Checks, sorts and prints: *order (malloc'd) and the header text. */
static enum clt_status prepare(const struct clt__st_entry *tensors, size_t n,
                               const struct clt_meta *meta, size_t nmeta,
                               const struct clt__st_entry ***order, struct text *t, char *why,
                               size_t why_size)
{
    memset(t, 0, sizeof *t);
    *order = malloc((n ? n : 1) * sizeof **order);
    if (!*order)
        return CLT_ERR_NO_MEMORY;
    enum clt_status s = check_entries(tensors, n, meta, nmeta, *order, why, why_size);
    if (s == CLT_OK) {
        header_text(t, *order, n, meta, nmeta);
        if (t->oom)
            s = CLT_ERR_NO_MEMORY;
    }
    if (s != CLT_OK) {
        free(*order);
        free(t->p);
        *order = NULL;
        memset(t, 0, sizeof *t);
    }
    return s;
}

enum clt_status clt__safetensors_header(const struct clt__st_entry *tensors, size_t n,
                                        const struct clt_meta *meta, size_t nmeta, char **header,
                                        size_t *len, char *why, size_t why_size)
{
    const struct clt__st_entry **order;
    struct text t;
    if (!header || !len)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status s = prepare(tensors, n, meta, nmeta, &order, &t, why, why_size);
    if (s != CLT_OK)
        return s;
    free(order);
    *header = t.p;
    *len = t.len;
    return CLT_OK;
}

/* Copies an entry's data to dst in little-endian order. */
static void data_to_le(unsigned char *dst, const struct clt__st_entry *e, uint64_t bytes)
{
    size_t w = clt__st_dtype_size(e->dtype);
    const unsigned char *src = e->data;
    if (bytes == 0)
        return; /* an empty tensor may have no data pointer at all */
    if (host_le() || w == 1) {
        memcpy(dst, src, (size_t)bytes);
        return;
    }
    for (uint64_t i = 0; i < bytes; i += w)
        for (size_t k = 0; k < w; k++)
            dst[i + k] = src[i + w - 1 - k];
}

enum clt_status clt__safetensors_encode(const struct clt__st_entry *tensors, size_t n,
                                        const struct clt_meta *meta, size_t nmeta,
                                        unsigned char **out, size_t *size, char *why,
                                        size_t why_size)
{
    const struct clt__st_entry **order;
    struct text t;
    if (!out || !size)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status s = prepare(tensors, n, meta, nmeta, &order, &t, why, why_size);
    if (s != CLT_OK)
        return s;
    uint64_t total = 8 + t.len;
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = 0;
        entry_bytes(order[i], &bytes);
        total += bytes;
    }
    unsigned char *buf = total <= SIZE_MAX ? malloc((size_t)total) : NULL;
    if (buf) {
        put_u64(buf, t.len);
        memcpy(buf + 8, t.p, t.len);
        size_t at = 8 + t.len;
        for (size_t i = 0; i < n; i++) {
            uint64_t bytes = 0;
            entry_bytes(order[i], &bytes);
            data_to_le(buf + at, order[i], bytes);
            at += (size_t)bytes;
        }
        *out = buf;
        *size = (size_t)total;
    }
    free(order);
    free(t.p);
    return buf ? CLT_OK : CLT_ERR_NO_MEMORY;
}

static bool write_all(int fd, const void *data, size_t size)
{
    const unsigned char *p = data;
    while (size > 0) {
        ssize_t k = write(fd, p, size);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return false;
        if (k == 0) {
            errno = EIO;
            return false;
        }
        p += k;
        size -= (size_t)k;
    }
    return true;
}

/* Writes an entry's data in little-endian order (in chunks on a big-endian host). */
static bool write_entry(int fd, const struct clt__st_entry *e, uint64_t bytes)
{
    if (host_le() || clt__st_dtype_size(e->dtype) == 1)
        return write_all(fd, e->data, (size_t)bytes);
    unsigned char chunk[65536];
    struct clt__st_entry part = *e;
    for (uint64_t at = 0; at < bytes; at += sizeof chunk) {
        uint64_t k = bytes - at < sizeof chunk ? bytes - at : sizeof chunk;
        part.data = (const unsigned char *)e->data + at;
        data_to_le(chunk, &part, k);
        if (!write_all(fd, chunk, (size_t)k))
            return false;
    }
    return true;
}

/* The directory of path ("." when it has none), malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, path, len);
        d[len] = 0;
    }
    return d;
}

/* Writes the header and data to an open temporary file and syncs it. */
static bool write_content(int fd, const struct text *t, const struct clt__st_entry *const *order,
                          size_t n)
{
    unsigned char len[8];
    put_u64(len, t->len);
    if (!write_all(fd, len, sizeof len) || !write_all(fd, t->p, t->len))
        return false;
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = 0;
        entry_bytes(order[i], &bytes);
        if (!write_entry(fd, order[i], bytes))
            return false;
    }
    return fsync(fd) == 0;
}

enum clt_status clt__safetensors_write(const char *path, const struct clt__st_entry *tensors,
                                       size_t n, const struct clt_meta *meta, size_t nmeta,
                                       const struct clt_log *log)
{
    if (!path || !*path)
        return CLT_ERR_INVALID_ARGUMENT;
    const struct clt__st_entry **order;
    struct text t;
    char why[256] = "";
    enum clt_status s = prepare(tensors, n, meta, nmeta, &order, &t, why, sizeof why);
    if (s != CLT_OK) {
        if (why[0])
            clt__log(log, CLT_LOG_ERROR, "cannot write %s: %s", path, why);
        return s;
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 40);
    char *dir = dir_of(path);
    if (!tmp || !dir) {
        s = CLT_ERR_NO_MEMORY;
        goto out;
    }
    /* A name no other writer uses, in the same directory so that rename is atomic; the pid
     * in it tells a later run whether the file is an orphan of a process that died. */
    snprintf(tmp, plen + 40, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
    int fd = mkstemp(tmp);
    if (fd < 0) {
        clt__log(log, CLT_LOG_ERROR, "cannot write %s: cannot create a file in %s: %s", path, dir,
                 strerror(errno));
        s = CLT_ERR_IO;
        goto out;
    }
    struct stat old;
    mode_t mode = stat(path, &old) == 0 && S_ISREG(old.st_mode) ? old.st_mode & 0777 : 0644;
    bool ok = fchmod(fd, mode) == 0 && write_content(fd, &t, order, n);
    int err = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        clt__log(log, CLT_LOG_ERROR, "cannot write %s: %s (the old file, if any, is unchanged)",
                 path, strerror(err));
        unlink(tmp);
        s = CLT_ERR_IO;
        goto out;
    }
    /* The rename is durable once the directory is synced. Some file systems refuse to sync a
     * directory; the file itself is complete, so that is only a warning. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0 || fsync(dfd) != 0)
        clt__log(log, CLT_LOG_WARN, "wrote %s but could not sync its directory %s: %s", path, dir,
                 strerror(errno));
    if (dfd >= 0)
        close(dfd);
out:
    free(tmp);
    free(dir);
    free(order);
    free(t.p);
    return s;
}

/* crc32 over size bytes, in pieces that fit zlib's uInt. */
static uLong crc_bytes(uLong crc, const unsigned char *p, uint64_t size)
{
    while (size > 0) {
        uInt k = size > (1u << 30) ? (1u << 30) : (uInt)size;
        crc = crc32(crc, p, k);
        p += k;
        size -= k;
    }
    return crc;
}

enum clt_status clt__safetensors_data_crc32(const struct clt__st_entry *tensors, size_t n,
                                            uint32_t *crc)
{
    const struct clt__st_entry **order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return CLT_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++)
        order[i] = &tensors[i];
    qsort(order, n, sizeof *order, entry_by_name);
    uLong c = crc32(0L, Z_NULL, 0);
    unsigned char chunk[65536];
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = 0;
        entry_bytes(order[i], &bytes);
        if (host_le() || clt__st_dtype_size(order[i]->dtype) == 1) {
            c = crc_bytes(c, order[i]->data, bytes);
            continue;
        }
        struct clt__st_entry part = *order[i];
        for (uint64_t at = 0; at < bytes; at += sizeof chunk) {
            uint64_t k = bytes - at < sizeof chunk ? bytes - at : sizeof chunk;
            part.data = (const unsigned char *)order[i]->data + at;
            data_to_le(chunk, &part, k);
            c = crc_bytes(c, chunk, k);
        }
    }
    free(order);
    *crc = (uint32_t)c;
    return CLT_OK;
}
