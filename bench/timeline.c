/*
 * timeline.c: measures, from OpenCL profiling events, how a trainer's batch uploads (transfer
 * queue) overlap the compute of the previous step (compute queue). Trains an MLP on random
 * data with a large batch so that uploads take measurable time, then prints one line per
 * step: upload start and end, compute start and end, in milliseconds from the first upload,
 * and whether upload k+1 ran while step k computed. Used for docs/scheduling.md.
 *
 *     cltrain-timeline [DEVICE] [STEPS] [BATCH] [FEATURES]
 */
#include <stdio.h>
#include <stdlib.h>

#include "trainer.h"

int main(int argc, char **argv)
{
    int steps = argc > 2 ? atoi(argv[2]) : 8;
    if (steps < 2 || steps > CLT__PROFILE_STEPS) {
        fprintf(stderr, "usage: cltrain-timeline [DEVICE] [STEPS 2..%d]\n", CLT__PROFILE_STEPS);
        return 2;
    }
    const int B = argc > 3 ? atoi(argv[3]) : 256, IN = argc > 4 ? atoi(argv[4]) : 784;
    enum { HID = 128, CLS = 10 };
    if (B < 1 || IN < 1) {
        fprintf(stderr, "cltrain-timeline: BATCH and FEATURES must be positive\n");
        return 2;
    }
    struct clt_device_options o;
    clt_device_options_init(&o);
    o.profiling = true;
    struct clt_device *dev = NULL;
    struct clt_graph *g = NULL;
    struct clt_trainer *tr = NULL;
    enum clt_status st = clt_device_open(argc > 1 ? argv[1] : NULL, &o, &dev);
    if (st == CLT_OK)
        st = clt_graph_create(&g);
    struct clt_tensor *loss = NULL;
    if (st == CLT_OK) {
        struct clt_tensor *x = clt_input(g, "x", CLT_F32, 2, (int64_t[]){B, IN});
        struct clt_tensor *y = clt_input(g, "y", CLT_I32, 1, (int64_t[]){B});
        struct clt_tensor *h = clt_relu(g, clt_linear(g, x, HID, true, "fc1"));
        loss = clt_cross_entropy(g, clt_linear(g, h, CLS, true, "fc2"), y, -1, 0.0f);
        st = clt_graph_status(g);
    }
    if (st == CLT_OK)
        st = clt_trainer_create(dev, g, loss, NULL, &tr);
    float *xb = malloc(sizeof(float) * B * IN);
    int32_t *yb = calloc(B, sizeof *yb);
    if (!xb || !yb)
        st = CLT_ERR_NO_MEMORY;
    for (int i = 0; st == CLT_OK && i < B * IN; i++)
        xb[i] = (float)((i * 7919) % 1000) / 1000.0f;
    for (int s = 0; st == CLT_OK && s < steps; s++) {
        const void *batch[] = {xb, yb};
        st = clt_trainer_step(tr, batch);
    }
    uint64_t t[CLT__PROFILE_STEPS][4];
    for (int s = 0; st == CLT_OK && s < steps; s++)
        st = clt__trainer_step_times(tr, (uint32_t)s, t[s]);
    if (st != CLT_OK) {
        fprintf(stderr, "cltrain-timeline: %s\n", clt_status_str(st));
    } else {
        printf("device: %s\nbatch upload %.1f MiB per step\n", clt_device_info(dev)->name,
               (double)B * IN * 4 / 1048576.0);
        /* Upload k is hidden when it ended before step k-1's compute did: the compute queue
         * then went from step k-1 to step k without waiting for data. */
        printf("step  upload start..end (ms)  compute start..end (ms)  upload hidden  gap (ms)\n");
        double t0 = (double)t[0][0];
        int hidden = 0;
        double gaps = 0;
        for (int s = 0; s < steps; s++) {
            bool h = s > 0 && t[s][1] <= t[s - 1][3];
            double gap = s > 0 ? ((double)t[s][2] - (double)t[s - 1][3]) / 1e6 : 0;
            hidden += h;
            gaps += gap;
            printf("%4d  %8.2f .. %8.2f     %8.2f .. %8.2f     %-13s %8.3f\n", s,
                   (t[s][0] - t0) / 1e6, (t[s][1] - t0) / 1e6, (t[s][2] - t0) / 1e6,
                   (t[s][3] - t0) / 1e6, s == 0 ? "-" : (h ? "yes" : "no"), gap);
        }
        printf("%d of %d uploads were done before the previous step's compute ended; mean gap "
               "between steps %.3f ms; mean step %.2f ms\n",
               hidden, steps - 1, gaps / (steps - 1),
               ((double)t[steps - 1][3] - (double)t[0][2]) / 1e6 / steps);
    }
    free(xb);
    free(yb);
    clt_trainer_free(tr);
    clt_graph_free(g);
    clt_device_close(dev);
    return st == CLT_OK ? 0 : 1;
}
