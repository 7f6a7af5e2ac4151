// data_allocator.h - the producer's allocator for one queue's share of the
// data area: page-granular (SCSTU_DATA_ALIGN) runs tracked in a bitmap, next-fit
// from where the last allocation ended, so steady traffic is a few word scans.
// No system call, no allocation after construction. Not thread-safe: the owner
// serializes.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace scstu::ring {

class DataAllocator {
 public:
  DataAllocator() = default;
  // Manages [base, base + size) of the data area (offsets from hdr.data_offset).
  DataAllocator(uint64_t base, uint64_t size);

  // Returns the offset of a run of ceil(bytes / 4096) pages, or nullopt when
  // no such run is free. bytes must be > 0.
  std::optional<uint64_t> allocate(uint64_t bytes);
  // Returns a run from allocate(). False (and nothing freed) when it is not
  // one: outside the area, misaligned, or not fully allocated.
  bool release(uint64_t offset, uint64_t bytes);

  uint64_t free_pages() const { return free_pages_; }
  uint64_t total_pages() const { return pages_; }

 private:
  bool test(uint64_t page) const { return (bits_[page / 64] >> (page % 64)) & 1; }
  void set_range(uint64_t first, uint64_t n, bool used);
  uint64_t next_free(uint64_t from) const;  // pages_ if none
  // First used page in [from, limit), else min(limit, pages_).
  uint64_t next_used(uint64_t from, uint64_t limit) const;
  bool all_used(uint64_t first, uint64_t n) const;

  uint64_t base_ = 0;
  uint64_t pages_ = 0;
  uint64_t free_pages_ = 0;
  uint64_t hint_ = 0;
  std::vector<uint64_t> bits_;  // 1 = allocated
};

}  // namespace scstu::ring
