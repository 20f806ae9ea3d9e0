// line_reader's framing (prepare/commit/take_line/take_lines/has_line/too_long/take_rest) against
// a model of what it
// promises, with the reads split where the input says: a line cut across two reads, a '\n' that
// is the last byte of a read, a read that fills the buffer exactly are all found by mutation.
//
// Input: 2 bytes max_line - 1 (big-endian, so 0xffff is the server default of 65536),
// 1 byte seed for the read sizes, then the bytes "the peer sends".
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "check.hpp"
#include "common/line_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const std::size_t max_line = 1 + (std::size_t{data[0]} << 8 | data[1]);
  std::uint32_t rng = 0x9e3779b9u ^ data[2];
  const std::string_view input(reinterpret_cast<const char*>(data + 3), size - 3);

  netlab::line_reader reader(max_line);
  std::string out;           // every line handed out, then the rest
  std::size_t consumed = 0;  // bytes of `input` committed so far
  bool too_long = false;

  const auto next_random = [&rng] {  // xorshift32: the same input always splits the same way
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
  };

  // The loop of read_line, with memcpy for the socket.
  for (;;) {
    for (;;) {
      // Half the time one line (take_line, as read_line and chat take them), half a group of up
      // to 8 (take_lines, as echo_split's reader); has_line must say beforehand which it finds.
      const bool line_buffered = reader.has_line();
      const auto pick = next_random();
      const std::size_t most = (pick & 1) ? 1 : 1 + (pick >> 1) % 8;
      std::optional<std::string> taken = reader.take_line();
      if (most > 1 && taken) {
        const auto rest = reader.take_lines(most - 1);
        if (rest) *taken += *rest;
      }
      FUZZ_CHECK(line_buffered == taken.has_value());
      if (!taken) break;
      const std::string_view lines = *taken;
      FUZZ_CHECK(!lines.empty() && lines.back() == '\n');
      FUZZ_CHECK(static_cast<std::size_t>(std::count(lines.begin(), lines.end(), '\n')) <= most);
      std::size_t start = 0;  // each line of the group on its own: at most max_line + '\n'
      for (auto end = lines.find('\n'); end != std::string_view::npos;
           start = end + 1, end = lines.find('\n', start)) {
        FUZZ_CHECK(end + 1 - start <= max_line + 1);
      }
      out += lines;
    }
    if (reader.too_long()) {
      too_long = true;
      break;
    }
    if (consumed == input.size()) {
      out += reader.take_rest();  // end of input: the unterminated last line
      break;
    }
    const auto space = reader.prepare();
    // The memory bound: the buffer never grows past one longest line plus its '\n'.
    FUZZ_CHECK(reader.capacity() <= max_line + 1);
    FUZZ_CHECK(!space.empty());  // an empty space would make read_line spin
    const auto split = next_random();
    // Half the reads take all there is room for (big, like a busy socket), half 1..64 bytes.
    std::size_t n = (split & 1) ? space.size() : 1 + (split >> 1) % 64;
    n = std::min({n, space.size(), input.size() - consumed});
    std::memcpy(space.data(), input.data() + consumed, n);
    reader.commit(n);
    consumed += n;
  }

  // Nothing lost, duplicated or reordered: what came out is what went in, up to where it stopped.
  FUZZ_CHECK(input.substr(0, out.size()) == out);
  // The longest run of bytes without '\n' in what was read (the model of "a line too long").
  std::size_t longest = 0;
  std::size_t run = 0;
  for (const char c : input.substr(0, consumed)) {
    run = c == '\n' ? 0 : run + 1;
    longest = std::max(longest, run);
  }
  if (too_long) {
    // Refused only for a real overlong line: the buffered tail holds more than max_line bytes
    // and no '\n', and it is exactly what follows the lines handed out.
    const auto tail = input.substr(out.size(), consumed - out.size());
    FUZZ_CHECK(reader.buffered() == tail.size() && tail.size() > max_line);
    FUZZ_CHECK(tail.find('\n') == std::string_view::npos);
  } else {
    // Not refused: everything came out, and indeed no line was longer than max_line.
    FUZZ_CHECK(out.size() == input.size());
    FUZZ_CHECK(longest <= max_line);
  }
  return 0;
}
