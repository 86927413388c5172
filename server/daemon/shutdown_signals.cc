#include "server/daemon/shutdown_signals.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

namespace strata::server {
namespace {

sigset_t ShutdownSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void BlockShutdownSignals() {
  // An inherited "ignore" would discard SIGTERM even while blocked, and the
  // daemon could then never be stopped gracefully. (SIGINT keeps what the
  // parent chose: shells ignore it in background jobs on purpose.)
  signal(SIGTERM, SIG_DFL);
  const sigset_t set = ShutdownSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForShutdownSignal() {
  const sigset_t set = ShutdownSet();
  int signal = 0;
  while (sigwait(&set, &signal) != 0) {
  }
  return signal;
}

std::optional<int> WaitForShutdownSignalFor(std::chrono::milliseconds timeout) {
  const sigset_t set = ShutdownSet();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  timespec wait{
      .tv_sec = static_cast<time_t>(seconds.count()),
      .tv_nsec = static_cast<long>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(timeout - seconds).count())};
  for (;;) {
    const int signal = sigtimedwait(&set, nullptr, &wait);
    if (signal > 0) return signal;
    // EINTR: another signal (not ours) interrupted the wait; the remaining
    // time is not reported, so waiting the whole span again is acceptable.
    if (errno != EINTR) return std::nullopt;
  }
}

}  // namespace strata::server
