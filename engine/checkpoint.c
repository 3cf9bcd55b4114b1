/*
 * checkpoint.c: a trainer's checkpoints (clt_trainer_save, clt_trainer_load) and read-only
 * access to any safetensors file (clt_checkpoint_*), on the reader and writer of
 * safetensors.c. The file layout is in docs/formats.md, "Checkpoints".
 *
 * What a checkpoint holds, for a trainer whose flat buffers are params [trained | state],
 * moment1 [trained], moment2 [trained] and grads [trained] (trainer.h):
 *   "<name>"                 every parameter and state tensor, F32, its own shape
 *   "optimizer.m.<name>"     moment1 of each trained parameter (SGD's momentum buffer,
 *                            Adam's first moment), for every optimizer kind
 *   "optimizer.v.<name>"     moment2 of each trained parameter, Adam and AdamW only
 *   "optimizer.grad.<name>"  the gradients accumulated so far, only when the trainer is in
 *                            the middle of a gradient accumulation (steps % accumulate != 0)
 * and the metadata keys of meta_keys below, plus the caller's pairs. "cltrain.data_crc32" is
 * the CRC-32 of the data section (8 hex digits), checked by every read; files without it
 * (saved before it existed, or by other programs) are read unchecked.
 *
 * Loading checks the whole file and everything the trainer needs from it before it writes
 * anything to the device, so a failed load leaves the trainer as it was.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ops/optim.h"
#include "safetensors.h"
#include "trainer.h"

/* Metadata keys the trainer writes; the caller may not use them. */
#define KEY_VERSION "cltrain.version"
#define KEY_STEPS "cltrain.steps"
#define KEY_UPDATES "cltrain.updates"
#define KEY_SEED "cltrain.seed"
#define KEY_KIND "optimizer.kind"
#define KEY_T "optimizer.t"
#define KEY_SKIPPED "optimizer.skipped"
#define KEY_CRC "cltrain.data_crc32"
static const char *const meta_keys[] = {KEY_VERSION, KEY_STEPS, KEY_UPDATES, KEY_SEED,
                                        KEY_KIND,    KEY_T,     KEY_SKIPPED, KEY_CRC};
#define NKEYS (sizeof meta_keys / sizeof meta_keys[0])

static const char *const kind_names[] = {"sgd", "adam", "adamw"};

/* Room for "optimizer.grad." and a parameter name. */
#define LONG_NAME (CLT__NAME_MAX + 32)

static bool is_param(const struct clt_tensor *t)
{
    return t->kind == CLT__NODE_PARAM || t->kind == CLT__NODE_STATE;
}

static bool uses_v(const struct clt_trainer *tr)
{
    return tr->options.optimizer.kind != CLT_OPTIM_SGD;
}

/* The micro-step the next clt_trainer_step runs at (0: the start of an accumulation). */
static uint64_t micro(const struct clt_trainer *tr)
{
    return tr->steps % tr->options.optimizer.accumulate;
}

