/*
 * test_tools.c: the host-side pieces of the cltrain program, no device needed: the model file
 * parser (well-formed files, and malformed lines named by number), model descriptions and
 * their one-line form, building each model's graph for a dataset's shape, option parsing,
 * metrics fields and plot ticks.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#include "../tools/args.h"
#include "../tools/metrics.h"
#include "../tools/models.h"
#include "../tools/plot.h"

static const char *parse_error(const char *text)
{
    static char err[256];
    static struct layer_list list;
    err[0] = '\0';
    if (model_file_parse(text, &list, err, sizeof err) == CLT_OK)
        return NULL;
    return err;
}

static void model_file_good(void **state)
{
    (void)state;
    static struct layer_list l;
    char err[256] = "";
    const char *text = "# a small convnet\n"
                       "conv2d 16 3 pad=1 stride=1\n"
                       "batchnorm\r\n"
                       "relu   # inline comment\n"
                       "\n"
                       "maxpool 2\n"
                       "conv2d 8 3 bias=false\n"
                       "avgpool 2 stride=1 pad=1\n"
                       "globalavgpool\n"
                       "flatten\n"
                       "dropout 0.25\n"
                       "linear 64\n"
                       "leaky_relu 0.2\n"
                       "layernorm\n"
                       "gelu\n\ttanh\nsigmoid\nsilu\n"
                       "linear classes bias=false";
    assert_int_equal(model_file_parse(text, &l, err, sizeof err), CLT_OK);
    assert_int_equal(l.count, 17);
    assert_int_equal(l.layers[0].kind, LAYER_CONV2D);
    assert_int_equal(l.layers[0].n, 16);
    assert_int_equal(l.layers[0].k, 3);
    assert_int_equal(l.layers[0].pad, 1);
    assert_int_equal(l.layers[0].line, 2);
    assert_int_equal(l.layers[3].kind, LAYER_MAXPOOL);
    assert_int_equal(l.layers[3].stride, 0);
    assert_int_equal(l.layers[4].bias, 0);
    assert_int_equal(l.layers[5].stride, 1);
    assert_true(fabsf(l.layers[8].f - 0.25f) < 1e-7f);
    assert_true(fabsf(l.layers[10].f - 0.2f) < 1e-7f);
    assert_int_equal(l.layers[16].n, -1);
    assert_int_equal(l.layers[16].bias, 0);
    assert_int_equal(l.layers[16].line, 19);
}

static void model_file_bad(void **state)
{
    (void)state;
    const char *e;
    assert_non_null(e = parse_error(""));
    assert_non_null(strstr(e, "no layers"));
    assert_non_null(parse_error("# only a comment\n\n"));
    assert_non_null(e = parse_error("linear 10\nfrobnicate 3\n"));
    assert_non_null(strstr(e, "line 2"));
    assert_non_null(strstr(e, "unknown layer"));
    assert_non_null(e = parse_error("relu\n\nlinear\n"));
    assert_non_null(strstr(e, "line 3"));
    assert_non_null(e = parse_error("linear -5"));
    assert_non_null(strstr(e, "line 1"));
    assert_non_null(parse_error("linear 0"));
    assert_non_null(parse_error("linear 12x"));
    assert_non_null(parse_error("linear 99999999999999999999"));
    assert_non_null(parse_error("conv2d 8"));
    assert_non_null(parse_error("conv2d 8 3 4"));
    assert_non_null(e = parse_error("conv2d 8 3 pad=x"));
    assert_non_null(strstr(e, "bad option"));
    assert_non_null(parse_error("conv2d 8 3 stride=0"));
    assert_non_null(parse_error("conv2d 8 3 wibble=1"));
    assert_non_null(parse_error("maxpool 2 bias=true"));
    assert_non_null(parse_error("linear 4 pad=1"));
    assert_non_null(parse_error("relu 3"));
    assert_non_null(parse_error("relu x=3"));
    assert_non_null(parse_error("dropout"));
    assert_non_null(parse_error("dropout 1.0"));
    assert_non_null(parse_error("dropout -0.1"));
    assert_non_null(parse_error("dropout nan"));
    assert_non_null(parse_error("conv2d classes 3"));
    assert_non_null(parse_error("linear 1 2 3 4 5 6 7 8 9"));
    /* Arbitrary bytes never crash the parser. */
    char junk[512];
    uint64_t s = 99;
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i + 1 < sizeof junk; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            junk[i] = (char)(1 + (s >> 33) % 255);
        }
        junk[sizeof junk - 1] = '\0';
        parse_error(junk);
    }
}

