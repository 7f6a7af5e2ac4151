#include "transport/shared_region.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace scstu::transport {

namespace {
constexpr uint64_t kHugePage = 2u << 20;
}

std::unique_ptr<SharedRegion> SharedRegion::create(const std::string& name,
                                                   const ring::RegionParams& params,
                                                   std::string* error) {
  scstu_region_header hdr;
  if (!ring::compute_layout(params, &hdr, error)) return nullptr;
  std::unique_ptr<SharedRegion> r(new SharedRegion);
  r->fd_ = memfd_create(("scstu-" + name).c_str(), MFD_CLOEXEC);
  // Round to whole huge pages so a THP-enabled shmem mount can back the data
  // area with them (madvise below); the header's region_size stays exact.
  r->map_size_ = (hdr.region_size + kHugePage - 1) / kHugePage * kHugePage;
  if (r->fd_ < 0 || ftruncate(r->fd_, static_cast<off_t>(r->map_size_)) != 0) {
    if (error)
      *error = "ring device " + name + ": memfd of " + std::to_string(r->map_size_) +
               " bytes: " + std::strerror(errno);
    return nullptr;
  }
  void* p =
      mmap(nullptr, r->map_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd_, 0);
  if (p == MAP_FAILED) {
    if (error) *error = "ring device " + name + ": mmap: " + std::strerror(errno);
    return nullptr;
  }
  r->map_ = p;
  madvise(p, r->map_size_, MADV_HUGEPAGE);  // advisory; ignore failure
  std::memcpy(p, &hdr, sizeof(hdr));
  r->view_ = ring::RegionView(p, hdr);
  return r;
}

SharedRegion::~SharedRegion() {
  if (map_) munmap(map_, map_size_);
  if (fd_ >= 0) close(fd_);
}

void SharedRegion::reset_queues() const {
  for (uint32_t q = 0; q < view_.header().nr_queues; ++q)
    std::memset(view_.ctl(q), 0, sizeof(scstu_queue_ctl));
}

}  // namespace scstu::transport
