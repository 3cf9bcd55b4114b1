/*
 * outputs.h: the files a command writes for the user (train's --out, --metrics, --plot and
 * --keep-best checkpoint, predict's --out), checked and claimed before any work so that no
 * output destroys data, then written atomically.
 *
 * Claiming (outputs_claim):
 *   - an output that is an input of the run (the same file by device and inode, whatever
 *     the path says) is refused, as are two outputs that are the same file;
 *   - an existing file is replaced only when it is cltrain's own output of that kind (a
 *     checkpoint with "cltrain.version" metadata, a metrics file of JSON Lines records, a
 *     plot marked by PLOT_GENERATOR, a predictions CSV starting with its header), or empty,
 *     or with --force; a directory or other non-regular file never;
 *   - the output's directory must exist and be writable, and an existing file writable;
 *   - a lock file "<output>.lock" holding the pid keeps a second run off the same output;
 *     a lock whose process no longer runs is stale and taken over;
 *   - temporary files "<output>.tmp.<pid>[.XXXXXX]" left by processes that no longer run (a
 *     kill during a save) are removed, and each removal is reported.
 *
 * Writing (outfile_*): into a temporary file "<output>.tmp.<pid>.XXXXXX" beside the output
 * (the library's checkpoint saves name theirs the same way), flushed, synced and renamed over
 * the output when complete, so a failed or interrupted run leaves the old file whole:
 *
 *     struct outfile o;
 *     if (outfile_open(&o, path, err, sizeof err) != 0)
 *         ... report err ...
 *     fprintf(o.f, ...);
 *     if (outfile_commit(&o, err, sizeof err) != 0)   // or outfile_abort(&o) on failure
 *         ... report err ...
 *
 * While a lock is held or a temporary file open, SIGINT, SIGTERM and SIGHUP remove them before
 * the process ends as the signal's default action ends it (a command that installs its own
 * handlers, as train does while it trains, handles those signals itself meanwhile).
 *
 * The path "-" is standard output: never claimed, written directly.
 */
#ifndef CLTRAIN_TOOLS_OUTPUTS_H
#define CLTRAIN_TOOLS_OUTPUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum output_kind { OUTPUT_CHECKPOINT, OUTPUT_METRICS, OUTPUT_PLOT, OUTPUT_PREDICTIONS };

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

/* Adds an output (path NULL or "-": nothing). */
void outputs_add(struct outputs *os, const char *path, const char *option, enum output_kind kind);

/* The checks of the rules above that need no lock (inputs, kinds, writability), for every
 * output. 0; 1 (cannot write there) or 2 (an output is an input or another output, or would
 * replace a file that is not cltrain's) with the first problem in err. */
int outputs_check(const struct outputs *os, const struct input *inputs, size_t ninputs, bool force,
                  char *err, size_t err_size);

/* outputs_check, then takes the locks and removes orphaned temporary files. Prints one line
 * per problem or removal, prefixed by cmd. Returns 0, 1 (cannot write, or another run holds
 * a lock) or 2 (as outputs_check). On failure no lock is held. */
int outputs_claim(struct outputs *os, const char *cmd, const struct input *inputs, size_t ninputs,
                  bool force);

/* Removes the locks. Safe to call twice. */
void outputs_release(struct outputs *os);

/* True when the file at path is cltrain's own output of that kind (or empty). */
bool outputs_is_own(const char *path, enum output_kind kind);

/* An output being written. f is open for writing; tmp is the temporary file's path ("" for
 * standard output). Must not move while open (the signal handler holds tmp). */
struct outfile {
    FILE *f;
    const char *path;
    char tmp[4200];
};

/* Creates the temporary file beside path (mode 0666 less the umask, like a plain fopen), or
 * takes standard output for "-". 0, or -1 with a message in err. */
int outfile_open(struct outfile *o, const char *path, char *err, size_t err_size);

/* Flushes, syncs and closes the temporary file, then renames it over path. On any error
 * removes it, leaves path as it was, and returns -1 with a message naming path in err. */
int outfile_commit(struct outfile *o, char *err, size_t err_size);

/* Closes and removes the temporary file. Safe on a zeroed or committed outfile. */
void outfile_abort(struct outfile *o);

#endif
