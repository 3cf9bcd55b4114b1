/*
 * loss.h: launchers of cl/loss.cl (being written).
 */
#ifndef CLTRAIN_OPS_LOSS_H
#define CLTRAIN_OPS_LOSS_H

#include "internal.h"

#endif
