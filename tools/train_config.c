/*
 * train_config.c: the configuration of a training run: defaults, checks, the checkpoint
 * metadata that records it, and reading it back to resume (see train.h).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets.h"
#include "train.h"

#define MODEL_SPEC_MAX (1u << 20)

void train_config_init(struct train_config *c)
{
    memset(c, 0, sizeof *c);
    model_desc_init(&c->desc, "");
    c->desc.width = c->desc.depth = c->desc.heads = c->desc.context = 0;
    c->desc.dropout = -1.0f;
    c->optimizer = "adamw";
    c->schedule = "cosine";
    c->precision = "fp32";
    c->precision_kind = CLT_PRECISION_FP32;
    c->momentum = 0.9;
    c->weight_decay = -1.0;
    c->seed = 1;
    c->log_every = 10;
    c->label_column = -1;
    c->val_fraction = DATA_HELD_OUT;
    c->tolerance = 1e-3;
    c->expect_accuracy = NAN;
    c->expect_loss = NAN;
}

void train_config_free(struct train_config *c)
{
    free(c->spec);
    c->spec = NULL;
    c->desc.spec = NULL;
}

int train_config_check(struct train_config *c, char *err, size_t err_size)
{
    if (strcmp(c->optimizer, "sgd") && strcmp(c->optimizer, "adam") &&
        strcmp(c->optimizer, "adamw")) {
        snprintf(err, err_size, "--optimizer: \"%s\" is not sgd, adam or adamw", c->optimizer);
        return 2;
    }
    if (strcmp(c->schedule, "constant") && strcmp(c->schedule, "cosine")) {
        snprintf(err, err_size, "--schedule: \"%s\" is not constant or cosine", c->schedule);
        return 2;
    }
    if (!tool_precision_parse(c->precision, &c->precision_kind)) {
        snprintf(err, err_size, "--precision: \"%s\" is not fp32, fp16 or bf16", c->precision);
        return 2;
    }
    if (data_spec_check(c->data, err, err_size) != 0)
        return 2;
    if (c->eval_data && data_spec_check(c->eval_data, err, err_size) != 0)
        return 2;
    if (!(c->val_fraction >= 0 && c->val_fraction < 1)) {
        snprintf(err, err_size, "--val-fraction must be at least 0 and below 1");
        return 2;
    }
    const char *outputs[] = {c->out, c->metrics, c->plot}, *names[] = {"out", "metrics", "plot"};
    for (int i = 0; i < 3; i++)
        if (outputs[i] && strcmp(outputs[i], "-") == 0) {
            snprintf(err, err_size, "--%s: give a file name (\"-\", standard output, is not one)",
                     names[i]);
            return 2;
        }
    if (c->keep_best && !c->out) {
        snprintf(err, err_size, "--keep-best needs --out FILE");
        return 2;
    }
    if (c->out) {
        size_t n = strlen(c->out);
        size_t stem = n > 12 && strcmp(c->out + n - 12, ".safetensors") == 0 ? n - 12 : n;
        snprintf(c->best_path, sizeof c->best_path, "%.*s.best.safetensors", (int)stem, c->out);
    }
    if (!(c->lr > 0)) {
        snprintf(err, err_size, "--lr must be positive");
        return 2;
    }
    if (strcmp(c->desc.kind, "gpt") == 0 && c->desc.width % c->desc.heads != 0) {
        snprintf(err, err_size, "--heads %lld must divide --width %lld", (long long)c->desc.heads,
                 (long long)c->desc.width);
        return 2;
    }
    if (strcmp(c->desc.kind, "file") == 0 && !c->desc.spec) {
        c->spec = model_read_file(c->desc.path, MODEL_SPEC_MAX, err, err_size);
        if (!c->spec)
            return 1;
        c->desc.spec = c->spec;
    }
    return 0;
}

/* ---- Metadata ------------------------------------------------------------------------------ */

struct meta_writer {
    struct clt_meta *meta;
    size_t n;
    char *buf;
    size_t used, size;
};

