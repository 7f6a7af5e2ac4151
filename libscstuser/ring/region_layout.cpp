#include "ring/region_layout.h"

#include <bit>
#include <cstring>

namespace scstu::ring {
namespace {

constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

bool fail(std::string* error, std::string msg) {
  if (error) *error = std::move(msg);
  return false;
}

// a + b <= limit, without wrapping.
bool fits(uint64_t a, uint64_t b, uint64_t limit) {
  uint64_t end;
  return !__builtin_add_overflow(a, b, &end) && end <= limit;
}

}  // namespace

bool compute_layout(const RegionParams& p, scstu_region_header* hdr, std::string* error) {
  if (p.nr_queues < 1 || p.nr_queues > SCSTU_MAX_QUEUES)
    return fail(error, "ring layout: nr_queues " + std::to_string(p.nr_queues) + " not in 1.." +
                           std::to_string(SCSTU_MAX_QUEUES));
  if (p.queue_depth < 1 || p.queue_depth > SCSTU_MAX_QUEUE_DEPTH ||
      !std::has_single_bit(p.queue_depth))
    return fail(error, "ring layout: queue_depth " + std::to_string(p.queue_depth) +
                           " is not a power of two in 1.." + std::to_string(SCSTU_MAX_QUEUE_DEPTH));
  if (p.max_io_bytes == 0 || p.max_io_bytes % SCSTU_DATA_ALIGN != 0)
    return fail(error, "ring layout: max_io_bytes " + std::to_string(p.max_io_bytes) +
                           " is not a non-zero multiple of 4096");
  const uint64_t per_queue = p.data_size / p.nr_queues / SCSTU_DATA_ALIGN * SCSTU_DATA_ALIGN;
  if (per_queue < p.max_io_bytes || p.data_size > (1ull << 40))
    return fail(error, "ring layout: data_size " + std::to_string(p.data_size) +
                           " gives less than max_io_bytes per queue (or exceeds 1 TiB)");

  std::memset(hdr, 0, sizeof(*hdr));
  hdr->magic = SCSTU_REGION_MAGIC;
  hdr->abi_major = SCSTU_ABI_MAJOR;
  hdr->abi_minor = SCSTU_ABI_MINOR;
  hdr->features = p.features;
  hdr->header_size = sizeof(scstu_region_header);
  hdr->cmd_size = sizeof(scstu_cmd);
  hdr->cpl_size = sizeof(scstu_cpl);
  hdr->nr_queues = p.nr_queues;
  hdr->queue_depth = p.queue_depth;
  hdr->max_io_bytes = p.max_io_bytes;
  hdr->device_type = p.device_type;
  const uint64_t ring_bytes = align_up(4ull * p.queue_depth, 64);
  hdr->queues_offset = SCSTU_HEADER_BYTES;
  hdr->sq_ring_offset = sizeof(scstu_queue_ctl);
  hdr->cq_ring_offset = hdr->sq_ring_offset + ring_bytes;
  hdr->cmd_offset = hdr->cq_ring_offset + ring_bytes;
  hdr->cpl_offset = hdr->cmd_offset + sizeof(scstu_cmd) * p.queue_depth;
  hdr->queue_stride = align_up(hdr->cpl_offset + sizeof(scstu_cpl) * p.queue_depth, 4096);
  // A data area of huge-page size starts on a 2 MiB boundary, so transparent
  // huge pages (shmem THP) can back it; smaller ones need only 4096.
  const uint64_t data_align = p.data_size >= (2u << 20) ? (2u << 20) : SCSTU_DATA_ALIGN;
  hdr->data_offset = align_up(hdr->queues_offset + hdr->queue_stride * p.nr_queues, data_align);
  hdr->data_per_queue = per_queue;
  hdr->data_size = per_queue * p.nr_queues;
  hdr->region_size = hdr->data_offset + hdr->data_size;
  return true;
}

bool validate_header(const scstu_region_header& h, uint64_t mapped_size, std::string* error) {
  auto bad = [&](const std::string& what) { return fail(error, "ring region header: " + what); };
  if (h.magic != SCSTU_REGION_MAGIC) return bad("bad magic (not an scstu region)");
  if (h.abi_major != SCSTU_ABI_MAJOR)
    return bad("ABI major " + std::to_string(h.abi_major) + ", this library speaks " +
               std::to_string(SCSTU_ABI_MAJOR) + " (rebuild the handler or the producer)");
  if (h.header_size != sizeof(scstu_region_header) || h.cmd_size != sizeof(scstu_cmd) ||
      h.cpl_size != sizeof(scstu_cpl))
    return bad("header/cmd/cpl sizes " + std::to_string(h.header_size) + "/" +
               std::to_string(h.cmd_size) + "/" + std::to_string(h.cpl_size) +
               " do not match this library");
  if (h.region_size > mapped_size)
    return bad("region_size " + std::to_string(h.region_size) + " exceeds the mapping (" +
               std::to_string(mapped_size) + " bytes)");
  if (h.nr_queues < 1 || h.nr_queues > SCSTU_MAX_QUEUES)
    return bad("nr_queues " + std::to_string(h.nr_queues) + " out of range");
  if (h.queue_depth < 1 || h.queue_depth > SCSTU_MAX_QUEUE_DEPTH ||
      !std::has_single_bit(h.queue_depth))
    return bad("queue_depth " + std::to_string(h.queue_depth) + " is not a power of two <= 4096");
  const uint64_t depth = h.queue_depth;
  // Each per-queue area lies inside the stride and they do not overlap the
  // control block; rings and descriptors are naturally aligned.
  if (h.queue_stride < sizeof(scstu_queue_ctl) || h.queues_offset < SCSTU_HEADER_BYTES ||
      h.queues_offset % 64 != 0 || h.queue_stride % 64 != 0)
    return bad("queues_offset/queue_stride invalid");
  struct Area {
    const char* name;
    uint64_t off, len, align;
  } areas[] = {{"sq ring", h.sq_ring_offset, 4 * depth, 4},
               {"cq ring", h.cq_ring_offset, 4 * depth, 4},
               {"cmd array", h.cmd_offset, sizeof(scstu_cmd) * depth, 8},
               {"cpl array", h.cpl_offset, sizeof(scstu_cpl) * depth, 8}};
  for (const Area& a : areas) {
    if (a.off < sizeof(scstu_queue_ctl) || a.off % a.align != 0 ||
        !fits(a.off, a.len, h.queue_stride))
      return bad(std::string(a.name) + " outside its queue");
  }
  for (const Area& a : areas)
    for (const Area& b : areas)
      if (&a != &b && a.off < b.off + b.len && b.off < a.off + a.len)
        return bad(std::string(a.name) + " overlaps " + b.name);
  uint64_t queues_bytes;
  if (__builtin_mul_overflow(h.queue_stride, static_cast<uint64_t>(h.nr_queues), &queues_bytes) ||
      !fits(h.queues_offset, queues_bytes, h.data_offset))
    return bad("queues overlap the data area");
  if (h.data_offset % SCSTU_DATA_ALIGN != 0 || !fits(h.data_offset, h.data_size, h.region_size))
    return bad("data area outside the region");
  uint64_t all_queues_data;
  if (h.data_per_queue % SCSTU_DATA_ALIGN != 0 ||
      __builtin_mul_overflow(h.data_per_queue, static_cast<uint64_t>(h.nr_queues),
                             &all_queues_data) ||
      all_queues_data > h.data_size)
    return bad("data_per_queue invalid");
  if (h.max_io_bytes == 0 || h.max_io_bytes > h.data_per_queue)
    return bad("max_io_bytes " + std::to_string(h.max_io_bytes) + " exceeds data per queue");
  return true;
}

}  // namespace scstu::ring
