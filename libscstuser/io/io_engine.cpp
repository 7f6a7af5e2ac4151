#include "io/io_engine.h"

#include "io/thread_pool_engine.h"
#include "io/uring_engine.h"

namespace scstu::io {

const char* to_string(IoEngineKind kind) {
  switch (kind) {
    case IoEngineKind::kAuto:
      return "auto";
    case IoEngineKind::kUring:
      return "uring";
    case IoEngineKind::kThreads:
      return "threads";
  }
  return "?";
}

std::unique_ptr<IoEngine> make_io_engine(const IoEngineOptions& options, std::string* error) {
  if (options.kind == IoEngineKind::kThreads) {
    return std::make_unique<ThreadPoolEngine>(options.threads);
  }
  std::string uring_error;
  std::unique_ptr<IoEngine> engine = UringEngine::create(options.queue_depth, &uring_error);
  if (engine) return engine;
  if (options.kind == IoEngineKind::kUring) {
    if (error) *error = uring_error;
    return nullptr;
  }
  if (error) *error = uring_error;  // why kAuto fell back
  return std::make_unique<ThreadPoolEngine>(options.threads);
}

}  // namespace scstu::io
