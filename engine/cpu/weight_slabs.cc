#include "engine/cpu/weight_slabs.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "engine/cpu/aligned_buffer.h"

namespace strata::engine::cpu {
namespace {

constexpr size_t kLine = 64;

struct Slabs {
  std::mutex mutex;
  // The slab new matrices go to. Held weakly: once every matrix in it is
  // gone (a model unloaded), it is freed, not kept for the next model.
  std::weak_ptr<std::byte> current;
  size_t capacity = 0;
  size_t used = 0;
};

Slabs& TheSlabs() {
  static Slabs* slabs = new Slabs();  // never destroyed: used until exit
  return *slabs;
}

// A slab is at least kWeightSlabBytes, so AlignedBuffer places it on 2 MiB
// boundaries with huge pages asked for.
std::shared_ptr<std::byte> NewSlab(size_t bytes) {
  return std::shared_ptr<std::byte>(static_cast<std::byte*>(AlignedBuffer::Allocate(bytes)),
                                    [](std::byte* q) { std::free(q); });
}

}  // namespace

std::shared_ptr<std::byte> AllocateWeightMemory(size_t bytes) {
  const size_t need = (bytes + kLine + kLine - 1) / kLine * kLine;  // spare line, whole lines
  Slabs& slabs = TheSlabs();
  std::lock_guard<std::mutex> lock(slabs.mutex);
  std::shared_ptr<std::byte> slab = slabs.current.lock();
  if (slab == nullptr || slabs.capacity - slabs.used < need) {
    slabs.capacity = std::max(kWeightSlabBytes, need);
    slab = NewSlab(slabs.capacity);
    slabs.current = slab;
    slabs.used = 0;
  }
  std::byte* place = slab.get() + slabs.used;
  slabs.used += need;
  return std::shared_ptr<std::byte>(slab, place);  // shares the slab's ownership
}

}  // namespace strata::engine::cpu
