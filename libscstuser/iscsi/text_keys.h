// text_keys.h - the key=value text of Login and Text PDUs (RFC 7143 6.1).
//
// A data segment holds "key=value\0" pairs. Bounds (6.1, 13): a key is at
// most 63 bytes of [A-Za-z0-9.-+@_]; a value at most 255 bytes, except the
// binary CHAP values (CHAP_C, CHAP_R) whose encoded form may reach 8192 bytes;
// at most kMaxTextPairs pairs; a text (after C-bit continuation) at most
// kMaxTextBytes. Anything else is a parse error: the caller answers with a
// Login/Text error or Reject, never a bigger buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace scstu::iscsi {

inline constexpr size_t kMaxKeyLength = 63;
inline constexpr size_t kMaxValueLength = 255;
inline constexpr size_t kMaxBinaryValueLength = 8192;
inline constexpr size_t kMaxTextPairs = 128;
inline constexpr size_t kMaxTextBytes = size_t{64} * 1024;

struct TextPair {
  std::string key;
  std::string value;
};

// Parse a complete text (the concatenated data segments of a C-bit sequence).
// A last pair without its terminating NUL is accepted.
// Returns nullptr or the reason.
const char* parse_text(std::span<const uint8_t> text, std::vector<TextPair>& out);

// Append "key=value\0".
void append_pair(std::string& out, std::string_view key, std::string_view value);

// RFC 7143 6.1: numerical values are decimal or hexadecimal (0x...); anything
// else, or a value above `max`, gives nullopt.
std::optional<uint64_t> parse_number(std::string_view v, uint64_t max);

// Binary values: 0x/0X hex or 0b/0B base64. Bounded by `max_bytes` decoded.
std::optional<std::vector<uint8_t>> decode_binary(std::string_view v, size_t max_bytes);
std::string encode_hex(std::span<const uint8_t> bytes);     // "0x..."
std::string encode_base64(std::span<const uint8_t> bytes);  // "0b..."

// Split a comma-separated list value ("CRC32C,None").
std::vector<std::string_view> split_list(std::string_view v);

}  // namespace scstu::iscsi