/* "[128, 784]" into out. */
static void shape_text(char *out, size_t size, uint32_t ndim, const int64_t *shape)
{
    size_t at = 0;
    at += (size_t)snprintf(out, size, "[");
    for (uint32_t i = 0; i < ndim && at < size; i++)
        at += (size_t)snprintf(out + at, size - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (at < size)
        snprintf(out + at, size - at, "]");
}

/* A decimal number of digits only, at most max. */
static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* ---- Saving ----------------------------------------------------------------------------- */

/* Blocking read of count floats from the start of a buffer. */
static enum clt_status read_floats(struct clt_trainer *tr, cl_mem mem, float *dst, uint64_t count)
{
    if (count == 0)
        return CLT_OK;
    cl_int err = clEnqueueReadBuffer(tr->dev->queue, mem, CL_TRUE, 0, (size_t)(count * 4), dst, 0,
                                     NULL, NULL);
    return clt__cl_check(&tr->dev->log, err, "clEnqueueReadBuffer (checkpoint)");
}

static enum clt_status write_floats(struct clt_trainer *tr, cl_mem mem, const float *src,
                                    uint64_t count)
{
    if (count == 0)
        return CLT_OK;
    cl_int err = clEnqueueWriteBuffer(tr->dev->queue, mem, CL_TRUE, 0, (size_t)(count * 4), src, 0,
                                      NULL, NULL);
    return clt__cl_check(&tr->dev->log, err, "clEnqueueWriteBuffer (checkpoint)");
}

/* Host copies of the trainer's buffers. */
struct host_state {
    float *params; /* [trained + state] */
    float *m;      /* [trained] */
    float *v;      /* [trained], Adam only */
    float *g;      /* [trained], mid-accumulation only */
};

static void host_state_free(struct host_state *h)
{
    free(h->params);
    free(h->m);
    free(h->v);
    free(h->g);
}

/* Host copies of the parameters, and with optimizer of the moments; with grads also of the
 * gradients. */
static enum clt_status host_state_alloc(const struct clt_trainer *tr, bool optimizer, bool grads,
                                        struct host_state *h)
{
    uint64_t trained = tr->plan.trained, total = trained + tr->plan.state;
    memset(h, 0, sizeof *h);
    h->params = malloc((total ? total : 1) * 4);
    bool ok = h->params != NULL;
    if (optimizer) {
        h->m = malloc((trained ? trained : 1) * 4);
        h->v = uses_v(tr) ? malloc((trained ? trained : 1) * 4) : NULL;
        h->g = grads ? malloc((trained ? trained : 1) * 4) : NULL;
        ok = ok && h->m && (h->v || !uses_v(tr)) && (h->g || !grads);
    }
    if (!ok)
        host_state_free(h);
    return ok ? CLT_OK : CLT_ERR_NO_MEMORY;
}

/* Adds an entry for a tensor of the model's shape whose data is at src. */
static void add_entry(struct clt__st_entry *e, char (*names)[LONG_NAME], size_t *k,
                      const char *prefix, const struct clt_tensor *t, const float *src)
{
    snprintf(names[*k], LONG_NAME, "%s%s", prefix, t->name);
    e[*k] = (struct clt__st_entry){names[*k], CLT__ST_F32, t->ndim, t->shape, src};
    (*k)++;
}

static enum clt_status check_user_meta(struct clt_trainer *tr, const struct clt_meta *meta,
                                       size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!meta[i].key || !meta[i].value)
            return CLT_ERR_INVALID_ARGUMENT;
        for (size_t k = 0; k < NKEYS; k++)
            if (strcmp(meta[i].key, meta_keys[k]) == 0) {
                clt__log(&tr->dev->log, CLT_LOG_ERROR,
                         "checkpoint metadata key \"%s\" is the trainer's own", meta[i].key);
                return CLT_ERR_INVALID_ARGUMENT;
            }
    }
    return CLT_OK;
}

/* Writes the entries and metadata of the host copies to path. */
static enum clt_status write_checkpoint(struct clt_trainer *tr, const char *path,
                                        const struct host_state *h,
                                        const struct clt__optim_status *status,
                                        const struct clt_meta *meta, size_t n)
{
    uint32_t nodes = tr->plan.n;
    size_t max = (size_t)nodes * 4;
    struct clt__st_entry *e = malloc((max ? max : 1) * sizeof *e);
    char(*names)[LONG_NAME] = malloc((max ? max : 1) * sizeof *names);
    struct clt_meta *all = malloc((n + NKEYS) * sizeof *all);
    enum clt_status st = e && names && all ? CLT_OK : CLT_ERR_NO_MEMORY;
    size_t k = 0;
    for (uint32_t id = 0; st == CLT_OK && id < nodes; id++) {
        const struct clt_tensor *t = tr->graph->nodes[id];
        if (!is_param(t))
            continue;
        uint64_t off = tr->plan.info[id].offset;
        add_entry(e, names, &k, "", t, h->params + off);
        if (t->kind != CLT__NODE_PARAM)
            continue;
        add_entry(e, names, &k, "optimizer.m.", t, h->m + off);
        if (h->v)
            add_entry(e, names, &k, "optimizer.v.", t, h->v + off);
        if (h->g)
            add_entry(e, names, &k, "optimizer.grad.", t, h->g + off);
    }
    char num[6][24];
    uint32_t crc = 0;
    if (st == CLT_OK)
        st = clt__safetensors_data_crc32(e, k, &crc);
    if (st == CLT_OK) {
        if (n > 0)
            memcpy(all, meta, n * sizeof *meta);
        snprintf(num[0], sizeof num[0], "%llu", (unsigned long long)tr->steps);
        snprintf(num[1], sizeof num[1], "%llu", (unsigned long long)tr->updates);
        snprintf(num[2], sizeof num[2], "%llu", (unsigned long long)tr->options.seed);
        snprintf(num[3], sizeof num[3], "%d", (int)status->step);
        snprintf(num[4], sizeof num[4], "%d", (int)status->skipped);
        snprintf(num[5], sizeof num[5], "%08x", (unsigned)crc);
        const char *values[NKEYS] = {
            clt_version(), num[0], num[1], num[2], kind_names[tr->options.optimizer.kind],
            num[3],        num[4], num[5]};
        for (size_t i = 0; i < NKEYS; i++)
            all[n + i] = (struct clt_meta){meta_keys[i], values[i]};
        st = clt__safetensors_write(path, e, k, all, n + NKEYS, &tr->dev->log);
    }
    if (st == CLT_OK)
        clt__log(&tr->dev->log, CLT_LOG_INFO, "saved %s: %zu tensors, step %llu", path, k,
                 (unsigned long long)tr->steps);
    free(e);
    free(names);
    free(all);
    return st;
}

