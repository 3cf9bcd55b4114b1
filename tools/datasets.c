/*
 * datasets.c: see datasets.h.
 */
#include "datasets.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void say(char *err, size_t size, const char *what, const char *reason)
{
    snprintf(err, size, "%s: %s", what, reason);
}

int data_spec_check(const char *spec, char *err, size_t err_size)
{
    if (strcmp(spec, "fashion-mnist") == 0)
        return 0;
    const char *kinds[] = {"idx:", "csv:", "text:"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(kinds[i]);
        if (strncmp(spec, kinds[i], n) == 0) {
            if (spec[n] == '\0') {
                snprintf(err, err_size, "--data %s needs a path after the colon", kinds[i]);
                return -1;
            }
            if (strlen(spec) > 3000) {
                snprintf(err, err_size, "--data: the path is too long");
                return -1;
            }
            return 0;
        }
    }
    snprintf(err, err_size,
             "unknown dataset \"%s\" (fashion-mnist, idx:DIR, csv:FILE or "
             "text:FILE)",
             spec);
    return -1;
}

/* dir/name, or dir/name.gz when only that exists. */
static void idx_path(const char *dir, const char *name, char *out, size_t size)
{
    struct stat sb;
    snprintf(out, size, "%s/%s", dir, name);
    if (stat(out, &sb) != 0) {
        snprintf(out, size, "%s/%s.gz", dir, name);
        if (stat(out, &sb) != 0)
            snprintf(out, size, "%s/%s", dir, name); /* the loader names the missing file */
    }
}

static enum clt_status load_idx_pair(const char *dir, const char *prefix, const struct clt_log *log,
                                     struct clt_dataset **out)
{
    char images[4096], labels[4096], name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    idx_path(dir, name, images, sizeof images);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    idx_path(dir, name, labels, sizeof labels);
    return clt_dataset_load_idx(images, labels, log, out);
}

/* Replaces *ds by its first `limit` examples when it has more. */
static enum clt_status apply_limit(struct clt_dataset **ds, uint64_t limit)
{
    struct clt_dataset_info info;
    enum clt_status st = clt_dataset_info(*ds, &info);
    if (st != CLT_OK || limit == 0 || info.count <= limit)
        return st;
    struct clt_dataset *head = NULL;
    st = clt_dataset_head(*ds, limit, &head);
    if (st == CLT_OK) {
        clt_dataset_free(*ds);
        *ds = head;
    }
    return st;
}

enum clt_status data_open(const char *spec, uint64_t seed, uint64_t limit, int32_t label_column,
                          const struct clt_log *log, struct data_sets *out, char *err,
                          size_t err_size)
{
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    if (data_spec_check(spec, err, err_size) != 0)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st;
    struct clt_dataset *whole = NULL;
    if (strcmp(spec, "fashion-mnist") == 0 || strncmp(spec, "idx:", 4) == 0) {
        const char *dir = spec[0] == 'f' ? DATA_FASHION_MNIST_DIR : spec + 4;
        st = load_idx_pair(dir, "train", log, &out->train);
        if (st == CLT_OK)
            st = load_idx_pair(dir, "t10k", log, &out->eval);
    } else {
        bool text = strncmp(spec, "text:", 5) == 0;
        const char *path = spec + (text ? 5 : 4);
        st = text ? clt_dataset_load_text(path, log, &whole)
                  : clt_dataset_load_csv(path, label_column, log, &whole);
        /* A text's evaluation part is its tail; limit the whole first so that a small
         * --limit still leaves a held-out part. */
        if (st == CLT_OK && text)
            st = apply_limit(&whole, limit);
        struct clt_dataset_info info;
        if (st == CLT_OK && (st = clt_dataset_info(whole, &info)) == CLT_OK &&
            (double)info.count * DATA_HELD_OUT < 1.0) {
            char why[160];
            snprintf(why, sizeof why, "%llu %s are too few to hold out a tenth for evaluation",
                     (unsigned long long)info.count, text ? "bytes" : "rows");
            say(err, err_size, spec, why);
            st = CLT_ERR_FORMAT;
        }
        if (st == CLT_OK)
            st = clt_dataset_split(whole, DATA_HELD_OUT, seed, &out->train, &out->eval);
        clt_dataset_free(whole);
        if (st == CLT_ERR_FORMAT && err[0]) {
            data_close(out);
            return st;
        }
    }
    if (st == CLT_OK)
        st = apply_limit(&out->train, limit);
    if (st == CLT_OK)
        st = apply_limit(&out->eval, limit);
    if (st == CLT_OK)
        st = clt_dataset_info(out->train, &out->train_info);
    if (st == CLT_OK)
        st = clt_dataset_info(out->eval, &out->eval_info);
    if (st == CLT_OK && out->train_info.kind == CLT_DATASET_CLASSES &&
        (out->train_info.ndim != out->eval_info.ndim ||
         memcmp(out->train_info.shape, out->eval_info.shape,
                out->train_info.ndim * sizeof(int64_t)) != 0)) {
        say(err, err_size, spec, "the training and evaluation images differ in shape");
        st = CLT_ERR_FORMAT;
    } else if (st != CLT_OK) {
        say(err, err_size, spec,
            st == CLT_ERR_IO       ? "cannot read the data"
            : st == CLT_ERR_FORMAT ? "malformed data"
                                   : clt_status_str(st));
    }
    if (st != CLT_OK)
        data_close(out);
    return st;
}

void data_close(struct data_sets *d)
{
    clt_dataset_free(d->train);
    clt_dataset_free(d->eval);
    memset(d, 0, sizeof *d);
}

size_t data_input_paths(const char *spec, char (*paths)[4096], size_t max)
{
    size_t n = 0;
    if (!spec)
        return 0;
    if (strncmp(spec, "csv:", 4) == 0 || strncmp(spec, "text:", 5) == 0) {
        if (max > 0)
            snprintf(paths[n++], 4096, "%s", strchr(spec, ':') + 1);
        return n;
    }
    const char *dir = strcmp(spec, "fashion-mnist") == 0 ? DATA_FASHION_MNIST_DIR
                      : strncmp(spec, "idx:", 4) == 0    ? spec + 4
                                                         : NULL;
    const char *names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (size_t i = 0; dir && i < 8 && n < max; i++)
        snprintf(paths[n++], 4096, "%.3000s/%s%s", dir, names[i % 4], i < 4 ? "" : ".gz");
    return n;
}
