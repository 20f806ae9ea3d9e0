// Replying from the address a datagram was sent to, on a socket bound to 0.0.0.0 or ::.
//
// Why this exists: a socket bound to a wildcard address receives datagrams sent to any of the
// host's addresses, but a plain `send_to` on it leaves the reply's source address to the
// kernel, which picks it by routing. A ping sent to 127.0.0.2 (or to a second address of a
// network card) is then answered from 127.0.0.1, and a client that checks who answers (A's
// connected socket does, like most UDP clients) drops the reply as coming from a stranger.
// A socket bound to one address has no such choice to make: there the plain path is right.
//
// The kernel can say, with each datagram, which address it was sent to (IP_PKTINFO,
// IPV6_RECVPKTINFO), and take, with each reply, the address to send it from (IP_PKTINFO,
// IPV6_PKTINFO). Both travel as ancillary data beside the datagram, through recvmsg(2) and
// sendmsg(2); Asio has no API for that, so these functions call them on the socket's native
// handle. Each is one non-blocking system call; the waiting stays Asio's (see ponger.cpp).
#pragma once

#include "common/executor.hpp"

#include <boost/asio/buffer.hpp>

#include <cstddef>

namespace netlab::pingpong {

// Whether a socket bound to `local` needs what this file does: a wildcard address.
inline bool bound_to_every_address(const boost::asio::ip::udp::endpoint& local) {
  return local.address().is_unspecified();
}

// Asks the kernel to report, with every datagram received on `socket`, the address to reply
// from. Once, before the first receive.
void report_reply_addresses(udp_socket& socket, boost::system::error_code& error);

// One non-blocking recvmsg: the datagram into `buffer`, its sender, and in `reply_from` the
// address it was sent to (unspecified when the kernel did not say, or when that address cannot
// be a source: then the kernel chooses, as for a plain send). would_block when nothing waits.
std::size_t receive_with_reply_address(udp_socket& socket, boost::asio::mutable_buffer buffer,
                                       boost::asio::ip::udp::endpoint& sender,
                                       boost::asio::ip::address& reply_from,
                                       boost::system::error_code& error);

// One non-blocking sendmsg of `datagram` to `destination`, from the address `from`
// (unspecified: the kernel chooses). would_block when the socket's send buffer is full.
std::size_t send_from(udp_socket& socket, boost::asio::const_buffer datagram,
                      const boost::asio::ip::udp::endpoint& destination,
                      const boost::asio::ip::address& from, boost::system::error_code& error);

}  // namespace netlab::pingpong
