// A mock of scheduler::EngineObserver (scheduler/engine_observer.h) for
// tests: records every call. The engine thread calls OnStep, the dispatch
// thread the per-request callbacks, and the test reads copies, so every
// access takes the lock.
#ifndef STRATA_TESTS_MOCKS_RECORDING_OBSERVER_H_
#define STRATA_TESTS_MOCKS_RECORDING_OBSERVER_H_

#include <vector>

#include "absl/synchronization/mutex.h"
#include "scheduler/engine_observer.h"

namespace strata::testing {

class RecordingObserver : public scheduler::EngineObserver {
 public:
  void OnStep(const scheduler::StepStats& step,
              const scheduler::EngineSnapshot& snapshot) override {
    absl::MutexLock lock(&mu_);
    steps_.push_back(step);
    last_snapshot_ = snapshot;
  }
  void OnInterTokenLatency(double seconds) override {
    absl::MutexLock lock(&mu_);
    inter_token_.push_back(seconds);
  }
  void OnRequestFinished(const scheduler::RequestStats& stats) override {
    absl::MutexLock lock(&mu_);
    finished_.push_back(stats);
  }

  std::vector<scheduler::StepStats> steps() const {
    absl::MutexLock lock(&mu_);
    return steps_;
  }
  scheduler::EngineSnapshot last_snapshot() const {
    absl::MutexLock lock(&mu_);
    return last_snapshot_;
  }
  std::vector<double> inter_token() const {
    absl::MutexLock lock(&mu_);
    return inter_token_;
  }
  std::vector<scheduler::RequestStats> finished() const {
    absl::MutexLock lock(&mu_);
    return finished_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<scheduler::StepStats> steps_ ABSL_GUARDED_BY(mu_);
  scheduler::EngineSnapshot last_snapshot_ ABSL_GUARDED_BY(mu_);
  std::vector<double> inter_token_ ABSL_GUARDED_BY(mu_);
  std::vector<scheduler::RequestStats> finished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_MOCKS_RECORDING_OBSERVER_H_
