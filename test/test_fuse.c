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
 *
 * In 16-bit storage (fp16, bf16), on a graph of the elementwise family's ops only (their
 * kernels, and the chains', follow the storage on this branch: relu - dropout - scale - add
 * and sigmoid - mul - tanh between mul_broadcast layers, mean as the loss), the fused and the
 * unfused plan run their forward and their backward entries with the device's storage set,
 * on inputs rounded to it, and are compared with a double reference of the graph on those
 * inputs (and the fp32 run with it, within 1e-5). Tolerances, u the storage's unit
 * roundoff (2^-11 fp16, 2^-8 bf16): the output |got - want| <= 3u (1 + |want|) (values up to
 * 4 pass through 3 to 6 stored roundings: mul_broadcast's outputs, the chain's output, and in
 * the unfused plan every op's), and the parameters' gradients, sums of 37 products,
 * |got - want| <= 3u (sum of |terms| of that column). Measured worst on PoCL: 0.27 of the
 * tolerance in fp16, 0.23 in bf16 (both the unfused plan's output). The fused and unfused
 * results are compared with each other with the same bounds doubled. The chains' programs are
 * built for fp32 first (the trainers' dry run), then fp16, then bf16: a chain run with the
 * program of another storage fails every comparison.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref_activation.h"
#include "st_tensor.h"
#include "trainer.h"

enum { N = 37, IN = 13, HID = 19, CLS = 5, STEPS = 4 };
/* The width of the recomputation test's layers: a multiple of 32, so that its chains take the
 * generated kernels' other index form (engine/fuse.c, put_index: no column check); HID, odd,
 * takes the checked one. */
enum { WIDE = 64 };

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
 * chain and the linear that read it. Layers WIDE wide. */
static void fusion_with_recomputation_matches(void **state)
{
    struct clt_device *dev = *state;
    struct clt_graph *g;
    assert_int_equal(clt_graph_create(&g), CLT_OK);
    struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){N, IN});
    struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){N});
    /* fc1's bias and gelu fused and recomputed (the chain's forward runs again before fc2's
     * backward), then mul - tanh - scale - relu fused with fc2's bias, reading the gelu. */
    struct clt_tensor *a = clt_gelu(g, clt_linear(g, x, WIDE, true, "fc1"), true);
    struct clt_tensor *b = clt_linear(g, a, WIDE, true, "fc2");
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
    float w[2][WIDE * IN];
    for (int k = 0; k < 2; k++)
        assert_int_equal(clt_trainer_param_read(tr[k], "fc1.weight", w[k], WIDE * IN), CLT_OK);
    double wd[WIDE * IN];
    for (int i = 0; i < WIDE * IN; i++)
        wd[i] = w[1][i];
    clt_test_assert_close("fc1.weight with recomputation", w[0], wd, WIDE * IN, 1e-6, 1e-5);
    for (int k = 0; k < 2; k++)
        clt_trainer_free(tr[k]);
    clt_graph_free(g);
}

/* ==== 16-bit storage ===================================================================== */

enum { RN = 37, RH = 19 };
#define R_P 0.3f
#define R_SCALE 0.7f
#define R_SEED 11u
#define R_STEP 3u

struct net16 {
    struct clt_graph *g;
    struct clt_tensor *x, *s1, *s2, *drop, *h2, *loss;
};

/* u = x s1 and v = x s2 (mul_broadcast, not fused: they broadcast), then the chains
 * relu - dropout - scale - add(u, .) (u both the chain's input and add's other input) and
 * sigmoid(v) - mul(., h) - tanh; the loss is the mean. */
static struct net16 make_net16(void)
{
    struct net16 m;
    assert_int_equal(clt_graph_create(&m.g), CLT_OK);
    struct clt_graph *g = m.g;
    const struct clt_init zeros = {CLT_INIT_ZEROS, 0, 0};
    m.x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){RN, RH});
    m.s1 = clt_param(g, "s1", 1, (int64_t[]){RH}, zeros);
    m.s2 = clt_param(g, "s2", 1, (int64_t[]){RH}, zeros);
    struct clt_tensor *u = clt_mul_broadcast(g, m.x, m.s1);
    m.drop = clt_dropout(g, clt_relu(g, u), R_P);
    struct clt_tensor *h = clt_add(g, u, clt_scale(g, m.drop, R_SCALE));
    struct clt_tensor *v = clt_mul_broadcast(g, m.x, m.s2);
    m.h2 = clt_tanh(g, clt_mul(g, clt_sigmoid(g, v), h));
    m.loss = clt_mean(g, m.h2);
    assert_int_equal(clt_graph_status(g), CLT_OK);
    return m;
}

/* The host data of the 16-bit runs, rounded to the storage, and what a run gives. */
struct data16 {
    float x[RN * RH], s1[RH], s2[RH], gy[RN * RH];
};
struct result16 {
    float h2[RN * RH], ds1[RH], ds2[RH];
};

