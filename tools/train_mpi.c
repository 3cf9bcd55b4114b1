/*
 * train_mpi.c: `cltrain train` across MPI ranks (see train_mpi.h), built with the meson feature
 * `mpi`.
 *
 * The ring all-reduce over N ranks cuts the n floats into N contiguous chunks (chunk c: n / N
 * floats, one more when c < n % N). Reduce-scatter: in round s (0 .. N-2) rank r sends chunk
 * (r - s) mod N to rank r + 1 and adds the chunk (r - s - 1) mod N it receives from rank r - 1
 * to its own, so chunk c is summed in the order of ranks c, c + 1, ..., c - 1 (mod N) and ends
 * complete on rank c - 1. All-gather: N - 1 more rounds pass the complete chunks around the
 * ring. Each rank sends and receives 2 (N - 1) / N of the buffer. The order depends on N and
 * n only, so a run is identical run to run.
 */
#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train_mpi.h"

/* The most floats of one MPI call (its counts are ints). */
#define PIECE ((size_t)1 << 28)

bool tool_mpi_built(void)
{
    return true;
}

/* Whether a launcher (mpirun, mpiexec, srun) started this process. */
static bool launched(void)
{
    const char *keys[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (getenv(keys[i]))
            return true;
    return false;
}

int tool_mpi_start(struct tool_mpi *m, const char *cmd, int *argc, char ***argv, char *err,
                   size_t err_size)
{
    memset(m, 0, sizeof *m);
    m->size = 1;
    m->weight = 1.0;
    snprintf(m->label, sizeof m->label, "%s", cmd);
    if (!launched())
        return 0; /* no MPI_Init: a plain run costs nothing and prints nothing of MPI's */
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        snprintf(err, err_size, "MPI_Init failed");
        return 1;
    }
    m->active = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &m->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &m->size);
    if (m->size > 1)
        snprintf(m->label, sizeof m->label, "%s (rank %d of %d)", cmd, m->rank, m->size);
    return 0;
}

