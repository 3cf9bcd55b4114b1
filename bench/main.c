/*
 * main.c: cltrain-bench, the device comparison program: options, the device loop, the
 * environment record, and the outputs. What each figure means and how it is measured is in
 * docs/bench.md.
 *
 *     cltrain-bench [--device SEL|all] [--quick] [--json FILE] [--csv FILE] [--svg FILE]
 *                   [--profile] [--precision fp32,fp16,bf16]
 *                   [--compare BASELINE.json [--threshold PCT]
 *                   [--fail-on-regression]]
 *     cltrain-bench --list
 *
 * Exit status: 0 success, 1 a measurement failed, 2 bad usage or unreadable input,
 * 3 regressions found with --fail-on-regression.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "common.h" /* TOOL_HALT_POLL_PATH */

#ifndef CLT_BENCH_CLBLAST_VERSION
#define CLT_BENCH_CLBLAST_VERSION "unknown"
#endif

struct options {
    const char *device, *json, *csv, *svg, *compare, *child_model;
    bool gemm_shapes;
    const char *from[8]; /* --from, repeatable: results of several files side by side */
    int nfrom;
    bool list, quick, quiet, verbose, fail_on_regression, profile;
    int runs, warmup, cold_runs;
    const char *train_init;
    unsigned models;         /* --models: bench_train_parse_models's bit set; 0: the default */
    unsigned precisions;     /* --precision: bench_parse_precisions's bit set; 0: fp32 */
    const char *models_list; /* --models as given */
    const char *parallel;    /* --parallel: the devices of the data-parallel figures */
    double threshold;
    unsigned sections; /* bit s: bench_sections[s] */
};

static void usage(FILE *f)
{
    fputs("usage: cltrain-bench [options]\n"
          "  --list                 list the OpenCL devices and exit\n"
          "  --gemm-shapes          list the GEMM section's shapes (NAME TA TB M N K BATCH)\n"
          "                         for bench/torch_gemm.py and exit\n"
          "  --device SEL|all       device to measure (P:D, gpu, cpu, or a name such as pocl;\n"
          "                         default: CLTRAIN_DEVICE, else the first GPU), or every one\n"
          "  --quick                small sizes and few runs (under a minute on a 2-core CPU)\n"
          "  --runs N, --warmup N   measured and discarded runs of each figure\n"
          "  --cold-runs N          cold-cache first steps per model (default 1; 0: none)\n"
          "  --sections LIST        comma-separated subset of micro,gemm,ops,train\n"
          "  --models LIST          the train section's models, comma-separated: mlp, cnn,\n"
          "                         gpt (the default: these three), and the large ones for\n"
          "                         GPUs, run only when named: gpt2s (GPT-2 small's shape,\n"
          "                         byte vocabulary) and resnet18 (64x64 images); batch 8 and\n"
          "                         32 on a GPU, 1 on a CPU\n"
          "  --precision LIST       the train section's precisions, comma-separated: fp32\n"
          "                         (the default), fp16, bf16; 16-bit figures are named\n"
          "                         MODEL@fp16.*, MODEL@bf16.* (a precision the library\n"
          "                         refuses is noted and skipped)\n"
          "  --train-init DIR       write each trained model's initial weights to\n"
          "                         DIR/MODEL.safetensors and report its losses at them\n"
          "                         and at the first two steps (for bench/torch_train.py)\n"
          "  --parallel SEL,SEL|all data-parallel figures over these devices instead: samples/s\n"
          "                         of one device and of all, the overlap of the gradient\n"
          "                         reduction, all-reduce bandwidth (--models, --quick apply)\n"
          "  --profile              per trained model, device time per step by kernel and\n"
          "                         by op of its plan, from profiling events (top kernels\n"
          "                         printed; all in the JSON's \"profile\")\n"
          "  --json FILE            every figure as JSON\n"
          "  --csv FILE             every figure as CSV\n"
          "  --svg FILE             a chart of the devices side by side\n"
          "  --compare FILE         print each figure beside a baseline JSON, with the ratio\n"
          "  --threshold PCT        regression threshold for --compare (default 10)\n"
          "  --fail-on-regression   exit with status 3 when --compare finds a regression\n"
          "  --from FILE            report results read from a JSON file instead of measuring\n"
          "                         (repeatable: the files' devices side by side)\n"
          "  --quiet, --verbose     less or more progress on stderr\n"
          "  --help                 this text\n",
          f);
}

