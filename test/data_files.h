/*
 * data_files.h: what the host tests of datasets and batchers share (data_files.c).
 */
#ifndef CLT_TEST_DATA_FILES_H
#define CLT_TEST_DATA_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "data.h"
#include "harness.h"

/* Messages go here, not to stderr: most tests provoke errors on purpose. */
extern struct clt_test_log messages;
extern const struct clt_log quiet;

/* Empties `messages`. */
void clear_messages(void);

/* The path of `name` in this run's temporary directory (a static buffer per call slot). */
const char *tmp_path(const char *name);

/* Writes bytes (a string) to a file in the temporary directory, gzip-compressed when gz;
 * returns the path. */
const char *write_file(const char *name, const void *data, size_t size, bool gz);
const char *write_text(const char *name, const char *text, bool gz);

/* A classes dataset of n examples whose features [2] are (i, -i) and label i % 3. */
struct clt_dataset *indexed(uint64_t n);

/* cmocka group setup and teardown: make (remove) the temporary directory. */
int data_files_setup(void **state);
int data_files_teardown(void **state);

#endif
