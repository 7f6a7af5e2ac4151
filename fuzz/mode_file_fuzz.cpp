// Fuzz target: the saved mode pages file (scsi/mode_file.*, read by
// ModePages::load_saved_text when a LogicalUnit with a mode_file starts): one
// page a line, "<page hex> <bytes hex>", from a file a crash or a person may
// have mangled. First byte: the device type and the WCE changeability.
// Invariants: a rejected file changes nothing; an accepted one changes only
// changeable bits of the saved and current values, and what it saves again
// reads back to the same pages.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "mode_pages_snapshot.h"
#include "scsi/mode_pages.h"

using namespace scstu::scsi;

using scstu::fuzz::snapshot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  ModePagesConfig cfg;
  cfg.device_type = (data[0] & 1) ? 0x00 : 0x01;
  cfg.wce_changeable = (data[0] & 2) == 0;
  ModePages pages(cfg);
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto before = snapshot(pages, PageControl::kSaved);
  const auto current_before = snapshot(pages, PageControl::kCurrent);
  const auto changeable = snapshot(pages, PageControl::kChangeable);
  const std::string error = pages.load_saved_text(text);
  const auto after = snapshot(pages, PageControl::kSaved);
  if (!error.empty()) {
    if (after != before || snapshot(pages, PageControl::kCurrent) != current_before) std::abort();
    return 0;
  }
  if (after.size() != before.size() || snapshot(pages, PageControl::kCurrent) != after) {
    std::abort();
  }
  for (size_t i = 0; i < after.size(); ++i) {
    if ((before[i] ^ after[i]) & ~changeable[i]) std::abort();
  }
  ModePages again(cfg);
  if (!again.load_saved_text(pages.saved_text()).empty()) std::abort();
  if (snapshot(again, PageControl::kSaved) != after) std::abort();
  return 0;
}
