// chat: the protocol's pure functions, the room and outbox without sockets, and both designs
// against an in-process server on port 0 (clients are coroutines on the same runtime).
#include "chat/protocol.hpp"
#include "chat/room.hpp"
#include "chat/server.hpp"

#include "common/line_reader.hpp"
#include "common/listener.hpp"
#include "common/log.hpp"
#include "test_support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace netlab;
using namespace netlab::chat;
using namespace std::string_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

BOOST_AUTO_TEST_SUITE(chat_protocol)

BOOST_AUTO_TEST_CASE(escaping_control_bytes) {
  BOOST_TEST(escape("plain text, tab\there") == "plain text, tab\there");
  BOOST_TEST(escape("\x1b[31mred") == "\\x1b[31mred");
  BOOST_TEST(escape("a\x01\x1f\x7f\x00z"s) == "a\\x01\\x1f\\x7f\\x00z");
  BOOST_TEST(escape("\r\n") == "\\x0d\\x0a");
  BOOST_TEST(escape("\x80\xff caf\xc3\xa9") == "\x80\xff caf\xc3\xa9");  // high bytes pass
  BOOST_TEST(escape("") == "");
}

BOOST_AUTO_TEST_CASE(line_endings) {
  BOOST_TEST(strip_line_ending("a\n") == "a");
  BOOST_TEST(strip_line_ending("a\r\n") == "a");
  BOOST_TEST(strip_line_ending("a") == "a");  // the unterminated last line
  BOOST_TEST(strip_line_ending("a\rb\n") == "a\rb");
}

BOOST_AUTO_TEST_CASE(name_validation) {
  BOOST_TEST(valid_name("a"));
  BOOST_TEST(valid_name("Ann_the-2nd"));
  BOOST_TEST(valid_name(std::string(32, 'x')));
  BOOST_TEST(!valid_name(std::string(33, 'x')));
  BOOST_TEST(!valid_name(""));
  BOOST_TEST(!valid_name("a b"));
  BOOST_TEST(!valid_name("127.0.0.1:80"));  // no name can pass for an address
  BOOST_TEST(!valid_name("caf\xc3\xa9"));
  BOOST_TEST(!valid_name("a\x1b"));
}

BOOST_AUTO_TEST_CASE(command_parsing) {
  auto is = [](std::string_view line, command_kind kind, std::string_view argument) {
    const auto cmd = parse_line(line);
    return cmd.kind == kind && cmd.argument == argument;
  };
  BOOST_TEST(is("hello", command_kind::message, "hello"));
  BOOST_TEST(is("", command_kind::message, ""));
  BOOST_TEST(is(" /nick x", command_kind::message, " /nick x"));
  BOOST_TEST(is("/nick ann", command_kind::nick, "ann"));
  BOOST_TEST(is("/nick", command_kind::nick, ""));
  BOOST_TEST(is("/nick a b", command_kind::nick, "a b"));  // then refused as a name
  BOOST_TEST(is("/who", command_kind::who, ""));
  BOOST_TEST(is("/quit", command_kind::quit, ""));
  BOOST_TEST(is("/who me", command_kind::unknown, "/who me"));
  BOOST_TEST(is("/", command_kind::unknown, "/"));
  BOOST_TEST(is("/NICK x", command_kind::unknown, "/NICK x"));
}

