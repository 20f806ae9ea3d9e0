// The one-line JSON summary every subcommand prints last, for scripts to parse.
//
// Keys keep the order they are added in, so the line reads like the human lines above it.
// Numbers are JSON numbers; an unknown figure (no --pid, nothing measured) is null.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace netlab::bench {

class json_line {
 public:
  json_line& add(std::string_view key, std::string_view text);
  json_line& add(std::string_view key, std::uint64_t number);
  json_line& add(std::string_view key, std::int64_t number);
  // Three decimals; non-finite (a rate over an empty window) becomes null.
  json_line& add(std::string_view key, double number);
  json_line& add(std::string_view key, std::optional<double> number);
  json_line& add(std::string_view key, std::optional<std::uint64_t> number);

  std::string str() const { return body_ + "}"; }

 private:
  void key(std::string_view name);
  std::string body_ = "{";
};

// `amount / over`, or nullopt when either is unknown or `over` is zero.
std::optional<double> ratio(std::optional<double> amount, double over);

}  // namespace netlab::bench
