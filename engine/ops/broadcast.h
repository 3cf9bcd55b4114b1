/*
 * broadcast.h: binary arithmetic with numpy broadcasting (add, sub, mul of any two shapes)
 * over the kernels of cl/elementwise.cl.
 *
 * Two shapes broadcast when, aligned from their last axes, every pair of sizes is equal or
 * one of them is 1 (a missing leading axis counts as 1); the output takes the larger size of
 * every pair. A plan (struct clt__broadcast) merges the output's axes where both inputs
 * are stretched alike, drops axes of size 1, and records which input has which axis; the
 * launchers take it instead of shapes. Equal shapes, and a trailing block broadcast over the
 * leading axes (a bias [D] on [N, D], [T, D] on [N, T, D]), run the dedicated kernels of
 * add, mul, bias and mul_broadcast; every other case the general broadcast kernels.
 *
 * Launchers only enqueue on dev->queue: they allocate nothing and never wait. A gradient
 * whose mem is NULL is skipped; `acc` bit 0 adds to da, bit 1 to db (clear: write). The
 * reduction over stretched axes runs in a fixed order (compensated sums of 256 outputs,
 * combined in rounds), so results do not depend on the device or the launch shape.
 */
#ifndef CLTRAIN_OPS_BROADCAST_H
#define CLTRAIN_OPS_BROADCAST_H

#include "cl/shared.h"
#include "internal.h"

enum clt__binary {
    CLT__BINARY_ADD = CLT__CL_BINARY_ADD,
    CLT__BINARY_SUB = CLT__CL_BINARY_SUB,
    CLT__BINARY_MUL = CLT__CL_BINARY_MUL,
};

/* A broadcast, merged: the output's axes innermost first; bit d of amask (bmask) set when a
 * (b) has axis d, clear when it is stretched along it. ndim >= 1: shapes of one element
 * plan as one axis of size 1 that both have. */
struct clt__broadcast {
    uint32_t ndim;
    int64_t shape[CLT__CL_BROADCAST_DIMS];
    uint32_t amask, bmask;
};

/* The broadcast shape of a [an axes] and b [bn axes] (1..CLT_MAX_DIMS axes each) into
 * y [*yn axes]. False when they do not broadcast; then *axis is the first axis (counted
 * from the end, -1 the last) whose sizes differ and neither is 1. */
bool clt__broadcast_shape(uint32_t an, const int64_t *as, uint32_t bn, const int64_t *bs,
                          uint32_t *yn, int64_t *ys, int *axis);

/* The plan of a broadcast of two shapes that broadcast (clt__broadcast_shape). */
void clt__broadcast_plan(uint32_t an, const int64_t *as, uint32_t bn, const int64_t *bs,
                         struct clt__broadcast *plan);

/* Bytes of workspace clt__broadcast_backward needs for a plan (0 when no gradient element
 * sums more than 256 outputs). */
uint64_t clt__broadcast_workspace_bytes(const struct clt__broadcast *plan);

/* One parameter per line with its shape: kept by hand, not by clang-format. */
/* clang-format off */

/* y = a op b, each stretched along the axes it lacks. y must not overlap a or b unless it is
 * the same memory as one of the same size. */
enum clt_status clt__broadcast_forward(struct clt_device *dev, enum clt__binary op,
                                       const struct clt__broadcast *plan,
                                       struct clt__buf a,  /* the axes of amask */
                                       struct clt__buf b,  /* the axes of bmask */
                                       struct clt__buf y); /* all axes */

/* da (+)= the sum over a's stretched axes of dy (add, sub), dy * b (mul);
 * db (+)= the same of dy, -dy (sub), dy * a (mul). a is read only for db of mul, b only for
 * da of mul. A gradient element that sums more than 256 outputs is reduced in rounds of 256
 * through the workspace, which holds clt__broadcast_workspace_bytes(plan) bytes from its
 * offset (checked; mem may be NULL when that is 0). */
enum clt_status clt__broadcast_backward(struct clt_device *dev, enum clt__binary op,
                                        const struct clt__broadcast *plan,
                                        struct clt__buf a,  /* the axes of amask */
                                        struct clt__buf b,  /* the axes of bmask */
                                        struct clt__buf dy, /* all axes */
                                        struct clt__buf da, /* a's, or mem NULL */
                                        struct clt__buf db, /* b's, or mem NULL */
                                        uint32_t acc,
                                        struct clt__buf workspace); /* see below */

/* clang-format on */

#endif
