// The lesson's design, kept for teaching: a shared list of writers behind a lock, and every
// broadcaster, holding the lock, writes to each client in turn.
//
//   socket --read--> reader --lock the list--> write to A, then B, then C ... --unlock
//
// In tokio this is `Arc<tokio::sync::Mutex<Vec<OwnedWriteHalf>>>`. Asio has no asynchronous
// mutex; a channel of capacity 1 serves: sending into it takes the lock (and waits while it is
// full), receiving from it gives the lock back.
//
// The flaw it teaches: the write to a client that stopped reading never completes, once the
// kernel's buffers are full, and the broadcaster waits on it *holding the lock*: every other
// reader then waits for the lock, stops reading, and the whole room stalls. The queued design
// (queued.cpp) removes exactly this: the sender pushes into outboxes and never waits.
//
// Simplifications, on purpose: every lesson session runs on the room's io_context, which one
// thread runs (runtime.hpp), so the list, the names and every socket are touched by that thread
// only, whatever --threads is. That also serialises the room's work; the queued design is the one
// built to scale. (No strand is needed for that; and a coroutine on a strand could not be a
// netlab task, whose executor type is the io_context's: common/executor.hpp.)
#include "server.hpp"

#include "common/idle.hpp"
#include "common/log.hpp"
#include "common/spawn.hpp"
#include "common/write.hpp"

