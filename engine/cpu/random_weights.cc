#include "engine/cpu/random_weights.h"

#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace strata::engine::cpu {
namespace {

class HeapStorage : public WeightStorage {
 public:
  std::vector<std::unique_ptr<uint16_t[]>> buffers;
};

// splitmix64: fast, seedable, and good enough for weights.
uint64_t Next(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint16_t ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

class Maker {
 public:
  Maker(HeapStorage* storage, uint64_t seed) : storage_(storage), state_(seed) {}

  // Uniform in [-a, a] with a = std * sqrt(3); or all `constant` when std == 0.
  absl::StatusOr<TensorView> Make(const std::string& name, std::vector<int64_t> shape,
                                  float stddev, float constant = 0.0f) {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    std::unique_ptr<uint16_t[]> data(new (std::nothrow) uint16_t[static_cast<size_t>(count)]);
    if (data == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat("cannot allocate random ", name));
    }
    const float a = stddev * 1.7320508f;
    for (int64_t i = 0; i < count; ++i) {
      float v = constant;
      if (stddev > 0.0f) {
        const double u = static_cast<double>(Next(state_) >> 11) * 0x1.0p-53;
        v = static_cast<float>((2.0 * u - 1.0) * a);
      }
      data[static_cast<size_t>(i)] = ToBf16(v);
    }
    TensorView view;
    view.name = name;
    view.dtype = DType::kBF16;
    view.shape = std::move(shape);
    view.data = reinterpret_cast<const std::byte*>(data.get());
    view.nbytes = static_cast<size_t>(count) * 2;
    storage_->buffers.push_back(std::move(data));
    return view;
  }

 private:
  HeapStorage* storage_;
  uint64_t state_;
};

}  // namespace

absl::StatusOr<LoadedModel> MakeRandomModel(const ModelConfig& config, uint64_t seed) {
  const ModelConfig& c = config;
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.intermediate_size <= 0 ||
      c.num_layers <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0 || c.head_dim <= 0) {
    return absl::InvalidArgumentError("random model needs positive dimensions");
  }
  auto storage = std::make_unique<HeapStorage>();
  Maker maker(storage.get(), seed);
  LoadedModel model;
  model.config = config;
  const int64_t q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  const int64_t h = c.hidden_size, inter = c.intermediate_size;
  constexpr float kStd = 0.02f;
#define STRATA_MAKE(field, ...)                        \
  do {                                                 \
    auto made = maker.Make(__VA_ARGS__);               \
    if (!made.ok()) return made.status();              \
    field = *std::move(made);                          \
  } while (0)
  STRATA_MAKE(model.weights.embed_tokens, "model.embed_tokens.weight", {c.vocab_size, h}, kStd);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    LayerWeights w;
    const std::string p = absl::StrCat("model.layers.", l, ".");
    STRATA_MAKE(w.input_norm, p + "input_layernorm.weight", {h}, 0.0f, 1.0f);
    STRATA_MAKE(w.q_proj, p + "self_attn.q_proj.weight", {q, h}, kStd);
    STRATA_MAKE(w.k_proj, p + "self_attn.k_proj.weight", {kv, h}, kStd);
    STRATA_MAKE(w.v_proj, p + "self_attn.v_proj.weight", {kv, h}, kStd);
    STRATA_MAKE(w.o_proj, p + "self_attn.o_proj.weight", {h, q}, kStd);
    if (c.qkv_bias) {
      STRATA_MAKE(w.q_bias, p + "self_attn.q_proj.bias", {q}, kStd);
      STRATA_MAKE(w.k_bias, p + "self_attn.k_proj.bias", {kv}, kStd);
      STRATA_MAKE(w.v_bias, p + "self_attn.v_proj.bias", {kv}, kStd);
    }
    if (c.qk_norm) {
      STRATA_MAKE(w.q_norm, p + "self_attn.q_norm.weight", {c.head_dim}, 0.0f, 1.0f);
      STRATA_MAKE(w.k_norm, p + "self_attn.k_norm.weight", {c.head_dim}, 0.0f, 1.0f);
    }
    STRATA_MAKE(w.post_attention_norm, p + "post_attention_layernorm.weight", {h}, 0.0f, 1.0f);
    STRATA_MAKE(w.gate_proj, p + "mlp.gate_proj.weight", {inter, h}, kStd);
    STRATA_MAKE(w.up_proj, p + "mlp.up_proj.weight", {inter, h}, kStd);
    STRATA_MAKE(w.down_proj, p + "mlp.down_proj.weight", {h, inter}, kStd);
    model.weights.layers.push_back(std::move(w));
  }
  STRATA_MAKE(model.weights.final_norm, "model.norm.weight", {h}, 0.0f, 1.0f);
  if (c.tie_word_embeddings) {
    model.weights.lm_head = model.weights.embed_tokens;
  } else {
    STRATA_MAKE(model.weights.lm_head, "lm_head.weight", {c.vocab_size, h}, kStd);
  }
#undef STRATA_MAKE
  model.weights.storage = std::move(storage);
  return model;
}

}  // namespace strata::engine::cpu
