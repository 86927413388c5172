#include "engine/cpu/thread_pool.h"

#include <immintrin.h>

#include <algorithm>

#include "common/check.h"

namespace strata::engine::cpu {
namespace {

// A few hundred microseconds of spinning: long enough to catch the next
// region of a forward pass, short enough not to burn a core between steps.
constexpr int kSpinIterations = 4096;

}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads) {
  CHECK_GE(threads, 1);
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  Publish(generation_.load() + 1);
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::Drain(uint64_t generation) {
  const uint64_t tag = generation & 0xffffffffu;
  uint64_t word = claim_.load(std::memory_order_acquire);
  while ((word >> 32) == tag && static_cast<int>(word & 0xffffffffu) < threads_) {
    if (!claim_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel)) continue;
    // The caller cannot finish the region (and retire task_) before this
    // piece counts as done.
    (*task_)(static_cast<int>(word & 0xffffffffu));
    done_.fetch_add(1, std::memory_order_acq_rel);
    word = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::WorkerLoop() {
  // Generation 0 is the pool's start, even if this thread starts late: a
  // region (or the stop) published before it ran must still be seen.
  uint64_t seen = 0;
  while (true) {
    uint64_t current = generation_.load(std::memory_order_acquire);
    for (int spin = 0; current == seen && spin < kSpinIterations; ++spin) {
      _mm_pause();
      current = generation_.load(std::memory_order_acquire);
    }
    if (current == seen) {
      // Dekker with Publish: either it sees this sleeper, or this sees its
      // generation; the re-check under the mutex closes the rest.
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      sleepers_.fetch_sub(1);
      continue;
    }
    seen = current;
    if (stop_.load(std::memory_order_acquire)) return;
    Drain(current);
  }
}

void ThreadPool::Publish(uint64_t generation) {
  generation_.store(generation);
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mutex_); }
    wake_.notify_all();
  }
}

void ThreadPool::Run(const std::function<void(int)>& fn) {
  if (workers_.empty()) {
    for (int i = 0; i < threads_; ++i) fn(i);
    return;
  }
  task_ = &fn;
  done_.store(0, std::memory_order_relaxed);
  const uint64_t generation = generation_.load(std::memory_order_relaxed) + 1;
  claim_.store((generation & 0xffffffffu) << 32, std::memory_order_release);
  Publish(generation);
  Drain(generation);
  while (done_.load(std::memory_order_acquire) != threads_) _mm_pause();
  task_ = nullptr;
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = (n + grain - 1) / grain;
  const int parts = static_cast<int>(std::min<int64_t>(size(), chunks));
  if (parts <= 1) {
    fn(0, n);
    return;
  }
  Run([&](int index) {
    if (index >= parts) return;
    const int64_t begin = std::min(n, chunks * index / parts * grain);
    const int64_t end = std::min(n, chunks * (index + 1) / parts * grain);
    if (begin < end) fn(begin, end);
  });
}

void ThreadPool::ParallelForDynamic(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  if (n == 1 || threads_ == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  Run([&](int) {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
  });
}

}  // namespace strata::engine::cpu
