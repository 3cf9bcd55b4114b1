/*
 * ref_loss.c: see ref_loss.h.
 */
#include "ref_loss.h"
