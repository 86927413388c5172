// `strata bench engine`: prefill and decode throughput of a backend, at a few
// context lengths and batch sizes, next to two yardsticks measured in the
// same run: the machine's memory read bandwidth (batch-1 decode is reported
// as a fraction of its roofline) and oneDNN's bf16 matmul on the model's
// largest prefill GEMM (prefill FLOP/s are reported as a fraction of it).
// On the CPU each row's yardstick is measured again just before and after
// the row, and the row is held to the better of the two (Yardsticks).
// With --backend cuda the yardsticks are the device's: HBM bandwidth and
// cuBLASLt's bf16 matmul peak (engine/cuda/device_ceilings.h), and the
// restore of the longest context's KV from pinned host memory is held to
// the measured host -> device bandwidth.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <numeric>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "engine/backend.h"
#include "engine/cpu/aligned_buffer.h"
#include "engine/cpu/attention.h"
#include "engine/cpu/gemm.h"
#include "engine/cpu/onednn_reference.h"
#include "engine/cpu/random_weights.h"
#include "engine/cpu/thread_pool.h"
#include "engine/model_weights.h"
#include "nlohmann/json.hpp"
#include "server/commands/args.h"
#include "server/commands/bench_engine.h"
#include "server/commands/command_registry.h"
#include "server/config/daemon_config.h"
#include "server/engine_setup.h"
#if defined(STRATA_HAVE_CUDA)
#include "engine/cuda/device_ceilings.h"
#include "engine/cuda/device_probe.h"
#endif

namespace strata::server {
namespace {

constexpr char kName[] = "bench";
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Sums `words` 64-bit words at p (64-byte aligned, a multiple of 32 words)
// with 512-bit loads into four independent accumulators and software
// prefetch ahead, so the loop is bound by memory, not by the adds or by miss
// latency: the best rate a weight-streaming GEMM could reach, which is what
// batch-1 decode is held to. (Prefetches past the end are harmless hints.)
__attribute__((target("avx512f"))) uint64_t SumWordsAvx512(const uint64_t* p, size_t words) {
  __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                    _mm512_setzero_si512()};
  constexpr size_t kAhead = 1024;  // words (8 KiB): past what the prefetchers run ahead
  for (size_t i = 0; i < words; i += 32) {
    for (int k = 0; k < 4; ++k) {
      _mm_prefetch(reinterpret_cast<const char*>(p + i + kAhead + 8 * k), _MM_HINT_T0);
      acc[k] = _mm512_add_epi64(acc[k], _mm512_load_si512(p + i + 8 * k));
    }
  }
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(
      lanes, _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3])));
  return std::accumulate(std::begin(lanes), std::end(lanes), uint64_t{0});
}

// Baseline x86-64 fallback: independent lanes so the compiler vectorises.
uint64_t SumWordsPortable(const uint64_t* p, size_t words) {
  uint64_t lanes[8] = {};
  for (size_t i = 0; i < words; i += 8) {
    for (int k = 0; k < 8; ++k) lanes[k] += p[i + k];
  }
  return std::accumulate(std::begin(lanes), std::end(lanes), uint64_t{0});
}

// Read bandwidth over buffers far larger than the caches, one per thread
// (each first touched by its reader): the roofline that batch-1 decode (which
// streams all weights) is held to. Best of several passes, each timed from a
// common start to the last thread's end.
double MeasureReadBandwidth(int threads) {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const size_t bytes_per_thread = size_t{256} << 20;
  const size_t words = bytes_per_thread / 8;
  std::vector<engine::cpu::AlignedBuffer> buffers(static_cast<size_t>(threads));
  std::vector<uint64_t> sums(static_cast<size_t>(threads));
  std::vector<double> samples;
  for (int rep = 0; rep < 7; ++rep) {
    Clock::time_point start = Clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t, rep] {
        engine::cpu::AlignedBuffer& buffer = buffers[static_cast<size_t>(t)];
        if (rep == 0) {  // first touch on this thread's node; not timed
          buffer = engine::cpu::AlignedBuffer(bytes_per_thread);
          std::memset(buffer.data(), 1, bytes_per_thread);
          return;
        }
        const auto* p = buffer.as<uint64_t>();
        sums[static_cast<size_t>(t)] +=
            avx512 ? SumWordsAvx512(p, words) : SumWordsPortable(p, words);
      });
    }
    for (auto& worker : workers) worker.join();
    if (rep > 0) samples.push_back(threads * bytes_per_thread / Seconds(start));
  }
  if (std::accumulate(sums.begin(), sums.end(), uint64_t{0}) == 0) return 0;  // keeps the loads
  return *std::max_element(samples.begin(), samples.end());
}

