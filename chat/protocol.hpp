// The chat protocol without sockets: what a line means, what a name may be, how text is made safe
// to relay. Both designs (queued and lesson) use these, and unit tests call them directly.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace netlab::chat {

// Names: 1 to max_name_length of A-Z a-z 0-9 _ - (the contract). Short enough for a prefix, and
// free of ':' and '.', so no chosen name can look like an address (the default names).
inline constexpr std::size_t max_name_length = 32;

bool valid_name(std::string_view name);

// A line as the client meant it: a message, or one of the commands.
enum class command_kind { message, nick, who, quit, unknown };

struct command {
  command_kind kind;
  std::string_view argument;  // the name for `nick`, the text for `message`; views the line
};

// `line` without its '\n'. Only a line that starts with '/' is a command; `/nick` takes the rest
// of the line after one space as the name (validated separately, so `/nick a b` is an invalid
// name, not an unknown command).
command parse_line(std::string_view line);

// Bytes below 0x20 other than tab, and 0x7f, become `\xNN`: no client can send terminal escape
// sequences (or fake a line break) to the others. Every other byte is relayed as is.
std::string escape(std::string_view text);
void append_escaped(std::string& out, std::string_view text);  // the same, appended to `out`

// Takes the line ending off what line_reader returned: "\n", and a "\r" before it, so that
// telnet and nc -C users (who send "\r\n") are not shown a stray `\x0d`.
std::string_view strip_line_ending(std::string_view line);

// One message, formatted once and shared by all its recipients: every outbox holds a pointer to
// the same bytes (no copy per recipient), and nobody may change them.
using message = std::shared_ptr<const std::string>;

message make_message(std::string text);                              // `text` + "\n"
message chat_line(std::string_view name, std::string_view text);     // "NAME: escaped text\n"
// The same line appended to `out`: a reader that got several lines in one read formats them all
// into one message, shared by every recipient as a single buffer (see chat/queued.cpp).
void append_chat_line(std::string& out, std::string_view name, std::string_view text);
message notice(std::string_view text);                               // "* text\n"
message error_line(std::string_view text);                           // "error: text\n"

// The fixed replies, in one place so that both designs and the tests agree.
inline constexpr std::string_view invalid_name_reply =
    "invalid name (1 to 32 of A-Z a-z 0-9 _ -)";
inline constexpr std::string_view unknown_command_reply = "unknown command";
inline constexpr std::string_view too_slow_reply = "too slow, disconnected";
inline constexpr std::string_view idle_reply = "idle too long, disconnected";
std::string name_taken_reply(std::string_view name);
std::string who_reply(const std::vector<std::string>& names);  // "connected: a b c" (sorted)

}  // namespace netlab::chat
