/*
 * common.cl: prepended to every program. Fixes the numerics every kernel relies on and
 * gives the defaults of the build-time tunables, so each file also compiles alone.
 *
 * Tunables (set by the engine in the build options from the device's limits):
 *   CLT_WG_1D    the 1-D work-group size launchers use: a power of two <= 256
 */
/* No contraction of a * b + c into fma behind our back: results must not depend on the
 * compiler. Kernels call fma() where fusion is wanted. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef CLT_WG_1D
#define CLT_WG_1D 64
#endif
