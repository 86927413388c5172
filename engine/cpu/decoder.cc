#include "engine/cpu/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "engine/cpu/attention.h"
#include "engine/cpu/simd.h"

namespace strata::engine::cpu {
namespace {

std::vector<float> ToFloats(const TensorView& view) {
  std::vector<float> out(static_cast<size_t>(view.NumElements()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = view.ElementAsFloat(static_cast<int64_t>(i));
  return out;
}

// Rows per parallel chunk for cheap element-wise passes.
constexpr int64_t kRowGrain = 8;

// Query vectors per attention tile. A tile's K/V blocks are read (widened,
// or packed for AMX) once for all its queries, so prefill wants big tiles;
// but each thread needs a few of them to balance causal prefill, whose later
// tiles cost more.
constexpr int64_t kMinTileQueries = 16;
constexpr int64_t kMaxTileQueries = 256;
constexpr int64_t kTilesPerThread = 4;

int64_t TileQueries(int64_t queries, int64_t kv_heads, int64_t threads) {
  const int64_t per_head =
      std::max<int64_t>(1, (kTilesPerThread * threads + kv_heads - 1) / kv_heads);
  const int64_t tile = (queries + per_head - 1) / per_head;
  return std::clamp((tile + 15) / 16 * 16, kMinTileQueries, kMaxTileQueries);
}

// Row stride (floats) for a GEMM output of `width` columns. Rows a multiple
// of 1 KiB apart put the 32 rows of an output block in a few L1 sets (lines
// 4 KiB apart share a set), and the GEMM's writes then evict each other: at
// 2k tokens the gate/up GEMM (16 KiB rows) ran a quarter slower. One cache
// line more spreads them.
int64_t PaddedStride(int64_t width) { return width % 256 == 0 ? width + 16 : width; }

// A per-thread fp32 row buffer of at least n elements.
float* RowScratch(int64_t n) {
  thread_local std::vector<float> scratch;
  if (static_cast<int64_t>(scratch.size()) < n) scratch.resize(static_cast<size_t>(n));
  return scratch.data();
}

}  // namespace

std::vector<float> RopeInverseFrequencies(const ModelConfig& config) {
  // Mirrors transformers' rope init functions, computed in fp32 like torch.
  const int64_t dim = config.head_dim;
  std::vector<float> inv(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv[static_cast<size_t>(i)] =
        1.0f / std::pow(static_cast<float>(config.rope_theta), exponent);
  }
  const RopeScaling& scaling = config.rope_scaling;
  if (scaling.type == RopeType::kLinear) {
    for (float& f : inv) f /= static_cast<float>(scaling.factor);
  } else if (scaling.type == RopeType::kLlama3) {
    const float factor = static_cast<float>(scaling.factor);
    const float low = static_cast<float>(scaling.low_freq_factor);
    const float high = static_cast<float>(scaling.high_freq_factor);
    const float old_len = static_cast<float>(scaling.original_max_position_embeddings);
    const float low_wavelen = old_len / low;
    const float high_wavelen = old_len / high;
    for (float& f : inv) {
      const float wavelen = 2.0f * std::numbers::pi_v<float> / f;
      if (wavelen > low_wavelen) {
        f = f / factor;
      } else if (!(wavelen < high_wavelen)) {  // medium band: interpolate
        const float smooth = (old_len / wavelen - low) / (high - low);
        f = (1.0f - smooth) * f / factor + smooth * f;
      }
    }
  }
  return inv;
}

absl::StatusOr<std::unique_ptr<Decoder>> Decoder::Create(const LoadedModel& model,
                                                         Precision precision,
                                                         ThreadPool* pool) {
  const DType compute_dtype = precision == Precision::kF32 ? DType::kF32 : DType::kBF16;
  const ModelConfig& c = model.config;
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("head_dim must be even, got ", c.head_dim));
  }
  if (c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_heads ", c.num_heads,
                                                   " is not a multiple of num_kv_heads ",
                                                   c.num_kv_heads));
  }
  if (static_cast<int64_t>(model.weights.layers.size()) != c.num_layers) {
    return absl::InvalidArgumentError("layer count differs from the config");
  }
  auto decoder = std::unique_ptr<Decoder>(new Decoder());
  decoder->config_ = c;
  decoder->precision_ = precision;
  decoder->weight_dtype_ = compute_dtype;
  decoder->pool_ = pool;
  decoder->gemm_.pool = pool;
  for (const LayerWeights& w : model.weights.layers) {
    Layer layer;
    layer.input_norm = ToFloats(w.input_norm);
    layer.post_attention_norm = ToFloats(w.post_attention_norm);
    if (c.qkv_bias) {
      for (const TensorView* b : {&w.q_bias, &w.k_bias, &w.v_bias}) {
        if (b->empty()) return absl::InvalidArgumentError("qkv_bias set but a bias is missing");
        std::vector<float> part = ToFloats(*b);
        layer.qkv_bias.insert(layer.qkv_bias.end(), part.begin(), part.end());
      }
    }
    if (c.qk_norm) {
      if (w.q_norm.empty() || w.k_norm.empty()) {
        return absl::InvalidArgumentError("qk_norm set but q_norm/k_norm is missing");
      }
      layer.q_norm = ToFloats(w.q_norm);
      layer.k_norm = ToFloats(w.k_norm);
    }
    auto qkv = Linear::Create({&w.q_proj, &w.k_proj, &w.v_proj}, compute_dtype);
    if (!qkv.ok()) return qkv.status();
    layer.qkv = *std::move(qkv);
    auto o = Linear::Create({&w.o_proj}, compute_dtype);
    if (!o.ok()) return o.status();
    layer.o = *std::move(o);
    auto gate_up = Linear::Create({&w.gate_proj, &w.up_proj}, compute_dtype);
    if (!gate_up.ok()) return gate_up.status();
    layer.gate_up = *std::move(gate_up);
    auto down = Linear::Create({&w.down_proj}, compute_dtype);
    if (!down.ok()) return down.status();
    layer.down = *std::move(down);
    decoder->layers_.push_back(std::move(layer));
  }
  decoder->final_norm_ = ToFloats(model.weights.final_norm);
  const TensorView& head =
      model.weights.lm_head.empty() ? model.weights.embed_tokens : model.weights.lm_head;
  auto lm_head = Linear::Create({&head}, compute_dtype);
  if (!lm_head.ok()) return lm_head.status();
  decoder->lm_head_ = *std::move(lm_head);
  decoder->tied_ = head.data == model.weights.embed_tokens.data;
  if (!decoder->tied_) {
    auto embed = Linear::Create({&model.weights.embed_tokens}, compute_dtype);
    if (!embed.ok()) return embed.status();
    decoder->embed_ = *std::move(embed);
  }
  decoder->inv_freq_ = RopeInverseFrequencies(c);
  return decoder;
}

