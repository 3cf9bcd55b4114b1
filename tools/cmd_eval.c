/*
 * cmd_eval.c: `cltrain eval`: rebuilds the model a checkpoint describes (its "model"
 * metadata), loads its parameters, and reports loss, accuracy and the confusion matrix on a
 * dataset: by default the evaluation set the checkpoint was trained against.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "datasets.h"
#include "evaluate.h"
#include "json.h"

static const char *const summary =
    "Evaluates a checkpoint of `cltrain train`: loss, accuracy, the confusion matrix and each\n"
    "class's precision, recall and F1.\n"
    "By default on the evaluation set of the data it was trained on.";

struct eval_opts {
    const char *checkpoint, *data, *device;
    int64_t limit, batch, seed, label_column;
    bool json, verbose, held_out;
};

static void json_score(const char *key, double v)
{
    printf(",\"%s\":", key);
    if (isfinite(v))
        printf("%.9g", v);
    else
        printf("null");
}

/* "per_class": precision, recall, F1 and support of each class (null where undefined), and
 * their macro averages. */
static void print_json_classes(const uint64_t *confusion, int64_t k)
{
    struct class_scores *s = malloc((size_t)k * sizeof *s);
    if (!s)
        return;
    class_scores_of(confusion, k, s);
    printf(",\"per_class\":[");
    for (int64_t c = 0; c < k; c++) {
        printf("%s{\"class\":%lld", c ? "," : "", (long long)c);
        json_score("precision", s[c].precision);
        json_score("recall", s[c].recall);
        json_score("f1", s[c].f1);
        printf(",\"support\":%llu}", (unsigned long long)s[c].support);
    }
    printf("]");
    json_score("macro_precision", class_scores_macro(s, k, 'p'));
    json_score("macro_recall", class_scores_macro(s, k, 'r'));
    json_score("macro_f1", class_scores_macro(s, k, 'f'));
    free(s);
}

static void print_json(const struct eval_result *r, const char *data, int64_t k)
{
    printf("{\"data\":");
    json_string(stdout, data);
    printf(",\"loss\":%.9g,\"accuracy\":%.9g,\"correct\":%llu,\"examples\":%llu", r->loss,
           r->accuracy, (unsigned long long)r->correct, (unsigned long long)r->targets);
    if (r->confusion) {
        printf(",\"confusion\":[");
        for (int64_t i = 0; i < k; i++) {
            printf("%s[", i ? "," : "");
            for (int64_t j = 0; j < k; j++)
                printf("%s%llu", j ? "," : "", (unsigned long long)r->confusion[i * k + j]);
            printf("]");
        }
        printf("]");
        print_json_classes(r->confusion, k);
    }
    printf("}\n");
}

/* The map from the dataset's symbol ids to the model's (-1: unknown to the model). */
static void text_remap(const struct clt_dataset *ds, const struct ckpt_model *cm, int32_t *map)
{
    uint8_t sym[256];
    uint32_t vocab = 0;
    for (int i = 0; i < 256; i++)
        map[i] = -1;
    if (clt_dataset_symbols(ds, sym, &vocab) != CLT_OK)
        return;
    for (uint32_t i = 0; i < vocab; i++)
        for (uint32_t j = 0; j < cm->info.vocab; j++)
            if (cm->symbols[j] == sym[i])
                map[i] = (int32_t)j;
}

