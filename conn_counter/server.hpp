// conn_counter's server: gives each accepted connection its number, reports it, starts its echo
// session, and reports the counts (SIGUSR1 and the total at the end).
#pragma once

#include "counters.hpp"

#include "common/executor.hpp"
#include "common/listener.hpp"
#include "common/runtime.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

namespace netlab::counter {

// Where the exercise's lines go: stdout in the program, a list in the tests (which check every
// line without parsing the process's output).
using line_sink = std::function<void(std::string_view line)>;

// A line sink that prints to stdout through netlab::print (one flushed line at a time).
line_sink print_to_stdout();

class server {
 public:
  // Must outlive every session (main() creates it before the runtime); `output` is called from
  // any thread and must be thread-safe.
  // `idle_timeout`: --idle-timeout, zero for never.
  explicit server(line_sink output, std::chrono::milliseconds idle_timeout = {})
      : output_(std::move(output)), idle_timeout_(idle_timeout) {}

  // The session factory for start_accepting: counts the connection, prints
  // `Connection #N from ADDR`, and starts its echo session as a member of `shutdown`.
  void accept(accepted_connection connection, shutdown_coordinator& shutdown);

  // `status: N accepted, A active, C closed` (what SIGUSR1 prints).
  void report_status();
  // `total: N accepted, C closed` (what the program prints at the end).
  void report_total();

  counts current() const { return counters_.current(); }

 private:
  friend class counted_connection;
  connection_counters counters_;
  line_sink output_;
  std::chrono::milliseconds idle_timeout_;
};

// One connection's place in the counts, from accept to close: the scope guard of the exercise.
// Constructing it counts the connection accepted and prints `Connection #N from ADDR`; destroying
// it counts it closed and prints `Disconnected #N from ADDR (active A, closed C)`. The session
// holds it as a member, so however the session ends - EOF, reset, a write error, an exception,
// shutdown, or the io_context destroying it after a forced stop - the close is counted exactly
// once. Move-only; a moved-from guard counts nothing.
class counted_connection {
 public:
  counted_connection(server& owner, const boost::asio::ip::tcp::endpoint& peer);
  counted_connection(counted_connection&& other) noexcept;
  counted_connection& operator=(counted_connection&&) = delete;
  ~counted_connection();

  std::uint64_t number() const { return number_; }

 private:
  server* owner_;
  std::uint64_t number_;
  boost::asio::ip::tcp::endpoint peer_;
};

// Prints the status line on every SIGUSR1, without stopping anything, until shutdown. Create it
// before the `listening on` line: until it exists, SIGUSR1 has its default action, which kills
// the process. Destroy it before the runtime (it owns a signal_set on the runtime's io_context).
class status_on_signal {
 public:
  status_on_signal(runtime& rt, server& reporter);
  // From here to exit, SIGUSR1 is ignored: the default action it would get back kills.
  ~status_on_signal();
  status_on_signal(const status_on_signal&) = delete;
  status_on_signal& operator=(const status_on_signal&) = delete;

 private:
  struct state;
  static task<> report_on_each_signal(std::shared_ptr<state> s, server& reporter,
                                      shutdown_coordinator::membership);
  std::shared_ptr<state> state_;  // shared with the waiting coroutine
};

}  // namespace netlab::counter
