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
#include <string>
#include <vector>

#include "handler/command.h"

namespace scstu::core {

class Device;
class Session;

// What a device told the producer about itself when it attached.
struct DeviceInfo {
  std::string name;
  uint8_t device_type = 0;    // SPC-4 peripheral device type
  uint32_t block_size = 512;  // for CDB transfer-length decoding
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
  std::vector<iovec> buffer;      // data_length bytes, allocated by the device

  // Completion, set by the transport; called once, from any thread.
  uint8_t status = 0;
  uint32_t transferred = 0;
  uint8_t sense_len = 0;
  std::array<uint8_t, SCSTU_SENSE_MAX> sense{};
  std::function<void(TargetCommand&)> done;

  // Private to the device (ring tag, etc.).
  uint64_t device_cookie = 0;
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
  virtual bool alloc_buffer(TargetCommand& cmd) = 0;
  // Give the buffer back once the transport is done with it.
  virtual void release_buffer(TargetCommand& cmd) = 0;
  virtual void submit(TargetCommand& cmd) = 0;
  virtual void task_management(TargetTmf& tmf) = 0;
  virtual void session_attached(const SessionInfo& session) = 0;
  virtual void session_detached(const SessionInfo& session) = 0;
};

}  // namespace scstu::core
