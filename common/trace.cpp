#include "trace.hpp"

#include "log.hpp"
#include "write.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

namespace netlab::trace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

bool enable() {
#if NETLAB_TRACE
  detail::on = true;
  return true;
#else
  return false;
#endif
}

namespace {

// Its own logger, so that --trace shows whatever --log-level says; microseconds, because the
// steps of one operation are a few microseconds apart.
spdlog::logger& trace_log() {
  static const auto logger = [] {
    auto log = std::make_shared<spdlog::logger>("trace", make_stderr_sink());
    log->set_pattern("%H:%M:%S.%f trace %v");
    log->set_level(spdlog::level::trace);
    return log;
  }();
  return *logger;
}

template <typename... Args>
void say(int fd, std::string_view operation, fmt::format_string<Args...> what, Args&&... args) {
  trace_log().info("fd {} {}: {}", fd, operation,
                   fmt::format(what, std::forward<Args>(args)...));
}

bool would_block(const error_code& error) {
  return error == asio::error::would_block || error == asio::error::try_again;
}

// The lesson's loop, for one operation on any socket: attempt it without blocking; if the kernel
// says it would block, wait for the reactor to report readiness, and attempt it again.
// `attempt(error)` makes one non-blocking system call and returns its byte count.
template <typename Socket, typename Attempt>
task<read_result> attempt_until_done(Socket& socket, std::string_view operation,
                                     typename Socket::wait_type readiness, Attempt attempt,
                                     asio::cancellation_slot cancel, bool counts_bytes = true) {
  const int fd = socket.native_handle();
  // The waits are cancelled through `cancel` when one is given; otherwise, like a plain
  // operation, through the awaiting coroutine's own slot (a parent's `||` or `&&`).
  if (!cancel.is_connected()) {
    const asio::cancellation_state own = co_await asio::this_coro::cancellation_state;
    cancel = own.slot();
  }
  error_code error;
  if (!socket.non_blocking()) socket.non_blocking(true, error);
  if (error) co_return read_result{error, 0};
  for (;;) {
    say(fd, operation, "attempted");
    const std::size_t bytes = attempt(error);
    if (!would_block(error)) {
      if (error == asio::error::eof) {
        say(fd, operation, "end of stream (the peer closed its side)");
      } else if (error) {
        say(fd, operation, "failed: {}", error.message());
      } else if (counts_bytes) {
        say(fd, operation, "completed with {} bytes", bytes);
      } else {
        say(fd, operation, "completed");
      }
      co_return read_result{error, bytes};
    }
    say(fd, operation, "would block (EAGAIN)");
    say(fd, operation, "waiting for readiness");
    auto [wait_error] = co_await socket.async_wait(
        readiness, asio::bind_cancellation_slot(cancel, asio::as_tuple(use_task)));
    if (wait_error) {
      say(fd, operation, "wait ended: {}", wait_error.message());
      co_return read_result{wait_error, 0};
    }
    say(fd, operation, "woken: {}", readiness == Socket::wait_read ? "readable" : "writable");
  }
}

}  // namespace

void note(int descriptor, std::string_view operation, std::string_view what) {
  say(descriptor, operation, "{}", what);
}

task<read_result> read_some(tcp_socket& socket, asio::mutable_buffer buffer,
                            asio::cancellation_slot cancel) {
  return attempt_until_done(
      socket, "read", tcp_socket::wait_read,
      [&socket, buffer](error_code& error) { return socket.read_some(buffer, error); }, cancel);
}

task<error_code> write_all(tcp_socket& socket, std::vector<asio::const_buffer>& buffers) {
  // A write can take several rounds: the kernel may take only part of what is offered.
  while (asio::buffer_size(buffers) > 0) {
    auto [error, written] = co_await attempt_until_done(
        socket, "write", tcp_socket::wait_write,
        [&](error_code& e) { return socket.write_some(buffers, e); }, {});
    if (error) co_return error;
    consume_front(buffers, written);
  }
  co_return error_code{};
}

task<error_code> accept(tcp_acceptor& acceptor, tcp_socket& socket, tcp::endpoint& peer) {
  auto [error, ignored] = co_await attempt_until_done(
      acceptor, "accept", tcp_acceptor::wait_read,
      [&](error_code& e) {
        acceptor.accept(socket, peer, e);
        if (!e) say(acceptor.native_handle(), "accept", "a connection from {}: fd {}", peer,
                    socket.native_handle());
        return std::size_t{0};
      },
      {}, false);
  co_return error;
}

task<read_result> receive_from(udp_socket& socket, asio::mutable_buffer buffer,
                               udp::endpoint& sender) {
  return attempt_until_done(
      socket, "receive", udp_socket::wait_read,
      [&socket, buffer, &sender](error_code& e) { return socket.receive_from(buffer, sender, 0, e); },
      {});
}

task<read_result> receive(udp_socket& socket, asio::mutable_buffer buffer) {
  return attempt_until_done(
      socket, "receive", udp_socket::wait_read,
      [&socket, buffer](error_code& e) { return socket.receive(buffer, 0, e); }, {});
}

task<read_result> send_to(udp_socket& socket, asio::const_buffer datagram,
                          const udp::endpoint& destination) {
  return attempt_until_done(
      socket, "send", udp_socket::wait_write,
      [&socket, datagram, &destination](error_code& e) {
        return socket.send_to(datagram, destination, 0, e);
      },
      {});
}

}  // namespace netlab::trace
