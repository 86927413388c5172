#include "scheduler/session_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace strata::scheduler {

void SessionRegistry::BeginTurn(std::string_view salt, std::string_view session_id) {
  ++sessions_[Key(salt, session_id)].active_turns;
}

void SessionRegistry::EndTurn(std::string_view salt, std::string_view session_id,
                              std::vector<cache::BlockKey> keys, Clock::time_point now) {
  Session& session = sessions_[Key(salt, session_id)];
  session.active_turns = std::max(session.active_turns - 1, 0);
  if (!keys.empty()) {
    // Hold the new context before dropping the old, so the blocks both share
    // never pass through kNormal.
    holds_.Hold(keys, cache::Priority::kSessionPinned);
    DropContext(session);
    session.context = std::move(keys);
    session.context_held = true;
  }
  session.expires = now + ttl_;
  next_expiry_ = std::min(next_expiry_, session.expires);
}

void SessionRegistry::Pin(std::string_view salt, std::string_view session_id,
                          std::vector<cache::BlockKey> keys) {
  Session& session = sessions_[Key(salt, session_id)];
  holds_.Hold(keys, cache::Priority::kSessionPinned);
  session.pins.insert(session.pins.end(), keys.begin(), keys.end());
}

void SessionRegistry::PinUntilEvicted(absl::Span<const cache::BlockKey> keys) {
  for (const cache::BlockKey& key : keys) {
    if (pinned_until_evicted_.insert(key).second) {
      holds_.Hold({&key, 1}, cache::Priority::kSessionPinned);
    }
  }
}

void SessionRegistry::OnEvicted(const cache::BlockKey& key) {
  if (pinned_until_evicted_.erase(key) > 0) holds_.Drop({&key, 1}, cache::Priority::kSessionPinned);
}

void SessionRegistry::DropContext(Session& session) {
  if (session.context_held) holds_.Drop(session.context, cache::Priority::kSessionPinned);
  session.context.clear();
  session.context_held = false;
}

void SessionRegistry::Expire(Clock::time_point now) {
  if (now < next_expiry_) return;
  next_expiry_ = Clock::time_point::max();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    Session& session = it->second;
    if (session.active_turns > 0) {
      ++it;
      continue;
    }
    if (now < session.expires) {
      next_expiry_ = std::min(next_expiry_, session.expires);
      ++it;
      continue;
    }
    DropContext(session);
    if (session.pins.empty()) {
      sessions_.erase(it++);
    } else {
      ++it;
    }
  }
}

absl::Status SessionRegistry::Release(std::string_view salt, std::string_view session_id) {
  auto it = sessions_.find(Key(salt, session_id));
  if (it == sessions_.end()) {
    return absl::NotFoundError(absl::StrCat("session \"", std::string(session_id),
                                            "\" is not known (expired or never used)"));
  }
  Session& session = it->second;
  DropContext(session);
  holds_.Drop(session.pins, cache::Priority::kSessionPinned);
  session.pins.clear();
  // A turn still running recreates the context when it ends.
  if (session.active_turns == 0) sessions_.erase(it);
  return absl::OkStatus();
}

}  // namespace strata::scheduler
