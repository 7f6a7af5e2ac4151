// shared_region.h - a user-space producer's ring region: an anonymous memfd
// sized and laid out per ring/region_layout.h, mapped once, handed to handler
// processes by fd.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ring/region_layout.h"

namespace scstu::transport {

class SharedRegion {
 public:
  static std::unique_ptr<SharedRegion> create(const std::string& name,
                                              const ring::RegionParams& params, std::string* error);
  ~SharedRegion();
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;

  int fd() const { return fd_; }
  uint64_t size() const { return view_.header().region_size; }
  const ring::RegionView& view() const { return view_; }
  scstu_region_header* shared_header() const {
    return reinterpret_cast<scstu_region_header*>(view_.base());
  }
  // Before a handler attaches: zero every queue's ring indices and flags.
  void reset_queues() const;

 private:
  SharedRegion() = default;
  int fd_ = -1;
  void* map_ = nullptr;
  uint64_t map_size_ = 0;
  ring::RegionView view_;
};

}  // namespace scstu::transport
