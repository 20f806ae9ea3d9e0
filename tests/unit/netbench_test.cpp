// netbench's checkers must catch what they claim to catch. The pure parts (line formats, the
// sequence verdicts, the chat receiver) get crafted input; the loads run in-process against
// deliberately faulty servers on 127.0.0.1:0 (their own thread and io_context), one fault at a
// time, and each fault must show up in exactly its own counter.
#include "bench/netbench/chat_check.hpp"
#include "bench/netbench/chat_load.hpp"
#include "bench/netbench/conns_load.hpp"
#include "bench/netbench/echo_load.hpp"
#include "bench/netbench/hold_load.hpp"
#include "bench/netbench/line_buffer.hpp"
#include "bench/netbench/json_line.hpp"
#include "bench/netbench/latency_histogram.hpp"
#include "bench/netbench/sequence_tracker.hpp"
#include "bench/netbench/target.hpp"
#include "bench/netbench/wire.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <chrono>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace netlab::bench;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

// ---- A faulty server, on a thread of its own -------------------------------------------------

enum class fault { none, corrupt, drop, duplicate, swap, close, echo_to_sender };

// The line a fault hits, per connection (echo) or per sender and receiver (chat): late enough
// that the stream is running, early enough for a half-second run at any speed.
constexpr std::size_t faulty_line = 10;

// Runs `serve(socket)` for each connection on its own io_context and thread. The coroutines
// are free functions below; tests never share state with them except through `stop()`.
class server_thread {
 public:
  server_thread() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}
  ~server_thread() { stop(); }

  tcp::endpoint address() const { return acceptor_.local_endpoint(); }
  tcp::acceptor& acceptor() { return acceptor_; }
  asio::io_context& io() { return io_; }

  void start() {
    thread_ = std::thread([this] { io_.run(); });
  }
  void stop() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

// The echo server: every line back, except that line `nth` of each connection suffers `f`.
asio::awaitable<void> faulty_echo_session(tcp::socket socket, fault f, std::size_t nth) {
  std::string input;
  std::string held;  // swap: line N waits for line N + 1
  for (std::size_t index = 0;; ++index) {
    auto [error, length] = co_await asio::async_read_until(socket, asio::dynamic_buffer(input),
                                                           '\n', asio::as_tuple(use_awaitable));
    if (error) co_return;
    std::string line = input.substr(0, length);
    input.erase(0, length);
    std::string out = line;
    if (index == nth) {
      switch (f) {
        case fault::corrupt:
          out[out.size() - 2] ^= 1;
          break;  // a filler byte, not the header
        case fault::drop:
          out.clear();
          break;
        case fault::duplicate:
          out += line;
          break;
        case fault::swap:
          held = line;
          out.clear();
          break;
        case fault::close:
          socket.close();
          co_return;
        default:
          break;
      }
    } else if (index == nth + 1 && f == fault::swap) {
      out += held;
    }
    if (!out.empty()) {
      auto [write_error, written] =
          co_await asio::async_write(socket, asio::buffer(out), asio::as_tuple(use_awaitable));
      if (write_error) co_return;
    }
  }
}

asio::awaitable<void> accept_echo(tcp::acceptor& acceptor, fault f, std::size_t nth) {
  for (;;) {
    auto socket = co_await acceptor.async_accept(use_awaitable);
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), faulty_echo_session(std::move(socket), f, nth),
                   asio::detached);
  }
}

struct faulty_echo_server : server_thread {
  explicit faulty_echo_server(fault f, std::size_t nth = faulty_line) {
    asio::co_spawn(io(), accept_echo(acceptor(), f, nth), asio::detached);
    start();
  }
};

echo_options short_echo(tcp::endpoint target) {
  echo_options options;
  options.target = target;
  options.conns = 2;
  options.inflight = 4;
  options.size = 64;
  options.duration = 500ms;
  options.warmup = 0ms;
  return options;
}

// ---- A chat relay: every line to every other client as `cN: line`, with one fault ----------

