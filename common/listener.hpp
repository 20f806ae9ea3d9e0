// Listening: bind, announce, accept until shutdown, survive running out of descriptors.
#pragma once

#include "runtime.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <string>

namespace netlab {

// How long the accept loop waits before trying again when the process is out of descriptors
// (or the kernel of buffers): long enough not to spin, short enough to notice freed slots soon.
inline constexpr std::chrono::milliseconds accept_retry_delay{100};

// Binds `bind:port` on its own strand, listens, and prints `listening on ADDR:PORT` (the real
// port when `port` is 0). Throws startup_error naming the address and the reason.
boost::asio::ip::tcp::acceptor open_listener(boost::asio::io_context& io, const std::string& bind,
                                             std::uint16_t port);

// Called once per accepted connection, on no particular thread; the socket runs on a strand of
// its own, with TCP_NODELAY already set.
using session_factory = std::function<void(boost::asio::ip::tcp::socket)>;

// Starts the accept loop as a member of the runtime's shutdown: a stop request closes the
// acceptor, and the loop ends.
void start_accepting(runtime& rt, boost::asio::ip::tcp::acceptor acceptor,
                     session_factory make_session);

}  // namespace netlab
