/*
 * select.c: choosing a device from a list by a selection string. Pure: no OpenCL calls, so
 * the rules are tested without a device.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Case-insensitive substring test. An empty needle matches. */
static bool contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *h = hay; *h; h++) {
        size_t i = 0;
        while (i < n && h[i] && tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return n == 0;
}

static bool equal_nocase(const char *a, const char *b)
{
    while (*a && *b && tolower((unsigned char)*a) == tolower((unsigned char)*b)) {
        a++;
        b++;
    }
    return *a == 0 && *b == 0;
}

/* Parses a decimal index of at most 9 digits; false if s is not exactly that. */
static bool parse_index(const char *s, size_t len, uint32_t *out)
{
    if (len == 0 || len > 9)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* True when s is made of digits, colons and spaces with at least one colon: an index pair,
 * or something close to one ("1:", ":2", "1:2:3") that is then an error, not a name. */
static bool looks_like_pair(const char *s)
{
    if (!strchr(s, ':'))
        return false;
    for (const char *p = s; *p; p++)
        if (*p != ':' && !isdigit((unsigned char)*p) && !isspace((unsigned char)*p))
            return false;
    return true;
}

enum clt_status clt_device_select(const struct clt_device_info *list, size_t count,
                                  const char *selection, size_t *index)
{
    if ((!list && count > 0) || !index)
        return CLT_ERR_INVALID_ARGUMENT;
    if (count == 0)
        return CLT_ERR_NO_DEVICE;

    if (!selection || !*selection) {
        for (size_t i = 0; i < count; i++) {
            if (list[i].type == CLT_DEVICE_GPU) {
                *index = i;
                return CLT_OK;
            }
        }
        *index = 0;
        return CLT_OK;
    }

    if (looks_like_pair(selection)) {
        /* Surrounding spaces are allowed: " 1:0 ". */
        const char *start = selection, *end = selection + strlen(selection);
        while (isspace((unsigned char)*start))
            start++;
        while (end > start && isspace((unsigned char)end[-1]))
            end--;
        const char *colon = strchr(start, ':');
        uint32_t p, d;
        if (!parse_index(start, (size_t)(colon - start), &p) ||
            !parse_index(colon + 1, (size_t)(end - colon - 1), &d))
            return CLT_ERR_INVALID_ARGUMENT;
        for (size_t i = 0; i < count; i++) {
            if (list[i].platform_index == p && list[i].device_index == d) {
                *index = i;
                return CLT_OK;
            }
        }
        return CLT_ERR_NO_DEVICE;
    }

    enum clt_device_type want = CLT_DEVICE_OTHER;
    if (equal_nocase(selection, "gpu"))
        want = CLT_DEVICE_GPU;
    else if (equal_nocase(selection, "cpu"))
        want = CLT_DEVICE_CPU;
    for (size_t i = 0; i < count; i++) {
        bool hit = want != CLT_DEVICE_OTHER
                       ? list[i].type == want
                       : contains_nocase(list[i].platform, selection) ||
                             contains_nocase(list[i].name, selection) ||
                             contains_nocase(list[i].vendor, selection) ||
                             contains_nocase(list[i].device_version, selection);
        if (hit) {
            *index = i;
            return CLT_OK;
        }
    }
    return CLT_ERR_NO_DEVICE;
}
