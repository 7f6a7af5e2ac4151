#include "ring/data_allocator.h"

#include <bit>

#include "ring/ring_abi.h"

namespace scstu::ring {

DataAllocator::DataAllocator(uint64_t base, uint64_t size)
    : base_(base), pages_(size / SCSTU_DATA_ALIGN), free_pages_(pages_), bits_((pages_ + 63) / 64) {
  // Bits past the end are permanently "allocated" so scans stop there.
  if (pages_ % 64) bits_.back() = ~0ull << (pages_ % 64);
}

uint64_t DataAllocator::next_free(uint64_t from) const {
  for (uint64_t w = from / 64; w < bits_.size(); ++w) {
    uint64_t free = ~bits_[w];
    if (w == from / 64) free &= ~0ull << (from % 64);
    if (free) return w * 64 + std::countr_zero(free);
  }
  return pages_;
}

uint64_t DataAllocator::next_used(uint64_t from, uint64_t limit) const {
  // Scans only up to `limit`: a run needs n free pages, not the whole
  // free tail of the area (which made every allocation a scan to the end).
  const uint64_t last_word = std::min<uint64_t>(bits_.size(), (limit + 63) / 64);
  for (uint64_t w = from / 64; w < last_word; ++w) {
    uint64_t used = bits_[w];
    if (w == from / 64) used &= ~0ull << (from % 64);
    if (used) return std::min(pages_, w * 64 + std::countr_zero(used));
  }
  return std::min(pages_, limit);
}

bool DataAllocator::all_used(uint64_t first, uint64_t n) const {
  for (uint64_t p = first; p < first + n;) {
    uint64_t bit = p % 64;
    uint64_t take = std::min<uint64_t>(64 - bit, first + n - p);
    uint64_t mask = (take == 64 ? ~0ull : ((1ull << take) - 1)) << bit;
    if ((bits_[p / 64] & mask) != mask) return false;
    p += take;
  }
  return true;
}

void DataAllocator::set_range(uint64_t first, uint64_t n, bool used) {
  for (uint64_t p = first; p < first + n;) {
    uint64_t bit = p % 64;
    uint64_t take = std::min<uint64_t>(64 - bit, first + n - p);
    uint64_t mask = (take == 64 ? ~0ull : ((1ull << take) - 1)) << bit;
    if (used)
      bits_[p / 64] |= mask;
    else
      bits_[p / 64] &= ~mask;
    p += take;
  }
}

std::optional<uint64_t> DataAllocator::allocate(uint64_t bytes) {
  const uint64_t n = (bytes + SCSTU_DATA_ALIGN - 1) / SCSTU_DATA_ALIGN;
  if (n == 0 || n > free_pages_) return std::nullopt;
  // Next fit: search [hint, end), then [0, end) once more.
  for (int pass = 0; pass < 2; ++pass) {
    uint64_t p = pass == 0 ? hint_ : 0;
    while (p < pages_) {
      uint64_t start = next_free(p);
      if (start >= pages_) break;
      uint64_t end = next_used(start, start + n);
      if (end - start >= n) {
        set_range(start, n, true);
        free_pages_ -= n;
        hint_ = start + n == pages_ ? 0 : start + n;
        return base_ + start * SCSTU_DATA_ALIGN;
      }
      p = end;
    }
  }
  return std::nullopt;
}

bool DataAllocator::release(uint64_t offset, uint64_t bytes) {
  const uint64_t n = (bytes + SCSTU_DATA_ALIGN - 1) / SCSTU_DATA_ALIGN;
  if (offset < base_ || (offset - base_) % SCSTU_DATA_ALIGN != 0 || n == 0) return false;
  const uint64_t first = (offset - base_) / SCSTU_DATA_ALIGN;
  if (first >= pages_ || n > pages_ - first) return false;
  if (!all_used(first, n)) return false;
  set_range(first, n, false);
  free_pages_ += n;
  return true;
}

}  // namespace scstu::ring
