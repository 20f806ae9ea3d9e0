#include "idle.hpp"

#include "write.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <exception>
#include <variant>

namespace netlab {

namespace asio = boost::asio;

namespace {

// `a || b` waits for the first branch that *succeeds*: a session that threw would leave `||`
// waiting for the watch, which never ends. So the session's exception becomes its result.
task<std::exception_ptr> catching(task<> session) {
  try {
    co_await std::move(session);
  } catch (...) {
    co_return std::current_exception();
  }
  co_return nullptr;
}

}  // namespace

idle_watch::idle_watch(const io_executor& executor, clock::duration limit)
    : limit_(limit), timer_(executor) {}

task<> idle_watch::run(task<> session, std::function<void()> on_idle) {
  using namespace asio::experimental::awaitable_operators;
  if (!enabled()) {
    co_await std::move(session);
    co_return;
  }
  last_activity_ = clock::now();
  // watch() never finishes by itself: when the session ends, `||` cancels the watch. (A watch
  // that finished on idle would make `||` cancel the session, aborting its last writes.)
  auto ended = co_await (catching(std::move(session)) || watch(std::move(on_idle)));
  if (ended.index() == 0 && std::get<0>(ended)) std::rethrow_exception(std::get<0>(ended));
}

int idle_watch::bytes_held_by_kernel() const {
  return sending_ == nullptr ? -1 : bytes_not_yet_acknowledged(*sending_);
}

task<> idle_watch::watch(std::function<void()> on_idle) {
  // Sleep until the limit after the last activity; if there was activity meanwhile, sleep again.
  for (;;) {
    timer_.expires_at(last_activity_ + limit_);
    auto [error] = co_await timer_.async_wait(asio::as_tuple(use_task));
    if (error) co_return;  // the session ended
    if (clock::now() < last_activity_ + limit_) continue;  // there was activity meanwhile
    // Nothing read, no write completed. Idle, unless bytes are on their way out and their count
    // moved since the last look, a period ago (a write stuck on a client that reads nothing is
    // so reaped after one period or two).
    const int held = bytes_held_by_kernel();
    if (held <= 0 || held == held_at_last_look_) break;
    held_at_last_look_ = held;
    last_activity_ = clock::now();  // the client is taking them: look again in a period
  }
  on_idle();
  timer_.expires_at(clock::time_point::max());
  co_await timer_.async_wait(asio::as_tuple(use_task));  // until the session ends
}

}  // namespace netlab
