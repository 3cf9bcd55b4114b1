/*
 * test_batcher.c: splits and heads of a dataset, and the batcher's epochs, padding,
 * drop_last, class labels, resume and text windows, on the host only. No device needed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_files.h"

static void split_and_head(void **state)
{
    (void)state;
    struct clt_dataset *ds = indexed(10), *a = NULL, *b = NULL, *a2 = NULL, *b2 = NULL;
    assert_int_equal(clt_dataset_split(ds, 0.3, 42, &a, &b), CLT_OK);
    assert_int_equal(a->count, 7);
    assert_int_equal(b->count, 3);
    assert_int_equal(a->classes, 3);
    assert_int_equal(b->classes, 3);
    /* Every example lands in exactly one part, features and label together. */
    int seen[10] = {0};
    for (int part = 0; part < 2; part++) {
        const struct clt_dataset *p = part ? b : a;
        for (uint64_t i = 0; i < p->count; i++) {
            int k = (int)p->features[2 * i];
            assert_true(p->features[2 * i + 1] == -(float)k);
            assert_int_equal(p->labels[i], k % 3);
            seen[k]++;
        }
    }
    for (int k = 0; k < 10; k++)
        assert_int_equal(seen[k], 1);
    /* The same seed splits the same way; ds is unchanged. */
    assert_int_equal(clt_dataset_split(ds, 0.3, 42, &a2, &b2), CLT_OK);
    assert_memory_equal(a->features, a2->features, 14 * sizeof(float));
    assert_memory_equal(b->labels, b2->labels, 3 * sizeof(int32_t));
    clt_dataset_free(a2);
    clt_dataset_free(b2);
    for (uint64_t i = 0; i < 10; i++)
        assert_true(ds->features[2 * i] == (float)i);
    /* Some other seed splits another way (10 examples: the chance of equal order is tiny). */
    bool differs = false;
    for (uint64_t seed = 1; seed < 4 && !differs; seed++) {
        assert_int_equal(clt_dataset_split(ds, 0.3, seed, &a2, &b2), CLT_OK);
        differs = memcmp(a->features, a2->features, 14 * sizeof(float)) != 0;
        clt_dataset_free(a2);
        clt_dataset_free(b2);
    }
    assert_true(differs);
    clt_dataset_free(a);
    clt_dataset_free(b);

    /* Fractions outside (0, 1), or leaving a side empty. */
    a = b = NULL;
    double bad[] = {0.0, 1.0, -0.5, 1.5, NAN, INFINITY, 0.01, 0.99};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(clt_dataset_split(ds, bad[i], 1, &a, &b), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_split(NULL, 0.5, 1, &a, &b), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_split(ds, 0.5, 1, NULL, &b), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_split(ds, 0.5, 1, &a, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_null(a);
    assert_null(b);

    /* Head: the first examples, in order. */
    assert_int_equal(clt_dataset_head(ds, 4, &a), CLT_OK);
    assert_int_equal(a->count, 4);
    assert_true(a->features[6] == 3.0f);
    assert_int_equal(a->classes, 3);
    clt_dataset_free(a);
    a = NULL;
    assert_int_equal(clt_dataset_head(ds, 0, &a), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_head(ds, 11, &a), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_head(NULL, 1, &a), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_head(ds, 1, NULL), CLT_ERR_INVALID_ARGUMENT);
    assert_null(a);
    clt_dataset_free(ds);

    /* A text: the first part, then the rest, with the original's symbols. */
    const char *text = "abcabcabczz";
    assert_int_equal(clt_dataset_load_text(write_text("s.txt", text, false), &quiet, &ds), CLT_OK);
    assert_int_equal(clt_dataset_split(ds, 0.2, 9, &a, &b), CLT_OK);
    assert_int_equal(a->count, 9);
    assert_int_equal(b->count, 2);
    assert_int_equal(a->vocab, 4);
    assert_int_equal(b->vocab, 4);
    for (uint64_t i = 0; i < 11; i++) {
        const struct clt_dataset *p = i < 9 ? a : b;
        assert_int_equal(p->symbols[p->tokens[i < 9 ? i : i - 9]], (uint8_t)text[i]);
    }
    clt_dataset_free(a);
    clt_dataset_free(b);
    a = b = NULL;
    /* Each part needs two tokens. */
    assert_int_equal(clt_dataset_split(ds, 0.1, 9, &a, &b), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_head(ds, 1, &a), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_dataset_head(ds, 2, &a), CLT_OK);
    assert_int_equal(a->vocab, 4);
    clt_dataset_free(a);
    clt_dataset_free(ds);
}

/* Runs one epoch of a batcher over indexed(n); checks that it visits every example once and
 * pads correctly; writes the visiting order to order[] (n entries). */
static void run_epoch(struct clt_batcher *bt, uint64_t n, uint32_t batch, bool drop_last,
                      int64_t *order)
{
    uint64_t batches = clt_batcher_epoch_batches(bt, drop_last);
    assert_int_equal(batches, drop_last ? n / batch : (n + batch - 1) / batch);
    float *x = malloc(batch * 2 * sizeof(float));
    int32_t *y = malloc(batch * sizeof(int32_t));
    uint64_t at = 0;
    for (uint64_t k = 0; k < batches; k++) {
        uint32_t filled = 0;
        bool done = true;
        assert_int_equal(clt_batcher_next(bt, drop_last, x, y, &filled, &done), CLT_OK);
        assert_int_equal(done, k == batches - 1);
        uint32_t want = n - k * batch < batch ? (uint32_t)(n - k * batch) : batch;
        assert_int_equal(filled, want);
        for (uint32_t r = 0; r < batch; r++) {
            if (r >= filled) {
                assert_int_equal(y[r], -1);
                assert_true(x[2 * r] == 0.0f && x[2 * r + 1] == 0.0f);
                continue;
            }
            int64_t i = (int64_t)x[2 * r];
            assert_true(x[2 * r + 1] == -(float)i);
            assert_int_equal(y[r], i % 3);
            order[at++] = i;
        }
    }
    assert_int_equal(at, drop_last ? batches * batch : n);
    if (!drop_last) {
        int *seen = calloc(n, sizeof *seen);
        for (uint64_t i = 0; i < n; i++)
            seen[order[i]]++;
        for (uint64_t i = 0; i < n; i++)
            assert_int_equal(seen[i], 1);
        free(seen);
    }
    free(x);
    free(y);
}

static void batcher_classes(void **state)
{
    (void)state;
    const uint64_t n = 23;
    struct clt_dataset *ds = indexed(n);
    struct clt_batcher *bt = NULL;
    int64_t o1[23], o2[23];

    /* Without shuffle: file order, epoch after epoch; the last batch padded. */
    assert_int_equal(clt_batcher_create(ds, 5, 0, 7, false, &bt), CLT_OK);
    for (int e = 0; e < 2; e++) {
        run_epoch(bt, n, 5, false, o1);
        for (uint64_t i = 0; i < n; i++)
            assert_int_equal(o1[i], (int64_t)i);
    }
    struct clt_batcher_state s;
    clt_batcher_get(bt, &s);
    assert_int_equal(s.epoch, 2);
    assert_int_equal(s.position, 0);
    assert_int_equal(s.seed, 7);
    clt_batcher_free(bt);

    /* Shuffled: each epoch a permutation, and epochs differ. */
    assert_int_equal(clt_batcher_create(ds, 5, 0, 7, true, &bt), CLT_OK);
    run_epoch(bt, n, 5, false, o1);
    run_epoch(bt, n, 5, false, o2);
    assert_true(memcmp(o1, o2, sizeof o1) != 0);
    bool moved = false;
    for (uint64_t i = 0; i < n; i++)
        moved |= o1[i] != (int64_t)i;
    assert_true(moved);
    /* drop_last: 4 full batches, the partial one skipped. */
    run_epoch(bt, n, 5, true, o1);
    clt_batcher_free(bt);

    /* A batch exactly dividing the count has nothing to pad or drop. */
    assert_int_equal(clt_batcher_create(ds, 23, 0, 1, true, &bt), CLT_OK);
    assert_int_equal(clt_batcher_epoch_batches(bt, true), 1);
    run_epoch(bt, n, 23, false, o1);
    run_epoch(bt, n, 23, true, o1);
    clt_batcher_free(bt);

    /* A batch larger than the dataset: one padded batch, or (drop_last) none at all. */
    assert_int_equal(clt_batcher_create(ds, 40, 0, 1, true, &bt), CLT_OK);
    run_epoch(bt, n, 40, false, o1);
    assert_int_equal(clt_batcher_epoch_batches(bt, true), 0);
    float x[80];
    int32_t y[40];
    assert_int_equal(clt_batcher_next(bt, true, x, y, NULL, NULL), CLT_ERR_INVALID_ARGUMENT);
    clt_batcher_free(bt);
    clt_dataset_free(ds);
}

/* Draws `count` batches from a batcher into xs/ys (each batch's x then y, flattened). */
static void draw(struct clt_batcher *bt, int count, bool drop_last, size_t x_bytes,
                 uint32_t batch_y, unsigned char *xs, int32_t *ys)
{
    for (int k = 0; k < count; k++)
        assert_int_equal(
            clt_batcher_next(bt, drop_last, xs + k * x_bytes, ys + k * batch_y, NULL, NULL),
            CLT_OK);
}

static void batcher_resumes(void **state)
{
    (void)state;
    struct clt_dataset *classes = indexed(23), *text = NULL;
    unsigned char t[300];
    for (int i = 0; i < 300; i++)
        t[i] = (unsigned char)(i * 7 % 251);
    assert_int_equal(clt__text_parse(t, sizeof t, &quiet, "t", &text), CLT_OK);
    const struct clt_dataset *sets[2] = {classes, text};
    for (int which = 0; which < 2; which++) {
        for (int drop_last = 0; drop_last < 2; drop_last++) {
            const struct clt_dataset *ds = sets[which];
            uint32_t batch = 4, context = which ? 9 : 0;
            size_t x_bytes = which ? batch * context * 4 : batch * 2 * 4;
            uint32_t y_len = which ? batch * context : batch;
            enum { TOTAL = 30 };
            unsigned char *xs = malloc(TOTAL * x_bytes), *xs2 = malloc(TOTAL * x_bytes);
            int32_t *ys = malloc(TOTAL * y_len * 4), *ys2 = malloc(TOTAL * y_len * 4);
            /* An uninterrupted run of several epochs. */
            struct clt_batcher *bt = NULL;
            assert_int_equal(clt_batcher_create(ds, batch, context, 99, true, &bt), CLT_OK);
            draw(bt, TOTAL, drop_last, x_bytes, y_len, xs, ys);
            clt_batcher_free(bt);
            /* Stopped after `cut` batches, state saved, resumed by a fresh batcher created
             * with another seed: the state's seed wins. */
            for (int cut = 0; cut < TOTAL; cut += 3) {
                struct clt_batcher_state s;
                assert_int_equal(clt_batcher_create(ds, batch, context, 99, true, &bt), CLT_OK);
                draw(bt, cut, drop_last, x_bytes, y_len, xs2, ys2);
                clt_batcher_get(bt, &s);
                clt_batcher_free(bt);
                assert_int_equal(clt_batcher_create(ds, batch, context, 5, true, &bt), CLT_OK);
                assert_int_equal(clt_batcher_set(bt, &s), CLT_OK);
                draw(bt, TOTAL - cut, drop_last, x_bytes, y_len, xs2 + cut * x_bytes,
                     ys2 + cut * y_len);
                clt_batcher_free(bt);
                assert_memory_equal(xs, xs2, TOTAL * x_bytes);
                assert_memory_equal(ys, ys2, TOTAL * y_len * 4);
            }
            free(xs);
            free(xs2);
            free(ys);
            free(ys2);
        }
    }
    clt_dataset_free(classes);
    clt_dataset_free(text);
}

static void batcher_text(void **state)
{
    (void)state;
    /* A text where every window of two tokens occurs once: its offset is recoverable. */
    enum { N = 251, B = 3, C = 7 };
    unsigned char t[N];
    for (int i = 0; i < N; i++)
        t[i] = (unsigned char)(i * 7 % 251);
    struct clt_dataset *ds = NULL;
    assert_int_equal(clt__text_parse(t, N, &quiet, "t", &ds), CLT_OK);
    for (int shuffle = 0; shuffle < 2; shuffle++) {
        struct clt_batcher *bt = NULL;
        assert_int_equal(clt_batcher_create(ds, B, C, 3, shuffle, &bt), CLT_OK);
        uint64_t batches = clt_batcher_epoch_batches(bt, false);
        assert_int_equal(batches, N / (B * C));
        assert_int_equal(clt_batcher_epoch_batches(bt, true), batches);
        int32_t x[B * C], y[B * C];
        for (uint64_t k = 0; k < 2 * batches; k++) {
            uint32_t filled = 0;
            bool done = false;
            assert_int_equal(clt_batcher_next(bt, false, x, y, &filled, &done), CLT_OK);
            assert_int_equal(filled, B);
            assert_int_equal(done, k % batches == batches - 1);
            for (int r = 0; r < B; r++) {
                /* The window's offset, from its first token. */
                int off = -1;
                for (int i = 0; i + C < N; i++)
                    if (ds->tokens[i] == x[r * C])
                        off = i;
                assert_true(off >= 0 && off + C < N);
                if (!shuffle)
                    assert_int_equal(off, (int)(((k % batches) * B + r) * C % (N - C)));
                for (int i = 0; i < C; i++) {
                    assert_int_equal(x[r * C + i], ds->tokens[off + i]);
                    assert_int_equal(y[r * C + i], ds->tokens[off + i + 1]);
                }
            }
        }
        clt_batcher_free(bt);
    }
    /* A text shorter than one batch of windows still makes one batch per epoch. */
    struct clt_batcher *bt = NULL;
    assert_int_equal(clt_batcher_create(ds, 100, 200, 3, true, &bt), CLT_OK);
    assert_int_equal(clt_batcher_epoch_batches(bt, false), 1);
    clt_batcher_free(bt);
    /* The largest context: one window, the whole text. */
    assert_int_equal(clt_batcher_create(ds, 2, N - 1, 3, true, &bt), CLT_OK);
    int32_t *x = malloc(2 * N * sizeof *x), *y = malloc(2 * N * sizeof *y);
    assert_int_equal(clt_batcher_next(bt, false, x, y, NULL, NULL), CLT_OK);
    assert_int_equal(x[N - 2], ds->tokens[N - 2]);
    assert_int_equal(y[N - 2], ds->tokens[N - 1]);
    free(x);
    free(y);
    clt_batcher_free(bt);
    bt = NULL;
    assert_int_equal(clt_batcher_create(ds, 2, N, 3, true, &bt), CLT_ERR_INVALID_ARGUMENT);
    assert_int_equal(clt_batcher_create(ds, 2, 0, 3, true, &bt), CLT_ERR_INVALID_ARGUMENT);
    assert_null(bt);
    clt_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(split_and_head),
        cmocka_unit_test(batcher_classes),
        cmocka_unit_test(batcher_resumes),
        cmocka_unit_test(batcher_text),
    };
    return cmocka_run_group_tests(tests, data_files_setup, data_files_teardown);
}
