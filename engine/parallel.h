/*
 * parallel.h: what the modules of data-parallel training share (parallel.c: the step and the
 * reduction; parallel_create.c: creation, the split, timing the devices).
 */
#ifndef CLTRAIN_PARALLEL_H
#define CLTRAIN_PARALLEL_H

#include "trainer.h"

/* A contiguous range of the flat gradient buffer, read as one. */
struct clt__bucket {
    uint64_t off, n; /* floats */
};

/* What a replica keeps of the reduction. */
struct clt__replica {
    struct clt__parallel *p;
    uint32_t index;    /* its place in p->rep */
    int32_t *ready;    /* [nbuckets]: the backward entry after which bucket b is complete */
    bool *started;     /* [nbuckets]: its read is enqueued in this step */
    cl_event *read_ev; /* [nbuckets] */
    cl_event write_ev; /* the write of the sum back (the last bucket's) */
    cl_event bwd_end;  /* a marker after the backward pass, with profiling */
    float *host;       /* [trained]: this replica's gradients on the host */
    bool active;       /* a step that updates is being enqueued */
};

struct clt__parallel {
    uint32_t n;
    int64_t batch;               /* rows of a full global step */
    struct clt_trainer **rep;    /* rep[0] is the trainer the caller holds */
    int64_t *weight;             /* rows of each replica in a full global step */
    int64_t *rows;               /* rows of each replica in the latest step */
    int64_t last_rows;           /* rows of the latest step */
    const void **ptrs;           /* scratch: one replica's input pointers */
    float *sum;                  /* host reduction buffer, trained floats */
    bool broadcast;              /* replicas of different implementations */
    uint64_t bucket_bytes;       /* the size asked for (clt_trainer_parallel_buckets) */
    struct clt__bucket *buckets; /* in the order the host reduces them */
    uint32_t nbuckets;
    uint64_t profiled_steps;
    double read_s, hidden_s, exposed_s;
    /* The sum across processes (clt_trainer_set_allreduce) and its argument; NULL: none. */
    clt_allreduce_fn allreduce;
    void *allreduce_user;
};

/* Groups the trained parameters into buckets of about bytes (0: one bucket) and sets each
 * replica's ready entries (parallel.c). */
enum clt_status clt__parallel_make_buckets(struct clt__parallel *p, uint64_t bytes);

/* Blocking transfers on tr's compute queue, logged. */
enum clt_status clt__parallel_read(struct clt_trainer *tr, cl_mem mem, uint64_t bytes, void *dst);
enum clt_status clt__parallel_write(struct clt_trainer *tr, cl_mem mem, uint64_t bytes,
                                    const void *src);

/* Frees what the replica r keeps of the reduction (r->replica). */
void clt__replica_free(struct clt_trainer *r, uint32_t nbuckets);

#endif /* CLTRAIN_PARALLEL_H */
