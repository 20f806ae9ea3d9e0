#include "json_line.hpp"

#include <fmt/format.h>

#include <cmath>
#include <iterator>

namespace netlab::bench {

void json_line::key(std::string_view name) {
  if (body_.size() > 1) body_ += ',';
  // Keys are netbench's own identifiers: nothing to escape.
  fmt::format_to(std::back_inserter(body_), "\"{}\":", name);
}

json_line& json_line::add(std::string_view name, std::string_view text) {
  key(name);
  body_ += '"';
  for (const char c : text) {
    if (c == '"' || c == '\\') body_ += '\\';
    body_ += c;
  }
  body_ += '"';
  return *this;
}

json_line& json_line::add(std::string_view name, std::uint64_t number) {
  key(name);
  fmt::format_to(std::back_inserter(body_), "{}", number);
  return *this;
}

json_line& json_line::add(std::string_view name, std::int64_t number) {
  key(name);
  fmt::format_to(std::back_inserter(body_), "{}", number);
  return *this;
}

json_line& json_line::add(std::string_view name, double number) {
  key(name);
  if (std::isfinite(number)) {
    fmt::format_to(std::back_inserter(body_), "{:.3f}", number);
  } else {
    body_ += "null";
  }
  return *this;
}

json_line& json_line::add(std::string_view name, std::optional<double> number) {
  if (number) return add(name, *number);
  key(name);
  body_ += "null";
  return *this;
}

json_line& json_line::add(std::string_view name, std::optional<std::uint64_t> number) {
  if (number) return add(name, *number);
  key(name);
  body_ += "null";
  return *this;
}

std::optional<double> ratio(std::optional<double> amount, double over) {
  if (!amount || over == 0) return std::nullopt;
  return *amount / over;
}

}  // namespace netlab::bench
