// Crash tests: run work in a forked child that, once the work is done,
// tells the parent and dies by SIGKILL, as a crash or `kill -9` would.
#ifndef STRATA_TESTS_COMMON_SIGKILL_CHILD_H_
#define STRATA_TESTS_COMMON_SIGKILL_CHILD_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

namespace strata::testing {

struct KilledChild {
  bool became_ready = false;       // `work` finished and reported success
  bool killed_by_sigkill = false;  // and the child then died by SIGKILL
  int exit_code = -1;              // `work`'s non-zero result when it failed
};

// `work` runs in the child and returns 0 when done, or a code naming what
// failed (the child exits with it). Only async-signal-safe calls happen in
// the child outside `work`.
inline KilledChild RunChildUntilSigkill(const std::function<int()>& work) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t child = fork();
  if (child < 0) return {};
  if (child == 0) {
    close(fds[0]);
    const int code = work();
    if (code != 0) _exit(code);
    const char ready = 'R';
    if (write(fds[1], &ready, 1) != 1) _exit(100);
    raise(SIGKILL);
    _exit(101);  // not reached
  }
  close(fds[1]);
  char ready = 0;
  const ssize_t got = read(fds[0], &ready, 1);
  close(fds[0]);
  int status = 0;
  if (waitpid(child, &status, 0) != child) return {};
  return KilledChild{.became_ready = got == 1,
                     .killed_by_sigkill = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                     .exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

}  // namespace strata::testing

#endif  // STRATA_TESTS_COMMON_SIGKILL_CHILD_H_
