// raw_initiator.h - the one bare iSCSI initiator of the tests, over a TCP
// socket on 127.0.0.1, for what libiscsi does not do: several connections in
// one session (MC/S), Text Requests spanning PDUs, a small
// MaxRecvDataSegmentLength, CmdSN gaps, hostile bytes, digests by hand.
// It sends and receives whole PDUs (pdu.h encoders) or raw bytes; the test
// decides what. login_request() builds the Login Request PDU for it and for
// the LoginNegotiator unit tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "iscsi/pdu.h"
#include "iscsi/text_keys.h"

namespace scstu::iscsi {

// A Login Request (RFC 7143 11.12): `fields` (stages, T/C bits, ISID, TSIH,
// CID, ...) with `keys` as its text; returns the header, fills `text`.
inline Bhs login_request(LoginPdu fields,
                         const std::vector<std::pair<std::string, std::string>>& keys,
                         std::string& text) {
  text.clear();
  for (auto& [k, v] : keys) append_pair(text, k, v);
  Bhs h;
  fields.encode(h, Opcode::kLoginRequest, static_cast<uint32_t>(text.size()));
  return h;
}

class RawInitiator {
 public:
  explicit RawInitiator(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~RawInitiator() { drop(); }
  RawInitiator(const RawInitiator&) = delete;
  RawInitiator& operator=(const RawInitiator&) = delete;

  bool connected() const { return fd_ >= 0; }
  void drop() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  // One PDU: header, data padded to 4 bytes (no digests).
  bool send_pdu(const Bhs& h, const void* data = nullptr, size_t len = 0) {
    std::string wire(reinterpret_cast<const char*>(h.b.data()), kBhsSize);
    if (len) wire.append(static_cast<const char*>(data), len);
    wire.append(pad4(static_cast<uint32_t>(len)), '\0');
    return send(fd_, wire.data(), wire.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(wire.size());
  }

  // Bytes as they are: a PDU cut short, the rest of it later.
  bool send_bytes(const void* p, size_t n) {
    return send(fd_, p, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
  }

  // The next PDU; false on EOF or nothing within `ms`.
  bool recv_pdu(Bhs& h, std::string& data, int ms = 5000) {
    if (!recv_exact(h.b.data(), kBhsSize, ms)) return false;
    data.assign(h.data_length() + pad4(h.data_length()), '\0');
    if (!recv_exact(data.data(), data.size(), ms)) return false;
    data.resize(h.data_length());
    return true;
  }

  // Everything the target sends until it closes the connection or `ms`
  // pass, and whether it closed.
  std::pair<std::string, bool> read_until_closed(int ms) {
    std::string got;
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return {got, true};
      got.append(buf, static_cast<size_t>(n));
    }
    return {got, false};
  }
  // True if the target closes the connection within `ms` (PDUs before the
  // close are skipped).
  bool closed_within(int ms) { return read_until_closed(ms).second; }
  // No more bytes from us: the target sees EOF.
  void shutdown_write() { shutdown(fd_, SHUT_WR); }

  // Exactly `n` bytes, each within `ms`; false on EOF or silence.
  bool recv_exact(void* p, size_t n, int ms = 5000) {
    size_t have = 0;
    while (have < n) {
      pollfd pf{fd_, POLLIN, 0};
      if (poll(&pf, 1, ms) <= 0) return false;
      ssize_t r = recv(fd_, static_cast<char*>(p) + have, n - have, 0);
      if (r <= 0) return false;
      have += static_cast<size_t>(r);
    }
    return true;
  }

  // True if no byte arrives within `ms` (and the connection stays open).
  bool silent_for(int ms) {
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, ms) == 0;
  }

  // A login straight from the operational stage to full feature phase with
  // `keys`. Returns the final Login Response header and its keys.
  struct LoginResult {
    bool ok = false;
    LoginPdu pdu;
    std::vector<TextPair> keys;
    std::string value(const std::string& key) const {
      for (const TextPair& kv : keys)
        if (kv.key == key) return kv.value;
      return {};
    }
  };
  LoginResult login(const std::vector<std::pair<std::string, std::string>>& keys,
                    std::array<uint8_t, 6> isid, uint16_t tsih, uint16_t cid, uint32_t cmdsn) {
    LoginResult res;
    LoginPdu l;
    l.transit = true;
    l.csg = 1;
    l.nsg = 3;
    l.isid = isid;
    l.tsih = tsih;
    l.cid = cid;
    l.itt = 0x4000 + cid;
    l.sn = cmdsn;
    std::string text;
    Bhs h = login_request(l, keys, text);
    if (!send_pdu(h, text.data(), text.size())) return res;
    Bhs r;
    std::string data;
    if (!recv_pdu(r, data)) return res;
    res.pdu = LoginPdu::decode(r);
    parse_text(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()),
               res.keys);
    res.ok = r.opcode() == Opcode::kLoginResponse && res.pdu.status_class == 0 && res.pdu.transit &&
             res.pdu.nsg == 3;
    if (res.ok) exp_statsn_ = res.pdu.sn + 1;
    return res;
  }

  uint32_t exp_statsn() const { return exp_statsn_; }
  void saw_statsn(uint32_t statsn) { exp_statsn_ = statsn + 1; }

 private:
  int fd_ = -1;
  uint32_t exp_statsn_ = 0;
};

}  // namespace scstu::iscsi
