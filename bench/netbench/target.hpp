// --target: where the load goes. Loopback only, the project's rule: netbench opens thousands
// of connections at full speed, which is a test on this machine and an attack on another.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace netlab::bench {

inline constexpr std::string_view default_target = "127.0.0.1:8080";

// `127.0.0.1:8080`, `[::1]:8080` or `localhost:8080`; nullopt for anything else, a
// non-loopback address included.
std::optional<boost::asio::ip::tcp::endpoint> parse_loopback_target(std::string_view text);

// Why `text` is refused, for the one-line usage error; empty when it is accepted.
std::string explain_target(std::string_view text);

}  // namespace netlab::bench
