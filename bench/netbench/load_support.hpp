// What every netbench load is built from: its clock, waiting, connecting, and the run itself.
#pragma once

#include "common/runtime.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace netlab::bench {

using load_clock = std::chrono::steady_clock;

// Seconds from `from` to `to`, as the reports print durations.
double seconds_between(load_clock::time_point from, load_clock::time_point to);

// The free space of a line_buffer as Asio wants it (Boost 1.81's buffer() takes no std::span).
inline boost::asio::mutable_buffer to_buffer(std::span<char> space) {
  return {space.data(), space.size()};
}

// How often a wait looks at the stop flag: a SIGINT ends a run within this (plus the drain).
inline constexpr std::chrono::milliseconds stop_poll_interval{100};

// Waits until `when`, or until `stop` is set, whichever comes first.
boost::asio::awaitable<void> sleep_until(load_clock::time_point when,
                                         const std::atomic<bool>& stop);
boost::asio::awaitable<void> sleep_until(load_clock::time_point when);

// After a SIGINT, how long lines already on their way still get to arrive: long enough for a
// server that keeps up, short enough to finish well within the runtime's graceful stop limit.
inline constexpr std::chrono::milliseconds stop_drain_grace{300};

// The end of a drain: `when`, or stop_drain_grace after `stop` was seen, whichever is sooner.
load_clock::time_point drain_limit(load_clock::time_point when, const std::atomic<bool>& stop,
                                   std::optional<load_clock::time_point>& stop_seen);

// Waits until drain_limit().
boost::asio::awaitable<void> drain_until(load_clock::time_point when,
                                         const std::atomic<bool>& stop);

// Connects `socket` (already bound to its executor) to `target` with Nagle's algorithm off: a
// load client that waits 40 ms for delayed ACKs measures TCP, not the server. Returns the error,
// if any, instead of throwing: a refused connection is a figure of the report, not a crash.
boost::asio::awaitable<boost::system::error_code> connect_no_delay(
    boost::asio::ip::tcp::socket& socket, const boost::asio::ip::tcp::endpoint& target);

// The error an operation reports when netbench itself cancelled it (a deadline, the end of a
// run), as opposed to the peer's doing (end of file, reset), which is a figure of the report.
bool cancelled(const boost::system::error_code& error);

// A coroutine ready to start on an executor of its own, for wait_for_all: connections run on
// strands of their own (see echo_load.cpp).
using spawnable = decltype(boost::asio::co_spawn(std::declval<boost::asio::any_io_executor>(),
                                                 std::declval<boost::asio::awaitable<void>>(),
                                                 boost::asio::deferred));
spawnable make_spawnable(boost::asio::any_io_executor executor, boost::asio::awaitable<void> body);

// Starts every task and waits until all have finished; cancelling this cancels them all. Tasks
// report through the state they update; an exception one throws is logged (cancellation aside).
boost::asio::awaitable<void> wait_for_all(std::vector<spawnable> tasks);

// Runs `load` on `rt` to its end and returns; cut off (cancelled) once `hard_limit` has passed,
// in which case it returns true. A SIGINT or SIGTERM sets `stop`, which every load watches: it
// ends its measurement there and winds down (the runtime stops it outright 1.5 s later).
// Rethrows what `load` threw.
bool run_load(runtime& rt, std::atomic<bool>& stop, load_clock::duration hard_limit,
              boost::asio::awaitable<void> load);

// The overall deadline the brief of every subcommand promises: its own duration plus this.
inline constexpr std::chrono::seconds hard_limit_margin{10};

}  // namespace netlab::bench
