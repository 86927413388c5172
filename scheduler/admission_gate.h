// The one gate a request passes to enter the engine: the request checked
// against the model's limits (ValidateRequest), then the waiting-queue
// bound. EngineService::Submit asks it on the caller's thread, so a refused
// request fails at once and the engine thread never sees it; the scheduler
// then enqueues what the gate let through without asking again. Direct users
// of the scheduler (benchmarks, tests) go through the same gate in
// Scheduler::AddRequest.
//
// Immutable after construction: thread-safe.
#ifndef STRATA_SCHEDULER_ADMISSION_GATE_H_
#define STRATA_SCHEDULER_ADMISSION_GATE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "scheduler/request.h"
#include "scheduler/request_validation.h"

namespace strata::scheduler {

class AdmissionGate {
 public:
  // max_waiting: requests waiting (or loading) beyond which the gate refuses
  // new ones; 0 for no bound.
  AdmissionGate(const RequestLimits& limits, int64_t max_waiting)
      : limits_(limits), max_waiting_(max_waiting) {}

  // OK to enqueue `request` when `queued` requests are waiting: CheckRequest
  // then CheckQueue.
  absl::Status Check(const Request& request, int64_t queued) const;
  // The request against the model's limits: ValidateRequest's
  // INVALID_ARGUMENT or RESOURCE_EXHAUSTED. Costs O(prompt length).
  absl::Status CheckRequest(const Request& request) const;
  // RESOURCE_EXHAUSTED "the waiting queue is full (N requests, max_waiting
  // M)" when `queued` reached max_waiting. O(1): callers ask it under their
  // queue's lock.
  absl::Status CheckQueue(int64_t queued) const;

  const RequestLimits& limits() const { return limits_; }
  int64_t max_waiting() const { return max_waiting_; }

 private:
  RequestLimits limits_;
  int64_t max_waiting_ = 0;
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_ADMISSION_GATE_H_
