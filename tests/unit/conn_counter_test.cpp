// conn_counter in-process: a server on 127.0.0.1:0 running on several threads, clients on an
// io_context of their own (their own threads), every printed line collected through the server's
// line sink and checked line by line.
#include "conn_counter/server.hpp"

#include "common/listener.hpp"
#include "test_support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace netlab;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

// The server on its own threads. `stop()` shuts it down and destroys the runtime, so that every
// session is gone (and counted) before the test reads the lines.
class counter_fixture {
 public:
  explicit counter_fixture(unsigned threads, std::size_t max_connections = no_connection_cap)
      : counting_([this](std::string_view line) {
          std::lock_guard lock(mutex_);
          lines_.emplace_back(line);
        }),
        rt_(std::in_place, threads) {
    // spdlog's registry is built on first use. Build it here, before the server's threads log:
    // libspdlog is not instrumented, so ThreadSanitizer cannot see the guard of that lazy
    // initialization and reports a race. (The program calls setup_logging() first for the same
    // effect.)
    spdlog::default_logger_raw();
    auto acceptor = open_listener(rt_->context(), "127.0.0.1", 0);
    address_ = acceptor.local_endpoint();
    start_accepting(*rt_, std::move(acceptor), max_connections,
                    [this](accepted_connection connection) {
                      counting_.accept(std::move(connection), rt_->shutdown());
                    });
    server_thread_ = std::thread([this] { rt_->run(); });
  }

  ~counter_fixture() { stop(); }

  // Asks for a graceful stop, waits for run() to return, destroys the runtime; returns how long
  // that took.
  std::chrono::milliseconds stop() {
    const auto start = std::chrono::steady_clock::now();
    if (server_thread_.joinable()) {
      rt_->request_stop();
      server_thread_.join();
    }
    rt_.reset();
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
  }

  // Waits (up to `limit`) until the server's counts satisfy `done`.
  template <typename Predicate>
  bool wait_for_counts(Predicate done, std::chrono::milliseconds limit = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done(counting_.current())) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }

  tcp::endpoint address() const { return address_; }
  counter::counts counts() const { return counting_.current(); }
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;  // guarded by mutex_; the sink runs on the server's threads
  counter::server counting_;        // outlives the runtime, as in main()
  std::optional<runtime> rt_;
  tcp::endpoint address_;
  std::thread server_thread_;
};

// Client coroutines on `threads` threads of their own; rethrows the first failure. Clients that
// may run on several threads report failures by throwing, never with BOOST_TEST.
class client_pool {
 public:
  void spawn(task<> client) {
    asio::co_spawn(io_, std::move(client), [this](std::exception_ptr e) {
      if (!e) return;
      std::lock_guard lock(mutex_);
      if (!failure_) failure_ = e;
    });
  }

  void run(unsigned threads) {
    std::vector<std::jthread> helpers;
    for (unsigned i = 1; i < threads; ++i) helpers.emplace_back([this] { io_.run(); });
    io_.run();
    helpers.clear();
    if (failure_) std::rethrow_exception(failure_);
  }

  asio::io_context& context() { return io_; }

 private:
  asio::io_context io_;
  std::mutex mutex_;
  std::exception_ptr failure_;
};

using netlab::testing::connect_to;

// Writes `sent`, reads as many bytes back, and returns them.
task<std::string> echo(tcp_socket& socket, const std::string& sent) {
  co_await asio::async_write(socket, asio::buffer(sent), use_task);
  std::string back(sent.size(), '\0');
  co_await asio::async_read(socket, asio::buffer(back), use_task);
  co_return back;
}

// The three ways a client leaves; each must be counted as exactly one close.
enum class goodbye { close, half_close, reset };

task<> leave(tcp_socket& socket, goodbye how) {
  switch (how) {
    case goodbye::close:
      socket.close();
      break;
    case goodbye::half_close: {
      socket.shutdown(tcp::socket::shutdown_send);
      char byte;
      auto [error, n] = co_await asio::async_read(socket, asio::buffer(&byte, 1),
                                                  asio::as_tuple(use_task));
      // The server closes its side after ours. (Not BOOST_TEST: clients run on several
      // threads, and Boost.Test's assertions are not thread-safe; client_pool reports this.)
      if (error != asio::error::eof) throw std::runtime_error("half-close: " + error.message());
      break;
    }
    case goodbye::reset:
      socket.set_option(asio::socket_base::linger(true, 0));
      socket.close();
      break;
  }
}

// What the lines say, parsed: each N with the ports it was printed with.
struct parsed_lines {
  std::map<std::uint64_t, int> connections;      // N -> times printed
  std::map<std::uint64_t, int> disconnections;   // N -> times printed
  std::set<std::uint64_t> closed_values;         // every C printed
  std::map<std::uint64_t, std::string> connect_port, disconnect_port;
  std::uint64_t max_active_after_close = 0;
  int other = 0;  // lines of neither kind
};