// FLOPs of a prefill of `tokens` tokens: every linear layer on every token,
// the lm_head on the last one, and causal attention (QK^T and PV).
double PrefillFlops(const engine::ModelConfig& c, int64_t tokens) {
  const double q = static_cast<double>(c.num_heads * c.head_dim);
  const double kv = static_cast<double>(c.num_kv_heads * c.head_dim);
  const double h = static_cast<double>(c.hidden_size);
  const double layer =
      h * (q + 2 * kv) + q * h + 3.0 * h * static_cast<double>(c.intermediate_size);
  const double t = static_cast<double>(tokens);
  const double attention = 4.0 * q * t * (t + 1) / 2;
  return static_cast<double>(c.num_layers) * (2.0 * layer * t + attention) +
         2.0 * h * static_cast<double>(c.vocab_size);
}

// The model's largest prefill GEMM: the fused gate/up projection of `m`
// tokens. Times the CPU backend's GEMM on it, next to oneDNN on the same
// shape, both on `threads` threads.
struct GemmComparison {
  int64_t m = 0, n = 0, k = 0;
  double strata_gflops = 0;
  std::string strata_path;
  engine::cpu::MatmulThroughput onednn;
};

absl::StatusOr<GemmComparison> CompareGemm(const engine::ModelConfig& c, int64_t m, int threads) {
  GemmComparison out{m, 2 * c.intermediate_size, c.hidden_size};
  absl::StatusOr<engine::cpu::MatmulThroughput> onednn =
      engine::cpu::MeasureOnednnBf16Matmul(out.m, out.n, out.k, threads, 9);
  if (!onednn.ok()) return onednn.status();
  out.onednn = *onednn;
  const engine::cpu::PackedMatrix w = engine::cpu::PackedMatrix::Pack(
      out.n, out.k, engine::DType::kBF16, [k = out.k](int64_t row, float* dst) {
        for (int64_t i = 0; i < k; ++i) dst[i] = static_cast<float>((row + i) % 7) * 0.125f;
      });
  // In huge pages, as the forward pass's activations are (aligned_buffer.h).
  std::vector<uint16_t, engine::cpu::HugePageAllocator<uint16_t>> a(
      static_cast<size_t>(out.m * out.k), 0x3f80);  // 1.0
  engine::cpu::ActivationVector result(static_cast<size_t>(out.m * out.n));
  engine::cpu::ThreadPool pool(threads);
  engine::cpu::GemmArgs args{
      .a = a.data(), .lda = out.k, .m = out.m, .c = result.data(), .ldc = out.n};
  const engine::cpu::GemmPath path = engine::cpu::BestGemmPath();
  out.strata_path = engine::cpu::GemmPathName(path);
  std::vector<double> samples;
  for (int rep = 0; rep <= 9; ++rep) {
    Clock::time_point start = Clock::now();
    engine::cpu::Gemm(w, args, &pool, path);
    if (rep > 0) samples.push_back(Seconds(start));  // the first run warms caches
  }
  out.strata_gflops = 2.0 * out.m * out.n * out.k / Median(samples) / 1e9;
  return out;
}

struct BenchModel {
  engine::LoadedModel model;
  std::string description;
};

absl::StatusOr<BenchModel> LoadBenchModel(const ParsedArgs& args) {
  if (args.Has("random-weights")) {
    absl::StatusOr<std::string> config_path = args.Require("config");
    if (!config_path.ok()) return config_path.status();
    std::ifstream in(*config_path);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read config ", *config_path));
    nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) {
      return absl::InvalidArgumentError(absl::StrCat(*config_path, ": not valid JSON"));
    }
    absl::StatusOr<engine::ModelConfig> config = engine::ParseModelConfig(json, *config_path);
    if (!config.ok()) return config.status();
    absl::StatusOr<engine::LoadedModel> model = engine::cpu::MakeRandomModel(*config, 1234);
    if (!model.ok()) return model.status();
    return BenchModel{*std::move(model), absl::StrCat("random weights, ", *config_path)};
  }
  std::string dir = args.Get("model").value_or(DefaultModelDir().string());
  absl::StatusOr<engine::LoadedModel> model = engine::LoadModel(dir);
  if (!model.ok()) return model.status();
  return BenchModel{*std::move(model), dir};
}

