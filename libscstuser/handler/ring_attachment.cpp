#include "handler/ring_attachment.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "handler/serve.h"
#include "ring/attach_protocol.h"

namespace scstu {
namespace {

bool fail(std::string* error, std::string msg) {
  if (error) *error = std::move(msg);
  return false;
}

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

std::unique_ptr<RingAttachment> RingAttachment::attach(const HandlerOptions& o,
                                                       std::string* error) {
  if (o.socket_path.empty() == o.device_path.empty()) {
    fail(error,
         "attach: give exactly one of socket_path (user-space producer) and device_path "
         "(kernel shim /dev/scstu/NAME)");
    return nullptr;
  }
  if (!o.device_path.empty()) {
    return open_kernel_device(o.device_path, o.device_type, error, o.device_fd);
  }
  return connect_socket(o.socket_path, o.device_name, o.device_type, o.block_size, error);
}

RingAttachment::~RingAttachment() {
  close_channels();
  if (map_) munmap(map_, map_size_);
}

void RingAttachment::close_channels() {
  for (int fd : wait_fds_)
    if (fd >= 0) close(fd);
  for (int fd : kick_fds_)
    if (fd >= 0) close(fd);
  wait_fds_.assign(wait_fds_.size(), -1);
  kick_fds_.assign(kick_fds_.size(), -1);
  if (peer_fd_ >= 0) close(peer_fd_);
  if (device_fd_ >= 0 && device_fd_ != peer_fd_) close(device_fd_);
  peer_fd_ = device_fd_ = -1;
}

void RingAttachment::drain_wait_fd(uint32_t q) const {
  uint64_t v;
  if (read(wait_fds_[q], &v, sizeof(v)) < 0) {
    // EAGAIN: a spurious wakeup; nothing to drain.
  }
}

void RingAttachment::kick(uint32_t q) const {
  if (kernel_) {
    __u32 queue = q;
    ioctl(device_fd_, SCSTU_IOC_KICK, &queue);
    return;
  }
  uint64_t one = 1;
  if (kick_fds_[q] >= 0 && write(kick_fds_[q], &one, sizeof(one)) < 0) {
    // EAGAIN: the counter is saturated, so the producer is due to wake anyway.
  }
}

bool RingAttachment::map_region(int fd, uint64_t size, std::string* error) {
  if (size < SCSTU_HEADER_BYTES || size > (1ull << 42))
    return fail(error, "ring region: implausible size " + std::to_string(size));
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED)
    return fail(error,
                "ring region: mmap " + std::to_string(size) + " bytes: " + errno_text(errno));
  map_ = p;
  map_size_ = size;
  scstu_region_header hdr;
  std::memcpy(&hdr, p, sizeof(hdr));  // validate a private copy
  if (!ring::validate_header(hdr, size, error)) return false;
  view_ = ring::RegionView(p, hdr);
  return true;
}

std::unique_ptr<RingAttachment> RingAttachment::connect_socket(const std::string& socket_path,
                                                               const std::string& device_name,
                                                               uint8_t device_type,
                                                               uint32_t block_size,
                                                               std::string* error) {
  std::unique_ptr<RingAttachment> a(new RingAttachment);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    fail(error, "attach " + socket_path + ": socket path too long");
    return nullptr;
  }
  if (device_name.empty() || device_name.size() >= SCSTU_NAME_MAX) {
    fail(error, "attach: device name '" + device_name + "' empty or longer than 31 bytes");
    return nullptr;
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  a->peer_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (a->peer_fd_ < 0 || connect(a->peer_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))) {
    fail(error, "attach: connect " + socket_path + ": " + errno_text(errno) +
                    " (is the producer running?)");
    return nullptr;
  }
  // A producer that accepts but never answers must not hang us.
  timeval timeout{10, 0};
  setsockopt(a->peer_fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ring::AttachHello hello;
  std::memcpy(hello.device_name, device_name.data(), device_name.size());
  hello.device_type = device_type;
  hello.block_size = block_size;
  if (send(a->peer_fd_, &hello, sizeof(hello), MSG_NOSIGNAL) != sizeof(hello)) {
    fail(error, "attach " + socket_path + ": send hello: " + errno_text(errno));
    return nullptr;
  }
  ring::AttachReply reply;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * ring::kMaxAttachFds)];
  iovec iov{&reply, sizeof(reply)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(a->peer_fd_, &msg, MSG_CMSG_CLOEXEC);
  // Take ownership of whatever fds arrived before judging the reply.
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.push_back(fd);
      }
    }
  }
  auto close_fds = [&] {
    for (int fd : fds) close(fd);
  };
  if (n != sizeof(reply) || reply.magic != ring::kReplyMagic) {
    close_fds();
    fail(error, "attach " + socket_path + ": no valid reply from the producer" +
                    (n < 0 ? ": " + errno_text(errno) : std::string()));
    return nullptr;
  }
  reply.message[sizeof(reply.message) - 1] = 0;
  if (reply.error != 0) {
    close_fds();
    fail(error,
         "attach " + device_name + " at " + socket_path + ": producer refused: " + reply.message);
    return nullptr;
  }
  if ((msg.msg_flags & MSG_CTRUNC) || reply.nr_queues < 1 || reply.nr_queues > SCSTU_MAX_QUEUES ||
      fds.size() != 1 + 2 * size_t{reply.nr_queues}) {
    close_fds();
    fail(error, "attach " + socket_path + ": reply carries " + std::to_string(fds.size()) +
                    " fds for " + std::to_string(reply.nr_queues) + " queues");
    return nullptr;
  }
  struct stat st;
  if (fstat(fds[0], &st) != 0 || static_cast<uint64_t>(st.st_size) < reply.region_size) {
    close_fds();
    fail(error, "attach " + socket_path + ": region fd smaller than region_size");
    return nullptr;
  }
  bool mapped = a->map_region(fds[0], reply.region_size, error);
  close(fds[0]);
  a->wait_fds_.assign(fds.begin() + 1, fds.begin() + 1 + reply.nr_queues);
  a->kick_fds_.assign(fds.begin() + 1 + reply.nr_queues, fds.end());
  if (!mapped) return nullptr;
  if (a->header().nr_queues != reply.nr_queues) {
    fail(error, "attach " + socket_path + ": header and reply disagree on nr_queues");
    return nullptr;
  }
  for (int fd : a->wait_fds_) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  for (int fd : a->kick_fds_) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return a;
}