void Decoder::Embed(const DecoderBatch& batch) {
  const int64_t hidden = config_.hidden_size;
  const Linear& table = tied_ ? lm_head_ : embed_;
  int64_t r = 0;
  for (const DecoderSequence& seq : batch.sequences) {
    for (TokenId id : seq.tokens) table.RowToFloat(id, x_.data() + hidden * r++);
  }
}

void Decoder::WriteActivations(const float* src, int64_t offset, int64_t n) {
  switch (precision_) {
    case Precision::kF32:
      std::memcpy(act_.as<float>() + offset, src, static_cast<size_t>(n) * 4);
      return;
    case Precision::kBf16:
      ConvertF32ToBf16(src, act_.as<uint16_t>() + offset, n);
      return;
    case Precision::kBf16Split:
      ConvertF32ToBf16Split(src, act_.as<uint16_t>() + offset, act_lo_.as<uint16_t>() + offset,
                            n);
      return;
  }
}

void Decoder::NormRows(const float* x, int64_t rows, const std::vector<float>& weight) {
  const int64_t n = static_cast<int64_t>(weight.size());
  const float eps = static_cast<float>(config_.rms_norm_eps);
  pool_->ParallelFor(rows, kRowGrain, [&](int64_t begin, int64_t end) {
    float* tmp = RowScratch(n);
    for (int64_t r = begin; r < end; ++r) {
      RmsNormRow(x + r * n, weight.data(), n, eps, tmp);
      WriteActivations(tmp, r * n, n);
    }
  });
}

