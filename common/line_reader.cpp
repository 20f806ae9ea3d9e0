#include "line_reader.hpp"

#include "idle.hpp"
#include "log.hpp"
#include "trace.hpp"
#include "write.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>

#include <algorithm>
#include <cstring>
#include <tuple>

namespace netlab {

namespace asio = boost::asio;
using boost::system::error_code;

line_reader::line_reader(std::size_t max_line) : max_line_(max_line) {}

std::span<char> line_reader::prepare() {
  if (!storage_) {
    capacity_ = std::min(read_chunk, max_line_ + 1);
    storage_ = std::make_unique_for_overwrite<char[]>(capacity_);
  }
  if (begin_ > 0) {
    // Only a partial line is left (take_line handed out the rest): move it to the front.
    std::memmove(storage_.get(), storage_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == capacity_) {
    // A line longer than the buffer but within max_line: grow, up to max_line + 1 ('\n').
    const auto grown = std::min(capacity_ * 2, max_line_ + 1);
    auto bigger = std::make_unique_for_overwrite<char[]>(grown);
    std::memcpy(bigger.get(), storage_.get(), end_);
    storage_ = std::move(bigger);
    capacity_ = grown;
  }
  return {storage_.get() + end_, capacity_ - end_};
}

void line_reader::commit(std::size_t bytes_read) { end_ += bytes_read; }

std::size_t line_reader::first_line_length() {
  // Nothing unscanned: no line. This also covers a reader that has no buffer yet (storage_ is
  // null), where memchr(nullptr, ..., 0) below would be undefined behaviour (found by fuzzing).
  if (end_ - begin_ == scanned_) return 0;
  const char* first = storage_.get() + begin_;
  const auto* newline = static_cast<const char*>(
      std::memchr(first + scanned_, '\n', end_ - begin_ - scanned_));
  if (newline == nullptr) {
    scanned_ = end_ - begin_;
    return 0;
  }
  scanned_ = static_cast<std::size_t>(newline - first);  // no '\n' before it: not scanned again
  return scanned_ + 1;
}

std::optional<std::string_view> line_reader::take_line_view() {
  const auto length = first_line_length();
  if (length == 0) return std::nullopt;
  const char* first = storage_.get() + begin_;
  begin_ += length;
  scanned_ = 0;
  return std::string_view(first, length);
}

std::optional<std::string_view> line_reader::take_lines(std::size_t max_lines) {
  auto lines = take_line_view();
  if (!lines) return std::nullopt;
  for (std::size_t taken = 1; taken < max_lines; ++taken) {
    const auto next = take_line_view();
    if (!next) break;
    lines = std::string_view(lines->data(), lines->size() + next->size());  // the next bytes
  }
  return lines;
}

bool line_reader::has_line() { return first_line_length() > 0; }

std::optional<std::string> line_reader::take_line() {
  if (auto line = take_line_view()) return std::string(*line);
  return std::nullopt;
}

void line_reader::end_input() {
  input_ended_ = true;
  input_stopped_ = true;
  stop_reading_.emit(asio::cancellation_type::terminal);  // no effect when no read is pending
}

void log_unfinished_line(const line_reader& input, const asio::ip::tcp::endpoint& peer,
                         std::string_view not_done) {
  if (input.buffered() == 0) return;
  spdlog::info("{}: stopped reading; {} bytes of an unfinished line not {}", peer,
               input.buffered(), not_done);
}

bool line_reader::too_long() const { return end_ - begin_ > max_line_; }

std::string line_reader::take_rest() {
  std::string rest(storage_.get() + begin_, end_ - begin_);
  begin_ = end_ = scanned_ = 0;
  return rest;
}

task<line_result> line_reader::read_line(tcp_socket& socket) {
  auto result = co_await read_until_line(socket);
  if (result.status == line_status::complete) result.text = *take_line();
  co_return result;
}

task<line_result> line_reader::read_until_line(tcp_socket& socket) {
  for (;;) {
    if (end_ > begin_) {
      if (has_line()) co_return line_result{line_status::complete, {}, {}};
      // Checked only when no '\n' is buffered: a line of exactly max_line bytes plus '\n' passes.
      if (too_long()) co_return line_result{line_status::too_long, {}, {}};
    }
    if (input_ended_) {
      if (end_ > begin_ && !input_stopped_) {
        co_return line_result{line_status::unterminated, take_rest(), {}};
      }
      co_return line_result{line_status::end_of_input, {}, {}};
    }
    if (!storage_ && !trace::enabled()) {
      // An idle connection costs no buffer: wait until bytes (or the end) arrive, then allocate.
      auto [wait_error] = co_await socket.async_wait(
          tcp_socket::wait_read,
          asio::bind_cancellation_slot(stop_reading_.slot(), asio::as_tuple(use_task)));
      if (wait_error == asio::error::operation_aborted && input_ended_) continue;  // end_input()
      if (wait_error) co_return line_result{line_status::failed, {}, wait_error};
    }
    const auto free_space = prepare();
    const asio::mutable_buffer space(free_space.data(), free_space.size());
    error_code error;
    std::size_t bytes_read = 0;
    if (trace::enabled()) {
      std::tie(error, bytes_read) = co_await trace::read_some(socket, space, stop_reading_.slot());
    } else {
      std::tie(error, bytes_read) = co_await socket.async_read_some(
          space, asio::bind_cancellation_slot(stop_reading_.slot(), asio::as_tuple(use_task)));
    }
    commit(bytes_read);
    if (bytes_read > 0 && activity_ != nullptr) activity_->activity();
    if (error == asio::error::eof) {
      input_ended_ = true;
    } else if (error == asio::error::operation_aborted && input_ended_) {
      // end_input() cancelled this read: not a failure, the loop hands out what is buffered.
    } else if (error) {
      co_return line_result{line_status::failed, {}, error};
    }
  }
}

namespace {

task<> read_until_closed(tcp_socket& socket) {
  char sink[4096];
  for (;;) {
    auto [error, n] = co_await socket.async_read_some(asio::buffer(sink), asio::as_tuple(use_task));
    if (error) co_return;  // EOF: the client has read our last line and closed
  }
}

// Returns once the client's kernel has acknowledged everything written, FIN included (or the
// socket can no longer say). That acknowledgement brings no byte, so no wait on the socket ends
// when it comes: look at once, then after 1, 2, 4 ... up to 64 ms (an idle client's kernel may
// delay its ACK by some tens of ms), a few looks in a whole linger.
task<> wait_until_delivered(tcp_socket& socket) {
  steady_timer next_look(socket.get_executor());
  std::chrono::milliseconds interval{1};
  while (bytes_not_yet_acknowledged(socket) > 0) {
    next_look.expires_after(interval);
    auto [error] = co_await next_look.async_wait(asio::as_tuple(use_task));
    if (error) co_return;
    interval = std::min(interval * 2, std::chrono::milliseconds{64});
  }
}

}  // namespace

task<> discard_input(tcp_socket& socket, std::chrono::milliseconds limit) {
  using namespace asio::experimental::awaitable_operators;
  steady_timer timer(socket.get_executor(), limit);
  // Whichever ends first cancels the others: the client's close, its having everything, or the
  // time limit.
  co_await (read_until_closed(socket) || wait_until_delivered(socket) ||
            timer.async_wait(asio::as_tuple(use_task)));
}

}  // namespace netlab
