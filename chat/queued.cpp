// The queued design: per client a reader, a writer and an outbox.
//
//   socket --read--> reader --room.broadcast: push a pointer into every other outbox--+
//                                                                                      |
//   socket <--one gathered write-- writer <--take everything-- this client's outbox <--+
//
// The reader never waits for another client: pushing is a few pointer moves under a mutex. The
// writer is the only one that waits for this client's socket. When this client falls more than
// --outbox lines behind, the next push marks it overflowed and it is disconnected.
#include "server.hpp"

#include "common/idle.hpp"
#include "common/log.hpp"
#include "common/spawn.hpp"
#include "common/write.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace netlab::chat {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp_socket socket, const tcp::endpoint& peer, std::shared_ptr<room> chat_room,
          const options& opts)
      : socket_(std::move(socket)), peer_(peer), name_(fmt::format("{}", peer)),
        room_(std::move(chat_room)), input_(opts.max_line),
        max_line_(opts.max_line), outbox_limit_(opts.outbox),
        lines_per_turn_(std::clamp<std::size_t>(opts.outbox / 2, 1, max_lines_per_turn)),
        idle_(socket_.get_executor(), opts.idle_timeout) {
    input_.report_activity_to(idle_);
    idle_.watch_sending_on(socket_);
  }

  void start(shutdown_coordinator& shutdown) {
    // The overflow callback runs on a broadcaster's thread: it only posts to this session's executor.
    outbox_ = std::make_shared<outbox>(socket_.get_executor(), outbox_limit_,
                                       [weak = weak_from_this()] {
                                         if (auto self = weak.lock()) {
                                           asio::post(self->socket_.get_executor(),
                                                      [self] { self->disconnect_slow(); });
                                         }
                                       });
    membership_ = join_on(shutdown, socket_.get_executor(), weak_from_this(),
                          [](session& self) { self.stop_for_shutdown(); });
    spawn(socket_.get_executor(), run(shared_from_this()),
          [peer = peer_] { return fmt::format("chat {}", peer); });
  }

 private:
  static task<> run(std::shared_ptr<session> self) {
    using namespace asio::experimental::awaitable_operators;
    const out_of_the_room_at_exit leave_for_sure{*self};
    spdlog::debug("{} connected", self->peer_);
    co_await self->idle_.run(self->reader() && self->writer(), [session = self.get()] {
      session->close_idle();
    });
    if (self->stopped_early_ && !self->too_slow_) {
      co_await discard_input(self->socket_, close_linger);
    }
    spdlog::debug("{} closed", self->peer_);
  }

  // reader() leaves the room on its way out. A forced stop (a second Ctrl-C, the shutdown's time
  // limit) or an exception destroys it before it gets there, and the room would keep this
  // client's name taken and its outbox, whose doorbell belongs to this thread's io_context, alive
  // after it. This guard in run()'s frame takes it off the list then.
  struct out_of_the_room_at_exit {
    session& s;
    ~out_of_the_room_at_exit() {
      if (s.in_room_) s.room_->leave(s.name_, /*announce=*/false);
    }
  };

  // Reads lines and acts on them; on its way out, leaves the room and ends the outbox, so the
  // writer writes what is queued and stops.
  task<> reader() {
    if (!room_->join(name_, outbox_)) {
      // Only possible if two connections shared an address: refuse rather than mix them up.
      outbox_->push(error_line(name_taken_reply(name_)));
      outbox_->close();
      co_return;
    }
    in_room_ = true;
    for (bool more = true; more;) {
      if (!behind_.empty()) co_await wait_for_writers_behind();
      // The lines of one read are handled without suspending; their chat lines are formatted
      // into one group, sent to the room as one message (see `group_`).
      if (auto line = input_.take_line_view()) {
        more = handle(strip_line_ending(*line));
        // Fairness: one read may bring hundreds of lines, and handing them out does not
        // suspend. Without a yield, a burst from every sender fills every outbox before any
        // writer runs, and clients that do read would be dropped as too slow. Yielding every
        // `lines_per_turn_` lines lets writers drain in between; yielding after every line cost
        // one scheduler round per line (chat ran 0.9 M deliveries/s instead of 1.7 M).
        if (more && input_.buffered() > 0 && ++lines_since_yield_ == lines_per_turn_) {
          lines_since_yield_ = 0;
          send_group();
          co_await asio::post(socket_.get_executor(), use_task);
        }
        continue;
      }
      send_group();  // nothing more buffered: the others get these lines before we wait
      lines_since_yield_ = 0;
      auto result = co_await input_.read_until_line(socket_);
      switch (result.status) {
        case line_status::complete:
          break;  // buffered: the loop's first step takes it, with the lines that came with it
        case line_status::unterminated:
          more = handle(strip_line_ending(result.text));
          break;
        case line_status::too_long:
          spdlog::info("{} sent a line longer than {} bytes: closing", peer_, max_line_);
          outbox_->push(error_line(fmt::format("line longer than {} bytes", max_line_)));
          stopped_early_ = true;
          more = false;
          break;
        case line_status::failed:
          spdlog::debug("{} read: {}", peer_, result.error.message());
          more = false;
          break;
        case line_status::end_of_input:
          log_unfinished_line(input_, peer_, "relayed");  // stopped: shutdown, idle, too slow
          more = false;
          break;
      }
    }
    send_group();
    if (idle_closed_) outbox_->push(error_line(idle_reply));
    // A departure the server's stop caused is not announced: every client is leaving at once,
    // and with C clients, C - 1 notices each would reach every outbox before any writer ran
    // (past --outbox, they would drop readers who did nothing wrong as too slow).
    room_->leave(name_, /*announce=*/!server_stopping_);
    in_room_ = false;
    outbox_->close();
  }

  // The reader's fairness step (see reader()): lines handed out between two yields, 16 at most.
  // With a small --outbox, half of it: a writer that wakes lets this reader run one more turn
  // before it takes (see writer()), so two turns must fit in an outbox, or a single burst from
  // one sender would drop a client that is reading (--outbox 8 and 9 lines sent at once did).
  static constexpr std::size_t max_lines_per_turn = 16;
  std::size_t lines_since_yield_ = 0;  // the reader's own count

  // The pause before a sender's next turn while a recipient's writer is behind (see
  // outbox::writer_behind): with more threads than one, that writer's thread may be busy or
  // without a core while this reader hands out a burst, and passing --outbox would drop a client
  // that reads. Checked every writer_poll, for at most writer_patience: a writer that has not
  // run by then is not waited for any longer (the limit decides), so no client can stall the
  // others for long. The shutdown and the others' stops end the pause at the next check.
  static constexpr std::chrono::microseconds writer_poll{200};
  static constexpr std::chrono::milliseconds writer_patience{250};
  task<> wait_for_writers_behind() {
    const auto give_up = std::chrono::steady_clock::now() + writer_patience;
    for (const auto& box : behind_) {
      while (box->writer_behind() && !stopped_early_ && std::chrono::steady_clock::now() < give_up) {
        pause_.expires_after(writer_poll);
        co_await pause_.async_wait(asio::as_tuple(use_task));
      }
    }
    behind_.clear();
  }

  // One line from the client; false when it asked to quit.
  bool handle(std::string_view line) {
    const auto cmd = parse_line(line);
    if (cmd.kind == command_kind::message) {
      add_to_group(cmd.argument);
      return true;
    }
    send_group();  // a command's reply or notice comes after the lines sent before it
    switch (cmd.kind) {
      case command_kind::message:
        break;  // handled above
      case command_kind::nick: {
        const std::string wanted(cmd.argument);
        if (!valid_name(wanted)) {
          outbox_->push(error_line(invalid_name_reply));
        } else if (!room_->rename(name_, wanted)) {
          outbox_->push(error_line(name_taken_reply(wanted)));
        } else {
          name_ = wanted;  // only this reader changes it: no lock needed for its own copy
        }
        return true;
      }
      case command_kind::who:
        outbox_->push(notice(who_reply(room_->names())));
        return true;
      case command_kind::quit:
        stopped_early_ = true;
        return false;
      case command_kind::unknown:
        outbox_->push(error_line(unknown_command_reply));
        return true;
    }
    return true;
  }

  // Chat lines read together go to the room as one message: one buffer shared by every
  // recipient, one push per outbox, one pointer per outbox to take and write. Per line, they
  // would cost every recipient a lock, a reference count and a buffer in the write; grouped, a
  // read of 16 lines costs that once. The outbox still counts lines, so a group may hold at most
  // --outbox lines (and lines_per_turn_, the most one turn of the reader hands out).
  void add_to_group(std::string_view text) {
    if (group_lines_ == 0) {
      group_.reserve(input_.buffered() + lines_per_turn_ * (name_.size() + 3));
    }
    append_chat_line(group_, name_, text);
    if (++group_lines_ == outbox_limit_) send_group();
  }

  void send_group() {
    if (group_lines_ == 0) return;
    room_->broadcast(name_, std::make_shared<const std::string>(std::move(group_)), group_lines_,
                     &behind_);
    group_.clear();  // moved from: valid, and now surely empty
    group_lines_ = 0;
  }

  // Takes everything queued and writes it with one gathered write, until the outbox ends.
  task<> writer() {
    std::vector<message> batch;
    std::vector<asio::const_buffer> buffers;
    for (;;) {
      batch.clear();
      const auto state = outbox_->take(batch);
      if (state.overflowed) break;
      if (batch.empty()) {
        if (state.closed) {
          // Every line written: half-close, so the client reads EOF after the last byte.
          error_code ignored;
          socket_.shutdown(tcp::socket::shutdown_send, ignored);
          co_return;
        }
        co_await outbox_->wait();
        // Let the readers that are running now finish their batch before this writer takes:
        // one write then carries many lines (a system call costs more than a line's work).
        // Not with --outbox 1: a reader's turn is one line, and a second one would not fit.
        if (outbox_limit_ > 1) co_await asio::post(socket_.get_executor(), use_task);
        continue;
      }
      buffers.clear();
      for (const auto& m : batch) buffers.push_back(asio::buffer(*m));
      writing_ = true;
      const auto error = co_await write_all(socket_, buffers, &outbox_->writer_waiting_for_room());
      writing_ = false;
      idle_.activity();
      if (error) {
        if (too_slow_) {  // disconnect_slow() cancelled this write, perhaps in the middle of a line
          co_await say_too_slow(rest_of_cut_line(batch, buffers));
          co_return;
        }
        // The client is gone (reset, broken pipe): stop reading and refuse further pushes.
        spdlog::debug("{} write: {}", peer_, error.message());
        outbox_->close();
        stop_reading();
        co_return;
      }
    }
    co_await say_too_slow({});
  }

  // After a write that stopped part way: the bytes that finish the line it cut (none if it
  // stopped between lines). `unwritten` is what write_all left of the buffers of `batch`.
  static asio::const_buffer rest_of_cut_line(const std::vector<message>& batch,
                                             const std::vector<asio::const_buffer>& unwritten) {
    if (unwritten.empty()) return {};
    const auto* next = static_cast<const char*>(unwritten.front().data());
    const auto& message_cut = *batch[batch.size() - unwritten.size()];
    if (next == message_cut.data() || next[-1] == '\n') return {};  // between two lines
    const auto* end = static_cast<const char*>(std::memchr(next, '\n', unwritten.front().size()));
    if (end == nullptr) return unwritten.front();  // not expected: every message ends a line
    return asio::buffer(next, end - next + 1);
  }

  // Best effort: the client is not reading, so its buffers are full; give the end of a line cut
  // short (if any) and the last line a short grace, then close both directions. Never a notice
  // glued to half a line: the client either gets the whole line and then the notice, or an
  // unterminated line at the end of the stream, which no reader takes for a complete one.
  task<> say_too_slow(asio::const_buffer rest_of_line) {
    using namespace asio::experimental::awaitable_operators;
    spdlog::info("{} ({}) is more than {} lines behind: disconnecting", name_, peer_,
                 outbox_limit_);
    too_slow_ = true;
    stop_reading();
    const auto last = error_line(too_slow_reply);
    const std::array goodbye{rest_of_line, asio::buffer(*last)};
    steady_timer grace(socket_.get_executor(), too_slow_grace);
    co_await (asio::async_write(socket_, goodbye, asio::as_tuple(use_task)) ||
              grace.async_wait(asio::as_tuple(use_task)));
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
  }

  // On this session's thread, after a push found the outbox full: abort the write that is stuck on the
  // client's full buffers, so the writer can give up on it.
  void disconnect_slow() {
    if (too_slow_) return;  // the writer found out first and is already saying goodbye
    too_slow_ = true;
    stop_reading();
    error_code ignored;
    socket_.cancel(ignored);
  }

  // Shutdown: stop reading; the writer writes what is queued. A write still pending after
  // shutdown_write_grace is to a client that does not read: cancel it, so the stop completes
  // without waiting for the runtime's forced stop.
  void stop_for_shutdown() {
    server_stopping_ = true;
    stop_reading();
    shutdown_timer_.expires_after(shutdown_write_grace);
    shutdown_timer_.async_wait([weak = weak_from_this()](error_code error) {
      auto self = weak.lock();
      if (error || !self || !self->writing_) return;
      spdlog::info("{}: a write pending since the shutdown began: cancelled", self->peer_);
      error_code ignored;
      self->socket_.cancel(ignored);
    });
  }

  // --idle-timeout: nothing read from or written to this client for the limit. The reader stops
  // and says goodbye (idle_reply); a write still pending is to a client that reads nothing:
  // cancel it, so the session can end.
  void close_idle() {
    spdlog::info("{} ({}) idle for {} s: disconnecting", name_, peer_,
                 std::chrono::duration<double>(idle_.limit()).count());
    idle_closed_ = true;
    stop_reading();
    if (writing_) {
      error_code ignored;
      socket_.cancel(ignored);
    }
  }

  // Shutdown, /quit, or the writer giving up: the reader reads nothing more.
  void stop_reading() {
    stopped_early_ = true;
    input_.end_input();
  }

  tcp_socket socket_;            // shared by reader and writer, on this session's thread
  tcp::endpoint peer_;           // for log lines and the default name, as accept() reported it
  std::string name_;             // the reader's copy of our name in the room
  bool in_room_ = false;         // between the reader's join and its leave
  std::shared_ptr<room> room_;   // shared by every session; outlives them all
  std::shared_ptr<outbox> outbox_;  // pushed to by every broadcaster, drained by our writer
  line_reader input_;
  std::size_t max_line_;
  std::size_t outbox_limit_;
  std::size_t lines_per_turn_;  // see max_lines_per_turn
  std::string group_;            // chat lines read but not yet sent to the room (add_to_group)
  std::size_t group_lines_ = 0;  // how many lines group_ holds
  std::vector<std::shared_ptr<outbox>> behind_;  // recipients whose writer is behind
  steady_timer pause_{socket_.get_executor()};  // wait_for_writers_behind's
  bool stopped_early_ = false;   // reading stopped before the client's EOF: close with a linger
  bool server_stopping_ = false;  // the server's shutdown stopped the reader
  bool too_slow_ = false;        // the outbox overflowed: we are dropping this client
  bool writing_ = false;         // the writer's write is in progress
  bool idle_closed_ = false;     // the idle watchdog stopped the reader
  idle_watch idle_;              // --idle-timeout's watchdog; told by input_ and the writer
  steady_timer shutdown_timer_{socket_.get_executor()};  // stop_for_shutdown's
  shutdown_coordinator::membership membership_;  // leaves when the session is destroyed
};

}  // namespace

void start_queued_session(tcp_socket socket, const tcp::endpoint& peer,
                          std::shared_ptr<room> chat_room, const options& opts,
                          shutdown_coordinator& shutdown) {
  std::make_shared<session>(std::move(socket), peer, std::move(chat_room), opts)->start(shutdown);
}

}  // namespace netlab::chat
