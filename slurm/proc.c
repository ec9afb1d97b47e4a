/* slurm/proc.c - spawn a command and read its stdout and stderr. */
#include "slurm/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/strbuf.h"

extern char **environ;

void proc_result_free(struct proc_result *res)
{
    free(res->out);
    free(res->err);
    res->out = res->err = NULL;
}

/* Read both pipes until both are closed (poll, so neither can fill up and block). */
static dure_status_t drain(int fds[2], struct strbuf bufs[2], const char *name)
{
    dure_status_t st = DURE_OK;
    char chunk[4096];
    int open_fds = 2;

    while (open_fds > 0) {
        struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        DURE_SYS_TRY(r >= 0, "poll on the output of %s", name);
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            ssize_t n = read(fds[i], chunk, sizeof chunk);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            DURE_SYS_TRY(n >= 0, "read the output of %s", name);
            if (n == 0) {
                close(fds[i]);
                fds[i] = -1;
                open_fds--;
            } else {
                strbuf_append(&bufs[i], chunk, (size_t)n);
            }
        }
    }
out:
    return st;
}

dure_status_t proc_run(const char *const argv[], struct proc_result *res)
{
    dure_status_t st = DURE_OK;
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    int fds[2] = {-1, -1};
    struct strbuf bufs[2] = {STRBUF_INIT, STRBUF_INIT};
    posix_spawn_file_actions_t fa;
    int fa_ok = 0;
    pid_t pid = -1;

    res->exit_code = -1;
    res->out = res->err = NULL;
    DURE_SYS_TRY(pipe2(outp, O_CLOEXEC) == 0 && pipe2(errp, O_CLOEXEC) == 0,
                 "pipe for %s", argv[0]);
    DURE_CHECK(posix_spawn_file_actions_init(&fa) == 0, DURE_ERR_NOMEM,
               "posix_spawn_file_actions_init");
    fa_ok = 1;
    DURE_CHECK(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) == 0 &&
                   posix_spawn_file_actions_adddup2(&fa, outp[1], 1) == 0 &&
                   posix_spawn_file_actions_adddup2(&fa, errp[1], 2) == 0,
               DURE_ERR_NOMEM, "posix_spawn file actions for %s", argv[0]);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    if (rc == ENOENT) {
        pid = -1;
        DURE_FAIL(DURE_ERR_UNSUPPORTED, "%s: not found on PATH: is Slurm installed?",
                  argv[0]);
    }
    errno = rc;
    DURE_SYS_TRY(rc == 0, "cannot start %s", argv[0]);
    close(outp[1]);
    close(errp[1]);
    outp[1] = errp[1] = -1;
    fds[0] = outp[0];
    fds[1] = errp[0];
    outp[0] = errp[0] = -1;
    DURE_TRY(drain(fds, bufs, argv[0]));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        DURE_SYS_TRY(errno == EINTR, "waitpid for %s", argv[0]);
    }
    pid = -1;
    res->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    DURE_TRY(strbuf_detach(&bufs[0], &res->out, NULL));
    DURE_TRY(strbuf_detach(&bufs[1], &res->err, NULL));
out:
    if (pid > 0) {
        /* Failed while it runs: do not leave a child behind. */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
        strbuf_free(&bufs[i]);
    }
    int all[4] = {outp[0], outp[1], errp[0], errp[1]};
    for (int i = 0; i < 4; i++) {
        if (all[i] >= 0) {
            close(all[i]);
        }
    }
    if (fa_ok) {
        posix_spawn_file_actions_destroy(&fa);
    }
    if (st != DURE_OK) {
        proc_result_free(res);
    }
    return st;
}
