#include "scsi/identity.h"

#include <cstdio>

namespace scstu::scsi {

void pad_ascii(uint8_t* dst, size_t n, std::string_view s) {
  for (size_t i = 0; i < n; ++i) {
    const char c = i < s.size() ? s[i] : ' ';
    dst[i] = (c >= 0x20 && c < 0x7F) ? static_cast<uint8_t>(c) : ' ';
  }
}

namespace {

uint64_t fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

LuIdentity make_identity(const LogicalUnitConfig& cfg) {
  LuIdentity id;
  const uint64_t h1 = fnv1a(cfg.serial, fnv1a(cfg.product, fnv1a(cfg.vendor)));
  const uint64_t h2 = fnv1a("naa-ext", h1);
  if (cfg.naa) {
    id.naa = *cfg.naa;
  } else {
    // SPC-4 7.8.6.6.5: NAA 6, IEEE COMPANY_ID (24 bits), VENDOR SPECIFIC
    // IDENTIFIER (36 bits), VENDOR SPECIFIC IDENTIFIER EXTENSION (64 bits).
    const uint32_t oui = cfg.ieee_company_id & 0xFFFFFF;
    const uint64_t vsid = h1 & 0xFFFFFFFFFull;
    id.naa[0] = static_cast<uint8_t>(0x60 | (oui >> 20));
    id.naa[1] = static_cast<uint8_t>(oui >> 12);
    id.naa[2] = static_cast<uint8_t>(oui >> 4);
    id.naa[3] = static_cast<uint8_t>(((oui & 0x0F) << 4) | (vsid >> 32));
    for (int i = 0; i < 4; ++i) id.naa[4 + i] = static_cast<uint8_t>(vsid >> (24 - 8 * i));
    for (int i = 0; i < 8; ++i) id.naa[8 + i] = static_cast<uint8_t>(h2 >> (56 - 8 * i));
  }
  if (!cfg.serial.empty()) {
    for (char c : cfg.serial) id.serial.push_back((c >= 0x20 && c < 0x7F) ? c : '_');
  } else {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h1));
    id.serial = buf;
  }
  return id;
}

}  // namespace scstu::scsi
