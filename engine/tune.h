/*
 * tune.h: what the tuner's two files share (tune.c: the table, its cache entry and the
 * choice; tune_time.c: timing the candidates of one shape).
 */
#ifndef CLTRAIN_TUNE_H
#define CLTRAIN_TUNE_H

#include "gemm_own.h"
#include "internal.h"

/* One shape the tuner knows: its record and what serves it. */
struct clt__tune_entry {
    struct clt_gemm_tuning t; /* the public record */
    enum clt__gemm_impl impl;
    struct clt__gemm_config cfg;
};

/* A device's tuner (dev->tune). */
struct clt__tune {
    bool enabled; /* CLTRAIN_TUNE is not 0 */
    double budget;
    struct clt__tune_entry *entries;
    size_t count, cap;
    bool dirty;        /* entries not yet written */
    bool warned_store; /* the cache could not be written: said once */
    int session;       /* > 0 inside clt__tune_begin/end */
    double session_start;
    bool budget_said;
    char path[1100]; /* empty: no cache */
    char *identity;
    const char *test_name;
    clt__gemm_fn test_fn;
    bool recording; /* clt__tune_record_start/stop */
    struct clt_gemm_shape *rec;
    size_t nrec, caprec;
};

/* Seconds of a monotonic clock. */
double clt__tune_now(void);

/* The name a candidate has in reports and in the cache entry: "own <configuration>",
 * "clblast", "host <library>" (cfg is read for the own kernel only). */
void clt__tune_impl_name(enum clt__gemm_impl impl, const struct clt__gemm_config *cfg, char *out,
                         size_t size);

/* Checks and times every candidate for a resolved shape into e (its candidates, the winner's
 * name, implementation and configuration). CLT_OK when one won; blocks. */
enum clt_status clt__tune_time_shape(struct clt_device *dev, const struct clt_gemm_shape *g,
                                     struct clt__tune_entry *e);

#endif /* CLTRAIN_TUNE_H */
