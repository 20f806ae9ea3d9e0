// One counted echo connection: every byte that arrives goes straight back, as it comes.
//
// One coroutine, read then write, with one buffer: while a write waits (the client does not
// read), nothing is read, the kernel's receive buffer fills, and TCP flow control stops the
// client. So a connection holds at most `echo_buffer_size` bytes of the server's memory, whatever
// the client does. Reads start in a small buffer inside the session (`first_reads_size`), and
// move to the large one only when a read fills the small one: an idle connection, or one that
// sends a line and leaves (most of them, in this exercise), never allocates the large buffer
// (see the README's figures for 10000 idle connections).
//
// The delta from echo_split: no reader/writer pair and no channel. Echoing bytes needs no framing,
// so the reader has nothing to hand over that the writer could send later; a single loop is the
// whole backpressure.
#pragma once

#include "server.hpp"

#include "common/listener.hpp"
#include "common/shutdown.hpp"

#include <chrono>
#include <cstddef>

namespace netlab::counter {

// Bytes read and not yet written back, at most, per connection: one read's worth. Large enough
// that a busy connection needs few system calls, small enough that ten thousand busy ones fit in
// 160 MiB.
inline constexpr std::size_t echo_buffer_size = 16 * 1024;

// The small buffer every connection starts with: a few lines' worth.
inline constexpr std::size_t first_reads_size = 512;

// Starts the echo session for `connection`, which keeps `counted` (its place in the counts) and
// the connection's slot until it ends. When a stop is requested the session stops reading,
// finishes the write it is doing, half-closes and ends.
// With a non-zero `idle_timeout`, a connection with nothing read or written for that long is
// closed the same way (common/idle.hpp).
void start_echo_session(accepted_connection connection, counted_connection counted,
                        std::chrono::milliseconds idle_timeout, shutdown_coordinator& shutdown);

}  // namespace netlab::counter
