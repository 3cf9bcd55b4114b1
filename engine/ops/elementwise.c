/*
 * elementwise.c: (being written)
 */
#include "ops/elementwise.h"