enum clt_status clt_trainer_save(struct clt_trainer *tr, const char *path,
                                 const struct clt_meta *meta, size_t n)
{
    if (!tr || !path || !*path || (n > 0 && !meta))
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_user_meta(tr, meta, n);
    if (st != CLT_OK)
        return st;
    struct host_state h;
    st = host_state_alloc(tr, true, micro(tr) != 0, &h);
    if (st != CLT_OK)
        return st;
    struct clt__optim_status status;
    memset(&status, 0, sizeof status);
    st = clt_device_finish(tr->dev);
    if (st == CLT_OK)
        st = read_floats(tr, tr->params, h.params, tr->plan.trained + tr->plan.state);
    if (st == CLT_OK)
        st = read_floats(tr, tr->moment1, h.m, tr->plan.trained);
    if (st == CLT_OK && h.v)
        st = read_floats(tr, tr->moment2, h.v, tr->plan.trained);
    if (st == CLT_OK && h.g)
        st = read_floats(tr, tr->grads, h.g, tr->plan.trained);
    if (st == CLT_OK)
        st = clt__optim_status_read(tr->dev, (struct clt__buf){tr->status, 0}, &status);
    if (st == CLT_OK)
        st = write_checkpoint(tr, path, &h, &status, meta, n);
    host_state_free(&h);
    return st;
}

/* ---- Loading ---------------------------------------------------------------------------- */

/* The counters a checkpoint restores. */
struct counters {
    uint64_t steps, updates, seed, t, skipped;
    bool has_seed;
};

/* Finds tensor prefix+t->name, F32 of t's shape, and copies it to dst; logs why not. */
static enum clt_status take(const struct clt_trainer *tr, const char *path,
                            const struct clt__safetensors *file, const char *prefix,
                            const struct clt_tensor *t, float *dst)
{
    const struct clt_log *log = &tr->dev->log;
    char name[LONG_NAME], want[160], have[160];
    snprintf(name, sizeof name, "%s%s", prefix, t->name);
    const struct clt__st_tensor *f = clt__safetensors_find(file, name);
    shape_text(want, sizeof want, t->ndim, t->shape);
    if (!f) {
        clt__log(log, CLT_LOG_ERROR, "%s has no tensor %s, which %s needs %s", path, name,
                 *prefix ? "resuming the optimizer" : "the model", want);
        return CLT_ERR_FORMAT;
    }
    shape_text(have, sizeof have, f->ndim, f->shape);
    bool same = f->ndim == t->ndim;
    for (uint32_t i = 0; same && i < t->ndim; i++)
        same = f->shape[i] == t->shape[i];
    if (f->dtype != CLT__ST_F32 || !same) {
        clt__log(log, CLT_LOG_ERROR, "%s has %s %s %s, the model wants F32 %s", path, name,
                 clt__st_dtype_name(f->dtype), have, want);
        return CLT_ERR_FORMAT;
    }
    clt__f32_from_le(dst, f->data, (size_t)clt__count(t));
    return CLT_OK;
}

