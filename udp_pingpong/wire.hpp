// The udp_pingpong wire format, with no socket in sight (unit tests and fuzzers call it directly).
//
//   A -> B   ping <seq> xxxxxxxx...     exactly --size bytes; <seq> in decimal, from 1
//   B -> A   pong <seq> xxxxxxxx...     the same datagram with its first four bytes rewritten
//
// B needs to understand none of it beyond the prefix: it answers any datagram that starts with
// `ping`. Only A parses the sequence number, to match a reply to the ping it answers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace netlab::pingpong {

// The largest UDP payload: 65535 minus the IPv6 UDP header is 65527; the buffer is rounded up so
// that no datagram is ever truncated on receipt (a truncated ping would get a shorter pong).
inline constexpr std::size_t max_datagram = 65536;

// --size bounds. A ping holds `ping `, up to 20 digits and a space; 65507 is the largest UDP
// payload over IPv4.
inline constexpr std::size_t min_ping_size = 32;
inline constexpr std::size_t max_ping_size = 65507;
inline constexpr std::size_t default_ping_size = 64;  // ping(8)'s 56 data bytes + ICMP header

// B: turns a ping into its pong in place and returns true; returns false (leaving the bytes
// alone) for anything else, empty datagrams included. The reply is the request's own buffer, so
// it can never be larger than the request: no amplification, whatever the sender sends.
bool turn_into_pong(std::span<char> datagram);

// A: fills `datagram` (min_ping_size..max_ping_size bytes) with the ping for `seq`.
void write_ping(std::span<char> datagram, std::uint64_t seq);

// A: the sequence number of a datagram that is exactly the pong to one of this pinger's pings
// (`ping_size` bytes, `pong <seq> ` then the padding), or nullopt for anything else.
std::optional<std::uint64_t> read_pong(std::span<const char> datagram, std::size_t ping_size);

// `127.0.0.1:4000`, `[::1]:4000` or `localhost:4000` split into host and port; nullopt when the
// text is not of that form (an IPv6 address needs its brackets, the port is 1..65535).
struct host_port {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<host_port> split_host_port(std::string_view text);

}  // namespace netlab::pingpong
