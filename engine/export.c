/*
 * export.c: clt_checkpoint_export, a checkpoint's weights rewritten in 16 bits (or fp32)
 * for other programs: the float tensors converted with the rounding of precision.h, the
 * optimizer's tensors and metadata left out, the rest kept. Everything is read, checked and
 * converted in memory before the atomic writer of safetensors_write.c runs, so a refusal
 * writes nothing.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "precision.h"
#include "safetensors.h"

/* Metadata of the source left out: the optimizer's (its tensors are not exported) and the
 * checksum and precision, which the export writes anew. */
static bool meta_dropped(const char *key)
{
    return strncmp(key, "optimizer.", 10) == 0 || strncmp(key, "scaler.", 7) == 0 ||
           strcmp(key, "cltrain.data_crc32") == 0 || strcmp(key, "cltrain.precision") == 0;
}

static bool is_float(enum clt__st_dtype d)
{
    return d == CLT__ST_F32 || d == CLT__ST_F16 || d == CLT__ST_BF16 || d == CLT__ST_F64;
}

/* True when src and dst name the same existing file. */
static bool same_file(const char *src, const char *dst)
{
    struct stat a, b;
    return stat(src, &a) == 0 && stat(dst, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Converts tensor t (a float dtype) into out (count elements of the precision's size),
 * counting values that became zero. CLT_ERR_FORMAT with a log line for a NaN or Inf in the
 * source or a value that would overflow. */
static enum clt_status convert(const struct clt__st_tensor *t, uint64_t count, enum clt_precision p,
                               void *out, uint64_t *underflows, const char *path,
                               const struct clt_log *log)
{
    float *f = malloc((count ? count : 1) * sizeof *f);
    if (!f)
        return CLT_ERR_NO_MEMORY;
    enum clt_status st = clt__st_to_f32(t, f); /* float dtypes only: cannot fail */
    for (uint64_t i = 0; st == CLT_OK && i < count; i++) {
        if (!isfinite(f[i])) {
            clt__log(log, CLT_LOG_ERROR,
                     "cannot export %s: tensor \"%s\" holds %g at element %llu; a checkpoint to "
                     "export must be finite",
                     path, t->name, (double)f[i], (unsigned long long)i);
            st = CLT_ERR_FORMAT;
            break;
        }
        if (p == CLT_PRECISION_FP32) {
            ((float *)out)[i] = f[i];
            continue;
        }
        const uint16_t h = clt__f32_to_half(p, f[i]);
        const bool inf = p == CLT_PRECISION_FP16 ? clt__f16_nonfinite(h) : clt__bf16_nonfinite(h);
        if (inf) {
            clt__log(log, CLT_LOG_ERROR,
                     "cannot export %s in %s: tensor \"%s\" holds %g at element %llu, beyond the "
                     "largest %s value (%s); export in %s instead",
                     path, clt_precision_name(p), t->name, (double)f[i], (unsigned long long)i,
                     clt_precision_name(p), p == CLT_PRECISION_FP16 ? "65504" : "3.39e38",
                     p == CLT_PRECISION_FP16 ? "bf16 or fp32" : "fp32");
            st = CLT_ERR_FORMAT;
            break;
        }
        if (f[i] != 0.0f && clt__half_to_f32(p, h) == 0.0f)
            (*underflows)++;
        ((uint16_t *)out)[i] = h;
    }
    free(f);
    return st;
}

/* A tensor's little-endian bytes in host order (the writer wants host order). */
static void *host_order(const struct clt__st_tensor *t)
{
    const size_t bytes = (size_t)(t->end - t->begin), w = clt__st_dtype_size(t->dtype);
    unsigned char *out = malloc(bytes ? bytes : 1);
    if (!out)
        return NULL;
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    if (first == 1 || w == 1) {
        memcpy(out, t->data, bytes);
        return out;
    }
    for (size_t i = 0; i < bytes; i += w)
        for (size_t k = 0; k < w; k++)
            out[i + k] = t->data[i + w - 1 - k];
    return out;
}

/* The entries and metadata of the export, their data malloc'd into data[]. */
struct plan {
    struct clt__st_entry *entries;
    void **data;
    size_t n;
    struct clt_meta *meta;
    size_t nmeta;
    char crc[16];
};

static void plan_free(struct plan *pl)
{
    for (size_t i = 0; pl->data && i < pl->n; i++)
        free(pl->data[i]);
    free(pl->data);
    free(pl->entries);
    free(pl->meta);
}

static enum clt_status plan_tensors(struct plan *pl, const struct clt__safetensors *file,
                                    enum clt_precision p, const char *path,
                                    const struct clt_log *log, struct clt_export_report *r)
{
    const size_t n = file->count ? file->count : 1;
    pl->entries = calloc(n, sizeof *pl->entries);
    pl->data = calloc(n, sizeof *pl->data);
    if (!pl->entries || !pl->data)
        return CLT_ERR_NO_MEMORY;
    const enum clt__st_dtype to = p == CLT_PRECISION_FP16   ? CLT__ST_F16
                                  : p == CLT_PRECISION_BF16 ? CLT__ST_BF16
                                                            : CLT__ST_F32;
    for (uint32_t i = 0; i < file->count; i++) {
        const struct clt__st_tensor *t = &file->tensors[i];
        if (strncmp(t->name, "optimizer.", 10) == 0) {
            r->dropped++;
            continue;
        }
        uint64_t count = 1;
        for (uint32_t d = 0; d < t->ndim; d++)
            count *= (uint64_t)t->shape[d];
        struct clt__st_entry *e = &pl->entries[pl->n];
        *e = (struct clt__st_entry){.name = t->name, .ndim = t->ndim, .shape = t->shape};
        enum clt_status st = CLT_OK;
        if (is_float(t->dtype)) {
            e->dtype = to;
            pl->data[pl->n] = malloc(count ? count * clt__st_dtype_size(to) : 1);
            st = pl->data[pl->n] ? convert(t, count, p, pl->data[pl->n], &r->underflows, path, log)
                                 : CLT_ERR_NO_MEMORY;
            r->converted++;
            r->elements += count;
        } else {
            e->dtype = t->dtype;
            pl->data[pl->n] = host_order(t);
            st = pl->data[pl->n] ? CLT_OK : CLT_ERR_NO_MEMORY;
            r->copied++;
        }
        e->data = pl->data[pl->n];
        pl->n++;
        if (st != CLT_OK)
            return st;
    }
    return CLT_OK;
}

/* The source's metadata less what meta_dropped says, then the precision and the checksum. */
static enum clt_status plan_meta(struct plan *pl, const struct clt__safetensors *file,
                                 enum clt_precision p)
{
    pl->meta = calloc(file->nmeta + 2, sizeof *pl->meta);
    if (!pl->meta)
        return CLT_ERR_NO_MEMORY;
    for (uint32_t i = 0; i < file->nmeta; i++)
        if (!meta_dropped(file->meta[i].key))
            pl->meta[pl->nmeta++] = (struct clt_meta){file->meta[i].key, file->meta[i].value};
    pl->meta[pl->nmeta++] = (struct clt_meta){"cltrain.precision", clt_precision_name(p)};
    uint32_t crc;
    enum clt_status st = clt__safetensors_data_crc32(pl->entries, pl->n, &crc);
    if (st != CLT_OK)
        return st;
    snprintf(pl->crc, sizeof pl->crc, "%08x", (unsigned)crc);
    pl->meta[pl->nmeta++] = (struct clt_meta){"cltrain.data_crc32", pl->crc};
    return CLT_OK;
}

enum clt_status clt_checkpoint_export(const char *src, const char *dst,
                                      enum clt_precision precision, const struct clt_log *log,
                                      struct clt_export_report *report)
{
    struct clt_export_report r = {0};
    if (report)
        *report = r;
    if (!src || !dst || !*src || !*dst)
        return CLT_ERR_INVALID_ARGUMENT;
    if (precision != CLT_PRECISION_FP32 && precision != CLT_PRECISION_FP16 &&
        precision != CLT_PRECISION_BF16) {
        clt__log(log, CLT_LOG_ERROR, "export: precision %d is not fp32, fp16 or bf16",
                 (int)precision);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if (strcmp(src, dst) == 0 || same_file(src, dst)) {
        clt__log(log, CLT_LOG_ERROR, "export: %s would replace the checkpoint it reads", dst);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    unsigned char *buf = NULL;
    const unsigned char *bytes = NULL;
    size_t size = 0;
    struct clt__safetensors file = {0};
    struct plan pl = {0};
    char why[512];
    enum clt_status st = clt__safetensors_read_file(src, log, &buf, &bytes, &size);
    if (st == CLT_OK) {
        st = clt__safetensors_parse(bytes, size, &file, why, sizeof why);
        if (st == CLT_ERR_FORMAT)
            clt__log(log, CLT_LOG_ERROR, "%s is not a valid safetensors file: %s", src, why);
    }
    if (st == CLT_OK)
        st = clt__checkpoint_verify_crc(src, bytes, &file, log);
    if (st == CLT_OK)
        st = plan_tensors(&pl, &file, precision, src, log, &r);
    if (st == CLT_OK)
        st = plan_meta(&pl, &file, precision);
    if (st == CLT_OK)
        st = clt__safetensors_write(dst, pl.entries, pl.n, pl.meta, pl.nmeta, log);
    if (st == CLT_OK && report)
        *report = r;
    plan_free(&pl);
    clt__safetensors_free(&file);
    free(buf);
    return st;
}
