/*
 * init.c: parameter initialisation on the host. Values come from a counter-based generator
 * keyed by the trainer's seed, a hash of the parameter's name and the element's index, so
 * they depend on neither the device nor the order parameters are made in.
 */
#include <math.h>
#include <string.h>

#include "graph.h"

/* splitmix64's finaliser: a strong 64-bit mix. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniform double in (0, 1) for (key, counter): never exactly 0, so log() is safe. */
static double uniform(uint64_t key, uint64_t counter)
{
    uint64_t z = mix(key ^ mix(counter + 0x9e3779b97f4a7c15ULL));
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

/* A standard normal for element i (Box-Muller on two uniforms of the element's own). */
static double normal(uint64_t key, uint64_t i)
{
    double u1 = uniform(key, 2 * i), u2 = uniform(key, 2 * i + 1);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* The fans of a shape, as torch.nn.init computes them. */
static void fans(const struct clt_tensor *t, double *fan_in, double *fan_out)
{
    if (t->ndim < 2) {
        *fan_in = *fan_out = (double)t->shape[0];
        return;
    }
    double receptive = 1.0;
    for (uint32_t i = 2; i < t->ndim; i++)
        receptive *= (double)t->shape[i];
    *fan_in = (double)t->shape[1] * receptive;
    *fan_out = (double)t->shape[0] * receptive;
}

enum clt_status clt__init_fill(const struct clt_tensor *t, uint64_t seed, float *out)
{
    int64_t n = clt__count(t);
    uint64_t key = mix(seed ^ clt__hash64(CLT__FNV_SEED, t->name, strlen(t->name)));
    double fan_in, fan_out;
    fans(t, &fan_in, &fan_out);
    double a = t->init.a, b = t->init.b;
    double lo = 0, hi = 0, mean = 0, std = 0;
    bool is_uniform = true;
    switch (t->init.kind) {
    case CLT_INIT_ZEROS:
        break;
    case CLT_INIT_CONSTANT:
        lo = hi = a;
        break;
    case CLT_INIT_UNIFORM:
        lo = a;
        hi = b;
        break;
    case CLT_INIT_NORMAL:
        is_uniform = false;
        mean = a;
        std = b;
        break;
    case CLT_INIT_XAVIER_UNIFORM:
        hi = (a != 0 ? a : 1.0) * sqrt(6.0 / (fan_in + fan_out));
        lo = -hi;
        break;
    case CLT_INIT_XAVIER_NORMAL:
        is_uniform = false;
        std = (a != 0 ? a : 1.0) * sqrt(2.0 / (fan_in + fan_out));
        break;
    case CLT_INIT_KAIMING_UNIFORM:
        hi = (a != 0 ? a : sqrt(2.0)) * sqrt(3.0 / fan_in);
        lo = -hi;
        break;
    case CLT_INIT_KAIMING_NORMAL:
        is_uniform = false;
        std = (a != 0 ? a : sqrt(2.0)) / sqrt(fan_in);
        break;
    default:
        return CLT_ERR_INVALID_ARGUMENT;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = is_uniform ? lo + (hi - lo) * uniform(key, (uint64_t)i)
                              : mean + std * normal(key, (uint64_t)i);
        out[i] = (float)v;
    }
    return CLT_OK;
}