static void put(struct meta_writer *w, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void put(struct meta_writer *w, const char *key, const char *fmt, ...)
{
    if (w->used >= w->size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(w->buf + w->used, w->size - w->used, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= w->size - w->used) {
        w->used = w->size; /* truncated: drop this and every later pair */
        return;
    }
    w->meta[w->n].key = key;
    w->meta[w->n].value = w->buf + w->used;
    w->n++;
    w->used += (size_t)len + 1;
}

size_t train_config_meta(const struct train_config *c, const struct clt_dataset_info *info,
                         const uint8_t *symbols, uint64_t step, uint64_t batcher_epoch,
                         uint64_t batcher_position, struct clt_meta *meta, char *buf,
                         size_t buf_size)
{
    struct meta_writer w = {meta, 0, buf, 0, buf_size};
    char text[1200];
    model_desc_format(&c->desc, text, sizeof text);
    put(&w, "model", "%s", text);
    put(&w, "data", "%s", c->data);
    put(&w, "data.seed", "%lld", (long long)c->seed);
    put(&w, "data.limit", "%lld", (long long)c->limit);
    put(&w, "data.label_column", "%lld", (long long)c->label_column);
    put(&w, "data.val_fraction", "%.17g", c->val_fraction);
    if (c->eval_data)
        put(&w, "data.eval", "%s", c->eval_data);
    if (c->data_hash[0])
        put(&w, "data.hash", "%s", c->data_hash);
    if (info->kind == CLT_DATASET_TEXT) {
        char sym[520];
        meta_symbols(symbols, info->vocab, sym, sizeof sym);
        put(&w, "data.vocab", "%u", (unsigned)info->vocab);
        put(&w, "data.symbols", "%s", sym);
    } else {
        meta_shape(info, text, sizeof text);
        put(&w, "data.shape", "%s", text);
        put(&w, "data.classes", "%u", (unsigned)info->classes);
    }
    put(&w, "train.optimizer", "%s", c->optimizer);
    put(&w, "train.lr", "%.17g", c->lr);
    put(&w, "train.momentum", "%.17g", c->momentum);
    put(&w, "train.weight_decay", "%.17g", c->weight_decay);
    put(&w, "train.decay_all", "%d", c->decay_all ? 1 : 0);
    put(&w, "train.clip", "%.17g", c->clip);
    put(&w, "train.precision", "%s", c->precision);
    put(&w, "train.schedule", "%s", c->schedule);
    put(&w, "train.warmup", "%lld", (long long)c->warmup);
    put(&w, "train.seed", "%lld", (long long)c->seed);
    put(&w, "train.batch", "%lld", (long long)c->batch);
    put(&w, "train.epochs", "%lld", (long long)c->epochs);
    put(&w, "train.steps", "%lld", (long long)c->max_steps);
    put(&w, "train.log_every", "%lld", (long long)c->log_every);
    if (c->mpi && c->mpi->size > 1)
        put(&w, "train.ranks", "%d", c->mpi->size);
    put(&w, "train.step", "%llu", (unsigned long long)step);
    put(&w, "batcher.seed", "%lld", (long long)c->seed);
    put(&w, "batcher.epoch", "%llu", (unsigned long long)batcher_epoch);
    put(&w, "batcher.position", "%llu", (unsigned long long)batcher_position);
    /* Last, and outside buf: the model file may be long. */
    if (c->desc.spec && strcmp(c->desc.kind, "file") == 0 && w.used < w.size) {
        meta[w.n].key = "model.spec";
        meta[w.n].value = c->desc.spec;
        w.n++;
    }
    return w.n;
}

/* ---- Resuming ------------------------------------------------------------------------------ */

/* Takes an integer option from the checkpoint, or checks the command line's agrees. */
static int take_int(const struct clt_checkpoint *ck, const char *key, struct opt *o, int64_t *value,
                    char *err, size_t err_size)
{
    const char *s = clt_checkpoint_meta(ck, key);
    int64_t v;
    if (!s || !args_int(s, &v)) {
        snprintf(err, err_size, "the checkpoint lacks \"%s\"", key);
        return 1;
    }
    if (o && o->seen && *value != v) {
        snprintf(err, err_size,
                 "--%s %lld differs from the checkpoint's %lld (a resumed run "
                 "keeps its settings)",
                 o->name, (long long)*value, (long long)v);
        return 2;
    }
    *value = v;
    return 0;
}

static int take_float(const struct clt_checkpoint *ck, const char *key, struct opt *o,
                      double *value, char *err, size_t err_size)
{
    const char *s = clt_checkpoint_meta(ck, key);
    double v;
    if (!s || !args_float(s, &v)) {
        snprintf(err, err_size, "the checkpoint lacks \"%s\"", key);
        return 1;
    }
    if (o && o->seen && (float)*value != (float)v) {
        snprintf(err, err_size,
                 "--%s %g differs from the checkpoint's %g (a resumed run keeps "
                 "its settings)",
                 o->name, *value, v);
        return 2;
    }
    *value = v;
    return 0;
}

/* train.decay_all; checkpoints saved before it existed decayed every parameter. */
static int take_decay_all(const struct clt_checkpoint *ck, struct opt *o, bool *value, char *err,
                          size_t err_size)
{
    const char *s = clt_checkpoint_meta(ck, "train.decay_all");
    if (s && strcmp(s, "0") != 0 && strcmp(s, "1") != 0) {
        snprintf(err, err_size, "the checkpoint's \"train.decay_all\" is \"%s\", not 0 or 1", s);
        return 1;
    }
    const bool v = !s || strcmp(s, "1") == 0;
    if (o && o->seen && *value != v) {
        snprintf(err, err_size,
                 "--decay-all differs from the checkpoint's setting (a resumed run keeps its "
                 "settings)");
        return 2;
    }
    *value = v;
    return 0;
}

/* train.precision; checkpoints saved before it existed trained in fp32. */
static int take_precision(const struct clt_checkpoint *ck, const char *path, struct opt *o,
                          const char **value, char *err, size_t err_size)
{
    const char *s = clt_checkpoint_meta(ck, "train.precision");
    enum clt_precision saved = CLT_PRECISION_FP32, given;
    if (s && !tool_precision_parse(s, &saved)) {
        snprintf(err, err_size,
                 "cannot resume from %s: its \"train.precision\" is \"%s\", not fp32, fp16 or "
                 "bf16",
                 path, s);
        return 1;
    }
    if (o && o->seen && !tool_precision_parse(*value, &given)) {
        snprintf(err, err_size, "--precision: \"%s\" is not fp32, fp16 or bf16", *value);
        return 2;
    }
    if (o && o->seen && given != saved) {
        snprintf(err, err_size,
                 "--precision %s differs from the checkpoint's %s (a resumed run keeps its "
                 "settings)",
                 *value, clt_precision_name(saved));
        return 2;
    }
    *value = clt_precision_name(saved);
    return 0;
}

static int take_string(const struct clt_checkpoint *ck, const char *key, struct opt *o,
                       const char **value, char *buf, size_t size, char *err, size_t err_size)
{
    const char *s = clt_checkpoint_meta(ck, key);
    if (!s || strlen(s) >= size) {
        snprintf(err, err_size, "the checkpoint lacks \"%s\"", key);
        return 1;
    }
    if (o && o->seen && strcmp(*value, s) != 0) {
        snprintf(err, err_size,
                 "--%s %s differs from the checkpoint's %s (a resumed run keeps "
                 "its settings)",
                 o->name, *value, s);
        return 2;
    }
    snprintf(buf, size, "%s", s);
    *value = buf;
    return 0;
}

/* Checks the model flags against the checkpoint's model. */
static int check_model(const struct train_config *c, const struct model_desc *d, struct opt *o,
                       size_t n, char *err, size_t err_size)
{
    struct model_desc arg;
    if (args_find(o, n, "model")->seen &&
        (model_desc_from_arg(c->model_arg, &arg, err, err_size) != CLT_OK ||
         strcmp(arg.kind, d->kind) != 0)) {
        snprintf(err, err_size, "--model %s differs from the checkpoint's %s", c->model_arg,
                 d->kind);
        return 2;
    }
    const char *names[] = {"width", "depth", "heads", "context"};
    const int64_t given[] = {c->desc.width, c->desc.depth, c->desc.heads, c->desc.context};
    const int64_t saved[] = {d->width, d->depth, d->heads, d->context};
    for (size_t i = 0; i < 4; i++) {
        if (args_find(o, n, names[i])->seen && given[i] != saved[i]) {
            snprintf(err, err_size, "--%s %lld differs from the checkpoint's %lld", names[i],
                     (long long)given[i], (long long)saved[i]);
            return 2;
        }
    }
    if (args_find(o, n, "dropout")->seen && (float)c->dropout != d->dropout) {
        snprintf(err, err_size, "--dropout %g differs from the checkpoint's %g", c->dropout,
                 (double)d->dropout);
        return 2;
    }
    return 0;
}

/* The data options a checkpoint records, and the check that its data has not changed. */
static int resume_data(struct train_config *c, const struct clt_checkpoint *ck, struct opt *o,
                       size_t n, char *err, size_t err_size)
{
    const char *v = clt_checkpoint_meta(ck, "data.val_fraction");
    int rc = v ? take_float(ck, "data.val_fraction", args_find(o, n, "val-fraction"),
                            &c->val_fraction, err, err_size)
               : 0;
    const char *eval = clt_checkpoint_meta(ck, "data.eval");
    struct opt *e = args_find(o, n, "eval-data");
    if (rc == 0 && e->seen && (!eval || strcmp(eval, c->eval_data) != 0)) {
        snprintf(err, err_size, "--eval-data %s differs from the checkpoint's %s", c->eval_data,
                 eval ? eval : "(none)");
        rc = 2;
    }
    if (rc == 0 && eval) {
        snprintf(c->eval_data_buf, sizeof c->eval_data_buf, "%s", eval);
        c->eval_data = c->eval_data_buf;
    }
    /* Classification: the classes the model was built for; its labels were checked then. */
    const char *k = clt_checkpoint_meta(ck, "data.classes");
    if (rc == 0 && k && !clt_checkpoint_meta(ck, "data.vocab"))
        rc = take_int(ck, "data.classes", args_find(o, n, "classes"), &c->classes, err, err_size);
    const char *hash = clt_checkpoint_meta(ck, "data.hash");
    if (rc == 0 && hash) {
        char now[17];
        if (data_fingerprint(c->data, now) != 0) {
            snprintf(err, err_size, "cannot resume from %s: cannot read its data %s", c->resume,
                     c->data);
            rc = 1;
        } else if (strcmp(now, hash) != 0) {
            snprintf(err, err_size,
                     "cannot resume from %s: its data %s changed since it was saved (the files "
                     "hash to %s, the checkpoint says %s); train anew, or restore the data",
                     c->resume, c->data, now, hash);
            rc = 1;
        }
    }
    return rc;
}

/* A checkpoint resumes on as many MPI ranks as saved it (train.ranks; absent: one process):
 * the order of the gradient sums, and so the rounding of the trajectory, depends on it. */
static int resume_ranks(const struct train_config *c, const struct clt_checkpoint *ck, char *err,
                        size_t err_size)
{
    const char *s = clt_checkpoint_meta(ck, "train.ranks");
    int64_t saved = 1;
    if (s && (!args_int(s, &saved) || saved < 1)) {
        snprintf(err, err_size, "cannot resume from %s: its \"train.ranks\" is \"%s\"", c->resume,
                 s);
        return 1;
    }
    int now = c->mpi ? c->mpi->size : 1;
    if (saved == now)
        return 0;
    snprintf(err, err_size,
             "cannot resume from %s: it was saved by a run over %lld MPI rank%s, and this run "
             "has %d; resume it with %s%lld (the ranks split every batch, and their count fixes "
             "the order of the gradient sums)",
             c->resume, (long long)saved, saved == 1 ? "" : "s", now,
             saved == 1 ? "one process, without mpirun, or mpirun -np " : "mpirun -np ",
             (long long)saved);
    return 2;
}

int train_config_resume(struct train_config *c, struct opt *o, size_t n, struct tool_log *tl,
                        char *err, size_t err_size)
{
    struct clt_checkpoint *ck = NULL;
    enum clt_status st = clt_checkpoint_open(c->resume, &tl->log, &ck);
    if (st != CLT_OK) {
        snprintf(err, err_size, "cannot resume from %s: %s", c->resume,
                 tl->last[0] ? tl->last : clt_status_str(st));
        tl->last[0] = '\0';
        return 1;
    }
    struct ckpt_model cm;
    char why[600];
    int rc = ckpt_model_read(ck, &cm, why, sizeof why) == 0 ? 0 : 1;
    if (rc != 0)
        snprintf(err, err_size, "cannot resume from %s: %s", c->resume, why);
    if (rc == 0)
        rc = check_model(c, &cm.desc, o, n, err, err_size);
    if (rc == 0) {
        c->desc = cm.desc;
        c->spec = cm.spec; /* ownership moves to c */
        cm.spec = NULL;
        c->desc.spec = c->spec;
        int64_t step = 0, bepoch = 0, bpos = 0;
        rc = take_string(ck, "data", args_find(o, n, "data"), &c->data, c->data_buf,
                         sizeof c->data_buf, err, err_size);
        if (rc == 0)
            rc = take_string(ck, "train.optimizer", args_find(o, n, "optimizer"), &c->optimizer,
                             c->optimizer_buf, sizeof c->optimizer_buf, err, err_size);
        if (rc == 0)
            rc = take_string(ck, "train.schedule", args_find(o, n, "schedule"), &c->schedule,
                             c->schedule_buf, sizeof c->schedule_buf, err, err_size);
        struct {
            const char *key, *opt;
            int64_t *v;
        } ints[] = {
            {"data.limit", "limit", &c->limit},
            {"train.warmup", "warmup", &c->warmup},
            {"data.label_column", "label-column", &c->label_column},
            {"train.seed", "seed", &c->seed},
            {"train.batch", "batch", &c->batch},
            {"train.step", NULL, &step},
            {"batcher.epoch", NULL, &bepoch},
            {"batcher.position", NULL, &bpos},
        };
        for (size_t i = 0; rc == 0 && i < sizeof ints / sizeof ints[0]; i++)
            rc = take_int(ck, ints[i].key, ints[i].opt ? args_find(o, n, ints[i].opt) : NULL,
                          ints[i].v, err, err_size);
        /* Options that do not change the trajectory: the command line wins. */
        struct {
            const char *key, *opt;
            int64_t *v;
        } soft[] = {
            {"train.epochs", "epochs", &c->epochs},
            {"train.steps", "steps", &c->max_steps},
            {"train.log_every", "log-every", &c->log_every},
        };
        for (size_t i = 0; rc == 0 && i < sizeof soft / sizeof soft[0]; i++)
            if (!args_find(o, n, soft[i].opt)->seen)
                rc = take_int(ck, soft[i].key, NULL, soft[i].v, err, err_size);
        struct {
            const char *key, *opt;
            double *v;
        } floats[] = {
            {"train.lr", "lr", &c->lr},
            {"train.momentum", "momentum", &c->momentum},
            {"train.weight_decay", "weight-decay", &c->weight_decay},
            {"train.clip", "clip", &c->clip},
        };
        for (size_t i = 0; rc == 0 && i < sizeof floats / sizeof floats[0]; i++)
            rc = take_float(ck, floats[i].key, args_find(o, n, floats[i].opt), floats[i].v, err,
                            err_size);
        if (rc == 0)
            rc = take_decay_all(ck, args_find(o, n, "decay-all"), &c->decay_all, err, err_size);
        if (rc == 0)
            rc = take_precision(ck, c->resume, args_find(o, n, "precision"), &c->precision, err,
                                err_size);
        if (rc == 0)
            rc = resume_data(c, ck, o, n, err, err_size);
        if (rc == 0)
            rc = resume_ranks(c, ck, err, err_size);
        c->resuming = true;
        c->start_step = (uint64_t)step;
        c->batcher_epoch = (uint64_t)bepoch;
        c->batcher_position = (uint64_t)bpos;
    }
    if (rc == 1 && strncmp(err, "the checkpoint lacks", 20) == 0) {
        char tmp[600];
        snprintf(tmp, sizeof tmp, "cannot resume from %s: %s", c->resume, err);
        snprintf(err, err_size, "%s", tmp);
    }
    ckpt_model_free(&cm);
    clt_checkpoint_close(ck);
    return rc;
}
