/*
 * ref_norm.c: see ref_norm.h. Plain loops in double, statistics by two passes.
 */
#include <math.h>
#include <stdlib.h>

#include "ref_norm.h"

/* Element (b, ch, t) of a [n, c, s] tensor. */
#define AT(b, ch, t) (((b)*c + (ch)) * s + (t))

/* Mean and biased variance of channel ch. */
static void channel_stats(int64_t n, int64_t c, int64_t s, const float *x, int64_t ch, double *mean,
                          double *var)
{
    double m = (double)(n * s), sum = 0.0, sq = 0.0;
    for (int64_t b = 0; b < n; b++)
        for (int64_t t = 0; t < s; t++)
            sum += x[AT(b, ch, t)];
    double mu = sum / m;
    for (int64_t b = 0; b < n; b++)
        for (int64_t t = 0; t < s; t++) {
            double d = x[AT(b, ch, t)] - mu;
            sq += d * d;
        }
    *mean = mu;
    *var = sq / m;
}

void ref_batchnorm_forward(int64_t n, int64_t c, int64_t s, const float *x, const float *gamma,
                           const float *beta, double eps, double *y, double *mean, double *inv_std,
                           double *var_unbiased)
{
    double m = (double)(n * s);
    for (int64_t ch = 0; ch < c; ch++) {
        double mu, var;
        channel_stats(n, c, s, x, ch, &mu, &var);
        double inv = 1.0 / sqrt(var + eps);
        if (mean)
            mean[ch] = mu;
        if (inv_std)
            inv_std[ch] = inv;
        if (var_unbiased)
            var_unbiased[ch] = m > 1 ? var * m / (m - 1) : NAN;
        if (y)
            for (int64_t b = 0; b < n; b++)
                for (int64_t t = 0; t < s; t++)
                    y[AT(b, ch, t)] = (x[AT(b, ch, t)] - mu) * inv * gamma[ch] + beta[ch];
    }
}

void ref_batchnorm_running_update(int64_t c, double momentum, const double *mean,
                                  const double *var_unbiased, double *running_mean,
                                  double *running_var)
{
    for (int64_t ch = 0; ch < c; ch++) {
        running_mean[ch] = (1.0 - momentum) * running_mean[ch] + momentum * mean[ch];
        running_var[ch] = (1.0 - momentum) * running_var[ch] + momentum * var_unbiased[ch];
    }
}

void ref_batchnorm_forward_inference(int64_t n, int64_t c, int64_t s, const float *x,
                                     const float *gamma, const float *beta,
                                     const float *running_mean, const float *running_var,
                                     double eps, double *y)
{
    for (int64_t ch = 0; ch < c; ch++) {
        double inv = 1.0 / sqrt((double)running_var[ch] + eps);
        for (int64_t b = 0; b < n; b++)
            for (int64_t t = 0; t < s; t++)
                y[AT(b, ch, t)] =
                    (x[AT(b, ch, t)] - (double)running_mean[ch]) * inv * gamma[ch] + beta[ch];
    }
}

void ref_batchnorm_backward(int64_t n, int64_t c, int64_t s, const float *x, const float *dy,
                            const float *gamma, double eps, double *dx, double *dgamma,
                            double *dbeta)
{
    double m = (double)(n * s);
    for (int64_t ch = 0; ch < c; ch++) {
        double mu, var;
        channel_stats(n, c, s, x, ch, &mu, &var);
        double inv = 1.0 / sqrt(var + eps);
        double sum_dy = 0.0, sum_dyxhat = 0.0;
        for (int64_t b = 0; b < n; b++)
            for (int64_t t = 0; t < s; t++) {
                double g = dy[AT(b, ch, t)];
                sum_dy += g;
                sum_dyxhat += g * (x[AT(b, ch, t)] - mu) * inv;
            }
        if (dgamma)
            dgamma[ch] = sum_dyxhat;
        if (dbeta)
            dbeta[ch] = sum_dy;
        if (dx)
            for (int64_t b = 0; b < n; b++)
                for (int64_t t = 0; t < s; t++) {
                    double xhat = (x[AT(b, ch, t)] - mu) * inv;
                    dx[AT(b, ch, t)] =
                        gamma[ch] * inv * (dy[AT(b, ch, t)] - sum_dy / m - xhat * sum_dyxhat / m);
                }
    }
}

void ref_batchnorm_backward_inference(int64_t n, int64_t c, int64_t s, const float *dy,
                                      const float *gamma, const float *running_var, double eps,
                                      double *dx)
{
    for (int64_t ch = 0; ch < c; ch++) {
        double scale = gamma[ch] / sqrt((double)running_var[ch] + eps);
        for (int64_t b = 0; b < n; b++)
            for (int64_t t = 0; t < s; t++)
                dx[AT(b, ch, t)] = dy[AT(b, ch, t)] * scale;
    }
}

/* Mean and 1 / sqrt(biased variance + eps) of one row of d values. */
static void row_stats(int64_t d, const float *x, double eps, double *mean, double *rstd)
{
    double sum = 0.0, sq = 0.0;
    for (int64_t j = 0; j < d; j++)
        sum += x[j];
    double mu = sum / (double)d;
    for (int64_t j = 0; j < d; j++)
        sq += (x[j] - mu) * (x[j] - mu);
    *mean = mu;
    *rstd = 1.0 / sqrt(sq / (double)d + eps);
}

void ref_layernorm_forward(int64_t rows, int64_t d, const float *x, const float *gamma,
                           const float *beta, double eps, double *y, double *mean, double *rstd)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        double mu, inv;
        row_stats(d, xr, eps, &mu, &inv);
        if (mean)
            mean[r] = mu;
        if (rstd)
            rstd[r] = inv;
        if (y)
            for (int64_t j = 0; j < d; j++)
                y[r * d + j] = (xr[j] - mu) * inv * gamma[j] + beta[j];
    }
}

void ref_layernorm_backward(int64_t rows, int64_t d, const float *x, const float *dy,
                            const float *gamma, double eps, double *dx, double *dgamma,
                            double *dbeta)
{
    for (int64_t j = 0; j < d; j++) {
        if (dgamma)
            dgamma[j] = 0.0;
        if (dbeta)
            dbeta[j] = 0.0;
    }
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d, *dyr = dy + r * d;
        double mu, inv, sum_g = 0.0, sum_gx = 0.0;
        row_stats(d, xr, eps, &mu, &inv);
        for (int64_t j = 0; j < d; j++) {
            double xhat = (xr[j] - mu) * inv;
            double g = (double)gamma[j] * dyr[j];
            sum_g += g;
            sum_gx += g * xhat;
            if (dgamma)
                dgamma[j] += dyr[j] * xhat;
            if (dbeta)
                dbeta[j] += dyr[j];
        }
        if (dx)
            for (int64_t j = 0; j < d; j++) {
                double xhat = (xr[j] - mu) * inv;
                dx[r * d + j] = inv * ((double)gamma[j] * dyr[j] - sum_g / (double)d -
                                       xhat * sum_gx / (double)d);
            }
    }
}
