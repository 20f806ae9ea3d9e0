// The runtime every netlab program runs on: one io_context, N threads, and the shutdown steps.
//
// Shutdown, in the order it happens:
//   1. detect  - SIGINT or SIGTERM arrives (or `request_stop()` is called, as --demo does);
//   2. tell    - every member of `shutdown()` is asked to stop: listeners close their acceptor,
//                sessions stop reading and let their writer drain what is queued;
//   3. wait    - when the last member has left, nothing keeps the io_context busy and `run()`
//                returns by itself.
// A second signal, or `graceful_stop_limit` passing, stops the io_context at once instead.
#pragma once

#include "shutdown.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>

namespace netlab {

// The contract gives a stopping program 2 s; this leaves room to print summaries and exit.
inline constexpr std::chrono::milliseconds graceful_stop_limit{1500};

class runtime {
 public:
  explicit runtime(unsigned threads);

  boost::asio::io_context& context() { return io_; }
  shutdown_coordinator& shutdown() { return shutdown_; }

  // Step 1 without a signal. Safe from any thread.
  void request_stop();

  // Runs the io_context on `threads` threads (this one included) until shutdown completes.
  // Returns exit_ok; a forced stop is logged, not an error.
  int run();

 private:
  void wait_for_signal();
  void begin_stop(const char* reason);

  // Declared first so that it outlives the io_context: sessions destroyed with pending handlers
  // still leave the coordinator.
  shutdown_coordinator shutdown_;
  unsigned threads_;
  boost::asio::io_context io_;
  // The runtime's own handlers (signals, deadline) run on this strand, whatever N is.
  boost::asio::strand<boost::asio::io_context::executor_type> control_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer deadline_;
  bool stopping_ = false;  // touched only on control_
  bool running_ = false;   // touched only on control_
};

}  // namespace netlab
