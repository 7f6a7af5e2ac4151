// TEST UNIT READY, REQUEST SENSE, SEND DIAGNOSTIC, PREVENT ALLOW MEDIUM
// REMOVAL, LOG SENSE/SELECT and the LU-local REPORT LUNS (SPC-4 6).
#include <array>
#include <vector>

#include "core/unit_attentions.h"
#include "scsi/command_context.h"
#include "scsi/emulation.h"
#include "scsi/logical_unit.h"
#include "scsi/lu_runtime.h"
#include "scsi/sanitize.h"

namespace scstu::scsi {

namespace {

// The condition TEST UNIT READY / REQUEST SENSE report for the medium.
std::optional<SenseCode> readiness(const LogicalUnit& lu) {
  if (!lu.medium_present()) return kMediumNotPresent;
  if (!lu.medium_loaded()) return kMediumNotPresentTrayOpen;
  if (!lu.started()) return kNotReadyInitializingCommandRequired;
  return std::nullopt;
}

}  // namespace

void spc_test_unit_ready(CommandContext& ctx) {
  if (auto code = readiness(ctx.unit())) return ctx.complete_check(*code);
  ctx.complete_good(0);
}

// SPC-4 6.39: the pending unit attention (then cleared), else the LU's
// state, in the format DESC asks for.
void spc_request_sense(CommandContext& ctx) {
  const SenseFormat format = (ctx.cdb()[1] & 0x01) ? SenseFormat::kDescriptor : SenseFormat::kFixed;
  LogicalUnit& lu = ctx.unit();
  SenseCode code = kNoSense;
  if (auto ua = lu.runtime().unit_attentions.take(ctx.task.nexus)) {
    code = core::sense_code(*ua);
  } else if (auto deferred = lu.runtime().deferred.take(ctx.task.nexus)) {
    return ctx.complete_data_in(SenseBuilder(format, *deferred).deferred().build().span());
  } else if (auto sanitizing = lu.runtime().sanitize->sense(format)) {
    // SBC-4 4.11.2: NOT READY, SANITIZE IN PROGRESS with the progress
    // indication (or the sanitize failure), as parameter data.
    return ctx.complete_data_in(sanitizing->span());
  } else if (auto not_ready = readiness(lu)) {
    code = *not_ready;
  }
  const SenseData s = SenseBuilder(format, code).build();
  ctx.complete_data_in(s.span());
}

// SPC-4 6.42: the default self-test, the short/long self-tests (which have
// nothing to test: they pass at once) and UNITOFFL/DEVOFFL are accepted.
void spc_send_diagnostic(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  const uint8_t code = cdb[1] >> 5;
  const bool pf = cdb[1] & 0x10;
  const bool selftest = cdb[1] & 0x04;
  const uint16_t list_length = get_be16(&cdb[3]);
  if (selftest && code != 0) return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 7});
  switch (code) {
    case 0:
    case 1:
    case 2:
    case 4:
    case 5:
    case 6:
      break;
    default:
      return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 7});
  }
  if (list_length != 0) {
    // No diagnostic pages are supported (the page-format list would name one).
    if (!pf) return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 4});
    return ctx.complete_check(kInvalidFieldInParameterList, {false, 0, 7});
  }
  ctx.complete_good(0);
}

// SPC-4 6.13 / SBC-3 5.12.
void spc_prevent_allow_medium_removal(CommandContext& ctx) {
  const uint8_t prevent = ctx.cdb()[4] & 0x03;
  if (prevent > 1) return ctx.complete_check(kInvalidFieldInCdb, {true, 4, 1});
  ctx.unit().nexuses().set_prevent(ctx.task.nexus, prevent == 1);
  ctx.complete_good(0);
}

namespace {

void log_page_header(std::vector<uint8_t>& p, uint8_t page, uint8_t subpage) {
  p.assign(4, 0);
  p[0] = page | (subpage ? 0x40 : 0);
  p[1] = subpage;
}

void log_parameter(std::vector<uint8_t>& p, uint16_t code, std::initializer_list<uint8_t> value) {
  p.push_back(static_cast<uint8_t>(code >> 8));
  p.push_back(static_cast<uint8_t>(code));
  p.push_back(0x03);  // FORMAT AND LINKING 11b: binary list
  p.push_back(static_cast<uint8_t>(value.size()));
  p.insert(p.end(), value.begin(), value.end());
}

}  // namespace

