// Session affinity and pins (a policy of the scheduler, tested alone in
// tests/scheduler/session_registry_test.cc).
//
// A session is keyed by (cache salt, session id), so tenants never touch
// each other's. When one of its turns ends, the blocks that turn committed
// (prompt and output: what the next turn starts with) are held at
// kSessionPinned until session_ttl after that turn, replacing what the
// previous turn held; while a turn is queued or running the session never
// expires. Expiry is lazy: Expire(now) at each step. A pin (a kPrefill
// request with pin = true) made under a session lasts until the session is
// released; a pin made without one lasts until the block is evicted by the
// pool's own rules (a pinned block is evicted only when nothing of lower
// priority is left).
//
// Holds go through a borrowed KeyHolds, which the scheduler applies to the
// device blocks. Not thread-safe: the engine thread's.
#ifndef STRATA_SCHEDULER_SESSION_REGISTRY_H_
#define STRATA_SCHEDULER_SESSION_REGISTRY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "scheduler/key_holds.h"
#include "scheduler/request.h"

namespace strata::scheduler {

class SessionRegistry {
 public:
  // Borrows `holds`, which must outlive the registry.
  SessionRegistry(KeyHolds& holds, Clock::duration ttl) : holds_(holds), ttl_(ttl) {}

  // A turn of the session was queued: it does not expire until the turn ends.
  void BeginTurn(std::string_view salt, std::string_view session_id);

  // The turn ended at `now`. `keys` (the blocks it committed, in chain
  // order) become the session's context when not empty; the context stays
  // pinned until now + ttl unless another turn begins.
  void EndTurn(std::string_view salt, std::string_view session_id,
               std::vector<cache::BlockKey> keys, Clock::time_point now);

  // Pins `keys` until the session is released.
  void Pin(std::string_view salt, std::string_view session_id, std::vector<cache::BlockKey> keys);
  // Pins `keys` until each is evicted (OnEvicted).
  void PinUntilEvicted(absl::Span<const cache::BlockKey> keys);
  void OnEvicted(const cache::BlockKey& key);

  // Unpins the context of every session idle past its ttl; a session left
  // with no pins and no turn is forgotten.
  void Expire(Clock::time_point now);

  // Drops the session's context and pins now. NOT_FOUND if unknown.
  absl::Status Release(std::string_view salt, std::string_view session_id);

  bool Contains(std::string_view salt, std::string_view session_id) const {
    return sessions_.contains(Key(salt, session_id));
  }
  int64_t num_sessions() const { return static_cast<int64_t>(sessions_.size()); }

 private:
  using SessionKey = std::pair<std::string, std::string>;
  struct Session {
    int32_t active_turns = 0;
    std::vector<cache::BlockKey> context;  // held while context_held
    bool context_held = false;
    Clock::time_point expires{};
    std::vector<cache::BlockKey> pins;  // held until Release
  };

  static SessionKey Key(std::string_view salt, std::string_view session_id) {
    return {std::string(salt), std::string(session_id)};
  }
  void DropContext(Session& session);

  KeyHolds& holds_;
  const Clock::duration ttl_;
  absl::flat_hash_map<SessionKey, Session> sessions_;
  absl::flat_hash_set<cache::BlockKey> pinned_until_evicted_;
  // No session can expire before this: Expire skips the scan until then.
  Clock::time_point next_expiry_ = Clock::time_point::max();
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_SESSION_REGISTRY_H_
