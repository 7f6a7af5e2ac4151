// unix_listener.h - where handler processes find a user-space producer's
// devices: a SOCK_SEQPACKET Unix socket. A handler connects, says which
// device it serves (ring/attach_protocol.h), and the named RingDevice answers
// with its region and doorbells. Only processes of this user (or root) may
// attach (SO_PEERCRED).
//
//   auto listener = UnixListener::create("/run/scstu/target.sock", &err);
//   auto disk = RingDevice::create({.name = "disk0"}, &err);
//   listener->add_device(disk);   // handlers: scstu::serve({.socket_path=...,
//   .device_name="disk0"})
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "transport/ring_device.h"

namespace scstu::transport {

class UnixListener {
 public:
  // Binds `path` (a stale socket file left by a dead producer is replaced; a
  // live one is an error) and starts accepting.
  static std::unique_ptr<UnixListener> create(const std::string& path, std::string* error);
  ~UnixListener();  // stops accepting and removes the socket file
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  void add_device(std::shared_ptr<RingDevice> device);
  void remove_device(const std::string& name);
  const std::string& path() const { return path_; }

 private:
  UnixListener() = default;
  void accept_loop();
  void handshake(int conn);

  std::string path_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<RingDevice>> devices_;
};

}  // namespace scstu::transport
