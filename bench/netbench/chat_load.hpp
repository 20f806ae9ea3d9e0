// `netbench chat`: N clients read everything, M of them also send, against the chat server.
//
// Every client checks every line it receives (chat_check.hpp): per sender, in order, none lost,
// none twice, none corrupted, never its own. At full speed (--rate 0) the senders run a closed
// loop: sender s sends line n only when every reading client has received line n - W of s, so
// an honest server is never pushed into dropping a client that reads; with --rate R each sender
// sends R lines per second whatever happens (an open loop).
//
// --slow K adds K clients that never read: the queued design should disconnect them and carry
// on; the lesson's design stalls everyone (visible in --timeline).
#pragma once

#include "latency_histogram.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace netlab::bench {

// After the senders stop, how long lines still on their way get to arrive; what has not arrived
// by then is lost. Also how long a sender may stay blocked in a write after the end.
inline constexpr std::chrono::seconds chat_drain_limit{3};

// A sender still blocked in a write this long after the end has been stopped by the server (the
// lesson's design, stalled by a slow client): it gives up, and its unwritten lines count as lost.
inline constexpr std::chrono::seconds sender_write_grace{1};

// After every client has connected, before the first line: the server must have registered a
// client before it can relay to it, or the first lines are "lost" to a client it does not know.
inline constexpr std::chrono::milliseconds chat_settle_time{300};

// One point of --timeline every this often.
inline constexpr std::chrono::milliseconds timeline_interval{250};

struct chat_options {
  boost::asio::ip::tcp::endpoint target;
  std::size_t clients = 10;  // reading clients; senders are the first `senders` of them
  std::size_t senders = 10;
  double rate = 0;          // lines per second per sender; 0: full speed (closed loop)
  std::size_t window = 16;  // closed loop: lines a sender may be ahead of its slowest reader
  std::size_t slow = 0;     // extra clients that never read
  std::optional<std::chrono::milliseconds> slow_join_at;  // nullopt: they connect at the start
  std::chrono::milliseconds duration{5000};
  std::optional<pid_t> pid;
};

struct chat_result {
  chat_options options;
  double duration_s = 0;  // first line sent to the last delivery (or the senders' stop)
  std::uint64_t sent = 0;
  std::uint64_t deliveries = 0;  // distinct lines received, over all receivers
  latency_histogram latency;     // from the send (time in the line) to its receipt
  std::uint64_t lost = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t reordered = 0;
  std::uint64_t corrupted = 0;
  std::uint64_t self_echo = 0;
  std::uint64_t disconnected = 0;       // normal clients dropped by the server, or never connected
  std::uint64_t slow_disconnected = 0;  // slow clients dropped by the server (not an error)
  std::uint64_t senders_blocked = 0;    // senders still stuck in a write at the end
  bool cut_off = false;
  std::optional<double> server_cpu_s;               // over the same span as duration_s
  std::optional<double> client_cpu_s;               // netbench's own, over the same span
  std::vector<std::pair<double, double>> timeline;  // (seconds into the run, deliveries per s)

  std::uint64_t errors() const;
};

chat_result run_chat(const chat_options& options);

void print_report(const chat_result& result);
std::string summary_json(const chat_result& result);

// `t_seconds deliveries_per_s` lines, for a plot.
void write_timeline(const chat_result& result, const std::string& path);

}  // namespace netlab::bench
