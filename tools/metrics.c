/*
 * metrics.c: see metrics.h.
 */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "outputs.h"

/* Reads a whole file into memory (NULL with *missing set if it does not exist). */
static char *slurp(const char *path, bool *missing)
{
    *missing = false;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *missing = errno == ENOENT;
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

bool metrics_field(const char *line, const char *key, double *out)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p)
        return false;
    p += strlen(pat);
    char *end = NULL;
    double v = strtod(p, &end);
    if (end == p)
        return false;
    *out = v;
    return true;
}

/* Calls fn for each line of text (without the newline, NUL-terminated in place). */
static void each_line(char *text, void (*fn)(char *line, void *user), void *user)
{
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        fn(p, user);
        if (!nl)
            break;
        *nl = '\n';
        p = nl + 1;
    }
}

struct keep {
    FILE *f;
    int64_t max_step;
};

static void keep_line(char *line, void *user)
{
    struct keep *k = user;
    double step;
    if (line[0] == '{' && metrics_field(line, "step", &step) && step <= (double)k->max_step)
        fprintf(k->f, "%s\n", line);
}

int metrics_open(struct metrics *m, const char *path, int64_t keep_until_step, char *err,
                 size_t err_size)
{
    m->f = NULL;
    m->fields = 0;
    if (!path)
        return 0;
    char *old = NULL;
    bool missing = true;
    if (keep_until_step >= 0) {
        old = slurp(path, &missing);
        if (!old && !missing) {
            snprintf(err, err_size, "cannot read the metrics file %s: %s", path, strerror(errno));
            return -1;
        }
    }
    /* The records kept (none for a new run) replace the file atomically; the run appends. */
    struct outfile out;
    int rc = outfile_open(&out, path, err, err_size);
    if (rc == 0 && old) {
        struct keep k = {out.f, keep_until_step};
        each_line(old, keep_line, &k);
    }
    free(old);
    if (rc == 0)
        rc = outfile_commit(&out, err, err_size);
    if (rc == 0 && !(m->f = fopen(path, "a"))) {
        snprintf(err, err_size, "cannot write the metrics file %s: %s", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

void metrics_close(struct metrics *m)
{
    if (m->f)
        fclose(m->f);
    m->f = NULL;
}

void metrics_begin(struct metrics *m, const char *type)
{
    if (!m->f)
        return;
    m->fields = 0;
    fputc('{', m->f);
    metrics_str(m, "type", type);
}

static void key(struct metrics *m, const char *k)
{
    if (m->fields++)
        fputc(',', m->f);
    json_string(m->f, k);
    fputc(':', m->f);
}

void metrics_int(struct metrics *m, const char *k, int64_t value)
{
    if (!m->f)
        return;
    key(m, k);
    fprintf(m->f, "%lld", (long long)value);
}

void metrics_num(struct metrics *m, const char *k, double value)
{
    if (!m->f)
        return;
    key(m, k);
    if (isfinite(value))
        fprintf(m->f, "%.9g", value);
    else
        fputs("null", m->f);
}

void metrics_str(struct metrics *m, const char *k, const char *value)
{
    if (!m->f)
        return;
    key(m, k);
    json_string(m->f, value);
}

void metrics_end(struct metrics *m)
{
    if (!m->f)
        return;
    fputs("}\n", m->f);
    fflush(m->f);
}

struct collect {
    int64_t max_step;
    struct metrics_point **points;
    size_t *count, *cap;
    bool failed;
};

static void collect_line(char *line, void *user)
{
    struct collect *c = user;
    bool train = strstr(line, "\"type\":\"train\"") != NULL;
    bool eval = strstr(line, "\"type\":\"eval\"") != NULL;
    struct metrics_point p = {.eval = eval, .accuracy = NAN, .lr = NAN};
    double step;
    if ((!train && !eval) || !metrics_field(line, "step", &step) ||
        !metrics_field(line, "loss", &p.loss))
        return;
    p.step = (int64_t)step;
    if (c->max_step >= 0 && p.step > c->max_step)
        return;
    metrics_field(line, "accuracy", &p.accuracy);
    metrics_field(line, "lr", &p.lr);
    if (*c->count == *c->cap) {
        size_t cap = *c->cap ? *c->cap * 2 : 256;
        struct metrics_point *np = realloc(*c->points, cap * sizeof *np);
        if (!np) {
            c->failed = true;
            return;
        }
        *c->points = np;
        *c->cap = cap;
    }
    (*c->points)[(*c->count)++] = p;
}

int metrics_read(const char *path, int64_t max_step, struct metrics_point **points, size_t *count,
                 size_t *cap)
{
    bool missing;
    char *text = slurp(path, &missing);
    if (!text)
        return missing ? 0 : -1;
    struct collect c = {max_step, points, count, cap, false};
    each_line(text, collect_line, &c);
    free(text);
    return c.failed ? -1 : 0;
}
