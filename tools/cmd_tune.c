/*
 * cmd_tune.c: `cltrain tune`: times the GEMM implementations for every GEMM shape of the
 * built-in models on a device ahead of time, so trainer creation finds them in the tuning
 * cache; `--show` prints what the cache holds, per shape, with every candidate's GFLOP/s.
 *
 * The shapes are those of the models' real plans: each model is built for its default
 * dataset shape (Fashion-MNIST images for mlp and cnn, a 96-symbol text for gpt) at the
 * batch `cltrain train` uses, and a trainer is created, whose dry run meets every GEMM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "json.h"
#include "models.h"

static const char *const summary =
    "Times the GEMM implementations (own kernel configurations, CLBlast, host BLAS on CPU\n"
    "devices) for every GEMM shape of the built-in models on a device and keeps the fastest\n"
    "correct one per shape in the tuning cache, beside the kernel binaries. Trainer creation\n"
    "does the same for shapes it has not seen; this does it ahead of time.\n"
    "  --model mlp|cnn|gpt|all (default all): the models whose shapes are tuned, at the batch\n"
    "  `cltrain train` uses (mlp 128, cnn 32, gpt 16) unless --batch is given\n"
    "  --show: print what the cache holds for the device, per shape and storage (fp32, or\n"
    "  fp16/bf16 for mixed-precision plans; --json: as JSON), and tune nothing\n"
    "  CLTRAIN_TUNE_BUDGET bounds the seconds one model's tuning may take (default 60 here,\n"
    "  10 in trainer creation).\n"
    "Exit status: 0 success, 1 failure, 2 bad usage.";

static int64_t default_batch(const char *kind)
{
    return strcmp(kind, "gpt") == 0 ? 16 : strcmp(kind, "cnn") == 0 ? 32 : 128;
}

/* The log: the tuner's progress lines always, other information only with --verbose. */
struct tune_log {
    struct tool_log tl;
    clt_log_fn inner;
};

static void progress_fn(void *user, enum clt_log_level level, const char *message)
{
    struct tune_log *t = user;
    if (level == CLT_LOG_INFO && !t->tl.verbose && strncmp(message, "gemm tuning", 11) != 0)
        return;
    t->inner(&t->tl, level, message);
}

static void tune_log_init(struct tune_log *t, const char *cmd, bool verbose)
{
    tool_log_init(&t->tl, cmd, verbose);
    t->inner = t->tl.log.fn;
    t->tl.log.fn = progress_fn;
    t->tl.log.user = t;
    t->tl.log.max_level = CLT_LOG_INFO;
}

static void devices_log_fn(void *user, enum clt_log_level level, const char *message)
{
    (void)user;
    if (level != CLT_LOG_INFO || strncmp(message, "gemm tuning", 11) == 0)
        fprintf(stderr, "cltrain: %s%s\n",
                level == CLT_LOG_WARN    ? "warning: "
                : level == CLT_LOG_ERROR ? "error: "
                                         : "",
                message);
}

struct clt_log tune_progress_log(void)
{
    return (struct clt_log){devices_log_fn, NULL, CLT_LOG_INFO};
}

/* Builds one model and creates a trainer: its dry run tunes every GEMM shape. */
static enum clt_status tune_model(struct clt_device *dev, const char *kind, int64_t batch,
                                  char *err, size_t err_size)
{
    struct model_desc d;
    struct clt_dataset_info info;
    struct model m;
    memset(&m, 0, sizeof m);
    model_desc_init(&d, kind);
    model_default_data(kind, &info);
    enum clt_status st =
        model_build(&d, &info, batch > 0 ? batch : default_batch(kind), &m, err, err_size);
    struct clt_trainer_options opt;
    clt_trainer_options_init(&opt, CLT_OPTIM_ADAMW);
    opt.tune_ahead = true; /* the explicit budget: 60 s a model unless CLTRAIN_TUNE_BUDGET */
    struct clt_trainer *tr = NULL;
    if (st == CLT_OK)
        st = clt_trainer_create(dev, m.g, m.loss, &opt, &tr);
    clt_trainer_free(tr);
    model_free(&m);
    return st;
}