// SPC-4 6.8: pages 00h (supported pages), 0Dh (temperature), 2Fh
// (informational exceptions); subpage FFh lists subpages.
void spc_log_sense(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  if (cdb[1] & 0x01) return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 0});  // SP
  const uint8_t page = cdb[2] & 0x3F;
  const uint8_t subpage = cdb[3];
  const uint16_t pointer = get_be16(&cdb[5]);
  static constexpr std::array<uint8_t, 3> kPages = {0x00, 0x0D, 0x2F};
  std::vector<uint8_t> p;
  if (subpage == 0xFF) {
    if (page != 0x00) return ctx.complete_check(kInvalidFieldInCdb, {true, 2, 5});
    log_page_header(p, 0x00, 0xFF);
    for (uint8_t pg : kPages) {
      p.push_back(pg);
      p.push_back(0x00);
    }
    p.push_back(0x00);
    p.push_back(0xFF);
  } else if (subpage != 0) {
    return ctx.complete_check(kInvalidFieldInCdb, {true, 3, 7});
  } else if (page == 0x00) {
    log_page_header(p, 0x00, 0);
    p.insert(p.end(), kPages.begin(), kPages.end());
  } else if (page == 0x0D) {
    // SPC-4 7.3.21: no sensor; 0xFF = temperature not available.
    log_page_header(p, 0x0D, 0);
    if (pointer <= 0x0000) log_parameter(p, 0x0000, {0x00, 0xFF});
    if (pointer <= 0x0001) log_parameter(p, 0x0001, {0x00, 0xFF});
    if (pointer > 0x0001) return ctx.complete_check(kInvalidFieldInCdb, {true, 5, 7});
  } else if (page == 0x2F) {
    // SPC-4 7.3.8: no exception: ASC/ASCQ 0, temperature not available.
    log_page_header(p, 0x2F, 0);
    if (pointer > 0x0000) return ctx.complete_check(kInvalidFieldInCdb, {true, 5, 7});
    log_parameter(p, 0x0000, {0x00, 0x00, 0xFF});
  } else {
    return ctx.complete_check(kInvalidFieldInCdb, {true, 2, 5});
  }
  put_be16(&p[2], static_cast<uint16_t>(p.size() - 4));
  ctx.complete_data_in(p);
}

// SPC-4 6.7: parameters cannot be set; PCR (reset) has nothing to reset.
void spc_log_select(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  if (cdb[1] & 0x01) return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 0});  // SP
  if (ctx.decoded().transfer_length != 0) {
    return ctx.complete_check(kInvalidFieldInParameterList, {false, 0, 5});
  }
  ctx.complete_good(0);
}

// SPC-4 6.33, the LU-local view: the producer answers REPORT LUNS for the
// session's visible LUNs; if it forwards one here, report this LU alone.
void spc_report_luns(CommandContext& ctx) {
  const uint8_t select = ctx.cdb()[2];
  if (select > 0x02 && select != 0x10 && select != 0x11 && select != 0x12) {
    return ctx.complete_check(kInvalidFieldInCdb, {true, 2, 7});
  }
  // SPC-4 6.33: ALLOCATION LENGTH below 16 is an error.
  if (ctx.decoded().transfer_length < 16) {
    return ctx.complete_check(kInvalidFieldInCdb, {true, 6, 7});
  }
  std::array<uint8_t, 16> b{};
  const bool well_known_only = select == 0x01;
  if (!well_known_only) {
    put_be32(&b[0], 8);
    put_be64(&b[8], ctx.request().lun);
  }
  ctx.unit().runtime().unit_attentions.clear(ctx.task.nexus,
                                             core::UnitAttention::kReportedLunsDataHasChanged);
  ctx.complete_data_in(std::span<const uint8_t>(b.data(), well_known_only ? 8 : 16));
}

}  // namespace scstu::scsi
