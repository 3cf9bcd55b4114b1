/*
 * test_train16.c: 16-bit training through real trainers (clt_trainer_options.precision,
 * docs/precision.md): the fp16 loss scaler in a step, exact resume, run-to-run equality, the
 * memory report's 16-bit figures, and every refusal.
 *
 * The models read no GEMM (embedding, layer norm, activations, bias, dropout, cross-entropy),
 * so that they test the trainer's 16-bit path apart from the GEMM backends:
 *
 *   bigram:  ids [n] -> embedding E [v, v] -> logits [n, v] -> cross_entropy(labels)
 *   deep:    ids [n] -> embedding [v, v] -> layer_norm -> gelu -> dropout 0.1 -> add_bias
 *            -> cross_entropy(labels)
 *
 * at n = v = 8 (each batch's ids distinct), and the deep one at n = 32, v = 24 for the
 * memory report (tensors past the plan's 256-byte alignment).
 *
 * Tolerances: the 16-bit training losses against fp32's from the same start within 1e-2
 * relative (measured: fp16 3e-4, bf16 2e-3 over 13 steps); evaluation's logits with the same
 * parameters within 2^-8 relative + 2e-3 (fp16) and 2^-6 + 1.6e-2 (bf16): four ulps of the
 * storage, since the parameters and each of four activations in a row round once, and layer
 * norm scales its input's error up (bf16 measured 6.4e-3 relative at worst); a step's parameters
 * against fp32's within 1e-3 relative (fp16 rounds the logits' gradient to 2^-11). Everything else
 * is exact (bit for bit): a skipped step leaves the parameters, a resumed run equals the
 * uninterrupted one, two runs are equal.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "ops/ops.h"
#include "precision.h"

#define V 8 /* vocabulary and classes of the small models */
#define N 8 /* their batch rows */

struct model {
    int64_t n, v;
    struct clt_graph *g;
    struct clt_tensor *ids, *labels, *logits, *loss;
};

/* The bigram model, or the deep one, of n rows and v classes. */
static struct model make_model_of(bool deep, int64_t n, int64_t v)
{
    struct model m;
    m.n = n;
    m.v = v;
    assert_int_equal(clt_graph_create(&m.g), CLT_OK);
    m.ids = clt_input(m.g, "ids", CLT_I32, 1, (int64_t[]){n});
    m.labels = clt_input(m.g, "labels", CLT_I32, 1, (int64_t[]){n});
    struct clt_tensor *h = clt_embedding(m.g, m.ids, v, v, "emb");
    if (deep) {
        h = clt_layer_norm(m.g, h, 1e-5f, "ln");
        h = clt_gelu(m.g, h, true);
        h = clt_dropout(m.g, h, 0.1f);
        struct clt_tensor *b =
            clt_param(m.g, "bias", 1, (int64_t[]){v}, (struct clt_init){CLT_INIT_ZEROS});
        h = clt_add_bias(m.g, h, b);
    }
    m.logits = h;
    m.loss = clt_cross_entropy(m.g, h, m.labels, -1, 0.0f);
    assert_int_equal(clt_graph_status(m.g), CLT_OK);
    return m;
}

static struct model make_model(bool deep)
{
    return make_model_of(deep, N, V);
}

#define NMAX 32

/* Batch k of a fixed stream: ids (distinct when n <= v = 8) and the label "id + 1 mod v" (a
 * bigram to learn), with a little noise. */
static void batch(const struct model *m, uint32_t k, int32_t *ids, int32_t *labels)
{
    for (int64_t i = 0; i < m->n; i++) {
        ids[i] = (int32_t)((k * 5 + (uint32_t)i * 3) % (uint32_t)m->v);
        labels[i] = (int32_t)((ids[i] + 1 + ((k + (uint32_t)i) % 7 == 0)) % m->v);
    }
}

static void step(struct clt_trainer *tr, const struct model *m, uint32_t k)
{
    int32_t ids[NMAX], labels[NMAX];
    batch(m, k, ids, labels);
    const void *in[] = {ids, labels};
    assert_int_equal(clt_trainer_step(tr, in), CLT_OK);
}

static struct clt_trainer *make_trainer(struct clt_device *dev, const struct model *m,
                                        const struct clt_trainer_options *o)
{
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, m->g, m->loss, o, &tr), CLT_OK);
    return tr;
}

