/*
 * test_loss.c: the loss family against its C reference (being written).
 */
#include "harness.h"
#include "ref_loss.h"

int main(void)
{
    clt_test_require_device();
    return 0;
}
