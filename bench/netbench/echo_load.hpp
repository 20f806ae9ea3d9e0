// `netbench echo`: N connections, each keeping K lines in flight against a line echo server
// (echo_split; conn_counter echoes bytes, which gives the same lines back).
//
// Closed loop: a connection sends K lines, then one new line for each reply, so the server is
// never asked for more than it can do and throughput is what it sustains. Every byte that comes
// back is checked against what was sent (wire.hpp), and every reply is classified by its
// sequence number (sequence_tracker.hpp).
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

// A connection writes its lines and only then reads the replies (one coroutine, no separate
// writer). If its lines in flight could fill both socket buffers, server and client would each
// wait for the other to read; 1 MiB stays far below what loopback buffers hold.
inline constexpr std::size_t max_bytes_in_flight = std::size_t{1} << 20;

// Time the replies still in flight at the end of the window get to come back; after that they
// count as lost.
inline constexpr std::chrono::seconds echo_drain_limit{2};

struct echo_options {
  boost::asio::ip::tcp::endpoint target;
  std::size_t conns = 64;
  std::size_t inflight = 16;  // lines per connection
  std::size_t size = 64;      // bytes per line, '\n' included
  std::chrono::milliseconds duration{5000};
  std::chrono::milliseconds warmup{1000};  // run, checked, but neither timed nor counted
  unsigned threads = 1;                    // netbench's own; the server has its own
  std::optional<pid_t> pid;                // the server, for its CPU time
};

struct echo_result {
  echo_options options;
  double duration_s = 0;      // the measured window
  std::uint64_t lines = 0;    // intact replies received in the window
  latency_histogram latency;  // of those lines: from the send of a line to its full receipt
  std::uint64_t corrupted = 0;
  std::uint64_t lost = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t reordered = 0;
  std::uint64_t disconnected = 0;  // closed or reset by the server, or never connected
  bool cut_off = false;            // the hard limit ended the run
  std::optional<double> server_cpu_s;
  std::optional<double> client_cpu_s;  // netbench's own, over the same window

  std::uint64_t errors() const;
};

// Runs the load on a runtime of its own (options.threads threads) and returns its figures.
echo_result run_echo(const echo_options& options);

// The human lines, then the JSON summary as the last line.
void print_report(const echo_result& result);
std::string summary_json(const echo_result& result);

}  // namespace netlab::bench
