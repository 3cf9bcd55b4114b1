/*
 * first_step.c: the time to the first training step, with cold and with warm kernel caches.
 *
 * Compilers keep caches the process cannot forget (PoCL reads POCL_CACHE_DIR once, CLBlast
 * keeps its kernels in memory for the life of the process), so each measurement is a child
 * process: this program again, in a hidden mode (--first-step-child), timing device open,
 * model build, trainer creation (which compiles every kernel and warms every GEMM shape) and
 * one step up to its loss. "Cold" gives the child fresh, empty cache directories for every
 * cache we know of: cltrain's (CLTRAIN_CACHE_DIR), PoCL's (POCL_CACHE_DIR), Mesa's
 * (MESA_SHADER_CACHE_DIR, MESA_GLSL_CACHE_DIR), NVIDIA's (CUDA_CACHE_PATH) and the XDG cache
 * home that other drivers default to. "Warm" runs the child again on the directories the
 * cold run filled.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "models.h"

/* Runs the child on the cache directories under root; writes its time. */
static enum clt_status run_child(struct bench_ctx *c, const char *kind, const char *root,
                                 double *seconds)
{
    int fd[2];
    if (pipe(fd) != 0)
        return CLT_ERR_IO;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return CLT_ERR_IO;
    }
    if (pid == 0) {
        static const char *const vars[][2] = {
            {"CLTRAIN_CACHE_DIR", "cltrain"},  {"POCL_CACHE_DIR", "pocl"},
            {"MESA_SHADER_CACHE_DIR", "mesa"}, {"MESA_GLSL_CACHE_DIR", "mesa"},
            {"CUDA_CACHE_PATH", "cuda"},       {"XDG_CACHE_HOME", "xdg"}};
        char dir[4096];
        for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
            snprintf(dir, sizeof dir, "%s/%s", root, vars[i][1]);
            mkdir(dir, 0700);
            setenv(vars[i][0], dir, 1);
        }
        unsetenv("CLTRAIN_CACHE"); /* "warm" means cltrain's cache is on */
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        char *argv[] = {(char *)c->cfg->self, "--first-step-child", (char *)kind,
                        "--device",           c->selection,         NULL};
        execv(c->cfg->self, argv);
        _exit(127);
    }
    close(fd[1]);
    char out[256];
    size_t len = 0;
    ssize_t got;
    while ((got = read(fd[0], out + len, sizeof out - 1 - len)) > 0 && len < sizeof out - 1)
        len += (size_t)got;
    out[len] = '\0';
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        sscanf(out, "first_step_s %lf", seconds) != 1 || !(*seconds > 0)) {
        bench_note(c->out, "train: the first-step child for %s failed", kind);
        return CLT_ERR_IO;
    }
    return CLT_OK;
}

enum clt_status bench_first_step(struct bench_ctx *c, const char *kind)
{
    /* A cold run rebuilds every kernel the model needs: 20 to 80 s on a 2-core CPU. So
     * cold_runs (--cold-runs) is 1 by default, and --quick measures the MLP only. Warm runs
     * are cheap; each cold run's directories serve for ceil(runs / cold_runs) of them. */
    if ((c->cfg->quick && strcmp(kind, "mlp") != 0) || c->cfg->cold_runs < 1)
        return CLT_OK;
    int cold_runs = c->cfg->cold_runs, per = (c->cfg->runs + cold_runs - 1) / cold_runs;
    double *cold = malloc((size_t)cold_runs * sizeof *cold);
    double *warm = malloc((size_t)(cold_runs * per) * sizeof *warm);
    enum clt_status st = cold && warm ? CLT_OK : CLT_ERR_NO_MEMORY;
    const char *tmp = getenv("TMPDIR");
    int nwarm = 0;
    for (int i = 0; st == CLT_OK && i < cold_runs; i++) {
        char root[4096];
        snprintf(root, sizeof root, "%s/cltrain-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(root)) {
            st = CLT_ERR_IO;
            break;
        }
        st = run_child(c, kind, root, &cold[i]);
        for (int k = 0; st == CLT_OK && k < per; k++)
            st = run_child(c, kind, root, &warm[nwarm++]);
        clt__remove_tree(root);
    }
    struct bench_stat s;
    char name[80];
    if (st == CLT_OK) {
        bench_stat_of(cold, cold_runs, &s);
        snprintf(name, sizeof name, "%s.first_step_cold_s", kind);
        st = bench_add(c->out, "train", name, "s", false, &s);
    }
    if (st == CLT_OK) {
        bench_stat_of(warm, nwarm, &s);
        snprintf(name, sizeof name, "%s.first_step_warm_s", kind);
        st = bench_add(c->out, "train", name, "s", false, &s);
    }
    free(cold);
    free(warm);
    return st;
}

int bench_first_step_child(const char *selection, const char *kind)
{
    double t0 = bench_now();
    struct clt_device *dev = NULL;
    struct clt_trainer *tr = NULL;
    struct model m;
    char err[256] = "";
    void *x = NULL, *y = NULL;
    memset(&m, 0, sizeof m);
    enum clt_status st = clt_device_open(selection, NULL, &dev);
    if (st == CLT_OK)
        st = bench_train_build(dev, kind, &m, err, sizeof err);
    if (st == CLT_OK)
        st = bench_train_inputs(&m, &x, &y);
    struct clt_trainer_options opt;
    clt_trainer_options_init(&opt, CLT_OPTIM_ADAMW);
    if (st == CLT_OK)
        st = clt_trainer_create(dev, m.g, m.loss, &opt, &tr);
    const void *inputs[] = {x, y};
    float loss;
    if (st == CLT_OK)
        st = clt_trainer_step(tr, inputs);
    if (st == CLT_OK)
        st = clt_trainer_loss(tr, &loss);
    double t = bench_now() - t0;
    clt_trainer_free(tr);
    model_free(&m);
    clt_device_close(dev);
    free(x);
    free(y);
    if (st != CLT_OK) {
        fprintf(stderr, "cltrain-bench: first step of %s: %s%s%s\n", kind, clt_status_str(st),
                err[0] ? ": " : "", err);
        return 1;
    }
    printf("first_step_s %.6f\n", t);
    return 0;
}
