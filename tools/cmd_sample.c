/*
 * cmd_sample.c: `cltrain sample`: generates text from a gpt checkpoint. The model is rebuilt
 * for one window of `context` tokens; each new token runs it forward (clt_trainer_eval) on
 * the last `context` tokens, placed at positions 0 .. n-1 (causal attention makes the rest
 * of the window irrelevant to position n-1), and draws the next token on the host from the
 * softmax of position n-1's logits divided by the temperature.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"

static const char *const summary =
    "Generates text from a gpt checkpoint of `cltrain train`, to stdout.";

struct sample_opts {
    const char *checkpoint, *prompt, *device;
    int64_t length, seed;
    double temperature;
    bool verbose;
};

/* splitmix64: a uniform double in [0, 1). */
static double uniform(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* Draws an id from softmax(logits / temperature); temperature 0 takes the largest. */
static int32_t draw(const float *logits, int64_t v, double temperature, uint64_t *rng, double *p)
{
    if (temperature <= 0)
        return (int32_t)argmax(logits, v);
    double top = logits[argmax(logits, v)], sum = 0;
    for (int64_t i = 0; i < v; i++)
        sum += p[i] = exp(((double)logits[i] - top) / temperature);
    double u = uniform(rng) * sum;
    for (int64_t i = 0; i < v; i++) {
        u -= p[i];
        if (u < 0)
            return (int32_t)i;
    }
    return (int32_t)(v - 1);
}

/* The prompt as ids; -1 with a message if a byte is not in the vocabulary. */
static int64_t encode(const char *prompt, const struct ckpt_model *cm, int32_t *ids, int64_t cap,
                      const char *cmd)
{
    int64_t n = 0;
    for (const unsigned char *s = (const unsigned char *)prompt; *s && n < cap; s++) {
        int32_t id = -1;
        for (uint32_t j = 0; j < cm->info.vocab; j++)
            if (cm->symbols[j] == *s)
                id = (int32_t)j;
        if (id < 0) {
            fprintf(stderr,
                    "%s: the prompt's character '%c' (byte 0x%02x) is not in the "
                    "model's vocabulary\n",
                    cmd, *s >= 32 && *s < 127 ? *s : '?', *s);
            return -1;
        }
        ids[n++] = id;
    }
    if (n == 0) { /* start from a newline if the model knows one, else from the first symbol */
        ids[0] = 0;
        for (uint32_t j = 0; j < cm->info.vocab; j++)
            if (cm->symbols[j] == '\n')
                ids[0] = (int32_t)j;
        n = 1;
    }
    return n;
}

static int generate(struct clt_trainer *tr, const struct model *m, const struct ckpt_model *cm,
                    const struct sample_opts *o, int32_t *ids, int64_t n, struct tool_log *tl)
{
    int64_t T = m->positions, V = m->classes;
    int32_t *x = calloc((size_t)T, sizeof *x), *y = malloc((size_t)T * sizeof *y);
    float *logits = malloc((size_t)(T * V) * sizeof *logits);
    double *p = malloc((size_t)V * sizeof *p);
    uint64_t rng = (uint64_t)o->seed;
    int rc = x && y && logits && p ? 0 : 1;
    for (int64_t i = 0; i < T && y; i++)
        y[i] = -1;
    for (int64_t k = 0; rc == 0 && k < o->length; k++) {
        int64_t w = n < T ? n : T; /* the window: the last w tokens */
        memcpy(x, ids + n - w, (size_t)w * sizeof *x);
        const void *inputs[] = {x, y};
        enum clt_status st =
            clt_trainer_eval(tr, inputs, m->logits, logits, (uint64_t)(T * V), NULL);
        if (st != CLT_OK) {
            tool_fail(tl, st, "generation failed");
            rc = 1;
            break;
        }
        ids[n] = draw(logits + (w - 1) * V, V, o->temperature, &rng, p);
        putchar(cm->symbols[ids[n]]);
        fflush(stdout);
        n++;
    }
    putchar('\n');
    free(x);
    free(y);
    free(logits);
    free(p);
    return rc;
}

static int run(const struct sample_opts *o, struct tool_log *tl)
{
    struct clt_checkpoint *ck = NULL;
    struct ckpt_model cm = {0};
    struct model m = {0};
    struct clt_device *dev = NULL;
    struct clt_trainer *tr = NULL;
    int32_t *ids = NULL;
    char err[1200];
    int rc = 1;
    enum clt_status st = clt_checkpoint_open(o->checkpoint, &tl->log, &ck);
    if (st != CLT_OK) {
        tool_fail(tl, st, "cannot read the checkpoint %s", o->checkpoint);
        goto out;
    }
    if (ckpt_model_read(ck, &cm, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s: %s\n", tl->cmd, o->checkpoint, err);
        goto out;
    }
    if (strcmp(cm.desc.kind, "gpt") != 0) {
        fprintf(stderr, "%s: %s holds a model of kind %s; sample needs a gpt checkpoint\n", tl->cmd,
                o->checkpoint, cm.desc.kind);
        goto out;
    }
    int64_t cap = (int64_t)strlen(o->prompt) + o->length + 1;
    ids = malloc((size_t)cap * sizeof *ids);
    int64_t n = ids ? encode(o->prompt, &cm, ids, cap, tl->cmd) : -1;
    if (n < 0) {
        rc = ids ? 2 : 1;
        goto out;
    }
    if (model_build(&cm.desc, &cm.info, 1, &m, err, sizeof err) != CLT_OK) {
        fprintf(stderr, "%s: %s\n", tl->cmd, err);
        goto out;
    }
    if (!(dev = tool_device_open(tl, o->device)))
        goto out;
    struct clt_trainer_options opt;
    clt_trainer_options_init(&opt, CLT_OPTIM_SGD);
    st = clt_trainer_create(dev, m.g, m.loss, &opt, &tr);
    if (st == CLT_OK)
        st = clt_trainer_load(tr, o->checkpoint, false);
    if (st != CLT_OK) {
        tool_fail(tl, st, "cannot load %s", o->checkpoint);
        goto out;
    }
    fwrite(o->prompt, 1, strlen(o->prompt), stdout);
    rc = generate(tr, &m, &cm, o, ids, n, tl);
out:
    free(ids);
    clt_trainer_free(tr);
    model_free(&m);
    clt_device_close(dev);
    ckpt_model_free(&cm);
    clt_checkpoint_close(ck);
    return rc;
}

int cmd_sample(int argc, char **argv)
{
    const char *cmd = "cltrain sample";
    struct sample_opts o = {.prompt = "", .length = 200, .seed = 1, .temperature = 0.8};
    struct opt t[] = {
        {"checkpoint", OPT_STRING, &o.checkpoint, "FILE", "a gpt checkpoint of cltrain train", 0, 0,
         false},
        {"length", OPT_INT, &o.length, "N", "characters to generate (default 200)", 0, 1e7, false},
        {"prompt", OPT_STRING, &o.prompt, "TEXT", "text to continue (default: a new line)", 0, 0,
         false},
        {"temperature", OPT_FLOAT, &o.temperature, "T",
         "softmax temperature, 0 for the most likely (default 0.8)", 0, 100, false},
        {"seed", OPT_INT, &o.seed, "N", "seed of the sampling (default 1)", 0, 9e18, false},
        {"device", OPT_STRING, &o.device, "SEL", "device selection", 0, 0, false},
        {"verbose", OPT_FLAG, &o.verbose, NULL, "log the library's informational messages", 0, 0,
         false},
    };
    size_t n = sizeof t / sizeof t[0];
    int status;
    if (!args_command(cmd, summary, argc, argv, t, n, &status))
        return status;
    if (!o.checkpoint) {
        fprintf(stderr, "%s: --checkpoint FILE is required (see --help)\n", cmd);
        return 2;
    }
    struct tool_log tl;
    tool_log_init(&tl, cmd, o.verbose);
    return run(&o, &tl);
}
