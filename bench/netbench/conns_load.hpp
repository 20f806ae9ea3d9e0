// `netbench conns`: T short connections, at most C at a time: connect, send `hello <i>\n`, read
// it back, close. Measures what a connection costs the server, from accept to close.
#pragma once

#include "latency_histogram.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace netlab::bench {

struct conns_options {
  boost::asio::ip::tcp::endpoint target;
  std::size_t total = 1000;
  std::size_t concurrency = 64;
  std::chrono::milliseconds duration{60'000};  // a cap: no new connection after it
  std::optional<pid_t> pid;
};

struct conns_result {
  conns_options options;
  std::uint64_t completed = 0;  // connected, echoed back exactly, closed
  std::uint64_t failed = 0;     // refused, reset, closed early or answered wrong
  double duration_s = 0;
  latency_histogram latency;  // per connection: from connect to the full echo
  bool cut_off = false;
  std::optional<double> server_cpu_s;
  std::optional<double> client_cpu_s;  // netbench's own, over the same span

  std::uint64_t errors() const { return failed + (cut_off ? 1 : 0); }
};

conns_result run_conns(const conns_options& options);

void print_report(const conns_result& result);
std::string summary_json(const conns_result& result);

}  // namespace netlab::bench
