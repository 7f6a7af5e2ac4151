#include "scsi/mode_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/durable_file.h"
#include "scsi/mode_pages.h"

namespace scstu::scsi {

std::string save_mode_file(const ModePages& pages, const std::string& path) {
  const std::string text = pages.saved_text();
  const std::string error = core::replace_file_durably(path, text, 0644);
  return error.empty() ? "" : "mode page file " + error;
}

std::string load_mode_file(ModePages& pages, const std::string& path) {
  std::ifstream in(path);
  if (!in) return errno == ENOENT ? "" : "mode page file " + path + ": " + std::strerror(errno);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string err = pages.load_saved_text(ss.str());
  if (!err.empty()) return "mode page file " + path + ": " + err + " (delete it to start over)";
  return "";
}

}  // namespace scstu::scsi
