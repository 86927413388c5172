#include "engine/checkpoint.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace strata::engine {
namespace {

// A shard name must be a plain file inside the checkpoint directory, so an
// index cannot make Strata map arbitrary files.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

absl::StatusOr<nlohmann::json> ReadIndex(const std::filesystem::path& index_path) {
  std::ifstream in(index_path, std::ios::binary);
  if (!in) return absl::DataLossError(absl::StrCat(index_path.string(), ": cannot read"));
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::json index = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object()) {
    return absl::DataLossError(absl::StrCat(index_path.string(), ": not a valid JSON object"));
  }
  auto weight_map = index.find("weight_map");
  if (weight_map == index.end() || !weight_map->is_object()) {
    return absl::DataLossError(absl::StrCat(index_path.string(), ": lacks a 'weight_map' object"));
  }
  return index;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::filesystem::path& dir) {
  std::unique_ptr<Checkpoint> checkpoint(new Checkpoint());
  checkpoint->dir_ = dir;
  std::error_code error;
  const std::filesystem::path single = dir / kSingleFileName;
  if (std::filesystem::exists(single, error)) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(single);
    if (!file.ok()) return file.status();
    checkpoint->files_.push_back(*std::move(file));
    return checkpoint;
  }
  if (!std::filesystem::exists(dir / kShardIndexName, error)) {
    return absl::NotFoundError(
        absl::StrCat(dir.string(), ": no ", kSingleFileName, " or ", kShardIndexName));
  }
  checkpoint->sharded_ = true;
  if (absl::Status status = checkpoint->OpenShards(); !status.ok()) return status;
  return checkpoint;
}

absl::Status Checkpoint::OpenShards() {
  const std::filesystem::path index_path = dir_ / kShardIndexName;
  absl::StatusOr<nlohmann::json> index = ReadIndex(index_path);
  if (!index.ok()) return index.status();
  std::map<std::string, size_t> shard_slots;  // shard file name -> files_ slot
  for (const auto& [tensor, shard_value] : (*index)["weight_map"].items()) {
    if (!shard_value.is_string()) {
      return absl::DataLossError(absl::StrCat(index_path.string(), ": weight_map entry for '",
                                              tensor, "' is not a file name"));
    }
    const std::string shard = shard_value.get<std::string>();
    if (!IsPlainFileName(shard)) {
      return absl::InvalidArgumentError(absl::StrCat(index_path.string(), ": shard '", shard,
                                                     "' for tensor '", tensor,
                                                     "' is not a file in the directory"));
    }
    auto [slot, inserted] = shard_slots.emplace(shard, files_.size());
    if (inserted) {
      const std::filesystem::path shard_path = dir_ / shard;
      std::error_code error;
      if (!std::filesystem::exists(shard_path, error)) {
        return absl::NotFoundError(absl::StrCat(shard_path.string(), ": shard named by ",
                                                index_path.string(), " is missing"));
      }
      absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(shard_path);
      if (!file.ok()) return file.status();
      files_.push_back(*std::move(file));
    }
    weight_map_.emplace(tensor, slot->second);
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorView> Checkpoint::Find(std::string_view name_view) const {
  const std::string name(name_view);
  if (!sharded_) {
    const TensorView* view = files_.front()->Find(name);
    if (view == nullptr) {
      return absl::NotFoundError(
          absl::StrCat(files_.front()->path().string(), ": tensor '", name, "' not found"));
    }
    return *view;
  }
  auto it = weight_map_.find(name);
  if (it == weight_map_.end()) {
    return absl::NotFoundError(
        absl::StrCat((dir_ / kShardIndexName).string(), ": tensor '", name, "' not in weight_map"));
  }
  const SafetensorsFile& shard = *files_[it->second];
  const TensorView* view = shard.Find(name);
  if (view == nullptr) {
    return absl::DataLossError(absl::StrCat(shard.path().string(), ": tensor '", name,
                                            "' is missing from the shard that ", kShardIndexName,
                                            " names for it"));
  }
  return *view;
}

std::filesystem::path Checkpoint::FileFor(std::string_view name) const {
  if (!sharded_) return files_.front()->path();
  auto it = weight_map_.find(name);
  if (it == weight_map_.end()) return dir_ / kShardIndexName;
  return files_[it->second]->path();
}

std::vector<std::string> Checkpoint::TensorNames() const {
  std::vector<std::string> names;
  for (const auto& file : files_) {
    for (const TensorView& view : file->tensors()) names.push_back(view.name);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace strata::engine
