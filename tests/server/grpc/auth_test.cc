#include "server/grpc/auth.h"

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "server/grpc/sha256.h"

namespace strata::server {
namespace {

std::string Hex(const Sha256Digest& digest) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t byte : digest) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 15]);
  }
  return hex;
}

TEST(Sha256Test, MatchesFipsVectors) {
  EXPECT_EQ(Hex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // 56 bytes: the padding spills into a second block.
  EXPECT_EQ(Hex(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Hex(Sha256(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(AuthenticatorTest, OffMeansAnonymousWithNoSalt) {
  absl::StatusOr<Authenticator> auth = Authenticator::Create({});
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_FALSE(auth->enabled());
  for (auto header : {std::optional<std::string_view>(), std::optional<std::string_view>("x")}) {
    absl::StatusOr<Tenant> tenant = auth->Authenticate(header);
    ASSERT_TRUE(tenant.ok()) << tenant.status();
    EXPECT_EQ(tenant->name, "");
    EXPECT_EQ(tenant->cache_salt, "");
  }
}

TEST(AuthenticatorTest, MapsTokensToTenantSalts) {
  absl::StatusOr<Authenticator> auth =
      Authenticator::Create({{"secret-a", "alice"}, {"secret-b", "bob"}});
  ASSERT_TRUE(auth.ok()) << auth.status();
  absl::StatusOr<Tenant> alice = auth->Authenticate("Bearer secret-a");
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(alice->name, "alice");
  EXPECT_EQ(alice->cache_salt, "tenant:alice");
  // The scheme is case-insensitive and surrounding spaces are tolerated.
  absl::StatusOr<Tenant> bob = auth->Authenticate("  bearer   secret-b ");
  ASSERT_TRUE(bob.ok()) << bob.status();
  EXPECT_EQ(bob->cache_salt, "tenant:bob");
}

TEST(AuthenticatorTest, RejectsMissingMalformedAndUnknownTokens) {
  absl::StatusOr<Authenticator> auth = Authenticator::Create({{"secret-a", "alice"}});
  ASSERT_TRUE(auth.ok()) << auth.status();
  for (auto header :
       {std::optional<std::string_view>(), std::optional<std::string_view>(""),
        std::optional<std::string_view>("secret-a"),
        std::optional<std::string_view>("Basic secret-a"),
        std::optional<std::string_view>("Bearer"), std::optional<std::string_view>("Bearer "),
        std::optional<std::string_view>("Bearer secret-"),
        std::optional<std::string_view>("Bearer secret-ab"),
        std::optional<std::string_view>("Bearersecret-a")}) {
    absl::StatusOr<Tenant> tenant = auth->Authenticate(header);
    EXPECT_EQ(tenant.status().code(), absl::StatusCode::kUnauthenticated)
        << (header ? *header : "<none>");
  }
}

TEST(AuthenticatorTest, OnlyTheAdminTokenIsAdminWhenAuthenticationIsOn) {
  absl::StatusOr<Authenticator> off = Authenticator::Create({});
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(off->Authenticate(std::nullopt)->admin);  // one tenant: nothing to hide
  absl::StatusOr<Authenticator> auth =
      Authenticator::Create({{"secret-a", "alice"}, {"secret-b", "admin"}}, "root-token");
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_FALSE(auth->Authenticate("Bearer secret-a")->admin);
  absl::StatusOr<Tenant> admin = auth->Authenticate("Bearer root-token");
  ASSERT_TRUE(admin.ok()) << admin.status();
  EXPECT_TRUE(admin->admin);
  // A tenant that happens to be called "admin" keeps its own salt.
  EXPECT_NE(admin->cache_salt, auth->Authenticate("Bearer secret-b")->cache_salt);
  EXPECT_FALSE(auth->Authenticate("Bearer secret-b")->admin);
  // The admin token alone turns authentication on.
  absl::StatusOr<Authenticator> admin_only = Authenticator::Create({}, "root-token");
  ASSERT_TRUE(admin_only.ok());
  EXPECT_TRUE(admin_only->enabled());
  EXPECT_EQ(admin_only->Authenticate(std::nullopt).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authenticator::Create({{"same", "alice"}}, "same").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Authenticator::Create({}, "ro ot").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AuthenticatorTest, RejectsBadConfiguration) {
  EXPECT_EQ(Authenticator::Create({{"", "alice"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Authenticator::Create({{"token", ""}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status spaced = Authenticator::Create({{"to ken", "alice"}}).status();
  EXPECT_EQ(spaced.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(spaced.message().find("auth_tokens"), absl::string_view::npos) << spaced;
}

}  // namespace
}  // namespace strata::server
