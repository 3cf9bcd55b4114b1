/*
 * loss.c: launchers of cl/loss.cl (being written).
 */
#include "ops/loss.h"
