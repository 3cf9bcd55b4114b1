/* fuzz_select.c: device selection strings against a fixed list of made-up devices. */
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char sel[256];
    if (size >= sizeof sel)
        size = sizeof sel - 1;
    memcpy(sel, data, size);
    sel[size] = 0;
    struct clt_device_info list[3];
    memset(list, 0, sizeof list);
    const char *names[3] = {"pthread-cpu", "llvmpipe", "NVIDIA H100"};
    for (uint32_t i = 0; i < 3; i++) {
        list[i].platform_index = i;
        list[i].type = i == 0 ? CLT_DEVICE_CPU : CLT_DEVICE_GPU;
        strcpy(list[i].platform, i == 0 ? "Portable Computing Language" : "other");
        strcpy(list[i].name, names[i]);
    }
    size_t index;
    clt_device_select(list, 3, sel, &index);
    return 0;
}
