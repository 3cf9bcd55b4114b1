/*
 * checkpoint_read.c: read-only access to any safetensors file (clt_checkpoint_*), on the
 * reader of safetensors.c: metadata, a description of every tensor whatever its dtype,
 * lookup by name, and data converted to float or int64 or, for F32, borrowed. The trainer's
 * own checkpoints are checkpoint.c's.
 *
 * Errors: a missing name asked of clt_checkpoint_find is an answer, not a failure (no log);
 * every failed read logs one ERROR line naming the tensor and the reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

struct clt_checkpoint {
    unsigned char *buf; /* the file, its data section 8-aligned */
    struct clt__safetensors file;
    float **copies; /* per tensor: an aligned host-order copy, or NULL to use the file */
    struct clt_log log;
    bool has_log;
};

void clt_checkpoint_close(struct clt_checkpoint *ck)
{
    if (!ck)
        return;
    for (uint32_t i = 0; ck->copies && i < ck->file.count; i++)
        free(ck->copies[i]);
    free(ck->copies);
    clt__safetensors_free(&ck->file);
    free(ck->buf);
    free(ck);
}

/* F32 tensors whose bytes cannot be handed out as floats (misaligned, or a big-endian host)
 * get a converted copy. */
static enum clt_status make_copies(struct clt_checkpoint *ck)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    ck->copies = calloc(ck->file.count ? ck->file.count : 1, sizeof *ck->copies);
    if (!ck->copies)
        return CLT_ERR_NO_MEMORY;
    for (uint32_t i = 0; i < ck->file.count; i++) {
        const struct clt__st_tensor *t = &ck->file.tensors[i];
        if (t->dtype != CLT__ST_F32 || (first == 1 && (uintptr_t)t->data % sizeof(float) == 0))
            continue;
        size_t n = (size_t)((t->end - t->begin) / 4);
        ck->copies[i] = malloc((n ? n : 1) * sizeof(float));
        if (!ck->copies[i])
            return CLT_ERR_NO_MEMORY;
        clt__f32_from_le(ck->copies[i], t->data, n);
    }
    return CLT_OK;
}

enum clt_status clt_checkpoint_open(const char *path, const struct clt_log *log,
                                    struct clt_checkpoint **out)
{
    if (!path || !out)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt_checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck)
        return CLT_ERR_NO_MEMORY;
    if (log) {
        ck->log = *log;
        ck->has_log = true;
    }
    const unsigned char *bytes = NULL;
    size_t size = 0;
    char why[512];
    enum clt_status st = clt__safetensors_read_file(path, log, &ck->buf, &bytes, &size);
    if (st == CLT_OK) {
        st = clt__safetensors_parse(bytes, size, &ck->file, why, sizeof why);
        if (st == CLT_ERR_FORMAT)
            clt__log(log, CLT_LOG_ERROR, "%s is not a valid safetensors file: %s", path, why);
    }
    if (st == CLT_OK)
        st = clt__checkpoint_verify_crc(path, bytes, &ck->file, log);
    if (st == CLT_OK)
        st = make_copies(ck);
    if (st != CLT_OK) {
        clt_checkpoint_close(ck);
        return st;
    }
    *out = ck;
    return CLT_OK;
}

const char *clt_checkpoint_meta(const struct clt_checkpoint *ck, const char *key)
{
    return ck && key ? clt__safetensors_meta(&ck->file, key) : NULL;
}

uint32_t clt_checkpoint_tensor_count(const struct clt_checkpoint *ck)
{
    return ck ? ck->file.count : 0;
}

static uint64_t element_count(const struct clt__st_tensor *t)
{
    return (t->end - t->begin) / clt__st_dtype_size(t->dtype);
}

enum clt_status clt_checkpoint_tensor_info(const struct clt_checkpoint *ck, uint32_t index,
                                           struct clt_checkpoint_info *out)
{
    if (!ck || !out || index >= ck->file.count)
        return CLT_ERR_INVALID_ARGUMENT;
    _Static_assert(CLT_CHECKPOINT_MAX_DIMS == CLT__ST_MAX_DIMS, "the reader's limit");
    const struct clt__st_tensor *t = &ck->file.tensors[index];
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->dtype = clt__st_dtype_name(t->dtype);
    out->ndim = t->ndim;
    memcpy(out->shape, t->shape, t->ndim * sizeof *out->shape);
    out->count = element_count(t);
    return CLT_OK;
}

