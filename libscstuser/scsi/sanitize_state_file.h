// sanitize_state_file.h - a sanitize operation's state kept across a restart
// of the handler (SBC-4 4.11.2: the operation is suspended by a power on and
// resumed after the logical unit reset that follows; a failed one leaves the
// unit in sanitize failure mode until it is cleared, 4.11.4).
//
//   scstu-sanitize-state 1
//   state in-progress | failed
//   ause 0|1
//   method overwrite | erase | deallocate
//   pass <one block of pattern, hex>         (overwrite: one line per pass)
//   done <pass> <lba>                        (optional: the checkpoint)
//
// No file: no operation in progress and no failure. The file is replaced
// durably (core/durable_file.h) before SANITIZE completes and removed once
// the operation succeeds or failure mode is left.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace scstu::scsi {

struct SanitizeState {
  enum class Phase : uint8_t { kInProgress, kFailed };
  Phase phase = Phase::kInProgress;
  bool ause = false;
  bool deallocate = false;                   // erase by deallocating
  std::vector<std::vector<uint8_t>> passes;  // overwrite; empty: erase with zeroes
  // Checkpoint: every block before `done_lba` of pass `done_pass` (and all of
  // the passes before it) is written and flushed.
  uint32_t done_pass = 0;
  uint64_t done_lba = 0;
};

// The file's text for `state`.
std::string format_sanitize_state(const SanitizeState& state);

// Parses a file's text. Returns "" or what is wrong ("line 3: ...").
// `block_size` bounds a pass's pattern (it must be exactly one block).
std::string parse_sanitize_state(const std::string& text, uint32_t block_size, SanitizeState* out);

}  // namespace scstu::scsi
