/*
 * test_precision_host.c: the host side of mixed precision, no device needed.
 *
 * - Conversions (engine/precision.c) against a hand-checked table, and against a reference
 *   written here in double arithmetic (the nearest value of the format's grid, ties to even,
 *   encoded independently): every fp16 and every bf16 bit pattern widened and narrowed back;
 *   every midpoint between two neighbouring fp16 (and bf16) values, and the floats one ulp
 *   either side of it; and a stride through all 2^32 float patterns. Exact: bits must be
 *   equal; a NaN must give a NaN of the same sign.
 *   (test/check_precision.py compares the same functions with NumPy and PyTorch.)
 * - The loss scaler (engine/scaler.c): GradScaler's defaults, backoff and growth, no growth
 *   into Inf, the min_scale floor, bad configs; its checkpoint metadata read back through a
 *   real safetensors file continues exactly as an uninterrupted scaler; bad metadata refused.
 * - clt_checkpoint_export: fp16, bf16 and fp32 files read back by clt_checkpoint_* with the
 *   values of the host conversions, the optimizer left out, metadata kept and the checksum
 *   valid; refusals (NaN, fp16 overflow, the source itself, missing or corrupt input) write
 *   nothing and leave an existing output as it was.
 */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "precision.h"
#include "scaler.h"

/* ---- A reference in double arithmetic ----------------------------------------------------- */

/* A 16-bit format: fraction bits, exponent bias, and the largest finite value. */
struct fmt {
    int frac, bias;
    double max;
};
static const struct fmt F16 = {10, 15, 65504.0};
static const struct fmt BF16 = {7, 127, 3.3895313892515355e38};

/* The bits of |v|, a value of the format's grid (or Inf past its largest), encoded by
 * exponent and fraction. */
static uint16_t encode(const struct fmt *f, double v)
{
    const int ebits = 15 - f->frac;
    if (v > f->max)
        return (uint16_t)(((1u << ebits) - 1) << f->frac);
    const double min_normal = ldexp(1.0, 1 - f->bias);
    if (v < min_normal) /* subnormal or zero: v / smallest subnormal */
        return (uint16_t)(v / ldexp(min_normal, -f->frac));
    int e;
    double m = frexp(v, &e); /* v = m 2^e, m in [0.5, 1) */
    const uint32_t biased = (uint32_t)(e - 1 + f->bias);
    const uint32_t fraction = (uint32_t)((m * 2.0 - 1.0) * ldexp(1.0, f->frac));
    return (uint16_t)(biased << f->frac | fraction);
}

/* x rounded to the nearest value of the format's grid, ties to even, as bits. */
static uint16_t ref_narrow(const struct fmt *f, float x)
{
    const uint16_t sign = signbit(x) ? 0x8000 : 0;
    const double a = fabs((double)x);
    if (isinf(x))
        return (uint16_t)(sign | encode(f, INFINITY));
    int e;
    frexp(a, &e);
    int exp = e - 1; /* a in [2^exp, 2^(exp+1)) */
    if (exp < 1 - f->bias || a == 0.0)
        exp = 1 - f->bias; /* subnormals share the smallest normal's spacing */
    const double ulp = ldexp(1.0, exp - f->frac);
    const double q = a / ulp; /* exact: a power of two */
    double r = floor(q);
    const double rest = q - r;
    if (rest > 0.5 || (rest == 0.5 && fmod(r, 2.0) != 0.0))
        r += 1.0;
    return (uint16_t)(sign | encode(f, r * ulp));
}

/* The value of bits h of the format, from its fields. */
static double ref_widen(const struct fmt *f, uint16_t h)
{
    const int ebits = 15 - f->frac;
    const uint32_t e = (h >> f->frac) & ((1u << ebits) - 1), m = h & ((1u << f->frac) - 1);
    const double s = (h & 0x8000) ? -1.0 : 1.0;
    if (e == (1u << ebits) - 1)
        return m ? NAN : s * INFINITY;
    if (e == 0)
        return s * ldexp((double)m, 1 - f->bias - f->frac);
    return s * ldexp(1.0 + ldexp((double)m, -f->frac), (int)e - f->bias);
}

