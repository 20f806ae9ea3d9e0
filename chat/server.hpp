// The chat server as a library: main.cpp, the demo and the tests start it on an open acceptor.
//
// Two designs, one wire protocol (../shared/CONTRACT.md, "chat"):
//   queued (queued.cpp, the default): each client has an outbox and a writer of its own; a
//          broadcaster only pushes a pointer into every outbox and never waits for anyone.
//   lesson (lesson.cpp): the lesson's design, kept for teaching: the broadcaster holds a lock on
//          the list of writers while it writes to each client in turn.
// The one idea between them: *who waits for a slow client*. In the lesson's design the sender
// does (and with it, behind the lock, everyone); in the queued design only the slow client's own
// writer does, and a client that falls --outbox lines behind is disconnected.
#pragma once

#include "room.hpp"

#include "common/executor.hpp"
#include "common/line_reader.hpp"
#include "common/runtime.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>

namespace netlab::chat {

enum class design { queued, lesson };

struct options {
  chat::design design = design::queued;
  std::size_t outbox = default_outbox;      // lines queued for one client (queued design)
  std::size_t max_line = default_max_line;  // bytes before '\n'
  std::chrono::milliseconds idle_timeout{0};  // --idle-timeout; zero: never
};

// How long, once a shutdown began, the lesson design lets a write to a client wait before it
// cancels it (a client that does not read would otherwise hold the lock until the forced stop).
inline constexpr std::chrono::milliseconds shutdown_write_grace{300};

// How long the queued design tries to write `error: too slow, disconnected` to a client that is
// being dropped for not reading: best effort, its buffers are full by definition.
inline constexpr std::chrono::milliseconds too_slow_grace{200};

// Accepts on `acceptor` until the runtime stops, running each client with `design`.
void start_server(runtime& rt, tcp_acceptor acceptor, const options& opts);

// The two designs' sessions (queued.cpp, lesson.cpp).
void start_queued_session(tcp_socket socket, const boost::asio::ip::tcp::endpoint& peer,
                          std::shared_ptr<room> chat_room, const options& opts,
                          shutdown_coordinator& shutdown);
class lesson_room;
std::shared_ptr<lesson_room> make_lesson_room(boost::asio::io_context& io);
void start_lesson_session(tcp_socket socket, const boost::asio::ip::tcp::endpoint& peer,
                          std::shared_ptr<lesson_room> chat_room, const options& opts,
                          shutdown_coordinator& shutdown);

}  // namespace netlab::chat