/* Every parameter and state tensor of tr, concatenated (count written to *n). */
static float *all_params(struct clt_trainer *tr, size_t *n)
{
    size_t total = 0;
    uint32_t np = clt_trainer_param_count(tr);
    for (uint32_t i = 0; i < np; i++) {
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(tr, i, &info), CLT_OK);
        int64_t c = 1;
        for (uint32_t d = 0; d < info.ndim; d++)
            c *= info.shape[d];
        total += (size_t)c;
    }
    float *all = clt_test_floats(total);
    size_t at = 0;
    for (uint32_t i = 0; i < np; i++) {
        struct clt_param_info info;
        assert_int_equal(clt_trainer_param_info(tr, i, &info), CLT_OK);
        int64_t c = 1;
        for (uint32_t d = 0; d < info.ndim; d++)
            c *= info.shape[d];
        assert_int_equal(clt_trainer_param_read(tr, info.name, all + at, (uint64_t)c), CLT_OK);
        at += (size_t)c;
    }
    *n = total;
    return all;
}

static void assert_same_bits(const char *what, const float *a, const float *b, size_t n)
{
    if (memcmp(a, b, n * sizeof *a) != 0) {
        for (size_t i = 0; i < n; i++)
            if (memcmp(&a[i], &b[i], sizeof *a) != 0)
                fail_msg("%s: element %zu differs: %.9g against %.9g", what, i, (double)a[i],
                         (double)b[i]);
    }
}

static const char *pname(enum clt_precision p)
{
    return clt_precision_name(p);
}

/* ---- The fp16 loss scaler in a step ---------------------------------------------------- */

/* The bigram model with E = 0: every logit 0, p = 1 / V, and d loss / d logit of a row's
 * label = (1 / V - 1) / N. At scale 2^20 that times the scale is -114688 for V = N = 8, past
 * fp16's largest (65504): the cross-entropy's 16-bit gradient overflows, the step is
 * skipped, the scale halves to 2^19 (-57344: finite; the ids of a batch are distinct, so no
 * two rows add into one row of E's gradient), and training goes on. */
static void fp16_overflow_skips_the_step_and_halves_the_scale(void **state)
{
    struct clt_device *dev = *state;
    struct model m = make_model(false);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);
    o.optimizer.lr = 0.5;
    o.precision = CLT_PRECISION_FP16;
    o.loss_scaling.init_scale = 1048576.0; /* 2^20 */
    o.loss_scaling.growth_interval = 3;
    struct clt_trainer *tr = make_trainer(dev, &m, &o);
    float zeros[V * V] = {0};
    assert_int_equal(clt_trainer_param_write(tr, "emb.weight", zeros, V * V), CLT_OK);
    struct clt_trainer_stats s;
    assert_int_equal(clt_trainer_stats(tr, &s), CLT_OK);
    assert_true(s.loss_scale == 1048576.0f);

    step(tr, &m, 0);
    float after[V * V];
    assert_int_equal(clt_trainer_param_read(tr, "emb.weight", after, V * V), CLT_OK);
    assert_same_bits("parameters after the skipped step", after, zeros, V * V);
    assert_int_equal(clt_trainer_stats(tr, &s), CLT_OK);
    assert_int_equal(s.skipped, 1);
    assert_int_equal(s.updates, 0);
    assert_true(s.loss_scale == 524288.0f);
    float loss0;
    assert_int_equal(clt_trainer_loss(tr, &loss0), CLT_OK);
    assert_float_equal(loss0, logf((float)V), 2e-3); /* the loss itself is not scaled */

    /* The next steps apply: the loss falls, and after growth_interval clean steps the scale
     * doubles. */
    float prev = loss0;
    for (uint32_t k = 1; k <= 3; k++) {
        step(tr, &m, k);
        float loss;
        assert_int_equal(clt_trainer_loss(tr, &loss), CLT_OK);
        assert_int_equal(clt_trainer_stats(tr, &s), CLT_OK);
        assert_int_equal(s.skipped, 1);
        assert_int_equal(s.updates, k);
        if (k > 1) /* step 1 ran on the parameters step 0 left: the same loss */
            assert_true(loss < prev);
        prev = loss;
    }
    assert_true(s.loss_scale == 1048576.0f); /* grown after 3 clean steps */
    assert_int_equal(clt_trainer_param_read(tr, "emb.weight", after, V * V), CLT_OK);
    bool moved = false;
    for (int i = 0; i < V * V; i++)
        moved = moved || after[i] != 0.0f;
    assert_true(moved);

    /* The first applied step's gradient is fp32's (the scale undone exactly): one step of a
     * fresh fp32 trainer on batch 1 from E = 0 lands on the same parameters, to fp16's
     * rounding of the logits' gradient (2^-11 relative). */
    struct clt_trainer_options o32 = o;
    o32.precision = CLT_PRECISION_FP32;
    struct clt_trainer *ref = make_trainer(dev, &m, &o32);
    assert_int_equal(clt_trainer_param_write(ref, "emb.weight", zeros, V * V), CLT_OK);
    o.loss_scaling.init_scale = 0; /* GradScaler's 65536: no overflow here */
    struct clt_trainer *dflt = make_trainer(dev, &m, &o);
    assert_int_equal(clt_trainer_param_write(dflt, "emb.weight", zeros, V * V), CLT_OK);
    step(ref, &m, 1);
    step(dflt, &m, 1);
    float want[V * V], got[V * V];
    assert_int_equal(clt_trainer_param_read(ref, "emb.weight", want, V * V), CLT_OK);
    assert_int_equal(clt_trainer_param_read(dflt, "emb.weight", got, V * V), CLT_OK);
    double w[V * V];
    for (int i = 0; i < V * V; i++)
        w[i] = want[i];
    clt_test_assert_close("fp16 step against fp32's", got, w, V * V, 1e-6, 1e-3);
    assert_int_equal(clt_trainer_stats(dflt, &s), CLT_OK);
    assert_int_equal(s.skipped, 0);
    assert_true(s.loss_scale == 65536.0f);
    clt_trainer_free(dflt);
    clt_trainer_free(ref);
    clt_trainer_free(tr);
    clt_graph_free(m.g);
}

