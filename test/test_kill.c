/*
 * test_kill.c: a training process killed with SIGKILL at random moments, many times, always
 * leaves a loadable checkpoint, and training resumes from it.
 *
 * The test runs itself as a child (`test_kill --child PATH`) that resumes from PATH when it
 * exists and then trains an MLP, saving after every step, until it is killed. The parent
 * kills it after a random delay (so deaths land in device work, in a save, or between),
 * then checks without OpenCL that PATH opens as a checkpoint with every tensor and a step
 * count that never goes back. At the end it resumes from the last checkpoint in-process and
 * trains on. Stale temporary files of interrupted saves are counted and reported.
 */
#include <dirent.h>
#include <math.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

enum { N = 16, IN = 8, HID = 32, CLS = 3 };

struct model {
    struct clt_graph *g;
    struct clt_tensor *loss;
};

static void make_model(struct model *m)
{
    clt_graph_create(&m->g);
    struct clt_tensor *x = clt_input(m->g, "x", CLT_F32, 2, (int64_t[]){N, IN});
    struct clt_tensor *y = clt_input(m->g, "y", CLT_I32, 1, (int64_t[]){N});
    struct clt_tensor *h = clt_relu(m->g, clt_linear(m->g, x, HID, true, "fc1"));
    m->loss = clt_cross_entropy(m->g, clt_linear(m->g, h, CLS, true, "fc2"), y, -1, 0.0f);
}

static void batch_for(uint64_t step, float *x, int32_t *y)
{
    clt_test_fill(x, N * IN, 1 + step, -1.0f, 1.0f);
    for (int i = 0; i < N; i++)
        y[i] = (x[i * IN] > 0) + (x[i * IN + 1] > 0);
}

/* The child: resume if there is a checkpoint, then train and save forever. */
static int child(const char *path)
{
    struct clt_device *dev = NULL;
    struct clt_trainer *tr = NULL;
    struct model m;
    make_model(&m);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    enum clt_status st = clt_device_open(getenv("CLTRAIN_DEVICE"), NULL, &dev);
    if (st == CLT_OK)
        st = clt_trainer_create(dev, m.g, m.loss, &o, &tr);
    if (st == CLT_OK && access(path, F_OK) == 0)
        st = clt_trainer_load(tr, path, true);
    float x[N * IN];
    int32_t y[N];
    for (uint64_t k = 0; st == CLT_OK; k++) {
        struct clt_trainer_stats s;
        st = clt_trainer_stats(tr, &s);
        batch_for(s.steps, x, y);
        const void *batch[2] = {x, y};
        if (st == CLT_OK)
            st = clt_trainer_step(tr, batch);
        if (st == CLT_OK)
            st = clt_trainer_save(tr, path, NULL, 0);
    }
    fprintf(stderr, "child: %s\n", clt_status_str(st));
    return 1;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

static const char *self;
static char dir[] = "/tmp/cltrain-kill-XXXXXX";
static char path[128];

/* Steps recorded in the checkpoint, or -1 when it does not open as one. */
static long checkpoint_steps(void)
{
    struct clt_log quiet = {NULL, NULL, CLT_LOG_ERROR};
    struct clt_checkpoint *ck = NULL;
    if (clt_checkpoint_open(path, &quiet, &ck) != CLT_OK)
        return -1;
    const char *steps = clt_checkpoint_meta(ck, "cltrain.steps");
    long n = steps ? strtol(steps, NULL, 10) : -1;
    /* Every tensor of the model must be there: 4 parameters and 4 moments at least. */
    if (clt_checkpoint_tensor_count(ck) < 8)
        n = -1;
    clt_checkpoint_close(ck);
    return n;
}

static int count_temporaries(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void killed_at_random_moments(void **state)
{
    (void)state;
    int rounds = 20;
    srand((unsigned)time(NULL));
    long last = 0;
    for (int r = 0; r < rounds; r++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            execl(self, self, "--child", path, (char *)NULL);
            _exit(127);
        }
        /* Let the first child save once; later ones die anywhere, start-up included. */
        if (r == 0)
            for (int i = 0; i < 600 && access(path, F_OK) != 0; i++)
                sleep_ms(50);
        sleep_ms(50 + rand() % 900);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            fail_msg("round %d: the child ended by itself (status %d)", r, status);
        long steps = checkpoint_steps();
        if (steps < 0)
            fail_msg("round %d: %s is not a loadable checkpoint", r, path);
        if (steps < last)
            fail_msg("round %d: the checkpoint went back from step %ld to %ld", r, last, steps);
        last = steps;
    }
    print_message("after %d kills: checkpoint at step %ld, %d temporary files of interrupted "
                  "saves left\n",
                  rounds, last, count_temporaries());
    assert_true(last > 0);

    /* Resume in-process and train on. */
    struct clt_device *dev = clt_test_open();
    struct model m;
    make_model(&m);
    struct clt_trainer_options o;
    clt_trainer_options_init(&o, CLT_OPTIM_ADAM);
    struct clt_trainer *tr = NULL;
    assert_int_equal(clt_trainer_create(dev, m.g, m.loss, &o, &tr), CLT_OK);
    assert_int_equal(clt_trainer_load(tr, path, true), CLT_OK);
    struct clt_trainer_stats s;
    assert_int_equal(clt_trainer_stats(tr, &s), CLT_OK);
    assert_int_equal((long)s.steps, last);
    float x[N * IN], loss;
    int32_t y[N];
    for (int i = 0; i < 5; i++) {
        batch_for(s.steps + (uint64_t)i, x, y);
        const void *batch[2] = {x, y};
        assert_int_equal(clt_trainer_step(tr, batch), CLT_OK);
    }
    assert_int_equal(clt_trainer_loss(tr, &loss), CLT_OK);
    assert_true(isfinite(loss));
    clt_trainer_free(tr);
    clt_graph_free(m.g);
    clt_device_close(dev);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return child(argv[2]);
    clt_test_require_device();
    self = argv[0];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(killed_at_random_moments),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
