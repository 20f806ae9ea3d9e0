#include "server.hpp"

#include "echo_session.hpp"

#include "common/log.hpp"
#include "common/spawn.hpp"

#include <boost/asio/as_tuple.hpp>

#include <csignal>
#include <utility>

namespace netlab::counter {

namespace asio = boost::asio;
using asio::ip::tcp;

line_sink print_to_stdout() { return print_line; }

namespace {

// Formats one line into a buffer on the stack (fmt keeps up to 500 bytes inline: no allocation)
// and hands it to `output`. Two such lines per connection, which is this exercise's whole work.
template <typename... Args>
void emit(const line_sink& output, fmt::format_string<Args...> format, Args&&... args) {
  fmt::memory_buffer line;
  fmt::format_to(fmt::appender(line), format, std::forward<Args>(args)...);
  output({line.data(), line.size()});
}

}  // namespace

void server::accept(accepted_connection connection, shutdown_coordinator& shutdown) {
  counted_connection counted(*this, connection.peer);
  start_echo_session(std::move(connection), std::move(counted), idle_timeout_, shutdown);
}

void server::report_status() {
  const auto now = counters_.current();
  emit(output_, "status: {} accepted, {} active, {} closed", now.accepted, now.active, now.closed);
}

void server::report_total() {
  const auto now = counters_.current();
  emit(output_, "total: {} accepted, {} closed", now.accepted, now.closed);
}

counted_connection::counted_connection(server& owner, const tcp::endpoint& peer)
    : owner_(&owner), number_(owner.counters_.count_accepted()), peer_(peer) {
  // Printed by the accept loop, before the session starts: `Connection #N` always comes before
  // `Disconnected #N`, and Connection lines come out in the order of N.
  emit(owner_->output_, "Connection #{} from {}", number_, peer_);
}

counted_connection::counted_connection(counted_connection&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), number_(other.number_), peer_(other.peer_) {}

counted_connection::~counted_connection() {
  if (owner_ == nullptr) return;
  const auto after = owner_->counters_.count_closed();
  try {
    emit(owner_->output_, "Disconnected #{} from {} (active {}, closed {})", number_, peer_,
         after.active, after.closed);
  } catch (const std::exception& e) {
    spdlog::error("cannot report the close of #{}: {}", number_, e.what());  // a destructor
  }
}

struct status_on_signal::state {
  // On the io_context's own executor, without a strand: one thread runs it (runtime.hpp).
  explicit state(asio::io_context& io) : signals(io.get_executor(), SIGUSR1) {}
  signal_set signals;     // registered from construction to destruction
  bool stopping = false;  // set on the signals' thread, with the cancel
};

// The membership is the coroutine's: it leaves the shutdown when the waiting ends, although the
// signal registration lives on in the state until main() destroys it.
task<> status_on_signal::report_on_each_signal(std::shared_ptr<state> s, server& reporter,
                                               shutdown_coordinator::membership) {
  // The flag, not only the cancel: a signal whose report was already on its way when the cancel
  // ran would otherwise start a new wait that nothing cancels (and the stop would wait for it).
  while (!s->stopping) {
    auto [error, signal] = co_await s->signals.async_wait(asio::as_tuple(use_task));
    if (error) co_return;  // cancelled: the server is stopping
    reporter.report_status();
  }
}

status_on_signal::status_on_signal(runtime& rt, server& reporter)
    : state_(std::make_shared<state>(rt.context())) {
  // Only the wait is cancelled at shutdown (so that run() can return); the registration stays
  // until this object is destroyed, so a SIGUSR1 during shutdown is ignored, not fatal.
  auto membership = join_on(rt.shutdown(), state_->signals.get_executor(),
                            std::weak_ptr(state_), [](state& s) {
                              s.stopping = true;
                              s.signals.cancel();
                            });
  spawn(state_->signals.get_executor(),
        report_on_each_signal(state_, reporter, std::move(membership)), "SIGUSR1");
}

status_on_signal::~status_on_signal() {
  // A status request while the program prints its total must not kill it. (A wait left pending
  // would also keep the coroutine, and the coroutine this state, alive for ever.)
  release_signals_for_good(state_->signals, {SIGUSR1});
}

}  // namespace netlab::counter