// A plan of `batch` sequences (from `first`), each computing `tokens` tokens
// from `start`; sequence s owns blocks [s * blocks_per_seq, (s + 1) * blocks_per_seq).
engine::StepPlan MakePlan(int64_t batch, int64_t start, int64_t tokens, int64_t blocks_per_seq,
                          int64_t vocab, int64_t first = 0) {
  engine::StepPlan plan;
  for (int64_t s = first; s < first + batch; ++s) {
    engine::SequenceStep step{.seq_id = s, .start_position = start, .sample = true};
    for (int64_t i = 0; i < tokens; ++i) {
      step.token_ids.push_back(static_cast<engine::TokenId>((7 + 31 * (start + i) + s) % vocab));
    }
    for (int64_t b = 0; b < blocks_per_seq; ++b) {
      step.block_table.push_back(static_cast<engine::BlockId>(s * blocks_per_seq + b));
    }
    step.sampling.temperature = 0;
    plan.sequences.push_back(std::move(step));
  }
  return plan;
}

struct Measurement {
  std::string phase;
  int64_t batch = 0;
  int64_t context = 0;
  double tokens_per_second = 0;  // 0: skipped (its KV does not fit the arena)
  // The row's yardstick measured beside it (CPU): oneDNN's GEMM flop/s for
  // prefill, read bandwidth (bytes/s) for decode; 0: the run's own.
  double yardstick = 0;
};

// Yardsticks measured again next to each row, the better of a measurement
// just before and one just after it: the machine's speed drifts within a
// run (oneDNN's GEMM measured 865 to 2493 GFLOP/s on one machine in a day),
// and a row held to a yardstick taken minutes earlier reports the drift.
struct Yardsticks {
  std::function<double()> gemm_flops;      // oneDNN on the model's gate/up GEMM
  std::function<double()> read_bandwidth;  // MeasureReadBandwidth
};

// The KV of the longest context's prefix restored from host memory the
// backend allocated (pinned on CUDA) into the arena, outside a step.
struct Restore {
  int64_t tokens = 0;
  int64_t bytes = 0;
  double bytes_per_second = 0;
};

absl::StatusOr<double> TimePlan(engine::Backend& backend, const engine::StepPlan& plan, int reps) {
  std::vector<double> samples;
  for (int rep = 0; rep < reps; ++rep) {
    Clock::time_point start = Clock::now();
    absl::StatusOr<engine::StepResult> result = backend.Execute(plan);
    if (!result.ok()) return result.status();
    samples.push_back(Seconds(start));
  }
  return Median(samples);
}

constexpr int64_t kBlockSize = 16;

int64_t BlocksPerSequence(int64_t context) { return (context + 1 + kBlockSize - 1) / kBlockSize; }

// The backend with room for every measurement's KV if the memory allows;
// otherwise (a GPU) an arena of 90% of the free device memory, and
// measurements that do not fit it are skipped.
absl::StatusOr<std::unique_ptr<engine::Backend>> MakeBenchBackend(const std::string& name,
                                                                  const engine::LoadedModel& model,
                                                                  engine::Precision precision,
                                                                  int64_t blocks) {
  engine::BackendOptions options{
      .block_size = kBlockSize, .num_kv_blocks = blocks, .precision = precision};
  absl::StatusOr<std::unique_ptr<engine::Backend>> backend =
      engine::CreateBackend(name, model, options);
  if (backend.ok() || backend.status().code() != absl::StatusCode::kResourceExhausted ||
      name == "cpu") {
    return backend;
  }
  options.num_kv_blocks = 0;
  options.kv_memory_fraction = 0.9;
  return engine::CreateBackend(name, model, options);
}

