/*
 * trainer.h: what the trainer's modules share: the plan (plan.c: autodiff schedule and
 * memory plan) and the trainer object (trainer_create.c: creation and buffers; trainer.c: what
 * ops see of the buffers, parameters; step.c: steps, evaluation).
 */
#ifndef CLTRAIN_TRAINER_H
#define CLTRAIN_TRAINER_H

#include "graph.h"
#include "ops/optim.h"
#include "scaler.h"

/* A region of the activation arena used from one point of the step's timeline to another. */
struct clt__storage {
    uint64_t bytes;
    uint64_t offset; /* bytes into the arena, set by the planner */
    int32_t first, last;
};

/* What the plan knows of each tensor (indexed by id). */
struct clt__tinfo {
    bool reached;               /* the loss depends on it */
    bool needs_grad;            /* its gradient is computed */
    bool has_bwd;               /* it is an op node whose backward runs */
    bool recompute;             /* its value is computed again for the backward pass */
    uint32_t root;              /* the tensor whose memory it is (itself, or what a view views) */
    int32_t val, val_bwd, grad; /* storage indices, -1 for none */
    int32_t aux[CLT__MAX_AUX];
    uint64_t offset;      /* elements: params and state in the parameter buffer, inputs in an
                             input slot */
    uint64_t grad_offset; /* elements: trained parameters in the gradient buffer */
    uint8_t elem_bytes;   /* bytes of one element of its value and gradient: 4, or 2 for an F32
                             tensor of a 16-bit plan (not state, not a wide_output op's) */
    bool first_contrib[CLT__MAX_INPUTS]; /* this node writes (not adds) input i's gradient */
    int32_t fwd_pos, bwd_pos;            /* timeline positions, -1 for none */
    int32_t group;        /* the fused chain (clt__plan.groups) the node belongs to, -1 for none */
    bool fused_inside;    /* a value inside a fused chain: no gradient storage, written only by
                             the unfused forward of evaluation */
    uint32_t fused_reads; /* bit i: the chain's backward reads input i of this node */
    bool bias_fused;      /* its bias (clt__op_def.bias_input) is added by a fused chain */
    bool pad_label;       /* an input read as cross-entropy labels: padded with -1 (ignored) */
    bool batch_major;     /* depends on the inputs, with the batch as its leading axis */
    bool output; /* its value is read after the pass (the loss, an executor's outputs): kept
                    to the end of the timeline */
};

/* Ops in one fused chain at most. */
#define CLT__FUSE_MAX 8

/* A chain of elementwise ops the fusion pass (fuse.c) runs as one generated kernel, forward
 * and backward: op k + 1 reads the output of op k through its input slot link[k + 1], and op
 * k's other input (if any) comes from outside the chain. The chain's input is input link[0] of
 * node[0]; its output is node[n - 1]'s. */
struct clt__fuse_group {
    uint32_t n;
    uint32_t node[CLT__FUSE_MAX];
    uint8_t link[CLT__FUSE_MAX];
    uint32_t recompute; /* bit k: the backward recomputes the value entering op k */
    int32_t bias;       /* the node whose bias the chain adds to its input first, -1: none */
    struct clt__program_variant *prog; /* built on first use (the dry run) */
};

enum clt__entry_kind { CLT__ENTRY_BACKWARD, CLT__ENTRY_RECOMPUTE };

struct clt__entry {
    enum clt__entry_kind kind;
    uint32_t node;
};

struct clt__plan {
    uint32_t n; /* nodes of the graph when the plan was made */
    struct clt__tinfo *info;
    uint32_t *fwd; /* op nodes (views excluded), in forward order */
    uint32_t nfwd;
    struct clt__entry *bwd; /* backward steps and recomputations, in order */
    uint32_t nbwd;
    struct clt__storage *st;
    uint32_t nst;
    uint64_t arena_bytes;    /* activations, their gradients, saved tensors, after sharing */
    uint64_t unshared_bytes; /* the same without sharing */
    uint64_t workspace_bytes;
    uint64_t trained;     /* elements of trained parameters */
    uint64_t state;       /* elements of state */
    uint64_t input_bytes; /* bytes of one batch of inputs (one slot) */
    uint32_t ninputs;
    struct clt__fuse_group *groups; /* fused chains; a BACKWARD entry of a chain's last node
                                       runs the whole chain's backward */
    uint32_t ngroups;