parsed_lines parse(const std::vector<std::string>& lines) {
  static const std::regex connection(R"(Connection #(\d+) from 127\.0\.0\.1:(\d+))");
  static const std::regex disconnection(
      R"(Disconnected #(\d+) from 127\.0\.0\.1:(\d+) \(active (\d+), closed (\d+)\))");
  parsed_lines out;
  std::smatch m;
  for (const auto& line : lines) {
    if (std::regex_match(line, m, connection)) {
      const auto n = std::stoull(m[1]);
      ++out.connections[n];
      out.connect_port[n] = m[2];
    } else if (std::regex_match(line, m, disconnection)) {
      const auto n = std::stoull(m[1]);
      ++out.disconnections[n];
      out.disconnect_port[n] = m[2];
      out.max_active_after_close = std::max<std::uint64_t>(out.max_active_after_close,
                                                           std::stoull(m[3]));
      BOOST_TEST(out.closed_values.insert(std::stoull(m[4])).second, "closed repeated: " << line);
    } else {
      ++out.other;
    }
  }
  return out;
}

// True when `counted` holds exactly 1..total, each once.
bool each_once(const std::map<std::uint64_t, int>& counted, std::uint64_t total) {
  if (counted.size() != total) return false;
  std::uint64_t expected = 1;
  for (const auto& [n, times] : counted) {
    if (n != expected++ || times != 1) return false;
  }
  return true;
}

// Polls `done` every few milliseconds, up to `limit`, from a client coroutine.
task<bool> eventually(std::function<bool()> done, std::chrono::milliseconds limit = 5s) {
  steady_timer tick(co_await asio::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) co_return false;
    tick.expires_after(2ms);
    co_await tick.async_wait(use_task);
  }
  co_return true;
}

task<> sleep(std::chrono::milliseconds duration) {
  steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(use_task);
}

constexpr std::uint64_t cap = 3;  // --max-connections in the cap test

}  // namespace

BOOST_AUTO_TEST_SUITE(conn_counter, *boost::unit_test::timeout(90))

namespace {

// `total` connections from 40 client coroutines on 4 client threads, against a server on
// `server_threads` threads; each client checks its echo and leaves in one of the three ways.
void connect_many_and_check_every_line(unsigned server_threads, std::uint64_t total) {
  constexpr unsigned workers = 40;  // clients at a time, each connecting total/workers times
  counter_fixture server(server_threads);
  client_pool clients;
  std::atomic<int> mismatched{0};
  for (unsigned w = 0; w < workers; ++w) {
    clients.spawn([](tcp::endpoint address, unsigned first, std::uint64_t count,
                     std::atomic<int>& mismatches) -> task<> {
      for (std::uint64_t i = first; i < count; i += workers) {
        auto socket = co_await connect_to(address);
        // Different sizes, some above one read, so that echoes come back in several pieces.
        const auto sent = fmt::format("client {} ", i) +
                          std::string(i * 37 % 40000, static_cast<char>('a' + i % 26));
        if (co_await echo(socket, sent) != sent) ++mismatches;
        co_await leave(socket, static_cast<goodbye>(i % 3));
      }
    }(server.address(), w, total, mismatched));
  }
  clients.run(4);
  BOOST_TEST(mismatched == 0);

  // The client side is done; the server counts each close when it sees it.
  BOOST_TEST(server.wait_for_counts([&](auto c) { return c.closed == total; }));
  const auto final_counts = server.counts();
  BOOST_TEST(final_counts.accepted == total);
  BOOST_TEST(final_counts.active == 0u);
  BOOST_TEST(final_counts.closed == total);

  server.stop();
  const auto lines = parse(server.lines());
  BOOST_TEST(each_once(lines.connections, total));
  BOOST_TEST(each_once(lines.disconnections, total));
  BOOST_TEST(lines.closed_values.size() == total);
  BOOST_TEST(*lines.closed_values.begin() == 1u);
  BOOST_TEST(*lines.closed_values.rbegin() == total);
  BOOST_TEST((lines.connect_port == lines.disconnect_port));  // each N keeps its address
  BOOST_TEST(lines.other == 0);
}

}  // namespace

BOOST_AUTO_TEST_CASE(two_thousand_connections_on_four_threads_each_counted_once) {
  connect_many_and_check_every_line(4, 2000);
}

BOOST_AUTO_TEST_CASE(the_same_on_a_single_threaded_reactor) {
  connect_many_and_check_every_line(1, 500);
}

