// target_core.h - the producer-side target core: targets, sessions (I_T
// nexuses), access control and LUN masking (the seed's security groups),
// flow control, statistics, and routing of commands to devices.
//
// How a transport (iscsi/, or a test's in-process initiator) drives it:
//
//   core.access() ...                 configure targets, devices, groups (any time)
//   auto s = core.open_session(p);    at login; nullptr = unknown target. Every
//                                     device the session sees hears session_attached.
//   per SCSI command (cmd: a TargetCommand the transport owns):
//     fill cdb, cdb_len, lun (the 8-byte LUN field as a big-endian u64, see
//     core/lun.h), session = s.get(), task_attr, expected_length,
//     expected_direction, done.
//     if (core.prepare(cmd)) {        routes the LUN, decodes the CDB (direction,
//                                     data_length: authoritative), admits it under
//                                     the flow limits, allocates cmd.buffer.
//       receive Data-Out into cmd.buffer (write / bidi: data_length bytes,
//       the write part first for bidi; discard what the initiator sends beyond);
//       core.execute(cmd);            hands it to the device
//     }
//     // else: prepare() already called done() on this thread (CHECK CONDITION,
//     // TASK SET FULL / BUSY, or an answer of the core's own: REPORT LUNS,
//     // INQUIRY / REQUEST SENSE to an unmapped LUN). The initiator's Data-Out
//     // for it is to be received and discarded.
//   cmd.done(cmd) runs exactly once: from inside prepare() (answered by the
//     core), or from whatever thread the device completes on (a RingDevice's
//     completion thread, a LocalDevice handler's thread, possibly inside
//     execute()). When it runs: status, sense/sense_len, transferred (= Data-In
//     bytes to send, already clamped to data_length and expected_length),
//     residual/residual_count (iSCSI U/O bits and Residual Count) are final.
//     Send Data-In from cmd.buffer and the response, then
//   core.release(cmd);                always, once per prepare(), also when
//                                     prepare() returned false or the command
//                                     was never executed (connection lost
//                                     during Data-Out). Frees the buffer.
//   core.task_management(tmf);        TMF; tmf.done(response) runs once, from any
//                                     thread. The TargetCommand an ABORT TASK /
//                                     QUERY TASK refers to (tmf.ref) must stay
//                                     alive and un-released until then. Aborted
//                                     commands still get done() (the transport
//                                     sends no response for those it aborted).
//   core.close_session(*s);           logout / connection loss: I_T NEXUS LOSS
//                                     and session_detached to every device it sees.
//
// A TargetCommand may be reused after release(); done is kept.
//
// Residuals (SAM-5 5.4.3, RFC 7143 11.4.5.2): the CDB's transfer length is
// authoritative, the expected length only produces residuals:
//   read:   device reports T bytes; sends min(T, expected); T > expected:
//           overflow of T - expected; T < expected: underflow of expected - T.
//   write:  expected > data_length: underflow of expected - data_length (the
//           extra Data-Out is discarded). expected < data_length: overflow of
//           data_length - expected, and (FCP-4 9.4.2) a block write (WRITE,
//           WRITE AND VERIFY, ... counted in blocks) whose expected length is
//           whole blocks is cut to those blocks: the core rewrites the CDB's
//           TRANSFER LENGTH and data_length, GOOD if the device says so; any
//           other such write is refused with ILLEGAL REQUEST, INVALID FIELD IN
//           COMMAND INFORMATION UNIT. Never a write of bytes the initiator did
//           not send. A write of the medium that cannot be cut (WRITE SAME,
//           UNMAP, ...) goes to the device with data_length = expected: the
//           device server answers DATA PROTECT if the unit is write protected,
//           else the same 0E/03 (write protection comes before the length).
//   none:   expected > 0: underflow of expected.
//   expected_direction contradicting the CDB (READ sent with only the W bit):
//           prepare() sets expected_length to 0 (the initiator expects no data
//           in the CDB's direction) and the rules above apply: no Data-In, no
//           bytes written. Bidirectional mismatches are refused (0E/03).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/access_control.h"
#include "core/copy_manager_options.h"
#include "core/device.h"
#include "core/flow_control.h"
#include "core/session.h"
#include "core/statistics.h"

namespace scstu::scsi {
struct CdbDecode;
enum class SenseFormat : uint8_t;
}  // namespace scstu::scsi

