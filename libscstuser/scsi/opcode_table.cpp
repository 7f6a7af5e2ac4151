// The opcode table: one row per (opcode, service action, meaning).
// Sources: SPC-4 Annex E (operation codes), SBC-3 5, SSC-3 6/7, SMC-3 6,
// MMC-6 6. Usage masks: SPC-4 6.35.3 (byte 0 = the opcode; a service action
// field holds the service action; other bytes = the bits the device server
// uses). The CONTROL byte mask is 0: NACA and LINK are not supported.
#include "scsi/opcode_table.h"

#include <algorithm>
#include <array>

#include "scsi/emulation.h"

namespace scstu::scsi {

namespace {

using D = DataDirection;
using U = LengthUnit;
namespace f = opflag;
namespace t = types;

constexpr uint16_t kBlockTypes = t::kDisk;
constexpr uint16_t kReadTypes = t::kDisk | t::kCdrom;

// Common flag sets.
constexpr uint32_t kRead = f::kLbaRange | f::kNeedsMedium | f::kPrAllowedWriteExclusive;
constexpr uint32_t kWrite = f::kLbaRange | f::kNeedsMedium | f::kWritesMedium;
constexpr uint32_t kAlloc = f::kAllocationLength;
constexpr uint32_t kParam = f::kParameterList;
// SPC-4 5.13.1 Table 45 "Allowed" for every reservation type (and SPC-2
// reservations, SPC-2 5.5.1 Table 10).
constexpr uint32_t kAlwaysAllowed = f::kPrAllowed | f::kPrAllowedWriteExclusive | f::kAllowedWhenReserved;

// ---- CDB usage masks (emulated commands) -------------------------------
// 6-byte
constexpr uint8_t kUsageTur[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
constexpr uint8_t kUsageRequestSense[] = {0x03, 0x01, 0x00, 0x00, 0xFF, 0x00};
constexpr uint8_t kUsageInquiry[] = {0x12, 0x01, 0xFF, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageModeSelect6[] = {0x15, 0x11, 0x00, 0x00, 0xFF, 0x00};
constexpr uint8_t kUsageModeSense6[] = {0x1A, 0x08, 0xFF, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageReserve6[] = {0x16, 0x00, 0x00, 0x00, 0x00, 0x00};
constexpr uint8_t kUsageRelease6[] = {0x17, 0x00, 0x00, 0x00, 0x00, 0x00};
constexpr uint8_t kUsageSendDiag[] = {0x1D, 0xF7, 0x00, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsagePreventAllow[] = {0x1E, 0x00, 0x00, 0x00, 0x03, 0x00};
constexpr uint8_t kUsageStartStop[] = {0x1B, 0x01, 0x00, 0x0F, 0xF7, 0x00};
constexpr uint8_t kUsageRead6[] = {0x08, 0x1F, 0xFF, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageWrite6[] = {0x0A, 0x1F, 0xFF, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageFormatUnit[] = {0x04, 0xFF, 0x00, 0x00, 0x00, 0x00};
// 10-byte
constexpr uint8_t kUsageRead10[] = {0x28, 0x1E, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageWrite10[] = {0x2A, 0x1A, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageVerify10[] = {0x2F, 0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageWriteVerify10[] = {0x2E, 0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageSync10[] = {0x35, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsagePrefetch10[] = {0x34, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageReadCap10[] = {0x25, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x01, 0x00};
constexpr uint8_t kUsageWriteSame10[] = {0x41, 0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageUnmap[] = {0x42, 0x01, 0x00, 0x00, 0x00, 0x00, 0x1F, 0xFF, 0xFF, 0x00};
// SBC-4 5.30: IMMED, AUSE, SERVICE ACTION; ZNR (bit 6) only on zoned devices.
constexpr uint8_t kUsageSanitize[] = {0x48, 0xBF, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageModeSelect10[] = {0x55, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageModeSense10[] = {0x5A, 0x18, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageLogSense[] = {0x4D, 0x01, 0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageLogSelect[] = {0x4C, 0x03, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageReserve10[] = {0x56, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageRelease10[] = {0x57, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsagePrIn[] = {0x5E, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsagePrOut[] = {0x5F, 0x00, 0xFF, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageReadDefect10[] = {0x37, 0x00, 0x1F, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00};
// 12-byte
constexpr uint8_t kUsageRead12[] = {0xA8, 0x1E, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsageWrite12[] = {0xAA, 0x1A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsageVerify12[] = {0xAF, 0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsageWriteVerify12[] = {0xAE, 0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsageReportLuns[] = {0xA0, 0x00, 0xFF, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00};
constexpr uint8_t kUsageRsoc[] = {0xA3, 0x0C, 0x87, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00};
constexpr uint8_t kUsageRstmf[] = {0xA3, 0x0D, 0x80, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00};
constexpr uint8_t kUsageRtpg[] = {0xA3, 0xEA, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00};
constexpr uint8_t kUsageReadDefect12[] = {0xB7, 0x1F, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00};
// 16-byte
constexpr uint8_t kUsageRead16[] = {0x88, 0x1E, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                    0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsageWrite16[] = {0x8A, 0x1A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                     0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsageVerify16[] = {0x8F, 0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                      0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsageWriteVerify16[] = {0x8E, 0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                           0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsageSync16[] = {0x91, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                    0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsagePrefetch16[] = {0x90, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                        0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsageWriteSame16[] = {0x93, 0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                         0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsageCompareWrite[] = {0x89, 0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                          0x00, 0x00, 0x00, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsageOrwrite16[] = {0x8B, 0x1A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                       0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsageWriteAtomic16[] = {0x9C, 0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                           0x00, 0x00, 0xFF, 0xFF, 0x1F, 0x00};
constexpr uint8_t kUsageReadCap16[] = {0x9E, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                       0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00};
constexpr uint8_t kUsageGetLbaStatus[] = {0x9E, 0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                          0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00};
constexpr uint8_t kUsageXcopy[] = {0x83, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                   0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00};
constexpr uint8_t kUsageRcrCopyStatus[] = {0x84, 0x00, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                           0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00};
constexpr uint8_t kUsageRcrOpParams[] = {0x84, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                         0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00};
constexpr uint8_t kUsageRcrFailed[] = {0x84, 0x04, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                       0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00};
// READ 32 and friends: SBC-3 5.x (variable length, additional CDB length 18h).
constexpr uint8_t kUsageRead32[] = {0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F, 0x18, 0x00, 0x09, 0x1E,
                                    0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF};
constexpr uint8_t kUsageWrite32[] = {0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F, 0x18, 0x00, 0x0B, 0x1A,
                                     0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00,
                                     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF};
constexpr uint8_t kUsageVerify32[] = {0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F, 0x18, 0x00, 0x0A, 0x16,
                                      0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00,
                                      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF};
constexpr uint8_t kUsageWriteVerify32[] = {0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F, 0x18, 0x00, 0x0C,
                                           0x12, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                           0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF,
                                           0xFF, 0xFF};
constexpr uint8_t kUsageWriteSame32[] = {0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F, 0x18, 0x00, 0x0D,
                                         0x0B, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                         0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF,
                                         0xFF, 0xFF};
// MMC (read-only CD-ROM)
constexpr uint8_t kUsageReadToc[] = {0x43, 0x02, 0x0F, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageGetConfig[] = {0x46, 0x03, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageGesn[] = {0x4A, 0x01, 0x00, 0x00, 0xFF, 0x00, 0x00, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageDiscInfo[] = {0x51, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageTrackInfo[] = {0x52, 0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0x00};
constexpr uint8_t kUsageSetCdSpeed[] = {0xBB, 0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
constexpr uint8_t kUsageMechStatus[] = {0xBD, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00};

constexpr OpcodeInfo row(uint8_t opcode, const char* name, uint8_t cdb_len, D dir, U unit,
                         uint8_t loff, uint8_t lsize, uint16_t types_mask, uint32_t flags,
                         EmulationFn fn = nullptr, const uint8_t* usage = nullptr,
                         uint8_t lba_off = 0, uint8_t lba_size = 0) {
  OpcodeInfo o;
  o.opcode = opcode;
  o.name = name;
  o.cdb_length = cdb_len;
  o.direction = dir;
  o.unit = unit;
  o.length_offset = loff;
  o.length_size = lsize;
  o.device_types = types_mask;
  o.flags = flags;
  o.emulate = fn;
  o.usage = usage;
  o.lba_offset = lba_off;
  o.lba_size = lba_size;
  return o;
}

constexpr OpcodeInfo sa(OpcodeInfo o, uint16_t service_action) {
  o.service_action = service_action;
  o.flags |= f::kServiceAction;
  return o;
}

constexpr OpcodeInfo fixed(OpcodeInfo o, uint32_t bytes) {
  o.fixed_length = bytes;
  return o;
}

// Shorthands for the recurring shapes.
constexpr OpcodeInfo none6(uint8_t op, const char* name, uint16_t ty, uint32_t fl,
                           EmulationFn fn = nullptr, const uint8_t* usage = nullptr) {
  return row(op, name, 6, D::kNone, U::kNone, 0, 0, ty, fl, fn, usage);
}
constexpr OpcodeInfo none10(uint8_t op, const char* name, uint16_t ty, uint32_t fl,
                            EmulationFn fn = nullptr, const uint8_t* usage = nullptr) {
  return row(op, name, 10, D::kNone, U::kNone, 0, 0, ty, fl, fn, usage);
}
constexpr OpcodeInfo in(uint8_t op, const char* name, uint8_t len, uint8_t loff, uint8_t lsize,
                        uint16_t ty, uint32_t fl, EmulationFn fn = nullptr,
                        const uint8_t* usage = nullptr) {
  return row(op, name, len, D::kRead, U::kBytes, loff, lsize, ty, fl | kAlloc, fn, usage);
}
constexpr OpcodeInfo out(uint8_t op, const char* name, uint8_t len, uint8_t loff, uint8_t lsize,
                         uint16_t ty, uint32_t fl, EmulationFn fn = nullptr,
                         const uint8_t* usage = nullptr) {
  return row(op, name, len, D::kWrite, U::kBytes, loff, lsize, ty, fl | kParam, fn, usage);
}
// Block-addressed: LBA at lba_off (lba_size bytes), blocks at loff (lsize).
constexpr OpcodeInfo blk(uint8_t op, const char* name, uint8_t len, D dir, U unit, uint8_t lba_off,
                         uint8_t lba_size, uint8_t loff, uint8_t lsize, uint16_t ty, uint32_t fl,
                         EmulationFn fn = nullptr, const uint8_t* usage = nullptr) {
  return row(op, name, len, dir, unit, loff, lsize, ty, fl, fn, usage, lba_off, lba_size);
}
constexpr OpcodeInfo var32(uint16_t service_action, const char* name, D dir, U unit,
                           uint32_t fl, EmulationFn fn = nullptr, const uint8_t* usage = nullptr) {
  return sa(blk(0x7F, name, 32, dir, unit, 12, 8, 28, 4, kBlockTypes, fl, fn, usage),
            service_action);
}

constexpr OpcodeInfo kTable[] = {
    // ---- 00h - 1Fh: 6-byte CDBs -------------------------------------------
    none6(0x00, "TEST UNIT READY", t::kAll, f::kPrAllowed | f::kPrAllowedWriteExclusive,
          &spc_test_unit_ready, kUsageTur),
    none6(0x01, "REWIND", t::kTape, f::kNeedsMedium),
    in(0x03, "REQUEST SENSE", 6, 4, 1, t::kAll, f::kNoUnitAttention | kAlwaysAllowed,
       &spc_request_sense, kUsageRequestSense),
    // SSC-3: FORMAT MEDIUM; SBC-3: FORMAT UNIT.
    row(0x04, "FORMAT UNIT", 6, D::kWrite, U::kFormatUnit, 0, 0, t::kDisk,
        f::kWritesMedium | f::kNeedsMedium | kParam, &sbc_format_unit, kUsageFormatUnit),
    out(0x04, "FORMAT MEDIUM", 6, 3, 2, t::kTape, f::kWritesMedium | f::kNeedsMedium),
    row(0x05, "READ BLOCK LIMITS", 6, D::kRead, U::kReadBlockLimits, 0, 0, t::kTape,
        kAlloc | f::kPrAllowedWriteExclusive),
    // SBC-3 REASSIGN BLOCKS; SMC-3 INITIALIZE ELEMENT STATUS.
    out(0x07, "REASSIGN BLOCKS", 6, 0, 0, t::kDisk, f::kWritesMedium | f::kNeedsMedium),
    none6(0x07, "INITIALIZE ELEMENT STATUS", t::kChanger, 0),
    blk(0x08, "READ(6)", 6, D::kRead, U::kBlocks6, 1, 3, 4, 1, t::kDisk, kRead, &sbc_read,
        kUsageRead6),
    row(0x08, "READ(6)", 6, D::kRead, U::kTapeFixed, 2, 3, t::kTape,
        f::kNeedsMedium | f::kPrAllowedWriteExclusive),
    blk(0x0A, "WRITE(6)", 6, D::kWrite, U::kBlocks6, 1, 3, 4, 1, t::kDisk, kWrite, &sbc_write,
        kUsageWrite6),
    row(0x0A, "WRITE(6)", 6, D::kWrite, U::kTapeFixed, 2, 3, t::kTape,
        f::kNeedsMedium | f::kWritesMedium),
    none6(0x0B, "SET CAPACITY", t::kTape, f::kNeedsMedium | f::kWritesMedium),
    row(0x0F, "READ REVERSE(6)", 6, D::kRead, U::kTapeFixed, 2, 3, t::kTape,
        f::kNeedsMedium | f::kPrAllowedWriteExclusive),
    none6(0x10, "WRITE FILEMARKS(6)", t::kTape, f::kNeedsMedium | f::kWritesMedium),
    none6(0x11, "SPACE(6)", t::kTape, f::kNeedsMedium),
    in(0x12, "INQUIRY", 6, 3, 2, t::kAll, f::kNoUnitAttention | kAlwaysAllowed, &spc_inquiry,
       kUsageInquiry),
    row(0x13, "VERIFY(6)", 6, D::kWrite, U::kTapeVerify, 2, 3, t::kTape,
        f::kNeedsMedium | f::kPrAllowedWriteExclusive),
    row(0x14, "RECOVER BUFFERED DATA", 6, D::kRead, U::kTapeFixed, 2, 3, t::kTape, f::kNeedsMedium),
    out(0x15, "MODE SELECT(6)", 6, 4, 1, t::kAll, 0, &spc_mode_select, kUsageModeSelect6),
    none6(0x16, "RESERVE(6)", t::kAll, 0, &spc_reserve, kUsageReserve6),
    none6(0x17, "RELEASE(6)", t::kAll, f::kAllowedWhenReserved, &spc_release, kUsageRelease6),
    none6(0x19, "ERASE(6)", t::kTape, f::kNeedsMedium | f::kWritesMedium),
    in(0x1A, "MODE SENSE(6)", 6, 4, 1, t::kAll, f::kPrAllowedWriteExclusive, &spc_mode_sense,
       kUsageModeSense6),
    none6(0x1B, "START STOP UNIT", t::kDisk | t::kCdrom, 0, &sbc_start_stop_unit, kUsageStartStop),
    none6(0x1B, "LOAD UNLOAD", t::kTape, 0),
    none6(0x1B, "OPEN/CLOSE IMPORT/EXPORT ELEMENT", t::kChanger, 0),
    in(0x1C, "RECEIVE DIAGNOSTIC RESULTS", 6, 3, 2, t::kAll, f::kPrAllowedWriteExclusive),
    out(0x1D, "SEND DIAGNOSTIC", 6, 3, 2, t::kAll, 0, &spc_send_diagnostic, kUsageSendDiag),
    none6(0x1E, "PREVENT ALLOW MEDIUM REMOVAL", t::kAll, 0, &spc_prevent_allow_medium_removal,
          kUsagePreventAllow),

    // ---- 20h - 5Fh: 10-byte CDBs ------------------------------------------
    in(0x23, "READ FORMAT CAPACITIES", 10, 7, 2, t::kCdrom, f::kPrAllowedWriteExclusive),
    fixed(row(0x25, "READ CAPACITY(10)", 10, D::kRead, U::kFixed, 0, 0, kReadTypes,
              f::kNeedsMedium | f::kPrAllowedWriteExclusive | kAlloc, &sbc_read_capacity10,
              kUsageReadCap10),
          8),
    blk(0x28, "READ(10)", 10, D::kRead, U::kBlocks, 2, 4, 7, 2, kReadTypes, kRead, &sbc_read,
        kUsageRead10),
    blk(0x2A, "WRITE(10)", 10, D::kWrite, U::kBlocks, 2, 4, 7, 2, kBlockTypes, kWrite, &sbc_write,
        kUsageWrite10),
    blk(0x2B, "SEEK(10)", 10, D::kNone, U::kNone, 2, 4, 0, 0, kReadTypes, f::kNeedsMedium),
    none10(0x2B, "LOCATE(10)", t::kTape, f::kNeedsMedium),
    none10(0x2B, "POSITION TO ELEMENT", t::kChanger, 0),
    blk(0x2E, "WRITE AND VERIFY(10)", 10, D::kWrite, U::kBlocks, 2, 4, 7, 2, kBlockTypes, kWrite,
        &sbc_write_and_verify, kUsageWriteVerify10),
    blk(0x2F, "VERIFY(10)", 10, D::kWrite, U::kVerify, 2, 4, 7, 2, kReadTypes, kRead,
        &sbc_verify, kUsageVerify10),
    blk(0x34, "PRE-FETCH(10)", 10, D::kNone, U::kNone, 2, 4, 7, 2, kBlockTypes,
        kRead & ~f::kPrAllowedWriteExclusive, &sbc_pre_fetch, kUsagePrefetch10),
    // SSC-3 READ POSITION: service action in byte 1.
    sa(row(0x34, "READ POSITION", 10, D::kRead, U::kReadPosition, 0, 0, t::kTape, f::kNeedsMedium),
       0x00),
    sa(row(0x34, "READ POSITION", 10, D::kRead, U::kReadPosition, 0, 0, t::kTape, f::kNeedsMedium),
       0x01),
    sa(row(0x34, "READ POSITION", 10, D::kRead, U::kReadPosition, 0, 0, t::kTape, f::kNeedsMedium),
       0x06),
    sa(row(0x34, "READ POSITION", 10, D::kRead, U::kReadPosition, 7, 2, t::kTape,
           f::kNeedsMedium | kAlloc),
       0x08),
    blk(0x35, "SYNCHRONIZE CACHE(10)", 10, D::kNone, U::kNone, 2, 4, 7, 2, kBlockTypes,
        f::kNeedsMedium | f::kLbaRange, &sbc_synchronize_cache, kUsageSync10),
    in(0x37, "READ DEFECT DATA(10)", 10, 7, 2, kBlockTypes, f::kNeedsMedium, &sbc_read_defect_data,
       kUsageReadDefect10),
    none10(0x37, "INITIALIZE ELEMENT STATUS WITH RANGE", t::kChanger, 0),
    out(0x3B, "WRITE BUFFER", 10, 6, 3, t::kAll, 0),
    in(0x3C, "READ BUFFER", 10, 6, 3, t::kAll, 0),
    blk(0x3E, "READ LONG(10)", 10, D::kRead, U::kBytes, 2, 4, 7, 2, kBlockTypes,
        f::kNeedsMedium | kAlloc),
    blk(0x3F, "WRITE LONG(10)", 10, D::kWrite, U::kBytes, 2, 4, 7, 2, kBlockTypes,
        f::kNeedsMedium | f::kWritesMedium),
    blk(0x41, "WRITE SAME(10)", 10, D::kWrite, U::kWriteSame, 2, 4, 7, 2, kBlockTypes, kWrite,
        &sbc_write_same, kUsageWriteSame10),
    out(0x42, "UNMAP", 10, 7, 2, kBlockTypes, f::kNeedsMedium | f::kWritesMedium, &sbc_unmap,
        kUsageUnmap),
    in(0x42, "READ SUB-CHANNEL", 10, 7, 2, t::kCdrom, f::kNeedsMedium),
    in(0x43, "READ TOC/PMA/ATIP", 10, 7, 2, t::kCdrom, f::kNeedsMedium | f::kPrAllowedWriteExclusive,
       &mmc_read_toc, kUsageReadToc),
    in(0x44, "REPORT DENSITY SUPPORT", 10, 7, 2, t::kTape, f::kPrAllowedWriteExclusive),
    in(0x46, "GET CONFIGURATION", 10, 7, 2, t::kCdrom, kAlwaysAllowed, &mmc_get_configuration,
       kUsageGetConfig),
    // SBC-3 SANITIZE: service actions 01h OVERWRITE, 02h BLOCK ERASE,
    // 03h CRYPTOGRAPHIC ERASE, 1Fh EXIT FAILURE MODE.
    sa(out(0x48, "SANITIZE", 10, 7, 2, kBlockTypes, f::kWritesMedium | f::kNeedsMedium,
           &sbc_sanitize, kUsageSanitize),
       0x01),
    sa(out(0x48, "SANITIZE", 10, 7, 2, kBlockTypes, f::kWritesMedium | f::kNeedsMedium,
           &sbc_sanitize, kUsageSanitize),
       0x02),
    sa(out(0x48, "SANITIZE", 10, 7, 2, kBlockTypes, f::kWritesMedium | f::kNeedsMedium,
           &sbc_sanitize, kUsageSanitize),
       0x03),
    sa(out(0x48, "SANITIZE", 10, 7, 2, kBlockTypes, f::kWritesMedium | f::kNeedsMedium,
           &sbc_sanitize, kUsageSanitize),
       0x1F),
    in(0x4A, "GET EVENT STATUS NOTIFICATION", 10, 7, 2, t::kCdrom, kAlwaysAllowed,
       &mmc_get_event_status_notification, kUsageGesn),
    out(0x4C, "LOG SELECT", 10, 7, 2, t::kAll, 0, &spc_log_select, kUsageLogSelect),
    in(0x4D, "LOG SENSE", 10, 7, 2, t::kAll, f::kPrAllowedWriteExclusive, &spc_log_sense,
       kUsageLogSense),
    in(0x51, "READ DISC INFORMATION", 10, 7, 2, t::kCdrom, f::kNeedsMedium,
       &mmc_read_disc_information, kUsageDiscInfo),
    in(0x52, "READ TRACK INFORMATION", 10, 7, 2, t::kCdrom, f::kNeedsMedium,
       &mmc_read_track_information, kUsageTrackInfo),
    out(0x55, "MODE SELECT(10)", 10, 7, 2, t::kAll, 0, &spc_mode_select, kUsageModeSelect10),
    out(0x56, "RESERVE(10)", 10, 7, 2, t::kAll, 0, &spc_reserve, kUsageReserve10),
    out(0x57, "RELEASE(10)", 10, 7, 2, t::kAll, f::kAllowedWhenReserved, &spc_release,
        kUsageRelease10),
    in(0x5A, "MODE SENSE(10)", 10, 7, 2, t::kAll, f::kPrAllowedWriteExclusive, &spc_mode_sense,
       kUsageModeSense10),
    in(0x5C, "READ BUFFER CAPACITY", 10, 7, 2, t::kCdrom, 0),
    // SPC-4 6.13 PERSISTENT RESERVE IN: 00h READ KEYS, 01h READ RESERVATION,
    // 02h REPORT CAPABILITIES, 03h READ FULL STATUS.
    sa(in(0x5E, "PERSISTENT RESERVE IN", 10, 7, 2, t::kAll, kAlwaysAllowed,
          &spc_persistent_reserve_in, kUsagePrIn),
       0x00),
    sa(in(0x5E, "PERSISTENT RESERVE IN", 10, 7, 2, t::kAll, kAlwaysAllowed,
          &spc_persistent_reserve_in, kUsagePrIn),
       0x01),
    sa(in(0x5E, "PERSISTENT RESERVE IN", 10, 7, 2, t::kAll, kAlwaysAllowed,
          &spc_persistent_reserve_in, kUsagePrIn),
       0x02),
    sa(in(0x5E, "PERSISTENT RESERVE IN", 10, 7, 2, t::kAll, kAlwaysAllowed,
          &spc_persistent_reserve_in, kUsagePrIn),
       0x03),
    // SPC-4 6.14 PERSISTENT RESERVE OUT: 00h..07h (parameter list length in 5..8).
    sa(out(0x5F, "PERSISTENT RESERVE OUT", 10, 5, 4, t::kAll, f::kAllowedWhenReserved,
           &spc_persistent_reserve_out, kUsagePrOut), 0x00),
    sa(out(0x5F, "PERSISTENT RESERVE OUT", 10, 5, 4, t::kAll, f::kAllowedWhenReserved,
           &spc_persistent_reserve_out, kUsagePrOut), 0x01),
    sa(out(0x5F, "PERSISTENT RESERVE OUT", 10, 5, 4, t::kAll, f::kAllowedWhenReserved,
           &spc_persistent_reserve_out, kUsagePrOut), 0x02),
    sa(out(0x5F, "PERSISTENT RESERVE OUT", 10, 5, 4, t::kAll, f::kAllowedWhenReserved,
           &spc_persistent_reserve_out, kUsagePrOut), 0x03),
    sa(out(0x5F, "PERSISTENT RESERVE OUT", 10, 5, 4, t::kAll, f::kAllowedWhenReserved,
           &spc_persistent_reserve_out, kUsagePrOut), 0x04),
    sa(out(0x5F, "PERSISTENT RESERVE OUT", 10, 5, 4, t::kAll, f::kAllowedWhenReserved,
           &spc_persistent_reserve_out, kUsagePrOut), 0x05),
    sa(out(0x5F, "PERSISTENT RESERVE OUT", 10, 5, 4, t::kAll, f::kAllowedWhenReserved,
           &spc_persistent_reserve_out, kUsagePrOut), 0x06),
    sa(out(0x5F, "PERSISTENT RESERVE OUT", 10, 5, 4, t::kAll, f::kAllowedWhenReserved,
           &spc_persistent_reserve_out, kUsagePrOut), 0x07),

    // ---- 7Fh: variable length (SBC-3 32-byte CDBs) --------------------------
    // SBC-3 5.16 ff.: the 32-byte CDBs exist for type 2 protection only; a
    // logical unit without protection information (PROTECT = 0) answers them
    // INVALID COMMAND OPERATION CODE. They stay decodable (producer side);
    // the entries sbc_read & co. handle them once protection exists.
    var32(0x0009, "READ(32)", D::kRead, U::kBlocks, kRead, nullptr, kUsageRead32),
    var32(0x000A, "VERIFY(32)", D::kWrite, U::kVerify, kRead, nullptr, kUsageVerify32),
    var32(0x000B, "WRITE(32)", D::kWrite, U::kBlocks, kWrite, nullptr, kUsageWrite32),
    var32(0x000C, "WRITE AND VERIFY(32)", D::kWrite, U::kBlocks, kWrite, nullptr,
          kUsageWriteVerify32),
    var32(0x000D, "WRITE SAME(32)", D::kWrite, U::kWriteSame, kWrite, nullptr, kUsageWriteSame32),
    var32(0x000E, "ORWRITE(32)", D::kWrite, U::kBlocks, kWrite),

    // ---- 80h - 9Fh: 16-byte CDBs ------------------------------------------
    none10(0x80, "WRITE FILEMARKS(16)", t::kTape, f::kNeedsMedium | f::kWritesMedium),
    row(0x81, "READ REVERSE(16)", 16, D::kRead, U::kTapeFixed, 12, 3, t::kTape, f::kNeedsMedium),
    none10(0x82, "ALLOW OVERWRITE", t::kTape, f::kNeedsMedium),
    // SPC-4 6.4 EXTENDED COPY: 00h LID1 (executed by the producer side's
    // copy manager, core/copy_manager.h), 01h LID4.
    sa(out(0x83, "EXTENDED COPY(LID1)", 16, 10, 4, t::kDisk,
           f::kNeedsMedium | f::kWritesMedium | f::kAnsweredByCore | f::kCopyManager, nullptr,
           kUsageXcopy),
       0x00),
    sa(out(0x83, "EXTENDED COPY(LID4)", 16, 10, 4, t::kDisk, f::kNeedsMedium | f::kWritesMedium),
       0x01),
    sa(out(0x83, "POPULATE TOKEN", 16, 10, 4, t::kDisk, f::kNeedsMedium), 0x10),
    sa(out(0x83, "WRITE USING TOKEN", 16, 10, 4, t::kDisk, f::kNeedsMedium | f::kWritesMedium),
       0x11),
    sa(none10(0x83, "COPY OPERATION ABORT", t::kDisk, 0), 0x1C),
    // SPC-4 6.18 RECEIVE COPY RESULTS: 00h COPY STATUS, 01h RECEIVE DATA,
    // 03h OPERATING PARAMETERS, 04h FAILED SEGMENT DETAILS.
    sa(in(0x84, "RECEIVE COPY STATUS(LID1)", 16, 10, 4, t::kDisk,
          f::kAnsweredByCore | f::kCopyManager, nullptr, kUsageRcrCopyStatus),
       0x00),
    sa(in(0x84, "RECEIVE COPY DATA(LID1)", 16, 10, 4, t::kDisk, 0), 0x01),
    sa(in(0x84, "RECEIVE COPY OPERATING PARAMETERS", 16, 10, 4, t::kDisk,
          f::kAnsweredByCore | f::kCopyManager, nullptr, kUsageRcrOpParams),
       0x03),
    sa(in(0x84, "RECEIVE COPY FAILURE DETAILS(LID1)", 16, 10, 4, t::kDisk,
          f::kAnsweredByCore | f::kCopyManager, nullptr, kUsageRcrFailed),
       0x04),
    sa(in(0x84, "RECEIVE COPY STATUS(LID4)", 16, 10, 4, t::kDisk, 0), 0x05),
    sa(in(0x84, "RECEIVE ROD TOKEN INFORMATION", 16, 10, 4, t::kDisk, 0), 0x07),
    in(0x86, "ACCESS CONTROL IN", 16, 10, 4, t::kAll, 0),
    out(0x87, "ACCESS CONTROL OUT", 16, 10, 4, t::kAll, 0),
    blk(0x88, "READ(16)", 16, D::kRead, U::kBlocks, 2, 8, 10, 4, kBlockTypes, kRead, &sbc_read,
        kUsageRead16),
    row(0x88, "READ(16)", 16, D::kRead, U::kTapeFixed, 12, 3, t::kTape, f::kNeedsMedium),
    blk(0x89, "COMPARE AND WRITE", 16, D::kWrite, U::kCompareWrite, 2, 8, 13, 1, kBlockTypes,
        kWrite, &sbc_compare_and_write, kUsageCompareWrite),
    blk(0x8A, "WRITE(16)", 16, D::kWrite, U::kBlocks, 2, 8, 10, 4, kBlockTypes, kWrite, &sbc_write,
        kUsageWrite16),
    row(0x8A, "WRITE(16)", 16, D::kWrite, U::kTapeFixed, 12, 3, t::kTape,
        f::kNeedsMedium | f::kWritesMedium),
    blk(0x8B, "ORWRITE(16)", 16, D::kWrite, U::kBlocks, 2, 8, 10, 4, kBlockTypes, kWrite,
        &sbc_orwrite, kUsageOrwrite16),
    in(0x8C, "READ ATTRIBUTE", 16, 10, 4, t::kTape | t::kChanger | t::kDisk, 0),
    out(0x8D, "WRITE ATTRIBUTE", 16, 10, 4, t::kTape | t::kChanger | t::kDisk, 0),
    blk(0x8E, "WRITE AND VERIFY(16)", 16, D::kWrite, U::kBlocks, 2, 8, 10, 4, kBlockTypes, kWrite,
        &sbc_write_and_verify, kUsageWriteVerify16),
    blk(0x8F, "VERIFY(16)", 16, D::kWrite, U::kVerify, 2, 8, 10, 4, kBlockTypes, kRead,
        &sbc_verify, kUsageVerify16),
    row(0x8F, "VERIFY(16)", 16, D::kWrite, U::kTapeVerify, 12, 3, t::kTape, f::kNeedsMedium),
    blk(0x90, "PRE-FETCH(16)", 16, D::kNone, U::kNone, 2, 8, 10, 4, kBlockTypes,
        kRead & ~f::kPrAllowedWriteExclusive, &sbc_pre_fetch, kUsagePrefetch16),
    blk(0x91, "SYNCHRONIZE CACHE(16)", 16, D::kNone, U::kNone, 2, 8, 10, 4, kBlockTypes,
        f::kNeedsMedium | f::kLbaRange, &sbc_synchronize_cache, kUsageSync16),
    row(0x91, "SPACE(16)", 16, D::kNone, U::kNone, 0, 0, t::kTape, f::kNeedsMedium),
    row(0x92, "LOCATE(16)", 16, D::kNone, U::kNone, 0, 0, t::kTape, f::kNeedsMedium),
    blk(0x93, "WRITE SAME(16)", 16, D::kWrite, U::kWriteSame, 2, 8, 10, 4, kBlockTypes, kWrite,
        &sbc_write_same, kUsageWriteSame16),
    row(0x93, "ERASE(16)", 16, D::kNone, U::kNone, 0, 0, t::kTape,
        f::kNeedsMedium | f::kWritesMedium),
    blk(0x9C, "WRITE ATOMIC(16)", 16, D::kWrite, U::kBlocks, 2, 8, 12, 2, kBlockTypes, kWrite,
        &sbc_write_atomic, kUsageWriteAtomic16),
    // SBC-3 SERVICE ACTION IN(16): 10h READ CAPACITY(16), 11h READ LONG(16),
    // 12h GET LBA STATUS, 13h REPORT REFERRALS.
    sa(in(0x9E, "READ CAPACITY(16)", 16, 10, 4, kBlockTypes,
          f::kNeedsMedium | f::kPrAllowedWriteExclusive, &sbc_read_capacity16, kUsageReadCap16),
       0x10),
    sa(blk(0x9E, "READ LONG(16)", 16, D::kRead, U::kBytes, 2, 8, 12, 2, kBlockTypes,
           f::kNeedsMedium | kAlloc),
       0x11),
    sa(blk(0x9E, "GET LBA STATUS", 16, D::kRead, U::kBytes, 2, 8, 10, 4, kBlockTypes,
           f::kNeedsMedium | kAlloc | f::kPrAllowedWriteExclusive, &sbc_get_lba_status,
           kUsageGetLbaStatus),
       0x12),
    sa(in(0x9E, "REPORT REFERRALS", 16, 10, 4, kBlockTypes, 0), 0x13),
    // SERVICE ACTION OUT(16): 11h WRITE LONG(16).
    sa(blk(0x9F, "WRITE LONG(16)", 16, D::kWrite, U::kBytes, 2, 8, 12, 2, kBlockTypes,
           f::kNeedsMedium | f::kWritesMedium),
       0x11),

    // ---- A0h - BFh: 12-byte CDBs ------------------------------------------
    in(0xA0, "REPORT LUNS", 12, 6, 4, t::kAll,
       f::kNoUnitAttention | kAlwaysAllowed | f::kAnsweredByCore, &spc_report_luns,
       kUsageReportLuns),
    in(0xA2, "SECURITY PROTOCOL IN", 12, 6, 4, t::kAll, kAlwaysAllowed),
    // SPC-4 MAINTENANCE IN: 05h REPORT IDENTIFYING INFORMATION, 0Ah REPORT
    // TARGET PORT GROUPS, 0Bh REPORT ALIASES, 0Ch REPORT SUPPORTED OPERATION
    // CODES, 0Dh REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS, 0Eh REPORT
    // PRIORITY, 0Fh REPORT TIMESTAMP. MMC: A3h is SEND KEY.
    sa(in(0xA3, "REPORT IDENTIFYING INFORMATION", 12, 6, 4, t::kAll ^ t::kCdrom, kAlwaysAllowed),
       0x05),
    sa(in(0xA3, "REPORT TARGET PORT GROUPS", 12, 6, 4, t::kAll ^ t::kCdrom, kAlwaysAllowed,
          &spc_report_target_port_groups, kUsageRtpg),
       0x0A),
    sa(in(0xA3, "REPORT ALIASES", 12, 6, 4, t::kAll ^ t::kCdrom, kAlwaysAllowed), 0x0B),
    sa(in(0xA3, "REPORT SUPPORTED OPERATION CODES", 12, 6, 4, t::kAll ^ t::kCdrom, kAlwaysAllowed,
          &spc_report_supported_opcodes, kUsageRsoc),
       0x0C),
    sa(in(0xA3, "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS", 12, 6, 4, t::kAll ^ t::kCdrom,
          kAlwaysAllowed, &spc_report_supported_tmfs, kUsageRstmf),
       0x0D),
    sa(in(0xA3, "REPORT PRIORITY", 12, 6, 4, t::kAll ^ t::kCdrom, kAlwaysAllowed), 0x0E),
    sa(in(0xA3, "REPORT TIMESTAMP", 12, 6, 4, t::kAll ^ t::kCdrom, kAlwaysAllowed), 0x0F),
    out(0xA3, "SEND KEY", 12, 8, 2, t::kCdrom, 0),
    // MAINTENANCE OUT: 06h SET IDENTIFYING INFORMATION, 0Ah SET TARGET PORT
    // GROUPS, 0Bh CHANGE ALIASES, 0Eh SET PRIORITY, 0Fh SET TIMESTAMP. MMC: REPORT KEY.
    sa(out(0xA4, "SET IDENTIFYING INFORMATION", 12, 6, 4, t::kAll ^ t::kCdrom, 0), 0x06),
    sa(out(0xA4, "SET TARGET PORT GROUPS", 12, 6, 4, t::kAll ^ t::kCdrom, 0), 0x0A),
    sa(out(0xA4, "CHANGE ALIASES", 12, 6, 4, t::kAll ^ t::kCdrom, 0), 0x0B),
    sa(out(0xA4, "SET PRIORITY", 12, 6, 4, t::kAll ^ t::kCdrom, 0), 0x0E),
    sa(out(0xA4, "SET TIMESTAMP", 12, 6, 4, t::kAll ^ t::kCdrom, 0), 0x0F),
    in(0xA4, "REPORT KEY", 12, 8, 2, t::kCdrom, 0),
    row(0xA5, "MOVE MEDIUM", 12, D::kNone, U::kNone, 0, 0, t::kChanger, 0),
    row(0xA6, "EXCHANGE MEDIUM", 12, D::kNone, U::kNone, 0, 0, t::kChanger, 0),
    row(0xA6, "LOAD/UNLOAD MEDIUM", 12, D::kNone, U::kNone, 0, 0, t::kCdrom, 0),
    row(0xA7, "MOVE MEDIUM ATTACHED", 12, D::kNone, U::kNone, 0, 0, t::kTape, 0),
    blk(0xA8, "READ(12)", 12, D::kRead, U::kBlocks, 2, 4, 6, 4, kReadTypes, kRead, &sbc_read,
        kUsageRead12),
    blk(0xAA, "WRITE(12)", 12, D::kWrite, U::kBlocks, 2, 4, 6, 4, kBlockTypes, kWrite, &sbc_write,
        kUsageWrite12),
    // SPC-4 SERVICE ACTION IN(12): 01h READ MEDIA SERIAL NUMBER.
    sa(in(0xAB, "READ MEDIA SERIAL NUMBER", 12, 6, 4, t::kAll, kAlwaysAllowed), 0x01),
    row(0xAC, "GET PERFORMANCE", 12, D::kRead, U::kGetPerformance, 8, 2, t::kCdrom, kAlloc),
    in(0xAD, "READ DISC STRUCTURE", 12, 8, 2, t::kCdrom, f::kNeedsMedium),
    blk(0xAE, "WRITE AND VERIFY(12)", 12, D::kWrite, U::kBlocks, 2, 4, 6, 4, kBlockTypes, kWrite,
        &sbc_write_and_verify, kUsageWriteVerify12),
    blk(0xAF, "VERIFY(12)", 12, D::kWrite, U::kVerify, 2, 4, 6, 4, kReadTypes, kRead, &sbc_verify,
        kUsageVerify12),
    in(0xB4, "READ ELEMENT STATUS ATTACHED", 12, 7, 3, t::kTape, 0),
    out(0xB5, "SECURITY PROTOCOL OUT", 12, 6, 4, t::kAll, 0),
    out(0xB6, "SEND VOLUME TAG", 12, 8, 2, t::kChanger, 0),
    in(0xB7, "READ DEFECT DATA(12)", 12, 6, 4, kBlockTypes, f::kNeedsMedium, &sbc_read_defect_data,
       kUsageReadDefect12),
    in(0xB8, "READ ELEMENT STATUS", 12, 7, 3, t::kChanger, 0),
    row(0xBB, "SET CD SPEED", 12, D::kNone, U::kNone, 0, 0, t::kCdrom, 0, &mmc_set_cd_speed,
        kUsageSetCdSpeed),
    in(0xBD, "MECHANISM STATUS", 12, 8, 2, t::kCdrom, kAlwaysAllowed, &mmc_mechanism_status,
       kUsageMechStatus),
    // MMC READ CD: 2048-byte user data per block (the emulated sector type).
    blk(0xBE, "READ CD", 12, D::kRead, U::kBlocks, 2, 4, 6, 3, t::kCdrom, kRead),
};

constexpr bool table_sorted() {
  for (size_t i = 1; i < std::size(kTable); ++i) {
    // Sorted by opcode; rows of one opcode may come in any order.
    if (kTable[i].opcode < kTable[i - 1].opcode) return false;
  }
  return true;
}

struct Index {
  // first row of each opcode, and the count
  std::array<uint16_t, 256> first{};
  std::array<uint8_t, 256> count{};
};

Index build_index() {
  Index idx;
  for (size_t i = 0; i < std::size(kTable); ++i) {
    const uint8_t op = kTable[i].opcode;
    if (idx.count[op] == 0) idx.first[op] = static_cast<uint16_t>(i);
    idx.count[op]++;
  }
  return idx;
}

const Index& index() {
  static const Index idx = build_index();
  return idx;
}

uint16_t read_service_action(std::span<const uint8_t> cdb, ServiceActionAt at) {
  switch (at) {
    case ServiceActionAt::kByte1:
      return cdb.size() > 1 ? cdb[1] & 0x1F : 0;
    case ServiceActionAt::kBytes8To9:
      return cdb.size() > 9 ? static_cast<uint16_t>((cdb[8] << 8) | cdb[9]) : 0;
    case ServiceActionAt::kNone:
      break;
  }
  return 0;
}

}  // namespace

static_assert(table_sorted(), "opcode table rows must be sorted by opcode");

ServiceActionAt OpcodeInfo::sa_at() const {
  if (!(flags & opflag::kServiceAction)) return ServiceActionAt::kNone;
  return opcode == 0x7F ? ServiceActionAt::kBytes8To9 : ServiceActionAt::kByte1;
}

std::span<const OpcodeInfo> opcode_table() { return kTable; }

Lookup lookup_opcode(std::span<const uint8_t> cdb, uint8_t dev_type) {
  Lookup out;
  if (cdb.empty()) return out;
  const uint16_t bit = device_type_bit(dev_type);
  const Index& idx = index();
  const uint8_t op = cdb[0];
  bool type_match = false;
  for (size_t i = idx.first[op]; i < size_t{idx.first[op]} + idx.count[op]; ++i) {
    const OpcodeInfo& row = kTable[i];
    if (!(row.device_types & bit)) continue;
    type_match = true;
    const ServiceActionAt at = row.sa_at();
    if (at != ServiceActionAt::kNone && read_service_action(cdb, at) != row.service_action) continue;
    out.result = LookupResult::kFound;
    out.op = &row;
    return out;
  }
  out.result = type_match ? LookupResult::kUnknownServiceAction : LookupResult::kUnknownOpcode;
  return out;
}

const OpcodeInfo* find_opcode(uint8_t opcode, uint16_t service_action, uint8_t dev_type) {
  const uint16_t bit = device_type_bit(dev_type);
  const Index& idx = index();
  for (size_t i = idx.first[opcode]; i < size_t{idx.first[opcode]} + idx.count[opcode]; ++i) {
    const OpcodeInfo& row = kTable[i];
    if (!(row.device_types & bit)) continue;
    if ((row.flags & opflag::kServiceAction) && row.service_action != service_action) continue;
    return &row;
  }
  return nullptr;
}

bool opcode_has_service_actions(uint8_t opcode, uint8_t dev_type) {
  const uint16_t bit = device_type_bit(dev_type);
  const Index& idx = index();
  for (size_t i = idx.first[opcode]; i < size_t{idx.first[opcode]} + idx.count[opcode]; ++i) {
    if ((kTable[i].device_types & bit) && (kTable[i].flags & opflag::kServiceAction)) return true;
  }
  return false;
}

}  // namespace scstu::scsi
