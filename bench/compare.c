/*
 * compare.c: reading results back from JSON (with cJSON, strictly: every field the writer
 * writes must be there with its type) and comparing a run against a baseline.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Reads a whole file; NULL (with a message) when it cannot. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cltrain-bench: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap || ferror(f))
            break;
        char *bigger = realloc(buf, 2 * cap + 1);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (!buf || bad) {
        fprintf(stderr, "cltrain-bench: cannot read %s\n", path);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

struct reader {
    const char *path;
    char why[200];
};

/* Member `key` of obj with the given type (cJSON_String, cJSON_Number, ...), or NULL after
 * recording why. */
static const cJSON *member(struct reader *rd, const cJSON *obj, const char *key, int type,
                           const char *where)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || (v->type & 0xff) != type) {
        if (!rd->why[0])
            snprintf(rd->why, sizeof rd->why, "%s: \"%s\" is missing or has the wrong type", where,
                     key);
        return NULL;
    }
    return v;
}

static bool read_figure(struct reader *rd, const cJSON *j, const char *section,
                        struct bench_device *d)
{
    const cJSON *name = member(rd, j, "name", cJSON_String, section);
    const cJSON *unit = member(rd, j, "unit", cJSON_String, section);
    const cJSON *better = member(rd, j, "better", cJSON_String, section);
    const cJSON *med = member(rd, j, "median", cJSON_Number, section);
    const cJSON *min = member(rd, j, "min", cJSON_Number, section);
    const cJSON *max = member(rd, j, "max", cJSON_Number, section);
    const cJSON *runs = member(rd, j, "runs", cJSON_Number, section);
    if (!name || !unit || !better || !med || !min || !max || !runs)
        return false;
    bool higher = strcmp(better->valuestring, "higher") == 0;
    if (!higher && strcmp(better->valuestring, "lower") != 0) {
        snprintf(rd->why, sizeof rd->why, "%s.%s: \"better\" must be \"higher\" or \"lower\"",
                 section, name->valuestring);
        return false;
    }
    struct bench_stat s = {med->valuedouble, min->valuedouble, max->valuedouble, runs->valueint};
    if (bench_add(d, section, name->valuestring, unit->valuestring, higher, &s) != CLT_OK) {
        snprintf(rd->why, sizeof rd->why, "out of memory");
        return false;
    }
    /* "precision" (train figures; absent in older files and in torch_train.py's): the one
     * the figure's name says. */
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "precision");
    char buf[16];
    const char *named = bench_figure_precision(&d->figs[d->nfigs - 1], buf, sizeof buf);
    if (p && (!cJSON_IsString(p) || !named || strcmp(p->valuestring, named) != 0)) {
        snprintf(rd->why, sizeof rd->why, "%s.%s: \"precision\" must be \"%s\"", section,
                 name->valuestring, named ? named : "absent outside the train section");
        return false;
    }
    return true;
}

/* The rows of a profile's "kernels" or "ops" (malloc'd into *out). */
static bool read_rows(struct reader *rd, const cJSON *p, const char *key,
                      struct bench_prof_row **out, size_t *n)
{
    const cJSON *arr = member(rd, p, key, cJSON_Array, "profile");
    if (!arr)
        return false;
    int count = cJSON_GetArraySize(arr);
    *out = calloc(count > 0 ? (size_t)count : 1, sizeof **out);
    if (!*out) {
        snprintf(rd->why, sizeof rd->why, "out of memory");
        return false;
    }
    const cJSON *row;
    cJSON_ArrayForEach(row, arr)
    {
        const cJSON *name = member(rd, row, "name", cJSON_String, key);
        const cJSON *calls = member(rd, row, "calls_per_step", cJSON_Number, key);
        const cJSON *ms = member(rd, row, "ms_per_step", cJSON_Number, key);
        if (!name || !calls || !ms)
            return false;
        struct bench_prof_row *r = &(*out)[(*n)++];
        snprintf(r->name, sizeof r->name, "%s", name->valuestring);
        r->calls = calls->valuedouble;
        r->ms = ms->valuedouble;
    }
    return true;
}