static float float_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* Checks both host narrowings of x against the reference. */
static void check_narrow(float x)
{
    const uint16_t h = clt__f32_to_f16(x), b = clt__f32_to_bf16(x);
    if (isnan(x)) {
        assert_true(clt__f16_nonfinite(h) && (h & 0x3ff));
        assert_true(clt__bf16_nonfinite(b) && (b & 0x7f));
        assert_int_equal(h >> 15, bits_of(x) >> 31);
        assert_int_equal(b >> 15, bits_of(x) >> 31);
        return;
    }
    const uint16_t want_h = ref_narrow(&F16, x), want_b = ref_narrow(&BF16, x);
    if (h != want_h || b != want_b)
        fail_msg("narrowing %a (0x%08x): fp16 0x%04x want 0x%04x, bf16 0x%04x want 0x%04x",
                 (double)x, bits_of(x), h, want_h, b, want_b);
}

/* ---- Conversions -------------------------------------------------------------------------- */

/* Values worked out by hand from the formats' definitions. */
static void table(void **state)
{
    (void)state;
    const struct {
        float x;
        uint16_t f16, bf16;
    } t[] = {
        {0.0f, 0x0000, 0x0000},
        {-0.0f, 0x8000, 0x8000},
        {1.0f, 0x3c00, 0x3f80},
        {-2.0f, 0xc000, 0xc000},
        {0.5f, 0x3800, 0x3f00},
        {65504.0f, 0x7bff, 0x4780},   /* fp16's largest; bf16 rounds 65504 up to 65536 */
        {65519.996f, 0x7bff, 0x4780}, /* just below the fp16 overflow threshold */
        {65520.0f, 0x7c00, 0x4780},   /* the tie above 65504 goes to even: Inf */
        {1e6f, 0x7c00, 0x4974},       /* fp16 overflow; bf16 0x4974 = 999424 */
        {INFINITY, 0x7c00, 0x7f80},
        {-INFINITY, 0xfc00, 0xff80},
        {0x1p-14f, 0x0400, 0x3880},        /* fp16's smallest normal */
        {0x1p-24f, 0x0001, 0x3380},        /* fp16's smallest subnormal */
        {0x1p-25f, 0x0000, 0x3300},        /* a tie between 0 and 2^-24: even is 0 */
        {0x1.000002p-25f, 0x0001, 0x3300}, /* just above the tie */
        {0x3p-25f, 0x0002, 0x33c0},        /* 1.5 2^-24: tie between 1 and 2 units, even is 2 */
        {0x1.ff8p-15f, 0x03ff, 0x3880},    /* fp16's largest subnormal; bf16 rounds up to 2^-14 */
        {0x1.ffcp-15f, 0x0400, 0x3880},    /* the tie above it: even is 2^-14, a normal */
        {0x1.ffep-15f, 0x0400, 0x3880},    /* rounds up from the subnormals into the normals */
        {1.0009765625f, 0x3c01, 0x3f80},   /* 1 + 2^-10 */
        {1.00048828125f, 0x3c00, 0x3f80},  /* 1 + 2^-11: a tie, even is 1 */
        {1.00146484375f, 0x3c02, 0x3f80},  /* 1 + 3 2^-11: a tie, even is 1 + 2^-9 */
        {1.00390625f, 0x3c04, 0x3f80},     /* 1 + 2^-8: a bf16 tie, even is 1 */
        {1.01171875f, 0x3c0c, 0x3f82},     /* 1 + 3 2^-8: a bf16 tie, even is 1 + 2^-6 */
        {3.14159265f, 0x4248, 0x4049},
        {0x1.fffffep127f, 0x7c00, 0x7f80}, /* FLT_MAX rounds to Inf in bf16 too */
        {0x1.fep127f, 0x7c00, 0x7f7f},     /* bf16's largest finite */
        {0x1p-149f, 0x0000, 0x0000},       /* fp32's smallest subnormal: below bf16's 2^-133 */
        {0x1p-133f, 0x0000, 0x0001},       /* bf16's smallest subnormal */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const uint16_t h = clt__f32_to_f16(t[i].x), b = clt__f32_to_bf16(t[i].x);
        if (h != t[i].f16 || b != t[i].bf16)
            fail_msg("row %zu (%a): fp16 0x%04x want 0x%04x, bf16 0x%04x want 0x%04x", i,
                     (double)t[i].x, h, t[i].f16, b, t[i].bf16);
        check_narrow(t[i].x); /* the reference agrees with the table too */
    }
    assert_true(clt__f16_to_f32(0x7bff) == 65504.0f);
    assert_true(clt__f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(clt__f16_to_f32(0x83ff) == -0x1.ff8p-15f);
    assert_true(clt__bf16_to_f32(0x4049) == 3.140625f);
    /* NaN: quiet, sign and top payload kept. */
    assert_int_equal(clt__f32_to_f16(float_of(0x7fc00000u)), 0x7e00);
    assert_int_equal(clt__f32_to_f16(float_of(0xff800001u)), 0xfe00);
    assert_int_equal(clt__f32_to_bf16(float_of(0x7f800001u)), 0x7fc0);
    assert_int_equal(clt__f32_to_bf16(float_of(0xffa00000u)), 0xffe0);
    assert_true(isnan(clt__f16_to_f32(0x7c01)) && isnan(clt__bf16_to_f32(0xff81)));
    assert_int_equal(clt_precision_name(CLT_PRECISION_BF16)[0], 'b');
    assert_string_equal(clt_precision_name((enum clt_precision)7), "?");
}

/* Every 16-bit pattern: widening matches the reference, and narrowing gives the pattern back
 * (a NaN a NaN). */
static void every_pattern(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < 65536; i++) {
        const uint16_t h = (uint16_t)i;
        const float f = clt__f16_to_f32(h), b = clt__bf16_to_f32(h);
        const double rf = ref_widen(&F16, h), rb = ref_widen(&BF16, h);
        if (isnan(rf)) {
            assert_true(isnan(f));
            assert_true(clt__f16_nonfinite(clt__f32_to_f16(f)));
        } else if ((double)f != rf || !signbit(f) != !signbit(rf) || clt__f32_to_f16(f) != h) {
            fail_msg("fp16 0x%04x widens to %a, want %a", h, (double)f, rf);
        }
        if (isnan(rb)) {
            assert_true(isnan(b));
        } else if ((double)b != rb || !signbit(b) != !signbit(rb) || clt__f32_to_bf16(b) != h) {
            fail_msg("bf16 0x%04x widens to %a, want %a", h, (double)b, rb);
        }
        assert_int_equal(bits_of(b), i << 16);
    }
}

