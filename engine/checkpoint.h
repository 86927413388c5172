// The weights of a Hugging Face model directory: either one
// `model.safetensors`, or shards listed by `model.safetensors.index.json`,
// whose `weight_map` names the shard file that holds each tensor.
#ifndef STRATA_ENGINE_CHECKPOINT_H_
#define STRATA_ENGINE_CHECKPOINT_H_

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/safetensors.h"
#include "engine/tensor_view.h"

namespace strata::engine {

inline constexpr char kSingleFileName[] = "model.safetensors";
inline constexpr char kShardIndexName[] = "model.safetensors.index.json";

// Owns the mapped files of one checkpoint. Immutable after Open: every const
// method is safe from any number of threads.
class Checkpoint {
 public:
  // Opens `dir`/model.safetensors if present, else the shard index and every
  // shard it names (each validated as in SafetensorsFile::Open). Errors:
  // NOT_FOUND when neither file exists or a listed shard is missing (naming
  // it), DATA_LOSS for an unreadable or malformed index (naming the index),
  // INVALID_ARGUMENT for a shard name that leaves the directory, plus any
  // SafetensorsFile::Open error.
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::filesystem::path& dir);

  // The named tensor. The view borrows this checkpoint's mapping. NOT_FOUND
  // naming the tensor (and the file or index consulted) when it is absent;
  // DATA_LOSS naming tensor and shard when the index points at a shard that
  // lacks it.
  absl::StatusOr<TensorView> Find(std::string_view name) const;

  // The file the tensor is (or, per the index, should be) in; for error
  // messages. For an unknown name in a sharded checkpoint, the index file.
  std::filesystem::path FileFor(std::string_view name) const;

  // Names of all tensors across all files, sorted.
  std::vector<std::string> TensorNames() const;

  const std::filesystem::path& dir() const { return dir_; }
  bool sharded() const { return sharded_; }
  // The opened files, one per shard (one for a single-file checkpoint).
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  Checkpoint() = default;
  absl::Status OpenShards();

  std::filesystem::path dir_;
  bool sharded_ = false;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  // Sharded only: tensor name -> index into files_, from the weight_map.
  std::map<std::string, size_t, std::less<>> weight_map_;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_CHECKPOINT_H_
