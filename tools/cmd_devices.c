/*
 * cmd_devices.c: `cltrain devices`: list devices as a table or JSON, and with --warm build
 * every kernel and tune the built-in models' GEMM shapes ahead of time (cmd_tune.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cltrain.h"
#include "commands.h"
#include "common.h"
#include "json.h"

static const char *type_name(enum clt_device_type t)
{
    switch (t) {
    case CLT_DEVICE_CPU:
        return "cpu";
    case CLT_DEVICE_GPU:
        return "gpu";
    case CLT_DEVICE_ACCELERATOR:
        return "accelerator";
    case CLT_DEVICE_OTHER:
        break;
    }
    return "other";
}

static double mib(uint64_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

static void print_table(const struct clt_device_info *list, size_t count)
{
    if (count == 0)
        printf("no OpenCL devices found\n");
    for (size_t i = 0; i < count; i++) {
        const struct clt_device_info *d = &list[i];
        printf("%u:%u  %s / %s  (%s)\n", (unsigned)d->platform_index, (unsigned)d->device_index,
               d->platform, d->name, type_name(d->type));
        printf("      vendor            %s\n", d->vendor);
        printf("      driver            %s\n", d->driver_version);
        printf("      version           %s; %s\n", d->device_version, d->opencl_c_version);
        printf("      compute units     %u at %u MHz\n", (unsigned)d->compute_units,
               (unsigned)d->clock_mhz);
        printf("      global memory     %.0f MiB (largest allocation %.0f MiB)\n",
               mib(d->global_mem_bytes), mib(d->max_alloc_bytes));
        printf("      local memory      %.0f KiB%s\n", (double)d->local_mem_bytes / 1024.0,
               d->local_mem_is_local ? "" : " (emulated in global memory)");
        printf("      work-group        %" PRIu64 " (items %" PRIu64 " x %" PRIu64 " x %" PRIu64
               ")\n",
               d->max_work_group_size, d->max_work_item_sizes[0], d->max_work_item_sizes[1],
               d->max_work_item_sizes[2]);
        printf("      fp16 / fp64       %s / %s\n", d->has_fp16 ? "yes" : "no",
               d->has_fp64 ? "yes" : "no");
    }
    tool_rusticl_hint(stdout, list, count);
    (void)tool_idle_hint(stdout, list, count, TOOL_HALT_POLL_PATH);
}

static void json_field(const char *key, const char *value, int last)
{
    printf("    ");
    json_string(stdout, key);
    printf(": ");
    json_string(stdout, value);
    printf("%s\n", last ? "" : ",");
}

static void print_json(const struct clt_device_info *list, size_t count)
{
    printf("[\n");
    for (size_t i = 0; i < count; i++) {
        const struct clt_device_info *d = &list[i];
        char sel[32];
        snprintf(sel, sizeof sel, "%u:%u", (unsigned)d->platform_index, (unsigned)d->device_index);
        printf("  {\n");
        json_field("index", sel, 0);
        json_field("type", type_name(d->type), 0);
        json_field("platform", d->platform, 0);
        json_field("name", d->name, 0);
        json_field("vendor", d->vendor, 0);
        json_field("driver_version", d->driver_version, 0);
        json_field("device_version", d->device_version, 0);
        json_field("opencl_c_version", d->opencl_c_version, 0);
        printf("    \"compute_units\": %u,\n", (unsigned)d->compute_units);
        printf("    \"clock_mhz\": %u,\n", (unsigned)d->clock_mhz);
        printf("    \"global_mem_bytes\": %" PRIu64 ",\n", d->global_mem_bytes);
        printf("    \"local_mem_bytes\": %" PRIu64 ",\n", d->local_mem_bytes);
        printf("    \"local_mem_dedicated\": %s,\n", d->local_mem_is_local ? "true" : "false");
        printf("    \"max_alloc_bytes\": %" PRIu64 ",\n", d->max_alloc_bytes);
        printf("    \"max_work_group_size\": %" PRIu64 ",\n", d->max_work_group_size);
        printf("    \"max_work_item_sizes\": [%" PRIu64 ", %" PRIu64 ", %" PRIu64 "],\n",
               d->max_work_item_sizes[0], d->max_work_item_sizes[1], d->max_work_item_sizes[2]);
        printf("    \"fp16\": %s,\n", d->has_fp16 ? "true" : "false");
        printf("    \"fp64\": %s\n", d->has_fp64 ? "true" : "false");
        printf("  }%s\n", i + 1 < count ? "," : "");
    }
    printf("]\n");
}

/* Opens one device and builds every kernel: the first run fills the cache, later ones read
 * it. Prints the time taken. */
