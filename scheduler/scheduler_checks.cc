// The scheduler's consistency checks (Scheduler::ValidateCache): the KV
// bookkeeping against the requests and their explicit states. Part of class
// Scheduler; kept apart from scheduler.cc, which is the step loop.
#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_sequence.h"

namespace strata::scheduler {

absl::Status Scheduler::ValidateState(RequestId id, const Sequence& seq) const {
  const RequestState state = seq.state;
  const auto in = [id](const std::vector<RequestId>& ids) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  };
  const bool running = state == RequestState::kRunning;
  const bool queued = !running && state != RequestState::kFinished;
  std::string_view wrong;
  if (running != in(running_)) wrong = "its place in the running queue";
  if (queued != in(queued_)) wrong = "its place in the waiting queue";
  if (running != cache_.HasSequence(id)) wrong = "its block table";
  if ((state == RequestState::kLoading) != (seq.load != nullptr)) wrong = "its load";
  if (state != RequestState::kSwapped && !seq.swap_slots.empty()) wrong = "its swap memory";
  if (wrong.empty()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("request ", id, " is ",
                                          std::string(RequestStateName(state)), " but ",
                                          std::string(wrong), " disagrees"));
}

absl::Status Scheduler::ValidateCache() const {
  if (absl::Status status = cache_.Validate(); !status.ok()) return status;
  int64_t holders = 0;
  for (const auto& [id, seq] : sequences_) holders += seq->holder != 0 ? 1 : 0;
  const int64_t expected = static_cast<int64_t>(running_.size()) +
                           static_cast<int64_t>(inflight_moves_.prefetches.size()) + holders;
  if (cache_.num_sequences() != expected) {
    return absl::InternalError(absl::StrCat("the cache holds ", cache_.num_sequences(),
                                            " sequences but ", expected, " are running"));
  }
  int64_t swapped = 0;
  std::array<int64_t, kNumRequestStates> in_state{};
  for (const auto& [id, seq] : sequences_) {
    swapped += static_cast<int64_t>(seq->swap_slots.size());
    ++in_state[static_cast<size_t>(seq->state)];
    if (absl::Status status = ValidateState(id, *seq); !status.ok()) return status;
  }
  if (in_state != num_in_state_) return absl::InternalError("the per-state counts are off");
  const int64_t swap_in_use = swap_ != nullptr ? swap_->num_in_use() : 0;
  if (swap_in_use != swapped + static_cast<int64_t>(inflight_moves_.swap_in_slots.size())) {
    return absl::InternalError(
        absl::StrCat(swap_in_use, " swap slots in use but sequences hold ", swapped));
  }
  if (sequences_.empty()) {
    if (cache_.pool().num_in_use() != 0) {
      return absl::InternalError(absl::StrCat(
          cache_.pool().num_in_use(), " device blocks are referenced with no request left"));
    }
    if (staging_ != nullptr && staging_->num_in_use() != 0) {
      return absl::InternalError("staging memory is held with no request left");
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::scheduler