static int bad(const char *fmt, const char *arg)
{
    fputs("cltrain-bench: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (see --help)\n", stderr);
    return 2;
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

/* -1 on success, else the exit status. */
static int parse_sections(const char *s, unsigned *out)
{
    *out = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        size_t k = 1;
        while (k < bench_section_count && strcmp(tok, bench_sections[k]) != 0)
            k++;
        if (k == bench_section_count)
            return bad("unknown section \"%s\" in --sections (micro, gemm, ops, train)", tok);
        *out |= 1u << k;
    }
    return *out ? -1 : bad("--sections needs at least one section%s", "");
}

/* Parses argv into o; returns -1 to go on, else the exit status. */
static int parse(int argc, char **argv, struct options *o)
{
    static const char *const valued[] = {
        "--device",     "--json",   "--csv",      "--svg",       "--compare",  "--from",
        "--threshold",  "--runs",   "--warmup",   "--cold-runs", "--sections", "--first-step-child",
        "--train-init", "--models", "--parallel", "--precision"};
    for (int i = 1; i < argc; i++) {
        char name[64];
        const char *a = argv[i], *val = NULL, *eq = strchr(a, '=');
        snprintf(name, sizeof name, "%.*s", eq && a[0] == '-' ? (int)(eq - a) : 63, a);
        bool takes = false;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            takes |= strcmp(name, valued[k]) == 0;
        if (takes) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                val = argv[++i];
            else
                return bad("%s needs a value", name);
        } else if (eq && a[0] == '-') {
            return bad("%s takes no value", name);
        }
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(name, "--list") == 0) {
            o->list = true;
        } else if (strcmp(name, "--gemm-shapes") == 0) {
            o->gemm_shapes = true;
        } else if (strcmp(name, "--quick") == 0) {
            o->quick = true;
        } else if (strcmp(name, "--quiet") == 0 || strcmp(name, "-q") == 0) {
            o->quiet = true;
        } else if (strcmp(name, "--verbose") == 0 || strcmp(name, "-v") == 0) {
            o->verbose = true;
        } else if (strcmp(name, "--profile") == 0) {
            o->profile = true;
        } else if (strcmp(name, "--fail-on-regression") == 0) {
            o->fail_on_regression = true;
        } else if (strcmp(name, "--device") == 0) {
            o->device = val;
        } else if (strcmp(name, "--json") == 0) {
            o->json = val;
        } else if (strcmp(name, "--csv") == 0) {
            o->csv = val;
        } else if (strcmp(name, "--svg") == 0) {
            o->svg = val;
        } else if (strcmp(name, "--compare") == 0) {
            o->compare = val;
        } else if (strcmp(name, "--from") == 0) {
            if (o->nfrom == 8)
                return bad("at most 8 --from files%s", "");
            o->from[o->nfrom++] = val;
        } else if (strcmp(name, "--train-init") == 0) {
            o->train_init = val;
        } else if (strcmp(name, "--parallel") == 0) {
            o->parallel = val;
        } else if (strcmp(name, "--models") == 0) {
            o->models_list = val;
            if (!bench_train_parse_models(val, &o->models))
                return bad("--models needs a comma-separated list of mlp, cnn, gpt, gpt2s, "
                           "resnet18, not \"%s\"",
                           val);
        } else if (strcmp(name, "--precision") == 0) {
            if (!bench_parse_precisions(val, &o->precisions))
                return bad("--precision needs a comma-separated list of fp32, fp16, bf16, not "
                           "\"%s\"",
                           val);
        } else if (strcmp(name, "--first-step-child") == 0) {
            o->child_model = val;
        } else if (strcmp(name, "--runs") == 0) {
            if (!parse_int(val, 1, 1000, &o->runs))
                return bad("--runs needs an integer from 1 to 1000, not \"%s\"", val);
        } else if (strcmp(name, "--cold-runs") == 0) {
            if (!parse_int(val, 0, 100, &o->cold_runs))
                return bad("--cold-runs needs an integer from 0 to 100, not \"%s\"", val);
        } else if (strcmp(name, "--warmup") == 0) {
            if (!parse_int(val, 0, 1000, &o->warmup))
                return bad("--warmup needs an integer from 0 to 1000, not \"%s\"", val);
        } else if (strcmp(name, "--threshold") == 0) {
            char *end = NULL;
            o->threshold = strtod(val, &end);
            if (end == val || *end || !(o->threshold >= 0 && o->threshold < 1e6))
                return bad("--threshold needs a percentage >= 0, not \"%s\"", val);
        } else if (strcmp(name, "--sections") == 0) {
            int rc = parse_sections(val, &o->sections);
            if (rc >= 0)
                return rc;
        } else {
            return bad(a[0] == '-' ? "unknown option \"%s\"" : "unexpected argument \"%s\"", a);
        }
    }
    return -1;
}

