#include "echo_session.hpp"

#include "common/idle.hpp"
#include "common/line_reader.hpp"
#include "common/log.hpp"
#include "common/spawn.hpp"
#include "common/trace.hpp"
#include "common/write.hpp"

#include <boost/asio/as_tuple.hpp>

#include <array>
#include <memory>
#include <span>
#include <tuple>
#include <vector>

namespace netlab::counter {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

class echo_session : public std::enable_shared_from_this<echo_session> {
 public:
  echo_session(accepted_connection connection, counted_connection counted,
               std::chrono::milliseconds idle_timeout)
      : slot_(std::move(connection.slot)),
        counted_(std::move(counted)),
        socket_(std::move(connection.socket)),
        peer_(connection.peer),
        idle_(socket_.get_executor(), idle_timeout) {
    idle_.watch_sending_on(socket_);
  }

  void start(shutdown_coordinator& shutdown) {
    membership_ = join_on(shutdown, socket_.get_executor(), weak_from_this(),
                          [](echo_session& self) { self.stop_reading(); });
    spawn(socket_.get_executor(), run(shared_from_this()),
          [number = counted_.number(), peer = peer_] {
            return fmt::format("echo #{} {}", number, peer);
          });
  }

 private:
  // The session, with its --idle-timeout watchdog when there is one. `self` holds the session
  // (and so the watchdog's timer) until both have ended.
  static task<> run(std::shared_ptr<echo_session> self) {
    auto& idle = self->idle_;
    co_await idle.run(echo(self), [session = self.get()] { session->close_idle(); });
  }

  // The echo itself. `self` keeps the session alive while the coroutine runs; when the
  // coroutine ends (or is destroyed), the last reference goes and the members below are
  // destroyed in reverse order: the socket closes, then the close is counted, then the slot is
  // given back.
  static task<> echo(std::shared_ptr<echo_session> self) {
    auto& socket = self->socket_;
    // Why not wait for the first bytes (async_wait) and then allocate, as echo_split does: that
    // wait costs an epoll_ctl per connection, and a short-lived connection is this exercise's
    // whole workload. The price: an idle connection holds the 512 bytes and a pending read
    // (3.1 KiB resident per idle connection instead of 1.9; see the README).
    std::span<char> space = self->first_reads_;
    std::unique_ptr<char[]> large;  // not zero-filled: every byte written back was read into it
    std::vector<asio::const_buffer> echo;  // what write_all sends; reused, so no allocation per read
    for (;;) {
      error_code read_error;
      std::size_t bytes_read = 0;
      const asio::mutable_buffer into(space.data(), space.size());
      self->reading_ = true;
      if (trace::enabled()) {
        std::tie(read_error, bytes_read) = co_await trace::read_some(socket, into);
      } else {
        std::tie(read_error, bytes_read) =
            co_await socket.async_read_some(into, asio::as_tuple(use_task));
      }
      self->reading_ = false;
      self->idle_.activity();
      if (read_error == asio::error::eof) break;
      if (read_error == asio::error::operation_aborted && self->stopped_) break;
      if (read_error) {
        // A reset is an expected way for a client to leave; the close is counted all the same.
        spdlog::debug("#{} {} read: {}", self->counted_.number(), self->peer_,
                      read_error.message());
        co_return;
      }
      echo.assign(1, asio::buffer(space.data(), bytes_read));
      self->writing_ = true;
      const auto write_error = co_await write_all(socket, echo);
      self->writing_ = false;
      self->idle_.activity();
      if (write_error) {
        spdlog::debug("#{} {} write: {}", self->counted_.number(), self->peer_,
                      write_error.message());
        co_return;
      }
      if (self->stopped_) break;  // what was read is written back; nothing more is read
      if (bytes_read == space.size() && !large) {
        // The client sends more than a line at a time: read in large pieces from now on.
        large = std::make_unique_for_overwrite<char[]>(echo_buffer_size);
        space = {large.get(), echo_buffer_size};
      }
    }
    // Every byte read has been written back. After the client's EOF, nothing more: the socket
    // closes when this coroutine ends, and the close sends the FIN (the client has sent all it
    // will, so nothing unread is left to turn the close into a reset). A shutdown() first would
    // be a system call more per connection, this exercise's whole workload.
    if (!self->stopped_) co_return;
    // Stopped while the client may still be sending: closing with its bytes unread would make the
    // kernel reset the connection and throw away the echo it has not delivered yet. Half-close,
    // so the client reads EOF right after the last byte, then linger until it has them all (or
    // closes), within a limit.
    error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    co_await discard_input(socket, close_linger);
  }

  // Shutdown (and --idle-timeout): the pending read is cancelled, what was read is written back,
  // and the session half-closes, as after the client's goodbye. Not shutdown(SHUT_RD): on Linux
  // reads go on returning what the client still sends after it.
  void stop_reading() {
    stopped_ = true;
    if (reading_) {
      error_code ignored;
      socket_.cancel(ignored);
    }
  }

  // --idle-timeout: nothing read or written for the limit. Stop reading, as a shutdown does; a
  // write still pending is to a client that reads nothing: cancel it, so the session can end.
  void close_idle() {
    spdlog::info("#{} {} idle for {} s: closing", counted_.number(), peer_,
                 std::chrono::duration<double>(idle_.limit()).count());
    stop_reading();
    if (writing_) {
      error_code ignored;
      socket_.cancel(ignored);
    }
  }

  // Declared in this order so they are destroyed in the reverse one: the socket closes first;
  // then `Disconnected` is printed, once the connection really is closed; then the slot is given
  // back (which may let the accept loop take a new connection, now that the descriptor is free);
  // the session leaves the shutdown last, so no `Disconnected` line can follow the total.
  shutdown_coordinator::membership membership_;
  connection_slot slot_;
  counted_connection counted_;
  tcp_socket socket_;  // used only by echo() and stop_reading(), both on its thread
  tcp::endpoint peer_;  // for log lines
  bool reading_ = false;  // echo() is waiting for a read to complete
  bool writing_ = false;  // echo() is waiting for a write to complete
  bool stopped_ = false;  // stop_reading() was called: read no more, linger before closing
  std::array<char, first_reads_size> first_reads_;  // echo()'s buffer until a read fills it
  idle_watch idle_;  // --idle-timeout's watchdog, told by echo() of every read and write
};

}  // namespace

void start_echo_session(accepted_connection connection, counted_connection counted,
                        std::chrono::milliseconds idle_timeout, shutdown_coordinator& shutdown) {
  std::make_shared<echo_session>(std::move(connection), std::move(counted), idle_timeout)
      ->start(shutdown);
}

}  // namespace netlab::counter
