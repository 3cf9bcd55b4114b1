/*
 * conv.c: the conv family: launchers of 2-D convolution (see conv.h and
 * docs/kernels/conv.md), then the graph op conv2d: its definition and public builder.
 *
 * The batch is cut into chunks of up to `chunk` images (clt__conv2d_resolve chooses it so
 * that the workspace stays under CLT__CONV2D_WORKSPACE_CAP); a chunk of M images has one
 * column matrix col [K, M * P], the images' columns side by side, so each pass is one GEMM
 * per chunk. For group g, with Cg = C_in / G input and Co = C_out / G output channels per
 * group, Kg = Cg * KH * KW and P = OH * OW:
 *     forward   yt_g [Co, M P]  = W_g [Co, Kg] * col_g [Kg, M P], then y = yt transposed
 *                                 to [M, C_out, P], plus bias (conv2d_unpack)
 *     dweight   dW_g [Co, Kg]  += dyt_g [Co, M P] * col_g^T [M P, Kg]    (dyt: dy transposed
 *                                 to [C_out, M, P] by conv2d_pack)
 *     dx        dcol_g [Kg, M P] = W_g^T [Kg, Co] * dyt_g [Co, M P], then col2im
 * Each GEMM is strided-batched over the G groups: consecutive groups are Co * Kg elements
 * apart in W, Kg * M P in the columns and Co * M P in yt and dyt. A batch in one chunk may
 * keep its columns from the forward for dweight (`columns`, the node's cache aux buffer when
 * the plan gave it one): dweight then runs no im2col of its own.
 *
 * Every tensor (x, weight, bias, y and their gradients) and the workspace hold elements of the
 * device's storage (dev->storage: fp32, or 16 bits, docs/precision.md), as the kernels of
 * cl/conv.cl and clt__gemm read and write them; offsets count those elements. The workspace
 * is sized at 4 bytes per element, enough for every storage.
 */
#include "graph.h"
#include "ops/conv.h"
#include "ops/pool.h"

/* Products of sizes are kept below 2^31: kernels index with int. */
static bool mul_fits(int64_t a, int64_t b, int64_t *out)
{
    if (a != 0 && b > INT32_MAX / a)
        return false;
    *out = a * b;
    return true;
}

static bool product_fits(const int64_t *factors, size_t count, int64_t *out)
{
    int64_t p = 1;
    for (size_t i = 0; i < count; i++)
        if (!mul_fits(p, factors[i], &p))
            return false;
    *out = p;
    return true;
}

/* Elements of workspace one image takes: its columns [K, P] and its GEMM output [C_out, P]. */
static int64_t image_elements(const struct clt__conv2d *c)
{
    return (c->c_in * c->kh * c->kw + c->c_out) * c->oh * c->ow;
}

/* The chunk: as many images as the cap allows (at least one), then spread evenly over the
 * chunks that takes, so that the last chunk is not much smaller than the others. */
static int64_t choose_chunk(const struct clt__conv2d *c)
{
    const int64_t n = c->n > 0 ? c->n : 1;
    int64_t most = (int64_t)(CLT__CONV2D_WORKSPACE_CAP / sizeof(float)) / image_elements(c);
    if (most < 1)
        most = 1;
    const int64_t chunks = (n + most - 1) / most;
    return (n + chunks - 1) / chunks;
}

