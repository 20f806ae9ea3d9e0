#include "runtime.hpp"

#include "cli.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <thread>
#include <vector>

namespace netlab {

namespace asio = boost::asio;

runtime::runtime(unsigned threads)
    : threads_(threads == 0 ? 1 : threads),
      // The hint tells Asio how many threads run it; with 1, work posted from that thread
      // goes to a private queue instead of the shared, locked one.
      io_(static_cast<int>(threads_)),
      control_(asio::make_strand(io_)),
      signals_(control_, SIGINT, SIGTERM),
      deadline_(control_) {
  shutdown_.on_all_finished([this] {
    // Step 3: nothing is left to wait for; stop watching signals so that run() can return.
    asio::post(control_, [this] {
      if (!running_) return;
      signals_.cancel();
      deadline_.cancel();
    });
  });
}

void runtime::request_stop() {
  asio::post(control_, [this] { begin_stop("stop requested"); });
}

void runtime::wait_for_signal() {
  signals_.async_wait([this](boost::system::error_code error, int signal) {
    if (error) return;  // cancelled: shutdown has completed
    if (stopping_) {
      spdlog::warn("second signal ({}): stopping now", signal);
      io_.stop();
      return;
    }
    begin_stop(signal == SIGINT ? "SIGINT" : "SIGTERM");
    wait_for_signal();  // a second signal means "now"
  });
}

void runtime::begin_stop(const char* reason) {
  if (stopping_) return;
  stopping_ = true;
  spdlog::info("{}: shutting down ({} open)", reason, shutdown_.members());
  deadline_.expires_after(graceful_stop_limit);
  deadline_.async_wait([this](boost::system::error_code error) {
    if (error) return;  // cancelled: everyone finished in time
    spdlog::warn("{} still open after {} ms: closing them", shutdown_.members(),
                 graceful_stop_limit.count());
    io_.stop();
  });
  shutdown_.request_stop();  // step 2: tell
}

int runtime::run() {
  asio::post(control_, [this] {
    running_ = true;
    wait_for_signal();
  });
  std::vector<std::jthread> helpers;
  for (unsigned i = 1; i < threads_; ++i) helpers.emplace_back([this] { io_.run(); });
  io_.run();
  helpers.clear();  // joins
  running_ = false;
  // Sessions a forced stop left behind are destroyed with the io_context; they leave the
  // coordinator then, and nothing must be posted to an io_context that is going away.
  shutdown_.on_all_finished(nullptr);
  return exit_ok;
}

}  // namespace netlab