enum clt_status clt_checkpoint_find(const struct clt_checkpoint *ck, const char *name,
                                    uint32_t *index)
{
    if (!ck || !name || !index)
        return CLT_ERR_INVALID_ARGUMENT;
    const struct clt__st_tensor *t = clt__safetensors_find(&ck->file, name);
    if (!t)
        return CLT_ERR_INVALID_ARGUMENT;
    *index = (uint32_t)(t - ck->file.tensors);
    return CLT_OK;
}

/* The tensor named name of count elements, or NULL with one log line saying why. */
static const struct clt__st_tensor *tensor_for_read(const struct clt_checkpoint *ck,
                                                    const char *name, const void *dst,
                                                    uint64_t count, const char *fn)
{
    if (!ck || !name || !dst)
        return NULL;
    const struct clt_log *log = ck->has_log ? &ck->log : NULL;
    const struct clt__st_tensor *t = clt__safetensors_find(&ck->file, name);
    if (!t) {
        clt__log(log, CLT_LOG_ERROR, "%s: the checkpoint has no tensor \"%s\"", fn, name);
        return NULL;
    }
    if (element_count(t) != count) {
        clt__log(log, CLT_LOG_ERROR, "%s: tensor \"%s\" has %llu elements, not the %llu asked", fn,
                 name, (unsigned long long)element_count(t), (unsigned long long)count);
        return NULL;
    }
    return t;
}

enum clt_status clt_checkpoint_read_f32(const struct clt_checkpoint *ck, const char *name,
                                        float *dst, uint64_t count)
{
    const struct clt__st_tensor *t =
        tensor_for_read(ck, name, dst, count, "clt_checkpoint_read_f32");
    if (!t)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = clt__st_to_f32(t, dst);
    if (st == CLT_ERR_UNSUPPORTED)
        clt__log(ck->has_log ? &ck->log : NULL, CLT_LOG_ERROR,
                 "clt_checkpoint_read_f32: tensor \"%s\" is %s; floats are read from F32, F16, "
                 "BF16, F64, I32 and I64 tensors",
                 name, clt__st_dtype_name(t->dtype));
    return st;
}

enum clt_status clt_checkpoint_read_i64(const struct clt_checkpoint *ck, const char *name,
                                        int64_t *dst, uint64_t count)
{
    const struct clt__st_tensor *t =
        tensor_for_read(ck, name, dst, count, "clt_checkpoint_read_i64");
    if (!t)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = clt__st_to_i64(t, dst);
    if (st == CLT_ERR_UNSUPPORTED)
        clt__log(ck->has_log ? &ck->log : NULL, CLT_LOG_ERROR,
                 "clt_checkpoint_read_i64: tensor \"%s\" is %s%s; integers are read from I64, "
                 "I32, I16, I8, U32, U16, U8, BOOL and U64 up to 2^63-1",
                 name, clt__st_dtype_name(t->dtype),
                 t->dtype == CLT__ST_U64 ? " with a value above 2^63-1" : "");
    return st;
}

enum clt_status clt_checkpoint_tensor(const struct clt_checkpoint *ck, uint32_t index,
                                      const char **name, uint32_t *ndim, int64_t *shape,
                                      const float **data)
{
    if (!ck || index >= ck->file.count)
        return CLT_ERR_INVALID_ARGUMENT;
    const struct clt__st_tensor *t = &ck->file.tensors[index];
    /* Not an error of the file, and a caller walking the tensors would meet it on every
     * call: the status says it, clt_checkpoint_tensor_info tells the dtype. */
    if (t->dtype != CLT__ST_F32 || t->ndim > CLT_MAX_DIMS)
        return CLT_ERR_UNSUPPORTED;
    if (name)
        *name = t->name;
    if (ndim)
        *ndim = t->ndim;
    if (shape)
        memcpy(shape, t->shape, t->ndim * sizeof *shape);
    if (data)
        *data = ck->copies[index] ? ck->copies[index] : (const float *)(const void *)t->data;
    return CLT_OK;
}
