/*
 * outpath.c: see outpath.h.
 */
#include "outpath.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The temporary file a signal removes, and the handlers it replaced. A program-wide state:
 * signals are. */
static char signal_tmp[4200];
static volatile sig_atomic_t signal_armed;
static const int signals[] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction saved[3];

static void on_signal(int sig)
{
    if (signal_armed)
        unlink(signal_tmp);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void disarm(void)
{
    if (!signal_armed)
        return;
    signal_armed = 0;
    for (int i = 0; i < 3; i++)
        sigaction(signals[i], &saved[i], NULL);
}

void outfile_clean_on_signal(struct outfile *o)
{
    if (!o->f || !o->tmp[0] || signal_armed)
        return;
    memcpy(signal_tmp, o->tmp, sizeof signal_tmp);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++)
        sigaction(signals[i], &sa, &saved[i]);
    signal_armed = 1;
}

static bool is_stdout(const char *path)
{
    return strcmp(path, "-") == 0;
}

/* The directory part of path ("." when it has none). */
static void dir_of(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, size, ".");
    else if (slash == path)
        snprintf(out, size, "/");
    else
        snprintf(out, size, "%.*s", (int)(slash - path), path);
}

int outpath_check(const char *path, const char *const *inputs, size_t n, outpath_is_mine_fn is_mine,
                  bool force, char *err, size_t err_size)
{
    if (is_stdout(path))
        return 0;
    if (!*path) {
        snprintf(err, err_size, "the output path is empty");
        return -1;
    }
    struct stat out, in;
    bool exists = stat(path, &out) == 0;
    if (!exists && errno != ENOENT) {
        snprintf(err, err_size, "cannot use %s: %s", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; exists && i < n; i++) {
        if (inputs[i] && stat(inputs[i], &in) == 0 && in.st_dev == out.st_dev &&
            in.st_ino == out.st_ino) {
            snprintf(err, err_size, "%s is an input of this run (%s); refusing to overwrite it",
                     path, inputs[i]);
            return -1;
        }
    }
    if (exists && S_ISDIR(out.st_mode)) {
        snprintf(err, err_size, "%s is a directory; give a file name", path);
        return -1;
    }
    if (exists && !S_ISREG(out.st_mode)) {
        snprintf(err, err_size, "%s exists and is not a regular file; refusing to replace it",
                 path);
        return -1;
    }
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    struct stat ds;
    if (stat(dir, &ds) != 0 || !S_ISDIR(ds.st_mode)) {
        snprintf(err, err_size, "cannot write %s: the directory %s does not exist", path, dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, err_size, "cannot write %s: the directory %s is not writable", path, dir);
        return -1;
    }
    if (exists && out.st_size > 0 && !force && !(is_mine && is_mine(path))) {
        snprintf(err, err_size,
                 "%s exists and is not an output of this command; refusing to replace it "
                 "(--force replaces it)",
                 path);
        return -1;
    }
    return 0;
}

int outfile_open(struct outfile *o, const char *path, char *err, size_t err_size)
{
    memset(o, 0, sizeof *o);
    o->path = path;
    if (is_stdout(path)) {
        o->f = stdout;
        return 0;
    }
    if (snprintf(o->tmp, sizeof o->tmp, "%s.XXXXXX", path) >= (int)sizeof o->tmp) {
        snprintf(err, err_size, "the output path is too long");
        return -1;
    }
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        snprintf(err, err_size, "cannot create a temporary file beside %s: %s", path,
                 strerror(errno));
        o->tmp[0] = '\0';
        return -1;
    }
    /* mkstemp makes the file 0600; give it the mode a plain fopen would. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0 || !(o->f = fdopen(fd, "w"))) {
        snprintf(err, err_size, "cannot write %s: %s", o->tmp, strerror(errno));
        close(fd);
        unlink(o->tmp);
        o->tmp[0] = '\0';
        return -1;
    }
    return 0;
}

static int commit(struct outfile *o, char *err, size_t err_size)
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
    int saved = errno;
    bad = (fclose(o->f) != 0) || bad;
    o->f = NULL;
    if (!bad && rename(o->tmp, o->path) != 0) {
        saved = errno;
        bad = true;
    }
    if (bad) {
        snprintf(err, err_size, "cannot write %s: %s", o->path, strerror(saved));
        unlink(o->tmp);
        o->tmp[0] = '\0';
        return -1;
    }
    o->tmp[0] = '\0';
    return 0;
}

int outfile_commit(struct outfile *o, char *err, size_t err_size)
{
    int rc = commit(o, err, err_size);
    disarm(); /* after the rename: a signal before it still removes the temporary file */
    return rc;
}

void outfile_abort(struct outfile *o)
{
    disarm();
    if (o->f && o->tmp[0])
        fclose(o->f);
    if (o->tmp[0])
        unlink(o->tmp);
    o->f = NULL;
    o->tmp[0] = '\0';
}
