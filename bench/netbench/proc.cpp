#include "proc.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace netlab::bench {

namespace {

std::optional<std::string> read_proc_file(pid_t pid, const char* name) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/" + name);
  if (!file) return std::nullopt;
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

std::optional<double> process_cpu_seconds(pid_t pid) {
  const auto stat = read_proc_file(pid, "stat");
  if (!stat) return std::nullopt;
  // Field 2, the command name, is in parentheses and may itself hold spaces and ')': the fields
  // that follow are counted from the last ')'. utime and stime are fields 14 and 15, that is the
  // 12th and 13th after it.
  const auto name_end = stat->rfind(')');
  if (name_end == std::string::npos) return std::nullopt;
  std::istringstream fields(stat->substr(name_end + 1));
  std::string skipped;
  for (int i = 0; i < 11; ++i) fields >> skipped;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::optional<std::uint64_t> resident_kib(pid_t pid) {
  const auto status = read_proc_file(pid, "status");
  if (!status) return std::nullopt;
  std::istringstream lines(*status);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));  // "VmRSS:  1234 kB"
  }
  return std::nullopt;
}

bool process_exists(pid_t pid) { return pid > 0 && read_proc_file(pid, "stat").has_value(); }

std::uint64_t raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);  // on failure the old limit stays: connects will say so
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

void cpu_meter::start() {
  if (pid_) at_start_ = process_cpu_seconds(*pid_);
}

void cpu_meter::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (pid_) at_stop_ = process_cpu_seconds(*pid_);
}

std::optional<double> cpu_meter::consumed() const {
  if (!at_start_ || !at_stop_) return std::nullopt;
  return *at_stop_ - *at_start_;
}

}  // namespace netlab::bench
