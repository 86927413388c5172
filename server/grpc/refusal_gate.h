// Holds back the UNAVAILABLE replies of calls refused while the gRPC server
// closes, so that none of them arrives in gRPC core's shutdown window.
//
// Why: once grpc::Server::Shutdown starts, gRPC core cancels every call that
// reaches it before the client has read the server's GOAWAY, and the client
// sees CANCELLED (grpc/grpc#41785) where it should see UNAVAILABLE and go
// elsewhere. A client that waits for each reply before its next call
// (nearly all do) is kept waiting on a held refusal while the server shuts
// down; the refusal is released after the GOAWAY is out, so its next call
// goes to a fresh connection, which is refused: UNAVAILABLE.
//
// Thread-safe.
#ifndef STRATA_SERVER_GRPC_REFUSAL_GATE_H_
#define STRATA_SERVER_GRPC_REFUSAL_GATE_H_

#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace strata::server {

class RefusalGate {
 public:
  // From now on Refuse keeps its finishers (until Release).
  void Hold();
  // Runs every kept finisher; later ones run at once again.
  void Release();
  // Runs `finish` (which replies to a refused call) now, or keeps it while
  // held. `finish` must stay valid until then (it finishes a gRPC reactor,
  // which lives until it is finished).
  void Refuse(std::function<void()> finish);
  // Finishers kept right now.
  size_t held() const;

 private:
  mutable absl::Mutex mu_;
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::function<void()>> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_REFUSAL_GATE_H_
