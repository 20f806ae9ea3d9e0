// --demo: the server and a few scripted clients in one process, so that one terminal shows the
// whole exercise: a short conversation, a rename, /who, an error, a goodbye.
#pragma once

#include "common/runtime.hpp"

#include <boost/asio/ip/tcp.hpp>

namespace netlab::chat {

// Plays the clients against the server at `server`, printing each step, then stops `rt`.
void start_demo(runtime& rt, boost::asio::ip::tcp::endpoint server);

}  // namespace netlab::chat
