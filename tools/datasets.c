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

void data_options_init(struct data_options *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->label_column = -1;
    o->val_fraction = DATA_HELD_OUT;
}

/* Loads one spec's sets: an idx folder's train and t10k files, or a csv or text file whole. */
static enum clt_status load_spec(const char *spec, const struct data_options *o,
                                 const struct clt_log *log, struct clt_dataset **train,
                                 struct clt_dataset **test)
{
    if (strcmp(spec, "fashion-mnist") == 0 || strncmp(spec, "idx:", 4) == 0) {
        const char *dir = spec[0] == 'f' ? DATA_FASHION_MNIST_DIR : spec + 4;
        enum clt_status st = train ? load_idx_pair(dir, "train", log, train) : CLT_OK;
        if (st == CLT_OK)
            st = load_idx_pair(dir, "t10k", log, test);
        return st;
    }
    bool text = strncmp(spec, "text:", 5) == 0;
    const char *path = spec + (text ? 5 : 4);
    struct clt_dataset **whole = train ? train : test;
    return text ? clt_dataset_load_text(path, log, whole)
                : clt_dataset_load_csv(path, o->label_column, log, whole);
}

/* Splits the validation part off *train (a text: its tail). */
static enum clt_status split_validation(struct clt_dataset **train, const struct data_options *o,
                                        bool text, struct clt_dataset **val, const char *spec,
                                        char *err, size_t err_size)
{
    struct clt_dataset_info info;
    enum clt_status st = clt_dataset_info(*train, &info);
    if (st != CLT_OK || o->val_fraction <= 0)
        return st;
    if ((double)info.count * o->val_fraction < 1.0 ||
        (double)info.count * (1.0 - o->val_fraction) < 1.0) {
        char why[200];
        snprintf(why, sizeof why, "%llu %s are too few to hold out a fraction %g for validation",
                 (unsigned long long)info.count, text ? "bytes" : "rows", o->val_fraction);
        say(err, err_size, spec, why);
        return CLT_ERR_FORMAT;
    }
    struct clt_dataset *rest = NULL;
    st = clt_dataset_split(*train, o->val_fraction, o->seed, &rest, val);
    if (st == CLT_OK) {
        clt_dataset_free(*train);
        *train = rest;
    }
    return st;
}

enum clt_status data_open(const char *spec, const struct data_options *o, const struct clt_log *log,
                          struct data_sets *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    if (data_spec_check(spec, err, err_size) != 0 ||
        (o->eval_data && data_spec_check(o->eval_data, err, err_size) != 0))
        return CLT_ERR_INVALID_ARGUMENT;
    bool text = strncmp(spec, "text:", 5) == 0;
    struct clt_dataset *val = NULL;
    const char *failed = spec;
    enum clt_status st = load_spec(spec, o, log, o->whole ? NULL : &out->train, &out->test);
    /* A text's validation part is its tail; limit the whole first so that a small --limit
     * still leaves a validation part. */
    if (st == CLT_OK && text && !o->whole)
        st = apply_limit(&out->train, o->limit);
    if (st == CLT_OK && !text) {
        struct clt_dataset *labelled = out->train ? out->train : out->test;
        st = clt_dataset_check_classes(labelled, o->classes, log);
        struct clt_dataset_info li;
        if (st == CLT_OK && out->train && out->test && clt_dataset_info(labelled, &li) == CLT_OK)
            st = clt_dataset_check_classes(out->test, li.classes, log);
        if (st == CLT_ERR_FORMAT)
            say(err, err_size, spec, "bad labels");
    }
    if (st == CLT_OK && out->train)
        st = split_validation(&out->train, o, text, &val, spec, err, err_size);
    if (st == CLT_OK && o->eval_data && !o->whole) {
        failed = o->eval_data;
        if (strncmp(o->eval_data, "text:", 5) == 0 || text) {
            say(err, err_size, o->eval_data, "--eval-data is for csv and idx data");
            st = CLT_ERR_INVALID_ARGUMENT;
        } else {
            struct data_options eo = *o;
            eo.whole = true;
            clt_dataset_free(out->test);
            out->test = NULL;
            st = load_spec(o->eval_data, &eo, log, NULL, &out->test);
            struct clt_dataset_info ti;
            if (st == CLT_OK && (st = clt_dataset_info(out->train, &ti)) == CLT_OK)
                st = clt_dataset_check_classes(out->test, ti.classes, log);
            if (st == CLT_ERR_FORMAT && !err[0])
                say(err, err_size, o->eval_data, "bad labels");
        }
    }
    if (st == CLT_OK && !out->test && !val && !o->whole) {
        say(err, err_size, spec, "nothing to evaluate on: --val-fraction 0 needs --eval-data");
        st = CLT_ERR_INVALID_ARGUMENT;
    }
    if (st == CLT_OK) {
        /* eval: each epoch's set; test: the final one, when it is another. */
        out->eval = val ? val : out->test;
        if (out->eval == out->test)
            out->test = NULL;
        val = NULL;
    }
    if (st == CLT_OK && out->train)
        st = apply_limit(&out->train, o->limit);
    if (st == CLT_OK)
        st = apply_limit(&out->eval, o->limit);
    if (st == CLT_OK && out->test)
        st = apply_limit(&out->test, o->limit);
    if (st == CLT_OK && out->train)
        st = clt_dataset_info(out->train, &out->train_info);
    if (st == CLT_OK)
        st = clt_dataset_info(out->eval, &out->eval_info);
    if (st == CLT_OK && out->test)
        st = clt_dataset_info(out->test, &out->test_info);
    if (!out->train)
        out->train_info = out->eval_info;
    const struct clt_dataset_info *other = out->test ? &out->test_info : &out->eval_info;
    if (st == CLT_OK && out->train_info.kind == CLT_DATASET_CLASSES &&
        (out->train_info.ndim != other->ndim ||
         memcmp(out->train_info.shape, other->shape, out->train_info.ndim * sizeof(int64_t)) !=
             0)) {
        say(err, err_size, failed, "the training and evaluation examples differ in shape");
        st = CLT_ERR_FORMAT;
    } else if (st != CLT_OK && !err[0]) {
        say(err, err_size, failed,
            st == CLT_ERR_IO       ? "cannot read the data"
            : st == CLT_ERR_FORMAT ? "malformed data"
                                   : clt_status_str(st));
    }
    clt_dataset_free(val);
    if (st != CLT_OK)
        data_close(out);
    return st;
}

void data_close(struct data_sets *d)
{
    clt_dataset_free(d->train);
    clt_dataset_free(d->eval);
    clt_dataset_free(d->test);
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

int data_fingerprint(const char *spec, char *out)
{
    char paths[8][4096];
    size_t n = data_input_paths(spec, paths, 8);
    uint64_t h = 0xcbf29ce484222325ull;
    unsigned char buf[1 << 16];
    for (size_t i = 0; i < n; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f) {
            if (strncmp(spec, "csv:", 4) == 0 || strncmp(spec, "text:", 5) == 0)
                return -1;
            continue; /* an idx folder has its files plain or compressed */
        }
        h = (h ^ (uint64_t)i) * 0x100000001b3ull; /* which of a folder's files */
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, f)) > 0)
            for (size_t k = 0; k < got; k++)
                h = (h ^ buf[k]) * 0x100000001b3ull;
        bool bad = ferror(f) != 0;
        fclose(f);
        if (bad)
            return -1;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return 0;
}
