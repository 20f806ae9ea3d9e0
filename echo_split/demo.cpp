#include "demo.hpp"

#include "common/line_reader.hpp"
#include "common/log.hpp"
#include "common/spawn.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include <string>

namespace netlab::echo {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::string_literals;

namespace {

// A scripted client: prints what it sends and what comes back.
class demo_client {
 public:
  demo_client(int number, const io_executor& executor)
      : number_(number), socket_(executor) {}

  task<> connect(tcp::endpoint server) {
    co_await socket_.async_connect(server, use_task);
    print("client {} connected from {}", number_, socket_.local_endpoint());
  }

  task<> send(std::string bytes) {
    print("client {} sends    {:?}", number_, shorten(bytes));
    co_await asio::async_write(socket_, asio::buffer(bytes), use_task);
  }

  // Reads one line back, or reports that the server closed the connection.
  task<> receive() {
    auto result = co_await input_.read_line(socket_);
    switch (result.status) {
      case line_status::complete:
      case line_status::unterminated:
        print("client {} receives {:?}", number_, shorten(result.text));
        break;
      case line_status::end_of_input:
        print("client {} sees the server close the connection", number_);
        break;
      default:
        print("client {} fails to read: {}", number_, result.error.message());
    }
  }

  void half_close() {
    print("client {} closes its sending side", number_);
    socket_.shutdown(tcp::socket::shutdown_send);
  }

 private:
  static std::string shorten(const std::string& bytes) {
    constexpr std::size_t shown = 40;
    if (bytes.size() <= shown) return bytes;
    return fmt::format("{}... ({} bytes)", bytes.substr(0, shown), bytes.size());
  }

  int number_;
  tcp_socket socket_;
  line_reader input_{default_max_line};
};

task<> play(runtime& rt, tcp::endpoint server, std::size_t max_line) {
  const auto executor = co_await asio::this_coro::executor;
  demo_client first(1, executor);
  co_await first.connect(server);
  co_await first.send("hello, echo\n");
  co_await first.receive();

  demo_client second(2, executor);
  co_await second.connect(server);
  co_await second.send("one\ntwo\nthree\n");  // three lines in one write, back in order
  for (int i = 0; i < 3; ++i) co_await second.receive();
  co_await first.send("any bytes: \r, \0, \xff\n"s);
  co_await first.receive();

  co_await second.send("a last line without newline");
  second.half_close();
  co_await second.receive();  // the unterminated line comes back ...
  co_await second.receive();  // ... then the server closes its side too

  {
    demo_client third(3, executor);
    co_await third.connect(server);
    co_await third.send(std::string(max_line + 10, 'x') + "\n");
    co_await third.receive();  // the refusal
    co_await third.receive();  // and the close
  }  // client 3 closes too: the server was lingering for it, to make sure it read the refusal

  co_await first.send("client 1 was not disturbed\n");
  co_await first.receive();
  print("demo done: stopping the server");
  rt.request_stop();
}

}  // namespace

void start_demo(runtime& rt, tcp::endpoint server, std::size_t max_line) {
  spawn(rt.context().get_executor(), play(rt, server, max_line), "demo");
}

}  // namespace netlab::echo
