/*
 * clblast_params.cc: reading CLBlast's tuning parameters for a kernel on a device, which its
 * C interface lacks (CLBlast 1.5 offers RetrieveParameters in C++ only). The GEMM tuner
 * (tune_clblast.c) reads Xgemm's defaults here before it tries other values, so that it can
 * put them back when they measure fastest.
 */
#include <exception>
#include <string>
#include <unordered_map>

#include <clblast.h>

extern "C" int clt__clblast_params_get(cl_device_id device, const char *kernel, size_t count,
                                       const char *const *names, size_t *values);

/* Fills values[i] with the parameter names[i] of `kernel` (single precision) on device.
 * Returns 0, CLBlast's status when it fails, or 1 when a name is not among the kernel's. */
extern "C" int clt__clblast_params_get(cl_device_id device, const char *kernel, size_t count,
                                       const char *const *names, size_t *values)
{
    try {
        std::unordered_map<std::string, size_t> params;
        clblast::StatusCode s =
            clblast::RetrieveParameters(device, kernel, clblast::Precision::kSingle, params);
        if (s != clblast::StatusCode::kSuccess)
            return static_cast<int>(s);
        for (size_t i = 0; i < count; i++) {
            auto it = params.find(names[i]);
            if (it == params.end())
                return 1;
            values[i] = it->second;
        }
        return 0;
    } catch (...) {
        return 1;
    }
}
