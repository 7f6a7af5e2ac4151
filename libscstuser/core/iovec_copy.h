// iovec_copy.h - moving bytes between a command's scattered buffers (a
// device's iovecs) and contiguous memory, or between two commands' buffers.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace scstu::core {

// The first `n` bytes of `iov`, contiguous.
std::vector<uint8_t> gather(const std::vector<iovec>& iov, size_t n);

// Copies `in` into `iov` from its start; returns the bytes copied.
size_t scatter(std::vector<iovec>& iov, std::span<const uint8_t> in);

// The first `n` bytes of `from` into `to` (each a device's buffers).
void copy_between(const std::vector<iovec>& from, std::vector<iovec>& to, size_t n);

}  // namespace scstu::core
