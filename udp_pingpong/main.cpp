// udp_pingpong: socket A pings socket B over UDP and reports the round trips like ping(8)
// (the lesson's exercise 2). Three modes:
//   udp_pingpong                              A and B in this process, on loopback
//   udp_pingpong serve [--bind] [--port]      B only
//   udp_pingpong ping --target HOST:PORT      A only
#include "pinger.hpp"
#include "ponger.hpp"

#include "common/cli.hpp"
#include "common/log.hpp"

#include <vector>

namespace {

using namespace netlab;
using namespace netlab::pingpong;

// A's options, on the main command (A and B in one process) and on `ping`. Returned so that the
// other modes can refuse the main command's copies instead of ignoring them.
std::vector<CLI::Option*> add_ping_options(CLI::App& app, ping_options& options) {
  auto milliseconds = [](std::chrono::milliseconds& target) {
    return [&target](unsigned value) { target = std::chrono::milliseconds(value); };
  };
  return {
      app.add_option("--count", options.count, "Pings to send; 0: until Ctrl-C, then the summary")
          ->transform(whole_number<std::uint64_t>())
          ->capture_default_str(),
      app.add_option_function<unsigned>("--interval", milliseconds(options.interval),
                                        "Milliseconds between pings; 0: flood mode, the next "
                                        "ping as soon as a reply or a timeout frees a slot")
          ->default_str(std::to_string(options.interval.count()))
          ->transform(whole_number(0u, 3'600'000u)),
      app.add_option_function<unsigned>("--timeout", milliseconds(options.timeout),
                                        "Milliseconds a ping waits for its pong; a pong after "
                                        "that is lost (shown as late)")
          ->default_str(std::to_string(options.timeout.count()))
          ->transform(whole_number(1u, 3'600'000u)),
      app.add_option("--size", options.size, "Bytes in each ping (and pong)")
          ->transform(whole_number(min_ping_size, max_ping_size))
          ->capture_default_str(),
      app.add_option("--inflight", options.inflight,
                     "Flood mode only: pings kept outstanding at once")
          ->transform(whole_number(std::size_t{1}, remembered_outcomes))
          ->capture_default_str(),
      app.add_flag("-q,--quiet", options.quiet, "Print the summary only"),
  };
}

// --inflight means something only in flood mode; refusing it elsewhere beats ignoring it.
bool check_inflight(const CLI::App& app, const ping_options& options) {
  if (app.count("--inflight") == 0 || options.interval.count() == 0) return true;
  print_error("error: --inflight needs --interval 0 (see --help)");
  return false;
}

// The options every mode takes, on the main command and on each subcommand: a subcommand would
// take the main command's copies too (fallthrough), but its --help would not show them.
void add_options_of_every_mode(CLI::App& app, common_options& common) {
  add_common_options(app, common);
  add_trace_flag(app);
}

int ping_until_done(runtime& rt, boost::asio::ip::udp::endpoint target,
                    const ping_options& options, std::function<void()> when_done = {}) {
  pinger a(rt, target, options);
  a.start(std::move(when_done));
  rt.run();
  a.summarize_if_cut_short();
  return a.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"udp_pingpong: socket A sends numbered pings to socket B over UDP, B answers each "
               "with a pong, A prints the round trips and a summary like ping(8).\n"
               "Without a subcommand, A and B run in this process on loopback.\n"
               "Every time is a full round trip: from sending a ping to receiving its pong. "
               "p50/p90/p99 are nearest-rank percentiles, to the microsecond.",
               "udp_pingpong"};
  common_options common;
  add_options_of_every_mode(app, common);
  // An option a subcommand does not know goes to the main command, which refuses A's options in
  // the other modes by name (`serve excludes --count`) rather than as an unexpected argument.
  app.fallthrough();
  app.require_subcommand(0, 1);

  ping_options local{.interval = std::chrono::milliseconds(100)};  // a quick demonstration
  auto local_options = add_ping_options(app, local);
  bool demo = false;  // changes nothing: the main command already is the demonstration
  local_options.push_back(app.add_flag(
      "--demo", demo, "The same as no option: A and B in this process (scripts/demo.sh runs it)"));

  auto* serve = app.add_subcommand("serve", "Side B only: answer pings");
  server_options server{.port = 4000};
  add_server_options(*serve, server);

  auto* ping = app.add_subcommand("ping", "Side A only: ping a running B and print the round "
                                          "trips (full round trips, like ping(8))");
  std::string target_text;
  ping->add_option("--target", target_text, "B's address: HOST:PORT, [IPv6]:PORT")
      ->required()
      ->check(CLI::Validator(
          [](const std::string& text) {
            return split_host_port(text) ? std::string()
                                         : "expected HOST:PORT or [IPv6]:PORT, got " + text;
          },
          "HOST:PORT", "host_port"));
  ping_options remote;
  add_ping_options(*ping, remote);

  for (auto* mode : {serve, ping}) add_options_of_every_mode(*mode, common);

  for (auto* option : local_options) {
    serve->excludes(option);
    ping->excludes(option);
  }

  return run_program(app, common, argc, argv, [&] {
    if (serve->parsed()) {
      runtime rt(server.threads);
      start_ponging(rt.shutdown(), open_ponger(rt.context(), server.bind, server.port));
      return rt.run();
    }
    // B in this process stops when A is done, not at Ctrl-C: the pings A sent before it stopped
    // must still be answered. Declared before the runtime, so that it outlives B's coroutine.
    shutdown_coordinator b_shutdown;
    // A measures with one thread: no hand-offs between threads inside the figures it prints.
    runtime rt(1);
    if (ping->parsed()) {
      if (!check_inflight(*ping, remote)) return exit_usage;
      return ping_until_done(rt, resolve_target(rt.context(), *split_host_port(target_text)),
                             remote);
    }
    if (!check_inflight(app, local)) return exit_usage;
    auto b = open_ponger(rt.context(), "127.0.0.1", 0);
    const auto b_address = b.local_endpoint();
    start_ponging(b_shutdown, std::move(b));
    return ping_until_done(rt, b_address, local, [&b_shutdown] { b_shutdown.request_stop(); });
  });
}