/* ---- Exact resume and run-to-run equality --------------------------------------------- */

/* Options of the resume runs: Adam, two micro-batches an update (so a save falls inside an
 * accumulation), and in fp16 a scaler that grows every 2 clean steps from 2^14 (so its growth
 * tracker and scale change along the run). */
static void resume_options(struct clt_trainer_options *o, enum clt_precision p)
{
    clt_trainer_options_init(o, CLT_OPTIM_ADAMW);
    o->optimizer.lr = 0.05;
    o->optimizer.accumulate = 2;
    o->seed = 11;
    o->precision = p;
    o->loss_scaling.init_scale = 16384.0;
    o->loss_scaling.growth_interval = 2;
}

static void resume_is_exact_in(struct clt_device *dev, enum clt_precision p)
{
    struct model m = make_model(true);
    struct clt_trainer_options o;
    resume_options(&o, p);
    enum { TOTAL = 13, SAVE_AT = 7 };
    char dir[] = "/tmp/cltrain-train16-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/ck.safetensors", dir);

    struct clt_trainer *a = make_trainer(dev, &m, &o);
    float la[TOTAL], lb[TOTAL];
    for (uint32_t k = 0; k < TOTAL; k++) {
        step(a, &m, k);
        assert_int_equal(clt_trainer_loss(a, &la[k]), CLT_OK);
        if (k + 1 == SAVE_AT)
            assert_int_equal(clt_trainer_save(a, path, NULL, 0), CLT_OK);
    }
    struct clt_trainer *b = make_trainer(dev, &m, &o);
    assert_int_equal(clt_trainer_load(b, path, true), CLT_OK);
    for (uint32_t k = SAVE_AT; k < TOTAL; k++) {
        step(b, &m, k);
        assert_int_equal(clt_trainer_loss(b, &lb[k]), CLT_OK);
    }
    char what[96];
    snprintf(what, sizeof what, "%s: losses after the resume", pname(p));
    assert_same_bits(what, la + SAVE_AT, lb + SAVE_AT, TOTAL - SAVE_AT);
    size_t na, nb;
    float *pa = all_params(a, &na), *pb = all_params(b, &nb);
    assert_int_equal(na, nb);
    snprintf(what, sizeof what, "%s: parameters after the resume", pname(p));
    assert_same_bits(what, pa, pb, na);
    struct clt_trainer_stats sa, sb;
    assert_int_equal(clt_trainer_stats(a, &sa), CLT_OK);
    assert_int_equal(clt_trainer_stats(b, &sb), CLT_OK);
    assert_true(sa.loss_scale == sb.loss_scale);
    assert_int_equal(sa.skipped, sb.skipped);
    assert_int_equal(sa.updates, sb.updates);
    if (p == CLT_PRECISION_FP16)
        assert_true(sa.loss_scale != 16384.0f); /* the scale moved along the run */
    else
        assert_true(sa.loss_scale == 1.0f);
    /* The checkpoint holds fp32 tensors and, in fp16, the scaler's state. */
    struct clt_checkpoint *ck = NULL;
    assert_int_equal(clt_checkpoint_open(path, NULL, &ck), CLT_OK);
    const char *scale = clt_checkpoint_meta(ck, "scaler.scale");
    if (p == CLT_PRECISION_FP16)
        assert_non_null(scale);
    else
        assert_null(scale);
    clt_checkpoint_close(ck);
    /* The run learned, and tracked fp32's from the same start. */
    assert_true(la[TOTAL - 1] < la[0]);
    struct clt_trainer_options o32 = o;
    o32.precision = CLT_PRECISION_FP32;
    struct clt_trainer *c = make_trainer(dev, &m, &o32);
    for (uint32_t k = 0; k < TOTAL; k++) {
        float l32;
        step(c, &m, k);
        assert_int_equal(clt_trainer_loss(c, &l32), CLT_OK);
        double want = l32;
        snprintf(what, sizeof what, "%s: loss of step %u against fp32's", pname(p), k);
        clt_test_assert_close(what, &la[k], &want, 1, 0.0, 1e-2);
    }
    clt_trainer_free(c);

    free(pa);
    free(pb);
    clt_trainer_free(a);
    clt_trainer_free(b);
    unlink(path);
    rmdir(dir);
    clt_graph_free(m.g);
}