void Decoder::RopeTables() {
  const int64_t half = config_.head_dim / 2;
  const int64_t rows = static_cast<int64_t>(rows_.size());
  rope_cos_.resize(static_cast<size_t>(rows * half));
  rope_sin_.resize(static_cast<size_t>(rows * half));
  pool_->ParallelFor(rows, kRowGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float position = static_cast<float>(rows_[static_cast<size_t>(r)].position);
      for (int64_t i = 0; i < half; ++i) {
        // fp32 angle like transformers; cos/sin of it in double then rounded.
        const float angle = position * inv_freq_[static_cast<size_t>(i)];
        rope_cos_[static_cast<size_t>(r * half + i)] =
            static_cast<float>(std::cos(static_cast<double>(angle)));
        rope_sin_[static_cast<size_t>(r * half + i)] =
            static_cast<float>(std::sin(static_cast<double>(angle)));
      }
    }
  });
}

void Decoder::RopeRow(float* heads, int64_t count, int64_t row) const {
  const int64_t d = config_.head_dim;
  const int64_t half = d / 2;
  const float* cos_v = rope_cos_.data() + row * half;
  const float* sin_v = rope_sin_.data() + row * half;
  for (int64_t h = 0; h < count; ++h) RotateHalves(heads + h * d, cos_v, sin_v, half);
}

void Decoder::QkvPostprocess(const Layer& layer) {
  const int64_t d = config_.head_dim;
  const int64_t heads = config_.num_heads, kv_heads = config_.num_kv_heads;
  const int64_t width = (heads + 2 * kv_heads) * d;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const int64_t rows = static_cast<int64_t>(rows_.size());
  pool_->ParallelFor(rows, kRowGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* row = qkv_.data() + r * qkv_stride_;
      if (!layer.qkv_bias.empty()) {
        for (int64_t i = 0; i < width; ++i) row[i] += layer.qkv_bias[static_cast<size_t>(i)];
      }
      if (!layer.q_norm.empty()) {  // Qwen3: RMSNorm over each q and k head
        for (int64_t h = 0; h < heads + kv_heads; ++h) {
          float* v = row + h * d;
          const std::vector<float>& w = h < heads ? layer.q_norm : layer.k_norm;
          float sum = 0.0f;
          for (int64_t i = 0; i < d; ++i) sum += v[i] * v[i];
          const float scale = 1.0f / std::sqrt(sum / static_cast<float>(d) + eps);
          for (int64_t i = 0; i < d; ++i) v[i] = w[static_cast<size_t>(i)] * (v[i] * scale);
        }
      }
      RopeRow(row, heads + kv_heads, r);
    }
  });
}

void Decoder::StoreKv(int64_t layer, const DecoderBatch& batch, KvArena& arena) {
  const int64_t d = config_.head_dim;
  const int64_t heads = config_.num_heads, kv_heads = config_.num_kv_heads;
  const int64_t block_size = arena.spec().block_size;
  // Rows write distinct slots, so threads may share the work: with bf16
  // chunks each row is a scatter (a 4k-token prefill of the bench model
  // writes 1.2M rows).
  pool_->ParallelFor(
      static_cast<int64_t>(rows_.size()), kRowGrain, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const Row& at = rows_[static_cast<size_t>(r)];
          const DecoderSequence& seq = batch.sequences[static_cast<size_t>(at.sequence)];
          const BlockId block = seq.block_table[static_cast<size_t>(at.position / block_size)];
          const int64_t slot = at.position % block_size;
          const float* row = qkv_.data() + r * qkv_stride_;
          for (int64_t g = 0; g < kv_heads; ++g) {
            for (int is_value = 0; is_value < 2; ++is_value) {
              arena.WriteRow(block, layer, is_value == 1, g, slot,
                             row + (heads + g + is_value * kv_heads) * d);
            }
          }
        }
      });
}

