// udp_pingpong's wire format (udp_pingpong/wire.hpp): B's reply rule on arbitrary datagrams, and
// A's parser against A's own builder.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "udp_pingpong/wire.hpp"

namespace pp = netlab::pingpong;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // B: answers exactly the datagrams that start with "ping", with the same bytes but "pong" (so
  // never more bytes than it got: no amplification), and leaves anything else alone.
  std::vector<char> datagram(input.begin(), input.end());
  const bool answered = pp::turn_into_pong(datagram);
  const std::string_view reply(datagram.data(), datagram.size());
  FUZZ_CHECK(answered == input.starts_with("ping"));
  if (answered) {
    FUZZ_CHECK(reply.starts_with("pong") && reply.substr(4) == input.substr(4));
  } else {
    FUZZ_CHECK(reply == input);
  }

  // A: read_pong accepts only the canonical pong, the one A itself would get back for that seq
  // and size. Rebuilding it from the parsed number must give the very same bytes.
  if (const auto seq = pp::read_pong(datagram, datagram.size())) {
    FUZZ_CHECK(*seq != 0);  // pings count from 1
    std::vector<char> rebuilt(datagram.size());
    pp::write_ping(rebuilt, *seq);
    FUZZ_CHECK(pp::turn_into_pong(rebuilt) && rebuilt == datagram);
  }

  // Round trip: a ping of any allowed size for a seq taken from the input comes back as that seq;
  // one byte more or less is not the reply (a reply has exactly the ping's size).
  if (size >= 10) {
    std::uint64_t seq = 0;
    std::memcpy(&seq, data, sizeof seq);
    const std::size_t ping_size =
        pp::min_ping_size +
        (std::size_t{data[8]} << 8 | data[9]) % (pp::max_ping_size - pp::min_ping_size + 1);
    std::vector<char> ping(ping_size);
    pp::write_ping(ping, seq);
    FUZZ_CHECK(std::string_view(ping.data(), ping.size()).starts_with("ping "));
    FUZZ_CHECK(pp::turn_into_pong(ping));
    // seq 0 is never sent ("from 1"), and read_pong refuses the leading '0' it would be.
    FUZZ_CHECK(pp::read_pong(ping, ping_size) == (seq == 0 ? std::nullopt : std::optional(seq)));
    FUZZ_CHECK(!pp::read_pong(ping, ping_size + 1));
    FUZZ_CHECK(!pp::read_pong(std::span<const char>(ping).first(ping_size - 1), ping_size));
  }
  return 0;
}
