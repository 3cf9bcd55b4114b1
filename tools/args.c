/*
 * args.c: see args.h.
 */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool args_int(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || end == s)
        return false;
    *out = v;
    return true;
}

bool args_float(const char *s, double *out)
{
    if (!s || !*s)
        return false;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end != '\0' || end == s || !isfinite(v))
        return false;
    *out = v;
    return true;
}

struct opt *args_find(struct opt *opts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

static bool in_range(const struct opt *o, double v)
{
    return (o->min == 0.0 && o->max == 0.0) || (v >= o->min && v <= o->max);
}

/* Stores one value; false after a message. */
static bool store(const char *cmd, struct opt *o, const char *value)
{
    int64_t i;
    double d;
    switch (o->type) {
    case OPT_STRING:
        *(const char **)o->dest = value;
        return true;
    case OPT_INT:
        if (!args_int(value, &i)) {
            fprintf(stderr, "%s: --%s: \"%s\" is not an integer\n", cmd, o->name, value);
            return false;
        }
        if (!in_range(o, (double)i)) {
            fprintf(stderr, "%s: --%s: %s is out of range (%.0f to %.0f)\n", cmd, o->name, value,
                    o->min, o->max);
            return false;
        }
        *(int64_t *)o->dest = i;
        return true;
    case OPT_FLOAT:
        if (!args_float(value, &d)) {
            fprintf(stderr, "%s: --%s: \"%s\" is not a number\n", cmd, o->name, value);
            return false;
        }
        if (!in_range(o, d)) {
            fprintf(stderr, "%s: --%s: %s is out of range (%g to %g)\n", cmd, o->name, value,
                    o->min, o->max);
            return false;
        }
        *(double *)o->dest = d;
        return true;
    case OPT_FLAG:
        *(bool *)o->dest = true;
        return true;
    }
    return false;
}

int args_parse(const char *cmd, int argc, char **argv, struct opt *opts, size_t n)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return -1;
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            fprintf(stderr,
                    "%s: unexpected argument \"%s\" (options start with --; see "
                    "--help)\n",
                    cmd, a);
            return 2;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name) {
            fprintf(stderr, "%s: unknown option \"%.70s\" (see --help)\n", cmd, a);
            return 2;
        }
        memcpy(name, a + 2, len);
        name[len] = '\0';
        struct opt *o = args_find(opts, n, name);
        if (!o) {
            fprintf(stderr, "%s: unknown option \"--%s\" (see --help)\n", cmd, name);
            return 2;
        }
        const char *value = NULL;
        if (o->type == OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "%s: --%s takes no value\n", cmd, name);
                return 2;
            }
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "%s: --%s needs a value (%s)\n", cmd, name, o->value ? o->value : "");
            return 2;
        }
        if (!store(cmd, o, value))
            return 2;
        o->seen = true;
    }
    return 0;
}

void args_usage(FILE *f, const char *cmd, const char *summary, const struct opt *opts, size_t n)
{
    fprintf(f, "usage: %s [OPTIONS]\n%s\n\noptions:\n", cmd, summary);
    for (size_t i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].value ? " " : "",
                 opts[i].value ? opts[i].value : "");
        fprintf(f, "  %-26s %s\n", left, opts[i].help);
    }
}

bool args_command(const char *cmd, const char *summary, int argc, char **argv, struct opt *opts,
                  size_t n, int *status)
{
    int rc = args_parse(cmd, argc, argv, opts, n);
    if (rc < 0)
        args_usage(stdout, cmd, summary, opts, n);
    *status = rc < 0 ? 0 : rc;
    return rc == 0;
}

struct opt opt_device(const char **dest)
{
    struct opt o = {"device", OPT_STRING, dest, "SEL", NULL, 0, 0, false};
    o.help = "pocl, intel, amd, gpu, cpu, P:D... (default: CLTRAIN_DEVICE, else the first GPU)";
    return o;
}

struct opt opt_verbose(bool *dest)
{
    struct opt o = {"verbose", OPT_FLAG, dest, NULL, NULL, 0, 0, false};
    o.help = "log the library's informational messages";
    return o;
}
