#include "write.hpp"

#include "trace.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/write.hpp>

#include <linux/sockios.h>
#include <sys/ioctl.h>

namespace netlab {

namespace asio = boost::asio;
using boost::system::error_code;

int bytes_not_yet_acknowledged(tcp_socket& socket) {
  int held = 0;
  if (::ioctl(socket.native_handle(), SIOCOUTQ, &held) != 0) return -1;
  return held;
}

void consume_front(std::vector<asio::const_buffer>& buffers, std::size_t bytes) {
  auto first = buffers.begin();
  while (first != buffers.end() && bytes >= first->size()) {
    bytes -= first->size();
    ++first;
  }
  if (first != buffers.end()) *first += bytes;
  buffers.erase(buffers.begin(), first);
}

task<error_code> write_all(tcp_socket& socket, std::vector<asio::const_buffer>& buffers,
                           std::atomic<bool>* waiting_for_room) {
  if (trace::enabled()) {
    // Traced, every write may wait: reported as waiting throughout (--trace is for watching).
    if (waiting_for_room != nullptr) *waiting_for_room = true;
    const auto error = co_await trace::write_all(socket, buffers);
    if (waiting_for_room != nullptr) *waiting_for_room = false;
    co_return error;
  }
  error_code error;
  if (!socket.non_blocking()) socket.non_blocking(true, error);
  if (error) co_return error;
  // One write_some sends at most 64 buffers (Asio's limit per system call): loop while the
  // kernel takes everything; a partial write or would_block means its buffer is full.
  while (asio::buffer_size(buffers) > 0) {
    // One buffer (a batch of one group or one message, the usual case) goes out with send(2):
    // sendmsg(2) would first copy a message header and an I/O vector in from user space.
    const auto written = buffers.size() == 1 ? socket.write_some(buffers.front(), error)
                                             : socket.write_some(buffers, error);
    if (error) break;
    consume_front(buffers, written);
  }
  if (error == asio::error::would_block || error == asio::error::try_again) error = {};
  if (error || asio::buffer_size(buffers) == 0) co_return error;
  // The kernel's buffer is full: the client reads slower than we write. Wait for room.
  if (waiting_for_room != nullptr) *waiting_for_room = true;
  auto [wait_error, written] =
      co_await asio::async_write(socket, buffers, asio::as_tuple(use_task));
  if (waiting_for_room != nullptr) *waiting_for_room = false;
  consume_front(buffers, written);
  co_return wait_error;
}

}  // namespace netlab
