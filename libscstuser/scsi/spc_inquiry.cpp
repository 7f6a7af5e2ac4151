// INQUIRY (SPC-4 6.6): standard data and the vital product data pages.
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "scsi/command_context.h"
#include "scsi/emulation.h"
#include "scsi/identity.h"
#include "scsi/logical_unit.h"
#include "scsi/xcopy.h"

namespace scstu::scsi {

namespace {

constexpr size_t kStandardLength = 96;

bool implemented(uint8_t opcode, uint16_t sa, uint8_t type) {
  const OpcodeInfo* op = find_opcode(opcode, sa, type);
  return op != nullptr && op->emulate != nullptr;
}

// EXTENDED COPY is executed by the producer's copy manager (xcopy.h), for
// block devices, when the configuration says one is there.
bool third_party_copy(const LogicalUnit& lu) {
  const OpcodeInfo* op = find_opcode(0x83, 0x00, lu.device_type());
  return lu.config().third_party_copy && op != nullptr;
}

// SPC-4 Table 143 version descriptors.
void version_descriptors(uint8_t type, uint8_t* p) {
  std::array<uint16_t, 8> v{};
  size_t n = 0;
  v[n++] = 0x00A0;  // SAM-5 (no version claimed)
  v[n++] = 0x0460;  // SPC-4 (no version claimed)
  switch (type) {
    case device_type::kDisk:
      v[n++] = 0x04C0;
      break;  // SBC-3
    case device_type::kTape:
      v[n++] = 0x0400;
      break;  // SSC-3
    case device_type::kCdrom:
      v[n++] = 0x04E0;
      break;  // MMC-6
    case device_type::kChanger:
      v[n++] = 0x0480;
      break;  // SMC-3
    default:
      break;
  }
  v[n++] = 0x0960;  // iSCSI (no version claimed)
  for (size_t i = 0; i < n; ++i) put_be16(p + 2 * i, v[i]);
}

void standard_inquiry(CommandContext& ctx) {
  const LogicalUnit& lu = ctx.unit();
  const LogicalUnitConfig& cfg = lu.config();
  std::array<uint8_t, kStandardLength> b{};
  b[0] = cfg.device_type & 0x1F;  // PERIPHERAL QUALIFIER 000b: connected
  if (cfg.removable || lu.capabilities().removable) b[1] = 0x80;  // RMB
  b[2] = 0x06;                                                    // VERSION: SPC-4
  b[3] = 0x10 | 0x02;                                             // HISUP, RESPONSE DATA FORMAT 2
  b[4] = kStandardLength - 5;                                     // ADDITIONAL LENGTH
  b[5] = 0x10;  // TPGS 01b: implicit ALUA (REPORT TARGET PORT GROUPS)
  if (third_party_copy(lu)) b[5] |= 0x08;  // 3PC
  b[7] = 0x02;                             // CMDQUE
  pad_ascii(&b[8], 8, cfg.vendor);
  pad_ascii(&b[16], 16, cfg.product);
  pad_ascii(&b[32], 4, cfg.revision);
  version_descriptors(cfg.device_type, &b[58]);
  ctx.complete_data_in(b);
}

// VPD page header (SPC-4 7.8.1).
void vpd_header(std::vector<uint8_t>& p, uint8_t type, uint8_t page) {
  p.assign(4, 0);
  p[0] = type & 0x1F;
  p[1] = page;
}

void vpd_finish(std::vector<uint8_t>& p) { put_be16(&p[2], static_cast<uint16_t>(p.size() - 4)); }

std::vector<uint8_t> supported_pages(const LogicalUnit& lu) {
  std::vector<uint8_t> pages = {0x00, 0x80, 0x83, 0x86};
  // SPC-4 7.8.17 Third-party Copy, when a copy manager fronts the unit.
  if (third_party_copy(lu)) pages.push_back(0x8F);
  if (lu.device_type() == device_type::kDisk) {
    pages.insert(pages.end(), {0xB0, 0xB1, 0xB2});
  }
  return pages;
}

void designator(std::vector<uint8_t>& p, uint8_t proto_codeset, uint8_t piv_assoc_type,
                std::span<const uint8_t> value) {
  p.push_back(proto_codeset);
  p.push_back(piv_assoc_type);
  p.push_back(0);
  p.push_back(static_cast<uint8_t>(value.size()));
  p.insert(p.end(), value.begin(), value.end());
}

// SPC-4 7.8.6 Device Identification.
void device_identification(CommandContext& ctx, std::vector<uint8_t>& p) {
  const LogicalUnit& lu = ctx.unit();
  const LogicalUnitConfig& cfg = lu.config();
  const LuIdentity id = make_identity(cfg);
  // NAA 6 (IEEE registered extended), binary, associated with the LU.
  designator(p, 0x01, 0x03, id.naa);
  // T10 vendor ID based: vendor (8) + product (16) + serial, ASCII.
  std::vector<uint8_t> t10(24);
  pad_ascii(t10.data(), 8, cfg.vendor);
  pad_ascii(t10.data() + 8, 16, cfg.product);
  t10.insert(t10.end(), id.serial.begin(), id.serial.end());
  designator(p, 0x02, 0x01, t10);
  if (cfg.eui64) {
    std::array<uint8_t, 8> eui{};
    put_be64(eui.data(), *cfg.eui64);
    designator(p, 0x01, 0x02, eui);
  }
  // Target port designators (association 01b), PIV with the protocol when known.
  const SessionInfo* s = ctx.request().session;
  const uint16_t rel_port = s ? s->relative_port : 1;
  const uint8_t proto = s ? static_cast<uint8_t>(s->protocol_id & 0x0F) : 0x0F;
  const bool piv = proto != 0x0F;
  const uint8_t proto_binary = static_cast<uint8_t>(piv ? (proto << 4) | 0x01 : 0x01);
  const uint8_t piv_bit = piv ? 0x80 : 0x00;
  std::array<uint8_t, 4> v{};
  put_be16(&v[2], rel_port);
  designator(p, proto_binary, piv_bit | 0x10 | 0x04, v);  // relative target port
  put_be16(&v[2], cfg.target_port_group);
  designator(p, proto_binary, piv_bit | 0x10 | 0x05, v);  // target port group
  if (s != nullptr && !s->target_name.empty() && proto == 0x5) {
    // SCSI name string of the target port: "<iqn>,t,0x0001", UTF-8, padded to 4.
    char port_id[16];
    std::snprintf(port_id, sizeof(port_id), ",t,0x%04x", rel_port);
    std::string name = s->target_name + port_id;
    std::vector<uint8_t> v8(name.begin(), name.end());
    v8.push_back(0);
    while (v8.size() % 4) v8.push_back(0);
    if (v8.size() <= 252)
      designator(p, static_cast<uint8_t>((proto << 4) | 0x03), 0x80 | 0x10 | 0x08, v8);
  }
}

void vpd_page(CommandContext& ctx, uint8_t page) {
  const LogicalUnit& lu = ctx.unit();
  const LogicalUnitConfig& cfg = lu.config();
  const uint8_t type = cfg.device_type;
  std::vector<uint8_t> p;
  vpd_header(p, type, page);
  const std::vector<uint8_t> pages = supported_pages(lu);
  if (std::find(pages.begin(), pages.end(), page) == pages.end()) {
    ctx.complete_check(kInvalidFieldInCdb, {true, 2, kNoBit});
    return;
  }
  switch (page) {
    case 0x00:
      p.insert(p.end(), pages.begin(), pages.end());
      break;
    case 0x80: {  // SPC-4 7.8.15 Unit Serial Number
      const std::string serial = make_identity(cfg).serial;
      p.insert(p.end(), serial.begin(), serial.end());
      break;
    }
    case 0x83:
      device_identification(ctx, p);
      break;
    case 0x8F:
      return ctx.complete_data_in(third_party_copy_vpd_page(lu));
    case 0x86: {  // SPC-4 7.8.7 Extended INQUIRY Data
      p.resize(64);
      p[5] = 0x07;  // HEADSUP, ORDSUP, SIMPSUP
      const bool volatile_cache =
          cfg.write_cache != WriteCacheMode::kNvCache && lu.capabilities().volatile_cache;
      p[6] = static_cast<uint8_t>((cfg.write_cache == WriteCacheMode::kNvCache ? 0x02 : 0x00) |
                                  (volatile_cache ? 0x01 : 0x00));  // NV_SUP, V_SUP
      p[7] = 0x01;                                                  // LUICLR
      break;
    }
    case 0xB0: {  // SBC-3 6.5.3 Block Limits
      p.resize(64);
      const uint32_t bs = lu.block_size();
      const uint32_t max_blocks = bs ? cfg.max_transfer_bytes / bs : 0;
      if (implemented(0x89, 0, type)) p[5] = cfg.max_compare_write_blocks;
      const uint32_t granularity = 1u << cfg.physical_block_exponent;
      put_be16(&p[6], static_cast<uint16_t>(granularity));
      put_be32(&p[8], max_blocks);
      put_be32(&p[12], cfg.optimal_transfer_blocks ? cfg.optimal_transfer_blocks : max_blocks);
      const bool unmap = cfg.thin && lu.capabilities().unmap && implemented(0x42, 0, type);
      if (unmap) {
        put_be32(&p[20], cfg.max_unmap_lba_count);
        put_be32(&p[24], cfg.max_unmap_descriptors);
        put_be32(&p[28], cfg.unmap_granularity);
      }
      if (implemented(0x93, 0, type)) put_be64(&p[36], cfg.max_write_same_blocks);
      if (implemented(0x9C, 0, type)) {
        const uint32_t atomic =
            cfg.max_atomic_transfer_blocks ? cfg.max_atomic_transfer_blocks : max_blocks;
        put_be32(&p[44], atomic);
        put_be32(&p[48], 1);  // ATOMIC ALIGNMENT
        put_be32(&p[52], 1);  // ATOMIC TRANSFER LENGTH GRANULARITY
      }
      break;
    }
    case 0xB1:  // SBC-3 6.5.2 Block Device Characteristics
      p.resize(64);
      put_be16(&p[4], cfg.rotation_rate);
      // SBC-4 WABEREQ / WACEREQ 01b: after a BLOCK / CRYPTOGRAPHIC ERASE
      // sanitize, reads of the erased blocks complete GOOD.
      if (implemented(0x48, 0x02, type)) p[7] |= 0x40;
      if (implemented(0x48, 0x03, type)) p[7] |= 0x10;
      break;
    case 0xB2: {  // SBC-3 6.5.4 Logical Block Provisioning
      p.resize(8);
      const bool thin = cfg.thin && lu.capabilities().unmap;
      uint8_t bits = 0;
      if (thin && implemented(0x42, 0, type)) bits |= 0x80;      // LBPU
      if (thin && implemented(0x93, 0, type)) bits |= 0x40;      // LBPWS
      if (thin && implemented(0x41, 0, type)) bits |= 0x20;      // LBPWS10
      if (thin && lu.capabilities().unmap_zeroes) bits |= 0x04;  // LBPRZ
      p[5] = bits;
      p[6] = thin ? 0x02 : 0x00;  // PROVISIONING TYPE: thin / full
      break;
    }
  }
  vpd_finish(p);
  ctx.complete_data_in(p);
}

}  // namespace

void spc_inquiry(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  const bool evpd = cdb[1] & 0x01;
  if (!evpd) {
    // SPC-4 6.6.1: PAGE CODE must be 0 without EVPD.
    if (cdb[2] != 0) return ctx.complete_check(kInvalidFieldInCdb, {true, 2, kNoBit});
    return standard_inquiry(ctx);
  }
  vpd_page(ctx, cdb[2]);
}

}  // namespace scstu::scsi
