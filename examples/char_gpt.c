/*
 * char_gpt.c: a character-level GPT trained on a text file through the public API only, then
 * sampled.
 *
 * The model reads CONTEXT characters and predicts each next one: token embedding plus learned
 * positions, LAYERS pre-norm transformer blocks (causal grouped-query self-attention without
 * biases, then a GELU MLP), a final layer norm and an output layer whose weight is the token
 * embedding itself (tied, as in GPT-2). 10% of the text is held out; the held-out loss is
 * printed before and after training. Then the model writes text one character at a time,
 * each drawn from its softmax at the chosen temperature.
 *
 *     ./char_gpt TEXT [--steps N] [--sample N] [--temperature X] [--lr X] [--seed N]
 *                     [--device pocl|llvmpipe|gpu|P:D]
 *
 * Defaults: 200 steps (a first taste: the model learns the characters' frequencies and
 * common pairs; a few thousand steps make words), 200 sampled characters, temperature 0.8.
 * Output: "step N  loss X" lines, "held-out loss before X after Y", then the sample between
 * lines "--- sample ---" and "--- end ---". Exits 1 with a message on stderr for bad options,
 * an unreadable or too short text, or a device error.
 */
#include <cltrain.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 16, CONTEXT = 32, DIM = 64, HEADS = 4, KV_HEADS = 2, LAYERS = 2, EVAL_BATCHES = 8 };

struct options {
    const char *text, *device;
    long steps, sample, seed;
    double temperature, lr;
};

static int usage(const char *why)
{
    fprintf(stderr,
            "char_gpt: %s\n"
            "usage: char_gpt TEXT [--steps N] [--sample N] [--temperature X] [--lr X] "
            "[--seed N] [--device SELECTION]\n",
            why);
    return 1;
}

/* A whole decimal number in [lo, hi], or a positive finite real. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_positive(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.steps = 200, .sample = 200, .seed = 1, .temperature = 0.8, .lr = 3e-3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (a[0] != '-' || a[1] == '\0') {
            if (o->text)
                return usage("more than one text file given");
            o->text = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "char_gpt: %s needs a value\n", a);
            return 1;
        }
        if (strcmp(a, "--steps") == 0)
            bad = parse_long(v, 1, 100000000, &o->steps);
        else if (strcmp(a, "--sample") == 0)
            bad = parse_long(v, 0, 1000000, &o->sample);
        else if (strcmp(a, "--temperature") == 0)
            bad = parse_positive(v, &o->temperature);
        else if (strcmp(a, "--lr") == 0)
            bad = parse_positive(v, &o->lr);
        else if (strcmp(a, "--seed") == 0)
            bad = parse_long(v, 0, 2147483647, &o->seed);
        else if (strcmp(a, "--device") == 0)
            o->device = v;
        else {
            fprintf(stderr, "char_gpt: unknown option %s\n", a);
            return 1;
        }
        if (bad) {
            fprintf(stderr, "char_gpt: bad value \"%s\" for %s\n", v, a);
            return 1;
        }
        i++;
    }
    return o->text ? 0 : usage("no text file given");
}

/* The model; ids and labels [BATCH, CONTEXT] are its inputs, in that order. */
static struct clt_tensor *build(struct clt_graph *g, int64_t vocab, struct clt_tensor **logits)
{
    const int64_t shape[2] = {BATCH, CONTEXT};
    struct clt_tensor *ids = clt_input(g, "ids", CLT_I32, 2, shape);
    struct clt_tensor *labels = clt_input(g, "labels", CLT_I32, 2, shape);
    /* The token embedding [vocab, DIM], N(0, 0.02) as GPT-2 draws it; made here so that its
     * rule is ours, then given to the embedding layer and, below, to the output layer. */
    struct clt_tensor *tok = clt_param(g, "tok.weight", 2, (int64_t[]){vocab, DIM},
                                       (struct clt_init){CLT_INIT_NORMAL, 0.0f, 0.02f});
    struct clt_layer_params tied = {.weight = tok};
    struct clt_tensor *pos = clt_param(g, "pos.weight", 2, (int64_t[]){CONTEXT, DIM},
                                       (struct clt_init){CLT_INIT_NORMAL, 0.0f, 0.02f});
    struct clt_tensor *h = clt_add_bias(g, clt_embedding_ex(g, ids, vocab, DIM, "tok", &tied), pos);
    for (int l = 0; l < LAYERS; l++) {
        char name[32];
        const struct clt_attention_desc attn = {
            .heads = HEADS, .kv_heads = KV_HEADS, .causal = true, .bias = false};
        snprintf(name, sizeof name, "h%d.ln1", l);
        struct clt_tensor *a = clt_layer_norm(g, h, 1e-5f, name);
        snprintf(name, sizeof name, "h%d.attn", l);
        h = clt_add(g, h, clt_attention_ex(g, a, &attn, name));
        snprintf(name, sizeof name, "h%d.ln2", l);
        struct clt_tensor *m = clt_layer_norm(g, h, 1e-5f, name);
        snprintf(name, sizeof name, "h%d.fc", l);
        m = clt_gelu(g, clt_linear(g, m, 4 * DIM, true, name), true);
        snprintf(name, sizeof name, "h%d.proj", l);
        h = clt_add(g, h, clt_linear(g, m, DIM, true, name));
    }
    h = clt_layer_norm(g, h, 1e-5f, "ln_f");
    /* [BATCH, CONTEXT, DIM] -> [BATCH, CONTEXT, vocab]: tok.weight [vocab, DIM] is the linear
     * layer's [out, in] weight as it is. */
    *logits = clt_linear_ex(g, h, vocab, false, "head", &tied);
    return clt_cross_entropy(g, *logits, labels, -1, 0.0f);
}

