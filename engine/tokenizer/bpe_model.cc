#include "engine/tokenizer/bpe_model.h"

#include <queue>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/tokenizer/json_fields.h"

namespace strata::engine {
namespace {

// Ids beyond this are a malformed file, not a vocabulary (avoids a huge
// allocation for the reverse table).
constexpr int64_t kMaxTokenId = int64_t{1} << 26;

uint64_t PairKey(TokenId left, TokenId right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

size_t Utf8Length(unsigned char lead) {
  if (lead < 0xE0) return lead < 0x80 ? 1 : 2;
  return lead < 0xF0 ? 3 : 4;
}

// A merge candidate; the queue pops the lowest rank, then the leftmost.
struct Candidate {
  int32_t rank;
  int32_t pos;
  TokenId result;
  bool operator>(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : pos > other.pos;
  }
};

}  // namespace

// One symbol of the word being merged: a doubly linked list over a vector.
struct BpeModel::Symbol {
  TokenId id;
  int32_t prev;
  int32_t next;
  bool alive;
};

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::FromJson(const nlohmann::json& json,
                                                             std::string_view key) {
  auto type = ComponentType(json, key);
  if (!type.ok()) return type.status();
  if (*type != "BPE") return UnsupportedType(JoinKey(key, "type"), "model", *type);
  if (json.contains("dropout") && !json["dropout"].is_null() &&
      !(json["dropout"].is_number() && json["dropout"].get<double>() == 0.0)) {
    return absl::UnimplementedError(
        absl::StrCat("key '", JoinKey(key, "dropout"), "': BPE dropout is not supported"));
  }
  auto model = std::unique_ptr<BpeModel>(new BpeModel());
  Options& options = model->options_;
  auto unk = OptionalString(json, "unk_token", key, "");
  auto prefix = OptionalString(json, "continuing_subword_prefix", key, "");
  auto suffix = OptionalString(json, "end_of_word_suffix", key, "");
  auto fuse_unk = OptionalBool(json, "fuse_unk", key, false);
  auto byte_fallback = OptionalBool(json, "byte_fallback", key, false);
  auto ignore_merges = OptionalBool(json, "ignore_merges", key, false);
  for (const absl::Status& status :
       {unk.status(), prefix.status(), suffix.status(), fuse_unk.status(), byte_fallback.status(),
        ignore_merges.status()}) {
    if (!status.ok()) return status;
  }
  if (json.contains("unk_token") && json["unk_token"].is_string()) options.unk_token = *unk;
  options.continuing_subword_prefix = *prefix;
  options.end_of_word_suffix = *suffix;
  options.fuse_unk = *fuse_unk;
  options.byte_fallback = *byte_fallback;
  options.ignore_merges = *ignore_merges;

  if (!json.contains("vocab")) return KeyError(JoinKey(key, "vocab"), "missing");
  if (auto status = model->LoadVocab(json["vocab"], JoinKey(key, "vocab")); !status.ok()) {
    return status;
  }
  auto merges = RequiredArray(json, "merges", key);
  if (!merges.ok()) return merges.status();
  if (auto status = model->LoadMerges(**merges, JoinKey(key, "merges")); !status.ok()) {
    return status;
  }
  if (options.unk_token) {
    model->unk_id_ = model->TokenToId(*options.unk_token);
    if (!model->unk_id_) {
      return KeyError(JoinKey(key, "unk_token"),
                      absl::StrCat("'", *options.unk_token, "' is not in the vocabulary"));
    }
  }
  for (int byte = 0; byte < 256; ++byte) {
    auto id = model->TokenToId(absl::StrFormat("<0x%02X>", byte));
    model->byte_tokens_[byte] = id.value_or(-1);
  }
  return model;
}

absl::Status BpeModel::LoadVocab(const nlohmann::json& vocab, std::string_view key) {
  if (!vocab.is_object()) {
    return KeyError(key, absl::StrCat("expected an object, got ", vocab.type_name()));
  }
  token_to_id_.reserve(vocab.size());
  TokenId max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const nlohmann::json& value = it.value();
    if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
        value.get<int64_t>() >= kMaxTokenId) {
      return KeyError(JoinKey(key, it.key()), "expected a non-negative integer id");
    }
    auto id = static_cast<TokenId>(value.get<int64_t>());
    token_to_id_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  has_token_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [token, id] : token_to_id_) {
    id_to_token_[id] = token;
    has_token_[id] = true;
  }
  return absl::OkStatus();
}

