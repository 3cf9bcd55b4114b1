/*
 * tune_store.c: the tuner's table of entries and its persistence (tune.c chooses, tune_time.c
 * times): adding entries, the text payload of a device's cache entry (docs/formats.md, "GEMM
 * tuning entries") parsed and formatted, and loading and saving it through the cache
 * container (cache.c: magic, identity text, checksum; written through a temporary file, fsync
 * and rename). A corrupt or foreign entry is logged and ignored; its shapes are timed again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_own.h"
#include "internal.h"
#include "tune.h"

/* The word a 16-bit entry's shape line ends with; fp32 entries have none. */
const char *clt__tune_storage_word(uint32_t storage)
{
    return storage == CLT_PRECISION_FP16 ? "fp16" : storage == CLT_PRECISION_BF16 ? "bf16" : "";
}

struct clt__tune_entry *clt__tune_add(struct clt__tune *tu)
{
    if (tu->count == tu->cap) {
        size_t cap = tu->cap ? tu->cap * 2 : 32;
        if (cap > CLT__TUNE_MAX_ENTRIES)
            return NULL;
        struct clt__tune_entry *e = realloc(tu->entries, cap * sizeof *e);
        if (!e)
            return NULL;
        tu->entries = e;
        tu->cap = cap;
    }
    struct clt__tune_entry *e = &tu->entries[tu->count++];
    memset(e, 0, sizeof *e);
    return e;
}

bool clt__tune_parse_choice(const char *name, enum clt__gemm_impl *impl,
                            struct clt__gemm_config *cfg)
{
    if (strncmp(name, "own ", 4) == 0) {
        *impl = CLT__GEMM_IMPL_OWN;
        return clt__gemm_config_parse(name + 4, cfg);
    }
    if (strcmp(name, "widen") == 0) {
        *impl = CLT__GEMM_IMPL_WIDEN;
        return true;
    }
    if (strcmp(name, "clblast") == 0) {
        *impl = CLT__GEMM_IMPL_CLBLAST;
        return true;
    }
    char host[96];
    snprintf(host, sizeof host, "host %s", clt__gemm_host_name());
    if (strcmp(name, host) == 0) {
        *impl = CLT__GEMM_IMPL_HOST;
        return true;
    }
    return false;
}

/* Copies the rest of a line (after one space) into out; false when too long or empty. */
static bool rest_of_line(const char *p, char *out, size_t size)
{
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 0 || len >= size)
        return false;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

/* The payload, line by line:
 *   cltrain-tune 1
 *   clblast-xgemm default|NAME=V,...   (optional: CLBlast's Xgemm parameters, decided)
 *   shape TA TB M N K BATCH CANDIDATES [fp16|bf16]  (no storage word: fp32, as before it
 *                                                  existed)
 *   chosen NAME                        (in 16 bits: "own CONFIG" or "widen")
 *   load L                             (optional: load average per core when timed)
 *   partial                            (optional: the budget ran out among the candidates)
 *   cand STATUS WRONG GFLOPS NAME      (CANDIDATES times)
 * Anything else is a corrupt entry. */
static bool parse_payload(struct clt__tune *tu, const char *text)
{
    const char *p = text;
    size_t magic = strlen(CLT__TUNE_MAGIC);
    if (strncmp(p, CLT__TUNE_MAGIC "\n", magic + 1) != 0)
        return false;
    p += magic + 1;
    if (strncmp(p, "clblast-xgemm ", 14) == 0) {
        char line[512];
        if (!rest_of_line(p + 14, line, sizeof line) || !clt__xgemm_parse(tu, line))
            return false;
        p = strchr(p, '\n') + 1;
    }
    while (*p) {
        int ta, tb, used = 0;
        long long m, n, k, batch;
        unsigned cands;
        uint32_t storage = CLT_PRECISION_FP32;
        if (sscanf(p, "shape %d %d %lld %lld %lld %lld %u%n", &ta, &tb, &m, &n, &k, &batch, &cands,
                   &used) != 7 ||
            used == 0)
            return false;
        if (strncmp(p + used, " fp16\n", 6) == 0 || strncmp(p + used, " bf16\n", 6) == 0) {
            storage = p[used + 1] == 'f' ? CLT_PRECISION_FP16 : CLT_PRECISION_BF16;
            used += 5;
        }
        if (p[used] != '\n')
            return false;
        used++;
        if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1) || m <= 0 || n <= 0 || k <= 0 ||
            batch <= 0 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX || batch > INT32_MAX ||
            cands > CLT_GEMM_MAX_CANDIDATES)
            return false;
        p += used;
        struct clt__tune_entry *e = clt__tune_add(tu);
        if (!e)
            return false;
        e->t = (struct clt_gemm_tuning){.trans_a = ta,
                                        .trans_b = tb,
                                        .m = m,
                                        .n = n,
                                        .k = k,
                                        .batch = batch,
                                        .storage = storage,
                                        .candidate_count = cands};
        if (strncmp(p, "chosen ", 7) != 0 ||
            !rest_of_line(p + 7, e->t.chosen, sizeof e->t.chosen) ||
            !clt__tune_parse_choice(e->t.chosen, &e->impl, &e->cfg))
            return false;
        /* fp32 candidates serve only fp32 entries; the widened path only 16-bit ones. */
        if ((storage == CLT_PRECISION_FP32 && e->impl == CLT__GEMM_IMPL_WIDEN) ||
            (storage != CLT_PRECISION_FP32 && e->impl != CLT__GEMM_IMPL_OWN &&
             e->impl != CLT__GEMM_IMPL_WIDEN))
            return false;
        p = strchr(p, '\n');
        if (!p)
            return false;
        p++;
        e->load = -1;
        if (strncmp(p, "load ", 5) == 0) {
            double l;
            used = 0;
            if (sscanf(p, "load %lf\n%n", &l, &used) != 1 || used == 0 || !(l >= 0 && l < 1e6))
                return false;
            e->load = l;
            p += used;
        }
        if (strncmp(p, "partial\n", 8) == 0) {
            e->t.partial = true;
            p += 8;
        }
        for (unsigned i = 0; i < cands; i++) {
            struct clt_gemm_candidate *c = &e->t.candidates[i];
            int status, wrong;
            double gflops;
            used = 0;
            if (sscanf(p, "cand %d %d %lf %n", &status, &wrong, &gflops, &used) != 3 || used == 0 ||
                status > 0 || status < -100 || (wrong != 0 && wrong != 1) ||
                !(gflops >= 0 && gflops < 1e9) || !rest_of_line(p + used, c->name, sizeof c->name))
                return false;
            c->status = (enum clt_status)status;
            c->wrong = wrong;
            c->gflops = gflops;
            p = strchr(p, '\n');
            if (!p)
                return false;
            p++;
        }
    }
    return true;
}