// Fills sequences [first, last) with `context` tokens of KV, one sequence
// per step (so no step is wider than one prefill). Untimed.
absl::Status Fill(engine::Backend& backend, int64_t first, int64_t last, int64_t context,
                  int64_t vocab) {
  for (int64_t s = first; s < last; ++s) {
    absl::StatusOr<engine::StepResult> result =
        backend.Execute(MakePlan(1, 0, context, BlocksPerSequence(context), vocab, s));
    if (!result.ok()) return result.status();
  }
  return absl::OkStatus();
}

// Demotes the KV of sequence 0's first `context` tokens to host memory from
// the backend, then times promoting it back (median of 5).
absl::StatusOr<Restore> MeasureRestore(engine::Backend& backend, int64_t context) {
  const int64_t blocks = context / kBlockSize;  // whole blocks only, as the cache keeps them
  const auto block_bytes = static_cast<size_t>(backend.kv_arena_info().bytes_per_block);
  absl::StatusOr<std::unique_ptr<engine::HostBuffer>> host =
      backend.AllocateHostBuffer(static_cast<size_t>(blocks) * block_bytes);
  if (!host.ok()) return host.status();
  std::vector<engine::BlockMove> demote, promote;
  for (int64_t b = 0; b < blocks; ++b) {
    absl::Span<std::byte> span((*host)->data() + b * block_bytes, block_bytes);
    const auto id = static_cast<engine::BlockId>(b);
    demote.push_back({.src = id, .kind = engine::BlockMoveKind::kDeviceToHost, .host_dst = span});
    promote.push_back({.dst = id, .kind = engine::BlockMoveKind::kHostToDevice, .host_src = span});
  }
  if (absl::Status s = backend.CopyBlocks(demote); !s.ok()) return s;
  std::vector<double> samples;
  for (int rep = 0; rep < 6; ++rep) {
    Clock::time_point start = Clock::now();
    if (absl::Status s = backend.CopyBlocks(promote); !s.ok()) return s;
    if (rep > 0) samples.push_back(Seconds(start));  // the first run warms up
  }
  const int64_t bytes = blocks * static_cast<int64_t>(block_bytes);
  return Restore{blocks * kBlockSize, bytes, static_cast<double>(bytes) / Median(samples)};
}

struct BenchResults {
  std::vector<Measurement> measurements;
  Restore restore;
  engine::KvCacheSpec kv_spec;  // of the backend's arena
};

// Prefill: one sequence computing `context` tokens in one step. Decode: each
// of `batch` sequences at position `context` computes one token per step.
absl::StatusOr<BenchResults> RunMeasurements(const std::string& backend_name,
                                             const engine::LoadedModel& model,
                                             engine::Precision precision,
                                             const std::vector<int64_t>& contexts,
                                             const std::vector<int64_t>& batches,
                                             const Yardsticks& yardsticks) {
  const auto beside = [](const std::function<double()>& measure, auto&& timed) {
    const double before = measure ? measure() : 0;
    timed();
    return std::max(before, measure ? measure() : 0);
  };
  const int64_t max_context = *std::max_element(contexts.begin(), contexts.end());
  const int64_t max_batch = *std::max_element(batches.begin(), batches.end());
  absl::StatusOr<std::unique_ptr<engine::Backend>> backend =
      MakeBenchBackend(backend_name, model, precision, BlocksPerSequence(max_context) * max_batch);
  if (!backend.ok()) return backend.status();
  const int64_t arena_blocks = (*backend)->kv_arena_info().num_blocks;
  const int64_t vocab = model.config.vocab_size;
  BenchResults out;
  out.kv_spec = (*backend)->kv_arena_info().spec;
  for (int64_t context : contexts) {
    const int64_t blocks_per_seq = BlocksPerSequence(context);
    int64_t filled = 1;  // the timed prefill leaves sequence 0 filled
    absl::StatusOr<double> prefill;
    const double gemm_flops = beside(yardsticks.gemm_flops, [&] {
      prefill = TimePlan(**backend, MakePlan(1, 0, context, blocks_per_seq, vocab), 3);
    });
    if (!prefill.ok()) return prefill.status();
    out.measurements.push_back({"prefill", 1, context, context / *prefill, gemm_flops});
    if (context == max_context) {
      absl::StatusOr<Restore> restore = MeasureRestore(**backend, context);
      if (!restore.ok()) return restore.status();
      out.restore = *restore;
    }
    for (int64_t batch : batches) {
      if (batch * blocks_per_seq > arena_blocks) {
        out.measurements.push_back({"decode", batch, context, 0});
        continue;
      }
      // Fill every sequence's KV up to `context` (untimed), then time decode.
      if (absl::Status fill = Fill(**backend, filled, batch, context, vocab); !fill.ok()) {
        return fill;
      }
      filled = std::max(filled, batch);
      absl::StatusOr<double> decode;
      const double bandwidth = beside(yardsticks.read_bandwidth, [&] {
        decode = TimePlan(**backend, MakePlan(batch, context, 1, blocks_per_seq, vocab), 9);
      });
      if (!decode.ok()) return decode.status();
      out.measurements.push_back({"decode", batch, context, batch / *decode, bandwidth});
    }
  }
  return out;
}

