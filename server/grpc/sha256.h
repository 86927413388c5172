// SHA-256 (FIPS 180-4, computed by OpenSSL), used to compare bearer tokens in constant time: both
// sides are hashed to 32 bytes first, so the comparison's cost depends on
// neither the tokens' contents nor their lengths. Not a general crypto
// library: no streaming interface, no HMAC. Pure; thread-safe.
#ifndef STRATA_SERVER_GRPC_SHA256_H_
#define STRATA_SERVER_GRPC_SHA256_H_

#include <array>
#include <cstdint>
#include <string_view>

namespace strata::server {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(std::string_view data);

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_SHA256_H_
