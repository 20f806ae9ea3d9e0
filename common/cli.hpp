// The command line every netlab program shares, and its exit codes.
//
// The contract: `--help` and `--version` exit 0; a bad option or value prints one line naming it
// and exits 2; a runtime failure (address in use, ...) prints one line and exits 1.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
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
void add_idle_timeout_option(CLI::App& app, std::chrono::milliseconds& idle_timeout);

// --trace: log every socket operation step by step (common/trace.hpp).
void add_trace_flag(CLI::App& app);

// --demo for a server: the server plus scripted clients in this process. A demo binds a free
// port unless --port was given, so it never collides with a server already running.
void add_demo_flag(CLI::App& app, bool& demo, server_options& server);

// Accepts an IPv4 or IPv6 literal (what --bind takes).
extern const CLI::Validator ip_address;

// Parses the command line, sets up logging, then runs `body`, turning the outcome into the
// contract's exit status: 0 for --help/--version, 2 for a bad option, 1 for a startup_error or
// any other exception escaping `body`, otherwise what `body` returns.
int run_program(CLI::App& app, common_options& options, int argc, char** argv,
                const std::function<int()>& body);

}  // namespace netlab
