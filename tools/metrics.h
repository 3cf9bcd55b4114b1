/*
 * metrics.h: the training log as JSON Lines: one JSON object per line, written and flushed as
 * it happens, so a run that dies leaves every record before it. Records made by cltrain:
 *
 *   {"type":"train","epoch":1,"step":50,"loss":0.61,"lr":0.002,"grad_norm":1.2,
 *    "loss_scale":1,"skipped_steps":0,"samples_per_second":900.5,"elapsed":12.3}
 *   {"type":"eval","epoch":1,"step":469,"loss":0.35,"accuracy":0.87,"examples":10000,
 *    "elapsed":170.2}
 *   {"type":"test", ...as "eval"...}   the test set, once at the end, when there is one
 *
 * Non-finite numbers are written as null. Keys and the record kinds are listed in
 * docs/training.md.
 */
#ifndef CLTRAIN_TOOLS_METRICS_H
#define CLTRAIN_TOOLS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct metrics {
    FILE *f;    /* NULL: records are dropped */
    int fields; /* fields written in the current record */
};

/* Opens path for writing, replacing it (atomically, outputs.h) with an empty file or, with
 * keep_until_step >= 0, with the records of the existing file whose "step" is at most
 * keep_until_step (resuming a run); records are then appended. path NULL leaves m closed
 * (every call is then a no-op). 0, or -1 with a message in err. */
int metrics_open(struct metrics *m, const char *path, int64_t keep_until_step, char *err,
                 size_t err_size);
void metrics_close(struct metrics *m);

/* A record: begin, fields, end (which writes the newline and flushes). */
void metrics_begin(struct metrics *m, const char *type);
void metrics_int(struct metrics *m, const char *key, int64_t value);
void metrics_num(struct metrics *m, const char *key, double value);
void metrics_str(struct metrics *m, const char *key, const char *value);
void metrics_end(struct metrics *m);

/* One parsed record of a metrics file, for plots. */
struct metrics_point {
    bool eval;
    int64_t step;
    double loss;
    double accuracy; /* NAN when absent */
    double lr;       /* the learning rate of a train record; NAN when absent */
};

/* Finds `"key":` in one line of JSON Lines and parses the number after it; false if absent or
 * not a number. Understands only the flat objects metrics_* writes. */
bool metrics_field(const char *line, const char *key, double *out);

/* Reads the train and eval records of a metrics file with step <= max_step (all with -1),
 * appending to a growing array. Returns 0, or -1 if it cannot be read (missing is fine: 0). */
int metrics_read(const char *path, int64_t max_step, struct metrics_point **points, size_t *count,
                 size_t *cap);

#endif