static int run(struct eval_opts *o, struct opt *t, size_t n, struct tool_log *tl)
{
    struct ckpt c = {0};
    struct data_sets data = {0};
    struct eval_result r = {0};
    char err[1200];
    int rc = 1;
    if (ckpt_open(tl, o->checkpoint, &c) != 0)
        goto out;
    const struct ckpt_model *cm = &c.cm;
    const char *spec = o->data ? o->data : cm->data;
    uint64_t seed = args_find(t, n, "seed")->seen ? (uint64_t)o->seed : cm->data_seed;
    uint64_t limit = args_find(t, n, "limit")->seen ? (uint64_t)o->limit : cm->data_limit;
    int64_t batch = args_find(t, n, "batch")->seen ? o->batch : cm->batch;
    int32_t column =
        args_find(t, n, "label-column")->seen ? (int32_t)o->label_column : cm->label_column;
    /* The checkpoint's own data: the set its run ended on (the test set, else the validation
     * split). --data: that data whole, unless --held-out asks for its validation split. */
    struct data_options dopt;
    data_options_init(&dopt);
    dopt.seed = seed;
    dopt.limit = limit;
    dopt.label_column = column;
    dopt.classes = cm->info.kind == CLT_DATASET_CLASSES ? cm->info.classes : 0;
    const char *vf = clt_checkpoint_meta(c.ck, "data.val_fraction");
    if (vf)
        args_float(vf, &dopt.val_fraction);
    dopt.eval_data = o->data ? NULL : clt_checkpoint_meta(c.ck, "data.eval");
    dopt.whole = o->data && !o->held_out;
    enum clt_status st = data_open(spec, &dopt, &tl->log, &data, err, sizeof err);
    if (st != CLT_OK) {
        tool_report(tl, err);
        goto out;
    }
    if (data.test && !o->held_out) { /* evaluate the test set: it takes eval's place */
        clt_dataset_free(data.eval);
        data.eval = data.test;
        data.eval_info = data.test_info;
        data.test = NULL;
    }
    const struct clt_dataset_info *di = &data.eval_info;
    bool text = cm->info.kind == CLT_DATASET_TEXT;
    if (di->kind != cm->info.kind ||
        (!text && (di->ndim != cm->info.ndim || di->classes > cm->info.classes ||
                   memcmp(di->shape, cm->info.shape, di->ndim * sizeof *di->shape) != 0))) {
        char have[128], want[128];
        meta_shape(di, have, sizeof have);
        meta_shape(&cm->info, want, sizeof want);
        fprintf(stderr,
                "%s: %s does not fit the model: it has %s, the model was trained on "
                "%s\n",
                tl->cmd, spec, di->kind == CLT_DATASET_TEXT ? "text" : have, text ? "text" : want);
        goto out;
    }
    if (ckpt_load(tl, &c, batch, o->device) != 0)
        goto out;
    int32_t map[256];
    if (text)
        text_remap(data.eval, cm, map);
    st = evaluate(c.tr, &c.m, data.eval, text ? map : NULL, !text, &r);
    if (st != CLT_OK) {
        tool_fail(tl, st, "evaluation failed");
        goto out;
    }
    if (o->json) {
        print_json(&r, spec, c.m.classes);
    } else {
        eval_print(stdout, &r);
        if (r.confusion)
            eval_print_classes(stdout, r.confusion, c.m.classes);
    }
    rc = 0;
out:
    free(r.confusion);
    data_close(&data);
    ckpt_close(&c);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    const char *cmd = "cltrain eval";
    struct eval_opts o = {0};
    struct opt t[] = {
        {"checkpoint", OPT_STRING, &o.checkpoint, "FILE", "a checkpoint of cltrain train", 0, 0,
         false},
        {"data", OPT_STRING, &o.data, "D",
         "evaluate on D whole (idx: its t10k files; default: the set the checkpoint's run "
         "ended on)",
         0, 0, false},
        {"held-out", OPT_FLAG, &o.held_out, NULL,
         "evaluate the validation split of the data (the checkpoint's seed and fraction)", 0, 0,
         false},
        {"limit", OPT_INT, &o.limit, "N",
         "the first N examples only (default: the checkpoint's --limit)", 0, 9e18, false},
        {"batch", OPT_INT, &o.batch, "N", "batch size (default: the checkpoint's)", 1, 1 << 20,
         false},
        {"seed", OPT_INT, &o.seed, "N", "seed of a csv held-out split (default: the checkpoint's)",
         0, 9e18, false},
        {"label-column", OPT_INT, &o.label_column, "N",
         "csv: the labels' column (default: the checkpoint's)", -1e6, 1e6, false},
        opt_device(&o.device),
        {"json", OPT_FLAG, &o.json, NULL, "print the result as one JSON object", 0, 0, false},
        opt_verbose(&o.verbose),
    };
    size_t n = sizeof t / sizeof t[0];
    int status;
    if (!args_command(cmd, summary, argc, argv, t, n, &status))
        return status;
    if (!o.checkpoint) {
        fprintf(stderr, "%s: --checkpoint FILE is required (see --help)\n", cmd);
        return 2;
    }
    char err[600];
    if (o.data && data_spec_check(o.data, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return 2;
    }
    struct tool_log tl;
    tool_log_init(&tl, cmd, o.verbose);
    return run(&o, t, n, &tl);
}
