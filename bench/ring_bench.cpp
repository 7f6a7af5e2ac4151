// ring_bench - commands per second through the ring versus a Unix socketpair.
//
// A null handler runs in a forked process, attached over the real user-space
// transport (UnixListener + RingDevice + serve()). The producer keeps QD
// commands in flight (resubmitting from the completion callback) and times
// N round trips. The baseline sends the same request/response traffic (a
// 128-byte descriptor, plus the 4 KiB of data when there is data, and a
// 128-byte reply) over a SOCK_SEQPACKET socketpair to a forked echo process.
// Each figure is the best of --runs repetitions (the machine is shared).
//
//   ring_bench [--seconds S] [--runs R]
// Output: a table, then one JSON line per result, e.g.
//   {"bench":"ring","qd":128,"data":4096,"ns_per_cmd":85.1,"vs_socketpair":31.2}
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "handler/serve.h"
#include "transport/ring_device.h"
#include "transport/unix_listener.h"

using namespace scstu;
using Clock = std::chrono::steady_clock;

namespace {

class NullHandler : public LowLevelHandler {
 public:
  void command(CommandHandle cmd) override {
    const uint32_t n = cmd.request().data_length;
    std::move(cmd).complete_good(n);
  }
};

// CPU time (user + system) a process has used so far, in nanoseconds.
double process_cpu_ns(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  char buf[1024];
  size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = 0;
  // Fields after the ")" closing the command name: state is field 3,
  // utime 14, stime 15.
  const char* p = std::strrchr(buf, ')');
  unsigned long utime = 0, stime = 0;
  if (!p || std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                        &stime) != 2)
    return 0;
  return (utime + stime) * 1e9 / sysconf(_SC_CLK_TCK);
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// ---- ring ------------------------------------------------------------------

struct RingRun {
  std::shared_ptr<transport::RingDevice> device;
  uint32_t data = 0;
  uint64_t target = 0;
  std::atomic<uint64_t> issued{0}, completed{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<core::TargetCommand> cmds;

  // The first QD commands are counted in `issued` before any is submitted;
  // after that only the device's event thread (running on_done) writes the
  // counters, so they need no locked read-modify-write per command: the
  // harness should cost the producer as little as possible.
  void submit(core::TargetCommand& c) {
    if (data && !device->alloc_buffer(c)) {
      failed = true;
      return;
    }
    device->submit(c);
  }
  void on_done(core::TargetCommand& c) {
    if (c.status != 0) failed = true;
    if (data) device->release_buffer(c);
    const uint64_t done = completed.load(std::memory_order_relaxed) + 1;
    completed.store(done, std::memory_order_relaxed);
    if (done >= target || failed) {
      std::lock_guard lock(mu);
      cv.notify_all();
      return;
    }
    const uint64_t next = issued.load(std::memory_order_relaxed);
    if (next >= target) return;
    issued.store(next + 1, std::memory_order_relaxed);
    submit(c);
  }
};

// Returns ns per command (wall clock), or a negative value on failure;
// *cpu_ns: CPU time of both processes per command.
double bench_ring(const std::string& socket_path, transport::UnixListener& listener, uint32_t qd,
                  uint32_t data, double seconds, double* cpu_ns) {
  static int serial = 0;
  transport::RingDeviceConfig cfg;
  cfg.name = "bench" + std::to_string(serial++);
  cfg.queue_depth = 128;
  cfg.max_io_bytes = 64 << 10;
  cfg.data_size = 16 << 20;
  std::string err;
  auto device = transport::RingDevice::create(cfg, &err);
  if (!device) {
    std::fprintf(stderr, "ring_bench: %s\n", err.c_str());
    return -1;
  }
  listener.add_device(device);
  // The handler process re-executes this program (a bare fork() of a
  // multithreaded process may inherit a lock some other thread held).
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0) return -1;
  self[len] = 0;
  std::string mode = "--serve-null", sock = socket_path, name = cfg.name;
  char* child_argv[] = {self, mode.data(), sock.data(), name.data(), nullptr};
  pid_t child = fork();
  if (child == 0) {
    execv(self, child_argv);
    _exit(127);
  }
  if (!device->wait_ready(10000)) {
    std::fprintf(stderr, "ring_bench: handler did not attach\n");
    return -1;
  }
  double best = -1;
  // Calibrate N from a short run, then time a run of about `seconds`.
  uint64_t n = 20000;
  for (int pass = 0; pass < 2; ++pass) {
    RingRun run;
    run.device = device;
    run.data = data;
    run.target = n;
    run.cmds.resize(qd);
    for (auto& c : run.cmds) {
      c.cdb[0] = 0x28;
      c.cdb_len = 10;
      c.direction = data ? DataDirection::kWrite : DataDirection::kNone;
      c.data_length = data;
      c.expected_length = data;
      c.done = [&run](core::TargetCommand& cmd) { run.on_done(cmd); };
    }
    const double cpu0 = process_cpu_ns(getpid()) + process_cpu_ns(child);
    auto t0 = Clock::now();
    const uint64_t first = std::min<uint64_t>(qd, n);
    run.issued.store(first);
    for (uint64_t i = 0; i < first; ++i) run.submit(run.cmds[i]);
    {
      std::unique_lock lock(run.mu);
      run.cv.wait_for(lock, std::chrono::seconds(60),
                      [&] { return run.completed.load() >= n || run.failed.load(); });
    }
    const double el = seconds_since(t0);
    if (run.failed || run.completed.load() < n) {
      std::fprintf(stderr, "ring_bench: ring run failed (qd %u data %u)\n", qd, data);
      best = -1;
      break;
    }
    best = el * 1e9 / n;
    *cpu_ns = (process_cpu_ns(getpid()) + process_cpu_ns(child) - cpu0) / n;
    // Wait for any stragglers before `run` goes away.
    while (run.completed.load() < std::min<uint64_t>(run.issued.load(), n))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    n = std::max<uint64_t>(20000, static_cast<uint64_t>(seconds / el * n));
  }
  listener.remove_device(cfg.name);
  device.reset();
  int st;
  waitpid(child, &st, 0);
  return best;
}

// ---- socketpair baseline ---------------------------------------------------

double bench_socketpair(uint32_t qd, uint32_t data, double seconds) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return -1;
  int big = 8 << 20;
  for (int fd : sv) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  }
  const size_t req_len = 128 + data;
  // Buffers exist before fork(): the child only calls recv/send.
  std::vector<uint8_t> req(req_len, 0xab), rsp(128, 0);
  pid_t child = fork();
  if (child == 0) {
    close(sv[0]);
    for (;;) {
      ssize_t n = recv(sv[1], req.data(), req.size(), 0);
      if (n <= 0) _exit(0);
      std::memcpy(rsp.data(), req.data(), 16);  // tag + seq echoed, like a completion
      if (send(sv[1], rsp.data(), rsp.size(), MSG_NOSIGNAL) < 0) _exit(0);
    }
  }
  close(sv[1]);
  double best = -1;
  uint64_t n = 20000;
  for (int pass = 0; pass < 2; ++pass) {
    auto t0 = Clock::now();
    uint64_t sent = 0, got = 0;
    for (; sent < qd && sent < n; ++sent) send(sv[0], req.data(), req.size(), MSG_NOSIGNAL);
    while (got < n) {
      if (recv(sv[0], rsp.data(), rsp.size(), 0) <= 0) return -1;
      ++got;
      if (sent < n) {
        send(sv[0], req.data(), req.size(), MSG_NOSIGNAL);
        ++sent;
      }
    }
    const double el = seconds_since(t0);
    best = el * 1e9 / n;
    n = std::max<uint64_t>(20000, static_cast<uint64_t>(seconds / el * n));
  }
  close(sv[0]);
  int st;
  waitpid(child, &st, 0);
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--serve-null") {
    // The handler side (started by bench_ring).
    NullHandler h;
    HandlerOptions o;
    o.socket_path = argv[2];
    o.device_name = argv[3];
    return serve(o, h) == -EPIPE ? 0 : 1;
  }
  double seconds = 1.0;
  int runs = 3;
  int only_qd = -1, only_data = -1;
  bool baseline = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--qd" && i + 1 < argc) {
      only_qd = std::atoi(argv[++i]);
    } else if (a == "--data" && i + 1 < argc) {
      only_data = std::atoi(argv[++i]);
    } else if (a == "--ring-only") {
      baseline = false;  // for profiling the ring alone
    } else {
      std::printf(
          "usage: ring_bench [--seconds S] [--runs R] [--qd N] [--data 0|4096] [--ring-only]\n"
          "  Null handler in a forked process; ring vs socketpair at QD 1, 32, 128,\n"
          "  without data and with 4 KiB. Example: ring_bench --seconds 2 --runs 5\n");
      return a == "--help" ? 0 : 2;
    }
  }
  const std::string path = "/tmp/scstu-ring-bench-" + std::to_string(getpid()) + ".sock";
  std::string err;
  auto listener = transport::UnixListener::create(path, &err);
  if (!listener) {
    std::fprintf(stderr, "ring_bench: %s\n", err.c_str());
    return 1;
  }
  struct Result {
    uint32_t qd, data;
    double ring, pair, cpu;
  };
  std::vector<Result> results;
  std::printf("%6s %6s %14s %14s %8s %14s\n", "qd", "data", "ring ns/cmd", "sockpair ns", "ratio",
              "ring cpu ns");
  for (uint32_t data : {0u, 4096u}) {
    for (uint32_t qd : {1u, 32u, 128u}) {
      if ((only_qd >= 0 && qd != uint32_t(only_qd)) ||
          (only_data >= 0 && data != uint32_t(only_data)))
        continue;
      double ring = -1, pair = -1, cpu = -1;
      for (int r = 0; r < runs; ++r) {
        double c = 0;
        double x = bench_ring(path, *listener, qd, data, seconds, &c);
        if (x > 0 && (ring < 0 || x < ring)) ring = x;
        if (x > 0 && (cpu < 0 || c < cpu)) cpu = c;
        double y = baseline ? bench_socketpair(qd, data, seconds) : 1;
        if (y > 0 && (pair < 0 || y < pair)) pair = y;
      }
      results.push_back({qd, data, ring, pair, cpu});
      std::printf("%6u %6u %14.1f %14.1f %8.1f %14.1f\n", qd, data, ring, pair,
                  ring > 0 ? pair / ring : 0.0, cpu);
      std::fflush(stdout);
    }
  }
  for (const Result& r : results) {
    std::printf(
        "{\"bench\":\"ring\",\"qd\":%u,\"data\":%u,\"ns_per_cmd\":%.1f,"
        "\"vs_socketpair\":%.2f,\"cpu_ns_per_cmd\":%.1f}\n",
        r.qd, r.data, r.ring, r.ring > 0 ? r.pair / r.ring : 0.0, r.cpu);
  }
  for (const Result& r : results) {
    std::printf("{\"bench\":\"socketpair\",\"qd\":%u,\"data\":%u,\"ns_per_cmd\":%.1f}\n", r.qd,
                r.data, r.pair);
  }
  bool ok = true;
  for (const Result& r : results) ok = ok && r.ring > 0 && r.pair > 0;
  return ok ? 0 : 1;
}
