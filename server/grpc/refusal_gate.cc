#include "server/grpc/refusal_gate.h"

#include <utility>

namespace strata::server {

void RefusalGate::Hold() {
  absl::MutexLock lock(&mu_);
  holding_ = true;
}

void RefusalGate::Release() {
  std::vector<std::function<void()>> held;
  {
    absl::MutexLock lock(&mu_);
    holding_ = false;
    held.swap(held_);
  }
  for (std::function<void()>& finish : held) finish();
}

void RefusalGate::Refuse(std::function<void()> finish) {
  {
    absl::MutexLock lock(&mu_);
    if (holding_) {
      held_.push_back(std::move(finish));
      return;
    }
  }
  finish();
}

size_t RefusalGate::held() const {
  absl::MutexLock lock(&mu_);
  return held_.size();
}

}  // namespace strata::server