void Decoder::PlanAttention() {
  const int64_t group = config_.num_heads / config_.num_kv_heads;
  attention_work_.clear();
  // A sequence's rows are contiguous (also after a blend selection).
  const auto rows = static_cast<int64_t>(rows_.size());
  for (int64_t begin = 0; begin < rows;) {
    const int64_t sequence = rows_[static_cast<size_t>(begin)].sequence;
    int64_t end = begin + 1;
    while (end < rows && rows_[static_cast<size_t>(end)].sequence == sequence) ++end;
    const int64_t queries = (end - begin) * group;
    const int64_t kv_heads = config_.num_kv_heads;
    const int64_t tile = TileQueries(queries, kv_heads, pool_->size());
    // One kv head an item, decode included: a head's KV of a layer is one
    // stretch of the arena (kv_arena.h), which a thread streams fastest
    // alone. (Decode items of several heads, their reads interleaved, were
    // the faster way when a block's heads lay side by side.)
    for (int64_t g = 0; g < kv_heads; ++g) {
      for (int64_t first = 0; first < queries; first += tile) {
        attention_work_.push_back({sequence, g, begin, first, std::min(queries, first + tile)});
      }
    }
    begin = end;
  }
}

void Decoder::Attention(int64_t layer, const DecoderBatch& batch, const KvArena& arena) {
  const int64_t d = config_.head_dim;
  const int64_t heads = config_.num_heads, kv_heads = config_.num_kv_heads;
  const int64_t group = heads / kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  pool_->ParallelForDynamic(static_cast<int64_t>(attention_work_.size()), [&](int64_t item) {
    const AttentionWork& work = attention_work_[static_cast<size_t>(item)];
    thread_local std::vector<AttentionQuery> queries;
    queries.clear();
    for (int64_t f = work.first; f < work.last; ++f) {
      const int64_t r = work.row_begin + f / group;
      const int64_t h = work.kv_head * group + f % group;
      queries.push_back({qkv_.data() + r * qkv_stride_ + h * d,
                         rows_[static_cast<size_t>(r)].position + 1,
                         attn_.data() + r * heads * d + h * d});
    }
    AttentionTile tile;
    tile.arena = &arena;
    tile.layer = layer;
    tile.kv_head = work.kv_head;
    tile.block_table = batch.sequences[static_cast<size_t>(work.sequence)].block_table;
    tile.queries = queries;
    tile.scale = scale;
    tile.bf16_products = precision_ == Precision::kBf16;
    AttendTile(tile);
  });
}

void Decoder::SwiGlu() {
  const int64_t inter = config_.intermediate_size;
  const int64_t rows = static_cast<int64_t>(rows_.size());
  pool_->ParallelFor(rows, kRowGrain, [&](int64_t begin, int64_t end) {
    float* tmp = RowScratch(inter);
    for (int64_t r = begin; r < end; ++r) {
      const float* gate = gu_.data() + r * gu_stride_;
      SiluMul(gate, gate + inter, inter, tmp);
      WriteActivations(tmp, r * inter, inter);
    }
  });
}

