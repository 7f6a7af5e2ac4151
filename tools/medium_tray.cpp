#include "medium_tray.h"

#include <cerrno>
#include <thread>

namespace scstu::tools {

// Counts one call into the medium while it loads and uses the pointer.
class MediumTray::Use {
 public:
  explicit Use(const MediumTray& tray) : tray_(tray) {
    tray_.users_.fetch_add(1, std::memory_order_seq_cst);
    device_ = tray_.current_.load(std::memory_order_seq_cst);
  }
  ~Use() { tray_.users_.fetch_sub(1, std::memory_order_release); }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;
  io::FileDevice* device() const { return device_; }

 private:
  const MediumTray& tray_;
  io::FileDevice* device_;
};

MediumTray::MediumTray(std::unique_ptr<io::FileDevice> medium, uint32_t block_size,
                       BlockCapabilities caps)
    : current_(medium.get()), owned_(std::move(medium)), block_size_(block_size), caps_(caps) {}

MediumTray::~MediumTray() = default;

BlockGeometry MediumTray::geometry() const {
  Use use(*this);
  if (use.device() == nullptr) return BlockGeometry{block_size_, 0};
  return use.device()->geometry();
}

void MediumTray::submit(BlockRequest& req) {
  Use use(*this);
  if (use.device() == nullptr) return req.complete(-ENOMEDIUM);
  use.device()->submit(req);
}

AllocationExtent MediumTray::allocation(uint64_t lba, uint64_t max_blocks) const {
  Use use(*this);
  if (use.device() == nullptr) return {};
  return use.device()->allocation(lba, max_blocks);
}

std::unique_ptr<io::FileDevice> MediumTray::replace(std::unique_ptr<io::FileDevice> medium,
                                                    std::chrono::milliseconds timeout) {
  current_.store(medium.get(), std::memory_order_seq_cst);
  std::unique_ptr<io::FileDevice> old = std::move(owned_);
  owned_ = std::move(medium);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (users_.load(std::memory_order_acquire) != 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      retired_.push_back(std::move(old));
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return old;
}

}  // namespace scstu::tools
