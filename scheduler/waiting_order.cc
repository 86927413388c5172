#include "scheduler/waiting_order.h"

#include <algorithm>

namespace strata::scheduler {

void WaitingOrder::Sort(std::vector<WaitingEntry>& entries, Clock::time_point now) const {
  const bool cache_aware = policy_ == SchedulingPolicy::kCacheAware;
  for (WaitingEntry& entry : entries) {
    entry.aged = cache_aware && now - entry.arrived >= max_queue_delay_;
  }
  std::sort(entries.begin(), entries.end(), [&](const WaitingEntry& a, const WaitingEntry& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    if (!cache_aware) return a.arrival < b.arrival;
    // Aged first (in arrival order), then (first_tokens_first) those with no
    // token yet, then longest cached prefix.
    if (a.aged != b.aged) return a.aged;
    if (!a.aged && first_tokens_first_ && a.awaits_first_token != b.awaits_first_token) {
      return a.awaits_first_token;
    }
    if (!a.aged && a.cached_tokens != b.cached_tokens) return a.cached_tokens > b.cached_tokens;
    return a.arrival < b.arrival;
  });
}

}  // namespace strata::scheduler
