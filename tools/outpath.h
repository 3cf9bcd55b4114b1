/*
 * outpath.h: writing a command's output file without destroying data. Before any work, a
 * command checks each output path (outpath_check): it must not be one of the run's inputs,
 * must be a place the command can write, and may replace an existing file only when that
 * file is the command's own output of that kind (or empty), unless --force. The file is then
 * written to a temporary file beside it and renamed over the path when complete
 * (outfile_open, outfile_commit), so a failed or interrupted run leaves the old file whole.
 *
 *     struct outfile o;
 *     if (outpath_check(path, inputs, 2, is_mine, force, err, sizeof err) != 0 ||
 *         outfile_open(&o, path, err, sizeof err) != 0)
 *         ... report err, exit 1 ...
 *     fprintf(o.f, ...);
 *     if (outfile_commit(&o, err, sizeof err) != 0)   // or outfile_abort(&o) on failure
 *         ... report err ...
 *
 * The path "-" is standard output: never checked, written directly.
 */
#ifndef CLTRAIN_TOOLS_OUTPATH_H
#define CLTRAIN_TOOLS_OUTPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Whether the existing file at path is the command's own output (reads its start). */
typedef bool (*outpath_is_mine_fn)(const char *path);

/* Checks that path may be written: it is not the same file as any of the n inputs (paths
 * that do not exist are ignored), not a directory or other non-regular file, its directory
 * exists and is writable, and, if it exists and is not empty, is_mine(path) says it is the
 * command's own output or force is set. 0, or -1 with one line in err. */
int outpath_check(const char *path, const char *const *inputs, size_t n, outpath_is_mine_fn is_mine,
                  bool force, char *err, size_t err_size);

/* An output being written. f is open for writing; tmp is the temporary file's path ("" for
 * standard output). */
struct outfile {
    FILE *f;
    const char *path;
    char tmp[4200];
};

/* Creates the temporary file beside path (mode 0666 less the umask, like a plain fopen).
 * 0, or -1 with a message in err. */
int outfile_open(struct outfile *o, const char *path, char *err, size_t err_size);

/* Flushes, syncs and closes the temporary file, then renames it over path. On any error
 * removes it, leaves path as it was, and returns -1 with a message in err. */
int outfile_commit(struct outfile *o, char *err, size_t err_size);

/* Closes and removes the temporary file. Safe on a zeroed or committed outfile. */
void outfile_abort(struct outfile *o);

/* Until outfile_commit or outfile_abort, SIGINT, SIGTERM and SIGHUP remove o's temporary
 * file before the process ends as the signal's default action ends it (one outfile at a
 * time; the program's own handlers are restored at commit or abort). */
void outfile_clean_on_signal(struct outfile *o);

#endif
