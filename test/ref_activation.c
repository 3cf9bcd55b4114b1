/*
 * ref_activation.c: see ref_activation.h.
 *
 * The activation functions are PyTorch's formulas evaluated in double; derivatives use
 * 1 / cosh^2 for 1 - tanh^2 and s(x) s(-x) for s(x) (1 - s(x)), the same values written so
 * that double does not cancel them to 0 where they are merely small.
 */
#include <math.h>

#include "ref_activation.h"

/* math.h's M_PI is not in strict C11. */
#define PI 3.14159265358979323846

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

static double sech2(double z)
{
    double c = cosh(z);
    return 1.0 / (c * c);
}

double ref_act(enum clt__act act, double slope, double x, double *grad)
{
    const double beta = sqrt(2.0 / PI), kappa = 0.044715;
    double inner, t, cdf;
    switch (act) {
    case CLT__ACT_RELU:
        *grad = x > 0 ? 1.0 : 0.0;
        return x < 0 ? 0.0 : x;
    case CLT__ACT_LEAKY_RELU:
        *grad = x > 0 ? 1.0 : slope;
        return x < 0 ? slope * x : x;
    case CLT__ACT_GELU_TANH:
        inner = beta * (x + kappa * x * x * x);
        t = tanh(inner);
        *grad = 0.5 * (1.0 + t) + 0.5 * x * sech2(inner) * beta * (1.0 + 3.0 * kappa * x * x);
        return 0.5 * x * (1.0 + t);
    case CLT__ACT_GELU_ERF:
        cdf = 0.5 * (1.0 + erf(x / sqrt(2.0)));
        *grad = cdf + x * exp(-0.5 * x * x) / sqrt(2.0 * PI);
        return x * cdf;
    case CLT__ACT_TANH:
        *grad = sech2(x);
        return tanh(x);
    case CLT__ACT_SIGMOID:
        *grad = sigmoid(x) * sigmoid(-x);
        return sigmoid(x);
    case CLT__ACT_SILU:
        *grad = sigmoid(x) + x * sigmoid(x) * sigmoid(-x);
        return x * sigmoid(x);
    }
    *grad = NAN;
    return NAN;
}

void ref_activation_forward(enum clt__act act, float slope, const float *x, double *y, size_t n)
{
    double grad;
    for (size_t i = 0; i < n; i++)
        y[i] = ref_act(act, slope, x[i], &grad);
}

void ref_activation_backward(enum clt__act act, float slope, const float *x, const float *dy,
                             const float *prev, double *dx, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double grad;
        (void)ref_act(act, slope, x[i], &grad);
        dx[i] = (prev ? (double)prev[i] : 0.0) + (double)dy[i] * grad;
    }
}

/* ---- dropout ------------------------------------------------------------------------- */

static void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void ref_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]}, k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k[0] += 0x9E3779B9u;
            k[1] += 0xBB67AE85u;
        }
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(0xD2511F53u, c[0], &hi0, &lo0);
        mulhilo(0xCD9E8D57u, c[2], &hi1, &lo1);
        uint32_t next[4] = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
        for (int w = 0; w < 4; w++)
            c[w] = next[w];
    }
    for (int w = 0; w < 4; w++)
        out[w] = c[w];
}

float ref_dropout_uniform(uint64_t seed, uint64_t step, uint64_t i)
{
    uint64_t block = i / 4;
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)step,
                       (uint32_t)(step >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, out[4];
    ref_philox4x32_10(ctr, key, out);
    return (float)(out[i % 4] >> 8) * 0x1.0p-24f;
}

void ref_dropout_mask(float p, uint64_t seed, uint64_t step, bool *keep, size_t n)
{
    for (size_t i = 0; i < n; i++)
        keep[i] = ref_dropout_uniform(seed, step, i) >= p;
}

void ref_dropout_forward(float p, uint64_t seed, uint64_t step, const float *x, float *y, size_t n)
{
    const float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++)
        y[i] = ref_dropout_uniform(seed, step, i) >= p ? x[i] * scale : 0.0f;
}

void ref_dropout_backward(float p, uint64_t seed, uint64_t step, const float *dy, const float *prev,
                          float *dx, size_t n)
{
    const float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) {
        float g = ref_dropout_uniform(seed, step, i) >= p ? dy[i] * scale : 0.0f;
        dx[i] = prev ? prev[i] + g : g;
    }
}
