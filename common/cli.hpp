// The command line every netlab program shares, and its exit codes.
//
// The contract: `--help` and `--version` exit 0; a bad option or value prints one line naming it
// and exits 2; a runtime failure (address in use, ...) prints one line and exits 1.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>

namespace netlab {

inline constexpr int exit_ok = 0;
inline constexpr int exit_runtime_failure = 1;
inline constexpr int exit_usage = 2;

// A failure that stops the program before it can serve (bind, listen): exit status 1.
struct startup_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Options of every program: --log-level, --version.
struct common_options {
  std::string log_level = "info";
  bool log_level_given = false;
};

// Options of every server: where to listen and how many threads run the io_context.
struct server_options {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 0;
  unsigned threads = 1;
};

// The default for --threads: one per core this process may run on (its CPU affinity).
unsigned default_thread_count();

// Adds --log-level and --version to `app`.
void add_common_options(CLI::App& app, common_options& options);

// Adds --bind, --port, --threads to `app`; `options` holds the defaults shown by --help.
void add_server_options(CLI::App& app, server_options& options);

// --max-line, as the line-based servers take it: the longest line, in bytes before '\n'.
void add_max_line_option(CLI::App& app, std::size_t& max_line);

// --idle-timeout SECONDS for a TCP server (common/idle.hpp): 0, the default, is off.
// The shortest other value: the timeout is kept in whole milliseconds, and a shorter one would
// round to 0, which means "never" (refused rather than rounded up, so that what runs is what was
// asked for).
inline constexpr double min_idle_timeout_seconds = 0.001;
// The longest: a week. Anything longer is "never" in practice; say 0.
inline constexpr double max_idle_timeout_seconds = 7.0 * 24 * 3600;
void add_idle_timeout_option(CLI::App& app, std::chrono::milliseconds& idle_timeout);

// --trace: log every socket operation step by step (common/trace.hpp).
void add_trace_flag(CLI::App& app);

// --demo for a server: the server plus scripted clients in this process. A demo binds a free
// port unless --port was given, so it never collides with a server already running.
void add_demo_flag(CLI::App& app, bool& demo, server_options& server);

// Accepts an IPv4 or IPv6 literal (what --bind takes).
extern const CLI::Validator ip_address;

// The validator every integer option takes, as `->transform(whole_number(...))`: a whole number
// from `min` to `max` (by default, anything T, the option's type, holds), in decimal digits, which
// it rewrites the way CLI11 will read them ("010" becomes "10"). Why not CLI11's own conversion
// and CLI::Range: CLI11 2.1 reads a number with strtoull, so one too large for 64 bits quietly
// becomes 2^64 - 1 (`--count 99999999999999999999999` pinged forever), "-1" wraps to the same,
// "010" is octal 8, and "" is 0; and CLI::PositiveNumber states its bounds as doubles, three
// hundred digits long. The error names the range and the text given; CLI11 puts the option's name
// in front of it.
CLI::Validator whole_number_from(std::uint64_t min, std::uint64_t max, std::string description);

template <std::unsigned_integral T>
CLI::Validator whole_number(T min = 0, T max = std::numeric_limits<T>::max()) {
  // --help shows the bounds, but not a maximum that is only the type's limit.
  std::string description = max == std::numeric_limits<T>::max()
                                ? (min == 0 ? std::string() : "at least " + std::to_string(min))
                                : std::to_string(min) + " to " + std::to_string(max);
  return whole_number_from(min, max, std::move(description));
}

// Ignores SIGPIPE (a closed stdout or stderr pipe is then an EPIPE that the writes shrug off),
// parses the command line, sets up logging, then runs `body`, turning the outcome into the
// contract's exit status: 0 for --help/--version, 2 for a bad option, 1 for a startup_error or
// any other exception escaping `body`, otherwise what `body` returns.
int run_program(CLI::App& app, common_options& options, int argc, char** argv,
                const std::function<int()>& body);

}  // namespace netlab
