// log_level.h - the process-wide log level (the seed's trace_level, reduced
// to severities), changed at runtime by `scstuadmin log-level`. Code that
// prints a line of some severity asks log_enabled() first: one relaxed load.
//
//   error    only failures of the program itself
//   warning  and events that lose service: a handler dropped, a hostile peer
//   info     and the normal life of connections and devices (the default)
//   debug    and every administrative request
//
// Today the iSCSI server's connection lines (info) and scstu-target's own
// lines honour it; older fprintf(stderr) error lines of the library print
// regardless.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace scstu::core {

enum class LogLevel : uint8_t { kError, kWarning, kInfo, kDebug };

void set_log_level(LogLevel level);
LogLevel log_level();
bool log_enabled(LogLevel level);

const char* to_string(LogLevel level);
// "error", "warning", "info", "debug"; nullopt for anything else.
std::optional<LogLevel> parse_log_level(std::string_view text);

}  // namespace scstu::core
