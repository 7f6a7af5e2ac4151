// medium_tray.h - the removable medium of a virtual CD-ROM served in the
// daemon (the seed's vcdrom "change NAME [PATH]"): the BlockDevice its
// scsi::LogicalUnit keeps for life, holding the current image (an
// io::FileDevice) or none.
//
// Replacing the medium must not pull a FileDevice out from under a request
// being handed to it. Each call into the medium (submit, geometry) counts
// itself in `users_` around loading the pointer; replace() publishes the new
// pointer, then waits until it has seen `users_` at zero once: every later
// call loads the new pointer (sequentially consistent order), every earlier
// one has left. The old FileDevice's destructor then waits for its I/O in
// flight. Cost on the command path: two atomic increments, CD-ROMs only.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "handler/block_device.h"
#include "io/file_device.h"

namespace scstu::tools {

class MediumTray final : public BlockDevice {
 public:
  // `medium` may be null (an empty drive); `caps` are the drive's, the same
  // for every medium (the LU reads them once).
  MediumTray(std::unique_ptr<io::FileDevice> medium, uint32_t block_size, BlockCapabilities caps);
  ~MediumTray() override;

  BlockGeometry geometry() const override;
  BlockCapabilities capabilities() const override { return caps_; }
  // With no medium (only a command that passed the LU's medium check just
  // before an eject): -ENOMEDIUM.
  void submit(BlockRequest& req) override;
  AllocationExtent allocation(uint64_t lba, uint64_t max_blocks) const override;

  // Puts `medium` in (nullptr: eject) and returns the previous one once no
  // call is still handing it a request, or nullptr when a call did not leave
  // within `timeout` (the medium is replaced anyway; the old one is then kept
  // until the tray is destroyed). Admin thread only.
  std::unique_ptr<io::FileDevice> replace(std::unique_ptr<io::FileDevice> medium,
                                          std::chrono::milliseconds timeout);
  // The current medium; admin thread only (nullptr: empty).
  const io::FileDevice* medium() const { return owned_.get(); }

 private:
  class Use;

  std::atomic<io::FileDevice*> current_;
  mutable std::atomic<uint64_t> users_{0};
  std::unique_ptr<io::FileDevice> owned_;                 // what current_ points to
  std::vector<std::unique_ptr<io::FileDevice>> retired_;  // replace() timed out on these
  uint32_t block_size_;
  BlockCapabilities caps_;
};

}  // namespace scstu::tools
