// --demo: the server and a few scripted clients in one process, so that one terminal shows the
// whole exercise.
#pragma once

#include "common/runtime.hpp"

#include <boost/asio/ip/tcp.hpp>

namespace netlab::echo {

// Plays the clients against the server at `server`, printing each step, then stops `rt`.
void start_demo(runtime& rt, boost::asio::ip::tcp::endpoint server, std::size_t max_line);

}  // namespace netlab::echo
