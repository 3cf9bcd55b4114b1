/*
 * failsave.c: an LD_PRELOAD shim for test/cli_outputs_test.sh: makes chosen calls of mkstemp
 * fail with ENOSPC, as a full disk would, so that a checkpoint save fails on cue.
 * CLTRAIN_TEST_FAIL_SAVES="2,3" fails the second and third calls of the process.
 */
/* Both names are defined here: keep the header from renaming mkstemp to mkstemp64. */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int calls;

static int listed(int call)
{
    const char *list = getenv("CLTRAIN_TEST_FAIL_SAVES");
    for (const char *p = list; p && *p;) {
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p)
            return 0;
        if (v == call)
            return 1;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

static int call_real(const char *name, char *template)
{
    int (*real)(char *) = (int (*)(char *))dlsym(RTLD_NEXT, name);
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    return real(template);
}

int mkstemp(char *template)
{
    if (listed(++calls)) {
        errno = ENOSPC;
        return -1;
    }
    return call_real("mkstemp", template);
}

int mkstemp64(char *template)
{
    if (listed(++calls)) {
        errno = ENOSPC;
        return -1;
    }
    return call_real("mkstemp64", template);
}
