#include "log.hpp"

#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include <cerrno>
#include <unistd.h>

namespace netlab {

namespace {

// The program's output (and its own error lines): each line leaves in one write(2) of its own, at
// once (a reader of the pipe sees each line when it happens), and without a lock. Why not spdlog's
// stdout_sink_mt: it holds a mutex across fwrite and fflush, so two threads that print
// (conn_counter prints two lines per connection) queue on it for the length of a system call;
// measured with `strace -f` under `netbench conns`, that was a futex wait or wake for every
// connection. One write(2) per line keeps lines from different threads whole all the same: the
// kernel does not interleave the bytes of two writes to a pipe (up to PIPE_BUF), a terminal or a
// file.
class line_per_write_sink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit line_per_write_sink(int descriptor) : descriptor_(descriptor) {}

 private:
  // The message alone: the payload is the line (no pattern, no time stamp), plus its '\n'.
  void sink_it_(const spdlog::details::log_msg& message) override {
    fmt::memory_buffer line;
    line.append(message.payload);
    line.push_back('\n');
    const char* next = line.data();
    std::size_t left = line.size();
    while (left > 0) {
      const auto written = ::write(descriptor_, next, left);
      if (written < 0 && errno == EINTR) continue;
      // Closed or broken (EPIPE once the reader has gone: run_program ignores SIGPIPE): nothing
      // sensible is left to do with the line, and the program carries on without it.
      if (written <= 0) return;
      next += written;
      left -= static_cast<std::size_t>(written);
    }
  }
  void flush_() override {}  // nothing is kept back

  int descriptor_;
};

// A logger of its own that prints every line to `descriptor`, whatever the log level.
std::shared_ptr<spdlog::logger> line_logger(const char* name, int descriptor) {
  auto logger = std::make_shared<spdlog::logger>(name,
                                                 std::make_shared<line_per_write_sink>(descriptor));
  logger->set_level(spdlog::level::trace);
  return logger;
}

}  // namespace

spdlog::logger& program_output() {
  static const auto logger = line_logger("output", STDOUT_FILENO);
  return *logger;
}

spdlog::logger& error_output() {
  static const auto logger = line_logger("error", STDERR_FILENO);
  return *logger;
}

void setup_logging(std::string_view level, bool level_given) {
  // Not registered by name, so that setting up again (tests do) replaces it instead of throwing.
  auto diagnostics = std::make_shared<spdlog::logger>(
      "netlab", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  diagnostics->set_pattern("%H:%M:%S.%e %^%-5l%$ %v");
  spdlog::set_default_logger(diagnostics);
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  if (!level_given) {
    spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL=debug, for instance
  }
}

}  // namespace netlab
