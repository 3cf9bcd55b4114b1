/*
 * progress.c: see progress.h.
 */
#include "progress.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double progress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void progress_init(struct progress *p, FILE *f, uint64_t first_step, uint64_t total_steps,
                   int64_t epochs)
{
    memset(p, 0, sizeof *p);
    p->f = f;
    p->tty = isatty(fileno(f));
    p->interval = p->tty ? 0.1 : 10.0;
    p->start = progress_now();
    p->last_print = -1e30;
    p->first_step = first_step;
    p->total_steps = total_steps;
    p->epochs = epochs;
    p->unit = "samples";
}

void progress_duration(double s, char *buf, size_t size)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, size, "?");
    else if (s >= 3600)
        snprintf(buf, size, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60)
        snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, size, "%.0fs", s);
}

void progress_show(struct progress *p, int64_t epoch, uint64_t step, double loss, double accuracy,
                   bool force)
{
    double now = progress_now();
    if (!force && now - p->last_print < p->interval)
        return;
    char eta[32] = "?";
    if (step > p->first_step && p->total_steps >= step)
        progress_duration((now - p->start) / (double)(step - p->first_step) *
                              (double)(p->total_steps - step),
                          eta, sizeof eta);
    char acc[32] = "";
    if (accuracy >= 0)
        snprintf(acc, sizeof acc, "  acc %.4f", accuracy);
    char lossbuf[32] = "-";
    if (!isnan(loss))
        snprintf(lossbuf, sizeof lossbuf, "%.4f", loss);
    char scale[48] = "";
    if (p->scale > 0)
        snprintf(scale, sizeof scale, "  scale %.9g", p->scale);
    char rate[48] = "";
    if (p->rate > 0)
        snprintf(rate, sizeof rate, "  %.0f %s/s", p->rate, p->unit);
    char line[256];
    snprintf(line, sizeof line, "epoch %lld/%lld  step %llu/%llu  loss %s%s%s%s  ETA %s",
             (long long)epoch, (long long)p->epochs, (unsigned long long)step,
             (unsigned long long)p->total_steps, lossbuf, scale, acc, rate, eta);
    if (p->tty) {
        fprintf(p->f, "\r%s\033[K", line);
        p->live = true;
    } else {
        fprintf(p->f, "%s\n", line);
    }
    fflush(p->f);
    p->last_print = now;
}

void progress_end(struct progress *p)
{
    if (p->live) {
        fputc('\n', p->f);
        fflush(p->f);
    }
    p->live = false;
}

void progress_note(struct progress *p, const char *fmt, ...)
{
    if (p->live)
        fputs("\r\033[K", p->f);
    p->live = false;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->f, fmt, ap);
    va_end(ap);
    fputc('\n', p->f);
    fflush(p->f);
}