std::vector<float> Decoder::Forward(const DecoderBatch& batch, KvArena& arena,
                                    std::vector<BlendOutcome>* blend_outcomes) {
  const ModelConfig& c = config_;
  rows_.clear();
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    const DecoderSequence& seq = batch.sequences[s];
    for (size_t i = 0; i < seq.tokens.size(); ++i) {
      const auto origin = static_cast<int64_t>(rows_.size());
      rows_.push_back({static_cast<int64_t>(s), seq.start_position + static_cast<int64_t>(i),
                       origin, false});
    }
  }
  int64_t rows = static_cast<int64_t>(rows_.size());
  const int64_t q_width = c.num_heads * c.head_dim;
  const int64_t qkv_width = (c.num_heads + 2 * c.num_kv_heads) * c.head_dim;
  const int64_t act_width = std::max({c.hidden_size, q_width, c.intermediate_size});
  x_.resize(static_cast<size_t>(rows * c.hidden_size));
  qkv_stride_ = PaddedStride(qkv_width);
  qkv_.resize(static_cast<size_t>(rows * qkv_stride_));
  attn_.resize(static_cast<size_t>(rows * q_width));
  gu_stride_ = PaddedStride(2 * c.intermediate_size);
  gu_.resize(static_cast<size_t>(rows * gu_stride_));
  const size_t act_elements = static_cast<size_t>(rows * act_width);
  if (act_.size() < act_elements * DTypeSize(weight_dtype_)) {
    act_ = AlignedBuffer(act_elements * DTypeSize(weight_dtype_));
  }
  if (precision_ == Precision::kBf16Split && act_lo_.size() < act_elements * 2) {
    act_lo_ = AlignedBuffer(act_elements * 2);
  }

  Embed(batch);
  RopeTables();
  StartBlend(batch);
  rows = static_cast<int64_t>(rows_.size());
  PlanAttention();
  for (int64_t l = 0; l < c.num_layers; ++l) {
    Layer& layer = layers_[static_cast<size_t>(l)];
    NormRows(x_.data(), rows, layer.input_norm);
    layer.qkv.Forward(gemm_, act_.data(), ActLo(), rows, qkv_.data(), false, qkv_stride_);
    QkvPostprocess(layer);
    // A check layer compares the fresh K/V with the placed cache before the
    // store overwrites it; every row still present gets its fresh K/V.
    const bool dropped = !blend_runs_.empty() && BlendCheck(l, batch, arena);
    StoreKv(l, batch, arena);
    if (dropped) {
      CompactRows(blend_keep_);
      rows = static_cast<int64_t>(rows_.size());
      PlanAttention();
    }
    Attention(l, batch, arena);
    pool_->ParallelFor(rows, kRowGrain, [&](int64_t begin, int64_t end) {
      WriteActivations(attn_.data() + begin * q_width, begin * q_width, (end - begin) * q_width);
    });
    layer.o.Forward(gemm_, act_.data(), ActLo(), rows, x_.data(), true);
    NormRows(x_.data(), rows, layer.post_attention_norm);
    layer.gate_up.Forward(gemm_, act_.data(), ActLo(), rows, gu_.data(), false, gu_stride_);
    SwiGlu();
    layer.down.Forward(gemm_, act_.data(), ActLo(), rows, x_.data(), true);
  }

  FinishBlend(blend_outcomes, batch.sequences.size());
  // Only the rows whose logits are wanted pay for the final norm and lm_head.
  const int64_t out_rows = static_cast<int64_t>(batch.logit_rows.size());
  std::vector<float> logits(static_cast<size_t>(out_rows * c.vocab_size));
  if (out_rows == 0) return logits;
  std::vector<float> selected(static_cast<size_t>(out_rows * c.hidden_size));
  for (int64_t i = 0; i < out_rows; ++i) {
    // Logit rows name rows as they were before any blend selection dropped
    // some; origins stay ascending, so a binary search finds the row now.
    const int64_t origin = batch.logit_rows[static_cast<size_t>(i)];
    auto found = std::lower_bound(rows_.begin(), rows_.end(), origin,
                                  [](const Row& row, int64_t o) { return row.origin < o; });
    CHECK(found != rows_.end() && found->origin == origin);
    const int64_t r = found - rows_.begin();
    std::memcpy(selected.data() + i * c.hidden_size, x_.data() + r * c.hidden_size,
                static_cast<size_t>(c.hidden_size) * 4);
  }
  NormRows(selected.data(), out_rows, final_norm_);
  lm_head_.Forward(gemm_, act_.data(), ActLo(), out_rows, logits.data(), false);
  return logits;
}

}  // namespace strata::engine::cpu
