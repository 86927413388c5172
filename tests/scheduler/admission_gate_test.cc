#include "scheduler/admission_gate.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::scheduler {
namespace {

using ::testing::HasSubstr;

Request RequestOf(int prompt_len) {
  Request request{.id = 1};
  request.prompt_ids.assign(static_cast<size_t>(prompt_len), 5);
  request.sampling.max_tokens = 4;
  return request;
}

const RequestLimits kLimits{.vocab_size = 100,
                            .max_model_len = 64,
                            .max_prompt_tokens = 32,
                            .block_size = 16,
                            .num_device_blocks = 8,
                            .num_layers = 2};

TEST(AdmissionGateTest, ChecksTheRequestThenTheQueue) {
  const AdmissionGate gate(kLimits, /*max_waiting=*/3);
  EXPECT_TRUE(gate.Check(RequestOf(10), 2).ok());
  absl::Status full = gate.Check(RequestOf(10), 3);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.message()),
              HasSubstr("the waiting queue is full (3 requests, max_waiting 3)"));
  // A bad request is refused for what it is, whatever the queue.
  absl::Status too_long = gate.Check(RequestOf(40), 0);
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_long.message()), HasSubstr("max_prompt_tokens (32)"));
  Request negative = RequestOf(4);
  negative.public_prefix_tokens = -1;
  EXPECT_THAT(std::string(gate.CheckRequest(negative).message()),
              HasSubstr("public_prefix_tokens is negative"));
}

TEST(AdmissionGateTest, ZeroMaxWaitingMeansNoBound) {
  const AdmissionGate gate(kLimits, 0);
  EXPECT_TRUE(gate.CheckQueue(1000000).ok());
}

}  // namespace
}  // namespace strata::scheduler