/* Every midpoint between neighbouring values of both formats and the floats next to it: the
 * ties and near-ties where rounding goes wrong. */
static void every_midpoint(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < 0x7bff; i++) { /* fp16: up to the largest finite (65520: table) */
        const double mid = (ref_widen(&F16, (uint16_t)i) + ref_widen(&F16, (uint16_t)(i + 1))) / 2;
        const float m = (float)mid; /* exact: fp32 holds every fp16 midpoint */
        assert_true((double)m == mid);
        for (int s = 0; s < 2; s++) {
            const float x = s ? -m : m;
            check_narrow(x);
            check_narrow(nextafterf(x, 0.0f));
            check_narrow(nextafterf(x, s ? -INFINITY : INFINITY));
        }
    }
    for (uint32_t i = 0; i < 0x7f80; i++) { /* bf16: a midpoint is the pattern plus 0x8000 */
        const float m = float_of(i << 16 | 0x8000u);
        for (int s = 0; s < 2; s++) {
            const float x = s ? -m : m;
            check_narrow(x);
            check_narrow(nextafterf(x, 0.0f));
            check_narrow(nextafterf(x, s ? -INFINITY : INFINITY));
        }
    }
}

/* A stride through all 2^32 float patterns (about 2.6 million), a prime so that every bit
 * position varies. */
static void float_stride(void **state)
{
    (void)state;
    uint64_t n = 0;
    for (uint64_t u = 0; u <= 0xffffffffu; u += 1637) {
        check_narrow(float_of((uint32_t)u));
        n++;
    }
    assert_true(n > 2000000);
}

/* Compares the bulk narrowing with the element-wise one for the n values at x, in both
 * formats. */
