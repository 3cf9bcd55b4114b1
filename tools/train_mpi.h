/*
 * train_mpi.h: `cltrain train` across processes (docs/parallel.md, "Across processes (MPI)").
 *
 * Under a launcher (mpirun, srun: the environment has OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMI_RANK
 * or PMIX_RANK) a build with MPI (meson feature `mpi`, tools/train_mpi.c) initialises MPI and
 * trains one model over the ranks; a build without it (tools/train_mpi_none.c) refuses to run
 * as one of several processes, saying so. Outside a launcher neither touches MPI: size 1, rank 0.
 *
 * The gradient sum is a ring all-reduce over MPI_Sendrecv in a fixed order (reduce-scatter,
 * then all-gather, over N chunks), so every run adds the same numbers in the same order: it is
 * identical run to run, where MPI_Allreduce promises no order. The library calls it through
 * clt_trainer_set_allreduce; libcltrain itself never links MPI.
 */
#ifndef CLTRAIN_TOOLS_TRAIN_MPI_H
#define CLTRAIN_TOOLS_TRAIN_MPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cltrain.h>

struct tool_mpi {
    int rank, size; /* 0 and 1 outside a launcher */
    bool active;    /* MPI was initialised (tool_mpi_end finalises or aborts) */
    double weight;  /* this rank's share of the global batch: its gradient's weight */
    float *tmp;     /* the ring's receive buffer, grown on demand */
    size_t tmp_count;
    char label[64]; /* "cltrain train (rank 1 of 2)", the command name in messages */
};

/* Whether this build can train across MPI ranks. */
bool tool_mpi_built(void);

/* Starts MPI when a launcher started this process (see above). 0, or 1 with a message in err
 * (a build without MPI under a launcher of several processes, or MPI_Init failing). */
int tool_mpi_start(struct tool_mpi *m, const char *cmd, int *argc, char ***argv, char *err,
                   size_t err_size);

/* Ends the command with status rc: an error (1 or 2) on an active MPI run ends every rank (the
 * message was printed first): under Open MPI this process exits with rc without MPI_Finalize
 * and mpirun kills the others, elsewhere MPI_Abort with rc. Anything else finalises MPI.
 * Returns rc when it returns. */
int tool_mpi_end(struct tool_mpi *m, int rc);

/* The clt_allreduce_fn of `cltrain train` (user: the struct tool_mpi): scales sum by the
 * rank's weight, then sums it over the ranks in the ring's fixed order. */
enum clt_status tool_mpi_allreduce(void *user, float *sum, uint64_t n);

/* Sums n doubles over the ranks in rank order (0, 1, ...); every rank gets the sums. */
int tool_mpi_sum(struct tool_mpi *m, const double *in, double *out, int n);

/* The largest of each of n ints over the ranks; every rank gets them. */
int tool_mpi_max(struct tool_mpi *m, int *v, int n);

/* Checks that every rank has the same n values as rank 0, whose values it puts in first.
 * 0, or the first rank that differs (and the index of its first different value in *which),
 * or -1 when MPI fails. Every rank gets the same answer. */
int tool_mpi_same(struct tool_mpi *m, const int64_t *v, int64_t *first, int n, int *which);

/* Waits for another rank to end the job (its exit or MPI_Abort) after it reported an error
 * this rank does not have. */
void tool_mpi_hold(struct tool_mpi *m);

#endif