/* A device's "profile" (--profile), when it has one: older files have none. */
static bool read_profiles(struct reader *rd, const cJSON *j, struct bench_device *d)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "profile");
    if (!arr)
        return true;
    if (!cJSON_IsArray(arr)) {
        snprintf(rd->why, sizeof rd->why, "device: \"profile\" must be an array");
        return false;
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, arr)
    {
        struct bench_profile bp = {.steps = 0};
        const cJSON *model = member(rd, p, "model", cJSON_String, "profile");
        const cJSON *steps = member(rd, p, "steps", cJSON_Number, "profile");
        const cJSON *span = member(rd, p, "step_ms", cJSON_Number, "profile");
        bool ok = model && steps && span &&
                  read_rows(rd, p, "kernels", &bp.kernels, &bp.nkernels) &&
                  read_rows(rd, p, "ops", &bp.ops, &bp.nops);
        if (ok) {
            snprintf(bp.model, sizeof bp.model, "%s", model->valuestring);
            bp.steps = steps->valueint;
            bp.step_ms = span->valuedouble;
            ok = bench_profile_add(d, &bp) == CLT_OK;
            if (!ok)
                snprintf(rd->why, sizeof rd->why, "out of memory");
        } else {
            free(bp.kernels);
            free(bp.ops);
        }
        if (!ok)
            return false;
    }
    return true;
}

static bool read_device(struct reader *rd, const cJSON *j, struct bench_device *d)
{
    const cJSON *id = member(rd, j, "id", cJSON_String, "device");
    const cJSON *label = member(rd, j, "label", cJSON_String, "device");
    const cJSON *notes = member(rd, j, "notes", cJSON_String, "device");
    const cJSON *env = member(rd, j, "environment", cJSON_Object, "device");
    if (!id || !label || !notes || !env)
        return false;
    snprintf(d->id, sizeof d->id, "%s", id->valuestring);
    snprintf(d->label, sizeof d->label, "%s", label->valuestring);
    snprintf(d->notes, sizeof d->notes, "%s", notes->valuestring);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, env)
    {
        char num[64];
        if (cJSON_IsString(kv)) {
            bench_env(d, kv->string, kv->valuestring, false);
        } else if (cJSON_IsNumber(kv)) {
            snprintf(num, sizeof num, "%.17g", kv->valuedouble);
            bench_env(d, kv->string, num, true);
        } else {
            snprintf(rd->why, sizeof rd->why, "environment: \"%s\" must be a string or number",
                     kv->string);
            return false;
        }
    }
    for (size_t s = 1; s < bench_section_count; s++) {
        const cJSON *arr = member(rd, j, bench_sections[s], cJSON_Array, "device");
        if (!arr)
            return false;
        const cJSON *fig;
        cJSON_ArrayForEach(fig, arr)
        {
            if (!cJSON_IsObject(fig)) {
                snprintf(rd->why, sizeof rd->why, "%s: figures must be objects", bench_sections[s]);
                return false;
            }
            if (!read_figure(rd, fig, bench_sections[s], d))
                return false;
        }
    }
    return read_profiles(rd, j, d);
}

