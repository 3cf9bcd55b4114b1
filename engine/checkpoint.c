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
 * and the metadata keys of meta_keys below, plus the caller's pairs; an fp16 trainer adds its
 * loss scaler's eight "scaler.*" keys (clt__scaler_meta), which a load with the optimizer
 * restores. Tensors are fp32 in every precision: a 16-bit trainer saves its fp32 masters, and
 * a load narrows them into its 16-bit working copy. "cltrain.data_crc32" is
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
        if (tr->plan.storage == CLT_PRECISION_FP16 && strncmp(meta[i].key, "scaler.", 7) == 0) {
            clt__log(&tr->dev->log, CLT_LOG_ERROR,
                     "checkpoint metadata key \"%s\": the \"scaler.\" keys are the loss scaler's",
                     meta[i].key);
            return CLT_ERR_INVALID_ARGUMENT;
        }
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
                                        const struct clt__scaler *scaler,
                                        const struct clt_meta *meta, size_t n)
{
    uint32_t nodes = tr->plan.n;
    size_t max = (size_t)nodes * 4;
    struct clt__st_entry *e = malloc((max ? max : 1) * sizeof *e);
    char(*names)[LONG_NAME] = malloc((max ? max : 1) * sizeof *names);
    struct clt_meta *all = malloc((n + NKEYS + CLT__SCALER_META) * sizeof *all);
    char scaler_text[CLT__SCALER_META][CLT__SCALER_TEXT];
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
        size_t nall = n + NKEYS;
        if (scaler) {
            clt__scaler_meta(scaler, all + nall, scaler_text);
            nall += CLT__SCALER_META;
        }
        st = clt__safetensors_write(path, e, k, all, nall, &tr->dev->log);
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
    struct clt__scaler scaler;
    const bool scaled = tr->plan.storage == CLT_PRECISION_FP16;
    clt__scaler_init(&scaler, &tr->scaler_cfg);
    if (st == CLT_OK && scaled)
        st = clt__scaler_state_read(tr->dev, (struct clt__buf){tr->scaler, 0}, &scaler);
    if (st == CLT_OK)
        st = write_checkpoint(tr, path, &h, &status, scaled ? &scaler : NULL, meta, n);
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
    /* Float tensors of other precisions (a bf16 export, say) are widened; integers are not
     * weights. */
    const bool floats = f->dtype == CLT__ST_F32 || f->dtype == CLT__ST_F16 ||
                        f->dtype == CLT__ST_BF16 || f->dtype == CLT__ST_F64;
    if (!floats || !same) {
        clt__log(log, CLT_LOG_ERROR, "%s has %s %s %s, the model wants F32 %s", path, name,
                 clt__st_dtype_name(f->dtype), have, want);
        return CLT_ERR_FORMAT;
    }
    return clt__st_to_f32(f, dst);
}

/* Checks the data section against "cltrain.data_crc32" when the file has it. */
enum clt_status clt__checkpoint_verify_crc(const char *path, const unsigned char *bytes,
                                           const struct clt__safetensors *file,
                                           const struct clt_log *log)
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

/* Fills the host copies from the file, checking every tensor the trainer needs; parameters
 * the file lacks are skipped when allow_missing (h->params then holds their current values). */
static enum clt_status gather(struct clt_trainer *tr, const char *path,
                              const struct clt__safetensors *file, bool allow_missing,
                              struct host_state *h, struct counters *c)
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
        if (allow_missing && !clt__safetensors_find(file, t->name))
            continue;
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

/* An fp16 trainer's loss scaler from the file when the optimizer is resumed: the file's
 * "scaler.*" keys (checked: a bad one fails the load), or, from a file without them (saved in
 * another precision), a scaler at its start. */
static enum clt_status gather_scaler(struct clt_trainer *tr, const char *path,
                                     const struct clt__safetensors *file, struct clt__scaler *s)
{
    clt__scaler_init(s, &tr->scaler_cfg);
    if (!clt__safetensors_meta(file, "scaler.scale")) {
        clt__log(&tr->dev->log, CLT_LOG_INFO,
                 "%s holds no loss scaler state: the scale starts at %g", path,
                 tr->scaler_cfg.init_scale);
        return CLT_OK;
    }
    return clt__scaler_load(s, file, path, &tr->dev->log);
}

/* Writes the checked host copies and counters (and an fp16 trainer's scaler, when not NULL)
 * into the trainer; a 16-bit trainer narrows the parameters into its working copy. */
