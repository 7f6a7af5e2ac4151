#include "iscsi/text_keys.h"

#include <cstring>

namespace scstu::iscsi {
namespace {

bool key_char(uint8_t c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '+' || c == '@' || c == '_';
}

bool binary_key(std::string_view k) { return k == "CHAP_C" || k == "CHAP_R"; }

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int b64_digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

const char* parse_text(std::span<const uint8_t> text, std::vector<TextPair>& out) {
  out.clear();
  if (text.size() > kMaxTextBytes) return "text longer than 64 KiB";
  size_t pos = 0;
  while (pos < text.size()) {
    // Padding NULs between pairs are tolerated (some initiators pad).
    if (text[pos] == 0) {
      ++pos;
      continue;
    }
    const uint8_t* start = &text[pos];
    const void* nul = std::memchr(start, 0, text.size() - pos);
    size_t len = nul ? static_cast<const uint8_t*>(nul) - start : text.size() - pos;
    std::string_view pair(reinterpret_cast<const char*>(start), len);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return "key without '='";
    std::string_view key = pair.substr(0, eq), value = pair.substr(eq + 1);
    if (key.empty()) return "empty key";
    if (key.size() > kMaxKeyLength) return "key longer than 63 bytes";
    for (char c : key)
      if (!key_char(static_cast<uint8_t>(c))) return "invalid character in key";
    size_t max = binary_key(key) ? kMaxBinaryValueLength : kMaxValueLength;
    if (value.size() > max) return "value too long";
    if (out.size() == kMaxTextPairs) return "too many keys";
    out.push_back(TextPair{std::string(key), std::string(value)});
    pos += len + 1;
  }
  return nullptr;
}

void append_pair(std::string& out, std::string_view key, std::string_view value) {
  out.append(key);
  out.push_back('=');
  out.append(value);
  out.push_back('\0');
}

std::optional<uint64_t> parse_number(std::string_view v, uint64_t max) {
  if (v.empty() || v.size() > 20) return std::nullopt;
  uint64_t n = 0;
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
    if (v.size() > 18) return std::nullopt;
    for (char c : v.substr(2)) {
      int d = hex_digit(c);
      if (d < 0) return std::nullopt;
      n = n << 4 | static_cast<uint64_t>(d);
    }
  } else {
    for (char c : v) {
      if (c < '0' || c > '9') return std::nullopt;
      if (n > (UINT64_MAX - 9) / 10) return std::nullopt;
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
  }
  if (n > max) return std::nullopt;
  return n;
}

std::optional<std::vector<uint8_t>> decode_binary(std::string_view v, size_t max_bytes) {
  if (v.size() < 3 || v[0] != '0') return std::nullopt;
  std::vector<uint8_t> out;
  std::string_view body = v.substr(2);
  if (v[1] == 'x' || v[1] == 'X') {
    // RFC 7143 6.1: an odd number of hex digits has an implied leading zero.
    size_t bytes = (body.size() + 1) / 2;
    if (bytes > max_bytes) return std::nullopt;
    out.reserve(bytes);
    size_t i = 0;
    if (body.size() % 2) {
      int d = hex_digit(body[0]);
      if (d < 0) return std::nullopt;
      out.push_back(static_cast<uint8_t>(d));
      i = 1;
    }
    for (; i < body.size(); i += 2) {
      int hi = hex_digit(body[i]), lo = hex_digit(body[i + 1]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<uint8_t>(hi << 4 | lo));
    }
    return out;
  }
  if (v[1] == 'b' || v[1] == 'B') {
    if (body.size() % 4) return std::nullopt;
    if (body.size() / 4 * 3 > max_bytes + 2) return std::nullopt;
    out.reserve(body.size() / 4 * 3);
    for (size_t i = 0; i < body.size(); i += 4) {
      int d[4];
      int pad = 0;
      for (int k = 0; k < 4; ++k) {
        char c = body[i + k];
        if (c == '=' && i + 4 == body.size() && k >= 2) {
          d[k] = 0;
          ++pad;
        } else if (pad) {
          return std::nullopt;
        } else {
          d[k] = b64_digit(c);
          if (d[k] < 0) return std::nullopt;
        }
      }
      uint32_t w = static_cast<uint32_t>(d[0] << 18 | d[1] << 12 | d[2] << 6 | d[3]);
      out.push_back(static_cast<uint8_t>(w >> 16));
      if (pad < 2) out.push_back(static_cast<uint8_t>(w >> 8));
      if (pad < 1) out.push_back(static_cast<uint8_t>(w));
    }
    if (out.size() > max_bytes) return std::nullopt;
    return out;
  }
  return std::nullopt;
}

std::string encode_hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s = "0x";
  s.reserve(2 + bytes.size() * 2);
  for (uint8_t b : bytes) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

std::string encode_base64(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string s = "0b";
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t w = uint32_t{bytes[i]} << 16;
    if (i + 1 < bytes.size()) w |= uint32_t{bytes[i + 1]} << 8;
    if (i + 2 < bytes.size()) w |= bytes[i + 2];
    s.push_back(kDigits[w >> 18 & 63]);
    s.push_back(kDigits[w >> 12 & 63]);
    s.push_back(i + 1 < bytes.size() ? kDigits[w >> 6 & 63] : '=');
    s.push_back(i + 2 < bytes.size() ? kDigits[w & 63] : '=');
  }
  return s;
}

std::vector<std::string_view> split_list(std::string_view v) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= v.size()) {
    size_t comma = v.find(',', pos);
    if (comma == std::string_view::npos) comma = v.size();
    out.push_back(v.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

}  // namespace scstu::iscsi
