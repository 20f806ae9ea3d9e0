// Side B: answers every datagram that starts with `ping` with the same bytes starting with `pong`.
#pragma once

#include "common/executor.hpp"
#include "common/runtime.hpp"

#include <cstdint>
#include <string>

namespace netlab::pingpong {

// Binds B's socket on `io` (which one thread runs: see runtime.hpp) and prints
// `listening on ADDR:PORT` (the real port when `port` is 0). Throws startup_error naming the
// address and the reason.
udp_socket open_ponger(boost::asio::io_context& io, const std::string& bind, std::uint16_t port);

// Answers pings on `socket` until `shutdown` asks it to stop: the runtime's for `serve`; a
// coordinator of its own when B must outlive A (see main.cpp).
void start_ponging(shutdown_coordinator& shutdown, udp_socket socket);

}  // namespace netlab::pingpong
