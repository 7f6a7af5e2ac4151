// crc32c.h - CRC32C (Castagnoli), the iSCSI header and data digest
// (RFC 7143 13.1, test vectors in RFC 3720 B.4).
//
// Hand-written because no Debian package exposes a hardware CRC32C to C++
// (OpenSSL has none; Debian 12 ships no libcrc32c): the SSE4.2 crc32
// instruction is used when the CPU has it (checked once at run time), a
// slicing table otherwise.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace scstu::iscsi {

// Running CRC: start with kCrc32cInit, feed bytes with crc32c_update(), finish
// with crc32c_final(). crc32c() does all three for one buffer.
inline constexpr uint32_t kCrc32cInit = 0xFFFFFFFFu;
uint32_t crc32c_update(uint32_t crc, const void* data, size_t len);
inline uint32_t crc32c_final(uint32_t crc) { return crc ^ 0xFFFFFFFFu; }
inline uint32_t crc32c(const void* data, size_t len) {
  return crc32c_final(crc32c_update(kCrc32cInit, data, len));
}
// Over `len` bytes of a scatter list starting at byte `offset`.
uint32_t crc32c_update_iov(uint32_t crc, std::span<const iovec> iov, size_t offset, size_t len);

// The table path, whatever the CPU (tests compare both paths).
uint32_t crc32c_update_portable(uint32_t crc, const void* data, size_t len);

// True when the hardware path is in use (for logs and benchmarks).
bool crc32c_hardware();

}  // namespace scstu::iscsi
