// Memory for packed weight matrices: placed back to back in slabs of whole
// 2 MiB huge pages. Decode streams every matrix once per step, and a matrix
// in 4 KiB pages streams slower: the hardware prefetchers stop at each page
// and every page costs a TLB miss. A model's matrices are mostly a few MiB
// (llama-110m: 1.2 to 6.3 MB), so giving each its own huge pages would
// round each up to 2 MiB (a fifth more memory); in a slab only the unused
// tail of the last one is rounded, and pages never touched cost nothing.
#ifndef STRATA_ENGINE_CPU_WEIGHT_SLABS_H_
#define STRATA_ENGINE_CPU_WEIGHT_SLABS_H_

#include <cstddef>
#include <memory>

#include "engine/cpu/aligned_buffer.h"

namespace strata::engine::cpu {

// `bytes` plus a spare cache line (kernels may over-read a row tail),
// 64-byte aligned and uninitialised, valid while the returned pointer (or a
// copy) lives. A slab is freed when the last matrix placed in it is.
// Thread-safe.
std::shared_ptr<std::byte> AllocateWeightMemory(size_t bytes);

// Slab size: large enough that a slab holds many matrices, and only
// address space until its pages are touched.
inline constexpr size_t kWeightSlabBytes = size_t{64} << 20;
static_assert(kWeightSlabBytes >= AlignedBuffer::kHugeThreshold,
              "slabs are placed in huge pages by AlignedBuffer::Allocate");

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_WEIGHT_SLABS_H_
