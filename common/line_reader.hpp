// Reading lines of bounded length from a TCP socket.
//
// Why not `async_read_until` with a `dynamic_buffer(std::string)`: that buffer zero-fills every
// area it reads into (std::string::resize), its first reads are 512 bytes, and it is asked again
// for each line even when the last read brought a hundred. This reader does one large read, then
// hands out every complete line in it before reading again; a line costs one allocation, its own.
#pragma once

#include "executor.hpp"

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace netlab {

class idle_watch;

// The size of one read. Large enough that a busy connection needs few system calls, small
// enough that ten thousand idle connections stay cheap (untouched pages cost no memory).
inline constexpr std::size_t read_chunk = 16 * 1024;

// The default for --max-line: longer lines are refused (the contract's policy).
inline constexpr std::size_t default_max_line = 64 * 1024;

enum class line_status {
  complete,      // a line ending in '\n' (included in `text`)
  unterminated,  // the last bytes before end of input, without '\n'
  end_of_input,  // the peer closed its side, nothing is left
  too_long,      // more than max_line bytes without '\n': the stream can no longer be trusted
  failed,        // a read error, in `error` (reset, for instance)
};

struct line_result {
  line_status status;
  std::string text;
  boost::system::error_code error;
};

class line_reader {
 public:
  // A line may hold at most `max_line` bytes before its '\n'.
  explicit line_reader(std::size_t max_line);

  task<line_result> read_line(tcp_socket& socket);

  // Reads until a complete line is buffered, and takes nothing: `complete` means take_line,
  // take_line_view or take_lines hands it out (with the lines that came with it). Every other
  // status is read_line's. For a reader that takes the lines of a read as a whole.
  task<line_result> read_until_line(tcp_socket& socket);

  // Reads nothing more from the socket (a pending read is cancelled): the complete lines already
  // buffered are still handed out, then end_of_input. An unfinished line is not a line yet: it
  // stays behind (see buffered()). Call it on the socket's executor. This is how a session stops
  // reading at shutdown without cancelling its writer's write on the same socket.
  void end_input();

  // Every read that brings bytes tells `watch` (--idle-timeout); the watch must outlive reads.
  void report_activity_to(idle_watch& watch) { activity_ = &watch; }

  // The framing on its own, without a socket (read_line is built on these; tests and fuzzers
  // drive them directly).
  std::span<char> prepare();            // space for the next read
  void commit(std::size_t bytes_read);  // that many bytes arrived in prepare()'s space
  std::optional<std::string> take_line();  // the next complete line, if one is buffered
  // The same without a copy: the line as it sits in the buffer, valid until the next prepare()
  // (or read_line). For a reader that uses each line at once (chat formats it for the others).
  std::optional<std::string_view> take_line_view();
  // Up to `max_lines` complete lines, as one view: they lie one after the other in the buffer.
  // Valid until the next prepare(), like take_line_view's.
  std::optional<std::string_view> take_lines(std::size_t max_lines);
  bool has_line();  // a complete line is buffered (what it scans is not scanned again)
  bool too_long() const;                   // buffered bytes without '\n' exceed max_line
  std::string take_rest();                 // whatever is buffered, at end of input
  std::size_t capacity() const { return capacity_; }
  std::size_t buffered() const { return end_ - begin_; }

 private:
  // The first buffered line's length, '\n' included; 0 when no complete line is buffered.
  std::size_t first_line_length();

  std::size_t max_line_;
  std::unique_ptr<char[]> storage_;  // allocated when the first bytes arrive, never zero-filled
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;    // first byte not yet handed out
  std::size_t end_ = 0;      // one past the last byte read
  std::size_t scanned_ = 0;  // bytes from begin_ already known to hold no '\n'
  bool input_ended_ = false;  // the peer closed, or end_input() was called
  bool input_stopped_ = false;  // end_input() was called: an unfinished rest is not handed out
  idle_watch* activity_ = nullptr;  // told about every read that brings bytes, if set
  boost::asio::cancellation_signal stop_reading_;  // end_input() cancels the pending read with it
};

// For a session whose reading was stopped (end_input) at end_of_input: an unfinished line left
// in `input` is not a line and is dropped, but not silently. Logs its size, naming `peer` and
// what the server did not do with it ("echoed", "relayed"); nothing when none is left.
void log_unfinished_line(const line_reader& input, const boost::asio::ip::tcp::endpoint& peer,
                         std::string_view not_done);

// How long a session that stopped reading early (a refused line, /quit, a shutdown) lingers
// before it closes (discard_input). Shorter than the runtime's graceful_stop_limit, which still
// bounds a stop as a whole.
inline constexpr std::chrono::milliseconds close_linger{1000};

// After a session stopped reading early (a refused line, a shutdown), read and drop what the
// client still sends, until it closes, or everything written to it has been acknowledged (its
// last bytes and the FIN are in the client's kernel: nothing left for a reset to destroy), or
// `limit` passes. Closing a socket with unread input makes the kernel send a reset, which throws
// away what it still holds for the client: the last replies, the refusal line. This "lingering
// close" avoids that; it ends within milliseconds for a client that has everything (an idle
// one), once its kernel has acknowledged our FIN.
task<> discard_input(tcp_socket& socket, std::chrono::milliseconds limit);

}  // namespace netlab
