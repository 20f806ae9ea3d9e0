// The runtime every netlab program runs on: N threads, each running an io_context of its own,
// and the shutdown steps.
//
// Why one io_context per thread rather than one shared by N threads: a connection lives on one
// thread from accept to close, so its handlers need no strand (no lock, no hand-over between
// threads), and a thread never wakes another to run work it posted itself. Threads still share
// what the exercises share on purpose (chat's room, conn_counter's atomics) through the same
// mutexes and atomics as before. Measured the other way too: conn_counter on one io_context run
// by both threads spent 1.035x the server CPU per connection (median of 8 alternating pairs,
// `netbench conns --total 20000 --concurrency 64`). The first io_context also runs the runtime's
// own work: signals, listeners, the shutdown steps.
//
// Shutdown, in the order it happens:
//   1. detect  - SIGINT or SIGTERM arrives (or `request_stop()` is called, as --demo does);
//   2. tell    - every member of `shutdown()` is asked to stop: listeners close their acceptor,
//                sessions stop reading and let their writer drain what is queued;
//   3. wait    - when the last member has left, nothing keeps the io_context busy and `run()`
//                returns by itself.
// A second signal, or `graceful_stop_limit` passing, stops the io_context at once instead.
#pragma once

#include "executor.hpp"
#include "shutdown.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <initializer_list>
#include <memory>
#include <vector>

namespace netlab {

// The contract gives a stopping program 2 s; this leaves room to print summaries and exit.
inline constexpr std::chrono::milliseconds graceful_stop_limit{1500};

// Lets `signals` go for good and ignores each of `numbers` from then on, for a program on its way
// out, once the runtime's other threads have joined. Asio gives a signal its default action back
// when the last signal_set lets it go, and for SIGINT, SIGTERM and SIGUSR1 that action kills: a
// signal from there to exit would cut the program's last lines (conn_counter's total, ping's
// summary) and turn status 0 into a signal's death. A wait still pending (after a forced stop) is
// cancelled first, so that the io_context destroys its handler: once the set is cleared, nothing
// else would.
void release_signals_for_good(signal_set& signals, std::initializer_list<int> numbers);

// A thread's io_context, which can be made to destroy what it still holds (handlers, coroutines
// waiting for I/O) without being destroyed itself: see ~runtime(). Asio's own thread_pool does the
// same in its destructor (shutdown() is protected; running it twice is harmless).
class thread_context : public boost::asio::io_context {
 public:
  using io_context::io_context;
  void destroy_what_is_left() { shutdown(); }
};

class runtime {
 public:
  explicit runtime(unsigned threads);
  ~runtime();

  // The runtime's own io_context (signals, listeners, the shutdown steps; with one thread,
  // everything).
  boost::asio::io_context& context() { return *contexts_.front(); }

  // Where the next connection runs: every thread's io_context in turn. Safe from any thread.
  boost::asio::io_context& next_context();
  shutdown_coordinator& shutdown() { return shutdown_; }

  // Step 1 without a signal. Safe from any thread.
  void request_stop();

  // Runs the io_context on `threads` threads (this one included) until shutdown completes.
  // Returns exit_ok; a forced stop is logged, not an error.
  int run();

 private:
  void wait_for_signal();
  void begin_stop(const char* reason);
  void stop_now();  // the second signal, or the graceful limit passed

  // Declared first so that it outlives the io_context: sessions destroyed with pending handlers
  // still leave the coordinator.
  shutdown_coordinator shutdown_;
  // One per thread; created with the runtime, so that connections can be placed before run().
  std::vector<std::unique_ptr<thread_context>> contexts_;
  std::atomic<std::size_t> next_context_{0};  // next_context()'s turn
  // Keeps the other threads' io_contexts running while they have no connection; released when
  // shutdown completes (touched only on context()'s thread, and by run() before and after the
  // other threads).
  std::vector<boost::asio::executor_work_guard<io_executor>> keep_alive_;
  // The runtime's own handlers (signals, deadline) run on context(), which one thread runs: no
  // strand needed, whatever N is.
  signal_set signals_;
  steady_timer deadline_;
  bool stopping_ = false;  // touched only on context()'s thread
  bool running_ = false;   // touched only on context()'s thread
};

}  // namespace netlab
