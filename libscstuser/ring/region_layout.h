// region_layout.h - where everything lives in a device's shared region, and
// the check a handler runs on a header it did not write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ring/ring_abi.h"

namespace scstu::ring {

struct RegionParams {
  uint32_t nr_queues = 1;
  uint32_t queue_depth = 128;        // power of two
  uint64_t data_size = 64u << 20;    // whole data area, split evenly between queues
  uint32_t max_io_bytes = 1u << 20;  // multiple of SCSTU_DATA_ALIGN, <= data per queue
  uint64_t features = 0;
  uint8_t device_type = 0;
};

// Fills `hdr` (magic, versions, sizes, offsets) for `params`. Returns false
// and sets *error when the parameters are out of range.
bool compute_layout(const RegionParams& params, scstu_region_header* hdr, std::string* error);

// Checks a header read from a mapping of `mapped_size` bytes: magic, ABI
// major, descriptor sizes, ranges, and that every offset and size lies inside
// the region without overflow. The caller must have copied the header out of
// shared memory first (the producer could change it under us).
bool validate_header(const scstu_region_header& hdr, uint64_t mapped_size, std::string* error);

// Typed views into a validated region. Plain pointer arithmetic; no checks.
class RegionView {
 public:
  RegionView() = default;
  RegionView(void* base, const scstu_region_header& hdr)
      : base_(static_cast<uint8_t*>(base)), hdr_(hdr) {}

  uint8_t* base() const { return base_; }
  const scstu_region_header& header() const { return hdr_; }
  uint8_t* queue_base(uint32_t q) const {
    return base_ + hdr_.queues_offset + static_cast<uint64_t>(q) * hdr_.queue_stride;
  }
  scstu_queue_ctl* ctl(uint32_t q) const {
    return reinterpret_cast<scstu_queue_ctl*>(queue_base(q));
  }
  uint32_t* sq_ring(uint32_t q) const {
    return reinterpret_cast<uint32_t*>(queue_base(q) + hdr_.sq_ring_offset);
  }
  uint32_t* cq_ring(uint32_t q) const {
    return reinterpret_cast<uint32_t*>(queue_base(q) + hdr_.cq_ring_offset);
  }
  scstu_cmd* cmds(uint32_t q) const {
    return reinterpret_cast<scstu_cmd*>(queue_base(q) + hdr_.cmd_offset);
  }
  scstu_cpl* cpls(uint32_t q) const {
    return reinterpret_cast<scstu_cpl*>(queue_base(q) + hdr_.cpl_offset);
  }
  uint8_t* data() const { return base_ + hdr_.data_offset; }

 private:
  uint8_t* base_ = nullptr;
  scstu_region_header hdr_{};
};

}  // namespace scstu::ring
