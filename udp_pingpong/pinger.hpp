// Side A: sends numbered pings to a target, matches each pong to its ping, and prints the round
// trips and a summary the way ping(8) does.
//
// Three coroutines share one socket and one reply_tracker, on a runtime with a single thread (a
// measuring tool wants no hand-offs between threads, and single-threaded they need no strand):
//   receiver  - takes every datagram and asks the tracker what it is
//   watchdog  - gives up on pings whose timeout has passed
//   sender    - with --interval > 0, one ping per interval; in flood mode (--interval 0) it only
//               sends the first --inflight pings, and every reply or timeout sends the next one
#pragma once

#include "reply_tracker.hpp"
#include "wire.hpp"

#include "common/executor.hpp"
#include "common/runtime.hpp"
#include "common/stats.hpp"

#include <boost/asio/ip/udp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace netlab::pingpong {

// After Ctrl-C, how long the pinger still waits for the replies to pings already sent (each
// within its own timeout): long enough for any loopback or LAN reply, short enough to stay
// inside the contract's two seconds.
inline constexpr std::chrono::milliseconds stop_drain_limit{500};

struct ping_options {
  std::uint64_t count = 5;  // 0: until stopped
  std::chrono::milliseconds interval{1000};  // 0: flood mode
  std::chrono::milliseconds timeout{1000};
  std::size_t size = default_ping_size;
  std::size_t inflight = 1;  // flood mode only
  bool quiet = false;        // the summary only
};

// The endpoint for `target` (an address literal or a name). Throws startup_error.
boost::asio::ip::udp::endpoint resolve_target(boost::asio::io_context& io, const host_port& target);

class pinger {
 public:
  // Opens a socket connected to `target` (throws startup_error on failure). Connected, so that
  // the kernel drops datagrams from anyone else and reports ICMP "port unreachable" to us.
  pinger(runtime& rt, boost::asio::ip::udp::endpoint target, const ping_options& options);

  // Starts pinging as a member of the runtime's shutdown; at the end (count reached, or a stop
  // request and the drain) prints the summary, calls `when_done`, and asks the runtime to stop.
  void start(std::function<void()> when_done = {});

  // After the runtime has run: prints the summary if the pinger could not. A second Ctrl-C (or
  // the runtime's graceful limit) stops the io_context at once, in the middle of the drain that
  // the first one started, and run() never reaches its summary; the user still gets one, with the
  // pings that were waiting counted as lost.
  void summarize_if_cut_short();

  // After the runtime has run: 0 when at least one reply came, 1 when none did.
  int exit_code() const { return tracker_.received() > 0 ? 0 : 1; }

 private:
  task<> run();
  task<> receiver();
  task<> watchdog();
  task<> sender();

  void handle_datagram(std::size_t size, clock::time_point now);
  void handle_unreachable(const boost::system::error_code& error);
  void send_ping();
  void fill_window();  // flood mode: send until --inflight pings are outstanding
  bool may_send() const;
  void stop();
  void finish_if_done();
  void print_summary();

  runtime& rt_;
  boost::asio::ip::udp::endpoint target_;
  ping_options options_;
  udp_socket socket_;                         // closed by finish: the receiver's wait ends
  steady_timer send_timer_;                   // the sender's interval; cancelled by stop
  steady_timer watchdog_timer_;               // the next deadline; cancelled by stop and finish
  std::vector<char> outgoing_;                // the ping being sent, rewritten for each seq
  std::vector<char> incoming_;                // max_datagram: nothing that arrives is truncated
  reply_tracker tracker_;
  latency_stats rtts_;                        // replies only: late ones are not round trips
  bool stopping_ = false;   // a stop was requested: send no more, wait for the replies due
  bool finished_ = false;   // nothing more to wait for: the coroutines end
  clock::time_point drain_deadline_;  // when stopping: outstanding pings are abandoned then
  bool summarized_ = false;  // print_summary has run: once is the whole story
  shutdown_coordinator::membership membership_;  // held until the summary is printed
  std::function<void()> when_done_;
};

}  // namespace netlab::pingpong
