/*
 * common.c: see common.h.
 */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

/* How the engine's GEMM tuner starts its progress lines (engine/tune.c). */
#define TUNE_PROGRESS "gemm tuning: "

static void log_fn(void *user, enum clt_log_level level, const char *message)
{
    struct tool_log *tl = user;
    if (level == CLT_LOG_ERROR) {
        /* Keep the first line: the reason; a build log would follow on later lines. */
        size_t n = strcspn(message, "\n");
        if (n >= sizeof tl->last)
            n = sizeof tl->last - 1;
        memcpy(tl->last, message, n);
        tl->last[n] = '\0';
        if (message[n] == '\n' && tl->verbose)
            fprintf(stderr, "%s: %s\n", tl->cmd, message);
    } else if (level == CLT_LOG_WARN || tl->verbose ||
               strncmp(message, TUNE_PROGRESS, strlen(TUNE_PROGRESS)) == 0) {
        /* Without --verbose, the GEMM tuner's progress is the one INFO line shown: a cold
         * first start may spend its tuning budget, and should say so. */
        fprintf(stderr, "%s: %s%s\n", tl->cmd, level == CLT_LOG_WARN ? "warning: " : "", message);
    }
}

void tool_log_init(struct tool_log *tl, const char *cmd, bool verbose)
{
    memset(tl, 0, sizeof *tl);
    tl->cmd = cmd;
    tl->verbose = verbose;
    tl->log.fn = log_fn;
    tl->log.user = tl;
    tl->log.max_level = CLT_LOG_INFO;
}

void tool_fail(struct tool_log *tl, enum clt_status st, const char *fmt, ...)
{
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (tl->last[0])
        fprintf(stderr, "%s: %s: %s\n", tl->cmd, what, tl->last);
    else
        fprintf(stderr, "%s: %s: %s\n", tl->cmd, what, clt_status_str(st));
    tl->last[0] = '\0';
}

void tool_report(struct tool_log *tl, const char *message)
{
    if (tl->last[0])
        fprintf(stderr, "%s: %s: %s\n", tl->cmd, message, tl->last);
    else
        fprintf(stderr, "%s: %s\n", tl->cmd, message);
    tl->last[0] = '\0';
}

void tool_devices_brief(FILE *f, const struct clt_device_info *list, size_t count)
{
    static const char *const types[] = {"other", "cpu", "gpu", "accelerator"};
    for (size_t i = 0; i < count; i++) {
        const struct clt_device_info *d = &list[i];
        unsigned t = (unsigned)d->type < 4 ? (unsigned)d->type : 0;
        fprintf(f, "  %u:%u  %s / %s  (%s)\n", (unsigned)d->platform_index,
                (unsigned)d->device_index, d->platform, d->name, types[t]);
    }
}

void tool_rusticl_hint(FILE *f, const struct clt_device_info *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strstr(list[i].platform, "rusticl"))
            return;
    const char *env = getenv("RUSTICL_ENABLE");
    if (env && *env)
        fprintf(f,
                "note: RUSTICL_ENABLE=%s is set but Mesa's rusticl lists no device: is "
                "mesa-opencl-icd installed, and does it have that driver?\n",
                env);
    else
        fprintf(f, "note: Mesa's rusticl (package mesa-opencl-icd) lists no device unless "
                   "enabled:\n      RUSTICL_ENABLE=llvmpipe cltrain devices\n"
                   "      (llvmpipe: on the CPU; radeonsi or iris: an AMD or Intel GPU)\n");
}

bool tool_idle_hint(FILE *f, const struct clt_device_info *list, size_t count, const char *path)
{
    bool cpu = false;
    for (size_t i = 0; i < count; i++)
        cpu |= list[i].type == CLT_DEVICE_CPU;
    FILE *p = cpu ? fopen(path, "r") : NULL;
    if (!p)
        return false;
    unsigned long ns = 1;
    bool zero = fscanf(p, "%lu", &ns) == 1 && ns == 0;
    fclose(p);
    if (zero)
        fprintf(f,
                "note: this machine's idle vCPUs halt at once (guest_halt_poll_ns is 0), so a CPU\n"
                "      device's threads wait for them at every kernel; as root,\n"
                "      echo 200000 > %s\n"
                "      lets them poll first (docs/ci.md: the mlp trained up to 1.6x faster)\n",
                path);
    return zero;
}