    bool reached_only; /* forward plan: only the nodes the outputs depend on are scheduled */
    enum clt_precision storage; /* of the F32 tensors (docs/precision.md); aux and state fp32 */
    /* Partial batches: the planned batch (the inputs' leading dimension), and why a batch of
     * fewer rows cannot run ("" when it can). */
    int64_t batch;
    char partial_error[CLT__NAME_MAX + 160];
};

/* Differentiates the graph for `loss` and plans memory. recompute enables activation
 * recomputation; storage is the element type of its F32 tensors (fp32, or 16 bits: each
 * tensor's elem_bytes, docs/precision.md). Needs dev only for its log. Errors go to the log. */
enum clt_status clt__plan_make(struct clt_device *dev, const struct clt_graph *g,
                               const struct clt_tensor *loss, bool recompute,
                               enum clt_precision storage, struct clt__plan *out);
/* The plan of a forward pass only (an executor): the nodes the n outputs depend on, no
 * gradients, the outputs' values kept to the end. */
enum clt_status clt__plan_make_forward(struct clt_device *dev, const struct clt_graph *g,
                                       const struct clt_tensor *const *outputs, uint32_t n,
                                       struct clt__plan *out);
void clt__plan_free(struct clt__plan *p);

/* ==== Fusion (fuse.c) ==================================================================== */

/* Whether the fusion pass runs: unless CLTRAIN_FUSE is "0". */
bool clt__fuse_enabled(void);

/* Finds the fused chains of a plan whose nodes are marked (reached, needs_grad, has_bwd):
 * fills p->groups and each node's group, fused_inside and fused_reads. */
enum clt_status clt__fuse_plan(const struct clt_graph *g, const struct clt_tensor *loss,
                               struct clt__plan *p);

struct clt_trainer;

/* Enqueues the forward (training) or the backward of chain gr of tr's plan. The first call
 * builds the chain's program. */
enum clt_status clt__fuse_forward(struct clt__exec *x, struct clt__fuse_group *gr);
enum clt_status clt__fuse_backward(struct clt__exec *x, struct clt__fuse_group *gr);

/* ==== The trainer (trainer_create.c, trainer.c, step.c) ================================= */

struct clt_trainer {
    struct clt_device *dev;
    const struct clt_graph *graph;
    const struct clt_tensor *loss;
    struct clt_trainer_options options;
    struct clt__optim_config optim;      /* options.optimizer as the launchers take it */
    struct clt__lr_schedule lr_schedule; /* and its schedule */
    struct clt__optim_range *ranges;     /* the parameter groups resolved (optim.ranges) */
    struct clt__plan plan;
    struct clt_memory_report memory;

    /* Device buffers. */
    cl_mem params; /* [trained | state] floats: the masters (what checkpoints hold) */
    cl_mem grads;  /* [trained] floats: what the optimizer reads */
    /* 16-bit plans (plan.storage not fp32): the working copy of the trained parameters the
     * forward and backward read, narrowed from params by each update; the gradients the
     * backward writes, fresh each micro-step, widened (times 1 / scale) into grads; the loss
     * scaler's device state (struct clt__scaler_state: scale 1 in bf16). NULL in fp32. */
    cl_mem shadow;                        /* [trained] 16-bit */
    cl_mem grads16;                       /* [trained] 16-bit */
    cl_mem scaler;                        /* struct clt__scaler_state */
    struct clt__scaler_config scaler_cfg; /* fp16: options.loss_scaling, defaults filled */
    cl_mem moment1;                       /* [trained]: SGD momentum, Adam's first moment */
    cl_mem moment2;                       /* [trained]: Adam's second moment */
    cl_mem status;                        /* the optimizer's status record (ops/optim.h) */
    cl_mem acts;                          /* the planned activation arena */
    cl_mem work;                          /* scratch shared by all ops and the optimizer */
    cl_mem inputs[2];

