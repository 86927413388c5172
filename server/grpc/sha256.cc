// OpenSSL's SHA-256 (libcrypto, which gRPC already links on Debian): no
// hand-written crypto in this tree.
#include "server/grpc/sha256.h"

#include <openssl/sha.h>

namespace strata::server {

Sha256Digest Sha256(std::string_view data) {
  Sha256Digest digest{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return digest;
}

}  // namespace strata::server
