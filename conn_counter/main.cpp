// conn_counter: a TCP echo server that numbers its connections and counts them with atomics
// shared by every thread (the lesson's exercise 3: Arc<AtomicUsize>).
#include "demo.hpp"
#include "server.hpp"

#include "common/cli.hpp"
#include "common/listener.hpp"

int main(int argc, char** argv) {
  using namespace netlab;
  CLI::App app{"conn_counter: echoes every byte back as it comes, and counts connections.\n"
               "Prints `Connection #N from ADDR` on each accept, `Disconnected #N from ADDR "
               "(active A, closed C)` on each close.",
               "conn_counter"};
  app.footer(
      "Signals: SIGUSR1 prints `status: N accepted, A active, C closed` and carries on.\n"
      "SIGINT or SIGTERM stop accepting, close every connection, print "
      "`total: N accepted, C closed`, and exit 0.");
  common_options common;
  server_options server{.port = 8081};

  bool demo = false;
  add_common_options(app, common);
  add_server_options(app, server);
  std::size_t max_connections = descriptor_connection_limit(server.threads);
  auto* max_option =
      app.add_option("--max-connections", max_connections,
                     fmt::format("Connections open at once, at most; more wait in the listen "
                                 "backlog until one closes (default: the descriptor limit minus "
                                 "{}, minus {} more for each thread after the first)",
                                 descriptor_reserve, descriptors_per_thread))
          ->transform(whole_number(std::size_t{1}))
          ->capture_default_str();
  std::chrono::milliseconds idle_timeout{0};
  add_idle_timeout_option(app, idle_timeout);
  add_trace_flag(app);
  add_demo_flag(app, demo, server);

  return run_program(app, common, argc, argv, [&] {
    // The default depends on --threads (each thread's io_context holds descriptors of its own).
    if (max_option->count() == 0) max_connections = descriptor_connection_limit(server.threads);
    // Created before the runtime and destroyed after it: a session that a forced stop leaves
    // behind is destroyed with the runtime, and still counts its close before the total.
    counter::server counting(demo ? counter::demo_output() : counter::print_to_stdout(),
                             idle_timeout);
    {
      runtime rt(server.threads);
      counter::status_on_signal status(rt, counting);  // before `listening on`: see server.hpp
      auto acceptor = open_listener(rt.context(), server.bind, server.port);
      const auto local = acceptor.local_endpoint();
      start_accepting(rt, std::move(acceptor), max_connections,
                      [&](accepted_connection connection) {
                        counting.accept(std::move(connection), rt.shutdown());
                      });
      if (demo) counter::start_demo(rt, local, counting);
      rt.run();
    }
    counting.report_total();
    return exit_ok;
  });
}
