// The MMC-6 subset of a read-only CD-ROM (one data track, one finalized
// session): what Linux sr, Windows and libburn ask before reading.
#include <vector>

#include "scsi/command_context.h"
#include "scsi/emulation.h"
#include "scsi/logical_unit.h"

namespace scstu::scsi {

namespace {

constexpr uint16_t kProfileCdrom = 0x0008;  // MMC-6 Table 88
constexpr uint8_t kLeadOut = 0xAA;

bool medium_present(const LogicalUnit& lu) { return lu.medium_present() && lu.medium_loaded(); }

// MMC-6 6.6.2: one feature descriptor; `body` follows the 4-byte header.
void feature(std::vector<uint8_t>& out, uint16_t code, uint8_t version, bool persistent,
             bool current, std::initializer_list<uint8_t> body) {
  out.push_back(static_cast<uint8_t>(code >> 8));
  out.push_back(static_cast<uint8_t>(code));
  out.push_back(static_cast<uint8_t>((version << 2) | (persistent ? 0x02 : 0) | (current ? 1 : 0)));
  out.push_back(static_cast<uint8_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
}

void put_address(uint8_t* p, uint64_t lba, bool msf) {
  if (!msf) {
    put_be32(p, static_cast<uint32_t>(lba));
    return;
  }
  // MMC-6 6.1.2: MSF = LBA + 150 frames (2 s of pre-gap), 75 frames/s.
  const uint64_t frames = lba + 150;
  p[0] = 0;
  p[1] = static_cast<uint8_t>(frames / (75 * 60));
  p[2] = static_cast<uint8_t>((frames / 75) % 60);
  p[3] = static_cast<uint8_t>(frames % 75);
}

}  // namespace

// MMC-6 6.6 GET CONFIGURATION.
void mmc_get_configuration(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  const uint8_t rt = cdb[1] & 0x03;
  const uint16_t start = get_be16(&cdb[2]);
  if (rt == 0x03) return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 1});
  const LogicalUnit& lu = ctx.unit();
  const bool present = medium_present(lu);
  const uint32_t bs = lu.block_size();
  struct Feature {
    uint16_t code;
    bool current;
    std::vector<uint8_t> bytes;
  };
  std::vector<Feature> all;
  auto add = [&](uint16_t code, uint8_t version, bool persistent, bool current,
                 std::initializer_list<uint8_t> body) {
    Feature f{code, current, {}};
    feature(f.bytes, code, version, persistent, current, body);
    all.push_back(std::move(f));
  };
  add(0x0000, 0, true, true, {0x00, 0x08, static_cast<uint8_t>(present ? 1 : 0), 0});  // profiles
  add(0x0001, 2, true, true, {0, 0, 0, 0x01, 0, 0, 0, 0});  // Core: SCSI family
  add(0x0002, 1, true, true, {0, 0, 0, 0});                 // Morphing
  add(0x0003, 0, true, true, {0x29, 0, 0, 0});              // Removable: tray, eject, lock
  add(0x0010, 0, false, present,
      {static_cast<uint8_t>(bs >> 24), static_cast<uint8_t>(bs >> 16),
       static_cast<uint8_t>(bs >> 8), static_cast<uint8_t>(bs), 0, 1, 0, 0});  // Random Readable
  add(0x001E, 2, false, present, {0, 0, 0, 0});                                // CD Read
  std::vector<uint8_t> out(8, 0);
  if (present) put_be16(&out[6], kProfileCdrom);
  for (const Feature& f : all) {
    const bool wanted = rt == 0x02 ? f.code == start : (f.code >= start && (rt == 0 || f.current));
    if (wanted) out.insert(out.end(), f.bytes.begin(), f.bytes.end());
  }
  put_be32(&out[0], static_cast<uint32_t>(out.size() - 4));
  ctx.complete_data_in(out);
}