/* The first word of a small text file (a sysfs setting) into out; false when it cannot be
 * read. */
static bool read_setting(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fscanf(f, "%63s", out) == 1 && size > 64;
    fclose(f);
    return ok;
}

/* The environment record of an open device. */
static void environment(struct clt_device *dev, struct bench_device *d)
{
    const struct clt_device_info *i = clt_device_info(dev);
    static const char *const types[] = {"other", "cpu", "gpu", "accelerator"};
    char num[64];
    bench_env(d, "platform", i->platform, false);
    bench_env(d, "device", i->name, false);
    bench_env(d, "vendor", i->vendor, false);
    bench_env(d, "type", types[i->type <= 3 ? i->type : 0], false);
    bench_env(d, "driver_version", i->driver_version, false);
    bench_env(d, "device_version", i->device_version, false);
    bench_env(d, "opencl_c_version", i->opencl_c_version, false);
    bench_env(d, "clblast_version", CLT_BENCH_CLBLAST_VERSION, false);
    bench_env(d, "gemm_backend",
              clt_device_gemm_backend(dev) == CLT_GEMM_CLBLAST ? "clblast" : "own", false);
    bench_env(d, "cltrain_version", clt_version(), false);
    bench_env(d, "build_options", dev->build_options, false);
    snprintf(num, sizeof num, "%u", (unsigned)i->compute_units);
    bench_env(d, "compute_units", num, true);
    snprintf(num, sizeof num, "%u", (unsigned)i->clock_mhz);
    bench_env(d, "clock_mhz", num, true);
    snprintf(num, sizeof num, "%.0f", (double)i->global_mem_bytes / 1048576.0);
    bench_env(d, "global_mem_mib", num, true);
    snprintf(num, sizeof num, "%.0f", (double)i->max_alloc_bytes / 1048576.0);
    bench_env(d, "max_alloc_mib", num, true);
    snprintf(num, sizeof num, "%.0f", (double)i->local_mem_bytes / 1024.0);
    bench_env(d, "local_mem_kib", num, true);
    snprintf(num, sizeof num, "%llu", (unsigned long long)i->max_work_group_size);
    bench_env(d, "max_work_group_size", num, true);
    /* A Linux guest's idle: with the haltpoll driver an idle vCPU polls this long before it
     * halts; at 0 every wake of a device thread between two kernels waits for a halted vCPU
     * (docs/ci.md, "On a virtual machine"). Where the files exist. */
    char word[80];
    if (read_setting("/sys/devices/system/cpu/cpuidle/current_driver", word, sizeof word))
        bench_env(d, "cpuidle_driver", word, false);
    if (read_setting(TOOL_HALT_POLL_PATH, word, sizeof word))
        bench_env(d, "guest_halt_poll_ns", word, word[strspn(word, "0123456789")] == '\0');
}

typedef enum clt_status (*section_fn)(struct bench_ctx *c);

/* Opens one device and runs the chosen sections. A failed section is noted and the others
 * still run; the status is the first failure. */
