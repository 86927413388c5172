// A mock of engine::Backend (engine/backend.h) for tests: runs a real
// backend, with hooks before each Execute that hold the engine thread inside
// a step (Close/Open, or a stall armed on a request's sampling steps) or fail
// the step (FailIf). Thread-safe: the engine thread executes, the test arms
// and releases.
#ifndef STRATA_TESTS_MOCKS_HOOKED_BACKEND_H_
#define STRATA_TESTS_MOCKS_HOOKED_BACKEND_H_

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "engine/backend.h"

namespace strata::testing {

class HookedBackend : public engine::Backend {
 public:
  // Where the engine thread is held: inside the first Execute after the
  // request whose prompt starts with `prompt` has run `after_samples`
  // sampling steps.
  struct Stall {
    std::vector<engine::TokenId> prompt;
    int after_samples = 1;
    absl::Notification entered;  // the engine thread is held
    absl::Notification release;  // lets it go
    // Engine thread, under the backend's lock.
    engine::SequenceId seq = -1;
    int samples = 0;
    bool fired = false;
  };

  // Borrows `inner`, which must outlive this.
  explicit HookedBackend(engine::Backend& inner) : inner_(&inner) {}
  explicit HookedBackend(std::unique_ptr<engine::Backend> inner)
      : owned_(std::move(inner)), inner_(owned_.get()) {}

  absl::StatusOr<engine::StepResult> Execute(const engine::StepPlan& plan) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++executes_;
      changed_.notify_all();
      changed_.wait(lock, [&] { return open_; });
      for (const std::shared_ptr<Stall>& stall : stalls_) HoldIfDue(*stall, plan, lock);
      if (fail_if_ && fail_if_(plan)) {
        ++failures_;
        return absl::InternalError("injected failure");
      }
    }
    absl::StatusOr<engine::StepResult> result = inner_->Execute(plan);
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::shared_ptr<Stall>& stall : stalls_) {
      for (const engine::SequenceStep& step : plan.sequences) {
        if (step.seq_id == stall->seq && step.sample) ++stall->samples;
      }
    }
    return result;
  }
  absl::Status CopyBlocks(absl::Span<const engine::BlockMove> moves) override {
    return inner_->CopyBlocks(moves);
  }
  absl::Status Synchronize() override { return inner_->Synchronize(); }
  absl::StatusOr<std::unique_ptr<engine::HostBuffer>> AllocateHostBuffer(size_t bytes) override {
    return inner_->AllocateHostBuffer(bytes);
  }
  engine::KvArenaInfo kv_arena_info() const override { return inner_->kv_arena_info(); }
  const engine::ModelConfig& model_config() const override { return inner_->model_config(); }
  std::string name() const override { return "hooked"; }

  // Steps from now on wait inside Execute until Open.
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    changed_.notify_all();
  }
  // Waits until the engine thread has entered Execute `n` times in all.
  void WaitForExecutes(int64_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return executes_ >= n; });
  }
  // Steps for which `predicate` holds fail with INTERNAL "injected failure".
  void FailIf(std::function<bool(const engine::StepPlan&)> predicate) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_if_ = std::move(predicate);
  }
  int64_t failures() const { return failures_.load(); }

  // Arms a stall; arm it before submitting its request.
  std::shared_ptr<Stall> StallAfterSamples(std::vector<engine::TokenId> prompt, int samples) {
    auto stall = std::make_shared<Stall>();
    stall->prompt = std::move(prompt);
    stall->after_samples = samples;
    std::lock_guard<std::mutex> lock(mu_);
    stalls_.push_back(stall);
    return stall;
  }

 private:
  void HoldIfDue(Stall& stall, const engine::StepPlan& plan, std::unique_lock<std::mutex>& lock) {
    if (stall.fired) return;
    for (const engine::SequenceStep& step : plan.sequences) {
      if (stall.seq < 0 && step.start_position == 0 &&
          step.token_ids.size() >= stall.prompt.size() &&
          std::equal(stall.prompt.begin(), stall.prompt.end(), step.token_ids.begin())) {
        stall.seq = step.seq_id;
      }
    }
    if (stall.seq < 0 || stall.samples < stall.after_samples) return;
    stall.fired = true;
    stall.entered.Notify();
    lock.unlock();
    stall.release.WaitForNotification();
    lock.lock();
  }

  std::unique_ptr<engine::Backend> owned_;
  engine::Backend* inner_;
  std::mutex mu_;
  std::condition_variable changed_;
  bool open_ = true;
  int64_t executes_ = 0;
  std::function<bool(const engine::StepPlan&)> fail_if_;
  std::vector<std::shared_ptr<Stall>> stalls_;
  std::atomic<int64_t> failures_{0};
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_MOCKS_HOOKED_BACKEND_H_
