/*
 * data_batch.c: the batcher, which cuts a dataset into batches epoch after epoch.
 *
 * Its whole state is (seed, epoch, position). Classes: epoch e visits the examples in the
 * permutation drawn from (seed, e) (Fisher-Yates over the counter-based generator), batch p
 * taking positions [p * batch, (p + 1) * batch) of it. Text: row r of batch p of epoch e is
 * the window at an offset drawn from (seed, e, p * batch + r). Nothing depends on the batches
 * drawn before, so clt_batcher_set with a saved state continues exactly as an uninterrupted
 * run would have.
 */
#include <stdlib.h>
#include <string.h>

#include "data.h"

struct clt_batcher {
    const struct clt_dataset *ds; /* borrowed */
    uint32_t batch;
    uint32_t context; /* text only */
    bool shuffle;
    uint64_t seed;
    uint64_t epoch;
    uint64_t position; /* batches done in this epoch */

    /* Classes with shuffle: the permutation of order_epoch, [count]. */
    uint64_t *order;
    uint64_t order_epoch;
    bool order_valid;
};

enum clt_status clt_batcher_create(const struct clt_dataset *ds, uint32_t batch, uint32_t context,
                                   uint64_t seed, bool shuffle, struct clt_batcher **out)
{
    if (!ds || !out || batch == 0)
        return CLT_ERR_INVALID_ARGUMENT;
    if (ds->kind == CLT_DATASET_TEXT) {
        /* A window is context + 1 tokens; a batch's ids must be addressable. */
        if (context == 0 || (uint64_t)context + 1 > ds->count ||
            (uint64_t)batch * context > SIZE_MAX / sizeof(int32_t))
            return CLT_ERR_INVALID_ARGUMENT;
    } else if (ds->example_size > SIZE_MAX / sizeof(float) / batch) {
        return CLT_ERR_INVALID_ARGUMENT;
    }
    struct clt_batcher *b = calloc(1, sizeof *b);
    if (!b)
        return CLT_ERR_NO_MEMORY;
    b->ds = ds;
    b->batch = batch;
    b->context = ds->kind == CLT_DATASET_TEXT ? context : 0;
    b->shuffle = shuffle;
    b->seed = seed;
    if (ds->kind == CLT_DATASET_CLASSES && shuffle) {
        b->order = ds->count <= SIZE_MAX / sizeof *b->order
                       ? malloc((size_t)ds->count * sizeof *b->order)
                       : NULL;
        if (!b->order) {
            free(b);
            return CLT_ERR_NO_MEMORY;
        }
    }
    *out = b;
    return CLT_OK;
}

void clt_batcher_free(struct clt_batcher *b)
{
    if (!b)
        return;
    free(b->order);
    free(b);
}

uint64_t clt_batcher_epoch_batches(const struct clt_batcher *b, bool drop_last)
{
    if (!b)
        return 0;
    uint64_t n = b->ds->count;
    if (b->ds->kind == CLT_DATASET_TEXT) {
        /* Windows of a text are drawn, not consumed: an epoch is as many batches as cover the
         * text about once, and never fewer than one. */
        uint64_t per_batch = (uint64_t)b->batch * b->context;
        return n / per_batch > 0 ? n / per_batch : 1;
    }
    return drop_last ? n / b->batch : n / b->batch + (n % b->batch != 0);
}

void clt_batcher_get(const struct clt_batcher *b, struct clt_batcher_state *out)
{
    if (!b || !out)
        return;
    out->seed = b->seed;
    out->epoch = b->epoch;
    out->position = b->position;
}

enum clt_status clt_batcher_set(struct clt_batcher *b, const struct clt_batcher_state *state)
{
    /* Batches are counted with the padded last one, the most an epoch can have. */
    if (!b || !state || state->position >= clt_batcher_epoch_batches(b, false))
        return CLT_ERR_INVALID_ARGUMENT;
    if (state->seed != b->seed)
        b->order_valid = false;
    b->seed = state->seed;
    b->epoch = state->epoch;
    b->position = state->position;
    return CLT_OK;
}

/* The index of the example at position i of the current epoch's order. */
static uint64_t example_at(struct clt_batcher *b, uint64_t i)
{
    if (!b->shuffle)
        return i;
    if (!b->order_valid || b->order_epoch != b->epoch) {
        clt__data_permutation(b->order, b->ds->count, b->seed, CLT__DATA_STREAM_SHUFFLE, b->epoch);
        b->order_epoch = b->epoch;
        b->order_valid = true;
    }
    return b->order[i];
}

/* Batch `position` of classes: x [batch, example] floats, y [batch]; returns the real rows. */
static uint32_t fill_classes(struct clt_batcher *b, float *x, int32_t *y)
{
    const struct clt_dataset *ds = b->ds;
    size_t e = ds->example_size;
    uint64_t start = b->position * b->batch;
    uint64_t left = ds->count - start;
    uint32_t n = left < b->batch ? (uint32_t)left : b->batch;
    for (uint32_t r = 0; r < n; r++) {
        uint64_t src = example_at(b, start + r);
        memcpy(x + (size_t)r * e, ds->features + src * e, e * sizeof(float));
        y[r] = ds->labels[src];
    }
    /* Padding: zero features, and label -1 for the loss to ignore. */
    if (n < b->batch)
        memset(x + (size_t)n * e, 0, (size_t)(b->batch - n) * e * sizeof(float));
    for (uint32_t r = n; r < b->batch; r++)
        y[r] = -1;
    return n;
}

/* Batch `position` of a text: x [batch, context] ids, y [batch, context] the ids after. */
static void fill_text(struct clt_batcher *b, int32_t *x, int32_t *y)
{
    const struct clt_dataset *ds = b->ds;
    size_t c = b->context;
    uint64_t offsets = ds->count - c; /* windows of c + 1 tokens start at 0 .. count-c-1 */
    for (uint32_t r = 0; r < b->batch; r++) {
        uint64_t k = b->position * b->batch + r;
        /* Without shuffle, consecutive windows of context tokens, wrapping around. No
         * overflow: k * c stays below max(count, batch * context). */
        uint64_t off =
            b->shuffle ? clt__data_random(b->seed, CLT__DATA_STREAM_WINDOW, b->epoch, k) % offsets
                       : k * c % offsets;
        const uint8_t *t = ds->tokens + off;
        for (size_t i = 0; i < c; i++) {
            x[r * c + i] = t[i];
            y[r * c + i] = t[i + 1];
        }
    }
}

enum clt_status clt_batcher_next(struct clt_batcher *b, bool drop_last, void *x, int32_t *y,
                                 uint32_t *filled, bool *epoch_done)
{
    if (!b || !x || !y)
        return CLT_ERR_INVALID_ARGUMENT;
    uint64_t batches = clt_batcher_epoch_batches(b, drop_last);
    if (batches == 0)
        return CLT_ERR_INVALID_ARGUMENT; /* drop_last with fewer examples than one batch */
    /* A position past this epoch's end (set, or left by calls without drop_last) starts the
     * next epoch. */
    if (b->position >= batches) {
        b->epoch++;
        b->position = 0;
    }
    uint32_t n = b->batch;
    if (b->ds->kind == CLT_DATASET_TEXT)
        fill_text(b, x, y);
    else
        n = fill_classes(b, x, y);
    bool done = ++b->position == batches;
    if (done) {
        b->epoch++;
        b->position = 0;
    }
    if (filled)
        *filled = n;
    if (epoch_done)
        *epoch_done = done;
    return CLT_OK;
}