int tune_models(struct clt_device *dev, const char *cmd, const char *model, int64_t batch)
{
    static const char *const all[] = {"mlp", "cnn", "gpt"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(model, "all") != 0 && strcmp(model, all[i]) != 0)
            continue;
        char err[256] = "";
        fprintf(stderr, "%s: tuning the GEMM shapes of %s\n", cmd, all[i]);
        enum clt_status st = tune_model(dev, all[i], batch, err, sizeof err);
        if (st != CLT_OK) {
            fprintf(stderr, "%s: cannot tune %s: %s\n", cmd, all[i],
                    err[0] ? err : clt_status_str(st));
            return 1;
        }
    }
    return 0;
}

/* The figure the tuner ranked candidate c of t by: its measured GFLOP/s, divided by the
 * charge of the host BLAS or of the widened path (cltrain.h, CLT_GEMM_HOST_CHARGE); the
 * widened path around the host BLAS when list's fp32 entry of the shape chose it. */
static double ranked(const struct clt_gemm_tuning *list, size_t count,
                     const struct clt_gemm_tuning *t, const struct clt_gemm_candidate *c)
{
    if (strncmp(c->name, "host ", 5) == 0)
        return c->gflops / CLT_GEMM_HOST_CHARGE;
    if (strcmp(c->name, "widen") != 0)
        return c->gflops;
    for (size_t i = 0; i < count; i++) {
        const struct clt_gemm_tuning *f = &list[i];
        if (f->storage == CLT_PRECISION_FP32 && f->trans_a == t->trans_a &&
            f->trans_b == t->trans_b && f->m == t->m && f->n == t->n && f->k == t->k &&
            f->batch == t->batch)
            return c->gflops / (strncmp(f->chosen, "host ", 5) == 0 ? CLT_GEMM_HOST_CHARGE
                                                                    : CLT_GEMM_WIDEN_CHARGE);
    }
    return c->gflops / CLT_GEMM_WIDEN_CHARGE;
}

static void print_table(const struct clt_device_info *d, const char *xgemm,
                        const struct clt_gemm_tuning *list, size_t count)
{
    printf("GEMM tuning of %u:%u %s (%zu shapes)\n", (unsigned)d->platform_index,
           (unsigned)d->device_index, d->name, count);
    if (xgemm[0])
        printf("CLBlast's Xgemm parameters: %s\n", xgemm);
    bool charged = false;
    for (size_t i = 0; i < count; i++)
        for (uint32_t j = 0; j < list[i].candidate_count; j++)
            charged |= ranked(list, count, &list[i], &list[i].candidates[j]) !=
                       list[i].candidates[j].gflops;
    if (charged)
        printf("Measured GFLOP/s; the tuner ranks the host BLAS at its figure / %g and the "
               "widened path\nat / %g (/ %g around the host BLAS), shown as \"ranked\": inside a "
               "training step they\nrun slower than timed back to back.\n",
               CLT_GEMM_HOST_CHARGE, CLT_GEMM_WIDEN_CHARGE, CLT_GEMM_HOST_CHARGE);
    for (size_t i = 0; i < count; i++) {
        const struct clt_gemm_tuning *t = &list[i];
        printf("\n%s%s m=%lld n=%lld k=%lld batch=%lld %s: %s%s\n", t->trans_a ? "A^T" : "A",
               t->trans_b ? " B^T" : " B", (long long)t->m, (long long)t->n, (long long)t->k,
               (long long)t->batch, clt_precision_name((enum clt_precision)t->storage), t->chosen,
               t->partial ? " (partial: the next tuning times the candidates not listed)" : "");
        for (uint32_t j = 0; j < t->candidate_count; j++) {
            const struct clt_gemm_candidate *c = &t->candidates[j];
            double r = ranked(list, count, t, c);
            char rank[48] = "";
            if (r != c->gflops)
                snprintf(rank, sizeof rank, "  (ranked %.1f)", r);
            if (c->status == CLT_OK)
                printf("  %9.1f GFLOP/s  %s%s%s\n", c->gflops, c->name, rank,
                       strcmp(c->name, t->chosen) == 0 ? "  (chosen)" : "");
            else
                printf("  %17s  %s\n", c->wrong ? "wrong result" : clt_status_str(c->status),
                       c->name);
        }
    }
}

