// How one StepPlan becomes the arrays the CUDA kernels read: per batch row
// the token, position and KV slot; the single-token sequences as split-K
// decode queries; the longer spans as prefill sequences cut into attention
// tiles; one block-table row per sequence (decode queries first); and the
// rows whose logits are wanted. Host-only code: the backend packs the
// arrays into one pinned buffer and uploads them with a single copy.
//
// A graph step (every sequence one token, batch padded to a bucket) uses
// the same arrays with padding rows that read and write the arena's hidden
// scratch block, so a graph captured for the bucket serves any batch up to it.
// Pure functions; thread-compatible.
#ifndef STRATA_ENGINE_CUDA_STEP_LAYOUT_H_
#define STRATA_ENGINE_CUDA_STEP_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/step.h"
#include "kernels/attention_prefill.h"

namespace strata::engine::cuda {

struct HostStep {
  int rows = 0;                                      // batch rows, padding included
  std::vector<int32_t> token_ids, positions, slots;  // [rows]
  std::vector<int32_t> decode_rows, decode_context;  // [decode queries]
  std::vector<kernels::PrefillSequence> prefill;
  std::vector<kernels::PrefillTile> tiles;
  std::vector<int32_t> tables;  // [decode queries + prefill sequences][table_stride]
  int table_stride = 0;
  std::vector<int32_t> logit_rows;  // ascending batch rows
  std::vector<int> first_logit;     // per plan sequence: index into logit_rows, or -1
  std::vector<int> logit_count;     // per plan sequence: its rows in logit_rows
  int max_context = 0;              // longest decode query context
  // Rows given explicitly (BuildRowsStep): every sequence is a prefill
  // sequence whose rows carry their own ascending positions, which the
  // prefill kernel reads from `positions` (PrefillAttentionParams::positions).
  bool row_positions = false;
};

// One batch row of a step given row by row: which plan sequence it belongs
// to and its absolute position.
struct StepRow {
  int32_t sequence = 0;
  int32_t position = 0;
};

struct StepShape {
  int64_t block_size = 16;
  int group = 1;              // query heads per kv head
  BlockId scratch_block = 0;  // the arena's hidden block
};

// The layout of a validated plan. With pad_rows > 0 (a graph step: every
// sequence has one token and there are at most pad_rows), the batch is
// padded to pad_rows decode rows, every row wants logits, and the tables
// have exactly table_stride columns.
HostStep BuildHostStep(const StepPlan& plan, const StepShape& shape, int pad_rows = 0,
                       int table_stride = 0);

// The layout of `rows` (grouped by sequence in plan order, positions
// ascending within a sequence, every sequence with at least its last
// position): a CacheBlend step after its selection dropped rows. No decode
// queries: every sequence goes through prefill attention with per-row
// positions. Logit rows: every row of a sequence with return_logits and no
// blend, else the last row of a sequence that samples or wants logits.
HostStep BuildRowsStep(const StepPlan& plan, const std::vector<StepRow>& rows,
                       const StepShape& shape);

// Whether `plan` can run as a graph step: every sequence computes one token.
bool IsDecodeOnly(const StepPlan& plan);

// Byte offsets of HostStep's arrays in one packed buffer (each 256-byte
// aligned, as cuBLASLt and vector loads like).
struct PackedLayout {
  size_t token_ids = 0, positions = 0, slots = 0, decode_rows = 0, decode_context = 0, prefill = 0,
         tiles = 0, tables = 0, logit_rows = 0;
  size_t bytes = 0;
};

PackedLayout LayoutOf(const HostStep& step);
// Writes `step` into `dst` (layout.bytes bytes).
void PackHostStep(const HostStep& step, const PackedLayout& layout, std::byte* dst);

}  // namespace strata::engine::cuda

#endif  // STRATA_ENGINE_CUDA_STEP_LAYOUT_H_
