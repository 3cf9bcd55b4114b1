/*
 * outputs.c: see outputs.h. Claiming (checks, locks, orphans), then the atomic writes, and
 * between them the files a signal removes.
 */
#include "outputs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plot.h"
#include "predictions.h"

static const char *const kind_names[] = {"checkpoint", "metrics file", "plot", "predictions file"};

/* The files SIGINT, SIGTERM and SIGHUP remove: the held locks and the open temporary files.
 * A program-wide state, as signals are; the handlers are ours while a slot is in use, except
 * for a signal the process ignores (SIGHUP under nohup), which stays ignored. Room for every
 * lock of a struct outputs and a few open outfiles. */
#define CLEANUP_MAX 8
static const char *volatile cleanup[CLEANUP_MAX];
static size_t cleanup_used;
static const int signals[] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction saved[3];

static void on_signal(int sig)
{
    for (size_t i = 0; i < CLEANUP_MAX; i++)
        if (cleanup[i])
            unlink(cleanup[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Has a signal remove path (which must stay valid) until cleanup_drop(path). */
static void cleanup_add(const char *path)
{
    for (size_t i = 0; i < CLEANUP_MAX; i++) {
        if (cleanup[i])
            continue;
        if (cleanup_used++ == 0) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sigemptyset(&sa.sa_mask);
            for (int k = 0; k < 3; k++)
                if (sigaction(signals[k], &sa, &saved[k]) == 0 && saved[k].sa_handler == SIG_IGN)
                    sigaction(signals[k], &saved[k], NULL);
        }
        cleanup[i] = path;
        return;
    }
}

static void cleanup_drop(const char *path)
{
    for (size_t i = 0; i < CLEANUP_MAX; i++) {
        if (cleanup[i] != path || !path)
            continue;
        cleanup[i] = NULL;
        if (--cleanup_used == 0)
            for (int k = 0; k < 3; k++)
                sigaction(signals[k], &saved[k], NULL);
        return;
    }
}

void outputs_add(struct outputs *os, const char *path, const char *option, enum output_kind kind)
{
    if (!path || strcmp(path, "-") == 0 || os->n == OUTPUTS_MAX)
        return;
    os->o[os->n++] = (struct output){path, option, kind, NULL};
}

/* Reads up to size - 1 bytes from the start of a file, NUL-terminated; the count, or -1. */
static long read_head(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (long)n;
}

/* A safetensors file whose header carries the trainer's "cltrain.version" key. */
static bool is_checkpoint(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char len[8];
    bool ok = fread(len, 1, 8, f) == 8;
    uint64_t n = 0;
    for (int i = 0; ok && i < 8; i++)
        n |= (uint64_t)len[i] << (8 * i);
    ok = ok && n >= 2 && n < (100u << 20);
    char *header = ok ? malloc((size_t)n + 1) : NULL;
    ok = header && fread(header, 1, (size_t)n, f) == n;
    if (ok) {
        header[n] = '\0';
        ok = header[0] == '{' && strstr(header, "\"cltrain.version\"") != NULL;
    }
    free(header);
    fclose(f);
    return ok;
}

bool outputs_is_own(const char *path, enum output_kind kind)
{
    char head[1024];
    long n = read_head(path, head, sizeof head);
    if (n == 0)
        return true; /* an empty file holds nothing to lose */
    if (n < 0)
        return false;
    switch (kind) {
    case OUTPUT_CHECKPOINT:
        return is_checkpoint(path);
    case OUTPUT_METRICS:
        return strncmp(head, "{\"type\":\"", 9) == 0;
    case OUTPUT_PLOT:
        return strncmp(head, "<?xml", 5) == 0 && strstr(head, PLOT_GENERATOR) != NULL;
    case OUTPUT_PREDICTIONS:
        return predictions_header_is_mine(head);
    }
    return false;
}

/* The directory of path ("." when it has none), malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, path, len);
        d[len] = '\0';
    }
    return d;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* True while process pid runs (or cannot be asked: another user's). */
static bool alive(long pid)
{
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* The checks of output k that need no lock: 0, or 1 or 2 with the problem in err. */
static int check_one(const struct outputs *os, size_t k, const struct input *inputs, size_t ninputs,
                     bool force, char *err, size_t err_size)
{
    const struct output *o = &os->o[k];
    if (!*o->path) {
        snprintf(err, err_size, "%s needs a file name", o->option);
        return 2;
    }
    struct stat sb;
    bool exists = stat(o->path, &sb) == 0;
    for (size_t i = 0; exists && i < ninputs; i++) {
        struct stat in;
        if (inputs[i].out_may_be_it && o->kind == OUTPUT_CHECKPOINT)
            continue;
        if (inputs[i].path && stat(inputs[i].path, &in) == 0 && same_file(&sb, &in)) {
            snprintf(err, err_size,
                     "%s %s is an input, the file %s reads (%s): refusing to overwrite an input of "
                     "the run",
                     o->option, o->path, inputs[i].option, inputs[i].path);
            return 2;
        }
    }
    for (size_t j = 0; j < k; j++) {
        struct stat other;
        if (strcmp(os->o[j].path, o->path) == 0 ||
            (exists && stat(os->o[j].path, &other) == 0 && same_file(&sb, &other))) {
            snprintf(err, err_size, "%s and %s name the same file %s", os->o[j].option, o->option,
                     o->path);
            return 2;
        }
    }
    if (exists && S_ISDIR(sb.st_mode)) {
        snprintf(err, err_size, "%s %s is a directory; give a file name", o->option, o->path);
        return 2;
    }
    if (exists && !S_ISREG(sb.st_mode)) {
        snprintf(err, err_size, "%s %s exists and is not a regular file", o->option, o->path);
        return 2;
    }
    if (exists && !force && !outputs_is_own(o->path, o->kind)) {
        snprintf(err, err_size,
                 "%s %s exists and is not a cltrain %s: refusing to replace it (--force "
                 "replaces it)",
                 o->option, o->path, kind_names[o->kind]);
        return 2;
    }
    char *dir = dir_of(o->path);
    if (!dir) {
        snprintf(err, err_size, "out of memory");
        return 1;
    }
    struct stat db;
    int rc = 0;
    if (stat(dir, &db) != 0 || !S_ISDIR(db.st_mode)) {
        snprintf(err, err_size, "cannot write %s %s: the directory %s does not exist", o->option,
                 o->path, dir);
        rc = 1;
    } else if (access(dir, W_OK | X_OK) != 0 || (exists && access(o->path, W_OK) != 0)) {
        snprintf(err, err_size, "cannot write %s %s: %s is not writable", o->option, o->path,
                 exists ? o->path : dir);
        rc = 1;
    }
    free(dir);
    return rc;
}

int outputs_check(const struct outputs *os, const struct input *inputs, size_t ninputs, bool force,
                  char *err, size_t err_size)
{
    for (size_t k = 0; k < os->n; k++) {
        int rc = check_one(os, k, inputs, ninputs, force, err, err_size);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Creates "<path>.lock" holding our pid, taking over a stale one. 0 or 1. */
static int lock_one(struct output *o, const char *cmd)
{
    size_t len = strlen(o->path) + 6;
    char *lock = malloc(len);
    if (!lock) {
        fprintf(stderr, "%s: out of memory\n", cmd);
        return 1;
    }
    snprintf(lock, len, "%s.lock", o->path);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            bool ok = write(fd, pid, (size_t)n) == n;
            if (close(fd) != 0 || !ok) {
                unlink(lock);
                break;
            }
            o->lock = lock;
            cleanup_add(lock);
            return 0;
        }
        if (errno != EEXIST)
            break;
        char text[32];
        long pid = read_head(lock, text, sizeof text) > 0 ? strtol(text, NULL, 10) : 0;
        if (alive(pid)) {
            fprintf(stderr,
                    "%s: %s is being written by another run (process %ld holds %s); wait for "
                    "it, or choose another %s\n",
                    cmd, o->path, pid, lock, o->option);
            free(lock);
            return 1;
        }
        fprintf(stderr, "%s: taking over the stale lock %s of process %ld, which no longer runs\n",
                cmd, lock, pid);
        unlink(lock);
    }
    fprintf(stderr, "%s: cannot create the lock %s: %s\n", cmd, lock, strerror(errno));
    free(lock);
    return 1;
}

/* Removes "<base>.tmp.<pid>" and "<base>.tmp.<pid>.*" of processes that no longer run. */
static void remove_orphans(const struct output *o, const char *cmd)
{
    char *dir = dir_of(o->path);
    const char *slash = strrchr(o->path, '/');
    const char *base = slash ? slash + 1 : o->path;
    size_t blen = strlen(base);
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strncmp(name, base, blen) != 0 || strncmp(name + blen, ".tmp.", 5) != 0)
            continue;
        const char *digits = name + blen + 5;
        char *end = NULL;
        long pid = strtol(digits, &end, 10);
        if (end == digits || (*end != '\0' && *end != '.') || pid <= 0 || pid == (long)getpid() ||
            alive(pid))
            continue;
        size_t len = strlen(dir) + strlen(name) + 2;
        char *full = malloc(len);
        if (!full)
            break;
        snprintf(full, len, "%s%s%s", slash ? dir : "", slash ? "/" : "", name);
        if (unlink(full) == 0)
            fprintf(stderr,
                    "%s: removed %s, a temporary file left by process %ld, which no longer "
                    "runs\n",
                    cmd, full, pid);
        free(full);
    }
    if (d)
        closedir(d);
    free(dir);
}

int outputs_claim(struct outputs *os, const char *cmd, const struct input *inputs, size_t ninputs,
                  bool force)
{
    char err[4096 * 2 + 200];
    int rc = outputs_check(os, inputs, ninputs, force, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return rc;
    }
    for (size_t k = 0; k < os->n; k++) {
        if (lock_one(&os->o[k], cmd) != 0) {
            outputs_release(os);
            return 1;
        }
    }
    for (size_t k = 0; k < os->n; k++)
        remove_orphans(&os->o[k], cmd);
    return 0;
}

void outputs_release(struct outputs *os)
{
    for (size_t k = 0; k < os->n; k++) {
        if (os->o[k].lock) {
            cleanup_drop(os->o[k].lock);
            unlink(os->o[k].lock);
            free(os->o[k].lock);
            os->o[k].lock = NULL;
        }
    }
}

int outfile_open(struct outfile *o, const char *path, char *err, size_t err_size)
{
    memset(o, 0, sizeof *o);
    o->path = path;
    if (strcmp(path, "-") == 0) {
        o->f = stdout;
        return 0;
    }
    if (snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld.XXXXXX", path, (long)getpid()) >=
        (int)sizeof o->tmp) {
        snprintf(err, err_size, "cannot write %s: the path is too long", path);
        o->tmp[0] = '\0';
        return -1;
    }
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        snprintf(err, err_size, "cannot write %s: cannot create a temporary file beside it: %s",
                 path, strerror(errno));
        o->tmp[0] = '\0';
        return -1;
    }
    /* mkstemp makes the file 0600; give it the mode a plain fopen would. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0 || !(o->f = fdopen(fd, "w"))) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(o->tmp);
        o->tmp[0] = '\0';
        return -1;
    }
    cleanup_add(o->tmp);
    return 0;
}

int outfile_commit(struct outfile *o, char *err, size_t err_size)
{
    if (!o->f)
        return 0;
    if (!o->tmp[0]) { /* standard output */
        bool bad = fflush(o->f) != 0 || ferror(o->f);
        o->f = NULL;
        if (bad) {
            snprintf(err, err_size, "cannot write the standard output: %s", strerror(errno));
            return -1;
        }
        return 0;
    }
    bool bad = fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0;
    int saved_errno = errno;
    if (fclose(o->f) != 0 && !bad) {
        saved_errno = errno;
        bad = true;
    }
    o->f = NULL;
    if (!bad && rename(o->tmp, o->path) != 0) {
        saved_errno = errno;
        bad = true;
    }
    if (bad) {
        snprintf(err, err_size, "cannot write %s: %s", o->path, strerror(saved_errno));
        unlink(o->tmp);
    }
    /* After the rename: a signal before it still removes the temporary file. */
    cleanup_drop(o->tmp);
    o->tmp[0] = '\0';
    return bad ? -1 : 0;
}

void outfile_abort(struct outfile *o)
{
    if (o->f && o->tmp[0])
        fclose(o->f);
    if (o->tmp[0]) {
        unlink(o->tmp);
        cleanup_drop(o->tmp);
    }
    o->f = NULL;
    o->tmp[0] = '\0';
}
