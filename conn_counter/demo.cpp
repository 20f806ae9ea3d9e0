#include "demo.hpp"

#include "common/log.hpp"
#include "common/spawn.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <string>

namespace netlab::counter {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// A scripted client that says what it does.
class demo_client {
 public:
  demo_client(int number, tcp_socket socket) : number_(number), socket_(std::move(socket)) {}

  // Connects; the server's `Connection #N` line shows the client's address.
  static task<demo_client> connect(int number, tcp::endpoint address) {
    print("client {} connects", number);
    tcp_socket socket(co_await asio::this_coro::executor);
    co_await socket.async_connect(address, use_task);
    co_return demo_client(number, std::move(socket));
  }

  task<> echo(std::string bytes) {
    print("client {} sends    {:?}", number_, bytes);
    co_await asio::async_write(socket_, asio::buffer(bytes), use_task);
    std::string back(bytes.size(), '\0');
    co_await asio::async_read(socket_, asio::buffer(back), use_task);
    print("client {} receives {:?}", number_, back);
  }

  void close() {
    print("client {} closes", number_);
    socket_.close();
  }

  void reset() {
    print("client {} resets the connection (SO_LINGER 0, then close)", number_);
    socket_.set_option(asio::socket_base::linger(true, 0));
    socket_.close();
  }

  // Closes the sending side and reads until the server closes too.
  task<> half_close() {
    print("client {} closes its sending side", number_);
    socket_.shutdown(tcp::socket::shutdown_send);
    std::string rest;
    auto [error, n] = co_await asio::async_read(socket_, asio::dynamic_buffer(rest),
                                                asio::as_tuple(use_task));
    if (error != asio::error::eof || !rest.empty()) {
      print("client {} expected the server's close, got {:?} and {}", number_, rest,
            error.message());
    }
  }

 private:
  int number_;
  tcp_socket socket_;
};

std::atomic<std::uint64_t> disconnects_printed{0};  // by demo_output()

// The server prints its lines on its own threads; waiting for its counts, and for its
// `Disconnected` lines to be out, keeps the demo's output in the order things happened. (A demo
// may poll; the server itself never does.)
task<> until_server_counts(server& counting, std::uint64_t accepted, std::uint64_t closed) {
  steady_timer tick(co_await asio::this_coro::executor);
  for (;;) {
    // A close's line is printed after it is counted: the line is the later of the two.
    if (counting.current().accepted >= accepted && disconnects_printed.load() >= closed) co_return;
    tick.expires_after(1ms);
    co_await tick.async_wait(use_task);
  }
}

task<> play(runtime& rt, tcp::endpoint address, server& counting) {
  auto first = co_await demo_client::connect(1, address);
  co_await until_server_counts(counting, 1, 0);
  co_await first.echo("hello, counter");

  auto second = co_await demo_client::connect(2, address);
  co_await until_server_counts(counting, 2, 0);
  co_await second.echo("bytes, not lines: no newline needed");
  second.close();
  co_await until_server_counts(counting, 2, 1);

  auto third = co_await demo_client::connect(3, address);
  co_await until_server_counts(counting, 3, 1);
  third.reset();
  co_await until_server_counts(counting, 3, 2);

  auto fourth = co_await demo_client::connect(4, address);
  co_await until_server_counts(counting, 4, 2);
  co_await fourth.echo("bye");
  co_await fourth.half_close();  // the server writes back what it has, then closes its side
  co_await until_server_counts(counting, 4, 3);

  print("demo: the status line, as SIGUSR1 prints it:");
  counting.report_status();

  co_await first.echo("client 1 is still served");
  print("demo done: stopping the server with client 1 still connected");
  rt.request_stop();
}

}  // namespace

line_sink demo_output() {
  return [print_line = print_to_stdout()](std::string_view line) {
    print_line(line);
    if (line.starts_with("Disconnected")) ++disconnects_printed;
  };
}

void start_demo(runtime& rt, tcp::endpoint address, server& counting) {
  spawn(rt.context().get_executor(), play(rt, address, counting), "demo");
}

}  // namespace netlab::counter
