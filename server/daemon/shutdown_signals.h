// SIGTERM and SIGINT as ordinary events for `strata serve`: the signals are
// blocked in every thread and the main thread collects them with sigwait, so
// no work ever runs in a signal handler and no thread is interrupted.
//
// Threads: BlockShutdownSignals must run in the main thread before any other
// thread starts (threads inherit the mask). The waits are for one thread.
#ifndef STRATA_SERVER_DAEMON_SHUTDOWN_SIGNALS_H_
#define STRATA_SERVER_DAEMON_SHUTDOWN_SIGNALS_H_

#include <chrono>
#include <optional>

namespace strata::server {

// Blocks SIGTERM and SIGINT in the calling thread and, through inheritance,
// in every thread it starts afterwards.
void BlockShutdownSignals();

// Waits for SIGTERM or SIGINT; returns the signal number.
int WaitForShutdownSignal();

// Waits up to `timeout` for one; nullopt if none came.
std::optional<int> WaitForShutdownSignalFor(std::chrono::milliseconds timeout);

}  // namespace strata::server

#endif  // STRATA_SERVER_DAEMON_SHUTDOWN_SIGNALS_H_
