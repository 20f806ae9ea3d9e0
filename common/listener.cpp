#include "listener.hpp"

#include "cli.hpp"
#include "log.hpp"
#include "spawn.hpp"
#include "trace.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <mutex>

namespace netlab {

namespace asio = boost::asio;
using asio::ip::tcp;

tcp_acceptor open_listener(asio::io_context& io, const std::string& bind, std::uint16_t port) {
  const tcp::endpoint wanted(asio::ip::make_address(bind), port);
  // The io_context's own executor, no strand: one thread runs each io_context (runtime.hpp), so
  // the loop and whatever is posted to it (a slot given back, the stop) never run at once.
  tcp_acceptor acceptor(io.get_executor());
  boost::system::error_code error;
  acceptor.open(wanted.protocol(), error);
  // SO_REUSEADDR: a restarted server can bind while old connections sit in TIME_WAIT.
  if (!error) acceptor.set_option(tcp::acceptor::reuse_address(true), error);
  // An option every connection inherits from the listening socket (Linux copies it on accept),
  // which saves a system call per connection. TCP_NODELAY: Nagle's algorithm would hold back a
  // small reply until the previous one is acknowledged (~40 ms with delayed ACKs); netlab's
  // writers batch instead.
  if (!error) acceptor.set_option(tcp::no_delay(true), error);
  if (!error) acceptor.bind(wanted, error);
  if (!error) acceptor.listen(tcp::socket::max_listen_connections, error);
  if (error) {
    throw startup_error(fmt::format("cannot listen on {}: {}", wanted, error.message()));
  }
  print("listening on {}", acceptor.local_endpoint());
  return acceptor;
}

namespace detail {

// What the accept loop owns. Shared with the stop callback, which may run after the loop ended,
// and with every connection_slot, which a session may give back after the loop ended.
struct accept_state {
  accept_state(tcp_acceptor a, std::size_t max)
      : acceptor(std::move(a)), pause(acceptor.get_executor()), max_connections(max) {}

  tcp_acceptor acceptor;
  // The loop's waits: the back-off when descriptors run out, and the wait at the cap. Cancelling
  // it wakes the loop early; the stop callback does, and so does a slot given back at the cap.
  steady_timer pause;

  const std::size_t max_connections;
  // Slots are given back by sessions on any thread, so the count has a mutex; a critical section
  // is a few instructions, once per connection.
  std::mutex mutex;
  std::size_t slots_taken = 0;     // open connections, plus the slot the loop holds for the next
  bool waiting_for_slot = false;   // the loop is paused at the cap: wake it on the next give-back
  bool stopping = false;           // shutdown was requested: wake nobody (the io_context may be
                                   // being destroyed while the last sessions give their slots back)
};

}  // namespace detail

using detail::accept_state;

connection_slot::connection_slot(std::shared_ptr<accept_state> owner) : owner_(std::move(owner)) {}

connection_slot& connection_slot::operator=(connection_slot&& other) noexcept {
  if (this != &other) {
    give_back();
    owner_ = std::move(other.owner_);
  }
  return *this;
}

connection_slot::~connection_slot() { give_back(); }

void connection_slot::give_back() {
  if (!owner_) return;
  auto owner = std::move(owner_);
  std::unique_lock lock(owner->mutex);
  --owner->slots_taken;
  const bool wake = owner->waiting_for_slot && !owner->stopping;
  owner->waiting_for_slot = false;
  lock.unlock();
  // No lost wake-up: the loop decides to wait while it runs on the acceptor's thread, and starts
  // its wait before it yields that thread; this cancel, queued to that thread, runs after that.
  if (wake) asio::post(owner->acceptor.get_executor(), [owner] { owner->pause.cancel(); });
}

std::size_t descriptor_connection_limit(unsigned threads) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return no_connection_cap;
  }
  const auto descriptors = static_cast<std::size_t>(limit.rlim_cur);
  const auto reserve = descriptor_reserve + descriptors_per_thread * (std::max(threads, 1u) - 1);
  return descriptors > reserve ? descriptors - reserve : 1;
}