// MMC-6 6.32 READ TOC/PMA/ATIP, formats 0000b (TOC) and 0001b (session info).
void mmc_read_toc(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  const bool msf = cdb[1] & 0x02;
  const uint8_t format = cdb[2] & 0x0F;
  const uint8_t track = cdb[6];
  const uint64_t capacity = ctx.capacity();
  std::vector<uint8_t> out(4, 0);
  out[2] = 1;
  out[3] = 1;
  auto descriptor = [&](uint8_t number, uint64_t lba) {
    const size_t at = out.size();
    out.resize(at + 8, 0);
    out[at + 1] = 0x14;  // ADR 1, CONTROL 4: data track, uninterrupted
    out[at + 2] = number;
    put_address(&out[at + 4], lba, msf);
  };
  if (format == 0x00) {
    if (track > 1 && track != kLeadOut) return ctx.complete_check(kInvalidFieldInCdb, {true, 6, 7});
    if (track <= 1) descriptor(1, 0);
    descriptor(kLeadOut, capacity);
  } else if (format == 0x01) {
    descriptor(1, 0);  // first track of the last session
  } else {
    return ctx.complete_check(kInvalidFieldInCdb, {true, 2, 3});
  }
  put_be16(&out[0], static_cast<uint16_t>(out.size() - 2));
  ctx.complete_data_in(out);
}

// MMC-6 6.7 GET EVENT STATUS NOTIFICATION: polled only, media class.
void mmc_get_event_status_notification(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  if (!(cdb[1] & 0x01)) return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 0});
  const uint8_t requested = cdb[4];
  std::vector<uint8_t> out(4, 0);
  out[3] = 0x10;  // supported: media
  if (requested & 0x10) {
    out[2] = 0x04;  // media class
    const bool present = medium_present(ctx.unit());
    out.insert(out.end(), {0x00, static_cast<uint8_t>(present ? 0x02 : 0x01), 0, 0});
  } else {
    out[2] = 0x80;  // NEA: no event of a requested class is supported
  }
  put_be16(&out[0], static_cast<uint16_t>(out.size() - 2));
  ctx.complete_data_in(out);
}

// MMC-6 6.22 READ DISC INFORMATION, data type 000b.
void mmc_read_disc_information(CommandContext& ctx) {
  if (ctx.cdb()[1] & 0x07) return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 2});
  std::vector<uint8_t> out(34, 0);
  put_be16(&out[0], 32);
  out[2] = 0x0E;                    // last session complete, disc finalized, not erasable
  out[3] = 1;                       // first track
  out[4] = 1;                       // sessions
  out[5] = 1;                       // first track in last session
  out[6] = 1;                       // last track in last session
  put_be32(&out[16], 0xFFFFFFFFu);  // no lead-in of a next session
  put_be32(&out[20], 0xFFFFFFFFu);
  ctx.complete_data_in(out);
}

// MMC-6 6.27 READ TRACK INFORMATION of the one data track.
void mmc_read_track_information(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  const uint8_t type = cdb[1] & 0x03;
  const uint32_t number = get_be32(&cdb[2]);
  const uint64_t capacity = ctx.capacity();
  const bool ok =
      (type == 0 && number < capacity) || (type == 1 && number == 1) || (type == 2 && number == 1);
  if (!ok) return ctx.complete_check(kInvalidFieldInCdb, {true, 2, 7});
  std::vector<uint8_t> out(36, 0);
  put_be16(&out[0], 34);
  out[2] = 1;
  out[3] = 1;
  out[5] = 0x04;  // data track, uninterrupted
  out[6] = 0x01;  // data mode 1
  put_be32(&out[24], static_cast<uint32_t>(capacity));
  ctx.complete_data_in(out);
}

// MMC-6 6.11 MECHANISM STATUS: no changer, idle, no slots.
void mmc_mechanism_status(CommandContext& ctx) {
  std::vector<uint8_t> out(8, 0);
  if (!medium_present(ctx.unit())) out[1] = 0x10;  // door open
  ctx.complete_data_in(out);
}

// MMC-6 6.46 SET CD SPEED: one speed, any request is fine.
void mmc_set_cd_speed(CommandContext& ctx) { ctx.complete_good(0); }

}  // namespace scstu::scsi
