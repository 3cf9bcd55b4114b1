/*
 * args.h: option parsing for the cltrain subcommands. Each command describes its options in
 * a table; args_parse fills the destinations and reports the first problem (an unknown
 * option, a missing value, a malformed number) as one line on stderr.
 *
 *     int64_t epochs = 1;
 *     struct opt opts[] = {
 *         {"epochs", OPT_INT, &epochs, "N", "passes over the training set"},
 *     };
 *     int rc = args_parse("cltrain train", argc, argv, opts, 1);  // 0, or 2 for bad usage
 */
#ifndef CLTRAIN_TOOLS_ARGS_H
#define CLTRAIN_TOOLS_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum opt_type {
    OPT_STRING, /* const char *: the argument itself */
    OPT_INT,    /* int64_t: a decimal integer, no sign for counts (see min) */
    OPT_FLOAT,  /* double: a finite number */
    OPT_FLAG,   /* bool: set to true, takes no value */
};

struct opt {
    const char *name; /* without the leading "--" */
    enum opt_type type;
    void *dest;
    const char *value; /* the value's name in the usage text, e.g. "N"; NULL for flags */
    const char *help;
    double min, max; /* OPT_INT and OPT_FLOAT: accepted range (both 0: any) */
    bool seen;       /* set by args_parse when the option was given */
};

/* The options every command that runs on a device has: --device SEL and --verbose. */
struct opt opt_device(const char **dest);
struct opt opt_verbose(bool *dest);

/* Parses argv (the arguments after the command's name): "--name VALUE", "--name=VALUE" and
 * "--flag". Every argument must be an option of the table. "--help" and "-h" print the usage
 * to stdout and return -1. Returns 0, or 2 after one line on stderr naming the problem and
 * a hint to run --help. */
int args_parse(const char *cmd, int argc, char **argv, struct opt *opts, size_t n);

/* A command's parse: args_parse, and on --help the usage on stdout. Returns true when the
 * command should go on; otherwise *status is what it returns now (0 after --help, 2 for bad
 * usage). */
bool args_command(const char *cmd, const char *summary, int argc, char **argv, struct opt *opts,
                  size_t n, int *status);

/* Prints "usage: CMD [OPTIONS]" and a line per option. */
void args_usage(FILE *f, const char *cmd, const char *summary, const struct opt *opts, size_t n);

/* The table entry of an option by name, or NULL. */
struct opt *args_find(struct opt *opts, size_t n, const char *name);

/* Parses a whole decimal integer or finite number; false if s is anything else. */
bool args_int(const char *s, int64_t *out);
bool args_float(const char *s, double *out);

#endif
