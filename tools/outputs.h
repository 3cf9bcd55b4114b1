/*
 * outputs.h: the files a training run writes (--out, --metrics, --plot), checked and
 * claimed before the first step so that no output destroys data:
 *
 *   - an output that is an input of the run (the same file by device and inode, whatever
 *     the path says) is refused, as are two outputs that are the same file;
 *   - an existing file is replaced only when it is cltrain's own output of that kind (a
 *     checkpoint with "cltrain.version" metadata, a metrics file of JSON Lines records, a
 *     plot marked by PLOT_GENERATOR), or with --force;
 *   - the output's directory must exist and be writable, and an existing file writable;
 *   - a lock file "<output>.lock" holding the pid keeps a second run off the same output;
 *     a lock whose process no longer runs is stale and taken over;
 *   - temporary files "<output>.tmp.<pid>[.XXXXXX]" left by processes that no longer run (a
 *     kill during a save) are removed, and each removal is reported.
 */
#ifndef CLTRAIN_TOOLS_OUTPUTS_H
#define CLTRAIN_TOOLS_OUTPUTS_H

#include <stdbool.h>
#include <stddef.h>

enum output_kind { OUTPUT_CHECKPOINT, OUTPUT_METRICS, OUTPUT_PLOT };

struct output {
    const char *path;   /* as the user gave it */
    const char *option; /* "--out" */
    enum output_kind kind;
    char *lock; /* "<path>.lock" while held (malloc'd), else NULL */
};

#define OUTPUTS_MAX 4

struct outputs {
    struct output o[OUTPUTS_MAX];
    size_t n;
};

/* An input of the run: a path and the option that named it ("--data"). A checkpoint output
 * may be the same file when out_may_be_it (--resume FILE --out FILE continues in place). */
struct input {
    const char *path;
    const char *option;
    bool out_may_be_it;
};

/* Adds an output (path NULL: nothing). */
void outputs_add(struct outputs *os, const char *path, const char *option, enum output_kind kind);

/* Checks every output against the inputs and the rules above, then takes the locks and
 * removes orphaned temporary files. Prints one line per problem, prefixed by cmd. Returns
 * 0, 1 (cannot write, or another run holds a lock) or 2 (an output is an input, or would
 * replace a file that is not cltrain's). On failure no lock is held. */
int outputs_claim(struct outputs *os, const char *cmd, const struct input *inputs, size_t ninputs,
                  bool force);

/* Removes the locks. Safe to call twice. */
void outputs_release(struct outputs *os);

/* True when the file at path is cltrain's own output of that kind (or empty). */
bool outputs_is_own(const char *path, enum output_kind kind);

#endif