int tool_device_check(const char *cmd, const char *selection, bool allow_all)
{
    const char *from = "--device";
    if (!selection || !*selection) {
        selection = getenv("CLTRAIN_DEVICE");
        from = "CLTRAIN_DEVICE";
    }
    if (selection && allow_all && strcmp(selection, "all") == 0)
        return 0;
    struct clt_device_info *list = NULL;
    size_t count = 0, index = 0;
    struct clt_log quiet = {0};
    quiet.max_level = CLT_LOG_ERROR;
    enum clt_status st = clt_devices_list(&quiet, &list, &count);
    if (st != CLT_OK) {
        fprintf(stderr, "%s: cannot list the OpenCL devices: %s\n", cmd, clt_status_str(st));
        return 1;
    }
    int rc = 0;
    if (count == 0) {
        fprintf(stderr, "%s: no OpenCL device found\n", cmd);
        tool_rusticl_hint(stderr, list, count);
        rc = 1;
    } else if (selection && *selection &&
               (st = clt_device_select(list, count, selection, &index)) != CLT_OK) {
        if (st == CLT_ERR_INVALID_ARGUMENT)
            fprintf(stderr, "%s: %s \"%s\" is not a valid selection; the devices are:\n", cmd, from,
                    selection);
        else
            fprintf(stderr, "%s: no device matches %s \"%s\"; the devices are:\n", cmd, from,
                    selection);
        tool_devices_brief(stderr, list, count);
        fprintf(stderr, "select one by P:D, gpu, cpu or a part of its name%s\n",
                allow_all ? ", or all" : "");
        tool_rusticl_hint(stderr, list, count);
        rc = 1;
    }
    clt_devices_free(list);
    return rc;
}

