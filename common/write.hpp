// Writing a whole buffer sequence to a TCP socket, the cheap way first.
//
// `asio::async_write` already tries the send at once, but even when the kernel takes every byte
// its completion goes through the scheduler: one more handler, one more coroutine resumption,
// per write. On loopback the socket's send buffer almost always has room, so write_all sends
// straight away with a non-blocking write and waits on the reactor only for what did not fit.
#pragma once

#include "executor.hpp"

#include <boost/asio/buffer.hpp>

#include <atomic>
#include <vector>

namespace netlab {

// Writes every byte of `buffers`, which it consumes: on return they hold what was not written
// (nothing, on success). Returns the error that stopped it, or success. Puts `socket` in
// non-blocking mode; its other operations must be asynchronous (they are, everywhere in netlab).
// `waiting_for_room`, if given, is true while the write waits for the client to make room (the
// kernel's buffer for it is full), for other threads to read: chat's senders tell that way a
// client that does not read from one whose writer has simply not run yet.
task<boost::system::error_code> write_all(tcp_socket& socket,
                                          std::vector<boost::asio::const_buffer>& buffers,
                                          std::atomic<bool>* waiting_for_room = nullptr);

// The bytes the kernel still holds for `socket`: written but not yet acknowledged by the client
// (or not yet sent), its FIN included. -1 when it cannot say (a closed socket).
int bytes_not_yet_acknowledged(tcp_socket& socket);

// Drops the first `bytes` of `buffers`: the whole buffers they cover, then the front of the next.
void consume_front(std::vector<boost::asio::const_buffer>& buffers, std::size_t bytes);

}  // namespace netlab
