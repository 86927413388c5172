#include "engine/cpu/thread_pool.h"

#include <dlfcn.h>
#include <immintrin.h>

#include <algorithm>

#include "common/check.h"

namespace strata::engine::cpu {
namespace {

// About 50-100 microseconds of spinning: long enough to catch the next
// parallel region of a forward pass, short enough not to starve oneDNN.
constexpr int kSpinIterations = 256;

struct OmpTask {
  const std::function<void(int)>* fn;
  int (*thread_num)();
};

}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads) {
  CHECK_GE(threads, 1);
  gomp_parallel_ = reinterpret_cast<GompParallelFn>(dlsym(RTLD_DEFAULT, "GOMP_parallel"));
  omp_thread_num_ = reinterpret_cast<OmpThreadNumFn>(dlsym(RTLD_DEFAULT, "omp_get_thread_num"));
  if (gomp_parallel_ != nullptr && omp_thread_num_ != nullptr) return;
  gomp_parallel_ = nullptr;
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

void ThreadPool::OmpTrampoline(void* data) {
  const auto* task = static_cast<const OmpTask*>(data);
  (*task->fn)(task->thread_num());
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  while (true) {
    uint64_t current = generation_.load(std::memory_order_acquire);
    for (int spin = 0; current == seen && spin < kSpinIterations; ++spin) {
      _mm_pause();
      current = generation_.load(std::memory_order_acquire);
    }
    if (current == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      continue;
    }
    seen = current;
    if (stop_.load(std::memory_order_acquire)) return;
    (*task_)(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::Run(const std::function<void(int)>& fn) {
  if (gomp_parallel_ != nullptr && threads_ > 1) {
    OmpTask task{&fn, omp_thread_num_};
    gomp_parallel_(&OmpTrampoline, &task, static_cast<unsigned>(threads_), 0);
    return;
  }
  if (workers_.empty()) {
    fn(0);
    return;
  }
  task_ = &fn;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  fn(0);
  while (pending_.load(std::memory_order_acquire) != 0) _mm_pause();
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