static void resume_is_exact_in_fp16_and_bf16(void **state)
{
    resume_is_exact_in(*state, CLT_PRECISION_FP16);
    resume_is_exact_in(*state, CLT_PRECISION_BF16);
}

static void runs_are_identical(void **state)
{
    struct clt_device *dev = *state;
    struct model m = make_model(true);
    for (enum clt_precision p = CLT_PRECISION_FP16; p <= CLT_PRECISION_BF16; p++) {
        struct clt_trainer_options o;
        resume_options(&o, p);
        float l[2][9];
        float *params[2];
        size_t n[2];
        for (int r = 0; r < 2; r++) {
            struct clt_trainer *tr = make_trainer(dev, &m, &o);
            for (uint32_t k = 0; k < 9; k++) {
                step(tr, &m, k);
                assert_int_equal(clt_trainer_loss(tr, &l[r][k]), CLT_OK);
            }
            params[r] = all_params(tr, &n[r]);
            clt_trainer_free(tr);
        }
        char what[64];
        snprintf(what, sizeof what, "%s: losses of two runs", pname(p));
        assert_same_bits(what, l[0], l[1], 9);
        snprintf(what, sizeof what, "%s: parameters of two runs", pname(p));
        assert_same_bits(what, params[0], params[1], n[0]);
        free(params[0]);
        free(params[1]);
    }
    clt_graph_free(m.g);
}

/* ---- Evaluation and the memory report ------------------------------------------------- */

/* The same parameters in fp32, fp16 and bf16: evaluation's logits (widened to float) and
 * loss agree within the storage's rounding; the memory report's 16-bit figures. */
