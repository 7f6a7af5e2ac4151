// emulation.h - every emulation entry the opcode table points at. One
// function per command (or command family), defined in the file its prefix
// names: spc_*.cpp (SPC-4), sbc_*.cpp (SBC-3 data path), sbc_advanced_*.cpp
// and xcopy*.cpp (SBC-3 advanced commands and copy offload).
// How to write one: the comment block in scsi/logical_unit.h.
#pragma once

namespace scstu::scsi {

class CommandContext;

// ---- SPC-4 (spc_*.cpp) ----
void spc_test_unit_ready(CommandContext& ctx);
void spc_request_sense(CommandContext& ctx);
void spc_inquiry(CommandContext& ctx);
void spc_mode_sense(CommandContext& ctx);   // 6 and 10
void spc_mode_select(CommandContext& ctx);  // 6 and 10
void spc_log_sense(CommandContext& ctx);
void spc_log_select(CommandContext& ctx);
void spc_report_luns(CommandContext& ctx);
void spc_report_supported_opcodes(CommandContext& ctx);
void spc_report_supported_tmfs(CommandContext& ctx);
void spc_report_target_port_groups(CommandContext& ctx);
void spc_send_diagnostic(CommandContext& ctx);
void spc_prevent_allow_medium_removal(CommandContext& ctx);
void spc_reserve(CommandContext& ctx);  // RESERVE 6/10 (core/reservations.h)
void spc_release(CommandContext& ctx);  // RELEASE 6/10
void spc_persistent_reserve_in(CommandContext& ctx);
void spc_persistent_reserve_out(CommandContext& ctx);

// ---- SBC-3 basic data path (sbc_*.cpp) ----
void sbc_read(CommandContext& ctx);               // READ 6/10/12/16/32
void sbc_write(CommandContext& ctx);              // WRITE 6/10/12/16/32
void sbc_verify(CommandContext& ctx);             // VERIFY 10/12/16/32
void sbc_write_and_verify(CommandContext& ctx);   // WRITE AND VERIFY 10/12/16/32
void sbc_synchronize_cache(CommandContext& ctx);  // 10/16
void sbc_read_capacity10(CommandContext& ctx);
void sbc_read_capacity16(CommandContext& ctx);
void sbc_start_stop_unit(CommandContext& ctx);

// ---- MMC-6 read-only CD-ROM (mmc_*.cpp) ----
void mmc_get_configuration(CommandContext& ctx);
void mmc_read_toc(CommandContext& ctx);
void mmc_get_event_status_notification(CommandContext& ctx);
void mmc_read_disc_information(CommandContext& ctx);
void mmc_read_track_information(CommandContext& ctx);
void mmc_mechanism_status(CommandContext& ctx);
void mmc_set_cd_speed(CommandContext& ctx);

// ---- SBC-3 advanced (helper "sbc": sbc_advanced_*.cpp) ----
// Declared here so the table rows only change from nullptr to &entry.
void sbc_unmap(CommandContext& ctx);
void sbc_write_same(CommandContext& ctx);  // 10/16/32
void sbc_compare_and_write(CommandContext& ctx);
void sbc_get_lba_status(CommandContext& ctx);
void sbc_format_unit(CommandContext& ctx);
void sbc_pre_fetch(CommandContext& ctx);  // 10/16
void sbc_orwrite(CommandContext& ctx);
void sbc_write_atomic(CommandContext& ctx);
void sbc_sanitize(CommandContext& ctx);
void sbc_read_defect_data(CommandContext& ctx);  // 10/12
// EXTENDED COPY / RECEIVE COPY RESULTS have no entry: the producer side's
// copy manager (core/copy_manager.h) answers them.

}  // namespace scstu::scsi
