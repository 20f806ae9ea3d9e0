// chat: every line a client sends goes to every other client, prefixed with its sender's name
// (the lesson's exercise 4). Two designs: `queued` (default), which no slow client can stall, and
// `lesson`, the lesson's own, kept to show the stall (see server.hpp).
#include "demo.hpp"
#include "server.hpp"

#include "common/cli.hpp"
#include "common/listener.hpp"

#include <string>

int main(int argc, char** argv) {
  using namespace netlab;
  CLI::App app{"chat: every line a client sends goes to every other client as `NAME: line`.\n"
               "Commands: /nick NAME, /who, /quit.",
               "chat"};
  common_options common;
  server_options server{.port = 8082};
  chat::options opts;
  bool demo = false;
  add_common_options(app, common);
  add_server_options(app, server);
  std::string design = "queued";
  app.add_option("--design", design,
                 "queued: each client has an outbox and a writer, a slow client is disconnected; "
                 "lesson: the broadcaster writes to each client in turn holding a lock, so one "
                 "slow client stalls everyone")
      ->check(CLI::IsMember({"queued", "lesson"}))
      ->capture_default_str();
  app.add_option("--outbox", opts.outbox,
                 "Lines queued for one client and not yet written; one more and it counts as too "
                 "slow and is disconnected (queued design)")
      ->transform(whole_number(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  add_max_line_option(app, opts.max_line);
  add_idle_timeout_option(app, opts.idle_timeout);
  add_trace_flag(app);
  add_demo_flag(app, demo, server);

  return run_program(app, common, argc, argv, [&] {
    opts.design = design == "lesson" ? chat::design::lesson : chat::design::queued;
    runtime rt(server.threads);
    auto acceptor = open_listener(rt.context(), server.bind, server.port);
    const auto local = acceptor.local_endpoint();
    chat::start_server(rt, std::move(acceptor), opts);
    if (demo) chat::start_demo(rt, local);
    return rt.run();
  });
}