std::vector<int64_t> ParseList(const std::string& text) {
  std::vector<int64_t> values;
  for (absl::string_view piece : absl::StrSplit(text, ',')) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(piece, &value) || value <= 0) return {};
    values.push_back(value);
  }
  return values;
}

// Bytes one decode step must read: every weight once (the untied embedding
// table only a row per token, so not counted), plus each sequence's K and V
// of its `context` earlier tokens and the new one.
double DecodeStepBytes(const engine::ModelConfig& config, double weight_element_bytes,
                       double kv_element_bytes, int64_t batch, int64_t context) {
  const double embedding = config.tie_word_embeddings
                               ? 0.0
                               : static_cast<double>(config.vocab_size * config.hidden_size);
  const double weights = weight_element_bytes * (config.NumParameters() - embedding);
  const double kv_per_token =
      2.0 * config.num_layers * config.num_kv_heads * config.head_dim * kv_element_bytes;
  return weights + static_cast<double>(batch) * kv_per_token * static_cast<double>(context + 1);
}

// The rows of the table and their JSON: decode against the bandwidth
// roofline of its own bytes (weights + KV read), prefill against
// `peak_flops` (named `peak_label`).
nlohmann::json PrintRows(const engine::ModelConfig& config, const std::vector<Measurement>& results,
                         double bandwidth, double weight_element_bytes, double peak_flops,
                         const std::string& peak_label) {
  std::cout << absl::StrFormat("%-8s %6s %8s %12s %10s %10s %10s\n", "phase", "batch", "context",
                               "tokens/s", "GFLOP/s", "roof tok/s", "target");
  nlohmann::json json_rows = nlohmann::json::array();
  for (const Measurement& m : results) {
    if (m.tokens_per_second == 0) {
      std::cout << absl::StrFormat("%-8s %6d %8d %12s\n", m.phase, m.batch, m.context,
                                   "skipped: KV does not fit");
      json_rows.push_back(
          {{"phase", m.phase}, {"batch", m.batch}, {"context", m.context}, {"skipped", true}});
      continue;
    }
    std::string fraction, gflops, roof;
    double flops_per_second = 0, roofline = 0;
    if (m.phase == "decode") {
      roofline = static_cast<double>(m.batch) * (m.yardstick > 0 ? m.yardstick : bandwidth) /
                 DecodeStepBytes(config, weight_element_bytes, 2.0, m.batch, m.context);
      roof = absl::StrFormat("%.1f", roofline);
      fraction = absl::StrFormat("%.0f%% roof", 100.0 * m.tokens_per_second / roofline);
    } else if (m.phase == "prefill") {
      flops_per_second = PrefillFlops(config, m.context) * m.tokens_per_second / m.context;
      gflops = absl::StrFormat("%.0f", flops_per_second / 1e9);
      fraction = absl::StrFormat(
          "%.0f%% %s", 100.0 * flops_per_second / (m.yardstick > 0 ? m.yardstick : peak_flops),
          peak_label);
    }
    std::cout << absl::StrFormat("%-8s %6d %8d %12.1f %10s %10s %10s\n", m.phase, m.batch,
                                 m.context, m.tokens_per_second, gflops, roof, fraction);
    json_rows.push_back({{"phase", m.phase},
                         {"batch", m.batch},
                         {"context", m.context},
                         {"tokens_per_second", m.tokens_per_second},
                         {"flops_per_second", flops_per_second},
                         {"roofline_tokens_per_second", roofline},
                         {"yardstick_beside", m.yardstick}});
  }
  return json_rows;
}

