/*
 * evaluate.c: see evaluate.h.
 */
#include "evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "progress.h"

/* The element count of a tensor. */
static int64_t count_of(const struct clt_tensor *t)
{
    int64_t n = 1;
    for (uint32_t i = 0; i < clt_tensor_ndim(t); i++)
        n *= clt_tensor_dim(t, i);
    return n;
}

/* Counts a text batch's targets and correct predictions. */
static void score(const struct model *m, const float *logits, const int32_t *y, uint32_t rows,
                  struct eval_result *r)
{
    int64_t k = m->classes, per_row = m->positions;
    for (int64_t i = 0; i < (int64_t)rows * per_row; i++) {
        if (y[i] < 0 || y[i] >= k)
            continue;
        int64_t p = argmax(logits + i * k, k);
        r->targets++;
        r->correct += p == y[i];
    }
}

/* A classifier: the library's evaluation over the whole dataset (clt_trainer_evaluate). */
static enum clt_status evaluate_classes(struct clt_trainer *tr, const struct model *m,
                                        const struct clt_dataset *ds, bool confusion,
                                        struct eval_result *r)
{
    if (confusion) {
        r->confusion = calloc((size_t)(m->classes * m->classes), sizeof *r->confusion);
        if (!r->confusion)
            return CLT_ERR_NO_MEMORY;
    }
    struct clt_classifier c = {m->x, m->y, m->logits};
    struct clt_eval_result e;
    enum clt_status st = clt_trainer_evaluate(tr, &c, ds, r->confusion, &e);
    if (st == CLT_OK) {
        r->loss = e.loss;
        r->accuracy = e.accuracy;
        r->targets = e.examples;
        r->correct = e.correct;
    } else {
        free(r->confusion);
        r->confusion = NULL;
    }
    return st;
}

enum clt_status evaluate(struct clt_trainer *tr, const struct model *m,
                         const struct clt_dataset *ds, const int32_t *remap, bool confusion,
                         struct eval_result *r)
{
    memset(r, 0, sizeof *r);
    double start = progress_now();
    bool text = m->positions > 1 || clt_tensor_dtype(m->x) == CLT_I32;
    if (!text) {
        enum clt_status st = evaluate_classes(tr, m, ds, confusion, r);
        r->seconds = progress_now() - start;
        return st;
    }
    /* A text: windows in order, every target of every window counted (as many batches as
     * cover the text about once); targets whose symbol the model does not know are skipped. */
    struct clt_batcher *b = NULL;
    int64_t nx = count_of(m->x), ny = count_of(m->y), nl = count_of(m->logits);
    void *x = malloc((size_t)nx * 4);
    int32_t *y = malloc((size_t)ny * 4);
    float *logits = malloc((size_t)nl * 4);
    enum clt_status st = x && y && logits ? CLT_OK : CLT_ERR_NO_MEMORY;
    if (st == CLT_OK)
        st = clt_batcher_create(ds, (uint32_t)m->batch, (uint32_t)m->positions, 0, false, &b);
    uint64_t batches = st == CLT_OK ? clt_batcher_epoch_batches(b, false) : 0;
    double loss_sum = 0;
    for (uint64_t i = 0; st == CLT_OK && i < batches; i++) {
        uint32_t filled = 0;
        st = clt_batcher_next(b, false, x, y, &filled, NULL);
        if (st == CLT_OK && remap) {
            for (int64_t j = 0; j < nx; j++)
                ((int32_t *)x)[j] = remap[((int32_t *)x)[j]];
            for (int64_t j = 0; j < ny; j++)
                y[j] = remap[y[j]];
        }
        const void *inputs[] = {x, y};
        float loss = 0;
        uint64_t before = r->targets;
        if (st == CLT_OK)
            st = clt_trainer_eval_rows(tr, inputs, (uint32_t)m->batch, m->logits, logits,
                                       (uint64_t)nl, &loss);
        if (st == CLT_OK) {
            score(m, logits, y, filled, r);
            loss_sum += (double)loss * (double)(r->targets - before);
        }
    }
    if (st == CLT_OK) {
        r->loss = r->targets ? loss_sum / (double)r->targets : 0;
        r->accuracy = r->targets ? (double)r->correct / (double)r->targets : 0;
    }
    r->seconds = progress_now() - start;
    clt_batcher_free(b);
    free(x);
    free(y);
    free(logits);
    return st;
}

void eval_print(FILE *f, const struct eval_result *r)
{
    fprintf(f, "loss %.6f  accuracy %.4f  (%llu of %llu correct)\n", r->loss, r->accuracy,
            (unsigned long long)r->correct, (unsigned long long)r->targets);
}

void class_scores_of(const uint64_t *confusion, int64_t k, struct class_scores *out)
{
    for (int64_t c = 0; c < k; c++) {
        uint64_t tp = confusion[c * k + c], labelled = 0, predicted = 0;
        for (int64_t j = 0; j < k; j++) {
            labelled += confusion[c * k + j];
            predicted += confusion[j * k + c];
        }
        struct class_scores *s = &out[c];
        s->support = labelled;
        s->predicted = predicted;
        s->precision = predicted ? (double)tp / (double)predicted : NAN;
        s->recall = labelled ? (double)tp / (double)labelled : NAN;
        if (isnan(s->precision) || isnan(s->recall))
            s->f1 = NAN;
        else if (s->precision + s->recall == 0)
            s->f1 = 0;
        else
            s->f1 = 2 * s->precision * s->recall / (s->precision + s->recall);
    }
}

double class_scores_macro(const struct class_scores *s, int64_t k, char field)
{
    double sum = 0;
    int64_t n = 0;
    for (int64_t c = 0; c < k; c++) {
        double v = field == 'p' ? s[c].precision : field == 'r' ? s[c].recall : s[c].f1;
        if (isfinite(v)) {
            sum += v;
            n++;
        }
    }
    return n ? sum / (double)n : NAN;
}

/* A score in a column of width 9, "-" when undefined. */
static void score_cell(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, " %9.4f", v);
    else
        fprintf(f, " %9s", "-");
}

void eval_print_classes(FILE *f, const uint64_t *confusion, int64_t k)
{
    struct class_scores *s = malloc((size_t)k * sizeof *s);
    if (!s)
        return;
    class_scores_of(confusion, k, s);
    bool matrix = k <= 32;
    if (matrix) {
        fprintf(f, "confusion matrix (rows: label, columns: prediction) and per-class scores\n"
                   "      ");
        for (int64_t j = 0; j < k; j++)
            fprintf(f, " %6lld", (long long)j);
        fprintf(f, "  |");
    } else {
        fprintf(f, "per-class scores\n class");
    }
    fprintf(f, " %9s %9s %9s %9s\n", "precision", "recall", "f1", "support");
    for (int64_t i = 0; i < k; i++) {
        fprintf(f, "%6lld", (long long)i);
        for (int64_t j = 0; matrix && j < k; j++)
            fprintf(f, " %6llu", (unsigned long long)confusion[i * k + j]);
        if (matrix)
            fprintf(f, "  |");
        score_cell(f, s[i].precision);
        score_cell(f, s[i].recall);
        score_cell(f, s[i].f1);
        fprintf(f, " %9llu\n", (unsigned long long)s[i].support);
    }
    fprintf(f, "macro average (over classes where defined): precision");
    score_cell(f, class_scores_macro(s, k, 'p'));
    fprintf(f, "  recall");
    score_cell(f, class_scores_macro(s, k, 'r'));
    fprintf(f, "  f1");
    score_cell(f, class_scores_macro(s, k, 'f'));
    fprintf(f, "\n");
    free(s);
}
