// mode_pages.h - the mode pages of one logical unit (SPC-4 7.5, SBC-3 6.4):
// current, saved, default and changeable values, MODE SENSE page assembly and
// the MODE SELECT parameter list parser/validator.
//
// Pages (disk): 01h read-write error recovery, 08h caching, 0Ah control,
// 1Ch informational exceptions control. Other device types: 0Ah, 1Ch.
// Values are shared by all I_T nexuses; the hot bits (WCE, D_SENSE, SWP, TAS)
// are mirrored in atomics so the data path reads them without the lock.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "scsi/sense.h"

namespace scstu::scsi {

// SPC-4 7.5.1 page control (MODE SENSE byte 2 bits 7-6).
enum class PageControl : uint8_t { kCurrent = 0, kChangeable = 1, kDefault = 2, kSaved = 3 };

struct ModePagesConfig {
  uint8_t device_type = 0;
  bool write_cache = true;     // WCE default
  bool wce_changeable = true;  // false for NV_CACHE (always reports WCE = 0)
  bool d_sense = false;
};

// A MODE SELECT failure: sense code and where.
struct ModeSelectError {
  SenseCode code;
  FieldPointer field;
};

class ModePages {
 public:
  static constexpr size_t kMaxPageLength = 64;
  explicit ModePages(const ModePagesConfig& config);

  // Append page `page_code`/`subpage` (0x3F = all) as MODE SENSE returns it.
  // False if the page (or subpage) is not supported.
  bool sense(uint8_t page_code, uint8_t subpage, PageControl pc, std::vector<uint8_t>& out) const;

  // Validate and apply a MODE SELECT parameter list (after the header and
  // block descriptors: `pages` starts at the first page; `base` is its offset
  // in the parameter list, for field pointers). All pages are validated
  // before any is applied. `changed` tells whether a current value changed.
  std::optional<ModeSelectError> select(std::span<const uint8_t> pages, size_t base, bool save,
                                        bool* changed);

  // Back to the saved values (SPC-4: logical unit reset / power on).
  void reset_to_saved();

  // The saved values as text, one page a line: "<page hex> <bytes hex>".
  std::string saved_text() const;
  // Adopt saved values from saved_text() output (also as current values).
  // Unknown pages, wrong lengths and unchangeable bits that differ from the
  // defaults are refused: returns what is wrong, "" on success.
  std::string load_saved_text(const std::string& text);

  bool wce() const { return wce_.load(std::memory_order_relaxed); }
  bool d_sense() const { return d_sense_.load(std::memory_order_relaxed); }
  bool swp() const { return swp_.load(std::memory_order_relaxed); }
  bool tas() const { return tas_.load(std::memory_order_relaxed); }

 private:
  struct Page {
    uint8_t code = 0;
    uint8_t length = 0;  // total bytes including the 2-byte header
    std::array<uint8_t, kMaxPageLength> current{};
    std::array<uint8_t, kMaxPageLength> saved{};
    std::array<uint8_t, kMaxPageLength> defaults{};
    std::array<uint8_t, kMaxPageLength> changeable{};
  };
  Page* find(uint8_t code);
  const Page* find(uint8_t code) const;
  void mirror_locked();

  mutable std::mutex mutex_;
  std::vector<Page> pages_;
  std::atomic<bool> wce_{false};
  std::atomic<bool> d_sense_{false};
  std::atomic<bool> swp_{false};
  std::atomic<bool> tas_{false};
};

}  // namespace scstu::scsi