#include <boost/asio/as_tuple.hpp>

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace netlab::chat {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

class lesson_session;

class lesson_room {
 public:
  explicit lesson_room(asio::io_context& io) : executor_(io.get_executor()), lock_(executor_, 1) {}

  // The runtime's io_context (executor_.context()): its one thread runs every lesson session and
  // its I/O.
  io_executor executor_;
  // The asynchronous lock: full = held. Used on the room's thread only (a plain channel suffices).
  channel<void(error_code)> lock_;
  // The list of writers; changed, and written to, only while holding lock_.
  std::vector<std::shared_ptr<lesson_session>> writers_;
};

namespace {

// The lock, held from construction (after `co_await acquire`) to destruction.
class held_lock {
 public:
  explicit held_lock(lesson_room& r) : room_(r) {}
  held_lock(const held_lock&) = delete;
  held_lock& operator=(const held_lock&) = delete;
  ~held_lock() { room_.lock_.try_receive([](error_code) {}); }

 private:
  lesson_room& room_;
};

task<> acquire(lesson_room& r) {
  co_await r.lock_.async_send(error_code{}, asio::as_tuple(use_task));
}

}  // namespace

class lesson_session : public std::enable_shared_from_this<lesson_session> {
 public:
  lesson_session(tcp_socket socket, const tcp::endpoint& peer,
                 std::shared_ptr<lesson_room> chat_room, const options& opts)
      : socket_(std::move(socket)), peer_(peer), name_(fmt::format("{}", peer)),
        room_(std::move(chat_room)), input_(opts.max_line),
        max_line_(opts.max_line), idle_(room_->executor_, opts.idle_timeout) {
    input_.report_activity_to(idle_);
    idle_.watch_sending_on(socket_);
  }

  void start(shutdown_coordinator& shutdown) {
    membership_ = join_on(shutdown, room_->executor_, weak_from_this(),
                          [](lesson_session& self) { self.stop_for_shutdown(); });
    spawn(room_->executor_, run(shared_from_this()),
          [peer = peer_] { return fmt::format("chat {}", peer); });
  }

 private:
  static task<> run(std::shared_ptr<lesson_session> self) {
    const off_the_list_at_exit leave_for_sure(*self);
    spdlog::debug("{} connected", self->peer_);
    co_await self->idle_.run(self->reader(), [session = self.get()] { session->close_idle(); });
    if (!self->gone_) {
      error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
      if (self->stopped_early_) co_await discard_input(self->socket_, close_linger);
    }
    spdlog::debug("{} closed", self->peer_);
  }

  // The list holds each session and each session holds the room: a cycle. reader() takes itself
  // off the list on its way out; but a forced stop (a second Ctrl-C, the shutdown's time limit)
  // destroys the coroutines without running the rest of reader(), and the cycle would keep every
  // session, its buffers and the room alive for ever. This guard in run()'s frame breaks it
  // however run() ends. (No lock needed: it runs on the room's thread, or once nothing runs.)
  struct off_the_list_at_exit {
    lesson_session& session;
    ~off_the_list_at_exit() {
      std::erase_if(session.room_->writers_, [this](const auto& w) { return w.get() == &session; });
    }
  };

  task<> reader() {
    {
      co_await acquire(*room_);
      held_lock lock(*room_);
      room_->writers_.push_back(shared_from_this());
      co_await write_to_others(notice(name_ + " joined"));
    }
    for (bool more = true; more;) {
      auto result = co_await input_.read_line(socket_);
      switch (result.status) {
        case line_status::complete:
        case line_status::unterminated:
          more = co_await handle(std::string(strip_line_ending(result.text)));
          break;
        case line_status::too_long: {
          spdlog::info("{} sent a line longer than {} bytes: closing", peer_, max_line_);
          co_await acquire(*room_);
          held_lock lock(*room_);
          co_await write_to(*this, error_line(fmt::format("line longer than {} bytes", max_line_)));
          stopped_early_ = true;
          more = false;
          break;
        }
        case line_status::end_of_input:
          log_unfinished_line(input_, peer_, "relayed");  // stopped: shutdown, idle
          more = false;
          break;
        case line_status::failed:
          more = false;
          break;
      }
    }
    co_await acquire(*room_);
    held_lock lock(*room_);
    if (idle_closed_) co_await write_to(*this, error_line(idle_reply));
    std::erase(room_->writers_, shared_from_this());
    // A departure the server's stop caused is not announced (queued.cpp says why): here the
    // C - 1 notices to each of C clients would be C * (C - 1) writes under the lock.
    if (!server_stopping_) co_await write_to_others(notice(name_ + " left"));
  }

  // Takes the lock for the whole of each command, as the lesson does.
  task<bool> handle(std::string line) {
    const auto cmd = parse_line(line);
    if (cmd.kind == command_kind::quit) {
      stopped_early_ = true;
      co_return false;
    }
    co_await acquire(*room_);
    held_lock lock(*room_);
    switch (cmd.kind) {
      case command_kind::message:
        co_await write_to_others(chat_line(name_, cmd.argument));
        break;
      case command_kind::nick: {
        const std::string wanted(cmd.argument);
        const bool taken =
            std::any_of(room_->writers_.begin(), room_->writers_.end(),
                        [&](const auto& w) { return w.get() != this && w->name_ == wanted; });
        if (!valid_name(wanted)) {
          co_await write_to(*this, error_line(invalid_name_reply));
        } else if (taken) {
          co_await write_to(*this, error_line(name_taken_reply(wanted)));
        } else if (wanted != name_) {
          auto renamed = notice(name_ + " is now " + wanted);
          name_ = wanted;
          for (const auto& w : std::vector(room_->writers_)) co_await write_to(*w, renamed);
        }
        break;
      }
      case command_kind::who: {
        std::vector<std::string> names;
        for (const auto& w : room_->writers_) names.push_back(w->name_);
        co_await write_to(*this, notice(who_reply(names)));
        break;
      }
      case command_kind::unknown:
        co_await write_to(*this, error_line(unknown_command_reply));
        break;
      case command_kind::quit:
        break;
    }
    co_return true;
  }

  // THE STALL: with the lock held, one write after another; a client that does not read makes
  // its write, and so this loop and the lock, wait for as long as it does not read.
  task<> write_to_others(message m) {
    for (const auto& w : std::vector(room_->writers_)) {
      if (w.get() != this) co_await write_to(*w, m);
    }
  }

  static task<> write_to(lesson_session& target, message m) {
    if (target.gone_) co_return;
    ++target.writes_pending_;
    target.outgoing_.assign(1, asio::buffer(*m));
    const auto error = co_await write_all(target.socket_, target.outgoing_);
    --target.writes_pending_;
    target.idle_.activity();
    if (error) {
      spdlog::debug("{} write: {}", target.peer_, error.message());
      target.gone_ = true;
      target.stop_reading();
    }
  }

  void stop_reading() {
    stopped_early_ = true;
    input_.end_input();
  }

  // --idle-timeout: nothing read from or written to this client for the limit. As in the queued
  // design: stop reading, say why, and cancel a write that is stuck on a client that reads nothing.
  void close_idle() {
    spdlog::info("{} ({}) idle for {} s: disconnecting", name_, peer_,
                 std::chrono::duration<double>(idle_.limit()).count());
    idle_closed_ = true;
    stop_reading();
    if (writes_pending_ > 0) {
      error_code ignored;
      socket_.cancel(ignored);
    }
  }

  // Shutdown: stop reading, as in the queued design. But here a client that does not read holds
  // a broadcaster, and through the lock everyone, in a write that will never complete: after
  // shutdown_write_grace, a write still pending to this client is cancelled, so the room can
  // drain and close. (The lesson's code has no such escape; a real server needs one.)
  void stop_for_shutdown() {
    server_stopping_ = true;
    stop_reading();
    shutdown_timer_.expires_after(shutdown_write_grace);
    shutdown_timer_.async_wait([weak = weak_from_this()](error_code error) {
      auto self = weak.lock();
      if (error || !self || self->writes_pending_ == 0) return;
      spdlog::info("{}: a write pending since the shutdown began: cancelled", self->peer_);
      error_code ignored;
      self->socket_.cancel(ignored);
    });
  }

  tcp_socket socket_;  // used only on the room's thread
  tcp::endpoint peer_;  // as accept() reported it
  std::string name_;    // read by others under the lock (/who, uniqueness)
  std::shared_ptr<lesson_room> room_;
  line_reader input_;
  std::size_t max_line_;
  bool stopped_early_ = false;  // reading stopped before the client's EOF: close with a linger
  bool server_stopping_ = false;  // the server's shutdown stopped the reader
  bool gone_ = false;           // a write failed: the client is gone, nobody writes to it again
  int writes_pending_ = 0;      // writes to this client in progress (at most one: the lock)
  std::vector<asio::const_buffer> outgoing_;  // write_to's buffer list, reused (one write at a time)
  bool idle_closed_ = false;    // the idle watchdog stopped the reader
  idle_watch idle_;             // --idle-timeout's watchdog; told by input_ and write_to
  steady_timer shutdown_timer_{room_->executor_};  // stop_for_shutdown's
  shutdown_coordinator::membership membership_;
};

std::shared_ptr<lesson_room> make_lesson_room(asio::io_context& io) {
  return std::make_shared<lesson_room>(io);
}

namespace {

// Every lesson session runs on the room's io_context, so its socket moves there too: its I/O then
// completes on the thread that runs the sessions, instead of hopping between threads on every
// operation (the lesson's design serializes everything on its lock anyway).
tcp_socket on_room_thread(tcp_socket socket, asio::io_context& room_context) {
  error_code error;
  const auto protocol = socket.local_endpoint(error).protocol();
  if (error) return socket;  // already reset: the session will find out on its first read
  const auto descriptor = socket.release(error);
  if (error) return socket;
  tcp_socket moved(room_context);
  moved.assign(protocol, descriptor, error);
  if (error) {
    spdlog::warn("cannot move a connection to the room's thread: {}", error.message());
    ::close(descriptor);
  }
  return moved;
}

}  // namespace

void start_lesson_session(tcp_socket socket, const tcp::endpoint& peer,
                          std::shared_ptr<lesson_room> chat_room, const options& opts,
                          shutdown_coordinator& shutdown) {
  auto& room_context = chat_room->executor_.context();
  std::make_shared<lesson_session>(on_room_thread(std::move(socket), room_context), peer,
                                   std::move(chat_room), opts)
      ->start(shutdown);
}

}  // namespace netlab::chat
