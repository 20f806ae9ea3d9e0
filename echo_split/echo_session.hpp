// One echo connection: a reader coroutine and a writer coroutine joined by a bounded channel.
//
// This is the Asio counterpart of the lesson's `stream.into_split()` + `mpsc::channel(N)`:
//
//   socket --read--> reader --channel (one group of lines)--> writer --write--> socket
//
// Both coroutines run on the connection's thread (its own io_context), so they share the socket without locks (a
// read and a write may be outstanding at the same time, like tokio's two halves). The channel
// is the backpressure: when the client stops reading, the writer's write waits, the channel
// fills, the reader's send waits, the server stops reading, and TCP flow control stops the
// client. Memory per connection stays bounded whatever the client does.
#pragma once

#include "common/executor.hpp"
#include "common/line_reader.hpp"
#include "common/shutdown.hpp"

#include <chrono>
#include <cstddef>

namespace netlab::echo {

// The defaults of --queue and --max-line.
inline constexpr std::size_t default_queue = 64;  // lines; see the memory bound in the README

struct options {
  std::size_t queue = default_queue;        // lines between reader and writer
  std::size_t max_line = default_max_line;  // bytes before '\n'
  std::chrono::milliseconds idle_timeout{0};  // --idle-timeout; zero: never
};

// Starts a session for `socket` (connected to `peer`, as accept() reported it), as a member of
// `shutdown`: when a stop is requested the session stops reading, writes back what it has read,
// and closes.
void start_session(tcp_socket socket, const boost::asio::ip::tcp::endpoint& peer,
                   const options& limits, shutdown_coordinator& shutdown);

}  // namespace netlab::echo