static void write_st(struct clt_device *dev, struct clt__buf b, const float *host, size_t n,
                     enum clt_precision s)
{
    size_t bytes = clt_test_storage_bytes(s);
    unsigned char *image = malloc(n * bytes);
    assert_non_null(image);
    for (size_t i = 0; i < n; i++) {
        uint16_t h = s == CLT_PRECISION_FP16 ? clt__f32_to_f16(host[i]) : clt__f32_to_bf16(host[i]);
        if (bytes == 4)
            memcpy(image + 4 * i, &host[i], 4);
        else
            memcpy(image + 2 * i, &h, 2);
    }
    assert_int_equal(clEnqueueWriteBuffer(dev->queue, b.mem, CL_TRUE, b.offset * bytes, n * bytes,
                                          image, 0, NULL, NULL),
                     CL_SUCCESS);
    free(image);
}

static void read_st(struct clt_device *dev, struct clt__buf b, float *host, size_t n,
                    enum clt_precision s)
{
    size_t bytes = clt_test_storage_bytes(s);
    unsigned char *image = malloc(n * bytes);
    assert_non_null(image);
    assert_int_equal(clEnqueueReadBuffer(dev->queue, b.mem, CL_TRUE, b.offset * bytes, n * bytes,
                                         image, 0, NULL, NULL),
                     CL_SUCCESS);
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, image + 2 * i, 2);
        if (bytes == 4)
            memcpy(&host[i], image + 4 * i, 4);
        else
            host[i] = s == CLT_PRECISION_FP16 ? clt__f16_to_f32(h) : clt__bf16_to_f32(h);
    }
    free(image);
}

/* The forward pass and the backward entries of tr (fused chains or not, as its plan has
 * them) with the device's storage s, from the gradient gy of h2 (the loss's own backward,
 * whose seed is the trainer's business, left out). */
static void run16(struct clt_device *dev, struct clt_trainer *tr, const struct net16 *m,
                  const struct data16 *d, enum clt_precision s, struct result16 *r)
{
    enum clt_precision was = clt__storage_set(dev, s);
    struct clt__exec ex;
    memset(&ex, 0, sizeof ex);
    ex.dev = dev;
    ex.tr = tr;
    ex.training = true;
    ex.seed = R_SEED;
    ex.step = R_STEP;
    ex.batch = ex.rows = RN;
    write_st(dev, clt__val(&ex, m->x), d->x, RN * RH, s);
    write_st(dev, clt__val(&ex, m->s1), d->s1, RH, s);
    write_st(dev, clt__val(&ex, m->s2), d->s2, RH, s);
    assert_int_equal(clt__trainer_forward(tr, &ex), CLT_OK);
    read_st(dev, clt__val(&ex, m->h2), r->h2, RN * RH, s);
    write_st(dev, clt__grad(&ex, m->h2), d->gy, RN * RH, s);
    ex.in_backward = true;
    const struct clt__plan *p = &tr->plan;
    for (uint32_t e = 0; e < p->nbwd; e++) {
        const struct clt_tensor *t = tr->graph->nodes[p->bwd[e].node];
        int32_t group = p->info[t->id].group;
        enum clt_status st;
        if (t == m->loss)
            continue;
        if (p->bwd[e].kind == CLT__ENTRY_RECOMPUTE)
            st = group >= 0 ? clt__fuse_forward(&ex, &p->groups[group])
                            : clt__def(t)->forward(&ex, t);
        else if (group >= 0)
            st = clt__fuse_backward(&ex, &p->groups[group]);
        else
            st = clt__def(t)->backward(&ex, t, clt__accumulate_mask(&ex, t));
        assert_int_equal(st, CLT_OK);
    }
    read_st(dev, clt__grad(&ex, m->s1), r->ds1, RH, s);
    read_st(dev, clt__grad(&ex, m->s2), r->ds2, RH, s);
    clt__storage_set(dev, was);
}

/* The graph in double on the rounded data: h2, ds1, ds2, and for each column the sum of
 * |terms| of ds1 and of ds2. */
