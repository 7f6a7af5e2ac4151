#include "config_file.h"

#include <fcntl.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace scstu::tools {

namespace {

class CollectErrors : public google::protobuf::io::ErrorCollector {
 public:
  explicit CollectErrors(std::string name) : name_(std::move(name)) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (!first_.empty()) return;
    first_ =
        name_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  const std::string& first() const { return first_; }

 private:
  std::string name_;
  std::string first_;
};

std::string errno_text() { return std::strerror(errno); }

}  // namespace

config::Config parse_config(const std::string& text, const std::string& name) {
  config::Config config;
  google::protobuf::TextFormat::Parser parser;
  CollectErrors errors(name);
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &config)) {
    throw ConfigFileError(errors.first().empty() ? name + ": not a valid configuration"
                                                 : errors.first());
  }
  return config;
}

config::Config load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigFileError("open " + path + ": " + errno_text());
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

std::string format_config(const config::Config& config) {
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.PrintToString(config, &text);
  return "# scstu-target configuration (protobuf text format, tools/config.proto).\n"
         "# Rewritten by the daemon when scstuadmin changes it.\n" +
         text;
}

void save_config(const std::string& path, const config::Config& config) {
  const std::string text = format_config(config);
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  std::string tmp = path + ".tmp.XXXXXX";
  std::vector<char> name(tmp.begin(), tmp.end());
  name.push_back('\0');
  int fd = mkstemp(name.data());
  if (fd < 0) throw ConfigFileError("create " + tmp + ": " + errno_text());
  tmp = name.data();
  auto fail = [&](const std::string& what) {
    const std::string msg = what + " " + tmp + ": " + errno_text();
    close(fd);
    unlink(tmp.c_str());
    throw ConfigFileError(msg);
  };
  // Keep the old file's permissions (mkstemp makes it 0600).
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) fchmod(fd, st.st_mode & 07777);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write");
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) fail("fsync");
  if (close(fd) != 0) {
    fd = -1;
    unlink(tmp.c_str());
    throw ConfigFileError("close " + tmp + ": " + errno_text());
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string msg = "rename " + tmp + " to " + path + ": " + errno_text();
    unlink(tmp.c_str());
    throw ConfigFileError(msg);
  }
  // Make the rename itself durable.
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
}

}  // namespace scstu::tools