static enum clt_status measure_device(const struct options *o, const struct bench_config *cfg,
                                      const struct clt_device_info *list, size_t count,
                                      size_t index, struct bench_device *out)
{
    const struct clt_device_info *info = &list[index];
    snprintf(out->id, sizeof out->id, "%u:%u", (unsigned)info->platform_index,
             (unsigned)info->device_index);
    snprintf(out->label, sizeof out->label, "%s / %s", info->platform, info->name);
    struct bench_ctx c = {.cfg = cfg, .out = out};
    struct clt_device_options opt;
    clt_device_options_init(&opt);
    opt.profiling = true;
    enum clt_status st = clt_device_open(out->id, &opt, &c.dev);
    if (st != CLT_OK) {
        fprintf(stderr, "cltrain-bench: cannot open %s (%s): %s\n", out->id, out->label,
                clt_status_str(st));
        return st;
    }
    /* Children select by name when the name finds this device: platform order can change
     * between processes. */
    size_t by_name = count;
    if (clt_device_select(list, count, info->name, &by_name) == CLT_OK && by_name == index)
        snprintf(c.selection, sizeof c.selection, "%s", info->name);
    else
        snprintf(c.selection, sizeof c.selection, "%s", out->id);
    environment(c.dev, out);
    bench_env(out, "timing",
              bench_probe_profiling(&c) ? "profiling events"
                                        : "host clock (profiling timestamps unusable)",
              false);
    static const section_fn fns[] = {NULL, bench_micro, bench_gemm, bench_ops, bench_train};
    enum clt_status first = CLT_OK;
    for (size_t s = 1; s < bench_section_count; s++) {
        if (!(o->sections & (1u << s)))
            continue;
        if (!o->quiet)
            fprintf(stderr, "cltrain-bench: %s %s: %s\n", out->id, info->name, bench_sections[s]);
        double t0 = bench_now();
        st = fns[s](&c);
        if (cfg->verbose)
            fprintf(stderr, "cltrain-bench:   %s took %.1f s\n", bench_sections[s],
                    bench_now() - t0);
        if (st != CLT_OK) {
            bench_note(out, "%s: stopped: %s", bench_sections[s], clt_status_str(st));
            fprintf(stderr, "cltrain-bench: %s on %s failed: %s\n", bench_sections[s], out->id,
                    clt_status_str(st));
            first = first == CLT_OK ? st : first;
            clt_device_finish(c.dev);
        }
    }
    clt_device_close(c.dev);
    return first;
}

static int list_devices(void)
{
    struct clt_device_info *list = NULL;
    size_t count = 0;
    enum clt_status st = clt_devices_list(NULL, &list, &count);
    if (st != CLT_OK) {
        fprintf(stderr, "cltrain-bench: cannot list devices: %s\n", clt_status_str(st));
        return 1;
    }
    static const char *const types[] = {"other", "cpu", "gpu", "accelerator"};
    for (size_t i = 0; i < count; i++)
        printf("%u:%u  %s / %s  (%s, %s)\n", (unsigned)list[i].platform_index,
               (unsigned)list[i].device_index, list[i].platform, list[i].name,
               types[list[i].type <= 3 ? list[i].type : 0], list[i].device_version);
    if (count == 0)
        printf("no OpenCL devices found\n");
    clt_devices_free(list);
    return 0;
}

/* Measures the selected devices into r. Returns an exit status. */
static int measure(const struct options *o, const struct bench_config *cfg, struct bench_results *r)
{
    struct clt_device_info *list = NULL;
    size_t count = 0, index = 0;
    enum clt_status st = clt_devices_list(NULL, &list, &count);
    if (st != CLT_OK || count == 0) {
        fprintf(stderr, "cltrain-bench: no OpenCL device: %s\n",
                st != CLT_OK ? clt_status_str(st) : "none found");
        clt_devices_free(list);
        return 1;
    }
    bool all = o->device && strcmp(o->device, "all") == 0;
    const char *sel = o->device ? o->device : getenv("CLTRAIN_DEVICE");
    if (!all && (st = clt_device_select(list, count, sel, &index)) != CLT_OK) {
        fprintf(stderr, "cltrain-bench: no device matches \"%s\" (see --list)\n", sel ? sel : "");
        clt_devices_free(list);
        return 2;
    }
    r->devs = calloc(all ? count : 1, sizeof *r->devs);
    if (!r->devs) {
        clt_devices_free(list);
        return 1;
    }
    int rc = 0;
    for (size_t i = all ? 0 : index; i < (all ? count : index + 1); i++)
        if (measure_device(o, cfg, list, count, i, &r->devs[r->ndev++]) != CLT_OK)
            rc = 1;
    clt_devices_free(list);
    return rc;
}