int tool_mpi_end(struct tool_mpi *m, int rc)
{
    free(m->tmp);
    m->tmp = NULL;
    if (!m->active)
        return rc;
    m->active = false;
    if (rc == 1 || rc == 2) {
        /* The message is out; every rank must end, wherever it waits. Open MPI's MPI_Abort
         * sends a help message to mpirun that races with the job's end: mpirun 4.1 printed
         * "ORTE_ERROR_LOG: Data unpack would read past end of buffer" in 5 of 40 runs here,
         * and crashed once in CI (SIGSEGV in its PMIx log handler, status 139 instead of rc).
         * Under Open MPI an exit without MPI_Finalize does the same with nothing sent:
         * mpirun kills the other ranks and exits with this status. Elsewhere MPI_Abort, the
         * ranks in turn (rank 0 at once, rank r after 1 s + 0.1 s r, at most 4 s), since most
         * errors are found by every rank at once. */
        fflush(stdout);
        fflush(stderr);
        if (getenv("OMPI_COMM_WORLD_SIZE"))
            exit(rc);
        if (m->rank > 0) {
            long ms = 1000 + 100L * (m->rank < 30 ? m->rank : 30);
            struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
            while (nanosleep(&t, &t) != 0 && errno == EINTR)
                ;
        }
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    MPI_Finalize();
    return rc;
}

/* Chunk c of n floats over size ranks: its first float and its count. */
static size_t chunk(size_t n, int size, int c, size_t *count)
{
    size_t base = n / (size_t)size, extra = n % (size_t)size, k = (size_t)c;
    *count = base + (k < extra ? 1 : 0);
    return base * k + (k < extra ? k : extra);
}

/* Sends ns floats to the right neighbour while receiving nr from the left one, in pieces that
 * MPI's int counts can hold (both neighbours cut a chunk alike). */
static int ring_step(const float *send, size_t ns, float *recv, size_t nr, int right, int left)
{
    for (size_t at = 0; at < ns || at < nr; at += PIECE) {
        int cs = (int)(at < ns ? (ns - at < PIECE ? ns - at : PIECE) : 0);
        int cr = (int)(at < nr ? (nr - at < PIECE ? nr - at : PIECE) : 0);
        if (MPI_Sendrecv(send + (cs ? at : 0), cs, MPI_FLOAT, right, 0, recv + (cr ? at : 0), cr,
                         MPI_FLOAT, left, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return -1;
    }
    return 0;
}

static int ring_allreduce(struct tool_mpi *m, float *buf, size_t n)
{
    int N = m->size, r = m->rank, right = (r + 1) % N, left = (r + N - 1) % N;
    size_t most = n / (size_t)N + 1;
    if (m->tmp_count < most) {
        float *t = realloc(m->tmp, most * sizeof *t);
        if (!t)
            return -1;
        m->tmp = t;
        m->tmp_count = most;
    }
    for (int s = 0; s < N - 1; s++) { /* reduce-scatter */
        size_t ns, nr, fs = chunk(n, N, (r - s + N) % N, &ns);
        size_t fr = chunk(n, N, (r - s - 1 + 2 * N) % N, &nr);
        if (ring_step(buf + fs, ns, m->tmp, nr, right, left) != 0)
            return -1;
        for (size_t e = 0; e < nr; e++)
            buf[fr + e] = m->tmp[e] + buf[fr + e];
    }
    for (int s = 0; s < N - 1; s++) { /* all-gather */
        size_t ns, nr, fs = chunk(n, N, (r + 1 - s + N) % N, &ns);
        size_t fr = chunk(n, N, (r - s + N) % N, &nr);
        if (ring_step(buf + fs, ns, buf + fr, nr, right, left) != 0)
            return -1;
    }
    return 0;
}

enum clt_status tool_mpi_allreduce(void *user, float *sum, uint64_t n)
{
    struct tool_mpi *m = user;
    if (m->weight != 1.0) {
        float w = (float)m->weight;
        for (uint64_t e = 0; e < n; e++)
            sum[e] *= w;
    }
    if (m->size < 2)
        return CLT_OK;
    if (ring_allreduce(m, sum, (size_t)n) != 0) {
        fprintf(stderr, "%s: the gradient all-reduce failed (out of memory, or MPI)\n", m->label);
        return CLT_ERR_NO_MEMORY;
    }
    return CLT_OK;
}

int tool_mpi_sum(struct tool_mpi *m, const double *in, double *out, int n)
{
    if (m->size < 2) {
        memcpy(out, in, (size_t)n * sizeof *out);
        return 0;
    }
    double *all = malloc((size_t)m->size * (size_t)n * sizeof *all);
    if (!all ||
        MPI_Allgather(in, n, MPI_DOUBLE, all, n, MPI_DOUBLE, MPI_COMM_WORLD) != MPI_SUCCESS) {
        free(all);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        out[i] = 0;
        for (int k = 0; k < m->size; k++) /* rank order */
            out[i] += all[(size_t)k * (size_t)n + (size_t)i];
    }
    free(all);
    return 0;
}

int tool_mpi_max(struct tool_mpi *m, int *v, int n)
{
    if (m->size < 2)
        return 0;
    return MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD) == MPI_SUCCESS ? 0
                                                                                              : -1;
}

int tool_mpi_same(struct tool_mpi *m, const int64_t *v, int64_t *first, int n, int *which)
{
    memcpy(first, v, (size_t)n * sizeof *first);
    if (m->size < 2)
        return 0;
    int *diff = malloc((size_t)m->size * sizeof *diff);
    int rc = -1;
    if (diff) {
        int mine = -1;
        if (MPI_Bcast(first, n, MPI_INT64_T, 0, MPI_COMM_WORLD) == MPI_SUCCESS) {
            for (int i = 0; i < n && mine < 0; i++)
                if (first[i] != v[i])
                    mine = i;
            if (MPI_Allgather(&mine, 1, MPI_INT, diff, 1, MPI_INT, MPI_COMM_WORLD) == MPI_SUCCESS) {
                rc = 0;
                for (int k = 0; k < m->size && rc == 0; k++)
                    if (diff[k] >= 0) {
                        rc = k;
                        *which = diff[k];
                    }
            }
        }
    }
    free(diff);
    return rc;
}

void tool_mpi_hold(struct tool_mpi *m)
{
    /* The failing rank never enters this barrier: its exit or MPI_Abort ends the wait. */
    if (m->active)
        MPI_Barrier(MPI_COMM_WORLD);
}
