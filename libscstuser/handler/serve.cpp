#include "handler/serve.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <thread>

#include "handler/queue_runner.h"
#include "handler/ring_attachment.h"
#include "handler/session_registry.h"
#include "handler/unit_state.h"

namespace scstu {
namespace {

// Everything one attachment needs. Heap-allocated and freed by whoever
// finishes last: serve() returning, or the last outstanding command the
// handler completes after that (its buffers live in the mapped region).
struct Server {
  Server(std::unique_ptr<RingAttachment> a, LowLevelHandler& handler, bool accept_unit_state)
      : attachment(std::move(a)),
        sessions(&handler),
        unit_state(attachment->region().base(), attachment->header().features, accept_unit_state) {}
  ~Server() {
    if (exit_fd >= 0) close(exit_fd);
  }

  std::unique_ptr<RingAttachment> attachment;
  SessionRegistry sessions;
  UnitStatePublisher unit_state;
  std::vector<std::unique_ptr<QueueRunner>> queues;
  std::atomic<uint32_t> live_queues{0};
  std::atomic<bool> stopping{false};
  int exit_fd = -1;
  std::mutex error_mu;
  int first_error = 0;
  std::string error;
};

void destroy_server(void* p) { delete static_cast<Server*>(p); }

void signal_exit(Server& s) {
  s.stopping.store(true, std::memory_order_relaxed);
  uint64_t one = 1;
  if (write(s.exit_fd, &one, sizeof(one)) < 0) {
    // The counter cannot overflow from a handful of writes; nothing to do.
  }
}

}  // namespace

int serve(const HandlerOptions& options, LowLevelHandler& handler, std::string* error) {
  std::string err;
  std::unique_ptr<RingAttachment> attachment = RingAttachment::attach(options, &err);
  if (!attachment) {
    std::fprintf(stderr, "scstu: %s\n", err.c_str());
    if (error) *error = err;
    return -ENODEV;
  }
  if (options.on_data_area) {
    const ring::RegionView& region = attachment->region();
    options.on_data_area(std::span<std::byte>(reinterpret_cast<std::byte*>(region.data()),
                                              region.header().data_size));
  }
  auto* s = new Server(std::move(attachment), handler, options.unit_state);
  s->exit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->exit_fd < 0) {
    int e = errno;
    if (options.on_data_area) options.on_data_area({});
    delete s;
    if (error) *error = "serve: eventfd failed";
    return -e;
  }
  const uint32_t nq = s->attachment->nr_queues();
  QueueRunner::Context ctx{
      s->attachment.get(), &handler,        &s->sessions,   &s->queues, s->exit_fd,
      &s->stopping,        &s->live_queues, destroy_server, s,          &s->unit_state};
  // ABI 1.2: accept SCSTU_F_UNIT_STATE (if offered) with the handler's sense
  // format, before any entry is answered.
  s->unit_state.publish(handler);
  for (uint32_t q = 0; q < nq; ++q) s->queues.push_back(std::make_unique<QueueRunner>(ctx, q));
  s->live_queues.store(nq + 1);  // + serve()'s own reference

  std::vector<std::thread> threads;
  for (uint32_t q = 0; q < nq; ++q) {
    threads.emplace_back([s, q] {
      std::string why;
      int rc = s->queues[q]->run(&why);
      if (rc != 0) {
        std::lock_guard lock(s->error_mu);
        if (s->first_error == 0) {
          s->first_error = rc;
          s->error = std::move(why);
        }
      }
      signal_exit(*s);
    });
  }
  if (options.on_ready) options.on_ready(options.on_ready_arg);

  // Wait for: the caller's stop, the producer hanging up, or a queue thread
  // giving up on a protocol violation.
  pollfd fds[3] = {
      {s->exit_fd, POLLIN, 0}, {s->attachment->peer_fd(), POLLIN, 0}, {options.stop_fd, POLLIN, 0}};
  int rc = 0;
  for (;;) {
    int n = poll(fds, 3, -1);
    if (n < 0 && errno == EINTR) continue;
    if (fds[0].revents) break;
    if (fds[1].revents) {
      // The socket carries nothing after the handshake: readable means EOF
      // or an error, i.e. the producer is gone.
      rc = -EPIPE;
      std::lock_guard lock(s->error_mu);
      s->error = "producer hung up (connection to " + options.socket_path + " closed)";
      break;
    }
    if (fds[2].revents) break;
  }
  signal_exit(*s);
  for (std::thread& t : threads) t.join();
  {
    std::lock_guard lock(s->error_mu);
    if (s->first_error != 0) rc = s->first_error;
    if (rc != 0) {
      std::fprintf(
          stderr, "scstu: serve %s: %s\n",
          options.device_name.empty() ? options.device_path.c_str() : options.device_name.c_str(),
          s->error.c_str());
      if (error) *error = s->error;
    }
  }
  // No new command reaches the handler: let it forget the data area.
  if (options.on_data_area) options.on_data_area({});
  // From here no queue thread touches the ring; completions still held by the
  // handler become no-ops, and the last of them frees the server.
  for (auto& q : s->queues) q->mark_dead();
  s->attachment->close_channels();
  for (auto& q : s->queues) q->release();
  if (s->live_queues.fetch_sub(1, std::memory_order_acq_rel) == 1) delete s;
  return rc;
}

}  // namespace scstu
