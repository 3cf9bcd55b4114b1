/*
 * bench.h: what the modules of cltrain-bench share (docs/bench.md).
 *
 * A run measures one or more devices. Each device gets an environment record (key/value
 * pairs) and a list of figures; a figure is one measured quantity with its unit, the
 * direction that counts as better, and the median, minimum and maximum over its runs.
 * Sections (micro.c, gemm_bench.c, ops_bench.c, train_bench.c) add figures; report.c
 * prints them, writes JSON, CSV and SVG, reads them back and compares them.
 */
#ifndef CLTRAIN_BENCH_H
#define CLTRAIN_BENCH_H

#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

/* ==== Configuration ===================================================================== */

struct bench_config {
    bool quick;       /* smaller sizes, fewer runs: under a minute on a 2-core CPU */
    int warmup;       /* runs thrown away before the measured ones */
    int runs;         /* measured runs of each figure */
    int cold_runs;    /* cold-cache first steps per model (each a full compile); 0: none */
    double target_s;  /* a calibrated micro kernel runs at least this long per run */
    bool verbose;     /* progress lines on stderr */
    const char *self; /* path of this program, to start the cold-cache children */
    /* --train-init: a directory where the train section writes each model's initial weights
     * (<model>.safetensors) and adds its initial and first-step losses as figures; NULL: no. */
    const char *train_init;
    /* --models: the train section's models, a bench_train_parse_models bit set; 0: the
     * built-in ones (mlp, cnn, gpt). */
    unsigned models;
    /* --profile: the train section adds each model's kernel profile (bench_profile). */
    bool profile;
    /* --precision: the train section's precisions, bit p for enum clt_precision p
     * (bench_parse_precisions); 0: fp32 alone. */
    unsigned precisions;
};

/* ==== Figures and devices =============================================================== */

#define BENCH_MAX_ENV 20

struct bench_kv {
    char key[32];
    char value[192];
    bool is_number; /* written to JSON as a number */
};

struct bench_figure {
    char section[16]; /* "micro", "gemm", "ops", "train" */
    char name[80];    /* "bandwidth.read", "clblast.square_512", ... */
    char unit[16];    /* "GB/s", "GFLOP/s", "%", "us", "ms", "samples/s", "MiB", "s" */
    bool higher_better;
    double median, min, max;
    int runs;
};

/* A trained model's kernel profile (--profile; engine/profile.c): device time per step by
 * kernel and by op of its plan, most time first. */
struct bench_prof_row {
    char name[96]; /* a kernel ("bias_forward", "host_sgemm") or an op ("linear.backward") */
    double calls;  /* launches per step */
    double ms;     /* device ms per step: the sum of its launches' END - START */
};

struct bench_profile {
    char model[16];
    int steps;      /* steps profiled */
    double step_ms; /* compute span per step, from markers around each step's work */
    struct bench_prof_row *kernels, *ops;
    size_t nkernels, nops;
};

struct bench_device {
    char id[16];     /* "P:D" */
    char label[300]; /* "<platform> / <device>": how --compare matches devices */
    struct bench_kv env[BENCH_MAX_ENV];
    int nenv;
    struct bench_figure *figs;
    size_t nfigs, cap;
    char notes[1024];            /* what was skipped and why, "; "-separated */
    struct bench_profile *profs; /* --profile, one per trained model */
    size_t nprofs;
};

struct bench_results {
    char mode[16]; /* "quick", "full", or "loaded" */
    int warmup, runs;
    struct bench_device *devs;
    size_t ndev;
};

/* The sections, in report order; every device of a complete run has each of them. */
extern const char *const bench_sections[];
extern const size_t bench_section_count;

/* Adds an environment entry (a number when is_number). */
void bench_env(struct bench_device *d, const char *key, const char *value, bool is_number);

/* Looks up an environment value; NULL when absent. */
const char *bench_env_get(const struct bench_device *d, const char *key);