BOOST_AUTO_TEST_CASE(formatted_lines) {
  BOOST_TEST(*chat_line("ann", "hi\x07") == "ann: hi\\x07\n");
  BOOST_TEST(*notice("ann joined") == "* ann joined\n");
  BOOST_TEST(*error_line(unknown_command_reply) == "error: unknown command\n");
  BOOST_TEST(who_reply({"b", "a", "c"}) == "connected: a b c");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(chat_room)

// The room and outboxes alone: one message shared by every recipient, never the sender, and an
// outbox that overflows instead of growing.
BOOST_AUTO_TEST_CASE(broadcast_shares_one_message_and_overflow_disconnects) {
  asio::io_context io;
  room r;
  int overflows = 0;
  auto a = std::make_shared<outbox>(io.get_executor(), 4, nullptr);
  auto b = std::make_shared<outbox>(io.get_executor(), 8, nullptr);
  auto c = std::make_shared<outbox>(io.get_executor(), 2, [&] { ++overflows; });
  BOOST_TEST(r.join("a", a));
  BOOST_TEST(r.join("b", b));
  BOOST_TEST(!r.join("a", c));  // taken
  BOOST_TEST(r.join("c", c));
  std::vector<message> got_a, got_b, got_c;
  a->take(got_a);
  b->take(got_b);
  BOOST_TEST(got_a.size() == 2u);  // b joined, c joined
  BOOST_TEST(got_b.size() == 1u);  // c joined
  got_a.clear();
  got_b.clear();

  const auto m = chat_line("a", "hello");
  r.broadcast("a", m);
  a->take(got_a);
  b->take(got_b);
  c->take(got_c);
  BOOST_TEST(got_a.empty());
  BOOST_REQUIRE(got_b.size() == 1u);
  BOOST_REQUIRE(got_c.size() == 1u);
  BOOST_TEST(got_b[0].get() == m.get());  // the same bytes, not a copy
  BOOST_TEST(got_c[0].get() == m.get());

  BOOST_TEST(r.rename("b", "bee"));
  BOOST_TEST(!r.rename("c", "a"));
  BOOST_TEST(r.names() == (std::vector<std::string>{"a", "bee", "c"}));

  // c stops taking: its limit of messages fits, the next one overflows it, once; the others
  // carry on.
  got_c.clear();
  c->take(got_c);  // the rename notice
  r.broadcast("a", chat_line("a", "1"));
  r.broadcast("a", chat_line("a", "2"));
  BOOST_TEST(overflows == 0);
  r.broadcast("a", chat_line("a", "3"));
  BOOST_TEST(overflows == 1);
  r.broadcast("a", chat_line("a", "4"));
  r.broadcast("a", chat_line("a", "5"));
  BOOST_TEST(overflows == 1);
  got_c.clear();
  BOOST_TEST(c->take(got_c).overflowed);
  got_b.clear();
  b->take(got_b);
  BOOST_TEST(got_b.size() == 6u);  // the rename notice and the five lines
  r.leave("c");
  r.leave("bee");
  got_a.clear();
  a->take(got_a);
  BOOST_TEST(got_a.size() == 2u + 1u);  // rename, c left, bee left
}

// A reader sends the chat lines of one read as one message; the outbox limit still counts lines.
BOOST_AUTO_TEST_CASE(grouped_lines_count_as_lines_against_the_outbox_limit) {
  asio::io_context io;
  room r;
  int overflows = 0;
  auto a = std::make_shared<outbox>(io.get_executor(), 1, nullptr);
  auto b = std::make_shared<outbox>(io.get_executor(), 5, [&] { ++overflows; });
  BOOST_TEST(r.join("a", a));
  BOOST_TEST(r.join("b", b));
  std::vector<message> got;
  b->take(got);
  BOOST_TEST(got.empty());  // nobody joined after b

  std::string three;
  for (const char* text : {"1", "2\x01", "3"}) append_chat_line(three, "a", text);
  BOOST_TEST(three == "a: 1\na: 2\\x01\na: 3\n");
  r.broadcast("a", std::make_shared<const std::string>(three), 3);
  r.broadcast("a", chat_line("a", "4"));
  r.broadcast("a", chat_line("a", "5"));
  BOOST_TEST(overflows == 0);  // 5 lines queued: the limit, not past it
  BOOST_TEST(!b->take(got).overflowed);
  BOOST_TEST(got.size() == 3u);
  got.clear();
  r.broadcast("a", std::make_shared<const std::string>(three), 3);
  BOOST_TEST(overflows == 0);
  r.broadcast("a", std::make_shared<const std::string>(three), 3);  // 6 lines: one too many
  BOOST_TEST(overflows == 1);
  BOOST_TEST(b->take(got).overflowed);
  BOOST_TEST(got.size() == 1u);  // the first group; the second was refused whole
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

class chat_fixture {
 public:
  explicit chat_fixture(options opts, unsigned threads = 2) : rt_(threads) {
    auto acceptor = open_listener(rt_.context(), "127.0.0.1", 0);
    server_ = acceptor.local_endpoint();
    start_server(rt_, std::move(acceptor), opts);
  }

  void run(task<> client) {
    testing::run_client_then_stop(rt_, std::move(client));
  }

  tcp::endpoint server() const { return server_; }

 private:
  runtime rt_;
  tcp::endpoint server_;
};

struct test_client {
  tcp_socket socket;
  std::unique_ptr<line_reader> input = std::make_unique<line_reader>(default_max_line);

  task<> send(std::string line) {
    co_await asio::async_write(socket, asio::buffer(line), use_task);
  }
  task<std::string> line() {
    auto result = co_await input->read_line(socket);
    BOOST_TEST((result.status == line_status::complete));
    co_return result.text;
  }
  std::string name() const { return fmt::format("{}", socket.local_endpoint()); }
};

task<test_client> connect(tcp::endpoint server) {
  auto socket = co_await testing::connect_to(server);  // not inside the braces: GCC 12
  co_return test_client{std::move(socket)};             // miscompiles co_await there
}

task<> three_clients(tcp::endpoint server) {
  auto a = co_await connect(server);
  auto b = co_await connect(server);
  BOOST_TEST(co_await a.line() == "* " + b.name() + " joined\n");
  auto c = co_await connect(server);
  BOOST_TEST(co_await a.line() == "* " + c.name() + " joined\n");
  BOOST_TEST(co_await b.line() == "* " + c.name() + " joined\n");
  for (auto* sender : {&a, &b, &c}) {
    co_await sender->send("from " + sender->name() + "\n");
    for (auto* receiver : {&a, &b, &c}) {
      if (receiver == sender) continue;
      BOOST_TEST(co_await receiver->line() ==
                 sender->name() + ": from " + sender->name() + "\n");
    }
  }
  // Nobody got its own line: each one's next line is the next notice.
  co_await c.send("/nick cy\n");
  for (auto* client : {&a, &b, &c}) {
    BOOST_TEST(co_await client->line() == "* " + c.name() + " is now cy\n");
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(chat_server, *boost::unit_test::timeout(30))

BOOST_AUTO_TEST_CASE(three_clients_queued) {
  chat_fixture fixture({.design = design::queued}, 4);
  fixture.run(three_clients(fixture.server()));
}

BOOST_AUTO_TEST_CASE(three_clients_lesson) {
  chat_fixture fixture({.design = design::lesson}, 4);
  fixture.run(three_clients(fixture.server()));
}

BOOST_AUTO_TEST_SUITE_END()
