// netbench: the strict load client of the benchmarks. It loads a server on this machine and
// checks every byte that comes back; a figure from a server that lost or corrupted data is not a
// figure, so any such error makes the exit status 1.
//
//   netbench echo   N connections x K lines in flight against a line echo server
//   netbench chat   N clients, M of them sending, against the chat server
//   netbench conns  T short connections, C at a time
//   netbench hold   N idle connections, and the server's memory for them
//
// Each prints a few lines for people, then a one-line JSON summary as its last line.
#include "chat_load.hpp"
#include "conns_load.hpp"
#include "echo_load.hpp"
#include "hold_load.hpp"
#include "proc.hpp"
#include "target.hpp"
#include "wire.hpp"

#include "common/cli.hpp"
#include "common/listener.hpp"
#include "common/log.hpp"

#include <fmt/format.h>

#include <chrono>
#include <optional>
#include <string>

namespace {

using namespace netlab;
using namespace netlab::bench;

// The options every TCP subcommand takes.
struct target_options {
  std::string target{default_target};
  std::optional<pid_t> pid;
};

const CLI::Validator loopback_target([](const std::string& text) { return explain_target(text); },
                                     "HOST:PORT", "loopback_target");

const CLI::Validator running_process(
    [](const std::string& text) {
      // At most 9 digits: stoi cannot overflow (Linux pids stay below 2^22).
      const bool ok = !text.empty() && text.size() <= 9 &&
                      text.find_first_not_of("0123456789") == std::string::npos &&
                      process_exists(std::stoi(text));
      return ok ? std::string() : "no such process: " + text;
    },
    "PID", "running_process");

constexpr const char* cpu_pid_help =
    "The server's process id: its CPU time (/proc/PID/stat) over the measurement is reported";

void add_target_options(CLI::App& command, target_options& options, bool pid_required,
                        const std::string& pid_help = cpu_pid_help) {
  command
      .add_option("--target", options.target, "The server: HOST:PORT or [IPv6]:PORT, loopback only")
      ->check(loopback_target)
      ->capture_default_str();
  auto* pid = command.add_option_function<pid_t>(
      "--pid", [&options](pid_t value) { options.pid = value; },
      pid_help);
  pid->check(running_process);
  if (pid_required) pid->required();
}

// A duration option given in seconds (fractions allowed), kept in milliseconds.
CLI::Option* add_seconds(CLI::App& command, const std::string& name,
                         std::chrono::milliseconds& target, const std::string& help,
                         double min_seconds) {
  return command
      .add_option_function<double>(
          name,
          [&target](double seconds) {
            target = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
          },
          help)
      ->check(CLI::Range(min_seconds, 3600.0))
      ->default_str(fmt::format("{}", std::chrono::duration<double>(target).count()));
}

// Connections netbench may open at once: one descriptor each, below its own limit.
std::size_t connection_budget() {
  const auto limit = raise_descriptor_limit();
  return limit > descriptor_reserve ? limit - descriptor_reserve : 1;
}

int usage_error(const std::string& message) {
  print_error("error: {} (see --help)", message);
  return exit_usage;
}

int exit_status(std::uint64_t errors) { return errors == 0 ? exit_ok : exit_runtime_failure; }

boost::asio::ip::tcp::endpoint endpoint_of(const target_options& options) {
  return *parse_loopback_target(options.target);  // the validator has accepted it
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "netbench: a load client that checks every byte it gets back.\n"
      "Loads a server on this machine only (loopback). Prints a few lines, then a "
      "one-line JSON summary as the last line of stdout. Exit status: 0 when no data "
      "error was seen, 1 when any was (corrupted, lost, duplicated, reordered, "
      "disconnected, failed connect), 2 for a bad option.",
      "netbench"};
  common_options common;
  add_common_options(app, common);
  app.fallthrough();  // --log-level may also follow the subcommand
  app.require_subcommand(1);

  // ---- echo ----
  auto* echo = app.add_subcommand(
      "echo",
      "N connections, each keeping K lines in flight (closed loop), against a line echo "
      "server (echo_split; conn_counter works too)");
  target_options echo_target;
  echo_options echo_opts;
  add_target_options(*echo, echo_target, false);
  echo->add_option("--conns", echo_opts.conns, "Connections")
      ->transform(whole_number(std::size_t{1}, std::size_t{60000}))
      ->capture_default_str();
  echo->add_option("--inflight", echo_opts.inflight, "Lines in flight per connection")
      ->transform(whole_number(std::size_t{1}, std::size_t{65536}))
      ->capture_default_str();
  echo->add_option("--size", echo_opts.size, "Bytes per line, '\\n' included")
      ->transform(whole_number(min_echo_line, std::size_t{65536}))
      ->capture_default_str();
  add_seconds(*echo, "--duration", echo_opts.duration, "Seconds measured, after the warm-up",
              0.001);
  add_seconds(*echo, "--warmup", echo_opts.warmup,
              "Seconds of load before the measurement (checked, not counted)", 0);
  echo->add_option("--threads", echo_opts.threads,
                   "Threads running netbench's own io_context (one drives thousands of "
                   "connections; more only compete with the server for the cores)")
      ->transform(whole_number(1u, 64u))
      ->capture_default_str();

