/*
 * cmd_predict.c: `cltrain predict`: runs a checkpoint of `cltrain train` forward on data and
 * writes a CSV (predictions.h gives the layout):
 * - classifiers: each example's predicted class and the probability of every class (softmax
 *   of the logits), with its label when the data has one. csv:FILE is read whole, in file
 *   order, with or without the label column; fashion-mnist and idx:DIR give their
 *   evaluation (t10k) images.
 * - gpt: text:FILE holds one prompt per line; each line gets --length generated characters,
 *   as `cltrain sample` generates them (generate.h).
 * The output is checked and claimed before any work (outputs.h: never an input, never
 * another program's file without --force) and written atomically; without --out, or with --out -,
 * the CSV goes to standard output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "datasets.h"
#include "generate.h"
#include "outputs.h"
#include "predictions.h"

static const char *const summary =
    "Predicts with a checkpoint of `cltrain train` and writes a CSV: for a classifier each\n"
    "row's class and the probability of every class (csv:FILE, with or without its label\n"
    "column; fashion-mnist and idx:DIR: the evaluation images), for a gpt checkpoint the\n"
    "text generated after each line of text:FILE.";

struct predict_opts {
    const char *checkpoint, *data, *out, *device;
    int64_t batch, length, seed;
    double temperature;
    bool force, verbose;
};

/* Everything a run holds; freed by run_free. */
struct predict_run {
    const struct predict_opts *o;
    struct tool_log *tl;
    struct ckpt c; /* the checkpoint, its model and the device */
    struct outfile out;
    float *x, *probs;
    int32_t *classes;
};

/* The product of the model's feature shape. */
static int64_t features_of(const struct clt_dataset_info *info)
{
    int64_t f = 1;
    for (uint32_t i = 0; i < info->ndim; i++)
        f *= info->shape[i];
    return f;
}

static void write_header(FILE *f, bool labels, int64_t k)
{
    fprintf(f, "row%s,prediction", labels ? ",label" : "");
    for (int64_t c = 0; c < k; c++)
        fprintf(f, ",p%lld", (long long)c);
    fputc('\n', f);
}

/* Runs one batch (x filled for `rows` rows, the rest zeros) through clt_trainer_predict and
 * writes its rows, numbered from first. The whole zero-padded batch runs, so that a model of
 * any kind predicts (in evaluation mode the real rows do not depend on the padding); the
 * labels input is not needed. */
static int predict_batch(struct predict_run *r, int64_t first, int64_t rows, const int32_t *labels)
{
    int64_t k = r->c.m.classes, B = r->c.m.batch;
    const void *inputs[] = {r->x, NULL};
    enum clt_status st =
        clt_trainer_predict(r->c.tr, inputs, (uint32_t)B, r->c.m.logits, r->classes, r->probs);
    if (st != CLT_OK) {
        tool_fail(r->tl, st, "prediction failed");
        return 1;
    }
    for (int64_t i = 0; i < rows; i++) {
        fprintf(r->out.f, "%lld", (long long)(first + i));
        if (labels)
            fprintf(r->out.f, ",%d", labels[i]);
        fprintf(r->out.f, ",%d", r->classes[i]);
        for (int64_t c = 0; c < k; c++)
            fprintf(r->out.f, ",%.6g", (double)r->probs[i * k + c]);
        fputc('\n', r->out.f);
    }
    return 0;
}

static int alloc_buffers(struct predict_run *r, int64_t features)
{
    int64_t B = r->c.m.batch, k = r->c.m.classes;
    r->x = malloc((size_t)(B * features) * sizeof *r->x);
    r->classes = malloc((size_t)B * sizeof *r->classes);
    r->probs = malloc((size_t)(B * k) * sizeof *r->probs);
    if (!r->x || !r->classes || !r->probs) {
        fprintf(stderr, "%s: out of memory\n", r->tl->cmd);
        return 1;
    }
    return 0;
}

/* csv:FILE: every row, with the label column (the checkpoint's) when the rows have one
 * more field than the model's features. */
