#include "engine/sampling/stop_checker.h"

#include <algorithm>
#include <cstddef>
#include <deque>
#include <utility>

#include "common/check.h"

namespace strata::engine {

std::string_view FinishReason::Name() const {
  return kind == FinishKind::kLength ? "length" : "stop";
}

StopChecker::StopChecker(const SamplingParams& params, absl::Span<const TokenId> eos_token_ids)
    : eos_token_ids_(eos_token_ids.begin(), eos_token_ids.end()),
      stop_token_ids_(params.stop_token_ids),
      max_tokens_(params.max_tokens),
      ignore_eos_(params.ignore_eos),
      nodes_(1) {
  for (const std::string& stop : params.stop_strings) {
    // Empty strings would match everywhere; duplicates add nothing.
    if (stop.empty()) continue;
    if (std::find(stop_strings_.begin(), stop_strings_.end(), stop) != stop_strings_.end()) {
      continue;
    }
    stop_strings_.push_back(stop);
    AddStopString(static_cast<int32_t>(stop_strings_.size() - 1));
  }
  BuildFailureLinks();
}

void StopChecker::AddStopString(int32_t index) {
  int32_t node = 0;
  for (char c : stop_strings_[static_cast<size_t>(index)]) {
    const auto byte = static_cast<unsigned char>(c);
    int32_t next = Child(node, byte);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_.push_back({.depth = nodes_[static_cast<size_t>(node)].depth + 1});
      nodes_[static_cast<size_t>(node)].children.emplace_back(byte, next);
    }
    node = next;
  }
  nodes_[static_cast<size_t>(node)].match = index;
}

// Breadth-first, so a node's failure target (shallower) is complete before
// the node is. A node's own stop string is the longest one ending there;
// otherwise it inherits the longest from its failure target.
void StopChecker::BuildFailureLinks() {
  std::deque<int32_t> queue;
  for (const auto& [byte, child] : nodes_[0].children) queue.push_back(child);
  while (!queue.empty()) {
    const int32_t node = queue.front();
    queue.pop_front();
    for (const auto& [byte, child] : nodes_[static_cast<size_t>(node)].children) {
      Node& c = nodes_[static_cast<size_t>(child)];
      c.fail = Step(nodes_[static_cast<size_t>(node)].fail, byte);
      if (c.match < 0) c.match = nodes_[static_cast<size_t>(c.fail)].match;
      queue.push_back(child);
    }
  }
}

int32_t StopChecker::Child(int32_t node, unsigned char byte) const {
  for (const auto& [b, child] : nodes_[static_cast<size_t>(node)].children) {
    if (b == byte) return child;
  }
  return -1;
}

// Follows failure links until `byte` extends a prefix. Amortized O(1): depth
// grows by at most one per byte and each failure step shrinks it.
int32_t StopChecker::Step(int32_t node, unsigned char byte) const {
  while (true) {
    const int32_t next = Child(node, byte);
    if (next >= 0) return next;
    if (node == 0) return 0;
    node = nodes_[static_cast<size_t>(node)].fail;
  }
}

bool StopChecker::IsStopToken(TokenId id, bool* eos) const {
  *eos = !ignore_eos_ &&
         std::find(eos_token_ids_.begin(), eos_token_ids_.end(), id) != eos_token_ids_.end();
  return *eos ||
         std::find(stop_token_ids_.begin(), stop_token_ids_.end(), id) != stop_token_ids_.end();
}

StopUpdate StopChecker::Finish(std::string text, FinishReason reason) {
  finished_ = true;
  held_.clear();
  state_ = 0;
  return {.text_to_emit = std::move(text), .finish = std::move(reason)};
}

StopUpdate StopChecker::Push(TokenId id, std::string_view new_text) {
  CHECK(!finished_);
  ++num_tokens_;
  bool eos = false;
  if (IsStopToken(id, &eos)) {
    // Held text was only possibly a stop string; the sequence ends, so it is output.
    return Finish(std::move(held_), {.stop_token_id = id, .eos = eos});
  }
  const size_t old_size = held_.size();
  held_.append(new_text);
  for (size_t i = old_size; i < held_.size(); ++i) {
    state_ = Step(state_, static_cast<unsigned char>(held_[i]));
    const int32_t match = nodes_[static_cast<size_t>(state_)].match;
    if (match < 0) continue;
    const std::string& stop = stop_strings_[static_cast<size_t>(match)];
    // held_ always covers the automaton's depth, so the match lies inside it.
    const size_t match_start = i + 1 - stop.size();
    return Finish(held_.substr(0, match_start), {.stop_string = stop});
  }
  if (num_tokens_ >= max_tokens_) {
    return Finish(std::move(held_), {.kind = FinishKind::kLength});
  }
  // Emit everything except the longest suffix that could still begin a stop string.
  const auto keep = static_cast<size_t>(nodes_[static_cast<size_t>(state_)].depth);
  CHECK_LE(keep, held_.size());
  StopUpdate update;
  update.text_to_emit = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return update;
}

std::string StopChecker::Flush() {
  finished_ = true;
  state_ = 0;
  std::string text = std::move(held_);
  held_.clear();
  return text;
}

}  // namespace strata::engine
