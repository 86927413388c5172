// What the scheduler takes in (a Request) and gives out (TokenEvents). Plain
// values with no protobuf in sight: server/ converts to and from the wire.
#ifndef STRATA_SCHEDULER_REQUEST_H_
#define STRATA_SCHEDULER_REQUEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/sampling/sampler.h"
#include "engine/sampling/sampling_params.h"

namespace strata::scheduler {

using RequestId = int64_t;
using engine::TokenId;

struct Request {
  RequestId id = 0;
  std::vector<TokenId> prompt_ids;
  engine::SamplingParams sampling;
  // Keeps tenants' prefix caches apart: requests share cached blocks only
  // when their salts are equal. Set by server/ from the authenticated
  // identity, never from the request body.
  std::string cache_salt;
};

// One generated token (or the end) of one request, in order.
struct TokenEvent {
  RequestId request_id = 0;
  std::optional<TokenId> token_id;  // absent on an event that only finishes or fails
  std::string text;                 // text now final for the client; may be empty
  std::optional<engine::SampledToken> sampled;  // logprobs when asked for
  bool finished = false;
  std::string finish_reason;  // "stop", "length", "abort" or "error" when finished
  absl::Status error;         // set when finish_reason is "error"
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_REQUEST_H_