  // ---- chat ----
  auto* chat = app.add_subcommand(
      "chat", "N clients read, M of them also send; every line is checked at every receiver");
  target_options chat_target;
  chat_options chat_opts;
  chat_target.target = "127.0.0.1:8082";
  add_target_options(*chat, chat_target, false);
  chat->add_option("--clients", chat_opts.clients, "Reading clients (the senders among them)")
      ->transform(whole_number(std::size_t{2}, std::size_t{10000}))
      ->capture_default_str();
  chat->add_option("--senders", chat_opts.senders, "How many of the clients also send")
      ->transform(whole_number(std::size_t{1}, std::size_t{10000}))
      ->capture_default_str();
  chat->add_option("--rate", chat_opts.rate,
                   "Lines per second per sender; 0: full speed, as a closed loop (see --window)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  chat->add_option("--window", chat_opts.window,
                   "Full speed: lines a sender may be ahead of the slowest reading client")
      ->transform(whole_number(std::size_t{1}, std::size_t{100000}))
      ->capture_default_str();
  chat->add_option("--slow", chat_opts.slow, "Extra clients that connect and never read")
      ->transform(whole_number(std::size_t{0}, std::size_t{10000}))
      ->capture_default_str();
  std::chrono::milliseconds slow_join_at{0};
  auto* slow_join = add_seconds(*chat, "--slow-join-at", slow_join_at,
                                "Seconds into the run when the slow clients connect "
                                "(default: at the start, with the others)",
                                0);
  add_seconds(*chat, "--duration", chat_opts.duration, "Seconds the senders send", 0.001);
  std::string timeline_path;
  chat->add_option("--timeline", timeline_path,
                   "Write `t_seconds deliveries_per_s` every 250 ms to this file (for a plot)");

  // ---- conns ----
  auto* conns = app.add_subcommand(
      "conns",
      "T short connections, at most C at a time: connect, send a line, read it back, "
      "close");
  target_options conns_target;
  conns_options conns_opts;
  add_target_options(*conns, conns_target, false);
  conns->add_option("--total", conns_opts.total, "Connections in all")
      ->transform(whole_number(std::size_t{1}, std::size_t{20000}))
      ->capture_default_str();
  conns->add_option("--concurrency", conns_opts.concurrency, "Connections open at once, at most")
      ->transform(whole_number(std::size_t{1}, std::size_t{10000}))
      ->capture_default_str();
  add_seconds(*conns, "--duration", conns_opts.duration,
              "A cap: no new connection is started after this many seconds", 0.001);

  // ---- hold ----
  auto* hold = app.add_subcommand(
      "hold", "N idle connections held open; the server's VmRSS before and after");
  target_options hold_target;
  hold_options hold_opts;
  add_target_options(*hold, hold_target, true,
                     "The server's process id: its resident memory (VmRSS in /proc/PID/status) "
                     "before and after is reported");
  hold->add_option("--conns", hold_opts.conns, "Connections to hold")
      ->transform(whole_number(std::size_t{1}, std::size_t{60000}))
      ->capture_default_str();
  add_seconds(*hold, "--seconds", hold_opts.hold,
              "Seconds to hold them, from the last connect (1 s of settling included)", 0);
  hold->add_flag("--touch", hold_opts.touch,
                 "Echo one line on each connection before it goes idle, proving the server "
                 "accepted it (default: connect only)");

  // Each subcommand lists --log-level in its own --help too (it is accepted on either side).
  for (auto* mode : {echo, chat, conns, hold}) add_common_options(*mode, common);

  return run_program(app, common, argc, argv, [&]() -> int {
    const std::size_t budget = connection_budget();
    auto over_budget = [budget](std::size_t wanted) {
      return usage_error(
          fmt::format("{} connections at once is more than this process may "
                      "open ({} descriptors, less {} for itself)",
                      wanted, budget + descriptor_reserve, descriptor_reserve));
    };

    if (echo->parsed()) {
      echo_opts.target = endpoint_of(echo_target);
      echo_opts.pid = echo_target.pid;
      if (echo_opts.conns > budget) return over_budget(echo_opts.conns);
      if (echo_opts.inflight * echo_opts.size > max_bytes_in_flight) {
        return usage_error(
            fmt::format("--inflight x --size is {} bytes per connection; at most "
                        "{}, so that a connection never waits on itself",
                        echo_opts.inflight * echo_opts.size, max_bytes_in_flight));
      }
      const auto result = run_echo(echo_opts);
      print_report(result);
      return exit_status(result.errors());
    }
    if (chat->parsed()) {
      chat_opts.target = endpoint_of(chat_target);
      chat_opts.pid = chat_target.pid;
      if (slow_join->count() > 0) chat_opts.slow_join_at = slow_join_at;
      if (chat_opts.senders > chat_opts.clients) {
        return usage_error("--senders must not exceed --clients (senders are clients too)");
      }
      if (chat_opts.clients + chat_opts.slow > budget) {
        return over_budget(chat_opts.clients + chat_opts.slow);
      }
      const auto result = run_chat(chat_opts);
      print_report(result);
      if (!timeline_path.empty()) write_timeline(result, timeline_path);
      return exit_status(result.errors());
    }
    if (conns->parsed()) {
      conns_opts.target = endpoint_of(conns_target);
      conns_opts.pid = conns_target.pid;
      if (conns_opts.concurrency > budget) return over_budget(conns_opts.concurrency);
      const auto result = run_conns(conns_opts);
      print_report(result);
      return exit_status(result.errors());
    }
    hold_opts.target = endpoint_of(hold_target);
    hold_opts.pid = *hold_target.pid;
    if (hold_opts.conns > budget) return over_budget(hold_opts.conns);
    const auto result = run_hold(hold_opts);
    print_report(result);
    return exit_status(result.errors());
  });
}