static int predict_csv(struct predict_run *r, const char *path, int64_t batch)
{
    char err[1200];
    struct csv_rows rows;
    if (csv_rows_read(path, &rows, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", r->tl->cmd, err);
        return 1;
    }
    int64_t F = features_of(&r->c.cm.info), label_col = -1;
    int rc = 1;
    if (rows.cols == F + 1) {
        label_col =
            r->c.cm.label_column < 0 ? rows.cols + r->c.cm.label_column : r->c.cm.label_column;
        if (label_col < 0 || label_col >= rows.cols)
            label_col = rows.cols - 1;
    } else if (rows.cols != F) {
        fprintf(stderr,
                "%s: %s has %lld fields per row; the model takes %lld features (or %lld with "
                "the label column)\n",
                r->tl->cmd, path, (long long)rows.cols, (long long)F, (long long)F + 1);
        goto out;
    }
    if (batch > rows.count)
        batch = rows.count;
    if (ckpt_load(r->tl, &r->c, batch, r->o->device) != 0 || alloc_buffers(r, F) != 0)
        goto out;
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    if (!labels) {
        fprintf(stderr, "%s: out of memory\n", r->tl->cmd);
        goto out;
    }
    write_header(r->out.f, label_col >= 0, r->c.m.classes);
    rc = 0;
    for (int64_t first = 0; rc == 0 && first < rows.count; first += batch) {
        int64_t n = rows.count - first < batch ? rows.count - first : batch;
        memset(r->x, 0, (size_t)(batch * F) * sizeof *r->x);
        for (int64_t i = 0; i < n; i++) {
            const float *src = rows.values + (first + i) * rows.cols;
            float *dst = r->x + i * F;
            for (int64_t c = 0, j = 0; c < rows.cols; c++) {
                if (c == label_col)
                    labels[i] = (int32_t)src[c];
                else
                    dst[j++] = src[c];
            }
        }
        rc = predict_batch(r, first, n, label_col >= 0 ? labels : NULL);
    }
    free(labels);
out:
    csv_rows_free(&rows);
    return rc;
}

/* fashion-mnist, idx:DIR: the evaluation images, in file order, with their labels. */
static int predict_images(struct predict_run *r, const char *spec, int64_t batch)
{
    char err[1200];
    struct data_sets data;
    struct clt_batcher *b = NULL;
    struct data_options o;
    data_options_init(&o);
    o.whole = true; /* every image of the evaluation files, unsplit */
    o.classes = r->c.cm.info.kind == CLT_DATASET_CLASSES ? r->c.cm.info.classes : 0;
    enum clt_status st = data_open(spec, &o, &r->tl->log, &data, err, sizeof err);
    if (st != CLT_OK) {
        tool_report(r->tl, err);
        return 1;
    }
    const struct clt_dataset_info *di = &data.eval_info;
    int rc = 1;
    if (di->ndim != r->c.cm.info.ndim ||
        memcmp(di->shape, r->c.cm.info.shape, di->ndim * sizeof *di->shape) != 0) {
        char have[128], want[128];
        meta_shape(di, have, sizeof have);
        meta_shape(&r->c.cm.info, want, sizeof want);
        fprintf(stderr, "%s: %s has examples of shape %s, the model takes %s\n", r->tl->cmd, spec,
                have, want);
        goto out;
    }
    if (batch > (int64_t)di->count)
        batch = (int64_t)di->count;
    if (ckpt_load(r->tl, &r->c, batch, r->o->device) != 0 || alloc_buffers(r, features_of(di)) != 0)
        goto out;
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    st = labels ? clt_batcher_create(data.eval, (uint32_t)batch, 1, 0, false, &b)
                : CLT_ERR_NO_MEMORY;
    if (st != CLT_OK) {
        tool_fail(r->tl, st, "cannot read %s", spec);
        free(labels);
        goto out;
    }
    write_header(r->out.f, true, r->c.m.classes);
    rc = 0;
    uint64_t batches = clt_batcher_epoch_batches(b, false);
    for (uint64_t i = 0; rc == 0 && i < batches; i++) {
        uint32_t filled = 0;
        st = clt_batcher_next(b, false, r->x, labels, &filled, NULL);
        if (st != CLT_OK) {
            tool_fail(r->tl, st, "cannot read %s", spec);
            rc = 1;
            break;
        }
        rc = predict_batch(r, (int64_t)i * batch, filled, labels);
    }
    free(labels);
out:
    clt_batcher_free(b);
    data_close(&data);
    return rc;
}

/* Collects generated bytes. */
struct text_buf {
    char *s;
    size_t n;
};

static void emit_buf(void *user, uint8_t byte)
{
    struct text_buf *t = user;
    t->s[t->n++] = (char)byte;
}

/* text:FILE: one prompt per line (empty lines skipped); each gets --length characters. */
static int predict_text(struct predict_run *r, const char *path)
{
    char err[1200];
    char *text = model_read_file(path, (size_t)1 << 28, err, sizeof err);
    if (!text) {
        fprintf(stderr, "%s: %s\n", r->tl->cmd, err);
        return 1;
    }
    size_t longest = 0;
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        longest = n > longest ? n : longest;
        p += n + (p[n] == '\n');
    }
    int64_t cap = (int64_t)longest + r->o->length + 1;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    struct text_buf gen = {malloc((size_t)r->o->length + 1), 0};
    int rc = 1;
    if (!ids || !gen.s) {
        fprintf(stderr, "%s: out of memory\n", r->tl->cmd);
        goto out;
    }
    /* Every prompt is checked against the vocabulary before the first is generated. */
    int64_t line = 0;
    for (const char *p = text; *p; line++) {
        size_t n = strcspn(p, "\n");
        size_t m = n > 0 && p[n - 1] == '\r' ? n - 1 : n;
        if (generate_encode(p, m, &r->c.cm, ids, cap, err, sizeof err) < 0) {
            fprintf(stderr, "%s: %s: line %lld: %s\n", r->tl->cmd, path, (long long)line + 1, err);
            goto out;
        }
        p += n + (p[n] == '\n');
    }
    if (ckpt_load(r->tl, &r->c, 1, r->o->device) != 0)
        goto out;
    fprintf(r->out.f, "row,prompt,text\n");
    uint64_t rng = (uint64_t)r->o->seed;
    rc = 0;
    line = 0;
    for (const char *p = text; *p && rc == 0; line++) {
        size_t n = strcspn(p, "\n");
        size_t m = n > 0 && p[n - 1] == '\r' ? n - 1 : n;
        if (m > 0) {
            int64_t count = generate_encode(p, m, &r->c.cm, ids, cap, err, sizeof err);
            gen.n = 0;
            enum clt_status st =
                generate(&r->c, ids, count, r->o->length, r->o->temperature, &rng, emit_buf, &gen);
            if (st != CLT_OK) {
                tool_fail(r->tl, st, "generation failed at line %lld", (long long)line + 1);
                rc = 1;
                break;
            }
            fprintf(r->out.f, "%lld,", (long long)line);
            csv_field(r->out.f, p, m);
            fputc(',', r->out.f);
            csv_field(r->out.f, gen.s, gen.n);
            fputc('\n', r->out.f);
        }
        p += n + (p[n] == '\n');
    }
out:
    free(gen.s);
    free(ids);
    free(text);
    return rc;
}

