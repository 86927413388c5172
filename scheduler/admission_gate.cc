#include "scheduler/admission_gate.h"

#include "absl/strings/str_cat.h"

namespace strata::scheduler {

absl::Status AdmissionGate::Check(const Request& request, int64_t queued) const {
  if (absl::Status valid = CheckRequest(request); !valid.ok()) return valid;
  return CheckQueue(queued);
}

absl::Status AdmissionGate::CheckRequest(const Request& request) const {
  return ValidateRequest(request, limits_);
}

absl::Status AdmissionGate::CheckQueue(int64_t queued) const {
  if (max_waiting_ > 0 && queued >= max_waiting_) {
    return absl::ResourceExhaustedError(absl::StrCat("the waiting queue is full (", queued,
                                                     " requests, max_waiting ", max_waiting_, ")"));
  }
  return absl::OkStatus();
}

}  // namespace strata::scheduler
