// Fuzz target: the sanitize state file parser (scsi/sanitize_state_file.h).
// Invariants: an accepted file formats back to text that parses to the same
// state; passes are exactly one block each, at most 31.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "scsi/sanitize_state_file.h"

using namespace scstu::scsi;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint32_t block_size = (data[0] & 1) ? 512 : 8;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  SanitizeState s;
  if (!parse_sanitize_state(text, block_size, &s).empty()) return 0;
  if (s.passes.size() > 31) std::abort();
  for (const auto& p : s.passes) {
    if (p.size() != block_size) std::abort();
  }
  SanitizeState again;
  if (!parse_sanitize_state(format_sanitize_state(s), block_size, &again).empty()) std::abort();
  if (again.phase != s.phase || again.ause != s.ause || again.deallocate != s.deallocate ||
      again.passes != s.passes) {
    std::abort();
  }
  return 0;
}
