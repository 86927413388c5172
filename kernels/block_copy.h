// Block gather/scatter for tier moves: copies whole KV blocks, listed by
// index, from one block array to another in one launch. dst block
// dst_blocks[i] = src block src_blocks[i]. With an identity list on one side
// it gathers arena blocks into a contiguous staging buffer, or scatters one
// back; with arena ids on both sides it performs a batch of in-arena copies
// (BlockMoveKind::kCopy). Either side may be device memory or pinned host
// memory mapped into the device's address space (zero-copy PCIe reads and
// writes). Launchers return the launch's cudaError_t. Thread-safe; the
// destination blocks of one launch must be distinct and must not be sources.
#ifndef STRATA_KERNELS_BLOCK_COPY_H_
#define STRATA_KERNELS_BLOCK_COPY_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace strata::kernels {

struct BlockCopyParams {
  const std::byte* src = nullptr;       // block 0 of the source array
  std::byte* dst = nullptr;             // block 0 of the destination array
  const int32_t* src_blocks = nullptr;  // [count] device memory
  const int32_t* dst_blocks = nullptr;  // [count] device memory
  int64_t block_bytes = 0;              // a multiple of 16
  int count = 0;
};

cudaError_t LaunchBlockCopy(const BlockCopyParams& params, cudaStream_t stream);

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_BLOCK_COPY_H_
