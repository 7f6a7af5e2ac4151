#include "signals.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

namespace scstu::fileio {

static sigset_t watched() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGHUP);
  return set;
}

SignalWatch::SignalWatch() {
  sigset_t set = watched();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  fd_ = signalfd(-1, &set, SFD_CLOEXEC);
  // A dead peer's socket must give EPIPE, not kill the process.
  signal(SIGPIPE, SIG_IGN);
}

SignalWatch::~SignalWatch() {
  if (fd_ >= 0) close(fd_);
}

void SignalWatch::run(const std::function<void()>& on_resync, int stop_fd) {
  for (;;) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    int n = poll(fds, stop_fd >= 0 ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (stop_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP))) return;
    if (!(fds[0].revents & POLLIN)) continue;
    signalfd_siginfo info{};
    if (read(fd_, &info, sizeof info) != sizeof info) continue;
    if (info.ssi_signo == SIGUSR1 || info.ssi_signo == SIGHUP) {
      on_resync();
    } else {
      return;  // SIGINT / SIGTERM
    }
  }
}

}  // namespace scstu::fileio
