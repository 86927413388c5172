// The one parameterised decoder-only transformer of the CPU backend: Llama,
// Mistral, Qwen2 (qkv bias), Qwen3 (per-head q/k RMSNorm), with GQA/MQA/MHA,
// explicit head_dim, tied embeddings and RoPE (default, linear, llama3).
//
// One Forward call runs a batch of sequences at arbitrary positions: the token
// rows of all sequences are concatenated for the GEMMs, and attention reads
// each sequence's K/V through its block table in the paged KV arena. Every
// row's arithmetic is independent of which other rows share the batch: the
// GEMM (engine/cpu/gemm.h) fixes each output's summation order whatever the
// batch size, so logits are bitwise the same however a prompt is chunked.
#ifndef STRATA_ENGINE_CPU_DECODER_H_
#define STRATA_ENGINE_CPU_DECODER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/backend.h"
#include "engine/cpu/kv_arena.h"
#include "engine/cpu/linear.h"
#include "engine/cpu/thread_pool.h"
#include "engine/model_weights.h"
#include "engine/step.h"

namespace strata::engine::cpu {

// A sequence's span in a batch. Borrowed pointers, valid for the call. The
// caller has validated ids, positions and the table (CpuBackend does).
struct DecoderSequence {
  absl::Span<const TokenId> tokens;
  int64_t start_position = 0;
  absl::Span<const BlockId> block_table;
  // A blend step (engine/step.h): the chunks' K/V are already placed in the
  // blocks (PlaceChunk); Forward selects and recomputes. Only the span's last
  // row may be a logit row.
  const BlendSpec* blend = nullptr;
};

// What a blend sequence's forward pass did with its chunk tokens.
struct BlendOutcome {
  int64_t reused_tokens = 0;      // placed K/V kept after the last check layer
  int64_t recomputed_tokens = 0;  // recomputed through every layer
};

struct DecoderBatch {
  std::vector<DecoderSequence> sequences;
  // Indices into the concatenated rows whose logits are wanted, ascending.
  std::vector<int64_t> logit_rows;
};

// Not thread-safe: one Forward at a time (the engine thread). Uses `pool`
// internally.
class Decoder {
 public:
  // Converts the weights for `precision` (bf16, or fp32 for kF32) and copies
  // what it needs; `model` may be destroyed afterwards. INVALID_ARGUMENT for
  // unusable shapes (odd head_dim, heads not a multiple of kv heads, ...).
  static absl::StatusOr<std::unique_ptr<Decoder>> Create(const LoadedModel& model,
                                                         Precision precision, ThreadPool* pool);

  const ModelConfig& config() const { return config_; }

  // Writes the batch's K/V into `arena` and returns fp32 logits
  // [logit_rows.size(), vocab], row-major. `blend_outcomes`, when given, gets
  // one entry per sequence (zeros for sequences without blend).
  std::vector<float> Forward(const DecoderBatch& batch, KvArena& arena,
                             std::vector<BlendOutcome>* blend_outcomes = nullptr);

  // HF's inverse RoPE frequencies of this model ([head_dim / 2]).
  absl::Span<const float> inv_freq() const { return inv_freq_; }

 private:
  struct Layer {
    std::vector<float> input_norm, post_attention_norm;
    std::vector<float> qkv_bias;  // empty unless qkv_bias
    std::vector<float> q_norm, k_norm;  // empty unless qk_norm
    Linear qkv, o, gate_up, down;
  };
  struct Row {
    int64_t sequence;  // index into batch.sequences
    int64_t position;
    int64_t origin;  // index among the batch's rows before any blend selection
    bool chunk;      // a cached chunk token of a blend sequence
  };
  // A blend sequence's selection state during one Forward.
  struct BlendRun {
    int64_t sequence;
    const BlendSpec* spec;
    int64_t chunk_total;     // chunk tokens in the span
    size_t next_check = 0;   // index into spec->check_layers
    int64_t last_origin;     // the span's last row: always kept
  };
  // One attention tile: query vectors [first, last) of a sequence's rows x
  // the kv head's query heads, flattened as row * group + head in group.
  struct AttentionWork {
    int64_t sequence;
    int64_t kv_head;
    int64_t row_begin;  // the sequence's first row in the batch
    int64_t first, last;
  };

  Decoder() = default;
  void Embed(const DecoderBatch& batch);
  // act_ rows = RMSNorm(x rows) * weight.
  void NormRows(const float* x, int64_t rows, const std::vector<float>& weight);
  // Writes n fp32 values as GEMM input at element `offset` of act_ (and of
  // act_lo_ for split precision).
  void WriteActivations(const float* src, int64_t offset, int64_t n);
  const uint16_t* ActLo() const {
    return precision_ == Precision::kBf16Split ? act_lo_.as<uint16_t>() : nullptr;
  }
  void QkvPostprocess(const Layer& layer);
  void StoreKv(int64_t layer, const DecoderBatch& batch, KvArena& arena);
  // Splits the rows' attention into tiles (the same for every layer until a
  // blend selection drops rows).
  void PlanAttention();
  // Blend: sets up blend_runs_ and row flags; drops chunk rows up front for
  // runs without check layers (naive concatenation).
  void StartBlend(const DecoderBatch& batch);
  // Blend, at layer l after the q/k/v of the rows are formed and before they
  // are stored: measures the deviations of every run checking at l and
  // drops its chunk rows that are not kept. True if any row was dropped.
  bool BlendCheck(int64_t layer, const DecoderBatch& batch, const KvArena& arena);
  // Keeps the rows whose flag is set, in order (rows_, x_, qkv_, RoPE).
  void CompactRows(const std::vector<char>& keep);
  void FinishBlend(std::vector<BlendOutcome>* outcomes, size_t num_sequences) const;
  void Attention(int64_t layer, const DecoderBatch& batch, const KvArena& arena);
  void SwiGlu();
  // cos/sin of every row's RoPE angles, computed once per Forward and shared
  // by all layers.
  void RopeTables();
  // Rotates `count` heads of batch row `row` in place.
  void RopeRow(float* heads, int64_t count, int64_t row) const;

  ModelConfig config_;
  Precision precision_ = Precision::kBf16Split;
  DType weight_dtype_ = DType::kBF16;
  ThreadPool* pool_ = nullptr;  // borrowed
  GemmContext gemm_;
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
  Linear lm_head_;
  // Embedding rows in compute dtype: lm_head_'s matrix when tied, else this.
  Linear embed_;
  bool tied_ = false;
  std::vector<float> inv_freq_;   // [head_dim / 2]

  // Scratch, reused across calls.
  std::vector<Row> rows_;
  std::vector<BlendRun> blend_runs_;
  std::vector<char> blend_keep_;  // per row: kept by the last blend check
  std::vector<AttentionWork> attention_work_;
  std::vector<float> rope_cos_, rope_sin_;  // [rows, head_dim / 2]
  ActivationVector x_;      // [rows, hidden] residual stream
  ActivationVector qkv_;    // [rows, (heads + 2 kv_heads) * head_dim], rows qkv_stride_ apart
  int64_t qkv_stride_ = 0;
  ActivationVector attn_;   // [rows, heads * head_dim]
  ActivationVector gu_;     // [rows, 2 * intermediate], rows gu_stride_ apart
  int64_t gu_stride_ = 0;
  AlignedBuffer act_;         // GEMM input in weight dtype, largest width
  AlignedBuffer act_lo_;      // bf16 residuals of act_ (kBf16Split only)
};

// HF's inverse RoPE frequencies for `config` (rope_scaling applied), fp32.
std::vector<float> RopeInverseFrequencies(const ModelConfig& config);

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_DECODER_H_