namespace {

// A slot under the cap, or an empty one at the cap; then the loop is marked as waiting for one.
connection_slot take_slot(const std::shared_ptr<accept_state>& state) {
  std::lock_guard lock(state->mutex);
  if (state->slots_taken < state->max_connections) {
    ++state->slots_taken;
    return connection_slot(state);
  }
  state->waiting_for_slot = true;
  return {};
}

bool out_of_resources(const boost::system::error_code& error) {
  // EMFILE: this process is at its descriptor limit; ENFILE: the whole system is. ENOBUFS and
  // ENOMEM: the kernel could not allocate the socket. All pass when something else closes.
  static const boost::system::error_code system_out_of_files(ENFILE,
                                                             boost::system::system_category());
  return error == asio::error::no_descriptors || error == system_out_of_files ||
         error == asio::error::no_buffer_space || error == asio::error::no_memory;
}

// The loop holds the listener's membership in the shutdown: it leaves when the loop ends, not
// when the state does (slots keep the state alive until the last session has ended).
task<> accept_loop(std::shared_ptr<accept_state> state, runtime& rt,
                   std::function<void(accepted_connection)> make_session,
                   shutdown_coordinator::membership) {
  bool exhausted = false;     // out of descriptors now
  bool exhaustion_told = false;  // this episode was logged as a warning (so is its end)
  auto next_exhaustion_warning = std::chrono::steady_clock::time_point{};
  bool cap_reported = false;  // reached the cap, and said so (later times only at debug level:
                              // a server that lives at its cap would otherwise log every close)
  connection_slot slot;       // the place the next connection will take
  while (state->acceptor.is_open()) {
    if (!slot) {
      slot = take_slot(state);
      if (!slot) {
        if (!cap_reported) {
          spdlog::warn("at the cap of {} connections: not accepting until one closes (new "
                       "connections wait in the listen backlog)", state->max_connections);
          cap_reported = true;
        } else {
          spdlog::debug("at the cap of {} connections", state->max_connections);
        }
        // Waits for a give-back (or the stop); no timer runs, so a server at its cap is idle.
        state->pause.expires_at(steady_timer::time_point::max());
        co_await state->pause.async_wait(asio::as_tuple(use_task));
        continue;
      }
    }
    tcp::endpoint peer;
    // The connection lives on the next thread's io_context, from accept to close.
    tcp_socket socket(rt.next_context());
    boost::system::error_code error;
    if (trace::enabled()) {
      error = co_await trace::accept(state->acceptor, socket, peer);
    } else {
      std::tie(error) =
          co_await state->acceptor.async_accept(socket, peer, asio::as_tuple(use_task));
    }
    if (!error) {
      if (exhausted) {
        spdlog::log(exhaustion_told ? spdlog::level::info : spdlog::level::debug,
                    "accepting again");
        exhausted = false;
      }
      // TCP_NODELAY is on already, inherited from the listening socket (open_listener).
      // Non-blocking now, once: write_all needs it, and Asio's first read would otherwise set it
      // with a system call of its own (it does not know that write_all sets it too).
      socket.non_blocking(true, error);
      make_session({std::move(socket), peer, std::move(slot)});
      continue;
    }
    if (error == asio::error::operation_aborted || !state->acceptor.is_open()) break;
    if (error == asio::error::connection_aborted) continue;  // the client gave up first
    if (!exhausted) {
      // Logged once per episode: a server out of descriptors would otherwise log 10 lines a
      // second. And one episode's warning per report interval: a server that lives at its limit
      // while clients come and go starts an episode at every close (20 lines a second, measured).
      exhausted = out_of_resources(error);
      const auto now = std::chrono::steady_clock::now();
      exhaustion_told = !exhausted || now >= next_exhaustion_warning;
      if (exhausted && exhaustion_told) next_exhaustion_warning = now + exhaustion_report_interval;
      spdlog::log(exhaustion_told ? spdlog::level::warn : spdlog::level::debug,
                  "accept: {} (pending connections wait; retrying every {} ms)", error.message(),
                  accept_retry_delay.count());
    } else {
      spdlog::debug("accept: {}", error.message());
    }
    // Never spin: the failed connection is still in the backlog, so retrying at once would fail
    // at once. Wait, then try again (the stop callback cancels this wait; a session that closes
    // meanwhile does not, so the next try comes at most accept_retry_delay after it).
    state->pause.expires_after(accept_retry_delay);
    co_await state->pause.async_wait(asio::as_tuple(use_task));
  }
  spdlog::debug("no longer accepting");
}

}  // namespace

void start_accepting(runtime& rt, tcp_acceptor acceptor, std::size_t max_connections,
                     std::function<void(accepted_connection)> make_session) {
  auto state = std::make_shared<accept_state>(std::move(acceptor), max_connections);
  const auto executor = state->acceptor.get_executor();
  auto membership = rt.shutdown().join([weak = std::weak_ptr(state)] {
    if (auto s = weak.lock()) {
      {
        std::lock_guard lock(s->mutex);
        s->stopping = true;
      }
      asio::post(s->acceptor.get_executor(), [s] {
        boost::system::error_code ignored;
        s->acceptor.close(ignored);  // step 2 for the listener: stop accepting
        s->pause.cancel();
      });
    }
  });
  spawn(executor,
        accept_loop(std::move(state), rt, std::move(make_session), std::move(membership)),
        "accept loop");
}

void start_accepting(runtime& rt, tcp_acceptor acceptor, session_factory make_session) {
  // No cap: the slot is dropped at once, which only keeps a count nobody checks.
  start_accepting(rt, std::move(acceptor), no_connection_cap,
                  [make_session = std::move(make_session)](accepted_connection connection) {
                    make_session(std::move(connection.socket), connection.peer);
                  });
}

}  // namespace netlab
