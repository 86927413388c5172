// The order in which waiting requests are offered admission (a policy of the
// scheduler, tested alone in tests/scheduler/waiting_order_test.cc).
//
// Higher Request::priority always comes first. Within a priority:
//   kFcfs        arrival order, and admission stops at the first request that
//                does not fit (no overtaking): vLLM's default.
//   kCacheAware  requests that have waited max_queue_delay or longer first,
//                in arrival order (the ageing bound: none starves); then the
//                rest by longest cached prefix, ties in arrival order
//                (SGLang's longest-prefix-match). A request that does not fit
//                is passed over unless it has aged, so that a large request
//                the bound protects is not overtaken forever.
//                With first_tokens_first (the scheduler's yields to new
//                requests), requests that have produced no token yet come
//                before preempted ones among those not aged.
//
// Pure: no state beyond the options. Thread-compatible.
#ifndef STRATA_SCHEDULER_WAITING_ORDER_H_
#define STRATA_SCHEDULER_WAITING_ORDER_H_

#include <cstdint>
#include <vector>

#include "scheduler/request.h"

namespace strata::scheduler {

// How waiting requests are ordered within one priority.
enum class SchedulingPolicy : uint8_t {
  // Arrival order, no overtaking: vLLM's default.
  kFcfs = 0,
  // Strata's policy. Longest cached prefix first, with an ageing bound
  // (max_queue_delay) past which arrival order wins so that none starves.
  // The scheduler also groups requests that share an uncached prefix (the
  // first computes it, the others wait for its blocks instead of computing
  // them again: scheduler/inflight_prefixes.h).
  kCacheAware = 1,
};

// One request offered admission.
struct WaitingEntry {
  RequestId id = 0;
  int32_t priority = 0;
  uint64_t arrival = 0;         // arrival sequence number: smaller came first
  Clock::time_point arrived{};  // when it was added
  int64_t cached_tokens = 0;    // its prefix already in the cache (kCacheAware)
  bool awaits_first_token = false;  // has produced no token yet
  bool aged = false;            // set by Sort: waited max_queue_delay or longer
};

class WaitingOrder {
 public:
  WaitingOrder(SchedulingPolicy policy, Clock::duration max_queue_delay,
               bool first_tokens_first = false)
      : policy_(policy), max_queue_delay_(max_queue_delay), first_tokens_first_(first_tokens_first) {}

  // Sorts `entries` into admission order as of `now` and marks the aged ones.
  void Sort(std::vector<WaitingEntry>& entries, Clock::time_point now) const;

  // Whether admission may go on to later entries when `entry` does not fit.
  bool MayOvertake(const WaitingEntry& entry) const {
    return policy_ == SchedulingPolicy::kCacheAware && !entry.aged;
  }

  SchedulingPolicy policy() const { return policy_; }

 private:
  SchedulingPolicy policy_;
  Clock::duration max_queue_delay_;
  bool first_tokens_first_;
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_WAITING_ORDER_H_