static void check_bulk(const float *x, size_t n)
{
    uint16_t out[4099];
    assert_true(n <= sizeof out / sizeof out[0]);
    for (int f = 0; f < 2; f++) {
        const enum clt_precision p = f ? CLT_PRECISION_BF16 : CLT_PRECISION_FP16;
        clt__f32_to_half_n(p, x, out, n);
        for (size_t i = 0; i < n; i++)
            if (out[i] != clt__f32_to_half(p, x[i]))
                fail_msg("%s bulk narrowing of %a (0x%08x, element %zu of %zu): 0x%04x want 0x%04x",
                         clt_precision_name(p), (double)x[i], bits_of(x[i]), i, n, out[i],
                         clt__f32_to_half(p, x[i]));
    }
}

/* clt__f32_to_half_n (the batch upload's narrowing, written to vectorize) gives the bits of
 * clt__f32_to_half: every fp16 and bf16 midpoint and the floats beside it, a stride through
 * all float patterns, in runs of 4099 (not a multiple of its blocks of 16), and every run
 * length from 0 to 40 at an odd offset. */
static void bulk_narrow(void **state)
{
    (void)state;
    float x[4099];
    size_t n = 0;
    for (uint32_t i = 0; i < 0x7f80; i++) {
        const float mids[2] = {(float)((ref_widen(&F16, (uint16_t)(i % 0x7bff)) +
                                        ref_widen(&F16, (uint16_t)(i % 0x7bff + 1))) /
                                       2),
                               float_of(i << 16 | 0x8000u)};
        for (int k = 0; k < 2; k++)
            for (int s = 0; s < 2; s++) {
                const float m = s ? -mids[k] : mids[k];
                const float v[3] = {m, nextafterf(m, 0.0f),
                                    nextafterf(m, s ? -INFINITY : INFINITY)};
                for (int j = 0; j < 3; j++) {
                    x[n++] = v[j];
                    if (n == 4099) {
                        check_bulk(x, n);
                        n = 0;
                    }
                }
            }
    }
    for (uint64_t u = 0; u <= 0xffffffffu; u += 251) {
        x[n++] = float_of((uint32_t)u);
        if (n == 4099) {
            check_bulk(x, n);
            n = 0;
        }
    }
    check_bulk(x, n);
    for (size_t len = 0; len <= 40; len++)
        check_bulk(x + 3, len);
}

/* ---- The loss scaler ---------------------------------------------------------------------- */

static void scaler_rule(void **state)
{
    (void)state;
    struct clt__scaler_config cfg;
    clt__scaler_config_init(&cfg);
    assert_true(cfg.init_scale == 65536.0 && cfg.growth_factor == 2.0);
    assert_true(cfg.backoff_factor == 0.5 && cfg.growth_interval == 2000 && cfg.min_scale == 0);
    cfg.growth_interval = 3;
    struct clt__scaler s;
    clt__scaler_init(&s, &cfg);
    assert_true(s.scale == 65536.0f && clt__scaler_inv_scale(&s) == 0x1p-16f);

    /* An overflow: skipped, halved, counted. */
    assert_false(clt__scaler_update(&s, true));
    assert_true(s.scale == 32768.0f);
    assert_int_equal(s.skipped, 1);
    assert_int_equal(s.growth_tracker, 0);
    /* Two clean steps count; the third grows the scale and restarts the count. */
    assert_true(clt__scaler_update(&s, false));
    assert_true(clt__scaler_update(&s, false));
    assert_int_equal(s.growth_tracker, 2);
    assert_true(s.scale == 32768.0f);
    assert_true(clt__scaler_update(&s, false));
    assert_true(s.scale == 65536.0f);
    assert_int_equal(s.growth_tracker, 0);
    /* An overflow in the middle of a count restarts it. */
    assert_true(clt__scaler_update(&s, false));
    assert_false(clt__scaler_update(&s, true));
    assert_int_equal(s.growth_tracker, 0);
    assert_int_equal(s.skipped, 2);
    assert_true(s.scale == 32768.0f);

    /* No growth into Inf: the scale stays, the count restarts (GradScaler's rule). */
    s.scale = 0x1p127f;
    for (int i = 0; i < 3; i++)
        clt__scaler_update(&s, false);
    assert_true(s.scale == 0x1p127f);
    assert_int_equal(s.growth_tracker, 0);

    /* Without a floor the scale keeps halving (GradScaler); with one it stops there. */
    clt__scaler_init(&s, &cfg);
    for (int i = 0; i < 20; i++)
        clt__scaler_update(&s, true);
    assert_true(s.scale == 0x1p-4f);
    cfg.min_scale = 1.0;
    clt__scaler_init(&s, &cfg);
    for (int i = 0; i < 20; i++)
        clt__scaler_update(&s, true);
    assert_true(s.scale == 1.0f);
    assert_int_equal(s.skipped, 20);

    /* Bad configs name their field. */
    struct clt_test_log tl = {0};
    struct clt_log log = {.fn = clt_test_log_fn, .user = &tl, .max_level = CLT_LOG_ERROR};
    struct clt__scaler_config bad = cfg;
    bad.growth_factor = 1.0;
    assert_int_equal(clt__scaler_config_check(&log, &bad), CLT_ERR_INVALID_ARGUMENT);
    bad = cfg;
    bad.backoff_factor = 1.0;
    assert_int_equal(clt__scaler_config_check(&log, &bad), CLT_ERR_INVALID_ARGUMENT);
    bad = cfg;
    bad.growth_interval = 0;
    assert_int_equal(clt__scaler_config_check(&log, &bad), CLT_ERR_INVALID_ARGUMENT);
    bad = cfg;
    bad.init_scale = INFINITY;
    assert_int_equal(clt__scaler_config_check(&log, &bad), CLT_ERR_INVALID_ARGUMENT);
    bad = cfg;
    bad.min_scale = 1e9;
    assert_int_equal(clt__scaler_config_check(&log, &bad), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(tl.text, "growth_factor"));
    assert_non_null(strstr(tl.text, "min_scale"));
    assert_int_equal(clt__scaler_config_check(&log, &cfg), CLT_OK);
}

