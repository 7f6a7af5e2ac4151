#include "core/local_device.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>

#include "core/session.h"

namespace scstu::core {

LocalDevice::LocalDevice(std::shared_ptr<LowLevelHandler> handler, LocalDeviceOptions options)
    : handler_(std::move(handler)),
      info_(options.info),
      options_(options),
      slot_table_(std::max<uint32_t>(options.queue_depth, 1)),
      slots_(std::max<uint32_t>(options.queue_depth, 1)) {
  if (info_.max_transfer_bytes == 0 || info_.max_transfer_bytes > options_.max_io_bytes) {
    info_.max_transfer_bytes = options_.max_io_bytes;
  }
}

LocalDevice::~LocalDevice() {
  for (size_t i = 0; i < slot_table_.size(); ++i) {
    Slot& slot = slot_table_[i];
    if (slot.memory && options_.on_slot_buffer)
      options_.on_slot_buffer(static_cast<uint32_t>(i), {});
    std::free(slot.memory);
  }
}

// Grows the slot's buffer to hold `length` bytes: 4096-aligned (O_DIRECT),
// power-of-two sizes so a slot settles after a few commands.
bool LocalDevice::reserve(Slot& slot, uint32_t length) {
  if (length <= slot.capacity) return true;
  const size_t capacity = std::max<size_t>(SCSTU_DATA_ALIGN, std::bit_ceil(size_t{length}));
  void* memory = std::aligned_alloc(SCSTU_DATA_ALIGN, capacity);
  if (!memory) return false;
  // Announce the new buffer while the old one is still allocated: nothing
  // else can then be given its addresses while they are still registered.
  if (options_.on_slot_buffer) {
    options_.on_slot_buffer(static_cast<uint32_t>(&slot - slot_table_.data()),
                            std::span<std::byte>(static_cast<std::byte*>(memory), capacity));
  }
  std::free(slot.memory);
  slot.memory = static_cast<uint8_t*>(memory);
  slot.capacity = capacity;
  return true;
}

bool LocalDevice::alloc_buffer(TargetCommand& cmd) {
  if (cmd.data_length > info_.max_transfer_bytes) return false;
  const auto index = slots_.acquire();
  if (!index) return false;
  Slot& slot = slot_table_[*index];
  if (!reserve(slot, cmd.data_length)) {
    slots_.release(*index);
    return false;
  }
  slot.cmd = &cmd;
  cmd.device_cookie = *index;
  cmd.buffer.clear();
  if (cmd.data_length) cmd.buffer.push_back(iovec{slot.memory, cmd.data_length});
  // The slot last carried another command's data, maybe another
  // initiator's: a READ must not be able to return it (see local_device.h;
  // plain READs get their untransferred tail zeroed in complete()).
  if (cmd.direction == DataDirection::kRead && options_.zero_read_buffers) {
    std::memset(slot.memory, 0, cmd.data_length);
  } else if (cmd.direction == DataDirection::kBidi) {
    const uint32_t read_part = std::min(cmd.bidi_read_length, cmd.data_length);
    std::memset(slot.memory + (cmd.data_length - read_part), 0, read_part);
  }
  return true;
}

void LocalDevice::release_buffer(TargetCommand& cmd) {
  const uint64_t index = cmd.device_cookie;
  if (index >= slot_table_.size() || slot_table_[index].cmd != &cmd) return;
  slot_table_[index].cmd = nullptr;
  cmd.buffer.clear();
  slots_.release(static_cast<uint32_t>(index));
}

void LocalDevice::submit(TargetCommand& cmd) {
  const uint32_t index = static_cast<uint32_t>(cmd.device_cookie);
  Slot& slot = slot_table_[index];
  CommandRequest& r = slot.request;
  r.cdb = std::span<const uint8_t>(cmd.cdb.data(), cmd.cdb_len);
  r.lun = cmd.lun;
  r.session = &cmd.session->info();
  r.task_attr = cmd.task_attr;
  r.direction = cmd.direction;
  r.data_length = cmd.data_length;
  r.expected_length = cmd.expected_length;
  r.bidi_read_length = cmd.bidi_read_length;
  r.read_only = cmd.read_only;
  r.tag = index;
  r.queue = 0;
  r.data = DataBuffer(std::span<const iovec>(cmd.buffer));
  handler_->command(CommandHandle(this, index, &r));
}

// CommandSink: the handler's one reply, from any of its threads.
void LocalDevice::complete(uint32_t token, const CommandReply& reply) {
  if (token >= slot_table_.size()) return;
  Slot& slot = slot_table_[token];
  TargetCommand* cmd = slot.cmd;
  if (!cmd) return;
  cmd->status = reply.status;
  cmd->transferred = reply.transferred;
  if (cmd->direction == DataDirection::kRead && reply.transferred < cmd->data_length) {
    // What the handler did not fill still holds an earlier command's data.
    std::memset(slot.memory + reply.transferred, 0, cmd->data_length - reply.transferred);
  }
  const size_t sense = std::min<size_t>(reply.sense.size(), SCSTU_SENSE_MAX);
  if (sense) std::memcpy(cmd->sense.data(), reply.sense.data(), sense);
  cmd->sense_len = static_cast<uint8_t>(sense);
  cmd->done(*cmd);
}

void LocalDevice::task_management(TargetTmf& tmf) {
  TaskManagementRequest req;
  req.function = tmf.function;
  req.lun = tmf.lun;
  req.session = tmf.session ? &tmf.session->info() : nullptr;
  if (tmf.ref) req.ref_tag = static_cast<uint32_t>(tmf.ref->device_cookie);
  const scstu_tmf_response response = handler_->task_management(req);
  if (tmf.done) tmf.done(response);
}

void LocalDevice::session_attached(const SessionInfo& session) {
  handler_->session_attached(session);
}

void LocalDevice::session_detached(const SessionInfo& session) {
  handler_->session_detached(session);
}

}  // namespace scstu::core
