// --trace: the reactor's story, told for every socket operation.
//
// The lesson explains what happens under `stream.read(&mut buf).await`: try the read; if the
// socket has nothing, it "would block", so register interest with the I/O driver and wait for
// epoll; when woken, read again. Asio's async_read_some does exactly that, but inside the library.
// With --trace, netlab walks that path by hand, one step at a time, and logs each step:
//
//   try:  a non-blocking read_some (write_some, accept, receive_from, send_to)
//   would block (EAGAIN):  co_await socket.async_wait(wait_read)  = register and wait for epoll
//   woken:  the reactor says the socket is ready; try again
//   completed with N bytes (or end of stream, or an error)
//
// so what the student reads is what the kernel answered. Without --trace the servers use Asio's
// own asynchronous operations; the only cost is one test of a flag per operation, and a build
// with -DNETLAB_TRACE=OFF removes even that (echo_split/README.md: no measurable difference).
//
// Each line names the socket by its file descriptor, the number epoll, strace and /proc know it
// by, so a connection can be followed through the log.
#pragma once

#include "executor.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <cstddef>
#include <string_view>
#include <tuple>
#include <vector>

#ifndef NETLAB_TRACE
#define NETLAB_TRACE 1
#endif

namespace netlab::trace {

#if NETLAB_TRACE
namespace detail {
inline bool on = false;  // set once, before any thread starts; only read afterwards
}
// Whether --trace was given. Cheap: the hot paths ask it once per operation.
inline bool enabled() noexcept { return detail::on; }
#else
constexpr bool enabled() noexcept { return false; }
#endif

// Turns tracing on (before the runtime starts). False in a build without trace support.
bool enable();

using boost::system::error_code;
using read_result = std::tuple<error_code, std::size_t>;

// The traced counterparts of async_read_some, of netlab::write_all, of async_accept and of the
// UDP receive and send. Same results; a cancellation ends the wait as it would end the plain
// operation: through `cancel` when one is given, else through the awaiting coroutine's own slot,
// or of the socket.
task<read_result> read_some(tcp_socket& socket, boost::asio::mutable_buffer buffer,
                            boost::asio::cancellation_slot cancel = {});
task<error_code> write_all(tcp_socket& socket, std::vector<boost::asio::const_buffer>& buffers);
task<error_code> accept(tcp_acceptor& acceptor, tcp_socket& socket,
                        boost::asio::ip::tcp::endpoint& peer);
task<read_result> receive_from(udp_socket& socket, boost::asio::mutable_buffer buffer,
                               boost::asio::ip::udp::endpoint& sender);
task<read_result> receive(udp_socket& socket, boost::asio::mutable_buffer buffer);
task<read_result> send_to(udp_socket& socket, boost::asio::const_buffer datagram,
                          const boost::asio::ip::udp::endpoint& destination);

// A step that needs no waiting, told in the same words (a ping sent without blocking, say).
void note(int descriptor, std::string_view operation, std::string_view what);

}  // namespace netlab::trace