static char *format_payload(const struct clt__tune *tu, size_t *size)
{
    size_t cap = 512 + tu->count * (160 + CLT_GEMM_MAX_CANDIDATES * 140), len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    len += (size_t)snprintf(out + len, cap - len, "%s\n", CLT__TUNE_MAGIC);
    if (tu->xgemm_decided) {
        char x[400];
        clt__xgemm_format(tu, x, sizeof x);
        len += (size_t)snprintf(out + len, cap - len, "clblast-xgemm %s\n", x);
    }
    for (size_t i = 0; i < tu->count; i++) {
        const struct clt_gemm_tuning *t = &tu->entries[i].t;
        if (tu->entries[i].impl == CLT__GEMM_IMPL_TEST)
            continue; /* another process could not run it */
        len += (size_t)snprintf(out + len, cap - len,
                                "shape %d %d %lld %lld %lld %lld %u%s%s\n"
                                "chosen %s\n",
                                t->trans_a, t->trans_b, (long long)t->m, (long long)t->n,
                                (long long)t->k, (long long)t->batch, t->candidate_count,
                                t->storage != CLT_PRECISION_FP32 ? " " : "",
                                clt__tune_storage_word(t->storage), t->chosen);
        if (tu->entries[i].load >= 0)
            len += (size_t)snprintf(out + len, cap - len, "load %.2f\n", tu->entries[i].load);
        if (t->partial)
            len += (size_t)snprintf(out + len, cap - len, "partial\n");
        for (uint32_t j = 0; j < t->candidate_count; j++)
            len += (size_t)snprintf(out + len, cap - len, "cand %d %d %.3f %s\n",
                                    (int)t->candidates[j].status, t->candidates[j].wrong,
                                    t->candidates[j].gflops, t->candidates[j].name);
    }
    *size = len;
    return out;
}

void clt__tune_load(struct clt_device *dev, struct clt__tune *tu)
{
    unsigned char *data = NULL;
    size_t size = 0;
    enum clt_status st = clt__cache_load(tu->path, tu->identity, &data, &size);
    if (st == CLT_ERR_IO)
        return; /* no entry yet */
    char *text = NULL;
    if (st == CLT_OK) {
        text = malloc(size + 1);
        if (!text) {
            free(data);
            return;
        }
        memcpy(text, data, size);
        text[size] = '\0';
    }
    if (st != CLT_OK || strlen(text) != size || !parse_payload(tu, text)) {
        clt__log(&dev->log, CLT_LOG_WARN,
                 "gemm tuning cache %s is corrupt or belongs to "
                 "another device or version; its shapes will be timed again",
                 tu->path);
        tu->count = 0;
        tu->xgemm_decided = tu->xgemm_set = false;
    } else {
        (void)clt__xgemm_apply(dev);
        clt__log(&dev->log, CLT_LOG_INFO, "gemm tuning cache %s: %zu shapes", tu->path, tu->count);
    }
    free(text);
    free(data);
}

void clt__tune_save(struct clt_device *dev, struct clt__tune *tu)
{
    if (!tu->dirty || !tu->path[0])
        return;
    size_t size = 0;
    char *text = format_payload(tu, &size);
    enum clt_status st = text ? clt__mkdir_p(dev->cache_dir) : CLT_ERR_NO_MEMORY;
    if (st == CLT_OK)
        st = clt__cache_store(tu->path, tu->identity, (const unsigned char *)text, size);
    free(text);
    if (st == CLT_OK) {
        tu->dirty = false;
        return;
    }
    if (!tu->warned_store)
        clt__log(&dev->log, CLT_LOG_WARN,
                 "gemm tuning cache %s cannot be written (%s); "
                 "the choices are kept in memory only",
                 tu->path, clt_status_str(st));
    tu->warned_store = true;
}
