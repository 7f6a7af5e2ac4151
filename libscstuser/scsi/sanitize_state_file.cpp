#include "scsi/sanitize_state_file.h"

#include <algorithm>
#include <sstream>

namespace scstu::scsi {

namespace {

// SBC-4 5.30.2.2: OVERWRITE COUNT is 5 bits.
constexpr size_t kMaxPasses = 31;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string format_sanitize_state(const SanitizeState& s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "scstu-sanitize-state 1\n";
  out += s.phase == SanitizeState::Phase::kFailed ? "state failed\n" : "state in-progress\n";
  out += s.ause ? "ause 1\n" : "ause 0\n";
  out += s.deallocate       ? "method deallocate\n"
         : s.passes.empty() ? "method erase\n"
                            : "method overwrite\n";
  for (const std::vector<uint8_t>& pass : s.passes) {
    out += "pass ";
    for (uint8_t b : pass) {
      out += kHex[b >> 4];
      out += kHex[b & 0xF];
    }
    out += '\n';
  }
  if (s.done_pass != 0 || s.done_lba != 0) {
    out += "done " + std::to_string(s.done_pass) + " " + std::to_string(s.done_lba) + "\n";
  }
  return out;
}

std::string parse_sanitize_state(const std::string& text, uint32_t block_size, SanitizeState* out) {
  SanitizeState s;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  bool have_state = false, have_ause = false, have_done = false;
  std::string method;
  auto bad = [&](const std::string& why) { return "line " + std::to_string(lineno) + ": " + why; };
  while (std::getline(in, line)) {
    ++lineno;
    std::istringstream l(line);
    std::string key, value, extra;
    l >> key >> value;
    if (key == "done") {
      uint64_t pass = 0, lba = 0;
      std::istringstream v(value);
      if (have_done || !(v >> pass) || !v.eof() || !(l >> lba) || (l >> extra) ||
          pass >= kMaxPasses) {
        return bad("expected 'done <pass> <lba>'");
      }
      s.done_pass = static_cast<uint32_t>(pass);
      s.done_lba = lba;
      have_done = true;
      continue;
    }
    if (l >> extra) return bad("unexpected '" + extra + "'");
    if (lineno == 1) {
      if (key != "scstu-sanitize-state" || value != "1") {
        return bad("not a version 1 scstu-sanitize-state file");
      }
    } else if (key == "state" && (value == "in-progress" || value == "failed") && !have_state) {
      s.phase =
          value == "failed" ? SanitizeState::Phase::kFailed : SanitizeState::Phase::kInProgress;
      have_state = true;
    } else if (key == "ause" && (value == "0" || value == "1") && !have_ause) {
      s.ause = value == "1";
      have_ause = true;
    } else if (key == "method" && method.empty() &&
               (value == "overwrite" || value == "erase" || value == "deallocate")) {
      method = value;
    } else if (key == "pass" && method == "overwrite") {
      if (value.size() != size_t{block_size} * 2) {
        return bad("a pass must be one block (" + std::to_string(block_size) + " bytes) of hex");
      }
      if (s.passes.size() == kMaxPasses) return bad("more than 31 passes");
      std::vector<uint8_t> pass(block_size);
      for (size_t i = 0; i < pass.size(); ++i) {
        const int hi = hex_digit(value[2 * i]), lo = hex_digit(value[2 * i + 1]);
        if (hi < 0 || lo < 0) return bad("a pass must be hex");
        pass[i] = static_cast<uint8_t>(hi << 4 | lo);
      }
      s.passes.push_back(std::move(pass));
    } else if (!key.empty()) {
      return bad("unexpected '" + line + "'");
    }
  }
  if (lineno == 0) return "empty";
  if (!have_state || !have_ause || method.empty()) return "incomplete (needs state, ause, method)";
  if (method == "overwrite" && s.passes.empty()) return "overwrite without a pass";
  if (s.done_pass >= std::max<size_t>(1, s.passes.size())) return "done: no such pass";
  s.deallocate = method == "deallocate";
  *out = std::move(s);
  return "";
}

}  // namespace scstu::scsi
