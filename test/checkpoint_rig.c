/*
 * checkpoint_rig.c: the models, trainers, files and log capture of the checkpoint tests
 * (checkpoint_rig.h).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint_rig.h"

/* x [N, IN] -> fc1 (hidden) -> relu -> dropout p -> fc2 (CLS) -> cross-entropy. */
struct model make_mlp(int64_t hidden, float p)
{
    struct model m = {.x_count = N * IN, .classes = CLS};
    assert_int_equal(clt_graph_create(&m.g), CLT_OK);
    struct clt_tensor *x = clt_input(m.g, "x", CLT_F32, 2, (int64_t[]){N, IN});
    struct clt_tensor *y = clt_input(m.g, "y", CLT_I32, 1, (int64_t[]){N});
    struct clt_tensor *h = clt_relu(m.g, clt_linear(m.g, x, hidden, true, "fc1"));
    if (p > 0)
        h = clt_dropout(m.g, h, p);
    m.logits = clt_linear(m.g, h, CLS, true, "fc2");
    m.loss = clt_cross_entropy(m.g, m.logits, y, -1, 0.0f);
    assert_int_equal(clt_graph_status(m.g), CLT_OK);
    return m;
}

/* x [N, 2, 6, 6] -> conv 3x3 pad 1 (3) -> batch norm -> relu -> max pool 2 -> flatten ->
 * linear (3) -> cross-entropy. */
struct model make_cnn(void)
{
    struct model m = {.x_count = N * 2 * 6 * 6, .classes = 3};
    assert_int_equal(clt_graph_create(&m.g), CLT_OK);
    struct clt_tensor *x = clt_input(m.g, "x", CLT_F32, 4, (int64_t[]){N, 2, 6, 6});
    struct clt_tensor *y = clt_input(m.g, "y", CLT_I32, 1, (int64_t[]){N});
    struct clt_conv2d_desc conv = {.out_channels = 3,
                                   .kernel_h = 3,
                                   .kernel_w = 3,
                                   .padding_h = 1,
                                   .padding_w = 1,
                                   .bias = true};
    struct clt_tensor *h = clt_conv2d(m.g, x, &conv, "conv");
    h = clt_relu(m.g, clt_batch_norm(m.g, h, 1e-5f, 0.1f, "bn"));
    h = clt_flatten(m.g, clt_max_pool2d(m.g, h, 2, 0, 0));
    m.logits = clt_linear(m.g, h, 3, true, "fc");
    m.loss = clt_cross_entropy(m.g, m.logits, y, -1, 0.0f);
    assert_int_equal(clt_graph_status(m.g), CLT_OK);
    return m;
}

struct clt_trainer *trainer(struct clt_device *dev, const struct model *m,
                            const struct clt_trainer_options *o)
{
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, m->g, m->loss, o, &tr), CLT_OK);
    return tr;
}

/* The batch of step s: x uniform in [-1, 1), labels from s. */
void batch(const struct model *m, int s, float *x, int32_t *y)
{
    clt_test_fill(x, m->x_count, 1000 + (uint64_t)s, -1.0f, 1.0f);
    for (int i = 0; i < N; i++)
        y[i] = (s * 7 + i * 3) % m->classes;
}

/* Steps s0 .. s1-1; the loss of each into losses[s] when given. */
void train(struct clt_trainer *tr, const struct model *m, int s0, int s1, float *losses)
{
    float *x = malloc(m->x_count * sizeof *x);
    int32_t y[N];
    assert_non_null(x);
    for (int s = s0; s < s1; s++) {
        batch(m, s, x, y);
        const void *in[2] = {x, y};
        assert_int_equal(clt_trainer_step(tr, in), CLT_OK);
        if (losses)
            assert_int_equal(clt_trainer_loss(tr, &losses[s]), CLT_OK);
    }
    free(x);
}

/* Every parameter and state tensor, concatenated in index order (malloc'd). */
float *all_params(struct clt_trainer *tr, size_t *count)
{
    size_t total = 0;
    uint32_t n = clt_trainer_param_count(tr);
    float *all = NULL;
    for (uint32_t i = 0; i < n; i++) {
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(tr, i, &info), CLT_OK);
        uint64_t c = 1;
        for (uint32_t d = 0; d < info.ndim; d++)
            c *= (uint64_t)info.shape[d];
        all = realloc(all, (total + c) * sizeof *all);
        assert_non_null(all);
        assert_int_equal(clt_trainer_param_read(tr, info.name, all + total, c), CLT_OK);
        total += c;
    }
    *count = total;
    return all;
}

void assert_same_params(struct clt_trainer *a, struct clt_trainer *b)
{
    size_t na, nb;
    float *pa = all_params(a, &na), *pb = all_params(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na * sizeof *pa);
    free(pa);
    free(pb);
}

char *temp_dir(void)
{
    char *dir = strdup("/tmp/cltrain-checkpoint-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

/* Removes dir and the files in it. */
void remove_dir(char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
    free(dir);
}

/* Entries of dir other than . and .., and how many look like temporary files. */
int dir_entries(const char *dir, int *temps)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    *temps = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        *temps += strstr(e->d_name, ".tmp.") != NULL;
    }
    closedir(d);
    return n;
}

unsigned char *file_bytes(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return b;
}

/* Captures the device's log into *text until restored. */
struct clt_log capture(struct clt_device *dev, struct clt_test_log *text)
{
    struct clt_log old = dev->log;
    text->len = 0;
    text->text[0] = 0;
    dev->log = (struct clt_log){clt_test_log_fn, text, CLT_LOG_DEBUG};
    return old;
}

void assert_logged(const struct clt_test_log *text, const char *what)
{
    if (!strstr(text->text, what))
        fail_msg("the log does not say \"%s\":\n%s", what, text->text);
}
