/*
 * cmd_export.c: `cltrain export`: a checkpoint's weights as a 16-bit (or fp32) safetensors
 * file for PyTorch and other programs (clt_checkpoint_export). The output is claimed like
 * every output of cltrain (outputs.h): never the checkpoint itself, never a file another
 * program wrote unless --force, written atomically. No device is opened.
 */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "outputs.h"

static const char *const summary =
    "Writes a checkpoint's weights in fp16, bf16 or fp32 as safetensors (F16, BF16 or F32\n"
    "tensors, the optimizer's state left out), for PyTorch and other programs. Values are\n"
    "rounded to nearest even; a value beyond fp16's range (65504) is refused, not made Inf.";

int cmd_export(int argc, char **argv)
{
    const char *cmd = "cltrain export";
    const char *checkpoint = NULL, *out = NULL, *precision = NULL;
    bool force = false, verbose = false;
    struct opt t[] = {
        {"checkpoint", OPT_STRING, &checkpoint, "FILE", "a checkpoint (any safetensors file)", 0, 0,
         false},
        {"precision", OPT_STRING, &precision, "P", "fp16, bf16 or fp32", 0, 0, false},
        {"out", OPT_STRING, &out, "FILE", "the file to write (.safetensors)", 0, 0, false},
        {"force", OPT_FLAG, &force, NULL, "replace --out even if cltrain did not write it", 0, 0,
         false},
        opt_verbose(&verbose),
    };
    size_t n = sizeof t / sizeof t[0];
    int status;
    if (!args_command(cmd, summary, argc, argv, t, n, &status))
        return status;
    if (!checkpoint || !out || !precision) {
        fprintf(stderr,
                "%s: --checkpoint FILE, --precision P and --out FILE are required (see "
                "--help)\n",
                cmd);
        return 2;
    }
    enum clt_precision p;
    if (!tool_precision_parse(precision, &p)) {
        fprintf(stderr, "%s: --precision \"%s\" is not fp16, bf16 or fp32\n", cmd, precision);
        return 2;
    }
    if (strcmp(out, "-") == 0) {
        fprintf(stderr,
                "%s: --out needs a file name (safetensors is not written to standard "
                "output)\n",
                cmd);
        return 2;
    }
    const struct input inputs[1] = {{checkpoint, "--checkpoint", false}};
    struct outputs outs = {0};
    outputs_add(&outs, out, "--out", OUTPUT_CHECKPOINT);
    if (outputs_claim(&outs, cmd, inputs, 1, force) != 0)
        return 1;
    struct tool_log tl;
    tool_log_init(&tl, cmd, verbose);
    struct clt_export_report r;
    enum clt_status st = clt_checkpoint_export(checkpoint, out, p, &tl.log, &r);
    outputs_release(&outs);
    if (st != CLT_OK) {
        /* The library's line names the file and the reason; nothing was written. */
        fprintf(stderr, "%s: %s\n", cmd, tl.last[0] ? tl.last : clt_status_str(st));
        return 1;
    }
    fprintf(stderr,
            "%s: wrote %s: %u tensors in %s (%llu values), %u copied as they were, %u optimizer "
            "tensors left out\n",
            cmd, out, (unsigned)r.converted, precision, (unsigned long long)r.elements,
            (unsigned)r.copied, (unsigned)r.dropped);
    if (r.underflows > 0)
        fprintf(stderr, "%s: warning: %llu non-zero values were too small for %s and became 0\n",
                cmd, (unsigned long long)r.underflows, precision);
    return 0;
}
