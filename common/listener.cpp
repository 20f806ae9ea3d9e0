#include "listener.hpp"

#include "cli.hpp"
#include "log.hpp"
#include "spawn.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace netlab {

namespace asio = boost::asio;
using asio::ip::tcp;

tcp::acceptor open_listener(asio::io_context& io, const std::string& bind, std::uint16_t port) {
  const tcp::endpoint wanted(asio::ip::make_address(bind), port);
  tcp::acceptor acceptor(asio::make_strand(io));
  boost::system::error_code error;
  acceptor.open(wanted.protocol(), error);
  // SO_REUSEADDR: a restarted server can bind while old connections sit in TIME_WAIT.
  if (!error) acceptor.set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor.bind(wanted, error);
  if (!error) acceptor.listen(tcp::socket::max_listen_connections, error);
  if (error) {
    throw startup_error(fmt::format("cannot listen on {}: {}", wanted, error.message()));
  }
  print("listening on {}", acceptor.local_endpoint());
  return acceptor;
}

namespace {

// What the accept loop owns. Shared with the stop callback, which may run after the loop ended.
struct accept_state {
  accept_state(tcp::acceptor a) : acceptor(std::move(a)), retry(acceptor.get_executor()) {}
  tcp::acceptor acceptor;
  asio::steady_timer retry;  // the back-off when descriptors run out
  shutdown_coordinator::membership membership;
};

bool out_of_resources(const boost::system::error_code& error) {
  // EMFILE: this process is at its descriptor limit; ENFILE: the whole system is. ENOBUFS and
  // ENOMEM: the kernel could not allocate the socket. All pass when something else closes.
  static const boost::system::error_code system_out_of_files(ENFILE,
                                                             boost::system::system_category());
  return error == asio::error::no_descriptors || error == system_out_of_files ||
         error == asio::error::no_buffer_space || error == asio::error::no_memory;
}

asio::awaitable<void> accept_loop(std::shared_ptr<accept_state> state, asio::io_context& io,
                                  session_factory make_session) {
  bool exhausted = false;  // out of descriptors, and said so once
  while (state->acceptor.is_open()) {
    auto [error, socket] = co_await state->acceptor.async_accept(
        asio::make_strand(io), asio::as_tuple(asio::use_awaitable));
    if (!error) {
      if (exhausted) {
        spdlog::info("accepting again");
        exhausted = false;
      }
      // Nagle's algorithm would hold back a small reply until the previous one is acknowledged
      // (~40 ms with delayed ACKs); netlab's writers batch instead.
      socket.set_option(tcp::no_delay(true), error);
      make_session(std::move(socket));
      continue;
    }
    if (error == asio::error::operation_aborted || !state->acceptor.is_open()) break;
    if (error == asio::error::connection_aborted) continue;  // the client gave up first
    if (!exhausted) {
      // Logged once per episode: a server out of descriptors would otherwise log 10 lines a second.
      spdlog::warn("accept: {} (pending connections wait; retrying every {} ms)", error.message(),
                   accept_retry_delay.count());
      exhausted = out_of_resources(error);
    } else {
      spdlog::debug("accept: {}", error.message());
    }
    // Never spin: the failed connection is still in the backlog, so retrying at once would fail
    // at once. Wait, then try again (the stop callback cancels this wait).
    state->retry.expires_after(accept_retry_delay);
    co_await state->retry.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  spdlog::debug("no longer accepting");
}

}  // namespace

void start_accepting(runtime& rt, tcp::acceptor acceptor, session_factory make_session) {
  auto state = std::make_shared<accept_state>(std::move(acceptor));
  const auto executor = state->acceptor.get_executor();
  state->membership = rt.shutdown().join([weak = std::weak_ptr(state)] {
    if (auto s = weak.lock()) {
      asio::post(s->acceptor.get_executor(), [s] {
        boost::system::error_code ignored;
        s->acceptor.close(ignored);  // step 2 for the listener: stop accepting
        s->retry.cancel();
      });
    }
  });
  spawn(executor, accept_loop(std::move(state), rt.context(), std::move(make_session)),
        "accept loop");
}

}  // namespace netlab
