#include "log.hpp"

#include <spdlog/cfg/env.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/base_sink.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <mutex>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

namespace netlab {

namespace {

// How long a line waits for a full pipe or socket: time enough for a reader that is merely slow
// or busy (a pager, a loaded test runner) to make room, short enough that a server whose output
// nobody reads pauses once instead of freezing (a blocked write(2) on an I/O thread stops every
// connection of that thread, and the thread that handles SIGTERM with them).
constexpr int reader_grace_ms = 100;

// Only a pipe or a socket has a reader that can stop reading for good. A regular file or a
// terminal takes the line at once (a terminal paused with Ctrl-S blocks too, but that is a person
// who asked for the pause), so it is written to directly, with no system call added per line.
bool reader_may_stall(int descriptor) {
  struct stat status {};
  return ::fstat(descriptor, &status) == 0 &&
         (S_ISFIFO(status.st_mode) || S_ISSOCK(status.st_mode));
}

// Whole lines to one descriptor, each in one write(2) when it fits in PIPE_BUF: the kernel does
// not interleave the bytes of two such writes, so lines from different threads stay whole. A
// regular file or a terminal is written to directly, without a lock. Before each write to a pipe
// or a socket, poll(2) asks whether there is room; when the reader has left no room for
// `reader_grace_ms`, the line is dropped and the writer is *stalled*: later lines are dropped
// without waiting, until a poll finds room again and one warning says how many were lost.
// Between the poll and the write, one lock for every such writer (stdout and stderr may be one
// pipe, 2>&1): without it two threads could both see the last room and the second wait in
// write(2) after all. With it, the room a poll saw is still there for the write that follows,
// and a write of at most PIPE_BUF bytes fits in the room POLLOUT promises.
class line_writer {
 public:
  line_writer(int descriptor, const char* name)
      : descriptor_(descriptor), name_(name), may_stall_(reader_may_stall(descriptor)) {}

  // `line` ends with its '\n'. A line longer than PIPE_BUF goes in pieces, each after a poll;
  // one dropped halfway leaves the reader a cut line (only such long lines can be cut).
  void write(std::string_view line) {
    if (!may_stall_) {
      while (!line.empty() && write_some(line, line.size())) {
      }
      return;
    }
    std::uint64_t lost = 0;  // lines dropped before this one found room again
    {
      std::lock_guard lock(room_lock());
      while (!line.empty()) {
        if (!room_for_a_write(lost)) {
          ++dropped_;
          stalled_ = true;
          break;
        }
        if (!write_some(line, PIPE_BUF)) break;
      }
    }
    // Through spdlog, so on stderr with a time stamp; after the lock, which that write takes too.
    if (lost > 0) spdlog::warn("{} lines of {} dropped: nobody was reading it", lost, name_);
  }

 private:
  static std::mutex& room_lock() {
    static std::mutex lock;
    return lock;
  }

  // Writes up to `most` bytes of `line` and drops them from it. False when nothing more can be
  // written: closed or broken (EPIPE once the reader has gone: run_program ignores SIGPIPE), and
  // the program carries on without the line.
  bool write_some(std::string_view& line, std::size_t most) {
    ssize_t written = 0;
    do {
      written = ::write(descriptor_, line.data(), std::min(line.size(), most));
    } while (written < 0 && errno == EINTR);
    if (written <= 0) return false;
    line.remove_prefix(static_cast<std::size_t>(written));
    return true;
  }

  // Called with room_lock() held. When room comes back after a stall, `lost` gets the count of
  // lines dropped meanwhile.
  bool room_for_a_write(std::uint64_t& lost) {
    pollfd room{descriptor_, POLLOUT, 0};
    int ready = 0;
    do {
      // Stalled: only look. The reader has already had its grace once; waiting again for every
      // line would slow the server to one line per reader_grace_ms.
      ready = ::poll(&room, 1, stalled_ ? 0 : reader_grace_ms);
    } while (ready < 0 && errno == EINTR);
    if (ready <= 0) return false;
    // Room, or an error (POLLERR: the reader has gone) that the write itself turns into EPIPE.
    if (stalled_) {
      stalled_ = false;
      lost = std::exchange(dropped_, 0);
    }
    return true;
  }

  int descriptor_;
  const char* name_;  // "stdout" or "stderr", for the warning
  bool may_stall_;    // a pipe or a socket: decided once, by fstat
  bool stalled_ = false;       // a line was dropped, and no poll has found room since (lock held)
  std::uint64_t dropped_ = 0;  // lines dropped since the last warning (lock held)
};

// The program's output (and its own error lines): each line leaves at once (a reader of the pipe
// sees each line when it happens), and without a lock to a file or a terminal. Why not spdlog's
// stdout_sink_mt: it holds a mutex across fwrite and fflush, so two threads that print
// (conn_counter prints two lines per connection) queue on it for the length of a system call; measured with `strace -f` under
// `netbench conns`, that was a futex wait or wake for every connection.
class line_per_write_sink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  line_per_write_sink(int descriptor, const char* name) : output_(descriptor, name) {}

 private:
  // The message alone: the payload is the line (no pattern, no time stamp), plus its '\n'.
  void sink_it_(const spdlog::details::log_msg& message) override {
    fmt::memory_buffer line;
    line.append(message.payload);
    line.push_back('\n');
    output_.write({line.data(), line.size()});
  }
  void flush_() override {}  // nothing is kept back

  line_writer output_;
};

// Diagnostics to a pipe, a socket or a file: spdlog's pattern (time, level), written by a
// line_writer like the program's output. Not stderr_sink_mt: its fwrite blocks for as long as
// nobody reads a stderr pipe, with its mutex held, so every thread that logs after it blocks too.
class diagnostics_sink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit diagnostics_sink(int descriptor) : output_(descriptor, "stderr") {}

 private:
  void sink_it_(const spdlog::details::log_msg& message) override {
    spdlog::memory_buf_t formatted;
    {
      // The pattern formatter caches the last second it formatted: one thread at a time. Only the
      // formatting is locked, not the write.
      std::lock_guard lock(format_mutex_);
      formatter_->format(message, formatted);
    }
    output_.write({formatted.data(), formatted.size()});
  }
  void flush_() override {}  // nothing is kept back

  line_writer output_;
  std::mutex format_mutex_;
};

// A logger of its own that prints every line to `descriptor`, whatever the log level.
std::shared_ptr<spdlog::logger> line_logger(const char* name, int descriptor) {
  auto logger = std::make_shared<spdlog::logger>(
      name, std::make_shared<line_per_write_sink>(descriptor, name));
  logger->set_level(spdlog::level::trace);
  return logger;
}

}  // namespace

spdlog::logger& program_output() {
  static const auto logger = line_logger("stdout", STDOUT_FILENO);
  return *logger;
}

spdlog::logger& error_output() {
  static const auto logger = line_logger("stderr", STDERR_FILENO);
  return *logger;
}

spdlog::sink_ptr make_stderr_sink() {
  // A terminal has a person behind it, not a reader that can stall: spdlog's own sink, colours.
  if (::isatty(STDERR_FILENO) == 1) return std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  return std::make_shared<diagnostics_sink>(STDERR_FILENO);
}

void setup_logging(std::string_view level, bool level_given) {
  // Not registered by name, so that setting up again (tests do) replaces it instead of throwing.
  auto diagnostics = std::make_shared<spdlog::logger>("netlab", make_stderr_sink());
  diagnostics->set_pattern("%H:%M:%S.%e %^%-5l%$ %v");
  spdlog::set_default_logger(diagnostics);
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  if (!level_given) {
    spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL=debug, for instance
  }
}

}  // namespace netlab
