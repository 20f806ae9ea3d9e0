#include "runtime.hpp"

#include "cli.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <thread>
#include <vector>

namespace netlab {

namespace asio = boost::asio;

namespace {

std::vector<std::unique_ptr<thread_context>> make_contexts(unsigned threads) {
  std::vector<std::unique_ptr<thread_context>> contexts;
  for (unsigned i = 0; i < std::max(threads, 1u); ++i) {
    // The hint: one thread runs it, so work posted from that thread goes to a private queue
    // instead of the shared, locked one.
    contexts.push_back(std::make_unique<thread_context>(1));
    // Open its epoll, eventfd and timerfd now rather than at its first connection (a timer's
    // service starts the reactor): an idle server's descriptor count is then fixed from the
    // start, which the connection cap's arithmetic and descriptor-leak checks rely on.
    steady_timer opens_the_reactor(*contexts.back());
  }
  return contexts;
}

// Blocks `numbers` in the calling thread while it lives. Threads started meanwhile inherit the
// mask and keep it.
class signals_blocked {
 public:
  explicit signals_blocked(std::initializer_list<int> numbers) {
    sigset_t set;
    sigemptyset(&set);
    for (const int number : numbers) sigaddset(&set, number);
    pthread_sigmask(SIG_BLOCK, &set, &previous_);
  }
  ~signals_blocked() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  signals_blocked(const signals_blocked&) = delete;
  signals_blocked& operator=(const signals_blocked&) = delete;

 private:
  sigset_t previous_;
};

}  // namespace

void release_signals_for_good(signal_set& signals, std::initializer_list<int> numbers) {
  // Between the clear, which gives each signal its default action back, and the SIG_IGN below, a
  // signal would kill. Blocked here, in the only thread that takes them, it waits instead, and
  // SIG_IGN then discards it. (Without this: 5 of 440 stops with a signal every 0.1 to 0.5 ms
  // ended killed by it, and so did one CI run.)
  const signals_blocked in_this_thread(numbers);
  boost::system::error_code ignored;
  signals.cancel(ignored);
  signals.clear(ignored);
  for (const int number : numbers) std::signal(number, SIG_IGN);
}

runtime::runtime(unsigned threads)
    : contexts_(make_contexts(threads)),
      signals_(context(), SIGINT, SIGTERM),
      deadline_(context()) {
  shutdown_.on_all_finished([this] {
    // Step 3: nothing is left to wait for; stop watching signals so that run() can return.
    asio::post(context(), [this] {
      if (!running_) return;
      signals_.cancel();
      deadline_.cancel();
      keep_alive_.clear();  // the other threads' run() return once their last handler has run
    });
  });
}

runtime::~runtime() {
  // After a forced stop, the coroutines left waiting are destroyed with their io_context, and
  // what they own can belong to another thread's io_context (a listener's state on context(),
  // chat's outboxes on every one); an object must not outlive its io_context. So, in two steps:
  // every io_context first destroys what it still holds, while all of them are there; then the
  // members go, the io_contexts after the signal set and timer that use context().
  keep_alive_.clear();
  for (auto& context : contexts_) context->destroy_what_is_left();
}

asio::io_context& runtime::next_context() {
  return *contexts_[next_context_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

void runtime::stop_now() {
  for (auto& context : contexts_) context->stop();
}

void runtime::request_stop() {
  asio::post(context(), [this] { begin_stop("stop requested"); });
}

void runtime::wait_for_signal() {
  signals_.async_wait([this](boost::system::error_code error, int signal) {
    if (error) return;  // cancelled: shutdown has completed
    if (stopping_) {
      spdlog::warn("second signal ({}): stopping now", signal);
      stop_now();
      return;
    }
    begin_stop(signal == SIGINT ? "SIGINT" : "SIGTERM");
    wait_for_signal();  // a second signal means "now"
  });
}

void runtime::begin_stop(const char* reason) {
  if (stopping_) return;
  stopping_ = true;
  // Nothing open (a ping run that has finished and asks for the stop itself): nothing to report.
  const auto open = shutdown_.members();
  spdlog::log(open > 0 ? spdlog::level::info : spdlog::level::debug, "{}: shutting down ({} open)",
              reason, open);
  deadline_.expires_after(graceful_stop_limit);
  deadline_.async_wait([this](boost::system::error_code error) {
    if (error) return;  // cancelled: everyone finished in time
    spdlog::warn("{} still open after {} ms: closing them", shutdown_.members(),
                 graceful_stop_limit.count());
    stop_now();
  });
  shutdown_.request_stop();  // step 2: tell
}

int runtime::run() {
  asio::post(context(), [this] {
    running_ = true;
    wait_for_signal();
  });
  for (std::size_t i = 1; i < contexts_.size(); ++i) {
    keep_alive_.emplace_back(contexts_[i]->get_executor());
  }
  std::vector<std::jthread> others;
  {
    // The signals netlab's programs act on (stop; conn_counter's status) go to this thread only:
    // the others start with them blocked. release_signals_for_good relies on it.
    const signals_blocked in_the_other_threads({SIGINT, SIGTERM, SIGUSR1});
    for (std::size_t i = 1; i < contexts_.size(); ++i) {
      others.emplace_back([&context = *contexts_[i]] { context.run(); });
    }
  }
  context().run();
  others.clear();  // joins
  keep_alive_.clear();  // after a forced stop, the shutdown's own release did not run
  running_ = false;
  release_signals_for_good(signals_, {SIGINT, SIGTERM});  // the stop is over
  // Sessions a forced stop left behind are destroyed with the io_context; they leave the
  // coordinator then, and nothing must be posted to an io_context that is going away.
  shutdown_.on_all_finished(nullptr);
  return exit_ok;
}

}  // namespace netlab
