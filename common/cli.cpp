#include "cli.hpp"

#include "log.hpp"
#include "trace.hpp"

#include <boost/asio/ip/address.hpp>

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <csignal>
#include <thread>

namespace netlab {

unsigned default_thread_count() {
  // The cores this process may run on, not the machine's: under `taskset -c 0` a second thread
  // would only take turns with the first on one core, and every handler posted to it would cost
  // a context switch (a loopback round trip went from 15 to 27 us). Go's NumCPU and tokio's
  // default count the same way.
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
    return std::max(1, CPU_COUNT(&allowed));
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

void add_common_options(CLI::App& app, common_options& options) {
  app.set_version_flag("--version", std::string("netlab ") + NETLAB_VERSION);
  app.add_option_function<std::string>(
         "--log-level",
         [&options](const std::string& level) {
           options.log_level = level;
           options.log_level_given = true;
         },
         "Diagnostics on stderr: trace|debug|info|warn|error|off (default: info, or SPDLOG_LEVEL)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
}

namespace {

// Seconds as --idle-timeout takes them: 0, or from min_idle_timeout_seconds to
// max_idle_timeout_seconds, written in decimal (from_chars, not strtod: no hexadecimal `0x10`,
// and `1e-400` is out of range rather than 0, "never"). NaN and infinity fail every comparison.
std::string check_idle_seconds(const std::string& text) {
  double seconds = 0;
  const auto [end, status] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  const bool number = status == std::errc() && end == text.data() + text.size();
  if (number && (seconds == 0 || (seconds >= min_idle_timeout_seconds &&
                                  seconds <= max_idle_timeout_seconds))) {
    return std::string();
  }
  return fmt::format("expected 0 (never) or seconds from {} to {}, got '{}'",
                     min_idle_timeout_seconds, max_idle_timeout_seconds, text);
}

// A program started with stdin, stdout or stderr closed (`echo_split >&-`) would hand that number
// to the next descriptor it opens: an io_context's epoll or eventfd, or a client's socket, which
// would then receive the program's output lines. /dev/null takes each closed one first.
void keep_standard_descriptors_taken() {
  for (const int descriptor : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    if (::fcntl(descriptor, F_GETFD) != -1 || errno != EBADF) continue;
    // The lowest free number: this one, since the ones below it are open by now.
    const int null = ::open("/dev/null", descriptor == STDIN_FILENO ? O_RDONLY : O_WRONLY);
    if (null != -1 && null != descriptor) {
      ::dup2(null, descriptor);
      ::close(null);
    }
  }
}

}  // namespace

const CLI::Validator ip_address(
    [](const std::string& text) {
      boost::system::error_code error;
      boost::asio::ip::make_address(text, error);
      return error ? "not an IPv4 or IPv6 address: " + text : std::string();
    },
    "IP", "ip_address");

CLI::Validator whole_number_from(std::uint64_t min, std::uint64_t max, std::string description) {
  return CLI::Validator(
      [min, max](std::string& text) {
        // from_chars into an unsigned type takes decimal digits only: no sign, no "0x", no space.
        std::uint64_t value = 0;
        const auto* end = text.data() + text.size();
        const auto [stop, error] = std::from_chars(text.data(), end, value);
        if (error != std::errc() || stop != end || value < min || value > max) {
          return fmt::format("expected a whole number from {} to {}, got '{}'", min, max, text);
        }
        text = std::to_string(value);  // what CLI11 converts next: no leading zero, so no octal
        return std::string();
      },
      std::move(description), "whole_number");
}

void add_server_options(CLI::App& app, server_options& options) {
  options.threads = default_thread_count();
  app.add_option("--bind", options.bind,
                 "Address to listen on (IPv4 or IPv6 literal; 0.0.0.0 or :: to expose)")
      ->check(ip_address)
      ->capture_default_str();
  app.add_option("--port", options.port, "Port to listen on (0 takes a free port)")
      ->transform(whole_number<std::uint16_t>())
      ->capture_default_str();
  app.add_option("--threads", options.threads,
                 "Threads running the io_context (1 = a single-threaded reactor; default: cores)")
      ->transform(whole_number(1u, 256u))
      ->capture_default_str();
}

void add_max_line_option(CLI::App& app, std::size_t& max_line) {
  app.add_option("--max-line", max_line,
                 "Longest line accepted, in bytes before '\\n'; a longer one gets an error line "
                 "and the connection is closed")
      ->transform(whole_number(std::size_t{1}, std::size_t{1} << 30))
      ->capture_default_str();
}

void add_idle_timeout_option(CLI::App& app, std::chrono::milliseconds& idle_timeout) {
  app.add_option_function<double>(
         "--idle-timeout",
         [&idle_timeout](double seconds) {
           idle_timeout = std::chrono::milliseconds(std::llround(seconds * 1000));
         },
         fmt::format("Close a connection after this many seconds with nothing received from the "
                     "client and nothing written to it (decimals allowed; from {}, one "
                     "millisecond, to {}, a week; default: 0, never)",
                     min_idle_timeout_seconds, max_idle_timeout_seconds))
      ->check(CLI::Validator(check_idle_seconds, "SECONDS", "idle_seconds"));
}

void add_trace_flag(CLI::App& app) {
  app.add_flag_callback(
      "--trace",
      [] {
        if (!trace::enable()) {
          throw CLI::ValidationError("--trace", "this build has no trace mode (NETLAB_TRACE=OFF)");
        }
      },
      "Log each socket operation step by step on stderr: attempted, would block, waiting for "
      "readiness, woken, completed with N bytes (by file descriptor)");
}

void add_demo_flag(CLI::App& app, bool& demo, server_options& server) {
  app.add_flag("--demo", demo,
               "Run the server and a few scripted clients in this process, print what happens, "
               "and exit (port 0 unless --port is given)");
  app.callback([&app, &demo, &server] {
    if (demo && app.count("--port") == 0) server.port = 0;
  });
}

int run_program(CLI::App& app, common_options& options, int argc, char** argv,
                const std::function<int()>& body) {
  keep_standard_descriptors_taken();
  // Whoever reads our stdout or stderr may go away (`conn_counter | head -1`). By default the
  // next write to that pipe raises SIGPIPE and kills the process, clients and all; ignored, the
  // write fails with EPIPE instead, the line is dropped (log.cpp), and the server keeps serving.
  // Sockets need no such help: Asio sends with MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line that names the option; CLI11's own messages already do.
    print_error("error: {} (see --help)", e.what());
    return exit_usage;
  }
  setup_logging(options.log_level, options.log_level_given);
  try {
    return body();
  } catch (const std::exception& e) {
    print_error("error: {}", e.what());
    return exit_runtime_failure;
  }
}

}  // namespace netlab
