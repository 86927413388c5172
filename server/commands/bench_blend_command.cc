// `strata bench blend`: what CacheBlend costs in quality and gains in time to
// first token, measured side by side in one run.
//
// Quality: prompts of BOS + chunks + a question. Each chunk's KV is computed
// on its own (positions from 0), then the prompt is blended from it; the
// next-token distribution after the question is compared with a full
// prefill of the same prompt: KL(full || blend) and top-1 agreement, for
// naive concatenation (the chunks' KV placed at their positions, nothing
// recomputed), recompute ratios r in {0.05, 0.1, 0.15, 0.3} and r = 1. On
// the embedded real model (aidreams260K, 128-token context; its chunks are
// text it writes itself, so they are in its distribution) and on a
// random-weight model.
//
// Speed: TTFT of 4 cached chunks of 1000 tokens plus a 64-token question,
// through the real scheduler, against a full prefill of the same prompt.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "engine/backend.h"
#include "engine/cpu/random_weights.h"
#include "engine/model_config.h"
#include "nlohmann/json.hpp"
#include "scheduler/engine_loop.h"
#include "server/commands/args.h"
#include "server/commands/bench_blend.h"
#include "server/commands/bench_util.h"
#include "server/commands/command_registry.h"
#include "server/daemon/random_model.h"
#include "server/engine_setup.h"