static void run_free(struct predict_run *r)
{
    outfile_abort(&r->out);
    free(r->x);
    free(r->classes);
    free(r->probs);
    ckpt_close(&r->c);
}

static int run(const struct predict_opts *o, struct opt *t, size_t n, struct tool_log *tl)
{
    struct predict_run r = {.o = o, .tl = tl};
    char err[1200];
    int rc = 1;
    if (ckpt_open(tl, o->checkpoint, &r.c) != 0)
        goto out;
    bool gpt = r.c.cm.info.kind == CLT_DATASET_TEXT;
    bool text_data = strncmp(o->data, "text:", 5) == 0;
    if (gpt != text_data) {
        fprintf(stderr,
                gpt ? "%s: %s is a gpt checkpoint: give its prompts as --data text:FILE, one "
                      "per line\n"
                    : "%s: %s is a classifier: --data must be csv:FILE, idx:DIR or "
                      "fashion-mnist, not a text\n",
                tl->cmd, o->checkpoint);
        rc = 2;
        goto out;
    }
    if (outfile_open(&r.out, o->out, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", tl->cmd, err);
        goto out;
    }
    int64_t batch = args_find(t, n, "batch")->seen ? o->batch : r.c.cm.batch;
    if (gpt)
        rc = predict_text(&r, o->data + 5);
    else if (strncmp(o->data, "csv:", 4) == 0)
        rc = predict_csv(&r, o->data + 4, batch);
    else
        rc = predict_images(&r, o->data, batch);
    if (rc == 0 && outfile_commit(&r.out, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", tl->cmd, err);
        rc = 1;
    }
    if (rc == 0 && strcmp(o->out, "-") != 0 && o->verbose)
        fprintf(stderr, "%s: wrote %s\n", tl->cmd, o->out);
out:
    run_free(&r);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    const char *cmd = "cltrain predict";
    struct predict_opts o = {.out = "-", .length = 100, .seed = 1, .temperature = 0};
    struct opt t[] = {
        {"checkpoint", OPT_STRING, &o.checkpoint, "FILE", "a checkpoint of cltrain train", 0, 0,
         false},
        {"data", OPT_STRING, &o.data, "D",
         "csv:FILE, idx:DIR or fashion-mnist; text:FILE (prompts) for gpt", 0, 0, false},
        {"out", OPT_STRING, &o.out, "FILE", "the predictions CSV (default -: standard output)", 0,
         0, false},
        {"force", OPT_FLAG, &o.force, NULL, "replace --out even if cltrain did not write it", 0, 0,
         false},
        {"batch", OPT_INT, &o.batch, "N", "batch size (default: the checkpoint's)", 1, 1 << 20,
         false},
        {"length", OPT_INT, &o.length, "N", "gpt: characters generated per prompt (default 100)", 1,
         1e7, false},
        {"temperature", OPT_FLOAT, &o.temperature, "T",
         "gpt: softmax temperature, 0 for the most likely (default 0)", 0, 100, false},
        {"seed", OPT_INT, &o.seed, "N", "gpt: seed of the sampling (default 1)", 0, 9e18, false},
        opt_device(&o.device),
        opt_verbose(&o.verbose),
    };
    size_t n = sizeof t / sizeof t[0];
    int status;
    if (!args_command(cmd, summary, argc, argv, t, n, &status))
        return status;
    if (!o.checkpoint || !o.data) {
        fprintf(stderr, "%s: --checkpoint FILE and --data D are required (see --help)\n", cmd);
        return 2;
    }
    char err[1200];
    if (data_spec_check(o.data, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return 2;
    }
    /* The output is claimed before anything is read: never an input of the run, never a
     * file another program wrote unless --force. Any refusal is status 1. */
    static char paths[8][4096];
    struct input inputs[9] = {{o.checkpoint, "--checkpoint", false}};
    size_t ninputs = 1, npaths = data_input_paths(o.data, paths, 8);
    for (size_t i = 0; i < npaths; i++)
        inputs[ninputs++] = (struct input){paths[i], "--data", false};
    struct outputs outs = {0};
    outputs_add(&outs, o.out, "--out", OUTPUT_PREDICTIONS);
    if (outputs_claim(&outs, cmd, inputs, ninputs, o.force) != 0)
        return 1;
    struct tool_log tl;
    tool_log_init(&tl, cmd, o.verbose);
    int rc = run(&o, t, n, &tl);
    outputs_release(&outs);
    return rc;
}
