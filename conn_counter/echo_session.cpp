#include "echo_session.hpp"

#include "common/log.hpp"
#include "common/spawn.hpp"
#include "common/write.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <vector>

namespace netlab::counter {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

class echo_session : public std::enable_shared_from_this<echo_session> {
 public:
  echo_session(accepted_connection connection, counted_connection counted)
      : slot_(std::move(connection.slot)),
        counted_(std::move(counted)),
        socket_(std::move(connection.socket)),
        peer_(connection.peer) {}

  void start(shutdown_coordinator& shutdown) {
    membership_ = shutdown.join([weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        asio::post(self->socket_.get_executor(), [self] { self->stop_reading(); });
      }
    });
    spawn(socket_.get_executor(), echo(shared_from_this()),
          fmt::format("echo #{} {}", counted_.number(), peer_));
  }

 private:
  // The whole session. `self` keeps the session alive while the coroutine runs; when the
  // coroutine ends (or is destroyed), the last reference goes and the members below are
  // destroyed in reverse order: the socket closes, then the close is counted, then the slot is
  // given back.
  static asio::awaitable<void> echo(std::shared_ptr<echo_session> self) {
    auto& socket = self->socket_;
    // An idle connection costs no buffer: wait until bytes (or the end) arrive, then allocate.
    auto [wait_error] =
        co_await socket.async_wait(tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
    if (wait_error) co_return;
    // Not zero-filled: every byte written back is one just read into it.
    auto buffer = std::make_unique_for_overwrite<char[]>(echo_buffer_size);
    std::vector<asio::const_buffer> echo;  // what write_all sends; reused, so no allocation per read
    for (;;) {
      auto [read_error, bytes_read] = co_await socket.async_read_some(
          asio::buffer(buffer.get(), echo_buffer_size), asio::as_tuple(asio::use_awaitable));
      if (read_error == asio::error::eof) break;
      if (read_error) {
        // A reset is an expected way for a client to leave; the close is counted all the same.
        spdlog::debug("#{} {} read: {}", self->counted_.number(), self->peer_,
                      read_error.message());
        co_return;
      }
      echo.assign(1, asio::buffer(buffer.get(), bytes_read));
      const auto write_error = co_await write_all(socket, echo);
      if (write_error) {
        spdlog::debug("#{} {} write: {}", self->counted_.number(), self->peer_,
                      write_error.message());
        co_return;
      }
    }
    // End of input, and every byte read has been written back: half-close, so the client reads
    // EOF right after the last byte.
    error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
  }

  // Shutdown: the session sees end of input on its next read, as if the client had closed, so
  // stopping follows the path of a normal goodbye.
  void stop_reading() {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_receive, ignored);
  }

  // Declared in this order so they are destroyed in the reverse one: the socket closes first;
  // then `Disconnected` is printed, once the connection really is closed; then the slot is given
  // back (which may let the accept loop take a new connection, now that the descriptor is free);
  // the session leaves the shutdown last, so no `Disconnected` line can follow the total.
  shutdown_coordinator::membership membership_;
  connection_slot slot_;
  counted_connection counted_;
  tcp::socket socket_;  // used only by echo() and stop_reading(), both on its thread
  tcp::endpoint peer_;  // for log lines
};

}  // namespace

void start_echo_session(accepted_connection connection, counted_connection counted,
                        shutdown_coordinator& shutdown) {
  std::make_shared<echo_session>(std::move(connection), std::move(counted))->start(shutdown);
}

}  // namespace netlab::counter
