/*
 * progress.h: training progress on stderr. On a terminal, one live line rewritten in place
 * (\r) at most ten times a second; otherwise plain lines, at most one every few seconds, so
 * that CI logs stay readable. Notes (evaluations, checkpoints) always get a line of their own.
 *
 *   epoch 2/3  step 812/1407  loss 0.3121  acc 0.8812  4210 samples/s  ETA 1m12s
 *
 * An fp16 run adds its loss scale after the loss: "loss 0.3121  scale 65536".
 */
#ifndef CLTRAIN_TOOLS_PROGRESS_H
#define CLTRAIN_TOOLS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct progress {
    FILE *f;
    bool tty;          /* live line */
    bool live;         /* a live line is on screen now */
    double interval;   /* seconds between plain lines */
    double start;      /* time of progress_init */
    double last_print; /* time of the last line */
    uint64_t first_step, total_steps;
    int64_t epochs;
    double rate;      /* samples per second, set by the caller (0: unknown) */
    const char *unit; /* what a sample is called: "samples" (default) or "tokens" */
    double scale;     /* fp16's loss scale, shown when above 0 (set by the caller) */
};

/* Monotonic seconds. */
double progress_now(void);

/* Starts counting: the run goes from first_step to total_steps (global step numbers). */
void progress_init(struct progress *p, FILE *f, uint64_t first_step, uint64_t total_steps,
                   int64_t epochs);

/* Shows the state after `step` if a line is due (force: now). accuracy < 0: none known. */
void progress_show(struct progress *p, int64_t epoch, uint64_t step, double loss, double accuracy,
                   bool force);

/* A line of its own (clears the live line first). */
void progress_note(struct progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Ends the live line, if any. */
void progress_end(struct progress *p);

/* Writes a duration as "1h02m", "3m05s" or "12s" into buf. */
void progress_duration(double seconds, char *buf, size_t size);

#endif
