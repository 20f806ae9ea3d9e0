#include "demo.hpp"

#include "common/line_reader.hpp"
#include "common/log.hpp"
#include "common/spawn.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <string>

namespace netlab::chat {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// A scripted client: prints what it sends and every line it receives.
class demo_client {
 public:
  demo_client(std::string label, const io_executor& executor)
      : label_(std::move(label)), socket_(executor) {}

  task<> connect(tcp::endpoint server, int receive_buffer = 0) {
    if (receive_buffer > 0) {  // a small window, so that a client that stops reading is full fast
      socket_.open(server.protocol());
      socket_.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
    }
    co_await socket_.async_connect(server, use_task);
    print("{:<6} connects from {}", label_, socket_.local_endpoint());
  }

  task<> send(std::string line) {
    print("{:<6} sends    {:?}", label_, line);
    line.push_back('\n');
    co_await asio::async_write(socket_, asio::buffer(line), use_task);
  }

  // Sends `bytes` without printing them (a flood). Not awaited by the demo: with the lesson's
  // design the server may stop reading this client for good. So the flood owns the socket
  // (take_socket), which may outlive the demo.
  static task<> flood(tcp_socket socket, std::string bytes) {
    co_await asio::async_write(socket, asio::buffer(bytes), asio::as_tuple(use_task));
    // Then stay connected until the server closes (at its stop), reading what comes: a socket
    // closed with bytes unread sends a reset, and the server would lose the lines it had not
    // read yet.
    std::array<char, 4096> sink;
    for (bool open = true; open;) {
      auto [error, n] =
          co_await socket.async_read_some(asio::buffer(sink), asio::as_tuple(use_task));
      open = !error;
    }
  }

  // The client's connection, for a flood; the client can do nothing more.
  tcp_socket take_socket() && { return std::move(socket_); }

  // Counts the lines that arrive within `patience` and the one notice that matters here.
  task<> count_lines(std::chrono::milliseconds patience, std::string_view prefix, int expected,
                     std::string_view left_notice) {
    int got = 0;
    bool saw_left = false;
    steady_timer deadline(socket_.get_executor(), patience);
    deadline.async_wait([this](boost::system::error_code error) {
      if (!error) input_.end_input();  // stop waiting: whatever came, came
    });
    while (got < expected || !saw_left) {
      auto result = co_await input_.read_line(socket_);
      if (result.status != line_status::complete) break;
      if (result.text.starts_with(prefix)) ++got;
      if (result.text.starts_with(left_notice)) saw_left = true;
    }
    deadline.cancel();
    print("{:<6} received {} of {} flood lines{}", label_, got, expected,
          saw_left ? fmt::format(", and {:?}", left_notice) : std::string());
  }

  // Reads `count` lines, printing each.
  task<> receive(int count = 1) {
    for (int i = 0; i < count; ++i) {
      auto result = co_await input_.read_line(socket_);
      if (result.status == line_status::complete) {
        result.text.pop_back();
        print("{:<6} receives {:?}", label_, result.text);
      } else {
        print("{:<6} sees the connection end", label_);
        co_return;
      }
    }
  }

 private:
  std::string label_;
  tcp_socket socket_;
  line_reader input_{default_max_line};
};

// Enough to fill dan's socket buffers (a few MiB on loopback) and then its outbox.
constexpr int flood_lines = 8000;
constexpr std::size_t flood_width = 1000;

task<> play(runtime& rt, tcp::endpoint server) {
  const auto executor = co_await asio::this_coro::executor;
  demo_client ann("ann", executor), bob("bob", executor), cy("cy", executor);
  co_await ann.connect(server);
  co_await bob.connect(server);
  co_await ann.receive();  // * <bob's address> joined
  co_await ann.send("/nick ann");
  co_await ann.receive();  // * ... is now ann (to everyone, ann included)
  co_await bob.receive();
  co_await bob.send("/nick bob");
  co_await ann.receive();
  co_await bob.receive();
  co_await cy.connect(server);
  co_await ann.receive();
  co_await bob.receive();
  co_await cy.send("/nick cy");
  for (auto* c : {&ann, &bob, &cy}) co_await c->receive();
  co_await ann.send("hello, room");
  co_await bob.receive();
  co_await cy.receive();
  co_await bob.send("hi ann \x1b[31mred?");  // an escape sequence arrives harmless, as \x1b
  co_await ann.receive();
  co_await cy.receive();
  co_await cy.send("/nick ann");  // taken: only cy hears about it
  co_await cy.receive();
  co_await cy.send("/nick carol");
  for (auto* c : {&ann, &bob, &cy}) co_await c->receive();
  co_await cy.send("/who");
  co_await cy.receive();
  co_await cy.send("/dance");
  co_await cy.receive();
  co_await bob.send("/quit");
  co_await bob.receive();  // the server closes bob's connection
  co_await ann.receive();  // * bob left
  co_await cy.receive();

  // Act two: a client that stops reading. The queued design disconnects it and the others carry
  // on; the lesson's design waits for it, and the whole room stalls.
  demo_client dan("dan", executor);
  co_await dan.connect(server, 4096);
  for (auto* c : {&ann, &cy}) co_await c->receive();  // * ... joined
  co_await dan.send("/nick dan");
  for (auto* c : {&ann, &cy, &dan}) co_await c->receive();
  print("dan    stops reading; ann sends {} lines of {} bytes at once", flood_lines, flood_width);
  std::string lines;
  for (int i = 0; i < flood_lines; ++i) {
    lines += fmt::format("flood {:05} {}\n", i, std::string(flood_width - 12, 'f'));
  }
  spawn(executor, demo_client::flood(std::move(ann).take_socket(), std::move(lines)), "demo flood");
  co_await cy.count_lines(std::chrono::seconds(5), "ann: flood", flood_lines, "* dan left");
  print("demo done: stopping the server");
  rt.request_stop();
}

}  // namespace

void start_demo(runtime& rt, tcp::endpoint server) {
  spawn(rt.context().get_executor(), play(rt, server), "demo");
}

}  // namespace netlab::chat
