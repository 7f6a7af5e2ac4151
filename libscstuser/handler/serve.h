// serve.h - run a handler: attach to a producer's ring and dispatch its
// commands to a LowLevelHandler until the producer goes away or a stop is
// requested.
//
//   scstu::HandlerOptions opt;
//   opt.socket_path = "/run/scstu/target.sock";  // user-space producer, or
//   opt.device_path = "/dev/scstu/disk0";         // the kernel shim's char device
//   opt.device_name = "disk0";
//   opt.device_type = 0;                           // SPC-4 peripheral device type
//   opt.block_size = 512;
//   int rc = scstu::serve(opt, my_handler);        // blocks
//
// One thread per ring queue calls the handler (see command.h for the
// threading contract). Reattaching after a producer restart is the caller's
// loop: serve() returns, the caller calls it again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "handler/command.h"

namespace scstu {

struct HandlerOptions {
  // Exactly one of these two says where the producer is.
  std::string socket_path;  // a user-space producer's Unix socket (transport/unix_listener.h)
  std::string device_path;  // the kernel shim's /dev/scstu/<name>
  // Optional, with device_path: a descriptor of device_path the caller opened
  // already (e.g. to read the region header first). serve() attaches through
  // a duplicate of it instead of opening the node again, so the shim sees one
  // attach; the caller still owns (and closes) this one. -1: open the path.
  int device_fd = -1;
  std::string device_name;  // the device the producer registered (user-space producer only)
  uint8_t device_type = 0;  // SPC-4 peripheral device type: 0 disk, 1 tape, 8 changer
  uint32_t block_size = 512;
  // Optional: serve() returns 0 soon after this fd becomes readable (an
  // eventfd or the read end of a pipe the caller writes to). -1: none.
  int stop_fd = -1;
  // Optional: called once the ring is attached and the queue threads run
  // (tests and daemons use it to know they are ready).
  void (*on_ready)(void* arg) = nullptr;
  void* on_ready_arg = nullptr;
  // Optional: the attachment's data area, where every command's buffers live
  // (in every command's DataBuffer), called on each attach before the first
  // command. Called again with an empty span once serve() stops dispatching:
  // the area then stays mapped only until the handler completes what it still
  // holds, so drop anything keyed on it (fileio_tgt registers the area as
  // io_uring fixed buffers and unregisters it here).
  std::function<void(std::span<std::byte> area)> on_data_area;
  // Ring ABI 1.2 (SCSTU_F_UNIT_STATE): when the producer offers it, keep the
  // target core's part of the unit's state here: REPORTED LUNS DATA HAS
  // CHANGED goes to LowLevelHandler::reported_luns_changed (queued with the
  // handler's own unit attentions, in SAM-5 precedence) and the handler's
  // descriptor_sense() is published for the sense the producer builds.
  // false: behave as an ABI 1.1 handler (the producer keeps both; for
  // interoperability tests).
  bool unit_state = true;
};

// Returns 0 when stopped through stop_fd, or a negative errno when the attach
// failed or the producer went away / broke the protocol (-EPIPE: producer
// gone; -EPROTO: producer wrote invalid ring entries). On error, *error (if
// given) holds a message naming the object and the cause. Commands the
// handler still holds when serve() returns may be completed safely: their
// replies are discarded.
int serve(const HandlerOptions& options, LowLevelHandler& handler, std::string* error = nullptr);

}  // namespace scstu