/* Checks the data section against "cltrain.data_crc32" when the file has it. */
static enum clt_status verify_crc(const char *path, const unsigned char *bytes,
                                  const struct clt__safetensors *file, const struct clt_log *log)
{
    const char *want = clt__safetensors_meta(file, KEY_CRC);
    if (!want)
        return CLT_OK;
    char *end = NULL;
    unsigned long w = strtoul(want, &end, 16);
    if (strlen(want) != 8 || *end != '\0') {
        clt__log(log, CLT_LOG_ERROR, "%s: metadata %s is \"%s\", not 8 hex digits", path, KEY_CRC,
                 want);
        return CLT_ERR_FORMAT;
    }
    uLong c = crc32(0L, Z_NULL, 0);
    const unsigned char *p = bytes + 8 + file->header_bytes;
    for (uint64_t left = file->data_bytes; left > 0;) {
        uInt k = left > (1u << 30) ? (1u << 30) : (uInt)left;
        c = crc32(c, p, k);
        p += k;
        left -= k;
    }
    if ((uint32_t)c != (uint32_t)w) {
        clt__log(log, CLT_LOG_ERROR,
                 "%s is corrupt: its tensor data has CRC-32 %08x, the file says %s "
                 "(%s)",
                 path, (unsigned)(uint32_t)c, want, KEY_CRC);
        return CLT_ERR_FORMAT;
    }
    return CLT_OK;
}

/* Reads the counters from the metadata, checking the optimizer kind. */
static enum clt_status read_counters(const struct clt_trainer *tr, const char *path,
                                     const struct clt__safetensors *file, struct counters *c)
{
    const struct clt_log *log = &tr->dev->log;
    const char *kind = clt__safetensors_meta(file, KEY_KIND);
    const char *want = kind_names[tr->options.optimizer.kind];
    if (!kind || strcmp(kind, want) != 0) {
        clt__log(log, CLT_LOG_ERROR,
                 "%s holds the state of optimizer %s, the trainer's is %s "
                 "(load without the optimizer to take the parameters only)",
                 path, kind ? kind : "(none)", want);
        return CLT_ERR_FORMAT;
    }
    struct {
        const char *key;
        uint64_t max;
        uint64_t *out;
    } fields[] = {
        {KEY_STEPS, UINT64_MAX, &c->steps},
        {KEY_UPDATES, UINT64_MAX, &c->updates},
        {KEY_T, INT32_MAX, &c->t},
        {KEY_SKIPPED, INT32_MAX, &c->skipped},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *v = clt__safetensors_meta(file, fields[i].key);
        if (!parse_u64(v, fields[i].max, fields[i].out)) {
            clt__log(log, CLT_LOG_ERROR, "%s: metadata %s is %s%s%s, not a count", path,
                     fields[i].key, v ? "\"" : "", v ? v : "missing", v ? "\"" : "");
            return CLT_ERR_FORMAT;
        }
    }
    const char *seed = clt__safetensors_meta(file, KEY_SEED);
    c->has_seed = seed != NULL;
    if (seed && !parse_u64(seed, UINT64_MAX, &c->seed)) {
        clt__log(log, CLT_LOG_ERROR, "%s: metadata %s is \"%s\", not a number", path, KEY_SEED,
                 seed);
        return CLT_ERR_FORMAT;
    }
    return CLT_OK;
}

/* Fills the host copies from the file, checking every tensor the trainer needs. */
static enum clt_status gather(struct clt_trainer *tr, const char *path,
                              const struct clt__safetensors *file, struct host_state *h,
                              struct counters *c)
{
    enum clt_status st = h->m ? read_counters(tr, path, file, c) : CLT_OK;
    /* Gradients of a partial accumulation are needed when the restored trainer will be in
     * the middle of one. */
    if (st == CLT_OK && h->m && c->steps % tr->options.optimizer.accumulate != 0) {
        h->g = malloc((tr->plan.trained ? tr->plan.trained : 1) * 4);
        if (!h->g)
            st = CLT_ERR_NO_MEMORY;
    }
    for (uint32_t id = 0; st == CLT_OK && id < tr->plan.n; id++) {
        const struct clt_tensor *t = tr->graph->nodes[id];
        if (!is_param(t))
            continue;
        uint64_t off = tr->plan.info[id].offset;
        st = take(tr, path, file, "", t, h->params + off);
        if (st == CLT_OK && h->m && t->kind == CLT__NODE_PARAM)
            st = take(tr, path, file, "optimizer.m.", t, h->m + off);
        if (st == CLT_OK && h->v && t->kind == CLT__NODE_PARAM)
            st = take(tr, path, file, "optimizer.v.", t, h->v + off);
        if (st == CLT_OK && h->g && t->kind == CLT__NODE_PARAM)
            st = take(tr, path, file, "optimizer.grad.", t, h->g + off);
    }
    return st;
}