/* A file holding one small tensor and the metadata given, parsed into *file (buffer in
 * *buf, freed by the caller). */
static void file_with_meta(const struct clt_meta *meta, size_t n, unsigned char **buf,
                           struct clt__safetensors *file)
{
    const float w[3] = {1, 2, 3};
    const int64_t shape[1] = {3};
    const struct clt__st_entry e = {"w", CLT__ST_F32, 1, shape, w};
    size_t size;
    char why[256];
    assert_int_equal(clt__safetensors_encode(&e, 1, meta, n, buf, &size, why, sizeof why), CLT_OK);
    assert_int_equal(clt__safetensors_parse(*buf, size, file, why, sizeof why), CLT_OK);
}

/* A found sequence that overflows now and then (a fixed pattern). */
static bool found_at(int i)
{
    return i % 7 == 3 || i % 11 == 0;
}

static void scaler_resume(void **state)
{
    (void)state;
    struct clt__scaler_config cfg;
    clt__scaler_config_init(&cfg);
    cfg.growth_interval = 4;
    cfg.init_scale = 1024.0;
    cfg.growth_factor = 3.0; /* a factor that makes scales no power of two */
    cfg.min_scale = 0.75;
    struct clt__scaler a, b;
    clt__scaler_init(&a, &cfg);
    for (int i = 0; i < 23; i++)
        clt__scaler_update(&a, found_at(i));
    struct clt_meta meta[CLT__SCALER_META];
    char text[CLT__SCALER_META][CLT__SCALER_TEXT];
    clt__scaler_meta(&a, meta, text);
    unsigned char *buf;
    struct clt__safetensors file;
    file_with_meta(meta, CLT__SCALER_META, &buf, &file);
    struct clt__scaler_config other;
    clt__scaler_config_init(&other);
    clt__scaler_init(&b, &other);
    assert_int_equal(clt__scaler_load(&b, &file, "f", NULL), CLT_OK);
    clt__safetensors_free(&file);
    free(buf);
    /* Field by field: the struct's padding (after growth_interval) holds whatever the stack
     * held, so a memory comparison failed at random (seen once in CI). */
    assert_true(a.cfg.init_scale == b.cfg.init_scale);
    assert_true(a.cfg.growth_factor == b.cfg.growth_factor);
    assert_true(a.cfg.backoff_factor == b.cfg.backoff_factor);
    assert_int_equal(a.cfg.growth_interval, b.cfg.growth_interval);
    assert_true(a.cfg.min_scale == b.cfg.min_scale);
    for (int i = 23; i < 80; i++) {
        assert_true(a.scale == b.scale);
        assert_int_equal(a.growth_tracker, b.growth_tracker);
        assert_int_equal(a.skipped, b.skipped);
        assert_int_equal(clt__scaler_update(&a, found_at(i)), clt__scaler_update(&b, found_at(i)));
    }
    assert_true(a.skipped > 5 && a.scale != 1024.0f);

    /* Bad metadata: a missing key, malformed values, an inconsistent state. *s stays. */
    const struct {
        int key;
        const char *value, *says;
    } bad[] = {
        {0, "nan", "scaler.scale"},
        {0, "0x1p4", "scaler.scale"},
        {0, "1e39", "scaler.scale"},
        {0, "-2", "scaler.scale"},
        {1, "-1", "scaler.growth_tracker"},
        {1, "4", "below growth_interval"},
        {2, "99999999999", "scaler.skipped"},
        {4, "1", "growth_factor"},
        {6, "0", "growth_interval"},
        {0, "0.5", ">= min_scale"},
        {-1, NULL, "no \"scaler.min_scale\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clt__scaler_meta(&a, meta, text);
        size_t n = CLT__SCALER_META;
        if (bad[i].key >= 0)
            meta[bad[i].key].value = bad[i].value;
        else
            n--; /* min_scale, the last, missing */
        file_with_meta(meta, n, &buf, &file);
        struct clt_test_log tl = {0};
        struct clt_log log = {.fn = clt_test_log_fn, .user = &tl, .max_level = CLT_LOG_ERROR};
        struct clt__scaler c = b;
        assert_int_equal(clt__scaler_load(&c, &file, "ck.safetensors", &log), CLT_ERR_FORMAT);
        assert_memory_equal(&c, &b, sizeof c);
        if (!strstr(tl.text, bad[i].says))
            fail_msg("case %zu: log \"%s\" lacks \"%s\"", i, tl.text, bad[i].says);
        clt__safetensors_free(&file);
        free(buf);
    }
}

/* ---- Export ------------------------------------------------------------------------------- */

static char dir[256];

static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

/* Writes a checkpoint like a trainer's: two parameters, an optimizer moment, an I32 tensor,
 * metadata with the optimizer's keys and a checksum. w[0] is set to `first`. */
static void write_source(const char *path, float first, float *w, size_t nw)
{
    clt_test_fill(w, nw, 7, -2.0f, 2.0f);
    w[0] = first;
    w[1] = 1e-9f;     /* underflows in fp16, kept by bf16 */
    w[2] = 60000.25f; /* large but within fp16 */
    static const float bias[5] = {0.1f, -0.2f, 0.3f, 65504.0f, -1.0f};
    static const int32_t ids[4] = {1, -2, 3, 1 << 30};
    static float m[5];
    const int64_t sw[2] = {7, 13}, sb[1] = {5}, si[1] = {4};
    const struct clt__st_entry e[] = {
        {"fc.weight", CLT__ST_F32, 2, sw, w},
        {"fc.bias", CLT__ST_F32, 1, sb, bias},
        {"optimizer.m.fc.bias", CLT__ST_F32, 1, sb, m},
        {"ids", CLT__ST_I32, 1, si, ids},
    };
    uint32_t crc;
    assert_int_equal(clt__safetensors_data_crc32(e, 4, &crc), CLT_OK);
    char crc_text[16];
    snprintf(crc_text, sizeof crc_text, "%08x", (unsigned)crc);
    const struct clt_meta meta[] = {
        {"model", "mlp"},     {"cltrain.version", "0.1.0"}, {"optimizer.kind", "adam"},
        {"optimizer.t", "3"}, {"scaler.scale", "1024"},     {"cltrain.data_crc32", crc_text},
    };
    assert_int_equal(clt__safetensors_write(path, e, 4, meta, 6, NULL), CLT_OK);
}

static void export_roundtrip(void **state)
{
    (void)state;
    char src[300], dst[300];
    path_in(src, sizeof src, "src.safetensors");
    float w[91];
    write_source(src, 0.5f, w, 91);
    const enum clt_precision ps[] = {CLT_PRECISION_FP16, CLT_PRECISION_BF16, CLT_PRECISION_FP32};
    const char *dtypes[] = {"F16", "BF16", "F32"};
    for (int k = 0; k < 3; k++) {
        const enum clt_precision p = ps[k];
        path_in(dst, sizeof dst, "out.safetensors");
        struct clt_export_report r;
        assert_int_equal(clt_checkpoint_export(src, dst, p, NULL, &r), CLT_OK);
        assert_int_equal(r.converted, 2);
        assert_int_equal(r.copied, 1);
        assert_int_equal(r.dropped, 1);
        assert_int_equal(r.elements, 96);
        assert_int_equal(r.underflows, p == CLT_PRECISION_FP16 ? 1 : 0);
        struct clt_checkpoint *ck;
        assert_int_equal(clt_checkpoint_open(dst, NULL, &ck), CLT_OK); /* checks the CRC */
        assert_int_equal(clt_checkpoint_tensor_count(ck), 3);
        struct clt_checkpoint_info info;
        uint32_t idx;
        assert_int_equal(clt_checkpoint_find(ck, "fc.weight", &idx), CLT_OK);
        assert_int_equal(clt_checkpoint_tensor_info(ck, idx, &info), CLT_OK);
        assert_string_equal(info.dtype, dtypes[k]);
        assert_int_equal(info.ndim, 2);
        assert_int_equal(info.shape[1], 13);
        float got[91];
        assert_int_equal(clt_checkpoint_read_f32(ck, "fc.weight", got, 91), CLT_OK);
        for (int i = 0; i < 91; i++) {
            const float want =
                p == CLT_PRECISION_FP32 ? w[i] : clt__half_to_f32(p, clt__f32_to_half(p, w[i]));
            assert_true(got[i] == want);
        }
        int64_t ids[4];
        assert_int_equal(clt_checkpoint_read_i64(ck, "ids", ids, 4), CLT_OK);
        assert_int_equal(ids[3], 1 << 30);
        assert_int_equal(clt_checkpoint_find(ck, "optimizer.m.fc.bias", &idx),
                         CLT_ERR_INVALID_ARGUMENT);
        assert_string_equal(clt_checkpoint_meta(ck, "model"), "mlp");
        assert_string_equal(clt_checkpoint_meta(ck, "cltrain.precision"), clt_precision_name(p));
        assert_null(clt_checkpoint_meta(ck, "optimizer.kind"));
        assert_null(clt_checkpoint_meta(ck, "scaler.scale"));
        clt_checkpoint_close(ck);
    }
    unlink(src);
    unlink(dst);
}

/* The bytes of a file (malloc'd), or NULL when it does not exist. */
static unsigned char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *b = malloc(1 << 20);
    assert_non_null(b);
    *size = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

/* True when dir holds a file whose name starts with prefix (a temporary file left over). */
static bool leftover(const char *prefix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    bool found = false;
    for (struct dirent *e; (e = readdir(d));)
        found |= strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return found;
}

static void export_refusals(void **state)
{
    (void)state;
    char src[300], dst[300], bad[300];
    path_in(src, sizeof src, "src.safetensors");
    path_in(dst, sizeof dst, "keep.safetensors");
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    fputs("a user's file", f);
    fclose(f);
    const struct {
        float first;
        enum clt_precision p;
        enum clt_status want;
        const char *says;
    } cases[] = {
        {NAN, CLT_PRECISION_BF16, CLT_ERR_FORMAT, "must be finite"},
        {INFINITY, CLT_PRECISION_FP32, CLT_ERR_FORMAT, "must be finite"},
        {70000.0f, CLT_PRECISION_FP16, CLT_ERR_FORMAT, "beyond the largest fp16"},
        {65520.0f, CLT_PRECISION_FP16, CLT_ERR_FORMAT, "bf16 or fp32"},
        {1e38f, CLT_PRECISION_FP16, CLT_ERR_FORMAT, "fc.weight"},
        {0.5f, (enum clt_precision)9, CLT_ERR_INVALID_ARGUMENT, "precision 9"},
    };
    float w[91];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_source(src, cases[i].first, w, 91);
        struct clt_test_log tl = {0};
        struct clt_log log = {.fn = clt_test_log_fn, .user = &tl, .max_level = CLT_LOG_ERROR};
        struct clt_export_report r = {.converted = 99};
        assert_int_equal(clt_checkpoint_export(src, dst, cases[i].p, &log, &r), cases[i].want);
        assert_int_equal(r.converted, 0);
        if (!strstr(tl.text, cases[i].says))
            fail_msg("case %zu: log \"%s\" lacks \"%s\"", i, tl.text, cases[i].says);
        size_t size = 0;
        unsigned char *b = slurp(dst, &size);
        assert_non_null(b);
        assert_int_equal(size, 13);
        assert_memory_equal(b, "a user's file", 13);
        free(b);
        assert_false(leftover("keep.safetensors.tmp"));
    }
    /* 70000 fits bf16. */
    write_source(src, 70000.0f, w, 91);
    path_in(bad, sizeof bad, "bf16.safetensors");
    assert_int_equal(clt_checkpoint_export(src, bad, CLT_PRECISION_BF16, NULL, NULL), CLT_OK);
    unlink(bad);

    /* The source itself, by the same path or another path to it. */
    struct clt_test_log tl = {0};
    struct clt_log log = {.fn = clt_test_log_fn, .user = &tl, .max_level = CLT_LOG_ERROR};
    size_t before = 0, after = 0;
    unsigned char *b0 = slurp(src, &before);
    assert_int_equal(clt_checkpoint_export(src, src, CLT_PRECISION_FP16, &log, NULL),
                     CLT_ERR_INVALID_ARGUMENT);
    snprintf(bad, sizeof bad, "%s/./src.safetensors", dir);
    assert_int_equal(clt_checkpoint_export(src, bad, CLT_PRECISION_FP16, &log, NULL),
                     CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(tl.text, "would replace the checkpoint it reads"));
    unsigned char *b1 = slurp(src, &after);
    assert_int_equal(before, after);
    assert_memory_equal(b0, b1, before);
    free(b0);
    free(b1);

    /* A missing source, a corrupt one (a flipped data byte fails the checksum), not a file. */
    path_in(bad, sizeof bad, "missing.safetensors");
    assert_int_equal(clt_checkpoint_export(bad, dst, CLT_PRECISION_FP16, NULL, NULL), CLT_ERR_IO);
    b0 = slurp(src, &before);
    b0[before - 1] ^= 1;
    path_in(bad, sizeof bad, "corrupt.safetensors");
    f = fopen(bad, "wb");
    assert_non_null(f);
    fwrite(b0, 1, before, f);
    fclose(f);
    free(b0);
    assert_int_equal(clt_checkpoint_export(bad, dst, CLT_PRECISION_FP16, NULL, NULL),
                     CLT_ERR_FORMAT);
    unlink(bad);
    f = fopen(bad, "wb");
    fputs("not safetensors", f);
    fclose(f);
    assert_int_equal(clt_checkpoint_export(bad, dst, CLT_PRECISION_FP16, NULL, NULL),
                     CLT_ERR_FORMAT);
    /* An output in a directory that does not exist: CLT_ERR_IO. */
    snprintf(bad, sizeof bad, "%s/no/such/dir/out.safetensors", dir);
    assert_int_equal(clt_checkpoint_export(src, bad, CLT_PRECISION_BF16, NULL, NULL), CLT_ERR_IO);
    assert_int_equal(clt_checkpoint_export(NULL, dst, CLT_PRECISION_FP16, NULL, NULL),
                     CLT_ERR_INVALID_ARGUMENT);
    size_t size = 0;
    b0 = slurp(dst, &size);
    assert_int_equal(size, 13);
    free(b0);
    path_in(bad, sizeof bad, "corrupt.safetensors");
    unlink(bad);
    unlink(src);
    unlink(dst);
}

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/clt_precision_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table),           cmocka_unit_test(every_pattern),
        cmocka_unit_test(every_midpoint),  cmocka_unit_test(float_stride),
        cmocka_unit_test(bulk_narrow),     cmocka_unit_test(scaler_rule),
        cmocka_unit_test(scaler_resume),   cmocka_unit_test(export_roundtrip),
        cmocka_unit_test(export_refusals),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
