// Unit tests of common/: line framing, the shutdown coordinator, endpoint formatting, the
// command line's exit codes, the runtime's threads, write_all, the listener's socket options.
#include "common/cli.hpp"
#include "common/line_reader.hpp"
#include "common/listener.hpp"
#include "common/log.hpp"
#include "common/shutdown.hpp"
#include "common/spawn.hpp"
#include "common/write.hpp"
#include "test_support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include <sched.h>

#include <thread>

#include <sstream>

#include <cstring>
#include <string>
#include <vector>

using namespace netlab;
using namespace std::string_literals;
using boost::asio::ip::tcp;

namespace {

// Feeds `input` to a line_reader in reads of at most `chunk` bytes and collects what it frames.
struct framed {
  std::vector<std::string> lines;
  bool too_long = false;
  std::string rest;
};

framed frame(std::string_view input, std::size_t max_line, std::size_t chunk) {
  line_reader reader(max_line);
  framed out;
  while (!input.empty()) {
    auto space = reader.prepare();
    const auto n = std::min({chunk, space.size(), input.size()});
    std::memcpy(space.data(), input.data(), n);
    reader.commit(n);
    input.remove_prefix(n);
    while (auto line = reader.take_line()) out.lines.push_back(*line);
    if (reader.too_long()) {
      out.too_long = true;
      return out;
    }
  }
  out.rest = reader.take_rest();
  return out;
}

// One read that brought `bytes` (they must fit in the space prepare() gives).
void feed(line_reader& reader, std::string_view bytes) {
  auto space = reader.prepare();
  BOOST_REQUIRE(bytes.size() <= space.size());
  std::memcpy(space.data(), bytes.data(), bytes.size());
  reader.commit(bytes.size());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(line_framing)

BOOST_AUTO_TEST_CASE(lines_keep_every_byte_and_their_newline) {
  const auto input = "a\r\n\0b\xff\n\nlast"s;
  for (std::size_t chunk : {1, 2, 3, 7, 64}) {
    const auto out = frame(input, 100, chunk);
    BOOST_TEST(out.lines == (std::vector<std::string>{"a\r\n", "\0b\xff\n"s, "\n"}),
               "chunk " << chunk);
    BOOST_TEST(out.rest == "last");
    BOOST_TEST(!out.too_long);
  }
}

BOOST_AUTO_TEST_CASE(max_line_bytes_pass_one_more_is_refused) {
  const std::size_t max_line = 10;
  const auto fits = frame(std::string(max_line, 'x') + "\n", max_line, 4);
  BOOST_TEST(fits.lines.size() == 1u);
  BOOST_TEST(fits.lines[0].size() == max_line + 1);
  BOOST_TEST(!fits.too_long);

  const auto over = frame(std::string(max_line + 1, 'x') + "\n", max_line, 4);
  BOOST_TEST(over.lines.empty());
  BOOST_TEST(over.too_long);
}

BOOST_AUTO_TEST_CASE(buffer_grows_only_as_far_as_max_line) {
  const std::size_t max_line = 100'000;  // larger than one read chunk
  const std::string line = std::string(max_line, 'y') + "\n";
  const auto out = frame(line + "next\n", max_line, 5000);
  BOOST_TEST(out.lines == (std::vector<std::string>{line, "next\n"}));

  line_reader reader(max_line);
  BOOST_TEST(reader.capacity() == 0u);  // nothing allocated before the first read
  reader.prepare();
  BOOST_TEST(reader.capacity() == read_chunk);
}

BOOST_AUTO_TEST_CASE(line_views_stay_valid_until_the_next_read) {
  line_reader reader(100);
  feed(reader, "one\ntwo\nthr");
  const auto one = reader.take_line_view();
  const auto two = reader.take_line_view();
  BOOST_TEST(!reader.take_line_view());  // "thr" is not a line yet
  BOOST_REQUIRE(one && two);
  BOOST_TEST(*one == "one\n");
  BOOST_TEST(*two == "two\n");
  feed(reader, "ee\n");  // prepare(): the views are invalid from here on; the rest is kept
  BOOST_TEST(reader.take_line().value_or("none") == "three\n");
}

BOOST_AUTO_TEST_CASE(take_lines_hands_out_at_most_so_many_whole_lines_as_one_view) {
  line_reader reader(100);
  feed(reader, "1\n22\n333\n4444\n55");
  BOOST_TEST(reader.has_line());
  BOOST_TEST(reader.take_lines(3).value_or("none") == "1\n22\n333\n");
  BOOST_TEST(reader.take_lines(3).value_or("none") == "4444\n");  // "55" is not a line yet
  BOOST_TEST(!reader.has_line());
  BOOST_TEST(!reader.take_lines(3));
  BOOST_TEST(reader.buffered() == 2u);  // the unfinished line stays for the next read
  feed(reader, "5\n");
  BOOST_TEST(reader.take_lines(1).value_or("none") == "555\n");
}

BOOST_AUTO_TEST_CASE(a_refused_line_is_detected_before_its_end_arrives) {
  // The policy must not wait for a '\n' that may never come.
  const auto out = frame(std::string(1 << 20, 'z'), 64 * 1024, 1 << 14);
  BOOST_TEST(out.too_long);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(shutdown_steps)

BOOST_AUTO_TEST_CASE(members_are_told_once_and_finishing_is_reported_once) {
  shutdown_coordinator coordinator;
  int told = 0;
  int finished = 0;
  coordinator.on_all_finished([&] { ++finished; });
  auto first = coordinator.join([&] { ++told; });
  std::optional<shutdown_coordinator::membership> second{coordinator.join([&] { ++told; })};
  BOOST_TEST(coordinator.members() == 2u);

  coordinator.request_stop();
  coordinator.request_stop();  // a second request changes nothing
  BOOST_TEST(told == 2);
  BOOST_TEST(finished == 0);  // both are still draining

  second.reset();
  BOOST_TEST(finished == 0);
  first = {};  // moving an empty membership in leaves
  BOOST_TEST(finished == 1);
  BOOST_TEST(coordinator.members() == 0u);
}

BOOST_AUTO_TEST_CASE(joining_after_the_stop_is_told_at_once) {
  shutdown_coordinator coordinator;
  coordinator.request_stop();
  bool told = false;
  auto late = coordinator.join([&] { told = true; });
  BOOST_TEST(told);
}

BOOST_AUTO_TEST_CASE(stop_with_no_members_finishes_at_once) {
  shutdown_coordinator coordinator;
  bool finished = false;
  coordinator.on_all_finished([&] { finished = true; });
  coordinator.request_stop();
  BOOST_TEST(finished);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(endpoints_print_as_the_contract_shows_them) {
  const tcp::endpoint v4(boost::asio::ip::make_address("127.0.0.1"), 8080);
  const tcp::endpoint v6(boost::asio::ip::make_address("::1"), 4000);
  BOOST_TEST(fmt::format("{}", v4) == "127.0.0.1:8080");
  BOOST_TEST(fmt::format("{}", v6) == "[::1]:4000");
}

BOOST_AUTO_TEST_SUITE(command_line)

int run_with(std::vector<std::string> args, bool* body_ran = nullptr) {
  CLI::App app{"test"};
  common_options common;
  server_options server{.port = 8080};
  add_common_options(app, common);
  add_server_options(app, server);
  std::vector<char*> argv;
  args.insert(args.begin(), "test");
  for (auto& a : args) argv.push_back(a.data());
  return run_program(app, common, static_cast<int>(argv.size()), argv.data(), [&] {
    if (body_ran) *body_ran = true;
    return 0;
  });
}

BOOST_AUTO_TEST_CASE(bad_options_exit_2_and_never_run) {
  for (const auto& bad : std::vector<std::vector<std::string>>{
           {"--port", "70000"}, {"--port", "x"}, {"--threads", "0"}, {"--bind", "localhost:1"},
           {"--log-level", "loud"}, {"--nope"}}) {
    bool ran = false;
    BOOST_TEST(run_with(bad, &ran) == exit_usage, bad.front());
    BOOST_TEST(!ran);
  }
}

BOOST_AUTO_TEST_CASE(good_options_run_and_startup_errors_exit_1) {
  bool ran = false;
  BOOST_TEST(run_with({"--bind", "::1", "--port", "0", "--threads", "3"}, &ran) == exit_ok);
  BOOST_TEST(ran);

  CLI::App app{"test"};
  common_options common;
  char name[] = "test";
  char* argv[] = {name};
  BOOST_TEST(run_program(app, common, 1, argv, []() -> int { throw startup_error("no"); }) ==
             exit_runtime_failure);
}

BOOST_AUTO_TEST_CASE(default_threads_follow_the_cores_this_process_may_use) {
  cpu_set_t saved;
  BOOST_TEST_REQUIRE(sched_getaffinity(0, sizeof saved, &saved) == 0);
  BOOST_TEST(default_thread_count() == static_cast<unsigned>(CPU_COUNT(&saved)));
  // As under `taskset -c N`: one allowed core, one thread.
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &saved)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  BOOST_TEST_REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);
  const auto pinned = default_thread_count();
  BOOST_TEST_REQUIRE(sched_setaffinity(0, sizeof saved, &saved) == 0);
  BOOST_TEST(pinned == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(spawned_coroutines_never_fail_silently) {
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  auto capture = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured));
  capture->set_pattern("%l %v");
  capture->set_level(spdlog::level::debug);
  spdlog::set_default_logger(capture);

  boost::asio::io_context io;
  spawn(io.get_executor(), []() -> task<> {
    throw std::runtime_error("boom");
    co_return;
  }(), "failing task");
  spawn(io.get_executor(), []() -> task<> {
    throw boost::system::system_error(boost::asio::error::operation_aborted);
    co_return;
  }(), "cancelled task");
  io.run();
  spdlog::set_default_logger(previous);

  const auto log = captured.str();
  BOOST_TEST(log.find("error failing task: boom") != std::string::npos, log);
  // Cancellation is how a shutdown looks: logged, but not as an error.
  BOOST_TEST(log.find("debug cancelled task: cancelled") != std::string::npos, log);
  BOOST_TEST(log.find("error cancelled task") == std::string::npos, log);
}

BOOST_AUTO_TEST_SUITE(runtime_threads)

// Connections are spread over the threads' io_contexts in turn, each run by its own thread.
BOOST_AUTO_TEST_CASE(next_context_takes_each_thread_in_turn) {
  runtime rt(3);
  auto* first = &rt.next_context();
  auto* second = &rt.next_context();
  auto* third = &rt.next_context();
  BOOST_TEST((first != second && second != third && first != third));
  BOOST_TEST(&rt.next_context() == first);
  BOOST_TEST((first == &rt.context() || second == &rt.context() || third == &rt.context()));

  std::vector<std::thread::id> ran_on(3);
  for (int i = 0; i < 3; ++i) {
    boost::asio::post(rt.next_context(), [&ran_on, i] { ran_on[i] = std::this_thread::get_id(); });
  }
  rt.request_stop();  // nothing joined the shutdown: run() returns once the posts have run
  BOOST_TEST(rt.run() == exit_ok);
  BOOST_TEST((ran_on[0] != ran_on[1] && ran_on[1] != ran_on[2] && ran_on[0] != ran_on[2]));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(writing)

// More buffers than one system call takes (64), and more bytes than the socket buffers hold
// while the reader waits: write_all must finish through the reactor, every byte in order.
BOOST_AUTO_TEST_CASE(write_all_sends_everything_in_order_past_full_buffers) {
  runtime rt(1);
  tcp_acceptor acceptor(rt.context(), {boost::asio::ip::make_address("127.0.0.1"), 0});
  std::string sent;
  for (int i = 0; sent.size() < 16 * 1024 * 1024; ++i) sent += fmt::format("line {:08}\n", i);
  std::string received;
  netlab::testing::run_client_then_stop(rt, [&]() -> task<> {
    auto client = co_await netlab::testing::connect_to(acceptor.local_endpoint());
    auto server = co_await acceptor.async_accept(use_task);
    // Split into 300 buffers of unequal sizes.
    std::vector<boost::asio::const_buffer> buffers;
    for (std::size_t at = 0, n = 0; at < sent.size(); at += n) {
      n = std::min(sent.size() - at, std::size_t{(buffers.size() % 7 + 1) * 8000});
      buffers.push_back(boost::asio::buffer(sent.data() + at, n));
    }
    BOOST_TEST(buffers.size() > 64u);
    auto reader = [&]() -> task<> {
      // Start reading only later: the first write_some fills the buffers and must wait.
      steady_timer later(co_await boost::asio::this_coro::executor, std::chrono::milliseconds(100));
      co_await later.async_wait(use_task);
      received.resize(sent.size());
      co_await boost::asio::async_read(client, boost::asio::buffer(received), use_task);
    };
    using namespace boost::asio::experimental::awaitable_operators;
    const auto error = co_await (write_all(server, buffers) && reader());
    BOOST_TEST(!error);
  }());
  BOOST_TEST((received == sent));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(listening, *boost::unit_test::timeout(20))

// open_listener sets TCP_NODELAY on the listening socket only; the sessions rely on every
// accepted connection inheriting it (Linux copies it).
BOOST_AUTO_TEST_CASE(accepted_connections_inherit_nodelay) {
  namespace asio = boost::asio;
  runtime rt(1);
  auto acceptor = open_listener(rt.context(), "127.0.0.1", 0);
  bool nodelay = false;
  netlab::testing::run_client_then_stop(rt, [&]() -> task<> {
    auto client = co_await netlab::testing::connect_to(acceptor.local_endpoint());
    auto server = co_await acceptor.async_accept(use_task);
    tcp::no_delay option;
    server.get_option(option);
    nodelay = option.value();
  }());
  BOOST_TEST(nodelay);
}

BOOST_AUTO_TEST_SUITE_END()
