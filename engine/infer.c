/*
 * infer.c: inference: the executor (a forward-only plan of the outputs asked for, run in
 * evaluation mode), and the classifier helpers shared by trainers and executors: predict on
 * a batch, predict and evaluate over a whole dataset.
 *
 * An executor is a trainer made without a loss (clt__trainer_create_inference): the same
 * planner, buffers and forward pass, but a plan of the outputs' dependencies only, no
 * gradients, no optimizer state, and the outputs' values kept until the next run.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer.h"

struct clt_executor {
    struct clt_trainer *tr; /* its inference trainer */
    bool ran;               /* a run has filled the outputs */
    int64_t rows;           /* real rows of the latest run */
};

enum clt_status clt_executor_create(struct clt_device *dev, const struct clt_graph *graph,
                                    const struct clt_tensor *const *outputs, uint32_t n,
                                    struct clt_executor **out)
{
    if (!dev || !graph || !outputs || n == 0 || !out || clt__device_usable(dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt_executor *ex = calloc(1, sizeof *ex);
    if (!ex)
        return CLT_ERR_NO_MEMORY;
    enum clt_status st = clt__trainer_create_inference(dev, graph, outputs, n, &ex->tr);
    if (st != CLT_OK) {
        free(ex);
        return st;
    }
    *out = ex;
    return CLT_OK;
}

void clt_executor_free(struct clt_executor *ex)
{
    if (!ex)
        return;
    clt_trainer_free(ex->tr);
    free(ex);
}

int64_t clt_executor_batch(const struct clt_executor *ex)
{
    return ex ? clt__trainer_batch(ex->tr) : 0;
}

enum clt_status clt_executor_memory(const struct clt_executor *ex, struct clt_memory_report *out)
{
    return ex ? clt_trainer_memory(ex->tr, out) : CLT_ERR_INVALID_ARGUMENT;
}

enum clt_status clt_executor_load(struct clt_executor *ex, const char *path)
{
    return ex ? clt_trainer_load(ex->tr, path, false) : CLT_ERR_INVALID_ARGUMENT;
}

enum clt_status clt_executor_param_read(struct clt_executor *ex, const char *name, float *dst,
                                        uint64_t count)
{
    return ex ? clt_trainer_param_read(ex->tr, name, dst, count) : CLT_ERR_INVALID_ARGUMENT;
}

enum clt_status clt_executor_param_write(struct clt_executor *ex, const char *name,
                                         const float *src, uint64_t count)
{
    return ex ? clt_trainer_param_write(ex->tr, name, src, count) : CLT_ERR_INVALID_ARGUMENT;
}

enum clt_status clt_executor_copy_params(struct clt_executor *ex, struct clt_trainer *tr)
{
    if (!ex || !tr)
        return CLT_ERR_INVALID_ARGUMENT;
    return clt__trainer_copy_params(ex->tr, tr);
}

enum clt_status clt_executor_run(struct clt_executor *ex, const void *const *inputs, uint32_t rows)
{
    if (!ex || clt__device_usable(ex->tr->dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    int64_t r = rows == 0 ? clt__trainer_batch(ex->tr) : rows;
    ex->ran = false;
    enum clt_status st = clt__trainer_run_forward(ex->tr, inputs, r, NULL, NULL, NULL, NULL, 0);
    if (st == CLT_OK) {
        ex->ran = true;
        ex->rows = r;
    }
    return st;
}

/* The first tensor of the graph named name, or NULL. */
static const struct clt_tensor *tensor_named(const struct clt_trainer *tr, const char *name)
{
    for (uint32_t id = 0; id < tr->plan.n; id++)
        if (strcmp(tr->graph->nodes[id]->name, name) == 0)
            return tr->graph->nodes[id];
    return NULL;
}

enum clt_status clt_executor_read(struct clt_executor *ex, const struct clt_tensor *t, void *dst,
                                  uint64_t count)
{
    if (!ex || !t || !dst || clt__device_usable(ex->tr->dev) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt_trainer *tr = ex->tr;
    const struct clt_log *log = &tr->dev->log;
    if (t->graph != tr->graph || t->id >= tr->plan.n) {
        clt__log(log, CLT_LOG_ERROR, "executor read: the tensor is not of the executor's graph");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    uint32_t root = tr->plan.info[t->id].root;
    enum clt__node_kind kind = tr->graph->nodes[root]->kind;
    if (kind == CLT__NODE_OP && !tr->plan.info[root].output) {
        clt__log(log, CLT_LOG_ERROR,
                 "executor read: \"%s\" (node %u) is not an output of the executor (its memory "
                 "is reused during a run): list it in clt_executor_create",
                 t->name, (unsigned)t->id);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    if ((kind == CLT__NODE_OP || kind == CLT__NODE_INPUT) && !ex->ran) {
        clt__log(log, CLT_LOG_ERROR, "executor read: \"%s\" has no value before a run", t->name);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    int64_t n = clt__count(t), batch = clt__trainer_batch(tr);
    bool rows_only =
        t->ndim > 0 && t->shape[0] == batch && (uint64_t)(n / batch * ex->rows) == count;
    if ((uint64_t)n != count && !rows_only) {
        clt__log(log, CLT_LOG_ERROR,
                 "executor read: \"%s\" has %lld elements; count %llu is neither that nor the "
                 "size of the latest run's %lld rows",
                 t->name, (long long)n, (unsigned long long)count, (long long)ex->rows);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    struct clt__exec x;
    memset(&x, 0, sizeof x);
    x.dev = tr->dev;
    x.tr = tr;
    struct clt__buf b = clt__val(&x, t);
    cl_int err = clEnqueueReadBuffer(tr->dev->queue, b.mem, CL_TRUE, b.offset * 4,
                                     (size_t)(count * 4), dst, 0, NULL, NULL);
    return clt__cl_check(log, err, "clEnqueueReadBuffer");
}

enum clt_status clt_executor_read_named(struct clt_executor *ex, const char *name, void *dst,
                                        uint64_t count)
{
    if (!ex || !name)
        return CLT_ERR_INVALID_ARGUMENT;
    const struct clt_tensor *t = tensor_named(ex->tr, name);
    if (!t) {
        clt__log(&ex->tr->dev->log, CLT_LOG_ERROR, "executor read: no tensor named \"%s\"", name);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return clt_executor_read(ex, t, dst, count);
}

/* ==== Classifier helpers ================================================================= */

/* What runs a batch and hands back its logits: a trainer (clt_trainer_eval_rows) or an
 * executor (run, then read). */
struct runner {
    struct clt_trainer *tr; /* the trainer whose graph and plan are used */
    struct clt_executor *ex;
};

static enum clt_status run_logits(const struct runner *r, const void *const *inputs, uint32_t rows,
                                  const struct clt_tensor *logits, float *out)
{
    int64_t per_row = clt__count(logits) / clt__trainer_batch(r->tr);
    uint64_t count = (uint64_t)(per_row * rows);
    if (r->ex) {
        enum clt_status st = clt_executor_run(r->ex, inputs, rows);
        return st == CLT_OK ? clt_executor_read(r->ex, logits, out, count) : st;
    }
    return clt_trainer_eval_rows(r->tr, inputs, rows, logits, out, count, NULL);
}

/* The index of the largest of x[0..k) (the first on ties). */
static int32_t argmax_of(const float *x, int64_t k)
{
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
        if (x[j] > x[best])
            best = j;
    return (int32_t)best;
}

/* Softmax of one row in double, and its log-sum-exp. */
static double softmax_row(const float *z, int64_t k, float *p)
{
    double mx = z[0], sum = 0;
    for (int64_t j = 1; j < k; j++)
        mx = z[j] > mx ? z[j] : mx;
    for (int64_t j = 0; j < k; j++)
        sum += exp((double)z[j] - mx);
    for (int64_t j = 0; p && j < k; j++)
        p[j] = (float)(exp((double)z[j] - mx) / sum);
    return mx + log(sum);
}

/* Checks that logits is a tensor [N, K] of the runner's graph (N the planned batch). */
static enum clt_status check_logits(const struct runner *r, const struct clt_tensor *logits)
{
    struct clt_trainer *tr = r->tr;
    if (!logits || logits->graph != tr->graph || logits->ndim != 2 ||
        logits->shape[0] != clt__trainer_batch(tr) || logits->dtype != CLT_F32) {
        clt__log(&tr->dev->log, CLT_LOG_ERROR,
                 "predict: the logits must be an F32 tensor [N, K] of the graph, N the planned "
                 "batch (%lld)",
                 (long long)clt__trainer_batch(tr));
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return CLT_OK;
}

static enum clt_status predict_batch(const struct runner *r, const void *const *inputs,
                                     uint32_t rows, const struct clt_tensor *logits,
                                     int32_t *classes, float *probs)
{
    enum clt_status st = check_logits(r, logits);
    if (st != CLT_OK)
        return st;
    int64_t k = logits->shape[1];
    float *z = malloc((size_t)(k * (rows ? rows : 1)) * sizeof *z);
    if (!z)
        return CLT_ERR_NO_MEMORY;
    st = run_logits(r, inputs, rows, logits, z);
    for (uint32_t i = 0; st == CLT_OK && i < rows; i++) {
        if (classes)
            classes[i] = argmax_of(z + (size_t)i * k, k);
        if (probs)
            softmax_row(z + (size_t)i * k, k, probs + (size_t)i * k);
    }
    free(z);
    return st;
}

enum clt_status clt_trainer_predict(struct clt_trainer *tr, const void *const *inputs,
                                    uint32_t rows, const struct clt_tensor *logits,
                                    int32_t *classes, float *probs)
{
    if (!tr || rows == 0)
        return CLT_ERR_INVALID_ARGUMENT;
    struct runner r = {tr, NULL};
    return predict_batch(&r, inputs, rows, logits, classes, probs);
}

enum clt_status clt_executor_predict(struct clt_executor *ex, const void *const *inputs,
                                     uint32_t rows, const struct clt_tensor *logits,
                                     int32_t *classes, float *probs)
{
    if (!ex || rows == 0)
        return CLT_ERR_INVALID_ARGUMENT;
    struct runner r = {ex->tr, ex};
    return predict_batch(&r, inputs, rows, logits, classes, probs);
}

/* Per batch of a dataset: the examples' logits [rows, K] and labels [rows]. */
typedef void (*batch_fn)(void *user, uint64_t first, uint32_t rows, const float *logits,
                         const int32_t *labels, int64_t k);

/* Runs every example of a classification dataset through the classifier, in file order, in
 * batches of the planned size (the last one partial, padded by the batcher), and hands each
 * batch to fn. */
static enum clt_status over_dataset(const struct runner *r, const struct clt_classifier *c,
                                    const struct clt_dataset *ds, batch_fn fn, void *user)
{
    struct clt_trainer *tr = r->tr;
    const struct clt_log *log = &tr->dev->log;
    struct clt_dataset_info info;
    if (!c || !ds || clt_dataset_info(ds, &info) != CLT_OK)
        return CLT_ERR_INVALID_ARGUMENT;
    enum clt_status st = check_logits(r, c->logits);
    if (st != CLT_OK)
        return st;
    int64_t batch = clt__trainer_batch(tr), k = c->logits->shape[1];
    const struct clt_tensor *f = c->features, *l = c->labels;
    int64_t example = 1;
    for (uint32_t i = 0; i < info.ndim; i++)
        example *= info.shape[i];
    if (info.kind != CLT_DATASET_CLASSES || !f || f->graph != tr->graph ||
        f->kind != CLT__NODE_INPUT || f->dtype != CLT_F32 || f->shape[0] != batch ||
        clt__count(f) != batch * example ||
        (l && (l->graph != tr->graph || l->kind != CLT__NODE_INPUT || l->dtype != CLT_I32 ||
               clt__count(l) != batch))) {
        clt__log(log, CLT_LOG_ERROR,
                 "classifier: needs a classification dataset, an F32 features input [%lld, "
                 "%lld elements per example] and, if any, an I32 labels input [%lld]",
                 (long long)batch, (long long)example, (long long)batch);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    float *x = malloc((size_t)(batch * example) * sizeof *x);
    int32_t *y = malloc((size_t)batch * sizeof *y);
    float *z = malloc((size_t)(batch * k) * sizeof *z);
    const void **inputs = calloc(tr->plan.ninputs ? tr->plan.ninputs : 1, sizeof *inputs);
    struct clt_batcher *b = NULL;
    st = x && y && z && inputs ? CLT_OK : CLT_ERR_NO_MEMORY;
    if (st == CLT_OK)
        st = clt_batcher_create(ds, (uint32_t)batch, 1, 0, false, &b);
    /* The inputs in creation order: features, labels, NULL for any other. */
    for (uint32_t id = 0, i = 0; st == CLT_OK && id < tr->plan.n; id++) {
        const struct clt_tensor *t = tr->graph->nodes[id];
        if (t->kind != CLT__NODE_INPUT)
            continue;
        inputs[i++] = t == f ? (const void *)x : t == l ? (const void *)y : NULL;
    }
    uint64_t batches = st == CLT_OK ? clt_batcher_epoch_batches(b, false) : 0;
    for (uint64_t i = 0; st == CLT_OK && i < batches; i++) {
        uint32_t filled = 0;
        st = clt_batcher_next(b, false, x, y, &filled, NULL);
        /* The whole padded batch runs: every graph can, and the real rows do not depend on
         * the padding in evaluation mode. */
        if (st == CLT_OK)
            st = run_logits(r, inputs, (uint32_t)batch, c->logits, z);
        if (st == CLT_OK)
            fn(user, i * (uint64_t)batch, filled, z, y, k);
    }
    clt_batcher_free(b);
    free(x);
    free(y);
    free(z);
    free(inputs);
    return st;
}

struct predict_state {
    int32_t *classes;
    float *probs;
};

static void predict_rows(void *user, uint64_t first, uint32_t rows, const float *z,
                         const int32_t *labels, int64_t k)
{
    struct predict_state *s = user;
    (void)labels;
    for (uint32_t i = 0; i < rows; i++) {
        if (s->classes)
            s->classes[first + i] = argmax_of(z + (size_t)i * k, k);
        if (s->probs)
            softmax_row(z + (size_t)i * k, k, s->probs + (first + i) * (uint64_t)k);
    }
}

struct eval_state {
    struct clt_eval_result *r;
    uint64_t *confusion;
    double loss_sum;
};

static void score_rows(void *user, uint64_t first, uint32_t rows, const float *z,
                       const int32_t *labels, int64_t k)
{
    struct eval_state *s = user;
    (void)first;
    for (uint32_t i = 0; i < rows; i++) {
        const float *row = z + (size_t)i * k;
        int32_t y = labels[i];
        if (y < 0 || y >= k)
            continue;
        int32_t p = argmax_of(row, k);
        s->r->examples++;
        s->r->correct += p == y;
        s->loss_sum += softmax_row(row, k, NULL) - (double)row[y];
        if (s->confusion)
            s->confusion[(size_t)y * (size_t)k + (size_t)p]++;
    }
}

static enum clt_status evaluate(const struct runner *r, const struct clt_classifier *c,
                                const struct clt_dataset *ds, uint64_t *confusion,
                                struct clt_eval_result *out)
{
    if (!c || !out)
        return CLT_ERR_INVALID_ARGUMENT;
    if (!c->labels) {
        clt__log(&r->tr->dev->log, CLT_LOG_ERROR, "evaluate: the classifier has no labels input");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    memset(out, 0, sizeof *out);
    if (confusion && c->logits && c->logits->ndim == 2)
        memset(confusion, 0, (size_t)(c->logits->shape[1] * c->logits->shape[1]) * 8);
    struct eval_state s = {out, confusion, 0};
    enum clt_status st = over_dataset(r, c, ds, score_rows, &s);
    if (st == CLT_OK && out->examples > 0) {
        out->loss = s.loss_sum / (double)out->examples;
        out->accuracy = (double)out->correct / (double)out->examples;
    }
    return st;
}

enum clt_status clt_trainer_evaluate(struct clt_trainer *tr, const struct clt_classifier *c,
                                     const struct clt_dataset *ds, uint64_t *confusion,
                                     struct clt_eval_result *out)
{
    if (!tr)
        return CLT_ERR_INVALID_ARGUMENT;
    struct runner r = {tr, NULL};
    return evaluate(&r, c, ds, confusion, out);
}

enum clt_status clt_executor_evaluate(struct clt_executor *ex, const struct clt_classifier *c,
                                      const struct clt_dataset *ds, uint64_t *confusion,
                                      struct clt_eval_result *out)
{
    if (!ex)
        return CLT_ERR_INVALID_ARGUMENT;
    struct runner r = {ex->tr, ex};
    return evaluate(&r, c, ds, confusion, out);
}

enum clt_status clt_trainer_predict_dataset(struct clt_trainer *tr, const struct clt_classifier *c,
                                            const struct clt_dataset *ds, int32_t *classes,
                                            float *probs)
{
    if (!tr)
        return CLT_ERR_INVALID_ARGUMENT;
    struct runner r = {tr, NULL};
    struct predict_state s = {classes, probs};
    return over_dataset(&r, c, ds, predict_rows, &s);
}

enum clt_status clt_executor_predict_dataset(struct clt_executor *ex,
                                             const struct clt_classifier *c,
                                             const struct clt_dataset *ds, int32_t *classes,
                                             float *probs)
{
    if (!ex)
        return CLT_ERR_INVALID_ARGUMENT;
    struct runner r = {ex->tr, ex};
    struct predict_state s = {classes, probs};
    return over_dataset(&r, c, ds, predict_rows, &s);
}
