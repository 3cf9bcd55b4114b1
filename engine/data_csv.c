/*
 * data_csv.c: CSV files of numbers, one example per line.
 *
 * Rules, all checked:
 * - lines end in "\n" or "\r\n"; blank lines may follow the last row, nowhere else;
 * - fields are separated by commas, no quoting; spaces and tabs around a field are ignored;
 * - a field is a decimal number as strtod reads it in the C locale, made only of the
 *   characters 0-9 + - . e E ("nan", "inf" and hexadecimal are refused), finite as a float;
 * - every row has the same number of fields, at least two;
 * - the label column holds an integer value in 0 .. 2^31 - 1 ("3" or "3.0");
 * - a first line that is not all numbers is a header and is skipped, whatever it holds
 *   (scikit-learn's files put counts and class names there).
 * Features are the other columns, in order, as floats: [columns - 1] per example.
 */
#include <float.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

/* Longest field accepted, in bytes after trimming. */
#define MAX_FIELD 255

/* One line of the text: [p, p + n), without its "\n" or "\r\n". */
struct line {
    const char *p;
    size_t n;
};

/* The line starting at *pos (< end); advances *pos past its newline. */
static struct line take_line(const char *text, size_t end, size_t *pos)
{
    struct line l = {text + *pos, 0};
    const char *nl = memchr(l.p, '\n', end - *pos);
    l.n = nl ? (size_t)(nl - l.p) : end - *pos;
    *pos += l.n + (nl != NULL);
    if (l.n > 0 && l.p[l.n - 1] == '\r')
        l.n--;
    return l;
}

static size_t count_fields(struct line l)
{
    size_t n = 1;
    for (size_t i = 0; i < l.n; i++)
        n += l.p[i] == ',';
    return n;
}

/* Parses the field [p, p + n) strictly. False when it is not a finite float. */
static bool parse_number(const char *p, size_t n, double *out)
{
    while (n > 0 && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n == 0 || n > MAX_FIELD)
        return false;
    char buf[MAX_FIELD + 1];
    for (size_t i = 0; i < n; i++) {
        if (!strchr("0123456789+-.eE", p[i]) || p[i] == 0)
            return false;
        buf[i] = p[i];
    }
    buf[n] = 0;
    char *end = NULL;
    double v = strtod(buf, &end);
    if (end != buf + n || !(v >= -FLT_MAX && v <= FLT_MAX))
        return false;
    *out = v;
    return true;
}

/* The next field of a line at *pos: its start and length; *pos moves past the comma. */
static const char *take_field(struct line l, size_t *pos, size_t *n)
{
    const char *start = l.p + *pos;
    const char *comma = memchr(start, ',', l.n - *pos);
    *n = comma ? (size_t)(comma - start) : l.n - *pos;
    *pos += *n + 1;
    return start;
}

static bool all_numbers(struct line l)
{
    size_t pos = 0, n;
    double v;
    for (size_t f = count_fields(l); f > 0; f--) {
        const char *p = take_field(l, &pos, &n);
        if (!parse_number(p, n, &v))
            return false;
    }
    return true;
}

/* Parses the rows into ds (allocated for them). */
static enum clt_status parse_rows(const char *text, size_t end, size_t pos, uint64_t line_no,
                                  size_t columns, size_t label, struct clt_dataset *ds,
                                  const struct clt_log *log, const char *name)
{
    int64_t top = -1;
    for (uint64_t row = 0; row < ds->count; row++, line_no++) {
        struct line l = take_line(text, end, &pos);
        float *x = ds->features + row * (columns - 1);
        size_t at = 0, n;
        for (size_t f = 0; f < columns; f++) {
            const char *p = take_field(l, &at, &n);
            double v;
            if (!parse_number(p, n, &v)) {
                clt__log(log, CLT_LOG_ERROR, "%s:%llu: field %zu \"%.*s\" is not a number", name,
                         (unsigned long long)line_no, f + 1, (int)(n < 40 ? n : 40), p);
                return CLT_ERR_FORMAT;
            }
            if (f != label) {
                *x++ = (float)v;
                continue;
            }
            if (!(v >= 0.0 && v < 2147483648.0) || (double)(int64_t)v != v) {
                clt__log(log, CLT_LOG_ERROR,
                         "%s:%llu: label \"%.*s\" is not an integer in 0 .. 2^31-1", name,
                         (unsigned long long)line_no, (int)(n < 40 ? n : 40), p);
                return CLT_ERR_FORMAT;
            }
            ds->labels[row] = (int32_t)v;
            top = (int64_t)v > top ? (int64_t)v : top;
        }
    }
    /* Labels up to 2^31 - 1 would make 2^31 classes: still a uint32_t. */
    ds->classes = (uint32_t)(top + 1);
    ds->first_line = line_no - ds->count;
    return CLT_OK;
}

