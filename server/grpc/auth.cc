#include "server/grpc/auth.h"

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace strata::server {
namespace {

constexpr std::string_view kBearer = "bearer";

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view StripLeadingSpace(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  return text;
}

std::string_view StripSpace(std::string_view text) {
  text = StripLeadingSpace(text);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) return false;
  }
  return true;
}

// 1 when the digests are equal, 0 otherwise, touching every byte.
size_t DigestsEqual(const Sha256Digest& a, const Sha256Digest& b) {
  uint32_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<uint32_t>(a[i] ^ b[i]);
  // diff - 1 underflows (sets bit 8) only when diff == 0.
  return ((diff - 1) >> 8) & 1;
}

}  // namespace

absl::StatusOr<Authenticator> Authenticator::Create(
    const std::map<std::string, std::string>& tokens, const std::string& admin_token) {
  Authenticator auth;
  if (!admin_token.empty()) {
    for (char c : admin_token) {
      if (IsSpace(c)) return absl::InvalidArgumentError("admin_token: contains whitespace");
    }
    if (tokens.count(admin_token) != 0) {
      return absl::InvalidArgumentError("admin_token: is also a tenant's token");
    }
    auth.entries_.push_back(
        Entry{.digest = Sha256(admin_token),
              .tenant = {.name = "admin", .cache_salt = "admin", .admin = true}});
  }
  for (const auto& [token, tenant] : tokens) {
    if (token.empty()) return absl::InvalidArgumentError("auth_tokens: a token is empty");
    if (tenant.empty()) {
      return absl::InvalidArgumentError("auth_tokens: a token has an empty tenant name");
    }
    for (char c : token) {
      if (IsSpace(c)) {
        return absl::InvalidArgumentError(
            absl::StrCat("auth_tokens: the token of tenant \"", tenant, "\" contains whitespace"));
      }
    }
    auth.entries_.push_back(
        Entry{.digest = Sha256(token),
              .tenant = {.name = tenant, .cache_salt = absl::StrCat("tenant:", tenant)}});
  }
  return auth;
}

absl::StatusOr<Tenant> Authenticator::Authenticate(
    std::optional<std::string_view> authorization) const {
  if (!enabled()) return Tenant{.admin = true};
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError("missing \"authorization: Bearer <token>\" metadata");
  }
  std::string_view header = StripSpace(*authorization);
  // RFC 6750: the scheme is case-insensitive, one or more spaces follow it.
  if (header.size() <= kBearer.size() ||
      !EqualsIgnoreCase(header.substr(0, kBearer.size()), kBearer) ||
      header[kBearer.size()] != ' ') {
    return absl::UnauthenticatedError("authorization metadata is not \"Bearer <token>\"");
  }
  std::string_view token = StripLeadingSpace(header.substr(kBearer.size()));
  const Sha256Digest presented = Sha256(token);
  // Every entry is compared in full; the index of the match (tokens are
  // distinct map keys, so at most one) is accumulated without branching.
  size_t match = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    match |= DigestsEqual(presented, entries_[i].digest) * (i + 1);
  }
  if (match == 0) return absl::UnauthenticatedError("unknown bearer token");
  return entries_[match - 1].tenant;
}

}  // namespace strata::server