/* Reads every --from file into r, one after the other's devices. */
static enum clt_status read_all(const char *const *paths, int n, struct bench_results *r)
{
    enum clt_status st = bench_read_json(paths[0], r);
    for (int i = 1; st == CLT_OK && i < n; i++) {
        struct bench_results more;
        st = bench_read_json(paths[i], &more);
        if (st != CLT_OK)
            break;
        struct bench_device *all = realloc(r->devs, (r->ndev + more.ndev) * sizeof *all);
        if (!all) {
            bench_results_free(&more);
            st = CLT_ERR_NO_MEMORY;
            break;
        }
        memcpy(all + r->ndev, more.devs, more.ndev * sizeof *all);
        r->devs = all;
        r->ndev += more.ndev;
        free(more.devs); /* the figure lists now belong to r */
    }
    if (st != CLT_OK)
        bench_results_free(r);
    return st;
}

/* The path of this program, for the child processes. */
static const char *self_path(const char *argv0)
{
    static char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = '\0';
        return buf;
    }
    return argv0;
}

int main(int argc, char **argv)
{
    struct options o = {.runs = 0, .warmup = -1, .cold_runs = 1, .threshold = 10.0};
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    rc = 0;
    if (o.child_model)
        return bench_first_step_child(o.device, o.child_model);
    if (o.gemm_shapes)
        return bench_gemm_shapes(o.device, o.quick);
    if (o.list)
        return list_devices();
    if (o.parallel)
        return bench_parallel_run(o.parallel, o.models_list, o.quick);
    if (!o.sections)
        for (size_t s = 1; s < bench_section_count; s++)
            o.sections |= 1u << s;
    struct bench_config cfg = {
        .quick = o.quick,
        .runs = o.runs    ? o.runs
                : o.quick ? 3
                          : 5,
        .warmup = o.warmup >= 0 ? o.warmup : 1,
        .cold_runs = o.cold_runs,
        .train_init = o.train_init,
        .models = o.models,
        .precisions = o.precisions,
        .profile = o.profile,
        .target_s = o.quick ? 0.02 : 0.05,
        .verbose = o.verbose,
        .self = self_path(argv[0]),
    };
    /* Inputs are read before anything is measured, so that a bad file fails at once. */
    struct bench_results base = {.ndev = 0}, r = {.ndev = 0};
    if (o.compare && bench_read_json(o.compare, &base) != CLT_OK)
        return 2;
    if (o.nfrom > 0) {
        if (read_all(o.from, o.nfrom, &r) != CLT_OK) {
            bench_results_free(&base);
            return 2;
        }
    } else {
        snprintf(r.mode, sizeof r.mode, "%s", o.quick ? "quick" : "full");
        r.warmup = cfg.warmup;
        r.runs = cfg.runs;
        rc = measure(&o, &cfg, &r);
        if (rc == 2 || r.ndev == 0) {
            bench_results_free(&base);
            bench_results_free(&r);
            return rc ? rc : 1;
        }
    }
    bench_print_table(&r);
    if (o.json && bench_write_json(&r, o.json) != CLT_OK)
        rc = 1;
    if (o.csv && bench_write_csv(&r, o.csv) != CLT_OK)
        rc = 1;
    if (o.svg && bench_write_svg(&r, o.compare ? &base : NULL, o.svg) != CLT_OK)
        rc = 1;
    if (o.compare && bench_compare(&r, &base, o.threshold) > 0 && o.fail_on_regression && rc == 0)
        rc = 3;
    bench_results_free(&base);
    bench_results_free(&r);
    return rc;
}
