// echo_split: a TCP line echo server whose connections each run a reader and a writer coroutine
// joined by a bounded channel (the lesson's exercise 1: into_split + mpsc).
#include "demo.hpp"
#include "echo_session.hpp"

#include "common/cli.hpp"
#include "common/listener.hpp"

int main(int argc, char** argv) {
  using namespace netlab;
  CLI::App app{"echo_split: every line a client sends comes back, byte for byte, in order.\n"
               "Each connection has a reader and a writer coroutine joined by a bounded channel.",
               "echo_split"};
  common_options common;
  server_options server{.port = 8080};
  echo::options limits;
  bool demo = false;
  add_common_options(app, common);
  add_server_options(app, server);
  app.add_option("--queue", limits.queue,
                 "Lines read and waiting for the writer; past this the reader waits, and so does "
                 "the client (backpressure). The batch being written holds as many again")
      ->transform(whole_number(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  add_max_line_option(app, limits.max_line);
  add_idle_timeout_option(app, limits.idle_timeout);
  add_trace_flag(app);
  add_demo_flag(app, demo, server);

  return run_program(app, common, argc, argv, [&] {
    runtime rt(server.threads);
    auto acceptor = open_listener(rt.context(), server.bind, server.port);
    const auto local = acceptor.local_endpoint();
    start_accepting(rt, std::move(acceptor), [&rt, &limits](auto socket, const auto& peer) {
      echo::start_session(std::move(socket), peer, limits, rt.shutdown());
    });
    if (demo) echo::start_demo(rt, local, limits.max_line);
    return rt.run();
  });
}
