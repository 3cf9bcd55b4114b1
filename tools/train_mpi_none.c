/*
 * train_mpi_none.c: the MPI calls of `cltrain train` (train_mpi.h) in a build without MPI (meson
 * feature `mpi` off, or Open MPI not found). One process trains alone; started by a launcher as one
 * of several processes, it refuses to start rather than train the same model N times apart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_mpi.h"

bool tool_mpi_built(void)
{
    return false;
}

int tool_mpi_start(struct tool_mpi *m, const char *cmd, int *argc, char ***argv, char *err,
                   size_t err_size)
{
    (void)argc;
    (void)argv;
    memset(m, 0, sizeof *m);
    m->size = 1;
    m->weight = 1.0;
    snprintf(m->label, sizeof m->label, "%s", cmd);
    const char *keys[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *s = getenv(keys[i]);
        if (s && atoi(s) > 1) {
            snprintf(err, err_size,
                     "this build of cltrain has no MPI support, but it was started as one of "
                     "%d MPI processes (%s=%s): each would train alone. Install Open MPI "
                     "(libopenmpi-dev) and rebuild (meson setup -Dmpi=enabled), or run one "
                     "process",
                     atoi(s), keys[i], s);
            return 1;
        }
    }
    return 0;
}

int tool_mpi_end(struct tool_mpi *m, int rc)
{
    (void)m;
    return rc;
}

enum clt_status tool_mpi_allreduce(void *user, float *sum, uint64_t n)
{
    (void)user;
    (void)sum;
    (void)n;
    return CLT_OK;
}

int tool_mpi_sum(struct tool_mpi *m, const double *in, double *out, int n)
{
    (void)m;
    memcpy(out, in, (size_t)n * sizeof *out);
    return 0;
}

int tool_mpi_max(struct tool_mpi *m, int *v, int n)
{
    (void)m;
    (void)v;
    (void)n;
    return 0;
}

int tool_mpi_same(struct tool_mpi *m, const int64_t *v, int64_t *first, int n, int *which)
{
    (void)m;
    (void)which;
    memcpy(first, v, (size_t)n * sizeof *first);
    return 0;
}

void tool_mpi_hold(struct tool_mpi *m)
{
    (void)m;
}
