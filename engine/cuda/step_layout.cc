#include "engine/cuda/step_layout.h"

#include <algorithm>
#include <cstring>

#include "common/check.h"

namespace strata::engine::cuda {
namespace {

size_t Align(size_t offset) { return (offset + 255) / 256 * 256; }

template <typename T>
void Put(const std::vector<T>& values, size_t offset, std::byte* dst) {
  if (!values.empty()) std::memcpy(dst + offset, values.data(), values.size() * sizeof(T));
}

}  // namespace

bool IsDecodeOnly(const StepPlan& plan) {
  return std::all_of(plan.sequences.begin(), plan.sequences.end(),
                     [](const SequenceStep& s) { return s.token_ids.size() == 1; });
}

HostStep BuildHostStep(const StepPlan& plan, const StepShape& shape, int pad_rows,
                       int table_stride) {
  HostStep step;
  const int64_t bs = shape.block_size;
  // Each sequence's first batch row, and the widest block table needed.
  std::vector<int> sequence_row(plan.sequences.size());
  int rows = 0;
  for (size_t s = 0; s < plan.sequences.size(); ++s) {
    const SequenceStep& seq = plan.sequences[s];
    sequence_row[s] = rows;
    rows += static_cast<int>(seq.token_ids.size());
    const int64_t needed =
        (seq.start_position + static_cast<int64_t>(seq.token_ids.size()) + bs - 1) / bs;
    step.table_stride = std::max(step.table_stride, static_cast<int>(needed));
  }
  if (pad_rows > 0) {
    CHECK(IsDecodeOnly(plan) && static_cast<int>(plan.sequences.size()) <= pad_rows);
    CHECK(step.table_stride <= table_stride);
    step.table_stride = table_stride;
  }
  step.rows = std::max(rows, pad_rows);
  const int stride = std::max(step.table_stride, 1);
  step.table_stride = stride;
  for (size_t s = 0; s < plan.sequences.size(); ++s) {
    const SequenceStep& seq = plan.sequences[s];
    for (size_t i = 0; i < seq.token_ids.size(); ++i) {
      const int64_t pos = seq.start_position + static_cast<int64_t>(i);
      step.token_ids.push_back(seq.token_ids[i]);
      step.positions.push_back(static_cast<int32_t>(pos));
      step.slots.push_back(
          static_cast<int32_t>(seq.block_table[static_cast<size_t>(pos / bs)] * bs + pos % bs));
    }
  }
  const auto add_table = [&](const std::vector<BlockId>& table, int64_t end) {
    const int64_t needed = (end + bs - 1) / bs;
    for (int b = 0; b < stride; ++b) {
      step.tables.push_back(b < needed ? table[static_cast<size_t>(b)] : shape.scratch_block);
    }
  };
  // Table rows: decode queries first (the decode kernel indexes tables by
  // query), then prefill sequences.
  for (size_t s = 0; s < plan.sequences.size(); ++s) {
    const SequenceStep& seq = plan.sequences[s];
    if (seq.token_ids.size() != 1) continue;
    const int context = static_cast<int>(seq.start_position) + 1;
    step.decode_rows.push_back(sequence_row[s]);
    step.decode_context.push_back(context);
    step.max_context = std::max(step.max_context, context);
    add_table(seq.block_table, context);
  }
  const int decode_count = static_cast<int>(step.decode_rows.size());
  for (size_t s = 0; s < plan.sequences.size(); ++s) {
    const SequenceStep& seq = plan.sequences[s];
    if (seq.token_ids.size() == 1) continue;
    kernels::PrefillSequence p;
    p.first_row = sequence_row[s];
    p.num_tokens = static_cast<int32_t>(seq.token_ids.size());
    p.start_position = static_cast<int32_t>(seq.start_position);
    p.table = decode_count + static_cast<int32_t>(step.prefill.size());
    step.prefill.push_back(p);
    add_table(seq.block_table, seq.start_position + p.num_tokens);
  }
  step.tiles = kernels::MakePrefillTiles(step.prefill, shape.group);
  // Padding rows: token 0 at position 0, written to and read from the
  // scratch block, logits computed and ignored.
  for (int r = rows; r < step.rows; ++r) {
    step.token_ids.push_back(0);
    step.positions.push_back(0);
    step.slots.push_back(static_cast<int32_t>(shape.scratch_block * bs));
    step.decode_rows.push_back(r);
    step.decode_context.push_back(1);
    for (int b = 0; b < stride; ++b) step.tables.push_back(shape.scratch_block);
  }
  step.first_logit.assign(plan.sequences.size(), -1);
  step.logit_count.assign(plan.sequences.size(), 0);
  for (size_t s = 0; s < plan.sequences.size(); ++s) {
    const SequenceStep& seq = plan.sequences[s];
    const int n = static_cast<int>(seq.token_ids.size());
    if (pad_rows > 0) {
      step.first_logit[s] = sequence_row[s];  // every row's logits, in row order
      step.logit_count[s] = 1;
      continue;
    }
    if (!seq.return_logits && !seq.sample) continue;
    step.first_logit[s] = static_cast<int>(step.logit_rows.size());
    step.logit_count[s] = seq.return_logits ? n : 1;
    for (int i = seq.return_logits ? 0 : n - 1; i < n; ++i) {
      step.logit_rows.push_back(sequence_row[s] + i);
    }
  }
  if (pad_rows > 0) {
    for (int r = 0; r < step.rows; ++r) step.logit_rows.push_back(r);
  }
  return step;
}

HostStep BuildRowsStep(const StepPlan& plan, const std::vector<StepRow>& rows,
                       const StepShape& shape) {
  HostStep step;
  const int64_t bs = shape.block_size;
  step.rows = static_cast<int>(rows.size());
  step.row_positions = true;
  step.first_logit.assign(plan.sequences.size(), -1);
  step.logit_count.assign(plan.sequences.size(), 0);
  for (const StepRow& row : rows) {
    const SequenceStep& seq = plan.sequences[static_cast<size_t>(row.sequence)];
    step.token_ids.push_back(seq.token_ids[static_cast<size_t>(row.position - seq.start_position)]);
    step.positions.push_back(row.position);
    step.slots.push_back(static_cast<int32_t>(
        seq.block_table[static_cast<size_t>(row.position / bs)] * bs + row.position % bs));
  }
  // One prefill sequence (and table row) per run of rows of one sequence.
  for (int begin = 0; begin < step.rows;) {
    const int32_t s = rows[static_cast<size_t>(begin)].sequence;
    int end = begin + 1;
    while (end < step.rows && rows[static_cast<size_t>(end)].sequence == s) ++end;
    const SequenceStep& seq = plan.sequences[static_cast<size_t>(s)];
    kernels::PrefillSequence p;
    p.first_row = begin;
    p.num_tokens = end - begin;
    p.start_position = rows[static_cast<size_t>(begin)].position;  // unused with row positions
    p.table = static_cast<int32_t>(step.prefill.size());
    step.prefill.push_back(p);
    const int64_t needed = (rows[static_cast<size_t>(end - 1)].position + 1 + bs - 1) / bs;
    step.table_stride = std::max(step.table_stride, static_cast<int>(needed));
    if (seq.return_logits || seq.sample) {
      const int from = seq.return_logits && !seq.blend.has_value() ? begin : end - 1;
      step.first_logit[static_cast<size_t>(s)] = static_cast<int>(step.logit_rows.size());
      step.logit_count[static_cast<size_t>(s)] = end - from;
      for (int r = from; r < end; ++r) step.logit_rows.push_back(r);
    }
    begin = end;
  }
  step.table_stride = std::max(step.table_stride, 1);
  for (const kernels::PrefillSequence& p : step.prefill) {
    const SequenceStep& seq =
        plan.sequences[static_cast<size_t>(rows[static_cast<size_t>(p.first_row)].sequence)];
    const int64_t end = rows[static_cast<size_t>(p.first_row + p.num_tokens - 1)].position + 1;
    const int64_t needed = (end + bs - 1) / bs;
    for (int b = 0; b < step.table_stride; ++b) {
      step.tables.push_back(b < needed ? seq.block_table[static_cast<size_t>(b)]
                                       : shape.scratch_block);
    }
  }
  step.tiles = kernels::MakePrefillTiles(step.prefill, shape.group, step.positions);
  return step;
}

PackedLayout LayoutOf(const HostStep& step) {
  PackedLayout layout;
  size_t offset = 0;
  const auto reserve = [&](size_t* field, size_t bytes) {
    *field = offset;
    offset = Align(offset + bytes);
  };
  reserve(&layout.token_ids, step.token_ids.size() * 4);
  reserve(&layout.positions, step.positions.size() * 4);
  reserve(&layout.slots, step.slots.size() * 4);
  reserve(&layout.decode_rows, step.decode_rows.size() * 4);
  reserve(&layout.decode_context, step.decode_context.size() * 4);
  reserve(&layout.prefill, step.prefill.size() * sizeof(kernels::PrefillSequence));
  reserve(&layout.tiles, step.tiles.size() * sizeof(kernels::PrefillTile));
  reserve(&layout.tables, step.tables.size() * 4);
  reserve(&layout.logit_rows, step.logit_rows.size() * 4);
  layout.bytes = std::max<size_t>(offset, 256);
  return layout;
}

void PackHostStep(const HostStep& step, const PackedLayout& layout, std::byte* dst) {
  Put(step.token_ids, layout.token_ids, dst);
  Put(step.positions, layout.positions, dst);
  Put(step.slots, layout.slots, dst);
  Put(step.decode_rows, layout.decode_rows, dst);
  Put(step.decode_context, layout.decode_context, dst);
  Put(step.prefill, layout.prefill, dst);
  Put(step.tiles, layout.tiles, dst);
  Put(step.tables, layout.tables, dst);
  Put(step.logit_rows, layout.logit_rows, dst);
}

}  // namespace strata::engine::cuda
