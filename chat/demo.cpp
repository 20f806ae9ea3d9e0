#include "demo.hpp"

#include "common/line_reader.hpp"
#include "common/log.hpp"
#include "common/spawn.hpp"

#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <string>

namespace netlab::chat {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::use_awaitable;

namespace {

// A scripted client: prints what it sends and every line it receives.
class demo_client {
 public:
  demo_client(std::string label, const asio::any_io_executor& executor)
      : label_(std::move(label)), socket_(executor) {}

  asio::awaitable<void> connect(tcp::endpoint server) {
    co_await socket_.async_connect(server, use_awaitable);
    print("{:<6} connects from {}", label_, socket_.local_endpoint());
  }

  asio::awaitable<void> send(std::string line) {
    print("{:<6} sends    {:?}", label_, line);
    line.push_back('\n');
    co_await asio::async_write(socket_, asio::buffer(line), use_awaitable);
  }

  // Reads `count` lines, printing each.
  asio::awaitable<void> receive(int count = 1) {
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
  tcp::socket socket_;
  line_reader input_{default_max_line};
};

asio::awaitable<void> play(runtime& rt, tcp::endpoint server) {
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
  print("demo done: stopping the server");
  rt.request_stop();
}

}  // namespace

void start_demo(runtime& rt, tcp::endpoint server) {
  spawn(rt.context().get_executor(), play(rt, server), "demo");
}

}  // namespace netlab::chat