nlohmann::json RestoreJson(const Restore& restore) {
  return {{"tokens", restore.tokens},
          {"bytes", restore.bytes},
          {"bytes_per_second", restore.bytes_per_second}};
}

// Prints the table (decode against the bandwidth roofline, prefill against
// oneDNN) and the JSON line; returns the JSON report.
nlohmann::json PrintReport(const BenchModel& bench, const std::string& precision_name,
                           const BenchResults& results, double bandwidth, int threads,
                           const GemmComparison& comparison) {
  const engine::ModelConfig& config = bench.model.config;
  const double onednn_gflops = comparison.onednn.gflops;
  const double weight_element_bytes = precision_name == "f32" ? 4.0 : 2.0;
  const double weight_bytes = weight_element_bytes * config.NumParameters();
  // Weights only: each decode row is held to its own bytes, KV included.
  const double roofline = bandwidth / DecodeStepBytes(config, weight_element_bytes, 2.0, 1, -1);
  const char* attention = engine::cpu::AttentionKernelName(
      engine::cpu::PickAttentionKernel(results.kv_spec, precision_name == "bf16"));

  std::cout << absl::StrFormat(
      "model: %s (%.1fM parameters, %.1f MB of weights), precision %s, attention kernel %s\n",
      bench.description, config.NumParameters() / 1e6, weight_bytes / 1e6, precision_name,
      attention);
  std::cout << absl::StrFormat(
      "memory read bandwidth: %.1f GB/s on %d threads -> decode roofline %.1f tok/s for the "
      "weights alone; each decode row's roof adds the KV it reads (bf16, %.1f KB per token)\n",
      bandwidth / 1e9, threads, roofline, config.KvBytesPerToken(2) / 1e3);
  std::cout << absl::StrFormat(
      "bf16 GEMM %dx%dx%d (gate/up of a %d-token prefill): oneDNN %.0f GFLOP/s (%s), "
      "strata %.0f GFLOP/s (%s) = %.0f%% of oneDNN\n",
      comparison.m, comparison.n, comparison.k, comparison.m, onednn_gflops,
      comparison.onednn.implementation, comparison.strata_gflops, comparison.strata_path,
      100.0 * comparison.strata_gflops / onednn_gflops);
  std::cout << absl::StrFormat("KV restore of a %d-token prefix from host memory: %.1f GB/s\n",
                               results.restore.tokens, results.restore.bytes_per_second / 1e9);
  std::cout << "each row's target is held to its own yardstick, measured again just before and "
               "after it (the better of the two): oneDNN's GEMM for prefill, the read bandwidth "
               "for decode\n";
  nlohmann::json json_rows = PrintRows(config, results.measurements, bandwidth,
                                       weight_element_bytes, onednn_gflops * 1e9, "dnnl");
  nlohmann::json report = {{"model", bench.description},
                           {"backend", "cpu"},
                           {"precision", precision_name},
                           {"num_parameters", config.NumParameters()},
                           {"read_bandwidth_bytes_per_second", bandwidth},
                           {"decode_roofline_tokens_per_second", roofline},
                           {"gemm_shape", {comparison.m, comparison.n, comparison.k}},
                           {"onednn_bf16_gflops", onednn_gflops},
                           {"onednn_implementation", comparison.onednn.implementation},
                           {"strata_gemm_gflops", comparison.strata_gflops},
                           {"strata_gemm_path", comparison.strata_path},
                           {"attention_kernel", attention},
                           {"restore", RestoreJson(results.restore)},
                           {"results", json_rows}};
  std::cout << report.dump() << "\n";
  return report;
}