enum clt_status bench_read_json(const char *path, struct bench_results *out)
{
    memset(out, 0, sizeof *out);
    char *text = slurp(path);
    if (!text)
        return CLT_ERR_IO;
    struct reader rd = {.path = path};
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *devs = NULL, *mode = NULL, *tool = NULL;
    if (!root)
        snprintf(rd.why, sizeof rd.why, "not valid JSON");
    else if (!cJSON_IsObject(root))
        snprintf(rd.why, sizeof rd.why, "the top level must be an object");
    if (!rd.why[0])
        tool = member(&rd, root, "tool", cJSON_String, "top level");
    /* bench/torch_gemm.py and bench/torch_train.py write PyTorch's GEMM and training figures
     * in the same format. */
    if (tool && strcmp(tool->valuestring, "cltrain-bench") != 0 &&
        strcmp(tool->valuestring, "torch_gemm.py") != 0 &&
        strcmp(tool->valuestring, "torch_train.py") != 0)
        snprintf(rd.why, sizeof rd.why,
                 "not written by cltrain-bench, torch_gemm.py or torch_train.py");
    if (!rd.why[0])
        mode = member(&rd, root, "mode", cJSON_String, "top level");
    if (!rd.why[0])
        devs = member(&rd, root, "devices", cJSON_Array, "top level");
    if (devs) {
        const cJSON *w = member(&rd, root, "warmup", cJSON_Number, "top level");
        const cJSON *r = member(&rd, root, "runs", cJSON_Number, "top level");
        snprintf(out->mode, sizeof out->mode, "%s", mode->valuestring);
        out->warmup = w ? w->valueint : 0;
        out->runs = r ? r->valueint : 0;
        int n = cJSON_GetArraySize(devs);
        if (n == 0 && !rd.why[0])
            snprintf(rd.why, sizeof rd.why, "no devices");
        out->devs = n > 0 ? calloc((size_t)n, sizeof *out->devs) : NULL;
        if (n > 0 && !out->devs)
            snprintf(rd.why, sizeof rd.why, "out of memory");
        const cJSON *d;
        cJSON_ArrayForEach(d, devs)
        {
            if (rd.why[0] || !out->devs)
                break;
            if (!cJSON_IsObject(d)) {
                snprintf(rd.why, sizeof rd.why, "devices must be objects");
                break;
            }
            read_device(&rd, d, &out->devs[out->ndev++]);
        }
    }
    cJSON_Delete(root);
    if (rd.why[0]) {
        fprintf(stderr, "cltrain-bench: %s: malformed results: %s\n", path, rd.why);
        bench_results_free(out);
        return CLT_ERR_FORMAT;
    }
    return CLT_OK;
}

void bench_results_free(struct bench_results *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ndev; i++) {
        free(r->devs[i].figs);
        bench_profiles_free(&r->devs[i]);
    }
    free(r->devs);
    r->devs = NULL;
    r->ndev = 0;
}

static const struct bench_device *match(const struct bench_device *d,
                                        const struct bench_results *base, size_t ndev)
{
    for (size_t i = 0; i < base->ndev; i++)
        if (strcmp(base->devs[i].label, d->label) == 0)
            return &base->devs[i];
    return ndev == 1 && base->ndev == 1 ? &base->devs[0] : NULL;
}

static const struct bench_figure *find(const struct bench_device *d, const struct bench_figure *f)
{
    for (size_t i = 0; i < d->nfigs; i++)
        if (strcmp(d->figs[i].section, f->section) == 0 && strcmp(d->figs[i].name, f->name) == 0)
            return &d->figs[i];
    return NULL;
}

int bench_compare(const struct bench_results *r, const struct bench_results *base,
                  double threshold_pct)
{
    int regressions = 0;
    double t = threshold_pct / 100.0;
    for (size_t k = 0; k < r->ndev; k++) {
        const struct bench_device *d = &r->devs[k];
        const struct bench_device *b = match(d, base, r->ndev);
        if (!b) {
            printf("== compare %s %s: no such device in the baseline\n\n", d->id, d->label);
            continue;
        }
        printf("== compare %s %s\n   against baseline %s %s (threshold %.1f%%; ratio = "
               "current / baseline)\n",
               d->id, d->label, b->id, b->label, threshold_pct);
        printf("%-8s %-36s %12s %12s %8s  %-9s\n", "section", "figure", "current", "baseline",
               "ratio", "unit");
        int compared = 0, missing = 0, improved = 0, worse = 0;
        for (size_t i = 0; i < d->nfigs; i++) {
            const struct bench_figure *f = &d->figs[i], *g = find(b, f);
            if (!g) {
                missing++;
                continue;
            }
            double ratio = g->median != 0 ? f->median / g->median : NAN;
            bool regress = f->higher_better ? ratio < 1 - t : ratio > 1 + t;
            bool better = f->higher_better ? ratio > 1 + t : ratio < 1 - t;
            printf("%-8s %-36s %12.4g %12.4g %8.3f  %-9s %s\n", f->section, f->name, f->median,
                   g->median, ratio, f->unit,
                   regress  ? "REGRESSION"
                   : better ? "improved"
                            : "");
            compared++;
            worse += regress;
            improved += better;
        }
        printf("%d figures compared: %d regressions and %d improvements beyond %.1f%%; %d not "
               "in the baseline\n\n",
               compared, worse, improved, threshold_pct, missing);
        regressions += worse;
    }
    return regressions;
}
