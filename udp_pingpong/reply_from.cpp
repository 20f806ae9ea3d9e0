#include "reply_from.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace netlab::pingpong {

namespace asio = boost::asio;
using asio::ip::udp;
using boost::system::error_code;

namespace {

error_code last_error() { return error_code(errno, asio::error::get_system_category()); }

// Room for what report_reply_addresses asks for: an IPv4 datagram on an IPv6 socket brings both.
constexpr std::size_t receive_control_size =
    CMSG_SPACE(sizeof(in_pktinfo)) + CMSG_SPACE(sizeof(in6_pktinfo));

// The address to reply from, read from the ancillary data of one received datagram.
asio::ip::address reply_address(msghdr& message) {
  asio::ip::address found;
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      // An IPv4 datagram: ipi_spec_dst is the kernel's own choice of reply address, the
      // destination itself (ipi_addr) unless that was a broadcast or multicast address, which
      // cannot be a source. It wins over the v4-mapped IPV6_PKTINFO of the same datagram.
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      return asio::ip::address_v4(ntohl(info.ipi_spec_dst.s_addr));
    }
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      asio::ip::address_v6::bytes_type bytes;
      std::memcpy(bytes.data(), &info.ipi6_addr, bytes.size());
      const asio::ip::address_v6 destination(bytes);
      // A multicast destination cannot be a source (the kernel then chooses, as for a plain
      // send); a v4-mapped one is an IPv4 datagram, answered through its IP_PKTINFO.
      if (!destination.is_multicast() && !destination.is_v4_mapped()) found = destination;
    }
  }
  return found;
}

// Puts `info` into `control` as the one control message that `message` carries.
template <typename Info>
void attach(msghdr& message, unsigned char* control, int level, int type, const Info& info) {
  message.msg_control = control;
  message.msg_controllen = CMSG_SPACE(sizeof info);
  cmsghdr* c = CMSG_FIRSTHDR(&message);
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(sizeof info);
  std::memcpy(CMSG_DATA(c), &info, sizeof info);
}

}  // namespace

void report_reply_addresses(udp_socket& socket, error_code& error) {
  const int on = 1;
  const int fd = socket.native_handle();
  // IP_PKTINFO on an IPv6 socket too: a dual-stack `::` socket also receives IPv4 datagrams,
  // and only IP_PKTINFO tells their reply address (see reply_address).
  if (::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) != 0 ||
      (socket.local_endpoint().protocol() == udp::v6() &&
       ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on) != 0)) {
    error = last_error();
    return;
  }
  error.clear();
}

std::size_t receive_with_reply_address(udp_socket& socket, asio::mutable_buffer buffer,
                                       udp::endpoint& sender, asio::ip::address& reply_from,
                                       error_code& error) {
  iovec data{buffer.data(), buffer.size()};
  alignas(cmsghdr) unsigned char control[receive_control_size];
  msghdr message{};
  message.msg_name = sender.data();
  message.msg_namelen = static_cast<socklen_t>(sender.capacity());
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  const ssize_t size = ::recvmsg(socket.native_handle(), &message, MSG_DONTWAIT);
  if (size < 0) {
    error = last_error();
    return 0;
  }
  error.clear();
  sender.resize(message.msg_namelen);
  reply_from = reply_address(message);
  return static_cast<std::size_t>(size);
}

std::size_t send_from(udp_socket& socket, asio::const_buffer datagram,
                      const udp::endpoint& destination, const asio::ip::address& from,
                      error_code& error) {
  iovec data{const_cast<void*>(datagram.data()), datagram.size()};
  alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
  msghdr message{};
  message.msg_name = const_cast<sockaddr*>(destination.data());
  message.msg_namelen = static_cast<socklen_t>(destination.size());
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  // The interface index stays 0 in both kinds: routing still chooses the way out, the control
  // message only fixes the source address. The destination's family is the socket's.
  if (from.is_unspecified()) {
    // Nothing to fix: the kernel chooses, as for a plain send_to.
  } else if (destination.protocol() == udp::v4()) {
    in_pktinfo info{};
    info.ipi_spec_dst.s_addr = htonl(from.to_v4().to_uint());
    attach(message, control, IPPROTO_IP, IP_PKTINFO, info);
  } else {
    // An IPv6 socket takes IPV6_PKTINFO for its IPv4 peers too, with a v4-mapped source.
    const auto source =
        from.is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, from.to_v4()) : from.to_v6();
    in6_pktinfo info{};
    const auto bytes = source.to_bytes();
    std::memcpy(&info.ipi6_addr, bytes.data(), bytes.size());
    attach(message, control, IPPROTO_IPV6, IPV6_PKTINFO, info);
  }
  const ssize_t sent = ::sendmsg(socket.native_handle(), &message, MSG_DONTWAIT);
  if (sent < 0) {
    error = last_error();
    return 0;
  }
  error.clear();
  return static_cast<std::size_t>(sent);
}

}  // namespace netlab::pingpong
