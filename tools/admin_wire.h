// admin_wire.h - framing of the admin protocol: a 4-byte big-endian length,
// then a serialized protobuf message (tools/config.proto AdminRequest /
// AdminResponse). Lengths above kMaxAdminMessage are refused.
#pragma once

#include <google/protobuf/message_lite.h>

#include <string>

namespace scstu::tools {

inline constexpr uint32_t kMaxAdminMessage = 4u << 20;
// VersionInfo.admin_protocol. 2: statistics, version, log_level,
// change_medium, set_chap.
inline constexpr uint32_t kAdminProtocol = 2;

// Both return false and set *error on failure (EOF included: "closed").
bool send_message(int fd, const google::protobuf::MessageLite& message, std::string* error);
bool receive_message(int fd, google::protobuf::MessageLite* message, std::string* error);

// A connected Unix stream socket to `path`, or -1 with *error.
int connect_unix(const std::string& path, std::string* error);
// A listening Unix stream socket at `path` (a stale socket file is replaced),
// or -1 with *error.
int listen_unix(const std::string& path, std::string* error);

}  // namespace scstu::tools
