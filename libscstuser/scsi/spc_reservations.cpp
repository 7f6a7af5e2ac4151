// RESERVE/RELEASE(6/10) and PERSISTENT RESERVE IN/OUT: thin adapters over
// core/reservations.h and core/persistent_reservations.h.
#include <vector>

#include "scsi/command_context.h"
#include "scsi/emulation.h"
#include "scsi/logical_unit.h"
#include "scsi/lu_runtime.h"
#include "scsi/mode_pages.h"

namespace scstu::scsi {

namespace {

const SessionInfo& session_of(const CommandContext& ctx) {
  static const SessionInfo kLocal{};
  return ctx.request().session ? *ctx.request().session : kLocal;
}

}  // namespace

void spc_reserve(CommandContext& ctx) {
  LuRuntime& rt = ctx.unit().runtime();
  if (auto ex = rt.persistent.spc2_exception(session_of(ctx))) return ctx.complete_outcome(*ex);
  ctx.complete_outcome(rt.reservations.reserve(ctx.task.nexus, ctx.cdb()));
}

void spc_release(CommandContext& ctx) {
  LuRuntime& rt = ctx.unit().runtime();
  if (auto ex = rt.persistent.spc2_exception(session_of(ctx))) return ctx.complete_outcome(*ex);
  ctx.complete_outcome(rt.reservations.release(ctx.task.nexus, ctx.cdb()));
}

void spc_persistent_reserve_in(CommandContext& ctx) {
  std::vector<uint8_t> data;
  const core::Outcome o = ctx.unit().runtime().persistent.in(session_of(ctx), ctx.cdb(), data);
  if (!o.ok()) return ctx.complete_outcome(o);
  ctx.complete_data_in(data);
}

void spc_persistent_reserve_out(CommandContext& ctx) {
  LogicalUnit& lu = ctx.unit();
  LuRuntime& rt = lu.runtime();
  const uint32_t length = ctx.decoded().transfer_length;
  if (ctx.data_length() < length) return ctx.complete_check(kParameterListLengthError);
  const std::span<uint8_t> params = ctx.bounce(length);
  ctx.read_parameters(params);
  std::vector<uint64_t> preempted;
  const core::Outcome o = rt.persistent.out(session_of(ctx), ctx.cdb(), params, &preempted);
  if (!preempted.empty()) {
    // SPC-4 5.13.11.2.6 PREEMPT AND ABORT: the preempted nexuses' tasks go,
    // this command's own task stays.
    std::vector<uint64_t> cleared;
    rt.tasks.abort_nexuses(preempted, lu.mode_pages().tas(), &ctx.task, &cleared);
    for (uint64_t nexus : cleared) {
      rt.unit_attentions.raise(nexus, core::UnitAttention::kCommandsClearedByAnotherInitiator);
    }
  }
  ctx.complete_outcome(o);
}

}  // namespace scstu::scsi
