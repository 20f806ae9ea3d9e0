#include "protocol.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace netlab::chat {

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > max_name_length) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  });
}

command parse_line(std::string_view line) {
  if (line.empty() || line.front() != '/') return {command_kind::message, line};
  const auto space = line.find(' ');
  const auto word = line.substr(0, space);
  const auto argument =
      space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
  if (word == "/nick") return {command_kind::nick, argument};
  if (word == "/who" && argument.empty()) return {command_kind::who, {}};
  if (word == "/quit" && argument.empty()) return {command_kind::quit, {}};
  return {command_kind::unknown, line};
}

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  append_escaped(out, text);
  return out;
}

void append_escaped(std::string& out, std::string_view text) {
  // Safe bytes are appended in runs, not one by one: most lines have no byte to escape at all.
  std::size_t run = 0;  // where the current run of safe bytes began
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if ((byte < 0x20 && byte != '\t') || byte == 0x7f) {
      out.append(text.substr(run, i - run));
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", byte);
      run = i + 1;
    }
  }
  out.append(text.substr(run));
}

std::string_view strip_line_ending(std::string_view line) {
  if (line.ends_with('\n')) line.remove_suffix(1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  return line;
}

message make_message(std::string text) {
  text.push_back('\n');
  return std::make_shared<const std::string>(std::move(text));
}

message chat_line(std::string_view name, std::string_view text) {
  std::string line;
  line.reserve(name.size() + 2 + text.size() + 1);
  append_chat_line(line, name, text);
  return std::make_shared<const std::string>(std::move(line));
}

void append_chat_line(std::string& out, std::string_view name, std::string_view text) {
  out.append(name).append(": ");
  append_escaped(out, text);
  out.push_back('\n');
}

message notice(std::string_view text) { return make_message(fmt::format("* {}", text)); }

message error_line(std::string_view text) { return make_message(fmt::format("error: {}", text)); }

std::string name_taken_reply(std::string_view name) {
  return fmt::format("name {} is taken", name);
}

std::string who_reply(const std::vector<std::string>& names) {
  auto sorted = names;
  std::sort(sorted.begin(), sorted.end());
  return fmt::format("connected: {}", fmt::join(sorted, " "));
}

}  // namespace netlab::chat
