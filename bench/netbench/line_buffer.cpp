#include "line_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace netlab::bench {

line_buffer::line_buffer(std::size_t capacity) : storage_(capacity) {}

std::span<char> line_buffer::free_space() {
  if (begin_ > 0) {
    // Only the unfinished line moves, and lines are short next to the buffer: cheap.
    std::memmove(storage_.data(), storage_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    scanned_ -= begin_;
    begin_ = 0;
  }
  return {storage_.data() + end_, storage_.size() - end_};
}

void line_buffer::commit(std::size_t bytes_read) { end_ += bytes_read; }

std::optional<std::string_view> line_buffer::next_line() {
  const char* first = storage_.data() + scanned_;
  const char* last = storage_.data() + end_;
  const char* newline = std::find(first, last, '\n');
  if (newline == last) {
    scanned_ = end_;
    return std::nullopt;
  }
  const std::size_t stop = static_cast<std::size_t>(newline - storage_.data()) + 1;
  std::string_view line(storage_.data() + begin_, stop - begin_);
  begin_ = stop;
  scanned_ = stop;
  return line;
}

}  // namespace netlab::bench
