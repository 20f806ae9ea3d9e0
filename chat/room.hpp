// The queued design's shared state: the room (who is connected, under which name) and each
// client's outbox. No sockets here: the session (queued.cpp) drains an outbox into its socket.
//
// Locking, in one rule: every lock here is held for a few pointer pushes and never across a
// suspension point, so a broadcaster never waits for any client. The room's mutex may be held
// while an outbox's mutex is taken (broadcast), never the other way round.
#pragma once

#include "protocol.hpp"

#include "common/executor.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace netlab::chat {

// The default of --outbox: lines queued for one client and not yet taken by its writer; one
// more and the client is too slow (the contract's rule). Each queued message (a line, or the
// lines of one turn of a sender's reader) costs its outbox a pointer; the bytes are shared with
// every other recipient. Bursts are normal: when many clients send at once, a reading client's
// writer can fall thousands of lines behind only because the CPU ran the readers first (a sender
// pauses for a writer that is behind, but senders on other threads may each push a turn before
// they see it): a room with many busy senders wants a larger --outbox.
inline constexpr std::size_t default_outbox = 256;

// One client's queue of messages to write. Any thread pushes (the broadcasters run on their own
// clients' threads); only the client's writer takes.
class outbox {
 public:
  // `on_overflow` runs once, on the pushing thread, when a push finds the outbox full: it must
  // not block (post to the client's executor). Called without any outbox lock held, but possibly
  // with the room's lock held.
  outbox(const io_executor& executor, std::size_t limit, std::function<void()> on_overflow);

  // Queues `m`, which holds `lines` lines, unless the outbox is closed or overflowed; never waits.
  // False when dropped. The limit counts lines, whether they come one per message or grouped.
  bool push(message m, std::size_t lines = 1);

  // More than half the limit is queued while the writer is not waiting for its client: the
  // writer has not run yet (its thread is busy, or has no core). A sender pauses for such a
  // writer before it pushes more (queued.cpp): a client that reads must not be dropped only
  // because the CPU ran the sender first. A client that does not read is not waited for: its
  // writer waits for room, and the limit decides.
  bool writer_behind();

  // Set by the writer while its write waits for the client to make room (write_all's flag).
  std::atomic<bool>& writer_waiting_for_room() { return writer_waiting_for_room_; }

  // What the writer finds: the messages queued since its last take (moved into `batch`), and
  // whether the stream ended (closed: write them, then stop) or overflowed (stop now).
  struct state {
    bool closed = false;
    bool overflowed = false;
  };
  state take(std::vector<message>& batch);

  // Waits until something was pushed, the outbox closed or overflowed (may wake spuriously).
  task<> wait();

  // End of stream: pushes are refused from now on; the writer writes what is queued, then stops.
  void close();

 private:
  void ring();

  std::mutex mutex_;  // guards the four below; held for a push or a swap, never across co_await
  std::deque<message> queue_;
  std::size_t queued_lines_ = 0;  // lines in queue_ (a message may hold several)
  bool closed_ = false;
  bool overflowed_ = false;
  const std::size_t limit_;
  std::function<void()> on_overflow_;
  std::atomic<bool> writer_waiting_for_room_{false};
  // The writer's doorbell. Capacity 1: a ring while one is pending changes nothing (try_send
  // fails, harmlessly), so pushers never wait. A concurrent_channel, because pushers run on
  // other threads. It is never cancelled or closed (Boost 1.81: try_send fails after cancel).
  concurrent_channel<void(boost::system::error_code)> doorbell_;
};

// Who is connected: name -> outbox. Every notice and chat line goes through here.
class room {
 public:
  // Adds a client under `name` and tells the others `* NAME joined`. False if the name is taken.
  bool join(const std::string& name, std::shared_ptr<outbox> box);

  // Removes `name` and, if `announce`, tells the others `* NAME left`.
  void leave(const std::string& name, bool announce = true);

  // Renames `from` to `to` and tells everyone (the renamed client too) `* FROM is now TO`.
  // False if `to` is taken by someone else.
  bool rename(const std::string& from, const std::string& to);

  // Pushes `m`, which holds `lines` lines, to every client but `sender` (empty: to everyone).
  // Adds to `behind`, if given, each outbox whose writer is behind after the push.
  void broadcast(const std::string& sender, const message& m, std::size_t lines = 1,
                 std::vector<std::shared_ptr<outbox>>* behind = nullptr);

  std::vector<std::string> names();

 private:
  void broadcast_locked(const std::string& sender, const message& m, std::size_t lines = 1,
                        std::vector<std::shared_ptr<outbox>>* behind = nullptr);

  std::mutex mutex_;  // guards clients_; never held across a suspension point
  std::map<std::string, std::shared_ptr<outbox>> clients_;
};

}  // namespace netlab::chat
