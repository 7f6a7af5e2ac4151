// Fuzz target: the MODE SELECT parameter list parser (header, block
// descriptors, pages). Invariants: a rejected list changes nothing; an
// accepted one changes only changeable bits; MODE SENSE still works.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "mode_pages_snapshot.h"
#include "scsi/mode_pages.h"
#include "scsi/mode_select.h"

using namespace scstu::scsi;

using scstu::fuzz::snapshot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  ModePagesConfig cfg;
  cfg.device_type = (data[0] & 0x01) ? 0x00 : 0x01;
  cfg.wce_changeable = (data[0] & 0x08) == 0;
  ModePages pages(cfg);
  ModeSelectInput in;
  in.ten_byte = data[0] & 0x02;
  in.save = data[0] & 0x04;
  in.device_type = cfg.device_type;
  in.block_size = 512;
  const std::vector<uint8_t> before = snapshot(pages, PageControl::kCurrent);
  const std::vector<uint8_t> changeable = snapshot(pages, PageControl::kChangeable);
  bool changed = false;
  const auto err =
      apply_mode_select(pages, in, std::span<const uint8_t>(data + 1, size - 1), &changed);
  const std::vector<uint8_t> after = snapshot(pages, PageControl::kCurrent);
  if (before.size() != after.size()) std::abort();
  if (err) {
    if (after != before || changed) std::abort();
    if (err->field.in_cdb) std::abort();
    if (err->field.field >= size - 1 + 8 && err->code.asc != 0x1A) std::abort();
    return 0;
  }
  for (size_t i = 0; i < after.size(); ++i) {
    // Page headers (code, length) repeat in `changeable`; data bytes outside the mask stay.
    if ((before[i] ^ after[i]) & ~changeable[i]) std::abort();
  }
  if (changed != (before != after)) std::abort();
  return 0;
}
