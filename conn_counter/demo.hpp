// --demo: the server and a few scripted clients in one process, so that one terminal shows the
// whole exercise: connections numbered, echoes, every way of leaving counted once.
#pragma once

#include "server.hpp"

#include "common/runtime.hpp"

#include <boost/asio/ip/tcp.hpp>

namespace netlab::counter {

// The server's output under --demo: printed as usual, and the `Disconnected` lines counted. A
// close is counted before its line is printed (the line shows the counts), on the session's own
// thread; the demo waits for the line itself, so that its next step is printed after it.
line_sink demo_output();

// Plays the clients against `counting`, listening at `address`, printing each step; then stops
// `rt`. `counting` prints through demo_output().
void start_demo(runtime& rt, boost::asio::ip::tcp::endpoint address, server& counting);

}  // namespace netlab::counter