std::unique_ptr<RingAttachment> RingAttachment::open_kernel_device(const std::string& path,
                                                                   uint8_t device_type,
                                                                   std::string* error,
                                                                   int device_fd) {
  std::unique_ptr<RingAttachment> a(new RingAttachment);
  a->kernel_ = true;
  // The shim attaches a handler per open(): a duplicate of the caller's
  // descriptor shares its open file, so it is the same attach.
  a->device_fd_ = device_fd >= 0 ? fcntl(device_fd, F_DUPFD_CLOEXEC, 0)
                                 : open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (a->device_fd_ < 0) {
    fail(error, "attach " + path + (device_fd >= 0 ? ": dup: " : ": open: ") + errno_text(errno) +
                    " (is the scstu module loaded and the device created?)");
    return nullptr;
  }
  // The header says how big the region is: map it alone first.
  void* p = mmap(nullptr, SCSTU_HEADER_BYTES, PROT_READ, MAP_SHARED, a->device_fd_, 0);
  if (p == MAP_FAILED) {
    fail(error, "attach " + path + ": mmap header: " + errno_text(errno));
    return nullptr;
  }
  scstu_region_header hdr;
  std::memcpy(&hdr, p, sizeof(hdr));
  munmap(p, SCSTU_HEADER_BYTES);
  if (hdr.magic != SCSTU_REGION_MAGIC) {
    fail(error, "attach " + path + ": not an scstu region (bad magic)");
    return nullptr;
  }
  if (!a->map_region(a->device_fd_, hdr.region_size, error)) return nullptr;
  if (a->header().device_type != device_type) {
    fail(error, "attach " + path + ": device type " + std::to_string(a->header().device_type) +
                    " but the handler serves type " + std::to_string(device_type));
    return nullptr;
  }
  for (uint32_t q = 0; q < a->nr_queues(); ++q) {
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    a->wait_fds_.push_back(efd);
    scstu_eventfd_reg reg{q, efd};
    if (efd < 0 || ioctl(a->device_fd_, SCSTU_IOC_SET_EVENTFD, &reg) != 0) {
      fail(error, "attach " + path + ": register eventfd for queue " + std::to_string(q) + ": " +
                      errno_text(errno));
      return nullptr;
    }
  }
  a->kick_fds_.assign(a->nr_queues(), -1);
  return a;
}

}  // namespace scstu
