// What netbench reads about the server process from /proc, and its own descriptor limit.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace netlab::bench {

// User plus system CPU time the process has used, in seconds (/proc/PID/stat, utime + stime in
// clock ticks). nullopt when the process is gone. Covers every thread of the process.
std::optional<double> process_cpu_seconds(pid_t pid);

// Resident memory (VmRSS in /proc/PID/status), in KiB. nullopt when the process is gone.
std::optional<std::uint64_t> resident_kib(pid_t pid);

bool process_exists(pid_t pid);

// Raises this process's soft RLIMIT_NOFILE to its hard limit (one descriptor per connection);
// returns the soft limit in force afterwards.
std::uint64_t raise_descriptor_limit();

// The server's CPU over a measurement window: start(), then stop(); consumed() is the difference,
// or nullopt without --pid (or when the process went away). Only the first stop() counts, so a
// load can stop the meter where its work ends and the report can stop it again, harmlessly,
// after a run that was cut short.
// Also used on netbench itself (getpid()): a client near 100% of a core sets the pace, and then
// the figures say more about netbench than about the server.
class cpu_meter {
 public:
  explicit cpu_meter(std::optional<pid_t> pid) : pid_(pid) {}
  void start();
  void stop();
  std::optional<double> consumed() const;

 private:
  std::optional<pid_t> pid_;
  std::optional<double> at_start_;
  std::optional<double> at_stop_;
  bool stopped_ = false;
};

}  // namespace netlab::bench
