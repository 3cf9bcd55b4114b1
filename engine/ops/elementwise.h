/*
 * elementwise.h: (being written)
 */
#ifndef CLTRAIN_OPS_ELEMENTWISE_H
#define CLTRAIN_OPS_ELEMENTWISE_H

#include "internal.h"

#endif