struct relay_client {
  relay_client(tcp::socket s, std::size_t number)
      : socket(std::move(s)), id(number), wake(socket.get_executor()) {}
  tcp::socket socket;
  std::size_t id;
  std::deque<std::string> outbox;
  asio::steady_timer wake;  // cancelled when the outbox gets a line
  bool closed = false;
};

struct relay_state {
  fault f = fault::none;
  std::size_t outbox_limit = 0;  // 0: unbounded; else a client further behind is dropped
  std::vector<std::shared_ptr<relay_client>> clients;
  std::size_t lines_from_first = 0;  // lines client 0 has sent so far
  std::string held;
};

void enqueue(relay_state& relay, relay_client& to, std::string line) {
  if (to.closed) return;
  to.outbox.push_back(std::move(line));
  to.wake.cancel();
  if (relay.outbox_limit > 0 && to.outbox.size() > relay.outbox_limit) {
    to.closed = true;  // too slow: dropped, as the queued design does
    to.socket.close();
  }
}

// The fault hits line `faulty_line` of client 0 (netbench's sender 0), on its way to client 1
// (or, for echo_to_sender, sent back to client 0 as well).
void relay_line(relay_state& relay, const relay_client& from, const std::string& text) {
  const std::string line = "c" + std::to_string(from.id) + ": " + text;
  const bool from_first = from.id == 0;
  const std::size_t index = from_first ? relay.lines_from_first++ : 0;
  const bool faulty = from_first && index == faulty_line;
  for (const auto& to : relay.clients) {
    if (to->id == from.id) {
      if (faulty && relay.f == fault::echo_to_sender) enqueue(relay, *to, line);
      continue;
    }
    if (!from_first || to->id != 1) {
      enqueue(relay, *to, line);
    } else if (faulty && relay.f == fault::corrupt) {
      std::string damaged = line;
      damaged[damaged.size() - 2] ^= 1;  // a filler byte
      enqueue(relay, *to, damaged);
    } else if (faulty && relay.f == fault::duplicate) {
      enqueue(relay, *to, line);
      enqueue(relay, *to, line);
    } else if (faulty && relay.f == fault::swap) {
      relay.held = line;
    } else if (faulty && relay.f == fault::drop) {
      // dropped
    } else if (index == faulty_line + 1 && relay.f == fault::swap) {
      enqueue(relay, *to, line);
      enqueue(relay, *to, relay.held);
    } else {
      enqueue(relay, *to, line);
    }
  }
}

asio::awaitable<void> relay_reader(relay_state& relay, std::shared_ptr<relay_client> client) {
  std::string input;
  for (;;) {
    auto [error, length] = co_await asio::async_read_until(
        client->socket, asio::dynamic_buffer(input), '\n', asio::as_tuple(use_awaitable));
    if (error) break;
    relay_line(relay, *client, input.substr(0, length));
    input.erase(0, length);
  }
  client->closed = true;
  std::erase(relay.clients, client);
}

asio::awaitable<void> relay_writer(std::shared_ptr<relay_client> client) {
  while (!client->closed) {
    if (client->outbox.empty()) {
      client->wake.expires_after(1h);
      co_await client->wake.async_wait(asio::as_tuple(use_awaitable));
      continue;
    }
    std::vector<std::string> batch(client->outbox.begin(), client->outbox.end());
    client->outbox.clear();
    std::vector<asio::const_buffer> buffers;
    for (const auto& line : batch) buffers.push_back(asio::buffer(line));
    auto [error, written] =
        co_await asio::async_write(client->socket, buffers, asio::as_tuple(use_awaitable));
    if (error) co_return;
  }
}

