/*
 * cmd_train.c: `cltrain train`: trains a built-in or file model on a dataset, with progress
 * on stderr, JSON Lines metrics, an SVG plot of the loss curves, evaluations, checkpoints
 * that resume exactly, and expectations for CI.
 *
 * The run is counted in global steps (batches trained since the start, across resumes).
 * A checkpoint records the step, the batcher's position and every option that shapes the
 * trajectory, so `--resume FILE` continues with the same batches, the same dropout masks
 * and the same learning rates as a run that never stopped.
 */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "models.h"
#include "train.h"

static const char *const summary =
    "Trains a model on a dataset, validating on a held-out part of it each epoch and\n"
    "scoring its test set (fashion-mnist, idx:DIR, --eval-data) once at the end.\n"
    "  models:   mlp, cnn, gpt, file:PATH (docs/formats.md)\n"
    "  datasets: fashion-mnist, idx:DIR, csv:FILE, text:FILE\n"
    "  defaults: mlp (width 256, depth 2): 3 epochs, batch 128, lr 2e-3;\n"
    "            cnn (width 16, dropout 0.1): 2 epochs, batch 32, lr 2e-3;\n"
    "            gpt (width 128, depth 2, heads 4, context 64): 10 epochs, batch 16,\n"
    "            lr 3e-3, warmup 20, clip 1; all AdamW with a cosine schedule, in fp32\n"
    "  mpirun -np N cltrain train ...: one model over N processes (a build with MPI), each\n"
    "            taking its share of every batch; rank 0 writes the outputs (docs/parallel.md)\n"
    "Exit status: 0 success, 1 failure, 2 bad usage, 3 an --expect-* target missed,\n"
    "128 + the signal when stopped by SIGINT, SIGTERM or SIGHUP (after saving --out).";