namespace scstu::core {

class CopyManager;

struct TargetCoreOptions {
  FlowLimits limits;
  // Upper bound on data_length for a device that states no max_transfer_bytes.
  uint32_t max_transfer_bytes = 64u << 20;
  // EXTENDED COPY: retries of a copy target's BUSY / TASK SET FULL.
  CopyManagerOptions copies;
};

class TargetCore {
 public:
  explicit TargetCore(TargetCoreOptions options = {});
  ~TargetCore();
  TargetCore(const TargetCore&) = delete;
  TargetCore& operator=(const TargetCore&) = delete;

  // Targets, devices, security groups. Changes apply to open sessions at once:
  // a session whose LUN inventory changed is re-attached to the devices it
  // gains/loses and gets REPORTED LUNS DATA HAS CHANGED on its LUNs.
  AccessControl& access() { return access_; }

  // Sessions (I_T nexuses). nullptr when the target is unknown (`why` says so).
  std::shared_ptr<Session> open_session(const SessionParams& params, std::string* why = nullptr);
  void close_session(Session& session);
  std::vector<std::shared_ptr<Session>> sessions() const;

  // Commands; see the call sequence above.
  bool prepare(TargetCommand& cmd);
  void execute(TargetCommand& cmd);
  void release(TargetCommand& cmd);

  // ABORT TASK / QUERY TASK (tmf.ref), ABORT TASK SET, CLEAR TASK SET, LUN
  // RESET, CLEAR ACA, QUERY TASK SET, QUERY ASYNC EVENT (tmf.lun) go to the
  // addressed device; TARGET RESET to every device the target's sessions see.
  // An unmapped LUN answers INCORRECT_LUN; ABORT TASK of a command that is not
  // (or no longer) with a device answers COMPLETE (SAM-5 7.2).
  void task_management(TargetTmf& tmf);

  // Statistics of a registered device, by name.
  std::optional<DeviceStatistics> statistics(std::string_view device) const;
  std::vector<DeviceStatistics> all_statistics() const;  // every registered device
  void reset_statistics(std::string_view device);

  const FlowLimits& limits() const { return options_.limits; }
  CopyManager& copies() { return *copies_; }  // EXTENDED COPY, core/copy_manager.h

 private:
  struct DoneHook;   // the command's done while a device has it
  struct TmfFanout;  // a TMF sent to several devices

  void refresh_sessions();
  void refresh_session(Session& session);
  std::shared_ptr<const LunTable> build_table(const Session& session,
                                              const LunTable* previous) const;
  void complete_now(TargetCommand& cmd);
  // Sense in the format of the logical unit behind `route` (fixed without one).
  static scsi::SenseFormat sense_format(const CommandRoute* route);
  void complete_check_condition(TargetCommand& cmd, uint8_t key, uint8_t asc, uint8_t ascq,
                                int field_byte = -1, int field_bit = -1,
                                const CommandRoute* route = nullptr);
  void complete_status(TargetCommand& cmd, uint8_t status);
  bool answer_unmapped(TargetCommand& cmd, const LunTable& table);
  void answer_report_luns(TargetCommand& cmd, const LunTable& table, const CommandRoute* route);
  void answer_request_sense(TargetCommand& cmd, uint8_t key, uint8_t asc, uint8_t ascq);
  void answer_with(TargetCommand& cmd, std::vector<uint8_t> data, uint32_t allocation_length);
  void on_device_done(TargetCommand& cmd);
  void settle(TargetCommand& cmd);
  static bool truncate_write(TargetCommand& cmd, const scsi::CdbDecode& d, uint32_t block_size);
  void target_reset(TargetTmf& tmf);
  void reap_fanouts();

  TargetCoreOptions options_;
  AccessControl access_;
  mutable std::mutex sessions_mutex_;
  std::map<uint64_t, std::shared_ptr<Session>> sessions_;
  std::mutex refresh_mutex_;  // serialises inventory changes against open/close
  uint64_t next_session_id_ = 1;
  std::mutex fanouts_mutex_;
  std::vector<std::shared_ptr<TmfFanout>> fanouts_;
  // EXTENDED COPY / RECEIVE COPY RESULTS (core/copy_manager.h). Last: its
  // destructor waits for running copies, which use the members above.
  std::unique_ptr<CopyManager> copies_;
};

}  // namespace scstu::core
