#include "scheduler/plan_builder.h"

#include <algorithm>
#include <utility>

namespace strata::scheduler {

PlanBuilder::PlanBuilder(int64_t token_budget, std::vector<engine::SequenceId> finished_ids)
    : budget_(token_budget) {
  plan_.finished_ids = std::move(finished_ids);
}

void PlanBuilder::AddStep(engine::SequenceStep step) {
  budget_ -= std::min(static_cast<int64_t>(step.token_ids.size()), budget_);
  plan_.sequences.push_back(std::move(step));
}

void PlanBuilder::RemoveStep(engine::SequenceId id) {
  auto step = std::find_if(plan_.sequences.begin(), plan_.sequences.end(),
                           [&](const engine::SequenceStep& s) { return s.seq_id == id; });
  if (step == plan_.sequences.end()) return;
  budget_ += static_cast<int64_t>(step->token_ids.size());
  plan_.sequences.erase(step);
}

void PlanBuilder::Demote(cache::BlockId block, absl::Span<std::byte> dst) {
  plan_.block_moves.push_back(engine::BlockMove{
      .src = block, .kind = engine::BlockMoveKind::kDeviceToHost, .host_dst = dst});
}

void PlanBuilder::Promote(cache::BlockId block, absl::Span<const std::byte> bytes) {
  plan_.block_moves.push_back(engine::BlockMove{
      .dst = block, .kind = engine::BlockMoveKind::kHostToDevice, .host_src = bytes});
}

void PlanBuilder::KeepLoad(std::unique_ptr<cache::PrefixLoad> load) {
  inflight_.promotions.push_back(std::move(load));
}

void PlanBuilder::SwapOutBlock(cache::BlockId block, absl::Span<std::byte> swap) {
  plan_.block_moves.push_back(engine::BlockMove{
      .src = block, .kind = engine::BlockMoveKind::kDeviceToHost, .host_dst = swap});
}

void PlanBuilder::RecordSwapOut(RequestId id) { inflight_.swapped_out.push_back(id); }

void PlanBuilder::SwapInBlock(cache::BlockId block, absl::Span<const std::byte> swap) {
  Promote(block, swap);
}

void PlanBuilder::FreeSwapSlotAfter(int32_t slot) { inflight_.swap_in_slots.push_back(slot); }

void PlanBuilder::RecordPrefetch(PrefetchFlight flight) {
  inflight_.prefetches.push_back(std::move(flight));
}

}  // namespace strata::scheduler