absl::Status BpeModel::LoadMerges(const nlohmann::json& merges, std::string_view key) {
  merges_.reserve(merges.size());
  const size_t prefix_length = options_.continuing_subword_prefix.size();
  for (size_t i = 0; i < merges.size(); ++i) {
    const nlohmann::json& merge = merges[i];
    std::string left, right;
    if (merge.is_string()) {  // "left right"
      const std::string& text = merge.get_ref<const std::string&>();
      size_t space = text.find(' ');
      if (space == std::string::npos) {
        return KeyError(IndexKey(key, i), absl::StrCat("merge '", text, "' has no space"));
      }
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {  // ["left", "right"]
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      return KeyError(IndexKey(key, i), "expected \"a b\" or [\"a\", \"b\"]");
    }
    auto left_id = TokenToId(left);
    auto right_id = TokenToId(right);
    if (!left_id || !right_id) {
      return KeyError(IndexKey(key, i), absl::StrCat("merge part '", left_id ? right : left,
                                                     "' is not in the vocabulary"));
    }
    std::string merged = left + right.substr(std::min(prefix_length, right.size()));
    auto merged_id = TokenToId(merged);
    if (!merged_id) {
      return KeyError(IndexKey(key, i),
                      absl::StrCat("merge result '", merged, "' is not in the vocabulary"));
    }
    // A repeated pair keeps its last rank, as the library's map does.
    merges_[PairKey(*left_id, *right_id)] = Merge{static_cast<int32_t>(i), *merged_id};
  }
  return absl::OkStatus();
}

std::optional<TokenId> BpeModel::TokenToId(std::string_view token) const {
  auto it = token_to_id_.find(absl::string_view(token.data(), token.size()));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(TokenId id) const {
  if (id < 0 || id >= id_limit() || !has_token_[id]) return nullptr;
  return &id_to_token_[id];
}

const BpeModel::Merge* BpeModel::FindMerge(TokenId left, TokenId right) const {
  auto it = merges_.find(PairKey(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::InitialSymbols(std::string_view piece, std::vector<Symbol>& symbols) const {
  auto add = [&symbols](TokenId id) { symbols.push_back({id, 0, 0, true}); };
  // A run of unknown characters waiting to become one (fused) or more unk ids.
  bool pending_unk = false;
  std::string scratch;
  for (size_t pos = 0; pos < piece.size();) {
    size_t length = Utf8Length(static_cast<unsigned char>(piece[pos]));
    bool first = pos == 0;
    bool last = pos + length >= piece.size();
    std::string_view unit = piece.substr(pos, length);
    pos += length;
    if ((!first && !options_.continuing_subword_prefix.empty()) ||
        (last && !options_.end_of_word_suffix.empty())) {
      scratch.assign(first ? "" : options_.continuing_subword_prefix);
      scratch.append(unit);
      if (last) scratch.append(options_.end_of_word_suffix);
      unit = scratch;
    }
    if (auto id = TokenToId(unit)) {
      if (pending_unk) add(*unk_id_);
      pending_unk = false;
      add(*id);
      continue;
    }
    if (options_.byte_fallback) {
      bool all_bytes = true;
      for (char c : unit) all_bytes = all_bytes && byte_tokens_[static_cast<uint8_t>(c)] >= 0;
      if (all_bytes) {
        // The library emits the bytes without first flushing a pending unk.
        for (char c : unit) add(byte_tokens_[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk && !options_.fuse_unk) add(*unk_id_);
      pending_unk = true;
    }
  }
  if (pending_unk) add(*unk_id_);
  for (size_t i = 0; i < symbols.size(); ++i) {
    symbols[i].prev = static_cast<int32_t>(i) - 1;
    symbols[i].next = i + 1 < symbols.size() ? static_cast<int32_t>(i + 1) : -1;
  }
}

void BpeModel::MergeAll(std::vector<Symbol>& symbols) const {
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* merge = FindMerge(symbols[i].id, symbols[i + 1].id)) {
      queue.push({merge->rank, static_cast<int32_t>(i), merge->result});
    }
  }
  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Stale candidate: one side has merged since it was queued.
    const Merge* merge = FindMerge(left.id, right.id);
    if (merge == nullptr || merge->result != top.result) continue;
    left.id = top.result;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* m = FindMerge(symbols[left.prev].id, left.id)) {
        queue.push({m->rank, left.prev, m->result});
      }
    }
    if (left.next >= 0) {
      if (const Merge* m = FindMerge(left.id, symbols[left.next].id)) {
        queue.push({m->rank, top.pos, m->result});
      }
    }
  }
}

void BpeModel::Tokenize(std::string_view piece, std::vector<TokenId>& ids) const {
  if (piece.empty()) return;
  if (options_.ignore_merges) {
    // Llama 3: a piece that is itself a token is never split and re-merged.
    if (auto id = TokenToId(piece)) {
      ids.push_back(*id);
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  InitialSymbols(piece, symbols);
  MergeAll(symbols);
  for (const Symbol& symbol : symbols) {
    if (symbol.alive) ids.push_back(symbol.id);
  }
}

}  // namespace strata::engine
