#include "echo_session.hpp"

#include "common/idle.hpp"
#include "common/log.hpp"
#include "common/spawn.hpp"
#include "common/write.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace netlab::echo {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// What travels from reader to writer: the complete lines of one read as one string (a group),
// and last the end of input, a message whose error code is asio::error::eof (the way Asio itself
// reports the end of a stream). The end is a message of its own because Boost 1.81's
// channel::close() throws away lines still queued.
//
// Why groups: a message per line costs, per line, an allocation, a channel hand-over and a
// buffer in the writer's gathered write; a group costs that once per read (16 lines per read at
// 64 connections × 16 lines in flight: 7% less server CPU per line, measured with bench/run's
// echo workload). The bound stays in lines: the channel holds one group of at most half of
// --queue lines, so the group in the channel and the one waiting to enter it never hold more
// than --queue lines between them, as a channel of --queue single lines would (with --queue 1,
// a group is still one line: two lines, as that channel and its one waiting sender held).
using line_channel = channel<void(error_code, std::string)>;
constexpr std::size_t groups_in_channel = 1;

std::size_t max_lines_per_group(std::size_t queue) { return std::max<std::size_t>(1, queue / 2); }

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp_socket socket, const tcp::endpoint& peer, const options& limits)
      : socket_(std::move(socket)),
        peer_(peer),
        lines_(socket_.get_executor(), groups_in_channel),
        max_group_(max_lines_per_group(limits.queue)),
        input_(limits.max_line),
        max_line_(limits.max_line),
        idle_(socket_.get_executor(), limits.idle_timeout) {
    input_.report_activity_to(idle_);
    idle_.watch_sending_on(socket_);
  }

  void start(shutdown_coordinator& shutdown) {
    membership_ = join_on(shutdown, socket_.get_executor(), weak_from_this(),
                          [](session& self) { self.stop_reading(); });
    spawn(socket_.get_executor(), run(shared_from_this()),
          [peer = peer_] { return fmt::format("echo {}", peer); });
  }

 private:
  static task<> run(std::shared_ptr<session> self) {
    using namespace asio::experimental::awaitable_operators;
    spdlog::debug("{} connected", self->peer_);
    co_await self->idle_.run(self->reader() && self->writer(), [self = self.get()] {
      self->close_idle();
    });
    // The reader stopped before the client's end of input (a refused line, a shutdown): the
    // client may still be sending, and closing now would reset the connection and destroy the
    // last replies before the client reads them. Linger until it closes, within a limit.
    if (self->stopped_early_) co_await discard_input(self->socket_, close_linger);
    spdlog::debug("{} closed", self->peer_);
  }

  // Reads lines and queues them for the writer, a read's worth at a time; ends the stream with
  // asio::error::eof.
  task<> reader() {
    for (;;) {
      // The complete lines buffered go as one group, queued at once if the channel has room;
      // only then does the reader wait for the writer or the socket.
      if (auto group = input_.take_lines(max_group_)) {
        std::string text(*group);  // the group's one allocation
        if (lines_.try_send(error_code{}, std::move(text))) continue;  // untouched if it fails
        if (!co_await queue(std::move(text))) co_return;  // full: wait for room
        continue;
      }
      auto result = co_await input_.read_until_line(socket_);
      if (result.status == line_status::complete) continue;  // buffered: the group above takes it
      if (result.status == line_status::unterminated) {
        if (!co_await queue(std::move(result.text))) co_return;  // the writer is gone
        continue;
      }
      if (result.status == line_status::too_long) {
        // Policy: refuse the line, tell the client why, close. The rest of the stream cannot
        // be framed again without reading the whole oversize line, so it is dropped.
        spdlog::info("{} sent a line longer than {} bytes: closing", peer_, max_line_);
        stopped_early_ = true;
        if (!co_await queue(fmt::format("error: line longer than {} bytes\n", max_line_))) co_return;
      } else if (result.status == line_status::end_of_input) {
        // Stopped (shutdown) in the middle of a line? Every complete line is echoed.
        log_unfinished_line(input_, peer_, "echoed");
      } else if (result.status == line_status::failed) {
        spdlog::debug("{} read: {}", peer_, result.error.message());
      }
      break;  // too long, end of input, or a read error: no more lines
    }
    co_await queue({}, asio::error::eof);
  }

  // Sends one message to the writer, waiting while the channel is full (the backpressure).
  // False when the writer has stopped and nobody will take it.
  task<bool> queue(std::string lines, error_code status = {}) {
    // Room first, without suspending: a co_await'ed send that has room still completes through
    // the scheduler, one more handler per message. try_send leaves `lines` untouched if it fails.
    if (lines_.try_send(status, std::move(lines))) co_return true;
    auto [error] = co_await lines_.async_send(status, std::move(lines), asio::as_tuple(use_task));
    co_return !error;
  }

  // Takes a group from the channel, then any group already queued, and writes them all with one
  // gathered write: one system call for many lines, with TCP_NODELAY on.
  task<> writer() {
    std::vector<std::string> batch;
    std::vector<asio::const_buffer> buffers;
    bool input_ended = false;
    bool client_gone = false;
    auto take = [&](error_code status, std::string&& line) {
      if (status == asio::error::eof) {
        input_ended = true;
      } else {
        batch.push_back(std::move(line));
      }
    };
    while (!input_ended) {
      auto [status, first] = co_await lines_.async_receive(asio::as_tuple(use_task));
      // Not expected: nobody closes or cancels this channel.
      if (status && status != asio::error::eof) co_return;
      take(status, std::move(first));
      while (!input_ended && lines_.try_receive(take)) {
      }
      if (!client_gone && !batch.empty()) {
        buffers.clear();
        for (const auto& line : batch) buffers.push_back(asio::buffer(line));
        writing_ = true;
        const auto write_error = co_await write_all(socket_, buffers);
        writing_ = false;
        idle_.activity();
        if (write_error) {
          // The client is gone (reset, broken pipe). Stop the reader, and keep taking what it
          // still queues until its end-of-input message, so it never waits on a full channel.
          spdlog::debug("{} write: {}", peer_, write_error.message());
          client_gone = true;
          stop_reading();
        }
      }
      batch.clear();
    }
    if (!client_gone) {
      // Every line has been written: half-close, so the client reads EOF after the last byte.
      error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  // Shutdown, or the writer giving up: the reader reads nothing more, forwards the complete lines
  // it has already read, then ends the stream, so stopping follows the path of a normal goodbye.
  // (Only the read is cancelled: socket.cancel() would also abort a write half done.)
  void stop_reading() {
    stopped_early_ = true;
    input_.end_input();
  }

  // --idle-timeout: nothing read or written for the limit. Stop reading, as a shutdown does; a
  // write still pending is to a client that reads nothing: cancel it, so the session can end.
  void close_idle() {
    spdlog::info("{} idle for {} s: closing", peer_,
                 std::chrono::duration<double>(idle_.limit()).count());
    stop_reading();
    if (writing_) {
      error_code ignored;
      socket_.cancel(ignored);
    }
  }

  tcp_socket socket_;        // shared by reader and writer, on this session's thread
  tcp::endpoint peer_;       // for log lines, as accept() reported it
  line_channel lines_;       // reader -> writer: one group of lines at a time
  std::size_t max_group_;    // the most lines in one group: half of --queue
  line_reader input_;        // the reader's buffer
  std::size_t max_line_;
  bool stopped_early_ = false;  // reading stopped before the client's EOF: close with a linger
  bool writing_ = false;        // the writer's write is in progress
  idle_watch idle_;             // --idle-timeout's watchdog; told by input_ and the writer
  shutdown_coordinator::membership membership_;  // leaves when the session is destroyed
};

}  // namespace

void start_session(tcp_socket socket, const tcp::endpoint& peer, const options& limits,
                   shutdown_coordinator& shutdown) {
  std::make_shared<session>(std::move(socket), peer, limits)->start(shutdown);
}

}  // namespace netlab::echo