static void print_json(const struct clt_device_info *d, const char *xgemm,
                       const struct clt_gemm_tuning *list, size_t count)
{
    printf("{\n  \"device\": ");
    json_string(stdout, d->name);
    printf(",\n  \"platform\": ");
    json_string(stdout, d->platform);
    printf(",\n  \"clblast_xgemm\": ");
    if (xgemm[0])
        json_string(stdout, xgemm);
    else
        printf("null");
    printf(",\n  \"shapes\": [");
    for (size_t i = 0; i < count; i++) {
        const struct clt_gemm_tuning *t = &list[i];
        printf("%s\n    {\"trans_a\": %s, \"trans_b\": %s, \"m\": %lld, \"n\": %lld, "
               "\"k\": %lld, \"batch\": %lld, \"storage\": \"%s\", \"chosen\": ",
               i ? "," : "", t->trans_a ? "true" : "false", t->trans_b ? "true" : "false",
               (long long)t->m, (long long)t->n, (long long)t->k, (long long)t->batch,
               clt_precision_name((enum clt_precision)t->storage));
        json_string(stdout, t->chosen);
        printf(", \"partial\": %s, \"candidates\": [", t->partial ? "true" : "false");
        for (uint32_t j = 0; j < t->candidate_count; j++) {
            const struct clt_gemm_candidate *c = &t->candidates[j];
            printf("%s{\"name\": ", j ? ", " : "");
            json_string(stdout, c->name);
            printf(", \"gflops\": %.3f, \"ranked_gflops\": %.3f, \"status\": ", c->gflops,
                   ranked(list, count, t, c));
            json_string(stdout, c->status == CLT_OK ? "ok"
                                : c->wrong          ? "wrong result"
                                                    : clt_status_str(c->status));
            printf("}");
        }
        printf("]}");
    }
    printf("%s]\n}\n", count ? "\n  " : "");
}

int cmd_tune(int argc, char **argv)
{
    const char *cmd = "cltrain tune";
    const char *device = NULL, *model = "all";
    int64_t batch = 0;
    bool show = false, json = false, verbose = false;
    struct opt o[] = {
        {"device", OPT_STRING, &device, "SEL",
         "pocl, intel, amd, gpu, P:D... (default: CLTRAIN_DEVICE, else the first GPU)", 0, 0,
         false},
        {"model", OPT_STRING, &model, "M", "mlp, cnn, gpt or all (default all)", 0, 0, false},
        {"batch", OPT_INT, &batch, "N", "examples per step (default: cltrain train's)", 1, 1 << 20,
         false},
        {"show", OPT_FLAG, &show, NULL, "print the cached choices instead of tuning", 0, 0, false},
        {"json", OPT_FLAG, &json, NULL, "with --show: print JSON", 0, 0, false},
        {"verbose", OPT_FLAG, &verbose, NULL, "log the library's informational messages", 0, 0,
         false},
    };
    size_t n = sizeof o / sizeof o[0];
    int status;
    if (!args_command(cmd, summary, argc, argv, o, n, &status))
        return status;
    if (strcmp(model, "all") != 0 && strcmp(model, "mlp") != 0 && strcmp(model, "cnn") != 0 &&
        strcmp(model, "gpt") != 0) {
        fprintf(stderr, "%s: --model must be mlp, cnn, gpt or all, not \"%s\"\n", cmd, model);
        return 2;
    }
    if (json && !show) {
        fprintf(stderr, "%s: --json goes with --show\n", cmd);
        return 2;
    }
    if (show && (args_find(o, n, "model")->seen || args_find(o, n, "batch")->seen)) {
        fprintf(stderr, "%s: --show prints the whole cache; it takes no --model or --batch\n", cmd);
        return 2;
    }
    struct tune_log tl;
    tune_log_init(&tl, cmd, verbose);
    struct clt_device *dev = tool_device_open(&tl.tl, device);
    if (!dev)
        return 1;
    int rc = show ? 0 : tune_models(dev, cmd, model, batch);
    struct clt_gemm_tuning *list = NULL;
    size_t count = 0;
    char xgemm[256] = "";
    enum clt_status st = rc == 0 ? clt_device_gemm_tunings(dev, &list, &count) : CLT_OK;
    if (st == CLT_OK && rc == 0)
        st = clt_device_gemm_clblast_params(dev, xgemm, sizeof xgemm);
    if (st != CLT_OK) {
        tool_fail(&tl.tl, st, "cannot read the tuning");
        rc = 1;
    } else if (rc == 0 && json) {
        print_json(clt_device_info(dev), xgemm, list, count);
    } else if (rc == 0) {
        print_table(clt_device_info(dev), xgemm, list, count);
        if (count == 0)
            printf("(nothing tuned yet: run `cltrain tune`; CLTRAIN_TUNE=0 or CLTRAIN_GEMM "
                   "set to own or clblast turn tuning off)\n");
    }
    free(list);
    clt_device_close(dev);
    return rc;
}
