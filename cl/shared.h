/*
 * shared.h: what the engine's C code and the OpenCL C kernels must agree on. The C files
 * include it as "cl/shared.h"; the engine prepends it, before common.cl, to every program it
 * builds. Plain #defines only, valid in both languages.
 */
#ifndef CLTRAIN_CL_SHARED_H
#define CLTRAIN_CL_SHARED_H

/* Activation functions: enum clt__act in C, `act` of activation_forward and
 * activation_backward (cl/activation.cl). */
#define CLT__CL_ACT_RELU 0
#define CLT__CL_ACT_LEAKY_RELU 1
#define CLT__CL_ACT_GELU_TANH 2
#define CLT__CL_ACT_GELU_ERF 3
#define CLT__CL_ACT_TANH 4
#define CLT__CL_ACT_SIGMOID 5
#define CLT__CL_ACT_SILU 6
#define CLT__CL_ACT_COUNT 7

/* Bits of the optimizer status's last_skip (cl/optim.cl, engine/ops/optim.h). */
#define CLT__OPTIM_SKIP_GRAD 1 /* the norm of the scaled gradient was NaN or Inf */
#define CLT__OPTIM_SKIP_LOSS 2 /* the loss was NaN or Inf */

/* Work-items of a row group of cl/loss.cl at most, a power of two. It fixes the summation
 * order (results do not depend on the device); launchers never use more. */
#define CLT__LOSS_LANES 64

/* The arithmetic of broadcast_forward (cl/elementwise.cl, engine/ops/broadcast.h), and the
 * axes a broadcast has at most once merged (CLT_MAX_DIMS): its kernels take that many sizes. */
#define CLT__CL_BINARY_ADD 0
#define CLT__CL_BINARY_SUB 1
#define CLT__CL_BINARY_MUL 2
#define CLT__CL_BROADCAST_DIMS 6

/* Bits of a norm backward's write/accumulate mask, in the order of the graph op's inputs:
 * set, the gradient is added to; clear, written (engine/ops/norm.h, the combine kernels of
 * cl/norm.cl). */
#define CLT__NORM_ACC_DX 1
#define CLT__NORM_ACC_DGAMMA 2
#define CLT__NORM_ACC_DBETA 4
#define CLT__NORM_ACC_ALL 7

/* Tunables of the tiled attention kernels (cl/attention.cl): rows per streamed tile, the
 * largest head size, and the rows a work-group owns at most (its local size). Local memory
 * per group is 2 * TILE * DMAX floats plus 2 * TILE, 16 KiB by default: within the 32 KiB of
 * rusticl on llvmpipe. */
#ifndef CLT__ATT_TILE
#define CLT__ATT_TILE 32
#endif
#ifndef CLT__ATT_DMAX
#define CLT__ATT_DMAX 64
#endif
#ifndef CLT__ATT_ROWS
#define CLT__ATT_ROWS 32
#endif

#endif /* CLTRAIN_CL_SHARED_H */
