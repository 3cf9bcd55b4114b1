/*
 * ref_loss.h: the C reference of the loss family, in double (being written).
 */
#ifndef CLTRAIN_TEST_REF_LOSS_H
#define CLTRAIN_TEST_REF_LOSS_H

#include "cltrain.h"

#endif
