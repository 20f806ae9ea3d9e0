// The address parsers behind the command lines: the --bind validator (common/cli.hpp), netbench's
// --target (loopback only) and udp_pingpong's HOST:PORT. Each must refuse garbage without
// crashing, and what it accepts must mean what it says: printing the result and parsing that
// again gives the same value.
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <string>

#include "bench/netbench/target.hpp"
#include "check.hpp"
#include "common/cli.hpp"
#include "udp_pingpong/wire.hpp"

namespace ip = boost::asio::ip;

namespace {

std::string host_port_text(const std::string& host, unsigned port) {
  // Brackets keep an IPv6 host's colons apart from the port's; a host that itself starts with
  // '[' (split_host_port accepts "[[x]:1" as host "[x") needs them too, or it reads as unclosed.
  const bool bracket = host.find(':') != std::string::npos || host.starts_with('[');
  return (bracket ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  // --bind: accepted means make_address takes it, and the address survives a print-and-parse.
  if (netlab::ip_address(text).empty()) {
    boost::system::error_code error;
    const auto address = ip::make_address(text, error);
    FUZZ_CHECK(!error);
    FUZZ_CHECK(ip::make_address(address.to_string(), error) == address && !error);
  }

  // --target: accepted only for loopback with a port, and its own printed form is accepted as
  // the same endpoint; explain_target gives a reason exactly when the target is refused.
  const auto target = netlab::bench::parse_loopback_target(text);
  FUZZ_CHECK(netlab::bench::explain_target(text).empty() == target.has_value());
  if (target) {
    FUZZ_CHECK(target->address().is_loopback() && target->port() != 0);
    const auto again = netlab::bench::parse_loopback_target(
        host_port_text(target->address().to_string(), target->port()));
    FUZZ_CHECK(again == target);
  }

  // udp_pingpong's --target: a non-empty host and a port of 1..65535, stable when re-joined.
  if (const auto split = netlab::pingpong::split_host_port(text)) {
    FUZZ_CHECK(!split->host.empty() && split->port != 0);
    const auto again = netlab::pingpong::split_host_port(host_port_text(split->host, split->port));
    FUZZ_CHECK(again && again->host == split->host && again->port == split->port);
  }
  return 0;
}