    /* Double-buffered uploads and loss readback. */
    void *host_in[2];
    cl_event up_ev[2];   /* upload into inputs[i] done */
    cl_event done_ev[2]; /* the last step that read inputs[i] done */
    cl_event loss_ev[2]; /* loss readback into host_loss[i] done */
    float host_loss[2];
    uint16_t host_loss16[2]; /* a 16-bit loss (not a wide_output op's) is read into these */
    uint32_t slot;           /* the input slot of the work being enqueued */
    uint32_t loss_slot;      /* the host_loss slot of the latest step */
    bool have_loss;

    /* Non-finite detection for stop_on_nonfinite: the status of an earlier step, read back
     * without blocking. */
    cl_event status_ev;
    uint32_t host_status[8];
    uint64_t status_step;

    /* With a profiling device: the events of the first CLT__PROFILE_STEPS steps. */
    struct clt__step_events *prof;
    uint32_t nprof;

    /* Recorded launches (record.c), one recording per kind of step: bit 0 set for the first
     * micro-step of an accumulation, bit 1 for a step that updates. NULL when CLTRAIN_RECORD
     * is 0. */
    struct clt__rec *rec[4];

    /* The kernel profile of its steps (profile.c, clt__trainer_profile); NULL: off. */
    struct clt__prof *kprof;

    uint64_t steps;
    uint64_t updates; /* updates attempted (the schedule's counter) */
    float last_lr;
    bool *eval_need; /* scratch of clt_trainer_eval: nodes the requested output needs */
    bool inference;  /* an executor's: forward plan, no gradients or optimizer buffers */

    /* Data parallelism (parallel.c). loss_seed is the d loss / d loss the backward pass starts
     * from: 1, or a replica's share of the global batch. par is set on the trainer a caller
     * holds for a trainer over several devices (it is replica 0; par holds the others). */
    float loss_seed;
    int64_t pass_rows; /* rows of the step between clt__trainer_step_pass and _finish */
    struct clt__parallel *par;
    /* Set on every replica of a data-parallel trainer (replica 0 included): its gradient
     * buckets, whose reads the backward pass starts (clt__parallel_backward_entry). */
    struct clt__replica *replica;
};

/* ==== Data parallelism (parallel.c) ====================================================== */

/* A step in two halves, for a data-parallel trainer that sums gradients between them:
 * the pass (checks, upload, forward, backward, unrecorded) and the finish (the update when the
 * step updates, the step's markers, the loss readback, the counters). */
enum clt_status clt__trainer_step_pass(struct clt_trainer *tr, const void *const *inputs,
                                       int64_t rows);
enum clt_status clt__trainer_step_finish(struct clt_trainer *tr);
/* clt_trainer_eval_rows on this trainer's own device, whatever its par. */
enum clt_status clt__trainer_eval_one(struct clt_trainer *tr, const void *const *inputs,
                                      int64_t rows, const struct clt_tensor *output, float *out,
                                      uint64_t count, float *loss);

/* The public calls on a trainer whose par is set (parallel.c). */
int64_t clt__parallel_batch(const struct clt_trainer *tr);
enum clt_status clt__parallel_step(struct clt_trainer *tr, const void *const *inputs, int64_t rows);
enum clt_status clt__parallel_loss(struct clt_trainer *tr, float *loss);
enum clt_status clt__parallel_eval(struct clt_trainer *tr, const void *const *inputs, int64_t rows,
                                   const struct clt_tensor *output, float *out, uint64_t count,
                                   float *loss);
/* Copies replica 0's parameters, state, moments, optimizer status and counters to the other
 * replicas (after a load or a parameter write). Blocks. */
enum clt_status clt__parallel_sync(struct clt_trainer *tr);
void clt__parallel_free(struct clt_trainer *tr);
/* For cltrain-bench: runs the gradient reduction of a data-parallel trainer alone reps times
 * (reads, sum, writes back: the sums replace the gradients) and writes the wall time. Blocks. */
enum clt_status clt__parallel_time_reduce(struct clt_trainer *tr, uint32_t reps, double *seconds);
/* Called by the backward pass of a replica (tr->replica set) after it enqueues backward entry
 * e of nbwd: starts the non-blocking reads of the gradient buckets that entry completes. */
enum clt_status clt__parallel_backward_entry(struct clt_trainer *tr, uint32_t e);

#define CLT__PROFILE_STEPS 64

