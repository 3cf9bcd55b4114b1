/*
 * cache.c: the on-disk cache of built program binaries.
 *
 * One file per program and device, named by a hash of its identity text. The entry stores
 * the identity itself and a checksum, so a truncated, corrupted or foreign file (another
 * device, driver, source or option set) is detected and rebuilt, never handed to the
 * driver. Writes go to a temporary file in the same directory, are synced, then renamed
 * over the entry. Layout (little-endian), also in docs/formats.md:
 *
 *   0   8  magic "CLTCACHE"
 *   8   4  format version (1)
 *   12  4  identity length L (1..65536)
 *   16  8  binary length B (1..256 MiB)
 *   24  8  FNV-1a 64 of identity and binary
 *   32  L  identity text
 *   32+L B binary
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define MAGIC "CLTCACHE"
#define FORMAT_VERSION 1u
#define HEADER_BYTES 32u
#define MAX_IDENTITY 65536u
#define MAX_BINARY (256u << 20)

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

enum clt_status clt__cache_identity(const struct clt_device *dev, const char *source,
                                    size_t source_size, char **out)
{
    const struct clt_device_info *i = &dev->info;
    uint64_t h = clt__hash64(CLT__FNV_SEED, source, source_size);
    const char *fmt = "cltrain %s\nplatform %s\ndevice %s\nvendor %s\ndriver %s\n"
                      "version %s\noptions %s\nsource %016llx %zu\n";
    int n = snprintf(NULL, 0, fmt, CLT_VERSION_STRING, i->platform, i->name, i->vendor,
                     i->driver_version, i->device_version, dev->build_options,
                     (unsigned long long)h, source_size);
    char *text = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (!text)
        return CLT_ERR_NO_MEMORY;
    snprintf(text, (size_t)n + 1, fmt, CLT_VERSION_STRING, i->platform, i->name, i->vendor,
             i->driver_version, i->device_version, dev->build_options, (unsigned long long)h,
             source_size);
    *out = text;
    return CLT_OK;
}

void clt__cache_path(const char *dir, const char *identity, char *path, size_t path_size)
{
    uint64_t h = clt__hash64(CLT__FNV_SEED, identity, strlen(identity));
    snprintf(path, path_size, "%s/%016llx.clbin", dir, (unsigned long long)h);
}

enum clt_status clt__cache_parse(const unsigned char *data, size_t size, const char *identity,
                                 const unsigned char **binary, size_t *binary_size)
{
    size_t id_len = strlen(identity);
    if (size < HEADER_BYTES || memcmp(data, MAGIC, 8) != 0 || get_u32(data + 8) != FORMAT_VERSION ||
        get_u32(data + 12) != id_len || id_len > MAX_IDENTITY)
        return CLT_ERR_FORMAT;
    uint64_t bin_len = get_u64(data + 16);
    /* The whole file is the header, the identity and the binary: nothing more, nothing less. */
    if (bin_len == 0 || bin_len > MAX_BINARY || size - HEADER_BYTES < id_len ||
        size - HEADER_BYTES - id_len != bin_len ||
        memcmp(data + HEADER_BYTES, identity, id_len) != 0)
        return CLT_ERR_FORMAT;
    uint64_t h = clt__hash64(CLT__FNV_SEED, data + HEADER_BYTES, size - HEADER_BYTES);
    if (h != get_u64(data + 24))
        return CLT_ERR_FORMAT;
    *binary = data + HEADER_BYTES + id_len;
    *binary_size = (size_t)bin_len;
    return CLT_OK;
}

enum clt_status clt__cache_load(const char *path, const char *identity, unsigned char **binary,
                                size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return CLT_ERR_IO;
    /* Read at most one byte more than the largest valid entry, so a huge file is refused
     * without reading it all. */
    size_t cap = HEADER_BYTES + MAX_IDENTITY + MAX_BINARY + 1, len = 0;
    unsigned char *data = NULL;
    enum clt_status st = CLT_OK;
    long end = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        end = ftell(f);
    if (end < 0 || fseek(f, 0, SEEK_SET) != 0)
        st = CLT_ERR_IO;
    else if ((size_t)end > cap)
        st = CLT_ERR_FORMAT;
    if (st == CLT_OK) {
        data = malloc((size_t)end + 1);
        if (!data)
            st = CLT_ERR_NO_MEMORY;
    }
    if (st == CLT_OK) {
        len = fread(data, 1, (size_t)end + 1, f);
        if (ferror(f))
            st = CLT_ERR_IO;
    }
    fclose(f);
    const unsigned char *bin = NULL;
    size_t bin_size = 0;
    if (st == CLT_OK)
        st = clt__cache_parse(data, len, identity, &bin, &bin_size);
    unsigned char *copy = st == CLT_OK ? malloc(bin_size) : NULL;
    if (st == CLT_OK && !copy)
        st = CLT_ERR_NO_MEMORY;
    if (st == CLT_OK) {
        memcpy(copy, bin, bin_size);
        *binary = copy;
        *size = bin_size;
    }
    free(data);
    return st;
}

static bool write_all(int fd, const void *data, size_t size)
{
    const unsigned char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        size -= (size_t)n;
    }
    return true;
}

enum clt_status clt__cache_store(const char *path, const char *identity,
                                 const unsigned char *binary, size_t size)
{
    size_t id_len = strlen(identity);
    if (id_len == 0 || id_len > MAX_IDENTITY || size == 0 || size > MAX_BINARY)
        return CLT_ERR_INVALID_ARGUMENT;
    unsigned char head[HEADER_BYTES];
    memcpy(head, MAGIC, 8);
    put_u32(head + 8, FORMAT_VERSION);
    put_u32(head + 12, (uint32_t)id_len);
    put_u64(head + 16, size);
    put_u64(head + 24, clt__hash64(clt__hash64(CLT__FNV_SEED, identity, id_len), binary, size));

    char tmp[1400];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return CLT_ERR_INVALID_ARGUMENT;
    /* mkstemp gives a name no other thread or process is writing. */
    int fd = mkstemp(tmp);
    if (fd < 0)
        return CLT_ERR_IO;
    bool ok = fchmod(fd, 0644) == 0 && write_all(fd, head, sizeof head) &&
              write_all(fd, identity, id_len) && write_all(fd, binary, size) && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) == 0)
        return CLT_OK;
    unlink(tmp);
    return CLT_ERR_IO;
}

enum clt_status clt__mkdir_p(const char *path)
{
    char buf[1024];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return CLT_ERR_INVALID_ARGUMENT;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return CLT_ERR_IO;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return CLT_ERR_IO;
    return CLT_OK;
}

void clt__remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[4096];
            if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub)
                continue;
            struct stat sb;
            if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
                clt__remove_tree(sub);
            else
                unlink(sub);
        }
        closedir(d);
    }
    rmdir(path);
}
