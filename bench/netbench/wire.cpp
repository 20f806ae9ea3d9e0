#include "wire.hpp"

#include <fmt/format.h>

#include <charconv>
#include <iterator>

namespace netlab::bench {

namespace {

// Printable filler that changes with the sequence number and the position: a byte that was
// shifted, repeated or taken from another line does not match by chance.
char filler(std::uint64_t seq, std::size_t position) {
  return static_cast<char>('A' + (seq + position * 7) % 26);
}

void append_filler(std::string& out, std::uint64_t seq, std::size_t line_start, std::size_t size) {
  // The callers keep headers shorter than `size` (min_echo_line, chat_line_size).
  while (out.size() - line_start < size - 1) out.push_back(filler(seq, out.size() - line_start));
  out.push_back('\n');
}

// Reads a number in `base` from the front of `text`, which must go on with `separator`; steps
// over both.
template <typename Number>
bool read_number(std::string_view& text, Number& value, int base, char separator) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  const auto used = static_cast<std::size_t>(end - text.data());
  if (error != std::errc{} || used == 0 || used >= text.size() || text[used] != separator) {
    return false;
  }
  text.remove_prefix(used + 1);
  return true;
}

}  // namespace

void append_echo_line(std::string& out, std::uint32_t conn, std::uint64_t seq, std::size_t size) {
  const auto start = out.size();
  fmt::format_to(std::back_inserter(out), "{:x}:{:x}:", conn, seq);
  append_filler(out, seq, start, size);
}

std::optional<echo_header> parse_echo_header(std::string_view line) {
  echo_header header{};
  if (!read_number(line, header.conn, 16, ':') || !read_number(line, header.seq, 16, ':')) {
    return std::nullopt;
  }
  return header;
}

void append_chat_line(std::string& out, std::uint32_t sender, std::uint64_t seq,
                      std::uint64_t send_ns) {
  const auto start = out.size();
  fmt::format_to(std::back_inserter(out), "{}{} {} {} ", chat_token, sender, seq, send_ns);
  append_filler(out, seq, start, chat_line_size);
}

chat_parse_result parse_chat_line(std::string_view line) {
  const auto token = line.find(chat_token);
  if (token == std::string_view::npos) return {chat_line_kind::foreign, {}};
  const std::string_view ours = line.substr(token);
  std::string_view fields = ours.substr(chat_token.size());
  chat_delivery delivery{};
  if (!read_number(fields, delivery.sender, 10, ' ') ||
      !read_number(fields, delivery.seq, 10, ' ') ||
      !read_number(fields, delivery.send_ns, 10, ' ')) {
    return {chat_line_kind::corrupted, {}};
  }
  // The numbers parsed; the rest must be exactly what netbench would have sent with them.
  std::string expected;
  append_chat_line(expected, delivery.sender, delivery.seq, delivery.send_ns);
  return {ours == expected ? chat_line_kind::delivery : chat_line_kind::corrupted, delivery};
}

}  // namespace netlab::bench