static enum clt_status restore(struct clt_trainer *tr, const struct host_state *h,
                               const struct counters *c, const struct clt__scaler *scaler)
{
    enum clt_status st = clt_device_finish(tr->dev);
    if (st == CLT_OK)
        st = write_floats(tr, tr->params, h->params, tr->plan.trained + tr->plan.state);
    if (st == CLT_OK)
        st = clt__trainer_shadow_refresh(tr);
    if (st == CLT_OK && scaler) {
        tr->scaler_cfg = scaler->cfg; /* the file's, as GradScaler.load_state_dict */
        st = clt__trainer_scaler_set(tr, scaler);
    }
    if (!h->m)
        return st == CLT_OK ? clt_device_finish(tr->dev) : st;
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

/* The model's parameter or state tensor of this name, or NULL. */
static const struct clt_tensor *model_tensor(const struct clt_trainer *tr, const char *name)
{
    for (uint32_t id = 0; id < tr->plan.n; id++) {
        const struct clt_tensor *t = tr->graph->nodes[id];
        if (is_param(t) && strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

/* Whether a tensor of the file is the model's: a parameter or state, or a trained
 * parameter's optimizer state. */
static bool used_by_model(const struct clt_trainer *tr, const char *name)
{
    static const char *const prefixes[] = {"optimizer.m.", "optimizer.v.", "optimizer.grad."};
    const struct clt_tensor *t = model_tensor(tr, name);
    if (t)
        return true;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t len = strlen(prefixes[i]);
        if (strncmp(name, prefixes[i], len) == 0) {
            t = model_tensor(tr, name + len);
            return t && t->kind == CLT__NODE_PARAM;
        }
    }
    return false;
}

/* How many names a report lists before it counts the rest. */
#define REPORT_NAMES 10

/* Counts the model's tensors the file lacks and the file's tensors the model does not use,
 * naming them in the log (ERROR when they fail the load, WARN otherwise). */
static void survey(const struct clt_trainer *tr, const char *path,
                   const struct clt__safetensors *file, bool strict, struct clt_load_report *r)
{
    const struct clt_log *log = &tr->dev->log;
    const enum clt_log_level level = strict ? CLT_LOG_ERROR : CLT_LOG_WARN;
    for (uint32_t id = 0; id < tr->plan.n; id++) {
        const struct clt_tensor *t = tr->graph->nodes[id];
        if (!is_param(t))
            continue;
        if (clt__safetensors_find(file, t->name)) {
            r->loaded++;
            continue;
        }
        if (r->missing++ < REPORT_NAMES)
            clt__log(log, level, "%s has no tensor \"%s\", a %s of the model%s", path, t->name,
                     t->kind == CLT__NODE_PARAM ? "parameter" : "state tensor",
                     strict ? "" : " (it keeps its value)");
    }
    for (uint32_t i = 0; i < file->count; i++) {
        const char *name = file->tensors[i].name;
        if (!used_by_model(tr, name) && r->unused++ < REPORT_NAMES)
            clt__log(log, level, "%s holds tensor \"%s\", which the model does not use", path,
                     name);
    }
    if (r->missing > REPORT_NAMES)
        clt__log(log, level, "%s lacks %u of the model's tensors in all", path, r->missing);
    if (r->unused > REPORT_NAMES)
        clt__log(log, level, "%s holds %u tensors the model does not use in all", path, r->unused);
}

/* The checks of a survey: strict refuses anything missing or unused; resuming the optimizer
 * needs every parameter. */
static enum clt_status judge(const struct clt_trainer *tr, const char *path,
                             const struct clt_load_options *o, const struct clt_load_report *r)
{
    const struct clt_log *log = &tr->dev->log;
    if (o->strict && (r->missing > 0 || r->unused > 0)) {
        clt__log(log, CLT_LOG_ERROR,
                 "%s does not match the model: %u of its tensors missing, %u tensors of the "
                 "file unused (a strict load refuses either; clt_trainer_load_with without "
                 "strict loads what matches)",
                 path, r->missing, r->unused);
        return CLT_ERR_FORMAT;
    }
    if (o->optimizer && r->missing > 0) {
        clt__log(log, CLT_LOG_ERROR,
                 "%s lacks %u of the model's tensors: the optimizer's state cannot be resumed "
                 "from it",
                 path, r->missing);
        return CLT_ERR_FORMAT;
    }
    return CLT_OK;
}

enum clt_status clt_trainer_load_with(struct clt_trainer *tr, const char *path,
                                      const struct clt_load_options *options,
                                      struct clt_load_report *report)
{
    struct clt_load_report r = {0, 0, 0};
    if (report)
        *report = r;
    if (!tr || !path)
        return CLT_ERR_INVALID_ARGUMENT;
    const struct clt_load_options strict = {.optimizer = false, .strict = true};
    const struct clt_load_options *o = options ? options : &strict;
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
        st = clt__checkpoint_verify_crc(path, bytes, &file, log);
    if (st == CLT_OK) {
        survey(tr, path, &file, o->strict, &r);
        if (report)
            *report = r;
        st = judge(tr, path, o, &r);
    }
    if (st == CLT_OK)
        st = host_state_alloc(tr, o->optimizer, false, &h);
    if (st == CLT_OK) {
        /* Parameters the file lacks keep their values: start from the device's. */
        if (r.missing > 0)
            st = clt_device_finish(tr->dev);
        if (st == CLT_OK && r.missing > 0)
            st = read_floats(tr, tr->params, h.params, tr->plan.trained + tr->plan.state);
        if (st == CLT_OK)
            st = gather(tr, path, &file, r.missing > 0, &h, &c);
        struct clt__scaler scaler;
        const bool scaled = o->optimizer && tr->plan.storage == CLT_PRECISION_FP16;
        if (st == CLT_OK && scaled)
            st = gather_scaler(tr, path, &file, &scaler);
        if (st == CLT_OK)
            st = restore(tr, &h, &c, scaled ? &scaler : NULL);
        host_state_free(&h);
    }
    if (st == CLT_OK && tr->par) /* a data-parallel trainer: to the other replicas */
        st = clt__parallel_sync(tr);
    if (st == CLT_OK)
        clt__log(log, CLT_LOG_INFO, "loaded %s%s: step %llu, %u tensors (%u missing, %u unused)",
                 path, o->optimizer ? " with the optimizer's state" : "",
                 (unsigned long long)tr->steps, r.loaded, r.missing, r.unused);
    clt__safetensors_free(&file);
    free(buf);
    return st;
}

enum clt_status clt_trainer_load(struct clt_trainer *tr, const char *path, bool optimizer)
{
    const struct clt_load_options o = {.optimizer = optimizer, .strict = true};
    return clt_trainer_load_with(tr, path, &o, NULL);
}
