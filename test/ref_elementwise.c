#include "ref_elementwise.h"
