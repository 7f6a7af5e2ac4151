// config_file.h - the daemon's configuration file: protobuf text format
// (tools/config.proto, message Config), read with line:column errors and
// written atomically (a temporary file in the same directory, fsync, rename,
// fsync of the directory), so a crash leaves the old or the new file, never
// half of one.
#pragma once

#include <stdexcept>
#include <string>

#include "config.pb.h"

namespace scstu::tools {

class ConfigFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws ConfigFileError: "PATH: cause" or "PATH:LINE:COLUMN: parse error".
config::Config load_config(const std::string& path);
config::Config parse_config(const std::string& text, const std::string& name);
std::string format_config(const config::Config& config);
void save_config(const std::string& path, const config::Config& config);

}  // namespace scstu::tools
