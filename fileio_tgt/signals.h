// signals.h - fileio_tgt's signal handling: SIGINT/SIGTERM stop, SIGUSR1
// re-reads device sizes. Signals are blocked in every thread and read from a
// signalfd by the main thread, so no handler runs inside library code.
#pragma once

#include <functional>

namespace scstu::fileio {

class SignalWatch {
 public:
  // Blocks the signals in the calling thread; call before starting threads
  // (they inherit the mask).
  SignalWatch();
  ~SignalWatch();
  // Runs until SIGINT/SIGTERM, or until `stop_fd` (if >= 0) becomes readable.
  // Calls on_resync for each SIGUSR1 (and SIGHUP).
  void run(const std::function<void()>& on_resync, int stop_fd = -1);

 private:
  int fd_ = -1;
};

}  // namespace scstu::fileio