/* The options of the command, with the defaults of train_config_init. */
static void options_table(struct train_config *c, struct opt *o, size_t *n)
{
    struct opt t[] = {
        {"model", OPT_STRING, &c->model_arg, "M", "mlp, cnn, gpt or file:PATH", 0, 0, false},
        {"data", OPT_STRING, &c->data, "D", "fashion-mnist, idx:DIR, csv:FILE or text:FILE", 0, 0,
         false},
        {"epochs", OPT_INT, &c->epochs, "N", "passes over the training set (default: the model's)",
         1, 1e9, false},
        {"steps", OPT_INT, &c->max_steps, "N",
         "train N steps in all, the schedule ending there (0: --epochs)", 0, 1e15, false},
        {"stop-at", OPT_INT, &c->stop_at, "N",
         "stop at step N, the schedule unchanged (resume continues)", 0, 1e15, false},
        {"patience", OPT_INT, &c->patience, "N",
         "stop after N evaluations without a lower validation loss", 0, 1e9, false},
        {"batch", OPT_INT, &c->batch, "N", "examples (gpt: windows) per step", 1, 1 << 20, false},
        {"lr", OPT_FLOAT, &c->lr, "X", "learning rate (default: the model's)", 0, 10, false},
        {"optimizer", OPT_STRING, &c->optimizer, "O", "sgd, adam or adamw (default adamw)", 0, 0,
         false},
        {"momentum", OPT_FLOAT, &c->momentum, "X", "SGD momentum (default 0.9)", 0, 0.999999,
         false},
        {"weight-decay", OPT_FLOAT, &c->weight_decay, "X",
         "weight decay (default: adamw 0.01, else 0)", 0, 10, false},
        {"decay-all", OPT_FLAG, &c->decay_all, NULL,
         "decay every parameter (default: biases, norms and embeddings are exempt)", 0, 0, false},
        {"clip", OPT_FLOAT, &c->clip, "X", "clip the gradient norm to X (0: off; gpt: 1)", 0, 1e9,
         false},
        {"schedule", OPT_STRING, &c->schedule, "S", "constant or cosine (default cosine)", 0, 0,
         false},
        {"warmup", OPT_INT, &c->warmup, "N", "ramp the learning rate up over N steps (gpt: 20)", 0,
         1e12, false},
        {"seed", OPT_INT, &c->seed, "N", "seed of initialisation, shuffling, dropout, split", 0,
         9e18, false},
        {"precision", OPT_STRING, &c->precision, "P",
         "fp32, fp16 or bf16: how activations and the weights' working copy are stored "
         "(16-bit: fp32 arithmetic and master weights; default fp32)",
         0, 0, false},
        {"width", OPT_INT, &c->desc.width, "N", "model width (mlp, cnn, gpt)", 1, 1 << 20, false},
        {"depth", OPT_INT, &c->desc.depth, "N", "hidden layers (mlp) or blocks (gpt)", 0, 1024,
         false},
        {"heads", OPT_INT, &c->desc.heads, "N", "attention heads (gpt)", 1, 1024, false},
        {"context", OPT_INT, &c->desc.context, "N", "tokens per window (gpt)", 1, 1 << 20, false},
        {"dropout", OPT_FLOAT, &c->dropout, "P", "dropout probability (default: the model's)", 0,
         0.99, false},
        {"label-column", OPT_INT, &c->label_column, "N",
         "csv: the labels' column, from 0 (default -1: the last)", -1e6, 1e6, false},
        {"limit", OPT_INT, &c->limit, "N", "use the first N examples (tokens) of each set", 0, 9e18,
         false},
        {"classes", OPT_INT, &c->classes, "K",
         "the number of classes (default: the labels, which must be 0 .. K-1)", 2, 1 << 24, false},
        {"val-fraction", OPT_FLOAT, &c->val_fraction, "X",
         "hold out X of the training data for validation (default 0.1)", 0, 0.99, false},
        {"eval-data", OPT_STRING, &c->eval_data, "D",
         "csv:FILE or idx:DIR: the test set of the final evaluation", 0, 0, false},
        {"device", OPT_STRING, &c->device, "SEL",
         "pocl, gpu, P:D...; a comma list (pocl,llvmpipe) or all trains data-parallel on each "
         "(default: CLTRAIN_DEVICE, else the first GPU)",
         0, 0, false},
        {"device-weights", OPT_STRING, &c->device_weights, "W,W|measure",
         "with several devices: split the batch in proportion to W,W,... (one a device), or to "
         "each device's speed timed before the first step",
         0, 0, false},
        {"metrics", OPT_STRING, &c->metrics, "FILE", "write JSON Lines metrics", 0, 0, false},
        {"log-every", OPT_INT, &c->log_every, "N", "log the loss every N steps (default 10)", 1,
         1e9, false},
        {"eval-every", OPT_INT, &c->eval_every, "N", "also evaluate every N steps", 0, 1e15, false},
        {"out", OPT_STRING, &c->out, "FILE", "save checkpoints (safetensors) here", 0, 0, false},
        {"save-every", OPT_INT, &c->save_every, "N", "also save every N steps", 0, 1e15, false},
        {"keep-best", OPT_FLAG, &c->keep_best, NULL,
         "also keep the lowest validation loss's checkpoint in OUT.best.safetensors", 0, 0, false},
        {"resume", OPT_STRING, &c->resume, "FILE", "continue the run saved in FILE", 0, 0, false},
        {"plot", OPT_STRING, &c->plot, "FILE", "draw the loss curves as SVG", 0, 0, false},
        {"force", OPT_FLAG, &c->force, NULL,
         "replace --out, --metrics, --plot files that are not cltrain's", 0, 0, false},
        {"expect-accuracy", OPT_FLOAT, &c->expect_accuracy, "X",
         "exit 3 unless the final accuracy is at least X", 0, 0, false},
        {"expect-loss-below", OPT_FLOAT, &c->expect_loss, "X",
         "exit 3 unless the final loss is below X", 0, 0, false},
        {"expect-curve", OPT_STRING, &c->expect_curve, "FILE",
         "exit 3 unless each logged loss is within --tolerance of FILE's (--metrics)", 0, 0, false},
        {"tolerance", OPT_FLOAT, &c->tolerance, "X",
         "--expect-curve: the largest |loss - golden loss| (default 1e-3)", 0, 1e9, false},
        opt_verbose(&c->verbose),
    };
    memcpy(o, t, sizeof t);
    *n = sizeof t / sizeof t[0];
}

