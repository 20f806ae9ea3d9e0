// Listening: bind, announce, accept until shutdown, survive running out of descriptors.
#pragma once

#include "executor.hpp"
#include "runtime.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <string>

namespace netlab {

// How long the accept loop waits before trying again when the process is out of descriptors
// (or the kernel of buffers): long enough not to spin, short enough to notice freed slots soon.
inline constexpr std::chrono::milliseconds accept_retry_delay{100};

// Out of descriptors: the warning, at most once per this interval (later episodes at debug level).
inline constexpr std::chrono::seconds exhaustion_report_interval{10};

// Binds `bind:port` on `io` (which one thread runs: see runtime.hpp), listens, and prints
// `listening on ADDR:PORT` (the real port when `port` is 0). Throws startup_error naming the
// address and the reason.
tcp_acceptor open_listener(boost::asio::io_context& io, const std::string& bind,
                           std::uint16_t port);

// Called once per accepted connection, on no particular thread; the socket runs on one thread's
// io_context (its handlers never run in parallel), with TCP_NODELAY already set. The peer is the
// address accept() reported: a session asking the socket later gets an error once the client has
// reset (ENOTCONN), so the accepted address is the one to name the client by.
using session_factory =
    std::function<void(tcp_socket, const boost::asio::ip::tcp::endpoint& peer)>;

// Starts the accept loop as a member of the runtime's shutdown: a stop request closes the
// acceptor, and the loop ends.
void start_accepting(runtime& rt, tcp_acceptor acceptor, session_factory make_session);

// ---- With a connection cap (--max-connections) ----------------------------------------------

namespace detail {
struct accept_state;
}

// One place under the cap. The accept loop takes one before each accept and hands it over with
// the socket; the session keeps it while the connection is open. Destroying it gives the place
// back and, if the accept loop is waiting at the cap, wakes it. Move-only; empty once moved from.
class connection_slot {
 public:
  connection_slot() = default;
  explicit connection_slot(std::shared_ptr<detail::accept_state> owner);  // the listener's
  connection_slot(connection_slot&&) noexcept = default;
  connection_slot& operator=(connection_slot&& other) noexcept;
  connection_slot(const connection_slot&) = delete;
  connection_slot& operator=(const connection_slot&) = delete;
  ~connection_slot();

  explicit operator bool() const { return owner_ != nullptr; }

 private:
  void give_back();
  std::shared_ptr<detail::accept_state> owner_;
};

struct accepted_connection {
  tcp_socket socket;                    // on one thread's io_context, TCP_NODELAY set
  boost::asio::ip::tcp::endpoint peer;  // as accept() reported it: known even after a reset
  connection_slot slot;                 // keep it for as long as the socket is open
};

inline constexpr std::size_t no_connection_cap = std::numeric_limits<std::size_t>::max();

// Descriptors kept free for the process itself when the cap comes from the descriptor limit:
// stdin/out/err, the first io_context's epoll, eventfd and timerfd, the signal pipe and the
// acceptor take 9; the rest is room for what a library opens now and then (a resolver, a log
// file). Every further runtime thread adds descriptors_per_thread (its io_context's own three).
inline constexpr std::size_t descriptor_reserve = 16;
inline constexpr std::size_t descriptors_per_thread = 3;

// The default for --max-connections with `threads` runtime threads: the soft RLIMIT_NOFILE less
// the reserve (at least 1; no_connection_cap when unlimited). Each connection costs one
// descriptor, its socket.
std::size_t descriptor_connection_limit(unsigned threads);

// Like start_accepting above, but at most `max_connections` connections are open at once: at
// the cap the loop stops accepting (new connections wait in the kernel's listen backlog, their
// handshake already done) until a session gives its slot back. Logged at the first time.
void start_accepting(runtime& rt, tcp_acceptor acceptor, std::size_t max_connections,
                     std::function<void(accepted_connection)> make_session);

}  // namespace netlab
