// ring_attachment.h - a handler's view of one attached device, however it got
// there: the mapped region (header validated), per queue an fd that becomes
// readable when the producer kicks us, and a way to kick the producer.
//
// Two ways to attach, one result:
//  - a user-space producer's Unix socket (ring/attach_protocol.h): memfd and
//    eventfds arrive over SCM_RIGHTS; the socket's hang-up means the producer
//    is gone;
//  - the kernel shim's /dev/scstu/<name>: mmap the char device, register one
//    eventfd per queue with SCSTU_IOC_SET_EVENTFD, kick with SCSTU_IOC_KICK.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ring/region_layout.h"

namespace scstu {

struct HandlerOptions;

class RingAttachment {
 public:
  // Attaches per options.socket_path or options.device_path. nullptr and
  // *error on failure.
  static std::unique_ptr<RingAttachment> attach(const HandlerOptions& options, std::string* error);
  static std::unique_ptr<RingAttachment> connect_socket(const std::string& socket_path,
                                                        const std::string& device_name,
                                                        uint8_t device_type, uint32_t block_size,
                                                        std::string* error);
  // device_fd >= 0: attach through a duplicate of this open descriptor of
  // device_path instead of opening it (HandlerOptions::device_fd).
  static std::unique_ptr<RingAttachment> open_kernel_device(const std::string& device_path,
                                                            uint8_t device_type, std::string* error,
                                                            int device_fd = -1);
  ~RingAttachment();
  RingAttachment(const RingAttachment&) = delete;
  RingAttachment& operator=(const RingAttachment&) = delete;

  const ring::RegionView& region() const { return view_; }
  const scstu_region_header& header() const { return view_.header(); }
  uint32_t nr_queues() const { return view_.header().nr_queues; }
  // Readable when the producer published submissions on queue q (drain with
  // drain_wait_fd()).
  int wait_fd(uint32_t q) const { return wait_fds_[q]; }
  void drain_wait_fd(uint32_t q) const;
  // Tells the producer completions were published on queue q.
  void kick(uint32_t q) const;
  // Becomes readable/hung-up when the producer goes away; -1 when the
  // transport has no such signal (the kernel shim outlives its handlers).
  int peer_fd() const { return peer_fd_; }
  // Closes the doorbells and the producer connection (the producer sees the
  // hang-up) but keeps the region mapped: buffers still held by the handler
  // stay valid until this object is destroyed.
  void close_channels();

 private:
  RingAttachment() = default;
  bool map_region(int fd, uint64_t size, std::string* error);

  void* map_ = nullptr;
  uint64_t map_size_ = 0;
  ring::RegionView view_;
  bool kernel_ = false;
  int peer_fd_ = -1;           // socket (user space) or char device (kernel)
  int device_fd_ = -1;         // kernel: the char device, for SCSTU_IOC_KICK
  std::vector<int> wait_fds_;  // producer -> handler
  std::vector<int> kick_fds_;  // handler -> producer (user space)
};

}  // namespace scstu