#if defined(STRATA_HAVE_CUDA)
// The same table held to the device's ceilings, measured after the
// backend is gone so they have the whole device: decode at batch 1 against
// the bytes it must read (every weight but the untied embedding table, of
// which it reads one row) over HBM bandwidth; prefill against cuBLASLt's
// bf16 peak; the KV restore against host -> device bandwidth.
nlohmann::json PrintCudaReport(const BenchModel& bench, const BenchResults& results,
                               const engine::cuda::DeviceCeilings& ceilings) {
  const engine::ModelConfig& config = bench.model.config;
  const double embedding = config.tie_word_embeddings
                               ? 0.0
                               : static_cast<double>(config.vocab_size * config.hidden_size);
  const double decode_bytes = 2.0 * (static_cast<double>(config.NumParameters()) - embedding);
  const double roofline = ceilings.hbm_bytes_per_second / decode_bytes;
  std::cout << absl::StrFormat("model: %s (%.1fM parameters, %.2f GB read per decode step)\n",
                               bench.description, config.NumParameters() / 1e6, decode_bytes / 1e9);
  std::cout << absl::StrFormat("device: %s, %d SMs, %.1f GiB\n", ceilings.device_name,
                               ceilings.sm_count, ceilings.memory_bytes / 1073741824.0);
  std::cout << absl::StrFormat(
      "HBM bandwidth (1 GiB device copy, read + write): %.0f GB/s -> batch-1 decode roofline "
      "%.1f tok/s\n",
      ceilings.hbm_bytes_per_second / 1e9, roofline);
  std::cout << absl::StrFormat(
      "bf16 matmul (cuBLASLt): %.0f TFLOP/s at 8192^3, %.0f TFLOP/s at the gate/up GEMM of the "
      "longest prefill\n",
      ceilings.bf16_matmul_flops / 1e12, ceilings.bf16_model_gemm_flops / 1e12);
  std::cout << absl::StrFormat(
      "KV restore of a %d-token prefix (%.1f MB) from pinned host memory: %.1f GB/s = %.0f%% of "
      "host->device %.1f GB/s (device->host %.1f GB/s)\n",
      results.restore.tokens, results.restore.bytes / 1e6, results.restore.bytes_per_second / 1e9,
      100.0 * results.restore.bytes_per_second / ceilings.h2d_bytes_per_second,
      ceilings.h2d_bytes_per_second / 1e9, ceilings.d2h_bytes_per_second / 1e9);
  nlohmann::json json_rows = PrintRows(config, results.measurements, ceilings.hbm_bytes_per_second,
                                       2.0, ceilings.bf16_matmul_flops, "peak");
  nlohmann::json report = {{"model", bench.description},
                           {"backend", "cuda"},
                           {"device", ceilings.device_name},
                           {"num_parameters", config.NumParameters()},
                           {"decode_bytes_per_step", decode_bytes},
                           {"hbm_bytes_per_second", ceilings.hbm_bytes_per_second},
                           {"decode_roofline_tokens_per_second", roofline},
                           {"bf16_matmul_flops", ceilings.bf16_matmul_flops},
                           {"bf16_model_gemm_flops", ceilings.bf16_model_gemm_flops},
                           {"h2d_bytes_per_second", ceilings.h2d_bytes_per_second},
                           {"d2h_bytes_per_second", ceilings.d2h_bytes_per_second},
                           {"restore", RestoreJson(results.restore)},
                           {"results", json_rows}};
  std::cout << report.dump() << "\n";
  return report;
}
#endif

// The backend --backend names, resolved ("auto" to cpu or cuda), or the
// reason it cannot run here, before any model is built.
absl::StatusOr<std::string> BenchBackendName(const std::string& requested) {
  if (requested != "cpu" && requested != "cuda" && requested != "auto") {
    return absl::InvalidArgumentError("--backend is one of cpu, cuda, auto");
  }
  absl::StatusOr<engine::BackendChoice> choice = engine::ResolveBackendName(requested);
  if (!choice.ok()) return choice.status();
  if (requested == "auto") {
    std::cerr << "strata bench engine: backend auto -> " << choice->name << " (" << choice->reason
              << ")\n";
  }
  if (choice->name != "cuda") return choice->name;
#if defined(STRATA_HAVE_CUDA)
  const engine::cuda::CudaProbe& probe = engine::cuda::ProbeCudaDevices();
  if (!probe.available()) {
    return absl::FailedPreconditionError(absl::StrCat("CUDA backend unavailable: ", probe.error));
  }
  return choice->name;
#else
  return absl::FailedPreconditionError(
      "CUDA backend unavailable: strata was built without CUDA (STRATA_CUDA=OFF)");
#endif
}

}  // namespace