static void evaluation_and_memory_in_each_precision(void **state)
{
    struct clt_device *dev = *state;
    struct model m = make_model_of(true, 32, 24);
    enum { NY = 32 * 24 };
    struct clt_trainer_options o;
    resume_options(&o, CLT_PRECISION_FP32);
    struct clt_trainer *t32 = make_trainer(dev, &m, &o);
    int32_t ids[NMAX], labels[NMAX];
    batch(&m, 3, ids, labels);
    const void *in[] = {ids, labels};
    static float y32[NY], y[NY];
    static double want[NY];
    float l32;
    assert_int_equal(clt_trainer_eval(t32, in, m.logits, y32, NY, &l32), CLT_OK);
    struct clt_memory_report r32;
    assert_int_equal(clt_trainer_memory(t32, &r32), CLT_OK);
    assert_int_equal(r32.params_shadow, 0);
    assert_int_equal(r32.activations_fp32, r32.activations);
    const uint64_t trained = r32.grads / 4;
    for (enum clt_precision p = CLT_PRECISION_FP16; p <= CLT_PRECISION_BF16; p++) {
        o.precision = p;
        struct clt_trainer *t = make_trainer(dev, &m, &o);
        size_t n;
        float *params = all_params(t32, &n);
        uint32_t np = clt_trainer_param_count(t32);
        for (uint32_t i = 0, at = 0; i < np; i++) { /* fp32's values into the 16-bit trainer */
            struct clt_param_info info;
            assert_int_equal(clt_trainer_param_info(t32, i, &info), CLT_OK);
            int64_t c = 1;
            for (uint32_t d = 0; d < info.ndim; d++)
                c *= info.shape[d];
            assert_int_equal(clt_trainer_param_write(t, info.name, params + at, (uint64_t)c),
                             CLT_OK);
            at += (uint32_t)c;
        }
        float l;
        assert_int_equal(clt_trainer_eval(t, in, m.logits, y, NY, &l), CLT_OK);
        double wl = l32;
        for (int i = 0; i < NY; i++)
            want[i] = y32[i];
        const double rtol = p == CLT_PRECISION_FP16 ? 1.0 / 256 : 1.0 / 64;
        const double atol = p == CLT_PRECISION_FP16 ? 2e-3 : 1.6e-2;
        char what[64];
        snprintf(what, sizeof what, "%s: evaluation's logits", pname(p));
        clt_test_assert_close(what, y, want, NY, atol, rtol);
        snprintf(what, sizeof what, "%s: evaluation's loss", pname(p));
        clt_test_assert_close(what, &l, &wl, 1, atol, 4 * rtol);
        /* A value read back is a widened 16-bit one: exactly representable. */
        for (int i = 0; i < NY; i++) {
            enum clt_precision q = p;
            assert_true(clt__half_to_f32(q, clt__f32_to_half(q, y[i])) == y[i]);
        }

        struct clt_memory_report r;
        assert_int_equal(clt_trainer_memory(t, &r), CLT_OK);
        assert_int_equal(r.params, r32.params);
        assert_int_equal(r.params_shadow, trained * 2);
        assert_int_equal(r.grads, trained * 6);
        assert_int_equal(r.activations_fp32, r32.activations);
        assert_true(r.activations < r32.activations);
        assert_true(r.inputs == r32.inputs); /* I32 inputs only: unchanged */
        assert_int_equal(r.total, r.params + r.params_shadow + r.grads + r.optimizer +
                                      r.activations + r.workspace + r.inputs);
        free(params);
        clt_trainer_free(t);
    }
    clt_trainer_free(t32);
    clt_graph_free(m.g);
}

/* ---- Refusals ---------------------------------------------------------------------------- */