BOOST_AUTO_TEST_CASE(resets_and_half_closes_count_as_one_close_each) {
  // The awkward goodbyes: a reset before sending anything, a reset while the server is blocked
  // writing to a client that does not read, a half-close with data still in flight.
  counter_fixture server(2);
  client_pool clients;
  clients.spawn([](tcp::endpoint address) -> task<> {
    {
      auto silent = co_await connect_to(address);
      co_await leave(silent, goodbye::reset);
    }
    {
      auto flooding = co_await connect_to(address);
      // Sends without reading until both sides' socket buffers are full and the server's write
      // waits (the write stalls: 300 ms is plenty), then resets.
      const std::string flood(64 << 20, 'f');
      steady_timer stall(co_await asio::this_coro::executor, 300ms);
      co_await (asio::async_write(flooding, asio::buffer(flood), use_task) ||
                stall.async_wait(use_task));
      co_await leave(flooding, goodbye::reset);
    }
    {
      auto leaving = co_await connect_to(address);
      const std::string parting(100000, 'p');
      co_await asio::async_write(leaving, asio::buffer(parting), use_task);
      leaving.shutdown(tcp::socket::shutdown_send);
      std::string back;
      auto [error, n] = co_await asio::async_read(leaving, asio::dynamic_buffer(back),
                                                  asio::as_tuple(use_task));
      BOOST_TEST((error == asio::error::eof));
      BOOST_TEST((back == parting));
    }
  }(server.address()));
  clients.run(1);
  BOOST_TEST(server.wait_for_counts([](auto c) { return c.closed == 3; }));
  server.stop();
  const auto lines = parse(server.lines());
  BOOST_TEST(each_once(lines.connections, 3));
  BOOST_TEST(each_once(lines.disconnections, 3));
}

BOOST_AUTO_TEST_CASE(the_cap_holds_and_each_close_lets_one_more_in) {
  counter_fixture server(2, cap);
  client_pool clients;
  clients.spawn([](tcp::endpoint address, counter_fixture& fixture) -> task<> {
    // All five connect: the kernel completes the handshake for connections in the backlog. The
    // backlog is first in, first out, so the first three are the ones accepted.
    std::vector<tcp_socket> sockets;
    for (int i = 0; i < 5; ++i) sockets.push_back(co_await connect_to(address));
    for (int i = 0; i < 3; ++i) BOOST_TEST(co_await echo(sockets[i], "served") == "served");
    for (int i = 3; i < 5; ++i) {
      co_await asio::async_write(sockets[i], asio::buffer(std::string("waiting")), use_task);
    }
    co_await sleep(200ms);
    BOOST_TEST(fixture.counts().accepted == cap);
    BOOST_TEST(fixture.counts().active == cap);

    // One leaves: exactly one more gets in, and what it sent while waiting comes back.
    sockets[0].close();
    BOOST_TEST(co_await eventually([&] { return fixture.counts().accepted == cap + 1; }));
    std::string back(7, '\0');
    co_await asio::async_read(sockets[3], asio::buffer(back), use_task);
    BOOST_TEST(back == "waiting");
    co_await sleep(100ms);
    BOOST_TEST(fixture.counts().accepted == cap + 1);
    BOOST_TEST(fixture.counts().active == cap);

    sockets[1].close();
    co_await asio::async_read(sockets[4], asio::buffer(back), use_task);
    BOOST_TEST(back == "waiting");
    for (auto& socket : sockets) socket.close();
  }(server.address(), server));
  clients.run(1);
  BOOST_TEST(server.wait_for_counts([](auto c) { return c.closed == 5; }));
  server.stop();
  const auto lines = parse(server.lines());
  BOOST_TEST(each_once(lines.connections, 5));
  BOOST_TEST(each_once(lines.disconnections, 5));
  BOOST_TEST(lines.max_active_after_close < cap);  // never more than `cap` open at once
}

BOOST_AUTO_TEST_CASE(shutdown_closes_idle_and_stalled_connections_and_counts_them) {
  counter_fixture server(2);
  client_pool clients;
  std::vector<tcp_socket> sockets;  // destroyed before `clients`, whose io_context they use
  clients.spawn([](tcp::endpoint address, std::vector<tcp_socket>& held) -> task<> {
    for (int i = 0; i < 10; ++i) held.push_back(co_await connect_to(address));
    // And one that floods without reading, so that the server is stuck in a write at the stop.
    held.push_back(co_await connect_to(address));
    const std::string flood(64 << 20, 'f');
    steady_timer stall(co_await asio::this_coro::executor, 300ms);
    co_await (asio::async_write(held.back(), asio::buffer(flood), use_task) ||
              stall.async_wait(use_task));
  }(server.address(), sockets));
  clients.run(1);
  BOOST_TEST(server.wait_for_counts([](auto c) { return c.accepted == 11; }));

  const auto took = server.stop();
  BOOST_TEST_MESSAGE("stopped in " << took.count() << " ms");
  BOOST_TEST(took < 2000ms);  // the contract's limit (the stalled write is cut at 1.5 s)
  BOOST_TEST(server.counts().closed == 11u);
  BOOST_TEST(server.counts().active == 0u);
  const auto lines = parse(server.lines());
  BOOST_TEST(each_once(lines.disconnections, 11));

  // An idle client sees the server close, without having asked.
  char byte;
  boost::system::error_code error;
  sockets.front().read_some(asio::buffer(&byte, 1), error);
  BOOST_TEST((error == asio::error::eof));
}

BOOST_AUTO_TEST_SUITE_END()