int tool_devices_resolve(const char *cmd, const char *selection, char sel[][16], uint32_t *n)
{
    if (!selection || !*selection)
        selection = getenv("CLTRAIN_DEVICE");
    *n = 1;
    sel[0][0] = '\0';
    bool all = selection && strcmp(selection, "all") == 0;
    if (!all && (!selection || !strchr(selection, ',')))
        return 0;
    struct clt_device_info *list = NULL;
    size_t count = 0;
    struct clt_log quiet = {0};
    quiet.max_level = CLT_LOG_ERROR;
    enum clt_status st = clt_devices_list(&quiet, &list, &count);
    if (st != CLT_OK) {
        fprintf(stderr, "%s: cannot list the OpenCL devices: %s\n", cmd, clt_status_str(st));
        return 1;
    }
    size_t index[TOOL_MAX_DEVICES];
    uint32_t k = 0;
    int rc = 0;
    if (all) {
        for (size_t i = 0; i < count && k < TOOL_MAX_DEVICES; i++)
            index[k++] = i;
        if (count == 0) {
            fprintf(stderr, "%s: --device all: no OpenCL device found\n", cmd);
            tool_rusticl_hint(stderr, list, count);
            rc = 1;
        }
    }
    for (const char *p = selection; !all && rc == 0;) {
        size_t len = strcspn(p, ",");
        char item[128];
        if (len == 0 || len >= sizeof item) {
            fprintf(stderr, "%s: --device \"%s\": %s item in the list\n", cmd, selection,
                    len == 0 ? "an empty" : "a too long");
            rc = 1;
            break;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (k == TOOL_MAX_DEVICES) {
            fprintf(stderr, "%s: --device \"%s\": more than %d devices\n", cmd, selection,
                    TOOL_MAX_DEVICES);
            rc = 1;
        } else if (clt_device_select(list, count, item, &index[k]) != CLT_OK) {
            fprintf(stderr, "%s: --device \"%s\": no device matches \"%s\"; the devices are:\n",
                    cmd, selection, item);
            tool_devices_brief(stderr, list, count);
            tool_rusticl_hint(stderr, list, count);
            rc = 1;
        }
        for (uint32_t j = 0; rc == 0 && j < k; j++)
            if (index[j] == index[k]) {
                fprintf(stderr,
                        "%s: --device \"%s\": \"%s\" is device %u:%u (%s), named twice: a "
                        "device takes part once\n",
                        cmd, selection, item, (unsigned)list[index[k]].platform_index,
                        (unsigned)list[index[k]].device_index, list[index[k]].name);
                rc = 1;
            }
        if (rc == 0)
            k++;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    for (uint32_t j = 0; rc == 0 && j < k; j++)
        snprintf(sel[j], 16, "%u:%u", (unsigned)list[index[j]].platform_index,
                 (unsigned)list[index[j]].device_index);
    if (rc == 0)
        *n = k;
    clt_devices_free(list);
    return rc;
}

struct clt_device *tool_device_open(struct tool_log *tl, const char *selection)
{
    struct clt_device_options o;
    clt_device_options_init(&o);
    o.log = tl->log;
    struct clt_device *dev = NULL;
    enum clt_status st = clt_device_open(selection, &o, &dev);
    if (st != CLT_OK) {
        const char *sel = selection ? selection : getenv("CLTRAIN_DEVICE");
        if (st == CLT_ERR_NO_DEVICE && sel && *sel)
            tool_fail(tl, st, "no device matches \"%s\" (see `cltrain devices`)", sel);
        else
            tool_fail(tl, st, "cannot open the OpenCL device");
        return NULL;
    }
    return dev;
}

bool tool_precision_parse(const char *s, enum clt_precision *out)
{
    const enum clt_precision all[] = {CLT_PRECISION_FP32, CLT_PRECISION_FP16, CLT_PRECISION_BF16};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, clt_precision_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    return false;
}

void meta_shape(const struct clt_dataset_info *info, char *out, size_t size)
{
    size_t at = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < info->ndim && at < size; i++)
        at += (size_t)snprintf(out + at, size - at, "%s%lld", i ? "," : "",
                               (long long)info->shape[i]);
}

void meta_symbols(const uint8_t *symbols, uint32_t vocab, char *out, size_t size)
{
    out[0] = '\0';
    for (uint32_t i = 0; i < vocab && 2 * i + 2 < size; i++)
        snprintf(out + 2 * i, 3, "%02x", symbols[i]);
}

bool meta_u64(const struct clt_checkpoint *ck, const char *key, uint64_t *out)
{
    int64_t v;
    const char *s = clt_checkpoint_meta(ck, key);
    if (!s || !args_int(s, &v) || v < 0)
        return false;
    *out = (uint64_t)v;
    return true;
}

static int hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int ckpt_model_read(const struct clt_checkpoint *ck, struct ckpt_model *out, char *err,
                    size_t err_size)
{
    memset(out, 0, sizeof *out);
    const char *model = clt_checkpoint_meta(ck, "model");
    const char *data = clt_checkpoint_meta(ck, "data");
    if (!model || !data) {
        snprintf(err, err_size,
                 "not a checkpoint of `cltrain train`: no \"model\" and \"data\" metadata "
                 "(docs/training.md, \"Checkpoints of library programs\", lists what one "
                 "needs)");
        return -1;
    }
    if (model_desc_parse(model, &out->desc) != CLT_OK) {
        snprintf(err, err_size, "malformed \"model\" metadata \"%.200s\"", model);
        return -1;
    }
    snprintf(out->data, sizeof out->data, "%s", data);
    uint64_t v = 0;
    meta_u64(ck, "data.seed", &out->data_seed);
    meta_u64(ck, "data.limit", &out->data_limit);
    int64_t column = -1;
    const char *lc = clt_checkpoint_meta(ck, "data.label_column");
    out->label_column = lc && args_int(lc, &column) && column > -(1 << 24) && column < (1 << 24)
                            ? (int32_t)column
                            : -1;
    out->batch = meta_u64(ck, "train.batch", &v) && v > 0 ? (int64_t)v : 64;
    if (strcmp(out->desc.kind, "file") == 0) {
        const char *spec = clt_checkpoint_meta(ck, "model.spec");
        out->spec = spec ? strdup(spec) : NULL;
        if (!out->spec) {
            snprintf(err, err_size, "the checkpoint lacks its model file (\"model.spec\")");
            return -1;
        }
        out->desc.spec = out->spec;
    }
    if (strcmp(out->desc.kind, "gpt") == 0) {
        const char *sym = clt_checkpoint_meta(ck, "data.symbols");
        size_t n = sym ? strlen(sym) : 0;
        out->info.kind = CLT_DATASET_TEXT;
        out->info.vocab = (uint32_t)(n / 2);
        for (size_t i = 0; sym && i + 1 < n; i += 2) {
            int hi = hex(sym[i]), lo = hex(sym[i + 1]);
            if (hi < 0 || lo < 0)
                n = 0;
            else
                out->symbols[i / 2] = (uint8_t)(hi * 16 + lo);
        }
        if (n == 0 || n % 2 || n > 512) {
            snprintf(err, err_size, "malformed or missing \"data.symbols\" metadata");
            return -1;
        }
        return 0;
    }
    out->info.kind = CLT_DATASET_CLASSES;
    const char *shape = clt_checkpoint_meta(ck, "data.shape");
    bool ok = shape && meta_u64(ck, "data.classes", &v) && v >= 2 && v < (1u << 24);
    out->info.classes = (uint32_t)v;
    for (const char *p = shape; ok && *p;) {
        char *end = NULL;
        long long d = strtoll(p, &end, 10);
        ok =
            end != p && d > 0 && out->info.ndim < CLT_MAX_DIMS - 1 && (*end == ',' || *end == '\0');
        if (ok)
            out->info.shape[out->info.ndim++] = d;
        p = *end == ',' ? end + 1 : end;
    }
    if (!ok || out->info.ndim == 0) {
        snprintf(err, err_size,
                 "malformed or missing \"data.shape\" or \"data.classes\" "
                 "metadata");
        return -1;
    }
    return 0;
}

void ckpt_model_free(struct ckpt_model *m)
{
    free(m->spec);
    m->spec = NULL;
}

int ckpt_open(struct tool_log *tl, const char *path, struct ckpt *c)
{
    c->path = path;
    enum clt_status st = clt_checkpoint_open(path, &tl->log, &c->ck);
    if (st != CLT_OK) {
        tool_fail(tl, st, "cannot read the checkpoint %s", path);
        return 1;
    }
    char err[1200];
    if (ckpt_model_read(c->ck, &c->cm, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s: %s\n", tl->cmd, path, err);
        return 1;
    }
    return 0;
}

int ckpt_load(struct tool_log *tl, struct ckpt *c, int64_t batch, const char *device)
{
    char err[1200];
    if (model_build(&c->cm.desc, &c->cm.info, batch, &c->m, err, sizeof err) != CLT_OK) {
        fprintf(stderr, "%s: %s\n", tl->cmd, err);
        return 1;
    }
    if (!(c->dev = tool_device_open(tl, device)))
        return 1;
    struct clt_trainer_options opt;
    clt_trainer_options_init(&opt, CLT_OPTIM_SGD);
    enum clt_status st = clt_trainer_create(c->dev, c->m.g, c->m.loss, &opt, &c->tr);
    if (st == CLT_OK)
        st = clt_trainer_load(c->tr, c->path, false);
    if (st != CLT_OK) {
        tool_fail(tl, st, "cannot load %s", c->path);
        return 1;
    }
    return 0;
}

void ckpt_close(struct ckpt *c)
{
    clt_trainer_free(c->tr);
    model_free(&c->m);
    clt_device_close(c->dev);
    ckpt_model_free(&c->cm);
    clt_checkpoint_close(c->ck);
    c->tr = NULL;
    c->dev = NULL;
    c->ck = NULL;
}

int64_t argmax(const float *row, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (row[i] > row[best])
            best = i;
    return best;
}
