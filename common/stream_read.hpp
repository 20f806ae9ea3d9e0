// One read from a TCP socket, without the wasted system call that follows a drained read.
//
// Asio (Boost 1.81) reads speculatively: `async_read_some` first tries `recv` at once, and only
// when that would block does it wait for epoll. When the previous read took everything the
// socket held, that attempt is one `recv` that fails with EAGAIN: measured with `strace -c` on
// echo_split under `netbench echo --conns 1000 --inflight 1`, 34 108 of 69 216 recv calls were
// such failures, one per line: three system calls per echoed line where two do.
//
// Asio's reactor can skip the attempt (after a read that reports the socket "exhausted", the
// next read waits for epoll's next edge, which the kernel raises for any byte or end of stream
// that arrives later), but in 1.81 only an end of stream counts as exhausting. A read that came
// back short is not proof enough: the peer's FIN may already be queued behind the bytes, and no
// edge would ever announce it (a test in common_test hangs without this care). So we ask the
// kernel: with the TCP_INQ option on, each recvmsg returns the bytes still queued, counting a
// queued FIN as one. Zero means drained, and only then is the read reported as exhausting.
//
// Use: `enable_bytes_left_reports(acceptor)` once (accepted sockets inherit the option), then
// `socket.async_read_some(read_buffer(data, size), token)`. On a socket without the option a
// read_buffer read behaves exactly like Asio's own.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/reactive_socket_recv_op.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace netlab {

// A single buffer to read into; a distinct type only so that the specialization below applies.
class read_buffer : public boost::asio::mutable_buffer {
 public:
  read_buffer(void* data, std::size_t size) : boost::asio::mutable_buffer(data, size) {}
};

// Turns TCP_INQ on for `acceptor`; the sockets it accepts inherit it (Linux copies a listening
// socket's TCP options to each connection). Without it read_buffer only loses its shortcut.
inline void enable_bytes_left_reports(boost::asio::ip::tcp::acceptor& acceptor,
                                      boost::system::error_code& error) {
  const int on = 1;
  if (::setsockopt(acceptor.native_handle(), IPPROTO_TCP, TCP_INQ, &on, sizeof on) != 0) {
    error.assign(errno, boost::system::system_category());
  }
}

}  // namespace netlab

namespace boost::asio::detail {

// Asio's receive operation base, for read_buffer: one recvmsg into one buffer, reporting the
// read as exhausting when the kernel says nothing is left behind it.
template <>
class reactive_socket_recv_op_base<netlab::read_buffer> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                               socket_ops::state_type state, const netlab::read_buffer& buffer,
                               socket_base::message_flags flags, func_type complete_func)
      : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
        socket_(socket),
        state_(state),
        buffer_(buffer),
        flags_(flags) {}

  static status do_perform(reactor_op* base) {
    auto* op = static_cast<reactive_socket_recv_op_base*>(base);
    iovec into{op->buffer_.data(), op->buffer_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr message{};
    message.msg_iov = &into;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    ssize_t received = 0;
    do {
      received = ::recvmsg(op->socket_, &message, op->flags_);
    } while (received < 0 && errno == EINTR);
    const bool is_stream = (op->state_ & socket_ops::stream_oriented) != 0;
    op->bytes_transferred_ = received < 0 ? 0 : static_cast<std::size_t>(received);
    if (received < 0) {
      op->ec_ = boost::system::error_code(errno, boost::asio::error::get_system_category());
    } else if (received == 0 && is_stream) {
      op->ec_ = boost::asio::error::eof;
    } else {
      op->ec_ = boost::system::error_code();
    }
    // What Asio's own operation records for handler tracking (the `trace` preset's graphs).
    BOOST_ASIO_HANDLER_REACTOR_OPERATION((*op, "non_blocking_recv", op->ec_,
                                          op->bytes_transferred_));
    if (op->ec_ == boost::asio::error::would_block || op->ec_ == boost::asio::error::try_again) {
      return not_done;  // nothing there: the reactor waits for epoll
    }
    if (op->ec_ == boost::asio::error::eof) return done_and_exhausted;  // Asio's own rule
    if (op->ec_) return done;
    return is_stream && nothing_left(message) ? done_and_exhausted : done;
  }

 private:
  // The TCP_CM_INQ report: true when it says zero bytes (and no FIN) are left to read. False
  // when there is no report (TCP_INQ off): then the next read tries at once, as Asio does.
  static bool nothing_left(msghdr& message) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
      if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ) {
        int left = 0;
        std::memcpy(&left, CMSG_DATA(c), sizeof left);
        return left == 0;
      }
    }
    return false;
  }

  socket_type socket_;
  socket_ops::state_type state_;
  netlab::read_buffer buffer_;
  socket_base::message_flags flags_;
};

}  // namespace boost::asio::detail
