// What netbench puts on the wire, and how it recognises it coming back. No sockets here: the
// checkers are pure functions of the bytes, so tests feed them crafted lines.
//
// Every line is a pure function of a few numbers, so netbench never stores what it sent: to
// check a line it received, it builds the line it expects and compares every byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace netlab::bench {

// ---- echo: `<conn>:<seq>:` in hex, then filler, then '\n', exactly `size` bytes ---------------

// The shortest echo line: the longest header (4 hex digits of connection, 8 of sequence, two
// colons) plus '\n' fits, so that every line can be told apart from every other.
inline constexpr std::size_t min_echo_line = 16;

// Appends the line of connection `conn` with sequence number `seq` to `out`.
void append_echo_line(std::string& out, std::uint32_t conn, std::uint64_t seq, std::size_t size);

struct echo_header {
  std::uint32_t conn;
  std::uint64_t seq;
};

// Reads the header of a received line; nullopt when it is not `hex:hex:`.
std::optional<echo_header> parse_echo_header(std::string_view line);

// ---- chat: `nb <sender> <seq> <send_ns>` then filler, 64 bytes with '\n' ----------------------

// The chat server puts `NAME: ` in front, and sends notices (`* ...`) and errors (`error: ...`)
// of its own; a receiver finds netbench's lines by this token, anywhere in the line.
inline constexpr std::string_view chat_token = "nb ";
inline constexpr std::size_t chat_line_size = 64;

void append_chat_line(std::string& out, std::uint32_t sender, std::uint64_t seq,
                      std::uint64_t send_ns);

struct chat_delivery {
  std::uint32_t sender;
  std::uint64_t seq;
  std::uint64_t send_ns;  // steady clock, nanoseconds since the load started
};

enum class chat_line_kind {
  foreign,    // no token: a notice or an error line of the server, not ours
  delivery,   // a line netbench sent, byte for byte
  corrupted,  // has the token, but is not a line netbench could have sent
};

struct chat_parse_result {
  chat_line_kind kind;
  // The numbers the line carries: always for a delivery; for a corrupted line when they could
  // still be read (the bytes after them are wrong), so that the line still counts as arrived.
  std::optional<chat_delivery> delivery;
};

// `line` as received, prefix and '\n' included.
chat_parse_result parse_chat_line(std::string_view line);

}  // namespace netlab::bench
