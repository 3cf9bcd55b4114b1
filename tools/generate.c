/*
 * generate.c: see generate.h.
 */
#include "generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: a uniform double in [0, 1). */
static double uniform(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* Draws an id from softmax(logits / temperature); temperature 0 takes the largest. */
static int32_t draw(const float *logits, int64_t v, double temperature, uint64_t *rng, double *p)
{
    if (temperature <= 0)
        return (int32_t)argmax(logits, v);
    double top = logits[argmax(logits, v)], sum = 0;
    for (int64_t i = 0; i < v; i++)
        sum += p[i] = exp(((double)logits[i] - top) / temperature);
    double u = uniform(rng) * sum;
    for (int64_t i = 0; i < v; i++) {
        u -= p[i];
        if (u < 0)
            return (int32_t)i;
    }
    return (int32_t)(v - 1);
}

int64_t generate_encode(const char *prompt, size_t n, const struct ckpt_model *cm, int32_t *ids,
                        int64_t cap, char *err, size_t err_size)
{
    int64_t count = 0;
    const unsigned char *s = (const unsigned char *)prompt;
    for (size_t i = 0; i < n && count < cap; i++) {
        int32_t id = -1;
        for (uint32_t j = 0; j < cm->info.vocab; j++)
            if (cm->symbols[j] == s[i])
                id = (int32_t)j;
        if (id < 0) {
            snprintf(err, err_size,
                     "the prompt's character '%c' (byte 0x%02x) is not in the model's "
                     "vocabulary",
                     s[i] >= 32 && s[i] < 127 ? s[i] : '?', s[i]);
            return -1;
        }
        ids[count++] = id;
    }
    if (count == 0) {
        ids[0] = 0;
        for (uint32_t j = 0; j < cm->info.vocab; j++)
            if (cm->symbols[j] == '\n')
                ids[0] = (int32_t)j;
        count = 1;
    }
    return count;
}

enum clt_status generate(const struct ckpt *c, int32_t *ids, int64_t n, int64_t length,
                         double temperature, uint64_t *rng, generate_emit_fn emit, void *user)
{
    const struct model *m = &c->m;
    int64_t T = m->positions, V = m->classes;
    int32_t *x = calloc((size_t)T, sizeof *x), *y = malloc((size_t)T * sizeof *y);
    float *logits = malloc((size_t)(T * V) * sizeof *logits);
    double *p = malloc((size_t)V * sizeof *p);
    enum clt_status st = x && y && logits && p ? CLT_OK : CLT_ERR_NO_MEMORY;
    for (int64_t i = 0; i < T && y; i++)
        y[i] = -1;
    for (int64_t k = 0; st == CLT_OK && k < length; k++) {
        int64_t w = n < T ? n : T; /* the window: the last w tokens */
        memcpy(x, ids + n - w, (size_t)w * sizeof *x);
        const void *inputs[] = {x, y};
        st = clt_trainer_eval(c->tr, inputs, m->logits, logits, (uint64_t)(T * V), NULL);
        if (st != CLT_OK)
            break;
        ids[n] = draw(logits + (w - 1) * V, V, temperature, rng, p);
        emit(user, c->cm.symbols[ids[n]]);
        n++;
    }
    free(x);
    free(y);
    free(logits);
    free(p);
    return st;
}