/* Writes the checked host copies and counters into the trainer. */
static enum clt_status restore(struct clt_trainer *tr, const struct host_state *h,
                               const struct counters *c)
{
    enum clt_status st = clt_device_finish(tr->dev);
    if (st == CLT_OK)
        st = write_floats(tr, tr->params, h->params, tr->plan.trained + tr->plan.state);
    if (!h->m)
        return st;
    if (st == CLT_OK)
        st = write_floats(tr, tr->moment1, h->m, tr->plan.trained);
    if (st == CLT_OK && h->v)
        st = write_floats(tr, tr->moment2, h->v, tr->plan.trained);
    if (st == CLT_OK && h->g)
        st = write_floats(tr, tr->grads, h->g, tr->plan.trained);
    if (st == CLT_OK)
        st = clt__optim_status_set(tr->dev, (struct clt__buf){tr->status, 0}, (int32_t)c->t,
                                   (int32_t)c->skipped);
    if (st == CLT_OK)
        st = clt_device_finish(tr->dev);
    if (st != CLT_OK)
        return st;
    tr->steps = c->steps;
    tr->updates = c->updates;
    if (c->has_seed)
        tr->options.seed = c->seed;
    /* A status read of a step before the load says nothing about the restored run. */
    if (tr->status_ev) {
        clReleaseEvent(tr->status_ev);
        tr->status_ev = NULL;
    }
    return CLT_OK;
}

enum clt_status clt_trainer_load(struct clt_trainer *tr, const char *path, bool optimizer)
{
    if (!tr || !path)
        return CLT_ERR_INVALID_ARGUMENT;
    const struct clt_log *log = &tr->dev->log;
    unsigned char *buf = NULL;
    const unsigned char *bytes = NULL;
    size_t size = 0;
    struct clt__safetensors file;
    struct host_state h;
    struct counters c;
    char why[512];
    memset(&file, 0, sizeof file);
    memset(&c, 0, sizeof c);
    enum clt_status st = clt__safetensors_read_file(path, log, &buf, &bytes, &size);
    if (st != CLT_OK)
        return st;
    st = clt__safetensors_parse(bytes, size, &file, why, sizeof why);
    if (st == CLT_ERR_FORMAT)
        clt__log(log, CLT_LOG_ERROR, "%s is not a valid safetensors file: %s", path, why);
    if (st == CLT_OK)
        st = verify_crc(path, bytes, &file, log);
    if (st == CLT_OK)
        st = host_state_alloc(tr, optimizer, false, &h);
    if (st == CLT_OK) {
        st = gather(tr, path, &file, &h, &c);
        if (st == CLT_OK)
            st = restore(tr, &h, &c);
        host_state_free(&h);
    }
    if (st == CLT_OK)
        clt__log(log, CLT_LOG_INFO, "loaded %s%s: step %llu", path,
                 optimizer ? " with the optimizer's state" : "", (unsigned long long)tr->steps);
    clt__safetensors_free(&file);
    free(buf);
    return st;
}

/* ---- Reading without a trainer ---------------------------------------------------------- */

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
        st = verify_crc(path, bytes, &ck->file, log);
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

enum clt_status clt_checkpoint_tensor(const struct clt_checkpoint *ck, uint32_t index,
                                      const char **name, uint32_t *ndim, int64_t *shape,
                                      const float **data)
{
    if (!ck || index >= ck->file.count)
        return CLT_ERR_INVALID_ARGUMENT;
    const struct clt__st_tensor *t = &ck->file.tensors[index];
    if (t->dtype != CLT__ST_F32 || t->ndim > CLT_MAX_DIMS) {
        clt__log(ck->has_log ? &ck->log : NULL, CLT_LOG_ERROR,
                 "checkpoint tensor %s is %s with %u dimensions; cltrain reads F32 tensors of "
                 "at most %d",
                 t->name, clt__st_dtype_name(t->dtype), (unsigned)t->ndim, CLT_MAX_DIMS);
        return CLT_ERR_UNSUPPORTED;
    }
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
