#include "scsi/sense.h"

#include <algorithm>
#include <limits>

namespace scstu::scsi {

namespace {

// SPC-4 4.5.2.4.2 / 4.5.2.4.4: the three sense-key-specific bytes.
void put_sks_field(uint8_t* p, const FieldPointer& fp) {
  p[0] = 0x80;                                           // SKSV
  if (fp.in_cdb) p[0] |= 0x40;                           // C/D
  if (fp.bit != kNoBit) p[0] |= 0x08 | (fp.bit & 0x07);  // BPV, BIT POINTER
  p[1] = static_cast<uint8_t>(fp.field >> 8);
  p[2] = static_cast<uint8_t>(fp.field);
}

void put_sks_progress(uint8_t* p, uint16_t progress) {
  p[0] = 0x80;
  p[1] = static_cast<uint8_t>(progress >> 8);
  p[2] = static_cast<uint8_t>(progress);
}

void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

}  // namespace

SenseData SenseBuilder::build() const {
  return format_ == SenseFormat::kFixed ? build_fixed() : build_descriptor();
}

// SPC-4 4.5.3, Table 37: 18 bytes.
SenseData SenseBuilder::build_fixed() const {
  SenseData s;
  uint8_t* b = s.bytes.data();
  b[0] = deferred_ ? 0x71 : 0x70;
  if (information_ && *information_ <= std::numeric_limits<uint32_t>::max()) {
    b[0] |= 0x80;  // VALID
    uint32_t v = static_cast<uint32_t>(*information_);
    b[3] = static_cast<uint8_t>(v >> 24);
    b[4] = static_cast<uint8_t>(v >> 16);
    b[5] = static_cast<uint8_t>(v >> 8);
    b[6] = static_cast<uint8_t>(v);
  }
  b[2] = code_.key & 0x0F;
  if (filemark_) b[2] |= 0x80;
  if (eom_) b[2] |= 0x40;
  if (ili_) b[2] |= 0x20;
  b[7] = 10;  // additional sense length
  if (command_specific_) {
    uint32_t v = static_cast<uint32_t>(*command_specific_);
    b[8] = static_cast<uint8_t>(v >> 24);
    b[9] = static_cast<uint8_t>(v >> 16);
    b[10] = static_cast<uint8_t>(v >> 8);
    b[11] = static_cast<uint8_t>(v);
  }
  b[12] = code_.asc;
  b[13] = code_.ascq;
  if (sks_kind_ == SksKind::kField) put_sks_field(b + 15, field_);
  if (sks_kind_ == SksKind::kProgress) put_sks_progress(b + 15, progress_);
  s.length = 18;
  return s;
}

// SPC-4 4.5.2: 8-byte header and descriptors.
SenseData SenseBuilder::build_descriptor() const {
  SenseData s;
  uint8_t* b = s.bytes.data();
  b[0] = deferred_ ? 0x73 : 0x72;
  b[1] = code_.key & 0x0F;
  b[2] = code_.asc;
  b[3] = code_.ascq;
  size_t n = 8;
  if (information_) {  // 4.5.2.2: Information descriptor
    b[n] = 0x00;
    b[n + 1] = 0x0A;
    b[n + 2] = 0x80;  // VALID
    put_u64(b + n + 4, *information_);
    n += 12;
  }
  if (command_specific_) {  // 4.5.2.3
    b[n] = 0x01;
    b[n + 1] = 0x0A;
    put_u64(b + n + 4, *command_specific_);
    n += 12;
  }
  if (sks_kind_ != SksKind::kNone) {  // 4.5.2.4
    b[n] = 0x02;
    b[n + 1] = 0x06;
    if (sks_kind_ == SksKind::kField)
      put_sks_field(b + n + 4, field_);
    else
      put_sks_progress(b + n + 4, progress_);
    n += 8;
  }
  if (filemark_ || eom_ || ili_) {  // 4.5.2.5: stream commands
    b[n] = 0x04;
    b[n + 1] = 0x02;
    b[n + 3] = static_cast<uint8_t>((filemark_ ? 0x80 : 0) | (eom_ ? 0x40 : 0) | (ili_ ? 0x20 : 0));
    n += 4;
  }
  b[7] = static_cast<uint8_t>(n - 8);
  s.length = static_cast<uint8_t>(n);
  return s;
}

namespace {

void parse_sks(const uint8_t* p, uint8_t key, ParsedSense& out) {
  if (!(p[0] & 0x80)) return;
  uint16_t v = static_cast<uint16_t>((p[1] << 8) | p[2]);
  const SenseKey sk = static_cast<SenseKey>(key);
  if (sk == SenseKey::kIllegalRequest) {
    FieldPointer fp;
    fp.in_cdb = (p[0] & 0x40) != 0;
    fp.bit = (p[0] & 0x08) ? (p[0] & 0x07) : kNoBit;
    fp.field = v;
    out.field = fp;
  } else if (sk == SenseKey::kNotReady || sk == SenseKey::kNoSense) {
    out.progress = v;
  }
}

}  // namespace

ParsedSense parse_sense(std::span<const uint8_t> s) {
  ParsedSense out;
  if (s.empty()) return out;
  const uint8_t rc = s[0] & 0x7F;
  if (rc == 0x70 || rc == 0x71) {
    if (s.size() < 14) return out;
    out.format = SenseFormat::kFixed;
    out.deferred = rc == 0x71;
    out.code = {static_cast<uint8_t>(s[2] & 0x0F), s[12], s[13]};
    out.filemark = (s[2] & 0x80) != 0;
    out.eom = (s[2] & 0x40) != 0;
    out.ili = (s[2] & 0x20) != 0;
    if (s[0] & 0x80) {
      out.information =
          (uint64_t{s[3]} << 24) | (uint64_t{s[4]} << 16) | (uint64_t{s[5]} << 8) | s[6];
    }
    if (s.size() >= 18 && s[7] >= 10) parse_sks(&s[15], out.code.key, out);
    out.valid = true;
    return out;
  }
  if (rc == 0x72 || rc == 0x73) {
    if (s.size() < 8) return out;
    out.format = SenseFormat::kDescriptor;
    out.deferred = rc == 0x73;
    out.code = {static_cast<uint8_t>(s[1] & 0x0F), s[2], s[3]};
    size_t end = std::min<size_t>(s.size(), 8 + size_t{s[7]});
    size_t n = 8;
    while (n + 2 <= end) {
      const uint8_t type = s[n];
      const size_t len = size_t{s[n + 1]} + 2;
      if (n + len > end) break;
      if (type == 0x00 && len >= 12 && (s[n + 2] & 0x80)) {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | s[n + 4 + i];
        out.information = v;
      } else if (type == 0x02 && len >= 8) {
        parse_sks(&s[n + 4], out.code.key, out);
      } else if (type == 0x04 && len >= 4) {
        out.filemark = (s[n + 3] & 0x80) != 0;
        out.eom = (s[n + 3] & 0x40) != 0;
        out.ili = (s[n + 3] & 0x20) != 0;
      }
      n += len;
    }
    out.valid = true;
  }
  return out;
}

}  // namespace scstu::scsi
