#include "wire.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace netlab::pingpong {

namespace {

constexpr std::string_view ping_prefix = "ping";
constexpr std::string_view pong_prefix = "pong";
constexpr char padding = 'x';

bool starts_with(std::span<const char> bytes, std::string_view prefix) {
  return bytes.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), bytes.begin());
}

}  // namespace

bool turn_into_pong(std::span<char> datagram) {
  if (!starts_with(datagram, ping_prefix)) return false;
  std::copy(pong_prefix.begin(), pong_prefix.end(), datagram.begin());
  return true;
}

void write_ping(std::span<char> datagram, std::uint64_t seq) {
  // "ping 18446744073709551615 " is 26 bytes: always fits in min_ping_size.
  char* const begin = datagram.data();
  char* const end = begin + datagram.size();
  char* out = std::copy(ping_prefix.begin(), ping_prefix.end(), begin);
  *out++ = ' ';
  out = std::to_chars(out, end, seq).ptr;
  *out++ = ' ';
  std::fill(out, end, padding);
}

std::optional<std::uint64_t> read_pong(std::span<const char> datagram, std::size_t ping_size) {
  // A reply is the mirror of a ping: same size, `pong `, digits, a space, then only padding.
  // Anything else (a truncated or altered reply, another program's traffic) is not a reply.
  if (datagram.size() != ping_size || !starts_with(datagram, "pong ")) return std::nullopt;
  const char* const end = datagram.data() + datagram.size();
  const char* digits = datagram.data() + pong_prefix.size() + 1;
  if (digits == end || *digits == '0') return std::nullopt;  // pings never carry leading zeros
  std::uint64_t seq = 0;
  const auto [after, error] = std::from_chars(digits, end, seq);
  if (error != std::errc{} || after == digits || after == end || *after != ' ') return std::nullopt;
  if (!std::all_of(after + 1, end, [](char c) { return c == padding; })) return std::nullopt;
  return seq;
}

std::optional<host_port> split_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 without brackets
  }
  unsigned number = 0;
  const auto [after, error] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (host.empty() || port.empty() || error != std::errc{} || after != port.data() + port.size() ||
      number == 0 || number > 65535) {
    return std::nullopt;
  }
  return host_port{std::string(host), static_cast<std::uint16_t>(number)};
}

}  // namespace netlab::pingpong
