// The threads of the CPU backend's kernels (GEMM, attention, element-wise
// passes). A region's pieces are claimed one at a time by whichever threads
// are running, and the caller waits only for pieces already claimed: a
// worker that the OS has not scheduled (two cores shared with other work)
// costs nothing, where a barrier over all threads would wait a whole time
// slice (milliseconds) in each of the ~100 regions of a decode step. Workers
// spin briefly between regions, then sleep. oneDNN is not used by the
// forward pass, so its OpenMP team does not compete with these threads.
//
// Results never depend on which thread runs a piece: callers give each piece
// fixed work (see gemm.h for why that keeps logits batch-invariant).
#ifndef STRATA_ENGINE_CPU_THREAD_POOL_H_
#define STRATA_ENGINE_CPU_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
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

  // Calls fn(piece) once for each piece in [0, size()), each on whichever
  // thread claims it (possibly all on the caller); returns when all are done.
  void Run(const std::function<void(int piece)>& fn);

  // Splits [0, n) into size() contiguous ranges of whole `grain`s and calls
  // fn(begin, end) for each non-empty one.
  void ParallelFor(int64_t n, int64_t grain,
                   const std::function<void(int64_t begin, int64_t end)>& fn);

  // Hands items [0, n) out one at a time (dynamic balance for uneven items);
  // fn(item) runs exactly once per item.
  void ParallelForDynamic(int64_t n, const std::function<void(int64_t item)>& fn);

 private:
  void WorkerLoop();
  // Claims and runs pieces of region `generation` until none is left.
  void Drain(uint64_t generation);
  // Publishes a new generation and wakes sleeping workers.
  void Publish(uint64_t generation);

  int threads_ = 1;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* task_ = nullptr;  // valid while pieces are unfinished
  // Generation of the current region (high 32 bits) and its next unclaimed
  // piece (low 32 bits), in one word so that a stale claim fails.
  std::atomic<uint64_t> claim_{0};
  // Bumped per region; workers spin on it, then sleep on wake_. (Not
  // std::atomic::wait: libstdc++ 12's can miss a notify.)
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_THREAD_POOL_H_
