// itt_table.h - live tasks by Initiator Task Tag: open addressing with
// linear probing and backward-shift deletion, fixed capacity (allocated once:
// nothing per command). A connection keeps one for its own tasks (lookups by
// Data-Out and ABORT TASK); a session that may have several connections keeps
// one more, so a tag is unique across the session (RFC 7143 11.2.1.8).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace scstu::iscsi {

template <typename T>
class IttTable {
 public:
  // Room for `max_entries` live tags (a quarter of the slots: short probes);
  // more are refused once half the slots are taken.
  void reset(size_t max_entries) {
    size_t n = 2;
    while (n < max_entries * 4) n <<= 1;
    slots_.assign(n, Slot{});
    max_entries_ = n / 2;
    size_ = 0;
  }

  T* find(uint32_t itt) const {
    for (size_t i = home(itt);; i = next(i)) {
      const Slot& s = slots_[i];
      if (!s.owner) return nullptr;
      if (s.itt == itt) return s.owner;
    }
  }

  enum class Insert { kDone, kInUse, kFull };
  Insert insert(uint32_t itt, T* owner) {
    size_t i = home(itt);
    for (; slots_[i].owner; i = next(i))
      if (slots_[i].itt == itt) return slots_[i].owner == owner ? Insert::kDone : Insert::kInUse;
    if (size_ >= max_entries_) return Insert::kFull;
    slots_[i] = Slot{itt, owner};
    ++size_;
    return Insert::kDone;
  }

  // Removes `itt` if `owner` holds it; false if it did not.
  bool erase(uint32_t itt, const T* owner) {
    size_t i = home(itt);
    for (; slots_[i].owner; i = next(i))
      if (slots_[i].itt == itt) break;
    if (!slots_[i].owner || slots_[i].owner != owner) return false;
    // Backward-shift deletion keeps every probe chain intact.
    slots_[i] = Slot{};
    for (size_t j = next(i); slots_[j].owner; j = next(j)) {
      size_t h = home(slots_[j].itt);
      bool movable = (j > i) ? (h <= i || h > j) : (h <= i && h > j);
      if (movable) {
        slots_[i] = slots_[j];
        slots_[j] = Slot{};
        i = j;
      }
    }
    --size_;
    return true;
  }

  size_t size() const { return size_; }

 private:
  struct Slot {
    uint32_t itt = 0;
    T* owner = nullptr;
  };
  size_t home(uint32_t itt) const { return (size_t{itt} * 2654435761u) & (slots_.size() - 1); }
  size_t next(size_t i) const { return (i + 1) & (slots_.size() - 1); }

  std::vector<Slot> slots_;
  size_t max_entries_ = 0;
  size_t size_ = 0;
};

}  // namespace scstu::iscsi