namespace strata::server {

const char kBenchBlendUsage[] =
    "blend [--samples 48] [--config FILE.json] [--chunk-tokens 1000] [--reps 3] "
    "[--check-layers 1,2,3] [--kv-dtype bf16|f32] [--no-ttft] [--json]";

namespace {

using Clock = std::chrono::steady_clock;
using engine::TokenId;

constexpr int64_t kBlockSize = 16;

// One way of fusing the chunks: naive (no check layer) or a ratio.
struct BlendCase {
  std::string name;
  float ratio = 0;
  bool naive = false;
};

std::vector<BlendCase> Cases() {
  return {{"naive", 0.0f, true}, {"r0.05", 0.05f}, {"r0.1", 0.1f},
          {"r0.15", 0.15f},      {"r0.3", 0.3f},   {"r1", 1.0f}};
}

// BOS (when the model has one), chunks, question.
struct Sample {
  std::vector<TokenId> prefix;  // also before each chunk computed on its own
  std::vector<std::vector<TokenId>> chunks;
  std::vector<TokenId> question;
  std::vector<TokenId> Prompt() const {
    std::vector<TokenId> prompt = prefix;
    for (const auto& chunk : chunks) prompt.insert(prompt.end(), chunk.begin(), chunk.end());
    prompt.insert(prompt.end(), question.begin(), question.end());
    return prompt;
  }
};

struct Quality {
  double kl = 0;          // mean KL(full || blend), nats
  double top1 = 0;        // fraction of samples whose argmax agrees
  double recomputed = 0;  // mean fraction of chunk tokens recomputed
};

std::vector<engine::BlockId> Range(engine::BlockId first, int64_t tokens) {
  std::vector<engine::BlockId> ids(static_cast<size_t>((tokens + kBlockSize - 1) / kBlockSize));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = first + static_cast<engine::BlockId>(i);
  return ids;
}

// Runs one sequence step and returns its output.
absl::StatusOr<engine::SequenceOutput> RunOne(engine::Backend& backend, engine::SequenceStep step) {
  engine::StepPlan plan;
  plan.sequences.push_back(std::move(step));
  absl::StatusOr<engine::StepResult> result = backend.Execute(plan);
  if (!result.ok()) return result.status();
  return std::move(result->outputs[0]);
}

engine::SequenceStep Step(const std::vector<TokenId>& tokens, std::vector<engine::BlockId> table,
                          bool logits) {
  engine::SequenceStep step;
  step.seq_id = 1;
  step.token_ids = tokens;
  step.block_table = std::move(table);
  step.return_logits = logits;
  return step;
}

// Text the model writes itself from BOS, sampled at temperature 1: chunks in
// its own distribution.
absl::StatusOr<std::vector<TokenId>> Generate(engine::Backend& backend, TokenId bos, int64_t count,
                                              uint64_t seed) {
  std::vector<TokenId> tokens = {bos};
  const std::vector<engine::BlockId> table = Range(0, count + 1);
  for (int64_t i = 0; i < count; ++i) {
    engine::SequenceStep step = Step({tokens.back()}, table, false);
    step.start_position = i;
    step.sample = true;
    step.sampling.temperature = 1.0f;
    step.sampling.seed = seed;
    step.output_ids.assign(tokens.begin() + 1, tokens.end());
    absl::StatusOr<engine::SequenceOutput> out = RunOne(backend, std::move(step));
    if (!out.ok()) return out.status();
    tokens.push_back(out->token->id);
  }
  return std::vector<TokenId>(tokens.begin() + 1, tokens.end());
}

double KlDivergence(absl::Span<const float> p_logits, absl::Span<const float> q_logits) {
  const auto log_softmax = [](absl::Span<const float> x) {
    const double max = *std::max_element(x.begin(), x.end());
    double sum = 0;
    for (float v : x) sum += std::exp(v - max);
    std::vector<double> out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] - max - std::log(sum);
    return out;
  };
  const std::vector<double> lp = log_softmax(p_logits), lq = log_softmax(q_logits);
  double kl = 0;
  for (size_t i = 0; i < lp.size(); ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return std::max(kl, 0.0);
}

// Adds one sample's divergence for every case to `totals`.
absl::Status MeasureSample(engine::Backend& backend, const Sample& sample,
                           const std::vector<int32_t>& check_layers, std::vector<Quality>& totals) {
  const std::vector<TokenId> prompt = sample.Prompt();
  const auto n = static_cast<int64_t>(prompt.size());
  absl::StatusOr<engine::SequenceOutput> full = RunOne(backend, Step(prompt, Range(0, n), true));
  if (!full.ok()) return full.status();
  const std::vector<float> reference(full->logits.end() - backend.model_config().vocab_size,
                                     full->logits.end());
  // Each chunk on its own, in blocks of its own.
  engine::BlockId next = static_cast<engine::BlockId>(2 * Range(0, n).size());
  engine::BlendSpec spec;
  int64_t position = static_cast<int64_t>(sample.prefix.size());
  int64_t chunk_tokens = 0;
  for (const std::vector<TokenId>& chunk : sample.chunks) {
    // As a prompt of its own: after the template's BOS, like the daemon.
    std::vector<TokenId> own = sample.prefix;
    own.insert(own.end(), chunk.begin(), chunk.end());
    const std::vector<engine::BlockId> blocks = Range(next, static_cast<int64_t>(own.size()));
    next += static_cast<engine::BlockId>(blocks.size());
    absl::StatusOr<engine::SequenceOutput> done = RunOne(backend, Step(own, blocks, false));
    if (!done.ok()) return done.status();
    spec.chunks.push_back({blocks, static_cast<int64_t>(chunk.size()),
                           static_cast<int64_t>(sample.prefix.size()), position});
    position += static_cast<int64_t>(chunk.size());
    chunk_tokens += static_cast<int64_t>(chunk.size());
  }
  const std::vector<BlendCase> cases = Cases();
  for (size_t c = 0; c < cases.size(); ++c) {
    spec.recompute_ratio = cases[c].ratio;
    spec.check_layers = cases[c].naive ? std::vector<int32_t>{} : check_layers;
    engine::SequenceStep step =
        Step(prompt, Range(static_cast<engine::BlockId>(Range(0, n).size()), n), true);
    step.blend = spec;
    absl::StatusOr<engine::SequenceOutput> blended = RunOne(backend, std::move(step));
    if (!blended.ok()) return blended.status();
    totals[c].kl += KlDivergence(reference, blended->logits);
    const auto argmax = [](const std::vector<float>& v) {
      return std::max_element(v.begin(), v.end()) - v.begin();
    };
    totals[c].top1 += argmax(reference) == argmax(blended->logits) ? 1.0 : 0.0;
    totals[c].recomputed +=
        static_cast<double>(blended->blend_recomputed_tokens) / static_cast<double>(chunk_tokens);
  }
  return absl::OkStatus();
}

struct QualityShape {
  int64_t chunks, chunk_tokens, question_tokens;
};

// Means over `samples` samples; real models write their own chunks.
absl::StatusOr<nlohmann::json> MeasureQuality(const engine::LoadedModel& model, bool real,
                                              const QualityShape& shape, int64_t samples,
                                              const std::vector<int32_t>& check_layers,
                                              engine::DType kv_dtype) {
  engine::BackendOptions options;
  options.kv_dtype = kv_dtype;
  options.block_size = kBlockSize;
  options.num_kv_blocks =
      64 + 4 * (shape.chunks * shape.chunk_tokens + shape.question_tokens) / kBlockSize;
  absl::StatusOr<std::unique_ptr<engine::Backend>> backend =
      engine::CreateBackend("cpu", model, options);
  if (!backend.ok()) return backend.status();
  const int64_t vocab = model.config.vocab_size;
  std::vector<Quality> totals(Cases().size());
  std::mt19937 rng(42);
  for (int64_t s = 0; s < samples; ++s) {
    Sample sample;
    std::vector<TokenId> text;
    const int64_t length = shape.chunks * shape.chunk_tokens + shape.question_tokens;
    if (real) {
      sample.prefix = {static_cast<TokenId>(model.config.bos_token_id.value_or(1))};
      absl::StatusOr<std::vector<TokenId>> generated =
          Generate(**backend, sample.prefix[0], length, 1000 + static_cast<uint64_t>(s));
      if (!generated.ok()) return generated.status();
      text = *std::move(generated);
    } else {
      for (int64_t i = 0; i < length; ++i)
        text.push_back(static_cast<TokenId>(3 + rng() % (vocab - 3)));
    }
    for (int64_t c = 0; c < shape.chunks; ++c) {
      sample.chunks.emplace_back(text.begin() + c * shape.chunk_tokens,
                                 text.begin() + (c + 1) * shape.chunk_tokens);
    }
    sample.question.assign(text.end() - shape.question_tokens, text.end());
    if (absl::Status s2 = MeasureSample(**backend, sample, check_layers, totals); !s2.ok())
      return s2;
  }
  nlohmann::json out = {{"samples", samples},
                        {"chunks", shape.chunks},
                        {"chunk_tokens", shape.chunk_tokens},
                        {"question_tokens", shape.question_tokens}};
  const std::vector<BlendCase> cases = Cases();
  for (size_t c = 0; c < cases.size(); ++c) {
    const double n = static_cast<double>(samples);
    out[cases[c].name] = {{"kl", totals[c].kl / n},
                          {"top1", totals[c].top1 / n},
                          {"recomputed", totals[c].recomputed / n}};
  }
  return out;
}



struct Timing {
  std::vector<double> full, blend;
  int64_t recomputed = 0;
};

// One repetition on fresh chunks: a full prefill of the prompt, then the
// chunks prefetched on their own (untimed) and the blended prompt.
absl::Status TimeOnce(ServingEngine& engine, int64_t chunk_tokens, float ratio,
                      const std::vector<int32_t>& check_layers, uint32_t rep, Timing& timing) {
  const int64_t vocab = engine.backend->model_config().vocab_size;
  std::mt19937 rng(100 + rep);
  scheduler::Request request{.id = 1};
  for (int c = 0; c < 4; ++c) {
    request.chunks.push_back({static_cast<int64_t>(request.prompt_ids.size()), chunk_tokens});
    for (int64_t i = 0; i < chunk_tokens; ++i) {
      request.prompt_ids.push_back(static_cast<TokenId>(3 + rng() % (vocab - 3)));
    }
  }
  for (int i = 0; i < 64; ++i)
    request.prompt_ids.push_back(static_cast<TokenId>(3 + rng() % (vocab - 3)));
  scheduler::SchedulerOptions options = engine.scheduler_options;
  options.max_batch_tokens = static_cast<int64_t>(request.prompt_ids.size());
  {
    scheduler::Scheduler scheduler(options);
    scheduler::Request full = request;
    full.chunks.clear();
    absl::StatusOr<double> t = TimeToFirstToken(scheduler, *engine.backend, full);
    if (!t.ok()) return t.status();
    timing.full.push_back(*t);
  }
  scheduler::Scheduler scheduler(options);
  request.blend = scheduler::BlendOptions{.recompute_ratio = ratio, .check_layers = check_layers};
  request.chunk_context_tokens = 0;  // random weights: no BOS
  scheduler::Request prefetch = request;
  prefetch.id = 2;
  prefetch.kind = scheduler::RequestKind::kPrefill;
  if (absl::StatusOr<double> t = TimeToFirstToken(scheduler, *engine.backend, prefetch); !t.ok()) {
    return t.status();
  }
  absl::StatusOr<double> t = TimeToFirstToken(scheduler, *engine.backend, request);
  if (!t.ok()) return t.status();
  if (scheduler.counters().blend_steps != 1) return absl::InternalError("no blend step ran");
  timing.blend.push_back(*t);
  timing.recomputed = scheduler.counters().blend_recomputed_tokens;
  return absl::OkStatus();
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int RunBenchBlend(const std::vector<std::string>& raw_args) {
  const std::string name = "bench";
  ArgSpec spec{
      .value_options = {"samples", "config", "chunk-tokens", "reps", "check-layers", "kv-dtype"},
      .flag_options = {"json", "no-ttft"}};
  absl::StatusOr<ParsedArgs> args = ParseArgs(raw_args, spec);
  if (!args.ok()) return UsageError(name, std::string(args.status().message()));
  absl::StatusOr<int64_t> samples = args->GetInt("samples", 48);
  absl::StatusOr<int64_t> chunk_tokens = args->GetInt("chunk-tokens", 1000);
  absl::StatusOr<int64_t> reps = args->GetInt("reps", 3);
  std::vector<int32_t> check_layers;
  for (absl::string_view word :
       absl::StrSplit(args->Get("check-layers").value_or("1,2,3"), ',', absl::SkipWhitespace())) {
    int32_t layer = 0;
    if (!absl::SimpleAtoi(word, &layer) || layer < 0 ||
        (!check_layers.empty() && layer <= check_layers.back())) {
      return UsageError(name, "--check-layers: ascending layer numbers, e.g. 1 or 1,2");
    }
    check_layers.push_back(layer);
  }
  const std::string kv_name = args->Get("kv-dtype").value_or("bf16");
  if (kv_name != "bf16" && kv_name != "f32") return UsageError(name, "--kv-dtype bf16|f32");
  const engine::DType kv_dtype = kv_name == "f32" ? engine::DType::kF32 : engine::DType::kBF16;
  for (const absl::Status& s : {samples.status(), chunk_tokens.status(), reps.status()}) {
    if (!s.ok()) return UsageError(name, std::string(s.message()));
  }
  if (*samples < 1 || *chunk_tokens < 16 || *reps < 1 || check_layers.empty()) {
    return UsageError(name, "--samples >= 1, --chunk-tokens >= 16, --reps >= 1, --check-layers");
  }
  const auto fail = [](const absl::Status& status) {
    std::cerr << "strata bench blend: " << status.message() << "\n";
    return kExitFailure;
  };
  absl::StatusOr<engine::LoadedModel> real = engine::LoadModel(DefaultModelDir());
  if (!real.ok()) return fail(real.status());
  absl::StatusOr<engine::ModelConfig> config = ReadModelConfigFile(args->Get("config").value_or(
      BenchConfigPath("llama-20m-4k.json").string()));
  if (!config.ok()) return fail(config.status());
  if (4 * *chunk_tokens + 64 >= config->max_position_embeddings) {
    return UsageError(name, "4 chunks of --chunk-tokens + 64 must fit the model's context");
  }
  if (check_layers.back() >= std::min(real->config.num_layers, config->num_layers)) {
    return UsageError(name, "--check-layers must be below both models' layer counts");
  }
  absl::StatusOr<engine::LoadedModel> random = engine::cpu::MakeRandomModel(*config, 1234);
  if (!random.ok()) return fail(random.status());
  nlohmann::json report;
  report["check_layers"] = check_layers;
  report["kv_dtype"] = kv_name;
  absl::StatusOr<nlohmann::json> real_quality =
      MeasureQuality(*real, true, {3, 32, 16}, *samples, check_layers, kv_dtype);
  if (!real_quality.ok()) return fail(real_quality.status());
  report["aidreams260K"] = *real_quality;
  absl::StatusOr<nlohmann::json> random_quality = MeasureQuality(
      *random, false, {4, 128, 32}, std::max<int64_t>(4, *samples / 8), check_layers, kv_dtype);
  if (!random_quality.ok()) return fail(random_quality.status());
  report["random_" + config->architecture_name] = *random_quality;

  if (args->Has("no-ttft")) {
    PrintBlendReport(report, std::cout);
    if (args->Has("json")) std::cout << report.dump() << "\n";
    return kExitOk;
  }
  ServingOptions options;
  options.backend_options.precision = kDefaultServingPrecision;  // what the daemon runs
  options.cache.block_size = kBlockSize;
  options.cache.device_blocks = 3 * (4 * *chunk_tokens + 64) / kBlockSize;
  absl::StatusOr<ServingEngine> engine = MakeServingEngine(
      *random, std::make_unique<NumberTokenizer>(config->vocab_size), {}, options);
  if (!engine.ok()) return fail(engine.status());
  Timing timing;
  for (int64_t rep = 0; rep < *reps; ++rep) {
    absl::Status s =
        TimeOnce(*engine, *chunk_tokens, 0.15f, check_layers, static_cast<uint32_t>(rep), timing);
    if (!s.ok()) return fail(s);
  }
  const double full = Median(timing.full), blend = Median(timing.blend);
  report["ttft"] = {{"chunks", 4},
                    {"chunk_tokens", *chunk_tokens},
                    {"question_tokens", 64},
                    {"ratio", 0.15},
                    {"full_prefill_s", full},
                    {"blend_s", blend},
                    {"speedup", full / blend},
                    {"recomputed_tokens", timing.recomputed}};
  PrintBlendReport(report, std::cout);
  if (args->Has("json")) std::cout << report.dump() << "\n";
  return kExitOk;
}

}  // namespace strata::server

namespace strata::server {

void PrintBlendReport(const nlohmann::json& report, std::ostream& out) {
  for (const auto& [model, quality] : report.items()) {
    if (!quality.is_object() || !quality.contains("naive")) continue;
    out << absl::StrFormat(
        "%s: %d samples of %d chunks x %d tokens + a %d-token question, check layers %s\n", model,
        quality["samples"].get<int64_t>(), quality["chunks"].get<int64_t>(),
        quality["chunk_tokens"].get<int64_t>(), quality["question_tokens"].get<int64_t>(),
        report["check_layers"].dump());
    const double naive_kl = quality["naive"]["kl"].get<double>();
    out << "  case      KL(full||blend)  naive/KL  top-1  recomputed\n";
    for (const BlendCase& c : Cases()) {
      const nlohmann::json& q = quality[c.name];
      const double kl = q["kl"].get<double>();
      out << absl::StrFormat("  %-8s  %15.6f  %8.1f  %5.3f  %9.3f\n", c.name, kl,
                             kl > 0 ? naive_kl / kl : 0.0, q["top1"].get<double>(),
                             q["recomputed"].get<double>());
    }
  }
  if (!report.contains("ttft")) return;
  const nlohmann::json& ttft = report["ttft"];
  out << absl::StrFormat(
      "TTFT, %d cached chunks of %d tokens + %d-token question (r = %.2f):\n"
      "  full prefill %8.1f ms\n  blend        %8.1f ms   %.2fx faster\n",
      ttft["chunks"].get<int64_t>(), ttft["chunk_tokens"].get<int64_t>(),
      ttft["question_tokens"].get<int64_t>(), ttft["ratio"].get<double>(),
      ttft["full_prefill_s"].get<double>() * 1e3, ttft["blend_s"].get<double>() * 1e3,
      ttft["speedup"].get<double>());
}

}  // namespace strata::server
