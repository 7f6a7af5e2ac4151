#include "attach_mode.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "handler/serve.h"
#include "kernel_device.h"

namespace scstu::fileio {

namespace {

struct Attachment {
  DiskUnit* unit = nullptr;
  int kernel_fd = -1;
  bool fixed_buffers_logged = false;  // serve_loop's thread only
  std::atomic<bool> attached_once{false};
  std::atomic<int> fatal{0};  // the first attach failed: the process should exit
};

void on_ready(void* arg) {
  auto* a = static_cast<Attachment*>(arg);
  if (!a->attached_once.exchange(true)) {
    std::fprintf(stderr, "fileio_tgt: %s attached\n", a->unit->name.c_str());
  } else {
    std::fprintf(stderr, "fileio_tgt: %s re-attached\n", a->unit->name.c_str());
  }
}

// Sleeps up to ms, or until stop_fd is readable. True when stopping.
bool wait_or_stop(int stop_fd, int ms) {
  pollfd p{stop_fd, POLLIN, 0};
  return poll(&p, 1, ms) > 0;
}

void serve_loop(const FileioOptions& options, Attachment& a, int stop_fd, int failed_fd) {
  HandlerOptions h;
  if (options.kernel) {
    h.device_path = kernel_device_path(a.unit->name);
  } else {
    h.socket_path = options.attach_socket;
  }
  h.device_name = a.unit->name;
  h.device_type = a.unit->file->device_type();
  h.block_size = a.unit->file->geometry().block_size;
  h.stop_fd = stop_fd;
  h.device_fd = a.kernel_fd;
  h.on_ready = &on_ready;
  h.on_ready_arg = &a;
  h.on_data_area = [&a](std::span<std::byte> area) {
    const iovec region{area.data(), area.size()};
    const int rc = a.unit->file->register_buffers(
        area.empty() ? std::span<const iovec>() : std::span<const iovec>(&region, 1));
    if (area.empty() || a.fixed_buffers_logged) return;
    // nullio and the thread pool have nothing to register: nothing to say.
    if (rc == 0 && a.unit->file->engine_kind() != io::IoEngineKind::kUring) return;
    a.fixed_buffers_logged = true;
    if (rc == 0) {
      std::fprintf(stderr,
                   "fileio_tgt: %s: ring data area (%zu KiB) registered as io_uring fixed "
                   "buffers\n",
                   a.unit->name.c_str(), area.size() / 1024);
    } else {
      std::fprintf(stderr,
                   "fileio_tgt: %s: registering the ring's data area as io_uring fixed buffers: "
                   "%s (I/O works, pinning pages per I/O%s)\n",
                   a.unit->name.c_str(), std::strerror(-rc),
                   rc == -ENOMEM ? "; raise the locked-memory limit, ulimit -l" : "");
    }
  };
  for (;;) {
    std::string error;
    const int rc = serve(h, *a.unit->lu, &error);
    if (rc == 0) return;  // stopped
    std::fprintf(stderr, "fileio_tgt: %s: %s\n", a.unit->name.c_str(),
                 error.empty() ? "detached" : error.c_str());
    // The kernel shim outlives its handlers: serve() returns only when the
    // device went away or broke the protocol, and a restart re-attaches.
    if (!a.attached_once.load() || !options.reconnect || options.kernel) {
      a.fatal.store(1);
      const char byte = 1;
      ssize_t n = write(failed_fd, &byte, 1);  // wakes the main thread
      (void)n;
      return;
    }
    if (wait_or_stop(stop_fd, 1000)) return;
  }
}

}  // namespace

int run_attached(const FileioOptions& options, std::vector<DiskUnit>& units, SignalWatch& signals,
                 std::span<const int> kernel_fds) {
  // A pipe that is never read: once written, every serve() sees it readable.
  int stop[2], failed[2];
  if (pipe2(stop, O_CLOEXEC) != 0 || pipe2(failed, O_CLOEXEC) != 0) {
    std::perror("fileio_tgt: pipe");
    return 1;
  }
  std::vector<std::unique_ptr<Attachment>> attachments;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < units.size(); ++i) {
    attachments.push_back(std::make_unique<Attachment>());
    attachments.back()->unit = &units[i];
    if (i < kernel_fds.size()) attachments.back()->kernel_fd = kernel_fds[i];
  }
  for (auto& a : attachments) {
    threads.emplace_back(serve_loop, std::cref(options), std::ref(*a), stop[0], failed[1]);
  }
  signals.run(
      [&] {
        for (DiskUnit& unit : units)
          std::fprintf(stderr, "fileio_tgt: %s\n", unit.resync_size().c_str());
      },
      failed[0]);
  const char byte = 1;
  ssize_t n = write(stop[1], &byte, 1);
  (void)n;
  for (std::thread& t : threads) t.join();
  int rc = 0;
  for (auto& a : attachments) rc |= a->fatal.load();
  for (int fd : {stop[0], stop[1], failed[0], failed[1]}) close(fd);
  return rc;
}

}  // namespace scstu::fileio