/* When one step's work happened, from OpenCL profiling events. */
struct clt__step_events {
    cl_event upload;        /* the batch upload on the transfer queue */
    cl_event compute_start; /* a marker after the compute queue's wait for the upload */
    cl_event compute_end;   /* the marker that ends the step */
};

/* Turns the kernel profile of tr's steps on (a fresh one: CLT_ERR_UNSUPPORTED, logged, when
 * the device was not opened with profiling) or off (dropping it). While on, each step keeps
 * an event per launch and tr->kprof holds the totals (clt__prof_read). For cltrain-bench
 * --profile, `cltrain train --profile` and tests. */
enum clt_status clt__trainer_profile(struct clt_trainer *tr, bool on);

/* Start and end (ns, the device's clock) of the upload and of the compute of step i (i <
 * nprof). Blocks until that step is done. CLT_ERR_UNSUPPORTED without profiling. */
enum clt_status clt__trainer_step_times(struct clt_trainer *tr, uint32_t i, uint64_t times[4]);

/* The step's forward pass (training mode: fused chains as one kernel each), and its loss
 * seed and backward entries, as clt_trainer_step enqueues them (for cltrain-bench's split of
 * a step into phases). */
enum clt_status clt__trainer_forward(struct clt_trainer *tr, struct clt__exec *x);
enum clt_status clt__trainer_backward(struct clt_trainer *tr, struct clt__exec *x);

/* The step's update as clt_trainer_step enqueues it at learning rate lr: the optimizer, and in
 * a 16-bit plan the loss scaler's update (fp16) and the narrowing of the masters into the
 * working copy (for cltrain-bench's split of a step; the schedule's counter is the caller's). */
enum clt_status clt__trainer_update(struct clt_trainer *tr, struct clt__exec *x, float lr);

/* Makes the trainer behind an executor: a forward plan of the n outputs (no loss, no
 * gradients, no optimizer state), its buffers, a dry run in evaluation mode, parameters from
 * their initialisers. Blocks. */
enum clt_status clt__trainer_create_inference(struct clt_device *dev, const struct clt_graph *graph,
                                              const struct clt_tensor *const *outputs, uint32_t n,
                                              struct clt_trainer **out);

/* The forward pass in evaluation mode on one batch of `rows` real rows (inputs[i] NULL for an
 * input that `need` does not need; need NULL: every reached node), then a non-blocking read of
 * each of the nread tensors reads[i] (count[i] elements) into dst[i] as soon as it exists.
 * Waits for the device at the end. */
enum clt_status clt__trainer_run_forward(struct clt_trainer *tr, const void *const *inputs,
                                         int64_t rows, const bool *need,
                                         const struct clt_tensor *const *reads, void *const *dst,
                                         const uint64_t *count, uint32_t nread);

/* 16-bit trainers: enqueues the narrowing of the fp32 masters into the working copy (at
 * creation, after a load, a parameter write; an update writes it itself); nothing in fp32. */
enum clt_status clt__trainer_shadow_refresh(struct clt_trainer *tr);

/* 16-bit trainers: enqueues setting the loss scaler's device state to s (fp16) or to scale 1
 * (bf16); nothing in fp32. */
enum clt_status clt__trainer_scaler_set(struct clt_trainer *tr, const struct clt__scaler *s);

/* Copies every parameter and state tensor of dst from the one of the same name and shape in
 * src (a buffer copy on one device, through the host between two). Blocks. */
enum clt_status clt__trainer_copy_params(struct clt_trainer *dst, struct clt_trainer *src);

/* Whether a call may run `rows` real rows (1 .. the planned batch, fewer only where the plan
 * allows partial batches); logs why not, naming `what`. */
enum clt_status clt__trainer_check_rows(struct clt_trainer *tr, int64_t rows, const char *what);

/* The planned batch (1 for a graph without inputs). */
int64_t clt__trainer_batch(const struct clt_trainer *tr);

/* Runs one forward and backward pass on zero inputs without updating anything, so that every
 * kernel is compiled and every GEMM shape warmed at creation. Blocks. */
enum clt_status clt__trainer_dry_run(struct clt_trainer *tr);

#endif /* CLTRAIN_TRAINER_H */
