// What each subcommand prints: a few lines for people, then the JSON summary as the last line
// (the keys the benchmark scripts read; see README.md).
#include "chat_load.hpp"
#include "conns_load.hpp"
#include "echo_load.hpp"
#include "hold_load.hpp"
#include "json_line.hpp"

#include "common/log.hpp"

#include <fmt/format.h>

#include <fstream>
#include <stdexcept>

namespace netlab::bench {

namespace {

// "netbench itself: 0.98 s CPU in 1.00 s (98% of one core)". Near 100% the client, not the
// server, set the pace (the load runs on one thread unless echo --threads says otherwise).
std::string client_cpu_line(std::optional<double> cpu_s, double seconds) {
  if (!cpu_s || seconds <= 0) return "netbench itself: CPU time unknown";
  return fmt::format("netbench itself: {:.2f} s CPU in {:.2f} s ({:.0f}% of one core)", *cpu_s,
                     seconds, 100 * *cpu_s / seconds);
}

std::string kib_text(std::optional<std::uint64_t> kib) {
  return kib ? fmt::format("{} KiB", *kib) : std::string("unknown");
}

}  // namespace

// ---- echo ----

std::string summary_json(const echo_result& r) {
  const double lines = static_cast<double>(r.lines);
  const double bytes = lines * static_cast<double>(r.options.size);
  return json_line()
      .add("workload", "echo")
      .add("conns", std::uint64_t{r.options.conns})
      .add("inflight", std::uint64_t{r.options.inflight})
      .add("size", std::uint64_t{r.options.size})
      .add("duration_s", r.duration_s)
      .add("lines", r.lines)
      .add("lines_per_s", lines / r.duration_s)
      .add("mb_per_s", bytes / 1e6 / r.duration_s)
      .add("p50_us", r.latency.percentile_us(50))
      .add("p99_us", r.latency.percentile_us(99))
      .add("max_us", r.latency.max_us())
      .add("corrupted", r.corrupted)
      .add("lost", r.lost)
      .add("duplicated", r.duplicated)
      .add("reordered", r.reordered)
      .add("disconnected", r.disconnected)
      .add("errors", r.errors())
      .add("server_cpu_s", r.server_cpu_s)
      .add("server_cpu_us_per_line", ratio(r.server_cpu_s, lines / 1e6))
      .str();
}

void print_report(const echo_result& r) {
  const auto& o = r.options;
  print("echo {}: {} connections x {} in flight x {} B lines, {:.1f} s warm-up, {:.3f} s measured",
        o.target, o.conns, o.inflight, o.size, std::chrono::duration<double>(o.warmup).count(),
        r.duration_s);
  print("lines: {} ({:.0f}/s, {:.2f} MB/s each way); latency p50 {} us, p99 {} us, max {} us",
        r.lines, r.duration_s > 0 ? static_cast<double>(r.lines) / r.duration_s : 0.0,
        r.duration_s > 0 ? static_cast<double>(r.lines * o.size) / 1e6 / r.duration_s : 0.0,
        r.latency.percentile_us(50), r.latency.percentile_us(99), r.latency.max_us());
  print("errors: {} (corrupted {}, lost {}, duplicated {}, reordered {}, disconnected {}){}",
        r.errors(), r.corrupted, r.lost, r.duplicated, r.reordered, r.disconnected,
        r.cut_off ? "; cut off by the hard time limit" : "");
  if (r.server_cpu_s) {
    print("server CPU: {:.3f} s, {:.2f} us per line", *r.server_cpu_s,
          ratio(r.server_cpu_s, static_cast<double>(r.lines) / 1e6).value_or(0.0));
  }
  print("{}", client_cpu_line(r.client_cpu_s, r.duration_s));
  print("{}", summary_json(r));
}

// ---- chat ----

std::string summary_json(const chat_result& r) {
  const double deliveries = static_cast<double>(r.deliveries);
  return json_line()
      .add("workload", "chat")
      .add("clients", std::uint64_t{r.options.clients})
      .add("senders", std::uint64_t{r.options.senders})
      .add("rate", r.options.rate)
      .add("slow", std::uint64_t{r.options.slow})
      .add("duration_s", r.duration_s)
      .add("sent", r.sent)
      .add("deliveries", r.deliveries)
      .add("deliveries_per_s", deliveries / r.duration_s)
      .add("p50_us", r.latency.percentile_us(50))
      .add("p99_us", r.latency.percentile_us(99))
      .add("lost", r.lost)
      .add("duplicated", r.duplicated)
      .add("reordered", r.reordered)
      .add("corrupted", r.corrupted)
      .add("self_echo", r.self_echo)
      .add("disconnected", r.disconnected)
      .add("slow_disconnected", r.slow_disconnected)
      .add("errors", r.errors())
      .add("server_cpu_s", r.server_cpu_s)
      .add("server_cpu_us_per_delivery", ratio(r.server_cpu_s, deliveries / 1e6))
      .str();
}

void print_report(const chat_result& r) {
  const auto& o = r.options;
  print("chat {}: {} clients, {} sending {}, {} slow{}, {:.3f} s", o.target, o.clients, o.senders,
        o.rate > 0 ? fmt::format("{} lines/s each", o.rate)
                   : fmt::format("at full speed (window {})", o.window),
        o.slow, o.slow_join_at ? fmt::format(" joining at {} ms", o.slow_join_at->count()) : "",
        r.duration_s);
  print("sent {}, deliveries {} ({:.0f}/s); latency p50 {} us, p99 {} us, max {} us", r.sent,
        r.deliveries, r.duration_s > 0 ? static_cast<double>(r.deliveries) / r.duration_s : 0.0,
        r.latency.percentile_us(50), r.latency.percentile_us(99), r.latency.max_us());
  print(
      "errors: {} (lost {}, duplicated {}, reordered {}, corrupted {}, self echo {}, "
      "disconnected {}){}",
      r.errors(), r.lost, r.duplicated, r.reordered, r.corrupted, r.self_echo, r.disconnected,
      r.cut_off ? "; cut off by the hard time limit" : "");
  if (o.slow > 0)
    print("slow clients disconnected by the server: {} of {}", r.slow_disconnected, o.slow);
  if (r.senders_blocked > 0) {
    print(
        "{} senders were still blocked in a write {} s after the end: the server stopped "
        "reading them",
        r.senders_blocked, sender_write_grace.count());
  }
  if (r.server_cpu_s) {
    print("server CPU: {:.3f} s, {:.2f} us per delivery", *r.server_cpu_s,
          ratio(r.server_cpu_s, static_cast<double>(r.deliveries) / 1e6).value_or(0.0));
  }
  print("{}", client_cpu_line(r.client_cpu_s, r.duration_s));
  print("{}", summary_json(r));
}

void write_timeline(const chat_result& result, const std::string& path) {
  std::ofstream file(path);
  for (const auto& [seconds, per_second] : result.timeline) {
    file << fmt::format("{:.2f} {:.0f}\n", seconds, per_second);
  }
  if (!file) throw std::runtime_error("cannot write the timeline to " + path);
}

// ---- conns ----

std::string summary_json(const conns_result& r) {
  const double completed = static_cast<double>(r.completed);
  return json_line()
      .add("workload", "conns")
      .add("total", std::uint64_t{r.options.total})
      .add("concurrency", std::uint64_t{r.options.concurrency})
      .add("completed", r.completed)
      .add("failed", r.failed)
      .add("duration_s", r.duration_s)
      .add("conns_per_s", completed / r.duration_s)
      .add("p50_us", r.latency.percentile_us(50))
      .add("p99_us", r.latency.percentile_us(99))
      .add("errors", r.errors())
      .add("server_cpu_s", r.server_cpu_s)
      .add("server_cpu_us_per_conn", ratio(r.server_cpu_s, completed / 1e6))
      .str();
}

void print_report(const conns_result& r) {
  const auto& o = r.options;
  print("conns {}: {} connections, at most {} at a time: connect, hello, echo, close", o.target,
        o.total, o.concurrency);
  print("completed {}, failed {} in {:.3f} s ({:.0f}/s); per connection p50 {} us, p99 {} us{}",
        r.completed, r.failed, r.duration_s,
        r.duration_s > 0 ? static_cast<double>(r.completed) / r.duration_s : 0.0,
        r.latency.percentile_us(50), r.latency.percentile_us(99),
        r.cut_off ? "; cut off by the hard time limit" : "");
  if (r.completed + r.failed < o.total) {
    print("not attempted: {} (the --duration cap passed first)", o.total - r.completed - r.failed);
  }
  if (r.server_cpu_s) {
    print("server CPU: {:.3f} s, {:.2f} us per connection", *r.server_cpu_s,
          ratio(r.server_cpu_s, static_cast<double>(r.completed) / 1e6).value_or(0.0));
  }
  print("{}", client_cpu_line(r.client_cpu_s, r.duration_s));
  print("{}", summary_json(r));
}

// ---- hold ----

std::string summary_json(const hold_result& r) {
  return json_line()
      .add("workload", "hold")
      .add("conns", std::uint64_t{r.options.conns})
      .add("held", r.held)
      .add("rss_before_kib", r.rss_before_kib)
      .add("rss_after_kib", r.rss_after_kib)
      .add("kib_per_conn", r.kib_per_conn())
      .add("errors", r.errors())
      .str();
}

void print_report(const hold_result& r) {
  const auto& o = r.options;
  print("hold {}: {} idle connections{} for {:.1f} s, server pid {}", o.target, o.conns,
        o.touch ? " (each echoed one line first)" : "",
        std::chrono::duration<double>(o.hold).count(), o.pid);
  print("held {}, failed {}, closed by the server {}{}", r.held, r.failed, r.closed_by_server,
        r.cut_off ? "; cut off by the hard time limit" : "");
  print("server VmRSS: {} before, {} after settling, {} at the end; {} per connection",
        kib_text(r.rss_before_kib), kib_text(r.rss_settled_kib), kib_text(r.rss_after_kib),
        r.kib_per_conn() ? fmt::format("{:.2f} KiB", *r.kib_per_conn()) : "unknown");
  print("{}", summary_json(r));
}

}  // namespace netlab::bench
