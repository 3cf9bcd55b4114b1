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

/* Evaluates m (whose trainer is tr) on every example of ds, in file order. For a text,
 * remap (may be NULL for the identity) maps the dataset's ids to the model's, -1 for a symbol
 * the model does not know (such targets are not counted). With confusion, allocates
 * r->confusion. */
enum clt_status evaluate(struct clt_trainer *tr, const struct model *m,
                         const struct clt_dataset *ds, const int32_t *remap, bool confusion,
                         struct eval_result *r);

/* Prints "loss L  accuracy A  (C of T correct)" and a newline: the line `cltrain train` ends
 * with and `cltrain eval` starts with. */
void eval_print(FILE *f, const struct eval_result *r);

#endif
