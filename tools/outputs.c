/*
 * outputs.c: see outputs.h.
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

static const char *const kind_names[] = {"checkpoint", "metrics file", "plot"};

void outputs_add(struct outputs *os, const char *path, const char *option, enum output_kind kind)
{
    if (!path || os->n == OUTPUTS_MAX)
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

/* The checks that need no lock: inputs, kinds, writability. 0, 1 or 2. */
static int check_one(const struct outputs *os, size_t k, const char *cmd,
                     const struct input *inputs, size_t ninputs, bool force)
{
    const struct output *o = &os->o[k];
    if (!*o->path) {
        fprintf(stderr, "%s: %s needs a file name\n", cmd, o->option);
        return 2;
    }
    struct stat sb;
    bool exists = stat(o->path, &sb) == 0;
    for (size_t i = 0; exists && i < ninputs; i++) {
        struct stat in;
        if (inputs[i].out_may_be_it && o->kind == OUTPUT_CHECKPOINT)
            continue;
        if (inputs[i].path && stat(inputs[i].path, &in) == 0 && same_file(&sb, &in)) {
            fprintf(stderr,
                    "%s: %s %s is the file %s reads (%s): refusing to overwrite an input of "
                    "the run\n",
                    cmd, o->option, o->path, inputs[i].option, inputs[i].path);
            return 2;
        }
    }
    for (size_t j = 0; exists && j < k; j++) {
        struct stat other;
        if (stat(os->o[j].path, &other) == 0 && same_file(&sb, &other)) {
            fprintf(stderr, "%s: %s and %s name the same file %s\n", cmd, os->o[j].option,
                    o->option, o->path);
            return 2;
        }
    }
    for (size_t j = 0; j < k; j++)
        if (strcmp(os->o[j].path, o->path) == 0) {
            fprintf(stderr, "%s: %s and %s name the same file %s\n", cmd, os->o[j].option,
                    o->option, o->path);
            return 2;
        }
    if (exists && !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "%s: %s %s exists and is not a regular file\n", cmd, o->option, o->path);
        return 2;
    }
    if (exists && !force && !outputs_is_own(o->path, o->kind)) {
        fprintf(stderr,
                "%s: %s %s exists and is not a cltrain %s: refusing to replace it "
                "(--force replaces it)\n",
                cmd, o->option, o->path, kind_names[o->kind]);
        return 2;
    }
    char *dir = dir_of(o->path);
    if (!dir) {
        fprintf(stderr, "%s: out of memory\n", cmd);
        return 1;
    }
    struct stat db;
    int rc = 0;
    if (stat(dir, &db) != 0 || !S_ISDIR(db.st_mode)) {
        fprintf(stderr, "%s: cannot write %s %s: the directory %s does not exist\n", cmd, o->option,
                o->path, dir);
        rc = 1;
    } else if (access(dir, W_OK | X_OK) != 0 || (exists && access(o->path, W_OK) != 0)) {
        fprintf(stderr, "%s: cannot write %s %s: %s is not writable\n", cmd, o->option, o->path,
                exists ? o->path : dir);
        rc = 1;
    }
    free(dir);
    return rc;
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
    for (size_t k = 0; k < os->n; k++) {
        int rc = check_one(os, k, cmd, inputs, ninputs, force);
        if (rc != 0)
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
            unlink(os->o[k].lock);
            free(os->o[k].lock);
            os->o[k].lock = NULL;
        }
    }
}
