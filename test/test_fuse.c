/*
 * test_fuse.c: the fusion pass (engine/fuse.c, docs/fusion.md) against the unfused ops.
 *
 * One graph holds every kind of chain the pass makes: relu - dropout - scale ending in a
 * residual add (the chain entering the add through its second input), a chain whose input is
 * also the outside input of its last op (both gradients land in one tensor), and sigmoid -
 * mul - tanh (mul's backward reads both inputs, so the chain recomputes the sigmoid). Two
 * trainers of that graph, one made with CLTRAIN_FUSE=0, take the same Adam steps with
 * dropout on: losses and parameters agree within 1e-6 + 1e-5 relative (the chains compute
 * what the ops compute; only a gradient added with fma by an op's own kernel and without it
 * by the chain may differ in the last bit), the fused plan needs less activation memory, and
 * evaluation of a value inside a chain agrees too. The sizes are odd on purpose.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

enum { N = 37, IN = 13, HID = 19, CLS = 5, STEPS = 4 };

struct net {
    struct clt_graph *g;
    struct clt_tensor *x, *y, *inside, *loss;
};

static struct net make_net(void)
{
    struct net m;
    assert_int_equal(clt_graph_create(&m.g), CLT_OK);
    struct clt_graph *g = m.g;
    m.x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){N, IN});
    m.y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){N});
    struct clt_tensor *u = clt_linear(g, m.x, HID, true, "fc1");
    /* relu - dropout - scale - add(u, .): the residual enters through slot 0. */
    m.inside = clt_relu(g, u);
    struct clt_tensor *h = clt_scale(g, clt_dropout(g, m.inside, 0.3f), 0.7f);
    h = clt_add(g, u, h);
    /* sigmoid(v) * h, then tanh: the mul reads the sigmoid, recomputed in the backward. */
    struct clt_tensor *v = clt_linear(g, m.x, HID, true, "gate");
    h = clt_tanh(g, clt_mul(g, clt_sigmoid(g, v), h));
    struct clt_tensor *logits = clt_linear(g, h, CLS, true, "fc2");
    m.loss = clt_cross_entropy(g, logits, m.y, -1, 0.0f);
    assert_int_equal(clt_graph_status(g), CLT_OK);
    return m;
}

static struct clt_trainer *make_trainer(struct clt_device *dev, struct net *m, bool fuse)
{
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAMW);
    o.optimizer.lr = 0.05f;
    o.seed = 11;
    if (!fuse)
        assert_int_equal(setenv("CLTRAIN_FUSE", "0", 1), 0);
    struct clt_trainer *tr = NULL;
    enum clt_status st = clt_trainer_create(dev, m->g, m->loss, &o, &tr);
    assert_int_equal(unsetenv("CLTRAIN_FUSE"), 0);
    assert_int_equal(st, CLT_OK);
    return tr;
}

static void fused_training_matches_unfused(void **state)
{
    struct clt_device *dev = *state;
    struct net m = make_net();
    struct clt_trainer *tr[2] = {make_trainer(dev, &m, true), make_trainer(dev, &m, false)};
    float x[N * IN];
    int32_t y[N];
    for (int i = 0; i < N; i++)
        y[i] = (i * 7) % CLS;
    float loss[2][STEPS];
    for (int s = 0; s < STEPS; s++) {
        clt_test_fill(x, N * IN, 100 + (uint64_t)s, -2.0f, 2.0f);
        const void *in[2] = {x, y};
        for (int k = 0; k < 2; k++) {
            assert_int_equal(clt_trainer_step(tr[k], in), CLT_OK);
            assert_int_equal(clt_trainer_loss(tr[k], &loss[k][s]), CLT_OK);
        }
    }
    double want[STEPS];
    for (int s = 0; s < STEPS; s++)
        want[s] = loss[1][s];
    clt_test_assert_close("loss", loss[0], want, STEPS, 1e-6, 1e-5);
    /* Training moved the parameters: the comparison below is not of initial values. */
    assert_true(fabsf(loss[0][STEPS - 1] - loss[0][0]) > 1e-4f);

    const char *names[] = {"fc1.weight", "fc1.bias", "gate.weight", "fc2.weight", "fc2.bias"};
    const uint64_t counts[] = {HID * IN, HID, HID * IN, CLS * HID, CLS};
    for (size_t p = 0; p < sizeof names / sizeof names[0]; p++) {
        float *a = malloc(counts[p] * sizeof *a), *b = malloc(counts[p] * sizeof *b);
        double *bd = malloc(counts[p] * sizeof *bd);
        assert_true(a && b && bd);
        assert_int_equal(clt_trainer_param_read(tr[0], names[p], a, counts[p]), CLT_OK);
        assert_int_equal(clt_trainer_param_read(tr[1], names[p], b, counts[p]), CLT_OK);
        for (uint64_t i = 0; i < counts[p]; i++)
            bd[i] = b[i];
        clt_test_assert_close(names[p], a, bd, counts[p], 1e-6, 1e-5);
        free(a);
        free(b);
        free(bd);
    }

    /* The chains' inner values and gradients need no storage of their own. */
    struct clt_memory_report mem[2];
    for (int k = 0; k < 2; k++)
        assert_int_equal(clt_trainer_memory(tr[k], &mem[k]), CLT_OK);
    assert_true(mem[0].activations_unshared < mem[1].activations_unshared);
    assert_true(mem[0].activations <= mem[1].activations);

    /* A value inside a chain, and the loss, evaluated. */
    float inside[2][N * HID], eloss[2];
    const void *in[2] = {x, y};
    for (int k = 0; k < 2; k++)
        assert_int_equal(clt_trainer_eval(tr[k], in, m.inside, inside[k], N * HID, &eloss[k]),
                         CLT_OK);
    double *wd = malloc(N * HID * sizeof *wd);
    assert_non_null(wd);
    for (int i = 0; i < N * HID; i++)
        wd[i] = inside[1][i];
    clt_test_assert_close("relu inside a chain", inside[0], wd, N * HID, 1e-6, 1e-5);
    double wl = eloss[1];
    clt_test_assert_close("evaluated loss", &eloss[0], &wl, 1, 1e-6, 1e-5);
    free(wd);
    for (int k = 0; k < 2; k++)
        clt_trainer_free(tr[k]);
    clt_graph_free(m.g);
}