enum clt_status clt__conv2d_resolve(const struct clt_log *log, struct clt__conv2d *c)
{
    const int64_t fields[] = {c->n,     c->c_in,  c->h,        c->w,        c->c_out,
                              c->kh,    c->kw,    c->stride_h, c->stride_w, c->pad_h,
                              c->pad_w, c->dil_h, c->dil_w,    c->groups,   c->chunk};
    bool ok = true;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        ok = ok && fields[i] >= 0 && fields[i] <= INT32_MAX;
    ok = ok && c->c_in >= 1 && c->h >= 1 && c->w >= 1 && c->c_out >= 1 && c->kh >= 1 &&
         c->kw >= 1 && c->stride_h >= 1 && c->stride_w >= 1 && c->dil_h >= 1 && c->dil_w >= 1 &&
         c->groups >= 1;
    if (!ok || c->c_in % c->groups != 0 || c->c_out % c->groups != 0) {
        clt__log(log, CLT_LOG_ERROR,
                 "conv2d: impossible parameters N=%lld C_in=%lld H=%lld "
                 "W=%lld C_out=%lld kernel %lldx%lld stride %lldx%lld pad %lldx%lld dilation "
                 "%lldx%lld groups %lld chunk %lld",
                 (long long)c->n, (long long)c->c_in, (long long)c->h, (long long)c->w,
                 (long long)c->c_out, (long long)c->kh, (long long)c->kw, (long long)c->stride_h,
                 (long long)c->stride_w, (long long)c->pad_h, (long long)c->pad_w,
                 (long long)c->dil_h, (long long)c->dil_w, (long long)c->groups,
                 (long long)c->chunk);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    /* Every term below is < 2^31, so these sums and products fit in 64 bits. */
    const int64_t span_h = c->dil_h * (c->kh - 1) + 1, span_w = c->dil_w * (c->kw - 1) + 1;
    const int64_t padded_h = c->h + 2 * c->pad_h, padded_w = c->w + 2 * c->pad_w;
    if (span_h > padded_h || span_w > padded_w) {
        clt__log(log, CLT_LOG_ERROR,
                 "conv2d: the dilated kernel (%lldx%lld) is larger than "
                 "the padded input (%lldx%lld)",
                 (long long)span_h, (long long)span_w, (long long)padded_h, (long long)padded_w);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    const int64_t oh = (padded_h - span_h) / c->stride_h + 1;
    const int64_t ow = (padded_w - span_w) / c->stride_w + 1;
    const int64_t x_size[] = {c->n, c->c_in, c->h, c->w};
    const int64_t y_size[] = {c->n, c->c_out, oh, ow};
    const int64_t w_size[] = {c->c_out, c->c_in / c->groups, c->kh, c->kw};
    const int64_t col_size[] = {c->c_in, c->kh, c->kw, oh, ow};
    int64_t count;
    if (padded_h > INT32_MAX || padded_w > INT32_MAX || !product_fits(x_size, 4, &count) ||
        !product_fits(y_size, 4, &count) || !product_fits(w_size, 4, &count) ||
        !product_fits(col_size, 5, &count) || count + c->c_out * oh * ow > INT32_MAX) {
        clt__log(log, CLT_LOG_ERROR, "conv2d: a tensor has 2^31 elements or more");
        return CLT_ERR_INVALID_ARGUMENT;
    }
    c->oh = oh;
    c->ow = ow;
    /* A chunk larger than the batch is the batch; 0 is chosen here. */
    if (c->chunk == 0)
        c->chunk = choose_chunk(c);
    else if (c->chunk > c->n && c->n > 0)
        c->chunk = c->n;
    const int64_t chunk_size[] = {c->chunk, image_elements(c)};
    if (!product_fits(chunk_size, 2, &count)) {
        clt__log(log, CLT_LOG_ERROR,
                 "conv2d: the workspace of a chunk of %lld images has 2^31 elements or more",
                 (long long)c->chunk);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return CLT_OK;
}

static void discard(void *user, enum clt_log_level level, const char *message)
{
    (void)user;
    (void)level;
    (void)message;
}

uint64_t clt__conv2d_workspace_bytes(const struct clt__conv2d *c)
{
    struct clt__conv2d r = *c;
    const struct clt_log silent = {discard, NULL, CLT_LOG_ERROR};
    if (clt__conv2d_resolve(&silent, &r) != CLT_OK)
        return 0;
    return (uint64_t)(r.chunk * image_elements(&r)) * sizeof(float);
}

static struct clt__buf at(struct clt__buf b, int64_t elements)
{
    return (struct clt__buf){b.mem, b.offset + (size_t)elements};
}

/* The element counts of a resolved convolution's tensors. */
struct sizes {
    int64_t x, y, weight, image_in, image_out, p, k, cg, co, kg;
};

static struct sizes sizes_of(const struct clt__conv2d *c)
{
    struct sizes s;
    s.p = c->oh * c->ow;
    s.image_in = c->c_in * c->h * c->w;
    s.image_out = c->c_out * s.p;
    s.x = c->n * s.image_in;
    s.y = c->n * s.image_out;
    s.k = c->c_in * c->kh * c->kw;
    s.cg = c->c_in / c->groups;
    s.co = c->c_out / c->groups;
    s.kg = s.cg * c->kh * c->kw;
    s.weight = c->c_out * s.kg;
    return s;
}

/* One chunk of images: the first one's index, how many, and where its two workspace
 * matrices lie: the columns col [K, M P] first, then yt / dyt [C_out, M P]. */
struct chunk {
    int64_t first, m;
    struct clt__buf col, t;
};

static struct chunk chunk_at(const struct clt__conv2d *c, const struct sizes *s, int64_t first,
                             struct clt__buf workspace)
{
    struct chunk ch;
    ch.first = first;
    ch.m = c->n - first < c->chunk ? c->n - first : c->chunk;
    ch.col = workspace;
    ch.t = at(workspace, s->k * ch.m * s->p);
    return ch;
}

/* The 13 geometry arguments every image kernel of cl/conv.cl starts with. */
#define GEOMETRY(c)                                                                                \
    CLT__I32((c)->c_in), CLT__I32((c)->h), CLT__I32((c)->w), CLT__I32((c)->kh), CLT__I32((c)->kw), \
        CLT__I32((c)->stride_h), CLT__I32((c)->stride_w), CLT__I32((c)->pad_h),                    \
        CLT__I32((c)->pad_w), CLT__I32((c)->dil_h), CLT__I32((c)->dil_w), CLT__I32((c)->oh),       \
        CLT__I32((c)->ow)

/* col [K, M P] = the columns of the chunk's images of x. */
static enum clt_status im2col(struct clt_device *dev, const struct clt__conv2d *c,
                              const struct sizes *s, const struct chunk *ch, struct clt__buf x,
                              struct clt__buf col)
{
    const size_t g[2] = {clt__row_lanes(dev, c->ow), (size_t)(s->k * ch->m)};
    return CLT__RUN_ND(dev, CLT__K_conv2d_im2col, 2, g, GEOMETRY(c), CLT__I32(ch->m),
                       CLT__BUF(at(x, ch->first * s->image_in)), CLT__BUF(col));
}

/* The chunk's images of dx (+)= the gather of dcol [K, M P] into them. */
static enum clt_status col2im(struct clt_device *dev, const struct clt__conv2d *c,
                              const struct sizes *s, const struct chunk *ch, struct clt__buf dx,
                              bool accumulate)
{
    const size_t g[2] = {(size_t)c->h, (size_t)(ch->m * c->c_in)};
    return CLT__RUN_ND(dev, CLT__K_conv2d_col2im, 2, g, GEOMETRY(c), CLT__I32(ch->m),
                       CLT__I32(accumulate), CLT__BUF(ch->col),
                       CLT__BUF(at(dx, ch->first * s->image_in)));
}

/* One GEMM per group, strided-batched: C_g = op(A_g) op(B_g) + beta C_g for g < G. */
static enum clt_status group_gemm(struct clt_device *dev, int64_t groups, bool trans_a,
                                  bool trans_b, int64_t m, int64_t n, int64_t k, float beta,
                                  struct clt__buf a, int64_t stride_a, struct clt__buf b,
                                  int64_t stride_b, struct clt__buf c, int64_t stride_c)
{
    const struct clt_gemm_shape want = {
        .trans_a = trans_a,
        .trans_b = trans_b,
        .m = m,
        .n = n,
        .k = k,
        .alpha = 1.0f,
        .beta = beta,
        .batch = groups,
        .stride_a = stride_a,
        .stride_b = stride_b,
        .stride_c = stride_c,
    };
    return clt__gemm(dev, &want, a, b, c);
}

/* The forward pass of one chunk: im2col (into the kept columns when given, else into the
 * workspace), the GEMM into yt, then y = yt transposed + bias. */
static enum clt_status chunk_forward(struct clt_device *dev, const struct clt__conv2d *c,
                                     const struct sizes *s, const struct chunk *ch,
                                     struct clt__buf x, struct clt__buf weight,
                                     struct clt__buf bias, struct clt__buf y,
                                     struct clt__buf columns)
{
    const int64_t mp = ch->m * s->p;
    const struct clt__buf y_m = at(y, ch->first * s->image_out);
    /* One image: [C_out, 1, P] is NCHW already, so the GEMM writes y and unpack only adds
     * the bias, in place. */
    const struct clt__buf yt = ch->m == 1 ? y_m : ch->t;
    const struct clt__buf col = columns.mem ? columns : ch->col;
    enum clt_status st = im2col(dev, c, s, ch, x, col);
    /* yt_g [Co, M P] = W_g [Co, Kg] * col_g [Kg, M P]. */
    if (st == CLT_OK)
        st = group_gemm(dev, c->groups, false, false, s->co, mp, s->kg, 0.0f, weight, s->co * s->kg,
                        col, s->kg * mp, yt, s->co * mp);
    const size_t g[3] = {clt__row_lanes(dev, s->p), (size_t)c->c_out, (size_t)ch->m};
    if (st == CLT_OK && (ch->m > 1 || bias.mem))
        st = CLT__RUN_ND(dev, CLT__K_conv2d_unpack, 3, g, CLT__I32(ch->m), CLT__I32(c->c_out),
                         CLT__I32(s->p), CLT__BUF(yt), CLT__BUF(bias), CLT__BUF(y_m));
    return st;
}

/* The kept columns, when given, are the batch's [K, N P]: the batch must be one chunk. */
static enum clt_status check_columns(struct clt_device *dev, const struct clt__conv2d *c,
                                     const struct sizes *s, struct clt__buf columns, const char *op)
{
    if (!columns.mem)
        return CLT_OK;
    if (c->chunk < c->n) {
        clt__log(&dev->log, CLT_LOG_ERROR,
                 "%s: kept columns need the batch (%lld images) in one chunk, not chunks of %lld",
                 op, (long long)c->n, (long long)c->chunk);
        return CLT_ERR_INVALID_ARGUMENT;
    }
    return clt__check_buf(dev, columns, s->k * c->n * s->p, clt__storage_bytes(dev), op, "columns");
}

enum clt_status clt__conv2d_forward(struct clt_device *dev, const struct clt__conv2d *conv,
                                    struct clt__buf x, struct clt__buf weight, struct clt__buf bias,
                                    struct clt__buf y, struct clt__buf workspace,
                                    struct clt__buf columns)
{
    if (!dev || !conv)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt__conv2d c = *conv;
    enum clt_status st = clt__conv2d_resolve(&dev->log, &c);
    if (st != CLT_OK)
        return st;
    const struct sizes s = sizes_of(&c);
    const char *op = "conv2d_forward";
    const size_t e = clt__storage_bytes(dev);
    st = clt__check_buf(dev, x, s.x, e, op, "x");
    if (st == CLT_OK)
        st = clt__check_buf(dev, weight, s.weight, e, op, "weight");
    if (st == CLT_OK)
        st = clt__check_buf(dev, y, s.y, e, op, "y");
    if (st == CLT_OK && bias.mem)
        st = clt__check_buf(dev, bias, c.c_out, e, op, "bias");
    if (st == CLT_OK)
        st = clt__check_buf(dev, workspace, c.chunk * image_elements(&c), e, op, "workspace");
    if (st == CLT_OK)
        st = check_columns(dev, &c, &s, columns, op);
    for (int64_t n = 0; n < c.n && st == CLT_OK; n += c.chunk) {
        const struct chunk ch = chunk_at(&c, &s, n, workspace);
        st = chunk_forward(dev, &c, &s, &ch, x, weight, bias, y, columns);
    }
    return st;
}

/* db [C_out] (+)= the sum of dy over the batch and the output pixels. */
static enum clt_status bias_backward(struct clt_device *dev, const struct clt__conv2d *c,
                                     struct clt__buf dy, struct clt__buf db, bool accumulate)
{
    return CLT__RUN(dev, CLT__K_conv2d_bias_backward, (size_t)c->c_out, CLT__I32(c->n),
                    CLT__I32(c->c_out), CLT__I32(c->oh * c->ow), CLT__I32(accumulate), CLT__BUF(dy),
                    CLT__BUF(db));
}

/* The gradients of one chunk: dweight (+)= its share (from the kept columns when given,
 * else from columns made again in the workspace), its images of dx (+)= their gradient. */
static enum clt_status chunk_backward(struct clt_device *dev, const struct clt__conv2d *c,
                                      const struct sizes *s, const struct chunk *ch,
                                      struct clt__buf x, struct clt__buf weight, struct clt__buf dy,
                                      struct clt__buf dx, struct clt__buf dweight,
                                      struct clt__buf columns, bool accumulate)
{
    const int64_t mp = ch->m * s->p;
    /* dyt [C_out, M P] = the chunk's dy transposed; for one image, dy itself. */
    const struct clt__buf dy_m = at(dy, ch->first * s->image_out);
    const struct clt__buf dyt = ch->m == 1 ? dy_m : ch->t;
    enum clt_status st = CLT_OK;
    const size_t g[3] = {clt__row_lanes(dev, s->p), (size_t)ch->m, (size_t)c->c_out};
    if (ch->m > 1)
        st = CLT__RUN_ND(dev, CLT__K_conv2d_pack, 3, g, CLT__I32(ch->m), CLT__I32(c->c_out),
                         CLT__I32(s->p), CLT__BUF(dy_m), CLT__BUF(dyt));
    if (st == CLT_OK && dweight.mem) {
        const struct clt__buf col = columns.mem ? columns : ch->col;
        if (!columns.mem)
            st = im2col(dev, c, s, ch, x, col);
        /* dW_g [Co, Kg] (+)= dyt_g [Co, M P] * col_g^T [M P, Kg]; the first chunk writes dW
         * unless accumulating, the others add to it. */
        const float beta = ch->first == 0 && !accumulate ? 0.0f : 1.0f;
        if (st == CLT_OK)
            st = group_gemm(dev, c->groups, false, true, s->co, s->kg, mp, beta, dyt, s->co * mp,
                            col, s->kg * mp, dweight, s->co * s->kg);
    }
    if (st == CLT_OK && dx.mem) {
        /* dcol_g [Kg, M P] = W_g^T [Kg, Co] * dyt_g [Co, M P], into the workspace's columns
         * (the queue is in order: the dweight GEMM has read them; kept columns stay as they
         * are, for a second call). */
        st = group_gemm(dev, c->groups, true, false, s->kg, mp, s->co, 0.0f, weight, s->co * s->kg,
                        dyt, s->co * mp, ch->col, s->kg * mp);
        if (st == CLT_OK)
            st = col2im(dev, c, s, ch, dx, accumulate);
    }
    return st;
}

enum clt_status clt__conv2d_backward(struct clt_device *dev, const struct clt__conv2d *conv,
                                     struct clt__buf x, struct clt__buf weight, struct clt__buf dy,
                                     struct clt__buf dx, struct clt__buf dweight,
                                     struct clt__buf dbias, struct clt__buf workspace,
                                     struct clt__buf columns, bool accumulate)
{
    if (!dev || !conv)
        return CLT_ERR_INVALID_ARGUMENT;
    struct clt__conv2d c = *conv;
    enum clt_status st = clt__conv2d_resolve(&dev->log, &c);
    if (st != CLT_OK)
        return st;
    const struct sizes s = sizes_of(&c);
    const char *op = "conv2d_backward";
    const bool needs_workspace = dx.mem || dweight.mem;
    const size_t e = clt__storage_bytes(dev);
    st = clt__check_buf(dev, dy, s.y, e, op, "dy");
    if (st == CLT_OK && dx.mem)
        st = clt__check_buf(dev, dx, s.x, e, op, "dx");
    if (st == CLT_OK && dx.mem)
        st = clt__check_buf(dev, weight, s.weight, e, op, "weight (needed for dx)");
    if (st == CLT_OK && dweight.mem)
        st = clt__check_buf(dev, dweight, s.weight, e, op, "dweight");
    if (st == CLT_OK && dweight.mem)
        st = clt__check_buf(dev, x, s.x, e, op, "x (needed for dweight)");
    if (st == CLT_OK && dbias.mem)
        st = clt__check_buf(dev, dbias, c.c_out, e, op, "dbias");
    if (st == CLT_OK && needs_workspace)
        st = clt__check_buf(dev, workspace, c.chunk * image_elements(&c), e, op, "workspace");
    if (st == CLT_OK && dweight.mem)
        st = check_columns(dev, &c, &s, columns, op);
    if (st != CLT_OK)
        return st;
    /* An empty batch enqueues nothing: the gradients are left as they are. */
    if (c.n == 0)
        return CLT_OK;

    if (dbias.mem)
        st = bias_backward(dev, &c, dy, dbias, accumulate);
    for (int64_t n = 0; n < c.n && st == CLT_OK && needs_workspace; n += c.chunk) {
        const struct chunk ch = chunk_at(&c, &s, n, workspace);
        st = chunk_backward(dev, &c, &s, &ch, x, weight, dy, dx, dweight, columns, accumulate);
    }
    return st;
}

/* ==== Graph ops: definitions and public builders ========================================= */

/* ---- conv2d ------------------------------------------------------------------------------ */

/* The launcher's description of a conv2d node, resolved when the node was made. */
static struct clt__conv2d conv_of(const struct clt_tensor *t)
{
    return t->p.conv2d;
}

static uint64_t conv_workspace(const struct clt_tensor *t)
{
    struct clt__conv2d c = conv_of(t);
    return clt__conv2d_workspace_bytes(&c);
}

/* The node's kept columns [K, N, P] (its aux buffer 0, a cache: clt__op_def.aux_cache), or
 * mem NULL where it has none: a batch of several chunks, or no weight gradient to compute. */
static struct clt__buf columns_of(struct clt__exec *x, const struct clt_tensor *t)
{
    return t->naux > 0 ? clt__aux(x, t, 0) : (struct clt__buf){NULL, 0};
}

static enum clt_status conv_forward(struct clt__exec *x, const struct clt_tensor *t)
{
    struct clt__conv2d c = conv_of(t);
    struct clt__buf bias = t->nin > 2 ? clt__val(x, t->in[2]) : (struct clt__buf){NULL, 0};
    return clt__conv2d_forward(x->dev, &c, clt__val(x, t->in[0]), clt__val(x, t->in[1]), bias,
                               clt__val(x, t), clt__workspace(x), columns_of(x, t));
}

/* One launcher call for the gradients that share an accumulate flag (usually all of them:
 * the columns and dy's transposed copy are then made once), a second for the others. */
static enum clt_status conv_backward(struct clt__exec *x, const struct clt_tensor *t, uint32_t acc)
{
    struct clt__conv2d c = conv_of(t);
    struct clt__buf none = {NULL, 0}, g[3] = {none, none, none};
    for (uint32_t i = 0; i < t->nin; i++)
        g[i] = clt__grad(x, t->in[i]);
    enum clt_status st = CLT_OK;
    for (int pass = 0; pass < 2 && st == CLT_OK; pass++) {
        struct clt__buf want[3] = {none, none, none};
        bool any = false;
        for (uint32_t i = 0; i < t->nin; i++)
            if (g[i].mem && CLT__ACC(acc, i) == (pass == 1)) {
                want[i] = g[i];
                any = true;
            }
        if (any)
            st = clt__conv2d_backward(x->dev, &c, clt__val(x, t->in[0]), clt__val(x, t->in[1]),
                                      clt__grad(x, t), want[0], want[1], want[2], clt__workspace(x),
                                      want[1].mem ? columns_of(x, t) : none, pass == 1);
    }
    return st;
}

/* x [32, 32, 14, 14], 64 filters 3x3, padding 1, with bias. */
static struct clt_tensor *bench_conv2d(struct clt_graph *g)
{
    const struct clt_conv2d_desc d = {.out_channels = 64,
                                      .kernel_h = 3,
                                      .kernel_w = 3,
                                      .stride_h = 1,
                                      .stride_w = 1,
                                      .padding_h = 1,
                                      .padding_w = 1,
                                      .dilation_h = 1,
                                      .dilation_w = 1,
                                      .groups = 1,
                                      .bias = true};
    return clt_conv2d(g, CLT__BENCH_PARAM(g, "x", 4, 32, 32, 14, 14), &d, "conv");
}

const struct clt__op_def clt__op_conv2d = {
    .saves = CLT__SAVES_INPUT(0) | CLT__SAVES_INPUT(1),
    .forward = conv_forward,
    .backward = conv_backward,
    .workspace = conv_workspace,
    .bench = bench_conv2d,
    .storage16 = true,
    .aux_cache = 1u, /* the columns, for the weight gradient (input 1) */
    .cache_input = 1,
};

struct clt_tensor *clt_conv2d(struct clt_graph *g, struct clt_tensor *x,
                              const struct clt_conv2d_desc *desc, const char *name)
{
    return clt_conv2d_ex(g, x, desc, name, NULL);
}

struct clt_tensor *clt_conv2d_ex(struct clt_graph *g, struct clt_tensor *x,
                                 const struct clt_conv2d_desc *desc, const char *name,
                                 const struct clt_layer_params *use)
{
    const struct clt_layer_params none = {0};
    if (!use)
        use = &none;
    if (!clt__graph_ok(g, 1, &x))
        return NULL;
    if (!desc || x->ndim != 4 || x->dtype != CLT_F32) {
        clt__require(g, false, "conv2d: needs F32 x [N, C, H, W] and a description");
        return NULL;
    }
    struct clt__conv2d c = {
        .n = x->shape[0],
        .c_in = x->shape[1],
        .h = x->shape[2],
        .w = x->shape[3],
        .c_out = desc->out_channels,
        .kh = desc->kernel_h,
        .kw = desc->kernel_w,
        .stride_h = desc->stride_h ? desc->stride_h : 1,
        .stride_w = desc->stride_w ? desc->stride_w : 1,
        .pad_h = desc->padding_h,
        .pad_w = desc->padding_w,
        .dil_h = desc->dilation_h ? desc->dilation_h : 1,
        .dil_w = desc->dilation_w ? desc->dilation_w : 1,
        .groups = desc->groups ? desc->groups : 1,
    };
    struct clt_log log = clt__graph_log(g);
    if (clt__conv2d_resolve(&log, &c) != CLT_OK) {
        clt__graph_fail(g, CLT_ERR_INVALID_ARGUMENT,
                        "conv2d %s: impossible parameters for input [%lld, %lld, %lld, %lld]: %s",
                        name ? name : "(unnamed)", (long long)c.n, (long long)c.c_in,
                        (long long)c.h, (long long)c.w, g->note);
        return NULL;
    }
    if (!clt__layer_params_only(g, "conv2d", name, use, desc->bias, false))
        return NULL;
    int64_t fan_in = c.c_in / c.groups * c.kh * c.kw;
    struct clt_tensor *w = clt__layer_param(g, "conv2d", name, "weight", use->weight, false, 4,
                                            (int64_t[]){c.c_out, c.c_in / c.groups, c.kh, c.kw},
                                            clt__init_torch_weight());
    struct clt_tensor *b = desc->bias && w
                               ? clt__layer_param(g, "conv2d", name, "bias", use->bias, false, 1,
                                                  &c.c_out, clt__init_torch_bias(fan_in))
                               : NULL;
    if (!w || (desc->bias && !b))
        return NULL;
    clt_param_set_kind(b, CLT_PARAM_BIAS);
    struct clt_tensor *in[3] = {x, w, b};
    struct clt_tensor *t = clt__node(g, CLT__OP_conv2d, desc->bias ? 3 : 2, in, CLT_F32, 4,
                                     (int64_t[]){c.n, c.c_out, c.oh, c.ow});
    if (t) {
        t->p.conv2d = c;
        /* The batch in one chunk: its columns [K, N, P] may be kept for the backward. */
        if (c.chunk >= c.n) {
            t->naux = 1;
            t->aux_dtype[0] = CLT_F32;
            t->aux_count[0] = c.c_in * c.kh * c.kw * c.n * c.oh * c.ow;
        }
    }
    return t;
}