/* clt__csv_parse in the C locale. */
static enum clt_status parse(const char *text, size_t size, int32_t label_column,
                             const struct clt_log *log, const char *name, struct clt_dataset **out)
{
    /* Blank lines at the end are dropped; any left inside are errors below. */
    size_t end = size;
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r'))
        end--;
    if (end == 0) {
        clt__log(log, CLT_LOG_ERROR, "%s: no rows", name);
        return CLT_ERR_FORMAT;
    }

    /* Pass 1: the header, the number of rows, and every row's field count. */
    size_t pos = 0, first = 0;
    uint64_t first_line = 1;
    struct line l = take_line(text, end, &pos);
    if (l.n == 0) {
        clt__log(log, CLT_LOG_ERROR, "%s:1: empty line", name);
        return CLT_ERR_FORMAT;
    }
    if (!all_numbers(l)) {
        first = pos;
        first_line = 2;
        if (pos >= end) {
            clt__log(log, CLT_LOG_ERROR, "%s: a header and no rows", name);
            return CLT_ERR_FORMAT;
        }
        l = take_line(text, end, &pos);
    }
    size_t columns = count_fields(l);
    uint64_t rows = 1, line_no = first_line;
    while (pos < end) {
        l = take_line(text, end, &pos);
        line_no++;
        if (l.n == 0 || count_fields(l) != columns) {
            clt__log(log, CLT_LOG_ERROR, "%s:%llu: %zu fields, the first row has %zu", name,
                     (unsigned long long)line_no, l.n ? count_fields(l) : 0, columns);
            return CLT_ERR_FORMAT;
        }
        rows++;
    }
    if (columns < 2) {
        clt__log(log, CLT_LOG_ERROR, "%s: one column: no features beside the label", name);
        return CLT_ERR_FORMAT;
    }
    int64_t lc = label_column < 0 ? (int64_t)columns + label_column : label_column;
    if (lc < 0 || lc >= (int64_t)columns) {
        clt__log(log, CLT_LOG_ERROR, "%s: label column %d outside the %zu columns", name,
                 (int)label_column, columns);
        return CLT_ERR_INVALID_ARGUMENT;
    }

    /* Pass 2: the numbers. */
    struct clt_dataset *ds = NULL;
    int64_t shape[1] = {(int64_t)(columns - 1)};
    enum clt_status st = clt__dataset_new_classes(log, name, rows, 1, shape, &ds);
    if (st == CLT_OK)
        st = parse_rows(text, end, first, first_line, columns, (size_t)lc, ds, log, name);
    if (st != CLT_OK) {
        clt_dataset_free(ds);
        return st;
    }
    *out = ds;
    return CLT_OK;
}

enum clt_status clt__csv_parse(const char *text, size_t size, int32_t label_column,
                               const struct clt_log *log, const char *name,
                               struct clt_dataset **out)
{
    if ((!text && size) || !out)
        return CLT_ERR_INVALID_ARGUMENT;
    /* strtod follows the thread's locale: read in "C" whatever the application set, and
     * restore its locale after. */
    locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    locale_t previous = c_locale ? uselocale(c_locale) : (locale_t)0;
    enum clt_status st = parse(text ? text : "", size, label_column, log, name ? name : "csv", out);
    if (c_locale) {
        uselocale(previous);
        freelocale(c_locale);
    }
    return st;
}

enum clt_status clt_dataset_load_csv(const char *path, int32_t label_column,
                                     const struct clt_log *log, struct clt_dataset **out)
{
    if (!path || !out)
        return CLT_ERR_INVALID_ARGUMENT;
    unsigned char *data = NULL;
    size_t size = 0;
    enum clt_status st = clt__file_read(log, path, &data, &size);
    if (st == CLT_OK)
        st = clt__csv_parse((const char *)data, size, label_column, log, path, out);
    free(data);
    return st;
}