/* Model defaults that are training options. */
static void model_training_defaults(struct train_config *c, const struct opt *o, size_t n)
{
    const char *k = c->desc.kind;
    bool gpt = strcmp(k, "gpt") == 0, cnn = strcmp(k, "cnn") == 0;
    if (!args_find((struct opt *)o, n, "epochs")->seen)
        c->epochs = cnn ? 2 : gpt ? 10 : 3;
    if (!args_find((struct opt *)o, n, "warmup")->seen)
        c->warmup = gpt ? 20 : 0;
    if (!args_find((struct opt *)o, n, "batch")->seen) {
        c->batch = gpt ? 16 : cnn ? 32 : 128;
        c->batch_default = true;
    }
    if (!args_find((struct opt *)o, n, "lr")->seen)
        c->lr = strcmp(c->optimizer, "sgd") == 0 ? 0.05 : gpt ? 3e-3 : 2e-3;
    if (!args_find((struct opt *)o, n, "clip")->seen)
        c->clip = gpt ? 1.0 : 0.0;
}

/* The command on this process; under MPI, on one rank of several (train_mpi.h). */
static int train_command(int argc, char **argv, struct tool_mpi *mpi)
{
    const char *cmd = mpi->label;
    struct train_config c;
    train_config_init(&c);
    c.mpi = mpi;
    struct opt o[56];
    size_t n = 0;
    options_table(&c, o, &n);
    int status;
    if (!args_command(cmd, summary, argc, argv, o, n, &status))
        return status;
    struct tool_log tl;
    tool_log_init(&tl, cmd, c.verbose);
    char err[1200] = "";
    int rc;
    if (c.resume) {
        rc = train_config_resume(&c, o, n, &tl, err, sizeof err);
    } else if (!c.model_arg || !c.data) {
        snprintf(err, sizeof err,
                 "--model and --data are required (or --resume FILE); see "
                 "--help");
        rc = 2;
    } else {
        struct model_desc d;
        rc = model_desc_from_arg(c.model_arg, &d, err, sizeof err) == CLT_OK ? 0 : 2;
        if (rc == 0) {
            /* Size flags were parsed into c.desc; keep them over the kind's defaults. */
            d.width = c.desc.width;
            d.depth = c.desc.depth;
            d.heads = c.desc.heads;
            d.context = c.desc.context;
            d.dropout = args_find(o, n, "dropout")->seen ? (float)c.dropout : -1.0f;
            c.desc = d;
            model_defaults(&c.desc);
            model_training_defaults(&c, o, n);
        }
    }
    if (rc == 0)
        rc = train_config_check(&c, err, sizeof err);
    if (rc != 0) {
        if (err[0])
            fprintf(stderr, "%s: %s\n", cmd, err);
        return rc;
    }
    return train_run(&c, &tl);
}

int cmd_train(int argc, char **argv)
{
    struct tool_mpi mpi;
    char err[600] = "";
    if (tool_mpi_start(&mpi, "cltrain train", &argc, &argv, err, sizeof err) != 0) {
        fprintf(stderr, "cltrain train: %s\n", err);
        return 1;
    }
    /* An error (1, 2) on any rank ends them all: tool_mpi_end exits or aborts. */
    return tool_mpi_end(&mpi, train_command(argc, argv, &mpi));
}
