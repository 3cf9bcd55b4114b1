/*
 * mpi_bench.c: cltrain-mpi-bench, the all-reduce bandwidth between MPI ranks (docs/parallel.md,
 * "Across processes (MPI)"). Run it under a launcher:
 *
 *     mpirun -np 2 build/cltrain-mpi-bench [--max-mib 64] [--reps 10]
 *
 * For buffers of 4 KiB to --max-mib MiB of floats it times the ring all-reduce of `cltrain
 * train` (tools/train_mpi.c: fixed order, identical run to run) and, for reference, MPI_Allreduce
 * (the library's own algorithm, no order promised), each the median of --reps calls after one
 * warm-up, every call started together (a barrier before it). It prints, on rank 0, the time,
 * the algorithm bandwidth (buffer bytes / time) and the bus bandwidth (2 (N - 1) / N of that:
 * the bytes each rank sends, as NCCL's tests report it), and checks the ring's sum.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_mpi.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of reps timed calls of one all-reduce (ring: tools/train_mpi.c), after a warm-up. */
static double time_allreduce(struct tool_mpi *m, bool ring, float *buf, size_t n, int reps,
                             double *times)
{
    for (int k = -1; k < reps; k++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (ring)
            tool_mpi_allreduce(m, buf, n);
        else
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double t = MPI_Wtime() - t0;
        /* The slowest rank's time is the call's. */
        MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (k >= 0)
            times[k] = t;
    }
    qsort(times, (size_t)reps, sizeof *times, cmp_double);
    return times[reps / 2];
}

/* Every rank's buffer is rank + 1 + e % 7 at e: the sum is known exactly. */
static int check_ring(struct tool_mpi *m, float *buf, size_t n)
{
    for (size_t e = 0; e < n; e++)
        buf[e] = (float)(m->rank + 1 + (int)(e % 7));
    tool_mpi_allreduce(m, buf, n);
    double ranks = m->size, want_base = ranks * (ranks + 1) / 2;
    for (size_t e = 0; e < n; e++)
        if (buf[e] != (float)(want_base + ranks * (double)(e % 7)))
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct tool_mpi m;
    char err[600];
    if (tool_mpi_start(&m, "cltrain-mpi-bench", &argc, &argv, err, sizeof err) != 0) {
        fprintf(stderr, "cltrain-mpi-bench: %s\n", err);
        return 1;
    }
    if (!m.active) {
        fprintf(stderr, "cltrain-mpi-bench: run it under mpirun: mpirun -np 2 %s\n", argv[0]);
        return 2;
    }
    long max_mib = 64, reps = 10;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        long *dst = strcmp(argv[i], "--max-mib") == 0 ? &max_mib
                    : strcmp(argv[i], "--reps") == 0  ? &reps
                                                      : NULL;
        long v = dst && i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
        if (!dst || !end || *end || v < 1 || v > 4096) {
            if (m.rank == 0)
                fprintf(stderr, "usage: mpirun -np N %s [--max-mib 1..4096] [--reps 1..4096]\n",
                        argv[0]);
            return tool_mpi_end(&m, 2);
        }
        *dst = v;
        i++;
    }
    size_t most = (size_t)max_mib << 18; /* floats */
    float *buf = malloc(most * sizeof *buf);
    double *times = malloc((size_t)reps * sizeof *times);
    if (!buf || !times) {
        fprintf(stderr, "%s: out of memory\n", m.label);
        return tool_mpi_end(&m, 1);
    }
    if (check_ring(&m, buf, most < 1000003 ? most : 1000003) != 0) {
        fprintf(stderr, "%s: the ring all-reduce gave a wrong sum\n", m.label);
        return tool_mpi_end(&m, 1);
    }
    char host[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    MPI_Get_processor_name(host, &len);
    if (m.rank == 0)
        printf("all-reduce of fp32 over %d ranks (rank 0 on %s), median of %ld calls\n"
               "%10s  %12s %10s %10s  %12s %10s\n",
               m.size, host, reps, "bytes", "ring us", "algbw GB/s", "busbw GB/s",
               "MPI_Allreduce us", "busbw GB/s");
    double bus = 2.0 * (m.size - 1) / m.size;
    for (size_t n = 1024; n <= most; n *= 4) {
        memset(buf, 0, n * sizeof *buf);
        double ring = time_allreduce(&m, true, buf, n, (int)reps, times);
        double lib = time_allreduce(&m, false, buf, n, (int)reps, times);
        double bytes = (double)n * 4;
        if (m.rank == 0)
            printf("%10.0f  %12.1f %10.2f %10.2f  %12.1f %10.2f\n", bytes, ring * 1e6,
                   bytes / ring / 1e9, bus * bytes / ring / 1e9, lib * 1e6,
                   bus * bytes / lib / 1e9);
    }
    free(buf);
    free(times);
    return tool_mpi_end(&m, 0);
}
