// Splitting a byte stream into lines without copying them.
//
// netlab's line_reader hands out each line as a std::string of its own, which is right for a
// server that keeps lines. A load client only looks at each line once, so this one hands out
// views into its buffer: no allocation per line, which keeps netbench light next to the server
// it measures.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace netlab::bench {

class line_buffer {
 public:
  // A line longer than `capacity` bytes cannot be held: full() reports it.
  explicit line_buffer(std::size_t capacity);

  // Space for the next read; moves the unfinished line to the front first. Empty when full().
  std::span<char> free_space();
  void commit(std::size_t bytes_read);

  // The next complete line, '\n' included. Valid until the next free_space().
  std::optional<std::string_view> next_line();

  // The buffer holds `capacity` bytes and no '\n': the peer sent a line too long to be ours.
  bool full() const { return begin_ == 0 && end_ == storage_.size() && scanned_ == end_; }

 private:
  std::vector<char> storage_;
  std::size_t begin_ = 0;    // first byte not yet handed out
  std::size_t end_ = 0;      // one past the last byte read
  std::size_t scanned_ = 0;  // bytes before this one hold no '\n' after begin_
};

}  // namespace netlab::bench