static void ref16(const struct net16 *m, const struct data16 *d, double *h2, double *ds1,
                  double *ds2, double *abs1, double *abs2)
{
    bool keep[RN * RH];
    ref_dropout_mask(R_P, R_SEED ^ ((uint64_t)m->drop->id << 40), R_STEP, keep, RN * RH);
    const double fs = (double)(1.0f / (1.0f - R_P)), sc = (double)R_SCALE;
    for (int c = 0; c < RH; c++)
        ds1[c] = ds2[c] = abs1[c] = abs2[c] = 0.0;
    for (int i = 0; i < RN * RH; i++) {
        const int c = i % RH;
        const double x = d->x[i], u = x * d->s1[c], v = x * d->s2[c];
        const double drop = keep[i] && u > 0.0 ? u * fs : 0.0, h = u + sc * drop;
        const double sg = 1.0 / (1.0 + exp(-v)), y = tanh(sg * h);
        h2[i] = y;
        const double dm = d->gy[i] * (1.0 - y * y), dh = dm * sg, dv = dm * h * sg * (1.0 - sg);
        const double du = dh + dh * sc * (keep[i] && u > 0.0 ? fs : 0.0);
        ds1[c] += du * x;
        ds2[c] += dv * x;
        abs1[c] += fabs(du * x);
        abs2[c] += fabs(dv * x);
    }
}

/* |got - want| <= tol (1 + |want|) for h2; |got - want| <= tol * scale[c] for the gradients. */
static void check16(const char *what, enum clt_precision s, const struct result16 *r,
                    const double *h2, const double *ds1, const double *ds2, const double *abs1,
                    const double *abs2, double tol)
{
    char full[96];
    snprintf(full, sizeof full, "%s: h2", what);
    st_assert_close(full, s, r->h2, h2, RN * RH, tol, tol);
    for (int c = 0; c < RH; c++) {
        snprintf(full, sizeof full, "%s: ds1[%d]", what, c);
        st_assert_close(full, s, &r->ds1[c], &ds1[c], 1, tol * abs1[c], 0.0);
        snprintf(full, sizeof full, "%s: ds2[%d]", what, c);
        st_assert_close(full, s, &r->ds2[c], &ds2[c], 1, tol * abs2[c], 0.0);
    }
}

static void fused_chains_in_16_bit(void **state)
{
    struct clt_device *dev = *state;
    struct net16 m = make_net16();
    struct clt_trainer *tr[2];
    static struct data16 d;
    static struct result16 r[2];
    static double h2[RN * RH];
    double ds1[RH], ds2[RH], abs1[RH], abs2[RH], h2f[RN * RH], ds1f[RH], ds2f[RH];
    const enum clt_precision all[] = {CLT_PRECISION_FP32, CLT_PRECISION_FP16, CLT_PRECISION_BF16};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) {
        enum clt_precision s = all[k];
        /* A trainer of the precision, fused and not: its plan stores the tensors in s. */
        for (int t = 0; t < 2; t++) {
            struct clt_trainer_options o;
            clt_trainer_options_init(&o, CLT_OPTIM_SGD);
            o.precision = s;
            if (t == 1)
                assert_int_equal(setenv("CLTRAIN_FUSE", "0", 1), 0);
            enum clt_status st = clt_trainer_create(dev, m.g, m.loss, &o, &tr[t]);
            assert_int_equal(unsetenv("CLTRAIN_FUSE"), 0);
            assert_int_equal(st, CLT_OK);
        }
        /* Both chains are fused in the first plan, none in the second. */
        assert_int_equal(tr[0]->plan.ngroups, 2);
        assert_int_equal(tr[1]->plan.ngroups, 0);
        clt_test_fill(d.x, RN * RH, 5, -2.0f, 2.0f);
        clt_test_fill(d.s1, RH, 6, -1.0f, 1.0f);
        clt_test_fill(d.s2, RH, 7, -1.0f, 1.0f);
        clt_test_fill(d.gy, RN * RH, 8, -1.0f, 1.0f);
        clt_test_round(d.x, RN * RH, s);
        clt_test_round(d.s1, RH, s);
        clt_test_round(d.s2, RH, s);
        clt_test_round(d.gy, RN * RH, s);
        ref16(&m, &d, h2, ds1, ds2, abs1, abs2);
        double tol = s == CLT_PRECISION_FP32 ? 1e-5 : 3.0 * clt_test_eps(s);
        char what[64];
        for (int t = 0; t < 2; t++) {
            run16(dev, tr[t], &m, &d, s, &r[t]);
            snprintf(what, sizeof what, "%s plan against the reference", t ? "unfused" : "fused");
            check16(what, s, &r[t], h2, ds1, ds2, abs1, abs2, tol);
        }
        for (int i = 0; i < RN * RH; i++)
            h2f[i] = r[1].h2[i];
        for (int c = 0; c < RH; c++) {
            ds1f[c] = r[1].ds1[c];
            ds2f[c] = r[1].ds2[c];
        }
        check16("fused plan against the unfused one", s, &r[0], h2f, ds1f, ds2f, abs1, abs2,
                2.0 * tol);
        st_report(st_name(s));
        for (int t = 0; t < 2; t++)
            clt_trainer_free(tr[t]);
    }
    clt_graph_free(m.g);
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(fused_training_matches_unfused),
        CLT_DEVICE_TEST(fusion_with_recomputation_matches),
        CLT_DEVICE_TEST(fused_chains_in_16_bit),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
