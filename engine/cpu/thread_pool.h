// The threads for the CPU backend's own kernels (GEMV, attention,
// element-wise passes). Debian's oneDNN runs its GEMMs on libgomp's OpenMP
// team, whose idle threads spin for milliseconds after each parallel region;
// a second set of threads would then fight them for the cores. So when
// libgomp is loaded (it is, through libdnnl) the pool runs its regions on that
// same OpenMP team, found with dlsym because strata_cpu is not compiled with
// -fopenmp. Without libgomp it falls back to its own std::threads, which spin
// only briefly before sleeping.
#ifndef STRATA_ENGINE_CPU_THREAD_POOL_H_
#define STRATA_ENGINE_CPU_THREAD_POOL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace strata::engine::cpu {

// Run() is called from one thread at a time (the engine thread), which takes
// part in the work. Destruction joins the workers.
class ThreadPool {
 public:
  // `threads` >= 1 counts the calling thread: threads - 1 workers are started.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }
  // Whether regions run on the OpenMP team shared with oneDNN.
  bool uses_openmp() const { return gomp_parallel_ != nullptr; }

  // Calls fn(thread_index) once on each of size() threads; returns when all
  // are done.
  void Run(const std::function<void(int thread_index)>& fn);

  // Splits [0, n) into size() contiguous ranges of whole `grain`s and calls
  // fn(begin, end) for each non-empty one.
  void ParallelFor(int64_t n, int64_t grain,
                   const std::function<void(int64_t begin, int64_t end)>& fn);

  // Hands items [0, n) out one at a time (dynamic balance for uneven items);
  // fn(item) runs exactly once per item.
  void ParallelForDynamic(int64_t n, const std::function<void(int64_t item)>& fn);

 private:
  void WorkerLoop(int index);

  using GompParallelFn = void (*)(void (*)(void*), void*, unsigned, unsigned);
  using OmpThreadNumFn = int (*)();
  static void OmpTrampoline(void* data);

  int threads_ = 1;
  GompParallelFn gomp_parallel_ = nullptr;  // libgomp's entry, when loaded
  OmpThreadNumFn omp_thread_num_ = nullptr;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* task_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_THREAD_POOL_H_