asio::awaitable<void> accept_relay(tcp::acceptor& acceptor, relay_state& relay) {
  for (std::size_t id = 0;; ++id) {
    auto socket = co_await acceptor.async_accept(use_awaitable);
    socket.set_option(tcp::no_delay(true));
    // A small send buffer, so that a client that does not read fills its outbox within a short
    // run (the kernel would otherwise grow the buffer to megabytes and absorb everything).
    socket.set_option(asio::socket_base::send_buffer_size(8192));
    auto client = std::make_shared<relay_client>(std::move(socket), id);
    relay.clients.push_back(client);
    asio::co_spawn(acceptor.get_executor(), relay_reader(relay, client), asio::detached);
    asio::co_spawn(acceptor.get_executor(), relay_writer(client), asio::detached);
  }
}

struct chat_relay : server_thread {
  explicit chat_relay(fault f, std::size_t outbox_limit = 0) {
    relay.f = f;
    relay.outbox_limit = outbox_limit;
    asio::co_spawn(io(), accept_relay(acceptor(), relay), asio::detached);
    start();
  }
  ~chat_relay() { stop(); }  // before `relay` goes: the relay's coroutines use it
  relay_state relay;
};

chat_options short_chat(tcp::endpoint target) {
  chat_options options;
  options.target = target;
  options.clients = 3;
  options.senders = 2;
  options.duration = 400ms;
  return options;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(netbench_checkers)

BOOST_AUTO_TEST_CASE(echo_lines_have_their_size_and_header) {
  std::string out;
  append_echo_line(out, 0xffff, 0xffffffff, min_echo_line);
  BOOST_TEST(out.size() == min_echo_line);
  BOOST_TEST(out.back() == '\n');
  const auto header = parse_echo_header(out);
  BOOST_REQUIRE(header.has_value());
  BOOST_TEST(header->conn == 0xffffu);
  BOOST_TEST(header->seq == 0xffffffffu);

  std::string a, b;
  append_echo_line(a, 1, 7, 64);
  append_echo_line(b, 1, 8, 64);
  BOOST_TEST(a.size() == 64u);
  BOOST_TEST(a.substr(10) != b.substr(10));  // the filler follows the sequence number
  BOOST_TEST(a.find('\n') == 63u);
  BOOST_TEST(!parse_echo_header("zz:1:AAAA\n").has_value());
  BOOST_TEST(!parse_echo_header("1:2\n").has_value());
}

BOOST_AUTO_TEST_CASE(chat_lines_are_found_anywhere_and_checked_byte_for_byte) {
  std::string line;
  append_chat_line(line, 3, 17, 123456);
  BOOST_TEST(line.size() == chat_line_size);
  const auto plain = parse_chat_line(line);
  BOOST_TEST((plain.kind == chat_line_kind::delivery));
  BOOST_REQUIRE(plain.delivery.has_value());
  BOOST_TEST(plain.delivery->sender == 3u);
  BOOST_TEST(plain.delivery->seq == 17u);
  BOOST_TEST(plain.delivery->send_ns == 123456u);

  const auto prefixed = parse_chat_line("127.0.0.1:5555: " + line);
  BOOST_TEST((prefixed.kind == chat_line_kind::delivery));
  BOOST_TEST((parse_chat_line("* 127.0.0.1:5555 joined\n").kind == chat_line_kind::foreign));
  BOOST_TEST((parse_chat_line("error: too slow, disconnected\n").kind == chat_line_kind::foreign));

  std::string damaged = line;
  damaged[40] ^= 1;  // in the filler: the numbers can still be read
  const auto bad_filler = parse_chat_line(damaged);
  BOOST_TEST((bad_filler.kind == chat_line_kind::corrupted));
  BOOST_TEST((bad_filler.delivery.has_value() && bad_filler.delivery->seq == 17u));
  const auto bad_numbers = parse_chat_line("x: nb 1 two 3\n");
  BOOST_TEST((bad_numbers.kind == chat_line_kind::corrupted));
  BOOST_TEST(!bad_numbers.delivery.has_value());
  BOOST_TEST((parse_chat_line(line.substr(0, 40) + "\n").kind == chat_line_kind::corrupted));
}

BOOST_AUTO_TEST_CASE(sequence_verdicts) {
  using verdict = sequence_tracker::verdict;
  sequence_tracker t;
  BOOST_TEST((t.record(0) == verdict::in_order));
  BOOST_TEST((t.record(1) == verdict::in_order));
  BOOST_TEST((t.record(4) == verdict::after_gap));  // 2 and 3 lost, for now
  BOOST_TEST(t.lost() == 2u);
  BOOST_TEST((t.record(3) == verdict::reordered));  // not lost after all
  BOOST_TEST(t.lost() == 1u);
  BOOST_TEST(t.reordered() == 1u);
  BOOST_TEST((t.record(3) == verdict::duplicated));
  BOOST_TEST((t.record(0) == verdict::duplicated));
  BOOST_TEST(t.duplicated() == 2u);
  BOOST_TEST(t.next_expected() == 5u);
  t.close(8);  // 5, 6, 7 never came
  BOOST_TEST(t.lost() == 4u);

  // A huge gap is counted in full, but only the newest skips are remembered.
  sequence_tracker big;
  big.record(remembered_gaps * 3);
  BOOST_TEST(big.lost() == remembered_gaps * 3);
  BOOST_TEST((big.record(0) == verdict::duplicated));  // forgotten: cannot be told apart
  BOOST_TEST((big.record(remembered_gaps * 3 - 1) == verdict::reordered));
  BOOST_TEST(big.lost() == remembered_gaps * 3 - 1);
}

BOOST_AUTO_TEST_CASE(chat_receiver_classifies_each_line) {
  const std::vector<std::uint64_t> sent{20, 20};  // two senders, 20 lines each so far
  chat_receiver receiver(2, sent.size());         // client 2: reads only
  auto line = [](std::uint32_t sender, std::uint64_t seq) {
    std::string text = "127.0.0.1:4000: ";
    append_chat_line(text, sender, seq, 1000 + seq);
    return text;
  };
  BOOST_TEST(receiver.receive(line(0, 0), sent).has_value());
  BOOST_TEST(receiver.receive(line(1, 0), sent).has_value());  // senders are independent
  BOOST_TEST(receiver.receive(line(0, 1), sent).has_value());
  BOOST_TEST(!receiver.receive("* someone joined\n", sent).has_value());
  BOOST_TEST(receiver.receive(line(0, 3), sent).has_value());  // 2 skipped
  BOOST_TEST(receiver.lost() == 1u);
  BOOST_TEST(!receiver.receive(line(0, 3), sent).has_value());  // again
  BOOST_TEST(receiver.duplicated() == 1u);
  BOOST_TEST(receiver.receive(line(0, 2), sent).has_value());  // late, not lost
  BOOST_TEST(receiver.lost() == 0u);
  BOOST_TEST(receiver.reordered() == 1u);
  BOOST_TEST(!receiver.receive(line(0, 25), sent).has_value());  // never sent
  BOOST_TEST(!receiver.receive(line(5, 0), sent).has_value());   // no such sender
  BOOST_TEST(receiver.corrupted() == 2u);
  std::string damaged = line(1, 1);
  damaged[damaged.size() - 2] ^= 1;
  BOOST_TEST(!receiver.receive(damaged, sent).has_value());
  BOOST_TEST(receiver.corrupted() == 3u);
  BOOST_TEST(receiver.receive(line(1, 2), sent).has_value());  // no gap: 1 arrived, damaged
  BOOST_TEST(receiver.lost() == 0u);
  BOOST_TEST(receiver.deliveries() == 6u);

  chat_receiver sender_one(1, sent.size());
  BOOST_TEST(!sender_one.receive(line(1, 0), sent).has_value());  // its own line
  BOOST_TEST(sender_one.self_echo() == 1u);
  sender_one.close(sent);  // all of sender 0's 20 lines missing; its own are not expected
  BOOST_TEST(sender_one.lost() == 20u);
}

BOOST_AUTO_TEST_CASE(line_buffer_hands_out_whole_lines) {
  line_buffer buffer(8);
  auto feed = [&buffer](std::string_view bytes) {
    auto space = buffer.free_space();
    BOOST_REQUIRE(space.size() >= bytes.size());
    std::copy(bytes.begin(), bytes.end(), space.begin());
    buffer.commit(bytes.size());
  };
  feed("ab\ncd");
  BOOST_TEST(*buffer.next_line() == "ab\n");
  BOOST_TEST(!buffer.next_line().has_value());
  feed("e\n");
  BOOST_TEST(*buffer.next_line() == "cde\n");
  feed("12345678");
  BOOST_TEST(!buffer.next_line().has_value());
  BOOST_TEST(buffer.full());
}

BOOST_AUTO_TEST_CASE(targets_are_loopback_only) {
  BOOST_TEST(parse_loopback_target("127.0.0.1:8080").has_value());
  BOOST_TEST(parse_loopback_target("127.1.2.3:1").has_value());
  BOOST_TEST(parse_loopback_target("[::1]:8080").has_value());
  BOOST_TEST(parse_loopback_target("localhost:80").has_value());
  BOOST_TEST(!parse_loopback_target("10.0.0.1:8080").has_value());
  BOOST_TEST(!parse_loopback_target("0.0.0.0:8080").has_value());
  BOOST_TEST(!parse_loopback_target("example.com:80").has_value());
  BOOST_TEST(!parse_loopback_target("127.0.0.1").has_value());
  BOOST_TEST(!parse_loopback_target("127.0.0.1:0").has_value());
  BOOST_TEST(!parse_loopback_target("127.0.0.1:70000").has_value());
  BOOST_TEST(explain_target("192.168.1.1:80").find("not a loopback") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(latencies_keep_three_significant_digits) {
  BOOST_TEST(three_significant_digits(0) == 0);
  BOOST_TEST(three_significant_digits(999) == 999);
  BOOST_TEST(three_significant_digits(12'345) == 12'300);
  BOOST_TEST(three_significant_digits(12'350) == 12'400);
  BOOST_TEST(three_significant_digits(9'996) == 10'000);
  BOOST_TEST(three_significant_digits(1'234'567'890) == 1'230'000'000);

  // 14.2 and 14.4 us, a microsecond histogram's 14 and 14: now told apart.
  latency_histogram h;
  for (int i = 0; i < 3; ++i) h.add(std::chrono::nanoseconds(14'200));
  for (int i = 0; i < 2; ++i) h.add(std::chrono::nanoseconds(14'400));
  BOOST_TEST(h.percentile_us(50) == 14.2);   // rank ceil(2.5) = 3
  BOOST_TEST(h.percentile_us(80) == 14.4);   // rank 4
  BOOST_TEST(h.max_us() == 14.4);

  // Merging adds counts: the merged p50 moves to the other histogram's value.
  latency_histogram other;
  for (int i = 0; i < 6; ++i) other.add(std::chrono::microseconds(1'000));
  h.merge(other);
  BOOST_TEST(h.count() == 11u);
  BOOST_TEST(h.percentile_us(50) == 1'000.0);  // rank 6: past the five small ones
  BOOST_TEST(h.percentile_us(1) == 14.2);
  BOOST_TEST(latency_histogram().percentile_us(50) == 0.0);
}

BOOST_AUTO_TEST_CASE(json_numbers_and_nulls) {
  const auto text = json_line()
                        .add("workload", "echo")
                        .add("lines", std::uint64_t{42})
                        .add("rate", 1.5)
                        .add("empty", std::numeric_limits<double>::quiet_NaN())
                        .add("cpu", std::optional<double>{})
                        .add("per", ratio(2.0, 0))
                        .str();
  BOOST_TEST(text ==
             R"({"workload":"echo","lines":42,"rate":1.500,"empty":null,"cpu":null,"per":null})");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(netbench_echo)

BOOST_AUTO_TEST_CASE(a_correct_server_gives_lines_and_no_error) {
  faulty_echo_server server(fault::none);
  auto options = short_echo(server.address());
  options.pid = getpid();  // the server runs in this process
  const auto result = run_echo(options);
  BOOST_TEST(result.lines > 0u);
  BOOST_TEST(result.errors() == 0u);
  BOOST_TEST(result.latency.count() == result.lines);
  BOOST_TEST(result.duration_s > 0.4);
  BOOST_TEST(result.duration_s < 0.6);
  BOOST_TEST(result.server_cpu_s.has_value());
  const auto json = summary_json(result);
  BOOST_TEST(json.rfind(R"({"workload":"echo","conns":2,"inflight":4,"size":64,)", 0) == 0u);
  BOOST_TEST(json.find(R"("errors":0,)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(several_threads_change_nothing_but_speed) {
  faulty_echo_server server(fault::none);
  auto options = short_echo(server.address());
  options.threads = 2;
  options.conns = 8;
  const auto result = run_echo(options);
  BOOST_TEST(result.lines > 0u);
  BOOST_TEST(result.errors() == 0u);
}

std::map<std::string, std::uint64_t> error_counts(const echo_result& r) {
  return {{"corrupted", r.corrupted},
          {"lost", r.lost},
          {"duplicated", r.duplicated},
          {"reordered", r.reordered},
          {"disconnected", r.disconnected}};
}

// Each fault must land in its own counter, and only there.
BOOST_AUTO_TEST_CASE(each_fault_is_caught_by_its_own_counter) {
  const std::vector<std::pair<fault, std::string>> cases{
      {fault::corrupt, "corrupted"},    {fault::drop, "lost"},
      {fault::duplicate, "duplicated"}, {fault::swap, "reordered"},
      {fault::close, "disconnected"},
  };
  for (const auto& [f, expected] : cases) {
    BOOST_TEST_CONTEXT("fault caught as " << expected) {
      faulty_echo_server server(f);
      const auto result = run_echo(short_echo(server.address()));
      // One fault per connection, on both connections.
      for (const auto& [counter, value] : error_counts(result)) {
        BOOST_TEST_CONTEXT(counter) { BOOST_TEST(value == (counter == expected ? 2u : 0u)); }
      }
      BOOST_TEST(result.errors() == 2u);
      BOOST_TEST(summary_json(result).find(R"("errors":2,)") != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_refused_connect_is_an_error) {
  tcp::endpoint nobody;
  {
    server_thread closed;  // a port that was free a moment ago, with nobody listening now
    nobody = closed.address();
  }
  auto options = short_echo(nobody);
  options.duration = 100ms;
  const auto result = run_echo(options);
  BOOST_TEST(result.disconnected == 2u);
  BOOST_TEST(result.lines == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(netbench_chat)

BOOST_AUTO_TEST_CASE(a_correct_relay_delivers_every_line_to_every_other_client) {
  chat_relay relay(fault::none);
  auto options = short_chat(relay.address());
  const auto result = run_chat(options);
  BOOST_TEST(result.sent > 0u);
  // Each of the 2 senders' lines reaches the 2 other clients.
  BOOST_TEST(result.deliveries == result.sent * 2);
  BOOST_TEST(result.errors() == 0u);
  BOOST_TEST(result.latency.count() == result.deliveries);
  BOOST_TEST(!result.timeline.empty());
}

BOOST_AUTO_TEST_CASE(a_fixed_rate_sends_about_that_many_lines) {
  chat_relay relay(fault::none);
  auto options = short_chat(relay.address());
  options.rate = 100;  // per sender, for 0.4 s: about 40 each
  const auto result = run_chat(options);
  BOOST_TEST(result.sent >= 70u);
  BOOST_TEST(result.sent <= 90u);
  BOOST_TEST(result.errors() == 0u);
}

std::map<std::string, std::uint64_t> error_counts(const chat_result& r) {
  return {{"corrupted", r.corrupted}, {"lost", r.lost},           {"duplicated", r.duplicated},
          {"reordered", r.reordered}, {"self_echo", r.self_echo}, {"disconnected", r.disconnected}};
}

BOOST_AUTO_TEST_CASE(each_relay_fault_is_caught_by_its_own_counter) {
  const std::vector<std::pair<fault, std::string>> cases{
      {fault::corrupt, "corrupted"},        {fault::drop, "lost"},
      {fault::duplicate, "duplicated"},     {fault::swap, "reordered"},
      {fault::echo_to_sender, "self_echo"},
  };
  for (const auto& [f, expected] : cases) {
    BOOST_TEST_CONTEXT("fault caught as " << expected) {
      chat_relay relay(f);
      const auto result = run_chat(short_chat(relay.address()));
      // One line, of one sender, to one receiver.
      for (const auto& [counter, value] : error_counts(result)) {
        BOOST_TEST_CONTEXT(counter) { BOOST_TEST(value == (counter == expected ? 1u : 0u)); }
      }
      BOOST_TEST(result.errors() == 1u);
    }
  }
}

BOOST_AUTO_TEST_CASE(slow_clients_dropped_by_the_server_are_counted_apart) {
  chat_relay relay(fault::none, 64);  // drops a client 64 lines behind
  auto options = short_chat(relay.address());
  options.slow = 2;
  const auto result = run_chat(options);
  BOOST_TEST(result.slow_disconnected == 2u);
  BOOST_TEST(result.errors() == 0u);  // the reading clients got everything
  BOOST_TEST(result.deliveries == result.sent * 2);
}

BOOST_AUTO_TEST_CASE(slow_clients_the_server_keeps_are_not_counted) {
  chat_relay relay(fault::none);  // unbounded outboxes: nobody is dropped
  auto options = short_chat(relay.address());
  options.slow = 1;
  options.slow_join_at = 100ms;
  const auto result = run_chat(options);
  BOOST_TEST(result.slow_disconnected == 0u);
  BOOST_TEST(result.errors() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(netbench_connections)

BOOST_AUTO_TEST_CASE(conns_completes_every_connection) {
  faulty_echo_server server(fault::none);
  conns_options options;
  options.target = server.address();
  options.total = 40;
  options.concurrency = 8;
  const auto result = run_conns(options);
  BOOST_TEST(result.completed == 40u);
  BOOST_TEST(result.failed == 0u);
  BOOST_TEST(result.latency.count() == 40u);
}

BOOST_AUTO_TEST_CASE(conns_counts_refused_closed_and_wrong_echoes_as_failed) {
  conns_options options;
  options.total = 6;
  options.concurrency = 2;
  {
    server_thread closed;
    options.target = closed.address();  // nobody listens there any more: refused
  }
  BOOST_TEST(run_conns(options).failed == 6u);
  for (const auto f : {fault::close, fault::corrupt}) {
    faulty_echo_server server(f, 0);  // the one `hello` line is the faulty one
    options.target = server.address();
    const auto result = run_conns(options);
    BOOST_TEST(result.completed == 0u);
    BOOST_TEST(result.failed == 6u);
    BOOST_TEST(result.errors() == 6u);
  }
}

BOOST_AUTO_TEST_CASE(hold_keeps_connections_and_reads_memory) {
  faulty_echo_server server(fault::none);
  hold_options options;
  options.target = server.address();
  options.conns = 20;
  options.hold = 300ms;
  options.settle = 100ms;
  options.pid = getpid();
  options.touch = true;
  const auto result = run_hold(options);
  BOOST_TEST(result.held == 20u);
  BOOST_TEST(result.errors() == 0u);
  BOOST_TEST(result.rss_before_kib.has_value());
  BOOST_TEST(result.rss_after_kib.has_value());
  BOOST_TEST(result.kib_per_conn().has_value());
}

BOOST_AUTO_TEST_SUITE_END()