static void desc_round_trip(void **state)
{
    (void)state;
    const char *kinds[] = {"mlp", "cnn", "gpt"};
    char text[1200], err[256];
    for (int i = 0; i < 3; i++) {
        struct model_desc d, back;
        assert_int_equal(model_desc_from_arg(kinds[i], &d, err, sizeof err), CLT_OK);
        d.width = 48;
        d.dropout = 0.125f;
        model_desc_format(&d, text, sizeof text);
        assert_int_equal(model_desc_parse(text, &back), CLT_OK);
        assert_string_equal(back.kind, kinds[i]);
        assert_int_equal(back.width, 48);
        assert_int_equal(back.depth, d.depth);
        assert_int_equal(back.heads, d.heads);
        assert_int_equal(back.context, d.context);
        assert_true(back.dropout == 0.125f);
    }
    struct model_desc d, back;
    assert_int_equal(model_desc_from_arg("file:my models/a=b.txt", &d, err, sizeof err), CLT_OK);
    model_desc_format(&d, text, sizeof text);
    assert_int_equal(model_desc_parse(text, &back), CLT_OK);
    assert_string_equal(back.path, "my models/a=b.txt");
    assert_int_equal(model_desc_from_arg("resnet", &d, err, sizeof err), CLT_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err, "resnet"));
    assert_int_equal(model_desc_from_arg("file:", &d, err, sizeof err), CLT_ERR_INVALID_ARGUMENT);
    const char *bad[] = {
        "",           "rnn width=3",     "mlp width=",   "mlp width=-1", "mlp depth=x",
        "mlp wide=3", "mlp dropout=1.5", "file width=3", "mlp  width=3", "gpt width=64 extra"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(model_desc_parse(bad[i], &back), CLT_ERR_FORMAT);
}

static struct clt_dataset_info images(void)
{
    struct clt_dataset_info i;
    memset(&i, 0, sizeof i);
    i.kind = CLT_DATASET_CLASSES;
    i.ndim = 3;
    i.shape[0] = 1;
    i.shape[1] = 28;
    i.shape[2] = 28;
    i.classes = 10;
    i.count = 100;
    return i;
}

static void build_models(void **state)
{
    (void)state;
    struct clt_dataset_info img = images(), text, flat = images();
    memset(&text, 0, sizeof text);
    text.kind = CLT_DATASET_TEXT;
    text.vocab = 27;
    flat.ndim = 1;
    flat.shape[0] = 5;
    flat.classes = 3;
    struct model m;
    struct model_desc d;
    char err[512];

    model_desc_init(&d, "mlp");
    assert_int_equal(model_build(&d, &img, 7, &m, err, sizeof err), CLT_OK);
    assert_int_equal(clt_tensor_dim(m.logits, 0), 7);
    assert_int_equal(clt_tensor_dim(m.logits, 1), 10);
    model_free(&m);
    assert_int_equal(model_build(&d, &flat, 7, &m, err, sizeof err), CLT_OK);
    model_free(&m);

    model_desc_init(&d, "cnn");
    d.width = 4;
    assert_int_equal(model_build(&d, &img, 3, &m, err, sizeof err), CLT_OK);
    assert_int_equal(clt_tensor_dim(m.logits, 1), 10);
    model_free(&m);
    assert_int_not_equal(model_build(&d, &flat, 3, &m, err, sizeof err), CLT_OK);
    assert_non_null(strstr(err, "images"));
    model_free(&m);

    model_desc_init(&d, "gpt");
    d.width = 16;
    d.heads = 2;
    d.depth = 2;
    d.context = 9;
    assert_int_equal(model_build(&d, &text, 3, &m, err, sizeof err), CLT_OK);
    assert_int_equal(clt_tensor_ndim(m.logits), 3);
    assert_int_equal(clt_tensor_dim(m.logits, 1), 9);
    assert_int_equal(clt_tensor_dim(m.logits, 2), 27);
    assert_int_equal(m.positions, 9);
    model_free(&m);
    assert_int_not_equal(model_build(&d, &img, 3, &m, err, sizeof err), CLT_OK);
    d.heads = 3;
    assert_int_not_equal(model_build(&d, &text, 3, &m, err, sizeof err), CLT_OK);
    model_desc_init(&d, "mlp");
    assert_int_not_equal(model_build(&d, &text, 3, &m, err, sizeof err), CLT_OK);

    model_desc_init(&d, "file");
    d.spec = "conv2d 4 3 pad=1\nbatchnorm\nrelu\nmaxpool 2\nflatten\nlinear classes\n";
    assert_int_equal(model_build(&d, &img, 2, &m, err, sizeof err), CLT_OK);
    assert_int_equal(clt_tensor_dim(m.logits, 1), 10);
    model_free(&m);
    d.spec = "flatten\nlinear 16\nrelu\nlinear 4\n";
    assert_int_not_equal(model_build(&d, &img, 2, &m, err, sizeof err), CLT_OK);
    assert_non_null(strstr(err, "linear classes"));
    d.spec = "linear 16\nlinear classes\n";
    assert_int_not_equal(model_build(&d, &img, 2, &m, err, sizeof err), CLT_OK);
    assert_non_null(strstr(err, "line 1"));
    assert_non_null(strstr(err, "flatten"));
    d.spec = "linear 8\nconv2d 4 3\nlinear classes\n";
    assert_int_not_equal(model_build(&d, &flat, 2, &m, err, sizeof err), CLT_OK);
    assert_non_null(strstr(err, "line 2"));
    d.spec = "conv2d 4 30\nflatten\nlinear classes\n"; /* a kernel larger than the image */
    assert_int_not_equal(model_build(&d, &img, 2, &m, err, sizeof err), CLT_OK);
    assert_non_null(strstr(err, "line 1"));
}

