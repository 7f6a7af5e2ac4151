// local_device.h - a Device whose handler runs in this process (embedded
// mode, e.g. fileio_tgt --iscsi with scsi::LogicalUnit): submit() calls the
// LowLevelHandler directly, no ring in between.
//
// Each outstanding command takes one of `queue_depth` slots (at
// alloc_buffer; none free = the core answers TASK SET FULL / BUSY). A slot
// keeps its CommandRequest and a 4096-aligned buffer that is reused and only
// grows, so the hot path neither allocates nor locks once warm. Completion
// (CommandHandle::complete, from any handler thread) calls cmd.done on that
// thread.
//
// Stale data: slots serve every session, so a READ buffer still holds the
// previous command's data. The handler contract (command.h) is that every
// byte it reports as transferred is one it wrote, and the core sends only
// those; on completion the untransferred tail of a READ buffer is zeroed too,
// so no byte the handler did not write can leave (an error reply, a short
// read: the tail is cleared; a full read costs no memset). zero_read_buffers
// zeroes the whole read part before the handler runs instead, for a handler
// that may report bytes it did not write (~1 us per 64 KiB). BIDI read parts
// are always zeroed up front.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/device.h"
#include "core/slot_bitmap.h"
#include "handler/command.h"

namespace scstu::core {

struct LocalDeviceOptions {
  DeviceInfo info;
  uint32_t queue_depth = 256;        // commands outstanding at once
  uint32_t max_io_bytes = 8u << 20;  // largest data_length (DeviceInfo::max_transfer_bytes)
  bool zero_read_buffers = false;    // see above: for careless handlers
  // Optional: slot `slot` (0 .. queue_depth - 1) now has this buffer, called
  // when it is allocated or grows (before the old one is freed) and with an
  // empty span before the LocalDevice frees it. From the submitting thread;
  // different slots concurrently. fileio_tgt registers each as an io_uring
  // fixed buffer.
  std::function<void(uint32_t slot, std::span<std::byte> buffer)> on_slot_buffer;
};

class LocalDevice final : public Device, private CommandSink {
 public:
  LocalDevice(std::shared_ptr<LowLevelHandler> handler, LocalDeviceOptions options);
  ~LocalDevice() override;

  const DeviceInfo& info() const override { return info_; }
  bool alloc_buffer(TargetCommand& cmd) override;
  void release_buffer(TargetCommand& cmd) override;
  void submit(TargetCommand& cmd) override;
  void task_management(TargetTmf& tmf) override;
  void session_attached(const SessionInfo& session) override;
  void session_detached(const SessionInfo& session) override;
  bool reported_luns_changed(const SessionInfo& session) override {
    return handler_->reported_luns_changed(session);
  }
  void reported_luns_read(const SessionInfo& session) override {
    handler_->reported_luns_read(session);
  }
  std::optional<bool> descriptor_sense() const override { return handler_->descriptor_sense(); }

  LowLevelHandler& handler() { return *handler_; }
  uint32_t outstanding() const { return slots_.in_use(); }

 private:
  struct Slot {
    uint8_t* memory = nullptr;  // 4096-aligned, `capacity` bytes
    size_t capacity = 0;
    TargetCommand* cmd = nullptr;
    CommandRequest request;
  };

  void complete(uint32_t token, const CommandReply& reply) override;
  bool reserve(Slot& slot, uint32_t length);

  std::shared_ptr<LowLevelHandler> handler_;
  DeviceInfo info_;
  LocalDeviceOptions options_;
  std::vector<Slot> slot_table_;
  SlotBitmap slots_;
};

}  // namespace scstu::core
