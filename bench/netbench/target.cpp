#include "target.hpp"

#include <charconv>

namespace netlab::bench {

namespace {

struct host_and_port {
  std::string_view host;
  std::uint16_t port;
};

std::optional<host_and_port> split(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.front() == '[') {  // [IPv6]:PORT
    if (host.size() < 3 || host.back() != ']') return std::nullopt;
    host = host.substr(1, host.size() - 2);
  }
  std::uint16_t port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc{} || end != port_text.data() + port_text.size() || port == 0) {
    return std::nullopt;
  }
  return host_and_port{host, port};
}

}  // namespace

std::optional<boost::asio::ip::tcp::endpoint> parse_loopback_target(std::string_view text) {
  const auto parts = split(text);
  if (!parts) return std::nullopt;
  // No resolver: "localhost" is the one name, and it means IPv4 loopback here.
  const std::string host = parts->host == "localhost" ? "127.0.0.1" : std::string(parts->host);
  boost::system::error_code error;
  const auto address = boost::asio::ip::make_address(host, error);
  if (error || !address.is_loopback()) return std::nullopt;
  return boost::asio::ip::tcp::endpoint(address, parts->port);
}

std::string explain_target(std::string_view text) {
  if (parse_loopback_target(text)) return {};
  if (!split(text)) return "expected HOST:PORT or [IPv6]:PORT, got " + std::string(text);
  return "not a loopback address: " + std::string(text) +
         " (netbench loads this machine only: 127.0.0.0/8, ::1, localhost)";
}

}  // namespace netlab::bench
