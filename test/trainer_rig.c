/*
 * trainer_rig.c: the helpers of the trainer tests (trainer_rig.h).
 */

#include <stdlib.h>

#include "trainer_rig.h"

/* x [n, in] -> linear(hidden) -> relu -> linear(classes) -> cross-entropy with y [n]. */
struct mlp make_mlp(int64_t n, int64_t in, int64_t hidden, int64_t classes)
{
    struct mlp m;
    assert_int_equal(clt_graph_create(&m.g), CLT_OK);
    m.x = clt_input(m.g, "x", CLT_F32, 2, (int64_t[]){n, in});
    m.y = clt_input(m.g, "y", CLT_I32, 1, (int64_t[]){n});
    struct clt_tensor *h = clt_relu(m.g, clt_linear(m.g, m.x, hidden, true, "fc1"));
    m.logits = clt_linear(m.g, h, classes, true, "fc2");
    m.loss = clt_cross_entropy(m.g, m.logits, m.y, -1, 0.0f);
    assert_int_equal(clt_graph_status(m.g), CLT_OK);
    return m;
}

struct clt_trainer *make_trainer(struct clt_device *dev, struct mlp *m,
                                 const struct clt_trainer_options *o)
{
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, m->g, m->loss, o, &tr), CLT_OK);
    return tr;
}

/* Reads a parameter into a malloc'd array. */
float *read_param(struct clt_trainer *tr, const char *name, uint64_t count)
{
    float *p = malloc(count * sizeof *p);
    assert_non_null(p);
    assert_int_equal(clt_trainer_param_read(tr, name, p, count), CLT_OK);
    return p;
}

/* A synthetic task: the label is the index of the largest of the first 3 features. */
void make_batch(float *x, int32_t *y, int n, int in, uint64_t seed)
{
    clt_test_fill(x, (size_t)n * in, seed, -1.0f, 1.0f);
    for (int r = 0; r < n; r++) {
        int best = 0;
        for (int c = 1; c < 3; c++)
            if (x[r * in + c] > x[r * in + best])
                best = c;
        y[r] = best;
    }
}
