// --idle-timeout: reaping connections that do nothing.
//
// A client that connects and then neither sends nor reads keeps a descriptor and a session for
// ever; with enough of them a server runs out of descriptors. With --idle-timeout SECONDS, a
// connection on which nothing happened for that long - no byte from the client, no write to it
// completed, no byte of a pending write taken by the client (see watch_sending_on) - is closed
// the way a shutdown closes it: the server stops reading, writes back what it has already read,
// and closes. A write still pending then is to a client that reads nothing: it is cancelled. Off
// by default (0), as in the lesson.
//
// Why a watchdog coroutine beside the session and not a timeout on each read: arming and
// cancelling a timer per read costs two timer-queue operations per line; here a read only
// stores the time (and only when the timeout is on), and the watchdog wakes once per period.
// (Asio's cpp20/coroutines/timeout.cpp example uses the same pattern.)
#pragma once

#include "executor.hpp"

#include <chrono>
#include <functional>

namespace netlab {

class idle_watch {
 public:
  using clock = std::chrono::steady_clock;

  // `limit` zero: the watch is off, activity() costs a test and watch() is never needed.
  idle_watch(const io_executor& executor, clock::duration limit);

  bool enabled() const { return limit_ != clock::duration::zero(); }
  clock::duration limit() const { return limit_; }

  // Something happened on the connection (bytes read, a write completed).
  void activity() {
    if (enabled()) last_activity_ = clock::now();
  }

  // A write can stay pending for longer than the limit while the client reads steadily: the
  // kernel's send buffer holds megabytes, and it wakes a waiting write only when much of that
  // has gone. So before calling a connection idle, the watch asks the kernel how many bytes it
  // still holds for `socket` (sent but not acknowledged, or not sent yet): if that count moved
  // during the period, the client is taking them, and the connection is not idle.
  void watch_sending_on(tcp_socket& socket) { sending_ = &socket; }

  // Runs `session` to its end; meanwhile, if the connection stays idle for the limit, calls
  // `on_idle` once, which should make the session end (stop reading, cancel a stuck write).
  // With the watch off, just runs `session`.
  task<> run(task<> session, std::function<void()> on_idle);

 private:
  task<> watch(std::function<void()> on_idle);
  int bytes_held_by_kernel() const;  // -1 when unknown (no socket, or closed)

  clock::duration limit_;
  clock::time_point last_activity_ = clock::now();
  steady_timer timer_;  // the watchdog's; cancelled when the session ends
  tcp_socket* sending_ = nullptr;  // see watch_sending_on()
  int held_at_last_look_ = -1;  // bytes_held_by_kernel() when the watch last found no activity
};

}  // namespace netlab