static int warm_one(const char *selection)
{
    struct clt_device *dev = NULL;
    struct clt_warm_report r;
    struct clt_device_options o;
    clt_device_options_init(&o);
    o.log = tune_progress_log();
    enum clt_status st = clt_device_open(selection, &o, &dev);
    if (st == CLT_OK)
        st = clt_device_warm(dev, &r);
    if (st != CLT_OK) {
        fprintf(stderr, "cltrain devices: cannot warm \"%s\": %s\n",
                selection ? selection : "(default)", clt_status_str(st));
        clt_device_close(dev);
        return 1;
    }
    const struct clt_device_info *d = clt_device_info(dev);
    fprintf(stderr,
            "warmed %u:%u %s: %u programs ready in %.2f s (%u from cache, %u cached "
            "now)\n",
            (unsigned)d->platform_index, (unsigned)d->device_index, d->name, (unsigned)r.programs,
            r.seconds, (unsigned)r.cache_hits, (unsigned)r.cache_writes);
    int rc = tune_models(dev, "cltrain devices", "all", 0);
    clt_device_close(dev);
    return rc;
}

static const char *const summary =
    "Lists the OpenCL devices (a table, or JSON with --json). --warm builds every kernel for\n"
    "the selected device ahead of time (default: CLTRAIN_DEVICE, else the first GPU, else the\n"
    "first device; all: every device), filling the binary cache.";

int cmd_devices(int argc, char **argv)
{
    const char *cmd = "cltrain devices";
    bool json = false, warm = false;
    const char *selection = NULL;
    struct opt t[] = {
        {"json", OPT_FLAG, &json, NULL, "print the list as JSON", 0, 0, false},
        {"warm", OPT_FLAG, &warm, NULL, "build every kernel for the selected device", 0, 0, false},
        {"device", OPT_STRING, &selection, "SEL|all",
         "device to warm: P:D, gpu, cpu, a part of its name, or all", 0, 0, false},
    };
    int status;
    if (!args_command(cmd, summary, argc, argv, t, sizeof t / sizeof t[0], &status))
        return status;
    if ((selection || warm) && tool_device_check(cmd, selection, true) != 0)
        return 1;
    struct clt_device_info *list = NULL;
    size_t count = 0;
    enum clt_status st = clt_devices_list(NULL, &list, &count);
    if (st != CLT_OK) {
        fprintf(stderr, "%s: %s\n", cmd, clt_status_str(st));
        return 1;
    }
    if (json) {
        print_json(list, count);
        tool_rusticl_hint(stderr, list, count);
        (void)tool_idle_hint(stderr, list, count, TOOL_HALT_POLL_PATH);
    } else {
        print_table(list, count);
    }
    int rc = 0;
    if (warm && selection && strcmp(selection, "all") == 0) {
        for (size_t i = 0; i < count && rc == 0; i++) {
            char sel[32];
            snprintf(sel, sizeof sel, "%u:%u", (unsigned)list[i].platform_index,
                     (unsigned)list[i].device_index);
            rc = warm_one(sel);
        }
    } else if (warm) {
        rc = warm_one(selection);
    }
    clt_devices_free(list);
    return rc;
}
