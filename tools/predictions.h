/*
 * predictions.h: the host-side parts of `cltrain predict`, testable without a device: reading
 * the rows of a CSV file of numbers to predict on, the CSV the command writes, and how it
 * recognises a file it wrote before (which it may replace without --force).
 *
 * The predictions file (docs/training.md, "Predictions"):
 *   classifiers:  row,label,prediction,p0,p1,...   ("label" only when the data has labels)
 *                 0,2,2,0.0312,0.1044,0.8644
 *   gpt:          row,prompt,text                  (fields quoted as RFC 4180 says)
 * row is the example's index in the data, from 0 (for a text, the prompt's line).
 */
#ifndef CLTRAIN_TOOLS_PREDICTIONS_H
#define CLTRAIN_TOOLS_PREDICTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The numeric rows of a CSV file: count rows of cols values, row-major. */
struct csv_rows {
    float *values;
    int64_t count, cols;
};

/* Reads a CSV file of numbers under the rules of clt_dataset_load_csv (comma-separated
 * decimal numbers, finite as floats, the same number of fields on every row, an optional
 * header line that is not all numbers, blank lines only at the end), without a label column:
 * every field is kept. 0, or -1 with "PATH: line N: reason" in err. */
int csv_rows_read(const char *path, struct csv_rows *out, char *err, size_t err_size);

/* The same on text in memory (NUL-terminated); name is used in messages. */
int csv_rows_parse(const char *text, const char *name, struct csv_rows *out, char *err,
                   size_t err_size);

void csv_rows_free(struct csv_rows *r);

/* Whether a first line is the header of a predictions file of cltrain predict. */
bool predictions_header_is_mine(const char *line);

/* Whether the file at path starts with such a header (false if unreadable). */
bool predictions_file_is_mine(const char *path);

/* Writes s[0..n) as one CSV field: as it is, or quoted (with quotes doubled) when it holds
 * a comma, a quote, a line break or leading or trailing spaces. */
void csv_field(FILE *f, const char *s, size_t n);

#endif
