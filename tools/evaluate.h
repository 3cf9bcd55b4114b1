/*
 * evaluate.h: a model's loss and accuracy on a whole dataset, forward only
 * (clt_trainer_eval: dropout off, batch norm on its running averages). Shared by
 * `cltrain train` (evaluations during and after training) and `cltrain eval`.
 */
#ifndef CLTRAIN_TOOLS_EVALUATE_H
#define CLTRAIN_TOOLS_EVALUATE_H

#include <stdint.h>
#include <stdio.h>

#include "cltrain.h"
#include "models.h"

struct eval_result {
    double loss;      /* mean cross-entropy over every counted target */
    double accuracy;  /* share of targets whose largest logit is the label */
    uint64_t targets; /* counted targets: examples, or tokens of a text */
    uint64_t correct;
    uint64_t *confusion; /* [classes, classes], row = label, column = prediction; NULL unless
                            asked for (classes only; the caller frees it) */
    double seconds;
};

/* Evaluates m (whose trainer is tr) on every example of ds, in file order: a classifier
 * through clt_trainer_evaluate (loss: the mean cross-entropy computed from the logits), a
 * text window by window (loss: the model's). For a text,
 * remap (may be NULL for the identity) maps the dataset's ids to the model's, -1 for a symbol
 * the model does not know (such targets are not counted). With confusion, allocates
 * r->confusion. */
enum clt_status evaluate(struct clt_trainer *tr, const struct model *m,
                         const struct clt_dataset *ds, const int32_t *remap, bool confusion,
                         struct eval_result *r);

/* One class's scores from a confusion matrix. precision = TP / predicted as the class,
 * recall = TP / labelled as the class, f1 their harmonic mean; NAN where the denominator is
 * 0 (never predicted, never labelled; f1 when either is NAN, 0 when both are 0). */
struct class_scores {
    double precision, recall, f1;
    uint64_t support;   /* examples labelled as the class */
    uint64_t predicted; /* examples predicted as the class */
};

/* Fills out[k] from confusion [k, k] (row = label, column = prediction). */
void class_scores_of(const uint64_t *confusion, int64_t k, struct class_scores *out);

/* The unweighted mean of the finite values of field over k classes (NAN if none):
 * macro-averaged precision, recall or F1. */
double class_scores_macro(const struct class_scores *s, int64_t k, char field);

/* Prints the confusion matrix (k <= 32) with each label's precision, recall, F1 and support
 * beside its row, or, for more classes, the scores alone; then the macro averages. */
void eval_print_classes(FILE *f, const uint64_t *confusion, int64_t k);

/* Prints "loss L  accuracy A  (C of T correct)" and a newline: the line `cltrain train` ends
 * with and `cltrain eval` starts with. */
void eval_print(FILE *f, const struct eval_result *r);

#endif
