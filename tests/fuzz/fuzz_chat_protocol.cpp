// The chat protocol's pure functions against their documented rules (chat/protocol.hpp). The
// input is one line as line_reader hands it out, '\n' and all, or any bytes at all.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "chat/protocol.hpp"
#include "check.hpp"

namespace chat = netlab::chat;

namespace {

// The rule written a second, deliberately different way: membership in the allowed set.
bool model_valid_name(std::string_view name) {
  constexpr std::string_view allowed =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  return !name.empty() && name.size() <= 32 &&
         name.find_first_not_of(allowed) == std::string_view::npos;
}

bool is_control(unsigned char byte) { return (byte < 0x20 && byte != '\t') || byte == 0x7f; }

// `part` is a view into `whole` (parse_line's arguments must not copy or dangle).
bool views_into(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);

  // strip_line_ending takes off "\n", "\r\n" or "\r" and nothing else.
  const auto line = chat::strip_line_ending(raw);
  const auto removed = raw.substr(line.size());
  FUZZ_CHECK(raw.starts_with(line));
  FUZZ_CHECK(removed == "" || removed == "\n" || removed == "\r\n" || removed == "\r");

  // escape: no control byte survives, each one costs exactly `\xNN`, the rest is untouched,
  // and the same text always gives the same bytes (every recipient sees the same line).
  const auto escaped = chat::escape(line);
  FUZZ_CHECK(std::none_of(escaped.begin(), escaped.end(),
                          [](char c) { return is_control(static_cast<unsigned char>(c)); }));
  const auto controls = std::count_if(
      line.begin(), line.end(), [](char c) { return is_control(static_cast<unsigned char>(c)); });
  FUZZ_CHECK(escaped.size() == line.size() + 3 * static_cast<std::size_t>(controls));
  FUZZ_CHECK(controls != 0 || escaped == line);
  FUZZ_CHECK(escaped == chat::escape(line));

  // parse_line: only '/' makes a command; the argument views the line.
  const auto command = chat::parse_line(line);
  FUZZ_CHECK(views_into(command.argument, line));
  switch (command.kind) {
    case chat::command_kind::message:
      FUZZ_CHECK(!line.starts_with('/') && command.argument == line);
      break;
    case chat::command_kind::nick:
      FUZZ_CHECK(line == "/nick" ||
                 (line.starts_with("/nick ") && command.argument == line.substr(6)));
      break;
    // A trailing space is tolerated ("/who " is /who): parse_line splits at the first space.
    case chat::command_kind::who:
      FUZZ_CHECK(line == "/who" || line == "/who ");
      break;
    case chat::command_kind::quit:
      FUZZ_CHECK(line == "/quit" || line == "/quit ");
      break;
    case chat::command_kind::unknown:
      FUZZ_CHECK(line.starts_with('/') && command.argument == line);
      FUZZ_CHECK(line != "/who" && line != "/quit" && line != "/nick" &&
                 !line.starts_with("/nick "));
      break;
  }

  // valid_name agrees with the rule; the first bytes of the input serve as the name too.
  const auto name = raw.substr(0, std::min<std::size_t>(raw.size(), size == 0 ? 0 : data[0] % 40));
  FUZZ_CHECK(chat::valid_name(name) == model_valid_name(name));
  FUZZ_CHECK(chat::valid_name(command.argument) == model_valid_name(command.argument));

  // A relayed line from a valid name is one line: the prefix, the escaped text, one '\n'.
  if (chat::valid_name(name)) {
    const auto relayed = chat::chat_line(name, line);
    FUZZ_CHECK(*relayed == std::string(name) + ": " + escaped + "\n");
    FUZZ_CHECK(std::count(relayed->begin(), relayed->end(), '\n') == 1);
  }
  return 0;
}
