// Logging and program output.
//
// Two streams, two purposes: what the exercise itself shows (the lines the contract fixes, such as
// `listening on ...`) goes to stdout through `netlab::print`, one flushed line at a time, so a
// test or a pipe sees it at once; diagnostics go to stderr through spdlog, filtered by
// `--log-level` or SPDLOG_LEVEL. Neither stream may freeze a server: when one is a pipe or a
// socket whose reader has stopped reading, its lines are dropped (after a short wait) and counted
// in a warning once the reader is back (log.cpp, line_writer).
#pragma once

#include <boost/asio/ip/basic_endpoint.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <string_view>
#include <utility>

namespace netlab {

// The logger behind `print`: stdout, message only, flushed after every line, never filtered.
spdlog::logger& program_output();

// One line of program output. Lines printed by several threads never interleave.
template <typename... Args>
void print(fmt::format_string<Args...> format, Args&&... args) {
  program_output().info(format, std::forward<Args>(args)...);
}

// One line of program output, formatted already: written as it is, with no format pass.
inline void print_line(std::string_view line) { program_output().info(line); }

// The logger behind `print_error`: stderr, message only, written like `program_output`.
spdlog::logger& error_output();

// A program's own one-line error on stderr (`error: ...`, the contract's line before exit status
// 1 or 2). Not fmt::print(stderr, ...): that throws when stderr is a closed pipe, and a program
// already on its way out with a status of its own would end in std::terminate instead.
template <typename... Args>
void print_error(fmt::format_string<Args...> format, Args&&... args) {
  error_output().info(format, std::forward<Args>(args)...);
}

// A sink for diagnostics on stderr (spdlog's pattern; on a terminal spdlog's coloured sink) that,
// like `print`, never blocks the program for long when stderr is a pipe or socket nobody reads:
// lines wait up to 100 ms for room, then are dropped and counted until the reader is back.
spdlog::sink_ptr make_stderr_sink();

// Diagnostics to stderr. `level` is one of trace|debug|info|warn|error|off; when the user gave no
// --log-level (`level_given` false), SPDLOG_LEVEL from the environment wins over the default.
void setup_logging(std::string_view level, bool level_given);

}  // namespace netlab

// `127.0.0.1:8080` or `[::1]:8080`, for TCP and UDP endpoints alike. fmt 9 no longer formats
// through operator<<, so this is the one place that says how an endpoint looks.
template <typename Protocol>
struct fmt::formatter<boost::asio::ip::basic_endpoint<Protocol>> : fmt::formatter<std::string_view> {
  auto format(const boost::asio::ip::basic_endpoint<Protocol>& endpoint, format_context& ctx) const {
    const auto address = endpoint.address();
    if (address.is_v4()) {
      // The common case, formatted by fmt's integer code: address::to_string goes through
      // inet_ntop and sprintf, which was a fifth of conn_counter's CPU per connection.
      const auto bytes = address.to_v4().to_bytes();
      return fmt::format_to(ctx.out(), "{}.{}.{}.{}:{}", bytes[0], bytes[1], bytes[2], bytes[3],
                            endpoint.port());
    }
    return fmt::format_to(ctx.out(), "[{}]:{}", address.to_string(), endpoint.port());
  }
};
