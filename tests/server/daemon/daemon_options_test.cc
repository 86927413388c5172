#include "server/daemon/daemon_options.h"

#include "gtest/gtest.h"
#include "server/daemon/daemon.h"
#include "server/daemon/random_model.h"

namespace strata::server {
namespace {

TEST(ServingOptionsFromConfigTest, MapsEngineAndCacheSections) {
  DaemonConfig config;
  config.engine.backend = "cpu";
  config.engine.threads = 3;
  config.engine.precision = "bf16";
  config.engine.kv_dtype = "f32";
  config.cache.block_size = 32;
  config.cache.host_bytes = 1 << 20;
  absl::StatusOr<ServingOptions> options = ServingOptionsFromConfig(config, {"cpu"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->backend, "cpu");
  EXPECT_EQ(options->backend_options.threads, 3);
  EXPECT_EQ(options->backend_options.precision, engine::Precision::kBf16);
  EXPECT_EQ(options->backend_options.kv_dtype, engine::DType::kF32);
  EXPECT_EQ(options->cache.block_size, 32);
  EXPECT_EQ(options->cache.host_bytes, uint64_t{1} << 20);
}

// The benchmarks of the serving path run in kDefaultServingPrecision: it
// must be what a default config serves in.
TEST(ServingOptionsFromConfigTest, TheDefaultConfigServesInTheDefaultServingPrecision) {
  absl::StatusOr<ServingOptions> options = ServingOptionsFromConfig(DaemonConfig{}, {"cpu"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->backend_options.precision, kDefaultServingPrecision);
}

TEST(ServingOptionsFromConfigTest, AutoPrefersCudaWhenBuilt) {
  DaemonConfig config;
  config.engine.backend = "auto";
  EXPECT_EQ(ServingOptionsFromConfig(config, {"cpu"})->backend, "cpu");
  EXPECT_EQ(ServingOptionsFromConfig(config, {"cpu", "cuda"})->backend, "cuda");
}

TEST(ServingOptionsFromConfigTest, UnbuiltBackendAndBadNamesNameTheKey) {
  DaemonConfig config;
  config.engine.backend = "cuda";
  absl::StatusOr<ServingOptions> options = ServingOptionsFromConfig(config, {"cpu"});
  EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(options.status().message().find("engine.backend"), std::string::npos);
  config.engine.backend = "cpu";
  config.engine.precision = "f16";
  EXPECT_NE(ServingOptionsFromConfig(config, {"cpu"}).status().message().find("engine.precision"),
            std::string::npos);
}

TEST(EngineServiceOptionsFromConfigTest, MapsTheSchedulerSectionOverTheModelsOptions) {
  DaemonConfig config;
  config.scheduler.max_tokens_per_step = 256;
  config.scheduler.max_running = 8;
  config.scheduler.max_waiting = 100;
  config.scheduler.max_prompt_tokens = 1000;
  config.scheduler.policy = "fcfs";
  config.scheduler.prefix_cache = false;
  config.scheduler.max_queue_delay_ms = 1500;
  config.scheduler.session_ttl_ms = 60000;
  config.scheduler.preemption = "recompute";
  config.scheduler.yield_to_new_after_tokens = 9;
  scheduler::SchedulerOptions model;
  model.block_size = 16;
  model.num_blocks = 77;
  model.vocab_size = 512;
  absl::StatusOr<scheduler::EngineServiceOptions> options =
      EngineServiceOptionsFromConfig(config, model);
  ASSERT_TRUE(options.ok()) << options.status();
  const scheduler::SchedulerOptions& s = options->scheduler;
  EXPECT_EQ(s.num_blocks, 77);  // the model's own options carry over
  EXPECT_EQ(s.vocab_size, 512);
  EXPECT_EQ(s.max_batch_tokens, 256);
  EXPECT_EQ(s.max_running, 8);
  EXPECT_EQ(s.max_waiting, 100);
  EXPECT_EQ(s.policy, scheduler::SchedulingPolicy::kFcfs);
  EXPECT_FALSE(s.enable_prefix_cache);
  EXPECT_EQ(s.max_queue_delay, std::chrono::milliseconds(1500));
  EXPECT_EQ(s.session_ttl, std::chrono::milliseconds(60000));
  EXPECT_EQ(s.preemption, scheduler::PreemptionMode::kRecompute);
  EXPECT_EQ(s.yield_to_new_after_tokens, 9);
  EXPECT_EQ(options->max_prompt_tokens, 1000);

  config.scheduler.policy = "lifo";
  EXPECT_NE(
      EngineServiceOptionsFromConfig(config, model).status().message().find("scheduler.policy"),
      std::string::npos);
}

TEST(GrpcOptionsFromConfigTest, MapsServerAuthAndTls) {
  DaemonConfig config;
  config.server.listen = "0.0.0.0:1234";
  config.server.max_concurrent_streams = 7;
  config.server.max_message_bytes = 1 << 20;
  config.auth.tokens = {{"t1", "alice"}};
  config.auth.shared_prefix = "You are helpful.";
  config.tls.cert_file = "c.pem";
  config.tls.key_file = "k.pem";
  const GrpcServerOptions options = GrpcOptionsFromConfig(config);
  EXPECT_EQ(options.listen, "0.0.0.0:1234");
  EXPECT_EQ(options.max_concurrent_streams, 7);
  EXPECT_EQ(options.max_message_bytes, 1 << 20);
  EXPECT_EQ(options.auth_tokens.at("t1"), "alice");
  EXPECT_EQ(options.shared_prefix, "You are helpful.");
  EXPECT_EQ(options.tls_cert_file, "c.pem");
  EXPECT_EQ(options.tls_key_file, "k.pem");
}

TEST(BoundAddressTest, ReplacesThePort) {
  EXPECT_EQ(BoundAddress("127.0.0.1:0", 4321), "127.0.0.1:4321");
  EXPECT_EQ(BoundAddress("[::1]:0", 80), "[::1]:80");
  EXPECT_EQ(BoundAddress("0.0.0.0:50051", 50051), "0.0.0.0:50051");
}

TEST(NumberTokenizerTest, TextOfIdsRoundTrips) {
  const NumberTokenizer tokenizer(1000);
  absl::StatusOr<std::string> text = tokenizer.Decode({5, 999, 0}, false);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, " 5 999 0");
  absl::StatusOr<std::vector<engine::TokenId>> ids = tokenizer.Encode(*text, true);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<engine::TokenId>{5, 999, 0}));
  EXPECT_EQ(tokenizer.Encode("5 1000", true).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tokenizer.Encode("5 fish", true).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tokenizer.IdToToken(7), "7");
  EXPECT_EQ(tokenizer.TokenToId("-1"), std::nullopt);
}

TEST(LoadRandomServingEngineTest, MissingConfigIsNotFound) {
  absl::StatusOr<ServingEngine> serving =
      LoadRandomServingEngine("/nonexistent/config.json", 1, ServingOptions{});
  EXPECT_EQ(serving.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(serving.status().message().find("/nonexistent/config.json"), std::string::npos);
}

}  // namespace
}  // namespace strata::server
