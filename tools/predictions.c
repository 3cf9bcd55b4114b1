/*
 * predictions.c: see predictions.h.
 */
#include "predictions.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models.h"

/* Largest CSV file read for predictions, in bytes. */
#define CSV_MAX_BYTES ((size_t)1 << 31)
/* Longest field accepted, in bytes after trimming (as the library's loader). */
#define MAX_FIELD 255

static void say(char *err, size_t size, const char *name, int64_t line, const char *why)
{
    snprintf(err, size, "%s: line %lld: %s", name, (long long)line, why);
}

/* Parses the field [p, p + n) strictly: a finite float of the characters 0-9 + - . e E. */
static bool parse_number(const char *p, size_t n, float *out)
{
    while (n > 0 && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n == 0 || n > MAX_FIELD)
        return false;
    char buf[MAX_FIELD + 1];
    for (size_t i = 0; i < n; i++) {
        if (!strchr("0123456789+-.eE", p[i]))
            return false;
        buf[i] = p[i];
    }
    buf[n] = '\0';
    char *end = NULL;
    double v = strtod(buf, &end);
    if (end != buf + n || !isfinite(v) || fabs(v) > FLT_MAX)
        return false;
    *out = (float)v;
    return true;
}

/* Parses one line of cols fields into row (row may be NULL to only check). Returns the
 * number of fields, or -1 when one is not a number (then *bad is its index from 0). */
static int64_t parse_line(const char *p, size_t n, float *row, int64_t cols, int64_t *bad)
{
    int64_t field = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != ',')
            continue;
        float v;
        if (!parse_number(p + start, i - start, &v)) {
            *bad = field;
            return -1;
        }
        if (row && field < cols)
            row[field] = v;
        field++;
        start = i + 1;
    }
    return field;
}

int csv_rows_parse(const char *text, const char *name, struct csv_rows *out, char *err,
                   size_t err_size)
{
    memset(out, 0, sizeof *out);
    size_t len = strlen(text), pos = 0, cap = 0;
    int64_t line_no = 0, blank_at = 0;
    while (pos < len) {
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - p) : len - pos;
        pos += n + (nl != NULL);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        line_no++;
        if (n == 0) {
            if (!blank_at)
                blank_at = line_no;
            continue;
        }
        if (blank_at) {
            say(err, err_size, name, blank_at, "blank line before the end of the file");
            goto fail;
        }
        int64_t bad = 0, fields = parse_line(p, n, NULL, 0, &bad);
        if (fields < 0 && line_no == 1)
            continue; /* a header */
        if (fields < 0) {
            char why[96];
            snprintf(why, sizeof why, "field %lld is not a number", (long long)bad + 1);
            say(err, err_size, name, line_no, why);
            goto fail;
        }
        if (out->cols == 0) {
            out->cols = fields;
        } else if (fields != out->cols) {
            char why[128];
            snprintf(why, sizeof why, "%lld fields, the rows before have %lld", (long long)fields,
                     (long long)out->cols);
            say(err, err_size, name, line_no, why);
            goto fail;
        }
        if ((size_t)(out->count + 1) * (size_t)out->cols > cap) {
            size_t ncap = cap ? cap * 2 : (size_t)out->cols * 256;
            float *v = realloc(out->values, ncap * sizeof *v);
            if (!v) {
                say(err, err_size, name, line_no, "out of memory");
                goto fail;
            }
            out->values = v;
            cap = ncap;
        }
        parse_line(p, n, out->values + out->count * out->cols, out->cols, &bad);
        out->count++;
    }
    if (out->count == 0) {
        snprintf(err, err_size, "%s: no rows of numbers", name);
        goto fail;
    }
    return 0;
fail:
    csv_rows_free(out);
    return -1;
}

int csv_rows_read(const char *path, struct csv_rows *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    char *text = model_read_file(path, CSV_MAX_BYTES, err, err_size);
    if (!text)
        return -1;
    int rc = csv_rows_parse(text, path, out, err, err_size);
    free(text);
    return rc;
}

void csv_rows_free(struct csv_rows *r)
{
    free(r->values);
    memset(r, 0, sizeof *r);
}

bool predictions_header_is_mine(const char *line)
{
    return strncmp(line, "row,prediction,", 15) == 0 ||
           strncmp(line, "row,label,prediction,", 21) == 0 ||
           strncmp(line, "row,prompt,text", 15) == 0;
}

bool predictions_file_is_mine(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char line[64] = "";
    bool mine = fgets(line, sizeof line, f) && predictions_header_is_mine(line);
    fclose(f);
    return mine;
}

void csv_field(FILE *f, const char *s, size_t n)
{
    bool quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        fwrite(s, 1, n, f);
        return;
    }
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            fputc('"', f);
        fputc(s[i], f);
    }
    fputc('"', f);
}