int RunBenchEngine(const std::vector<std::string>& raw_args) {
  ArgSpec spec{
      .value_options = {"model", "config", "contexts", "batches", "precision", "out", "backend"},
      .flag_options = {"random-weights"}};
  absl::StatusOr<ParsedArgs> args = ParseArgs(raw_args, spec);
  if (!args.ok()) return UsageError(kName, std::string(args.status().message()));
  std::vector<int64_t> contexts = ParseList(args->Get("contexts").value_or("16,128,512"));
  std::vector<int64_t> batches = ParseList(args->Get("batches").value_or("1,4,16"));
  if (contexts.empty() || batches.empty()) {
    return UsageError(kName, "--contexts and --batches take lists of positive integers");
  }
  // Default: the daemon's serving precision (engine.precision).
  const std::string precision_name = args->Get("precision").value_or(EngineSection{}.precision);
  // kBf16Split does twice the prefill GEMM work of kBf16, the serving default.
  absl::StatusOr<engine::Precision> precision = ParsePrecision(precision_name, "--precision");
  if (!precision.ok()) return UsageError(kName, std::string(precision.status().message()));
  absl::StatusOr<std::string> backend = BenchBackendName(args->Get("backend").value_or("cpu"));
  if (!backend.ok()) {
    if (backend.status().code() == absl::StatusCode::kInvalidArgument) {
      return UsageError(kName, std::string(backend.status().message()));
    }
    std::cerr << "strata bench engine: " << backend.status().message() << "\n";
    return kExitFailure;
  }
  absl::StatusOr<BenchModel> bench = LoadBenchModel(*args);
  if (!bench.ok()) {
    std::cerr << "strata bench engine: " << bench.status().message() << "\n";
    return kExitFailure;
  }
  if (args->Has("random-weights")) {
    // Random weights have no trained position range: let the model reach
    // every context asked for (positions only feed RoPE).
    int64_t& max_positions = bench->model.config.max_position_embeddings;
    max_positions =
        std::max(max_positions, *std::max_element(contexts.begin(), contexts.end()) + 1);
  }
  const engine::ModelConfig& config = bench->model.config;
  for (int64_t& context : contexts) context = std::min(context, config.max_position_embeddings - 1);
  std::sort(contexts.begin(), contexts.end());
  contexts.erase(std::unique(contexts.begin(), contexts.end()), contexts.end());
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  Yardsticks yardsticks;
  if (*backend != "cuda") {
    yardsticks.gemm_flops = [&config, &contexts, threads] {
      absl::StatusOr<engine::cpu::MatmulThroughput> onednn = engine::cpu::MeasureOnednnBf16Matmul(
          contexts.back(), 2 * config.intermediate_size, config.hidden_size, threads, 3);
      return onednn.ok() ? onednn->gflops * 1e9 : 0.0;
    };
    yardsticks.read_bandwidth = [threads] { return MeasureReadBandwidth(threads); };
  }
  absl::StatusOr<BenchResults> results =
      RunMeasurements(*backend, bench->model, *precision, contexts, batches, yardsticks);
  if (!results.ok()) {
    std::cerr << "strata bench engine: " << results.status().message() << "\n";
    return kExitFailure;
  }
  nlohmann::json report;
  if (*backend == "cuda") {
#if defined(STRATA_HAVE_CUDA)
    absl::StatusOr<engine::cuda::DeviceCeilings> ceilings = engine::cuda::MeasureDeviceCeilings(
        contexts.back(), 2 * config.intermediate_size, config.hidden_size);
    if (!ceilings.ok()) {
      std::cerr << "strata bench engine: " << ceilings.status().message() << "\n";
      return kExitFailure;
    }
    report = PrintCudaReport(*bench, *results, *ceilings);
#endif
  } else {
    const double bandwidth = MeasureReadBandwidth(threads);
    absl::StatusOr<GemmComparison> gemm = CompareGemm(config, contexts.back(), threads);
    if (!gemm.ok()) {
      std::cerr << "strata bench engine: " << gemm.status().message() << "\n";
      return kExitFailure;
    }
    report = PrintReport(*bench, precision_name, *results, bandwidth, threads, *gemm);
  }
  if (auto out = args->Get("out")) std::ofstream(*out) << report.dump(2) << "\n";
  return kExitOk;
}

}  // namespace strata::server
