// udp_pingpong's pure logic, without sockets: the statistics (against values computed by hand),
// the reply tracker (every way a pong can fail to be a reply), and the wire format.
#include "udp_pingpong/reply_tracker.hpp"
#include "udp_pingpong/wire.hpp"

#include "common/stats.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace netlab;
using namespace netlab::pingpong;
using namespace std::chrono_literals;
using namespace std::string_literals;

BOOST_AUTO_TEST_SUITE(statistics)

BOOST_AUTO_TEST_CASE(min_avg_max_mdev_as_ping_computes_them) {
  latency_stats s;
  for (auto us : {10us, 20us, 30us, 40us}) s.add(us);
  BOOST_TEST(s.count() == 4u);
  BOOST_TEST(s.min().count() == 10'000);
  BOOST_TEST(s.max().count() == 40'000);
  BOOST_TEST(s.mean_ns() == 25'000.0, boost::test_tools::tolerance(1e-9));
  // Population deviation: deviations ±15 and ±5 us; (225 + 25 + 25 + 225) / 4 = 125 us².
  BOOST_TEST(s.mdev_ns() == std::sqrt(125.0) * 1000, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(percentiles_are_nearest_rank) {
  latency_stats s;
  for (auto us : {40us, 10us, 30us, 20us}) s.add(us);  // order of arrival does not matter
  BOOST_TEST(s.percentile(50).count() == 20);  // rank ceil(0.5 × 4) = 2
  BOOST_TEST(s.percentile(90).count() == 40);  // rank ceil(3.6) = 4
  BOOST_TEST(s.percentile(99).count() == 40);
  BOOST_TEST(s.percentile(25).count() == 10);

  latency_stats hundred;
  for (int us = 100; us >= 1; --us) hundred.add(std::chrono::microseconds(us));
  BOOST_TEST(hundred.percentile(50).count() == 50);
  BOOST_TEST(hundred.percentile(90).count() == 90);
  BOOST_TEST(hundred.percentile(99).count() == 99);
  BOOST_TEST(hundred.percentile(100).count() == 100);
  BOOST_TEST(hundred.mean_ns() == 50'500.0, boost::test_tools::tolerance(1e-9));
  // 1..n has population variance (n² - 1) / 12.
  BOOST_TEST(hundred.mdev_ns() == std::sqrt(9999.0 / 12) * 1000,
             boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(percentiles_round_to_the_nearest_microsecond) {
  latency_stats s;
  s.add(41'499ns);
  BOOST_TEST(s.percentile(50).count() == 41);
  s = {};
  s.add(41'500ns);
  BOOST_TEST(s.percentile(50).count() == 42);
}

BOOST_AUTO_TEST_CASE(one_sample_and_no_sample) {
  latency_stats s;
  BOOST_TEST(s.count() == 0u);
  BOOST_TEST(s.mdev_ns() == 0.0);
  BOOST_TEST(s.percentile(50).count() == 0);
  s.add(52us);
  BOOST_TEST(s.mdev_ns() == 0.0);
  BOOST_TEST(s.min() == s.max());
  BOOST_TEST(s.percentile(1).count() == 52);
  BOOST_TEST(s.percentile(99).count() == 52);
}

BOOST_AUTO_TEST_CASE(mdev_keeps_its_digits_when_the_spread_is_tiny) {
  // 1 s ± 1 ns: the sum-of-squares formula would subtract two numbers near 1e18 and keep noise.
  latency_stats s;
  for (auto ns : {999'999'999ns, 1'000'000'000ns, 1'000'000'001ns}) s.add(ns);
  BOOST_TEST(s.mdev_ns() == std::sqrt(2.0 / 3), boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(loss_is_a_percentage_of_sent) {
  BOOST_TEST(loss_percent(0, 0) == 0.0);
  BOOST_TEST(loss_percent(5, 5) == 0.0);
  BOOST_TEST(loss_percent(5, 4) == 20.0);
  BOOST_TEST(loss_percent(3, 2) == 100.0 / 3, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(loss_percent(3, 0) == 100.0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(reply_matching)

namespace {
const clock::time_point t0{};  // a fixed origin: the tracker never reads a clock
constexpr auto timeout = 100ms;

// sent == received + lost + in_flight: nothing is counted twice or dropped.
void check_balance(const reply_tracker& t) {
  BOOST_TEST(t.sent() == t.received() + t.lost() + t.in_flight());
}
}  // namespace

BOOST_AUTO_TEST_CASE(replies_in_order_carry_their_round_trip) {
  reply_tracker t(timeout);
  BOOST_TEST(t.next_seq() == 1u);
  t.sent(t0);
  t.sent(t0 + 1ms);
  BOOST_TEST(t.in_flight() == 2u);
  const auto first = t.receive(1, t0 + 50us);
  BOOST_TEST((first.kind == reply_kind::reply));
  BOOST_TEST((first.rtt == 50us));
  const auto second = t.receive(2, t0 + 1ms + 70us);
  BOOST_TEST((second.kind == reply_kind::reply));
  BOOST_TEST((second.rtt == 70us));
  BOOST_TEST(t.received() == 2u);
  BOOST_TEST(t.in_flight() == 0u);
  check_balance(t);
}

BOOST_AUTO_TEST_CASE(replies_out_of_order_each_match_their_own_ping) {
  reply_tracker t(timeout);
  for (int i = 0; i < 3; ++i) t.sent(t0 + std::chrono::milliseconds(i));
  BOOST_TEST((t.receive(3, t0 + 2ms + 10us).rtt == 10us));
  BOOST_TEST((t.receive(1, t0 + 20us).rtt == 20us));
  BOOST_TEST((t.next_deadline() == t0 + 1ms + timeout));  // seq 2 is now the oldest
  BOOST_TEST((t.receive(2, t0 + 1ms + 30us).rtt == 30us));
  BOOST_TEST(t.received() == 3u);
  check_balance(t);
}

BOOST_AUTO_TEST_CASE(a_second_pong_for_an_answered_ping_is_a_duplicate) {
  reply_tracker t(timeout);
  t.sent(t0);
  BOOST_TEST((t.receive(1, t0 + 10us).kind == reply_kind::reply));
  BOOST_TEST((t.receive(1, t0 + 20us).kind == reply_kind::duplicate));
  BOOST_TEST((t.receive(1, t0 + 30us).kind == reply_kind::duplicate));
  BOOST_TEST(t.received() == 1u);
  BOOST_TEST(t.duplicates() == 2u);
  check_balance(t);
}

BOOST_AUTO_TEST_CASE(a_pong_after_the_timeout_is_late_not_a_reply) {
  reply_tracker t(timeout);
  t.sent(t0);
  t.sent(t0 + 10ms);
  BOOST_TEST(t.expire(t0 + timeout - 1ns).empty());
  BOOST_TEST((t.expire(t0 + timeout) == std::vector<std::uint64_t>{1}));
  BOOST_TEST(t.lost() == 1u);
  BOOST_TEST((t.receive(1, t0 + timeout + 5ms).kind == reply_kind::late));
  // Past its timeout, though the expiry has not run yet: late all the same.
  const auto second = t.receive(2, t0 + 10ms + timeout);
  BOOST_TEST((second.kind == reply_kind::late));
  BOOST_TEST(t.late() == 2u);
  BOOST_TEST(t.received() == 0u);
  BOOST_TEST(t.lost() == 2u);
  check_balance(t);
}

BOOST_AUTO_TEST_CASE(a_pong_for_a_ping_never_sent_is_foreign) {
  reply_tracker t(timeout);
  t.sent(t0);
  BOOST_TEST((t.receive(0, t0).kind == reply_kind::foreign));
  BOOST_TEST((t.receive(2, t0).kind == reply_kind::foreign));  // not sent yet
  const auto huge = std::numeric_limits<std::uint64_t>::max();
  BOOST_TEST((t.receive(huge, t0).kind == reply_kind::foreign));
  t.receive_foreign();  // not a pong at all
  BOOST_TEST(t.foreign() == 4u);
  BOOST_TEST(t.in_flight() == 1u);  // seq 1 is still waiting for its own reply
  BOOST_TEST((t.receive(1, t0 + 1us).kind == reply_kind::reply));
  check_balance(t);
}

BOOST_AUTO_TEST_CASE(a_refusal_loses_the_oldest_outstanding_ping) {
  reply_tracker t(timeout);
  BOOST_TEST(!t.refuse_oldest());
  t.sent(t0);
  t.sent(t0 + 1ms);
  BOOST_TEST((t.refuse_oldest() == 1u));
  BOOST_TEST(t.refused() == 1u);
  BOOST_TEST(t.lost() == 1u);
  BOOST_TEST((t.next_deadline() == t0 + 1ms + timeout));
  BOOST_TEST((t.receive(1, t0 + 2ms).kind == reply_kind::late));  // it had been given up
  check_balance(t);
}

BOOST_AUTO_TEST_CASE(abandoning_counts_every_outstanding_ping_as_lost) {
  reply_tracker t(timeout);
  for (int i = 0; i < 3; ++i) t.sent(t0);
  t.receive(2, t0 + 1us);
  BOOST_TEST(t.abandon_all() == 2u);
  BOOST_TEST(t.lost() == 2u);
  BOOST_TEST(!t.next_deadline());
  check_balance(t);
}

BOOST_AUTO_TEST_CASE(a_pong_too_old_to_remember_is_late) {
  // The bound on memory: after remembered_outcomes more pings, seq 1's outcome is forgotten, and
  // a second pong for it is reported late rather than duplicate (it is past its timeout anyway).
  reply_tracker t(timeout);
  for (std::uint64_t seq = 1; seq <= remembered_outcomes + 1; ++seq) {
    t.sent(t0);
    t.receive(seq, t0 + 1us);
  }
  BOOST_TEST((t.receive(1, t0 + 2us).kind == reply_kind::late));
  BOOST_TEST((t.receive(remembered_outcomes, t0 + 2us).kind == reply_kind::duplicate));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(wire)

namespace {
std::string pong_of(std::string datagram) {
  BOOST_TEST_REQUIRE(turn_into_pong(datagram));
  return datagram;
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_ping_becomes_the_same_bytes_starting_with_pong) {
  BOOST_TEST(pong_of("ping 17 xyz") == "pong 17 xyz");
  BOOST_TEST(pong_of("ping") == "pong");
  BOOST_TEST(pong_of("pingpong") == "pongpong");
  BOOST_TEST(pong_of("ping\0\xff\n"s) == "pong\0\xff\n"s);
  const auto big = "ping" + std::string(max_ping_size - 4, 'z');
  const auto reply = pong_of(big);
  BOOST_TEST(reply.size() == big.size());  // never larger, also at the largest size
  BOOST_TEST(reply.substr(4) == big.substr(4));
}

BOOST_AUTO_TEST_CASE(anything_else_is_left_alone) {
  // Pongs are not answered either: two servers aimed at each other cannot bounce forever.
  for (auto text : {""s, "pin"s, "PING 1"s, " ping"s, "xping"s, "pong 1 x"s, "\0ping"s}) {
    auto bytes = text;
    BOOST_TEST(!turn_into_pong(bytes), "answered " << text);
    BOOST_TEST(bytes == text);
  }
}

BOOST_AUTO_TEST_CASE(a_ping_round_trips_through_its_pong) {
  for (std::size_t size : {min_ping_size, default_ping_size, max_ping_size}) {
    for (std::uint64_t seq : {std::uint64_t{1}, std::uint64_t{42},
                              std::numeric_limits<std::uint64_t>::max()}) {
      std::string datagram(size, '?');
      write_ping(datagram, seq);
      BOOST_TEST(datagram.starts_with("ping " + std::to_string(seq) + " "));
      BOOST_TEST(datagram.find('?') == std::string::npos);
      BOOST_TEST(!read_pong(datagram, size));  // a ping is not a pong
      BOOST_TEST((read_pong(pong_of(datagram), size) == seq));
    }
  }
}

BOOST_AUTO_TEST_CASE(only_an_exact_mirror_of_a_ping_is_read_as_a_pong) {
  std::string ping(64, '?');
  write_ping(ping, 7);
  const auto pong = pong_of(ping);
  BOOST_TEST((read_pong(pong, 64) == 7u));
  BOOST_TEST(!read_pong(pong, 65));                 // not the size we send
  BOOST_TEST(!read_pong(pong.substr(0, 63), 64));   // truncated on the way
  auto altered = pong;
  altered.back() = 'y';
  BOOST_TEST(!read_pong(altered, 64));              // padding changed
  for (auto bad : {"pong 07 "s, "pong  7 "s, "pong 7x "s, "pong -7 "s, "pong x "s, "pong 7"s}) {
    auto datagram = bad + std::string(64 - bad.size(), 'x');
    BOOST_TEST(!read_pong(datagram, 64), "accepted " << bad);
  }
  BOOST_TEST(!read_pong("", 64));
}

BOOST_AUTO_TEST_CASE(targets_split_into_host_and_port) {
  const auto v4 = split_host_port("127.0.0.1:4000");
  BOOST_TEST_REQUIRE(v4.has_value());
  BOOST_TEST(v4->host == "127.0.0.1");
  BOOST_TEST(v4->port == 4000);
  const auto v6 = split_host_port("[::1]:65535");
  BOOST_TEST_REQUIRE(v6.has_value());
  BOOST_TEST(v6->host == "::1");
  BOOST_TEST(v6->port == 65535);
  BOOST_TEST(split_host_port("localhost:1")->host == "localhost");
  for (auto bad : {"", "127.0.0.1", "127.0.0.1:", ":4000", "::1:4000", "[::1]4000", "[::1]:",
                   "host:0", "host:65536", "host:40x", "[]:4000", "host:-1"}) {
    BOOST_TEST(!split_host_port(bad), "accepted " << bad);
  }
}

BOOST_AUTO_TEST_SUITE_END()
