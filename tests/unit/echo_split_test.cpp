// The echo session against an in-process server on port 0: clients are coroutines on the same
// runtime, speaking the wire protocol over loopback.
#include "echo_split/echo_session.hpp"

#include "common/line_reader.hpp"
#include "common/listener.hpp"
#include "common/spawn.hpp"
#include "test_support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <string>

using namespace netlab;
using namespace std::string_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// A server on 127.0.0.1:0 and a client coroutine; the client's end stops the server.
class echo_fixture {
 public:
  explicit echo_fixture(echo::options limits = {}, unsigned threads = 2)
      : rt_(threads), limits_(limits) {
    auto acceptor = open_listener(rt_.context(), "127.0.0.1", 0);
    server_ = acceptor.local_endpoint();
    start_accepting(rt_, std::move(acceptor), [this](tcp_socket socket, const tcp::endpoint& peer) {
      echo::start_session(std::move(socket), peer, limits_, rt_.shutdown());
    });
  }

  // Runs `client` to its end, then shuts the server down; rethrows what the client threw.
  void run(task<> client) {
    testing::run_client_then_stop(rt_, std::move(client));
  }

  runtime& rt() { return rt_; }
  tcp::endpoint server() const { return server_; }

 private:
  runtime rt_;
  echo::options limits_;
  tcp::endpoint server_;
};

using testing::connect_to;

// Everything the server sends until it closes.
task<std::string> read_to_end(tcp_socket& socket) {
  std::string received;
  auto [error, n] = co_await asio::async_read(socket, asio::dynamic_buffer(received),
                                              asio::as_tuple(use_task));
  BOOST_TEST(error == asio::error::eof);
  co_return received;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(echo_session, *boost::unit_test::timeout(20))

BOOST_AUTO_TEST_CASE(lines_come_back_in_order_then_the_unterminated_rest) {
  echo_fixture fixture;
  fixture.run([](tcp::endpoint server) -> task<> {
    auto socket = co_await connect_to(server);
    const auto sent = "one\r\n\0two\xff\nthree\nno newline"s;
    co_await asio::async_write(socket, asio::buffer(sent), use_task);
    socket.shutdown(tcp::socket::shutdown_send);
    BOOST_TEST(co_await read_to_end(socket) == sent);
  }(fixture.server()));
}

BOOST_AUTO_TEST_CASE(many_lines_and_slow_reading_lose_nothing) {
  // A queue of 4 lines: the reader waits on the writer constantly; every byte must survive the
  // backpressure and the gathered writes.
  echo_fixture fixture({.queue = 4, .max_line = 1000});
  fixture.run([](tcp::endpoint server) -> task<> {
    auto socket = co_await connect_to(server);
    std::string sent;
    for (int i = 0; i < 20000; ++i) sent += fmt::format("line {} {}\n", i, std::string(i % 97, 'p'));
    co_await asio::async_write(socket, asio::buffer(sent), use_task);
    socket.shutdown(tcp::socket::shutdown_send);
    const auto received = co_await read_to_end(socket);
    BOOST_TEST(received.size() == sent.size());
    BOOST_TEST((received == sent));
  }(fixture.server()));
}

BOOST_AUTO_TEST_CASE(an_overlong_line_gets_the_error_line_and_a_close) {
  echo_fixture fixture({.queue = 8, .max_line = 100});
  fixture.run([](tcp::endpoint server) -> task<> {
    auto polite = co_await connect_to(server);
    auto rude = co_await connect_to(server);
    const std::string fits = std::string(100, 'a') + "\n";
    co_await asio::async_write(rude, asio::buffer(fits + std::string(101, 'b') + "\nnever\n"),
                               use_task);
    BOOST_TEST(co_await read_to_end(rude) == fits + "error: line longer than 100 bytes\n");

    co_await asio::async_write(polite, asio::buffer(std::string("still here\n")), use_task);
    polite.shutdown(tcp::socket::shutdown_send);
    BOOST_TEST(co_await read_to_end(polite) == "still here\n");
  }(fixture.server()));
}

BOOST_AUTO_TEST_CASE(shutdown_writes_back_what_was_read_then_closes) {
  echo_fixture fixture;
  fixture.run([](tcp::endpoint server, runtime& rt) -> task<> {
    auto socket = co_await connect_to(server);
    const std::string sent = "read before the stop\n";
    co_await asio::async_write(socket, asio::buffer(sent), use_task);
    // Wait for the echo, so the server has surely read the line; then stop the server while
    // this client still has its connection open and has not closed its side.
    std::string echoed(sent.size(), '\0');
    co_await asio::async_read(socket, asio::buffer(echoed), use_task);
    BOOST_TEST(echoed == sent);
    rt.request_stop();
    BOOST_TEST(co_await read_to_end(socket) == "");  // the server closes without being asked
  }(fixture.server(), fixture.rt()));
}

BOOST_AUTO_TEST_CASE(a_client_reset_ends_only_its_own_session) {
  echo_fixture fixture({}, 1);
  fixture.run([](tcp::endpoint server) -> task<> {
    auto survivor = co_await connect_to(server);
    {
      auto quitter = co_await connect_to(server);
      co_await asio::async_write(quitter, asio::buffer(std::string("half a li")), use_task);
      quitter.set_option(asio::socket_base::linger(true, 0));  // close() sends a reset
    }
    co_await asio::async_write(survivor, asio::buffer(std::string("ok\n")), use_task);
    survivor.shutdown(tcp::socket::shutdown_send);
    BOOST_TEST(co_await read_to_end(survivor) == "ok\n");
  }(fixture.server()));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(echo_session_lifetime, *boost::unit_test::timeout(20))

// A client that floods without reading and then resets: the writer's write fails while the
// reader may be waiting on a full channel. The session must still end by itself (before any
// shutdown is requested), or it would hold its memory until the server stops.
BOOST_AUTO_TEST_CASE(a_reset_while_the_writer_is_blocked_ends_the_session) {
  echo_fixture fixture({.queue = 2, .max_line = 1000}, 2);
  fixture.run([](tcp::endpoint server, runtime& rt) -> task<> {
    {
      auto flooder = co_await connect_to(server);
      std::string lines;
      for (int i = 0; i < 64; ++i) lines += std::string(999, 'l') + "\n";
      // Send until the kernel buffers on both sides are full (flow control), bounded at 64 MiB.
      flooder.non_blocking(true);
      std::size_t sent = 0;
      for (int i = 0; i < 1024; ++i) {
        boost::system::error_code error;
        sent += flooder.write_some(asio::buffer(lines), error);
        if (error == asio::error::would_block) break;
      }
      BOOST_TEST(sent < 64u * 1024 * 1024);  // flow control stopped us
      flooder.set_option(asio::socket_base::linger(true, 0));
    }  // reset
    steady_timer poll(co_await asio::this_coro::executor);
    for (int i = 0; i < 200 && rt.shutdown().members() > 1; ++i) {
      poll.expires_after(std::chrono::milliseconds(10));
      co_await poll.async_wait(use_task);
    }
    BOOST_TEST(rt.shutdown().members() == 1u);  // only the listener is left
  }(fixture.server(), fixture.rt()));
}

BOOST_AUTO_TEST_SUITE_END()