/* The mean loss of EVAL_BATCHES batches of a held-out text, in evaluation mode. */
static enum clt_status held_out_loss(struct clt_trainer *tr, const struct clt_dataset *held,
                                     int32_t *x, int32_t *y, float *mean)
{
    struct clt_batcher *b = NULL;
    enum clt_status st = clt_batcher_create(held, BATCH, CONTEXT, 7, true, &b);
    double sum = 0.0;
    for (int i = 0; st == CLT_OK && i < EVAL_BATCHES; i++) {
        float loss = 0.0f;
        const void *batch[] = {x, y};
        st = clt_batcher_next(b, false, x, y, NULL, NULL);
        if (st == CLT_OK)
            st = clt_trainer_eval(tr, batch, NULL, NULL, 0, &loss);
        sum += loss;
    }
    clt_batcher_free(b);
    *mean = (float)(sum / EVAL_BATCHES);
    return st;
}

/* A uniform number in [0, 1) from a 64-bit xorshift state. */
static double next_uniform(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (double)(*s >> 11) / 9007199254740992.0;
}

/* Writes `first`, then `count` characters drawn one after the other: the window of the latest
 * CONTEXT ids fills row 0 of the batch from position 0; the logits at its last position give the
 * next character. */
static enum clt_status sample(struct clt_trainer *tr, struct clt_tensor *logits,
                              const uint8_t *symbols, int64_t vocab, int32_t first, long count,
                              double temperature, uint64_t seed, int32_t *x, int32_t *y)
{
    int32_t window[CONTEXT];
    int len = 1;
    uint64_t rng = seed * 2654435761u + 88172645463325252ull;
    float *out = malloc((size_t)BATCH * CONTEXT * (size_t)vocab * sizeof *out);
    double *p = malloc((size_t)vocab * sizeof *p);
    enum clt_status st = out && p ? CLT_OK : CLT_ERR_NO_MEMORY;
    window[0] = first;
    memset(x, 0, BATCH * CONTEXT * sizeof *x);
    memset(y, 0, BATCH * CONTEXT * sizeof *y);
    putchar(symbols[first]);
    for (long n = 0; st == CLT_OK && n < count; n++) {
        memcpy(x, window, (size_t)len * sizeof *x);
        const void *batch[] = {x, y};
        st = clt_trainer_eval(tr, batch, logits, out, (uint64_t)BATCH * CONTEXT * vocab, NULL);
        if (st != CLT_OK)
            break;
        /* Softmax of the last position's logits at the temperature, then one draw. */
        const float *row = out + (size_t)(len - 1) * (size_t)vocab;
        double max = row[0], sum = 0.0;
        for (int64_t c = 1; c < vocab; c++)
            max = row[c] > max ? row[c] : max;
        for (int64_t c = 0; c < vocab; c++)
            sum += p[c] = exp((row[c] - max) / temperature);
        double r = next_uniform(&rng) * sum;
        int32_t next = (int32_t)vocab - 1;
        for (int64_t c = 0; c < vocab; c++)
            if ((r -= p[c]) < 0) {
                next = (int32_t)c;
                break;
            }
        putchar(symbols[next]);
        if (len == CONTEXT)
            memmove(window, window + 1, (CONTEXT - 1) * sizeof *window);
        else
            len++;
        window[len - 1] = next;
    }
    free(out);
    free(p);
    return st;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(argc, argv, &o) != 0)
        return 1;

    /* The text: each distinct byte a symbol; 90% for training, 10% held out. */
    struct clt_dataset *text = NULL, *train = NULL, *held = NULL;
    struct clt_dataset_info info;
    uint8_t symbols[256];
    uint32_t vocab = 0;
    enum clt_status st = clt_dataset_load_text(o.text, NULL, &text);
    if (st != CLT_OK) {
        fprintf(stderr, "char_gpt: cannot read %s: %s\n", o.text, clt_status_str(st));
        return 1;
    }
    clt_dataset_info(text, &info);
    clt_dataset_symbols(text, symbols, &vocab);
    const uint64_t least = 10 * (CONTEXT + 1);
    if (info.count < least || vocab < 2) {
        fprintf(stderr,
                "char_gpt: %s has %llu characters of %u kinds; at least %llu characters of two "
                "kinds are needed\n",
                o.text, (unsigned long long)info.count, vocab, (unsigned long long)least);
        clt_dataset_free(text);
        return 1;
    }
    st = clt_dataset_split(text, 0.1, (uint64_t)o.seed, &train, &held);

    struct clt_device *dev = NULL;
    struct clt_graph *g = NULL;
    struct clt_trainer *tr = NULL;
    struct clt_batcher *batcher = NULL;
    struct clt_tensor *logits = NULL, *loss = NULL;
    static int32_t x[BATCH * CONTEXT], y[BATCH * CONTEXT];
    if (st == CLT_OK)
        st = clt_device_open(o.device, NULL, &dev);
    if (st == CLT_OK)
        st = clt_graph_create(&g);
    if (st == CLT_OK) {
        loss = build(g, vocab, &logits);
        if (clt_graph_status(g) != CLT_OK) {
            fprintf(stderr, "char_gpt: %s\n", clt_graph_error(g));
            clt_graph_free(g);
            clt_device_close(dev);
            clt_dataset_free(train);
            clt_dataset_free(held);
            clt_dataset_free(text);
            return 1;
        }
    }
    struct clt_trainer_options opt;
    clt_trainer_options_init(&opt, CLT_OPTIM_ADAMW);
    opt.optimizer.lr = (float)o.lr;
    opt.optimizer.clip_norm = 1.0f;
    opt.seed = (uint64_t)o.seed;
    if (st == CLT_OK)
        st = clt_trainer_create(dev, g, loss, &opt, &tr);
    if (st == CLT_OK)
        st = clt_batcher_create(train, BATCH, CONTEXT, (uint64_t)o.seed, true, &batcher);

    float before = 0.0f, after = 0.0f, value = 0.0f;
    if (st == CLT_OK)
        st = held_out_loss(tr, held, x, y, &before);
    for (long step = 0; st == CLT_OK && step < o.steps; step++) {
        const void *batch[] = {x, y};
        st = clt_batcher_next(batcher, false, x, y, NULL, NULL);
        if (st == CLT_OK)
            st = clt_trainer_step(tr, batch); /* enqueues; returns at once */
        if (st == CLT_OK && (step % 50 == 0 || step == o.steps - 1) &&
            (st = clt_trainer_loss(tr, &value)) == CLT_OK)
            printf("step %5ld  loss %.4f\n", step, value);
    }
    if (st == CLT_OK)
        st = held_out_loss(tr, held, x, y, &after);
    if (st == CLT_OK) {
        printf("held-out loss before %.4f after %.4f\n", before, after);
        printf("--- sample ---\n");
        /* Start from a newline if the text has one, else from symbol 0. */
        int32_t first = (int32_t)vocab - 1;
        while (first > 0 && symbols[first] != '\n')
            first--;
        st = sample(tr, logits, symbols, vocab, first, o.sample, o.temperature, (uint64_t)o.seed, x,
                    y);
        printf("\n--- end ---\n");
    }
    if (st != CLT_OK)
        fprintf(stderr, "char_gpt: %s\n", clt_status_str(st));

    clt_batcher_free(batcher);
    clt_trainer_free(tr);
    clt_graph_free(g);
    clt_device_close(dev);
    clt_dataset_free(train);
    clt_dataset_free(held);
    clt_dataset_free(text);
    return st == CLT_OK ? 0 : 1;
}
