#include "scheduler/preemption_policy.h"

#include <cmath>
#include <utility>

namespace strata::scheduler {

PreemptAction ChoosePreemption(PreemptionMode mode, bool swap_available, int64_t computed_tokens,
                               int64_t block_size, int64_t free_swap_blocks,
                               const PreemptionCosts& costs) {
  if (mode == PreemptionMode::kRecompute || !swap_available || computed_tokens <= 0) {
    return PreemptAction::kRecompute;
  }
  const int64_t blocks = (computed_tokens + block_size - 1) / block_size;
  if (blocks > free_swap_blocks) return PreemptAction::kRecompute;
  if (mode == PreemptionMode::kAuto) {
    if (costs.known()) {
      const double swap_s = 2.0 * static_cast<double>(blocks) * costs.copy_s_per_block;
      const double recompute_s = static_cast<double>(computed_tokens) * costs.compute_s_per_token;
      return swap_s < recompute_s ? PreemptAction::kSwap : PreemptAction::kRecompute;
    }
    if (computed_tokens < block_size) return PreemptAction::kRecompute;
  }
  return PreemptAction::kSwap;
}

void PreemptionCostModel::ObserveStep(const engine::StepPlan& plan, double seconds) {
  int64_t tokens = 0;
  for (const engine::SequenceStep& step : plan.sequences) {
    tokens += static_cast<int64_t>(step.token_ids.size());
  }
  Observe(tokens, static_cast<int64_t>(plan.sequences.size()),
          static_cast<int64_t>(plan.block_moves.size()), seconds);
}

void PreemptionCostModel::Observe(int64_t computed_tokens, int64_t sequences, int64_t moved_blocks,
                                  double seconds) {
  if (!(seconds > 0) || (computed_tokens == 0 && moved_blocks == 0)) return;
  const double x[kFeatures] = {static_cast<double>(computed_tokens), static_cast<double>(sequences),
                               static_cast<double>(moved_blocks), 1.0};
  for (int i = 0; i < kFeatures; ++i) {
    for (int j = 0; j < kFeatures; ++j) xtx_[i][j] = kDecay * xtx_[i][j] + x[i] * x[j];
    xty_[i] = kDecay * xty_[i] + x[i] * seconds;
  }
  ++(moved_blocks > 0 ? move_steps_ : plain_steps_);
  if (move_steps_ >= kMinMoveSteps && plain_steps_ >= kMinMoveSteps) Fit();
}

void PreemptionCostModel::Fit() {
  // Gaussian elimination with partial pivoting on the normal equations,
  // slightly regularised so that a feature that never varied (all steps
  // with one sequence) leaves a solvable system.
  double m[kFeatures][kFeatures + 1];
  for (int i = 0; i < kFeatures; ++i) {
    for (int j = 0; j < kFeatures; ++j) m[i][j] = xtx_[i][j];
    m[i][i] += 1e-9 * (1 + xtx_[i][i]);
    m[i][kFeatures] = xty_[i];
  }
  for (int col = 0; col < kFeatures; ++col) {
    int pivot = col;
    for (int row = col + 1; row < kFeatures; ++row) {
      if (std::abs(m[row][col]) > std::abs(m[pivot][col])) pivot = row;
    }
    if (std::abs(m[pivot][col]) < 1e-30) return;  // keep the last fit
    std::swap(m[col], m[pivot]);
    for (int row = 0; row < kFeatures; ++row) {
      if (row == col) continue;
      const double f = m[row][col] / m[col][col];
      for (int k = col; k <= kFeatures; ++k) m[row][k] -= f * m[col][k];
    }
  }
  const double per_token = m[0][kFeatures] / m[0][0];
  const double per_block = m[2][kFeatures] / m[2][2];
  // A non-positive coefficient is noise, not a free operation: unknown.
  costs_.compute_s_per_token = per_token > 0 ? per_token : 0;
  costs_.copy_s_per_block = per_block > 0 ? per_block : 0;
}

}  // namespace strata::scheduler