/* Appends a note ("train: ... skipped because ..."). */
void bench_note(struct bench_device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ==== Statistics and timing (stats.c) =================================================== */

struct bench_stat {
    double median, min, max;
    int runs;
};

/* Median, minimum and maximum of n > 0 values (v is reordered). */
void bench_stat_of(double *v, int n, struct bench_stat *out);

/* The precision a figure was measured in: train figures are named "<model>.<what>" in fp32
 * and "<model>@<precision>.<what>" in fp16 and bf16; "fp32" for the first, the name's
 * precision for the others (as written, not checked); NULL outside the train section. Its
 * JSON record carries it as "precision". */
const char *bench_figure_precision(const struct bench_figure *f, char *buf, size_t size);

/* --precision LIST (comma-separated fp32, fp16, bf16) into a bit set (bit p for enum
 * clt_precision p); false for an empty list or an unknown name. */
bool bench_parse_precisions(const char *list, unsigned *mask);

/* Adds a figure; CLT_ERR_NO_MEMORY when the list cannot grow. */
enum clt_status bench_add(struct bench_device *d, const char *section, const char *name,
                          const char *unit, bool higher_better, const struct bench_stat *s);

/* Appends a model's profile, taking its row arrays; CLT_ERR_NO_MEMORY (rows freed) when
 * the list cannot grow. */
enum clt_status bench_profile_add(struct bench_device *d, struct bench_profile *p);

/* Frees a device's profiles. */
void bench_profiles_free(struct bench_device *d);

/* One run of a measurement: writes the value in the figure's unit. */
typedef enum clt_status (*bench_sample_fn)(void *ctx, double *value);

/* Runs fn warmup times (discarded), then runs times, and reduces the values. */
enum clt_status bench_repeat(int warmup, int runs, bench_sample_fn fn, void *ctx,
                             struct bench_stat *out);

/* Seconds of a monotonic clock. */
double bench_now(void);

/* ==== Sections ========================================================================== */

/* What every section gets. peak_gflops is set by the micro section (the best of its peak
 * figures) and read by the GEMM section for its percentages. */
struct bench_ctx {
    const struct bench_config *cfg;
    struct clt_device *dev;
    struct bench_device *out;
    char selection[160]; /* how child processes select the device: its name or "P:D" */
    double peak_gflops;
    bool profiling_ok; /* set by bench_probe_profiling */
};

/* ==== Timing (stats.c) ================================================================== */

/* Checks once per device whether its profiling timestamps can be used: a kernel that moves
 * a MiB must show 0 < START < END. Some drivers (Mesa rusticl 22.x) report zeros; timing
 * then falls back to the host clock around clFinish, and the environment says so. */
bool bench_probe_profiling(struct bench_ctx *c);

/* Time of a stretch of enqueued work. With usable profiling, begin holds the compute queue
 * behind a user event and enqueues a marker; the caller enqueues the work; end enqueues a
 * second marker, releases the queue (so the work runs back to back, without host gaps) and
 * waits: *seconds is the time between the two markers' completions. Without, begin waits
 * for the queue and reads the host clock, end waits again and reads it. */
struct bench_bracket {
    cl_event gate, start;
    double host_t0;
};
enum clt_status bench_bracket_begin(struct bench_ctx *c, struct bench_bracket *b);
enum clt_status bench_bracket_end(struct bench_ctx *c, struct bench_bracket *b, double *seconds);

/* Time of one command: END - START of its event, or without usable profiling the host time
 * from host_t0 (read before the enqueue) until the event completes. Releases the event. */
enum clt_status bench_event_seconds(struct bench_ctx *c, cl_event ev, double host_t0,
                                    double *seconds);

enum clt_status bench_micro(struct bench_ctx *c);
enum clt_status bench_gemm(struct bench_ctx *c);
/* --gemm-shapes: prints the GEMM section's shapes, one per line as "NAME TA TB M N K BATCH"
 * (bench/torch_gemm.py reads them), without timing. Returns the exit status. */
int bench_gemm_shapes(const char *selection, bool quick);
enum clt_status bench_ops(struct bench_ctx *c);
enum clt_status bench_train(struct bench_ctx *c);

/* ---- Training (train_bench.c, first_step.c) ---- */

struct model; /* tools/models.h */

/* The train section's models: the built-in mlp, cnn and gpt (models.h), and the large gpt2s
 * and resnet18 (models_large.h), which run only when --models names them.
 * bench_train_parse_models: --models LIST into a bit set (bit i: the i-th model in that
 * order); false for an empty list or an unknown name. bench_train_batch: a model's batch in
 * the bench on dev (a large model's is larger on a GPU or accelerator; dev NULL: a CPU's);
 * 0 for an unknown name. bench_train_build: builds the model at that batch, for the data of
 * model_default_data or model_large_data. bench_train_inputs: random inputs for a built
 * model (x and y malloc'd, in the order clt_trainer_step wants them). */
bool bench_train_parse_models(const char *list, unsigned *mask);
int64_t bench_train_batch(const char *kind, const struct clt_device *dev);
enum clt_status bench_train_build(const struct clt_device *dev, const char *kind, struct model *m,
                                  char *err, size_t err_size);
enum clt_status bench_train_inputs(const struct model *m, void **x, void **y);

/* cltrain-bench --parallel (parallel_bench.c): the data-parallel figures over the devices of a
 * comma list of selections (or "all") for the models of a comma list (NULL: mlp, cnn, gpt),
 * printed as a table. Returns the exit status. */
int bench_parallel_run(const char *devices, const char *models, bool quick);

/* Adds the cold and warm time-to-first-step figures of a model, from child processes. */
enum clt_status bench_first_step(struct bench_ctx *c, const char *kind);

/* The hidden child mode: opens the device, builds the model, makes a trainer and runs one
 * step, then prints "first_step_s <seconds>" on stdout. Returns the exit status. */
int bench_first_step_child(const char *selection, const char *model);

/* ==== Output (report.c, compare.c, svg.c) =============================================== */

void bench_print_table(const struct bench_results *r);
enum clt_status bench_write_json(const struct bench_results *r, const char *path);
enum clt_status bench_write_csv(const struct bench_results *r, const char *path);
/* The chart holds r's devices and, when base is not NULL, the baseline's. */
enum clt_status bench_write_svg(const struct bench_results *r, const struct bench_results *base,
                                const char *path);

/* Reads results written by bench_write_json. On failure prints one line naming the file and
 * the reason to stderr and returns CLT_ERR_IO (unreadable) or CLT_ERR_FORMAT. */
enum clt_status bench_read_json(const char *path, struct bench_results *out);

/* Prints every figure of r beside the baseline's (devices matched by label, or by position
 * when each side has one device), with the ratio, marking regressions beyond threshold_pct
 * in the figure's worse direction. Returns the number of regressions. */
int bench_compare(const struct bench_results *r, const struct bench_results *base,
                  double threshold_pct);

void bench_results_free(struct bench_results *r);

#endif /* CLTRAIN_BENCH_H */
