// Bearer-token authentication for the gRPC service. Each configured token
// maps to a tenant; the tenant's name becomes the cache salt of its requests
// ("tenant:<name>"), so tenants never share, or time, each other's cached KV.
//
// Tokens are compared in constant time: the presented token and every
// configured one are reduced to SHA-256 digests, and all digests are compared
// in full with no early exit, so neither a token's content nor which entry
// matched shows in the timing.
//
// Immutable after Create; thread-safe.
#ifndef STRATA_SERVER_GRPC_AUTH_H_
#define STRATA_SERVER_GRPC_AUTH_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/grpc/sha256.h"

namespace strata::server {

struct Tenant {
  std::string name;        // empty: anonymous (authentication off)
  std::string cache_salt;  // "tenant:<name>"; empty when anonymous
  // May read what all tenants share (the global cache statistics): the
  // admin token's holder, or everyone when authentication is off.
  bool admin = false;
};

class Authenticator {
 public:
  // `tokens`: bearer token -> tenant name. `admin_token` (may be empty): the
  // token of the admin tenant (name "admin", salt "admin", so never a
  // tenant's), the only one with Tenant::admin when authentication is on.
  // Both empty: authentication is off and every caller is the anonymous
  // tenant, an admin. INVALID_ARGUMENT for an empty token or tenant name, a
  // token with whitespace (it could never be sent in an authorization
  // header), or an admin token that is also a tenant's.
  static absl::StatusOr<Authenticator> Create(const std::map<std::string, std::string>& tokens,
                                              const std::string& admin_token = "");

  bool enabled() const { return !entries_.empty(); }

  // `authorization`: the value of the request's "authorization" metadata,
  // nullopt when absent. UNAUTHENTICATED (no header, not "Bearer <token>",
  // or an unknown token) when authentication is on; the anonymous tenant
  // when it is off.
  absl::StatusOr<Tenant> Authenticate(std::optional<std::string_view> authorization) const;

 private:
  struct Entry {
    Sha256Digest digest;
    Tenant tenant;
  };
  std::vector<Entry> entries_;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_AUTH_H_