/* With recomputation on too: a recomputed chain is there again for the backward of the
 * chain and the linear that read it. */
static void fusion_with_recomputation_matches(void **state)
{
    struct clt_device *dev = *state;
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){N, IN});
    struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){N});
    /* fc1's bias and gelu fused and recomputed (the chain's forward runs again before fc2's
     * backward), then mul - tanh - scale - relu fused with fc2's bias, reading the gelu. */
    struct clt_tensor *a = clt_gelu(g, clt_linear(g, x, HID, true, "fc1"), true);
    struct clt_tensor *b = clt_linear(g, a, HID, true, "fc2");
    struct clt_tensor *h = clt_relu(g, clt_scale(g, clt_tanh(g, clt_mul(g, a, b)), 1.5f));
    struct clt_tensor *loss = clt_cross_entropy(g, clt_linear(g, h, CLS, true, "out"), y, -1, 0);
    assert_int_equal(clt_graph_status(g), CLT_OK);
    struct clt_trainer *tr[2];
    for (int k = 0; k < 2; k++) {
        struct clt_trainer_options o;
        clt_trainer_options_init(&o, CLT_OPTIM_SGD);
        o.optimizer.lr = 0.1f;
        o.recompute = true;
        if (k == 1)
            assert_int_equal(setenv("CLTRAIN_FUSE", "0", 1), 0);
        enum clt_status st = clt_trainer_create(dev, g, loss, &o, &tr[k]);
        assert_int_equal(unsetenv("CLTRAIN_FUSE"), 0);
        assert_int_equal(st, CLT_OK);
    }
    float xs[N * IN], l[2][STEPS];
    int32_t ys[N];
    for (int i = 0; i < N; i++)
        ys[i] = (i * 3) % CLS;
    for (int s = 0; s < STEPS; s++) {
        clt_test_fill(xs, N * IN, 7 + (uint64_t)s, -1.0f, 1.0f);
        const void *in[2] = {xs, ys};
        for (int k = 0; k < 2; k++) {
            assert_int_equal(clt_trainer_step(tr[k], in), CLT_OK);
            assert_int_equal(clt_trainer_loss(tr[k], &l[k][s]), CLT_OK);
        }
    }
    double want[STEPS];
    for (int s = 0; s < STEPS; s++)
        want[s] = l[1][s];
    clt_test_assert_close("loss with recomputation", l[0], want, STEPS, 1e-6, 1e-5);
    float w[2][HID * IN];
    for (int k = 0; k < 2; k++)
        assert_int_equal(clt_trainer_param_read(tr[k], "fc1.weight", w[k], HID * IN), CLT_OK);
    double wd[HID * IN];
    for (int i = 0; i < HID * IN; i++)
        wd[i] = w[1][i];
    clt_test_assert_close("fc1.weight with recomputation", w[0], wd, HID * IN, 1e-6, 1e-5);
    for (int k = 0; k < 2; k++)
        clt_trainer_free(tr[k]);
    clt_graph_free(g);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(fused_training_matches_unfused),
        CLT_DEVICE_TEST(fusion_with_recomputation_matches),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