static void refusals(void **state)
{
    struct clt_device *dev = *state;
    struct clt_test_log text = {0};
    struct clt_log saved = dev->log;
    dev->log = (struct clt_log){clt_test_log_fn, &text, CLT_LOG_ERROR};
    struct clt_trainer *tr = NULL;
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_SGD);

    /* A precision that is none of the three, here and for a data-parallel trainer. */
    struct model m = make_model(false);
    o.precision = (enum clt_precision)7;
    assert_int_equal(clt_trainer_create(dev, m.g, m.loss, &o, &tr), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(text.text, "precision 7 is none of fp32, fp16 and bf16"));
    assert_int_equal(clt_trainer_create_parallel(&dev, 1, m.g, m.loss, 0, &o, &tr),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_null(tr);

    /* Data-parallel trainers and the all-reduce hook: fp32 only. */
    for (enum clt_precision p = CLT_PRECISION_FP16; p <= CLT_PRECISION_BF16; p++) {
        o.precision = p;
        text.len = 0;
        text.text[0] = '\0';
        assert_int_equal(clt_trainer_create_parallel(&dev, 1, m.g, m.loss, 0, &o, &tr),
                         CLT_ERR_UNSUPPORTED);
        assert_null(tr);
        assert_non_null(strstr(text.text, "data-parallel trainer: precision"));
        assert_non_null(strstr(text.text, clt_precision_name(p)));
        tr = make_trainer(dev, &m, &o);
        assert_int_equal(clt_trainer_set_allreduce(tr, NULL, NULL), CLT_ERR_UNSUPPORTED);
        assert_non_null(strstr(text.text, "the all-reduce hook: precision"));
        clt_trainer_free(tr);
        tr = NULL;
    }

    /* A bad loss scaling: refused in fp16, ignored in fp32 and bf16. */
    o.loss_scaling.growth_factor = 0.5;
    for (enum clt_precision p = CLT_PRECISION_FP32; p <= CLT_PRECISION_BF16; p++) {
        o.precision = p;
        enum clt_status want = p == CLT_PRECISION_FP16 ? CLT_ERR_INVALID_ARGUMENT : CLT_OK;
        assert_int_equal(clt_trainer_create(dev, m.g, m.loss, &o, &tr), want);
        clt_trainer_free(tr);
        tr = NULL;
    }
    assert_non_null(strstr(text.text, "growth_factor"));
    o.loss_scaling.growth_factor = 0;

    /* An op reading a loss's output (kept in fp32 in a 16-bit plan). */
    struct clt_tensor *twice = clt_scale(m.g, m.loss, 2.0f);
    assert_int_equal(clt_graph_status(m.g), CLT_OK);
    o.precision = CLT_PRECISION_FP32;
    assert_int_equal(clt_trainer_create(dev, m.g, twice, &o, &tr), CLT_OK);
    clt_trainer_free(tr);
    tr = NULL;
    for (enum clt_precision p = CLT_PRECISION_FP16; p <= CLT_PRECISION_BF16; p++) {
        o.precision = p;
        text.len = 0;
        text.text[0] = '\0';
        assert_int_equal(clt_trainer_create(dev, m.g, twice, &o, &tr), CLT_ERR_UNSUPPORTED);
        assert_null(tr);
        char want[64];
        snprintf(want, sizeof want, "precision %s: op scale (node ", clt_precision_name(p));
        if (!strstr(text.text, want) || !strstr(text.text, "reads the output of cross_entropy"))
            fail_msg("expected \"%s\" in the log, got \"%s\"", want, text.text);
    }
    clt_graph_free(m.g);

    /* An op without 16-bit kernels (when this build has one). */
    int missing = -1;
    for (int op = 0; op < CLT__OP_COUNT && missing < 0; op++)
        if (!clt__op_registry[op]->is_view && !clt__op_registry[op]->storage16)
            missing = op;
    if (missing < 0) {
        printf("train16: every op of this build has 16-bit kernels: no op to refuse\n");
    } else {
        printf("train16: %s has no 16-bit kernels in this build\n", clt__op_names[missing]);
        /* A graph with relu when relu lacks them (this branch before the kernel branches'
         * merge); for another op the check of the rule is left to that op's graph. */
        if (missing == CLT__OP_activation) {
            struct model r = make_model(false);
            struct clt_tensor *h = clt_relu(r.g, r.logits);
            struct clt_tensor *loss = clt_cross_entropy(r.g, h, r.labels, -1, 0.0f);
            o.precision = CLT_PRECISION_BF16;
            assert_int_equal(clt_trainer_create(dev, r.g, loss, &o, &tr), CLT_ERR_UNSUPPORTED);
            assert_non_null(strstr(text.text, "op activation (node"));
            assert_non_null(strstr(text.text, "has no 16-bit kernels"));
            clt_graph_free(r.g);
        }
    }
    dev->log = saved;
}

int main(void)
{
    clt_test_require_device();
    const struct CMUnitTest tests[] = {
        CLT_DEVICE_TEST(refusals),
        CLT_DEVICE_TEST(fp16_overflow_skips_the_step_and_halves_the_scale),
        CLT_DEVICE_TEST(resume_is_exact_in_fp16_and_bf16),
        CLT_DEVICE_TEST(runs_are_identical),
        CLT_DEVICE_TEST(evaluation_and_memory_in_each_precision),
    };
    return cmocka_run_group_tests(tests, clt_test_group_setup, clt_test_group_teardown);
}
