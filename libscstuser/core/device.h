// device.h - a logical unit as the producer side (target core, transports)
// sees it: somewhere to send parsed commands. Two implementations:
//  - RingDevice (transport/): a handler in another process, over the ring;
//  - LocalDevice (core/): a handler in this process (embedded mode), called
//    directly, with no ring in between.
// Transports (iscsi/) never care which.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "handler/command.h"

namespace scstu::core {

class Device;
class Session;
class CommandRoute;  // core/session.h: the I_T_L nexus a routed command holds while outstanding

// SAM-5 5.4.3 / RFC 7143 11.4.5.2: how the CDB's transfer length compared with
// the initiator's expected length. Reported by iSCSI as the U/O bits.
enum class Residual : uint8_t { kNone, kUnderflow, kOverflow };

// What a device told the producer about itself when it attached.
struct DeviceInfo {
  std::string name;
  uint8_t device_type = 0;    // SPC-4 peripheral device type
  uint32_t block_size = 512;  // for CDB transfer-length decoding
  // Largest data_length the device accepts (the ring's max_io_bytes); 0 = the
  // core's own cap. A larger CDB is failed by the core: ILLEGAL REQUEST,
  // INVALID FIELD IN CDB.
  uint32_t max_transfer_bytes = 0;
};

// One SCSI command on the producer side. Owned by the transport, which keeps
// it alive until `done` has been called and the data has been sent.
struct TargetCommand {
  // Filled by the transport.
  std::array<uint8_t, SCSTU_CDB_LONG_MAX> cdb{};
  uint16_t cdb_len = 0;
  uint64_t lun = 0;               // LUN as the initiator addressed it
  Session* session = nullptr;
  TaskAttribute task_attr = TaskAttribute::kSimple;
  uint32_t expected_length = 0;   // from the transport header
  DataDirection expected_direction = DataDirection::kNone;

  // Filled by TargetCore::prepare(): the route and the CDB's own view.
  Device* device = nullptr;
  bool read_only = false;
  DataDirection direction = DataDirection::kNone;  // decoded from the CDB (authoritative)
  uint32_t data_length = 0;                        // decoded from the CDB (authoritative)
  uint32_t bidi_read_length = 0;                   // kBidi: bytes of the read part
  std::vector<iovec> buffer;      // data_length bytes, allocated by the device

  // Completion, set by the transport; called once, from any thread.
  uint8_t status = 0;
  uint32_t transferred = 0;
  uint8_t sense_len = 0;
  std::array<uint8_t, SCSTU_SENSE_MAX> sense{};
  std::function<void(TargetCommand&)> done;

  // Set by the core just before the transport's done() runs. `transferred`
  // is then the number of Data-In bytes to send (clamped to data_length and
  // expected_length, so stale buffer bytes never leave); residual and
  // residual_count are iSCSI's U/O bits and Residual Count.
  Residual residual = Residual::kNone;
  uint32_t residual_count = 0;

  // Private to the device (ring tag, etc.).
  uint64_t device_cookie = 0;

  // Private to the core (TargetCore): the route held while the command is
  // outstanding, the transport's done while the device has the command, and
  // the submission time for latency statistics. Do not touch.
  std::shared_ptr<CommandRoute> route;
  std::function<void(TargetCommand&)> transport_done;
  uint64_t submit_ns = 0;
  uint8_t core_state = 0;
};

struct TargetTmf {
  scstu_tmf_function function = SCSTU_TMF_ABORT_TASK;
  uint64_t lun = 0;
  Session* session = nullptr;
  TargetCommand* ref = nullptr;   // ABORT TASK / QUERY TASK
  std::function<void(scstu_tmf_response)> done;
};

class Device {
 public:
  virtual ~Device() = default;
  virtual const DeviceInfo& info() const = 0;
  // Allocate cmd.data_length bytes of buffer into cmd.buffer (in the shared
  // data area for a RingDevice, so the transport receives straight into it).
  // Returns false when none is free now (the core answers TASK SET FULL).
  // The core calls it for every command it routes to the device, also with
  // data_length 0, so a device may reserve per-command state (a tag) here.
  virtual bool alloc_buffer(TargetCommand& cmd) = 0;
  // Give the buffer back once the transport is done with it.
  virtual void release_buffer(TargetCommand& cmd) = 0;
  virtual void submit(TargetCommand& cmd) = 0;
  virtual void task_management(TargetTmf& tmf) = 0;
  virtual void session_attached(const SessionInfo& session) = 0;
  virtual void session_detached(const SessionInfo& session) = 0;
  // LowLevelHandler's reported_luns_changed / reported_luns_read /
  // descriptor_sense, for devices that can ask their handler at once (a
  // LocalDevice). The defaults: the core keeps REPORTED LUNS DATA HAS CHANGED
  // itself, and the sense format is not known (std::nullopt: the core uses
  // the format of the last sense data the device returned).
  virtual bool reported_luns_changed(const SessionInfo& /*session*/) { return false; }
  virtual void reported_luns_read(const SessionInfo& /*session*/) {}
  virtual std::optional<bool> descriptor_sense() const { return std::nullopt; }
};

}  // namespace scstu::core
