/*
 * tune.h: what the tuner's files share (tune.c: the table's lookups and the choice;
 * tune_store.c: the table's entries and its cache entry; tune_time.c: timing the candidates
 * of one shape; tune_clblast.c: CLBlast's parameters).
 */
#ifndef CLTRAIN_TUNE_H
#define CLTRAIN_TUNE_H

#include "gemm_own.h"
#include "internal.h"

/* The parameters of CLBlast's Xgemm kernel, in the order of clt__xgemm_names. */
#define CLT__XGEMM_PARAMS 16
extern const char *const clt__xgemm_names[CLT__XGEMM_PARAMS];

/* One shape the tuner knows: its record and what serves it. */
struct clt__tune_entry {
    struct clt_gemm_tuning t; /* the public record */
    enum clt__gemm_impl impl;
    struct clt__gemm_config cfg;
    double load; /* the load average per core when it was timed; < 0 not known */
};

/* A set of shapes (tune.c, shapes_add). */
struct clt__shapes {
    struct clt_gemm_shape *s;
    size_t n, cap;
};

/* A device's tuner (dev->tune). */
struct clt__tune {
    bool enabled;          /* CLTRAIN_TUNE is not 0 */
    double budget;         /* CLTRAIN_TUNE_BUDGET's seconds; < 0: the session kind's default */
    double session_budget; /* the seconds of the session in progress */
    struct clt__tune_entry *entries;
    size_t count, cap;
    bool dirty;        /* entries not yet written */
    bool warned_store; /* the cache could not be written: said once */
    int session;       /* > 0 inside clt__tune_begin/end */
    bool timing;       /* candidates are being timed: a miss they meet gets the default */
    double session_start;
    bool budget_said;
    char path[1100]; /* empty: no cache */
    char *identity;
    const char *test_name;
    clt__gemm_fn test_fn;
    bool recording;   /* clt__tune_record_start/stop */
    double test_load; /* tests: > 0 stands for the load average per core (0: the system's) */
    uint32_t test_budget_candidates; /* tests: the budget runs out after this many candidates
                                      * of a shape (0: the clock decides) */
    /* CLBlast's Xgemm parameters on this device (tune_clblast.c): decided once per cache
     * entry; xgemm_set false keeps CLBlast's own. */
    bool xgemm_decided, xgemm_set;
    uint32_t xgemm[CLT__XGEMM_PARAMS];
    uint32_t xgemm_space_limit; /* tests: try at most this many sets (0: all) */
    bool xgemm_force;           /* tests: tune on a CPU and where CLBlast is far behind */
    uint32_t xgemm_rep;         /* tests: the representative size (0: REP_SIZE) */
    struct clt__shapes rec;     /* the shapes met since clt__tune_record_start */
    struct clt__shapes said;    /* the shapes served by their class this session, logged once */
};

/* Most entries a device's table holds, and most shapes a set of them. */
#define CLT__TUNE_MAX_ENTRIES 4096
/* The first line of a cache entry's payload, and part of its identity. */
#define CLT__TUNE_MAGIC "cltrain-tune 1"

/* tune_store.c: a new zeroed entry at the end of tu's table; NULL when the table is full or
 * cannot grow. */
struct clt__tune_entry *clt__tune_add(struct clt__tune *tu);

/* The word a 16-bit entry's shape line ends with ("fp16", "bf16"); "" for fp32. */
const char *clt__tune_storage_word(uint32_t storage);

/* Parses a candidate's name as clt__tune_impl_name writes it ("own CONFIG", "widen",
 * "clblast", "host <this build's library>"); false for anything else. */
bool clt__tune_parse_choice(const char *name, enum clt__gemm_impl *impl,
                            struct clt__gemm_config *cfg);

/* Reads the device's cache entry into tu (nothing when there is none; a corrupt or foreign
 * one is logged and leaves the table empty), and hands CLBlast its stored parameters. */
void clt__tune_load(struct clt_device *dev, struct clt__tune *tu);

/* Writes tu's table when it changed (one warning when the directory cannot be written). */
void clt__tune_save(struct clt_device *dev, struct clt__tune *tu);

/* Seconds of a monotonic clock. */
double clt__tune_now(void);

/* Whether the session's budget is spent once `timed` candidates of a shape are (the clock,
 * or tu->test_budget_candidates). */
bool clt__tune_budget_spent(const struct clt__tune *tu, uint32_t timed);

/* The name a candidate has in reports and in the cache entry: "own <configuration>",
 * "clblast", "host <library>" (cfg is read for the own kernel only). */
void clt__tune_impl_name(enum clt__gemm_impl impl, const struct clt__gemm_config *cfg, char *out,
                         size_t size);

/* Checks and times every candidate for a resolved shape into e (its candidates, the winner's
 * name, implementation and configuration; e->t.partial when the budget ran out among them).
 * The candidates that earlier, a partial entry of the shape (NULL: none), lists are carried
 * over with its figures instead of being timed again. CLT_OK when one won; blocks. */
enum clt_status clt__tune_time_shape(struct clt_device *dev, const struct clt_gemm_shape *g,
                                     const struct clt__tune_entry *earlier,
                                     struct clt__tune_entry *e);

/* Checks and times one implementation (fn, or the own kernel in configuration own when fn
 * is NULL) at a resolved shape as the tuner times a candidate, into c (its gflops 0 when it
 * failed or computed a wrong result). Blocks. */
enum clt_status clt__tune_time_one(struct clt_device *dev, const struct clt_gemm_shape *g,
                                   clt__gemm_fn fn, const struct clt__gemm_config *own,
                                   struct clt_gemm_candidate *c);

/* CLBlast's Xgemm parameters (tune_clblast.c). clt__xgemm_decide times a few parameter sets
 * once per device where CLBlast serves and keeps the fastest (or CLBlast's own) in tu;
 * clt__xgemm_apply hands a kept set to CLBlast (at load). The cache entry holds them as one
 * line, written and parsed by clt__xgemm_format and clt__xgemm_parse. */
void clt__xgemm_decide(struct clt_device *dev);
enum clt_status clt__xgemm_apply(struct clt_device *dev);
void clt__xgemm_format(const struct clt__tune *tu, char *out, size_t size);
bool clt__xgemm_parse(struct clt__tune *tu, const char *line);

#endif /* CLTRAIN_TUNE_H */