static void options(void **state)
{
    (void)state;
    int64_t n = 5;
    double x = 0;
    const char *s = NULL;
    bool flag = false;
    struct opt o[] = {
        {"count", OPT_INT, &n, "N", "", 1, 10, false},
        {"rate", OPT_FLOAT, &x, "X", "", 0, 0, false},
        {"name", OPT_STRING, &s, "S", "", 0, 0, false},
        {"flag", OPT_FLAG, &flag, NULL, "", 0, 0, false},
    };
    char *good[] = {"--count", "7", "--rate=1e-3", "--name", "a b", "--flag"};
    assert_int_equal(args_parse("t", 6, good, o, 4), 0);
    assert_int_equal(n, 7);
    assert_true(x == 1e-3);
    assert_string_equal(s, "a b");
    assert_true(flag && o[0].seen && o[3].seen);
    char *bad[][2] = {{"--count", "x"},  {"--count", "11"},   {"--count", "1.5"},
                      {"--rate", "nan"}, {"--rate", "1e999"}, {"--wat", "1"},
                      {"plain", "1"},    {"--flag=1", "x"},   {"--", "1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(args_parse("t", 2, bad[i], o, 4), 2);
    char *missing[] = {"--count"};
    assert_int_equal(args_parse("t", 1, missing, o, 4), 2);
    char *help[] = {"--help"};
    assert_int_equal(args_parse("t", 1, help, o, 4), -1);
}

static void metrics_and_ticks(void **state)
{
    (void)state;
    double v = 0;
    const char *line = "{\"type\":\"train\",\"step\":12,\"loss\":0.5,\"lr\":null}";
    assert_true(metrics_field(line, "step", &v) && v == 12);
    assert_true(metrics_field(line, "loss", &v) && v == 0.5);
    assert_false(metrics_field(line, "lr", &v));
    assert_false(metrics_field(line, "accuracy", &v));
    double first, step;
    plot_ticks(0, 2.3, 6, &first, &step);
    assert_true(step == 0.5 && first == 0);
    plot_ticks(13, 1407, 8, &first, &step);
    assert_true(step == 200 && first == 200);
    plot_ticks(0.31, 0.34, 5, &first, &step);
    assert_true(fabs(step - 0.005) < 1e-12 && fabs(first - 0.31) < 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(model_file_good), cmocka_unit_test(model_file_bad),
        cmocka_unit_test(desc_round_trip), cmocka_unit_test(build_models),
        cmocka_unit_test(options),         cmocka_unit_test(metrics_and_ticks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
