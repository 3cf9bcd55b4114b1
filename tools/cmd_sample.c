/*
 * cmd_sample.c: `cltrain sample`: generates text from a gpt checkpoint to stdout
 * (generate.h says how).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "generate.h"

static const char *const summary =
    "Generates text from a gpt checkpoint of `cltrain train`, to stdout.";

struct sample_opts {
    const char *checkpoint, *prompt, *device;
    int64_t length, seed;
    double temperature;
    bool verbose;
};

static void emit_stdout(void *user, uint8_t byte)
{
    (void)user;
    putchar(byte);
    fflush(stdout);
}

static int run(const struct sample_opts *o, struct tool_log *tl)
{
    struct ckpt c = {0};
    const struct ckpt_model *cm = &c.cm;
    int32_t *ids = NULL;
    char err[1200];
    int rc = 1;
    if (ckpt_open(tl, o->checkpoint, &c) != 0)
        goto out;
    if (strcmp(cm->desc.kind, "gpt") != 0) {
        fprintf(stderr, "%s: %s holds a model of kind %s; sample needs a gpt checkpoint\n", tl->cmd,
                o->checkpoint, cm->desc.kind);
        goto out;
    }
    int64_t cap = (int64_t)strlen(o->prompt) + o->length + 1;
    ids = malloc((size_t)cap * sizeof *ids);
    int64_t n =
        ids ? generate_encode(o->prompt, strlen(o->prompt), cm, ids, cap, err, sizeof err) : -1;
    if (n < 0) {
        if (ids)
            fprintf(stderr, "%s: %s\n", tl->cmd, err);
        rc = ids ? 2 : 1;
        goto out;
    }
    if (ckpt_load(tl, &c, 1, o->device) != 0)
        goto out;
    fwrite(o->prompt, 1, strlen(o->prompt), stdout);
    uint64_t rng = (uint64_t)o->seed;
    enum clt_status st = generate(&c, ids, n, o->length, o->temperature, &rng, emit_stdout, NULL);
    putchar('\n');
    if (st != CLT_OK) {
        tool_fail(tl, st, "generation failed");
        goto out;
    }
    rc = 0;
out:
    free(ids);
    ckpt_close(&c);
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
        opt_device(&o.device),
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
    struct tool_log tl;
    tool_log_init(&tl, cmd, o.verbose);
    return run(&o, &tl);
}
