#include "ponger.hpp"

#include "reply_from.hpp"
#include "wire.hpp"

#include "common/cli.hpp"
#include "common/log.hpp"
#include "common/spawn.hpp"
#include "common/trace.hpp"

#include <boost/asio/as_tuple.hpp>

#include <memory>
#include <vector>

namespace netlab::pingpong {

namespace asio = boost::asio;
using asio::ip::udp;
using boost::system::error_code;

udp_socket open_ponger(asio::io_context& io, const std::string& bind, std::uint16_t port) {
  const udp::endpoint wanted(asio::ip::make_address(bind), port);
  udp_socket socket(io.get_executor());
  error_code error;
  socket.open(wanted.protocol(), error);
  if (!error) socket.bind(wanted, error);
  // Replies are sent straight from the receive loop (see answer_pings); in non-blocking mode a
  // full send buffer returns would_block instead of stalling the thread.
  if (!error) socket.non_blocking(true, error);
  // Bound to every address, a reply must say which one it comes from (reply_from.hpp).
  if (!error && bound_to_every_address(wanted)) report_reply_addresses(socket, error);
  if (error) {
    throw startup_error(fmt::format("cannot listen on {}: {}", wanted, error.message()));
  }
  print("listening on {}", socket.local_endpoint());
  return socket;
}

namespace {

// What the receive loop owns. Shared with the stop callback, which may run after the loop ended.
struct ponger {
  explicit ponger(udp_socket s)
      : socket(std::move(s)),
        every_address(bound_to_every_address(socket.local_endpoint())),
        datagram(max_datagram) {}
  udp_socket socket;           // closed by the stop callback: the loop's receive then ends
  const bool every_address;    // bound to 0.0.0.0 or ::: receive and reply via reply_from.hpp
  std::vector<char> datagram;  // one buffer, reused: a request becomes its reply in place
  asio::ip::address reply_from;  // every_address only: where the current request was sent
  std::uint64_t answered = 0;
  std::uint64_t ignored = 0;
  shutdown_coordinator::membership membership;
};

// ICMP errors about an earlier reply (its sender went away) can surface on a later receive.
// They concern one datagram, not the socket, so the loop carries on.
bool about_an_earlier_datagram(const error_code& error) {
  return error == asio::error::connection_refused || error == asio::error::host_unreachable ||
         error == asio::error::network_unreachable || error == asio::error::connection_reset;
}

// Bound to every address, Asio's receive cannot tell where a ping was sent; reply_from.hpp
// receives it with recvmsg, and the waiting is done here. Wait first, then read one datagram:
// like Asio's own receive, the loop goes through the scheduler once per datagram, so a flood of
// pings cannot keep it from the stop request (and each wait re-arms epoll, so a datagram that
// came before the wait is not missed). A ping-pong costs B four system calls (epoll_ctl,
// epoll_wait, recvmsg, sendmsg), as many as Asio's path when the ping is not there yet.
task<trace::read_result> receive_on_every_address(ponger& self, udp::endpoint& sender) {
  const int fd = self.socket.native_handle();
  for (;;) {
    if (trace::enabled()) trace::note(fd, "receive", "waiting for readiness");
    auto [error] =
        co_await self.socket.async_wait(udp_socket::wait_read, asio::as_tuple(use_task));
    if (error) co_return trace::read_result{error, 0};
    const std::size_t size = receive_with_reply_address(self.socket, asio::buffer(self.datagram),
                                                        sender, self.reply_from, error);
    // would_block: wait again (the readiness was for a datagram already read, say).
    if (error == asio::error::would_block) continue;
    if (trace::enabled()) {
      trace::note(fd, "receive",
                  error ? "recvmsg failed: " + error.message()
                        : fmt::format("recvmsg: {} bytes, sent to {}", size,
                                      self.reply_from.to_string()));
    }
    co_return trace::read_result{error, size};
  }
}

// The reply to a request received by receive_on_every_address, from the address it was sent to.
task<error_code> reply_on_every_address(ponger& self, std::span<const char> reply,
                                        const udp::endpoint& sender) {
  for (;;) {
    error_code error;
    send_from(self.socket, asio::buffer(reply), sender, self.reply_from, error);
    if (error != asio::error::would_block) {
      if (trace::enabled()) {
        trace::note(self.socket.native_handle(), "send",
                    error ? "sendmsg failed: " + error.message()
                          : fmt::format("sendmsg: {} bytes from {}", reply.size(),
                                        self.reply_from.to_string()));
      }
      co_return error;
    }
    // The kernel's send buffer is full: wait for room, as async_send_to does on the plain path.
    std::tie(error) =
        co_await self.socket.async_wait(udp_socket::wait_write, asio::as_tuple(use_task));
    if (error) co_return error;
  }
}

// One loop drains the socket. A UDP socket is a single queue: more loops on it would only take
// turns on the one thread that runs the socket's io_context (the extra --threads have nothing to
// do here, and results stay identical).
task<> answer_pings(std::shared_ptr<ponger> self) {
  auto& socket = self->socket;
  udp::endpoint sender;
  while (socket.is_open()) {
    error_code error;
    std::size_t size = 0;
    if (self->every_address) {
      std::tie(error, size) = co_await receive_on_every_address(*self, sender);
    } else if (trace::enabled()) {
      std::tie(error, size) =
          co_await trace::receive_from(socket, asio::buffer(self->datagram), sender);
    } else {
      std::tie(error, size) = co_await socket.async_receive_from(
          asio::buffer(self->datagram), sender, asio::as_tuple(use_task));
    }
    if (error == asio::error::operation_aborted || !socket.is_open()) break;
    if (error) {
      if (!about_an_earlier_datagram(error)) throw boost::system::system_error(error, "receive");
      spdlog::debug("receive: {}", error.message());
      continue;
    }
    const std::span<char> request(self->datagram.data(), size);
    if (!turn_into_pong(request)) {
      ++self->ignored;
      spdlog::debug("ignored {} bytes from {}: not a ping", size, sender);
      continue;
    }
    // The reply is the request's own bytes: never larger. Sent at once, without a round trip
    // through the scheduler; only when the kernel's buffer is full does the loop wait for room.
    if (self->every_address) {
      error = co_await reply_on_every_address(*self, request, sender);
    } else if (trace::enabled()) {
      std::tie(error, std::ignore) = co_await trace::send_to(socket, asio::buffer(request), sender);
    } else {
      socket.send_to(asio::buffer(request), sender, 0, error);
    }
    if (error == asio::error::would_block) {
      std::tie(error, std::ignore) = co_await socket.async_send_to(
          asio::buffer(request), sender, asio::as_tuple(use_task));
    }
    if (error) {
      spdlog::debug("reply to {}: {}", sender, error.message());
      continue;
    }
    ++self->answered;
  }
  spdlog::info("answered {} pings, ignored {} other datagrams", self->answered, self->ignored);
}

}  // namespace

void start_ponging(shutdown_coordinator& shutdown, udp_socket socket) {
  auto state = std::make_shared<ponger>(std::move(socket));
  const auto executor = state->socket.get_executor();
  state->membership = join_on(shutdown, executor, std::weak_ptr(state), [](ponger& s) {
    error_code ignored;
    s.socket.close(ignored);  // a datagram server has nothing to drain: stop receiving
  });
  spawn(executor, answer_pings(std::move(state)), "ponger");
}

}  // namespace netlab::pingpong
