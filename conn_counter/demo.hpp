// --demo: the server and a few scripted clients in one process, so that one terminal shows the
// whole exercise: connections numbered, echoes, every way of leaving counted once.
#pragma once

#include "server.hpp"

#include "common/runtime.hpp"

#include <boost/asio/ip/tcp.hpp>

namespace netlab::counter {

// Plays the clients against `counting`, listening at `address`, printing each step; then stops
// `rt`.
void start_demo(runtime& rt, boost::asio::ip::tcp::endpoint address, server& counting);

}  // namespace netlab::counter
