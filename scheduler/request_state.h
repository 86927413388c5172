// A request's place in the scheduler, as one explicit state. Every change
// goes through Scheduler::MoveTo, which checks it against the transitions
// below and keeps the queues in step with the state:
//
//   kWaiting --(lower tier holds its prefix)--> kLoading
//   kWaiting, kLoading, kSwapped --(admitted: device blocks allocated)--> kRunning
//   kRunning --(preempted, K/V dropped: recomputed on return)--> kWaiting
//   kRunning --(preempted, K/V copied to swap memory)--> kSwapped
//   kSwapped --(the swap-out's copies did not run)--> kWaiting
//   any state but kFinished --(stop, length, abort, deadline, error)--> kFinished
//
// A finished request is erased once its final event has been emitted.
#ifndef STRATA_SCHEDULER_REQUEST_STATE_H_
#define STRATA_SCHEDULER_REQUEST_STATE_H_

#include <cstdint>
#include <string_view>

namespace strata::scheduler {

enum class RequestState : uint8_t {
  kWaiting,   // queued for admission (new, or preempted by recompute)
  kLoading,   // queued; its prefix is being read from a lower tier
  kRunning,   // holds device blocks and computes every step
  kSwapped,   // preempted; its K/V waits in swap memory
  kFinished,  // ended; its blocks are released
};
inline constexpr int kNumRequestStates = 5;

constexpr const char* RequestStateName(RequestState state) {
  switch (state) {
    case RequestState::kWaiting:
      return "waiting";
    case RequestState::kLoading:
      return "loading";
    case RequestState::kRunning:
      return "running";
    case RequestState::kSwapped:
      return "swapped";
    case RequestState::kFinished:
      return "finished";
  }
  return "?";
}

// Whether the diagram above has an edge from -> to.
constexpr bool IsLegalTransition(RequestState from, RequestState to) {
  using S = RequestState;
  if (from == S::kFinished) return false;
  switch (to) {
    case S::kWaiting:
      return from == S::kRunning || from == S::kSwapped;
    case S::kLoading:
      return from == S::kWaiting;
    case S::kRunning:
      return from == S::kWaiting || from == S::kLoading || from == S::kSwapped;
    case S::kSwapped:
      return from == S::kRunning;
    case S::kFinished:
      return true;
  }
  return false;
}

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_REQUEST_STATE_H_
