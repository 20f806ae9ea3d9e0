#include "cli.hpp"

#include "log.hpp"
#include "trace.hpp"

#include <boost/asio/ip/address.hpp>

#include <sched.h>

#include <cmath>
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

const CLI::Validator ip_address(
    [](const std::string& text) {
      boost::system::error_code error;
      boost::asio::ip::make_address(text, error);
      return error ? "not an IPv4 or IPv6 address: " + text : std::string();
    },
    "IP", "ip_address");

// CLI11 reads an empty string as 0 for a number: `--port ''` would quietly mean "any free port".
const CLI::Validator port_number(
    [](const std::string& text) {
      return text.empty() ? std::string("a port number is required (0 takes a free port)")
                          : std::string();
    },
    "PORT", "port_number");

void add_server_options(CLI::App& app, server_options& options) {
  options.threads = default_thread_count();
  app.add_option("--bind", options.bind,
                 "Address to listen on (IPv4 or IPv6 literal; 0.0.0.0 or :: to expose)")
      ->check(ip_address)
      ->capture_default_str();
  app.add_option("--port", options.port, "Port to listen on (0 takes a free port)")
      ->check(port_number)
      ->capture_default_str();
  app.add_option("--threads", options.threads,
                 "Threads running the io_context (1 = a single-threaded reactor; default: cores)")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
}

void add_max_line_option(CLI::App& app, std::size_t& max_line) {
  app.add_option("--max-line", max_line,
                 "Longest line accepted, in bytes before '\\n'; a longer one gets an error line "
                 "and the connection is closed")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->capture_default_str();
}

void add_idle_timeout_option(CLI::App& app, std::chrono::milliseconds& idle_timeout) {
  app.add_option_function<double>(
         "--idle-timeout",
         [&idle_timeout](double seconds) {
           idle_timeout = std::chrono::milliseconds(std::llround(seconds * 1000));
         },
         "Close a connection after this many seconds with nothing received from the client and "
         "nothing written to it (decimals allowed; default: 0, never)")
      // NaN would pass the range (every comparison with it is false): refuse it first.
      ->check(CLI::Validator(
          [](const std::string& text) {
            double seconds = 0;
            return CLI::detail::lexical_cast(text, seconds) && !std::isfinite(seconds)
                       ? std::string("not a number of seconds: ") + text
                       : std::string();
          },
          "SECONDS", "finite"))
      ->check(CLI::Range(0.0, 7.0 * 24 * 3600));
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line that names the option; CLI11's own messages already do.
    fmt::print(stderr, "error: {} (see --help)\n", e.what());
    return exit_usage;
  }
  setup_logging(options.log_level, options.log_level_given);
  try {
    return body();
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return exit_runtime_failure;
  }
}

}  // namespace netlab
