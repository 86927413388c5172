// One thread that runs posted tasks in order. The gRPC service uses it to
// leave the event dispatch thread (event sinks must not call back into the
// EngineService, e.g. Snapshot) and to keep gRPC's callback threads from
// blocking on the engine (ReleaseSession waits for a step).
//
// Thread-safe. The destructor runs the tasks already posted, then joins.
#ifndef STRATA_SERVER_GRPC_SERIAL_EXECUTOR_H_
#define STRATA_SERVER_GRPC_SERIAL_EXECUTOR_H_

#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace strata::server {

class SerialExecutor {
 public:
  SerialExecutor();
  ~SerialExecutor();
  SerialExecutor(const SerialExecutor&) = delete;
  SerialExecutor& operator=(const SerialExecutor&) = delete;

  // Queues `task`; never blocks beyond a short lock.
  void Post(std::function<void()> task);

 private:
  void Run();
  bool ShouldWake() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_SERIAL_EXECUTOR_H_
